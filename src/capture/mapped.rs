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

/// A file to be mapped window by window.
pub(crate) struct MappedFile {
    file: File,
    /// File size when last asked.
    len: u64,
}

/// One read-only mapping of `len` bytes (never empty).
pub struct MappedWindow {
    ptr: *const u8,
    len: usize,
}

// The mapping is read-only and owned by this value alone.
unsafe impl Send for MappedWindow {}
unsafe impl Sync for MappedWindow {}

impl MappedWindow {
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is a live PROT_READ mapping of `len` bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for MappedWindow {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region `mmap` returned.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

impl std::fmt::Debug for MappedWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MappedWindow({} bytes)", self.len)
    }
}

/// The system page size (mapping offsets must be multiples of it).
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
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
                // SAFETY: plain advice on an open descriptor.
                unsafe {
                    libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
                }
                Ok(MappedFile { len: m.len(), file })
            }
            _ => Err(file),
        }
    }

    /// The file's size, asked again when a read reaches the size known so
    /// far (a capture still being written grows; one cut shorter is then
    /// not mapped past its new end).
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
        let offset = libc::off_t::try_from(start).map_err(io::Error::other)?;
        // SAFETY: a fresh read-only private mapping of an open file; the
        // kernel picks the address. Errors come back as MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                self.file.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Start reading the next window from disk now, if it is not cached
        // yet: populating a mapping reads synchronously, without the
        // read-ahead that read() gets (a cold file was read 3x slower).
        let ahead = start.saturating_add(len as u64);
        if let (Ok(at), Ok(n)) = (libc::off_t::try_from(ahead), libc::off_t::try_from(len)) {
            // SAFETY: plain advice on an open descriptor.
            unsafe {
                libc::posix_fadvise(self.file.as_raw_fd(), at, n, libc::POSIX_FADV_WILLNEED);
            }
        }
        Ok(MappedWindow {
            ptr: ptr as *const u8,
            len,
        })
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
        let (r, _w) = std::io::pipe().unwrap();
        let fd: std::os::fd::OwnedFd = r.into();
        assert!(MappedFile::new(File::from(fd)).is_err());
    }
}
