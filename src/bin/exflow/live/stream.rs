//! The stream thread of `exflow live`: hand-offs, failed attempts and
//! periodic `stats` records, written while the capture goes on.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use exflow::capture::LiveCounters;
use exflow::live_out::EventsOutput;
use exflow::pipeline::{self, Options};
use exflow::stream::{EvidenceSink, LiveCorrelator, StreamCounters};

use crate::{Exit, Failure};

/// The stream thread and what it counts.
pub struct Streaming {
    thread: JoinHandle<io::Result<()>>,
    /// What the status line reads besides the capture's counters.
    pub counters: Arc<StreamCounters>,
}

impl Streaming {
    /// Starts the thread that turns the workers' messages (`rx`) into
    /// records on `events`, with a `stats` record (of `interface` and its
    /// `capture` counters) every `every`.
    pub fn start(
        opts: &Options,
        rx: Receiver<pipeline::StreamMsg>,
        interface: &str,
        capture: &Arc<LiveCounters>,
        events: &EventsOutput,
        every: Duration,
        evidence: Option<EvidenceSink>,
    ) -> Result<Streaming, Failure> {
        let mut correlator = LiveCorrelator::new(&opts.flow, &opts.correlate, events.clone());
        if let Some(sink) = evidence {
            correlator.set_evidence(sink);
        }
        let counters = correlator.counters();
        let stats = StatsRecord {
            interface: interface.to_string(),
            capture: Arc::clone(capture),
            stream: Arc::clone(&counters),
            events: events.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("exflow-stream".into())
            .spawn(move || stream_records(correlator, &rx, &stats, every))
            .map_err(|e| Failure::error(format!("cannot start the stream thread: {e}")))?;
        Ok(Streaming { thread, counters })
    }

    /// Waits for the last records (the pipeline is done and its stream
    /// closed); partial if they could not all be written.
    pub fn finish(self) -> Exit {
        match self.thread.join() {
            Ok(Ok(())) => Exit::Clean,
            Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Exit::Clean,
            Ok(Err(e)) => {
                eprintln!("exflow: error: writing the streaming records: {e}");
                Exit::Partial
            }
            Err(_) => {
                eprintln!("exflow: error: the stream thread failed");
                Exit::Error
            }
        }
    }
}

/// What the periodic `stats` record of `exflow live` reads.
struct StatsRecord {
    interface: String,
    capture: Arc<LiveCounters>,
    stream: Arc<StreamCounters>,
    events: EventsOutput,
}

impl StatsRecord {
    fn json(&self) -> serde_json::Value {
        let c = &self.capture;
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        serde_json::json!({
            "ts": exflow::time::rfc3339_micros(wall),
            "interface": self.interface,
            "interface_up": !c.link_down.load(Ordering::Relaxed),
            "packets": c.packets.load(Ordering::Relaxed),
            "bytes": c.bytes.load(Ordering::Relaxed),
            "kernel_drops": c.kernel_drops.load(Ordering::Relaxed),
            "interface_drops": c.if_drops.load(Ordering::Relaxed),
            "flows_tracked": self.stream.tracked.load(Ordering::Relaxed),
            "records_written": self.events.written(),
            "records_lost": self.events.lost(),
            "scan_probes_untracked": self.stream.scan_probes_untracked.load(Ordering::Relaxed),
            "probes_not_held": self.stream.probes_not_held.load(Ordering::Relaxed),
        })
    }
}

/// The stream thread of `exflow live`: feeds the workers' messages to the
/// live correlator until the pipeline is done; meanwhile writes a `stats`
/// record every `every` (never when zero; once more at the end) and, while
/// the link is quiet, reopens --events when a SIGHUP asked for it.
fn stream_records(
    mut c: LiveCorrelator<EventsOutput>,
    rx: &Receiver<pipeline::StreamMsg>,
    stats: &StatsRecord,
    every: Duration,
) -> io::Result<()> {
    use crossbeam_channel::RecvTimeoutError;
    /// A SIGHUP is acted on within this even when no record is written.
    const TICK: Duration = Duration::from_millis(200);
    let mut next = (!every.is_zero()).then(|| Instant::now() + every);
    loop {
        let wait = next.map_or(TICK, |t| {
            t.saturating_duration_since(Instant::now()).min(TICK)
        });
        match rx.recv_timeout(wait) {
            Ok(msg) => c.push(msg),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        stats.events.reopen_if_requested();
        if let Some(t) = next {
            let now = Instant::now();
            if now >= t {
                c.write_record("stats", stats.json());
                // Late (a slow output): the next one a whole interval on.
                next = Some(if t + every > now {
                    t + every
                } else {
                    now + every
                });
            }
        }
    }
    if next.is_some() {
        c.write_record("stats", stats.json());
    }
    c.finish().map(|_| ())
}
