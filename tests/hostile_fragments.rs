//! Issue #23: 1,000,000 IPv4 first fragments that are never completed stay
//! within the defragmenter's caps (counted), and a datagram completed after
//! them is still reassembled.

mod common;

#[allow(dead_code)] // each test uses one of the floods
#[path = "support/hostile_floods.rs"]
mod floods;

use common::*;

const FRAGMENTS: u32 = 1_000_000;

#[test]
fn a_million_fragments_never_completed_stay_capped_and_a_real_datagram_still_reassembles() {
    let p = tmp_path("hostile-fragments.pcap");
    floods::write_fragments(&p, FRAGMENTS).unwrap();
    let r = analyze_json(&[path_str(&p)], &[0, 1]);
    let f = &r["stats"]["fragments"];
    assert_eq!(
        f["fragments_seen"].as_u64().unwrap(),
        u64::from(FRAGMENTS) + 2
    );
    assert_eq!(f["datagrams_reassembled"].as_u64().unwrap(), 1);
    // Far more incomplete datagrams than the defragmenter holds: most were
    // dropped to make room, and counted.
    assert!(f["dropped_cap"].as_u64().unwrap() > u64::from(FRAGMENTS) / 2);
    let real_flow = r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["client"] == floods::REAL_CLIENT.to_string() && x["server_port"] == 53);
    assert!(real_flow, "the completed datagram made no flow");
    let _ = std::fs::remove_file(&p);
}
