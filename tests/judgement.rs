//! Issue #16: a judgement that real traffic cannot fool — scans, sweeps and
//! floods are findings of their own and no blocked port; a real client's
//! failure beside them stays judged; multicast and broadcast are never
//! blocked; a one-way capture is said to be one, and what it cannot tell is
//! not judged; scans alone exit 0.
//!
//! Only documentation addresses: 192.0.2.0/24 and 203.0.113.0/24 sources,
//! 198.51.100.0/24 servers.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use common::*;
use exflow_testkit::{Frame, TcpConversation};
use serde_json::Value;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const T0: u64 = 1_795_305_697_000_000_000;
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

/// Writes `frames` (time after T0, bytes), sorted, to a pcap.
fn write(name: &str, frames: Vec<(u64, Vec<u8>)>) -> String {
    let frames: Vec<(u64, Vec<u8>)> = frames.into_iter().map(|(t, f)| (T0 + t, f)).collect();
    write_pcap(name, &frames)
}

/// A working connection (handshake, one request, one answer) at `t`.
fn working(frames: &mut Vec<(u64, Vec<u8>)>, t: u64, client: Ipv4Addr, port: u16) {
    let mut c = TcpConversation::new(v4(client), 40_000, v4(SERVER), port);
    for (k, f) in [c.syn(), c.syn_ack(), c.ack()].into_iter().enumerate() {
        frames.push((t + k as u64 * MS, f));
    }
}

fn kinds(r: &Value) -> Vec<(String, u64)> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn code(args: &[&str]) -> i32 {
    let mut all = vec!["analyze"];
    all.extend_from_slice(args);
    run(&all).status.code().unwrap_or(-1)
}

/// A sweep (one source, port 445 on 20 hosts, one SYN each), a flood (40
/// sources, one SYN each to port 3389), and beside the flood a real client
/// whose retransmitted SYNs to the same port are dropped: the sweep and
/// the flood are findings of their own with no fix, the real client's
/// failure is the one blocked port.
#[test]
fn sweeps_and_floods_are_not_blocked_ports_but_a_real_client_beside_them_is() {
    let mut frames = Vec::new();
    let scanner = Ipv4Addr::new(203, 0, 113, 7);
    for h in 0..20u8 {
        let target = Ipv4Addr::new(198, 51, 100, 100 + h);
        let mut c = TcpConversation::new(v4(scanner), 50_000 + u16::from(h), v4(target), 445);
        frames.push((u64::from(h) * 10 * MS, c.syn()));
    }
    for s in 0..40u8 {
        let src = Ipv4Addr::new(203, 0, 113, 100 + s);
        let mut c = TcpConversation::new(v4(src), 1024 + u16::from(s), v4(SERVER), 3389);
        frames.push((SEC + u64::from(s) * MS, c.syn()));
    }
    // The real client: three SYNs 1 s apart, never answered.
    let mut c = TcpConversation::new(v4(CLIENT), 49_999, v4(SERVER), 3389);
    for k in 0..3 {
        frames.push((SEC + k * SEC, c.syn()));
    }
    // The capture goes on (nothing is cut by its end).
    working(&mut frames, 20 * SEC, CLIENT, 443);
    let p = write("judgement-sweep-flood.pcap", frames);
    let r = analyze_json(&[&p], &[1]);
    let mut got = kinds(&r);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("blocked".to_string(), 3389),
            ("flood".to_string(), 3389),
            ("sweep".to_string(), 445)
        ],
        "{}",
        r["findings"]
    );
    for f in r["findings"].as_array().unwrap() {
        match f["kind"].as_str().unwrap() {
            "blocked" => assert_eq!(f["clients"], serde_json::json!([CLIENT.to_string()])),
            "sweep" => {
                assert_eq!(f["fix"], serde_json::json!({}), "no allow fix for a sweep");
                let e = &f["evidence"][0];
                assert_eq!(e["type"], "probes");
                assert_eq!(e["targets_total"], 20);
                assert_eq!(e["sources"], serde_json::json!([scanner.to_string()]));
                assert_eq!(f["severity"], "info");
            }
            "flood" => {
                assert_eq!(f["fix"], serde_json::json!({}), "no allow fix for a flood");
                assert_eq!(f["evidence"][0]["sources_total"], 40);
                assert_eq!(f["evidence"][0]["probes"], 40);
            }
            k => panic!("unexpected {k}"),
        }
    }
}

/// Scans alone are nothing to act on: exit 0. The public nmap-style scan
/// (29 ports, one SYN each) is one port-scan finding.
#[test]
fn a_scan_alone_exits_0_and_is_one_finding() {
    let p = shared_captures()
        .join("public/markofu+pcaps/PracticalPacketAnalysis__ppa-capture-files__portscan.pcap");
    let p = path_str(&p);
    let r = analyze_json(&[p], &[0]);
    assert_eq!(kinds(&r), vec![("port-scan".to_string(), 0)]);
    assert_eq!(r["findings"][0]["evidence"][0]["ports_total"], 29);
    assert_eq!(code(&[p]), 0);
    // The lab's real nmap scan beside a real block: exit 1 for the block.
    let lab = shared_captures().join("lab/scan-dyn-drop/client-tap.pcap");
    assert_eq!(code(&[path_str(&lab)]), 1);
}

