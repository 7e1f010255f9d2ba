//! [`LiveSource`]: frames captured from a network interface by libpcap
//! (`exflow live`). It hands out the same [`FrameBatch`]es as the file
//! readers, so live capture runs the very pipeline offline analysis runs.
//!
//! Batches flush quickly: the kernel hands packets over within the read
//! timeout (TPACKET_V3 blocks), reads are non-blocking and waited for with
//! poll(2), and a batch is handed out as soon as it is full, about
//! [`BATCH_LATENCY`] old, or the link went quiet. A quiet read also lets the
//! loop notice the stop flag (a signal, `--duration`, `--count`) and tells
//! the pipeline that capture time has moved on ([`Source::clock_hint`]).
//! When told to stop, the kernel buffer is drained first, so nothing
//! captured before the stop is lost.
//!
//! The interface is watched (a poll error, and every [`STATS_INTERVAL`]):
//! when it is taken down or loses its carrier, libpcap keeps the socket and
//! capture resumes once it is up again, so the source says so (a notice)
//! and records the gap; when it disappears, the capture stops there. Both
//! end up in the input's problem (the report is partial, exit code 3).
//!
//! `-w` files are written by [`RotatingWriter`] in whole packets: on a
//! write error (a full disk) the file is cut back to its last whole packet
//! (still a valid capture), the operator is told once, and capture and
//! analysis go on without it.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pcap::{Active, Capture, Device, Precision};

use super::filter::dlt_to_link;
use super::{FrameBatch, FrameMeta, InputInfo, InputProblem, LinkType, Source};
use crate::live_out::{Notice, RecordFile};
use crate::time::rfc3339_micros;
use crate::Ts;

/// The longest a read waits on a quiet link (ms).
const READ_TIMEOUT_MS: i32 = 50;
/// A batch with frames is handed out once it is this old.
pub const BATCH_LATENCY: Duration = Duration::from_millis(50);
/// Bytes copied into one batch buffer at most.
const BATCH_BYTES: usize = 4 << 20;
/// How often libpcap's drop counters are read and the interface's state
/// is checked.
const STATS_INTERVAL: Duration = Duration::from_millis(500);
/// Capture time given to the pipeline while the link is quiet: the wall
/// clock minus this margin (a frame read late still has an earlier stamp).
const QUIET_MARGIN: Ts = 200_000_000;
/// After a stop, reading goes on until the buffer is empty this long after
/// it (the kernel hands over a partly filled block after the read timeout).
const DRAIN_SETTLE: Duration = Duration::from_millis(3 * READ_TIMEOUT_MS as u64);
/// After a stop, the kernel buffer is drained at most this long.
const MAX_DRAIN: Duration = Duration::from_secs(2);

/// How to open an interface.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub interface: String,
    /// BPF filter (tcpdump syntax), compiled by libpcap for the interface.
    pub filter: Option<String>,
    /// Bytes captured per frame at most.
    pub snaplen: u32,
    pub promisc: bool,
    /// Kernel capture buffer in bytes (libpcap's default when `None`).
    pub buffer_bytes: Option<u32>,
    /// Stop after this many frames (that passed the filter).
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

/// Counters the live source keeps up to date for a status line; shared
/// (atomics), read by any thread.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Frames read from libpcap (after the filter).
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// libpcap's `ps_drop`: frames the kernel dropped because its buffer
    /// was full (we did not read fast enough).
    pub kernel_drops: AtomicU64,
    /// libpcap's `ps_ifdrop`: frames the interface or driver dropped.
    pub if_drops: AtomicU64,
    /// The interface is down or has no carrier (nothing can be captured).
    pub link_down: AtomicBool,
    /// Writing the `-w` capture failed (it is no longer written).
    pub write_failed: AtomicBool,
}

/// Why an interface could not be opened (exit code 2).
#[derive(Debug)]
pub struct LiveError {
    pub interface: String,
    pub message: String,
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.interface, self.message)
    }
}

impl std::error::Error for LiveError {}

/// One interface libpcap can capture on.
#[derive(Clone, Debug)]
pub struct InterfaceInfo {
    pub name: String,
    pub description: Option<String>,
    pub addresses: Vec<std::net::IpAddr>,
    pub up: bool,
    pub loopback: bool,
}

