//! Issue #22, point 1: the address of an endpoint-mapper hand-off's
//! follow-up. Over ncacn_ip_tcp a client keeps the address it reached the
//! mapper on and takes only the port from the answer, while Windows writes
//! its own IPv4 address into the tower. Constructed captures (real bytes:
//! the ept_map exchange of ../shared/spec/protocols.md, examples 1, 3, 5
//! and 6, with the tower's address and port set) for an IPv6 client given
//! an IPv4 tower, a client behind a NAT or virtual address given the real
//! internal address, and a tower naming a third host; each followed, not
//! followed at all, and failed at the address it went to. Each is also run
//! through the live path, which must give what `analyze` gives.
//!
//! Only documentation addresses: 192.0.2.0/24 clients, 198.51.100.0/24
//! servers, 203.0.113.0/24 NAT and virtual addresses, 2001:db8::/32; and
//! 10.20.30.40 as the internal address behind a NAT.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::live::live_agrees;
use common::pdus::{epm_bind, epm_bind_ack, ept_map_answer_at};
use common::*;
use exflow_testkit::TcpConversation;
use serde_json::Value;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const T0: u64 = 1_795_305_697_000_000_000;
const PORT: u16 = 49160;
const NSPI: &str = "f5cc5a18-4264-101a-8c59-08002b2f8426";

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const CLIENT2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
/// The server's IPv4 address: what Windows writes into its towers.
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// Another host the tower may name.
const THIRD: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 30);
/// The address clients reach a NATed (or clustered) server at.
const NAT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);
/// The server's real address behind the NAT, which its towers name.
const INTERNAL: Ipv4Addr = Ipv4Addr::new(10, 20, 30, 40);

fn client6() -> IpAddr {
    IpAddr::V6("2001:db8:2::10".parse::<Ipv6Addr>().unwrap())
}

/// The server's IPv6 address, which a dual-stack client prefers.
fn server6() -> IpAddr {
    IpAddr::V6("2001:db8:1::10".parse::<Ipv6Addr>().unwrap())
}

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

// ---------------------------------------------------------------------------
// Building captures (`common::Cap`)
// ---------------------------------------------------------------------------

/// A bind to NSPI (example 1 with the abstract syntax replaced).
fn bind_nspi() -> Vec<u8> {
    let e = exflow::kb::INTERFACES
        .iter()
        .find(|i| i.service == "exchange-directory" && i.version.is_some())
        .expect("NSPI in the catalogue");
    let (major, minor) = e.version.unwrap();
    let mut b = epm_bind();
    b[0x20..0x30].copy_from_slice(&e.uuid.to_wire_le());
    b[0x30..0x32].copy_from_slice(&major.to_le_bytes());
    b[0x32..0x34].copy_from_slice(&minor.to_le_bytes());
    b
}

/// `client` asks the endpoint mapper it reaches at `mapper`:135 for NSPI;
/// the answer's tower names `tower`:PORT. Returns the time after.
fn ask(cap: &mut Cap, t: u64, client: IpAddr, mapper: IpAddr, tower: Ipv4Addr) -> u64 {
    let mut c = TcpConversation::new(client, 40000, mapper, 135);
    let mut frames = epm_request(&mut c);
    frames.extend([
        c.data_s2c(&ept_map_answer_at(tower, PORT)),
        c.fin_c(),
        c.fin_s(),
        c.ack(),
    ]);
    cap.seq(t, frames)
}

/// The client's connection to `server`:PORT, established, binding NSPI.
fn follow(cap: &mut Cap, t: u64, client: IpAddr, server: IpAddr) -> u64 {
    let mut c = TcpConversation::new(client, 40001, server, PORT);
    let frames = vec![
        c.syn(),
        c.syn_ack(),
        c.ack(),
        c.data_c2s(&bind_nspi()),
        c.data_s2c(&epm_bind_ack()),
        c.fin_c(),
        c.fin_s(),
        c.ack(),
    ];
    cap.seq(t, frames)
}

/// The client's SYN to `server`:PORT and its retransmissions after 1, 2
/// and 4 s (Windows' spacing), never answered.
fn unanswered(cap: &mut Cap, t: u64, client: IpAddr, server: IpAddr) {
    let mut c = TcpConversation::new(client, 40001, server, PORT);
    let syn = c.syn();
    for off in [0, 1, 3, 7] {
        cap.frames.push((T0 + t + off * SEC, syn.clone()));
    }
}

