//! Constructed captures for every kind of verdict evidence (issue #5,
//! acceptance point 7): unanswered SYNs, resets (forged or the host's own),
//! ICMP unreachables, hand-offs never followed, refused COTP connections,
//! unanswered UDP requests, drops measured between two taps; the policy
//! verdicts and exit codes; every built-in profile; and the generated
//! firewall rules, loaded by `nft -c` and `iptables-restore --test`.
//!
//! Only documentation addresses: 192.0.2.0/24 clients, 198.51.100.0/24
//! servers, 203.0.113.0/24 firewalls and others, 2001:db8::/32.

mod common;

use common::pdus::{epm_bind, epm_bind_ack, hex};

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use exflow::packet::tcp_flags::{ACK, RST, SYN};
use exflow_testkit::{Frame, TcpConversation};
use serde_json::{json, Value};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const T0: u64 = 1_795_305_697_000_000_000;

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const CLIENT2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const DC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
const FIREWALL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const NSPI: &str = "f5cc5a18-4264-101a-8c59-08002b2f8426";

// ---------------------------------------------------------------------------
// Building captures
// ---------------------------------------------------------------------------

/// Frames at times relative to T0, written sorted.
#[derive(Default, Clone)]
struct Cap {
    frames: Vec<(u64, Vec<u8>)>,
}

impl Cap {
    fn new() -> Self {
        Cap::default()
    }

    /// A frame `t` ns after T0.
    fn at(&mut self, t: u64, f: Vec<u8>) {
        self.frames.push((T0 + t, f));
    }

    /// Frames one millisecond apart from `t` on; returns the time after.
    fn seq(&mut self, mut t: u64, frames: Vec<Vec<u8>>) -> u64 {
        for f in frames {
            self.at(t, f);
            t += MS;
        }
        t
    }

    fn write(&self, name: &str) -> String {
        write_pcap(name, &self.frames)
    }
}

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn conv(client: Ipv4Addr, cport: u16, server: Ipv4Addr, sport: u16) -> TcpConversation {
    TcpConversation::new(v4(client), cport, v4(server), sport)
}

/// A SYN-ACK with the given TTL and IP ID (what the host normally shows).
fn syn_ack_with(c: &mut TcpConversation, ttl: u8, ip_id: u16) -> Vec<u8> {
    c.next_s = c.isn_s;
    let f = c.s2c().flags(SYN | ACK).ttl(ttl).ip_id(ip_id).build();
    c.next_s = c.isn_s.wrapping_add(1);
    f
}

/// Handshake (SYN, SYN-ACK, ACK), the server's answer with TTL 64.
fn handshake(cap: &mut Cap, t: u64, c: &mut TcpConversation) -> u64 {
    let f = vec![c.syn(), c.syn_ack(), c.ack()];
    cap.seq(t, f)
}

/// A SYN and its retransmissions after 1, 2 and 4 s (Windows' spacing).
fn unanswered_syns(cap: &mut Cap, t: u64, c: &mut TcpConversation) -> u64 {
    let syn = c.syn();
    for off in [0, 1, 3, 7] {
        cap.at(t + off * SEC, syn.clone());
    }
    t + 7 * SEC
}

/// A bind to the catalogue interface of `service` (Example 1 with the
/// abstract syntax replaced).
fn bind_of(service: &str) -> Vec<u8> {
    let e = exflow::kb::INTERFACES
        .iter()
        .find(|i| i.service == service && i.version.is_some())
        .unwrap_or_else(|| panic!("no catalogue interface for {service}"));
    let (major, minor) = e.version.unwrap();
    let mut b = epm_bind();
    b[0x20..0x30].copy_from_slice(&e.uuid.to_wire_le());
    b[0x30..0x32].copy_from_slice(&major.to_le_bytes());
    b[0x32..0x34].copy_from_slice(&minor.to_le_bytes());
    b
}

/// Example 6 (address floor 0.0.0.0: the mapper itself) naming NSPI on
/// TCP `port`.
fn ept_map_answer(port: u16) -> Vec<u8> {
    let mut b = hex("05 00 02 03 10 00 00 00 98 00 00 00 01 00 00 00
         80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00
         04 00 00 00 00 00 00 00 01 00 00 00 03 00 00 00
         4b 00 00 00 4b 00 00 00 05 00 13 00 0d 18 5a cc
         f5 64 42 1a 10 8c 59 08 00 2b 2f 84 26 38 00 02
         00 00 00 13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8
         08 00 2b 10 48 60 02 00 02 00 00 00 01 00 0b 02
         00 00 00 01 00 07 02 00 13 85 01 00 09 04 00 c0
         a8 00 02 00 00 00 00 00");
    b[0x8f..0x93].copy_from_slice(&[0, 0, 0, 0]);
    let at = b
        .windows(5)
        .position(|w| w == [0x07, 0x02, 0x00, 0x13, 0x85])
        .expect("the TCP port floor");
    b[at + 3..at + 5].copy_from_slice(&port.to_be_bytes());
    b
}

/// A client asks the mapper on `server`:135 for NSPI and is told `port`.
fn epm_handoff(cap: &mut Cap, t: u64, client: Ipv4Addr, server: Ipv4Addr, port: u16) -> u64 {
    let mut c = conv(client, 40000, server, 135);
    let mut frames = epm_request(&mut c);
    frames.extend([
        c.data_s2c(&ept_map_answer(port)),
        c.fin_c(),
        c.fin_s(),
        c.ack(),
    ]);
    cap.seq(t, frames)
}

// ---------------------------------------------------------------------------
// Reading the report
// ---------------------------------------------------------------------------

fn findings(r: &Value) -> &Vec<Value> {
    r["findings"].as_array().expect("findings array")
}

fn finding<'a>(r: &'a Value, kind: &str, server: &str, proto: &str, port: u16) -> &'a Value {
    findings(r)
        .iter()
        .find(|f| {
            f["kind"] == kind && f["server"] == server && f["proto"] == proto && f["port"] == port
        })
        .unwrap_or_else(|| {
            panic!(
                "no {kind} finding for {server} {proto}/{port}; findings:\n{}",
                serde_json::to_string_pretty(&r["findings"]).unwrap()
            )
        })
}

