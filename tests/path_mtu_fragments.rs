//! Issue #25, the size of packets: path MTU black holes (`pmtu-black-hole`)
//! and IP fragments lost on the way (`fragments-dropped`), on real-peer lab
//! captures taken in network namespaces (tests/data/lab, made by
//! scripts/lab-after-handshake: a narrow link whose "fragmentation needed"
//! the nftables firewall drops; a stateless firewall dropping the fragments
//! after the first of MIT Kerberos answers) and on constructed captures,
//! with what must not be flagged.
//!
//! Only documentation addresses: 192.0.2.0/24 clients, 198.51.100.0/24
//! servers, 2001:db8::/32 for IPv6.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use common::*;
use exflow_testkit::{tcp_flags, Frame, Link, PcapWriter, TcpConversation};
use serde_json::Value;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const T0: u64 = 1_795_305_697_000_000_000;
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn lab(scenario: &str) -> PathBuf {
    crate_root().join("tests/data/lab").join(scenario)
}

fn truth(scenario: &str) -> Value {
    serde_json::from_slice(&std::fs::read(lab(scenario).join("truth.json")).unwrap()).unwrap()
}

fn tap(scenario: &str, which: &str) -> String {
    path_str(&lab(scenario).join(format!("{which}-tap.pcap"))).to_string()
}

/// The flows of a lab truth.json with the verdict `verdict`: their client
/// ports.
fn ports_with(t: &Value, verdict: &str) -> Vec<u64> {
    t["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["observed_verdict"] == verdict)
        .map(|f| f["initiator_port"].as_u64().unwrap())
        .collect()
}

fn evidence_ports(f: &Value) -> Vec<u64> {
    let mut v: Vec<u64> = f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["client_port"].as_u64().unwrap())
        .collect();
    v.sort_unstable();
    v
}

// ---- the lab: path MTU ------------------------------------------------------

/// The client tap: the server's 1448-byte segments (the client announced
/// MSS 1460) go out again and again; the router before the 1200-byte link
/// answers each with "fragmentation needed" (MTU 1200), which reaches the
/// firewall's client side (this tap) and goes no further. The small fetches
/// before and after work and are not flagged. Counts from truth.json.
#[test]
fn lab_pmtu_client_tap_names_the_black_hole_and_the_icmp_that_never_reached_the_server() {
    let t = truth("pmtu-blackhole");
    let pm = &t["pmtu"];
    let r = analyze_json(&[&tap("pmtu-blackhole", "client")], &[1]);
    assert_eq!(kinds(&r), vec!["pmtu-black-hole"], "{}", r["findings"]);
    let f = findings(&r)[0];
    assert_eq!(f["server"], "198.51.100.10");
    assert_eq!(
        (f["proto"].as_str(), f["port"].as_u64()),
        (Some("tcp"), Some(80))
    );
    assert_eq!(f["severity"], "action");
    assert_eq!(evidence_ports(f), ports_with(&t, "pmtu-black-hole"));
    let e = &f["evidence"][0];
    assert_eq!(e["type"], "path-mtu");
    assert_eq!(e["direction"], "reply");
    assert_eq!(
        e["segment_bytes"],
        pm["server_segment_payload"]["client-tap"]
    );
    assert_eq!(
        e["largest_segment_bytes"],
        pm["server_segment_payload"]["client-tap"]
    );
    assert_eq!(
        e["retransmissions"],
        pm["server_retransmissions"]["client-tap"]
    );
    assert_eq!(e["icmp_sender"], pm["icmp_frag_needed"]["src"]);
    assert_eq!(e["icmp_mtu"], pm["icmp_frag_needed"]["next_hop_mtu"]);
    assert_eq!(e["confidence"], "high");
    // What passed: the HTTP header segment, smaller than the MTU allows.
    let passed = e["passed_bytes"].as_u64().unwrap();
    assert!(passed > 0 && passed < 1200 - 40, "{e}");
    let v = f["verdict"].as_str().unwrap();
    assert!(
        v.contains("path MTU black hole") && v.contains("(MTU 1200)"),
        "{v}"
    );
    // The fix: the ICMP through to the server, the ping check, and the
    // Windows black-hole detection from its article.
    let fix = &f["fix"];
    assert!(
        fix["summary"].as_str().unwrap().contains("KB314825"),
        "{fix}"
    );
    assert_eq!(
        fix["nftables"][0],
        "nft insert rule inet filter forward ip daddr 198.51.100.10 icmp type destination-unreachable icmp code frag-needed accept"
    );
    assert!(fix["iptables"][0]
        .as_str()
        .unwrap()
        .contains("--icmp-type fragmentation-needed"));
    assert!(
        fix["note"]
            .as_str()
            .unwrap()
            .contains("ping -f -l 1460 192.0.2.10"),
        "{fix}"
    );
    let h = &fix["host_setting"];
    assert_eq!(h["value"], "EnablePMTUBHDetect");
    assert_eq!(h["set_to"], "1");
    assert_eq!(h["article"], "cc958871");
    assert_eq!(
        h["registry_key"],
        r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters"
    );
    // Every connection worked its handshake: the verdict row says working.
    let rows = r["verdicts"].as_array().unwrap();
    assert!(rows.iter().all(|v| v["status"] == "working"), "{rows:?}");
    // The text report: the headline line and the finding.
    let out = run(&["analyze", &tap("pmtu-blackhole", "client")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "BROKEN LATER: 1 connection cut after the handshake at 1 server port (pmtu-black-hole)"
        ),
        "{text}"
    );
    assert!(text.contains("PMTU-BLACK-HOLE tcp/80"), "{text}");
    assert!(text.contains("EnablePMTUBHDetect"), "{text}");
}

