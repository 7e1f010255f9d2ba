//! Helpers shared by the end-to-end tests: run the real binary, parse its JSON.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod live;
pub mod pdus;

/// The time the constructed captures start at (ns), and their steps.
pub const CAP_T0: u64 = 1_795_305_697_000_000_000;
pub const CAP_MS: u64 = 1_000_000;

/// A constructed capture: frames at times relative to [`CAP_T0`], written
/// sorted by [`write_pcap`].
#[derive(Default)]
pub struct Cap {
    pub frames: Vec<(u64, Vec<u8>)>,
}

impl Cap {
    /// Frames one millisecond apart from `t` on; returns the time after.
    pub fn seq(&mut self, mut t: u64, frames: Vec<Vec<u8>>) -> u64 {
        for f in frames {
            self.frames.push((CAP_T0 + t, f));
            t += CAP_MS;
        }
        t
    }

    /// Written as [`write_pcap`] `name`; its path.
    pub fn write(&self, name: &str) -> String {
        write_pcap(name, &self.frames)
    }
}

pub fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/captures`, which CI and every developer machine have beside the checkout.
/// Tests that need it fail (never skip) when it is missing.
pub fn shared_captures() -> PathBuf {
    let p = crate_root().join("../shared/captures");
    assert!(
        p.is_dir(),
        "{} is missing: the real-capture tests need ../shared beside the checkout",
        p.display()
    );
    p
}

/// Every capture the tests know, as paths relative to the crate root (the keys of
/// tests/data/tshark.json).
pub fn tshark_expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(crate_root().join("tests/data/tshark.json")).unwrap();
    match serde_json::from_str(&text).unwrap() {
        Value::Object(m) => m,
        _ => panic!("tshark.json is not an object"),
    }
}

pub fn exflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_exflow"));
    c.current_dir(crate_root());
    c
}

pub fn run(args: &[&str]) -> Output {
    exflow().args(args).output().expect("running exflow")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `exflow analyze --format json ARGS...` and parses the report; the exit code
/// must be one of `ok_codes`.
pub fn analyze_json(args: &[&str], ok_codes: &[i32]) -> Value {
    let mut all = vec!["analyze", "--format", "json"];
    all.extend_from_slice(args);
    let out = run(&all);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        ok_codes.contains(&code),
        "exflow {all:?} exited {code}; stderr:\n{}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("exflow {all:?} printed invalid JSON: {e}"))
}

pub fn tmp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("exflow-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Writes `frames` (timestamp in ns, bytes), sorted by time, as an
/// Ethernet pcap named `name` in this process's temp directory; returns its
/// path. Written to a file of its own and renamed into place: tests that
/// run in parallel and build the same capture (two tests sharing a builder)
/// never read each other's half-written file — they did, and one then read
/// "empty file (0 bytes)".
pub fn write_pcap(name: &str, frames: &[(u64, Vec<u8>)]) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut order: Vec<&(u64, Vec<u8>)> = frames.iter().collect();
    order.sort_by_key(|(t, _)| *t);
    let p = tmp_path(name);
    let part = tmp_path(&format!(
        "{name}.part{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut w =
        exflow_testkit::PcapWriter::create(&part, exflow_testkit::Link::Ethernet, 65535, false)
            .unwrap();
    for (ts, f) in order {
        w.write_packet(*ts, f).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    std::fs::rename(&part, &p).unwrap();
    path_str(&p).to_string()
}

/// A client's connection to the endpoint mapper up to its ept_map request
/// for NSPI: handshake, bind, bind_ack, request.
pub fn epm_request(c: &mut exflow_testkit::TcpConversation) -> Vec<Vec<u8>> {
    vec![
        c.syn(),
        c.syn_ack(),
        c.ack(),
        c.data_c2s(&pdus::epm_bind()),
        c.data_s2c(&pdus::epm_bind_ack()),
        c.data_c2s(&pdus::ept_map_nspi()),
    ]
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Source and destination of an IP packet sliced by etherparse.
pub fn ips(net: &etherparse::NetSlice<'_>) -> Option<(std::net::IpAddr, std::net::IpAddr)> {
    match net {
        etherparse::NetSlice::Ipv4(s) => Some((
            std::net::IpAddr::V4(s.header().source_addr()),
            std::net::IpAddr::V4(s.header().destination_addr()),
        )),
        etherparse::NetSlice::Ipv6(s) => Some((
            std::net::IpAddr::V6(s.header().source_addr()),
            std::net::IpAddr::V6(s.header().destination_addr()),
        )),
        _ => None,
    }
}

/// A JSON report's `findings[]`.
pub fn findings(r: &Value) -> Vec<&Value> {
    r["findings"].as_array().unwrap().iter().collect()
}

/// The `kind` of each of a JSON report's findings, in order.
pub fn kinds(r: &Value) -> Vec<String> {
    findings(r)
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

/// `exflow analyze PATH`'s text report with its wrapped lines joined and
/// spaces collapsed (a phrase is found whatever the terminal width).
pub fn text_joined(path: &str) -> String {
    let o = run(&["analyze", path]);
    let s = String::from_utf8(o.stdout).unwrap();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
