//! The work after the read phase (correlate, verdicts, JSON rendering),
//! timed on its own over a capture read once, so a change to it can be
//! measured without the noise of re-reading gigabytes each time. Not a
//! test: run by hand, e.g. on the throughput bench's capture:
//!
//! ```sh
//! EXFLOW_POST_BENCH=target/bench-data/mixed-10000000-b14205af.pcap \
//!     cargo test --release --test post_read_bench -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use exflow::analysis;
use exflow::capture::FileSource;
use exflow::pipeline::{self, Options};

/// "median / best" of the rounds.
fn spread(mut v: Vec<Duration>) -> String {
    v.sort();
    format!("{:.1?} / {:.1?}", v[v.len() / 2], v[0])
}

#[test]
#[ignore = "a benchmark: needs EXFLOW_POST_BENCH=<capture>"]
fn post_read_phases() {
    let Some(path) = std::env::var_os("EXFLOW_POST_BENCH") else {
        eprintln!("set EXFLOW_POST_BENCH to a capture");
        return;
    };
    let rounds: usize = std::env::var("EXFLOW_POST_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let opts = Options {
        progress: false,
        ..Options::default()
    };
    let (source, _) = FileSource::open(&[path], None).expect("opening the capture");
    let collected = pipeline::collect(Box::new(source), &opts);
    let flows = collected.flows.len();
    let mut correlate = Vec::new();
    let mut judge = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let c = exflow::correlate::correlate(&collected.flows, &collected.events, &opts.correlate);
        correlate.push(t.elapsed());
        let t = Instant::now();
        let v = exflow::verdict::evaluate(&collected.flows, &c, None, None);
        judge.push(t.elapsed());
        std::hint::black_box(v);
    }
    let analysis = analysis::finish(collected, &opts, None);
    let mut render = Vec::new();
    let mut bytes = 0;
    for _ in 0..rounds {
        let mut sink = CountingSink(0);
        let t = Instant::now();
        exflow::report::write_json(&analysis, &mut sink).expect("rendering");
        render.push(t.elapsed());
        bytes = sink.0;
    }
    println!(
        "{flows} flows, {bytes} bytes of JSON; median / best of {rounds}: correlate {}, evaluate {}, render {}",
        spread(correlate),
        spread(judge),
        spread(render)
    );
}

struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
