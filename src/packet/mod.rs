//! Decode: link layer → IPv4/IPv6 → TCP/UDP/ICMP/ICMPv6, zero-copy, with
//! bounds-checked slicing (see `decode.rs` for why not etherparse on the hot
//! path; etherparse cross-checks the tests). Failures are typed
//! ([`DecodeError`]) and counted by reason by the caller; nothing here panics
//! on any input.
//!
//! Entry points: [`decode`] for a captured frame, [`decode_ip`] for a raw IP
//! datagram (after reassembly). IP fragments come back as
//! [`Decoded::Fragment`] and go through a [`defrag::Defragmenter`].

use std::net::IpAddr;

use crate::Ts;

mod decode;
pub mod defrag;

pub use decode::{
    decode, decode_ip, fast_flow_hash, quoted_flow, Decoded, Fragment, MAX_IPV6_EXT_HEADERS,
    MAX_VLAN_TAGS, PROTO_ICMP, PROTO_ICMPV6,
};
pub use defrag::{DefragConfig, DefragStats, Defragmenter, Incomplete, Reassembled};

/// IP protocol numbers used in flow keys.
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// TCP flag bits as on the wire (byte 13 of the TCP header).
/// A LINKTYPE_* value as written in pcap/pcapng headers (tcpdump.org/linktypes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u16);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// Whether the decoder understands this link type.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            LinkType::NULL
                | LinkType::ETHERNET
                | LinkType::RAW
                | LinkType::LOOP
                | LinkType::LINUX_SLL
                | LinkType::IPV4
                | LinkType::IPV6
                | LinkType::LINUX_SLL2
        ) || self.0 == 12 // DLT_RAW on some BSDs, written into old pcap files
            || self.0 == 14
    }

    /// The name used in reports (`inputs[].link_type`).
    pub fn name(self) -> String {
        match self.0 {
            0 => "null".into(),
            1 => "ethernet".into(),
            12 | 14 | 101 => "raw".into(),
            108 => "loop".into(),
            113 => "linux-sll".into(),
            228 => "ipv4".into(),
            229 => "ipv6".into(),
            276 => "linux-sll2".into(),
            n => format!("linktype-{n}"),
        }
    }
}

pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// A directional 5-tuple as seen in one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiveTuple {
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

impl FiveTuple {
    /// The same tuple seen from the other side.
    pub fn reversed(&self) -> FiveTuple {
        FiveTuple {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }

    /// A hash equal for both directions of a flow (so both land on one shard).
    pub fn symmetric_hash(&self) -> u64 {
        let a = endpoint_hash(&self.src, self.sport);
        let b = endpoint_hash(&self.dst, self.dport);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        mix64(lo ^ hi.rotate_left(17) ^ (self.proto as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
}

fn endpoint_hash(ip: &IpAddr, port: u16) -> u64 {
    let v = match ip {
        IpAddr::V4(a) => u32::from(*a) as u64,
        IpAddr::V6(a) => {
            let x = u128::from(*a);
            (x as u64) ^ ((x >> 64) as u64).rotate_left(29)
        }
    };
    mix64(v ^ ((port as u64) << 48) ^ (port as u64))
}

/// A fast, well-spread 64-bit finalizer (splitmix64).
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where the transport payload lies inside the decoded bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayloadRef {
    /// Offset of the first payload byte inside the decoded slice.
    pub offset: u32,
    /// Payload bytes present in the capture.
    pub len: u32,
    /// Payload bytes the IP/transport headers announce but the snaplen cut.
    pub missing: u32,
}

/// IP-layer facts kept for evidence (TTL and IP ID tell a firewall's forged
/// reset from the host's own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// IPv4 identification; None for IPv6.
    pub ip_id: Option<u16>,
    /// IPv4 don't-fragment bit.
    pub dont_fragment: bool,
    /// The packet was rebuilt from IP fragments.
    pub reassembled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpMeta {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// Flag bits, see [`tcp_flags`].
    pub flags: u8,
    pub window: u16,
    pub payload: PayloadRef,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpMeta {
    pub sport: u16,
    pub dport: u16,
    pub payload: PayloadRef,
}

/// The flow an ICMP error quotes (from the embedded original IP header and
/// the first 8 transport bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedFlow {
    /// Directional tuple of the original packet (src = who sent it).
    pub tuple: FiveTuple,
    /// TCP sequence number of the quoted segment.
    pub tcp_seq: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpMeta {
    /// ICMPv6 rather than ICMPv4.
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// For destination-unreachable / time-exceeded / parameter-problem /
    /// packet-too-big errors that quote a TCP or UDP packet.
    pub quoted: Option<QuotedFlow>,
    /// The MTU a "fragmentation needed" (IPv4 type 3 code 4) or "packet
    /// too big" (ICMPv6 type 2) names; None for other messages or 0.
    pub mtu: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp(TcpMeta),
    Udp(UdpMeta),
    Icmp(IcmpMeta),
    /// Another IP protocol (GRE, ESP, ...): counted, not tracked.
    Other(u8),
}

/// One decoded packet: everything the flow table needs, no borrowed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub ts: Ts,
    /// Bytes of the frame on the wire (pcap orig_len).
    pub wire_len: u32,
    pub ip: IpMeta,
    pub transport: Transport,
}

impl Packet {
    /// The directional 5-tuple for TCP and UDP packets.
    pub fn tuple(&self) -> Option<FiveTuple> {
        let (proto, sport, dport) = match self.transport {
            Transport::Tcp(t) => (PROTO_TCP, t.sport, t.dport),
            Transport::Udp(u) => (PROTO_UDP, u.sport, u.dport),
            _ => return None,
        };
        Some(FiveTuple {
            proto,
            src: self.ip.src,
            dst: self.ip.dst,
            sport,
            dport,
        })
    }

    /// The payload location, for TCP and UDP.
    pub fn payload(&self) -> Option<PayloadRef> {
        match self.transport {
            Transport::Tcp(t) => Some(t.payload),
            Transport::Udp(u) => Some(u.payload),
            _ => None,
        }
    }
}

/// Why a frame could not be decoded. `reason()` is the stable key used in
/// `stats.decode_errors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The frame ends inside a link-layer header.
    TruncatedLink,
    /// Link layer carries something that is not IP (ARP, LLDP, STP, ...).
    NotIp,
    /// The frame ends inside an IP header (snaplen or a broken packet).
    TruncatedIp,
    /// IP header fields make no sense (version, IHL, total length).
    BadIp,
    /// The frame ends inside a TCP/UDP/ICMP header.
    TruncatedTransport,
    /// TCP data offset < 5 or similar.
    BadTransport,
    /// An IPv6 extension header chain that cannot be walked.
    BadIpv6Extension,
    /// The link type is not one the decoder knows.
    UnsupportedLinkType,
}

impl DecodeError {
    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::TruncatedLink => "truncated-link-header",
            DecodeError::NotIp => "not-ip",
            DecodeError::TruncatedIp => "truncated-ip-header",
            DecodeError::BadIp => "bad-ip-header",
            DecodeError::TruncatedTransport => "truncated-transport-header",
            DecodeError::BadTransport => "bad-transport-header",
            DecodeError::BadIpv6Extension => "bad-ipv6-extension",
            DecodeError::UnsupportedLinkType => "unsupported-link-type",
        }
    }
}

#[cfg(test)]
mod tests;