/// (server, proto, port) of every finding of `kind`.
fn of_kind(r: &Value, kind: &str) -> BTreeSet<(String, String, u64)> {
    findings(r)
        .iter()
        .filter(|f| f["kind"] == kind)
        .map(|f| {
            (
                f["server"].as_str().unwrap().to_string(),
                f["proto"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn key(server: &str, proto: &str, port: u64) -> (String, String, u64) {
    (server.to_string(), proto.to_string(), port)
}

/// The first evidence of `type` in a finding.
fn evidence<'a>(f: &'a Value, ty: &str) -> &'a Value {
    f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} evidence in {f:#}"))
}

fn exit_code(args: &[&str]) -> (i32, String, String) {
    let o = run(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr(&o),
    )
}

fn write_policy(name: &str, v: &Value) -> String {
    let p = tmp_path(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    path_str(&p).to_string()
}

// ---------------------------------------------------------------------------
// 1. SYN unanswered
// ---------------------------------------------------------------------------

#[test]
fn unanswered_syns_are_blocked_with_their_retransmissions() {
    let mut cap = Cap::new();
    let mut c = conv(CLIENT, 50000, SERVER, 49155);
    unanswered_syns(&mut cap, 0, &mut c);
    // A lone SYN answered by nothing, but the capture goes on for 5 s.
    let mut lone = conv(CLIENT, 50001, SERVER, 6004);
    cap.at(SEC, lone.syn());
    // Something working until 8 s, then a last SYN 0.5 s before the end.
    let mut ok = conv(CLIENT, 50002, SERVER, 445);
    handshake(&mut cap, 6 * SEC, &mut ok);
    let mut late = conv(CLIENT, 50003, SERVER, 3268);
    cap.at(8 * SEC, late.syn());
    let mut tail = conv(CLIENT2, 50004, SERVER, 445);
    handshake(&mut cap, 8 * SEC + 500 * MS, &mut tail);
    let p = cap.write("syn-unanswered.pcap");
    let r = analyze_json(&[&p], &[1]);

    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 49155);
    assert_eq!(f["confidence"], "high");
    let e = evidence(f, "syn-unanswered");
    assert_eq!(e["syns"], 4);
    assert_eq!(e["retransmissions"], 3);
    assert_eq!(e["client"], "192.0.2.10");
    assert_eq!(e["client_port"], 50000);
    assert_eq!(e["gaps_ms"], json!([1000.0, 2000.0, 4000.0]));

    // One SYN, then 7 s of capture: blocked, with less confidence.
    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 6004);
    assert_eq!(evidence(f, "syn-unanswered")["syns"], 1);
    assert_eq!(f["confidence"], "medium");

    // A single SYN less than 3 s before the end proves nothing.
    assert_eq!(
        of_kind(&r, "blocked"),
        BTreeSet::from([
            key("198.51.100.10", "tcp", 49155),
            key("198.51.100.10", "tcp", 6004)
        ])
    );
    assert!(
        !findings(&r).iter().any(|f| f["port"] == 3268),
        "a SYN just before the end is no evidence: {:#}",
        r["findings"]
    );
}

// ---------------------------------------------------------------------------
// 2. Resets: forged by a firewall, or the host's own
// ---------------------------------------------------------------------------

#[test]
fn resets_are_judged_by_the_hosts_ttl_and_ip_id() {
    let mut cap = Cap::new();
    // The host's own answers: TTL 63, IP ID 0 (Linux with DF).
    for (k, cport) in [40001u16, 40002].into_iter().enumerate() {
        let mut c = conv(CLIENT, cport, SERVER, 135);
        let frames = vec![c.syn(), syn_ack_with(&mut c, 63, 0), c.ack()];
        cap.seq(k as u64 * 100 * MS, frames);
    }
    // (a) A reset with TTL 64 and a counter IP ID: forged on the way.
    let mut a = conv(CLIENT, 40010, SERVER, 49155);
    let frames = vec![
        a.syn(),
        a.s2c().flags(RST | ACK).ttl(64).ip_id(0x1234).build(),
    ];
    cap.seq(SEC, frames);
    // (b) A reset that looks like the host's own answers: port closed.
    let mut b = conv(CLIENT, 40011, SERVER, 49156);
    let frames = vec![b.syn(), b.s2c().flags(RST | ACK).ttl(63).ip_id(0).build()];
    cap.seq(2 * SEC, frames);
    // (c) A reset from a host never seen otherwise.
    let other = Ipv4Addr::new(198, 51, 100, 99);
    let mut c = conv(CLIENT, 40012, other, 1025);
    let frames = vec![c.syn(), c.rst_s()];
    cap.seq(3 * SEC, frames);
    let p = cap.write("rst.pcap");
    let r = analyze_json(&[&p], &[1]);

    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 49155);
    let e = evidence(f, "rst");
    assert_eq!(e["forged"], true);
    assert_eq!(e["ttl"], 64);
    assert_eq!(e["host_ttls"], json!([63]));
    assert_eq!(e["host_ip_id"], "zero");
    assert_eq!(e["confidence"], "high");
    assert_eq!(f["confidence"], "high");

    let f = finding(&r, "refused-by-host", "198.51.100.10", "tcp", 49156);
    let e = evidence(f, "rst");
    assert_eq!(e["forged"], false);
    assert_eq!(e["ttl"], 63);
    assert_eq!(e["sender"], "the host");

    let f = finding(&r, "refused-by-host", "198.51.100.99", "tcp", 1025);
    assert_eq!(f["confidence"], "low");
    assert_eq!(evidence(f, "rst")["forged"], Value::Null);

    // Only the forged reset is a block.
    assert_eq!(
        of_kind(&r, "blocked"),
        BTreeSet::from([key("198.51.100.10", "tcp", 49155)])
    );
}

// ---------------------------------------------------------------------------
// 3. ICMP / ICMPv6 destination unreachable
// ---------------------------------------------------------------------------

#[test]
fn icmp_unreachables_name_their_sender_and_meaning() {
    let mut cap = Cap::new();
    // 3/13 from the firewall, quoting a SYN.
    let mut a = conv(CLIENT, 41000, SERVER, 49157);
    let syn = a.syn();
    let icmp = Frame::ethernet()
        .ipv4(FIREWALL, CLIENT)
        .icmp_unreachable(13, &syn[14..])
        .build();
    cap.seq(0, vec![syn, icmp]);
    // 3/3 from the server itself, quoting a UDP datagram: port closed.
    let udp = Frame::ethernet()
        .ipv4(CLIENT, SERVER)
        .udp(41001, 1434)
        .payload(b"\x02")
        .build();
    let icmp = Frame::ethernet()
        .ipv4(SERVER, CLIENT)
        .icmp_unreachable(3, &udp[14..])
        .build();
    cap.seq(SEC, vec![udp, icmp]);
    // 3/3 from the firewall (iptables' default REJECT), quoting a SYN.
    let mut c = conv(CLIENT, 41002, SERVER, 3268);
    let syn = c.syn();
    let icmp = Frame::ethernet()
        .ipv4(FIREWALL, CLIENT)
        .icmp_unreachable(3, &syn[14..])
        .build();
    cap.seq(2 * SEC, vec![syn, icmp]);
    // ICMPv6 1/1 (administratively prohibited) from the v6 firewall.
    let c6: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let s6: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
    let fw6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut d = TcpConversation::new(IpAddr::V6(c6), 41003, IpAddr::V6(s6), 443);
    let syn = d.syn();
    let icmp = Frame::ethernet()
        .ipv6(fw6, c6)
        .icmp_unreachable(1, &syn[14..])
        .build();
    cap.seq(3 * SEC, vec![syn, icmp]);
    let p = cap.write("icmp.pcap");
    let r = analyze_json(&[&p], &[1]);

    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 49157);
    let e = evidence(f, "icmp-unreachable");
    assert_eq!(e["meaning"], "administratively-prohibited");
    assert_eq!(e["sender"], "203.0.113.1");
    assert_eq!(
        (e["icmp_type"].as_u64(), e["code"].as_u64()),
        (Some(3), Some(13))
    );
    assert_eq!(e["icmp_version"], 4);
    assert_eq!(f["confidence"], "high");

    let f = finding(&r, "refused-by-host", "198.51.100.10", "udp", 1434);
    let e = evidence(f, "icmp-unreachable");
    assert_eq!(e["meaning"], "port-unreachable");
    assert_eq!(e["sender"], "198.51.100.10");

    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 3268);
    let e = evidence(f, "icmp-unreachable");
    assert_eq!(e["meaning"], "port-unreachable");
    assert_eq!(e["sender"], "203.0.113.1");

    let f = finding(&r, "blocked", "2001:db8:1::10", "tcp", 443);
    let e = evidence(f, "icmp-unreachable");
    assert_eq!(e["meaning"], "administratively-prohibited");
    assert_eq!(e["sender"], "2001:db8::1");
    assert_eq!(e["icmp_version"], 6);
    assert_eq!(
        (e["icmp_type"].as_u64(), e["code"].as_u64()),
        (Some(1), Some(1))
    );

    assert_eq!(
        of_kind(&r, "blocked"),
        BTreeSet::from([
            key("198.51.100.10", "tcp", 49157),
            key("198.51.100.10", "tcp", 3268),
            key("2001:db8:1::10", "tcp", 443),
        ])
    );
}

// ---------------------------------------------------------------------------
// 4. Hand-offs never followed (the server side's view)
// ---------------------------------------------------------------------------

