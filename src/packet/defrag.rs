//! IP reassembly for IPv4 fragments and IPv6 fragment headers.
//!
//! Datagrams are keyed by (src, dst, protocol, IP ID) for IPv4 and by
//! (src, dst, identification) for IPv6. Everything is bounded: concurrent
//! datagrams, bytes per datagram, total bytes, and age (capture time, from
//! the first fragment seen). When a cap is hit the oldest datagram in
//! progress is evicted (`dropped_cap`).
//!
//! Overlaps are resolved **first-wins** at byte granularity, like most
//! stacks: bytes already received are never overwritten; a later fragment
//! only fills holes. A fragment that adds nothing (an exact duplicate or one
//! fully covered) is dropped and counted in `dropped_overlap`; one that
//! partially overlaps is used for its new bytes and counted in
//! `overlapping_fragments`.
//!
//! A datagram is dropped as bad (`dropped_bad`) when fragments disagree on
//! its end (two different last fragments, data beyond the last fragment's
//! end) or when it would exceed 65535 bytes (ping of death). A single
//! fragment is dropped as bad when it is empty or not a multiple of 8 bytes
//! while more fragments follow. Fragments cut by the snaplen cannot be
//! reassembled (`dropped_truncated`).
//!
//! Completion yields a [`Reassembled`]: an owned datagram whose header is the
//! first fragment's (offset 0), with the IPv4 total length / fragment field
//! and header checksum rewritten, or, for IPv6, the fragment header removed
//! and the payload length fixed. [`Reassembled::decode`] decodes it and sets
//! `ip.reassembled = true`.

use std::net::IpAddr;

use hashbrown::HashMap;

use super::decode::{decode_ip, Decoded, Fragment};
use super::{DecodeError, Packet};
use crate::Ts;

/// Limits of the defragmenter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragConfig {
    /// Most datagrams in progress at once.
    pub max_datagrams: usize,
    /// Most fragmentable-part bytes per datagram (the IP header limits the
    /// whole datagram to 65535 bytes anyway).
    pub max_datagram_bytes: usize,
    /// Most buffered bytes over all datagrams in progress.
    pub max_total_bytes: usize,
    /// A datagram not complete this long after its first fragment (capture
    /// time, ns) is dropped.
    pub timeout: Ts,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_datagrams: 8192,
            max_datagram_bytes: 65535,
            max_total_bytes: 64 << 20,
            timeout: 30_000_000_000,
        }
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DefragStats {
    /// Fragments passed to [`Defragmenter::push`].
    pub fragments_seen: u64,
    /// Datagrams completed.
    pub datagrams_reassembled: u64,
    /// Fragments that partially overlapped earlier data (first-wins).
    pub overlapping_fragments: u64,
    /// Fragments dropped because earlier fragments already covered them.
    pub dropped_overlap: u64,
    /// Datagrams dropped because they were not complete in time.
    pub dropped_timeout: u64,
    /// Datagrams evicted by a cap (count or bytes).
    pub dropped_cap: u64,
    /// Fragments or datagrams dropped as inconsistent or oversized.
    pub dropped_bad: u64,
    /// Fragments dropped because the snaplen cut their data.
    pub dropped_truncated: u64,
    /// Of the datagrams dropped for not completing in time, those whose
    /// first fragment came (#25): their ports name the flow whose data was
    /// lost in fragments ([`Defragmenter::take_incomplete`]).
    pub incomplete_with_first: u64,
    /// Datagrams still incomplete when the input ended whose first fragment
    /// came less than [`END_GRACE`] before its last packet: the capture may
    /// have cut them, so they are not counted as lost.
    pub incomplete_at_end: u64,
}

/// A datagram still incomplete this close to the end of the input may only
/// have been cut by the capture's end: its fragments come within
/// microseconds of each other on any path that delivers them.
pub const END_GRACE: Ts = 1_000_000_000;

/// A datagram whose fragments did not all arrive (#25), when its first
/// fragment did: from it, the flow it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incomplete {
    /// Its first fragment's capture time.
    pub ts: Ts,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// Source and destination port from the first fragment's TCP/UDP
    /// header.
    pub sport: u16,
    pub dport: u16,
    /// Fragments that came, and their bytes of the fragmentable part.
    pub fragments: u32,
    pub bytes: u32,
    /// The fragmentable part's length, once the last fragment came.
    pub len: Option<u32>,
}

/// A reassembled IP datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reassembled {
    /// Timestamp of the fragment that completed the datagram.
    pub ts: Ts,
    /// Sum of the fragments' wire lengths (saturating).
    pub wire_len: u32,
    pub v6: bool,
    /// Fragments that contributed (including overlapping ones).
    pub fragments: u32,
    /// The datagram, starting with its IP header.
    pub bytes: Vec<u8>,
}

