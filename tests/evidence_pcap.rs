//! `--write-failed FILE` (#21 point 2): the evidence pcap holds the packets
//! behind the findings — analysed again it shows the same blocked ports —
//! and by default no authentication material: a bind carrying an NTLM
//! token is cut to its headers while the mapper's answer keeps its towers.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::pdus::{epm_bind, epm_bind_ack, ept_map_answer_at, ept_map_nspi};
use common::*;
use exflow_testkit::{Link, PcapWriter, TcpConversation};
use serde_json::Value;

const MS: u64 = 1_000_000;
const T0: u64 = 1_795_305_697_000_000_000;

fn blocked(r: &Value) -> Vec<(String, u64)> {
    let mut b: Vec<(String, u64)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "blocked")
        .map(|f| {
            (
                f["server"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap(),
            )
        })
        .collect();
    b.sort();
    b
}

/// tshark's `fields` of every packet of `file` (the oracle that reads it).
fn tshark_fields(file: &std::path::Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = std::process::Command::new("tshark");
    cmd.args(["-r", path_str(file), "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut c: Vec<String> = l.split('\t').map(str::to_string).collect();
            c.resize(fields.len(), String::new());
            c
        })
        .collect()
}

#[test]
fn the_evidence_shows_the_same_blocked_ports() {
    for capture in [
        "lab/dyn-drop/client-tap.pcap",
        "lab/scan-dyn-drop/client-tap.pcap",
    ] {
        let p = shared_captures().join(capture);
        let ev = tmp_path(&format!("evidence-{}.pcap", capture.replace('/', "-")));
        let full = run(&[
            "analyze",
            "-f",
            "json",
            path_str(&p),
            "--write-failed",
            path_str(&ev),
        ]);
        assert_eq!(full.status.code(), Some(1), "{}", stderr(&full));
        assert!(stderr(&full).contains("packets of"), "{}", stderr(&full));
        let full: Value = serde_json::from_slice(&full.stdout).unwrap();
        let again = analyze_json(&[path_str(&ev)], &[1]);
        assert!(!blocked(&full).is_empty());
        assert_eq!(blocked(&again), blocked(&full), "{capture}");
        let packets = |r: &Value| r["stats"]["packets"].as_u64().unwrap();
        assert!(packets(&again) > 0 && packets(&again) <= packets(&full));
        let _ = std::fs::remove_file(&ev);
    }
    // Standard input cannot be read twice: a clear error, before any work.
    let out = run(&["analyze", "-", "--write-failed", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The EPM bind with an NTLM token behind a sec_trailer (auth_length 16).
fn bind_with_ntlm() -> Vec<u8> {
    let mut b = epm_bind();
    b.extend([10, 2, 0, 0, 0, 0, 0, 0]); // NTLMSSP, connect level, context 0
    b.extend(b"NTLMSSP\0SECRET!!");
    let len = b.len() as u16;
    b[8..10].copy_from_slice(&len.to_le_bytes());
    b[10..12].copy_from_slice(&16u16.to_le_bytes());
    b
}

#[test]
fn authentication_does_not_leave_unless_asked() {
    let server = Ipv4Addr::new(198, 51, 100, 10);
    let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let mut c = TcpConversation::new(client, 40000, IpAddr::V4(server), 135);
    let mut frames = vec![c.syn(), c.syn_ack(), c.ack()];
    frames.push(c.data_c2s(&bind_with_ntlm()));
    frames.push(c.data_s2c(&epm_bind_ack()));
    frames.push(c.data_c2s(&ept_map_nspi()));
    frames.push(c.data_s2c(&ept_map_answer_at(server, 4997)));
    frames.extend([c.fin_c(), c.fin_s(), c.ack()]);
    // The follow-up is never answered: a blocked port.
    let mut f = TcpConversation::new(client, 40001, IpAddr::V4(server), 4997);
    frames.extend([f.syn(), f.syn(), f.syn()]);
    let timed: Vec<(u64, Vec<u8>)> = frames
        .into_iter()
        .enumerate()
        .map(|(k, fr)| (T0 + k as u64 * 300 * MS, fr))
        .collect();
    let p = write_pcap("evidence-ntlm.pcap", &timed);
    let ev = tmp_path("evidence-ntlm-out.pcap");
    let whole = tmp_path("evidence-ntlm-whole.pcap");
    run(&["analyze", &p, "--write-failed", path_str(&ev)]);
    run(&[
        "analyze",
        &p,
        "--write-failed",
        path_str(&whole),
        "--write-failed-payloads",
    ]);
    let cut = std::fs::read(&ev).unwrap();
    let all = std::fs::read(&whole).unwrap();
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(!has(&cut, b"NTLMSSP"), "the NTLM token left by default");
    assert!(has(&all, b"NTLMSSP"), "--write-failed-payloads keeps it");
    // The answer's tower (port 4997 = 0x1385, big endian in the floor) stays.
    assert!(
        has(&cut, &[0x13, 0x85]),
        "the mapper's answer kept its towers"
    );
    // And the evidence still makes the hand-off and its block.
    let r = analyze_json(&[path_str(&ev)], &[1]);
    assert_eq!(r["handoffs"][0]["port"], 4997);
    assert_eq!(blocked(&r), [("198.51.100.10".to_string(), 4997)]);
    for x in [&ev, &whole] {
        let _ = std::fs::remove_file(x);
    }
}

/// Two taps: a pcapng whose interfaces are the taps, read by tshark (the
/// oracle); the blocked SYNs to the announced ports are on the inside
/// interface only (the firewall dropped them), the mapper's conversation on
/// both; analysed again the file shows the same blocked ports. Inputs of
/// two link types make a pcapng too (a pcap holds one).
#[test]
fn two_taps_and_mixed_link_types_make_a_pcapng_naming_where_each_packet_was_seen() {
    let dir = shared_captures().join("lab/dyn-drop");
    let (inside, outside) = (dir.join("client-tap.pcap"), dir.join("server-tap.pcap"));
    let ev = tmp_path("evidence-two-taps.pcapng");
    let out = run(&[
        "analyze",
        "-f",
        "json",
        "--inside",
        path_str(&inside),
        "--outside",
        path_str(&outside),
        "--write-failed",
        path_str(&ev),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let full: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<(String, String, String)> = tshark_fields(
        &ev,
        &["frame.interface_name", "tcp.dstport", "tcp.flags.syn"],
    )
    .into_iter()
    .map(|c| (c[0].clone(), c[1].clone(), c[2].clone()))
    .collect();
    for (_, port) in blocked(&full) {
        let syns = |tap: &str| {
            rows.iter()
                .filter(|(i, p, s)| i == tap && *p == port.to_string() && s == "1")
                .count()
        };
        assert!(syns("inside") >= 2, "port {port}: {rows:?}");
        assert_eq!(syns("outside"), 0, "port {port}");
    }
    let mapper = |tap: &str| {
        rows.iter()
            .filter(|(i, p, _)| i == tap && p == "135")
            .count()
    };
    assert!(mapper("inside") > 0 && mapper("outside") > 0);
    let again = analyze_json(&[path_str(&ev)], &[1]);
    assert_eq!(blocked(&again), blocked(&full));

    // Two link types in one run: the lab's Ethernet capture and a Linux
    // cooked capture of a SYN to 445 sent three times, never answered.
    let sll = tmp_path("evidence-sll.pcap");
    let mut w = PcapWriter::create(&sll, Link::Sll, 65535, false).unwrap();
    let mut c = TcpConversation::new(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 30)),
        50_445,
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20)),
        445,
    )
    .link(Link::Sll);
    for k in 0..3 {
        w.write_packet(T0 + k * 1_000 * MS, &c.syn()).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let ev = tmp_path("evidence-mixed.pcap");
    let out = run(&[
        "analyze",
        "-f",
        "json",
        path_str(&inside),
        path_str(&sll),
        "--write-failed",
        path_str(&ev),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let full: Value = serde_json::from_slice(&out.stdout).unwrap();
    let again = analyze_json(&[path_str(&ev)], &[1]);
    assert_eq!(blocked(&again), blocked(&full));
    assert!(blocked(&full).contains(&("198.51.100.20".to_string(), 445)));
    let bytes = std::fs::read(&ev).unwrap();
    assert_eq!(&bytes[..4], &0x0A0D_0D0Au32.to_le_bytes(), "a pcapng");
    let rows = tshark_fields(&ev, &["frame.interface_name", "frame.encap_type"]);
    let encaps: std::collections::BTreeSet<&str> = rows.iter().map(|c| c[1].as_str()).collect();
    assert_eq!(encaps.len(), 2, "{rows:?}");
}

/// The DCOM activator's conversation is the evidence of its hand-off as
/// the endpoint mapper's is (#22): on zeek's kerberos135_auth trace (an
/// unfollowed RemoteCreateInstance answer) the file holds every packet of
/// the port-135 conversation, its Kerberos tokens zeroed or cut.
#[test]
fn the_dcom_activators_conversation_is_in_the_evidence() {
    let p = shared_captures()
        .join("public/zeek+zeek/testing__btest__Traces__dce-rpc__kerberos135_auth.pcapng");
    let ev = tmp_path("evidence-dcom.pcap");
    let full = run(&[
        "analyze",
        "-f",
        "json",
        path_str(&p),
        "--write-failed",
        path_str(&ev),
    ]);
    assert_eq!(full.status.code(), Some(1), "{}", stderr(&full));
    let full: Value = serde_json::from_slice(&full.stdout).unwrap();
    assert_eq!(full["handoffs"][0]["operation"], "remote-create-instance");
    let again = analyze_json(&[path_str(&ev)], &[0, 1]);
    assert_eq!(again["stats"]["packets"], full["stats"]["packets"]);
    let flows = again["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["server_port"], 135);
    // tshark still reads DCE/RPC PDUs with authentication in the file:
    // kept, their tokens zeroed (the others cut to the headers).
    assert!(tshark_fields(&ev, &["dcerpc.cn_auth_len"])
        .iter()
        .any(|c| !c[0].is_empty() && c[0] != "0"));
}
