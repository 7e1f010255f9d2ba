//! Memory of a whole run, report included, where every packet is a flow
//! (#20): peak RSS and wall time of `exflow analyze` in each format on a
//! SYN flood of N single SYNs from N sources (default 3,000,000,
//! `capgen::Profile::SynFlood`), written to a file as a user would.
//!
//! `cargo bench --bench report_memory`; `EXFLOW_BENCH_FLOOD_FLOWS` sets N,
//! `EXFLOW_BENCH_FORMATS` the formats (default `json,ndjson,text`),
//! `EXFLOW_BIN` another exflow build.

#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/measure.rs"]
mod measure;

use std::ffi::OsString;

use measure::{env_u64, mib};

fn main() {
    let args = measure::own_args();
    measure::exit_unless_benching();
    let flows = env_u64("EXFLOW_BENCH_FLOOD_FLOWS", 3_000_000);
    let dir = measure::data_dir();
    let (file, sum) =
        capgen::ensure(&dir, capgen::Profile::SynFlood { flows }).expect("generating the capture");
    sum.print_mix();
    if args.iter().any(|a| a == "--gen-only") {
        return;
    }
    let exflow = measure::exflow_bin();
    let report = dir.join("report-memory.out");
    let formats = std::env::var("EXFLOW_BENCH_FORMATS").unwrap_or("json,ndjson,text".into());
    println!(
        "exflow analyze --threads 2 -o FILE over {} ({} packets, {:.0} MB)",
        file.display(),
        sum.packets,
        sum.file_bytes as f64 / 1e6
    );
    std::env::set_var("EXFLOW_TIMING", "1");
    for format in formats.split(',').map(str::trim) {
        let args: Vec<OsString> = vec![
            "analyze".into(),
            file.as_os_str().into(),
            "--format".into(),
            format.into(),
            "-o".into(),
            report.as_os_str().into(),
            "--threads".into(),
            "2".into(),
        ];
        measure::warm_page_cache(&file).expect("reading the capture");
        let r = measure::run_measured_ok(&exflow, &args, false, measure::EXFLOW_OK)
            .unwrap_or_else(|e| panic!("{e}"));
        let size = std::fs::metadata(&report).map(|m| m.len()).unwrap_or(0);
        println!(
            "{format:>7}: {:7.2} s, peak RSS {:8.1} MiB, report {:8.1} MB",
            r.wall_s,
            mib(r.max_rss_kb),
            size as f64 / 1e6
        );
        for line in String::from_utf8_lossy(&r.stderr).lines() {
            if let Some(stage) = line.strip_prefix("timing: ") {
                println!("         {stage}");
            }
        }
        let _ = std::fs::remove_file(&report);
    }
}
