//! The frame builder: link layers, IPv4/IPv6, TCP/UDP/ICMP, fragments.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::tcp_flags;

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

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
    /// Every link layer the builder makes.
    pub const ALL: [Link; 7] = [
        Link::Ethernet,
        Link::Sll,
        Link::Sll2,
        Link::Raw,
        Link::Null,
        Link::NullBigEndian,
        Link::Loop,
    ];

    /// The LINKTYPE number to write frames of this link with.
    pub fn link_type(self) -> u16 {
        match self {
            Link::Ethernet => 1,
            Link::Sll => 113,
            Link::Sll2 => 276,
            Link::Raw => 101,
            Link::Null | Link::NullBigEndian => 0,
            Link::Loop => 108,
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
    l4_checksum: bool,
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
            l4_checksum: true,
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

    /// The LINKTYPE number to write this frame with.
    pub fn link_type(&self) -> u16 {
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

    /// TCP and UDP checksums: computed (the default), or left zero (UDP:
    /// "no checksum") as the benchmark captures do — exflow, like tshark
    /// by default, does not check them. ICMP checksums are always computed.
    pub fn transport_checksum(mut self, on: bool) -> Self {
        self.l4_checksum = on;
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
        if !self.l4_checksum && matches!(self.l4, L4::Tcp { .. } | L4::Udp { .. }) {
            return;
        }
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

/// One frame of every shape the builder makes, in `link`: IPv4 TCP SYN,
/// IPv4 with IP and TCP options and an odd-length payload, UDP, an ICMP
/// error quoting a TCP header, IPv6 TCP, IPv6 with extension headers, an
/// ICMPv6 error. The kit's checks and exflow's decoder tests read them.
pub fn samples(link: Link) -> Vec<Vec<u8>> {
    const A: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 7);
    const B: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 6);
    let a6 = || Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);
    let b6 = || Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 6);
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