impl Reassembled {
    /// Decodes the datagram; payload offsets are relative to `self.bytes`.
    /// Sets `ip.reassembled`. A fragment header nested inside a reassembled
    /// IPv6 datagram is refused (`BadIpv6Extension` / `BadIp`).
    pub fn decode(&self) -> Result<Packet, DecodeError> {
        match decode_ip(self.ts, self.wire_len, &self.bytes)? {
            Decoded::Packet(mut p) => {
                p.ip.reassembled = true;
                Ok(p)
            }
            Decoded::Fragment(_) => Err(if self.v6 {
                DecodeError::BadIpv6Extension
            } else {
                DecodeError::BadIp
            }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    V4 {
        src: u32,
        dst: u32,
        proto: u8,
        id: u16,
    },
    V6 {
        src: u128,
        dst: u128,
        id: u32,
    },
}

impl Key {
    fn of(f: &Fragment<'_>) -> Key {
        match (f.src, f.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Key::V4 {
                src: s.into(),
                dst: d.into(),
                proto: f.proto,
                id: f.id as u16,
            },
            (s, d) => Key::V6 {
                src: ip_u128(s),
                dst: ip_u128(d),
                id: f.id,
            },
        }
    }
}

fn ip_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => a.into(),
    }
}

#[derive(Debug)]
struct Entry {
    first_ts: Ts,
    seq: u64,
    v6: bool,
    /// Unfragmentable part from the offset-0 fragment (empty until seen).
    header: Vec<u8>,
    next_header_at: u32,
    proto: u8,
    data: Vec<u8>,
    /// Received byte ranges [start, end), sorted, disjoint, merged.
    ranges: Vec<(u32, u32)>,
    /// End of the datagram, known once the last fragment arrived.
    end: Option<u32>,
    wire_len: u32,
    fragments: u32,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.header.len() + self.data.len()
    }

    fn max_received(&self) -> u32 {
        self.ranges.last().map_or(0, |r| r.1)
    }

    /// Adds `[start, end)` (first-wins); returns how many new bytes were
    /// taken and whether any overlap existed.
    fn insert(&mut self, start: u32, end: u32, src: &[u8]) -> (u32, bool) {
        let mut taken = 0u32;
        let mut overlap = false;
        let mut cur = start;
        // Copy the holes of [start, end) not covered by existing ranges.
        for &(rs, re) in &self.ranges {
            if re <= cur {
                continue;
            }
            if rs >= end {
                break;
            }
            if rs > cur {
                copy(&mut self.data, src, start, cur, rs.min(end));
                taken += rs.min(end) - cur;
            }
            overlap = true;
            cur = cur.max(re);
            if cur >= end {
                break;
            }
        }
        if cur < end {
            copy(&mut self.data, src, start, cur, end);
            taken += end - cur;
        }
        // Merge the new range in.
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len() + 1);
        let (mut ns, mut ne) = (start, end);
        let mut placed = false;
        for &(rs, re) in &self.ranges {
            if re < ns {
                merged.push((rs, re));
            } else if rs > ne {
                if !placed {
                    merged.push((ns, ne));
                    placed = true;
                }
                merged.push((rs, re));
            } else {
                ns = ns.min(rs);
                ne = ne.max(re);
            }
        }
        if !placed {
            merged.push((ns, ne));
        }
        self.ranges = merged;
        (taken, overlap)
    }

    /// What the fragments of this datagram showed, if its first fragment
    /// (with the TCP/UDP ports) came.
    fn incomplete(&self, key: &Key) -> Option<Incomplete> {
        let (src, dst) = match *key {
            Key::V4 { src, dst, .. } => (
                IpAddr::V4(std::net::Ipv4Addr::from(src)),
                IpAddr::V4(std::net::Ipv4Addr::from(dst)),
            ),
            Key::V6 { src, dst, .. } => (
                IpAddr::V6(std::net::Ipv6Addr::from(src)),
                IpAddr::V6(std::net::Ipv6Addr::from(dst)),
            ),
        };
        self.ranges.first().filter(|r| r.0 == 0 && r.1 >= 4)?;
        if self.header.is_empty() || !matches!(self.proto, 6 | 17) {
            return None;
        }
        let port = |at: usize| u16::from_be_bytes([self.data[at], self.data[at + 1]]);
        Some(Incomplete {
            ts: self.first_ts,
            src,
            dst,
            proto: self.proto,
            sport: port(0),
            dport: port(2),
            fragments: self.fragments,
            bytes: self.ranges.iter().map(|r| r.1 - r.0).sum(),
            len: self.end,
        })
    }

    fn complete(&self) -> bool {
        match self.end {
            Some(end) => {
                !self.header.is_empty()
                    && (end == 0 || (self.ranges.len() == 1 && self.ranges[0] == (0, end)))
            }
            None => false,
        }
    }
}

/// Copies `src[(from - base)..(to - base)]` to `dst[from..to]`.
fn copy(dst: &mut [u8], src: &[u8], base: u32, from: u32, to: u32) {
    let (a, b) = ((from - base) as usize, (to - base) as usize);
    if let (Some(d), Some(s)) = (dst.get_mut(from as usize..to as usize), src.get(a..b)) {
        d.copy_from_slice(s);
    }
}

