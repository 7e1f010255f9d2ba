//! The files `exflow live` writes while it runs for months: the streaming
//! records (`--events`), reopened when logrotate asks (SIGHUP), and files
//! written in whole records only, even when the disk fills.
//!
//! * [`RecordFile`]: a record is handed to the kernel in one go; if that
//!   fails part-way (a full disk), the file is cut back to the end of the
//!   last whole record, so a reader never finds half a record (an NDJSON
//!   line, a pcap packet) at its end.
//! * [`EventsOutput`]: the `Write` the live correlator writes its records
//!   to. Each record ends with a flush (the record boundary); there it
//!   reopens the file when a SIGHUP asked for it, and after a write error
//!   it drops records (counted) until a reopen succeeds.
//! * [`ReportFile`]: `-o`, created at the start so a bad path fails at
//!   once, written at the stop to the path it names then.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Where messages for the operator go (`exflow live` prints them on
/// stderr as they happen).
pub type Notice = Arc<dyn Fn(&str) + Send + Sync>;

/// A file written in whole records (see the module documentation).
#[derive(Debug)]
pub struct RecordFile {
    file: File,
    /// Bytes of whole records in the file.
    len: u64,
}

impl RecordFile {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> io::Result<RecordFile> {
        Ok(RecordFile {
            file: File::create(path)?,
            len: 0,
        })
    }

    /// Opens `path` to append to it, creating it if it does not exist.
    pub fn append(path: &Path) -> io::Result<RecordFile> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(RecordFile { file, len })
    }

    /// Writes one record (or several whole ones). On an error nothing of
    /// them stays in the file.
    pub fn write_record(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Best effort: if even this fails the error above is still
                // the one to report.
                let _ = self.file.set_len(self.len);
                let _ = self.file.seek(SeekFrom::Start(self.len));
                Err(e)
            }
        }
    }

    /// Bytes of whole records written.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Where the streaming records go.
enum Target {
    File { path: PathBuf, file: RecordFile },
    Stdout(io::Stdout),
}

struct Events {
    target: Target,
    /// The record being written (until its flush).
    buf: Vec<u8>,
    /// A write failed: records are dropped until a reopen succeeds.
    failed: bool,
    /// Something failed once (a write, a reopen): the output is incomplete.
    incomplete: bool,
    written: u64,
    lost: u64,
    /// Records lost since the last failure (for the message on recovery).
    lost_since_failure: u64,
    notice: Notice,
}

/// The streaming records' output: a file reopened on SIGHUP, or standard
/// output (where SIGHUP changes nothing). Clones share the output: the
/// correlator writes through one, the thread that runs it reopens through
/// another while the link is quiet.
#[derive(Clone)]
pub struct EventsOutput {
    shared: Arc<Mutex<Events>>,
    reopen: Arc<AtomicBool>,
}

impl EventsOutput {
    /// Opens `path` to append to it (created if missing: a restarted
    /// sensor loses none of the records it wrote before); the file is
    /// reopened at the next record boundary after `reopen` is set (by a
    /// SIGHUP handler).
    pub fn open(path: &Path, reopen: Arc<AtomicBool>, notice: Notice) -> io::Result<Self> {
        let file = RecordFile::append(path)?;
        Ok(Self::new(
            Target::File {
                path: path.to_path_buf(),
                file,
            },
            reopen,
            notice,
        ))
    }

    /// Standard output.
    pub fn stdout(reopen: Arc<AtomicBool>, notice: Notice) -> Self {
        Self::new(Target::Stdout(io::stdout()), reopen, notice)
    }

    fn new(target: Target, reopen: Arc<AtomicBool>, notice: Notice) -> Self {
        EventsOutput {
            shared: Arc::new(Mutex::new(Events {
                target,
                buf: Vec::with_capacity(1024),
                failed: false,
                incomplete: false,
                written: 0,
                lost: 0,
                lost_since_failure: 0,
                notice,
            })),
            reopen,
        }
    }

