//! Issue #25: after the handshake — connections a firewall forgets after an
//! idle gap (`killed-after-idle`) and black holes mid-stream (`black-hole`),
//! on the real-peer lab capture (an nftables firewall whose conntrack
//! forgets established connections after 15 s) and on constructed captures,
//! with what must not be flagged: a connection idle and then closed
//! normally, a retransmission that is answered, a reset the host itself
//! sent.
//!
//! Only documentation addresses: 192.0.2.0/24 clients, 198.51.100.0/24
//! servers.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use exflow_testkit::{Link, PcapWriter, TcpConversation};
use serde_json::Value;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const MIN: u64 = 60 * SEC;
const T0: u64 = 1_795_305_697_000_000_000;
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

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

/// Handshake and one answered request at `t`; returns the conversation
/// and the time of its last packet.
fn exchange(frames: &mut Vec<(u64, Vec<u8>)>, t: u64, cport: u16) -> (TcpConversation, u64) {
    let mut c = TcpConversation::new(v4(CLIENT), cport, v4(SERVER), 389);
    let pkts = [
        c.syn(),
        c.syn_ack(),
        c.ack(),
        c.data_c2s(b"bind request...."),
        c.data_s2c(b"bind response..."),
        c.ack(),
    ];
    let n = pkts.len() as u64;
    for (k, f) in pkts.into_iter().enumerate() {
        frames.push((t + k as u64 * MS, f));
    }
    (c, t + (n - 1) * MS)
}

/// `data` from the client at `t`, sent again `retries` times with doubling
/// gaps from 1 s (as a TCP retransmission timer does), never answered.
fn unanswered(frames: &mut Vec<(u64, Vec<u8>)>, c: &mut TcpConversation, t: u64, retries: u32) {
    let seq = c.next_c;
    frames.push((t, c.data_c2s(b"search request..")));
    let mut at = t;
    for k in 0..retries {
        at += SEC << k;
        c.next_c = seq;
        frames.push((at, c.data_c2s(b"search request..")));
    }
}

