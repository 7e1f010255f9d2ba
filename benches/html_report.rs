//! The HTML report on a capture of a million flows (#21 point 1): the
//! page's size (target ≤ 5 MB), the time to render it, and the time headless
//! Chromium takes to load it and run its script (target ≤ 5 s), with the
//! page's own check that the script ran without error (`data-ready`,
//! `data-errors`).
//!
//! `cargo bench --bench html_report` over the flow-heavy capture
//! (`capgen::Profile::FlowHeavy`, ~1.05 M flows at the default 10 M
//! packets; `EXFLOW_BENCH_HEAVY_PACKETS` changes it); `EXFLOW_BENCH_REPEAT`
//! browser loads (default 3); `EXFLOW_BIN` another exflow build. Needs
//! `chromium` (Debian's package).

#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/measure.rs"]
mod measure;

use std::ffi::OsString;
use std::process::Command;
use std::time::Instant;

use measure::{env_u64, mib};

fn main() {
    let args = measure::own_args();
    measure::exit_unless_benching();
    let dir = measure::data_dir();
    let profile = capgen::Profile::FlowHeavy {
        packets: env_u64("EXFLOW_BENCH_HEAVY_PACKETS", 10_000_000),
    };
    let (file, sum) = capgen::ensure(&dir, profile).expect("generating the capture");
    sum.print_mix();
    if args.iter().any(|a| a == "--gen-only") {
        return;
    }
    assert!(
        measure::available("chromium"),
        "chromium is needed (apt-get install chromium)"
    );
    let exflow = measure::exflow_bin();
    let page = dir.join("report.html");
    let run: Vec<OsString> = vec![
        "analyze".into(),
        file.as_os_str().into(),
        "--format".into(),
        "html".into(),
        "-o".into(),
        page.as_os_str().into(),
        "--threads".into(),
        "2".into(),
    ];
    std::env::set_var("EXFLOW_TIMING", "1");
    measure::warm_page_cache(&file).expect("reading the capture");
    let r = measure::run_measured_ok(&exflow, &run, false, measure::EXFLOW_OK)
        .unwrap_or_else(|e| panic!("{e}"));
    let size = std::fs::metadata(&page).map(|m| m.len()).unwrap_or(0);
    println!(
        "exflow analyze --format html over {} ({} packets): {:.2} s, peak RSS {:.1} MiB",
        file.display(),
        sum.packets,
        r.wall_s,
        mib(r.max_rss_kb)
    );
    for line in String::from_utf8_lossy(&r.stderr).lines() {
        if let Some(stage) = line.strip_prefix("timing: ") {
            println!("         {stage}");
        }
    }
    println!(
        "page: {:.2} MB (target ≤ 5 MB: {})",
        size as f64 / 1e6,
        if size <= 5_000_000 { "met" } else { "NOT met" }
    );
    let url = format!("file://{}", page.display());
    let mut loads = Vec::new();
    for _ in 0..env_u64("EXFLOW_BENCH_REPEAT", 3) {
        let t = Instant::now();
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--dump-dom",
                &url,
            ])
            .output()
            .expect("running chromium");
        let secs = t.elapsed().as_secs_f64();
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(
            dom.contains("data-ready=\"1\"") && !dom.contains("data-errors="),
            "the page's script did not run cleanly"
        );
        loads.push(secs);
    }
    let median = measure::median(&loads);
    println!(
        "chromium --headless --dump-dom (load, script, serialize): median {median:.2} s, min {:.2} s over {} runs (target ≤ 5 s: {})",
        measure::min(&loads),
        loads.len(),
        if median <= 5.0 { "met" } else { "NOT met" }
    );
}
