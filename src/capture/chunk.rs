//! Reading an input into large shared chunks.
//!
//! A [`ChunkReader`] owns the current chunk (an `Arc<Vec<u8>>`) and a parse
//! position inside it. Parsers ask for `n` contiguous bytes with
//! [`ChunkReader::ensure`]; when fewer remain, the unread tail is carried into
//! a fresh chunk (or the same allocation, when no batch still holds it) and the
//! rest is filled from the input. A record larger than a chunk gets a chunk of
//! its own size.

use std::io::{self, Read};
use std::sync::Arc;

use super::Bytes;

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
    src: Box<dyn Read + Send>,
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
}

impl ChunkReader {
    /// Wraps `src`; nothing is read until the first [`ensure`](Self::ensure).
    pub(crate) fn new(src: Box<dyn Read + Send>, chunk_size: usize) -> Self {
        ChunkReader {
            src,
            chunk: Arc::new(Vec::new()),
            len: 0,
            pos: 0,
            base: 0,
            chunk_size: chunk_size.max(MIN_CHUNK_SIZE),
            eof: false,
            spares: Vec::new(),
            generation: 0,
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
        if self.eof {
            return Ok(false);
        }
        let tail = self.len - self.pos;
        let cap = self.chunk_size.max(n);
        match Arc::get_mut(&mut self.chunk) {
            // No batch references this chunk any more: reuse the allocation.
            Some(buf) if buf.len() >= cap => buf.copy_within(self.pos..self.len, 0),
            _ => {
                let mut next = self.take_spare(cap);
                if let (Some(dst), Some(src)) = (
                    Arc::get_mut(&mut next).and_then(|b| b.get_mut(..tail)),
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
        Ok(self.len >= n)
    }

    /// A chunk of at least `cap` bytes that nobody else references: a
    /// recycled one whose batches were dropped (no page faults, no zeroing),
    /// else a fresh allocation.
    fn take_spare(&mut self, cap: usize) -> Bytes {
        let free = self
            .spares
            .iter_mut()
            .position(|s| Arc::get_mut(s).is_some_and(|b| b.len() >= cap));
        match free {
            Some(i) => self.spares.swap_remove(i),
            None => Arc::new(vec![0u8; cap]),
        }
    }

    /// Reads until the chunk is full or the input ends.
    fn fill(&mut self) -> io::Result<()> {
        // `refill` made `chunk` unique (fresh, or `get_mut` succeeded).
        let Some(buf) = Arc::get_mut(&mut self.chunk) else {
            return Err(io::Error::other("chunk unexpectedly shared"));
        };
        while self.len < buf.len() {
            match self.src.read(&mut buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    self.spares = Vec::new();
                    break;
                }
                Ok(k) => self.len += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
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
        let mut r = ChunkReader::new(Box::new(Dribble(data.clone(), 0)), 16);
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
}