/// The interfaces libpcap can capture on (`exflow live --list-interfaces`).
pub fn list_interfaces() -> Result<Vec<InterfaceInfo>, String> {
    let devices = Device::list().map_err(|e| e.to_string())?;
    Ok(devices
        .into_iter()
        .map(|d| InterfaceInfo {
            up: d.flags.is_up(),
            loopback: d.flags.is_loopback(),
            addresses: d.addresses.iter().map(|a| a.addr).collect(),
            description: d.desc,
            name: d.name,
        })
        .collect())
}

/// Writes every captured frame to pcap files rotated by size: `FILE`,
/// `FILE.1`, `FILE.2`, ... (nanosecond pcap, as libpcap writes it). Packets
/// are gathered and written once per batch through a [`RecordFile`], so a
/// write error is seen at once and never leaves half a packet behind.
struct RotatingWriter {
    base: PathBuf,
    /// Rotate once a file holds this many bytes (0: never).
    max_bytes: u64,
    index: u32,
    /// The file header, the same for every file.
    header: [u8; PCAP_HEADER as usize],
    file: RecordFile,
    /// Whole packet records not written yet.
    pending: Vec<u8>,
}

/// Bytes of a pcap file header and of a record header.
const PCAP_HEADER: u64 = 24;
const RECORD_HEADER: u64 = 16;
/// Pending packet bytes written at once, even in the middle of a batch.
const WRITE_CHUNK: usize = 1 << 20;

impl RotatingWriter {
    fn open(base: &Path, max_bytes: u64, snaplen: u32, link: LinkType) -> Result<Self, String> {
        let mut header = [0u8; PCAP_HEADER as usize];
        // Nanosecond pcap, in host byte order (as libpcap's savefiles).
        header[0..4].copy_from_slice(&0xa1b2_3c4d_u32.to_ne_bytes());
        header[4..6].copy_from_slice(&2u16.to_ne_bytes());
        header[6..8].copy_from_slice(&4u16.to_ne_bytes());
        // thiszone and sigfigs: 0.
        header[16..20].copy_from_slice(&snaplen.to_ne_bytes());
        header[20..24].copy_from_slice(&u32::from(link.0).to_ne_bytes());
        let file = Self::start(base, &header)?;
        Ok(RotatingWriter {
            base: base.to_path_buf(),
            max_bytes,
            index: 0,
            header,
            file,
            pending: Vec::with_capacity(WRITE_CHUNK + (1 << 18)),
        })
    }

    fn path(base: &Path, index: u32) -> PathBuf {
        if index == 0 {
            base.to_path_buf()
        } else {
            let mut s = base.as_os_str().to_owned();
            s.push(format!(".{index}"));
            PathBuf::from(s)
        }
    }

    /// The file being written.
    fn current(&self) -> PathBuf {
        Self::path(&self.base, self.index)
    }

    fn start(path: &Path, header: &[u8]) -> Result<RecordFile, String> {
        let mut f = RecordFile::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_record(header)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(f)
    }

    /// Bytes the current file holds once `pending` is written.
    fn size(&self) -> u64 {
        self.file.len() + self.pending.len() as u64
    }

    fn write(&mut self, ts: Ts, data: &[u8], orig_len: u32) -> Result<(), String> {
        let size = RECORD_HEADER + data.len() as u64;
        if self.max_bytes > 0 && self.size() > PCAP_HEADER && self.size() + size > self.max_bytes {
            self.flush()?;
            let next = self.index + 1;
            self.file = Self::start(&Self::path(&self.base, next), &self.header)?;
            self.index = next;
        }
        let secs = u32::try_from(ts / 1_000_000_000).unwrap_or(u32::MAX);
        let nanos = (ts % 1_000_000_000) as u32;
        let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        for v in [secs, nanos, caplen, orig_len] {
            self.pending.extend_from_slice(&v.to_ne_bytes());
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending packets (all or none of them).
    fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let res = self.file.write_record(&self.pending);
        self.pending.clear();
        res.map_err(|e| format!("{}: {e}", self.current().display()))
    }
}

/// What the interface looks like now.
enum LinkState {
    Up,
    /// Down: administratively (else: no carrier).
    Down {
        admin: bool,
    },
    /// Gone (or another interface has its name now): why.
    Gone(String),
}

/// An `ifreq` naming `name`; `None` if no interface can have that name.
fn ifreq(name: &str) -> Option<libc::ifreq> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() >= libc::IFNAMSIZ || b.contains(&0) {
        return None;
    }
    // SAFETY: ifreq is plain data (a name and a union of integers and
    // addresses); all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    Some(req)
}