/// The server tap sees the same retransmissions and no ICMP at all (the
/// firewall dropped it before this side): still a path MTU black hole,
/// told by the sizes alone. Both taps together keep the ICMP the client
/// tap saw.
#[test]
fn lab_pmtu_server_tap_tells_it_by_sizes_and_two_taps_keep_the_icmp() {
    let t = truth("pmtu-blackhole");
    assert_eq!(t["pmtu"]["icmp_frag_needed"]["server-tap"], 0);
    let r = analyze_json(&[&tap("pmtu-blackhole", "server")], &[1]);
    assert_eq!(kinds(&r), vec!["pmtu-black-hole"], "{}", r["findings"]);
    let e = &findings(&r)[0]["evidence"][0];
    assert!(e["icmp_sender"].is_null(), "{e}");
    assert_eq!(
        e["retransmissions"],
        t["pmtu"]["server_retransmissions"]["server-tap"]
    );
    let v = findings(&r)[0]["verdict"].as_str().unwrap();
    assert!(v.contains("no \"fragmentation needed\" came back"), "{v}");

    let r = analyze_json(
        &[
            "--inside",
            &tap("pmtu-blackhole", "client"),
            "--outside",
            &tap("pmtu-blackhole", "server"),
        ],
        &[1],
    );
    assert_eq!(kinds(&r), vec!["pmtu-black-hole"], "{}", r["findings"]);
    let e = &findings(&r)[0]["evidence"][0];
    assert_eq!(e["icmp_sender"], t["pmtu"]["icmp_frag_needed"]["src"]);
}

// ---- the lab: fragments -----------------------------------------------------

