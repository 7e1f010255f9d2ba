//! DCE/RPC inside SMB named pipes (#24), end to end through the real
//! binary: the lab captures `tests/data/lab/smb-pipe-allow` and
//! `smb-pipe-drop` (Samba 4.17 AD DC and impacket 0.12.0 across an
//! nftables firewall; every expectation read from their truth.json, which
//! was counted with tshark), zeek's `dce-rpc/mapi.pcap` (SMB1
//! TransactNmPipe over NetBIOS 139), and captures built here from the
//! lab's own SMB bytes: cut into 1-byte segments, reordered, and with
//! hostile messages (lengths that lie, compounds that loop, thousands of
//! pipes and unanswered requests, encrypted SMB3).

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use common::{analyze_json, findings, run, shared_captures, write_pcap};
use exflow_testkit::TcpConversation;
use serde_json::Value;

const LAB: &str = "tests/data/lab";

fn truth(scenario: &str) -> Value {
    let p = common::crate_root()
        .join(LAB)
        .join(scenario)
        .join("truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn tap(scenario: &str, which: &str) -> String {
    format!("{LAB}/{scenario}/{which}-tap.pcap")
}

/// The report's flows to TCP `port`.
fn flows_to(r: &Value, port: u64) -> Vec<&Value> {
    r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["server_port"] == port && f["proto"] == "tcp")
        .collect()
}

/// `tcp A:p -> B:q` of truth.json: the client port.
fn client_port(flow: &str) -> u64 {
    flow.split(&[' ', ':'][..]).nth(2).unwrap().parse().unwrap()
}

/// A truth.json pipe or interface name as the report shows pipe names.
fn pipe(name: &str) -> String {
    name.trim_start_matches('\\').to_ascii_lowercase()
}