/// The index of interface `name` (an ioctl on any socket, here `fd`).
fn if_index(fd: i32, name: &str) -> io::Result<i32> {
    let mut req = ifreq(name).ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
    // SAFETY: SIOCGIFINDEX reads the name of a valid ifreq and writes its
    // index; `fd` is an open socket.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFINDEX as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled the union's index.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex })
}

/// The flags (IFF_*) of interface `name`.
fn if_flags(fd: i32, name: &str) -> io::Result<i32> {
    let mut req = ifreq(name).ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
    // SAFETY: as in `if_index`, for SIOCGIFFLAGS.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled the union's flags.
    Ok(i32::from(unsafe { req.ifr_ifru.ifru_flags }) & 0xffff)
}

/// Whether interface `name` (index `ifindex`, flags `flags`) has a
/// carrier. sysfs says at once (the driver's carrier flag); IFF_RUNNING (the
/// operational state) follows it up to a second later, so it is only the
/// fallback where sysfs shows another network namespace's interfaces.
fn has_carrier(name: &str, ifindex: i32, flags: i32) -> bool {
    let sys = |file: &str| std::fs::read_to_string(format!("/sys/class/net/{name}/{file}"));
    match (sys("ifindex"), sys("carrier")) {
        (Ok(i), Ok(c)) if i.trim().parse() == Ok(ifindex) => c.trim() == "1",
        _ => flags & libc::IFF_RUNNING != 0,
    }
}

/// Down periods of the interface while capturing.
#[derive(Default)]
struct LinkWatch {
    /// The interface's index when it was opened; 0: not a single real
    /// interface (`any`), not watched.
    ifindex: i32,
    /// Since when it is down (instant, wall clock), and whether that is a
    /// gap in the capture (it was up before) or the state it started in.
    down: Option<(Instant, Ts, bool)>,
    /// It was up at some point: from then on, down periods are gaps.
    was_up: bool,
    /// Gaps so far, their total length, when the first began.
    downs: u32,
    down_total: Duration,
    first_down: Option<Ts>,
    /// A poll reported an error: check before waiting again.
    check_soon: bool,
}

/// Frames from one network interface.
pub struct LiveSource {
    cap: Capture<Active>,
    link: LinkType,
    config: LiveConfig,
    stop: Arc<AtomicBool>,
    counters: Arc<LiveCounters>,
    info: InputInfo,
    started: Instant,
    /// Set once the stop flag (or a limit) was seen: (when, wall clock ns).
    stopping: Option<(Instant, Ts)>,
    done: bool,
    last_stats: Instant,
    /// Set when the last read found the link quiet: the capture time the
    /// pipeline may assume has passed.
    quiet_clock: Option<Ts>,
    writer: Option<RotatingWriter>,
    link_watch: LinkWatch,
    /// Why the capture ended before it was asked to stop.
    fatal: Option<String>,
    notice: Notice,
}

fn wall_ns() -> Ts {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as Ts)
}

fn open_message(interface: &str, e: pcap::Error) -> String {
    let msg = match e {
        pcap::Error::PcapError(m) => m,
        other => other.to_string(),
    };
    let lower = msg.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        format!(
            "no permission to capture ({msg}): run as root, or give exflow the CAP_NET_RAW and \
             CAP_NET_ADMIN capabilities (setcap cap_net_raw,cap_net_admin=eip /path/to/exflow)"
        )
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        format!("no such interface '{interface}' ({msg}); exflow live --list-interfaces shows them")
    } else {
        msg
    }
}

