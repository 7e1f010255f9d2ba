//! Issue #18, one correlator: every capture the tests know goes through the
//! path `exflow live` takes — the pipeline streaming what each batch taught
//! its workers to the live correlator, in batches of 1, 7 and 1000 packets —
//! and gives the hand-offs, findings and verdicts `exflow analyze` gives;
//! the records streamed on the way agree with that final report.

mod common;

use std::collections::BTreeSet;

use exflow::analysis::{self, Analysis};
use exflow::capture::{FileSource, FrameBatch, InputInfo, Source};
use exflow::pipeline::{Options, StreamMsg};
use exflow::stream::LiveCorrelator;
use serde_json::Value;

/// A capture file handed out `n` frames at a time, as a live source hands
/// out whatever the kernel had.
struct Batches {
    inner: FileSource,
    n: usize,
}

impl Source for Batches {
    fn next_batch(&mut self, max_frames: usize) -> Option<FrameBatch> {
        self.inner.next_batch(max_frames.min(self.n))
    }

    fn inputs(&self) -> Vec<InputInfo> {
        self.inner.inputs()
    }
}

fn open(path: &str) -> FileSource {
    FileSource::open(&[common::crate_root().join(path)], None)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .0
}

/// The live path over `path` in batches of `n`: the final analysis and the
/// streamed records.
fn live_path(path: &str, n: usize, threads: usize) -> (Analysis, Vec<Value>) {
    live_path_with(path, n, threads, None)
}

/// [`live_path`] with `live --write-failed`'s ring and evidence file.
fn live_path_with(
    path: &str,
    n: usize,
    threads: usize,
    evidence: Option<(
        std::sync::Arc<exflow::capture::EvidenceRing>,
        exflow::stream::EvidenceSink,
    )>,
) -> (Analysis, Vec<Value>) {
    let (tx, rx) = crossbeam_channel::bounded::<StreamMsg>(1024);
    let (ring, sink) = evidence.unzip();
    let mut opts = Options {
        threads,
        stream: Some(tx),
        evidence: ring,
        ..Options::default()
    };
    let mut correlator = LiveCorrelator::new(&opts.flow, &opts.correlate, Vec::new());
    if let Some(sink) = sink {
        correlator.set_evidence(sink);
    }
    let stream = std::thread::spawn(move || {
        let mut c = correlator;
        for msg in rx {
            c.push(msg);
        }
        c.finish().unwrap()
    });
    let source = Batches {
        inner: open(path),
        n,
    };
    let analysis = analysis::run(Box::new(source), &opts);
    opts.stream = None;
    let out = String::from_utf8(stream.join().unwrap()).unwrap();
    let records = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (analysis, records)
}

fn analyze(path: &str) -> Analysis {
    analysis::run(Box::new(open(path)), &Options::default())
}

