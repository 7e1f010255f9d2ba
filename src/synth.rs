//! Synthetic captures: a pcap writer and packet builders for tests and benchmarks.
//!
//! * [`PcapWriter`] (classic pcap, µs or ns) and [`PcapngWriter`] (SHB, IDBs,
//!   EPBs) stream records straight to any `Write`; wrap files in a
//!   `BufWriter` (the `create` constructors do).
//! * [`Frame`] is a fluent builder for whole frames:
//!   `Frame::ethernet().vlan(10).ipv4(a, b).ttl(64).tcp(1234, 135).flags(SYN).seq(1).payload(b"..").build()`.
//!   Checksums (IPv4 header, TCP, UDP, ICMPv4, ICMPv6) are always correct.
//!   `build_into` appends to a reusable buffer (no allocation beyond it).
//! * [`TcpConversation`] scripts a TCP exchange and tracks sequence numbers.
//!
//! Builders are test tools: they panic on programmer errors (an IPv4 source
//! with an IPv6 destination); nothing else here does.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::capture::LinkType;
use crate::packet::{tcp_flags, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::Ts;

// ---------------------------------------------------------------------------
// pcap
// ---------------------------------------------------------------------------

/// Classic pcap writer (little-endian, version 2.4).
pub struct PcapWriter<W: Write> {
    w: W,
    snaplen: u32,
    nanos: bool,
    link: LinkType,
    packets: u64,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates `path` (buffered).
    pub fn create(
        path: impl AsRef<Path>,
        link: LinkType,
        snaplen: u32,
        nanos: bool,
    ) -> io::Result<Self> {
        let f = File::create(path)?;
        PcapWriter::new(BufWriter::with_capacity(1 << 20, f), link, snaplen, nanos)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header. `nanos` selects the nanosecond magic
    /// (0xa1b23c4d) instead of the microsecond one (0xa1b2c3d4).
    pub fn new(mut w: W, link: LinkType, snaplen: u32, nanos: bool) -> io::Result<Self> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone, sigfigs = 0
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&(link.0 as u32).to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter {
            w,
            snaplen,
            nanos,
            link,
            packets: 0,
        })
    }

    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Records written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Writes one frame; bytes beyond the snaplen are cut (orig_len keeps
    /// the full length).
    pub fn write_packet(&mut self, ts: Ts, data: &[u8]) -> io::Result<()> {
        self.write_packet_truncated(ts, data, data.len() as u32)
    }

    /// Writes `data` as the captured part of a frame of `orig_len` bytes on
    /// the wire (orig_len is raised to the captured length if smaller).
    pub fn write_packet_truncated(&mut self, ts: Ts, data: &[u8], orig_len: u32) -> io::Result<()> {
        let cap = data.len().min(self.snaplen as usize);
        let secs = (ts / 1_000_000_000) as u32;
        let frac = if self.nanos {
            (ts % 1_000_000_000) as u32
        } else {
            ((ts % 1_000_000_000) / 1_000) as u32
        };
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&(cap as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.max(cap as u32).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(&data[..cap])?;
        self.packets += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Minimal pcapng writer: one section (SHB), interfaces (IDB) added on
/// demand, enhanced packet blocks (EPB). Little-endian.
pub struct PcapngWriter<W: Write> {
    w: W,
    /// (snaplen, nanos) per interface.
    ifaces: Vec<(u32, bool)>,
}

impl PcapngWriter<BufWriter<File>> {
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let f = File::create(path)?;
        PcapngWriter::new(BufWriter::with_capacity(1 << 20, f))
    }
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header block.
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut b = [0u8; 28];
        b[0..4].copy_from_slice(&0x0a0d_0d0au32.to_le_bytes());
        b[4..8].copy_from_slice(&28u32.to_le_bytes());
        b[8..12].copy_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        b[12..14].copy_from_slice(&1u16.to_le_bytes());
        b[14..16].copy_from_slice(&0u16.to_le_bytes());
        b[16..24].copy_from_slice(&(-1i64).to_le_bytes());
        b[24..28].copy_from_slice(&28u32.to_le_bytes());
        w.write_all(&b)?;
        Ok(PcapngWriter {
            w,
            ifaces: Vec::new(),
        })
    }

    /// Adds an interface (IDB); returns its id for [`Self::write_packet`].
    /// `nanos` writes `if_tsresol = 9`, else the default microseconds.
    pub fn add_interface(&mut self, link: LinkType, snaplen: u32, nanos: bool) -> io::Result<u32> {
        self.add_interface_with_filter(link, snaplen, nanos, None)
    }

    /// [`Self::add_interface`] with the capture filter the interface was
    /// captured through: its `if_filter` option, `(kind, bytes)` (kind 0:
    /// a libpcap filter string, 1: BPF byte code).
    pub fn add_interface_with_filter(
        &mut self,
        link: LinkType,
        snaplen: u32,
        nanos: bool,
        filter: Option<(u8, &[u8])>,
    ) -> io::Result<u32> {
        let mut b = Vec::with_capacity(32);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes()); // length, patched below
        b.extend_from_slice(&link.0.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&snaplen.to_le_bytes());
        if nanos {
            // if_tsresol: code 9, length 1, value 9, padding 3
            b.extend_from_slice(&9u16.to_le_bytes());
            b.extend_from_slice(&1u16.to_le_bytes());
            b.extend_from_slice(&[9, 0, 0, 0]);
        }
        if let Some((kind, bytes)) = filter {
            // if_filter: code 11, the kind byte then the filter, padded
            let len = 1 + bytes.len();
            b.extend_from_slice(&11u16.to_le_bytes());
            b.extend_from_slice(&(len as u16).to_le_bytes());
            b.push(kind);
            b.extend_from_slice(bytes);
            b.resize(b.len() + (4 - len % 4) % 4, 0);
        }
        if nanos || filter.is_some() {
            // opt_endofopt
            b.extend_from_slice(&[0, 0, 0, 0]);
        }
        let total = (b.len() + 4) as u32;
        b.extend_from_slice(&total.to_le_bytes());
        b[4..8].copy_from_slice(&total.to_le_bytes());
        self.w.write_all(&b)?;
        self.ifaces.push((snaplen, nanos));
        Ok((self.ifaces.len() - 1) as u32)
    }

    pub fn write_packet(&mut self, iface: u32, ts: Ts, data: &[u8]) -> io::Result<()> {
        self.write_packet_truncated(iface, ts, data, data.len() as u32)
    }

    /// Writes an EPB. Fails with `InvalidInput` for an unknown interface.
    pub fn write_packet_truncated(
        &mut self,
        iface: u32,
        ts: Ts,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let &(snaplen, nanos) = self
            .ifaces
            .get(iface as usize)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "unknown interface"))?;
        let cap = if snaplen == 0 {
            data.len()
        } else {
            data.len().min(snaplen as usize)
        };
        let pad = (4 - cap % 4) % 4;
        let total = (32 + cap + pad) as u32;
        let units = if nanos { ts } else { ts / 1_000 };
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&6u32.to_le_bytes());
        h[4..8].copy_from_slice(&total.to_le_bytes());
        h[8..12].copy_from_slice(&iface.to_le_bytes());
        h[12..16].copy_from_slice(&((units >> 32) as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(units as u32).to_le_bytes());
        h[20..24].copy_from_slice(&(cap as u32).to_le_bytes());
        h[24..28].copy_from_slice(&orig_len.max(cap as u32).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(&data[..cap])?;
        self.w.write_all(&[0u8; 3][..pad])?;
        self.w.write_all(&total.to_le_bytes())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

// ---------------------------------------------------------------------------
// checksums
// ---------------------------------------------------------------------------

fn sum16(mut acc: u64, data: &[u8]) -> u64 {
    let mut it = data.chunks_exact(2);
    for c in &mut it {
        acc += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [b] = it.remainder() {
        acc += (*b as u64) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u64 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let acc = sum16(sum16(0, &s.octets()), &d.octets());
            acc + proto as u64 + (len as u64 & 0xffff)
        }
        (s, d) => {
            let acc = sum16(sum16(0, &v6_octets(s)), &v6_octets(d));
            acc + (len as u64 >> 16) + (len as u64 & 0xffff) + proto as u64
        }
    }
}

fn v6_octets(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

// ---------------------------------------------------------------------------
// frame builder
// ---------------------------------------------------------------------------

/// The link layer a [`Frame`] is wrapped in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Ethernet II (LINKTYPE 1), optionally VLAN-tagged.
    Ethernet,
    /// Linux cooked capture v1 (LINKTYPE 113).
    Sll,
    /// Linux cooked capture v2 (LINKTYPE 276).
    Sll2,
    /// Raw IP (LINKTYPE 101; the same bytes serve 228/229 and 12/14).
    Raw,
    /// BSD loopback (LINKTYPE 0), AF in little-endian host order.
    Null,
    /// BSD loopback (LINKTYPE 0) written by a big-endian host.
    NullBigEndian,
    /// OpenBSD loopback (LINKTYPE 108), AF in network order.
    Loop,
}

impl Link {
    pub fn link_type(self) -> LinkType {
        match self {
            Link::Ethernet => LinkType::ETHERNET,
            Link::Sll => LinkType::LINUX_SLL,
            Link::Sll2 => LinkType::LINUX_SLL2,
            Link::Raw => LinkType::RAW,
            Link::Null | Link::NullBigEndian => LinkType::NULL,
            Link::Loop => LinkType::LOOP,
        }
    }
}

/// TPID of an 802.1Q tag.
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad (QinQ) service tag.
pub const TPID_8021AD: u16 = 0x88a8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L4<'a> {
    None,
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        options: &'a [u8],
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Icmp {
        icmp_type: u8,
        code: u8,
        rest: [u8; 4],
        quote: &'a [u8],
    },
    Proto(u8),
}

/// Fluent builder of one frame (see the module docs).
#[derive(Clone, Debug)]
pub struct Frame<'a> {
    link: Link,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    vlans: [(u16, u16); 4],
    nvlans: u8,
    eth_pad: bool,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    ttl: u8,
    ip_id: u16,
    df: bool,
    tos: u8,
    v4_options: &'a [u8],
    v6_ext: Vec<(u8, &'a [u8])>,
    l4: L4<'a>,
    payload: &'a [u8],
}

impl<'a> Frame<'a> {
    pub fn new(link: Link) -> Self {
        Frame {
            link,
            src_mac: [0x02, 0, 0, 0, 0, 0x01],
            dst_mac: [0x02, 0, 0, 0, 0, 0x02],
            vlans: [(0, 0); 4],
            nvlans: 0,
            eth_pad: false,
            src: None,
            dst: None,
            ttl: 64,
            ip_id: 1,
            df: false,
            tos: 0,
            v4_options: &[],
            v6_ext: Vec::new(),
            l4: L4::None,
            payload: &[],
        }
    }
    pub fn ethernet() -> Self {
        Frame::new(Link::Ethernet)
    }
    pub fn sll() -> Self {
        Frame::new(Link::Sll)
    }
    pub fn sll2() -> Self {
        Frame::new(Link::Sll2)
    }
    pub fn raw() -> Self {
        Frame::new(Link::Raw)
    }
    pub fn null() -> Self {
        Frame::new(Link::Null)
    }
    pub fn loopback() -> Self {
        Frame::new(Link::Loop)
    }

    /// The LINKTYPE to write this frame with.
    pub fn link_type(&self) -> LinkType {
        self.link.link_type()
    }

    /// Source and destination MAC (Ethernet; the source also goes in SLL).
    pub fn macs(mut self, src: [u8; 6], dst: [u8; 6]) -> Self {
        self.src_mac = src;
        self.dst_mac = dst;
        self
    }

    /// Adds an 802.1Q tag (outermost first). At most 4 tags; more are ignored.
    pub fn vlan(self, id: u16) -> Self {
        self.vlan_tpid(TPID_8021Q, id)
    }

    /// Adds a tag with an explicit TPID (0x88a8, 0x9100, ...).
    pub fn vlan_tpid(mut self, tpid: u16, id: u16) -> Self {
        if (self.nvlans as usize) < self.vlans.len() {
            self.vlans[self.nvlans as usize] = (tpid, id & 0x0fff);
            self.nvlans += 1;
        }
        self
    }

    /// 802.1ad service tag `outer` around an 802.1Q tag `inner`.
    pub fn qinq(self, outer: u16, inner: u16) -> Self {
        self.vlan_tpid(TPID_8021AD, outer).vlan(inner)
    }

    /// Pads Ethernet frames to the 60-byte minimum (a trailer after the IP
    /// datagram, as NICs do).
    pub fn eth_pad(mut self, on: bool) -> Self {
        self.eth_pad = on;
        self
    }

    pub fn ipv4(self, src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        self.ip(IpAddr::V4(src), IpAddr::V4(dst))
    }

    pub fn ipv6(self, src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        self.ip(IpAddr::V6(src), IpAddr::V6(dst))
    }

    /// Both addresses must be of one family.
    pub fn ip(mut self, src: IpAddr, dst: IpAddr) -> Self {
        assert_eq!(src.is_ipv4(), dst.is_ipv4(), "mixed address families");
        self.src = Some(src);
        self.dst = Some(dst);
        self
    }

    /// TTL (IPv4) or hop limit (IPv6).
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    /// IPv4 identification; also the IPv6 fragment identification.
    pub fn ip_id(mut self, id: u16) -> Self {
        self.ip_id = id;
        self
    }

    pub fn df(mut self, df: bool) -> Self {
        self.df = df;
        self
    }

    pub fn tos(mut self, tos: u8) -> Self {
        self.tos = tos;
        self
    }

    /// Raw IPv4 options, padded with EOL to a multiple of 4 (at most 40 bytes
    /// are used).
    pub fn ipv4_options(mut self, opts: &'a [u8]) -> Self {
        self.v4_options = &opts[..opts.len().min(40)];
        self
    }

    /// Appends an IPv6 extension header of type `kind` (0 hop-by-hop, 43
    /// routing, 60 destination options) whose body (after next-header and
    /// length) is `body`, zero-padded to a multiple of 8 bytes in all.
    pub fn ipv6_ext(mut self, kind: u8, body: &'a [u8]) -> Self {
        self.v6_ext.push((kind, body));
        self
    }

    pub fn tcp(mut self, sport: u16, dport: u16) -> Self {
        self.l4 = L4::Tcp {
            sport,
            dport,
            seq: 0,
            ack: 0,
            flags: tcp_flags::ACK,
            window: 65535,
            options: &[],
        };
        self
    }

    fn with_tcp(
        mut self,
        f: impl FnOnce(&mut u32, &mut u32, &mut u8, &mut u16, &mut &'a [u8]),
    ) -> Self {
        if let L4::Tcp {
            seq,
            ack,
            flags,
            window,
            options,
            ..
        } = &mut self.l4
        {
            f(seq, ack, flags, window, options);
        }
        self
    }

    /// TCP flags (default ACK), see [`tcp_flags`].
    pub fn flags(self, flags: u8) -> Self {
        self.with_tcp(|_, _, f, _, _| *f = flags)
    }
    pub fn seq(self, seq: u32) -> Self {
        self.with_tcp(|s, _, _, _, _| *s = seq)
    }
    /// The acknowledgment number (flags are set separately).
    pub fn ack(self, ack: u32) -> Self {
        self.with_tcp(|_, a, _, _, _| *a = ack)
    }
    pub fn window(self, window: u16) -> Self {
        self.with_tcp(|_, _, _, w, _| *w = window)
    }
    /// Raw TCP options, padded with EOL to a multiple of 4 (max 40 bytes).
    pub fn tcp_options(self, opts: &'a [u8]) -> Self {
        let opts = &opts[..opts.len().min(40)];
        self.with_tcp(|_, _, _, _, o| *o = opts)
    }

    pub fn udp(mut self, sport: u16, dport: u16) -> Self {
        self.l4 = L4::Udp { sport, dport };
        self
    }

    /// ICMPv4 or ICMPv6 (by address family) message; body = `quote` then
    /// the payload.
    pub fn icmp(mut self, icmp_type: u8, code: u8, rest: [u8; 4], quote: &'a [u8]) -> Self {
        self.l4 = L4::Icmp {
            icmp_type,
            code,
            rest,
            quote,
        };
        self
    }

    /// Destination unreachable (ICMPv4 type 3 or ICMPv6 type 1, by the
    /// address family set before) quoting `original` (an IP datagram; pass a
    /// prefix to quote less, e.g. header + 8 bytes).
    pub fn icmp_unreachable(self, code: u8, original: &'a [u8]) -> Self {
        let t = if self.is_v6() { 1 } else { 3 };
        self.icmp(t, code, [0; 4], original)
    }

    /// Any ICMP error type quoting `original`.
    pub fn icmp_error(self, icmp_type: u8, code: u8, original: &'a [u8]) -> Self {
        self.icmp(icmp_type, code, [0; 4], original)
    }

    /// Another IP protocol, carrying the payload as is.
    pub fn ip_proto(mut self, proto: u8) -> Self {
        self.l4 = L4::Proto(proto);
        self
    }

    pub fn payload(mut self, payload: &'a [u8]) -> Self {
        self.payload = payload;
        self
    }

    fn is_v6(&self) -> bool {
        matches!(self.src, Some(IpAddr::V6(_)))
    }

    fn addrs(&self) -> (IpAddr, IpAddr) {
        let v4 = |a| IpAddr::V4(Ipv4Addr::new(10, 0, 0, a));
        (self.src.unwrap_or(v4(1)), self.dst.unwrap_or(v4(2)))
    }

    fn proto(&self) -> u8 {
        match self.l4 {
            L4::None => 253,
            L4::Tcp { .. } => PROTO_TCP,
            L4::Udp { .. } => PROTO_UDP,
            L4::Icmp { .. } => {
                if self.is_v6() {
                    PROTO_ICMPV6
                } else {
                    PROTO_ICMP
                }
            }
            L4::Proto(p) => p,
        }
    }

    /// Appends the transport header and payload with a correct checksum.
    fn build_l4(&self, out: &mut Vec<u8>) {
        let (src, dst) = self.addrs();
        let start = out.len();
        let proto = self.proto();
        let csum_at = match self.l4 {
            L4::None => {
                out.extend_from_slice(self.payload);
                return;
            }
            L4::Proto(_) => {
                out.extend_from_slice(self.payload);
                return;
            }
            L4::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                window,
                options,
            } => {
                let olen = options.len().div_ceil(4) * 4;
                out.extend_from_slice(&sport.to_be_bytes());
                out.extend_from_slice(&dport.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&ack.to_be_bytes());
                out.push((((20 + olen) / 4) as u8) << 4);
                out.push(flags);
                out.extend_from_slice(&window.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]);
                out.extend_from_slice(options);
                out.resize(start + 20 + olen, 0);
                out.extend_from_slice(self.payload);
                start + 16
            }
            L4::Udp { sport, dport } => {
                let len = (8 + self.payload.len()) as u16;
                out.extend_from_slice(&sport.to_be_bytes());
                out.extend_from_slice(&dport.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(self.payload);
                start + 6
            }
            L4::Icmp {
                icmp_type,
                code,
                rest,
                quote,
            } => {
                out.push(icmp_type);
                out.push(code);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&rest);
                out.extend_from_slice(quote);
                out.extend_from_slice(self.payload);
                start + 2
            }
        };
        let seg = &out[start..];
        let acc = if proto == PROTO_ICMP {
            0
        } else {
            pseudo_sum(src, dst, proto, seg.len())
        };
        let mut c = fold(sum16(acc, seg));
        if proto == PROTO_UDP && c == 0 {
            c = 0xffff;
        }
        out[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    }

    /// Appends the IP datagram (no link header) to `out`.
    pub fn build_ip_into(&self, out: &mut Vec<u8>) {
        let (src, dst) = self.addrs();
        let start = out.len();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let olen = self.v4_options.len().div_ceil(4) * 4;
                let hlen = 20 + olen;
                out.push(0x40 | (hlen / 4) as u8);
                out.push(self.tos);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&self.ip_id.to_be_bytes());
                out.extend_from_slice(&(if self.df { 0x4000u16 } else { 0 }).to_be_bytes());
                out.push(self.ttl);
                out.push(self.proto());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
                out.extend_from_slice(self.v4_options);
                out.resize(start + hlen, 0);
                self.build_l4(out);
                let total = (out.len() - start).min(65535) as u16;
                out[start + 2..start + 4].copy_from_slice(&total.to_be_bytes());
                let c = fold(sum16(0, &out[start..start + hlen]));
                out[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
            }
            (s, d) => {
                out.push(0x60 | (self.tos >> 4));
                out.push(self.tos << 4);
                out.extend_from_slice(&[0, 0, 0, 0]);
                out.push(self.v6_ext.first().map_or(self.proto(), |e| e.0));
                out.push(self.ttl);
                out.extend_from_slice(&v6_octets(s));
                out.extend_from_slice(&v6_octets(d));
                for (i, (_, body)) in self.v6_ext.iter().enumerate() {
                    let next = self.v6_ext.get(i + 1).map_or(self.proto(), |e| e.0);
                    let len = (2 + body.len()).div_ceil(8) * 8;
                    let h = out.len();
                    out.push(next);
                    out.push((len / 8 - 1) as u8);
                    out.extend_from_slice(body);
                    out.resize(h + len, 0);
                }
                self.build_l4(out);
                let plen = (out.len() - start - 40).min(65535) as u16;
                out[start + 4..start + 6].copy_from_slice(&plen.to_be_bytes());
            }
        }
    }

    /// The IP datagram alone (e.g. to quote in an ICMP error).
    pub fn build_ip(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64 + self.payload.len());
        self.build_ip_into(&mut v);
        v
    }

    /// Appends the link-layer header for an IP datagram of version `v6`.
    fn link_header(&self, out: &mut Vec<u8>, v6: bool) {
        let et: u16 = if v6 { 0x86dd } else { 0x0800 };
        let tags = &self.vlans[..self.nvlans as usize];
        // Ethertype sequence after the header: first type, then per tag TCI
        // and next type.
        let write_tags = |out: &mut Vec<u8>| {
            for (i, &(_, tci)) in tags.iter().enumerate() {
                out.extend_from_slice(&tci.to_be_bytes());
                let next = tags.get(i + 1).map_or(et, |t| t.0);
                out.extend_from_slice(&next.to_be_bytes());
            }
        };
        let first = tags.first().map_or(et, |t| t.0);
        match self.link {
            Link::Ethernet => {
                out.extend_from_slice(&self.dst_mac);
                out.extend_from_slice(&self.src_mac);
                out.extend_from_slice(&first.to_be_bytes());
                write_tags(out);
            }
            Link::Sll => {
                out.extend_from_slice(&0u16.to_be_bytes()); // to us
                out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                out.extend_from_slice(&6u16.to_be_bytes());
                out.extend_from_slice(&self.src_mac);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&first.to_be_bytes());
                write_tags(out);
            }
            Link::Sll2 => {
                out.extend_from_slice(&first.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&1u32.to_be_bytes()); // ifindex
                out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                out.push(0); // to us
                out.push(6);
                out.extend_from_slice(&self.src_mac);
                out.extend_from_slice(&[0, 0]);
                write_tags(out);
            }
            Link::Raw => {}
            Link::Null => out.extend_from_slice(&(if v6 { 30u32 } else { 2 }).to_le_bytes()),
            Link::NullBigEndian | Link::Loop => {
                out.extend_from_slice(&(if v6 { 30u32 } else { 2 }).to_be_bytes())
            }
        }
    }

    fn pad(&self, out: &mut Vec<u8>, start: usize) {
        if self.link == Link::Ethernet && self.eth_pad && out.len() - start < 60 {
            out.resize(start + 60, 0);
        }
    }

    /// Appends the whole frame to `out` (reuse `out` to avoid allocating).
    pub fn build_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        self.link_header(out, self.is_v6());
        self.build_ip_into(out);
        self.pad(out, start);
    }

    pub fn build(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(96 + self.payload.len());
        self.build_into(&mut v);
        v
    }

    /// Wraps an arbitrary IP datagram in this builder's link layer (the
    /// version nibble of `ip` picks the ethertype / AF).
    pub fn wrap(&self, ip: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(32 + ip.len());
        self.link_header(&mut v, ip.first().is_some_and(|b| b >> 4 == 6));
        v.extend_from_slice(ip);
        self.pad(&mut v, 0);
        v
    }

    /// The datagram split into `n` fragments (each a full frame, in order).
    /// Fragment data sizes are multiples of 8 except the last; IPv6 uses a
    /// fragment header with identification `ip_id`. `n` is clamped so no
    /// fragment is empty.
    pub fn build_fragments(&self, n: usize) -> Vec<Vec<u8>> {
        let dgram = self.build_ip();
        let (_, unfrag) = fragmentable(&dgram);
        let total = dgram.len() - unfrag;
        let n = n.max(1);
        let chunk = (total.div_ceil(n).div_ceil(8) * 8).max(8);
        let mut out = Vec::new();
        let mut off = 0;
        loop {
            let len = chunk.min(total - off);
            let more = off + len < total;
            let ip = if self.is_v6() {
                ipv6_fragment(&dgram, off, len, more, self.ip_id as u32)
            } else {
                ipv4_fragment(&dgram, off, len, more)
            };
            out.push(self.wrap(&ip));
            off += len;
            if !more {
                break;
            }
        }
        out
    }
}

