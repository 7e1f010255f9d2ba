//! Reading an input into large shared chunks.
//!
//! A [`ChunkReader`] owns the current chunk (an `Arc<Vec<u8>>`) and a parse
//! position inside it. Parsers ask for `n` contiguous bytes with
//! [`ChunkReader::ensure`]; when fewer remain, the unread tail is carried into
//! a fresh chunk (or the same allocation, when no batch still holds it) and the
//! rest is filled from the input. A record larger than a chunk gets a chunk of
//! its own size.
//!
//! A regular file can instead be mapped ([`ChunkInput::Mapped`]): a "chunk"
//! is then a window of the file mapped into memory, and a refill maps the
//! next window from the page holding the first unread byte, so nothing is
//! copied, neither the file's bytes nor a carried tail.

use std::io::{self, Read};
use std::sync::Arc;

use super::mapped::{page_size, MappedFile};
use super::{Buffer, Bytes};

/// Where a [`ChunkReader`] gets its bytes.
pub(crate) enum ChunkInput {
    /// Any byte stream, read into heap chunks.
    Stream(Box<dyn Read + Send>),
    /// A regular file, mapped a window at a time.
    Mapped(MappedFile),
}

/// The default chunk size: big enough that refills (one syscall or a few
/// each) are rare, small enough to stay cache- and memory-friendly.
pub const DEFAULT_CHUNK_SIZE: usize = 256 << 10;

/// Smallest chunk size accepted (tests use tiny chunks to exercise the
/// boundary logic).
pub const MIN_CHUNK_SIZE: usize = 16;

/// Earlier chunks kept per input for reuse (bounds idle memory to
/// `MAX_SPARES` chunks per input; they are released at the end of input).
const MAX_SPARES: usize = 64;

/// A chunked, zero-copy view over a byte stream.
pub(crate) struct ChunkReader {
    src: ChunkInput,
    chunk: Bytes,
    /// Valid bytes in `chunk` (the rest of the Vec is scratch).
    len: usize,
    /// Parse position inside `chunk`.
    pos: usize,
    /// Offset in the input of `chunk[0]`.
    base: u64,
    chunk_size: usize,
    eof: bool,
    /// Earlier chunks, reused once every batch pointing into them is gone.
    spares: Vec<Bytes>,
    /// Bumped whenever `chunk` may hold different bytes.
    generation: u64,
    /// A read error met after some bytes of a fill: those bytes are parsed
    /// first, the error is returned when more are needed (a compressed
    /// capture cut short loses nothing its decoder gave).
    pending: Option<io::Error>,
}

impl ChunkReader {
    /// Wraps `src`; nothing is read until the first [`ensure`](Self::ensure).
    /// `chunk_size` is the heap chunk size, or for a mapped file the window
    /// size.
    pub(crate) fn new(src: ChunkInput, chunk_size: usize) -> Self {
        ChunkReader {
            src,
            chunk: Arc::new(Buffer::Heap(Vec::new())),
            len: 0,
            pos: 0,
            base: 0,
            chunk_size: chunk_size.max(MIN_CHUNK_SIZE),
            eof: false,
            spares: Vec::new(),
            generation: 0,
            pending: None,
        }
    }

    /// The unread bytes currently in memory.
    #[inline]
    pub(crate) fn available(&self) -> &[u8] {
        self.chunk.get(self.pos..self.len).unwrap_or(&[])
    }

    /// The input offset of the next unread byte.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The input's size when it is a mapped regular file (as last seen),
    /// for the progress line; `None` for a stream.
    pub(crate) fn total_len(&self) -> Option<u64> {
        match &self.src {
            ChunkInput::Mapped(m) => Some(m.len()),
            ChunkInput::Stream(_) => None,
        }
    }

