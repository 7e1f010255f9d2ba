//! Per-direction TCP byte-stream reassembly for application parsers
//! (DCE/RPC first).
//!
//! One [`StreamReassembler`] follows one direction of one TCP connection and
//! turns segments, as captured (reordered, retransmitted, overlapping, with
//! holes), into an in-order sequence of [`Chunk`]s: runs of stream bytes and
//! declared holes. A parser fed these chunks sees every byte at most once and
//! in stream order, and learns exactly how many bytes it missed.
//!
//! Rules:
//! - The stream starts at `isn + 1` when the SYN was seen ([`on_syn`]);
//!   otherwise the first segment carrying data (or a FIN) fixes the start
//!   (mid-stream pickup).
//! - In-order data is handed out immediately, as the caller's own slice (no
//!   copy, no allocation).
//! - Bytes before the expected sequence number are retransmissions and are
//!   dropped (counted); a segment straddling it delivers only its new part.
//! - Segments ahead of the expected sequence number are copied into a buffer
//!   bounded by `max_buffered` bytes (and a segment count derived from it).
//!   **First received wins**: where a later segment overlaps bytes already
//!   buffered, the buffered bytes are kept and the later copy is dropped
//!   (counted as duplicate). This also holds when an in-order segment
//!   overlaps buffered data.
//! - When the bound would be exceeded, the hole before the lowest pending
//!   data is declared lost ([`Chunk::Gap`]) and whatever becomes contiguous is
//!   delivered; the buffer never grows beyond the bound.
//! - Sequence numbers wrap at 2^32. Segments more than 1 GiB ahead of or
//!   behind the expected sequence number are garbage and dropped (counted).
//! - The first FIN fixes the end of the stream; data beyond it is dropped
//!   (counted).
//!
//! [`on_syn`]: StreamReassembler::on_syn

use std::collections::BTreeMap;

/// Segments starting further ahead than this are garbage, not buffered.
const MAX_AHEAD: i64 = 1 << 30;
/// Segments starting further behind than this are garbage (stale).
const MAX_BEHIND: i64 = 1 << 30;
/// Longer payloads are garbage (no real TCP segment comes close).
const MAX_SEGMENT_LEN: usize = 1 << 30;
/// Buffered segments allowed per `max_buffered` byte budget: one per this
/// many bytes, so per-segment bookkeeping cannot dwarf the byte bound when
/// an attacker sends many tiny out-of-order segments.
const BYTES_PER_SEGMENT: usize = 64;
/// Floor of the segment-count bound.
const MIN_SEGMENTS: usize = 16;

/// What a reassembler hands to its consumer, in stream order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// The next bytes of the stream.
    Data(&'a [u8]),
    /// The next `missing` bytes of the stream were never seen and never will
    /// be delivered (buffer bound hit, or end of flow with holes).
    Gap { missing: u32 },
}

/// Counters of one reassembler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Bytes handed out as [`Chunk::Data`].
    pub delivered_bytes: u64,
    /// Retransmitted or overlapping bytes dropped because the same stream
    /// position was already delivered or buffered.
    pub duplicate_bytes: u64,
    /// Out-of-order segments copied into the buffer.
    pub ooo_segments: u64,
    /// Holes declared ([`Chunk::Gap`] emitted).
    pub gaps: u64,
    /// Bytes covered by declared holes.
    pub gap_bytes: u64,
    /// Segments that hit the buffer bound (each may declare several holes).
    pub overflows: u64,
    /// Segments dropped as garbage (absurdly far ahead/behind, or too long).
    pub garbage_segments: u64,
    /// Payload bytes of garbage segments.
    pub garbage_bytes: u64,
    /// Bytes beyond the FIN, dropped.
    pub after_fin_bytes: u64,
}

/// Reassembles one direction of a TCP connection. See the module docs.
#[derive(Debug)]
pub struct StreamReassembler {
    /// Sequence number of the next byte to deliver; `None` until the start
    /// is known.
    next_seq: Option<u32>,
    /// Stream offset of `next_seq`: bytes delivered plus bytes declared
    /// missing. Offsets are 64-bit, so they do not wrap.
    next_abs: u64,
    /// Stream offset where the FIN sits (end of the data).
    fin_abs: Option<u64>,
    /// Out-of-order data keyed by stream offset; all keys are greater than
    /// `next_abs`, and segments never overlap.
    segs: BTreeMap<u64, Vec<u8>>,
    /// Bytes held in `segs`.
    buffered: usize,
    max_buffered: usize,
    max_segments: usize,
    stats: ReassemblyStats,
}