fn report(a: &Analysis) -> Value {
    let mut out = Vec::new();
    exflow::report::write_json(a, &mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn without_record(r: &Value) -> Value {
    let mut r = r.clone();
    r.as_object_mut().unwrap().remove("record");
    r
}

fn sorted(v: impl IntoIterator<Item = Value>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().map(|x| x.to_string()).collect();
    v.sort();
    v
}

/// Every capture file in ../shared/captures and pcaps/, relative to the
/// crate root.
fn every_capture() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    let root = common::crate_root();
    let mut found = Vec::new();
    walk(&common::shared_captures(), &mut found);
    walk(&root.join("pcaps"), &mut found);
    walk(&root.join("tests/data/lab"), &mut found);
    let mut paths: Vec<String> = found
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).map(|r| r.to_path_buf());
            rel.unwrap_or_else(|_| {
                std::path::PathBuf::from("..").join(p.strip_prefix(root.parent().unwrap()).unwrap())
            })
            .to_string_lossy()
            .into_owned()
        })
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_capture_through_the_live_path_gives_what_analyze_gives() {
    let captures = every_capture();
    assert!(captures.len() >= 60, "only {} captures", captures.len());
    let mut handoffs_seen = 0;
    let mut failed_seen = 0;
    let mut scans_seen = 0;
    let mut died_seen = 0;
    for path in &captures {
        let offline = report(&analyze(path));
        for n in [1, 7, 1000] {
            // One worker or two: the stream waits for every worker's batch.
            let threads = if n == 7 { 1 } else { 2 };
            let what = format!("{path} in batches of {n}, {threads} workers");
            let (live, records) = live_path(path, n, threads);
            let final_report = report(&live);
            for key in ["handoffs", "findings", "verdicts", "endpoints"] {
                assert_eq!(final_report[key], offline[key], "{what}: {key}");
            }

            // Every hand-off streamed once, as the final report has it.
            let streamed = records
                .iter()
                .filter(|r| r["record"] == "handoff")
                .map(without_record);
            let reported = offline["handoffs"].as_array().unwrap().iter().cloned();
            assert_eq!(
                sorted(streamed),
                sorted(reported),
                "{what}: streamed hand-offs"
            );
            handoffs_seen += offline["handoffs"].as_array().unwrap().len();

            // The failed attempts streamed are the flows the verdicts judge
            // failed.
            let streamed: BTreeSet<String> = records
                .iter()
                .filter(|r| r["record"] == "attempt-failed")
                .map(|r| {
                    format!(
                        "{} {} {} {} {}",
                        r["proto"], r["client"], r["client_port"], r["server"], r["port"]
                    )
                })
                .collect();
            let outcomes = exflow::verdict::flow_outcomes(&live.flows, &live.correlated);
            let judged: BTreeSet<String> = live
                .flows
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| **o == Some(false))
                .map(|(f, _)| {
                    format!(
                        "\"{}\" \"{}\" {} \"{}\" {}",
                        exflow::report::proto_name(f.proto),
                        f.client,
                        f.client_port,
                        f.server,
                        f.server_port
                    )
                })
                .collect();
            assert_eq!(streamed, judged, "{what}: streamed failed attempts");
            failed_seen += judged.len();

            // One `scan` record per scan the report finds (port scans,
            // sweeps, floods), written when its probes are released.
            let streamed: BTreeSet<String> = records
                .iter()
                .filter(|r| r["record"] == "scan")
                .map(|r| {
                    format!(
                        "{} {} {} {}",
                        r["kind"], r["source"], r["target"], r["port"]
                    )
                })
                .collect();
            let reported: BTreeSet<String> = offline["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|f| {
                    let (kind, source, server, port) =
                        (&f["kind"], &f["clients"][0], &f["server"], &f["port"]);
                    let null = Value::Null;
                    let (source, target, port) = match kind.as_str()? {
                        "port-scan" => (source, server, &null),
                        "sweep" => (source, &null, port),
                        "flood" => (&null, server, port),
                        _ => return None,
                    };
                    Some(format!("{kind} {source} {target} {port}"))
                })
                .collect();
            assert_eq!(streamed, reported, "{what}: streamed scans");
            scans_seen += reported.len();

            // The endpoint mapper's "not registered" findings, at once.
            let streamed: BTreeSet<String> = records
                .iter()
                .filter(|r| r["record"] == "finding")
                .flat_map(|r| {
                    let clients = r["clients"].as_array().unwrap().clone();
                    clients
                        .into_iter()
                        .map(move |c| format!("{} {} {} {c}", r["kind"], r["server"], r["port"]))
                })
                .collect();
            let reported: BTreeSet<String> = offline["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["kind"] == "not-registered")
                .flat_map(|f| {
                    let clients = f["clients"].as_array().unwrap().clone();
                    clients
                        .into_iter()
                        .map(move |c| format!("{} {} {} {c}", f["kind"], f["server"], f["port"]))
                })
                .collect();
            assert_eq!(streamed, reported, "{what}: streamed findings");

            // Connections that died after the handshake (#25): one
            // `connection-failed` record per connection of the report's
            // killed-after-idle, black-hole and pmtu-black-hole findings.
            let streamed: BTreeSet<String> = records
                .iter()
                .filter(|r| r["record"] == "connection-failed")
                .map(|r| {
                    format!(
                        "{} {} {} {}",
                        r["kind"], r["server"], r["port"], r["evidence"]["client_port"]
                    )
                })
                .collect();
            let reported: BTreeSet<String> = offline["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| {
                    ["killed-after-idle", "black-hole", "pmtu-black-hole"]
                        .contains(&f["kind"].as_str().unwrap_or(""))
                })
                .flat_map(|f| {
                    f["evidence"].as_array().unwrap().iter().map(move |e| {
                        format!(
                            "{} {} {} {}",
                            f["kind"], f["server"], f["port"], e["client_port"]
                        )
                    })
                })
                .collect();
            assert_eq!(streamed, reported, "{what}: streamed dead connections");
            died_seen += reported.len();
        }
    }
    // The comparison says something: the captures hold many of each.
    eprintln!("compared {handoffs_seen} hand-offs and {failed_seen} failed attempts");
    assert!(handoffs_seen > 100, "only {handoffs_seen} hand-offs");
    assert!(failed_seen > 50, "only {failed_seen} failed attempts");
    assert!(scans_seen >= 3, "only {scans_seen} scans");
    // The lab's idle kill, at least.
    assert!(died_seen >= 1, "only {died_seen} dead connections");
}

