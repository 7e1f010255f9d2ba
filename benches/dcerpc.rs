//! DCE/RPC cost: exflow with and without its DCE/RPC parsers (`--no-dcerpc`)
//! on traffic without DCE/RPC (the `mixed` capture) and on a DCE/RPC-heavy
//! one (the `dcerpc` capture), in one interleaved run.
//!
//! `cargo bench --bench dcerpc`; knobs and method in BENCHMARKS.md.
//! Issue's targets: on `mixed` the parsers cost nothing measurable (the
//! with/without ratio is reported with the run-to-run spread, which is what
//! "measurable" is judged against); on `dcerpc` the run with parsers keeps
//! ≥ 80% of the packets/s of the run without them.
//! Before measuring, a small capture of the same profile is generated in
//! memory and every DCE/RPC PDU in it is checked with exflow's own
//! `parse_pdu`, so the generator cannot drift into bytes the parsers reject.

#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/measure.rs"]
mod measure;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use exflow::proto::dcerpc::{parse_pdu, CoBody};
use measure::{env_u64, median, mib, min, RunResult};

/// dcerpc with parsers ÷ dcerpc without, packets/s: at least this.
const TARGET_RATIO_DCERPC: f64 = 0.80;

struct Subject {
    name: &'static str,
    capture: usize,
    parsers: bool,
    args: Vec<OsString>,
    runs: Vec<RunResult>,
    error: Option<String>,
}

fn main() {
    let args = measure::own_args();
    measure::exit_unless_benching();
    let gen_only = args.iter().any(|a| a == "--gen-only");

    let mixed_packets = env_u64("EXFLOW_BENCH_PACKETS", 10_000_000);
    let rpc_packets = env_u64("EXFLOW_BENCH_RPC_PACKETS", 2_000_000);
    let repeat = env_u64("EXFLOW_BENCH_REPEAT", 3).max(1);
    let dir = measure::data_dir();

    self_check();
    let (mixed, mixed_sum) = capgen::ensure(
        &dir,
        capgen::Profile::Mixed {
            packets: mixed_packets,
        },
    )
    .expect("generating the mixed capture");
    let (rpc, rpc_sum) = capgen::ensure(
        &dir,
        capgen::Profile::Dcerpc {
            packets: rpc_packets,
        },
    )
    .expect("generating the dcerpc capture");
    if gen_only {
        return;
    }
    if mixed_packets < 10_000_000 || rpc_packets < 2_000_000 {
        eprintln!("note: scaled-down captures: a quick run, not the reference files");
    }
    let files = [(&mixed, &mixed_sum, "mixed"), (&rpc, &rpc_sum, "dcerpc")];
    for (f, _, _) in &files {
        measure::warm_page_cache(f).expect("reading the capture");
    }

    let exflow = measure::exflow_bin();
    if std::env::var_os("EXFLOW_BIN").is_some() {
        eprintln!(
            "note: EXFLOW_BIN overrides the exflow binary: {}",
            exflow.display()
        );
    }
    let mut subjects: Vec<Subject> = [
        ("mixed, DCE/RPC parsers on", 0, true),
        ("mixed, --no-dcerpc", 0, false),
        ("dcerpc, DCE/RPC parsers on", 1, true),
        ("dcerpc, --no-dcerpc", 1, false),
    ]
    .into_iter()
    .map(|(name, capture, parsers)| Subject {
        name,
        capture,
        parsers,
        args: analyze_args(files[capture].0, Path::new("/dev/null"), parsers),
        runs: Vec::new(),
        error: None,
    })
    .collect();

    for round in 0..repeat {
        for s in subjects.iter_mut() {
            if s.error.is_some() {
                continue;
            }
            eprint!("[{}/{}] {:<28} ", round + 1, repeat, s.name);
            match measure::run_measured_ok(&exflow, &s.args, false, measure::EXFLOW_OK) {
                Ok(r) => {
                    eprintln!("{:8.3} s  {:8.1} MiB", r.wall_s, mib(r.max_rss_kb));
                    s.runs.push(r);
                }
                Err(e) => {
                    eprintln!("FAILED\n{e}");
                    s.error = Some(e.lines().next().unwrap_or("").to_string());
                }
            }
        }
    }

    // Evidence the parsers ran: exflow's report on the dcerpc capture, with
    // and without them (not timed).
    let evidence: Vec<serde_json::Value> = [true, false]
        .iter()
        .map(|&parsers| {
            let out = dir.join(format!("dcerpc-report-{}.json", parsers as u8));
            let r = measure::run_measured_ok(
                &exflow,
                &analyze_args(&rpc, &out, parsers),
                false,
                measure::EXFLOW_OK,
            );
            let v = r
                .ok()
                .and_then(|_| std::fs::read(&out).ok())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            let _ = std::fs::remove_file(&out);
            evidence_of(v.as_ref(), parsers)
        })
        .collect();

    report(&subjects, &files, repeat, &evidence, &dir);
}

