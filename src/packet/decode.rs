//! The decoder proper: hand-rolled bounds-checked slicing (no allocation, no
//! panics). Every read goes through `get`/`be16`/`be32` style helpers that
//! return `Option`, so hostile input can only produce a [`DecodeError`].
//!
//! Why not etherparse's `SlicedPacket`: it rejects an IPv4 packet whose
//! total length exceeds the captured bytes (we must decode snaplen-cut
//! frames as far as possible and record what is missing), it does not
//! return the unfragmentable part of an IPv6 fragment, and the hot path
//! needs only a handful of fields. etherparse is still used by the tests (the
//! decoder's and those of the test kit's frames) to cross-check these results.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::LinkType;
use super::{
    DecodeError, FiveTuple, IcmpMeta, IpMeta, Packet, PayloadRef, QuotedFlow, TcpMeta, Transport,
    UdpMeta, PROTO_TCP, PROTO_UDP,
};
use crate::Ts;

/// IP protocol number of ICMPv4.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// Most VLAN / QinQ tags walked before giving up (the frame is then `NotIp`).
pub const MAX_VLAN_TAGS: usize = 8;
/// Most IPv6 extension headers walked before giving up (`BadIpv6Extension`).
pub const MAX_IPV6_EXT_HEADERS: usize = 16;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

/// The result of decoding one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A complete (unfragmented) IP packet.
    Packet(Packet),
    /// An IP fragment: feed it to a [`super::defrag::Defragmenter`], then
    /// decode the reassembled datagram with [`decode_ip`].
    Fragment(Fragment<'a>),
}

impl<'a> Decoded<'a> {
    /// The packet, if this is not a fragment.
    pub fn packet(self) -> Option<Packet> {
        match self {
            Decoded::Packet(p) => Some(p),
            Decoded::Fragment(_) => None,
        }
    }

    /// The fragment, if this is one.
    pub fn fragment(self) -> Option<Fragment<'a>> {
        match self {
            Decoded::Packet(_) => None,
            Decoded::Fragment(f) => Some(f),
        }
    }
}

/// One IPv4 fragment, or one IPv6 packet carrying a (non-atomic) fragment
/// header. Borrows the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub ts: Ts,
    /// Bytes of the frame on the wire (pcap orig_len).
    pub wire_len: u32,
    pub v6: bool,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 identification (zero-extended) or IPv6 fragment identification.
    pub id: u32,
    /// IPv4 protocol, or the IPv6 fragment header's next header.
    pub proto: u8,
    /// Offset of this fragment's data in the reassembled payload, in bytes.
    pub offset: u32,
    /// More-fragments flag.
    pub more: bool,
    /// The unfragmentable part: the IPv4 header with its options, or the
    /// IPv6 header plus the extension headers before the fragment header.
    pub header: &'a [u8],
    /// Offset inside `header` of the next-header byte that names the fragment
    /// header (IPv6 only; 6 when the fragment header follows the fixed
    /// header). Reassembly rewrites it to `proto`.
    pub next_header_at: u32,
    /// The fragment's data present in the capture.
    pub data: &'a [u8],
    /// Fragment data bytes announced by the IP header but cut by the snaplen.
    pub missing: u32,
}

/// Decodes one captured frame of link type `link`. `wire_len` is the frame's
/// length on the wire, copied into the result. Payload offsets are relative
/// to `frame`.
#[inline]
pub fn decode(
    link: LinkType,
    ts: Ts,
    wire_len: u32,
    frame: &[u8],
) -> Result<Decoded<'_>, DecodeError> {
    let (off, kind) = link_layer(link, frame)?;
    decode_ip_at(ts, wire_len, frame, off, kind)
}