/// The ept_map answers of truth.json that named a port: (pipe transport
/// smb1/smb2, interface uuid, port, client ports of the connections that
/// followed it).
fn answers(t: &Value) -> Vec<(String, String, u64, Vec<u64>)> {
    t["ept_map_answers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["announced_port"].is_u64())
        .map(|a| {
            (
                a["transport"].as_str().unwrap().to_string(),
                a["interface_uuid"].as_str().unwrap().to_string(),
                a["announced_port"].as_u64().unwrap(),
                a["handoff_flows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| client_port(h["flow"].as_str().unwrap()))
                    .collect(),
            )
        })
        .collect()
}

/// The SMB connections' flows carry their pipes and the interfaces bound
/// on them (truth.json's `smb_connections`), keep the `smb` label, and
/// count the endpoint-mapper answers that came over them.
fn check_smb_flows(r: &Value, t: &Value, what: &str) {
    let conns = t["smb_connections"].as_array().unwrap();
    assert!(conns.len() >= 2, "{what}: SMB2 and SMB1 connections");
    for c in conns {
        let port = client_port(c["flow"].as_str().unwrap());
        let f = flows_to(r, 445)
            .into_iter()
            .find(|f| f["client_port"] == port)
            .unwrap_or_else(|| panic!("{what}: no flow for {}", c["flow"]));
        assert_eq!(f["service"], "smb", "{what}: {port}");
        assert_eq!(f["identified_by"], "payload", "{what}: {port}");
        let rpc = &f["rpc"];
        let pipes: Vec<String> = c["pipes_opened"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| pipe(p.as_str().unwrap()))
            .collect();
        let got: Vec<String> = rpc["pipes"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: {port}: no rpc.pipes: {f}"))
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, pipes, "{what}: {port}: pipes");
        let bound: BTreeSet<String> = c["pipes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["interfaces_bound"].as_array().unwrap())
            .filter(|b| b["ack_result"] == 0)
            .map(|b| b["uuid"].as_str().unwrap().to_string())
            .collect();
        let got: BTreeSet<String> = rpc["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["accepted"] == true)
            .map(|i| i["uuid"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, bound, "{what}: {port}: interfaces");
        let answered = t["ept_map_answers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["via_flow"] == c["flow"])
            .count() as u64;
        assert_eq!(rpc["epm_answers"], answered, "{what}: {port}: epm answers");
        assert_eq!(rpc["malformed_pdus"], 0, "{what}: {port}");
        assert_eq!(rpc["stream_gaps"], 0, "{what}: {port}");
        let smb = &f["app"]["smb"];
        assert_eq!(smb["encrypted_messages"], 0, "{what}: {port}");
        assert_eq!(smb["malformed"], 0, "{what}: {port}");
        assert_eq!(smb["resyncs"], 0, "{what}: {port}");
    }
}

/// Every hand-off came over ncacn_np; the (interface, port) pairs are the
/// answers of truth.json.
fn check_handoffs(r: &Value, t: &Value, what: &str) -> Vec<(String, u64, String, Value)> {
    let hs: Vec<(String, u64, String, Value)> = r["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["transport"], "ncacn_np", "{what}: {h}");
            assert_eq!(h["mapper"], "198.51.100.10", "{what}: {h}");
            // The tower said 0.0.0.0: the follow-up is looked for at the
            // SMB server.
            assert_eq!(h["server"], "198.51.100.10", "{what}: {h}");
            (
                h["interface"]["uuid"].as_str().unwrap().to_string(),
                h["port"].as_u64().unwrap(),
                h["outcome"]["kind"].as_str().unwrap().to_string(),
                h["outcome"]["client_port"].clone(),
            )
        })
        .collect();
    let mut want: Vec<(String, u64)> = answers(t).into_iter().map(|a| (a.1, a.2)).collect();
    let mut got: Vec<(String, u64)> = hs.iter().map(|h| (h.0.clone(), h.1)).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{what}: hand-offs");
    hs
}

#[test]
fn allow_every_answer_over_the_pipes_becomes_a_followed_hand_off() {
    let t = truth("smb-pipe-allow");
    let runs = [
        ("client tap", vec![tap("smb-pipe-allow", "client")]),
        ("server tap", vec![tap("smb-pipe-allow", "server")]),
        (
            "both taps",
            vec![
                "--inside".into(),
                tap("smb-pipe-allow", "client"),
                "--outside".into(),
                tap("smb-pipe-allow", "server"),
            ],
        ),
    ];
    for (what, args) in &runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = analyze_json(&args, &[0, 1]);
        check_smb_flows(&r, &t, what);
        let hs = check_handoffs(&r, &t, what);
        // Each announced port was reached by a connection truth.json says
        // followed an answer naming it, and those connections are labeled
        // by their hand-off. (drsuapi and lsarpc share 55001: the
        // correlator may give both connections to the later answer and
        // call the earlier `superseded`.)
        let ports: BTreeSet<u64> = answers(&t).iter().map(|a| a.2).collect();
        for port in ports {
            let followers: BTreeSet<u64> = answers(&t)
                .iter()
                .filter(|a| a.2 == port)
                .flat_map(|a| a.3.clone())
                .collect();
            let est: BTreeSet<u64> = hs
                .iter()
                .filter(|h| h.1 == port && h.2 == "established")
                .map(|h| h.3.as_u64().unwrap())
                .collect();
            if followers.is_empty() {
                continue;
            }
            assert!(!est.is_empty(), "{what}: port {port} not followed: {hs:?}");
            assert!(
                est.is_subset(&followers),
                "{what}: {port}: {est:?} {followers:?}"
            );
            for cp in &followers {
                assert!(
                    flows_to(&r, port).iter().any(|f| f["client_port"] == *cp
                        && f["state"] == "SF"
                        && f["identified_by"] == "epm-handoff"),
                    "{what}: the follow-up {cp} → {port} is not labeled by its hand-off"
                );
            }
        }
        for h in &hs {
            assert!(
                matches!(
                    h.2.as_str(),
                    "established" | "superseded" | "capture-ended" | "no-attempt"
                ),
                "{what}: {h:?}"
            );
        }
        let kinds: Vec<&str> = findings(&r)
            .iter()
            .map(|f| f["kind"].as_str().unwrap())
            .collect();
        assert!(!kinds.contains(&"blocked"), "{what}: {kinds:?}");
        let smb = &r["stats"]["smb"];
        let taps = if *what == "both taps" { 2 } else { 1 };
        assert_eq!(smb["parsed_flows"], 2 * taps, "{what}");
        assert_eq!(smb["encrypted_flows"], 0, "{what}");
    }
}

#[test]
fn drop_every_port_announced_over_the_pipes_is_blocked() {
    let t = truth("smb-pipe-drop");
    let blocked_truth: BTreeSet<u64> = t["blocked_ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["port"].as_u64().unwrap())
        .collect();
    assert_eq!(blocked_truth.len(), 3);
    for (what, args) in [
        ("client tap", vec![tap("smb-pipe-drop", "client")]),
        (
            "both taps",
            vec![
                "--inside".into(),
                tap("smb-pipe-drop", "client"),
                "--outside".into(),
                tap("smb-pipe-drop", "server"),
            ],
        ),
        ("server tap", vec![tap("smb-pipe-drop", "server")]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = analyze_json(&args, &[1]);
        check_smb_flows(&r, &t, what);
        let hs = check_handoffs(&r, &t, what);
        let blocked: BTreeSet<u64> = findings(&r)
            .iter()
            .filter(|f| f["kind"] == "blocked")
            .map(|f| {
                assert_eq!(f["server"], "198.51.100.10");
                f["port"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(blocked, blocked_truth, "{what}: blocked ports");
        if what != "server tap" {
            // The client tap has the SYNs: each attempt went unanswered.
            for port in &blocked_truth {
                assert!(
                    hs.iter().any(|h| h.1 == *port && h.2 == "syn-unanswered"),
                    "{what}: {port}: {hs:?}"
                );
            }
        }
    }
}

/// `--threads 1` and `3` write the same bytes; the live path's hand-offs,
/// findings and verdicts are `analyze`'s.
#[test]
fn deterministic_and_live_agrees() {
    let mapi =
        shared_captures().join("public/zeek+zeek/testing__btest__Traces__dce-rpc__mapi.pcap");
    let mut files: Vec<String> = ["smb-pipe-allow", "smb-pipe-drop"]
        .iter()
        .flat_map(|s| [tap(s, "client"), tap(s, "server")])
        .collect();
    files.push(mapi.to_str().unwrap().to_string());
    for f in &files {
        let one = run(&["analyze", "-f", "json", "--threads", "1", f]);
        let three = run(&["analyze", "-f", "json", "--threads", "3", f]);
        assert!(!one.stdout.is_empty());
        assert!(one.stdout == three.stdout, "{f}: --threads 1 and 3 differ");
        let offline: Value = serde_json::from_slice(&one.stdout).unwrap();
        common::live::live_agrees(f, &offline);
    }
}

/// zeek's mapi.pcap: SMB1 over NetBIOS 139; one connection uses
/// `\lsarpc` through TRANSACTION / TransactNmPipe, the capture starting
/// after its first pipe was opened (a TransactNmPipe on an unknown FID
/// whose data is DCE/RPC opens an unnamed pipe). tshark counts 92
/// DCE/RPC PDUs on 139 (`tshark -Y 'tcp.port==139 && dcerpc'`, one per
/// PDU), 9 NT Create AndX responses of which 8 are pipes
/// (`smb.file_type == 2`), all `\lsarpc`, 8 LSARPC binds.
#[test]
fn mapi_smb1_transact_named_pipe_over_139() {
    let p = shared_captures().join("public/zeek+zeek/testing__btest__Traces__dce-rpc__mapi.pcap");
    let r = analyze_json(&[p.to_str().unwrap()], &[0, 1]);
    let flows = flows_to(&r, 139);
    assert_eq!(flows.len(), 3);
    let with_rpc: Vec<&&Value> = flows.iter().filter(|f| !f["rpc"].is_null()).collect();
    assert_eq!(with_rpc.len(), 1, "one 139 connection carries DCE/RPC");
    let f = with_rpc[0];
    assert_eq!(f["service"], "smb");
    assert_eq!(f["rpc"]["pipes"], serde_json::json!(["lsarpc"]));
    let names: Vec<&str> = f["rpc"]["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["LSARPC"]);
    let pdus: u64 = flows.iter().filter_map(|f| f["rpc"]["pdus"].as_u64()).sum();
    assert_eq!(pdus, 92);
    assert_eq!(f["rpc"]["malformed_pdus"], 0);
    // 8 pipes named by their NT Create AndX, the one opened before the
    // capture began.
    assert_eq!(f["app"]["smb"]["pipes_opened"], 9);
    assert_eq!(r["stats"]["smb"]["parsed_flows"], 3);
    for f in &flows {
        assert_eq!(f["service"], "smb");
    }
}

// ---------------------------------------------------------------------------
// Captures built from the lab's own SMB bytes

/// The TCP payloads of the SMB2 connection of smb-pipe-allow's client tap,
/// in capture order: (from the client, bytes). Read with etherparse.
fn lab_smb2_turns() -> (u16, Vec<(bool, Vec<u8>)>) {
    let t = truth("smb-pipe-allow");
    let cport = client_port(t["smb_connections"][0]["flow"].as_str().unwrap()) as u16;
    let bytes = std::fs::read(common::crate_root().join(tap("smb-pipe-allow", "client"))).unwrap();
    let mut at = 24;
    let mut turns = Vec::new();
    while at + 16 <= bytes.len() {
        let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &bytes[at + 16..at + 16 + incl];
        at += 16 + incl;
        let Ok(p) = etherparse::SlicedPacket::from_ethernet(frame) else {
            continue;
        };
        let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport else {
            continue;
        };
        let from_client = tcp.source_port() == cport && tcp.destination_port() == 445;
        let to_client = tcp.source_port() == 445 && tcp.destination_port() == cport;
        if (from_client || to_client) && !tcp.payload().is_empty() {
            turns.push((from_client, tcp.payload().to_vec()));
        }
    }
    assert!(turns.len() > 50);
    (cport, turns)
}

/// A connection's payloads in order: (from the client, bytes).
type Turns = Vec<(bool, Vec<u8>)>;

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

/// A conversation carrying `turns`, each cut into segments of `seg` bytes;
/// `reorder` swaps every two segments of every turn but the first (the
/// probe reads a connection's first payload where it starts).
fn conversation(port: u16, turns: &[(bool, Vec<u8>)], seg: usize, reorder: bool) -> Vec<Vec<u8>> {
    let mut c = TcpConversation::new(IpAddr::V4(CLIENT), port, IpAddr::V4(SERVER), 445);
    let mut frames = vec![c.syn(), c.syn_ack(), c.ack()];
    for (k, (from_client, data)) in turns.iter().enumerate() {
        let mut segs: Vec<Vec<u8>> = data
            .chunks(seg)
            .map(|s| {
                if *from_client {
                    c.data_c2s(s)
                } else {
                    c.data_s2c(s)
                }
            })
            .collect();
        if reorder && k > 0 {
            for pair in segs.chunks_mut(2) {
                pair.reverse();
            }
        }
        frames.extend(segs);
    }
    frames.push(c.fin_c());
    frames.push(c.fin_s());
    frames.push(c.ack());
    frames
}

fn pcap(name: &str, frames: Vec<Vec<u8>>) -> String {
    let timed: Vec<(u64, Vec<u8>)> = frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| (1_700_000_000_000_000_000 + i as u64 * 10_000, f))
        .collect();
    write_pcap(name, &timed)
}

/// The part of a report that must not depend on how the bytes were cut:
/// the 445 flow's `rpc` and `app.smb` (but the counters of what was
/// passed over), the answers (interface, port) its pipes carried.
fn smb_view(r: &Value) -> (Value, Vec<(Value, Value, Value)>) {
    let f = flows_to(r, 445);
    assert_eq!(f.len(), 1);
    let hs = r["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["interface"].clone(),
                h["port"].clone(),
                h["transport"].clone(),
            )
        })
        .collect();
    (f[0]["rpc"].clone(), hs)
}

#[test]
fn one_byte_and_reordered_segments_read_as_the_real_ones() {
    let (port, turns) = lab_smb2_turns();
    let whole = analyze_json(
        &[&pcap(
            "smb-whole.pcap",
            conversation(port, &turns, 1460, false),
        )],
        &[0, 1],
    );
    let (rpc, hs) = smb_view(&whole);
    assert_eq!(hs.len(), 4, "the four answers naming a port: {hs:?}");
    assert_eq!(
        rpc["pipes"],
        serde_json::json!(["epmapper", "lsarpc", "samr", "srvsvc"])
    );
    for (name, seg, reorder) in [
        ("smb-1byte.pcap", 1, false),
        ("smb-7byte-reordered.pcap", 7, true),
        ("smb-100byte-reordered.pcap", 100, true),
    ] {
        let r = analyze_json(
            &[&pcap(name, conversation(port, &turns, seg, reorder))],
            &[0, 1],
        );
        assert_eq!(smb_view(&r), (rpc.clone(), hs.clone()), "{name}");
        let smb = &flows_to(&r, 445)[0]["app"]["smb"];
        assert_eq!(smb["resyncs"], 0, "{name}");
        assert_eq!(smb["malformed"], 0, "{name}");
    }
}

/// The turns before the first CREATE (negotiate, session, tree connect
/// IPC$), the first CREATE request and response, and what follows.
fn split_at_create(turns: &[(bool, Vec<u8>)]) -> (usize, Vec<u8>, Vec<u8>) {
    let i = turns
        .iter()
        .position(|(c, b)| *c && b.len() > 16 && b[4] == 0xfe && b[4 + 12] == 5)
        .unwrap();
    assert!(!turns[i + 1].0);
    (i, turns[i].1.clone(), turns[i + 1].1.clone())
}

/// An SMB2 message with its MessageId (and, for a CREATE response, its
/// FileId) set to `id`.
fn with_id(msg: &[u8], id: u64, file_id: bool) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[4 + 24..4 + 32].copy_from_slice(&id.to_le_bytes());
    if file_id {
        m[4 + 128..4 + 136].copy_from_slice(&id.to_le_bytes());
    }
    m
}

#[test]
fn thousands_of_pipes_and_unanswered_requests_stay_bounded() {
    let (port, turns) = lab_smb2_turns();
    let (at, create, created) = split_at_create(&turns);
    // 3,000 pipes opened on IPC$ and never closed, then the real
    // conversation: at most 16 are open at once, the rest refused.
    let mut hostile: Vec<(bool, Vec<u8>)> = turns[..at].to_vec();
    for k in 0..3000u64 {
        hostile.push((true, with_id(&create, 1_000_000 + k, false)));
        hostile.push((false, with_id(&created, 1_000_000 + k, true)));
    }
    hostile.extend_from_slice(&turns[at..]);
    let r = analyze_json(
        &[&pcap(
            "smb-pipes-cap.pcap",
            conversation(port, &hostile, 1460, false),
        )],
        &[0, 1],
    );
    let smb = &flows_to(&r, 445)[0]["app"]["smb"];
    assert_eq!(smb["pipes_over_cap"], r["stats"]["smb"]["pipes_over_cap"]);
    // 16 open, every later CREATE refused, the real ones (epmapper,
    // lsarpc, samr, srvsvc) included: no answer is seen.
    assert_eq!(smb["pipes_over_cap"].as_u64().unwrap(), 3000 - 16 + 4);
    assert!(r["handoffs"].as_array().unwrap().is_empty());
    assert!(r["stats"]["dcerpc"]["bytes_peak"].as_u64().unwrap() < 200_000);

    // 5,000 CREATE requests never answered, then the real conversation:
    // the pending table keeps 64, the real answers are still read.
    let mut hostile: Vec<(bool, Vec<u8>)> = turns[..at].to_vec();
    for k in 0..5000u64 {
        hostile.push((true, with_id(&create, 2_000_000 + k, false)));
    }
    hostile.extend_from_slice(&turns[at..]);
    let r = analyze_json(
        &[&pcap(
            "smb-unanswered.pcap",
            conversation(port, &hostile, 1460, false),
        )],
        &[0, 1],
    );
    let smb = &flows_to(&r, 445)[0]["app"]["smb"];
    // (The real CREATE that follows pushes out one more stale one.)
    assert_eq!(smb["requests_dropped"].as_u64().unwrap(), 5000 - 64 + 1);
    assert_eq!(
        r["stats"]["smb"]["requests_dropped"],
        smb["requests_dropped"]
    );
    assert_eq!(r["handoffs"].as_array().unwrap().len(), 4);
    assert!(r["stats"]["dcerpc"]["bytes_peak"].as_u64().unwrap() < 200_000);
}

#[test]
fn hostile_lengths_and_encrypted_messages() {
    let (port, turns) = lab_smb2_turns();
    let (at, create, _) = split_at_create(&turns);
    let real: Vec<(bool, Vec<u8>)> = turns.clone();
    // The first WRITE (the EPM bind).
    let w = real
        .iter()
        .position(|(c, b)| *c && b.len() > 16 && b[4] == 0xfe && b[4 + 12] == 9)
        .unwrap();
    let mut cases: Vec<(&str, Turns)> = Vec::new();
    // WRITE Length beyond the message, DataOffset beyond it.
    for (name, field, value) in [
        (
            "smb-write-length.pcap",
            4 + 64 + 4,
            0xffff_fff0u32.to_le_bytes().to_vec(),
        ),
        (
            "smb-write-offset.pcap",
            4 + 64 + 2,
            0xfff0u16.to_le_bytes().to_vec(),
        ),
        // NextCommand pointing 64 bytes on: a header with no body,
        // then a "header" that is the WRITE's body.
        ("smb-next-64.pcap", 4 + 20, 64u32.to_le_bytes().to_vec()),
        (
            "smb-next-beyond.pcap",
            4 + 20,
            0xffff_fff8u32.to_le_bytes().to_vec(),
        ),
    ] {
        let mut t = real.clone();
        t[w].1[field..field + value.len()].copy_from_slice(&value);
        cases.push((name, t));
    }
    // A CREATE name running past its message.
    let mut t = real.clone();
    t[at].1[4 + 64 + 46..4 + 64 + 48].copy_from_slice(&0xfff0u16.to_le_bytes());
    cases.push(("smb-create-name.pcap", t));
    for (name, t) in &cases {
        let r = analyze_json(&[&pcap(name, conversation(port, t, 1460, false))], &[0, 1]);
        let smb = &flows_to(&r, 445)[0]["app"]["smb"];
        assert!(smb["malformed"].as_u64().unwrap() >= 1, "{name}: {smb}");
        // The framing held: nothing lost beyond the message.
        assert_eq!(smb["resyncs"], 0, "{name}");
    }

    // An NBSS length of 0x1FFFFF (and 0xFFFFFF) trickled: passed over, not
    // held; a CREATE after the claimed message is read again.
    for claim in [0x1f_ffffu32, 0xff_ffff] {
        let mut t: Vec<(bool, Vec<u8>)> = real[..at].to_vec();
        let mut big = vec![0u8, (claim >> 16) as u8, (claim >> 8) as u8, claim as u8];
        big.extend_from_slice(&create[4..]);
        big.resize(4 + claim as usize, 0x41);
        t.push((true, big));
        let r = analyze_json(
            &[&pcap(
                "smb-nbss-huge.pcap",
                conversation(port, &t, 1460, false),
            )],
            &[0, 1],
        );
        let smb = &flows_to(&r, 445)[0]["app"]["smb"];
        assert!(smb["bytes_passed"].as_u64().unwrap() >= u64::from(claim) - 300);
        assert!(r["stats"]["dcerpc"]["bytes_peak"].as_u64().unwrap() < 100_000);
    }

    // Encrypted SMB3: transform headers are counted and passed over; the
    // flow says so.
    let mut t: Vec<(bool, Vec<u8>)> = real[..at].to_vec();
    for k in 0..20u8 {
        let mut m = vec![0u8, 0, 0, 52 + 100];
        m.extend_from_slice(b"\xfdSMB");
        m.resize(4 + 52 + 100, k);
        t.push((k % 2 == 0, m));
    }
    let r = analyze_json(
        &[&pcap(
            "smb-encrypted.pcap",
            conversation(port, &t, 1460, false),
        )],
        &[0, 1],
    );
    let smb = &flows_to(&r, 445)[0]["app"]["smb"];
    assert_eq!(smb["encrypted_messages"], 20);
    assert_eq!(r["stats"]["smb"]["encrypted_flows"], 1);
    assert_eq!(r["stats"]["smb"]["encrypted_messages"], 20);
}

/// The lab's real SMB2 conversation (four ept_map answers over
/// `\PIPE\epmapper`: 55000, 55001 twice, 55002), then the client's
/// connection to each announced port answered by a reset from the server:
/// each hand-off says `reset`, over `ncacn_np`, and the ports are refused
/// by the host, not blocked. Through 1 and 3 threads and the live path.
#[test]
fn a_handoff_over_a_pipe_answered_by_a_reset_says_so() {
    let (port, turns) = lab_smb2_turns();
    let mut frames = conversation(port, &turns, 1460, false);
    for (k, dport) in [55000u16, 55001, 55002].into_iter().enumerate() {
        let mut c = TcpConversation::new(
            IpAddr::V4(CLIENT),
            40_000 + k as u16,
            IpAddr::V4(SERVER),
            dport,
        );
        frames.push(c.syn());
        frames.push(c.rst_s());
    }
    let p = pcap("smb-reset.pcap", frames);
    let r = analyze_json(&[&p, "--threads", "1"], &[0, 1]);
    assert_eq!(r, analyze_json(&[&p, "--threads", "3"], &[0, 1]));
    common::live::live_agrees(&p, &r);
    let hs = r["handoffs"].as_array().unwrap();
    assert_eq!(hs.len(), 4, "{hs:?}");
    let mut kinds: Vec<(u64, String)> = hs
        .iter()
        .map(|h| {
            assert_eq!(h["transport"], "ncacn_np", "{h}");
            (
                h["port"].as_u64().unwrap(),
                h["outcome"]["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    kinds.sort();
    // 55001 was named twice before the client connected: the earlier
    // answer is superseded by the later one, whose attempt was reset.
    assert_eq!(
        kinds,
        [
            (55000, "reset".to_string()),
            (55001, "reset".to_string()),
            (55001, "superseded".to_string()),
            (55002, "reset".to_string()),
        ]
    );
    let blocked: Vec<&Value> = findings(&r)
        .into_iter()
        .filter(|f| f["kind"] == "blocked")
        .collect();
    assert!(blocked.is_empty(), "{blocked:?}");
}

/// The pinning note of a port an ept_map over an SMB pipe named asks to
/// keep the SMB ports open beside the pinned one, not TCP 135, which these
/// clients never used (#24).
#[test]
fn the_pin_note_names_the_mapper_the_clients_used() {
    let r = analyze_json(&[&tap("smb-pipe-drop", "client")], &[0, 1]);
    let notes: Vec<&str> = findings(&r)
        .iter()
        .filter(|f| f["kind"] == "blocked")
        .map(|f| f["fix"]["note"].as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    for n in notes {
        assert!(
            n.contains(
                "plus TCP 445 or 139: the clients asked the endpoint mapper over an SMB named pipe"
            ),
            "{n}"
        );
        assert!(!n.contains("TCP 135"), "{n}");
    }
}