impl LiveSource {
    /// Opens the interface and applies the filter. `stop` ends the capture
    /// (after draining the kernel buffer) when set.
    pub fn open(config: LiveConfig, stop: Arc<AtomicBool>) -> Result<LiveSource, LiveError> {
        let err = |message: String| LiveError {
            interface: config.interface.clone(),
            message,
        };
        let name = config.interface.as_str();
        let mut inactive = Capture::from_device(name)
            .map_err(|e| err(open_message(name, e)))?
            .promisc(config.promisc)
            .snaplen(i32::try_from(config.snaplen).unwrap_or(i32::MAX))
            // Not immediate mode: on Linux that selects TPACKET_V2, whose
            // ring has one snaplen-sized slot per packet (8 packets in 2 MB
            // at the default snaplen). TPACKET_V3 packs packets into blocks
            // handed over when full or after the timeout, so batches still
            // flush within READ_TIMEOUT_MS.
            .immediate_mode(false)
            .timeout(READ_TIMEOUT_MS)
            .precision(Precision::Nano);
        if let Some(b) = config.buffer_bytes {
            inactive = inactive.buffer_size(i32::try_from(b).unwrap_or(i32::MAX));
        }
        // Non-blocking reads, waited for with poll(2): libpcap's own read
        // timeout does not return on a silent Linux interface in immediate
        // mode, so it could not notice a stop.
        let mut cap = inactive
            .open()
            .and_then(|c| c.setnonblock())
            .map_err(|e| err(open_message(name, e)))?;
        let link = dlt_to_link(cap.get_datalink().0);
        if !link.is_supported() {
            return Err(err(format!(
                "unsupported link type {} ({})",
                link.0,
                link.name()
            )));
        }
        if let Some(f) = &config.filter {
            cap.filter(f, true).map_err(|e| {
                err(format!(
                    "invalid BPF filter '{f}': {}",
                    match e {
                        pcap::Error::PcapError(m) => m,
                        other => other.to_string(),
                    }
                ))
            })?;
        }
        let info = InputInfo {
            path: config.interface.clone(),
            format: "live".into(),
            link_types: vec![link],
            filter: config.filter.clone().filter(|f| !f.trim().is_empty()),
            ..InputInfo::default()
        };
        let now = Instant::now();
        let ifindex = if_index(cap.as_raw_fd(), &config.interface).unwrap_or(0);
        let mut source = LiveSource {
            cap,
            link,
            config,
            stop,
            counters: Arc::default(),
            info,
            started: now,
            stopping: None,
            done: false,
            last_stats: now,
            quiet_clock: None,
            writer: None,
            link_watch: LinkWatch {
                ifindex,
                ..LinkWatch::default()
            },
            fatal: None,
            notice: Arc::new(|m: &str| eprintln!("exflow: {m}")),
        };
        source.watch_link();
        Ok(source)
    }

    /// Where messages for the operator go (the interface went down, the
    /// `-w` file could not be written): stderr by default.
    pub fn on_notice(&mut self, notice: Notice) {
        self.notice = notice;
    }

    /// Also write every captured frame to `path` (pcap), starting a new
    /// file `path.1`, `path.2`, ... whenever one would exceed `rotate_bytes`
    /// (0: never). Call after dropping privileges: the files belong to the
    /// user that runs the capture.
    pub fn write_to(&mut self, path: &Path, rotate_bytes: u64) -> Result<(), String> {
        self.writer = Some(RotatingWriter::open(
            path,
            rotate_bytes,
            self.config.snaplen,
            self.link,
        )?);
        Ok(())
    }

    /// A `-w` write failed: say so once, and stop writing.
    fn write_failed(&mut self, e: &str) {
        self.writer = None;
        self.counters.write_failed.store(true, Ordering::Relaxed);
        (self.notice)(&format!(
            "error: -w {e}: the capture is no longer written (the file ends with the last whole \
             packet written); capture, streaming records and the report go on"
        ));
    }

    /// Writes the packets gathered for `-w`.
    fn flush_writer(&mut self) {
        if let Some(w) = &mut self.writer {
            if let Err(e) = w.flush() {
                self.write_failed(&e);
            }
        }
    }