/// The lab: the client tap sees the victim's search after 25 s of silence
/// retransmitted with no answer (the firewall forgot the connection after
/// 15 s); the control connection's search after 4 s was answered. The
/// finding names the victim, its silence and the control's as the longest
/// that survived — all read from truth.json, not written here.
#[test]
fn lab_idle_kill_is_found_on_the_client_tap_with_the_timeout_bracketed() {
    let dir = shared_captures().join("lab/idle-kill");
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let results = &truth["client_results"][0]["results"];
    let victim = &results["victim"];
    let control = &results["control"];
    assert_eq!(victim["after_idle"], "no answer");
    assert_eq!(control["after_idle"], "answered");
    let server = truth["hosts"]["server"]
        .as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();

    let client_tap = dir.join("client-tap.pcap");
    let r = analyze_json(&[path_str(&client_tap)], &[1]);
    assert_eq!(kinds(&r), vec!["killed-after-idle"], "{}", r["findings"]);
    let f = findings(&r)[0];
    assert_eq!(f["server"], server.as_str());
    assert_eq!(f["port"], 389);
    assert_eq!(f["proto"], "tcp");
    assert_eq!(f["clients"], serde_json::json!([truth["hosts"]["client"]]));
    assert_eq!(f["severity"], "action");
    let e = &f["evidence"][0];
    assert_eq!(e["type"], "data-unanswered");
    assert_eq!(e["client_port"], victim["local_port"]);
    assert_eq!(e["direction"], "request");
    assert!(e["reset"].is_null(), "dropped, not reset: {e}");
    // The silence is the client's idle time, in whole seconds.
    let idle = victim["idle_s"].as_f64().unwrap();
    let gap = e["idle_gap_s"].as_f64().unwrap();
    assert!(gap <= idle && gap > idle - 1.0, "gap {gap} vs idle {idle}");
    // Retransmitted for as long as the client waited, never answered.
    assert!(e["retransmissions"].as_u64().unwrap() >= 3, "{e}");
    let waited_ms = victim["after_idle_wait_s"].as_f64().unwrap() * 1000.0;
    let span = e["span_ms"].as_f64().unwrap();
    assert!(span > 1000.0 && span <= waited_ms, "span {span} ms");
    // The estimate: at most the victim's silence, above the control's.
    let est = &f["idle_timeout"];
    assert_eq!(est["killed_after_idle_s"], gap as u64);
    assert_eq!(
        est["longest_surviving_idle_s"],
        control["idle_s"].as_f64().unwrap() as u64
    );
    let v = f["verdict"].as_str().unwrap();
    assert!(
        v.contains("idle ≥ ~25 s are dropped") && v.contains("longest surviving idle gap was 4 s"),
        "{v}"
    );
    let fix = &f["fix"];
    assert!(
        fix["nftables"][0]
            .as_str()
            .unwrap()
            .contains("established:"),
        "{fix}"
    );
    // Host keep-alives from the knowledge table, set below the silence
    // that survived.
    let k = &fix["keepalive"];
    assert_eq!(
        k["registry_key"],
        r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters"
    );
    assert_eq!(k["value"], "KeepAliveTime");
    assert_eq!(k["type"], "REG_DWORD");
    assert_eq!(k["article"], "cc782936");
    assert_eq!(
        k["set_to_ms"],
        est["longest_surviving_idle_s"].as_u64().unwrap() * 1000
    );
    // The text report says the same.
    let out = run(&["analyze", path_str(&client_tap)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("KILLED-AFTER-IDLE tcp/389"), "{text}");
    assert!(
        text.contains("after 25 s idle, request data sent"),
        "{text}"
    );
}

/// The server tap is behind the firewall, which dropped the search: there
/// the victim simply went quiet, which proves nothing. Both taps together
/// show the kill (from the inside tap's flow).
#[test]
fn lab_idle_kill_server_tap_alone_shows_nothing_and_two_taps_show_the_kill() {
    let dir = shared_captures().join("lab/idle-kill");
    let server_tap = dir.join("server-tap.pcap");
    let r = analyze_json(&[path_str(&server_tap)], &[0]);
    assert!(kinds(&r).is_empty(), "{}", r["findings"]);

    let client_tap = dir.join("client-tap.pcap");
    let r = analyze_json(
        &[
            "--inside",
            path_str(&client_tap),
            "--outside",
            path_str(&server_tap),
        ],
        &[1],
    );
    assert!(
        kinds(&r).contains(&"killed-after-idle".to_string()),
        "{}",
        r["findings"]
    );
}

/// Constructed: one connection killed after 30 min of silence (its data
/// retransmitted 5 times, unanswered), one that survived 10 min of silence:
/// the estimate brackets the timeout between them.
#[test]
fn a_drop_after_a_long_silence_is_a_kill_and_the_survivor_brackets_the_timeout() {
    let mut frames = Vec::new();
    let (mut a, end) = exchange(&mut frames, 0, 50_001);
    unanswered(&mut frames, &mut a, end + 30 * MIN, 5);
    let (mut b, end) = exchange(&mut frames, SEC, 50_002);
    frames.push((end + 10 * MIN, b.data_c2s(b"search request..")));
    frames.push((end + 10 * MIN + MS, b.data_s2c(b"search result...")));
    frames.push((end + 10 * MIN + 2 * MS, b.ack()));
    let p = write("after-handshake-kill.pcap", frames);
    let r = analyze_json(&[&p], &[1]);
    assert_eq!(kinds(&r), vec!["killed-after-idle"], "{}", r["findings"]);
    let f = findings(&r)[0];
    assert_eq!(f["idle_timeout"]["killed_after_idle_s"], 30 * 60);
    assert_eq!(f["idle_timeout"]["longest_surviving_idle_s"], 10 * 60);
    let e = &f["evidence"][0];
    assert_eq!(e["client_port"], 50_001);
    assert_eq!(e["retransmissions"], 5);
    assert_eq!(e["retransmitted_bytes"], 5 * 16);
    assert_eq!(e["span_ms"], 31_000.0);
    assert_eq!(e["confidence"], "high");
    let v = f["verdict"].as_str().unwrap();
    assert!(
        v.contains("idle ≥ ~30 min are dropped")
            && v.contains("longest surviving idle gap was 10 min"),
        "{v}"
    );
}

/// Constructed: after 20 min of silence the client's data is answered by a
/// reset from the server's address whose TTL is not the server's: forged
/// by the firewall that forgot the connection. The same reset with the
/// server's own TTL is the host's decision, not flagged.
#[test]
fn a_forged_reset_after_a_silence_is_a_kill_and_the_hosts_own_is_not() {
    for (ttl, expect) in [(250u8, true), (64u8, false)] {
        let mut frames = Vec::new();
        let (mut c, end) = exchange(&mut frames, 0, 50_010);
        let t = end + 20 * MIN;
        frames.push((t, c.data_c2s(b"search request..")));
        frames.push((t + MS, c.s2c().flags(0x14).ttl(ttl).build()));
        let p = write(&format!("after-handshake-reset-{ttl}.pcap"), frames);
        let r = analyze_json(&[&p], if expect { &[1] } else { &[0] });
        if !expect {
            assert!(kinds(&r).is_empty(), "{}", r["findings"]);
            continue;
        }
        assert_eq!(kinds(&r), vec!["killed-after-idle"], "{}", r["findings"]);
        let e = &findings(&r)[0]["evidence"][0];
        assert_eq!(e["retransmissions"], 0);
        assert_eq!(e["reset"]["type"], "rst");
        assert_eq!(e["reset"]["forged"], true);
        assert_eq!(e["reset"]["ttl"], 250);
        assert_eq!(e["idle_gap_s"], 20.0 * 60.0);
    }
}

/// Constructed: mid-stream, 100 ms after the last answer, data is sent 4
/// more times over 15 s and never answered: a black hole, not an idle kill.
#[test]
fn data_retransmitted_unanswered_without_a_silence_is_a_black_hole() {
    let mut frames = Vec::new();
    let (mut c, end) = exchange(&mut frames, 0, 50_020);
    unanswered(&mut frames, &mut c, end + 100 * MS, 4);
    let p = write("after-handshake-black-hole.pcap", frames);
    let r = analyze_json(&[&p], &[1]);
    assert_eq!(kinds(&r), vec!["black-hole"], "{}", r["findings"]);
    let f = findings(&r)[0];
    assert!(f.get("idle_timeout").is_none(), "{f}");
    assert!(f["fix"].get("keepalive").is_none(), "{f}");
    let e = &f["evidence"][0];
    assert_eq!(e["idle_gap_s"], 0.0);
    assert_eq!(e["retransmissions"], 4);
    assert_eq!(e["span_ms"], 15_000.0);
}

/// What must not be flagged: a connection idle 45 min and then closed
/// normally; a retransmission after a silence that is answered in the end;
/// data sent once just before the capture ends.
#[test]
fn idle_then_closed_answered_retransmissions_and_a_cut_capture_are_not_flagged() {
    let mut frames = Vec::new();
    // Idle, then a normal close.
    let (mut a, end) = exchange(&mut frames, 0, 50_030);
    let t = end + 45 * MIN;
    frames.push((t, a.fin_c()));
    frames.push((t + MS, a.fin_s()));
    frames.push((t + 2 * MS, a.ack()));
    // Idle, then data retransmitted twice and answered.
    let (mut b, end) = exchange(&mut frames, SEC, 50_031);
    let t = end + 40 * MIN;
    unanswered(&mut frames, &mut b, t, 2);
    frames.push((t + 3 * SEC + MS, b.data_s2c(b"search result...")));
    frames.push((t + 3 * SEC + 2 * MS, b.ack()));
    // Data once, right before the end.
    let (mut c, _) = exchange(&mut frames, 2 * SEC, 50_032);
    frames.push((end + 45 * MIN + 5 * MS, c.data_c2s(b"search request..")));
    let p = write("after-handshake-not-flagged.pcap", frames);
    let r = analyze_json(&[&p], &[0]);
    assert!(kinds(&r).is_empty(), "{}", r["findings"]);
}
