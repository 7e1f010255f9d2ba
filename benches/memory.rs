//! Memory: peak RSS per concurrently tracked flow.
//!
//! `cargo bench --bench memory`; knobs and method in BENCHMARKS.md.
//! exflow analyses two captures of the same shape — N (default 1,000,000)
//! and n (default 1,000) TCP flows that all open within 25 s and never close
//! — and bytes per flow = (RSS_N − RSS_n) / (N − n): the per-flow slope, with
//! the constant (binary, threads, buffers) cancelled out. A separate run per
//! file writes the JSON report to a temporary file to read
//! `stats.peak_flows_tracked`, proving the flows really were all tracked at
//! once (the measured runs write to /dev/null so the report costs nothing
//! it would not cost anyway).

#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/measure.rs"]
mod measure;

use std::ffi::OsString;
use std::path::Path;

use measure::{env_u64, median, mib, min};

/// The target: at most this many bytes per concurrently tracked flow.
const TARGET_BYTES_PER_FLOW: f64 = 300.0;

fn main() {
    let args = measure::own_args();
    measure::exit_unless_benching();
    let gen_only = args.iter().any(|a| a == "--gen-only");

    let big = env_u64("EXFLOW_BENCH_FLOWS", 1_000_000);
    let small = env_u64("EXFLOW_BENCH_SMALL_FLOWS", 1_000);
    assert!(
        big > small,
        "EXFLOW_BENCH_FLOWS must exceed EXFLOW_BENCH_SMALL_FLOWS"
    );
    // Far above N, so nothing is evicted (exflow splits the cap over 64
    // logical shards, and hashing never spreads flows perfectly evenly).
    let max_flows = env_u64("EXFLOW_BENCH_MAX_FLOWS", (4 * big).max(4_000_000));
    let repeat = env_u64("EXFLOW_BENCH_REPEAT", 3).max(1);
    let dir = measure::data_dir();

    let (big_file, big_sum) = capgen::ensure(&dir, capgen::Profile::ConcurrentFlows { flows: big })
        .expect("generating the big capture");
    let (small_file, small_sum) =
        capgen::ensure(&dir, capgen::Profile::ConcurrentFlows { flows: small })
            .expect("generating the small capture");
    if gen_only {
        return;
    }
    let exflow = measure::exflow_bin();
    if std::env::var_os("EXFLOW_BIN").is_some() {
        eprintln!(
            "note: EXFLOW_BIN overrides the exflow binary: {}",
            exflow.display()
        );
    }
    let analyze = |file: &Path, out: &Path| -> Vec<OsString> {
        vec![
            "analyze".into(),
            file.into(),
            "--format".into(),
            "json".into(),
            "-o".into(),
            out.into(),
            "--threads".into(),
            "2".into(),
            "--max-flows".into(),
            max_flows.to_string().into(),
        ]
    };

    // Interleaved so drift hits both sizes alike.
    let mut rss: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let mut walls: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let cases = [(small, &small_file), (big, &big_file)];
    for round in 0..repeat {
        for (i, (flows, file)) in cases.iter().enumerate() {
            measure::warm_page_cache(file).expect("reading the capture");
            eprint!("[{}/{}] {:>9} flows ", round + 1, repeat, flows);
            let r = measure::run_measured_ok(
                &exflow,
                &analyze(file, Path::new("/dev/null")),
                false,
                measure::EXFLOW_OK,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            eprintln!("{:8.3} s  {:8.1} MiB", r.wall_s, mib(r.max_rss_kb));
            rss[i].push(r.max_rss_kb);
            walls[i].push(r.wall_s);
        }
    }

    // One more run each, with the report kept, for stats.peak_flows_tracked.
    let mut peaks = [None, None];
    for (i, (flows, file)) in cases.iter().enumerate() {
        let out = dir.join(format!("memory-report-{flows}.json"));
        measure::run_measured_ok(&exflow, &analyze(file, &out), false, measure::EXFLOW_OK)
            .unwrap_or_else(|e| panic!("{e}"));
        peaks[i] = std::fs::read(&out)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["stats"]["peak_flows_tracked"].as_u64());
        let _ = std::fs::remove_file(&out);
    }

    let kb = |v: &[u64]| v.iter().map(|&k| k as f64).collect::<Vec<f64>>();
    let (s_med, b_med) = (median(&kb(&rss[0])), median(&kb(&rss[1])));
    let (s_min, b_min) = (min(&kb(&rss[0])), min(&kb(&rss[1])));
    let per_flow = |b_kb: f64, s_kb: f64| (b_kb - s_kb) * 1024.0 / (big - small) as f64;
    let bpf_med = per_flow(b_med, s_med);
    let bpf_min = per_flow(b_min, s_min);

    println!();
    println!("exflow analyze --format json -o /dev/null --threads 2 --max-flows {max_flows}");
    println!(
        "peak RSS = VmHWM of the exflow process at its exit (ptrace exit stop); {repeat} run(s) each, interleaved."
    );
    println!();
    println!(
        "{:<34} {:>9} {:>9} {:>12} {:>12} {:>20}",
        "capture", "packets", "MB", "RSS med MiB", "RSS min MiB", "peak_flows_tracked"
    );
    for (i, ((flows, file), sum)) in cases.iter().zip([&small_sum, &big_sum]).enumerate() {
        let name = file.file_name().unwrap().to_string_lossy();
        let peak = peaks[i]
            .map(|p| p.to_string())
            .unwrap_or_else(|| "n/a".into());
        println!(
            "{:<34} {:>9} {:>9.1} {:>12.1} {:>12.1} {:>20}",
            name,
            sum.packets,
            sum.file_bytes as f64 / 1e6,
            median(&kb(&rss[i])) / 1024.0,
            min(&kb(&rss[i])) / 1024.0,
            peak
        );
        match peaks[i] {
            None => println!("  warning: no stats.peak_flows_tracked in exflow's JSON report"),
            Some(p) if p < *flows => {
                println!("  warning: only {p} of {flows} flows tracked at once: evictions or timeouts, the slope is not per tracked flow")
            }
            _ => {}
        }
    }
    println!();
    println!(
        "bytes per concurrently tracked flow = (RSS_{big} − RSS_{small}) / ({big} − {small}): \
         {bpf_med:.0} B (medians), {bpf_min:.0} B (minimums); constant ≈ {:.1} MiB (RSS with {small} flows)",
        s_med / 1024.0
    );
    // The slope only means "per tracked flow" if exflow says it tracked
    // them all at once; otherwise (a stub binary, evictions) no verdict.
    let all_tracked = peaks[1].is_some_and(|p| p >= big);
    let verdict = all_tracked.then_some(bpf_med <= TARGET_BYTES_PER_FLOW);
    println!(
        "target: ≤ {TARGET_BYTES_PER_FLOW:.0} B per flow plus a constant → {}",
        match verdict {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "no verdict (exflow did not report all flows tracked at once)",
        }
    );

    let case_json = |i: usize, flows: u64, file: &Path, sum: &capgen::GenSummary| {
        serde_json::json!({
            "flows": flows,
            "file": file.display().to_string(),
            "packets": sum.packets,
            "file_bytes": sum.file_bytes,
            "capture_seconds": (sum.last_ts_us - sum.first_ts_us) as f64 / 1e6,
            "max_rss_kb_runs": rss[i],
            "wall_s_runs": walls[i],
            "max_rss_kb_median": median(&kb(&rss[i])),
            "peak_flows_tracked": peaks[i],
        })
    };
    let out = serde_json::json!({
        "bench": "memory",
        "machine": measure::machine(),
        "command": format!("exflow analyze FILE --format json -o /dev/null --threads 2 --max-flows {max_flows}"),
        "rss_basis": "VmHWM of the exflow process read at its ptrace exit stop",
        "repeat": repeat,
        "small": case_json(0, small, &small_file, &small_sum),
        "big": case_json(1, big, &big_file, &big_sum),
        "bytes_per_flow_median": bpf_med,
        "bytes_per_flow_min": bpf_min,
        "constant_kb": s_med,
        "target_bytes_per_flow": TARGET_BYTES_PER_FLOW,
        "met": verdict,
    });
    let path = dir.join("memory.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap() + "\n")
        .expect("writing memory.json");
    println!();
    println!("figures written to {}", path.display());
}
