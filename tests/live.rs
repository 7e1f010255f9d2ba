//! `exflow live` end to end: two network namespaces joined by a veth pair,
//! a lab capture replayed with tcpreplay into one end while `exflow live`
//! captures the other; its streamed records and final report must say what
//! `exflow analyze` says about the same capture.
//!
//! These tests need root (network namespaces, raw capture), `ip` and
//! `tcpreplay`. Without them they FAIL with a message saying so; they never
//! pass by skipping. The namespaces use no addresses at all (so no route
//! anywhere) and unique names per test; they are deleted even when a test
//! fails (Drop).

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{path_str, shared_captures, tmp_path};

fn require_root_tools() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "tests/live.rs needs root (network namespaces, veth, raw capture); run it as root \
         (CI does): sudo -E cargo test --release --test live"
    );
    for tool in ["ip", "tcpreplay"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "tests/live.rs needs `{tool}` (scripts/setup installs it)"
        );
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair: `a`/`va` sends, `b`/`vb` captures.
struct Netns {
    a: String,
    b: String,
    va: String,
    vb: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    fn new() -> Netns {
        require_root_tools();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}x{n}", std::process::id() % 100_000);
        let ns = Netns {
            a: format!("exflow-t{id}a"),
            b: format!("exflow-t{id}b"),
            // Interface names: at most 15 bytes.
            va: format!("exa{id}"),
            vb: format!("exb{id}"),
        };
        // From here on Drop cleans up, whatever fails.
        sh(&["ip", "netns", "add", &ns.a]);
        sh(&["ip", "netns", "add", &ns.b]);
        sh(&[
            "ip", "-n", &ns.a, "link", "add", &ns.va, "type", "veth", "peer", "name", &ns.vb,
            "netns", &ns.b,
        ]);
        for (netns, dev) in [(&ns.a, &ns.va), (&ns.b, &ns.vb)] {
            // No IPv6 either: no router solicitations or MLD reports in
            // the capture, only what is replayed.
            sh(&[
                "ip",
                "netns",
                "exec",
                netns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
            sh(&["ip", "-n", netns, "link", "set", dev, "mtu", "9000", "up"]);
        }
        ns
    }

    /// Starts `exflow live -i vb ARGS` in namespace b; returns once the
    /// interface is open (the events file exists).
    fn live(&self, events: &Path, args: &[&str]) -> LiveRun {
        let _ = std::fs::remove_file(events);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.b, env!("CARGO_BIN_EXE_exflow")])
            .args([
                "live",
                "-i",
                &self.vb,
                "--no-status",
                "--events",
                path_str(events),
            ])
            .args(args)
            .current_dir(common::crate_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("starting exflow live");
        let run = LiveRun { child: Some(child) };
        let t0 = Instant::now();
        while !events.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "exflow live did not open {} within 20 s",
                self.vb
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        run
    }

    /// Replays `pcap` into va (original timing); returns the packets sent.
    fn replay(&self, pcap: &Path, extra: &[&str]) -> u64 {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.a, "tcpreplay", "-i", &self.va])
            .args(extra)
            .arg(pcap)
            .output()
            .expect("running tcpreplay");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "tcpreplay failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        // "Actual: 79 packets (14958 bytes) sent in ..."
        text.split_whitespace()
            .skip_while(|w| *w != "Actual:")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no packet count in tcpreplay's output: {text}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth, and so the pair.
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// A running `exflow live`, killed if the test fails before it stops.
struct LiveRun {
    child: Option<Child>,
}

struct Stopped {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl LiveRun {
    /// Sends `sig` and waits (at most 30 s) for the exit.
    fn stop(self, sig: i32) -> Stopped {
        self.signal(sig);
        self.wait(Duration::from_secs(30), &format!("signal {sig}"))
    }