/// (is_v6, length of the unfragmentable part) of an unfragmented datagram.
fn fragmentable(d: &[u8]) -> (bool, usize) {
    if d.first().is_some_and(|b| b >> 4 == 6) {
        // Fixed header plus leading hop-by-hop / routing headers.
        let mut at = 40;
        let mut nh = d.get(6).copied().unwrap_or(59);
        while matches!(nh, 0 | 43) && at + 8 <= d.len() {
            nh = d[at];
            at += (d[at + 1] as usize + 1) * 8;
        }
        (true, at.min(d.len()))
    } else {
        (
            false,
            ((d.first().copied().unwrap_or(0x45) & 0x0f) as usize * 4).min(d.len()),
        )
    }
}

/// One IPv4 fragment of an unfragmented datagram: data bytes
/// `[offset, offset + len)` of its payload (clamped to what exists; `offset`
/// should be a multiple of 8, lower bits are lost in the header), with the
/// more-fragments flag `more`. Returns the raw IP bytes.
pub fn ipv4_fragment(datagram: &[u8], offset: usize, len: usize, more: bool) -> Vec<u8> {
    let (_, hlen) = fragmentable(datagram);
    let payload = &datagram[hlen..];
    let a = offset.min(payload.len());
    let b = offset.saturating_add(len).min(payload.len());
    let mut v = Vec::with_capacity(hlen + b - a);
    v.extend_from_slice(&datagram[..hlen]);
    v.extend_from_slice(&payload[a..b]);
    let total = (v.len().min(65535)) as u16;
    v[2..4].copy_from_slice(&total.to_be_bytes());
    let df = u16::from_be_bytes([v[6], v[7]]) & 0x4000;
    let field = df | if more { 0x2000 } else { 0 } | ((offset / 8) as u16 & 0x1fff);
    v[6..8].copy_from_slice(&field.to_be_bytes());
    v[10..12].copy_from_slice(&[0, 0]);
    let c = fold(sum16(0, &v[..hlen]));
    v[10..12].copy_from_slice(&c.to_be_bytes());
    v
}