    fn events(&self) -> MutexGuard<'_, Events> {
        // A panic while holding the lock leaves consistent data (every
        // field is updated in one step).
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reopens now if a SIGHUP asked for it. Call it only between records
    /// (the thread that writes them, while the link is quiet).
    pub fn reopen_if_requested(&self) {
        if self.reopen.load(Ordering::Relaxed) {
            let mut e = self.events();
            if e.buf.is_empty() && self.reopen.swap(false, Ordering::Relaxed) {
                e.reopen();
            }
        }
    }

    /// Records written.
    pub fn written(&self) -> u64 {
        self.events().written
    }

    /// Records dropped because the output could not be written.
    pub fn lost(&self) -> u64 {
        self.events().lost
    }

    /// Whether a write or a reopen failed at some point (records were lost
    /// or went to a file no longer at the path).
    pub fn incomplete(&self) -> bool {
        self.events().incomplete
    }
}

impl Events {
    fn name(&self) -> String {
        match &self.target {
            Target::File { path, .. } => format!("--events {}", path.display()),
            Target::Stdout(_) => "standard output".into(),
        }
    }

    fn reopen(&mut self) {
        let Target::File { path, file } = &mut self.target else {
            return;
        };
        match RecordFile::append(path) {
            Ok(f) => {
                *file = f;
                if self.failed {
                    self.failed = false;
                    let msg = format!(
                        "--events {}: reopened; streaming records are written again \
                         ({} were lost while it could not be written)",
                        path.display(),
                        self.lost_since_failure
                    );
                    (self.notice)(&msg);
                    self.lost_since_failure = 0;
                }
            }
            Err(e) => {
                self.incomplete = true;
                let msg = format!(
                    "error: --events {}: cannot reopen it after SIGHUP: {e}; {}",
                    path.display(),
                    if self.failed {
                        "streaming records are still not written"
                    } else {
                        "streaming records go on to the file it was (renamed or deleted)"
                    }
                );
                (self.notice)(&msg);
            }
        }
    }

    /// The record in `buf` is whole: write it.
    fn end_record(&mut self, reopen: &AtomicBool) {
        if self.buf.is_empty() {
            return;
        }
        if reopen.swap(false, Ordering::Relaxed) {
            self.reopen();
        }
        if self.failed {
            self.lost += 1;
            self.lost_since_failure += 1;
            self.buf.clear();
            return;
        }
        let res = match &mut self.target {
            Target::File { file, .. } => file.write_record(&self.buf),
            Target::Stdout(out) => {
                let mut out = out.lock();
                out.write_all(&self.buf).and_then(|_| out.flush())
            }
        };
        self.buf.clear();
        match res {
            Ok(()) => self.written += 1,
            // The reader of standard output went away (`| head`): the
            // records are no longer wanted; the report still is.
            Err(e)
                if e.kind() == io::ErrorKind::BrokenPipe
                    && matches!(self.target, Target::Stdout(_)) =>
            {
                self.failed = true;
                self.lost += 1;
            }
            Err(e) => {
                self.failed = true;
                self.incomplete = true;
                self.lost += 1;
                self.lost_since_failure = 1;
                let resume = match self.target {
                    Target::File { .. } => {
                        "; they are written again once a SIGHUP reopens the file (e.g. after \
                         making room)"
                    }
                    Target::Stdout(_) => "",
                };
                let msg = format!(
                    "error: {}: {e}: streaming records are no longer written{resume}; the \
                     capture goes on and the report is written at the stop",
                    self.name()
                );
                (self.notice)(&msg);
            }
        }
    }
}

impl Write for EventsOutput {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.events().buf.extend_from_slice(b);
        Ok(b.len())
    }

    /// The end of a record: writes it (the live correlator flushes after
    /// each). Errors are reported to the operator here, never returned, so
    /// the correlator goes on and records are written again after a reopen.
    fn flush(&mut self) -> io::Result<()> {
        let reopen = Arc::clone(&self.reopen);
        self.events().end_record(&reopen);
        Ok(())
    }
}

/// `-o FILE` of `exflow live`: opened at the start (a path that cannot be
/// written fails before the capture) but not emptied — the report of the
/// previous run stays there until this one replaces it — and written once,
/// at the stop.
pub struct ReportFile {
    path: PathBuf,
    file: File,
}

