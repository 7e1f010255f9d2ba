//! Scripted TCP conversations.

use std::net::IpAddr;

use crate::frame::{Frame, Link};

/// TCP header flag bits.
pub mod tcp_flags {
    pub const FIN: u8 = 1;
    pub const SYN: u8 = 1 << 1;
    pub const RST: u8 = 1 << 2;
    pub const PSH: u8 = 1 << 3;
    pub const ACK: u8 = 1 << 4;
}

/// A scripted TCP conversation: each method returns the next frame and
/// advances the sequence numbers as the real endpoints would.
#[derive(Clone, Debug)]
pub struct TcpConversation {
    pub client: IpAddr,
    pub server: IpAddr,
    pub cport: u16,
    pub sport: u16,
    pub isn_c: u32,
    pub isn_s: u32,
    pub link: Link,
    /// Client's next sequence number.
    pub next_c: u32,
    /// Server's next sequence number.
    pub next_s: u32,
}

impl TcpConversation {
    /// Ethernet, ISNs 1000 (client) and 5000 (server).
    pub fn new(client: IpAddr, cport: u16, server: IpAddr, sport: u16) -> Self {
        TcpConversation::with_isn(client, cport, server, sport, 1000, 5000)
    }

    pub fn with_isn(
        client: IpAddr,
        cport: u16,
        server: IpAddr,
        sport: u16,
        isn_c: u32,
        isn_s: u32,
    ) -> Self {
        TcpConversation {
            client,
            server,
            cport,
            sport,
            isn_c,
            isn_s,
            link: Link::Ethernet,
            next_c: isn_c,
            next_s: isn_s,
        }
    }

    pub fn link(mut self, link: Link) -> Self {
        self.link = link;
        self
    }

    /// A builder for a client→server segment at the current sequence
    /// numbers (flags ACK), to customize (TTL, flags, payload, ...).
    pub fn c2s(&self) -> Frame<'static> {
        Frame::new(self.link)
            .macs([0x02, 0, 0, 0, 0, 0x0c], [0x02, 0, 0, 0, 0, 0x05])
            .ip(self.client, self.server)
            .tcp(self.cport, self.sport)
            .seq(self.next_c)
            .ack(self.next_s)
    }

    /// A builder for a server→client segment at the current sequence numbers.
    pub fn s2c(&self) -> Frame<'static> {
        Frame::new(self.link)
            .macs([0x02, 0, 0, 0, 0, 0x05], [0x02, 0, 0, 0, 0, 0x0c])
            .ip(self.server, self.client)
            .tcp(self.sport, self.cport)
            .seq(self.next_s)
            .ack(self.next_c)
    }

    pub fn syn(&mut self) -> Vec<u8> {
        self.next_c = self.isn_c;
        let f = self.c2s().ack(0).flags(tcp_flags::SYN).build();
        self.next_c = self.isn_c.wrapping_add(1);
        f
    }

    pub fn syn_ack(&mut self) -> Vec<u8> {
        self.next_s = self.isn_s;
        let f = self.s2c().flags(tcp_flags::SYN | tcp_flags::ACK).build();
        self.next_s = self.isn_s.wrapping_add(1);
        f
    }

    /// Client ACK (third packet of the handshake, or a pure ACK).
    pub fn ack(&mut self) -> Vec<u8> {
        self.c2s().flags(tcp_flags::ACK).build()
    }

    /// Server pure ACK.
    pub fn ack_s(&mut self) -> Vec<u8> {
        self.s2c().flags(tcp_flags::ACK).build()
    }

    pub fn data_c2s(&mut self, data: &[u8]) -> Vec<u8> {
        let f = self
            .c2s()
            .flags(tcp_flags::PSH | tcp_flags::ACK)
            .payload(data)
            .build();
        self.next_c = self.next_c.wrapping_add(data.len() as u32);
        f
    }

    pub fn data_s2c(&mut self, data: &[u8]) -> Vec<u8> {
        let f = self
            .s2c()
            .flags(tcp_flags::PSH | tcp_flags::ACK)
            .payload(data)
            .build();
        self.next_s = self.next_s.wrapping_add(data.len() as u32);
        f
    }

    pub fn fin_c(&mut self) -> Vec<u8> {
        let f = self.c2s().flags(tcp_flags::FIN | tcp_flags::ACK).build();
        self.next_c = self.next_c.wrapping_add(1);
        f
    }

    pub fn fin_s(&mut self) -> Vec<u8> {
        let f = self.s2c().flags(tcp_flags::FIN | tcp_flags::ACK).build();
        self.next_s = self.next_s.wrapping_add(1);
        f
    }

    /// Client reset (RST|ACK at the current sequence numbers).
    pub fn rst_c(&mut self) -> Vec<u8> {
        self.c2s().flags(tcp_flags::RST | tcp_flags::ACK).build()
    }

    /// Server reset (RST|ACK at the current sequence numbers).
    pub fn rst_s(&mut self) -> Vec<u8> {
        self.s2c().flags(tcp_flags::RST | tcp_flags::ACK).build()
    }
}
