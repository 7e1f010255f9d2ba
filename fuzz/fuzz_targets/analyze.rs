//! The whole product on a capture: the bytes as a pcap/pcapng file through
//! `exflow::analysis::run` (reader, decode, defragmentation, flow tables,
//! stream reassembly, every protocol parser, correlation, verdicts) and the
//! JSON report. Checks: no panic, no worker lost, and a report is written.
#![no_main]
use exflow::analysis::run;
use exflow::pipeline::Options;
use exflow::report::write_json;
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some(src) = common::native(data, 64 << 10) else {
        return;
    };
    let opts = Options {
        threads: 1,
        ..Options::default()
    };
    let a = run(src, &opts);
    let mut out = Vec::new();
    write_json(&a, &mut out).unwrap();
    assert!(!out.is_empty());
});
