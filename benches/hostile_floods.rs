//! Memory under floods (#23): peak RSS of `exflow analyze` over N IPv4
//! first fragments never completed and over N ICMP errors quoting flows
//! that never existed (`tests/support/hostile_floods.rs`, default N =
//! 1,000,000 each), against the same floods of N / 1000: the difference is
//! what the flood adds. Also prints what the report counted
//! (`stats.fragments`, `stats.icmp_unmatched`).
//!
//! `cargo bench --bench hostile_floods`; `EXFLOW_BENCH_FLOOD_N` sets N,
//! `EXFLOW_BIN` another exflow build.

#[path = "../tests/support/hostile_floods.rs"]
mod floods;
#[path = "support/measure.rs"]
mod measure;

use std::path::Path;

use measure::{env_u64, mib};

fn main() {
    measure::own_args();
    measure::exit_unless_benching();
    let n = env_u64("EXFLOW_BENCH_FLOOD_N", 1_000_000) as u32;
    let dir = measure::data_dir();
    std::fs::create_dir_all(&dir).expect("creating the bench data dir");
    let exflow = measure::exflow_bin();
    let report = dir.join("hostile-floods-report.json");
    let run = |file: &Path| measure::analyze_json_measured(&exflow, file, &report, &[]);
    type Writer = fn(&Path, u32) -> std::io::Result<()>;
    let floods: [(&str, Writer, &str); 2] = [
        (
            "fragments never completed",
            floods::write_fragments,
            "fragments",
        ),
        (
            "ICMP errors quoting no flow",
            floods::write_icmp,
            "icmp_unmatched",
        ),
    ];
    println!("exflow analyze --format json --threads 2; peak RSS at N and at N / 1000");
    for (what, write, stat) in floods {
        let mut peaks = Vec::new();
        let mut counted = serde_json::Value::Null;
        for size in [n, (n / 1000).max(1)] {
            let file = dir.join(format!("hostile-flood-{stat}-{size}.pcap"));
            write(&file, size).expect("writing the capture");
            let (r, v) = run(&file);
            if size == n {
                counted = v["stats"][stat].clone();
            }
            peaks.push(r.max_rss_kb);
            let _ = std::fs::remove_file(&file);
        }
        println!(
            "{what}: {n}: {:.1} MiB, {}: {:.1} MiB: +{:.1} MiB; stats.{stat}: {counted}",
            mib(peaks[0]),
            (n / 1000).max(1),
            mib(peaks[1]),
            mib(peaks[0].saturating_sub(peaks[1]))
        );
    }
    let _ = std::fs::remove_file(&report);
}
