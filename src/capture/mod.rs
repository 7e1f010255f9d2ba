//! Sources: where frames come from. Nothing else in the program knows.
//!
//! A [`Source`] hands out [`FrameBatch`]es: frames (timestamp, link type,
//! captured bytes) that borrow from shared, reference-counted buffers, so a
//! batch can cross a thread boundary without copying packet bytes again.

use std::fmt;
use std::sync::Arc;

use crate::Ts;

mod applied;
mod chunk;
mod compressed;
mod file;
mod filter;
mod libpcap;
mod live;
mod mapped;
mod merge;
mod native;
mod paths;
mod probe;
mod ring;
#[cfg(test)]
mod tests;

pub use applied::{applied_filters, AppliedFilter, CaptureFilter, FilterOrigin};
pub use chunk::DEFAULT_CHUNK_SIZE;
pub use file::FileSource;
pub use filter::FilterError;
pub use libpcap::LibpcapSource;
pub use live::{list_interfaces, InterfaceInfo, LiveConfig, LiveCounters, LiveError, LiveSource};
pub use native::{DEFAULT_MAX_CAPLEN, HARD_MAX_CAPLEN, MAX_BLOCK_LEN};
pub use ring::{EvidenceRing, KeptFrame, Wanted, KEPT_BYTES};

/// Whether `head`, the first bytes of an input, starts a pcap or pcapng
/// capture: the test the readers themselves make (by magic number), for
/// callers that must tell a capture from another file before reading it.
pub fn is_capture(head: &[u8]) -> bool {
    native::sniff(head).is_some()
}

/// The link types are the decoder's vocabulary (`packet`); capture names
/// them in headers and reports.
pub use crate::packet::LinkType;

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Shared, immutable bytes that frames point into (a chunk read from a file
/// or a window of it mapped into memory, a buffer filled from libpcap, a
/// reassembled datagram).
pub type Bytes = Arc<Buffer>;

/// The storage behind [`Bytes`]: derefs to its bytes.
#[derive(Debug)]
pub enum Buffer {
    Heap(Vec<u8>),
    Mapped(mapped::MappedWindow),
}

impl Buffer {
    /// The heap vector, if this buffer is one (chunks are refilled in place).
    #[inline]
    pub(crate) fn heap_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Buffer::Heap(v) => Some(v),
            Buffer::Mapped(_) => None,
        }
    }
}

impl std::ops::Deref for Buffer {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Buffer::Heap(v) => v,
            Buffer::Mapped(m) => m.as_slice(),
        }
    }
}

impl From<Vec<u8>> for Buffer {
    fn from(v: Vec<u8>) -> Buffer {
        Buffer::Heap(v)
    }
}

/// One captured frame, by reference into [`FrameBatch::buffers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// Nanoseconds since the epoch.
    pub ts: Ts,
    /// Index into [`FrameBatch::buffers`].
    pub buf: u16,
    /// Index of the input (file) this frame came from, into `Source::inputs()`.
    pub input: u16,
    pub link: LinkType,
    /// Byte offset of the frame's first byte inside its buffer.
    pub offset: u32,
    /// Bytes captured (present in the buffer).
    pub caplen: u32,
    /// Bytes on the wire (>= caplen; larger when the snaplen cut the frame).
    pub orig_len: u32,
}

/// A batch of frames and the buffers they live in.
#[derive(Clone, Debug, Default)]
pub struct FrameBatch {
    pub buffers: Vec<Bytes>,
    pub frames: Vec<FrameMeta>,
}