fn analyze_args(file: &Path, out: &Path, parsers: bool) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "analyze".into(),
        file.into(),
        "--format".into(),
        "json".into(),
        "-o".into(),
        out.into(),
        "--threads".into(),
        "2".into(),
    ];
    if !parsers {
        a.push("--no-dcerpc".into());
    }
    a
}

/// Hand-offs, flows per `identified_by` and per service, and `stats`.
fn evidence_of(v: Option<&serde_json::Value>, parsers: bool) -> serde_json::Value {
    let Some(v) = v else {
        return serde_json::json!({"parsers": parsers, "error": "no readable JSON report"});
    };
    let count_by = |key: &str| {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for f in v["flows"].as_array().into_iter().flatten() {
            let k = match &f[key] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "null".into(),
                o => o.to_string(),
            };
            *m.entry(k).or_default() += 1;
        }
        m
    };
    let handoffs = v["handoffs"].as_array().map(|a| a.len()).unwrap_or(0);
    let followed = v["handoffs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["followed"] == true)
        .count();
    serde_json::json!({
        "parsers": parsers,
        "handoffs": handoffs,
        "handoffs_followed": followed,
        "endpoints": v["endpoints"].as_array().map(|a| a.len()).unwrap_or(0),
        "flows_by_identified_by": count_by("identified_by"),
        "flows_by_service": count_by("service"),
        "stats": v["stats"],
    })
}

/// Generates a small dcerpc capture in memory and parses every DCE/RPC PDU
/// of every TCP stream in it with exflow's `parse_pdu`.
fn self_check() {
    let (pcap, sum) = capgen::generate_to_vec(capgen::Profile::Dcerpc { packets: 30_000 });
    // Per direction of each TCP connection: the payload, in order (the
    // generator never loses or reorders).
    let mut streams: HashMap<[u8; 12], Vec<u8>> = HashMap::new();
    let mut off = 24;
    while off + 16 <= pcap.len() {
        let caplen = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
        let fr = &pcap[off + 16..off + 16 + caplen];
        off += 16 + caplen;
        if fr[23] != 6 {
            continue; // not TCP
        }
        let ip_total = u16::from_be_bytes([fr[16], fr[17]]) as usize;
        let l4 = 14 + 20;
        let thl = (fr[l4 + 12] >> 4) as usize * 4;
        let payload = &fr[l4 + thl..14 + ip_total];
        if payload.is_empty() {
            continue;
        }
        let mut key = [0u8; 12];
        key[..8].copy_from_slice(&fr[26..34]);
        key[8..].copy_from_slice(&fr[l4..l4 + 4]);
        streams.entry(key).or_default().extend_from_slice(payload);
    }
    let mut by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut frags = 0u64;
    for s in streams.values() {
        if s[0] != 5 {
            continue; // mixed-profile filler
        }
        let mut p = 0;
        while p < s.len() {
            assert!(p + 10 <= s.len(), "truncated PDU header");
            let flen = u16::from_le_bytes([s[p + 8], s[p + 9]]) as usize;
            let pdu = parse_pdu(&s[p..p + flen])
                .unwrap_or_else(|e| panic!("self-check: parse_pdu rejects a PDU: {e:?}"));
            let name = match &pdu.body {
                CoBody::Bind(_) => "bind",
                CoBody::BindAck(b) => {
                    assert!(b.results.iter().all(|r| r.accepted()));
                    "bind_ack"
                }
                CoBody::Request(_) | CoBody::Response(_) => {
                    // Application calls are sealed (level 6); ept_map
                    // calls (156/152 bytes) are in clear, as on Windows.
                    let ept_map = matches!(&pdu.body, CoBody::Request(r) if r.opnum == 3 && flen == 156)
                        || matches!(&pdu.body, CoBody::Response(_) if flen == 152);
                    assert!(
                        pdu.stub_encrypted() || ept_map,
                        "application stubs are sealed (level 6)"
                    );
                    if matches!(pdu.body, CoBody::Request(_)) {
                        "request"
                    } else {
                        "response"
                    }
                }
                _ => "other",
            };
            if !(pdu.header.first_frag() && pdu.header.last_frag()) {
                frags += 1;
            }
            *by_type.entry(name).or_default() += 1;
            p += flen;
        }
    }
    for t in ["bind", "bind_ack", "request", "response"] {
        assert!(
            by_type.get(t).copied().unwrap_or(0) > 0,
            "self-check: no {t}"
        );
    }
    assert!(frags > 0, "self-check: no fragmented response");
    assert!(!by_type.contains_key("other"));
    eprintln!(
        "self-check: {} packets generated in memory; exflow's parse_pdu accepts all {} PDUs ({:?}; {} fragments of multi-fragment responses)",
        sum.packets,
        by_type.values().sum::<u64>(),
        by_type,
        frags
    );
}

