//! Issue #16 point 5: a capture filter (`--filter`, or a pcapng interface's
//! own `if_filter`) that would have dropped a hand-off's follow-up makes
//! that hand-off `not-captured`, never a block; a follow-up the filter lets
//! through is judged as before; the report says at its top what the
//! filter limits.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use common::pdus::{epm_bind, epm_bind_ack, ept_map_nspi, hex};
use common::*;
use exflow::analysis;
use exflow::capture::{applied_filters, FileSource, Source};
use exflow::pipeline::{Options, StreamMsg};
use exflow::stream::LiveCorrelator;
use exflow_testkit::{Link, PcapWriter, PcapngWriter, TcpConversation};
use serde_json::Value;

const MS: u64 = 1_000_000;
const T0: u64 = 1_795_305_697_000_000_000;
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

/// The README's old example: Windows Vista and later dynamic ports only.
const HIGH_PORTS: &str = "tcp port 135 or portrange 49152-65535";

/// An ept_map answer (example 6 of ../shared/spec/protocols.md, tower
/// address 0.0.0.0: the mapper itself) naming NSPI on TCP `port`.
fn ept_map_answer(port: u16) -> Vec<u8> {
    let mut b = hex("05 00 02 03 10 00 00 00 98 00 00 00 01 00 00 00
         80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00
         04 00 00 00 00 00 00 00 01 00 00 00 03 00 00 00
         4b 00 00 00 4b 00 00 00 05 00 13 00 0d 18 5a cc
         f5 64 42 1a 10 8c 59 08 00 2b 2f 84 26 38 00 02
         00 00 00 13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8
         08 00 2b 10 48 60 02 00 02 00 00 00 01 00 0b 02
         00 00 00 01 00 07 02 00 13 85 01 00 09 04 00 c0
         a8 00 02 00 00 00 00 00");
    b[0x8f..0x93].copy_from_slice(&[0, 0, 0, 0]);
    // The TCP floor: protocol 0x07, two bytes of port (big-endian).
    let at = b
        .windows(5)
        .position(|w| w == [0x07, 0x02, 0x00, 0x13, 0x85])
        .expect("the TCP floor");
    b[at + 3..at + 5].copy_from_slice(&port.to_be_bytes());
    b
}

/// A constructed capture: frames, and whether each is on TCP 135 (what a
/// filter for the endpoint mapper alone keeps).
struct Capture {
    frames: Vec<(u64, Vec<u8>, bool)>,
    t: u64,
}

impl Capture {
    fn new() -> Self {
        Capture {
            frames: Vec::new(),
            t: T0,
        }
    }

    fn add(&mut self, f: Vec<u8>, epm: bool) {
        self.t += MS;
        self.frames.push((self.t, f, epm));
    }

    /// The client asks the mapper from `cport` and hears `port`; it
    /// connects there from `cport + 1` at once.
    fn handoff_followed(&mut self, cport: u16, port: u16) {
        let mut c = TcpConversation::new(IpAddr::V4(CLIENT), cport, IpAddr::V4(SERVER), 135);
        self.add(c.syn(), true);
        self.add(c.syn_ack(), true);
        self.add(c.ack(), true);
        self.add(c.data_c2s(&epm_bind()), true);
        self.add(c.data_s2c(&epm_bind_ack()), true);
        self.add(c.data_c2s(&ept_map_nspi()), true);
        self.add(c.data_s2c(&ept_map_answer(port)), true);
        let mut f = TcpConversation::new(IpAddr::V4(CLIENT), cport + 1, IpAddr::V4(SERVER), port);
        self.add(f.syn(), false);
        self.add(f.syn_ack(), false);
        self.add(f.ack(), false);
        self.add(f.data_c2s(b"bind"), false);
        self.add(f.data_s2c(b"ack"), false);
        self.add(f.fin_c(), false);
        self.add(f.fin_s(), false);
        self.add(f.ack(), false);
        self.add(c.fin_c(), true);
        self.add(c.fin_s(), true);
        self.add(c.ack(), true);
        self.t += 3_000 * MS;
    }

    /// A Windows 2003 server (dynamic ports 1025–5000) answering a client
    /// whose own ports start at `cbase`; the capture goes on for seconds
    /// after the last answer (a missing follow-up would be telling).
    fn windows_2003(cbase: u16) -> Capture {
        let mut cap = Capture::new();
        for (k, port) in [4997u16, 1029, 1030].into_iter().enumerate() {
            cap.handoff_followed(cbase + 2 * k as u16, port);
        }
        let mut c = TcpConversation::new(IpAddr::V4(CLIENT), cbase + 10, IpAddr::V4(SERVER), 135);
        cap.add(c.syn(), true);
        cap.add(c.syn_ack(), true);
        cap.add(c.ack(), true);
        cap
    }

    fn write_pcap(&self, name: &str) -> String {
        let p = tmp_path(name);
        let mut w = PcapWriter::create(&p, Link::Ethernet, 65535, false).unwrap();
        for (ts, f, _) in &self.frames {
            w.write_packet(*ts, f).unwrap();
        }
        w.flush().unwrap();
        path_str(&p).to_string()
    }

    /// What an interface capturing through `filter` (which keeps exactly
    /// the TCP 135 frames here) wrote.
    fn write_pcapng(&self, name: &str, filter: (u8, &[u8])) -> String {
        let p = tmp_path(name);
        let mut w = PcapngWriter::create(&p).unwrap();
        let iface = w
            .add_interface_with_filter(Link::Ethernet, 65535, false, Some(filter))
            .unwrap();
        for (ts, f, _) in self.frames.iter().filter(|(_, _, epm)| *epm) {
            w.write_packet(iface, *ts, f).unwrap();
        }
        w.flush().unwrap();
        path_str(&p).to_string()
    }
}

fn outcomes(r: &Value) -> Vec<String> {
    r["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["outcome"]["kind"].as_str().unwrap().to_string())
        .collect()
}

fn finding_kinds(r: &Value) -> BTreeSet<(String, u64)> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Everything about the hand-offs and the judgement, not the inputs.
fn judged(r: &Value) -> Value {
    serde_json::json!({
        "handoffs": r["handoffs"],
        "findings": r["findings"],
        "verdicts": r["verdicts"],
        "flows": r["flows"],
    })
}

fn lab(scenario: &str) -> String {
    path_str(
        &shared_captures()
            .join("lab")
            .join(scenario)
            .join("client-tap.pcap"),
    )
    .to_string()
}

#[test]
fn filtering_the_follow_ups_out_of_allow_all_blocks_nothing() {
    let pcap = lab("allow-all");
    let whole = analyze_json(&[&pcap], &[0]);
    assert!(outcomes(&whole)
        .iter()
        .all(|k| k == "established" || k == "superseded"));
    assert!(whole.get("limits").is_none(), "no filter, no limits");

    // Exit 0: nothing to act on.
    let r = analyze_json(&["--filter", "tcp port 135", &pcap], &[0]);
    let kinds = outcomes(&r);
    assert_eq!(kinds.len(), whole["handoffs"].as_array().unwrap().len());
    assert!(kinds.iter().all(|k| k == "not-captured"), "{kinds:?}");
    assert!(r["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["followed"] == false),);
    assert!(
        finding_kinds(&r).iter().all(|(k, _)| k != "blocked"),
        "{}",
        r["findings"]
    );
    let limits = r["limits"].as_array().expect("limits");
    assert_eq!(limits.len(), 1);
    assert_eq!(limits[0]["kind"], "filter");
    assert_eq!(limits[0]["filter"], "tcp port 135");
    assert_eq!(limits[0]["applied_by"], "--filter");
    assert_eq!(limits[0]["evaluated"], true);
    assert_eq!(
        limits[0]["handoffs_not_captured"].as_u64(),
        Some(kinds.len() as u64)
    );

    // The text says it under the header, and has no blocked port.
    let out = run(&["analyze", "--filter", "tcp port 135", &pcap]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1],
        "Filtered: 'tcp port 135' (--filter) limits this report:"
    );
    assert!(
        lines[3].starts_with(&format!("  {} hand-offs not-captured", kinds.len())),
        "{text}"
    );
    assert!(
        text.contains("BLOCKED: nothing") && !text.contains("BLOCKED tcp/"),
        "{text}"
    );
    assert!(lines[..4].iter().all(|l| l.len() <= 120), "{text}");
    assert!(text.contains("hand-offs: 7 (0 not followed)"), "{text}");

    // The same in NDJSON: a `limit` record after the input.
    let out = run(&[
        "analyze",
        "--format",
        "ndjson",
        "--filter",
        "tcp port 135",
        &pcap,
    ]);
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["record"], "input");
    assert_eq!(records[1]["record"], "limit");
    assert_eq!(records[1]["filter"], "tcp port 135");
}

#[test]
fn a_filter_that_keeps_the_follow_ups_still_reports_the_real_block() {
    let pcap = lab("dyn-drop");
    let whole = analyze_json(&[&pcap], &[1]);
    let filter = "tcp port 135 or tcp portrange 55000-55100";
    let r = analyze_json(&["--filter", filter, &pcap], &[1]);
    let blocked = finding_kinds(&r);
    assert!(
        blocked.contains(&("blocked".to_string(), 55000))
            && blocked.contains(&("blocked".to_string(), 55001)),
        "{blocked:?}"
    );
    assert_eq!(blocked, finding_kinds(&whole));
    assert_eq!(outcomes(&r), outcomes(&whole));
    assert!(outcomes(&r).iter().any(|k| k == "syn-unanswered"));
    assert_eq!(r["limits"][0]["handoffs_not_captured"], 0);
}

#[test]
fn windows_2003_ports_through_the_readmes_old_filter_are_not_captured() {
    // A Windows XP client (ports 1100…) and a Windows 2003 server: the
    // follow-ups run between ports below 5001, which the filter drops.
    let cap = Capture::windows_2003(1100);
    let pcap = cap.write_pcap("w2003-old-client.pcap");
    let whole = analyze_json(&[&pcap], &[0]);
    assert_eq!(outcomes(&whole), ["established"; 3]);

    let r = analyze_json(&["--filter", HIGH_PORTS, &pcap], &[0]);
    assert_eq!(outcomes(&r), ["not-captured"; 3]);
    assert!(
        r["findings"].as_array().unwrap().is_empty(),
        "{}",
        r["findings"]
    );
    assert_eq!(r["limits"][0]["handoffs_not_captured"], 3);
    // Without the filter's word the same missing follow-ups were blocks
    // (the capture as the filter left it, read without --filter).
    let kept = Capture {
        frames: cap.frames.iter().filter(|f| f.2).cloned().collect(),
        t: 0,
    };
    let bare = analyze_json(&[&kept.write_pcap("w2003-kept.pcap")], &[1]);
    assert_eq!(outcomes(&bare), ["no-attempt"; 3]);
    assert!(finding_kinds(&bare).contains(&("blocked".to_string(), 4997)));

    // A Vista client (ports 49700…): its own port passes the filter, so
    // the follow-ups are captured and judged as without a filter.
    let pcap = Capture::windows_2003(49700).write_pcap("w2003-new-client.pcap");
    let r = analyze_json(&["--filter", HIGH_PORTS, &pcap], &[0]);
    assert_eq!(outcomes(&r), ["established"; 3]);
    assert_eq!(r["limits"][0]["handoffs_not_captured"], 0);
}

#[test]
fn a_pcapng_interface_filter_behaves_like_the_filter_option() {
    let cap = Capture::windows_2003(1100);
    let pcap = cap.write_pcap("ifilter-ref.pcap");
    let want = analyze_json(&["--filter", HIGH_PORTS, &pcap], &[0]);
    let ng = cap.write_pcapng("ifilter.pcapng", (0, HIGH_PORTS.as_bytes()));
    let got = analyze_json(&[&ng], &[0]);
    assert_eq!(judged(&got), judged(&want));
    assert_eq!(outcomes(&got), ["not-captured"; 3]);
    let l = &got["limits"][0];
    assert_eq!(l["applied_by"], "if_filter");
    assert_eq!(l["filter"], HIGH_PORTS);
    assert_eq!(l["input"], ng.as_str());
    assert_eq!(l["interface"], 0);
    assert_eq!(l["handoffs_not_captured"], 3);

    // The real allow-all capture, as an interface capturing through
    // 'tcp port 135' would have written it.
    let pcap = lab("allow-all");
    let want = analyze_json(&["--filter", "tcp port 135", &pcap], &[0]);
    let (mut src, _) = FileSource::open(&[&pcap], Some("tcp port 135")).unwrap();
    let p = tmp_path("allow-all-135.pcapng");
    let mut w = PcapngWriter::create(&p).unwrap();
    let iface = w
        .add_interface_with_filter(Link::Ethernet, 0, true, Some((0, b"tcp port 135")))
        .unwrap();
    while let Some(b) = src.next_batch(1000) {
        for f in &b.frames {
            w.write_packet(iface, f.ts, b.data(f)).unwrap();
        }
    }
    w.flush().unwrap();
    let got = analyze_json(&[path_str(&p)], &[0]);
    assert_eq!(judged(&got), judged(&want));
    assert!(outcomes(&got).iter().all(|k| k == "not-captured"));

    // A filter in BPF byte code cannot be evaluated: no missing follow-up
    // is taken for a block.
    let ng = cap.write_pcapng("ifilter-bpf.pcapng", (1, &[0x06, 0, 0, 0, 0, 0, 0, 0]));
    let got = analyze_json(&[&ng], &[0]);
    assert_eq!(outcomes(&got), ["not-captured"; 3]);
    assert_eq!(got["limits"][0]["evaluated"], false);
    assert_eq!(got["limits"][0]["filter"], Value::Null);
}

/// The path `exflow live --filter` takes: the live correlator, told the
/// source's filters, streams the hand-offs `not-captured` as the final
/// report has them.
#[test]
fn the_live_path_streams_not_captured_hand_offs() {
    let pcap = lab("allow-all");
    let (source, _) = FileSource::open(&[&pcap], Some("tcp port 135")).unwrap();
    let (tx, rx) = crossbeam_channel::bounded::<StreamMsg>(1024);
    let mut opts = Options {
        threads: 2,
        stream: Some(tx),
        ..Options::default()
    };
    opts.correlate.filters = applied_filters(&source.inputs());
    assert_eq!(opts.correlate.filters.len(), 1);
    let correlator = LiveCorrelator::new(&opts.flow, &opts.correlate, Vec::new());
    let stream = std::thread::spawn(move || {
        let mut c = correlator;
        for msg in rx {
            c.push(msg);
        }
        c.finish().unwrap()
    });
    let analysis = analysis::run(Box::new(source), &opts);
    opts.stream = None;
    let out = String::from_utf8(stream.join().unwrap()).unwrap();
    let streamed: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["record"] == "handoff")
        .map(|r| r["outcome"]["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(streamed.len(), analysis.correlated.handoffs.len());
    assert!(streamed.iter().all(|k| k == "not-captured"), "{streamed:?}");
    assert!(analysis
        .correlated
        .handoffs
        .iter()
        .all(|h| h.outcome.kind() == "not-captured"));
    assert_eq!(analysis.correlated.limits.len(), 1);
    assert!(!analysis.has_findings());
}
