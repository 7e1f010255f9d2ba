//! The status line of `exflow live` on a terminal: packets/s, drops, flows
//! tracked and problems, redrawn every 2 seconds (indicatif draws it).

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use exflow::capture::LiveCounters;
use exflow::stream::StreamCounters;

/// The thread redrawing the line while the capture goes on.
pub struct StatusLine {
    capturing: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl StatusLine {
    /// Starts the line, only when stderr is a terminal.
    pub fn start(
        interface: &str,
        capture: &Arc<LiveCounters>,
        stream: &Arc<StreamCounters>,
    ) -> Option<StatusLine> {
        if !io::stderr().is_terminal() {
            return None;
        }
        let capturing = Arc::new(AtomicBool::new(true));
        let (name, c, s, on) = (
            interface.to_string(),
            Arc::clone(capture),
            Arc::clone(stream),
            Arc::clone(&capturing),
        );
        let thread = std::thread::spawn(move || redraw(&name, &c, &s, &on));
        Some(StatusLine { capturing, thread })
    }

    /// Stops redrawing once the capture has ended; the last line stays.
    pub fn stop(self) {
        self.capturing.store(false, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Redraws the status line every 2 seconds until capture ends.
fn redraw(interface: &str, c: &LiveCounters, s: &StreamCounters, capturing: &AtomicBool) {
    const EVERY: Duration = Duration::from_secs(2);
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
    let mut last = (Instant::now(), c.packets.load(Ordering::Relaxed));
    let mut next = Instant::now() + EVERY;
    while capturing.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if Instant::now() < next {
            continue;
        }
        next += EVERY;
        let packets = c.packets.load(Ordering::Relaxed);
        let rate = (packets - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
        last = (Instant::now(), packets);
        bar.set_message(format!(
            "exflow live {interface}: {rate:.0} pkt/s, {packets} packets, kernel drops {}, \
             interface drops {}, {} flows tracked, {} problems",
            c.kernel_drops.load(Ordering::Relaxed),
            c.if_drops.load(Ordering::Relaxed),
            s.tracked.load(Ordering::Relaxed),
            s.problems.load(Ordering::Relaxed),
        ));
    }
    // The last line stays, and what follows starts below it.
    bar.abandon();
    eprintln!();
}
