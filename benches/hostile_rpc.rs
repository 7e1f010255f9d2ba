//! Memory under DCE/RPC attack traffic (#23): peak RSS of `exflow analyze`
//! over N connections (default 100,000) that bind the endpoint mapper and
//! trickle bytes toward ept_map requests claiming 65,535- or 8,000-byte
//! fragments, with one real ept_map exchange in the middle
//! (`tests/support/hostile_rpc.rs`), against the same capture with
//! `--no-dcerpc`: the difference is what DCE/RPC parsing adds. Also prints
//! the report's `stats.dcerpc` (the product's own count) and whether the real
//! hand-off was found.
//!
//! `cargo bench --bench hostile_rpc`; `EXFLOW_BENCH_HOSTILE_CONNS` sets N,
//! `EXFLOW_BIN` another exflow build (e.g. one before #23, to compare),
//! `EXFLOW_BENCH_HOSTILE_ATTACK=gap` out-of-order bytes instead, `=idle`
//! connections that only keep alive after binding.

#[path = "../tests/support/hostile_rpc.rs"]
mod hostile;
#[path = "support/measure.rs"]
mod measure;
#[path = "../tests/common/pdus.rs"]
mod pdus;

use std::net::Ipv4Addr;
use std::path::Path;

use measure::env_u64;

fn main() {
    measure::own_args();
    measure::exit_unless_benching();
    let conns = env_u64("EXFLOW_BENCH_HOSTILE_CONNS", 100_000) as u32;
    let dir = measure::data_dir();
    std::fs::create_dir_all(&dir).expect("creating the bench data dir");
    let file = dir.join(format!("hostile-rpc-{conns}.pcap"));
    let ex = hostile::Exchange {
        bind: pdus::epm_bind(),
        bind_ack: pdus::epm_bind_ack(),
        request: pdus::ept_map_nspi(),
        answer: pdus::ept_map_answer_at(Ipv4Addr::UNSPECIFIED, 4997),
    };
    // EXFLOW_BENCH_HOSTILE_ATTACK=gap: out-of-order bytes behind a hole
    // instead of trickled claims.
    let attack = match std::env::var("EXFLOW_BENCH_HOSTILE_ATTACK").as_deref() {
        Ok("gap") => hostile::Attack::Gap,
        Ok("idle") => hostile::Attack::Idle,
        _ => hostile::Attack::Trickle,
    };
    let packets =
        hostile::write_attack(&file, conns, 4997, &ex, attack).expect("writing the capture");
    let exflow = measure::exflow_bin();
    let report = dir.join("hostile-rpc-report.json");
    let run = |extra: &[&str]| measure::analyze_json_measured(&exflow, &file, &report, extra);
    let (with, v) = run(&[]);
    let (without, _) = run(&["--no-dcerpc"]);
    let handoff = v["handoffs"]
        .as_array()
        .map(|h| {
            h.iter()
                .any(|h| h["client"] == hostile::REAL_CLIENT.to_string() && h["port"] == 4997)
        })
        .unwrap_or(false);
    println!(
        "exflow analyze --format json --threads 2 over {conns} attacking connections ({packets} packets, {:.0} MB)",
        std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    );
    measure::print_added(&with, &without, ("with DCE/RPC", "with --no-dcerpc"));
    println!("stats.dcerpc: {}", v["stats"]["dcerpc"]);
    println!("real ept_map hand-off found: {handoff}");
    let _ = std::fs::remove_file(&report);
    let _ = std::fs::remove_file(Path::new(&file));
}