/// The client tap: two Kerberos answers (AS-REP, TGS-REP) too big for the
/// KDC's 576-byte route arrive as first fragments only; MIT falls back to
/// TCP 88, which works. One `fragments-dropped` finding at UDP 88, one
/// evidence per lost exchange, the fix with KB244474's MaxPacketSize.
#[test]
fn lab_fragments_client_tap_finds_the_kerberos_answers_lost_in_fragments() {
    let t = truth("frag-drop");
    let fr = &t["fragments"];
    assert_eq!(fr["later_fragments"]["client-tap"], 0);
    let r = analyze_json(&[&tap("frag-drop", "client")], &[1]);
    assert_eq!(kinds(&r), vec!["fragments-dropped"], "{}", r["findings"]);
    let f = findings(&r)[0];
    assert_eq!(f["server"], "198.51.100.10");
    assert_eq!(
        (f["proto"].as_str(), f["port"].as_u64()),
        (Some("udp"), Some(88))
    );
    assert_eq!(f["service"], "kerberos");
    assert_eq!(f["severity"], "action");
    let mut lost = ports_with(&t, "fragments-dropped");
    lost.sort_unstable();
    assert_eq!(evidence_ports(f), lost);
    assert_eq!(
        lost.len() as u64,
        fr["udp_flows_fragments_dropped"].as_u64().unwrap()
    );
    for e in f["evidence"].as_array().unwrap() {
        assert_eq!(e["type"], "fragments-missing");
        assert_eq!(e["direction"], "reply");
        assert_eq!(e["datagrams"], 1);
        assert_eq!(e["fragments"], 1);
        // The first fragment of a 576-byte route: 552 bytes of IP payload.
        assert_eq!(e["received_bytes"], 576 - 20 - 4);
        assert!(e["datagram_bytes"].is_null(), "{e}");
        assert!(e["whole_on"].is_null(), "{e}");
    }
    let fix = &f["fix"];
    assert!(
        fix["summary"].as_str().unwrap().contains("KB244474"),
        "{fix}"
    );
    assert_eq!(
        fix["nftables"][0],
        "nft insert rule inet filter forward ip saddr 198.51.100.10 ip daddr 192.0.2.10 ip frag-off & 0x1fff != 0 accept"
    );
    let h = &fix["host_setting"];
    assert_eq!(h["value"], "MaxPacketSize");
    assert_eq!(h["set_to"], "1");
    assert_eq!(h["article"], "KB244474");
    assert_eq!(
        h["registry_key"],
        r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\Lsa\Kerberos\Parameters"
    );
    // TCP 88 worked: no finding there, its row working.
    let rows = r["verdicts"].as_array().unwrap();
    assert!(rows
        .iter()
        .any(|v| v["proto"] == "tcp" && v["port"] == 88 && v["status"] == "working"));
    assert_eq!(
        r["stats"]["fragments"]["incomplete_with_first"].as_u64(),
        Some(lost.len() as u64)
    );
    let out = run(&["analyze", &tap("frag-drop", "client")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "FRAGMENTS DROPPED: 2 exchanges lost in fragments at 1 server port (udp/88 kerberos)"
        ),
        "{text}"
    );
    assert!(text.contains("MaxPacketSize"), "{text}");
}

/// The server tap sees every fragment: each answer completes, nothing is
/// flagged there. Both taps: the answers whole on one side, first fragments
/// only on the other — measured across the firewall.
#[test]
fn lab_fragments_server_tap_alone_shows_nothing_and_two_taps_measure_the_drop() {
    let r = analyze_json(&[&tap("frag-drop", "server")], &[0]);
    assert!(kinds(&r).is_empty(), "{}", r["findings"]);
    let r = analyze_json(
        &[
            "--inside",
            &tap("frag-drop", "client"),
            "--outside",
            &tap("frag-drop", "server"),
        ],
        &[1],
    );
    assert_eq!(kinds(&r), vec!["fragments-dropped"], "{}", r["findings"]);
    let f = findings(&r)[0];
    for e in f["evidence"].as_array().unwrap() {
        assert_eq!(e["whole_on"], "outside", "{e}");
        assert_eq!(e["confidence"], "high");
    }
    assert!(
        f["verdict"]
            .as_str()
            .unwrap()
            .contains("the firewall between the taps drops the later fragments"),
        "{f}"
    );
}

// ---- constructed: path MTU --------------------------------------------------

/// Writes `frames` (time after T0, bytes), sorted, to a pcap.
fn write(name: &str, mut frames: Vec<(u64, Vec<u8>)>) -> String {
    frames.sort_by_key(|(t, _)| *t);
    let p = tmp_path(name);
    let mut w = PcapWriter::create(&p, Link::Ethernet, 65535, false).unwrap();
    for (t, f) in &frames {
        w.write_packet(T0 + t, f).unwrap();
    }
    w.flush().unwrap();
    path_str(&p).to_string()
}