    /// Checks the interface: notes when it goes down or comes back up, and
    /// begins the stop when it is gone.
    fn watch_link(&mut self) {
        self.link_watch.check_soon = false;
        let w = &mut self.link_watch;
        if w.ifindex == 0 || self.stopping.is_some() {
            return;
        }
        let fd = self.cap.as_raw_fd();
        let name = self.config.interface.as_str();
        let state = match if_index(fd, name) {
            Ok(i) if i != w.ifindex => {
                LinkState::Gone("the interface disappeared (another one has its name now)".into())
            }
            Ok(_) => match if_flags(fd, name) {
                Ok(f) if f & libc::IFF_UP == 0 => LinkState::Down { admin: true },
                Ok(f) if !has_carrier(name, w.ifindex, f) => LinkState::Down { admin: false },
                Ok(_) => LinkState::Up,
                Err(e) => LinkState::Gone(format!("the interface disappeared ({e})")),
            },
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                LinkState::Gone("the interface disappeared".into())
            }
            // Cannot tell: assume nothing changed.
            Err(_) => return,
        };
        match (state, w.down) {
            (LinkState::Up, None) => w.was_up = true,
            (LinkState::Down { .. }, Some(_)) => {}
            (LinkState::Down { admin }, None) => {
                let at = wall_ns();
                let gap = w.was_up;
                w.down = Some((Instant::now(), at, gap));
                self.counters.link_down.store(true, Ordering::Relaxed);
                let msg = if gap {
                    w.downs += 1;
                    w.first_down.get_or_insert(at);
                    format!(
                        "warning: {name}: the interface {} at {}: nothing is captured until it \
                         is up again (the report will say so; exit code 3)",
                        if admin {
                            "was taken down"
                        } else {
                            "lost its carrier"
                        },
                        rfc3339_micros(at)
                    )
                } else {
                    // Opened down (or its carrier not reported yet, as
                    // just after it was set up): not a gap.
                    format!(
                        "warning: {name}: the interface {}: nothing is captured until it is up",
                        if admin { "is down" } else { "has no carrier" }
                    )
                };
                (self.notice)(&msg);
            }
            (LinkState::Up, Some((since, _, gap))) => {
                w.down = None;
                w.was_up = true;
                self.counters.link_down.store(false, Ordering::Relaxed);
                let msg = if gap {
                    w.down_total += since.elapsed();
                    format!(
                        "{name}: the interface is up again after {:.1} s; capturing goes on",
                        since.elapsed().as_secs_f64()
                    )
                } else {
                    format!("{name}: the interface is up")
                };
                (self.notice)(&msg);
            }
            (LinkState::Gone(why), _) => {
                let at = wall_ns();
                self.fatal
                    .get_or_insert_with(|| format!("{why} at {}", rfc3339_micros(at)));
                // Stop as on a signal: drain what the kernel holds, then end.
                self.stopping = Some((Instant::now(), at));
                self.stop.store(true, Ordering::Relaxed);
            }
        }
    }

    /// What went wrong with the capture itself, for the input's problem.
    fn problem(&mut self) -> Option<String> {
        let w = &mut self.link_watch;
        if let Some((since, _, true)) = w.down.take() {
            w.down_total += since.elapsed();
        }
        let mut parts: Vec<String> = Vec::new();
        if let Some(f) = &self.fatal {
            parts.push(format!("capture stopped: {f}"));
        }
        if let Some(first) = w.first_down {
            parts.push(format!(
                "the interface was down {} time{}, {:.1} s in all (the first at {}): nothing \
                 was captured meanwhile",
                w.downs,
                if w.downs == 1 { "" } else { "s" },
                w.down_total.as_secs_f64(),
                rfc3339_micros(first)
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Counters for a status line (shared, updated while capturing).
    pub fn counters(&self) -> Arc<LiveCounters> {
        Arc::clone(&self.counters)
    }

    /// The link type of the interface.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Re-reads libpcap's drop counters into [`LiveCounters`] and the
    /// input's facts.
    fn read_stats(&mut self) {
        self.last_stats = Instant::now();
        if let Ok(s) = self.cap.stats() {
            let (kernel, interface) = (u64::from(s.dropped), u64::from(s.if_dropped));
            self.counters.kernel_drops.store(kernel, Ordering::Relaxed);
            self.counters.if_drops.store(interface, Ordering::Relaxed);
            self.info.kernel_drops = Some(kernel);
            self.info.interface_drops = Some(interface);
        }
    }

    /// Whether to stop reading now; notes the moment the stop began.
    fn should_stop(&mut self) -> bool {
        if self.stopping.is_none() {
            let limit = self.config.count.is_some_and(|n| self.info.packets >= n)
                || self
                    .config
                    .duration
                    .is_some_and(|d| self.started.elapsed() >= d);
            if limit || self.stop.load(Ordering::Relaxed) {
                self.stopping = Some((Instant::now(), wall_ns()));
                // One flag says "the stop has begun" to every thread (the
                // stop deadline of `exflow live` watches it), whatever
                // began it.
                self.stop.store(true, Ordering::Relaxed);
            }
        }
        match self.stopping {
            None => false,
            // --count: exactly that many frames, nothing drained after.
            Some(_) if self.config.count.is_some_and(|n| self.info.packets >= n) => true,
            Some((at, _)) => at.elapsed() >= MAX_DRAIN,
        }
    }

    /// Waits up to [`READ_TIMEOUT_MS`] for frames; whether some came (or
    /// something happened to the socket: the next read tells).
    fn wait_readable(&mut self) -> bool {
        let mut fds = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, the capture's descriptor, open while
        // `self.cap` lives. EINTR (a signal) just ends the wait early.
        let n = unsafe { libc::poll(&mut fds, 1, READ_TIMEOUT_MS) };
        if n > 0 && fds.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            // The socket's error is read (and cleared) by libpcap's next
            // read: ENETDOWN when the interface went down (libpcap goes on:
            // capture resumes when it is up again) or disappeared (libpcap
            // fails). Either way, look at the interface.
            self.link_watch.check_soon = true;
            if fds.revents & (libc::POLLHUP | libc::POLLNVAL) != 0 {
                // Would be reported again at once, forever: not a capture
                // that can go on.
                let at = wall_ns();
                self.fatal.get_or_insert_with(|| {
                    format!(
                        "the capture socket failed (poll: {}) at {}",
                        if fds.revents & libc::POLLNVAL != 0 {
                            "POLLNVAL"
                        } else {
                            "POLLHUP"
                        },
                        rfc3339_micros(at)
                    )
                });
                self.stop.store(true, Ordering::Relaxed);
                self.finish();
                return false;
            }
        }
        n > 0
    }

    fn finish(&mut self) {
        self.done = true;
        self.read_stats();
        self.flush_writer();
        if let Some(message) = self.problem() {
            self.info
                .problem
                .get_or_insert(InputProblem { offset: 0, message });
        }
    }

    /// Counts one captured frame (`len` on the wire, `caplen` kept).
    fn account(&mut self, ts: Ts, len: u32, caplen: u32) {
        let i = &mut self.info;
        i.packets += 1;
        i.packets_matched += 1;
        i.bytes += u64::from(len);
        i.first_ts = Some(i.first_ts.map_or(ts, |f| f.min(ts)));
        i.last_ts = Some(i.last_ts.map_or(ts, |l| l.max(ts)));
        if caplen < len {
            i.snaplen_truncated += 1;
        }
        self.counters.packets.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(u64::from(len), Ordering::Relaxed);
    }

    /// Nothing buffered in the kernel: whether to go on reading (after a
    /// wait) or hand out the batch (`have_frames`), or end (draining).
    fn on_timeout(&mut self, have_frames: bool) -> bool {
        // Nothing buffered. While draining, that is the end once
        // the kernel has handed over the block that was being
        // filled at the stop (it does after the read timeout).
        if let Some((at, _)) = self.stopping {
            if at.elapsed() < DRAIN_SETTLE {
                self.wait_readable();
                return true;
            }
            self.finish();
            return false;
        }
        if self.link_watch.check_soon {
            self.watch_link();
            if self.stopping.is_some() {
                return true;
            }
        }
        // Hand out what we have; else wait for the link a little.
        if have_frames {
            return false;
        }
        if self.wait_readable() {
            return true;
        }
        self.quiet_clock = Some(wall_ns().saturating_sub(QUIET_MARGIN));
        false
    }

    /// A capture error: the end of the capture, said once.
    fn on_error(&mut self, e: pcap::Error) {
        // libpcap says "The interface disappeared" (its own
        // check after ENETDOWN) when the interface is gone.
        let msg = match e {
            pcap::Error::PcapError(m) => m,
            other => other.to_string(),
        };
        let at = wall_ns();
        self.fatal
            .get_or_insert_with(|| format!("libpcap: {msg} at {}", rfc3339_micros(at)));
        // The stop has begun (the stop deadline watches this).
        self.stop.store(true, Ordering::Relaxed);
        self.finish();
    }
}

impl Source for LiveSource {
    fn next_batch(&mut self, max_frames: usize) -> Option<FrameBatch> {
        if self.done {
            return None;
        }
        let mut bytes: Vec<u8> = Vec::new();
        let mut frames: Vec<FrameMeta> = Vec::new();
        let begun = Instant::now();
        self.quiet_clock = None;
        loop {
            // Finished inside a wait (the socket failed).
            if self.done {
                break;
            }
            if self.should_stop() {
                self.finish();
                break;
            }
            match self.cap.next_packet() {
                Ok(packet) => {
                    let h = *packet.header;
                    let secs = u64::try_from(h.ts.tv_sec).unwrap_or(0);
                    let nanos = u64::try_from(h.ts.tv_usec).unwrap_or(0);
                    let ts = secs.saturating_mul(1_000_000_000).saturating_add(nanos);
                    // Draining after a stop: what came after it is not wanted.
                    if self.stopping.is_some_and(|(_, at)| ts > at) {
                        self.finish();
                        break;
                    }
                    let (Ok(offset), Ok(caplen)) =
                        (u32::try_from(bytes.len()), u32::try_from(packet.data.len()))
                    else {
                        break;
                    };
                    bytes.extend_from_slice(packet.data);
                    if let Some(w) = &mut self.writer {
                        if let Err(e) = w.write(ts, &bytes[offset as usize..], h.len) {
                            self.write_failed(&e);
                        }
                    }
                    frames.push(FrameMeta {
                        ts,
                        buf: 0,
                        input: 0,
                        link: self.link,
                        offset,
                        caplen,
                        orig_len: h.len.max(caplen),
                    });
                    self.account(ts, h.len, caplen);
                    if frames.len() >= max_frames
                        || bytes.len() >= BATCH_BYTES
                        || begun.elapsed() >= BATCH_LATENCY
                    {
                        break;
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {
                    if self.on_timeout(!frames.is_empty()) {
                        continue;
                    }
                    break;
                }
                Err(pcap::Error::NoMorePackets) => {
                    self.finish();
                    break;
                }
                Err(e) => {
                    self.on_error(e);
                    break;
                }
            }
        }
        if !self.done {
            if self.last_stats.elapsed() >= STATS_INTERVAL {
                self.read_stats();
                self.watch_link();
            }
            self.flush_writer();
        }
        if frames.is_empty() && self.done {
            return None;
        }
        Some(FrameBatch {
            buffers: vec![Arc::new(bytes.into())],
            frames,
        })
    }

    fn inputs(&self) -> Vec<InputInfo> {
        vec![self.info.clone()]
    }

    fn clock_hint(&self) -> Option<Ts> {
        self.quiet_clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks the interface watch makes, on `lo` and on a name no
    /// interface has (no privileges needed: any socket will do).
    #[test]
    fn interface_checks() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = sock.as_raw_fd();
        let lo = if_index(fd, "lo").unwrap();
        assert!(lo > 0);
        let flags = if_flags(fd, "lo").unwrap();
        assert_ne!(flags & libc::IFF_UP, 0);
        assert!(has_carrier("lo", lo, flags));
        let gone = if_index(fd, "exflow-nope0").unwrap_err();
        assert_eq!(gone.raw_os_error(), Some(libc::ENODEV));
        // Not a possible interface name: never looked up.
        assert!(ifreq("").is_none() && ifreq("a-name-far-too-long").is_none());
    }

    /// -w: nanosecond pcap, rotated by size, each file a valid capture.
    #[test]
    fn rotating_writer_writes_whole_pcap_files() {
        let dir = std::env::temp_dir().join(format!("exflow-rotate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = dir.join("w.pcap");
        let mut w = RotatingWriter::open(&base, 24 + 2 * (16 + 100), 65535, LinkType(1)).unwrap();
        for k in 0..5u64 {
            w.write(1_700_000_000_123_456_789 + k, &[k as u8; 100], 150)
                .unwrap();
        }
        w.flush().unwrap();
        let sizes: Vec<u64> = (0..3)
            .map(|i| {
                std::fs::metadata(RotatingWriter::path(&base, i))
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(sizes, [24 + 232, 24 + 232, 24 + 116]);
        let first = std::fs::read(&base).unwrap();
        assert_eq!(first[..4], 0xa1b2_3c4d_u32.to_ne_bytes());
        assert_eq!(first[20..24], 1u32.to_ne_bytes());
        // The first record: seconds, nanoseconds, caplen, wire length.
        assert_eq!(first[24..28], 1_700_000_000u32.to_ne_bytes());
        assert_eq!(first[28..32], 123_456_789u32.to_ne_bytes());
        assert_eq!(first[32..36], 100u32.to_ne_bytes());
        assert_eq!(first[36..40], 150u32.to_ne_bytes());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
