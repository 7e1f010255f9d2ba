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

use std::fmt;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pcap::{Active, Capture, Device, Precision, Savefile};

use super::filter::dlt_to_link;
use super::{FrameBatch, FrameMeta, InputInfo, InputProblem, LinkType, Source};
use crate::Ts;

/// The longest a read waits on a quiet link (ms).
const READ_TIMEOUT_MS: i32 = 50;
/// A batch with frames is handed out once it is this old.
pub const BATCH_LATENCY: Duration = Duration::from_millis(50);
/// Bytes copied into one batch buffer at most.
const BATCH_BYTES: usize = 4 << 20;
/// How often libpcap's drop counters are read.
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
/// `FILE.1`, `FILE.2`, ...
struct RotatingWriter {
    base: PathBuf,
    /// Rotate once a file holds this many bytes (0: never).
    max_bytes: u64,
    index: u32,
    written: u64,
    file: Savefile,
}

/// Bytes of a pcap file header and of a record header.
const PCAP_HEADER: u64 = 24;
const RECORD_HEADER: u64 = 16;

impl RotatingWriter {
    fn path(base: &Path, index: u32) -> PathBuf {
        if index == 0 {
            base.to_path_buf()
        } else {
            let mut s = base.as_os_str().to_owned();
            s.push(format!(".{index}"));
            PathBuf::from(s)
        }
    }

    fn write(&mut self, cap: &Capture<Active>, packet: &pcap::Packet<'_>) -> Result<(), String> {
        let size = RECORD_HEADER + packet.data.len() as u64;
        if self.max_bytes > 0 && self.written > PCAP_HEADER && self.written + size > self.max_bytes
        {
            self.file.flush().map_err(|e| e.to_string())?;
            let next = self.index + 1;
            let path = Self::path(&self.base, next);
            self.file = cap
                .savefile(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            self.index = next;
            self.written = PCAP_HEADER;
        }
        self.file.write(packet);
        self.written += size;
        Ok(())
    }
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
            ..InputInfo::default()
        };
        let now = Instant::now();
        Ok(LiveSource {
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
        })
    }

    /// Also write every captured frame to `path` (pcap), starting a new
    /// file `path.1`, `path.2`, ... whenever one would exceed `rotate_bytes`
    /// (0: never). Call after dropping privileges: the files belong to the
    /// user that runs the capture.
    pub fn write_to(&mut self, path: &Path, rotate_bytes: u64) -> Result<(), String> {
        let file = self
            .cap
            .savefile(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.writer = Some(RotatingWriter {
            base: path.to_path_buf(),
            max_bytes: rotate_bytes,
            index: 0,
            written: PCAP_HEADER,
            file,
        });
        Ok(())
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

    /// Waits up to [`READ_TIMEOUT_MS`] for frames; whether some came.
    fn wait_readable(&self) -> bool {
        let mut fds = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, the capture's descriptor, open while
        // `self.cap` lives. EINTR (a signal) just ends the wait early.
        let n = unsafe { libc::poll(&mut fds, 1, READ_TIMEOUT_MS) };
        n > 0
    }

    fn finish(&mut self) {
        self.done = true;
        self.read_stats();
        if let Some(w) = &mut self.writer {
            if let Err(e) = w.file.flush() {
                self.info.problem.get_or_insert(InputProblem {
                    offset: 0,
                    message: format!("writing {}: {e}", w.base.display()),
                });
            }
        }
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
                        let data = &bytes[offset as usize..];
                        if let Err(e) = w.write(&self.cap, &pcap::Packet::new(&h, data)) {
                            self.info.problem.get_or_insert(InputProblem {
                                offset: 0,
                                message: format!("writing the capture: {e} (no longer written)"),
                            });
                            self.writer = None;
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
                    let i = &mut self.info;
                    i.packets += 1;
                    i.packets_matched += 1;
                    i.bytes += u64::from(h.len);
                    i.first_ts = Some(i.first_ts.map_or(ts, |f| f.min(ts)));
                    i.last_ts = Some(i.last_ts.map_or(ts, |l| l.max(ts)));
                    if caplen < h.len {
                        i.snaplen_truncated += 1;
                    }
                    self.counters.packets.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .bytes
                        .fetch_add(u64::from(h.len), Ordering::Relaxed);
                    if frames.len() >= max_frames
                        || bytes.len() >= BATCH_BYTES
                        || begun.elapsed() >= BATCH_LATENCY
                    {
                        break;
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {
                    // Nothing buffered. While draining, that is the end once
                    // the kernel has handed over the block that was being
                    // filled at the stop (it does after the read timeout).
                    if let Some((at, _)) = self.stopping {
                        if at.elapsed() < DRAIN_SETTLE {
                            self.wait_readable();
                            continue;
                        }
                        self.finish();
                        break;
                    }
                    // Hand out what we have; else wait for the link a little.
                    if !frames.is_empty() {
                        break;
                    }
                    if self.wait_readable() {
                        continue;
                    }
                    self.quiet_clock = Some(wall_ns().saturating_sub(QUIET_MARGIN));
                    break;
                }
                Err(pcap::Error::NoMorePackets) => {
                    self.finish();
                    break;
                }
                Err(e) => {
                    self.info.problem.get_or_insert(InputProblem {
                        offset: 0,
                        message: format!("capture stopped: {e}"),
                    });
                    self.finish();
                    break;
                }
            }
        }
        if self.last_stats.elapsed() >= STATS_INTERVAL {
            self.read_stats();
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