/// Reassembles fragments; see the module documentation.
#[derive(Debug)]
pub struct Defragmenter {
    cfg: DefragConfig,
    map: HashMap<Key, Entry>,
    total_bytes: usize,
    seq: u64,
    last_expire: Ts,
    stats: DefragStats,
    /// Datagrams that timed out with their first fragment, until taken.
    incomplete: Vec<Incomplete>,
}

impl Default for Defragmenter {
    fn default() -> Self {
        Defragmenter::new(DefragConfig::default())
    }
}

impl Defragmenter {
    pub fn new(cfg: DefragConfig) -> Self {
        Defragmenter {
            cfg,
            map: HashMap::new(),
            total_bytes: 0,
            seq: 0,
            last_expire: 0,
            stats: DefragStats::default(),
            incomplete: Vec::new(),
        }
    }

    pub fn stats(&self) -> &DefragStats {
        &self.stats
    }

    /// Datagrams in progress.
    pub fn in_progress(&self) -> usize {
        self.map.len()
    }

    /// Bytes buffered for datagrams in progress.
    pub fn buffered_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Drops datagrams older than the timeout at capture time `now`; those
    /// whose first fragment came are kept for [`Self::take_incomplete`]
    /// (at most `max_datagrams` waiting: the map's own bound).
    pub fn expire(&mut self, now: Ts) {
        self.last_expire = now;
        let timeout = self.cfg.timeout;
        let mut freed = 0usize;
        let mut dropped = 0u64;
        let keep = self.cfg.max_datagrams.max(1);
        let (incomplete, stats) = (&mut self.incomplete, &mut self.stats);
        self.map.retain(|k, e| {
            if now.saturating_sub(e.first_ts) > timeout {
                freed += e.bytes();
                dropped += 1;
                if let Some(lost) = e.incomplete(k) {
                    stats.incomplete_with_first += 1;
                    if incomplete.len() < keep {
                        incomplete.push(lost);
                    }
                }
                false
            } else {
                true
            }
        });
        self.total_bytes -= freed;
        self.stats.dropped_timeout += dropped;
    }

    /// End of input: what is still in progress is dropped (counted as
    /// timeouts); a datagram whose first fragment came at least
    /// [`END_GRACE`] before `end` (the input's last packet) is reported as
    /// incomplete, a later one counted in `incomplete_at_end`.
    pub fn flush(&mut self, end: Ts) {
        self.stats.dropped_timeout += self.map.len() as u64;
        for (k, e) in self.map.drain() {
            match e.incomplete(&k) {
                Some(_) if end.saturating_sub(e.first_ts) < END_GRACE => {
                    self.stats.incomplete_at_end += 1;
                }
                Some(lost) => {
                    self.stats.incomplete_with_first += 1;
                    self.incomplete.push(lost);
                }
                None => {}
            }
        }
        self.total_bytes = 0;
    }

