//! Inputs, their counters, and the k-way merge by timestamp.
//!
//! Every input (native reader, libpcap reader) is a cursor over its frames
//! ([`MergeInput`]); the [`Merger`] always emits the input whose *next* frame
//! has the smallest timestamp (ties: lowest input index), so frames of one
//! input keep their file order even when its own timestamps go backwards.

use std::cmp::Reverse;
use std::collections::binary_heap::{BinaryHeap, PeekMut};

use super::filter::FilterSet;
use super::{FrameBatch, InputInfo, InputProblem, LinkType};
use crate::Ts;

/// Most buffers a batch may reference (`FrameMeta::buf` is a `u16`).
const MAX_BUFFERS: usize = u16::MAX as usize;

/// A cursor over one input's frames.
pub(crate) trait MergeInput: Send {
    /// Moves to the next frame that passes `filters`; false at the end of
    /// the input (or when a problem cut it short).
    fn advance(&mut self, filters: &mut FilterSet) -> bool;

    /// Timestamp of the current frame (after `advance` returned true).
    fn ts(&self) -> Ts;

    /// Appends the current frame to `batch` (batch number `seq`) as input
    /// `input`. Returns false, appending nothing, when the batch cannot take
    /// it (it then goes into the next batch).
    fn emit(&mut self, batch: &mut FrameBatch, seq: u64, input: u16) -> bool;

    /// Called once a batch is complete (inputs that copy frames into an
    /// owned buffer install it here).
    fn finish_batch(&mut self, _batch: &mut FrameBatch, _seq: u64) {}

    /// Link types this input is known to carry so far.
    fn link_types(&self) -> &[LinkType];

    /// Facts about this input so far.
    fn info(&self) -> InputInfo;

    /// (bytes read, input size) when the size is known (a regular file).
    fn progress(&self) -> Option<(u64, u64)> {
        None
    }
}

/// Per-input counters, shared by the readers.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub packets: u64,
    pub matched: u64,
    pub bytes: u64,
    pub min_ts: Option<Ts>,
    pub max_ts: Option<Ts>,
    pub snaplen_truncated: u64,
    pub unsupported: u64,
}

impl Counters {
    /// Counts a frame read from the input (before filtering).
    #[inline]
    pub fn count(&mut self, ts: Ts, caplen: u32, orig_len: u32) {
        self.packets += 1;
        self.bytes += u64::from(orig_len);
        self.snaplen_truncated += u64::from(caplen < orig_len);
        self.min_ts = Some(self.min_ts.map_or(ts, |t| t.min(ts)));
        self.max_ts = Some(self.max_ts.map_or(ts, |t| t.max(ts)));
    }

    /// Builds the report view.
    pub fn info(
        &self,
        path: &str,
        format: &str,
        link_types: &[LinkType],
        problem: Option<&InputProblem>,
    ) -> InputInfo {
        InputInfo {
            path: path.to_owned(),
            format: format.to_owned(),
            link_types: link_types.to_vec(),
            packets: self.packets,
            packets_matched: self.matched,
            bytes: self.bytes,
            first_ts: self.min_ts,
            last_ts: self.max_ts,
            snaplen_truncated: self.snaplen_truncated,
            unsupported_link_frames: self.unsupported,
            problem: problem.cloned(),
            kernel_drops: None,
            interface_drops: None,
            filter: None,
            interface_filters: Vec::new(),
        }
    }
}

/// Merges inputs by timestamp into batches.
pub(crate) struct Merger<I> {
    inputs: Vec<I>,
    filters: FilterSet,
    /// (next ts, input index) of every live input; unused with one input.
    heap: BinaryHeap<Reverse<(Ts, u16)>>,
    started: bool,
    /// Single-input fast path: whether input 0 has a current frame.
    single_live: bool,
    seq: u64,
}

impl<I: MergeInput> Merger<I> {
    /// `inputs.len()` must fit in a `u16` (checked by the callers).
    pub fn new(inputs: Vec<I>, filters: FilterSet) -> Self {
        Merger {
            inputs,
            filters,
            heap: BinaryHeap::new(),
            started: false,
            single_live: false,
            seq: 0,
        }
    }

    /// (bytes read, bytes in all) over the inputs, when every input's
    /// size is known.
    pub fn progress(&self) -> Option<(u64, u64)> {
        self.inputs.iter().try_fold((0, 0), |(done, total), i| {
            let (d, t) = i.progress()?;
            Some((done + d.min(t), total + t))
        })
    }

    /// Each input's facts, with the filter it is read through.
    pub fn inputs(&self) -> Vec<InputInfo> {
        self.inputs
            .iter()
            .map(|i| InputInfo {
                filter: self.filters.expression().map(str::to_owned),
                ..i.info()
            })
            .collect()
    }

    /// The next batch of at most `max_frames` frames (at least one is asked
    /// for), or `None` when every input is exhausted.
    pub fn next_batch(&mut self, max_frames: usize) -> Option<FrameBatch> {
        let max = max_frames.max(1);
        if !self.started {
            self.start();
        }
        self.seq += 1;
        let mut batch = FrameBatch {
            buffers: Vec::new(),
            frames: Vec::with_capacity(max.min(1 << 16)),
        };
        if self.inputs.len() == 1 {
            self.fill_single(&mut batch, max);
        } else {
            self.fill_merged(&mut batch, max);
        }
        for input in &mut self.inputs {
            input.finish_batch(&mut batch, self.seq);
        }
        (!batch.frames.is_empty()).then_some(batch)
    }

    fn start(&mut self) {
        self.started = true;
        if let [only] = self.inputs.as_mut_slice() {
            self.single_live = only.advance(&mut self.filters);
            return;
        }
        for (i, input) in self.inputs.iter_mut().enumerate() {
            if input.advance(&mut self.filters) {
                let idx = u16::try_from(i).unwrap_or(u16::MAX);
                self.heap.push(Reverse((input.ts(), idx)));
            }
        }
    }

    /// One input: a tight loop, no heap.
    fn fill_single(&mut self, batch: &mut FrameBatch, max: usize) {
        let Some(input) = self.inputs.first_mut() else {
            return;
        };
        while self.single_live && batch.frames.len() < max && batch.buffers.len() < MAX_BUFFERS {
            if !input.emit(batch, self.seq, 0) {
                break;
            }
            self.single_live = input.advance(&mut self.filters);
        }
    }

    /// Several inputs: emit the smallest next timestamp, then re-sift that
    /// input with its following frame (one sift per frame).
    fn fill_merged(&mut self, batch: &mut FrameBatch, max: usize) {
        let Merger {
            inputs,
            filters,
            heap,
            seq,
            ..
        } = self;
        while batch.frames.len() < max && batch.buffers.len() < MAX_BUFFERS {
            let Some(mut top) = heap.peek_mut() else {
                break;
            };
            let idx = top.0 .1;
            let Some(input) = inputs.get_mut(usize::from(idx)) else {
                PeekMut::pop(top);
                continue;
            };
            if !input.emit(batch, *seq, idx) {
                break;
            }
            if input.advance(filters) {
                top.0 .0 = input.ts();
            } else {
                PeekMut::pop(top);
            }
        }
    }
}