/// LLMNR to 224.0.0.252 and ff02::1:3, mDNS to 224.0.0.251 and a NetBIOS
/// name query to a subnet broadcast, none answered: never blocked. An
/// LLMNR query answered by a host's unicast reply is working.
#[test]
fn multicast_and_broadcast_are_never_blocked() {
    let query = {
        let mut q = vec![0x12, 0x34, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend(b"\x04wpad\x00\x00\x01\x00\x01");
        q
    };
    let mut frames = Vec::new();
    let groups: [(IpAddr, u16); 4] = [
        (v4(Ipv4Addr::new(224, 0, 0, 252)), 5355),
        ("ff02::1:3".parse().unwrap(), 5355),
        (v4(Ipv4Addr::new(224, 0, 0, 251)), 5353),
        (v4(Ipv4Addr::new(192, 0, 2, 255)), 137),
    ];
    for (k, (group, port)) in groups.iter().enumerate() {
        let src: IpAddr = if group.is_ipv6() {
            "2001:db8::10".parse().unwrap()
        } else {
            v4(CLIENT)
        };
        for n in 0..3 {
            let f = Frame::ethernet()
                .ip(src, *group)
                .udp(50_000 + k as u16, *port)
                .payload(&query)
                .build();
            frames.push((k as u64 * SEC + n * 100 * MS, f));
        }
    }
    // An LLMNR query from another port, answered by a host's own address.
    let asker = Ipv4Addr::new(192, 0, 2, 11);
    let q = Frame::ethernet()
        .ip(v4(asker), v4(Ipv4Addr::new(224, 0, 0, 252)))
        .udp(51_000, 5355)
        .payload(&query)
        .build();
    let mut answer = query.clone();
    answer[2] = 0x80;
    let a = Frame::ethernet()
        .ip(v4(Ipv4Addr::new(192, 0, 2, 30)), v4(asker))
        .udp(5355, 51_000)
        .payload(&answer)
        .build();
    frames.push((5 * SEC, q));
    frames.push((5 * SEC + 2 * MS, a));
    working(&mut frames, 20 * SEC, CLIENT, 443);
    let p = write("judgement-multicast.pcap", frames);
    let r = analyze_json(&[&p], &[0]);
    assert!(kinds(&r).is_empty(), "{}", r["findings"]);
    let services: Vec<&str> = r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["service"].as_str().unwrap())
        .collect();
    assert!(
        services.contains(&"llmnr") && services.contains(&"mdns"),
        "{services:?}"
    );
    let llmnr_working = r["verdicts"].as_array().unwrap().iter().any(|v| {
        v["service"] == "llmnr"
            && v["server"] == "224.0.0.252"
            && v["status"] == "working"
            && v["working"] == 1
            && v["clients"]
                .as_array()
                .unwrap()
                .contains(&Value::from(asker.to_string()))
    });
    assert!(llmnr_working, "{}", r["verdicts"]);
}

/// `tcpdump -r IN -w OUT FILTER`.
fn tcpdump(input: &std::path::Path, out: &str, filter: &str) -> String {
    let p = tmp_path(out);
    let st = Command::new("tcpdump")
        .arg("-r")
        .arg(input)
        .arg("-w")
        .arg(&p)
        .arg(filter)
        .output()
        .expect("tcpdump (scripts/setup installs it)");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    path_str(&p).to_string()
}

/// One direction of a lab capture (a SPAN session mirroring only what the
/// clients send): the report says the capture is one-way for the server;
/// the firewall's forged resets are not seen, and the lone SYNs they
/// answered are not called blocked; retransmitted SYNs (dyn-drop) still
/// are, on the ports the truth names.
#[test]
fn a_one_way_capture_is_said_to_be_one_and_not_misjudged() {
    let lab = shared_captures().join("lab");
    let both = analyze_json(
        &[path_str(&lab.join("dyn-reject-rst/client-tap.pcap"))],
        &[1],
    );
    assert!(both.get("one_way").is_none());
    assert!(
        !kinds(&both).is_empty(),
        "two-way: the forged resets are blocks"
    );

    let one = tcpdump(
        &lab.join("dyn-reject-rst/client-tap.pcap"),
        "oneway-rst.pcap",
        "src net 192.0.2.0/24",
    );
    let r = analyze_json(&[&one], &[0]);
    assert_eq!(
        r["one_way"]["servers"],
        serde_json::json!(["198.51.100.10"])
    );
    assert!(r["one_way"]["connections"].as_u64() > Some(0));
    assert!(kinds(&r).is_empty(), "{}", r["findings"]);
    let text = String::from_utf8(run(&["analyze", &one]).stdout).unwrap();
    assert!(text.contains("One-way capture for 1 server"), "{text}");

    let one = tcpdump(
        &lab.join("dyn-drop/client-tap.pcap"),
        "oneway-drop.pcap",
        "src net 192.0.2.0/24",
    );
    let r = analyze_json(&[&one], &[1]);
    assert!(r.get("one_way").is_some());
    let blocked: Vec<u64> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "blocked")
        .map(|f| f["port"].as_u64().unwrap())
        .collect();
    assert_eq!(blocked, vec![55000, 55001]);
}