/// How a constructed download goes after its small first answer.
#[derive(Clone, Copy)]
struct Download {
    /// Payload bytes of the server's big segment.
    big: usize,
    df: bool,
    /// A segment as big as `big` passed and was acknowledged before.
    big_passed_before: bool,
    /// The retransmission is acknowledged in the end.
    answered: bool,
}

/// A client fetching from `server` port 80: a 200-byte answer that passes
/// (acknowledged), then a `d.big`-byte segment sent 5 more times with
/// doubling gaps, unanswered unless `d.answered`; the client sends its FIN
/// after 20 s (which acknowledges none of it).
fn download(frames: &mut Vec<(u64, Vec<u8>)>, client: IpAddr, server: IpAddr, d: Download) {
    let mut c = TcpConversation::new(client, 50_100, server, 80);
    let mut t = 0;
    let mut push = |frames: &mut Vec<(u64, Vec<u8>)>, f: Vec<u8>| {
        t += MS;
        frames.push((t, f));
    };
    for f in [c.syn(), c.syn_ack(), c.ack()] {
        push(frames, f);
    }
    let f = c.data_c2s(&[b'G'; 80]);
    push(frames, f);
    let f = c
        .s2c()
        .flags(tcp_flags::PSH | tcp_flags::ACK)
        .payload(&[b'h'; 200])
        .df(d.df)
        .build();
    c.next_s = c.next_s.wrapping_add(200);
    push(frames, f);
    let f = c.ack();
    push(frames, f);
    if d.big_passed_before {
        let f = c
            .s2c()
            .flags(tcp_flags::ACK)
            .payload(&vec![b'b'; d.big])
            .df(d.df)
            .build();
        c.next_s = c.next_s.wrapping_add(d.big as u32);
        push(frames, f);
        let f = c.ack();
        push(frames, f);
    }
    let big = vec![b'B'; d.big];
    let seg = c.s2c().flags(tcp_flags::ACK).payload(&big).df(d.df).build();
    let start = t + MS;
    frames.push((start, seg.clone()));
    let mut at = start;
    for k in 0..5 {
        at += (SEC / 5) << k;
        frames.push((at, seg.clone()));
    }
    if d.answered {
        c.next_s = c.next_s.wrapping_add(d.big as u32);
        frames.push((at + MS, c.ack()));
    } else {
        // It never came: the client's FIN acknowledges none of it.
        frames.push((start + 20 * SEC, c.fin_c()));
    }
}

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

const PMTU: Download = Download {
    big: 1448,
    df: true,
    big_passed_before: false,
    answered: false,
};

/// Constructed: 1448-byte segments with don't-fragment, unanswered, after a
/// 200-byte one passed: a path MTU black hole (high: 5 tries); the client's
/// FIN after it gave up is no answer. Over IPv6, the fix lets ICMPv6 "packet
/// too big" through.
#[test]
fn big_segments_lost_while_small_ones_pass_are_a_pmtu_black_hole_v4_and_v6() {
    let mut frames = Vec::new();
    download(&mut frames, v4(CLIENT), v4(SERVER), PMTU);
    let r = analyze_json(&[&write("pmtu-v4.pcap", frames)], &[1]);
    assert_eq!(kinds(&r), vec!["pmtu-black-hole"], "{}", r["findings"]);
    let e = &findings(&r)[0]["evidence"][0];
    assert_eq!(e["segment_bytes"], 1448);
    assert_eq!(e["passed_bytes"], 200);
    assert_eq!(e["retransmissions"], 5);
    assert_eq!(e["span_ms"], 6_200.0);
    assert_eq!(e["confidence"], "high");

    let c6: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let s6: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
    let mut frames = Vec::new();
    download(
        &mut frames,
        IpAddr::V6(c6),
        IpAddr::V6(s6),
        Download { big: 1428, ..PMTU },
    );
    let r = analyze_json(&[&write("pmtu-v6.pcap", frames)], &[1]);
    assert_eq!(kinds(&r), vec!["pmtu-black-hole"], "{}", r["findings"]);
    let fix = &findings(&r)[0]["fix"];
    assert_eq!(
        fix["nftables"][0],
        "nft insert rule inet filter forward ip6 daddr 2001:db8:1::10 icmpv6 type packet-too-big accept"
    );
    assert!(fix["summary"].as_str().unwrap().contains("packet too big"));
}

