//! Memory under RFC 1006 attack traffic (#23): peak RSS of `exflow analyze`
//! over N connections to TCP 102 (default 100,000) that open a COTP
//! connection and then send a TPKT claiming 65,535 bytes and trickle bytes
//! of it, with one real S7 connection in the middle
//! (`tests/support/hostile_rfc1006.rs`), against the control capture: the
//! same packets with a TPKT version no parser takes, so the difference is
//! what RFC 1006 parsing adds. Also prints the report's `stats.rfc1006`
//! (the product's own count) and whether the real connection was parsed.
//!
//! `cargo bench --bench hostile_rfc1006`; `EXFLOW_BENCH_HOSTILE_CONNS` sets
//! N, `EXFLOW_BIN` another exflow build, `EXFLOW_BENCH_HOSTILE_ATTACK=gap`
//! out-of-order bytes behind a hole, `=idle` connections that only keep
//! alive.

#[allow(dead_code)]
#[path = "../tests/support/hostile_rpc.rs"]
mod hostile;
#[path = "support/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "../tests/common/pdus.rs"]
mod pdus;
#[path = "../tests/support/hostile_rfc1006.rs"]
mod rfc1006;

use std::path::{Path, PathBuf};

use measure::env_u64;

fn main() {
    measure::own_args();
    measure::exit_unless_benching();
    let conns = env_u64("EXFLOW_BENCH_HOSTILE_CONNS", 100_000) as u32;
    let dir = measure::data_dir();
    std::fs::create_dir_all(&dir).expect("creating the bench data dir");
    let attack = match std::env::var("EXFLOW_BENCH_HOSTILE_ATTACK").as_deref() {
        Ok("gap") => hostile::Attack::Gap,
        Ok("idle") => hostile::Attack::Idle,
        _ => hostile::Attack::Trickle,
    };
    let write = |control: bool| -> (PathBuf, u64) {
        let name = if control { "control" } else { "attack" };
        let file = dir.join(format!("hostile-rfc1006-{conns}-{name}.pcap"));
        let packets = rfc1006::write(&file, conns, attack, control).expect("writing the capture");
        (file, packets)
    };
    let (file, packets) = write(false);
    let (control, _) = write(true);
    let exflow = measure::exflow_bin();
    let report = dir.join("hostile-rfc1006-report.json");
    let run = |file: &Path| measure::analyze_json_measured(&exflow, file, &report, &[]);
    let (with, v) = run(&file);
    let (without, _) = run(&control);
    let real = rfc1006::REAL_CLIENT.to_string();
    let parsed = v["flows"].as_array().is_some_and(|f| {
        f.iter()
            .any(|f| f["client"] == real && f["app"]["rfc1006"]["outcome"]["state"] == "accepted")
    });
    println!(
        "exflow analyze --format json --threads 2 over {conns} attacking connections ({packets} packets, {:.0} MB)",
        std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    );
    measure::print_added(&with, &without, ("parsed", "control (no TPKT)"));
    println!("stats.rfc1006: {}", v["stats"]["rfc1006"]);
    println!("real S7 connection parsed (accepted): {parsed}");
    let _ = std::fs::remove_file(&report);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&control);
}
