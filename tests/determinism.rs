//! The same input gives byte-identical JSON whatever `--threads` is.

mod common;

use common::*;

fn json_bytes(args: &[&str]) -> Vec<u8> {
    let out = run(args);
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "exflow {args:?}: {}",
        stderr(&out)
    );
    out.stdout
}

#[test]
fn every_capture_is_identical_across_thread_counts() {
    shared_captures();
    for path in tshark_expected().keys() {
        let one = json_bytes(&["analyze", "--format", "json", "--threads", "1", path]);
        for t in ["2", "3", "8"] {
            let other = json_bytes(&["analyze", "--format", "json", "--threads", t, path]);
            assert!(
                one == other,
                "{path}: --threads {t} differs from --threads 1"
            );
        }
    }
}

#[test]
fn all_captures_merged_are_identical_across_thread_counts_and_formats() {
    shared_captures();
    let paths: Vec<String> = tshark_expected().keys().cloned().collect();
    let mut base = vec!["analyze".to_string(), "--format".into(), "ndjson".into()];
    base.extend(paths);
    let args = |t: &str| {
        let mut a = base.clone();
        a.push("--threads".into());
        a.push(t.into());
        a
    };
    let a1 = args("1");
    let one = json_bytes(&a1.iter().map(String::as_str).collect::<Vec<_>>());
    for t in ["2", "5", "16"] {
        let at = args(t);
        let other = json_bytes(&at.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(one == other, "merged run: --threads {t} differs");
    }
    // A tight flow cap forces evictions; still deterministic.
    let mut capped = a1.clone();
    capped.extend(["--max-flows".to_string(), "64".into()]);
    let c1 = json_bytes(&capped.iter().map(String::as_str).collect::<Vec<_>>());
    let mut capped4 = capped.clone();
    let at = capped4.len() - 3;
    capped4[at] = "4".into();
    let c4 = json_bytes(&capped4.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(c1 == c4, "capped run differs across thread counts");
    let stats: serde_json::Value =
        serde_json::from_slice(c1.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap())
            .unwrap();
    assert!(
        stats["flows_evicted"].as_u64().unwrap() > 0,
        "a cap of 64 flows evicts on {} flows",
        stats["flows"]
    );
}

#[test]
fn native_reader_and_libpcap_give_the_same_report() {
    shared_captures();
    for path in tshark_expected().keys() {
        let native = json_bytes(&["analyze", "--format", "json", path]);
        let libpcap = json_bytes(&["analyze", "--format", "json", "--reader", "libpcap", path]);
        let n: serde_json::Value = serde_json::from_slice(&native).unwrap();
        let l: serde_json::Value = serde_json::from_slice(&libpcap).unwrap();
        assert_eq!(
            n["flows"], l["flows"],
            "{path}: flows differ between readers"
        );
        assert_eq!(
            n["stats"], l["stats"],
            "{path}: stats differ between readers"
        );
    }
}
