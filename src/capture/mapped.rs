//! Read-only windows of a capture file mapped into memory.
//!
//! Reading a file with `read()` copies every byte from the page cache into
//! a buffer (on a 2.5 GB capture that copy was a sixth of all CPU time, and
//! it pushed the whole file through the caches twice). A mapped window lets
//! frames point straight into the page cache. The reader maps the file a
//! window at a time ([`MappedFile::window`]); a window is unmapped when the
//! last frame batch holding it is dropped, so resident memory follows what is
//! in flight, as with heap chunks.
//!
//! The one hazard of mapping: if another program *truncates* the file while
//! it is mapped, touching the vanished pages raises SIGBUS. Files that only
//! grow (a capture still being written) are fine: the reader maps what
//! exists and looks for more at the end. `--reader read` avoids mapping.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use memmap2::{Mmap, MmapOptions};

/// A file to be mapped window by window.
pub(crate) struct MappedFile {
    file: File,
    /// File size when last asked.
    len: u64,
}

/// One read-only mapping of `len` bytes (never empty), unmapped on drop.
pub struct MappedWindow(Mmap);

impl MappedWindow {
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for MappedWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MappedWindow({} bytes)", self.0.len())
    }
}

/// The system page size (mapping offsets must be multiples of it).
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant; it has no
    // preconditions and touches no memory of ours.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Asks the kernel to read `[at, at + len)` of `file` ahead (`len` 0: to
/// the end) in the way `advice` says. Hand-written because memmap2 advises
/// only mappings (madvise), and this is advice on the file: the mapped
/// reader without it read a cold file in 4.6 s instead of 1.1-1.5 s
/// (BENCHMARKS.md, "mapped reader").
fn fadvise(file: &File, at: u64, len: u64, advice: libc::c_int) {
    let (Ok(at), Ok(len)) = (libc::off_t::try_from(at), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: posix_fadvise only takes an open descriptor (`file` outlives
    // the call) and plain integers; it touches no memory of ours, and its
    // result is advice the kernel may ignore, so an error is not checked.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), at, len, advice);
    }
}

impl MappedFile {
    /// `file` if it is a regular file (anything else — a pipe, a device —
    /// cannot be mapped and is read instead).
    pub(crate) fn new(file: File) -> Result<MappedFile, File> {
        match file.metadata() {
            Ok(m) if m.is_file() => {
                // Ask for read-ahead of the whole sequential pass (a cold
                // file then streams from disk while frames are parsed).
                fadvise(&file, 0, 0, libc::POSIX_FADV_SEQUENTIAL);
                Ok(MappedFile { len: m.len(), file })
            }
            _ => Err(file),
        }
    }

    /// The file's size, asked again when a read reaches the size known so
    /// far (a capture still being written grows; one cut shorter is then
    /// not mapped past its new end).
    /// The file's size when last asked.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn len_at_least(&mut self, end: u64) -> io::Result<u64> {
        if end > self.len {
            self.len = self.file.metadata()?.len();
        }
        Ok(self.len)
    }

    /// Maps `[start, start + len)`; `start` must be page-aligned and the
    /// range inside the file. Page tables are filled at once
    /// (`MAP_POPULATE`): one call instead of a fault per 64 KiB.
    pub(crate) fn window(&self, start: u64, len: usize) -> io::Result<MappedWindow> {
        if len == 0 {
            return Err(io::Error::other("empty mapping"));
        }
        // SAFETY: a read-only private mapping (PROT_READ, MAP_PRIVATE) of
        // a range inside the file, as `len_at_least` last saw it. memmap2
        // leaves one hazard to the caller: another program truncating the
        // file while it is mapped makes touching the vanished pages raise
        // SIGBUS. That is the documented cost of the mapped reader (see the
        // module's docs); `--reader read` never maps.
        let map = unsafe {
            MmapOptions::new()
                .offset(start)
                .len(len)
                .populate()
                .map_copy_read_only(&self.file)?
        };
        // Start reading the next window from disk now, if it is not cached
        // yet: populating a mapping reads synchronously, without the
        // read-ahead that read() gets (a cold file was read 3x slower).
        fadvise(
            &self.file,
            start.saturating_add(len as u64),
            len as u64,
            libc::POSIX_FADV_WILLNEED,
        );
        Ok(MappedWindow(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_windows_at_page_offsets_and_sees_growth() {
        let dir = std::env::temp_dir().join(format!("exflow-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.bin");
        let page = page_size() as usize;
        let data: Vec<u8> = (0..3 * page).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut m = MappedFile::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(m.len_at_least(0).unwrap(), data.len() as u64);
        let w = m.window(page as u64, page + 10).unwrap();
        assert_eq!(w.as_slice(), &data[page..2 * page + 10]);
        assert!(m.window(0, 0).is_err());
        // The file grows: the size is asked again only past the known end.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[7; 100]).unwrap();
        assert_eq!(m.len_at_least(10).unwrap(), data.len() as u64);
        assert_eq!(
            m.len_at_least(data.len() as u64 + 1).unwrap(),
            data.len() as u64 + 100
        );
        drop(w);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pipes_are_not_mapped() {
        // A child's stdout is a pipe (std::io::pipe needs Rust 1.87; the
        // declared rust-version is 1.85).
        let mut child = std::process::Command::new("true")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let fd: std::os::fd::OwnedFd = child.stdout.take().unwrap().into();
        assert!(MappedFile::new(File::from(fd)).is_err());
        child.wait().unwrap();
    }
}