/// Another client's connection 10 s on, so the capture goes on long after
/// the answer (a hand-off answered less than a second before the end
/// cannot be judged).
fn later_traffic(cap: &mut Cap) {
    let mut c = TcpConversation::new(v4(CLIENT2), 40500, v4(SERVER), 445);
    let frames = vec![c.syn(), c.syn_ack(), c.ack()];
    cap.seq(10 * SEC, frames);
}

/// What the client does after the answer.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// Connects to this address and binds NSPI.
    Follows(IpAddr),
    /// Its SYNs to this address are never answered.
    Blocked(IpAddr),
    /// Nothing.
    Nothing,
}

/// A capture: `client` asks the mapper at `mapper`, the tower names
/// `tower`, then the client does `then`.
fn capture(name: &str, client: IpAddr, mapper: IpAddr, tower: Ipv4Addr, then: Then) -> String {
    let mut cap = Cap::default();
    let t = ask(&mut cap, 0, client, mapper, tower) + 3 * MS;
    match then {
        Then::Follows(at) => {
            follow(&mut cap, t, client, at);
        }
        Then::Blocked(at) => unanswered(&mut cap, t, client, at),
        Then::Nothing => {}
    }
    later_traffic(&mut cap);
    cap.write(name)
}

// ---------------------------------------------------------------------------
// Reading the report
// ---------------------------------------------------------------------------

/// The report's one hand-off.
fn handoff(r: &Value) -> &Value {
    let hs = r["handoffs"].as_array().expect("handoffs");
    assert_eq!(hs.len(), 1, "{:#}", r["handoffs"]);
    &hs[0]
}

/// The flow to `server`:PORT.
fn follow_up_flow<'a>(r: &'a Value, server: &IpAddr) -> &'a Value {
    r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["server"] == server.to_string() && f["server_port"] == PORT)
        .unwrap_or_else(|| panic!("no flow to {server}:{PORT}: {:#}", r["flows"]))
}