    /// Sends `sig` without waiting.
    fn signal(&self, sig: i32) {
        let child = self.child.as_ref().expect("running");
        // `ip netns exec` execs exflow: the child's pid is exflow's.
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, sig) };
    }

    /// Waits at most `within` for exflow to exit (after `what`).
    fn wait(mut self, within: Duration, what: &str) -> Stopped {
        let mut child = self.child.take().expect("running");
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("waiting for exflow") {
                break s;
            }
            if t0.elapsed() > within {
                let _ = child.kill();
                panic!("exflow live did not exit within {within:?} of {what}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = Vec::new();
        let mut stderr = String::new();
        if let Some(mut o) = child.stdout.take() {
            o.read_to_end(&mut stdout).unwrap();
        }
        if let Some(mut e) = child.stderr.take() {
            e.read_to_string(&mut stderr).unwrap();
        }
        Stopped {
            code: status.code(),
            stdout,
            stderr,
        }
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn lab(scenario: &str) -> PathBuf {
    shared_captures()
        .join("lab")
        .join(scenario)
        .join("client-tap.pcap")
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", p.display()))
}

fn read_ndjson(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l}: {e}")))
        .collect()
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

type HandoffKey = (String, String, String, String, String, String, bool, String);

fn handoff_key(h: &Value) -> HandoffKey {
    (
        s(&h["client"]),
        s(&h["server"]),
        s(&h["proto"]),
        s(&h["port"]),
        s(&h["interface"]["uuid"]),
        s(&h["operation"]),
        h["followed"].as_bool().unwrap(),
        s(&h["outcome"]["kind"]),
    )
}

fn handoffs(r: &[Value]) -> BTreeSet<HandoffKey> {
    r.iter().map(handoff_key).collect()
}

/// What must match for a flow: its 5-tuple, state, counts and labels
/// (timestamps differ on replay).
fn flow_key(f: &Value) -> String {
    [
        "proto",
        "client",
        "client_port",
        "server",
        "server_port",
        "state",
        "history",
        "syn_retries",
        "packets",
        "bytes",
        "payload_bytes",
        "service",
        "identified_by",
        "icmp_error_count",
    ]
    .iter()
    .map(|k| s(&f[k]))
    .collect::<Vec<_>>()
    .join(" ")
}

fn flows(r: &Value) -> Vec<String> {
    let mut v: Vec<String> = r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(flow_key)
        .collect();
    v.sort();
    v
}

fn finding_key(f: &Value) -> String {
    [
        "kind", "proto", "server", "port", "service", "clients", "policy", "verdict",
    ]
    .iter()
    .map(|k| s(&f[k]))
    .collect::<Vec<_>>()
    .join(" ")
}

fn set_of(r: &Value, key: &str, f: fn(&Value) -> String) -> BTreeSet<String> {
    r[key].as_array().unwrap().iter().map(f).collect()
}

fn endpoint_key(e: &Value) -> String {
    ["server", "proto", "port", "interface", "annotation"]
        .iter()
        .map(|k| s(&e[k]))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A flow that is a failed connection attempt (as the stream reports them).
fn failed_attempt(f: &Value) -> bool {
    let icmp = f["icmp_errors"]
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e["quotes_originator"] == true));
    let syn_failed =
        f["proto"] == "tcp" && matches!(f["state"].as_str(), Some("S0" | "REJ" | "RSTOS0" | "SH"));
    let established = if f["proto"] == "udp" {
        f["packets"][1].as_u64() > Some(0)
    } else {
        matches!(
            f["state"].as_str(),
            Some("S1" | "SF" | "S2" | "S3" | "RSTO" | "RSTR")
        )
    };
    !established && (syn_failed || icmp)
}

fn tuple(v: &Value, port: &str) -> String {
    format!(
        "{} {}:{} > {}:{}",
        s(&v["proto"]),
        s(&v["client"]),
        s(&v["client_port"]),
        s(&v["server"]),
        s(&v[port])
    )
}

/// Replays one lab capture, stops `exflow live` with `sig`, and checks its
/// streamed records and final report against `exflow analyze`.
fn live_matches_analyze(scenario: &str, sig: i32) {
    live_matches_analyze_with(scenario, sig, &[]);
}

/// [`live_matches_analyze`] with `args` given to both `live` and `analyze`.
fn live_matches_analyze_with(scenario: &str, sig: i32, args: &[&str]) {
    let pcap = lab(scenario);
    let ns = Netns::new();
    let tag = format!("{scenario}-{}", ns.vb);
    let events = tmp_path(&format!("{tag}.events.ndjson"));
    let report = tmp_path(&format!("{tag}.report.json"));
    let mut live_args = vec!["--format", "json", "-o", path_str(&report)];
    live_args.extend_from_slice(args);
    let run = ns.live(&events, &live_args);
    let sent = ns.replay(&pcap, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = run.stop(sig);
    assert_eq!(
        stopped.code,
        Some(0),
        "exflow live exited {:?} on signal {sig}; stderr:\n{}",
        stopped.code,
        stopped.stderr
    );

    let live = read_json(&report);
    let mut analyze_args = vec![path_str(&pcap)];
    analyze_args.extend_from_slice(args);
    let offline = common::analyze_json(&analyze_args, &[0, 1]);

    // Nothing was lost: every packet sent is in the report.
    assert_eq!(live["stats"]["packets"].as_u64(), Some(sent), "{scenario}");
    assert_eq!(
        live["stats"]["packets"], offline["stats"]["packets"],
        "{scenario}"
    );
    assert_eq!(live["inputs"][0]["path"], ns.vb.as_str());
    assert_eq!(live["inputs"][0]["format"], "live");
    assert!(
        stopped.stderr.contains("dropped by the kernel: 0,"),
        "{scenario}: kernel drops: {}",
        stopped.stderr
    );
    // libpcap's drop counters are in the report's stats (live only: the
    // offline report has no such fields).
    assert_eq!(
        live["stats"]["kernel_drops"].as_u64(),
        Some(0),
        "{scenario}"
    );
    assert_eq!(
        live["stats"]["interface_drops"].as_u64(),
        Some(0),
        "{scenario}"
    );
    assert!(offline["stats"].get("kernel_drops").is_none());
    assert!(offline["stats"].get("interface_drops").is_none());

    // The final report: the same hand-offs, flows, endpoints and findings.
    let live_h = handoffs(live["handoffs"].as_array().unwrap());
    let off_h = handoffs(offline["handoffs"].as_array().unwrap());
    assert_eq!(live_h, off_h, "{scenario}: hand-offs differ");
    assert_eq!(flows(&live), flows(&offline), "{scenario}: flows differ");
    assert_eq!(
        set_of(&live, "endpoints", endpoint_key),
        set_of(&offline, "endpoints", endpoint_key),
        "{scenario}: endpoints differ"
    );
    assert_eq!(
        set_of(&live, "findings", finding_key),
        set_of(&offline, "findings", finding_key),
        "{scenario}: findings differ"
    );
    assert_eq!(
        live["stats"]["decode_errors"],
        offline["stats"]["decode_errors"]
    );

    // The stream: every hand-off once, with the final report's fate; one
    // attempt-failed per failed attempt; the findings.
    let records = read_ndjson(&events);
    let streamed: Vec<Value> = records
        .iter()
        .filter(|r| r["record"] == "handoff")
        .cloned()
        .collect();
    assert_eq!(
        streamed.len(),
        offline["handoffs"].as_array().unwrap().len(),
        "{scenario}: each hand-off is streamed once"
    );
    assert_eq!(handoffs(&streamed), off_h, "{scenario}: streamed hand-offs");
    let failed: BTreeSet<String> = records
        .iter()
        .filter(|r| r["record"] == "attempt-failed")
        .map(|r| tuple(r, "port"))
        .collect();
    let expected_failed: BTreeSet<String> = offline["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| failed_attempt(f))
        .map(|f| tuple(f, "server_port"))
        .collect();
    assert_eq!(
        failed, expected_failed,
        "{scenario}: streamed failed attempts"
    );
    let streamed_findings: BTreeSet<String> = records
        .iter()
        .filter(|r| r["record"] == "finding")
        .map(|r| format!("{} {} {}", s(&r["kind"]), s(&r["server"]), s(&r["port"])))
        .collect();
    // The stream has the endpoint mapper's "not registered" findings; the
    // verdicts (blocked, refused, ...) are in the final report, their
    // evidence streamed as attempt-failed records.
    let expected_findings: BTreeSet<String> = offline["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "not-registered")
        .map(|r| format!("{} {} {}", s(&r["kind"]), s(&r["server"]), s(&r["port"])))
        .collect();
    assert_eq!(
        streamed_findings, expected_findings,
        "{scenario}: streamed findings"
    );
    for r in &records {
        assert!(
            matches!(
                r["record"].as_str(),
                Some("handoff" | "attempt-failed" | "finding" | "stats")
            ),
            "unexpected record {r}"
        );
    }
    // The last record: the stats at the stop (a run shorter than
    // --stats-interval has no other), counting what was captured and
    // written.
    let last = records.last().expect("records");
    assert_eq!(last["record"], "stats", "{scenario}: ends with stats");
    assert_eq!(last["interface"], ns.vb.as_str());
    assert_eq!(last["packets"].as_u64(), Some(sent), "{scenario}");
    assert_eq!(last["kernel_drops"].as_u64(), Some(0), "{scenario}");
    assert_eq!(last["interface_drops"].as_u64(), Some(0), "{scenario}");
    assert_eq!(last["interface_up"], true);
    assert_eq!(
        last["records_written"].as_u64(),
        Some(records.len() as u64 - 1),
        "{scenario}: records written before the last"
    );
    assert_eq!(last["records_lost"].as_u64(), Some(0));
    // The scan tables' caps are counted (nothing near them here).
    assert_eq!(last["scan_probes_untracked"].as_u64(), Some(0));
    assert_eq!(last["probes_not_held"].as_u64(), Some(0));
    assert_eq!(
        records.iter().filter(|r| r["record"] == "stats").count(),
        1,
        "{scenario}: one stats record (the run is shorter than 60 s)"
    );
}

/// With --policy too: the final report's verdicts and findings are those
/// of `analyze --policy`.
#[test]
fn live_dyn_drop_matches_analyze_with_a_policy() {
    let policy = tmp_path("live-policy.json");
    let _ = std::fs::remove_file(&policy);
    let out = common::run(&[
        "policy",
        "init",
        "--profile",
        "exchange-intrasite",
        "-o",
        path_str(&policy),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    live_matches_analyze_with("dyn-drop", libc::SIGINT, &["--policy", path_str(&policy)]);
}

#[test]
fn live_dyn_reject_rst_matches_analyze() {
    live_matches_analyze("dyn-reject-rst", libc::SIGINT);
}

#[test]
fn live_dyn_reject_icmp_matches_analyze() {
    live_matches_analyze("dyn-reject-icmp", libc::SIGINT);
}

#[test]
fn live_allow_all_matches_analyze_stopped_by_sigterm() {
    live_matches_analyze("allow-all", libc::SIGTERM);
}

#[test]
fn live_static_port_matches_analyze() {
    live_matches_analyze("static-port", libc::SIGINT);
}

#[test]
fn live_udp_and_rfc1006_scenarios_match_analyze() {
    for scenario in [
        "udp-notify-allow",
        "udp-notify-drop",
        "udp-notify-reject",
        "rfc1006-allow",
        "rfc1006-drop",
    ] {
        live_matches_analyze(scenario, libc::SIGINT);
    }
}

/// A hand-off is streamed the moment its follow-up is up, long before the
/// capture stops; the final report on SIGINT is complete (every flow, the
/// stats, in the chosen format on standard output).
#[test]
fn live_streams_before_the_stop_and_the_report_is_complete() {
    let pcap = lab("allow-all");
    let ns = Netns::new();
    let events = tmp_path(&format!("early-{}.ndjson", ns.vb));
    let run = ns.live(&events, &["--format", "ndjson"]);
    let sent = ns.replay(&pcap, &[]);
    // Still capturing: the followed hand-offs are already in the file.
    std::thread::sleep(Duration::from_millis(500));
    let early = read_ndjson(&events);
    let offline = common::analyze_json(&[path_str(&pcap)], &[0, 1]);
    // Known as soon as a connection is up: the followed hand-offs. (An
    // earlier answer superseded by a later one is known only once every
    // attempt in its window has surely ended: one may be a SYN still
    // waiting for its answer.)
    let followed: BTreeSet<HandoffKey> = offline["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["followed"] == true)
        .map(handoff_key)
        .collect();
    assert!(!followed.is_empty(), "allow-all has followed hand-offs");
    let early_h: BTreeSet<HandoffKey> = early
        .iter()
        .filter(|r| r["record"] == "handoff")
        .map(handoff_key)
        .collect();
    assert_eq!(
        early_h, followed,
        "followed hand-offs are streamed while capturing, before any stop"
    );

    let stopped = run.stop(libc::SIGINT);
    assert_eq!(stopped.code, Some(0), "stderr:\n{}", stopped.stderr);
    let text = String::from_utf8(stopped.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |kind: &str| lines.iter().filter(|r| r["record"] == kind).count();
    assert_eq!(count("flow"), offline["flows"].as_array().unwrap().len());
    assert_eq!(
        count("handoff"),
        offline["handoffs"].as_array().unwrap().len()
    );
    assert_eq!(
        count("endpoint"),
        offline["endpoints"].as_array().unwrap().len()
    );
    assert_eq!(count("input"), 1);
    let stats = lines
        .iter()
        .find(|r| r["record"] == "stats")
        .expect("a stats record");
    assert_eq!(stats["packets"].as_u64(), Some(sent));
    assert_eq!(stats["packets"], offline["stats"]["packets"]);
}

/// -w writes what was captured, rotated by size; the files analyze to the
/// same flows as the live report.
#[test]
fn live_writes_rotated_pcap_files() {
    let pcap = lab("allow-all");
    let ns = Netns::new();
    let events = tmp_path(&format!("w-{}.ndjson", ns.vb));
    let report = tmp_path(&format!("w-{}.json", ns.vb));
    let out = tmp_path(&format!("w-{}.pcap", ns.vb));
    let run = ns.live(
        &events,
        &[
            "--format",
            "json",
            "-o",
            path_str(&report),
            "-w",
            path_str(&out),
            "--rotate-size",
            "1",
        ],
    );
    // 64 KB x 24: about 1.5 MB, so two files (at a rate this machine
    // captures without drops, see BENCHMARKS.md).
    let sent = ns.replay(&pcap, &["--loop=24", "--pps=5000"]);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = run.stop(libc::SIGINT);
    assert_eq!(stopped.code, Some(0), "stderr:\n{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("dropped by the kernel: 0,"),
        "kernel drops: {}",
        stopped.stderr
    );
    let second = PathBuf::from(format!("{}.1", out.display()));
    assert!(second.exists(), "-w rotated to {}", second.display());
    for f in [&out, &second] {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(
            len <= 1 << 20,
            "{} is {len} bytes, over --rotate-size",
            f.display()
        );
    }
    let live = read_json(&report);
    assert_eq!(live["stats"]["packets"].as_u64(), Some(sent));
    let written = common::analyze_json(&[path_str(&out), path_str(&second)], &[0, 1]);
    assert_eq!(written["stats"]["packets"].as_u64(), Some(sent));
    assert_eq!(flows(&written), flows(&live));
}

/// --user drops root once the interface is open: the files are created by
/// that user, and capture goes on.
#[test]
fn live_user_drops_root_after_opening() {
    let pcap = lab("dyn-reject-rst");
    let ns = Netns::new();
    let dir = tmp_path(&format!("user-{}", ns.vb));
    std::fs::create_dir_all(&dir).unwrap();
    sh(&["chmod", "777", path_str(&dir)]);
    let events = dir.join("events.ndjson");
    let report = dir.join("report.json");
    let run = ns.live(
        &events,
        &[
            "--user",
            "nobody",
            "--format",
            "json",
            "-o",
            path_str(&report),
        ],
    );
    let sent = ns.replay(&pcap, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = run.stop(libc::SIGINT);
    assert_eq!(stopped.code, Some(0), "stderr:\n{}", stopped.stderr);
    use std::os::unix::fs::MetadataExt;
    for f in [&events, &report] {
        let uid = std::fs::metadata(f).unwrap().uid();
        assert_eq!(
            uid,
            65534,
            "{} is owned by uid {uid}, not nobody",
            f.display()
        );
    }
    let live = read_json(&report);
    assert_eq!(live["stats"]["packets"].as_u64(), Some(sent));
}

#[test]
fn live_bad_interface_is_one_clear_error() {
    require_root_tools();
    let out = common::run(&["live", "-i", "exflow-nope0", "--no-status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("exflow-nope0"), "names the interface: {err}");
    assert!(err.contains("no such interface"), "{err}");
}

#[test]
fn live_without_permission_says_what_is_needed() {
    require_root_tools();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .args([
            env!("CARGO_BIN_EXE_exflow"),
            "live",
            "-i",
            "lo",
            "--no-status",
        ])
        .output()
        .expect("running setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(err.contains("lo: no permission to capture"), "{err}");
    assert!(
        err.contains("CAP_NET_RAW") && err.contains("CAP_NET_ADMIN"),
        "{err}"
    );
}

#[test]
fn live_lists_interfaces() {
    require_root_tools();
    let out = common::run(&["live", "--list-interfaces"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("lo\tup,loopback")),
        "lo is listed: {text}"
    );
}

#[test]
fn live_count_and_duration_stop_by_themselves() {
    let pcap = lab("allow-all");
    let ns = Netns::new();
    let events = tmp_path(&format!("count-{}.ndjson", ns.vb));
    let report = tmp_path(&format!("count-{}.json", ns.vb));
    let run = ns.live(
        &events,
        &[
            "--count",
            "100",
            "--format",
            "json",
            "-o",
            path_str(&report),
        ],
    );
    ns.replay(&pcap, &[]);
    let mut child = run;
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.child.as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "--count 100 did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert_eq!(read_json(&report)["stats"]["packets"].as_u64(), Some(100));

    let t0 = Instant::now();
    let run = ns.live(
        &events,
        &[
            "--duration",
            "1",
            "--format",
            "json",
            "-o",
            path_str(&report),
        ],
    );
    let mut child = run;
    let status = loop {
        if let Some(s) = child.child.as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "--duration 1 did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(t0.elapsed() >= Duration::from_secs(1));
    assert_eq!(read_json(&report)["stats"]["packets"].as_u64(), Some(0));
}

/// A second signal exits at once (status 130), without the report.
#[test]
fn live_second_signal_exits_at_once() {
    let ns = Netns::new();
    let events = tmp_path(&format!("twice-{}.ndjson", ns.vb));
    let report = tmp_path(&format!("twice-{}.json", ns.vb));
    let mut run = ns.live(&events, &["--format", "json", "-o", path_str(&report)]);
    let mut child = run.child.take().unwrap();
    // Two different signals, so neither is merged into the other while
    // pending: SIGINT (2) is handled first and starts the stop, SIGTERM
    // then finds it started and exits.
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        std::fs::metadata(&report).map(|m| m.len()).unwrap_or(0),
        0,
        "no report after the second signal"
    );
}

/// `--baseline FILE`: the baseline written when the capture stops equals
/// `exflow baseline` on the same capture (timestamps and inputs aside).
#[test]
fn live_writes_the_baseline_on_stop() {
    require_root_tools();
    let pcap = lab("dyn-drop");
    let ns = Netns::new();
    let tag = format!("baseline-{}", ns.vb);
    let events = tmp_path(&format!("{tag}.events.ndjson"));
    let report = tmp_path(&format!("{tag}.report.json"));
    let live_baseline = tmp_path(&format!("{tag}.baseline.json"));
    let run = ns.live(
        &events,
        &[
            "--format",
            "json",
            "-o",
            path_str(&report),
            "--baseline",
            path_str(&live_baseline),
        ],
    );
    ns.replay(&pcap, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = run.stop(libc::SIGINT);
    assert_eq!(stopped.code, Some(0), "stderr:\n{}", stopped.stderr);

    let offline_baseline = tmp_path(&format!("{tag}.offline.json"));
    let out = common::run(&[
        "baseline",
        path_str(&pcap),
        "-o",
        path_str(&offline_baseline),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let strip = |p: &Path| -> Vec<Value> {
        let mut v = read_json(p);
        assert_eq!(v["schema"], "exflow.baseline/1");
        let mut flows = v["flows"].as_array_mut().unwrap().clone();
        for f in &mut flows {
            let o = f.as_object_mut().unwrap();
            o.remove("first_seen");
            o.remove("last_seen");
        }
        flows
    };
    let live = strip(&live_baseline);
    assert!(!live.is_empty());
    assert_eq!(live, strip(&offline_baseline));
}

/// `exflow live -i IFACE` with its default outputs, run as `ns.live` runs it
/// but with neither `--events` nor `-o`: records and report both go to
/// standard output, read while it runs (a pipe that nobody reads would
/// itself stall it). Returns once the interface is open.
struct DefaultRun {
    child: Child,
    /// What was read of standard output; `None` when nobody reads it.
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    /// The unread standard output, kept open.
    _unread: Option<std::process::ChildStdout>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Netns {
    fn live_default(&self, args: &[&str]) -> DefaultRun {
        self.live_spawn(args, true)
    }

    /// `read`: whether standard output is read; if not, its pipe is cut to
    /// one page, so a few records fill it.
    fn live_spawn(&self, args: &[&str], read: bool) -> DefaultRun {
        use std::io::BufRead;
        use std::os::fd::AsRawFd;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.b, env!("CARGO_BIN_EXE_exflow")])
            .args(["live", "-i", &self.vb, "--no-status"])
            .args(args)
            .current_dir(common::crate_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting exflow live");
        let mut out = child.stdout.take().unwrap();
        let (stdout, unread) = if read {
            let reader = std::thread::spawn(move || {
                let mut v = Vec::new();
                out.read_to_end(&mut v).unwrap();
                v
            });
            (Some(reader), None)
        } else {
            // SAFETY: fcntl on a pipe descriptor this process owns.
            let r = unsafe { libc::fcntl(out.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
            assert!(r > 0, "F_SETPIPE_SZ: {}", std::io::Error::last_os_error());
            (None, Some(out))
        };
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let t0 = Instant::now();
        while !stderr.lock().unwrap().contains("capturing on") {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "exflow live did not open {} within 20 s; stderr:\n{}",
                self.vb,
                stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        DefaultRun {
            child,
            stdout,
            _unread: unread,
            stderr,
        }
    }
}

impl DefaultRun {
    /// Sends `sig` (when given), then waits at most 20 s for the exit.
    fn finish(mut self, sig: Option<i32>, what: &str) -> Stopped {
        if let Some(sig) = sig {
            // SAFETY: kill(2) on our own child's pid (`ip netns exec` execs exflow).
            unsafe { libc::kill(self.child.id() as i32, sig) };
        }
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("waiting for exflow") {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "exflow live with default outputs did not stop on {what} within 20 s; \
                     stderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self
            .stdout
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        // The stderr reader ends with the pipe; give it a moment.
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().unwrap().clone();
        Stopped {
            code: status.code(),
            stdout,
            stderr,
        }
    }
}

/// Standard output of a default run: the streaming records (one JSON object
/// a line), then the text report, nothing after it.
fn records_then_report(stopped: &Stopped, what: &str) -> Vec<Value> {
    assert_eq!(
        stopped.code,
        Some(0),
        "{what}: exit code; stderr:\n{}",
        stopped.stderr
    );
    let text = String::from_utf8(stopped.stdout.clone()).unwrap();
    let start = text
        .find("exflow report: ")
        .unwrap_or_else(|| panic!("{what}: no report on standard output:\n{text}"));
    let (records, report) = text.split_at(start);
    assert!(
        !report.contains("{\"record\""),
        "{what}: a record after the report began"
    );
    assert!(report.contains("\nFlows"), "{what}: the report is whole");
    records
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: not a record ({e}): {l}"))
        })
        .collect()
}

/// Issue #18: the help's own example shape (`exflow live -i IFACE
/// --duration N`, both outputs on standard output) hung as soon as a record
/// was written while capturing. With default outputs every stop works:
/// --duration, --count, and the first SIGTERM or SIGINT.
#[test]
fn live_default_outputs_stop_on_duration_and_count() {
    let pcap = lab("allow-all");
    let ns = Netns::new();
    let offline = common::analyze_json(&[path_str(&pcap)], &[0, 1]);
    let handoffs_offline = offline["handoffs"].as_array().unwrap().len();
    assert!(handoffs_offline > 0, "allow-all has hand-offs");

    // --duration: longer than the replay (4.6 s), so every hand-off is streamed.
    let run = ns.live_default(&["--duration", "7"]);
    let sent = ns.replay(&pcap, &[]);
    let stopped = run.finish(None, "--duration 7");
    let records = records_then_report(&stopped, "--duration");
    let streamed = records.iter().filter(|r| r["record"] == "handoff").count();
    assert_eq!(streamed, handoffs_offline, "--duration: hand-offs streamed");
    let text = String::from_utf8_lossy(&stopped.stdout);
    assert!(
        text.contains(&format!("{sent} packets")),
        "--duration: the report counts the {sent} packets sent"
    );

    // --count: stops by itself in the middle of the replay, records written.
    let run = ns.live_default(&["--count", "250"]);
    ns.replay(&pcap, &[]);
    let stopped = run.finish(None, "--count 250");
    let records = records_then_report(&stopped, "--count");
    assert!(
        records.iter().any(|r| r["record"] == "handoff"),
        "--count: hand-offs streamed before the stop"
    );
    assert!(String::from_utf8_lossy(&stopped.stdout).contains("250 packets"));
}

#[test]
fn live_default_outputs_stop_on_the_first_sigterm_and_sigint() {
    let pcap = lab("allow-all");
    let ns = Netns::new();
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let run = ns.live_default(&[]);
        let sent = ns.replay(&pcap, &[]);
        std::thread::sleep(Duration::from_millis(300));
        let stopped = run.finish(Some(sig), name);
        let records = records_then_report(&stopped, name);
        assert!(
            records.iter().any(|r| r["record"] == "handoff"),
            "{name}: hand-offs streamed"
        );
        assert!(
            String::from_utf8_lossy(&stopped.stdout).contains(&format!("{sent} packets")),
            "{name}: every packet in the report"
        );
    }
}

/// A reader that stops reading must not hang the stop: past
/// `--stop-timeout` exflow says what it was waiting for and exits 4. Here
/// standard output is a one-page pipe that nobody reads.
#[test]
fn live_stop_deadline_names_what_it_waits_for() {
    let pcap = lab("allow-all");
    let ns = Netns::new();
    let run = ns.live_spawn(&["--duration", "2", "--stop-timeout", "2"], false);
    ns.replay(&pcap, &["--topspeed"]);
    let t0 = Instant::now();
    let stopped = run.finish(None, "--duration 2 with a stalled standard output");
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert_eq!(stopped.code, Some(4), "stderr:\n{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("still waiting for"),
        "stderr:\n{}",
        stopped.stderr
    );
}

/// Waits at most 15 s for `cond`.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{what}: not within 15 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl DefaultRun {
    /// Waits until stderr holds `needle` `times` times.
    fn wait_stderr(&self, needle: &str, times: usize) {
        let t0 = Instant::now();
        while self.stderr.lock().unwrap().matches(needle).count() < times {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "no '{needle}' (x{times}) on stderr within 15 s; stderr:\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid (`ip netns exec` execs exflow).
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Netns {
    /// Waits until `dev` in namespace `ns` is up with a carrier, so what
    /// tcpreplay sends through it arrives.
    fn wait_running(&self, ns: &str, dev: &str) {
        wait_for(&format!("{dev} up with a carrier"), || {
            let out = Command::new("ip")
                .args(["-n", ns, "-o", "link", "show", dev])
                .output()
                .expect("ip link show");
            let text = String::from_utf8_lossy(&out.stdout);
            text.contains(",UP") && text.contains("LOWER_UP") && text.contains("state UP")
        });
    }
}

/// A small tmpfs (a disk that fills), unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            path_str(dir),
        ]);
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Lines of stderr that report an error.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("error")).collect()
}

fn of_kind<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["record"] == kind).collect()
}

fn handoff_set(records: &[Value]) -> BTreeSet<HandoffKey> {
    of_kind(records, "handoff")
        .into_iter()
        .map(handoff_key)
        .collect()
}

/// Issue #18, logrotate: the events file is moved, then SIGHUP. Records up
/// to the signal stay in the moved file, later ones go to a new file at
/// the path; none is lost, repeated or split. The report (-o), moved too
/// (a logrotate glob), is still written at its path at the stop.
#[test]
fn live_sighup_reopens_the_events_file() {
    let ns = Netns::new();
    let tag = format!("hup-{}", ns.vb);
    let events = tmp_path(&format!("{tag}.ndjson"));
    let moved = tmp_path(&format!("{tag}.ndjson.1"));
    let report = tmp_path(&format!("{tag}.json"));
    let report_moved = tmp_path(&format!("{tag}.json.1"));
    let _ = std::fs::remove_file(&moved);
    let _ = std::fs::remove_file(&report);
    let run = ns.live(&events, &["--format", "json", "-o", path_str(&report)]);
    let (first, second) = (lab("allow-all"), lab("dyn-reject-rst"));
    let sent1 = ns.replay(&first, &[]);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::rename(&events, &moved).unwrap();
    std::fs::rename(&report, &report_moved).unwrap();
    run.signal(libc::SIGHUP);
    // Reopened while the link is quiet, not only at the next record.
    wait_for("the events file created anew after SIGHUP", || {
        events.exists()
    });
    let sent2 = ns.replay(&second, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = run.stop(libc::SIGINT);
    assert_eq!(stopped.code, Some(0), "stderr:\n{}", stopped.stderr);

    for f in [&moved, &events] {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.ends_with('\n'),
            "{}: ends with a whole record",
            f.display()
        );
    }
    // read_ndjson parses every line: no record is split.
    let old = read_ndjson(&moved);
    let new = read_ndjson(&events);
    let off1 = common::analyze_json(&[path_str(&first)], &[0, 1]);
    let off2 = common::analyze_json(&[path_str(&second)], &[0, 1]);
    // The first capture's followed hand-offs are known while it is
    // replayed: in the moved file, each once. Those it superseded are
    // settled only once every attempt in their windows has surely ended
    // (here: at the stop), so they are in the new file.
    let (followed1, settled_later1): (Vec<Value>, Vec<Value>) = off1["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .partition(|h| h["followed"] == true);
    assert!(!followed1.is_empty() && !settled_later1.is_empty());
    assert_eq!(of_kind(&old, "handoff").len(), followed1.len());
    assert_eq!(handoff_set(&old), handoffs(&followed1));
    // The second capture's, and those, in the new file, each once.
    let mut later: Vec<Value> = off2["handoffs"].as_array().unwrap().clone();
    later.extend(settled_later1);
    assert_eq!(of_kind(&new, "handoff").len(), later.len());
    assert_eq!(handoff_set(&new), handoffs(&later));
    assert!(
        !of_kind(&new, "attempt-failed").is_empty(),
        "dyn-reject-rst's failed attempts are in the new file"
    );
    // The stats at the stop count every record of both files.
    let last = new.last().unwrap();
    assert_eq!(last["record"], "stats");
    assert_eq!(
        last["records_written"].as_u64(),
        Some((old.len() + new.len() - 1) as u64)
    );
    assert_eq!(last["packets"].as_u64(), Some(sent1 + sent2));
    assert_eq!(
        read_json(&report)["stats"]["packets"].as_u64(),
        Some(sent1 + sent2)
    );
    assert_eq!(std::fs::metadata(&report_moved).unwrap().len(), 0);
    assert!(
        stopped.stderr.contains("was moved or deleted"),
        "{}",
        stopped.stderr
    );
}

/// An interface deleted while it is down: the kernel sends the socket no
/// new error then (it is unhooked from the device since the down); libpcap
/// may still notice (it looks for the device after a down), else exflow's
/// own check does. Either way: one error, the report, exit code 3.
#[test]
fn live_interface_deleted_while_down_ends_the_capture() {
    let ns = Netns::new();
    let tag = format!("gone-down-{}", ns.vb);
    let events = tmp_path(&format!("{tag}.ndjson"));
    let report = tmp_path(&format!("{tag}.json"));
    let run = ns.live_spawn(
        &[
            "--events",
            path_str(&events),
            "--format",
            "json",
            "-o",
            path_str(&report),
        ],
        true,
    );
    let sent = ns.replay(&lab("dyn-reject-rst"), &[]);
    std::thread::sleep(Duration::from_millis(300));
    sh(&["ip", "-n", &ns.b, "link", "set", &ns.vb, "down"]);
    run.wait_stderr("the interface was taken down", 1);
    sh(&["ip", "-n", &ns.b, "link", "del", &ns.vb]);
    let stopped = run.finish(None, "deleting the interface while down");
    assert_eq!(stopped.code, Some(3), "stderr:\n{}", stopped.stderr);
    let errors = error_lines(&stopped.stderr);
    assert_eq!(errors.len(), 1, "one error: {}", stopped.stderr);
    assert!(
        errors[0].contains(&ns.vb)
            && errors[0]
                .to_lowercase()
                .contains("the interface disappeared"),
        "{}",
        errors[0]
    );
    let live = read_json(&report);
    assert_eq!(live["stats"]["packets"].as_u64(), Some(sent));
    assert_eq!(live["inputs"][0]["complete"], false);
}

/// Issue #18: the interface vanishes mid-capture. The capture stops there
/// by itself, with one error naming the interface, the report of what was
/// captured, and exit code 3.
#[test]
fn live_interface_that_disappears_ends_the_capture_with_exit_3() {
    let ns = Netns::new();
    let tag = format!("gone-{}", ns.vb);
    let events = tmp_path(&format!("{tag}.ndjson"));
    let report = tmp_path(&format!("{tag}.json"));
    let run = ns.live(&events, &["--format", "json", "-o", path_str(&report)]);
    let sent = ns.replay(&lab("allow-all"), &[]);
    std::thread::sleep(Duration::from_millis(300));
    // Deleting one end of a veth pair deletes both.
    sh(&["ip", "-n", &ns.b, "link", "del", &ns.vb]);
    let stopped = run.wait(Duration::from_secs(15), "deleting the interface");
    assert_eq!(stopped.code, Some(3), "stderr:\n{}", stopped.stderr);
    let errors = error_lines(&stopped.stderr);
    assert_eq!(errors.len(), 1, "one error: {}", stopped.stderr);
    assert!(
        errors[0].contains(&ns.vb) && errors[0].contains("disappeared"),
        "names the interface and what happened: {}",
        errors[0]
    );

    let live = read_json(&report);
    assert_eq!(live["stats"]["packets"].as_u64(), Some(sent));
    assert_eq!(live["stats"]["kernel_drops"].as_u64(), Some(0));
    let input = &live["inputs"][0];
    assert_eq!(input["complete"], false);
    assert!(
        s(&input["problem"]["message"]).contains("disappeared"),
        "{input}"
    );
    let records = read_ndjson(&events);
    assert!(!of_kind(&records, "handoff").is_empty());
    assert_eq!(records.last().unwrap()["packets"].as_u64(), Some(sent));
}

/// Issue #18: the interface taken down, or losing its carrier, is a gap,
/// not the end: exflow says so at once, capture resumes when it is up
/// again, the stats records show it, the report says how long, exit 3.
#[test]
fn live_interface_down_and_carrier_loss_are_reported_gaps() {
    let ns = Netns::new();
    let tag = format!("down-{}", ns.vb);
    let events = tmp_path(&format!("{tag}.ndjson"));
    let report = tmp_path(&format!("{tag}.json"));
    let run = ns.live_spawn(
        &[
            "--events",
            path_str(&events),
            "--format",
            "json",
            "-o",
            path_str(&report),
            "--stats-interval",
            "1",
        ],
        true,
    );
    let sent1 = ns.replay(&lab("dyn-reject-rst"), &[]);
    std::thread::sleep(Duration::from_millis(300));

    sh(&["ip", "-n", &ns.b, "link", "set", &ns.vb, "down"]);
    run.wait_stderr(&format!("{}: the interface was taken down", ns.vb), 1);
    // Long enough for a stats record (every second) to see it.
    std::thread::sleep(Duration::from_millis(1500));
    sh(&["ip", "-n", &ns.b, "link", "set", &ns.vb, "up"]);
    run.wait_stderr("the interface is up again", 1);

    // The peer down: vb loses its carrier (a pulled cable).
    sh(&["ip", "-n", &ns.a, "link", "set", &ns.va, "down"]);
    run.wait_stderr(&format!("{}: the interface lost its carrier", ns.vb), 1);
    sh(&["ip", "-n", &ns.a, "link", "set", &ns.va, "up"]);
    run.wait_stderr("the interface is up again", 2);
    ns.wait_running(&ns.a, &ns.va);

    // Capturing again.
    let sent2 = ns.replay(&lab("allow-all"), &[]);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = run.finish(Some(libc::SIGINT), "SIGINT");
    assert_eq!(stopped.code, Some(3), "stderr:\n{}", stopped.stderr);
    let errors = error_lines(&stopped.stderr);
    assert_eq!(errors.len(), 1, "one error, at the end: {}", stopped.stderr);
    assert!(
        errors[0].contains(&ns.vb) && errors[0].contains("down 2 times"),
        "{}",
        errors[0]
    );

    let live = read_json(&report);
    assert_eq!(live["stats"]["packets"].as_u64(), Some(sent1 + sent2));
    let input = &live["inputs"][0];
    assert_eq!(input["complete"], false);
    assert!(
        s(&input["problem"]["message"]).contains("the interface was down 2 times"),
        "{input}"
    );
    let records = read_ndjson(&events);
    let stats = of_kind(&records, "stats");
    assert!(
        stats.iter().any(|r| r["interface_up"] == false),
        "a stats record saw the interface down"
    );
    assert_eq!(stats.last().unwrap()["interface_up"], true);
    assert_eq!(
        stats.last().unwrap()["packets"].as_u64(),
        Some(sent1 + sent2)
    );
    // Capture after the gaps was analyzed: allow-all's hand-offs streamed.
    let off2 = common::analyze_json(&[path_str(&lab("allow-all"))], &[0, 1]);
    assert!(handoff_set(&records).is_superset(&handoffs(off2["handoffs"].as_array().unwrap())));
}

/// Issue #18: -w on a disk that fills. One error naming the file, the file
/// cut back to its last whole packet (a valid capture), capture, records
/// and report go on, exit code 3.
#[test]
fn live_full_disk_under_w_is_one_error_and_exit_3() {
    let ns = Netns::new();
    let tag = format!("wfull-{}", ns.vb);
    let events = tmp_path(&format!("{tag}.ndjson"));
    let report = tmp_path(&format!("{tag}.json"));
    let disk = Tmpfs::mount(&tmp_path(&tag), "64k");
    let out = disk.0.join("capture.pcap");
    let run = ns.live(
        &events,
        &[
            "--format",
            "json",
            "-o",
            path_str(&report),
            "-w",
            path_str(&out),
        ],
    );
    // allow-all is about 64 KB: three times over fills the disk.
    let sent = ns.replay(&lab("allow-all"), &["--loop=3", "--pps=2000"]);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = run.stop(libc::SIGINT);
    assert_eq!(stopped.code, Some(3), "stderr:\n{}", stopped.stderr);
    let errors = error_lines(&stopped.stderr);
    assert_eq!(errors.len(), 1, "one error: {}", stopped.stderr);
    assert!(
        errors[0].contains(path_str(&out)) && errors[0].contains("No space left on device"),
        "{}",
        errors[0]
    );

    // The report is whole: the capture itself lost nothing.
    let live = read_json(&report);
    assert_eq!(live["stats"]["packets"].as_u64(), Some(sent));
    assert_eq!(live["inputs"][0]["complete"], true);
    let records = read_ndjson(&events);
    assert!(!of_kind(&records, "handoff").is_empty());
    assert_eq!(records.last().unwrap()["packets"].as_u64(), Some(sent));

    // The -w file holds whole packets only: analyze reads it to its end.
    let written = common::analyze_json(&[path_str(&out)], &[0, 1]);
    assert_eq!(
        written["inputs"][0]["complete"], true,
        "{}",
        written["inputs"]
    );
    let packets = written["stats"]["packets"].as_u64().unwrap();
    assert!(packets > 0 && packets < sent, "{packets} of {sent} packets");
}

/// Issue #18: --events on a disk that fills. One error naming the file,
/// records dropped (counted) meanwhile, never half a record in the file;
/// after making room, a SIGHUP resumes them; the report (elsewhere) is
/// whole; exit code 3.
#[test]
fn live_full_disk_under_events_is_one_error_and_sighup_resumes() {
    let ns = Netns::new();
    let tag = format!("efull-{}", ns.vb);
    let report = tmp_path(&format!("{tag}.json"));
    let disk = Tmpfs::mount(&tmp_path(&tag), "64k");
    let events = disk.0.join("events.ndjson");
    // Leave one 4 KiB page: allow-all's records fit, the next ones do not.
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; 60 << 10]).unwrap();
    let run = ns.live_spawn(
        &[
            "--events",
            path_str(&events),
            "--format",
            "json",
            "-o",
            path_str(&report),
        ],
        true,
    );
    let sent1 = ns.replay(&lab("allow-all"), &[]);
    let sent2 = ns.replay(&lab("static-port"), &[]);
    run.wait_stderr("No space left on device", 1);

    std::fs::remove_file(&filler).unwrap();
    run.signal(libc::SIGHUP);
    run.wait_stderr("reopened", 1);
    let third = lab("dyn-reject-rst");
    let sent3 = ns.replay(&third, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = run.finish(Some(libc::SIGINT), "SIGINT");
    assert_eq!(stopped.code, Some(3), "stderr:\n{}", stopped.stderr);
    let errors = error_lines(&stopped.stderr);
    assert_eq!(errors.len(), 1, "one error: {}", stopped.stderr);
    assert!(
        errors[0].contains(path_str(&events)) && errors[0].contains("No space left on device"),
        "{}",
        errors[0]
    );

    let text = std::fs::read_to_string(&events).unwrap();
    assert!(text.ends_with('\n'));
    // Every line parses: the record that did not fit left nothing behind.
    let records = read_ndjson(&events);
    let off1 = common::analyze_json(&[path_str(&lab("allow-all"))], &[0, 1]);
    let off3 = common::analyze_json(&[path_str(&third)], &[0, 1]);
    let got = handoff_set(&records);
    assert!(got.is_superset(&handoffs(off1["handoffs"].as_array().unwrap())));
    assert!(
        got.is_superset(&handoffs(off3["handoffs"].as_array().unwrap())),
        "records are written again after the SIGHUP"
    );
    let last = records.last().unwrap();
    assert_eq!(last["record"], "stats");
    assert!(last["records_lost"].as_u64().unwrap() > 0, "{last}");
    assert_eq!(
        last["records_written"].as_u64(),
        Some(records.len() as u64 - 1)
    );
    let total = sent1 + sent2 + sent3;
    assert_eq!(last["packets"].as_u64(), Some(total));
    assert_eq!(read_json(&report)["stats"]["packets"].as_u64(), Some(total));
}

/// `exflow live --filter` (issue #16): the follow-ups the kernel's filter
/// drops make their hand-offs `not-captured` — streamed and in the report,
/// as `analyze --filter` has them — never a block; the report says which
/// filter limits it.
#[test]
fn live_filter_makes_the_follow_ups_it_drops_not_captured() {
    let pcap = lab("allow-all");
    let ns = Netns::new();
    let tag = format!("filter-{}", ns.vb);
    let events = tmp_path(&format!("{tag}.events.ndjson"));
    let report = tmp_path(&format!("{tag}.report.json"));
    let filter = "tcp port 135";
    let run = ns.live(
        &events,
        &[
            "--filter",
            filter,
            "--format",
            "json",
            "-o",
            path_str(&report),
        ],
    );
    ns.replay(&pcap, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = run.stop(libc::SIGINT);
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);

    let live = read_json(&report);
    let offline = common::analyze_json(&["--filter", filter, path_str(&pcap)], &[0]);
    let live_h = handoffs(live["handoffs"].as_array().unwrap());
    assert_eq!(live_h, handoffs(offline["handoffs"].as_array().unwrap()));
    assert!(!live_h.is_empty());
    assert!(live_h.iter().all(|h| h.7 == "not-captured"), "{live_h:?}");
    assert!(
        live["findings"].as_array().unwrap().is_empty(),
        "{}",
        live["findings"]
    );
    let limit = &live["limits"][0];
    assert_eq!(limit["filter"], filter);
    assert_eq!(limit["applied_by"], "--filter");
    assert_eq!(
        limit["handoffs_not_captured"].as_u64(),
        Some(live["handoffs"].as_array().unwrap().len() as u64)
    );

    let records = read_ndjson(&events);
    let streamed: Vec<Value> = of_kind(&records, "handoff").into_iter().cloned().collect();
    assert_eq!(
        streamed.len(),
        offline["handoffs"].as_array().unwrap().len()
    );
    assert_eq!(handoffs(&streamed), live_h);
}

/// `live --write-failed FILE` (#21 point 2): the lab capture replayed
/// into the interface; the packets of the failed attempts are written as
/// they are decided, headers only, and the file analysed again shows the
/// blocked ports the offline analysis of the capture shows.
#[test]
fn live_writes_the_failed_attempts_packets() {
    let pcap = lab("dyn-drop");
    let ns = Netns::new();
    let events = tmp_path(&format!("evidence-{}.ndjson", ns.vb));
    let evidence = tmp_path(&format!("evidence-{}.pcap", ns.vb));
    let run = ns.live(&events, &["--write-failed", path_str(&evidence)]);
    ns.replay(&pcap, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = run.stop(libc::SIGINT);
    assert_eq!(stopped.code, Some(0), "stderr:\n{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .contains("packets of failed attempts (headers only)"),
        "{}",
        stopped.stderr
    );
    let blocked = |r: &Value| -> BTreeSet<String> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "blocked")
            .map(|f| format!("{} {}", s(&f["server"]), f["port"]))
            .collect()
    };
    let offline = common::analyze_json(&[path_str(&pcap)], &[1]);
    let again = common::analyze_json(&[path_str(&evidence)], &[1]);
    assert!(!blocked(&offline).is_empty());
    assert_eq!(blocked(&again), blocked(&offline));
}