/// One IPv6 fragment of an unfragmented datagram (see [`ipv4_fragment`]):
/// a fragment header with `id` is inserted after the unfragmentable part.
pub fn ipv6_fragment(datagram: &[u8], offset: usize, len: usize, more: bool, id: u32) -> Vec<u8> {
    let (_, ulen) = fragmentable(datagram);
    let payload = &datagram[ulen..];
    let a = offset.min(payload.len());
    let b = offset.saturating_add(len).min(payload.len());
    let mut v = Vec::with_capacity(ulen + 8 + b - a);
    v.extend_from_slice(&datagram[..ulen]);
    // Re-point the last next-header field of the unfragmentable part at 44.
    let mut nh_at = 6;
    let mut at = 40;
    while at < ulen {
        nh_at = at;
        at += (v[at + 1] as usize + 1) * 8;
    }
    let inner = v[nh_at];
    v[nh_at] = 44;
    let fo = (((offset / 8) as u16) << 3) | more as u16;
    v.push(inner);
    v.push(0);
    v.extend_from_slice(&fo.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&payload[a..b]);
    let plen = ((v.len() - 40).min(65535)) as u16;
    v[4..6].copy_from_slice(&plen.to_be_bytes());
    v
}

// ---------------------------------------------------------------------------
// TCP conversations
// ---------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;
    use crate::packet::{decode, Decoded, Transport};

    const A: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 7);
    const B: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 6);

    fn a6() -> Ipv6Addr {
        "2001:db8:1::7".parse().unwrap()
    }
    fn b6() -> Ipv6Addr {
        "2001:db8:1::6".parse().unwrap()
    }

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("exflow-synth-{}-{name}", std::process::id()))
    }

    fn have_tshark() -> bool {
        Command::new("tshark")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// One line per frame, fields tab-separated.
    fn tshark(path: &Path, fields: &[&str]) -> Vec<Vec<String>> {
        let mut cmd = Command::new("tshark");
        cmd.arg("-r").arg(path);
        for p in [
            "ip.check_checksum:TRUE",
            "tcp.check_checksum:TRUE",
            "udp.check_checksum:TRUE",
        ] {
            cmd.args(["-o", p]);
        }
        cmd.args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]);
        for f in fields {
            cmd.args(["-e", f]);
        }
        let out = cmd.output().expect("tshark runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// Verifies every checksum in an IP datagram with etherparse.
    fn etherparse_checksums_ok(ip: &[u8]) {
        use etherparse::{NetSlice, SlicedPacket, TransportSlice};
        let s = SlicedPacket::from_ip(ip).expect("etherparse slices it");
        match s.net.expect("net layer") {
            NetSlice::Ipv4(v4) => {
                let h = v4.header().to_header();
                assert_eq!(h.calc_header_checksum(), h.header_checksum);
                match s.transport.expect("transport") {
                    TransportSlice::Tcp(t) => assert_eq!(
                        t.calc_checksum_ipv4(h.source, h.destination).unwrap(),
                        t.checksum()
                    ),
                    TransportSlice::Udp(u) => assert_eq!(
                        u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap(),
                        u.checksum()
                    ),
                    TransportSlice::Icmpv4(i) => {
                        assert_eq!(i.icmp_type().calc_checksum(i.payload()), i.checksum())
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            NetSlice::Ipv6(v6) => {
                let h = v6.header().to_header();
                match s.transport.expect("transport") {
                    TransportSlice::Tcp(t) => {
                        assert_eq!(
                            t.calc_checksum_ipv6(h.source, h.destination).unwrap(),
                            t.checksum()
                        )
                    }
                    TransportSlice::Udp(u) => assert_eq!(
                        u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap(),
                        u.checksum()
                    ),
                    TransportSlice::Icmpv6(i) => assert_eq!(
                        i.icmp_type()
                            .calc_checksum(h.source, h.destination, i.payload())
                            .unwrap(),
                        i.checksum()
                    ),
                    other => panic!("unexpected {other:?}"),
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn sample_frames(link: Link) -> Vec<Vec<u8>> {
        let orig4 = Frame::raw().ipv4(A, B).tcp(1025, 135).seq(9).build_ip();
        let orig6 = Frame::raw().ipv6(a6(), b6()).udp(1025, 53).build_ip();
        vec![
            Frame::new(link)
                .ipv4(A, B)
                .tcp(1025, 135)
                .flags(tcp_flags::SYN)
                .seq(1)
                .build(),
            Frame::new(link)
                .ipv4(A, B)
                .ipv4_options(&[1, 1, 1, 0])
                .ttl(3)
                .ip_id(777)
                .df(true)
                .tcp(1025, 135)
                .seq(2)
                .ack(3)
                .tcp_options(&[2, 4, 5, 0xb4])
                .payload(b"odd length payload!")
                .build(),
            Frame::new(link)
                .ipv4(A, B)
                .udp(5000, 53)
                .payload(b"abc")
                .build(),
            Frame::new(link)
                .ipv4(B, A)
                .icmp_unreachable(3, &orig4[..28])
                .build(),
            Frame::new(link)
                .ipv6(a6(), b6())
                .tcp(1025, 443)
                .payload(b"v6 data")
                .build(),
            Frame::new(link)
                .ipv6(a6(), b6())
                .ipv6_ext(0, &[1, 4, 0, 0, 0, 0])
                .ipv6_ext(60, &[])
                .udp(5000, 53)
                .payload(b"q")
                .build(),
            Frame::new(link)
                .ipv6(b6(), a6())
                .icmp_unreachable(4, &orig6)
                .build(),
        ]
    }

    #[test]
    fn every_builder_has_valid_checksums_per_etherparse() {
        for link in [
            Link::Ethernet,
            Link::Sll,
            Link::Sll2,
            Link::Raw,
            Link::Null,
            Link::NullBigEndian,
            Link::Loop,
        ] {
            for f in sample_frames(link) {
                // Strip the link layer with our decoder's view of it.
                let hdr = match link {
                    Link::Ethernet => 14,
                    Link::Sll => 16,
                    Link::Sll2 => 20,
                    Link::Raw => 0,
                    _ => 4,
                };
                etherparse_checksums_ok(&f[hdr..]);
                assert!(matches!(
                    decode(link.link_type(), 0, f.len() as u32, &f),
                    Ok(Decoded::Packet(_))
                ));
            }
        }
        let f = Frame::ethernet().vlan(5).ipv4(A, B).udp(1, 2).build();
        etherparse_checksums_ok(&f[18..]);
        let f = Frame::ethernet()
            .qinq(5, 6)
            .ipv6(a6(), b6())
            .tcp(1, 2)
            .build();
        etherparse_checksums_ok(&f[22..]);
        // etherparse agrees about VLAN framing.
        let s = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        assert_eq!(s.vlan_ids().len(), 2);
    }

    #[test]
    fn pcap_every_link_type_read_back_by_tshark() {
        if !have_tshark() {
            eprintln!("tshark not installed; skipping");
            return;
        }
        for (i, link) in [
            Link::Ethernet,
            Link::Sll,
            Link::Sll2,
            Link::Raw,
            Link::Null,
            Link::Loop,
        ]
        .into_iter()
        .enumerate()
        {
            let path = tmp(&format!("link{i}.pcap"));
            let mut w = PcapWriter::create(&path, link.link_type(), 65535, i % 2 == 0).unwrap();
            let frames = sample_frames(link);
            for (n, f) in frames.iter().enumerate() {
                w.write_packet(1_700_000_000_000_000_000 + n as u64 * 1000, f)
                    .unwrap();
            }
            assert_eq!(w.packets(), frames.len() as u64);
            w.into_inner().unwrap();
            let rows = tshark(
                &path,
                &[
                    "frame.len",
                    "ip.checksum.status",
                    "tcp.checksum.status",
                    "udp.checksum.status",
                    "icmp.checksum.status",
                    "icmpv6.checksum.status",
                    "tcp.srcport",
                    "udp.srcport",
                    "ip.ttl",
                    "icmp.type",
                    "icmpv6.type",
                ],
            );
            assert_eq!(rows.len(), frames.len(), "{link:?}");
            for (row, f) in rows.iter().zip(&frames) {
                assert_eq!(row[0], f.len().to_string(), "{link:?} {row:?}");
                // The first checksum field present for each layer is good (1).
                for c in &row[1..6] {
                    assert!(c.is_empty() || c == "1", "{link:?}: bad checksum {row:?}");
                }
            }
            assert_eq!(rows[0][6], "1025");
            assert_eq!(rows[1][8], "3");
            assert_eq!(rows[2][7], "5000");
            assert_eq!(rows[3][9], "3");
            assert_eq!(rows[6][10], "1");
            std::fs::remove_file(&path).ok();
        }
    }

    #[test]
    fn pcap_truncation_vlans_and_timestamps_via_tshark() {
        if !have_tshark() {
            return;
        }
        let path = tmp("trunc.pcap");
        let mut w = PcapWriter::create(&path, LinkType::ETHERNET, 64, true).unwrap();
        let big = Frame::ethernet()
            .vlan(10)
            .ipv4(A, B)
            .udp(1, 2)
            .payload(&[0; 200])
            .build();
        w.write_packet(1_000_000_001_123_456_789, &big).unwrap();
        let qinq = Frame::ethernet().qinq(100, 20).ipv4(A, B).tcp(1, 2).build();
        w.write_packet_truncated(1_000_000_002_000_000_000, &qinq[..40], 1500)
            .unwrap();
        w.into_inner().unwrap();
        let rows = tshark(
            &path,
            &[
                "frame.len",
                "frame.cap_len",
                "vlan.id",
                "frame.time_epoch",
                "ieee8021ad.id",
            ],
        );
        assert_eq!(rows[0][0], big.len().to_string());
        assert_eq!(rows[0][1], "64");
        assert_eq!(rows[0][2], "10");
        assert!(
            rows[0][3].starts_with("1000000001.123456789"),
            "{:?}",
            rows[0]
        );
        assert_eq!(rows[1][0], "1500");
        assert_eq!(rows[1][1], "40");
        // The 802.1ad service tag is dissected separately from the C-tag.
        assert_eq!(rows[1][2], "20");
        assert_eq!(rows[1][4], "100");
        std::fs::remove_file(&path).ok();

        // Microsecond magic drops the nanoseconds.
        let path = tmp("micro.pcap");
        let mut w = PcapWriter::create(&path, LinkType::RAW, 65535, false).unwrap();
        w.write_packet(5_123_456_789, &Frame::raw().ipv4(A, B).udp(1, 2).build())
            .unwrap();
        w.into_inner().unwrap();
        let rows = tshark(&path, &["frame.time_epoch"]);
        assert!(rows[0][0].starts_with("5.123456000"), "{rows:?}");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn pcapng_interfaces_via_tshark() {
        let mut buf = Vec::new();
        {
            let mut w = PcapngWriter::new(&mut buf).unwrap();
            let eth = w.add_interface(LinkType::ETHERNET, 65535, true).unwrap();
            let raw = w.add_interface(LinkType::RAW, 100, false).unwrap();
            w.write_packet(
                eth,
                1_000_000_000_000_000_007,
                &Frame::ethernet().ipv4(A, B).tcp(1, 2).build(),
            )
            .unwrap();
            w.write_packet(
                raw,
                2_000_000_000_000_001_000,
                &Frame::raw()
                    .ipv6(a6(), b6())
                    .udp(3, 4)
                    .payload(&[9; 300])
                    .build(),
            )
            .unwrap();
            w.write_packet_truncated(
                raw,
                3_000_000_000_000_000_000,
                &Frame::raw().ipv4(A, B).udp(5, 6).payload(b"x").build(),
                999,
            )
            .unwrap();
            assert!(w.write_packet(7, 0, &[]).is_err());
            w.flush().unwrap();
        }
        assert_eq!(buf.len() % 4, 0);
        if !have_tshark() {
            return;
        }
        let path = tmp("x.pcapng");
        std::fs::write(&path, &buf).unwrap();
        let rows = tshark(
            &path,
            &[
                "frame.interface_id",
                "frame.time_epoch",
                "frame.len",
                "frame.cap_len",
                "tcp.srcport",
                "udp.srcport",
            ],
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0][0], "0");
        assert!(rows[0][1].starts_with("1000000000.000000007"), "{rows:?}");
        assert_eq!(rows[0][4], "1");
        assert_eq!(rows[1][0], "1");
        assert!(rows[1][1].starts_with("2000000000.000001"), "{rows:?}");
        assert_eq!(rows[1][3], "100");
        assert_eq!(rows[2][2], "999");
        assert_eq!(rows[2][5], "5");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn fragments_reassemble_in_tshark() {
        if !have_tshark() {
            return;
        }
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let path = tmp("frag.pcap");
        let mut w = PcapWriter::create(&path, LinkType::ETHERNET, 65535, false).unwrap();
        for (i, f) in Frame::ethernet()
            .ipv4(A, B)
            .ip_id(99)
            .udp(1000, 2000)
            .payload(&data)
            .build_fragments(3)
            .iter()
            .enumerate()
        {
            w.write_packet(i as u64 * 1000, f).unwrap();
        }
        for (i, f) in Frame::ethernet()
            .ipv6(a6(), b6())
            .ip_id(99)
            .udp(1000, 2000)
            .payload(&data)
            .build_fragments(3)
            .iter()
            .enumerate()
        {
            w.write_packet(10_000 + i as u64 * 1000, f).unwrap();
        }
        w.into_inner().unwrap();
        let rows = tshark(&path, &["udp.length", "udp.checksum.status"]);
        let full: Vec<_> = rows.iter().filter(|r| !r[0].is_empty()).collect();
        assert_eq!(full.len(), 2, "{rows:?}");
        for r in full {
            assert_eq!(r[0], "3008");
            assert_eq!(r[1], "1");
        }
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn tcp_conversation_tracks_sequence_numbers() {
        let mut c = TcpConversation::with_isn(A.into(), 50000, B.into(), 445, 100, 9000);
        let seg = |f: &[u8]| match decode(LinkType::ETHERNET, 0, 0, f).unwrap() {
            Decoded::Packet(p) => match p.transport {
                Transport::Tcp(t) => (p.ip.src, t.seq, t.ack, t.flags, t.payload.len),
                _ => panic!(),
            },
            _ => panic!(),
        };
        use tcp_flags::*;
        let (ca, sa) = (IpAddr::V4(A), IpAddr::V4(B));
        assert_eq!(seg(&c.syn()), (ca, 100, 0, SYN, 0));
        assert_eq!(seg(&c.syn_ack()), (sa, 9000, 101, SYN | ACK, 0));
        assert_eq!(seg(&c.ack()), (ca, 101, 9001, ACK, 0));
        assert_eq!(seg(&c.data_c2s(b"hello")), (ca, 101, 9001, PSH | ACK, 5));
        assert_eq!(seg(&c.data_s2c(b"hi")), (sa, 9001, 106, PSH | ACK, 2));
        assert_eq!(seg(&c.ack()), (ca, 106, 9003, ACK, 0));
        assert_eq!(seg(&c.fin_c()), (ca, 106, 9003, FIN | ACK, 0));
        assert_eq!(seg(&c.ack_s()), (sa, 9003, 107, ACK, 0));
        assert_eq!(seg(&c.fin_s()), (sa, 9003, 107, FIN | ACK, 0));
        assert_eq!(seg(&c.ack()), (ca, 107, 9004, ACK, 0));
        assert_eq!(seg(&c.rst_c()), (ca, 107, 9004, RST | ACK, 0));
        assert_eq!(seg(&c.rst_s()), (sa, 9004, 107, RST | ACK, 0));
        // A forged reset with a different TTL, via the customizable builder.
        let forged = c.s2c().ttl(250).flags(RST).build();
        let p = decode(LinkType::ETHERNET, 0, 0, &forged)
            .unwrap()
            .packet()
            .unwrap();
        assert_eq!(p.ip.ttl, 250);
        // Sequence numbers wrap.
        let mut w =
            TcpConversation::with_isn(A.into(), 1, B.into(), 2, u32::MAX, 0).link(Link::Raw);
        w.syn();
        assert_eq!(seg_raw(&w.data_c2s(b"x")), 0);
        assert_eq!(w.next_c, 1);
    }

    fn seg_raw(f: &[u8]) -> u32 {
        match decode(LinkType::RAW, 0, 0, f)
            .unwrap()
            .packet()
            .unwrap()
            .transport
        {
            Transport::Tcp(t) => t.seq,
            _ => panic!(),
        }
    }

    #[test]
    fn build_into_reuses_the_buffer() {
        let mut buf = Vec::with_capacity(256);
        let f = Frame::ethernet().ipv4(A, B).udp(1, 2).payload(b"abc");
        f.build_into(&mut buf);
        let first = buf.clone();
        buf.clear();
        f.build_into(&mut buf);
        assert_eq!(buf, first);
        assert_eq!(first, f.build());
        // wrap() around a built datagram equals build().
        assert_eq!(Frame::ethernet().wrap(&f.build_ip()), first);
    }
}