#[test]
fn a_handoff_never_followed_is_blocked_from_the_server_side() {
    // Server-side tap: the mapper names 49160, the client never shows up
    // (its SYN died at the firewall); the capture goes on for 2 s.
    let mut cap = Cap::new();
    let t = epm_handoff(&mut cap, 0, CLIENT, SERVER, 49160);
    let mut other = conv(CLIENT2, 40500, SERVER, 445);
    handshake(&mut cap, t + 2 * SEC, &mut other);
    let p = cap.write("handoff-unfulfilled.pcap");
    let r = analyze_json(&[&p], &[1]);
    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 49160);
    assert_eq!(f["service"], "exchange-directory");
    assert_eq!(f["interface"]["uuid"], NSPI);
    let e = evidence(f, "handoff-unfulfilled");
    assert_eq!(e["client"], "192.0.2.10");
    assert_eq!(e["mapper"], "198.51.100.10");
    assert_eq!(e["interface"]["uuid"], NSPI);
    assert_eq!(
        of_kind(&r, "blocked"),
        BTreeSet::from([key("198.51.100.10", "tcp", 49160)])
    );

    // The same hand-off followed by the connection: nothing to report.
    let mut cap = Cap::new();
    let t = epm_handoff(&mut cap, 0, CLIENT, SERVER, 49160);
    let mut follow = conv(CLIENT, 40001, SERVER, 49160);
    let frames = vec![
        follow.syn(),
        follow.syn_ack(),
        follow.ack(),
        follow.data_c2s(&bind_of("exchange-directory")),
        follow.data_s2c(&epm_bind_ack()),
    ];
    let t = cap.seq(t + 3 * MS, frames);
    let mut other = conv(CLIENT2, 40500, SERVER, 445);
    handshake(&mut cap, t + 2 * SEC, &mut other);
    let p = cap.write("handoff-followed.pcap");
    let r = analyze_json(&[&p], &[0]);
    assert!(findings(&r).is_empty(), "{:#}", r["findings"]);
    let row = r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["port"] == 49160)
        .expect("a verdict row for 49160");
    assert_eq!(row["verdict"], "working");
    assert_eq!(row["service"], "exchange-directory");
}

// ---------------------------------------------------------------------------
// 5. COTP connection refused
// ---------------------------------------------------------------------------

#[test]
fn a_cotp_disconnect_answering_the_cr_is_refused_by_the_host() {
    let cr = hex("03 00 00 16 11 e0 00 00 00 01 00 c0 01 0a c1 02 01 00 c2 02 01 02");
    let dr = hex("03 00 00 0b 06 80 00 01 00 02 88");
    let mut cap = Cap::new();
    let mut c = conv(CLIENT, 42000, SERVER, 102);
    let frames = vec![
        c.syn(),
        c.syn_ack(),
        c.ack(),
        c.data_c2s(&cr),
        c.data_s2c(&dr),
        c.fin_s(),
        c.fin_c(),
        c.ack_s(),
    ];
    cap.seq(0, frames);
    let p = cap.write("cotp-refused.pcap");
    let r = analyze_json(&[&p], &[1]);
    let f = finding(&r, "refused-by-host", "198.51.100.10", "tcp", 102);
    let e = evidence(f, "cotp-refused");
    assert_eq!(e["client"], "192.0.2.10");
    assert_eq!(e["client_port"], 42000);
    assert!(
        e["reason"].as_str().unwrap().contains("DR reason 136"),
        "{e}"
    );
    assert!(of_kind(&r, "blocked").is_empty(), "{:#}", r["findings"]);
}

// ---------------------------------------------------------------------------
// 6. UDP requests never answered
// ---------------------------------------------------------------------------

fn dns_query(id: u8) -> Vec<u8> {
    let mut q = vec![0x12, id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend(b"\x04mail\x07example\x03com\x00\x00\x01\x00\x01");
    q
}

#[test]
fn unanswered_dns_queries_are_blocked_with_low_confidence() {
    let mut cap = Cap::new();
    for (k, at) in [0, SEC].into_iter().enumerate() {
        let q = dns_query(k as u8);
        cap.at(
            at,
            Frame::ethernet()
                .ipv4(CLIENT, DC)
                .udp(53000, 53)
                .payload(&q)
                .build(),
        );
    }
    let mut tail = conv(CLIENT2, 42100, SERVER, 445);
    handshake(&mut cap, 6 * SEC, &mut tail);
    let p = cap.write("udp-unanswered.pcap");
    let r = analyze_json(&[&p], &[1]);
    let f = finding(&r, "blocked", "198.51.100.20", "udp", 53);
    assert_eq!(f["confidence"], "low");
    assert_eq!(f["service"], "dns");
    let e = evidence(f, "udp-unanswered");
    assert_eq!(e["datagrams"], 2);
    assert_eq!(e["client_port"], 53000);

    // One unanswered query: could be lost, not a finding.
    let mut cap = Cap::new();
    let q = dns_query(1);
    cap.at(
        0,
        Frame::ethernet()
            .ipv4(CLIENT, DC)
            .udp(53000, 53)
            .payload(&q)
            .build(),
    );
    handshake(&mut cap, 6 * SEC, &mut conv(CLIENT2, 42100, SERVER, 445));
    let p = cap.write("udp-one-query.pcap");
    let r = analyze_json(&[&p], &[0]);
    assert!(findings(&r).is_empty(), "{:#}", r["findings"]);
}

// ---------------------------------------------------------------------------
// 7. Two taps: drops measured between them
// ---------------------------------------------------------------------------

/// The outside tap's clock runs this much ahead of the inside one.
const SKEW: u64 = 3_500 * MS;
/// One-way transit between the taps.
const TRANSIT: u64 = 2 * MS;

/// Inside (client side) and outside (server side) captures of the same
/// traffic.
struct TwoTaps {
    inside: Cap,
    outside: Cap,
}

impl TwoTaps {
    fn new() -> Self {
        TwoTaps {
            inside: Cap::new(),
            outside: Cap::new(),
        }
    }

    /// A client→server packet at inside time `t`: seen outside TRANSIT later.
    fn c2s(&mut self, t: u64, f: Vec<u8>, crosses: bool) {
        self.inside.at(t, f.clone());
        if crosses {
            self.outside.at(t + TRANSIT + SKEW, f);
        }
    }

    /// A server→client packet at outside time `t` (inside clock).
    fn s2c(&mut self, t: u64, f: Vec<u8>, crosses: bool) {
        self.outside.at(t + SKEW, f.clone());
        if crosses {
            self.inside.at(t + TRANSIT, f);
        }
    }

    /// A connection that works, from `t` on.
    fn connection(&mut self, t: u64, mut c: TcpConversation) {
        let syn = c.syn();
        self.c2s(t, syn, true);
        let sa = c.syn_ack();
        self.s2c(t + TRANSIT + MS, sa, true);
        let ack = c.ack();
        self.c2s(t + 2 * TRANSIT + 2 * MS, ack, true);
        let d = c.data_c2s(b"hello");
        self.c2s(t + 2 * TRANSIT + 3 * MS, d, true);
        let d = c.data_s2c(b"world");
        self.s2c(t + 3 * TRANSIT + 4 * MS, d, true);
    }
}

#[test]
fn two_taps_measure_what_the_firewall_dropped() {
    let mut taps = TwoTaps::new();
    taps.connection(0, conv(CLIENT, 43000, SERVER, 445));
    taps.connection(100 * MS, conv(CLIENT, 43001, SERVER, 135));
    taps.connection(200 * MS, conv(CLIENT2, 43002, DC, 389));
    // The firewall drops this SYN: only the inside tap sees it (and its
    // retransmissions).
    let mut dropped = conv(CLIENT, 43003, SERVER, 49155);
    let syn = dropped.syn();
    for off in [0, 1, 3, 7] {
        taps.c2s(SEC + off * SEC, syn.clone(), false);
    }
    // A one-way UDP stream from the server to a client (new-mail
    // notifications), dropped: only the outside tap sees it.
    for k in 0..4u64 {
        let f = Frame::ethernet()
            .ipv4(SERVER, CLIENT)
            .udp(2571, 1071)
            .payload(&[0xd0, 0x27, 0x3b, 0x02, k as u8])
            .build();
        taps.s2c(2 * SEC + k * 500 * MS, f, false);
    }
    // Traffic on both taps until 10 s.
    taps.connection(10 * SEC, conv(CLIENT2, 43004, SERVER, 445));
    let inside = taps.inside.write("taps-inside.pcap");
    let outside = taps.outside.write("taps-outside.pcap");

    let r = analyze_json(&["--inside", &inside, "--outside", &outside], &[1]);
    let offset = r["taps"]["clock_offset_us"]
        .as_i64()
        .expect("clock_offset_us");
    assert!(
        (offset - 3_500_000).abs() <= 5_000,
        "clock offset {offset} µs, expected 3.5 s plus a few ms of transit"
    );
    assert!(r["taps"]["aligned_by_connections"].as_u64().unwrap() >= 3);

    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 49155);
    let e = evidence(f, "dropped-between-taps");
    assert_eq!(e["seen_on"], "inside");
    assert_eq!(e["missing_on"], "outside");
    assert_eq!(e["direction"], "request");
    assert_eq!(e["packets"], 4);
    assert_eq!(e["client_port"], 43003);
    assert_eq!(f["confidence"], "high");

    // The notification stream: its originator is the server.
    let f = finding(&r, "blocked", "192.0.2.10", "udp", 1071);
    let e = evidence(f, "dropped-between-taps");
    assert_eq!(e["seen_on"], "outside");
    assert_eq!(e["missing_on"], "inside");
    assert_eq!(e["client"], "198.51.100.10");
    assert_eq!(e["packets"], 4);

    assert_eq!(
        of_kind(&r, "blocked"),
        BTreeSet::from([
            key("198.51.100.10", "tcp", 49155),
            key("192.0.2.10", "udp", 1071)
        ])
    );
    // What crossed: the working connections count on both taps.
    let port445 = r["taps"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["server"] == "198.51.100.10" && p["port"] == 445)
        .expect("port 445 in the crossing table");
    assert_eq!(port445["connections_both"], 2);
    assert_eq!(port445["vanished"], false);

    // The outside capture alone cannot tell the one-way stream was dropped.
    let r = analyze_json(&[&outside], &[0, 1]);
    assert!(
        of_kind(&r, "blocked").is_empty(),
        "one tap cannot see a silent drop of one-way UDP: {:#}",
        r["findings"]
    );
    // The inside capture alone still shows the unanswered SYNs.
    let r = analyze_json(&[&inside], &[1]);
    assert_eq!(
        of_kind(&r, "blocked"),
        BTreeSet::from([key("198.51.100.10", "tcp", 49155)])
    );
}