/// Decodes a raw IP datagram (version from its first nibble), e.g. one
/// produced by the defragmenter. Payload offsets are relative to `bytes`.
/// `ip.reassembled` is left false: the caller knows whether `bytes` came out
/// of reassembly (see [`super::defrag::Reassembled::decode`], which sets it).
#[inline]
pub fn decode_ip(ts: Ts, wire_len: u32, bytes: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    decode_ip_at(ts, wire_len, bytes, 0, IpKind::Any)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IpKind {
    V4,
    V6,
    Any,
}

/// The flow hash of a plain, unfragmented TCP or UDP packet, read straight
/// from the frame without decoding it — the reader thread's fast path for
/// dispatching. Equals `packet.tuple().symmetric_hash()` of the full decode
/// whenever it returns `Some`; anything unusual (fragments, ICMP, IPv6
/// extension headers, truncation) returns `None` and takes the full decode.
#[inline]
pub fn fast_flow_hash(link: LinkType, frame: &[u8]) -> Option<u64> {
    let (off, kind) = link_layer(link, frame).ok()?;
    let b = frame;
    let version = *b.get(off)? >> 4;
    let (proto, src, dst, l4) = match (version, kind) {
        (4, IpKind::V4 | IpKind::Any) => {
            let ihl = ((b[off] & 0x0f) as usize) * 4;
            let frag = be16(b, off + 6)?;
            if ihl < 20 || frag & 0x3fff != 0 || b.len() < off + ihl + 4 {
                return None;
            }
            (
                b[off + 9],
                IpAddr::V4(v4addr(b, off + 12)),
                IpAddr::V4(v4addr(b, off + 16)),
                off + ihl,
            )
        }
        (6, IpKind::V6 | IpKind::Any) => {
            if b.len() < off + 44 {
                return None;
            }
            (
                b[off + 6],
                IpAddr::V6(v6addr(b, off + 8)),
                IpAddr::V6(v6addr(b, off + 24)),
                off + 40,
            )
        }
        _ => return None,
    };
    if proto != PROTO_TCP && proto != PROTO_UDP {
        return None;
    }
    Some(
        FiveTuple {
            proto,
            src,
            dst,
            sport: be16(b, l4)?,
            dport: be16(b, l4 + 2)?,
        }
        .symmetric_hash(),
    )
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

#[inline(always)]
fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

#[inline(always)]
fn ethertype_kind(et: u16) -> Option<IpKind> {
    match et {
        ETH_IPV4 => Some(IpKind::V4),
        ETH_IPV6 => Some(IpKind::V6),
        _ => None,
    }
}

/// Walks VLAN tags starting with the ethertype at `et_at`; returns the offset
/// of the network header and its kind.
#[inline]
fn after_ethertype(frame: &[u8], mut et_at: usize) -> Result<(usize, IpKind), DecodeError> {
    for _ in 0..=MAX_VLAN_TAGS {
        let et = be16(frame, et_at).ok_or(DecodeError::TruncatedLink)?;
        match et {
            0x8100 | 0x88a8 | 0x9100 | 0x9200 | 0x9300 => {
                // TCI (2 bytes) then the inner ethertype.
                et_at += 4;
            }
            _ => {
                let kind = ethertype_kind(et).ok_or(DecodeError::NotIp)?;
                return Ok((et_at + 2, kind));
            }
        }
    }
    // Absurd tag stack: nothing we can interpret.
    Err(DecodeError::NotIp)
}

fn bsd_af_kind(af: u32) -> Option<IpKind> {
    match af {
        2 => Some(IpKind::V4),
        24 | 28 | 30 => Some(IpKind::V6),
        _ => None,
    }
}

/// Returns the offset of the IP header inside `frame` and the expected IP
/// version.
#[inline]
fn link_layer(link: LinkType, frame: &[u8]) -> Result<(usize, IpKind), DecodeError> {
    match link.0 {
        1 => {
            if frame.len() < 14 {
                return Err(DecodeError::TruncatedLink);
            }
            after_ethertype(frame, 12)
        }
        101 | 12 | 14 => Ok((0, IpKind::Any)),
        228 => Ok((0, IpKind::V4)),
        229 => Ok((0, IpKind::V6)),
        113 => {
            // Linux cooked v1: type(2) arphrd(2) addrlen(2) addr(8) protocol(2).
            if frame.len() < 16 {
                return Err(DecodeError::TruncatedLink);
            }
            after_ethertype(frame, 14)
        }
        276 => {
            // Linux cooked v2: protocol(2) reserved(2) ifindex(4) arphrd(2)
            // pkttype(1) addrlen(1) addr(8).
            if frame.len() < 20 {
                return Err(DecodeError::TruncatedLink);
            }
            let et = be16(frame, 0).ok_or(DecodeError::TruncatedLink)?;
            match et {
                // A tagged frame: TCI at 20, inner ethertype at 22.
                0x8100 | 0x88a8 | 0x9100 | 0x9200 | 0x9300 => after_ethertype(frame, 22),
                _ => Ok((20, ethertype_kind(et).ok_or(DecodeError::NotIp)?)),
            }
        }
        0 => {
            // BSD loopback: AF value in the *writer's* host byte order.
            let b = frame.get(0..4).ok_or(DecodeError::TruncatedLink)?;
            let raw = [b[0], b[1], b[2], b[3]];
            let kind = bsd_af_kind(u32::from_le_bytes(raw))
                .or_else(|| bsd_af_kind(u32::from_be_bytes(raw)))
                .ok_or(DecodeError::NotIp)?;
            Ok((4, kind))
        }
        108 => {
            let af = be32(frame, 0).ok_or(DecodeError::TruncatedLink)?;
            let kind = bsd_af_kind(af)
                .or_else(|| bsd_af_kind(af.swap_bytes()))
                .ok_or(DecodeError::NotIp)?;
            Ok((4, kind))
        }
        _ => Err(DecodeError::UnsupportedLinkType),
    }
}

#[inline]
fn decode_ip_at(
    ts: Ts,
    wire_len: u32,
    b: &[u8],
    off: usize,
    kind: IpKind,
) -> Result<Decoded<'_>, DecodeError> {
    let first = *b.get(off).ok_or(DecodeError::TruncatedIp)?;
    let version = first >> 4;
    match (version, kind) {
        (4, IpKind::V4 | IpKind::Any) => decode_v4(ts, wire_len, b, off),
        (6, IpKind::V6 | IpKind::Any) => decode_v6(ts, wire_len, b, off),
        _ => Err(DecodeError::BadIp),
    }
}

#[inline]
fn v4addr(b: &[u8], at: usize) -> Ipv4Addr {
    // Callers have checked bounds; `get` keeps this panic-free regardless.
    match b.get(at..at + 4) {
        Some(s) => Ipv4Addr::new(s[0], s[1], s[2], s[3]),
        None => Ipv4Addr::UNSPECIFIED,
    }
}

#[inline]
fn v6addr(b: &[u8], at: usize) -> Ipv6Addr {
    match b
        .get(at..at + 16)
        .and_then(|s| <[u8; 16]>::try_from(s).ok())
    {
        Some(a) => Ipv6Addr::from(a),
        None => Ipv6Addr::UNSPECIFIED,
    }
}

fn decode_v4(ts: Ts, wire_len: u32, b: &[u8], off: usize) -> Result<Decoded<'_>, DecodeError> {
    if b.len() < off + 20 {
        return Err(DecodeError::TruncatedIp);
    }
    let ihl = ((b[off] & 0x0f) as usize) * 4;
    if ihl < 20 {
        return Err(DecodeError::BadIp);
    }
    if b.len() < off + ihl {
        return Err(DecodeError::TruncatedIp);
    }
    let mut total = be16(b, off + 2).unwrap_or(0) as usize;
    if total == 0 {
        // TSO / "big TCP" captures on the sending host carry total length 0:
        // the datagram is the rest of the frame.
        total = b.len() - off;
    }
    if total < ihl {
        return Err(DecodeError::BadIp);
    }
    let end_announced = off + total;
    let end = end_announced.min(b.len());
    let missing = (end_announced - end) as u32;
    let ip_id = be16(b, off + 4).unwrap_or(0);
    let frag = be16(b, off + 6).unwrap_or(0);
    let df = frag & 0x4000 != 0;
    let more = frag & 0x2000 != 0;
    let frag_off = ((frag & 0x1fff) as u32) * 8;
    let ttl = b[off + 8];
    let proto = b[off + 9];
    let src = IpAddr::V4(v4addr(b, off + 12));
    let dst = IpAddr::V4(v4addr(b, off + 16));
    if more || frag_off != 0 {
        return Ok(Decoded::Fragment(Fragment {
            ts,
            wire_len,
            v6: false,
            src,
            dst,
            id: ip_id as u32,
            proto,
            offset: frag_off,
            more,
            header: &b[off..off + ihl],
            next_header_at: 9,
            data: &b[off + ihl..end],
            missing,
        }));
    }
    let ip = IpMeta {
        src,
        dst,
        ttl,
        ip_id: Some(ip_id),
        dont_fragment: df,
        reassembled: false,
    };
    let transport = decode_transport(b, off + ihl, end, missing, proto)?;
    Ok(Decoded::Packet(Packet {
        ts,
        wire_len,
        ip,
        transport,
    }))
}