impl ReportFile {
    pub fn create(path: &Path) -> io::Result<ReportFile> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(ReportFile {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The file to write the report to: the one created at the start if it
    /// is still at its path, else (moved or deleted meanwhile, e.g. by a
    /// logrotate glob) a new file at the path. The message says which when
    /// it is not the first.
    pub fn reopen_at_stop(self) -> (File, Option<String>) {
        let same = match (std::fs::metadata(&self.path), self.file.metadata()) {
            (Ok(p), Ok(f)) => p.dev() == f.dev() && p.ino() == f.ino(),
            _ => false,
        };
        if same {
            // Opened without truncating at the start: emptied now.
            return match self.file.set_len(0) {
                Ok(()) => (self.file, None),
                Err(e) => (
                    self.file,
                    Some(format!(
                        "error: -o {}: cannot empty the file ({e}); the report is written over \
                         its start",
                        self.path.display()
                    )),
                ),
            };
        }
        match File::create(&self.path) {
            Ok(f) => (
                f,
                Some(format!(
                    "-o {}: the file created at the start was moved or deleted; the report \
                     is written to a new {}",
                    self.path.display(),
                    self.path.display()
                )),
            ),
            Err(e) => (
                self.file,
                Some(format!(
                    "error: -o {}: the file created at the start was moved or deleted and \
                     cannot be created again ({e}); the report goes to the file created at \
                     the start, wherever it is now",
                    self.path.display()
                )),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("exflow-live-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        let _ = std::fs::remove_file(&p);
        p
    }

    fn collect() -> (Notice, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let notice: Notice = Arc::new(move |m: &str| s.lock().unwrap().push(m.to_owned()));
        (notice, seen)
    }

    /// A record as the live correlator writes one: several writes, then a
    /// flush.
    fn record(out: &mut EventsOutput, n: u32) {
        write!(out, "{{\"record\":").unwrap();
        write!(out, "\"r\",\"n\":{n}}}").unwrap();
        out.write_all(b"\n").unwrap();
        out.flush().unwrap();
    }

    #[test]
    fn reopens_at_a_record_boundary_after_the_flag() {
        let path = tmp("reopen.ndjson");
        let moved = tmp("reopen.ndjson.1");
        let flag = Arc::new(AtomicBool::new(false));
        let (notice, seen) = collect();
        let mut out = EventsOutput::open(&path, Arc::clone(&flag), notice).unwrap();
        record(&mut out, 1);
        record(&mut out, 2);
        std::fs::rename(&path, &moved).unwrap();
        // Written after the move, before the signal: still the old file.
        record(&mut out, 3);
        flag.store(true, Ordering::Relaxed);
        // Half a record, then the flag is seen by the quiet-link check:
        // nothing happens until the record is whole.
        write!(out, "{{\"record\":").unwrap();
        out.reopen_if_requested();
        assert!(!path.exists(), "no reopen in the middle of a record");
        writeln!(out, "\"r\",\"n\":4}}").unwrap();
        out.flush().unwrap();
        record(&mut out, 5);
        let old = std::fs::read_to_string(&moved).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            old,
            "{\"record\":\"r\",\"n\":1}\n{\"record\":\"r\",\"n\":2}\n{\"record\":\"r\",\"n\":3}\n"
        );
        assert_eq!(
            new,
            "{\"record\":\"r\",\"n\":4}\n{\"record\":\"r\",\"n\":5}\n"
        );
        assert_eq!(out.written(), 5);
        assert!(!out.incomplete());
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn reopen_while_quiet_and_append_when_not_moved() {
        let path = tmp("quiet.ndjson");
        let flag = Arc::new(AtomicBool::new(false));
        let (notice, _) = collect();
        let mut out = EventsOutput::open(&path, Arc::clone(&flag), notice).unwrap();
        record(&mut out, 1);
        std::fs::remove_file(&path).unwrap();
        flag.store(true, Ordering::Relaxed);
        out.reopen_if_requested();
        assert!(path.exists(), "recreated at once while quiet");
        assert!(!flag.load(Ordering::Relaxed));
        record(&mut out, 2);
        // A SIGHUP without a move keeps what the file holds.
        flag.store(true, Ordering::Relaxed);
        record(&mut out, 3);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"record\":\"r\",\"n\":2}\n{\"record\":\"r\",\"n\":3}\n"
        );
    }

    #[test]
    fn reopen_error_is_one_message_naming_the_file() {
        let dir = tmp("gone-dir");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.ndjson");
        let flag = Arc::new(AtomicBool::new(false));
        let (notice, seen) = collect();
        let mut out = EventsOutput::open(&path, Arc::clone(&flag), notice).unwrap();
        record(&mut out, 1);
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        flag.store(true, Ordering::Relaxed);
        record(&mut out, 2);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].starts_with(&format!(
                "error: --events {}: cannot reopen",
                path.display()
            )),
            "{}",
            seen[0]
        );
        assert!(out.incomplete());
        // The record still went to the file it had open.
        assert_eq!(out.written(), 2);
    }

    #[test]
    fn a_full_disk_cuts_back_to_whole_records_and_a_reopen_resumes() {
        // /dev/full: every write fails with ENOSPC.
        let flag = Arc::new(AtomicBool::new(false));
        let (notice, seen) = collect();
        let path = tmp("full.ndjson");
        let mut out = EventsOutput::open(&path, Arc::clone(&flag), notice).unwrap();
        record(&mut out, 1);
        {
            let mut e = out.events();
            let Target::File { file, .. } = &mut e.target else {
                unreachable!()
            };
            *file = RecordFile {
                file: OpenOptions::new().write(true).open("/dev/full").unwrap(),
                len: 0,
            };
        }
        record(&mut out, 2);
        record(&mut out, 3);
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 1, "one message: {seen:?}");
            assert!(seen[0].contains(&path.display().to_string()), "{}", seen[0]);
            assert!(seen[0].contains("No space left"), "{}", seen[0]);
        }
        assert!(out.incomplete());
        assert_eq!((out.written(), out.lost()), (1, 2));
        flag.store(true, Ordering::Relaxed);
        out.reopen_if_requested();
        record(&mut out, 4);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"record\":\"r\",\"n\":1}\n{\"record\":\"r\",\"n\":4}\n"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[1].contains("2 were lost"), "{}", seen[1]);
    }

    #[test]
    fn report_file_follows_its_path() {
        let path = tmp("report.json");
        let moved = tmp("report.json.1");
        let r = ReportFile::create(&path).unwrap();
        let (mut f, note) = r.reopen_at_stop();
        assert!(note.is_none());
        f.write_all(b"x").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"x");

        let r = ReportFile::create(&path).unwrap();
        std::fs::rename(&path, &moved).unwrap();
        let (mut f, note) = r.reopen_at_stop();
        assert!(note.unwrap().contains("moved or deleted"));
        f.write_all(b"y").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"y");
        // The earlier run's report went with the move, whole.
        assert_eq!(std::fs::read(&moved).unwrap(), b"x");
    }

    /// A restarted sensor (systemd's Restart=on-failure, a reboot) loses
    /// nothing: the events file is appended to, and the previous report
    /// stays until the new one is written over it at the stop.
    #[test]
    fn a_restart_keeps_the_records_and_the_last_report() {
        let path = tmp("restart.ndjson");
        let report = tmp("restart.json");
        for run in 1..=2 {
            let (notice, _) = collect();
            let flag = Arc::new(AtomicBool::new(false));
            let mut out = EventsOutput::open(&path, flag, notice).unwrap();
            record(&mut out, run);
            let r = ReportFile::create(&report).unwrap();
            let before = std::fs::read(&report).unwrap();
            let want_before: &[u8] = if run == 1 {
                b""
            } else {
                b"report of run 1, longer"
            };
            assert_eq!(
                before, want_before,
                "run {run}: the previous report is kept"
            );
            let (mut f, note) = r.reopen_at_stop();
            assert!(note.is_none());
            let text: &[u8] = if run == 1 {
                b"report of run 1, longer"
            } else {
                b"run 2"
            };
            f.write_all(text).unwrap();
            assert_eq!(std::fs::read(&report).unwrap(), text);
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"record\":\"r\",\"n\":1}\n{\"record\":\"r\",\"n\":2}\n"
        );
    }
}