/// What is not a path MTU black hole: the same loss without don't-fragment
/// (routers would fragment it), with segments no bigger than every IPv4
/// path carries, after a segment as big already passed, or answered in the
/// end. The unanswered ones are still black holes.
#[test]
fn no_df_small_segments_a_big_one_that_passed_or_an_answer_are_not_pmtu() {
    let cases = [
        ("no-df", Download { df: false, ..PMTU }, Some("black-hole")),
        ("536", Download { big: 536, ..PMTU }, Some("black-hole")),
        (
            "passed",
            Download {
                big_passed_before: true,
                ..PMTU
            },
            Some("black-hole"),
        ),
        (
            "answered",
            Download {
                answered: true,
                ..PMTU
            },
            None,
        ),
    ];
    for (name, d, expect) in cases {
        let mut frames = Vec::new();
        download(&mut frames, v4(CLIENT), v4(SERVER), d);
        let p = write(&format!("pmtu-not-{name}.pcap"), frames);
        let r = analyze_json(&[&p], if expect.is_some() { &[1] } else { &[0] });
        let want: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
        assert_eq!(kinds(&r), want, "{name}: {}", r["findings"]);
    }
}

// ---- constructed: fragments -------------------------------------------------

/// A UDP query from the client at `t` and the server's `len`-byte answer in
/// 3 fragments, of which those in `keep` (by index) are written.
fn fragmented_answer(
    frames: &mut Vec<(u64, Vec<u8>)>,
    t: u64,
    (client, server): (IpAddr, IpAddr),
    (cport, port): (u16, u16),
    len: usize,
    keep: &[usize],
) {
    frames.push((
        t,
        Frame::new(Link::Ethernet)
            .ip(client, server)
            .udp(cport, port)
            .payload(&[b'q'; 60])
            .build(),
    ));
    let frags = Frame::new(Link::Ethernet)
        .ip(server, client)
        .ip_id((port ^ cport).wrapping_add((t / MS) as u16))
        .udp(port, cport)
        .payload(&vec![b'a'; len])
        .build_fragments(3);
    for (k, f) in frags.into_iter().enumerate() {
        if keep.contains(&k) {
            frames.push((t + MS + k as u64 * 10_000, f));
        }
    }
}

const V4: (IpAddr, IpAddr) = (IpAddr::V4(CLIENT), IpAddr::V4(SERVER));

/// Constructed: DNS answers (UDP 53) of 3,000 bytes whose first fragment
/// comes and later ones do not, three queries from two ports: one finding,
/// no Kerberos advice. Over IPv6 the same.
#[test]
fn answers_lost_in_fragments_are_found_for_any_udp_service_v4_and_v6() {
    let mut frames = Vec::new();
    fragmented_answer(&mut frames, 0, V4, (40_001, 53), 3000, &[0]);
    fragmented_answer(&mut frames, 2 * SEC, V4, (40_001, 53), 3000, &[0, 1]);
    fragmented_answer(&mut frames, 4 * SEC, V4, (40_002, 53), 3000, &[0]);
    // The capture goes on past the reassembly timeout.
    frames.push((
        60 * SEC,
        Frame::new(Link::Ethernet)
            .ip(V4.0, V4.1)
            .udp(40_009, 123)
            .payload(&[0; 48])
            .build(),
    ));
    let r = analyze_json(&[&write("frag-dns.pcap", frames)], &[1]);
    assert_eq!(kinds(&r), vec!["fragments-dropped"], "{}", r["findings"]);
    let f = findings(&r)[0];
    assert_eq!(
        (f["proto"].as_str(), f["port"].as_u64()),
        (Some("udp"), Some(53))
    );
    assert_eq!(evidence_ports(f), vec![40_001, 40_002]);
    let e = &f["evidence"][0];
    assert_eq!(e["datagrams"], 2);
    assert_eq!(e["fragments"], 3);
    assert_eq!(e["confidence"], "high");
    assert!(f["fix"].get("host_setting").is_none(), "{}", f["fix"]);
    assert_eq!(r["stats"]["fragments"]["incomplete_with_first"], 3);

    let v6 = (
        IpAddr::V6("2001:db8::10".parse().unwrap()),
        IpAddr::V6("2001:db8:1::10".parse().unwrap()),
    );
    let mut frames = Vec::new();
    fragmented_answer(&mut frames, 0, v6, (40_003, 88), 3000, &[0]);
    frames.push((
        60 * SEC,
        Frame::new(Link::Ethernet)
            .ip(v6.0, v6.1)
            .udp(40_009, 123)
            .payload(&[0; 48])
            .build(),
    ));
    let r = analyze_json(&[&write("frag-v6.pcap", frames)], &[1]);
    assert_eq!(kinds(&r), vec!["fragments-dropped"], "{}", r["findings"]);
    let fix = &findings(&r)[0]["fix"];
    assert!(
        fix["nftables"][0]
            .as_str()
            .unwrap()
            .contains("exthdr frag exists"),
        "{fix}"
    );
    assert_eq!(fix["host_setting"]["value"], "MaxPacketSize");
}