    /// The datagrams lost in fragments since the last call (in the order
    /// they timed out, then by first fragment for a flush), for the flows
    /// they belong to.
    pub fn take_incomplete(&mut self) -> Vec<Incomplete> {
        let mut v = std::mem::take(&mut self.incomplete);
        v.sort_by_key(|l| l.ts);
        v
    }

    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.map.remove(key) {
            self.total_bytes -= e.bytes();
        }
    }

    /// Evicts the oldest datagram other than `keep`; false if none.
    fn evict_oldest(&mut self, keep: Option<&Key>) -> bool {
        let oldest = self
            .map
            .iter()
            .filter(|(k, _)| Some(*k) != keep)
            .min_by_key(|(_, e)| e.seq)
            .map(|(k, _)| *k);
        match oldest {
            Some(k) => {
                self.remove(&k);
                self.stats.dropped_cap += 1;
                true
            }
            None => false,
        }
    }

    /// The byte range `f` covers in its datagram, if the fragment can be
    /// taken at all (not cut by the snaplen, a multiple of 8 bytes unless
    /// last, within the datagram size limits); counted when not.
    fn bounds(&mut self, f: &Fragment<'_>) -> Option<(u32, u32)> {
        if f.missing > 0 {
            self.stats.dropped_truncated += 1;
            return None;
        }
        let len = f.data.len() as u64;
        let start = f.offset as u64;
        let end = start + len;
        let ulp_limit = 65535u64.saturating_sub(if f.v6 {
            (f.header.len() as u64).saturating_sub(40)
        } else {
            f.header.len() as u64
        });
        if (f.more && (len == 0 || len % 8 != 0))
            || end > self.cfg.max_datagram_bytes as u64
            || end > ulp_limit
            || (f.v6 && f.header.len() < 40)
        {
            self.stats.dropped_bad += 1;
            return None;
        }
        Some((start as u32, end as u32))
    }

    /// Makes room for a new datagram if `key` has none yet (evicting the
    /// oldest at the cap), and starts it.
    fn open(&mut self, key: Key, f: &Fragment<'_>) {
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.cfg.max_datagrams.max(1) {
                if !self.evict_oldest(None) {
                    break;
                }
            }
            self.seq += 1;
            self.map.insert(
                key,
                Entry {
                    first_ts: f.ts,
                    seq: self.seq,
                    v6: f.v6,
                    header: Vec::new(),
                    next_header_at: 0,
                    proto: 0,
                    data: Vec::new(),
                    ranges: Vec::new(),
                    end: None,
                    wire_len: 0,
                    fragments: 0,
                },
            );
        }
    }

    /// Adds one fragment; returns the datagram when it completes.
    pub fn push(&mut self, f: &Fragment<'_>) -> Option<Reassembled> {
        self.stats.fragments_seen += 1;
        // Expiry scans are amortized: at most once per second of capture time.
        if f.ts.saturating_sub(self.last_expire) >= 1_000_000_000 || f.ts < self.last_expire {
            self.expire(f.ts);
        }
        let (start, end) = self.bounds(f)?;
        let len = u64::from(end - start);
        let key = Key::of(f);

        self.open(key, f);
        let entry = self.map.get_mut(&key)?;

        // Consistency of the datagram's end.
        let bad = if f.more {
            entry.end.is_some_and(|e| end > e)
        } else {
            entry.end.is_some_and(|e| e != end) || entry.max_received() > end
        };
        if bad {
            self.remove(&key);
            self.stats.dropped_bad += 1;
            return None;
        }
        if !f.more {
            entry.end = Some(end);
        }

        // Grow the buffer (accounted), then take the new bytes.
        let before = entry.bytes();
        if entry.data.len() < end as usize {
            entry.data.resize(end as usize, 0);
        }
        if start == 0 && entry.header.is_empty() {
            entry.header.extend_from_slice(f.header);
            entry.next_header_at = f.next_header_at;
            entry.proto = f.proto;
        }
        let (taken, overlap) = entry.insert(start, end, f.data);
        entry.wire_len = entry.wire_len.saturating_add(f.wire_len);
        entry.fragments += 1;
        let grown = entry.bytes() - before;
        if overlap {
            if taken == 0 && len > 0 {
                self.stats.dropped_overlap += 1;
            } else {
                self.stats.overlapping_fragments += 1;
            }
        }
        self.total_bytes += grown;

        while self.total_bytes > self.cfg.max_total_bytes {
            if !self.evict_oldest(Some(&key)) {
                // This datagram alone is over the budget.
                self.remove(&key);
                self.stats.dropped_cap += 1;
                return None;
            }
        }

        let entry = self.map.get(&key)?;
        if !entry.complete() {
            return None;
        }
        let out = build(entry, f.ts);
        self.remove(&key);
        match out {
            Some(r) => {
                self.stats.datagrams_reassembled += 1;
                Some(r)
            }
            None => {
                self.stats.dropped_bad += 1;
                None
            }
        }
    }
}

fn build(e: &Entry, ts: Ts) -> Option<Reassembled> {
    let end = e.end? as usize;
    let mut bytes = Vec::with_capacity(e.header.len() + end);
    bytes.extend_from_slice(&e.header);
    bytes.extend_from_slice(e.data.get(..end)?);
    if e.v6 {
        let plen = u16::try_from(e.header.len().checked_sub(40)? + end).ok()?;
        bytes.get_mut(4..6)?.copy_from_slice(&plen.to_be_bytes());
        *bytes.get_mut(e.next_header_at as usize)? = e.proto;
    } else {
        let hlen = e.header.len();
        let total = u16::try_from(hlen + end).ok()?;
        bytes.get_mut(2..4)?.copy_from_slice(&total.to_be_bytes());
        bytes.get_mut(6..8)?.copy_from_slice(&[0, 0]);
        bytes.get_mut(10..12)?.copy_from_slice(&[0, 0]);
        let csum = ipv4_checksum(bytes.get(..hlen)?);
        bytes.get_mut(10..12)?.copy_from_slice(&csum.to_be_bytes());
    }
    Some(Reassembled {
        ts,
        wire_len: e.wire_len,
        v6: e.v6,
        fragments: e.fragments,
        bytes,
    })
}

