//! The path `exflow live` takes, over a capture file: shared by the tests
//! that check it agrees with `exflow analyze`.

use exflow::analysis;
use exflow::capture::{FileSource, FrameBatch, InputInfo, Source};
use exflow::pipeline::{Options, StreamMsg};
use exflow::stream::LiveCorrelator;
use serde_json::Value;

/// A capture file handed out `n` frames at a time, as a live source hands
/// out whatever the kernel had.
pub struct Batches {
    pub inner: FileSource,
    pub n: usize,
}

impl Source for Batches {
    fn next_batch(&mut self, max_frames: usize) -> Option<FrameBatch> {
        self.inner.next_batch(max_frames.min(self.n))
    }

    fn inputs(&self) -> Vec<InputInfo> {
        self.inner.inputs()
    }
}

/// The path `exflow live` takes over `path`, one packet at a time (every
/// hand-off decided while capturing) and 1000 at a time: its final report
/// has the hand-offs, findings and verdicts of `analyze` (`offline`), and
/// it streamed each hand-off once, as the report has it (in the order they
/// were decided).
pub fn live_agrees(path: &str, offline: &Value) {
    for n in [1, 1000] {
        let (tx, rx) = crossbeam_channel::bounded::<StreamMsg>(1024);
        let mut opts = Options {
            threads: 2,
            stream: Some(tx),
            ..Options::default()
        };
        let correlator = LiveCorrelator::new(&opts.flow, &opts.correlate, Vec::new());
        let stream = std::thread::spawn(move || {
            let mut c = correlator;
            for msg in rx {
                c.push(msg);
            }
            c.finish().unwrap()
        });
        let source = Batches {
            inner: FileSource::open(&[path], None).unwrap().0,
            n,
        };
        let analysis = analysis::run(Box::new(source), &opts);
        opts.stream = None;
        let out = String::from_utf8(stream.join().unwrap()).unwrap();
        let mut json = Vec::new();
        exflow::report::write_json(&analysis, &mut json).unwrap();
        let live: Value = serde_json::from_slice(&json).unwrap();
        for key in ["handoffs", "findings", "verdicts"] {
            assert_eq!(live[key], offline[key], "{path}, batches of {n}: {key}");
        }
        // Each hand-off streamed once, as the report has it. In any order:
        // live streams a hand-off when it is decided, and one `superseded`
        // by a later answer naming the same endpoint is decided after the
        // one that superseded it (the lab's drsuapi and lsarpc on one port).
        let mut streamed: Vec<String> = out
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["record"] == "handoff")
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("record");
                r.to_string()
            })
            .collect();
        let mut want: Vec<String> = offline["handoffs"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect();
        streamed.sort();
        want.sort();
        assert_eq!(streamed, want, "{path}, batches of {n}: streamed hand-offs");
    }
}
