//! How `exflow live` stops: the signals that stop it, and the deadline
//! for writing its outputs once stopped.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::{Exit, Failure};

/// The flags the signals set.
pub struct Signals {
    /// SIGINT or SIGTERM (or `--duration`, `--count`): stop capturing.
    pub stop: Arc<AtomicBool>,
    /// SIGHUP (logrotate): reopen --events at its next record boundary.
    pub hup: Arc<AtomicBool>,
}

impl Signals {
    /// First SIGINT or SIGTERM: stop and write the report. Second: exit at
    /// once ([`Exit::Interrupted`]). The conditional exit is registered
    /// first, so it only fires once the flag is already set.
    pub fn install() -> Result<Signals, Failure> {
        let cannot = |e: std::io::Error| Failure::error(format!("cannot handle signals: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(
                sig,
                Exit::Interrupted as i32,
                Arc::clone(&stop),
            )
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(cannot)?;
        }
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(SIGHUP, Arc::clone(&hup)).map_err(cannot)?;
        Ok(Signals { stop, hup })
    }
}

/// What `exflow live` is doing once the capture has stopped, for the stop
/// deadline's message.
#[derive(Clone, Copy)]
#[repr(u8)]
pub enum StopPhase {
    Pipeline,
    Records,
    Report,
    Baseline,
}

impl StopPhase {
    fn from_u8(v: u8) -> StopPhase {
        match v {
            0 => StopPhase::Pipeline,
            1 => StopPhase::Records,
            2 => StopPhase::Report,
            _ => StopPhase::Baseline,
        }
    }

    fn waiting_for(self) -> &'static str {
        match self {
            StopPhase::Pipeline => {
                "the shard workers to finish the packets already captured \
                 (or the streaming records' output to take more)"
            }
            StopPhase::Records => {
                "the last streaming records to be written (is their reader stuck?)"
            }
            StopPhase::Report => "the report to be written (is its reader stuck?)",
            StopPhase::Baseline => "the --baseline file to be written",
        }
    }
}

/// Once the stop has begun (a signal, `--duration`, `--count`: all set
/// `stop`), `exflow live` has `timeout` to write its outputs; past it, it
/// says what it was still waiting for and exits with [`Exit::Stuck`]
/// rather than hang.
pub fn stop_deadline(stop: Arc<AtomicBool>, phase: Phase, timeout: Duration) {
    let watch = move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(timeout);
        let waiting = phase.get().waiting_for();
        eprintln!(
            "exflow: error: the capture stopped {} s ago and exflow is still waiting for \
             {waiting}; exiting without it (see --stop-timeout)",
            timeout.as_secs()
        );
        std::process::exit(Exit::Stuck as i32);
    };
    // Without the thread there is no deadline, but the capture still works.
    if let Err(e) = std::thread::Builder::new()
        .name("exflow-deadline".into())
        .spawn(watch)
    {
        eprintln!("exflow: warning: no stop deadline (cannot start its thread: {e})");
    }
}

/// Where the stop is, shared with the deadline's thread.
#[derive(Clone)]
pub struct Phase(Arc<AtomicU8>);

impl Phase {
    /// The capture is going on (or its last packets are being analyzed).
    pub fn new() -> Phase {
        Phase(Arc::new(AtomicU8::new(StopPhase::Pipeline as u8)))
    }

    /// The stop has moved on to `phase`.
    pub fn set(&self, phase: StopPhase) {
        self.0.store(phase as u8, Ordering::Relaxed);
    }

    fn get(&self) -> StopPhase {
        StopPhase::from_u8(self.0.load(Ordering::Relaxed))
    }
}