    /// The parse position inside the current chunk.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Marks `n` bytes as consumed. `n` must not exceed `available().len()`.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len - self.pos);
        self.pos = (self.pos + n).min(self.len);
    }

    /// The current chunk (frames returned since the last `ensure` point into it).
    #[inline]
    pub(crate) fn chunk(&self) -> &Bytes {
        &self.chunk
    }

    /// Changes whenever the current chunk is replaced or refilled.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Makes at least `n` unread bytes available. Returns `Ok(false)` when the
    /// input ends first (then `available()` holds what is left).
    #[inline]
    pub(crate) fn ensure(&mut self, n: usize) -> io::Result<bool> {
        if self.len - self.pos >= n {
            return Ok(true);
        }
        self.refill(n)
    }

    /// Carries the unread tail into a chunk of at least `n` bytes and fills it.
    #[cold]
    fn refill(&mut self, n: usize) -> io::Result<bool> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        if self.eof {
            return Ok(false);
        }
        if matches!(self.src, ChunkInput::Mapped(_)) {
            return self.map_next(n);
        }
        let tail = self.len - self.pos;
        let cap = self.chunk_size.max(n);
        match Arc::get_mut(&mut self.chunk).and_then(Buffer::heap_mut) {
            // No batch references this chunk any more: reuse the allocation.
            Some(buf) if buf.len() >= cap => buf.copy_within(self.pos..self.len, 0),
            _ => {
                let mut next = self.take_spare(cap);
                if let (Some(dst), Some(src)) = (
                    Arc::get_mut(&mut next)
                        .and_then(Buffer::heap_mut)
                        .and_then(|b| b.get_mut(..tail)),
                    self.chunk.get(self.pos..self.len),
                ) {
                    dst.copy_from_slice(src);
                }
                let old = std::mem::replace(&mut self.chunk, next);
                if old.len() == self.chunk_size && self.spares.len() < MAX_SPARES {
                    self.spares.push(old);
                }
            }
        }
        self.generation += 1;
        self.base += self.pos as u64;
        self.pos = 0;
        self.len = tail;
        self.fill()?;
        match self.pending.take() {
            Some(e) if self.len < n => Err(e),
            pending => {
                self.pending = pending;
                Ok(self.len >= n)
            }
        }
    }

    /// Mapped input: maps the next window, from the page holding the first
    /// unread byte to at least `n` bytes past it (or the file's end).
    fn map_next(&mut self, n: usize) -> io::Result<bool> {
        let ChunkInput::Mapped(file) = &mut self.src else {
            return Err(io::Error::other("not a mapped input"));
        };
        let off = self.base + self.pos as u64;
        let start = off - off % page_size();
        let delta = (off - start) as usize;
        let want = start + delta.saturating_add(n).max(self.chunk_size) as u64;
        let end = file.len_at_least(want)?.min(want);
        if end <= self.base + self.len as u64 {
            // Nothing beyond what is already mapped: the input ends here.
            self.eof = true;
            return Ok(false);
        }
        let window = file.window(start, (end - start) as usize)?;
        self.chunk = Arc::new(Buffer::Mapped(window));
        self.generation += 1;
        self.base = start;
        self.pos = delta;
        self.len = (end - start) as usize;
        Ok(self.len - self.pos >= n)
    }

    /// A chunk of at least `cap` bytes that nobody else references: a
    /// recycled one whose batches were dropped (no page faults, no zeroing),
    /// else a fresh allocation.
    fn take_spare(&mut self, cap: usize) -> Bytes {
        let free = self.spares.iter_mut().position(|s| {
            Arc::get_mut(s)
                .and_then(Buffer::heap_mut)
                .is_some_and(|b| b.len() >= cap)
        });
        match free {
            Some(i) => self.spares.swap_remove(i),
            None => Arc::new(Buffer::Heap(vec![0u8; cap])),
        }
    }

    /// Reads until the chunk is full or the input ends.
    fn fill(&mut self) -> io::Result<()> {
        // `refill` made `chunk` unique (fresh, or `get_mut` succeeded).
        let Some(buf) = Arc::get_mut(&mut self.chunk).and_then(Buffer::heap_mut) else {
            return Err(io::Error::other("chunk unexpectedly shared"));
        };
        let ChunkInput::Stream(src) = &mut self.src else {
            return Err(io::Error::other("not a stream input"));
        };
        let start = self.len;
        while self.len < buf.len() {
            match src.read(&mut buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    self.spares = Vec::new();
                    break;
                }
                Ok(k) => self.len += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.len > start => {
                    self.pending = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most 3 bytes per call, like a slow pipe.
    struct Dribble(Vec<u8>, usize);
    impl Read for Dribble {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let rest = &self.0[self.1..];
            let k = rest.len().min(out.len()).min(3);
            out[..k].copy_from_slice(&rest[..k]);
            self.1 += k;
            Ok(k)
        }
    }

    #[test]
    fn carries_tail_and_grows_for_big_records() {
        let data: Vec<u8> = (0..200u8).collect();
        let mut r = ChunkReader::new(ChunkInput::Stream(Box::new(Dribble(data.clone(), 0))), 16);
        assert!(r.ensure(10).unwrap());
        assert_eq!(r.available().len(), 16);
        r.consume(10);
        assert!(r.ensure(40).unwrap()); // larger than a chunk
        assert_eq!(&r.available()[..40], &data[10..50]);
        assert_eq!(r.offset(), 10);
        r.consume(40);
        let held = r.chunk().clone(); // a batch holds it: no in-place reuse
        assert!(r.ensure(16).unwrap());
        assert!(!Arc::ptr_eq(&held, r.chunk()));
        assert_eq!(&r.available()[..16], &data[50..66]);
        r.consume(16);
        assert!(!r.ensure(1000).unwrap());
        assert_eq!(r.available(), &data[66..]);
    }

    #[test]
    fn mapped_windows_cross_pages_and_end_like_a_stream() {
        let page = page_size() as usize;
        let data: Vec<u8> = (0..5 * page + 123).map(|i| (i * 7 % 256) as u8).collect();
        let dir = std::env::temp_dir().join(format!("exflow-chunk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.bin");
        std::fs::write(&path, &data).unwrap();
        let file =
            MappedFile::new(std::fs::File::open(&path).unwrap()).unwrap_or_else(|_| panic!());
        // Window of one page: every few records need a new mapping.
        let mut r = ChunkReader::new(ChunkInput::Mapped(file), page);
        let mut off = 0usize;
        for step in [10, page - 3, 2 * page + 5, 17, page] {
            assert!(r.ensure(step).unwrap(), "step {step} at {off}");
            assert_eq!(r.offset(), off as u64);
            assert_eq!(&r.available()[..step], &data[off..off + step]);
            r.consume(step);
            off += step;
        }
        // Asking past the end: false, and what is left stays available.
        assert!(!r.ensure(data.len()).unwrap());
        assert_eq!(r.available(), &data[off..]);
        r.consume(r.available().len());
        assert!(!r.ensure(1).unwrap());
        assert!(r.available().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
