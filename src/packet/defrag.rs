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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

    /// Drops datagrams older than the timeout at capture time `now`.
    pub fn expire(&mut self, now: Ts) {
        self.last_expire = now;
        let timeout = self.cfg.timeout;
        let mut freed = 0usize;
        let mut dropped = 0u64;
        self.map.retain(|_, e| {
            if now.saturating_sub(e.first_ts) > timeout {
                freed += e.bytes();
                dropped += 1;
                false
            } else {
                true
            }
        });
        self.total_bytes -= freed;
        self.stats.dropped_timeout += dropped;
    }

    /// Drops everything in progress (end of input); counted as timeouts.
    pub fn flush(&mut self) {
        self.stats.dropped_timeout += self.map.len() as u64;
        self.map.clear();
        self.total_bytes = 0;
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

    /// Adds one fragment; returns the datagram when it completes.
    pub fn push(&mut self, f: &Fragment<'_>) -> Option<Reassembled> {
        self.stats.fragments_seen += 1;
        // Expiry scans are amortized: at most once per second of capture time.
        if f.ts.saturating_sub(self.last_expire) >= 1_000_000_000 || f.ts < self.last_expire {
            self.expire(f.ts);
        }
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
        let (start, end) = (start as u32, end as u32);
        let key = Key::of(f);

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