/// Result of walking an IPv6 extension header chain.
struct V6Walk {
    /// Offset of the upper-layer header (or of where the chain stopped).
    at: usize,
    /// Upper-layer protocol (or ESP / no-next-header / unknown).
    proto: u8,
    /// A fragment header: (offset of the header, offset of the next-header
    /// byte naming it, frag offset in bytes, more, id, next header).
    frag: Option<(usize, usize, u32, bool, u32, u8)>,
}

/// Walks extension headers from `at` (the first one is `nh`, whose
/// next-header byte lies at `nh_at`), within `b[..end]`. `cut` says whether
/// `end` is the capture's end rather than the announced payload end: running
/// off a captured end is truncation, running off an announced end is a bad
/// chain.
fn walk_v6(
    b: &[u8],
    mut at: usize,
    mut nh: u8,
    mut nh_at: usize,
    end: usize,
    cut: bool,
) -> Result<V6Walk, DecodeError> {
    let past_end = if cut {
        DecodeError::TruncatedIp
    } else {
        DecodeError::BadIpv6Extension
    };
    let mut frag = None;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let len = match nh {
            // hop-by-hop, routing, destination options, mobility, HIP, shim6
            0 | 43 | 60 | 135 | 139 | 140 => {
                let l = *b.get(at + 1).filter(|_| at + 2 <= end).ok_or(past_end)?;
                (l as usize + 1) * 8
            }
            44 => 8,
            51 => {
                let l = *b.get(at + 1).filter(|_| at + 2 <= end).ok_or(past_end)?;
                (l as usize + 2) * 4
            }
            _ => {
                return Ok(V6Walk {
                    at,
                    proto: nh,
                    frag,
                })
            }
        };
        if at + len > end {
            return Err(past_end);
        }
        let next = b[at];
        if nh == 44 {
            if frag.is_some() {
                // Two fragment headers in one chain: not walkable.
                return Err(DecodeError::BadIpv6Extension);
            }
            let fo = be16(b, at + 2).unwrap_or(0);
            let id = be32(b, at + 4).unwrap_or(0);
            let offset = ((fo >> 3) as u32) * 8;
            let more = fo & 1 != 0;
            if offset != 0 || more {
                frag = Some((at, nh_at, offset, more, id, next));
                // The rest is fragment data; stop walking.
                return Ok(V6Walk {
                    at: at + 8,
                    proto: next,
                    frag,
                });
            }
            // Atomic fragment (RFC 6946): just skip the header.
        }
        nh_at = at;
        nh = next;
        at += len;
    }
    Err(DecodeError::BadIpv6Extension)
}

