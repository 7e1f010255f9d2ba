//! Issue #23: ICMP errors quoting flows that never existed, sent as fast as
//! a capture can hold them, create no state (counted in
//! `stats.icmp_unmatched`), and the one quoting a real flow still becomes
//! that flow's evidence.

mod common;

#[allow(dead_code)] // each test uses one of the floods
#[path = "support/hostile_floods.rs"]
mod floods;

use common::*;

const ERRORS: u32 = 500_000;

#[test]
fn icmp_errors_quoting_unknown_flows_hold_nothing_and_a_real_one_still_counts() {
    let p = tmp_path("hostile-icmp.pcap");
    floods::write_icmp(&p, ERRORS).unwrap();
    let r = analyze_json(&[path_str(&p)], &[0, 1]);
    let s = &r["stats"];
    assert_eq!(s["icmp_unmatched"].as_u64().unwrap(), u64::from(ERRORS));
    assert_eq!(
        s["flows"].as_u64().unwrap(),
        1,
        "an unmatched error made a flow"
    );
    assert_eq!(s["peak_flows_tracked"].as_u64().unwrap(), 1);
    let f = &r["flows"][0];
    assert_eq!(f["client"], "192.0.2.10");
    assert_eq!(f["icmp_error_count"], 1);
    assert_eq!(f["icmp_errors"][0]["code"], 13);
    assert_eq!(f["icmp_errors"][0]["sender"], "203.0.113.1");
    let _ = std::fs::remove_file(&p);
}