// ---------------------------------------------------------------------------
// 8. Policy verdicts and exit codes
// ---------------------------------------------------------------------------

fn base_policy() -> Value {
    json!({
        "schema": "exflow.policy/1",
        "groups": {
            "exchange": { "role": "exchange", "hosts": ["198.51.100.10"] },
            "dcs": { "role": "dc", "hosts": ["198.51.100.20"] },
            "clients": { "role": "clients", "hosts": ["192.0.2.0/24"] }
        },
        "allow": [
            { "from": "clients", "to": "exchange", "service": "smtp" },
            { "from": "clients", "to": "exchange", "service": "imap" },
            { "from": "clients", "to": "exchange", "service": "pop3" }
        ],
        "deny": [
            { "from": "clients", "to": "exchange", "service": "nntp" }
        ]
    })
}

#[test]
fn policy_verdicts_say_misconfigured_denied_not_in_policy_and_never_seen() {
    let mut cap = Cap::new();
    // SMTP blocked though the policy allows it: misconfigured firewall.
    unanswered_syns(&mut cap, 0, &mut conv(CLIENT, 44000, SERVER, 25));
    // NNTP blocked as the policy denies it.
    unanswered_syns(&mut cap, 100 * MS, &mut conv(CLIENT, 44001, SERVER, 119));
    // IMAP works as allowed; HTTPS works but no rule allows it.
    handshake(&mut cap, 200 * MS, &mut conv(CLIENT, 44002, SERVER, 143));
    handshake(&mut cap, 300 * MS, &mut conv(CLIENT2, 44003, SERVER, 443));
    handshake(&mut cap, 10 * SEC, &mut conv(CLIENT2, 44004, SERVER, 143));
    let p = cap.write("policy.pcap");
    let pol = write_policy("policy.json", &base_policy());
    let r = analyze_json(&["--policy", &pol, &p], &[1]);

    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 25);
    assert_eq!(f["policy"], "allowed");
    assert!(
        f["verdict"].as_str().unwrap().contains("misconfigured"),
        "{f:#}"
    );
    assert_eq!(f["severity"], "action");
    // The fix allows the client's group, not just the one client.
    assert!(
        f["fix"]["nftables"][0]
            .as_str()
            .unwrap()
            .contains("ip saddr 192.0.2.0/24"),
        "{f:#}"
    );

    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 119);
    assert_eq!(f["policy"], "denied");
    assert_eq!(f["policy_rule"], "deny[0]");

    let f = finding(&r, "not-in-policy", "198.51.100.10", "tcp", 443);
    assert_eq!(f["policy"], "unspecified");
    assert_eq!(evidence(f, "established")["connections"], 1);
    assert_eq!(f["severity"], "action");

    let f = finding(&r, "never-seen", "198.51.100.10", "tcp", 110);
    assert_eq!(f["severity"], "info");
    assert_eq!(f["policy"], "allowed");
    assert_eq!(f["service"], "pop3");
    assert!(!findings(&r)
        .iter()
        .any(|f| f["kind"] == "never-seen" && f["port"] == 143));

    let verdict = |port: u64| {
        r["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["port"] == port && v["server"] == "198.51.100.10")
            .unwrap_or_else(|| panic!("no verdict row for port {port}"))
            .clone()
    };
    assert_eq!(verdict(25)["verdict"], "blocked-policy-allows");
    assert_eq!(verdict(119)["verdict"], "blocked-policy-denies");
    assert_eq!(verdict(143)["verdict"], "working");
    assert_eq!(verdict(143)["client_group"], "clients");
    assert_eq!(verdict(443)["verdict"], "working-not-in-policy");
    assert_eq!(verdict(110)["verdict"], "never-seen");

    // Only never-seen findings: exit 0.
    let mut cap = Cap::new();
    handshake(&mut cap, 0, &mut conv(CLIENT, 44010, SERVER, 143));
    handshake(&mut cap, SEC, &mut conv(CLIENT, 44011, SERVER, 25));
    let p = cap.write("policy-clean.pcap");
    let (code, out, err) = exit_code(&["analyze", "--format", "json", "--policy", &pol, &p]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        of_kind(&r, "never-seen"),
        BTreeSet::from([key("198.51.100.10", "tcp", 110)])
    );
    assert_eq!(findings(&r).len(), 1, "{:#}", r["findings"]);

    // An invalid policy: exit 2, the field named.
    let mut bad = base_policy();
    bad["allow"][0]["to"] = json!("exchnage");
    let bad = write_policy("policy-bad.json", &bad);
    let (code, _, err) = exit_code(&["analyze", "--format", "json", "--policy", &bad, &p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("allow[0].to"), "{err}");
    assert!(err.contains("unknown group 'exchnage'"), "{err}");
}

/// An edit that breaks the base policy.
type PolicyEdit = fn(&mut Value);

#[test]
fn policy_check_names_the_exact_field_of_every_error() {
    let cases: Vec<(PolicyEdit, &str, &str)> = vec![
        (
            |v| v["allow"][1]["from"] = json!("clinets"),
            "allow[1].from",
            "unknown group 'clinets'",
        ),
        (
            |v| v["groups"]["clients"]["hosts"][0] = json!("192.0.2.0/33"),
            "groups.clients.hosts[0]",
            "prefix length",
        ),
        (
            |v| v["groups"]["dcs"]["hosts"][0] = json!("198.51.100.300"),
            "groups.dcs.hosts[0]",
            "not an IP address",
        ),
        (
            |v| v["allow"][2] = json!({ "from": "clients", "to": "exchange", "proto": "tcp", "ports": [6001, 70000] }),
            "allow[2].ports[1]",
            "port 70000 is out of range",
        ),
        (
            |v| v["deny"][0] = json!({ "from": "clients", "to": "exchange", "service": "imap" }),
            "deny[0]",
            "contradicts allow[1]",
        ),
    ];
    for (k, (edit, field, needle)) in cases.into_iter().enumerate() {
        let mut v = base_policy();
        edit(&mut v);
        let p = write_policy(&format!("check-{k}.json"), &v);
        let (code, _, err) = exit_code(&["policy", "check", &p]);
        assert_eq!(code, 2, "{field}: {err}");
        assert!(
            err.contains(&format!("{p}: {field}: ")),
            "expected the field {field} in: {err}"
        );
        assert!(err.contains(needle), "{field}: {err}");
    }
    let p = write_policy("check-ok.json", &base_policy());
    let (code, out, err) = exit_code(&["policy", "check", &p]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid"), "{out}");
}

// ---------------------------------------------------------------------------
// 9. Every built-in profile
// ---------------------------------------------------------------------------

/// Hosts of each role in the profile tests.
fn role_hosts(role: &str) -> Vec<Ipv4Addr> {
    match role {
        "exchange" => vec![SERVER, Ipv4Addr::new(198, 51, 100, 11)],
        "dc" => vec![DC],
        "clients" => vec![CLIENT],
        "frontend" => vec![Ipv4Addr::new(203, 0, 113, 10)],
        "remote-mta" => vec![Ipv4Addr::new(203, 0, 113, 20)],
        r => panic!("role {r} not in the test"),
    }
}

fn profile_policy(name: &str) -> Value {
    let hosts = |r: &str| -> Vec<String> {
        if r == "clients" {
            vec!["192.0.2.0/24".into()]
        } else {
            role_hosts(r).iter().map(|h| h.to_string()).collect()
        }
    };
    json!({
        "schema": "exflow.policy/1",
        "groups": {
            "exchange": { "role": "exchange", "hosts": hosts("exchange") },
            "dcs": { "role": "dc", "hosts": hosts("dc") },
            "clients": { "role": "clients", "hosts": hosts("clients") },
            "frontend": { "role": "frontend", "hosts": hosts("frontend") },
            "remote-mtas": { "role": "remote-mta", "hosts": hosts("remote-mta") }
        },
        "profiles": [name]
    })
}

#[test]
fn every_builtin_profile_allows_its_services_and_flags_a_block() {
    use exflow::policy::profiles::PROFILES;
    use exflow::policy::services::{self, ServiceKind};

    // `exflow policy profiles` lists exactly the built-in profiles.
    let (code, out, _) = exit_code(&["policy", "profiles"]);
    assert_eq!(code, 0);
    let listed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let builtin: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
    assert_eq!(listed, builtin);

    for profile in PROFILES {
        let name = profile.name;
        // The blocked one: the first service on a fixed TCP port.
        let blocked = profile
            .rules
            .iter()
            .position(|r| {
                let s = services::service_ports(r.service).unwrap();
                s.kind == ServiceKind::Ports && s.protos.contains(&exflow::packet::PROTO_TCP)
            })
            .unwrap_or_else(|| panic!("{name}: no fixed TCP service"));
        let mut cap = Cap::new();
        let mut t = 0;
        let mut cport = 45000u16;
        let mut dyn_port = 5000u16;
        // (server, proto, port, verdict expected)
        let mut expected: Vec<(String, &str, u64, &str)> = Vec::new();
        let mut blocked_key = None;
        for (i, rule) in profile.rules.iter().enumerate() {
            let from = role_hosts(rule.from.as_str())[0];
            let to_hosts = role_hosts(rule.to.as_str());
            let to = *to_hosts.iter().find(|h| **h != from).expect("a peer");
            let spec = services::service_ports(rule.service).unwrap();
            cport += 1;
            t += 200 * MS;
            if i == blocked {
                let port = spec.ports[0].0;
                unanswered_syns(&mut cap, t, &mut conv(from, cport, to, port));
                blocked_key = Some((to.to_string(), port));
                continue;
            }
            match spec.kind {
                ServiceKind::Ports if spec.protos[0] == exflow::packet::PROTO_TCP => {
                    let port = spec.ports[0].0;
                    handshake(&mut cap, t, &mut conv(from, cport, to, port));
                    expected.push((to.to_string(), "tcp", port as u64, "working"));
                }
                ServiceKind::Ports => {
                    // UDP request / response (ntp).
                    let port = spec.ports[0].0;
                    let q = Frame::ethernet()
                        .ipv4(from, to)
                        .udp(cport, port)
                        .payload(&[0x1b; 48])
                        .build();
                    let a = Frame::ethernet()
                        .ipv4(to, from)
                        .udp(port, cport)
                        .payload(&[0x1c; 48])
                        .build();
                    cap.seq(t, vec![q, a]);
                    expected.push((to.to_string(), "udp", port as u64, "working"));
                }
                ServiceKind::RpcInterface => {
                    dyn_port += 1;
                    let mut c = conv(from, cport, to, dyn_port);
                    let frames = vec![
                        c.syn(),
                        c.syn_ack(),
                        c.ack(),
                        c.data_c2s(&bind_of(rule.service)),
                        c.data_s2c(&epm_bind_ack()),
                    ];
                    cap.seq(t, frames);
                    expected.push((to.to_string(), "tcp", dyn_port as u64, "working"));
                }
                ServiceKind::Notification => {
                    // One-way UDP from the Exchange server: from one tap,
                    // delivery is unconfirmed (never "not in policy").
                    for k in 0..3u8 {
                        let f = Frame::ethernet()
                            .ipv4(from, to)
                            .udp(2571, 1071)
                            .payload(&[0xd0, 0x27, 0x3b, 0x02, k])
                            .build();
                        cap.at(t + k as u64 * MS, f);
                    }
                    expected.push((to.to_string(), "udp", 1071, "unconfirmed"));
                }
                // exflow does not follow ICMP echo (frontend-perimeter's
                // DSAccess pings, KB270836): nothing to send, nothing judged.
                ServiceKind::IcmpEcho => {}
                ServiceKind::RpcDynamic => unreachable!("no profile uses rpc-dynamic"),
            }
        }
        // (Four SYNs are evidence wherever the capture ends.)
        let p = cap.write(&format!("profile-{name}.pcap"));
        let pol = write_policy(&format!("profile-{name}.json"), &profile_policy(name));
        let r = analyze_json(&["--policy", &pol, &p], &[1]);

        let ctx = format!("profile {name}");
        assert!(
            of_kind(&r, "not-in-policy").is_empty(),
            "{ctx}: working traffic the profile allows reported as not in policy: {:#}",
            r["findings"]
        );
        let (bserver, bport) = blocked_key.unwrap();
        let f = finding(&r, "blocked", &bserver, "tcp", bport);
        assert_eq!(f["policy"], "allowed", "{ctx}: {f:#}");
        assert!(
            f["policy_rule"]
                .as_str()
                .unwrap()
                .contains(&format!("profile {name}")),
            "{ctx}: {f:#}"
        );
        assert_eq!(
            of_kind(&r, "blocked"),
            BTreeSet::from([key(&bserver, "tcp", bport as u64)]),
            "{ctx}"
        );
        for (server, proto, port, verdict) in &expected {
            let row = r["verdicts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["server"] == *server && v["proto"] == *proto && v["port"] == *port)
                .unwrap_or_else(|| {
                    panic!(
                        "{ctx}: no verdict row for {server} {proto}/{port}: {:#}",
                        r["verdicts"]
                    )
                });
            assert_eq!(row["verdict"], *verdict, "{ctx}: {row:#}");
            assert_eq!(row["policy"], "allowed", "{ctx}: {row:#}");
        }
    }
}

// ---------------------------------------------------------------------------
// 10. Fixes: the rules load, the pin names the registry key
// ---------------------------------------------------------------------------

/// A capture whose findings carry fixes of every shape: a dynamic RPC port
/// (after a hand-off, from two clients), an IPv6 port, and traffic not in
/// the policy (a close rule).
fn fixes_capture() -> String {
    let mut cap = Cap::new();
    let t = epm_handoff(&mut cap, 0, CLIENT, SERVER, 49155);
    unanswered_syns(
        &mut cap,
        t + 2 * MS,
        &mut conv(CLIENT, 46000, SERVER, 49155),
    );
    unanswered_syns(
        &mut cap,
        t + 5 * MS,
        &mut conv(CLIENT2, 46001, SERVER, 49155),
    );
    let c6: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let s6: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
    let mut d = TcpConversation::new(IpAddr::V6(c6), 46002, IpAddr::V6(s6), 443);
    let syn = d.syn();
    let icmp = Frame::ethernet()
        .ipv6("2001:db8::1".parse().unwrap(), c6)
        .icmp_unreachable(1, &syn[14..])
        .build();
    cap.seq(SEC, vec![syn, icmp]);
    handshake(&mut cap, 2 * SEC, &mut conv(CLIENT, 46003, SERVER, 8080));
    handshake(&mut cap, 12 * SEC, &mut conv(CLIENT, 46004, SERVER, 8080));
    cap.write("fixes.pcap")
}

fn fix_rules(r: &Value) -> (Vec<String>, Vec<String>) {
    let mut nft = Vec::new();
    let mut ipt = Vec::new();
    for f in findings(r) {
        for s in f["fix"]["nftables"].as_array().into_iter().flatten() {
            nft.push(s.as_str().unwrap().to_string());
        }
        for s in f["fix"]["iptables"].as_array().into_iter().flatten() {
            ipt.push(s.as_str().unwrap().to_string());
        }
    }
    (nft, ipt)
}

fn tool(name: &str) -> std::path::PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = std::path::Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: the generated firewall rules cannot be checked \
         (install nftables and iptables; CI runs as root with both)"
    );
}

/// Shell-like split honouring double quotes (the rules quote comments).
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for ch in s.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn check_nft(rules: &[String], name: &str) {
    let nft = tool("nft");
    let mut text = String::from(
        "table inet filter {\n  chain forward { type filter hook forward priority 0; }\n}\n",
    );
    for r in rules {
        let body = r
            .strip_prefix("nft ")
            .unwrap_or_else(|| panic!("not an nft command: {r}"));
        text.push_str(body);
        text.push('\n');
    }
    let p = tmp_path(name);
    std::fs::write(&p, &text).unwrap();
    let o = std::process::Command::new(nft)
        .args(["-c", "-f", path_str(&p)])
        .output()
        .expect("running nft");
    assert!(
        o.status.success(),
        "nft -c rejected the generated rules:\n{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn check_iptables(rules: &[String], name: &str) {
    for (cmd, restore) in [
        ("iptables", "iptables-restore"),
        ("ip6tables", "ip6tables-restore"),
    ] {
        let mine: Vec<&String> = rules
            .iter()
            .filter(|r| r.starts_with(&format!("{cmd} ")))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut text = String::from("*filter\n:FORWARD ACCEPT [0:0]\n");
        for r in mine {
            let w = words(r);
            assert_eq!(w[1], "-I", "{r}");
            assert_eq!(w[2], "FORWARD", "{r}");
            let mut line = String::from("-A FORWARD");
            for a in &w[3..] {
                if a.contains(' ') || a.contains('(') {
                    line.push_str(&format!(" \"{a}\""));
                } else {
                    line.push(' ');
                    line.push_str(a);
                }
            }
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str("COMMIT\n");
        let p = tmp_path(&format!("{name}.{cmd}"));
        std::fs::write(&p, &text).unwrap();
        let o = std::process::Command::new(tool(restore))
            .args(["--test", path_str(&p)])
            .output()
            .expect("running iptables-restore");
        assert!(
            o.status.success(),
            "{restore} --test rejected the generated rules:\n{text}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn a_blocked_dynamic_rpc_port_gets_rules_and_a_registry_pin() {
    let p = fixes_capture();
    let r = analyze_json(&[&p], &[1]);
    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 49155);
    assert_eq!(f["service"], "exchange-directory");
    assert_eq!(f["clients"], json!(["192.0.2.10", "192.0.2.11"]));
    let fix = &f["fix"];
    let nft = fix["nftables"][0].as_str().unwrap();
    assert!(nft.contains("tcp dport 49155"), "{nft}");
    assert!(nft.contains("ip daddr 198.51.100.10"), "{nft}");
    assert!(nft.contains("accept"), "{nft}");
    let ipt: Vec<&str> = fix["iptables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    // 192.0.2.10 and .11 are one /31: one rule for both.
    assert_eq!(ipt.len(), 1, "one rule per CIDR block: {ipt:?}");
    assert!(ipt[0].contains(" -s 192.0.2.10/31 "), "{ipt:?}");
    assert!(nft.contains("ip saddr 192.0.2.10/31 "), "{nft}");
    assert!(ipt
        .iter()
        .all(|r| r.contains("--dport 49155") && r.contains("-j ACCEPT")));
    let pins = fix["pin"].as_array().unwrap();
    assert!(!pins.is_empty(), "{fix:#}");
    assert!(pins.iter().all(|p| p["registry_key"]
        .as_str()
        .unwrap()
        .starts_with("HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\")));
    assert!(pins
        .iter()
        .any(|p| p["value"] == "TCP/IP NSPI Port" || p["value"] == "TCP/IP Port"));
    assert!(fix["note"].as_str().unwrap().contains("dynamic RPC port"));

    // The IPv6 block gets ip6 rules.
    let f = finding(&r, "blocked", "2001:db8:1::10", "tcp", 443);
    assert!(f["fix"]["nftables"][0]
        .as_str()
        .unwrap()
        .contains("ip6 saddr 2001:db8::10 ip6 daddr 2001:db8:1::10 tcp dport 443"));
    assert!(f["fix"]["iptables"][0]
        .as_str()
        .unwrap()
        .starts_with("ip6tables -I FORWARD"));
}

#[test]
fn the_generated_firewall_rules_load() {
    let p = fixes_capture();
    // Without a policy: sources are the clients themselves.
    let r = analyze_json(&[&p], &[1]);
    let (nft, ipt) = fix_rules(&r);
    // One rule per CIDR block: the two clients of 49155 are one /31.
    assert!(nft.len() >= 2 && ipt.len() >= 2, "{nft:?} {ipt:?}");
    check_nft(&nft, "rules-nopolicy.nft");
    check_iptables(&ipt, "rules-nopolicy");

    // With a policy: group networks as sources, close rules for traffic
    // not in the policy.
    let mut pol = base_policy();
    pol["groups"]["clients"]["hosts"] = json!(["192.0.2.0/25", "192.0.2.200", "2001:db8::/64"]);
    pol["groups"]["exchange"]["hosts"] = json!(["198.51.100.10", "2001:db8:1::10"]);
    pol["allow"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "from": "clients", "to": "exchange", "service": "exchange-directory" }));
    let pol = write_policy("rules-policy.json", &pol);
    let r = analyze_json(&["--policy", &pol, &p], &[1]);
    let f = finding(&r, "not-in-policy", "198.51.100.10", "tcp", 8080);
    assert!(f["fix"]["nftables"][0].as_str().unwrap().contains("drop"));
    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 49155);
    assert_eq!(f["policy"], "allowed");
    let (nft, ipt) = fix_rules(&r);
    check_nft(&nft, "rules-policy.nft");
    check_iptables(&ipt, "rules-policy");
}

#[test]
fn two_taps_see_an_answer_that_never_came_back() {
    // The SYNs cross; the server's SYN-ACKs are dropped on the way back:
    // the outside tap sees them, the inside one never does.
    let mut taps = TwoTaps::new();
    taps.connection(0, conv(CLIENT, 47000, SERVER, 445));
    taps.connection(100 * MS, conv(CLIENT2, 47001, SERVER, 135));
    let mut c = conv(CLIENT, 47002, SERVER, 1433);
    let syn = c.syn();
    let sa = c.syn_ack();
    for off in [0, 1, 3, 7] {
        taps.c2s(SEC + off * SEC, syn.clone(), true);
        taps.s2c(SEC + off * SEC + TRANSIT + MS, sa.clone(), false);
    }
    taps.connection(10 * SEC, conv(CLIENT2, 47003, SERVER, 445));
    let inside = taps.inside.write("reply-inside.pcap");
    let outside = taps.outside.write("reply-outside.pcap");
    let r = analyze_json(&["--inside", &inside, "--outside", &outside], &[1]);
    let offset = r["taps"]["clock_offset_us"].as_i64().unwrap();
    assert!((offset - 3_500_000).abs() <= 5_000, "{offset}");
    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 1433);
    let e = evidence(f, "dropped-between-taps");
    assert_eq!(e["direction"], "reply");
    assert_eq!(e["seen_on"], "outside");
    assert_eq!(e["missing_on"], "inside");
    assert_eq!(e["packets"], 4);
    assert_eq!(
        of_kind(&r, "blocked"),
        BTreeSet::from([key("198.51.100.10", "tcp", 1433)])
    );
}

#[test]
fn a_blocked_pinned_port_is_judged_by_the_policy_pin() {
    // KB270836: the store is pinned to TCP 6001 and the policy allows it;
    // the firewall drops the SYNs. The client never got through, so no
    // bind names the interface: the pin does.
    let mut pol = base_policy();
    pol["allow"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "from": "clients", "to": "exchange", "service": "exchange-store" }));
    pol["pins"] = json!([{ "server": "exchange", "service": "exchange-store", "port": 6001 }]);
    let pol = write_policy("pinned.json", &pol);
    let mut cap = Cap::new();
    unanswered_syns(&mut cap, 0, &mut conv(CLIENT, 48000, SERVER, 6001));
    handshake(&mut cap, 100 * MS, &mut conv(CLIENT, 48001, SERVER, 143));
    let p = cap.write("pinned.pcap");
    let r = analyze_json(&["--policy", &pol, &p], &[1]);
    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 6001);
    assert_eq!(f["policy"], "allowed", "{f:#}");
    assert!(f["verdict"].as_str().unwrap().contains("misconfigured"));
    assert_eq!(f["service"], "exchange-store");
    assert_eq!(f["policy_rule"], "allow[3]");
    // Already pinned: no advice to pin it, no "dynamic port" note.
    assert_eq!(f["fix"]["pin"], json!([]), "{f:#}");
    assert_eq!(f["fix"]["note"], Value::Null, "{f:#}");
    assert!(f["fix"]["nftables"][0]
        .as_str()
        .unwrap()
        .contains("tcp dport 6001"));
    assert!(
        !findings(&r)
            .iter()
            .any(|f| f["kind"] == "never-seen" && f["port"] == 6001),
        "{:#}",
        r["findings"]
    );
}

// ---------------------------------------------------------------------------
// 11. Advice an admin can follow blindly (#17)
// ---------------------------------------------------------------------------

fn pin_values(f: &Value) -> Vec<(String, String, Value)> {
    f["fix"]["pin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["registry_key"]
                    .as_str()
                    .unwrap()
                    .rsplit("Services\\")
                    .next()
                    .unwrap()
                    .to_string(),
                p["value"].as_str().unwrap().to_string(),
                p["exchange"].clone(),
            )
        })
        .collect()
}