fn decode_v6(ts: Ts, wire_len: u32, b: &[u8], off: usize) -> Result<Decoded<'_>, DecodeError> {
    if b.len() < off + 40 {
        return Err(DecodeError::TruncatedIp);
    }
    let plen = be16(b, off + 4).unwrap_or(0) as usize;
    let nh = b[off + 6];
    let hop = b[off + 7];
    let src = IpAddr::V6(v6addr(b, off + 8));
    let dst = IpAddr::V6(v6addr(b, off + 24));
    let end_announced = if plen == 0 && nh == 0 {
        // Jumbogram (RFC 2675) or big-TCP capture: the rest of the frame.
        b.len()
    } else {
        off + 40 + plen
    };
    let end = end_announced.min(b.len());
    let missing = (end_announced - end) as u32;
    let walk = walk_v6(b, off + 40, nh, off + 6, end, missing > 0)?;
    if let Some((fh_at, nh_at, offset, more, id, proto)) = walk.frag {
        return Ok(Decoded::Fragment(Fragment {
            ts,
            wire_len,
            v6: true,
            src,
            dst,
            id,
            proto,
            offset,
            more,
            header: &b[off..fh_at],
            next_header_at: (nh_at - off) as u32,
            data: &b[walk.at..end],
            missing,
        }));
    }
    let ip = IpMeta {
        src,
        dst,
        ttl: hop,
        ip_id: None,
        dont_fragment: false,
        reassembled: false,
    };
    let transport = match walk.proto {
        // ESP, no next header: nothing to look into.
        50 | 59 => Transport::Other(walk.proto),
        p => decode_transport(b, walk.at, end, missing, p)?,
    };
    Ok(Decoded::Packet(Packet {
        ts,
        wire_len,
        ip,
        transport,
    }))
}

/// Checks that a transport header of `need` bytes fits: `BadTransport` when
/// the IP length announces fewer bytes, `TruncatedTransport` when the
/// capture holds fewer.
#[inline(always)]
fn need(avail: usize, missing: u32, need: usize) -> Result<(), DecodeError> {
    if avail >= need {
        Ok(())
    } else if avail + missing as usize >= need {
        Err(DecodeError::TruncatedTransport)
    } else {
        Err(DecodeError::BadTransport)
    }
}