fn report(
    subjects: &[Subject],
    files: &[(&PathBuf, &capgen::GenSummary, &str); 2],
    repeat: u64,
    evidence: &[serde_json::Value],
    dir: &Path,
) {
    println!();
    for (f, s, name) in files {
        println!(
            "{name}: {} — {} packets, {:.3} GB, {} flows",
            f.display(),
            s.packets,
            s.file_bytes as f64 / 1e9,
            s.flows
        );
    }
    println!("exflow analyze FILE --format json -o /dev/null --threads 2 [--no-dcerpc]; {repeat} run(s) each, interleaved round-robin.");
    println!();
    println!(
        "{:<28} {:>4} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9}",
        "subject", "runs", "best s", "median s", "spread", "Mpkt/s bst", "Mpkt/s med", "RSS MiB"
    );
    let mut rows = Vec::new();
    for s in subjects {
        let walls: Vec<f64> = s.runs.iter().map(|r| r.wall_s).collect();
        let packets = files[s.capture].1.packets as f64;
        let mut j = serde_json::json!({
            "name": s.name,
            "capture": files[s.capture].2,
            "dcerpc_parsers": s.parsers,
            "runs": s.runs.iter().map(|r| serde_json::json!({"wall_s": r.wall_s, "max_rss_kb": r.max_rss_kb})).collect::<Vec<_>>(),
        });
        if let Some(e) = &s.error {
            println!("{:<28} FAILED: {e}", s.name);
            j["error"] = e.as_str().into();
        } else if !walls.is_empty() {
            let (b, m) = (min(&walls), median(&walls));
            let spread = (walls.iter().copied().fold(0.0, f64::max) - b) / m;
            let rss = s.runs.iter().map(|r| r.max_rss_kb).max().unwrap_or(0);
            println!(
                "{:<28} {:>4} {:>9.3} {:>9.3} {:>8.1}% {:>10.3} {:>10.3} {:>9.1}",
                s.name,
                walls.len(),
                b,
                m,
                spread * 100.0,
                packets / b / 1e6,
                packets / m / 1e6,
                mib(rss)
            );
            j["best_wall_s"] = b.into();
            j["median_wall_s"] = m.into();
            j["spread"] = spread.into();
            j["pkts_per_s_best"] = (packets / b).into();
            j["pkts_per_s_median"] = (packets / m).into();
            j["max_rss_kb"] = rss.into();
        }
        rows.push(j);
    }

    // with ÷ without, packets/s (= wall without ÷ wall with): best vs best,
    // median vs median, and the per-round pairs (same round, adjacent runs)
    // whose range shows the noise.
    let ratio = |with: &Subject, without: &Subject| -> Option<serde_json::Value> {
        if with.error.is_some() || without.error.is_some() || with.runs.is_empty() {
            return None;
        }
        let w: Vec<f64> = with.runs.iter().map(|r| r.wall_s).collect();
        let o: Vec<f64> = without.runs.iter().map(|r| r.wall_s).collect();
        let pairs: Vec<f64> = w.iter().zip(&o).map(|(a, b)| b / a).collect();
        Some(serde_json::json!({
            "best": min(&o) / min(&w),
            "median": median(&o) / median(&w),
            "per_round": pairs,
            "per_round_min": min(&pairs),
            "per_round_max": pairs.iter().copied().fold(0.0, f64::max),
            "spread_with": (w.iter().copied().fold(0.0, f64::max) - min(&w)) / median(&w),
            "spread_without": (o.iter().copied().fold(0.0, f64::max) - min(&o)) / median(&o),
        }))
    };
    let mixed = ratio(&subjects[0], &subjects[1]);
    let rpc = ratio(&subjects[2], &subjects[3]);
    println!();
    println!("ratio = packets/s with the DCE/RPC parsers ÷ packets/s with --no-dcerpc (same run)");
    let pct = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN) * 100.0;
    let mut verdict = None;
    if let Some(m) = &mixed {
        println!(
            "mixed:  best {:.1}%, median {:.1}%, per round {:.1}–{:.1}%; run-to-run spread {:.1}% (with) / {:.1}% (without)",
            pct(m, "best"),
            pct(m, "median"),
            pct(m, "per_round_min"),
            pct(m, "per_round_max"),
            pct(m, "spread_with"),
            pct(m, "spread_without")
        );
    }
    if let Some(r) = &rpc {
        let met = r["median"].as_f64().unwrap_or(0.0) >= TARGET_RATIO_DCERPC;
        verdict = Some(met);
        println!(
            "dcerpc: best {:.1}%, median {:.1}%, per round {:.1}–{:.1}% → target ≥ {:.0}% (median): {}",
            pct(r, "best"),
            pct(r, "median"),
            pct(r, "per_round_min"),
            pct(r, "per_round_max"),
            TARGET_RATIO_DCERPC * 100.0,
            if met { "met" } else { "NOT met" }
        );
    }
    println!();
    for e in evidence {
        println!(
            "dcerpc capture, parsers {}: {} hand-offs ({} followed), {} endpoints; flows by identified_by {}; stats.flows {}, stats.packets {}",
            if e["parsers"] == true { "on " } else { "off" },
            e["handoffs"],
            e["handoffs_followed"],
            e["endpoints"],
            e["flows_by_identified_by"],
            e["stats"]["flows"],
            e["stats"]["packets"]
        );
    }
    if evidence
        .first()
        .is_some_and(|e| e["handoffs"].as_u64().unwrap_or(0) == 0)
    {
        println!(
            "warning: no hand-off in the report with parsers on: the DCE/RPC parsers did not run"
        );
    }

    let capture_json = |i: usize| {
        let (f, s, name) = files[i];
        serde_json::json!({
            "profile": name,
            "path": f.display().to_string(),
            "packets": s.packets,
            "file_bytes": s.file_bytes,
            "flows": s.flows,
            "capture_seconds": (s.last_ts_us - s.first_ts_us) as f64 / 1e6,
        })
    };
    let out = serde_json::json!({
        "bench": "dcerpc",
        "machine": measure::machine(),
        "command": "exflow analyze FILE --format json -o /dev/null --threads 2 [--no-dcerpc]",
        "repeat": repeat,
        "captures": [capture_json(0), capture_json(1)],
        "ratio_basis": "packets/s with the DCE/RPC parsers / packets/s with --no-dcerpc; best vs best, median vs median, and per interleaved round",
        "spread_basis": "(slowest - fastest) / median wall time of one subject",
        "results": rows,
        "ratio_mixed": mixed,
        "ratio_dcerpc": rpc,
        "target_dcerpc": {"min_ratio": TARGET_RATIO_DCERPC, "met_on_median": verdict},
        "evidence_dcerpc_capture": evidence,
    });
    let path = dir.join("dcerpc.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap() + "\n")
        .expect("writing dcerpc.json");
    println!();
    println!("figures written to {}", path.display());
}