fn text_report(args: &[&str]) -> String {
    let mut all = vec!["analyze", "--format", "text"];
    all.extend_from_slice(args);
    let o = run(&all);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// NSPI blocked on a dynamic port: the registry value depends on the
/// Exchange version. Unknown: every version's, each labelled (headline
/// too); `--exchange-version` or the policy's profile picks one; later
/// versions are named as not covered.
#[test]
fn the_nspi_pin_follows_the_exchange_version() {
    let p = fixes_capture();
    let ds = (r"MSExchangeDS\Parameters", "TCP/IP port");
    let sa = (r"MSExchangeSA\Parameters", "TCP/IP NSPI Port");
    let gc = (r"NTDS\Parameters", "TCP/IP Port");
    let pins_of = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push(&p);
        let r = analyze_json(&all, &[1]);
        let f = finding(&r, "blocked", "198.51.100.10", "tcp", 49155).clone();
        (pin_values(&f), f)
    };
    let (unknown, f) = pins_of(&[]);
    let kv: Vec<(&str, &str)> = unknown
        .iter()
        .map(|(k, v, _)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(kv, [ds, sa, gc]);
    let labels: Vec<&str> = unknown
        .iter()
        .map(|(_, _, l)| l.as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "Exchange 5.5",
            "Exchange 2000/2003/2007",
            "Exchange 2000/2003/2007, global catalog"
        ]
    );
    // What the articles say around each pin.
    let fix = &f["fix"];
    let advice = fix["port_advice"].as_str().unwrap();
    for needle in [
        "unused port",
        "netstat -an",
        "5000-65535",
        "different port",
        "RPCDump",
    ] {
        assert!(advice.contains(needle), "{needle}: {advice}");
    }
    for pin in fix["pin"].as_array().unwrap() {
        assert!(!pin["restart"].as_str().unwrap().is_empty(), "{pin:#}");
        assert_eq!(pin["type"], "REG_DWORD");
        assert_eq!(pin["format"], "port number, decimal");
        let notes = pin["notes"].as_array().unwrap();
        assert!(
            notes
                .iter()
                .any(|n| n.as_str().unwrap().contains("forward slash")),
            "{pin:#}"
        );
    }
    let gc_pin = &fix["pin"][2];
    assert!(gc_pin["restart"]
        .as_str()
        .unwrap()
        .starts_with("restart the global catalog server"));
    assert!(fix["note"]
        .as_str()
        .unwrap()
        .contains("depends on the Exchange version"));

    for (version, want) in [
        ("2003", vec![sa, gc]),
        ("2000", vec![sa, gc]),
        ("2007", vec![sa, gc]),
        ("5.5", vec![ds]),
    ] {
        let (pins, _) = pins_of(&["--exchange-version", version]);
        let kv: Vec<(&str, &str)> = pins
            .iter()
            .map(|(k, v, _)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(kv, want, "{version}");
        // One version known: no labels.
        assert!(pins.iter().all(|(_, _, l)| l.is_null()), "{version}");
    }
    // The policy's profile says the version.
    let mut pol = base_policy();
    pol["profiles"] = json!(["exchange2000-mapi-clients"]);
    let pol = write_policy("nspi-2000.json", &pol);
    let (pins, _) = pins_of(&["--policy", &pol]);
    assert_eq!(pins[0].1, "TCP/IP NSPI Port");
    assert!(!pins.iter().any(|(k, _, _)| k.starts_with("MSExchangeDS")));
    // The command line wins over the profile.
    let (pins, _) = pins_of(&["--policy", &pol, "--exchange-version", "5.5"]);
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].0, r"MSExchangeDS\Parameters");
    // Later versions are not covered.
    let (code, _, err) = exit_code(&["analyze", "--exchange-version", "2010", &p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not covered"), "{err}");

    // The text: each version labelled in the headline, key and value never
    // joined into one path.
    let text = text_report(&[&p]);
    let pin_line = text
        .lines()
        .skip_while(|l| !l.contains("or pin it"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        r#"or pin it: 5.5: MSExchangeDS\Parameters "TCP/IP port" (Q155831)"#,
        r#"2000/2003/2007: MSExchangeSA\Parameters "TCP/IP NSPI Port" (KB270836)"#,
        r#"2000/2003/2007 GC: NTDS\Parameters "TCP/IP Port" (KB270836)"#,
    ] {
        assert!(pin_line.contains(needle), "{needle}: {pin_line}");
    }
    assert!(!text.contains(r"Parameters\TCP/IP"), "{text}");
    let text = text_report(&["--exchange-version", "2003", &p]);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains(r#"or pin it: HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\MSExchangeSA\Parameters "TCP/IP NSPI Port" (KB270836)"#), "{text}");
    assert!(!text.contains("MSExchangeDS"), "{text}");
    assert!(text.contains("pinning: use an unused port"), "{text}");
}

/// New-mail notification blocked (Q264035): the fix opens UDP from the
/// Exchange server's ports above 1024 to the client's above 1024 — not the
/// one port seen — or FixedUDPPort (Outlook 2003's key); the rules load.
#[test]
fn a_blocked_notification_gets_the_q264035_range_or_fixedudpport() {
    let cap = shared_captures().join("lab/udp-notify-reject/server-tap.pcap");
    let r = analyze_json(&["--exchange", "198.51.100.10", path_str(&cap)], &[1]);
    let f = finding(&r, "blocked", "192.0.2.10", "udp", 40500);
    assert_eq!(f["service"], "mapi-notification");
    assert_eq!(
        f["consequence"],
        "clients may not receive new mail notification (Q264035)"
    );
    let fix = &f["fix"];
    let nft = fix["nftables"][0].as_str().unwrap();
    assert!(
        nft.contains(
            "ip saddr 198.51.100.10 ip daddr 192.0.2.10 udp sport 1025-65535 udp dport 1025-65535"
        ),
        "{nft}"
    );
    assert!(!nft.contains("40500"), "{nft}");
    let ipt = fix["iptables"][0].as_str().unwrap();
    assert!(
        ipt.contains("--sport 1025:65535 --dport 1025:65535"),
        "{ipt}"
    );
    let pins = fix["pin"].as_array().unwrap();
    assert_eq!(pins.len(), 1, "{fix:#}");
    assert_eq!(
        pins[0]["registry_key"],
        r"HKEY_CURRENT_USER\Software\Microsoft\Office\11.0\Outlook\RPC"
    );
    assert_eq!(pins[0]["value"], "FixedUDPPort");
    let notes = pins[0]["notes"][0].as_str().unwrap();
    assert!(
        notes.contains("Outlook 2003") && notes.contains("Outlook 2007"),
        "{notes}"
    );
    assert!(fix["note"]
        .as_str()
        .unwrap()
        .contains("not only port 40500"));
    // A notification pin is not an RPC port: no netstat/RPCDump advice.
    assert!(fix["port_advice"].is_null());
    check_nft(&[nft.to_string()], "notify.nft");
    check_iptables(&[ipt.to_string()], "notify");
}

/// TCP 102 blocked: opening it is the fix; "RFC1006 Port Number" is not
/// (every MTA would have to change, and the new port be opened). A 102
/// without payload is not called X.400.
#[test]
fn a_blocked_tcp_102_is_not_fixed_by_moving_the_mta() {
    let cap = shared_captures().join("lab/rfc1006-drop/client-tap.pcap");
    let r = analyze_json(&[path_str(&cap)], &[1]);
    let f = finding(&r, "blocked", "198.51.100.10", "tcp", 102);
    assert_eq!(f["service"], "rfc1006");
    assert_eq!(f["fix"]["pin"], json!([]), "{f:#}");
    let note = f["fix"]["note"].as_str().unwrap();
    assert!(
        note.contains("no fix") && note.contains("every MTA"),
        "{note}"
    );
    let c = f["consequence"].as_str().unwrap();
    assert!(c.contains("did not show which application"), "{c}");
    assert!(f["fix"]["nftables"][0]
        .as_str()
        .unwrap()
        .contains("tcp dport 102"));
}

/// `policy check` refuses two registry values pinned to one port of one
/// computer, accepts interfaces that one value serves, and prints the
/// values of the profile's Exchange version with what the articles say
/// around them.
#[test]
fn policy_check_refuses_two_values_on_one_port_and_prints_the_versions_value() {
    let mut pol = base_policy();
    pol["profiles"] = json!(["exchange2000-mapi-clients"]);
    pol["pins"] = json!([
        { "server": "exchange", "service": "exchange-store", "port": 6001 },
        { "server": "198.51.100.10", "service": "exchange-directory", "port": 6001 }
    ]);
    let path = write_policy("two-values.json", &pol);
    let (code, _, err) = exit_code(&["policy", "check", &path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pins[1].port"), "{err}");
    assert!(
        err.contains("two registry values that cannot share a port"),
        "{err}"
    );
    assert!(
        err.contains(r#"MSExchangeIS\ParametersSystem "TCP/IP Port""#),
        "{err}"
    );

    // AD's interfaces share NTDS "TCP/IP Port": one port is right.
    pol["pins"] = json!([
        { "server": "dcs", "service": "ad-replication", "port": 6004 },
        { "server": "dcs", "service": "lsarpc", "port": 6004 },
        { "server": "dcs", "service": "exchange-directory", "port": 6004 },
        { "server": "exchange", "service": "exchange-directory", "port": 6002 },
        { "server": "dcs", "service": "netlogon", "port": 6005 }
    ]);
    let path = write_policy("one-value.json", &pol);
    let (code, out, err) = exit_code(&["policy", "check", &path]);
    assert_eq!(code, 0, "{err}");
    // Exchange 2000/2003 (the profile): the NSPI proxy on the Exchange
    // server, the global catalog's NTDS value on the DCs; never 5.5's.
    assert!(out.contains("Exchange 2000/2003"), "{out}");
    assert!(
        out.contains(r#"MSExchangeSA\Parameters, value "TCP/IP NSPI Port""#),
        "{out}"
    );
    assert!(out.contains("restart the global catalog server"), "{out}");
    assert!(!out.contains("MSExchangeDS"), "{out}");
    assert!(
        out.contains(r#"Netlogon\Parameters, value "DCTcpipPort""#),
        "{out}"
    );
    assert!(out.contains("restart the Netlogon service"), "{out}");
    for needle in ["netstat -an", "RPCDump", "5000-65535", "forward slash"] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    assert!(!out.contains(r"Parameters\TCP/IP"), "{out}");
    // netlogon's DCTcpipPort on the NTDS port: KB224196's event 5809.
    pol["pins"] = json!([
        { "server": "dcs", "service": "netlogon", "port": 6004 },
        { "server": "198.51.100.20", "service": "frs", "port": 6004 }
    ]);
    let path = write_policy("frs-netlogon.json", &pol);
    let (code, _, err) = exit_code(&["policy", "check", &path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("event 5809"), "{err}");
}

/// frontend-perimeter asks for ICMP echo to the DCs (DSAccess, KB270836);
/// exflow does not follow ICMP echo, so the rule is never judged.
#[test]
fn icmp_echo_for_dsaccess_is_in_the_profile_and_never_judged() {
    let pol = profile_policy("frontend-perimeter");
    let path = write_policy("frontend-icmp.json", &pol);
    let (code, out, err) = exit_code(&["policy", "check", &path]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("frontend → dcs") || out.contains("icmp-echo"),
        "{out}"
    );
    assert!(out.contains("icmp echo request and reply"), "{out}");
    let p = fixes_capture();
    let r = analyze_json(&["--policy", &path, &p], &[1]);
    assert!(
        !findings(&r).iter().any(|f| f["policy_rule"]
            .as_str()
            .is_some_and(|_| f["kind"] == "never-seen" && f["service"] == "icmp-echo")),
        "{:#}",
        r["findings"]
    );
    assert!(!r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["service"] == "icmp-echo"));
}