/// `exflow live --write-failed` (#21 point 2): the reader keeps every
/// frame's headers in a ring and the stream writes a failed attempt's as it
/// decides it. On the lab captures, every packet of every flow the final
/// report counts failed is in the file, each cut after its headers, and the
/// file analysed again shows the same blocked ports.
#[test]
fn the_live_evidence_holds_the_packets_of_every_failed_attempt() {
    use exflow::capture::EvidenceRing;
    use exflow::stream::EvidenceSink;
    use std::sync::Arc;
    for path in [
        "../shared/captures/lab/dyn-drop/client-tap.pcap",
        "../shared/captures/lab/dyn-reject-rst/client-tap.pcap",
        "../shared/captures/lab/scan-dyn-drop/client-tap.pcap",
        "tests/data/lab/pmtu-blackhole/server-tap.pcap",
    ] {
        let ring = Arc::new(EvidenceRing::new(64 << 20));
        let file = common::tmp_path(&format!("live-evidence-{}.pcap", path.replace('/', "-")));
        let out: Box<dyn std::io::Write + Send> = Box::new(std::fs::File::create(&file).unwrap());
        let sink =
            EvidenceSink::start(Arc::clone(&ring), out, exflow::packet::LinkType(1)).unwrap();
        let (live, _) = live_path_with(path, 7, 2, Some((ring, sink)));

        let evidence = analyze(common::path_str(&file));
        let failed: Vec<&exflow::flow::FlowRecord> = live
            .flows
            .iter()
            .zip(live.flow_outcomes().iter())
            .filter(|(f, o)| **o == Some(false) || f.stall().is_some())
            .map(|(f, _)| f)
            .collect();
        assert!(!failed.is_empty(), "{path}: nothing failed");
        let key = |f: &exflow::flow::FlowRecord| {
            (f.proto, f.client, f.client_port, f.server, f.server_port)
        };
        for f in &failed {
            let got: u64 = evidence
                .flows
                .iter()
                .filter(|e| key(e) == key(f))
                .map(|e| e.packets[0] + e.packets[1])
                .sum();
            assert_eq!(got, f.packets[0] + f.packets[1], "{path}: {f:?}");
        }
        let blocked = |a: &Analysis| -> BTreeSet<String> {
            report(a)["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["kind"] != "port-scan")
                .map(|f| format!("{} {} {}", f["kind"], f["server"], f["port"]))
                .collect()
        };
        assert_eq!(blocked(&evidence), blocked(&live), "{path}");
        // Headers only: no record longer than what the ring keeps, and the
        // DCE/RPC of the mapper conversations cut (no PDU parsed again).
        let bytes = std::fs::read(&file).unwrap();
        let mut at = 24;
        while at + 16 <= bytes.len() {
            let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            assert!(caplen <= exflow::capture::KEPT_BYTES, "{path}: {caplen}");
            at += 16 + caplen;
        }
        assert_eq!(at, bytes.len());
        assert!(evidence.correlated.handoffs.is_empty(), "{path}");
    }
}