impl FrameBatch {
    /// The captured bytes of `frame`.
    #[inline]
    pub fn data(&self, frame: &FrameMeta) -> &[u8] {
        let buf = &self.buffers[frame.buf as usize];
        let start = frame.offset as usize;
        &buf[start..start + frame.caplen as usize]
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// What went wrong in an input after it was opened: the input is cut short
/// there, and everything read before is still analyzed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputProblem {
    /// Byte offset in the file where the problem starts.
    pub offset: u64,
    /// Human-readable description, e.g. "truncated record: header says 1514
    /// captured bytes, only 200 present".
    pub message: String,
}

/// Per-input facts reported in `inputs[]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputInfo {
    /// The path as given (or "-" for stdin).
    pub path: String,
    /// "pcap" or "pcapng".
    pub format: String,
    /// Link types seen (pcapng may have several interfaces).
    pub link_types: Vec<LinkType>,
    /// Frames read (before any BPF filter).
    pub packets: u64,
    /// Frames that passed the BPF filter (== packets without a filter).
    pub packets_matched: u64,
    pub bytes: u64,
    pub first_ts: Option<Ts>,
    pub last_ts: Option<Ts>,
    /// Frames whose captured length is below their wire length.
    pub snaplen_truncated: u64,
    /// Frames skipped because their (pcapng) interface has a link type the
    /// decoder does not support (counted in `packets`, not in
    /// `packets_matched`).
    pub unsupported_link_frames: u64,
    /// Set when the input was cut short by corruption or truncation (live:
    /// the capture stopped early, or the interface was down a while).
    pub problem: Option<InputProblem>,
    /// Live captures only: libpcap's `ps_drop`, frames the kernel dropped
    /// because its buffer was full (`None` for files).
    pub kernel_drops: Option<u64>,
    /// Live captures only: libpcap's `ps_ifdrop`, frames the interface or
    /// its driver dropped (`None` for files).
    pub interface_drops: Option<u64>,
    /// The BPF filter every frame was read through (`--filter`), if any.
    pub filter: Option<String>,
    /// The capture filters of the pcapng interfaces (of a supported link
    /// type) that had one: what they dropped was never written to the file.
    pub interface_filters: Vec<InterfaceFilter>,
}

/// A pcapng interface's own capture filter (its IDB's `if_filter` option).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceFilter {
    /// The interface's place among the file's interface description
    /// blocks, counted from 0 over every section.
    pub interface: u32,
    pub link: LinkType,
    /// The filter in libpcap syntax; `None` when the option holds another
    /// kind (BPF byte code): what it let through cannot be told.
    pub expression: Option<String>,
}

/// Why an input could not be opened at all (exit code 2).
#[derive(Debug)]
pub struct OpenError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for OpenError {}

/// Why a source could not be opened: an input, or the BPF filter.
#[derive(Debug)]
pub enum SourceError {
    Open(OpenError),
    Filter(FilterError),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Open(e) => e.fmt(f),
            SourceError::Filter(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SourceError::Open(e) => Some(e),
            SourceError::Filter(e) => Some(e),
        }
    }
}

impl From<OpenError> for SourceError {
    fn from(e: OpenError) -> Self {
        SourceError::Open(e)
    }
}

impl From<FilterError> for SourceError {
    fn from(e: FilterError) -> Self {
        SourceError::Filter(e)
    }
}

/// Tuning for the native reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Bytes read per chunk (records larger than this get a chunk of their
    /// own size). Default [`DEFAULT_CHUNK_SIZE`].
    pub chunk_size: usize,
    /// Map regular files into memory this many bytes at a time instead of
    /// reading them into chunks (`None`: always read). Default
    /// [`DEFAULT_MAP_WINDOW`]; shared out between inputs merged together.
    pub map_window: Option<usize>,
}

/// Bytes of a file mapped at once by default.
pub const DEFAULT_MAP_WINDOW: usize = 8 << 20;

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            chunk_size: DEFAULT_CHUNK_SIZE,
            map_window: Some(DEFAULT_MAP_WINDOW),
        }
    }
}

/// A producer of frame batches.
pub trait Source: Send {
    /// The next batch of at most `max_frames` frames in timestamp-merged
    /// order, or `None` at the end of all inputs. Problems inside an input
    /// end that input and are recorded in its [`InputInfo`]; they are not
    /// errors here.
    fn next_batch(&mut self, max_frames: usize) -> Option<FrameBatch>;

    /// Facts about each input so far (complete once `next_batch` returned None).
    fn inputs(&self) -> Vec<InputInfo>;

    /// Live sources: the capture time known to have passed even though no
    /// packet says so (the wall clock while the link is silent), so idle
    /// flows still time out. Only used when the pipeline streams (live).
    fn clock_hint(&self) -> Option<Ts> {
        None
    }

    /// (bytes read, bytes in all) when the inputs' sizes are known
    /// (regular files), for the progress line's percentage and ETA.
    fn progress(&self) -> Option<(u64, u64)> {
        None
    }
}