/// The internet checksum of an IPv4 header (checksum field taken as is).
pub fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum = 0u32;
    let mut it = h.chunks_exact(2);
    for c in &mut it {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [b] = it.remainder() {
        sum += (*b as u32) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::packet::LinkType;
    use crate::packet::{decode, Transport, PROTO_UDP};
    use exflow_testkit::{ipv4_fragment, ipv6_fragment, Frame};

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const SEC: Ts = 1_000_000_000;

    fn a6() -> Ipv6Addr {
        "fd00::1".parse().unwrap()
    }
    fn b6() -> Ipv6Addr {
        "fd00::2".parse().unwrap()
    }

    fn body(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn frag(frame: &[u8], ts: Ts) -> Fragment<'_> {
        decode(LinkType::RAW, ts, frame.len() as u32, frame)
            .unwrap()
            .fragment()
            .expect("a fragment")
    }

    fn push_all(d: &mut Defragmenter, frames: &[Vec<u8>], ts: Ts) -> Vec<Reassembled> {
        frames.iter().filter_map(|f| d.push(&frag(f, ts))).collect()
    }

    fn check_udp(r: &Reassembled, expect: &[u8]) {
        let p = r.decode().unwrap();
        assert!(p.ip.reassembled);
        let Transport::Udp(u) = p.transport else {
            panic!("not UDP: {p:?}")
        };
        assert_eq!((u.sport, u.dport), (1000, 2000));
        let pl = &r.bytes[u.payload.offset as usize..(u.payload.offset + u.payload.len) as usize];
        assert_eq!(pl, expect);
        // The rebuilt datagram is a valid, unfragmented packet per etherparse
        // (header checksum, lengths, UDP checksum).
        let sliced = etherparse::SlicedPacket::from_ip(&r.bytes).unwrap();
        match sliced.net.unwrap() {
            etherparse::NetSlice::Ipv4(v4) => {
                let h = v4.header();
                assert!(!h.is_fragmenting_payload());
                assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
                let Some(etherparse::TransportSlice::Udp(us)) = sliced.transport else {
                    panic!()
                };
                assert_eq!(
                    us.to_header()
                        .calc_checksum_ipv4(&h.to_header(), us.payload())
                        .unwrap(),
                    us.checksum()
                );
            }
            etherparse::NetSlice::Ipv6(v6) => {
                assert!(!v6.is_payload_fragmented());
                let Some(etherparse::TransportSlice::Udp(us)) = sliced.transport else {
                    panic!()
                };
                assert_eq!(
                    us.to_header()
                        .calc_checksum_ipv6(&v6.header().to_header(), us.payload())
                        .unwrap(),
                    us.checksum()
                );
            }
            _ => panic!(),
        }
    }

    fn v4_frames(data: &[u8], n: usize, id: u16) -> Vec<Vec<u8>> {
        Frame::raw()
            .ipv4(A, B)
            .ip_id(id)
            .udp(1000, 2000)
            .payload(data)
            .build_fragments(n)
    }

    fn v6_frames(data: &[u8], n: usize, id: u16) -> Vec<Vec<u8>> {
        Frame::raw()
            .ipv6(a6(), b6())
            .ipv6_ext(0, &[1, 4, 0, 0, 0, 0])
            .ip_id(id)
            .udp(1000, 2000)
            .payload(data)
            .build_fragments(n)
    }

    #[test]
    fn in_order_and_reversed_and_shuffled() {
        let data = body(3000, 1);
        for frames in [v4_frames(&data, 5, 7), v6_frames(&data, 5, 7)] {
            let mut d = Defragmenter::default();
            let out = push_all(&mut d, &frames, SEC);
            assert_eq!(out.len(), 1);
            check_udp(&out[0], &data);
            assert_eq!(out[0].fragments, 5);
            assert_eq!(
                out[0].wire_len,
                frames.iter().map(|f| f.len() as u32).sum::<u32>()
            );

            let mut rev = frames.clone();
            rev.reverse();
            let out = push_all(&mut d, &rev, SEC);
            assert_eq!(out.len(), 1);
            check_udp(&out[0], &data);

            let shuffled = vec![
                frames[2].clone(),
                frames[4].clone(),
                frames[0].clone(),
                frames[3].clone(),
                frames[1].clone(),
            ];
            let out = push_all(&mut d, &shuffled, SEC);
            check_udp(&out[0], &data);
            assert_eq!(d.stats().datagrams_reassembled, 3);
            assert_eq!(d.stats().fragments_seen, 15);
            assert_eq!(d.in_progress(), 0);
            assert_eq!(d.buffered_bytes(), 0);
        }
    }

    #[test]
    fn interleaved_datagrams_are_kept_apart() {
        let (d1, d2) = (body(500, 1), body(700, 2));
        let f1 = v4_frames(&d1, 3, 1);
        let f2 = v4_frames(&d2, 3, 2);
        let f3 = v6_frames(&d1, 2, 1);
        let mut d = Defragmenter::default();
        let order = [
            &f1[0], &f2[2], &f3[1], &f1[2], &f2[0], &f3[0], &f2[1], &f1[1],
        ];
        let out: Vec<_> = order.iter().filter_map(|f| d.push(&frag(f, 0))).collect();
        assert_eq!(out.len(), 3);
        check_udp(&out[0], &d1); // v6 completes first
        check_udp(&out[1], &d2);
        check_udp(&out[2], &d1);
    }

    #[test]
    fn overlaps_first_wins() {
        // Two datagrams with one ID but different bytes: the first one's
        // bytes must survive where they overlap.
        let first = Frame::raw()
            .ipv4(A, B)
            .ip_id(9)
            .udp(1000, 2000)
            .payload(&[0xaa; 64])
            .build_ip();
        let second = Frame::raw()
            .ipv4(A, B)
            .ip_id(9)
            .udp(1000, 2000)
            .payload(&[0xbb; 64])
            .build_ip();
        let mut d = Defragmenter::default();
        let f_a = ipv4_fragment(&first, 0, 40, true); // [0,40) = udp hdr + 32 x aa
        let f_b = ipv4_fragment(&second, 32, 40, false); // [32,72) overlaps 8 bytes
        assert!(d.push(&frag(&f_a, 0)).is_none());
        let r = d.push(&frag(&f_b, 0)).unwrap();
        let mut expect = vec![0xaa; 32];
        expect.extend_from_slice(&[0xbb; 32]);
        let p = r.decode().unwrap();
        let Transport::Udp(u) = p.transport else {
            panic!()
        };
        assert_eq!(&r.bytes[u.payload.offset as usize..], &expect[..]);
        assert_eq!(d.stats().overlapping_fragments, 1);

        // A fragment entirely inside received data is dropped.
        let mut d = Defragmenter::default();
        assert!(d
            .push(&frag(&ipv4_fragment(&first, 0, 64, true), 0))
            .is_none());
        assert!(d
            .push(&frag(&ipv4_fragment(&second, 8, 16, true), 0))
            .is_none());
        assert_eq!(d.stats().dropped_overlap, 1);
        let r = d
            .push(&frag(&ipv4_fragment(&first, 64, 8, false), 0))
            .unwrap();
        check_udp(&r, &[0xaa; 64]);

        // A later fragment spanning a hole between two received ones only
        // fills the hole.
        let mut d = Defragmenter::default();
        d.push(&frag(&ipv4_fragment(&first, 0, 16, true), 0));
        d.push(&frag(&ipv4_fragment(&first, 32, 16, true), 0));
        d.push(&frag(&ipv4_fragment(&first, 56, 16, false), 0));
        let r = d
            .push(&frag(&ipv4_fragment(&second, 8, 56, true), 0))
            .unwrap();
        let mut expect = vec![0xaa; 8];
        expect.extend_from_slice(&[0xbb; 16]);
        expect.extend_from_slice(&[0xaa; 16]);
        expect.extend_from_slice(&[0xbb; 8]);
        expect.extend_from_slice(&[0xaa; 16]);
        let p = r.decode().unwrap();
        let Transport::Udp(u) = p.transport else {
            panic!()
        };
        assert_eq!(&r.bytes[u.payload.offset as usize..], &expect[..]);
    }

    #[test]
    fn duplicates() {
        let data = body(1000, 3);
        let frames = v4_frames(&data, 4, 11);
        let mut d = Defragmenter::default();
        let dup = vec![
            frames[0].clone(),
            frames[0].clone(),
            frames[3].clone(),
            frames[3].clone(), // duplicate last fragment, same end: harmless
            frames[1].clone(),
            frames[2].clone(),
        ];
        let out = push_all(&mut d, &dup, 0);
        assert_eq!(out.len(), 1);
        check_udp(&out[0], &data);
        assert_eq!(d.stats().dropped_overlap, 2);
        // A duplicate arriving after completion starts a new datagram that
        // later times out.
        assert!(d.push(&frag(&frames[1], 0)).is_none());
        assert_eq!(d.in_progress(), 1);
        d.expire(31 * SEC);
        assert_eq!(d.stats().dropped_timeout, 1);
        assert_eq!(d.in_progress(), 0);
    }

    #[test]
    fn conflicting_last_fragments_drop_the_datagram() {
        let dg = Frame::raw()
            .ipv4(A, B)
            .ip_id(5)
            .udp(1000, 2000)
            .payload(&[1; 64])
            .build_ip();
        let mut d = Defragmenter::default();
        d.push(&frag(&ipv4_fragment(&dg, 16, 56, false), 0));
        // A second "last" fragment ending elsewhere.
        assert!(d
            .push(&frag(&ipv4_fragment(&dg, 16, 24, false), 0))
            .is_none());
        assert_eq!(d.stats().dropped_bad, 1);
        assert_eq!(d.in_progress(), 0);
        // Data beyond a known end.
        d.push(&frag(&ipv4_fragment(&dg, 8, 8, false), 0));
        assert!(d
            .push(&frag(&ipv4_fragment(&dg, 16, 16, true), 0))
            .is_none());
        assert_eq!(d.stats().dropped_bad, 2);
        assert_eq!(d.buffered_bytes(), 0);
    }

    #[test]
    fn timeout_in_capture_time() {
        let data = body(300, 4);
        let frames = v4_frames(&data, 3, 1);
        let mut d = Defragmenter::new(DefragConfig {
            timeout: 10 * SEC,
            ..Default::default()
        });
        assert!(d.push(&frag(&frames[0], 100 * SEC)).is_none());
        assert!(d.push(&frag(&frames[1], 105 * SEC)).is_none());
        // The last fragment arrives too late: the datagram expired first.
        assert!(d.push(&frag(&frames[2], 111 * SEC)).is_none());
        assert_eq!(d.stats().dropped_timeout, 1);
        assert_eq!(d.in_progress(), 1); // the late fragment starts a new one
        d.flush(Ts::MAX);
        assert_eq!(d.in_progress(), 0);
        assert_eq!(d.buffered_bytes(), 0);
        // Within the timeout it completes.
        let out: Vec<_> = frames
            .iter()
            .enumerate()
            .filter_map(|(i, f)| d.push(&frag(f, 200 * SEC + i as Ts * 4 * SEC)))
            .collect();
        assert_eq!(out.len(), 1);
        check_udp(&out[0], &data);
        assert_eq!(out[0].ts, 208 * SEC);
    }

    #[test]
    fn datagrams_missing_fragments_name_their_flow_when_the_first_came() {
        let data = body(1200, 9);
        let mut d = Defragmenter::new(DefragConfig {
            timeout: 10 * SEC,
            ..Default::default()
        });
        // IPv4: first and middle fragment, the last never comes.
        let v4 = v4_frames(&data, 3, 7);
        d.push(&frag(&v4[0], SEC));
        d.push(&frag(&v4[1], SEC));
        // IPv6: only the last fragments (no ports): not reported.
        let v6 = v6_frames(&data, 3, 8);
        d.push(&frag(&v6[1], SEC));
        d.push(&frag(&v6[2], SEC));
        d.expire(5 * SEC);
        assert!(d.take_incomplete().is_empty(), "not timed out yet");
        d.expire(12 * SEC);
        let lost = d.take_incomplete();
        assert_eq!(lost.len(), 1, "{lost:?}");
        let l = lost[0];
        assert_eq!((l.src, l.dst), (IpAddr::V4(A), IpAddr::V4(B)));
        assert_eq!((l.proto, l.sport, l.dport), (PROTO_UDP, 1000, 2000));
        assert_eq!((l.ts, l.fragments, l.len), (SEC, 2, None));
        let first_two = (frag(&v4[0], 0).data.len() + frag(&v4[1], 0).data.len()) as u32;
        assert_eq!(l.bytes, first_two);
        assert_eq!(d.stats().dropped_timeout, 2);
        assert_eq!(d.stats().incomplete_with_first, 1);
        assert!(d.take_incomplete().is_empty(), "taken once");

        // At the end of the input: lost if its first fragment came at least
        // END_GRACE before the last packet, else perhaps cut by the capture.
        let mut d = Defragmenter::default();
        d.push(&frag(&v4_frames(&data, 3, 1)[0], 100 * SEC));
        d.push(&frag(&v4_frames(&data, 3, 2)[0], 102 * SEC));
        d.flush(102 * SEC + SEC / 2);
        let lost = d.take_incomplete();
        assert_eq!(lost.iter().map(|l| l.ts).collect::<Vec<_>>(), [100 * SEC]);
        assert_eq!(d.stats().incomplete_at_end, 1);
        assert_eq!(d.stats().incomplete_with_first, 1);
    }

    #[test]
    fn caps_evict_the_oldest() {
        let mut d = Defragmenter::new(DefragConfig {
            max_datagrams: 2,
            ..Default::default()
        });
        let f1 = v4_frames(&body(100, 1), 2, 1);
        let f2 = v4_frames(&body(100, 2), 2, 2);
        let f3 = v4_frames(&body(100, 3), 2, 3);
        d.push(&frag(&f1[0], 0));
        d.push(&frag(&f2[0], 0));
        d.push(&frag(&f3[0], 0)); // evicts datagram 1
        assert_eq!(d.stats().dropped_cap, 1);
        assert!(d.push(&frag(&f2[1], 0)).is_some());
        assert!(d.push(&frag(&f3[1], 0)).is_some());
        assert!(d.push(&frag(&f1[1], 0)).is_none());

        // Byte budget.
        let mut d = Defragmenter::new(DefragConfig {
            max_total_bytes: 3000,
            ..Default::default()
        });
        let big1 = v4_frames(&body(4000, 1), 4, 1);
        let big2 = v4_frames(&body(2000, 1), 4, 2);
        d.push(&frag(&big2[0], 0));
        assert!(d.buffered_bytes() <= 3000);
        // The last fragment of a 4000-byte datagram alone is over budget.
        d.push(&frag(&big1[3], 0));
        assert!(d.buffered_bytes() <= 3000);
        assert_eq!(d.stats().dropped_cap, 2);
    }

    #[test]
    fn hostile_fragments() {
        let dg = Frame::raw()
            .ipv4(A, B)
            .ip_id(5)
            .udp(1000, 2000)
            .payload(&[1; 64])
            .build_ip();
        let mut d = Defragmenter::default();
        // Ping of death: offset 65528 + 16 bytes > 65535.
        let mut f = ipv4_fragment(&dg, 0, 16, false);
        f[6..8].copy_from_slice(&0x1fffu16.to_be_bytes());
        assert!(d.push(&frag(&f, 0)).is_none());
        // Zero-length fragment with more-fragments set.
        let f = ipv4_fragment(&dg, 8, 0, true);
        assert!(d.push(&frag(&f, 0)).is_none());
        // Non-multiple-of-8 middle fragment.
        let f = ipv4_fragment(&dg, 8, 13, true);
        assert!(d.push(&frag(&f, 0)).is_none());
        assert_eq!(d.stats().dropped_bad, 3);
        assert_eq!(d.in_progress(), 0);
        // Snaplen-cut fragment.
        let f = ipv4_fragment(&dg, 8, 40, true);
        let fr = decode(LinkType::RAW, 0, 0, &f[..40])
            .unwrap()
            .fragment()
            .unwrap();
        assert!(fr.missing > 0);
        assert!(d.push(&fr).is_none());
        assert_eq!(d.stats().dropped_truncated, 1);
        // A zero-length last fragment is fine when consistent.
        d.push(&frag(&ipv4_fragment(&dg, 0, 72, true), 0));
        let r = d.push(&frag(&ipv4_fragment(&dg, 72, 0, false), 0)).unwrap();
        check_udp(&r, &[1; 64]);
    }

    #[test]
    fn ipv6_fragment_header_removed() {
        let data = body(200, 9);
        let frames = v6_frames(&data, 3, 0x1234);
        let mut d = Defragmenter::default();
        let out = push_all(&mut d, &frames, 0);
        let r = &out[0];
        assert!(r.v6);
        // hop-by-hop now points at UDP, and no fragment header remains.
        assert_eq!(r.bytes[6], 0);
        assert_eq!(r.bytes[40], PROTO_UDP);
        assert_eq!(r.bytes.len(), 40 + 8 + 8 + 200);
        check_udp(r, &data);
        // Fragments with another ID or a mismatching address do not mix.
        let other = v6_frames(&data, 3, 0x1235);
        let mut d = Defragmenter::default();
        assert!(d.push(&frag(&frames[0], 0)).is_none());
        assert!(d.push(&frag(&other[1], 0)).is_none());
        assert!(d.push(&frag(&frames[2], 0)).is_none());
        assert_eq!(d.in_progress(), 2);
        let dg = Frame::raw()
            .ipv6(a6(), b6())
            .udp(1000, 2000)
            .payload(&data)
            .build_ip();
        let f = ipv6_fragment(&dg, 0, 8, true, 1);
        assert!(d.push(&frag(&f, 0)).is_none());
        assert_eq!(d.in_progress(), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary fragment series (offsets, lengths, flags, IDs, times)
        /// never panic and never leak accounting.
        #[test]
        fn random_series_never_panic(
            v6 in any::<bool>(),
            series in proptest::collection::vec(
                (0u16..0x2000, 0usize..200, any::<bool>(), 0u16..3, 0u64..40),
                1..40,
            ),
        ) {
            let dg = if v6 {
                Frame::raw().ipv6(a6(), b6()).udp(1000, 2000).payload(&[3; 2000]).build_ip()
            } else {
                Frame::raw().ipv4(A, B).udp(1000, 2000).payload(&[3; 2000]).build_ip()
            };
            let mut d = Defragmenter::new(DefragConfig {
                max_datagrams: 2,
                max_total_bytes: 100_000,
                ..Default::default()
            });
            for (off8, len, more, id, t) in series {
                let mut f = if v6 {
                    ipv6_fragment(&dg, 0, len, more, id as u32)
                } else {
                    let mut f = ipv4_fragment(&dg, 0, len, more);
                    f[4..6].copy_from_slice(&id.to_be_bytes());
                    f
                };
                // Patch the fragment offset directly (beyond the datagram too).
                if v6 {
                    let fo = (off8 << 3) | more as u16;
                    f[42..44].copy_from_slice(&fo.to_be_bytes());
                } else {
                    let fo = (if more { 0x2000 } else { 0 }) | off8;
                    f[6..8].copy_from_slice(&fo.to_be_bytes());
                }
                if let Ok(Decoded::Fragment(fr)) = decode(LinkType::RAW, t * SEC, 0, &f) {
                    if let Some(r) = d.push(&fr) {
                        let _ = r.decode();
                        prop_assert!(r.bytes.len() <= 65535 + 40);
                    }
                }
                prop_assert!(d.in_progress() <= 2);
                prop_assert!(d.buffered_bytes() <= 100_000);
            }
            d.flush(Ts::MAX);
            prop_assert_eq!(d.buffered_bytes(), 0);
        }
    }
}