impl StreamReassembler {
    /// `max_buffered` bounds the out-of-order bytes held (e.g. 64 KiB per
    /// direction); the number of held segments is bounded too, to one per
    /// 64 bytes of that budget (at least 16).
    pub fn new(max_buffered: usize) -> Self {
        StreamReassembler {
            next_seq: None,
            next_abs: 0,
            fin_abs: None,
            segs: BTreeMap::new(),
            buffered: 0,
            max_buffered,
            max_segments: (max_buffered / BYTES_PER_SEGMENT).max(MIN_SEGMENTS),
            stats: ReassemblyStats::default(),
        }
    }

    /// The SYN was seen: the stream starts at `isn + 1`. Ignored once the
    /// start is known (a SYN after data is the flow table's business: a new
    /// connection gets a new reassembler).
    pub fn on_syn(&mut self, isn: u32) {
        if self.next_seq.is_none() {
            self.next_seq = Some(isn.wrapping_add(1));
        }
    }

    /// Feeds one segment (`seq` of its first payload byte, its payload and
    /// its FIN flag); whatever becomes deliverable is passed to `emit`.
    pub fn push(&mut self, seq: u32, data: &[u8], fin: bool, emit: &mut dyn FnMut(Chunk<'_>)) {
        if data.is_empty() && !fin {
            return;
        }
        if data.len() > MAX_SEGMENT_LEN {
            self.garbage(data.len());
            return;
        }
        let next_seq = *self.next_seq.get_or_insert(seq);
        let rel = i64::from(seq.wrapping_sub(next_seq) as i32);
        if !(-MAX_BEHIND..=MAX_AHEAD).contains(&rel) {
            self.garbage(data.len());
            return;
        }
        let next = self.next_abs as i64;
        let mut start = next + rel;
        let mut end = start + data.len() as i64;
        let mut data = data;

        if fin && self.fin_abs.is_none() && end >= next {
            self.set_fin(end as u64);
        }
        if let Some(f) = self.fin_abs {
            let f = f as i64;
            if end > f {
                let new_end = start.max(f);
                self.stats.after_fin_bytes += (end - new_end) as u64;
                data = &data[..(new_end - start) as usize];
                end = new_end;
            }
        }
        if end <= next {
            self.stats.duplicate_bytes += data.len() as u64;
            return;
        }
        if start < next {
            let skip = (next - start) as usize;
            self.stats.duplicate_bytes += skip as u64;
            data = &data[skip..];
            start = next;
        }
        if start == next {
            self.deliver(data, emit);
        } else {
            self.place_ahead(start as u64, data, emit);
        }
    }

    /// For a consumer that does not need these bytes (it is passing over
    /// the rest of a message it has already judged): when the `len` bytes
    /// at `seq` are exactly the next ones of the stream, nothing is held
    /// out of order and no FIN is known, accounts for them as [`push`]
    /// would deliver them (counted, the stream advances) without handing
    /// them out, and returns `true`. Otherwise does nothing and returns
    /// `false`: the caller then pushes the segment as usual.
    ///
    /// [`push`]: StreamReassembler::push
    pub fn pass_in_order(&mut self, seq: u32, len: usize) -> bool {
        if len == 0
            || len > MAX_SEGMENT_LEN
            || self.next_seq != Some(seq)
            || self.fin_abs.is_some()
            || !self.segs.is_empty()
        {
            return false;
        }
        self.stats.delivered_bytes += len as u64;
        self.advance(len as u64);
        true
    }

    /// Bytes `[seq, seq + len)` were on the wire but not captured (the
    /// snaplen cut the segment that carried them): when they start exactly
    /// where the stream expects its next byte, declare them missing at once
    /// (one `Gap`) rather than waiting for the buffer bound or the end.
    pub fn skip(&mut self, seq: u32, len: u32, emit: &mut dyn FnMut(Chunk<'_>)) {
        if len == 0 || self.next_seq != Some(seq) {
            return;
        }
        let target = self.next_abs + u64::from(len);
        let target = self.fin_abs.map_or(target, |f| target.min(f));
        self.jump_to(target, emit);
        self.drain(emit);
    }

    /// End of flow: declares every remaining hole and delivers everything
    /// buffered, in order. If the FIN was seen, a hole before it is declared
    /// too, so delivered plus missing bytes add up to the stream length.
    pub fn flush(&mut self, emit: &mut dyn FnMut(Chunk<'_>)) {
        while let Some((&k, _)) = self.segs.first_key_value() {
            self.jump_to(k, emit);
            self.drain(emit);
        }
        if let Some(f) = self.fin_abs {
            self.jump_to(f, emit);
        }
    }

    /// Heap bytes held for out-of-order data: the bytes, plus about 64
    /// bytes per held segment (its `Vec` header and its share of a B-tree
    /// node), for memory budgets.
    pub fn heap_bytes(&self) -> usize {
        self.buffered + self.segs.len() * 64
    }

    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Out-of-order bytes currently held.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Every byte up to the FIN was delivered or declared missing.
    pub fn is_finished(&self) -> bool {
        self.fin_abs == Some(self.next_abs)
    }

    fn garbage(&mut self, len: usize) {
        self.stats.garbage_segments += 1;
        self.stats.garbage_bytes += len as u64;
    }

    /// Records the end of the stream and drops buffered bytes beyond it.
    fn set_fin(&mut self, f: u64) {
        self.fin_abs = Some(f);
        let tail = self.segs.split_off(&f);
        for v in tail.values() {
            self.buffered -= v.len();
            self.stats.after_fin_bytes += v.len() as u64;
        }
        if let Some((&k, v)) = self.segs.iter_mut().next_back() {
            let keep = (f - k) as usize;
            if v.len() > keep {
                self.buffered -= v.len() - keep;
                self.stats.after_fin_bytes += (v.len() - keep) as u64;
                v.truncate(keep);
            }
        }
    }

    fn advance(&mut self, n: u64) {
        self.next_abs += n;
        self.next_seq = self.next_seq.map(|s| s.wrapping_add(n as u32));
    }

    fn emit_data(&mut self, d: &[u8], emit: &mut dyn FnMut(Chunk<'_>)) {
        if d.is_empty() {
            return;
        }
        self.stats.delivered_bytes += d.len() as u64;
        emit(Chunk::Data(d));
        self.advance(d.len() as u64);
    }

    /// Declares the bytes up to stream offset `target` missing.
    fn jump_to(&mut self, target: u64, emit: &mut dyn FnMut(Chunk<'_>)) {
        if target <= self.next_abs {
            return;
        }
        let missing = target - self.next_abs;
        self.stats.gaps += 1;
        self.stats.gap_bytes += missing;
        emit(Chunk::Gap {
            missing: u32::try_from(missing).unwrap_or(u32::MAX),
        });
        self.advance(missing);
    }

    /// Delivers `data`, which starts exactly at `next_abs`, interleaved with
    /// buffered segments it overlaps (those win), then whatever buffered
    /// data becomes contiguous. Zero copy for the caller's bytes.
    fn deliver(&mut self, mut data: &[u8], emit: &mut dyn FnMut(Chunk<'_>)) {
        while !data.is_empty() {
            let end = self.next_abs + data.len() as u64;
            match self.segs.first_key_value() {
                Some((&k, _)) if k < end => {
                    let own = k.saturating_sub(self.next_abs) as usize;
                    let (head, rest) = data.split_at(own);
                    self.emit_data(head, emit);
                    data = rest;
                    if let Some((k, v)) = self.segs.pop_first() {
                        self.buffered -= v.len();
                        // k == next_abs by the invariant; be robust anyway.
                        let stale = (self.next_abs - k.min(self.next_abs)) as usize;
                        let stale = stale.min(v.len());
                        self.stats.duplicate_bytes += stale as u64;
                        let v = &v[stale..];
                        let skip = v.len().min(data.len());
                        self.stats.duplicate_bytes += skip as u64;
                        data = &data[skip..];
                        self.emit_data(v, emit);
                    }
                }
                _ => {
                    self.emit_data(data, emit);
                    break;
                }
            }
        }
        self.drain(emit);
    }

    /// Delivers buffered segments that are contiguous with `next_abs`.
    fn drain(&mut self, emit: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(entry) = self.segs.first_entry() {
            let k = *entry.key();
            if k > self.next_abs {
                break;
            }
            let v = entry.remove();
            self.buffered -= v.len();
            let skip = ((self.next_abs - k) as usize).min(v.len());
            self.stats.duplicate_bytes += skip as u64;
            self.emit_data(&v[skip..], emit);
        }
    }

    /// The parts of `[s, e)` not already buffered.
    fn uncovered(&self, s: u64, e: u64) -> Vec<(u64, u64)> {
        let mut pieces = Vec::new();
        let mut cur = s;
        let lo = self.segs.range(..s).next_back().map_or(s, |(&k, _)| k);
        for (&k, v) in self.segs.range(lo..e) {
            let ke = k + v.len() as u64;
            if ke <= cur {
                continue;
            }
            if k > cur {
                pieces.push((cur, k));
            }
            cur = ke;
            if cur >= e {
                break;
            }
        }
        if cur < e {
            pieces.push((cur, e));
        }
        pieces
    }

    /// Buffers `data` at stream offset `start` (ahead of `next_abs`),
    /// declaring holes when the bound would be exceeded.
    fn place_ahead(&mut self, mut start: u64, mut data: &[u8], emit: &mut dyn FnMut(Chunk<'_>)) {
        let mut overflowed = false;
        loop {
            if data.is_empty() {
                return;
            }
            if start < self.next_abs {
                let skip = ((self.next_abs - start) as usize).min(data.len());
                self.stats.duplicate_bytes += skip as u64;
                data = &data[skip..];
                start = self.next_abs;
                continue;
            }
            if start == self.next_abs {
                self.deliver(data, emit);
                return;
            }
            let end = start + data.len() as u64;
            let pieces = self.uncovered(start, end);
            let new_bytes: usize = pieces.iter().map(|&(a, b)| (b - a) as usize).sum();
            if new_bytes == 0 {
                self.stats.duplicate_bytes += data.len() as u64;
                return;
            }
            if self.buffered + new_bytes <= self.max_buffered
                && self.segs.len() + pieces.len() <= self.max_segments
            {
                self.stats.duplicate_bytes += (data.len() - new_bytes) as u64;
                for (a, b) in pieces {
                    let piece = &data[(a - start) as usize..(b - start) as usize];
                    self.segs.insert(a, piece.to_vec());
                }
                self.buffered += new_bytes;
                self.stats.ooo_segments += 1;
                return;
            }
            if !overflowed {
                overflowed = true;
                self.stats.overflows += 1;
            }
            // Give up on the hole before the lowest pending data (buffered
            // or this segment) and deliver what becomes contiguous.
            let target = match self.segs.first_key_value() {
                Some((&k, _)) if k < start => k,
                _ => start,
            };
            self.jump_to(target, emit);
            self.drain(emit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Out {
        D(Vec<u8>),
        G(u32),
    }

    fn own(c: Chunk<'_>) -> Out {
        match c {
            Chunk::Data(d) => {
                assert!(!d.is_empty(), "empty Data chunk");
                Out::D(d.to_vec())
            }
            Chunk::Gap { missing } => {
                assert!(missing > 0, "empty Gap chunk");
                Out::G(missing)
            }
        }
    }

    fn push(r: &mut StreamReassembler, seq: u32, data: &[u8], fin: bool) -> Vec<Out> {
        let mut out = Vec::new();
        r.push(seq, data, fin, &mut |c| out.push(own(c)));
        out
    }

    fn flush(r: &mut StreamReassembler) -> Vec<Out> {
        let mut out = Vec::new();
        r.flush(&mut |c| out.push(own(c)));
        out
    }

    fn d(b: &[u8]) -> Out {
        Out::D(b.to_vec())
    }

    #[test]
    fn skip_declares_a_snaplen_hole_at_once() {
        let mut r = StreamReassembler::new(1024);
        r.on_syn(99);
        let mut out = Vec::new();
        r.push(100, b"abcd", false, &mut |c| out.push(own(c)));
        r.skip(104, 6, &mut |c| out.push(own(c)));
        r.push(110, b"xyz", false, &mut |c| out.push(own(c)));
        assert_eq!(
            out,
            vec![Out::D(b"abcd".to_vec()), Out::G(6), Out::D(b"xyz".to_vec())]
        );
        // Not at the expected position: ignored.
        r.skip(500, 10, &mut |c| out.push(own(c)));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn in_order_is_zero_copy() {
        let mut r = StreamReassembler::new(1024);
        r.on_syn(999);
        let seg = b"hello".to_vec();
        let mut ptrs = Vec::new();
        r.push(1000, &seg, false, &mut |c| {
            if let Chunk::Data(d) = c {
                ptrs.push((d.as_ptr(), d.len()));
            }
        });
        assert_eq!(ptrs, vec![(seg.as_ptr(), 5)]);
        assert_eq!(push(&mut r, 1005, b" world", false), vec![d(b" world")]);
        // Pure ACKs are nothing.
        assert_eq!(push(&mut r, 1011, b"", false), vec![]);
        assert_eq!(r.stats().delivered_bytes, 11);
        assert_eq!(r.buffered(), 0);
        assert_eq!(flush(&mut r), vec![]);
    }

    #[test]
    fn pass_in_order_is_push_without_the_bytes() {
        let mut a = StreamReassembler::new(1024);
        let mut b = StreamReassembler::new(1024);
        a.on_syn(99);
        b.on_syn(99);
        assert_eq!(push(&mut a, 100, b"abcd", false), vec![d(b"abcd")]);
        assert!(b.pass_in_order(100, 4));
        assert_eq!(a.stats(), b.stats());
        // Not the next byte, or data held out of order, or a FIN known:
        // refused, and nothing changes.
        assert!(!b.pass_in_order(105, 3));
        assert_eq!(push(&mut b, 110, b"xyz", false), vec![]);
        assert!(!b.pass_in_order(104, 6));
        assert_eq!(
            push(&mut b, 104, b"efghij", false),
            vec![d(b"efghij"), d(b"xyz")]
        );
        assert_eq!(push(&mut b, 113, b"", true), vec![]);
        assert!(!b.pass_in_order(113, 1));
        assert!(!b.pass_in_order(113, 0));
        assert_eq!(b.stats().delivered_bytes, 13);
    }

    #[test]
    fn retransmission_is_dropped() {
        let mut r = StreamReassembler::new(1024);
        r.on_syn(0);
        assert_eq!(push(&mut r, 1, b"abcd", false), vec![d(b"abcd")]);
        assert_eq!(push(&mut r, 1, b"abcd", false), vec![]);
        assert_eq!(push(&mut r, 3, b"cd", false), vec![]);
        assert_eq!(r.stats().duplicate_bytes, 6);
        assert_eq!(r.stats().delivered_bytes, 4);
    }

    #[test]
    fn partial_overlap_delivers_only_new_part() {
        let mut r = StreamReassembler::new(1024);
        r.on_syn(0);
        assert_eq!(push(&mut r, 1, b"abcd", false), vec![d(b"abcd")]);
        assert_eq!(push(&mut r, 3, b"cdef", false), vec![d(b"ef")]);
        assert_eq!(r.stats().duplicate_bytes, 2);
    }

    #[test]
    fn out_of_order_fill() {
        let mut r = StreamReassembler::new(1024);
        r.on_syn(0);
        assert_eq!(push(&mut r, 9, b"ijk", false), vec![]);
        assert_eq!(push(&mut r, 5, b"efg", false), vec![]);
        assert_eq!(r.buffered(), 6);
        assert_eq!(r.stats().ooo_segments, 2);
        assert_eq!(push(&mut r, 1, b"abcd", false), vec![d(b"abcd"), d(b"efg")]);
        assert_eq!(push(&mut r, 8, b"h", false), vec![d(b"h"), d(b"ijk")]);
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.stats().delivered_bytes, 11);
    }

    #[test]
    fn first_received_wins_for_overlaps() {
        let mut r = StreamReassembler::new(1024);
        r.on_syn(0);
        // Buffered "XYZ" at 5..8; later "efghij" at 5..11 only adds 8..11.
        assert_eq!(push(&mut r, 6, b"XYZ", false), vec![]);
        assert_eq!(push(&mut r, 6, b"fghijk", false), vec![]);
        assert_eq!(r.buffered(), 6);
        assert_eq!(r.stats().duplicate_bytes, 3);
        // An in-order segment overlapping buffered data: buffered bytes win.
        assert_eq!(
            push(&mut r, 1, b"abcdefg", false),
            vec![d(b"abcde"), d(b"XYZ"), d(b"ijk")]
        );
        assert_eq!(r.stats().delivered_bytes, 11);
        assert_eq!(r.stats().duplicate_bytes, 5);
    }

    #[test]
    fn wraparound() {
        let a = [1u8; 8]; // 0xffff_fff0..0xffff_fff8
        let b = [2u8; 8]; // 0xffff_fff8..0
        let c = [3u8; 8]; // 0..8
        let mut r = StreamReassembler::new(1024);
        r.on_syn(0xffff_ffef);
        assert_eq!(push(&mut r, 0, &c, false), vec![]);
        assert_eq!(push(&mut r, 0xffff_fff8, &b, false), vec![]);
        assert_eq!(
            push(&mut r, 0xffff_fff0, &a, false),
            vec![d(&a), d(&b), d(&c)]
        );
        // Retransmission across the wrap.
        assert_eq!(push(&mut r, 0xffff_fffc, &[9; 8], false), vec![]);
        assert_eq!(push(&mut r, 4, b"abcdef", false), vec![d(b"ef")]);
        assert_eq!(r.stats().delivered_bytes, 26);
    }

    #[test]
    fn mid_stream_start() {
        let mut r = StreamReassembler::new(1024);
        assert_eq!(push(&mut r, 5000, b"", false), vec![]);
        assert_eq!(push(&mut r, 5000, b"xyz", false), vec![d(b"xyz")]);
        // Data before the pickup point is old.
        assert_eq!(push(&mut r, 4990, b"0123456789", false), vec![]);
        assert_eq!(push(&mut r, 5003, b"!", false), vec![d(b"!")]);
        // SYN after the start is known changes nothing.
        r.on_syn(0);
        assert_eq!(push(&mut r, 5004, b"?", false), vec![d(b"?")]);
    }

    #[test]
    fn garbage_far_ahead_or_behind() {
        let mut r = StreamReassembler::new(1 << 20);
        r.on_syn(0);
        assert_eq!(push(&mut r, 1, b"a", false), vec![d(b"a")]);
        assert_eq!(push(&mut r, 2 + (1 << 30) + 1, b"far", false), vec![]);
        assert_eq!(
            push(&mut r, 2u32.wrapping_sub((1 << 30) + 1), b"old", false),
            vec![]
        );
        assert_eq!(push(&mut r, 0x8000_0002, b"half", false), vec![]);
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.stats().garbage_segments, 3);
        assert_eq!(r.stats().garbage_bytes, 10);
        assert_eq!(push(&mut r, 2, b"b", false), vec![d(b"b")]);
    }

    #[test]
    fn gap_on_overflow() {
        let mut r = StreamReassembler::new(8);
        r.on_syn(0);
        assert_eq!(push(&mut r, 1, b"ab", false), vec![d(b"ab")]);
        // Hole at 3..5; buffer 5..10 (5 bytes) and 12..15 (3 bytes): full.
        assert_eq!(push(&mut r, 5, b"efghi", false), vec![]);
        assert_eq!(push(&mut r, 12, b"lmn", false), vec![]);
        assert_eq!(r.buffered(), 8);
        // One more byte does not fit: give up on 3..5, deliver 5..10; the
        // new segment then fits.
        assert_eq!(push(&mut r, 16, b"p", false), vec![Out::G(2), d(b"efghi")]);
        assert_eq!(r.buffered(), 4);
        assert_eq!(r.stats().overflows, 1);
        assert_eq!(r.stats().gaps, 1);
        assert_eq!(r.stats().gap_bytes, 2);
        // A segment larger than the bound with a hole before it is handed
        // out directly after declaring the holes before it.
        let big = [7u8; 20];
        assert_eq!(
            push(&mut r, 20, &big, false),
            vec![Out::G(2), d(b"lmn"), Out::G(1), d(b"p"), Out::G(3), d(&big)]
        );
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.stats().overflows, 2);
        assert_eq!(r.stats().delivered_bytes + r.stats().gap_bytes, 39);
    }

    #[test]
    fn overflow_prefers_earlier_new_segment() {
        let mut r = StreamReassembler::new(4);
        r.on_syn(0);
        assert_eq!(push(&mut r, 11, b"klmn", false), vec![]);
        // The new segment lies before the buffered one: skip only up to it.
        assert_eq!(
            push(&mut r, 5, b"efghij", false),
            vec![Out::G(4), d(b"efghij"), d(b"klmn")]
        );
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn segment_count_is_bounded() {
        let mut r = StreamReassembler::new(64);
        r.on_syn(0);
        for i in 0..40u32 {
            push(&mut r, 10 + 2 * i, b"x", false);
        }
        assert!(r.buffered() <= 16);
        assert!(r.stats().overflows > 0);
    }

    #[test]
    fn flush_declares_holes() {
        let mut r = StreamReassembler::new(1024);
        r.on_syn(0);
        assert_eq!(push(&mut r, 1, b"ab", false), vec![d(b"ab")]);
        assert_eq!(push(&mut r, 10, b"jk", false), vec![]);
        assert_eq!(push(&mut r, 5, b"ef", false), vec![]);
        assert_eq!(
            flush(&mut r),
            vec![Out::G(2), d(b"ef"), Out::G(3), d(b"jk")]
        );
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.stats().gaps, 2);
        assert_eq!(flush(&mut r), vec![]);
    }

    #[test]
    fn fin_ends_the_stream() {
        let mut r = StreamReassembler::new(1024);
        r.on_syn(0);
        assert_eq!(push(&mut r, 1, b"abc", true), vec![d(b"abc")]);
        assert!(r.is_finished());
        assert_eq!(push(&mut r, 4, b"zzz", false), vec![]);
        assert_eq!(push(&mut r, 4, b"", true), vec![]);
        assert_eq!(r.stats().after_fin_bytes, 3);
        assert_eq!(push(&mut r, 2, b"bcde", false), vec![]);
        assert_eq!(r.stats().duplicate_bytes, 2);
        assert_eq!(r.stats().after_fin_bytes, 5);
    }

    #[test]
    fn fin_out_of_order_and_trailing_hole() {
        let mut r = StreamReassembler::new(1024);
        r.on_syn(0);
        assert_eq!(push(&mut r, 20, b"tail", false), vec![]);
        // FIN right after "ghi" (seq 7..10): buffered data beyond it is
        // dropped.
        assert_eq!(push(&mut r, 7, b"ghi", true), vec![]);
        assert_eq!(r.buffered(), 3);
        assert_eq!(r.stats().after_fin_bytes, 4);
        assert_eq!(push(&mut r, 1, b"ab", false), vec![d(b"ab")]);
        assert!(!r.is_finished());
        assert_eq!(flush(&mut r), vec![Out::G(4), d(b"ghi")]);
        assert!(r.is_finished());

        // Trailing hole before a bare FIN.
        let mut r = StreamReassembler::new(1024);
        r.on_syn(0);
        push(&mut r, 1, b"ab", false);
        assert_eq!(push(&mut r, 6, b"", true), vec![]);
        assert_eq!(flush(&mut r), vec![Out::G(3)]);
        assert!(r.is_finished());
    }

    #[test]
    fn bare_fin_mid_stream() {
        let mut r = StreamReassembler::new(1024);
        assert_eq!(push(&mut r, 77, b"", true), vec![]);
        assert!(r.is_finished());
        assert_eq!(push(&mut r, 77, b"x", false), vec![]);
        assert_eq!(r.stats().after_fin_bytes, 1);
    }

    /// A stream, its start, and the deliveries: (offset, len, fin) in push
    /// order, covering the whole stream, with duplicates and repacketized
    /// overlaps.
    #[derive(Debug, Clone)]
    struct Case {
        stream: Vec<u8>,
        isn: u32,
        syn: bool,
        pushes: Vec<(usize, usize, bool)>,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            prop::collection::vec(any::<u8>(), 1..1500),
            prop_oneof![any::<u32>(), 0xffff_f800u32..=u32::MAX],
            any::<bool>(),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u32>()), 0..40),
            prop::collection::vec(
                (
                    any::<prop::sample::Index>(),
                    any::<prop::sample::Index>(),
                    any::<u32>(),
                ),
                0..20,
            ),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(|(stream, isn, syn, cuts, dups, fin_key, fin_len)| {
                let len = stream.len();
                let mut bounds: Vec<usize> = cuts.iter().map(|(i, _)| i.index(len)).collect();
                bounds.push(0);
                bounds.push(len);
                bounds.sort_unstable();
                bounds.dedup();
                let mut keyed: Vec<(u32, (usize, usize, bool))> = Vec::new();
                for (n, w) in bounds.windows(2).enumerate() {
                    let key = cuts.get(n).map_or(n as u32, |c| c.1);
                    keyed.push((key, (w[0], w[1] - w[0], w[1] == len)));
                }
                for (a, b, key) in dups {
                    let (a, b) = (a.index(len + 1), b.index(len + 1));
                    let (a, b) = (a.min(b), a.max(b));
                    keyed.push((key, (a, b - a, b == len)));
                }
                // A bare FIN, or a retransmitted one.
                if fin_len % 2 == 0 {
                    keyed.push((fin_key, (len, 0, true)));
                }
                keyed.sort_by_key(|k| k.0);
                let mut pushes: Vec<_> = keyed.into_iter().map(|k| k.1).collect();
                if !syn {
                    // Mid-stream pickup starts at the first data seen.
                    pushes.insert(0, (0, bounds[1], bounds[1] == len));
                }
                Case {
                    stream,
                    isn,
                    syn,
                    pushes,
                }
            })
    }

    fn run(c: &Case, bound: usize) -> (Vec<Out>, ReassemblyStats) {
        let mut r = StreamReassembler::new(bound);
        let base = if c.syn {
            r.on_syn(c.isn);
            c.isn.wrapping_add(1)
        } else {
            c.isn
        };
        let mut out = Vec::new();
        for &(off, len, fin) in &c.pushes {
            let seq = base.wrapping_add(off as u32);
            r.push(seq, &c.stream[off..off + len], fin, &mut |ch| {
                out.push(own(ch))
            });
            assert!(r.buffered() <= bound);
        }
        r.flush(&mut |ch| out.push(own(ch)));
        assert_eq!(r.buffered(), 0);
        assert!(r.is_finished());
        (out, r.stats())
    }

    proptest! {
        #[test]
        fn reassembles_exactly_with_room(c in case()) {
            let (out, st) = run(&c, 1 << 20);
            let mut got = Vec::new();
            for o in out {
                match o {
                    Out::D(b) => got.extend_from_slice(&b),
                    Out::G(m) => prop_assert!(false, "gap of {} with room", m),
                }
            }
            prop_assert_eq!(&got, &c.stream);
            prop_assert_eq!(st.delivered_bytes, c.stream.len() as u64);
            prop_assert_eq!(st.gaps, 0);
            prop_assert_eq!(st.overflows, 0);
        }

        #[test]
        fn accounts_every_byte_with_small_bound(c in case(), bound in 0usize..200) {
            let (out, st) = run(&c, bound);
            let mut pos = 0usize;
            for o in out {
                match o {
                    Out::D(b) => {
                        prop_assert!(pos + b.len() <= c.stream.len());
                        prop_assert_eq!(&b[..], &c.stream[pos..pos + b.len()]);
                        pos += b.len();
                    }
                    Out::G(m) => pos += m as usize,
                }
            }
            prop_assert_eq!(pos, c.stream.len());
            prop_assert_eq!(st.delivered_bytes + st.gap_bytes, c.stream.len() as u64);
        }

        #[test]
        fn never_panics_on_junk(
            bound in 0usize..300,
            syn in prop::option::of(any::<u32>()),
            segs in prop::collection::vec(
                (any::<u32>(), prop::collection::vec(any::<u8>(), 0..64), any::<bool>()),
                0..60,
            ),
        ) {
            let mut r = StreamReassembler::new(bound);
            if let Some(isn) = syn {
                r.on_syn(isn);
            }
            let mut delivered = 0u64;
            let mut gaps = 0u64;
            let mut sink = |ch: Chunk<'_>| match ch {
                Chunk::Data(d) => delivered += d.len() as u64,
                Chunk::Gap { missing } => gaps += u64::from(missing),
            };
            for (seq, data, fin) in &segs {
                r.push(*seq, data, *fin, &mut sink);
                prop_assert!(r.buffered() <= bound);
            }
            r.flush(&mut sink);
            prop_assert_eq!(r.buffered(), 0);
            let st = r.stats();
            prop_assert_eq!(st.delivered_bytes, delivered);
            prop_assert_eq!(st.gap_bytes, gaps);
        }
    }
}
