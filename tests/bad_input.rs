//! Bad input gets one clear error naming the file; what was read before a
//! corruption is still analyzed and the exit code says the result is partial.

mod common;

use common::*;

const DEMO: &str = "pcaps/dyn-drop/client-tap.pcap";

/// Byte offsets of every record header in a classic little-endian pcap file.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offs = Vec::new();
    let mut off = 24;
    while off + 16 <= bytes.len() {
        offs.push(off);
        let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + caplen;
    }
    offs
}

fn demo_bytes() -> Vec<u8> {
    std::fs::read(crate_root().join(DEMO)).unwrap()
}

fn write_tmp(name: &str, bytes: &[u8]) -> String {
    let p = tmp_path(name);
    std::fs::write(&p, bytes).unwrap();
    path_str(&p).to_string()
}

fn expect_error(args: &[&str], needle_file: &str, needle_msg: &str) {
    let mut all = vec!["analyze"];
    all.extend_from_slice(args);
    let out = run(&all);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "exflow {all:?}: {err}");
    assert!(out.stdout.is_empty(), "no report on a fatal error");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one clear error line, got: {err}");
    assert!(lines[0].contains(needle_file), "names the file: {err}");
    assert!(
        lines[0].to_lowercase().contains(needle_msg),
        "says '{needle_msg}': {err}"
    );
}

#[test]
fn missing_file() {
    expect_error(
        &["/nonexistent/x.pcap"],
        "/nonexistent/x.pcap",
        "no such file",
    );
}

#[test]
fn random_bytes_and_text_are_not_captures() {
    let mut seed = 0x1234_5678u32;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as u8
        })
        .collect();
    let r = write_tmp("random.bin", &random);
    expect_error(&[&r], &r, "not a pcap or pcapng");
    let t = write_tmp("notes.txt", b"<!DOCTYPE html>\nthis is not a capture\n");
    expect_error(&[&t], &t, "not a pcap or pcapng");
}

#[test]
fn empty_file() {
    let e = write_tmp("empty.pcap", b"");
    expect_error(&[&e], &e, "empty");
}

#[test]
fn directory_without_captures() {
    let d = tmp_path("nocaps");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("readme.txt"), "hello").unwrap();
    let ds = path_str(&d).to_string();
    let out = run(&["analyze", &ds]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&ds) && stderr(&out).contains("no pcap or pcapng"));
}

#[test]
fn unsupported_link_type() {
    let mut bytes = demo_bytes();
    bytes[20..24].copy_from_slice(&147u32.to_le_bytes()); // LINKTYPE_USER0
    let p = write_tmp("user0.pcap", &bytes);
    expect_error(&[&p], &p, "link type");
}

#[test]
fn invalid_filter() {
    let out = run(&["analyze", "--filter", "tcp port banana", DEMO]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tcp port banana"), "{}", stderr(&out));
}

#[test]
fn truncated_last_record_still_reports_everything_before_it() {
    let full = demo_bytes();
    let n = record_offsets(&full).len() as u64;
    let cut = &full[..full.len() - 10];
    let p = write_tmp("truncated.pcap", cut);
    let out = run(&["analyze", "--format", "json", &p]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&p) && err.contains("truncated") && err.contains("byte"),
        "{err}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["inputs"][0]["packets"].as_u64().unwrap(), n - 1);
    assert_eq!(report["stats"]["packets"].as_u64().unwrap(), n - 1);
    assert!(report["inputs"][0]["problem"]["offset"].as_u64().unwrap() > 0);
}

#[test]
fn corrupt_record_length_mid_file_names_the_offset() {
    let mut bytes = demo_bytes();
    let offs = record_offsets(&bytes);
    let bad = offs[offs.len() / 2];
    bytes[bad + 8..bad + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let p = write_tmp("corrupt.pcap", &bytes);
    let out = run(&["analyze", "--format", "json", &p]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&p) && err.contains(&format!("byte {bad}")),
        "{err}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["inputs"][0]["packets"].as_u64().unwrap(),
        (offs.len() / 2) as u64
    );
    assert_eq!(
        report["inputs"][0]["problem"]["offset"].as_u64().unwrap(),
        bad as u64
    );
}

#[test]
fn a_good_file_beside_a_corrupt_one_is_analyzed_in_full() {
    let full = demo_bytes();
    let p = write_tmp("truncated2.pcap", &full[..full.len() / 2]);
    let report = analyze_json(&[&p, DEMO], &[3]);
    let inputs = report["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    assert!(inputs[0]["problem"].is_object());
    assert!(inputs[1]["problem"].is_null());
    assert_eq!(
        inputs[1]["packets"].as_u64().unwrap(),
        record_offsets(&full).len() as u64
    );
}

#[test]
fn stdin_reads_a_capture() {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = exflow()
        .args(["analyze", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&demo_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    // The demo capture has blocked ports: exit 1 (findings), not 2 or 3.
    assert_eq!(out.status.code(), Some(1));
    let from_stdin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let from_file = analyze_json(&[DEMO], &[0, 1]);
    assert_eq!(from_stdin["flows"], from_file["flows"]);
    assert_eq!(from_stdin["inputs"][0]["path"], "-");
}

/// `-o -` is standard output, as `-` is standard input for captures: for
/// every command that writes a file, the same bytes as without `-o`, and no
/// file named `-` (which `-o -` used to create).
#[test]
fn dash_as_output_is_standard_output() {
    let dir = tmp_path("dash-output");
    std::fs::create_dir_all(&dir).unwrap();
    let demo = crate_root().join(DEMO);
    let demo = path_str(&demo);
    let baseline = tmp_path("dash-output-baseline.json");
    let o = run(&["baseline", demo, "-o", path_str(&baseline)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let baseline = path_str(&baseline);
    let commands: [&[&str]; 6] = [
        &["analyze", "--format", "json", demo],
        &["analyze", "--format", "text", demo],
        &["baseline", demo],
        &["baseline", "merge", baseline, baseline],
        &["policy", "init", "--profile", "exchange2000-mapi-clients"],
        &["rules", baseline],
    ];
    for args in commands {
        let plain = exflow().current_dir(&dir).args(args).output().unwrap();
        let dashed = exflow()
            .current_dir(&dir)
            .args(args)
            .args(["-o", "-"])
            .output()
            .unwrap();
        assert!(
            !plain.stdout.is_empty(),
            "exflow {args:?}: {}",
            stderr(&plain)
        );
        assert_eq!(dashed.status.code(), plain.status.code(), "exflow {args:?}");
        assert_eq!(dashed.stdout, plain.stdout, "exflow {args:?} -o -");
        assert!(
            !dir.join("-").exists(),
            "exflow {args:?} -o - wrote a file named -"
        );
    }
}