/// (kind, server, port, evidence types) of every finding.
fn findings(r: &Value) -> Vec<(String, String, u64, Vec<String>)> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["server"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap(),
                f["evidence"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["type"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

const AT_MAPPER: &str = "the address the client reached the mapper on, not the tower's";

/// The JSON report, the same whatever the number of worker threads.
fn report(path: &str, code: i32) -> Value {
    let one = run(&["analyze", "--format", "json", "--threads", "1", path]);
    let three = run(&["analyze", "--format", "json", "--threads", "3", path]);
    assert_eq!(one.status.code(), Some(code), "{}", stderr(&one));
    assert_eq!(one.stdout, three.stdout, "{path}: --threads 1 and 3 differ");
    let r: Value = serde_json::from_slice(&one.stdout).unwrap();
    live_agrees(path, &r);
    r
}

// ---------------------------------------------------------------------------
// The live path
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------

/// A dual-stack client reached the mapper over IPv6; Windows' tower names
/// its IPv4 address; the client connects to the port at the mapper's IPv6
/// address. Followed, at the mapper's address, and the follow-up is
/// labelled by the hand-off.
#[test]
fn an_ipv6_client_given_an_ipv4_tower_follows_at_the_mappers_ipv6_address() {
    let p = capture(
        "addr-v6-followed.pcap",
        client6(),
        server6(),
        SERVER,
        Then::Follows(server6()),
    );
    let r = report(&p, 0);
    let h = handoff(&r);
    assert_eq!(h["client"], client6().to_string());
    assert_eq!(h["server"], "198.51.100.10", "server stays the tower's");
    assert_eq!(h["mapper"], server6().to_string());
    assert_eq!(h["interface"]["uuid"], NSPI);
    assert_eq!(h["followed"], true);
    assert_eq!(h["outcome"]["kind"], "established");
    assert_eq!(h["outcome"]["client_port"], 40001);
    assert_eq!(h["matched"], "mapper-address");
    assert_eq!(h["matched_address"], server6().to_string());
    let f = follow_up_flow(&r, &server6());
    assert_eq!(f["identified_by"], "epm-handoff");
    assert_eq!(f["service"], "exchange-directory");
    assert_eq!(f["handoff"]["other_client"], false);
    assert!(findings(&r).is_empty(), "{:#}", r["findings"]);
    let row = r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["port"] == PORT)
        .expect("a verdict row for the follow-up");
    assert_eq!(row["verdict"], "working");
    assert_eq!(row["server"], server6().to_string());

    let t = text_joined(&p);
    assert!(
        t.contains(&format!(" ms at {}, {AT_MAPPER}", server6())),
        "{t}"
    );
}

/// The same client never connects anywhere: not followed, at neither
/// address; from the packets alone, the hand-off never followed is the
/// trace of a block, reported at the tower's address as before.
#[test]
fn an_ipv6_client_that_never_connects_is_still_not_followed() {
    let p = capture(
        "addr-v6-nothing.pcap",
        client6(),
        server6(),
        SERVER,
        Then::Nothing,
    );
    let r = report(&p, 1);
    let h = handoff(&r);
    assert_eq!(h["followed"], false);
    assert_eq!(h["outcome"]["kind"], "no-attempt");
    assert_eq!(h["matched"], Value::Null);
    assert_eq!(h["matched_address"], Value::Null);
    assert_eq!(
        findings(&r),
        vec![(
            "blocked".to_string(),
            "198.51.100.10".to_string(),
            u64::from(PORT),
            vec!["handoff-unfulfilled".to_string()]
        )]
    );
    let t = text_joined(&p);
    assert!(
        t.contains("NOT FOLLOWED: no connection attempt seen"),
        "{t}"
    );
    assert!(!t.contains(AT_MAPPER), "{t}");
}

/// The client's SYNs to the port at the mapper's IPv6 address die: the
/// hand-off failed there (not "nothing tried"), and the block is reported
/// where it happened.
#[test]
fn an_ipv6_client_blocked_at_the_mappers_address_fails_there() {
    let p = capture(
        "addr-v6-blocked.pcap",
        client6(),
        server6(),
        SERVER,
        Then::Blocked(server6()),
    );
    let r = report(&p, 1);
    let h = handoff(&r);
    assert_eq!(h["followed"], false);
    assert_eq!(h["outcome"]["kind"], "syn-unanswered");
    assert_eq!(h["outcome"]["syns"], 4);
    assert_eq!(h["matched"], "mapper-address");
    assert_eq!(h["matched_address"], server6().to_string());
    assert_eq!(
        follow_up_flow(&r, &server6())["identified_by"],
        "epm-handoff"
    );
    assert_eq!(
        findings(&r),
        vec![(
            "blocked".to_string(),
            server6().to_string(),
            u64::from(PORT),
            vec!["syn-unanswered".to_string()]
        )]
    );
    let t = text_joined(&p);
    assert!(
        t.contains(&format!(
            "NOT FOLLOWED: SYN unanswered (4 SYNs in 1 attempt) at {}, {AT_MAPPER}",
            server6()
        )),
        "{t}"
    );
}

/// A client reaches the server at a NAT (or virtual) address; the tower
/// names the server's real internal address, which the client cannot
/// reach; it connects to the port at the NAT address.
#[test]
fn a_natted_client_follows_at_the_address_it_reached_the_mapper_on() {
    let p = capture(
        "addr-nat-followed.pcap",
        v4(CLIENT),
        v4(NAT),
        INTERNAL,
        Then::Follows(v4(NAT)),
    );
    let r = report(&p, 0);
    let h = handoff(&r);
    assert_eq!(h["server"], "10.20.30.40");
    assert_eq!(h["mapper"], "203.0.113.80");
    assert_eq!(h["outcome"]["kind"], "established");
    assert_eq!(h["followed"], true);
    assert_eq!(h["matched"], "mapper-address");
    assert_eq!(h["matched_address"], "203.0.113.80");
    assert_eq!(follow_up_flow(&r, &v4(NAT))["identified_by"], "epm-handoff");
    assert!(findings(&r).is_empty(), "{:#}", r["findings"]);
    let t = text_joined(&p);
    assert!(t.contains(&format!("at 203.0.113.80, {AT_MAPPER}")), "{t}");

    // Nothing at either address: not followed, as before.
    let p = capture(
        "addr-nat-nothing.pcap",
        v4(CLIENT),
        v4(NAT),
        INTERNAL,
        Then::Nothing,
    );
    let r = report(&p, 1);
    let h = handoff(&r);
    assert_eq!(h["outcome"]["kind"], "no-attempt");
    assert_eq!(h["matched"], Value::Null);
    assert_eq!(
        findings(&r),
        vec![(
            "blocked".to_string(),
            "10.20.30.40".to_string(),
            u64::from(PORT),
            vec!["handoff-unfulfilled".to_string()]
        )]
    );
}

/// A capture filter that keeps the follow-up at the NAT address but would
/// drop it at the tower's: with nothing seen, whether the client tried
/// cannot be told (it may have gone to either), so not-captured; a
/// follow-up seen at the NAT address is followed whatever the filter.
#[test]
fn a_filter_dropping_either_address_leaves_an_unseen_follow_up_not_captured() {
    let filter = "tcp port 135 or host 203.0.113.80 or host 192.0.2.11";
    let nothing = capture(
        "addr-nat-filter-nothing.pcap",
        v4(CLIENT),
        v4(NAT),
        INTERNAL,
        Then::Nothing,
    );
    let r = analyze_json(&["--filter", filter, &nothing], &[0]);
    let h = handoff(&r);
    assert_eq!(h["outcome"]["kind"], "not-captured");
    assert_eq!(h["matched"], Value::Null);
    assert_eq!(r["limits"][0]["handoffs_not_captured"], 1);
    assert!(findings(&r).is_empty(), "{:#}", r["findings"]);

    let followed = capture(
        "addr-nat-filter-followed.pcap",
        v4(CLIENT),
        v4(NAT),
        INTERNAL,
        Then::Follows(v4(NAT)),
    );
    let r = analyze_json(&["--filter", filter, &followed], &[0]);
    let h = handoff(&r);
    assert_eq!(h["outcome"]["kind"], "established");
    assert_eq!(h["matched"], "mapper-address");
    assert_eq!(r["limits"][0]["handoffs_not_captured"], 0);
}

/// The tower names another host than the mapper's: the client connects
/// there, and that is the tower's address matching (the text says nothing
/// more). Nothing there or at the mapper: not followed, as before.
#[test]
fn a_tower_naming_a_third_host_is_followed_there() {
    let p = capture(
        "addr-third-followed.pcap",
        v4(CLIENT),
        v4(SERVER),
        THIRD,
        Then::Follows(v4(THIRD)),
    );
    let r = report(&p, 0);
    let h = handoff(&r);
    assert_eq!(h["server"], "198.51.100.30");
    assert_eq!(h["mapper"], "198.51.100.10");
    assert_eq!(h["outcome"]["kind"], "established");
    assert_eq!(h["matched"], "tower-address");
    assert_eq!(h["matched_address"], "198.51.100.30");
    assert_eq!(
        follow_up_flow(&r, &v4(THIRD))["identified_by"],
        "epm-handoff"
    );
    assert!(findings(&r).is_empty(), "{:#}", r["findings"]);
    let t = text_joined(&p);
    assert!(
        t.contains("via ept_map over ncacn_ip_tcp followed after "),
        "{t}"
    );
    assert!(!t.contains(AT_MAPPER), "{t}");

    let p = capture(
        "addr-third-nothing.pcap",
        v4(CLIENT),
        v4(SERVER),
        THIRD,
        Then::Nothing,
    );
    let r = report(&p, 1);
    let h = handoff(&r);
    assert_eq!(h["outcome"]["kind"], "no-attempt");
    assert_eq!(h["matched"], Value::Null);
    assert_eq!(
        findings(&r),
        vec![(
            "blocked".to_string(),
            "198.51.100.30".to_string(),
            u64::from(PORT),
            vec!["handoff-unfulfilled".to_string()]
        )]
    );
}

/// A tower naming 0.0.0.0 (Samba) means the mapper: one address, the
/// tower's by definition (the hand-off's `server` is the mapper's).
#[test]
fn a_tower_naming_no_address_is_followed_at_the_mapper_as_the_towers() {
    let p = capture(
        "addr-unspecified-followed.pcap",
        v4(CLIENT),
        v4(SERVER),
        Ipv4Addr::UNSPECIFIED,
        Then::Follows(v4(SERVER)),
    );
    let r = report(&p, 0);
    let h = handoff(&r);
    assert_eq!(h["server"], "198.51.100.10");
    assert_eq!(h["outcome"]["kind"], "established");
    assert_eq!(h["matched"], "tower-address");
    assert_eq!(h["matched_address"], "198.51.100.10");
    assert!(!text_joined(&p).contains(AT_MAPPER));
}