/// What must not be flagged: an answer whose fragments all come; one whose
/// first fragment comes less than a second before the capture ends (it may
/// be the capture that cut it: counted in `incomplete_at_end`); later
/// fragments without their first (no ports: nothing to name).
#[test]
fn complete_answers_the_capture_end_and_orphan_fragments_are_not_flagged() {
    let mut frames = Vec::new();
    fragmented_answer(&mut frames, 0, V4, (40_011, 53), 3000, &[0, 1, 2]);
    fragmented_answer(&mut frames, SEC, V4, (40_012, 53), 3000, &[1, 2]);
    fragmented_answer(&mut frames, 40 * SEC, V4, (40_013, 53), 3000, &[0]);
    let r = analyze_json(&[&write("frag-not.pcap", frames)], &[0]);
    assert!(kinds(&r).is_empty(), "{}", r["findings"]);
    let fr = &r["stats"]["fragments"];
    assert_eq!(fr["datagrams_reassembled"], 1);
    assert_eq!(fr["incomplete_at_end"], 1);
    assert_eq!(fr["incomplete_with_first"], 0);
}

// ---- every output -----------------------------------------------------------

/// Both kinds in every output a user or a tool reads: NDJSON `finding`
/// records, the CSV findings table, ECS alerts (`rule.name`), with the
/// same evidence count as the JSON report.
#[test]
fn both_kinds_reach_ndjson_csv_and_ecs() {
    for (scenario, kind) in [
        ("pmtu-blackhole", "pmtu-black-hole"),
        ("frag-drop", "fragments-dropped"),
    ] {
        let path = tap(scenario, "client");
        let r = analyze_json(&[&path], &[1]);
        let evidence = findings(&r)[0]["evidence"].as_array().unwrap().len();
        let out = |args: &[&str]| {
            let o = run(args);
            assert_eq!(o.status.code(), Some(1), "{args:?}");
            String::from_utf8(o.stdout).unwrap()
        };
        let nd = out(&["analyze", &path, "-f", "ndjson"]);
        let found: Vec<Value> = nd
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["record"] == "finding" && v["kind"] == kind)
            .collect();
        assert_eq!(found.len(), 1, "{scenario}: {nd}");
        assert_eq!(found[0]["evidence"].as_array().unwrap().len(), evidence);
        let csv = out(&["analyze", &path, "-f", "csv", "--csv", "findings"]);
        assert!(
            csv.lines()
                .skip(1)
                .any(|l| l.contains(&format!(",{kind},")) && l.contains(&format!(",{evidence},"))),
            "{scenario}: {csv}"
        );
        let ecs = out(&["analyze", &path, "-f", "ecs"]);
        assert!(
            ecs.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .any(|v| v["event"]["kind"] == "alert" && v["rule"]["name"] == kind),
            "{scenario}: {ecs}"
        );
    }
}