#[inline]
fn decode_transport(
    b: &[u8],
    at: usize,
    end: usize,
    missing: u32,
    proto: u8,
) -> Result<Transport, DecodeError> {
    let avail = end.saturating_sub(at);
    match proto {
        PROTO_TCP => {
            need(avail, missing, 20)?;
            let doff = ((b[at + 12] >> 4) as usize) * 4;
            if doff < 20 {
                return Err(DecodeError::BadTransport);
            }
            need(avail, missing, doff)?;
            Ok(Transport::Tcp(TcpMeta {
                sport: be16(b, at).unwrap_or(0),
                dport: be16(b, at + 2).unwrap_or(0),
                seq: be32(b, at + 4).unwrap_or(0),
                ack: be32(b, at + 8).unwrap_or(0),
                flags: b[at + 13],
                window: be16(b, at + 14).unwrap_or(0),
                payload: PayloadRef {
                    offset: (at + doff) as u32,
                    len: (avail - doff) as u32,
                    missing,
                },
            }))
        }
        PROTO_UDP => {
            need(avail, missing, 8)?;
            let ulen = be16(b, at + 4).unwrap_or(0) as usize;
            let announced = avail + missing as usize;
            // The UDP length bounds the payload when it is sane; 0 (jumbo)
            // or inconsistent values fall back to the IP length.
            let (len, miss) = if ulen >= 8 && ulen <= announced {
                let plen = ulen - 8;
                let have = plen.min(avail - 8);
                (have, (plen - have) as u32)
            } else {
                (avail - 8, missing)
            };
            Ok(Transport::Udp(UdpMeta {
                sport: be16(b, at).unwrap_or(0),
                dport: be16(b, at + 2).unwrap_or(0),
                payload: PayloadRef {
                    offset: (at + 8) as u32,
                    len: len as u32,
                    missing: miss,
                },
            }))
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            need(avail, missing, 8)?;
            let v6 = proto == PROTO_ICMPV6;
            let icmp_type = b[at];
            let code = b[at + 1];
            let is_error = if v6 {
                matches!(icmp_type, 1..=4)
            } else {
                matches!(icmp_type, 3 | 4 | 11 | 12)
            };
            let quoted = if is_error {
                quoted_flow(&b[at + 8..end])
            } else {
                None
            };
            // Path MTU (#25): the MTU the sender of "fragmentation needed"
            // (RFC 1191: the next hop's, 0 from routers older than it) or
            // of ICMPv6 "packet too big" (RFC 4443) names.
            let mtu = match (v6, icmp_type, code) {
                (false, 3, 4) => u32::from(be16(b, at + 6).unwrap_or(0)),
                (true, 2, _) => u32::from_be_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]),
                _ => 0,
            };
            Ok(Transport::Icmp(IcmpMeta {
                v6,
                icmp_type,
                code,
                quoted,
                mtu: (mtu != 0).then_some(mtu),
            }))
        }
        p => Ok(Transport::Other(p)),
    }
}

/// Parses the IP header + first transport bytes quoted by an ICMP error.
/// Lax: the quote may be cut anywhere after the ports; anything that does
/// not make sense yields `None`.
pub fn quoted_flow(q: &[u8]) -> Option<QuotedFlow> {
    let first = *q.first()?;
    let (src, dst, proto, at) = match first >> 4 {
        4 => {
            if q.len() < 20 {
                return None;
            }
            let ihl = ((first & 0x0f) as usize) * 4;
            if ihl < 20 {
                return None;
            }
            let frag = be16(q, 6)?;
            if frag & 0x1fff != 0 {
                // A non-first fragment quotes no transport header.
                return None;
            }
            (
                IpAddr::V4(v4addr(q, 12)),
                IpAddr::V4(v4addr(q, 16)),
                q[9],
                ihl,
            )
        }
        6 => {
            if q.len() < 40 {
                return None;
            }
            // The quote is usually cut: walk only what is there.
            let w = walk_v6(q, 40, q[6], 6, q.len(), true).ok()?;
            if let Some((_, _, offset, _, _, _)) = w.frag {
                if offset != 0 {
                    return None;
                }
            }
            (
                IpAddr::V6(v6addr(q, 8)),
                IpAddr::V6(v6addr(q, 24)),
                w.proto,
                w.at,
            )
        }
        _ => return None,
    };
    if proto != PROTO_TCP && proto != PROTO_UDP {
        return None;
    }
    let sport = be16(q, at)?;
    let dport = be16(q, at + 2)?;
    let tcp_seq = if proto == PROTO_TCP {
        be32(q, at + 4)
    } else {
        None
    };
    Some(QuotedFlow {
        tuple: FiveTuple {
            proto,
            src,
            dst,
            sport,
            dport,
        },
        tcp_seq,
    })
}
