//! Issue #22, points 2–4: DCOM hand-offs. The activator and the OXID
//! resolver on TCP 135 answer with string bindings (`HOST[49670]`); the
//! client then connects to that port.
//!
//! * The real capture: zeek's kerberos135_auth trace (a WMI client's
//!   RemoteCreateInstance), every binding with a port against tshark's DCOM
//!   dissector (tests/data/dcom_tshark.jsonl, made by
//!   tests/support/dcom_expected.py).
//! * Constructed captures (real DCE/RPC PDUs: bind, request, response with a
//!   ResolveOxid2 or RemoteActivation answer built as [MS-DCOM] lays them
//!   out, or the real RemoteCreateInstance answer): followed, dropped,
//!   reset, over IPv6, behind NAT, bindings by name only, sealed (packet
//!   privacy) with and without a follow-up, every byte in its own segment,
//!   and string-binding arrays whose sizes lie. Each through `analyze` with
//!   1 and 3 threads and through the live path.
//!
//! Documentation addresses only (192.0.2.0/24 clients, 198.51.100.0/24
//! servers, 203.0.113.0/24 NAT, 2001:db8::/32; 10.20.30.40 behind the NAT),
//! except the real answer's own 10.10.10.0/24.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use common::live::live_agrees;
use common::pdus::{epm_bind, epm_bind_ack, hex};
use common::*;
use exflow_testkit::TcpConversation;
use serde_json::Value;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const T0: u64 = 1_795_305_697_000_000_000;
const PORT: u16 = 50123;

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const CLIENT2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const NAT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);
const INTERNAL: Ipv4Addr = Ipv4Addr::new(10, 20, 30, 40);

const ISYSTEM_ACTIVATOR: &str = "000001a0-0000-0000-c000-000000000046";
const IOBJECT_EXPORTER: &str = "99fcfec4-5260-101b-bbcb-00aa0021347a";
const IREMOTE_ACTIVATION: &str = "4d9f4ab8-7d1c-11cf-861e-0020af6e7c57";
const IREMUNKNOWN2: &str = "00000143-0000-0000-c000-000000000046";
const IWBEMLEVEL1LOGIN: &str = "f309ad18-d86a-11d0-a075-00c04fb68820";

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn client6() -> IpAddr {
    "2001:db8:2::10".parse().unwrap()
}

fn server6() -> IpAddr {
    "2001:db8:1::10".parse().unwrap()
}

// ---------------------------------------------------------------------------
// PDUs
// ---------------------------------------------------------------------------

/// A bind of context 0 to `uuid` v0.0 in NDR 2.0 (protocols.md example 1
/// with the abstract syntax replaced).
fn bind(uuid: &str) -> Vec<u8> {
    let u: exflow::proto::dcerpc::Uuid = uuid.parse().unwrap();
    let mut b = epm_bind();
    b[0x20..0x30].copy_from_slice(&u.to_wire_le());
    b[0x30..0x34].copy_from_slice(&[0, 0, 0, 0]);
    b
}

/// Appends a sec_trailer (Kerberos, `level`) and a 16-byte auth value to a
/// PDU, fixing frag_length and auth_length.
fn with_auth(mut p: Vec<u8>, level: u8) -> Vec<u8> {
    let pad = (4 - p.len() % 4) % 4;
    p.extend(std::iter::repeat_n(0u8, pad));
    p.extend([0x10, level, pad as u8, 0, 0, 0, 0, 0]);
    p.extend([0x5a; 16]);
    let len = p.len() as u16;
    p[8..10].copy_from_slice(&len.to_le_bytes());
    p[10..12].copy_from_slice(&16u16.to_le_bytes());
    p
}

/// A request (ptype 0) or response (2) PDU of call 2, context 0.
fn call_pdu(ptype: u8, opnum: u16, stub: &[u8]) -> Vec<u8> {
    let mut p = vec![5, 0, ptype, 3, 0x10, 0, 0, 0];
    p.extend(((24 + stub.len()) as u16).to_le_bytes());
    p.extend(0u16.to_le_bytes());
    p.extend(2u32.to_le_bytes());
    p.extend((stub.len() as u32).to_le_bytes());
    p.extend(0u16.to_le_bytes());
    p.extend(if ptype == 0 { opnum } else { 0 }.to_le_bytes());
    p.extend(stub);
    p
}

/// A DUALSTRINGARRAY's u16 entries: the string bindings (ncacn_ip_tcp)
/// with `lie` added to wNumEntries (a size that lies).
fn dsa(bindings: &[&str], lie: i32) -> Vec<u8> {
    let mut e: Vec<u16> = Vec::new();
    for b in bindings {
        e.push(7);
        e.extend(b.encode_utf16());
        e.push(0);
    }
    e.push(0);
    let sec = e.len() as u16;
    e.extend([0x0a, 0xffff, 0, 0]);
    let n = (e.len() as i32 + lie) as u16;
    let mut out = Vec::new();
    out.extend(u32::from(n).to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend(sec.to_le_bytes());
    for x in e {
        out.extend(x.to_le_bytes());
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// ResolveOxid2's out parameters: ppdsaOxidBindings, pipidRemUnknown,
/// pAuthnHint, pComVersion, error_status.
fn resolve_oxid2_answer(bindings: &[&str], lie: i32) -> Vec<u8> {
    let mut s = 0x0002_0000u32.to_le_bytes().to_vec();
    s.extend(dsa(bindings, lie));
    s.extend([0x33; 16]);
    s.extend(4u32.to_le_bytes());
    s.extend([5, 0, 7, 0]);
    s.extend(0u32.to_le_bytes());
    s
}

/// RemoteActivation's out parameters: ORPCTHAT, pOxid, ppdsaOxidBindings,
/// pipidRemUnknown, pAuthnHint, pServerVersion, phr, ppInterfaceData (one,
/// null), pResults, error_status.
fn remote_activation_answer(bindings: &[&str]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(0u32.to_le_bytes()); // ORPCTHAT flags
    s.extend(0u32.to_le_bytes()); // extensions: null
    s.extend([0x41; 8]); // OXID
    s.extend(0x0002_0000u32.to_le_bytes());
    s.extend(dsa(bindings, 0));
    s.extend([0x33; 16]);
    s.extend(4u32.to_le_bytes());
    s.extend([5, 0, 7, 0]);
    s.extend(0u32.to_le_bytes()); // phr
    s.extend(1u32.to_le_bytes()); // conformance
    s.extend(0u32.to_le_bytes()); // null interface pointer
    s.extend(1u32.to_le_bytes());
    s.extend(0u32.to_le_bytes()); // pResults
    s.extend(0u32.to_le_bytes()); // error_status
    s
}

/// The real RemoteCreateInstance answer of the kerberos135_auth trace.
fn real_remote_create_instance_answer() -> Vec<u8> {
    hex(include_str!(
        "../src/proto/dcom/remote_create_instance_response.hex"
    ))
}

// ---------------------------------------------------------------------------
// Captures
// ---------------------------------------------------------------------------

/// One DCOM exchange on TCP 135.
#[derive(Clone)]
struct Ask {
    client: IpAddr,
    server: IpAddr,
    interface: &'static str,
    opnum: u16,
    answer: Vec<u8>,
    /// Auth level of every PDU (None: no verifier).
    level: Option<u8>,
    /// Every byte in its own segment.
    bytewise: bool,
}

fn ask(cap: &mut Cap, t: u64, a: &Ask) -> u64 {
    let mut c = TcpConversation::new(a.client, 40000, a.server, 135);
    let auth = |p: Vec<u8>| match a.level {
        Some(l) => with_auth(p, l),
        None => p,
    };
    let pdus_c = [
        auth(bind(a.interface)),
        auth(call_pdu(0, a.opnum, &[0x11; 24])),
    ];
    let answer = if a.level == Some(6) {
        // Sealed: the stub is ciphertext.
        vec![0xa7; a.answer.len()]
    } else {
        a.answer.clone()
    };
    let pdus_s = [auth(epm_bind_ack()), auth(call_pdu(2, 0, &answer))];
    let mut frames = vec![c.syn(), c.syn_ack(), c.ack()];
    for (q, r) in pdus_c.iter().zip(&pdus_s) {
        if a.bytewise {
            for b in q {
                frames.push(c.data_c2s(&[*b]));
            }
            for b in r {
                frames.push(c.data_s2c(&[*b]));
            }
        } else {
            frames.push(c.data_c2s(q));
            frames.push(c.data_s2c(r));
        }
    }
    frames.extend([c.fin_c(), c.fin_s(), c.ack()]);
    cap.seq(t, frames)
}

/// What the client does after the answer.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// Connects to this address and port, binds IRemUnknown2 and
    /// IWbemLevel1Login.
    Follows(IpAddr, u16),
    /// Its SYNs there are never answered.
    Dropped(IpAddr, u16),
    /// Its SYN there is answered by a reset.
    Reset(IpAddr, u16),
    Nothing,
}

fn then(cap: &mut Cap, t: u64, client: IpAddr, what: Then) {
    match what {
        Then::Follows(at, port) => {
            let mut c = TcpConversation::new(client, 40001, at, port);
            let frames = vec![
                c.syn(),
                c.syn_ack(),
                c.ack(),
                c.data_c2s(&bind(IREMUNKNOWN2)),
                c.data_s2c(&epm_bind_ack()),
                c.data_c2s(&bind(IWBEMLEVEL1LOGIN)),
                c.data_s2c(&epm_bind_ack()),
                c.fin_c(),
                c.fin_s(),
                c.ack(),
            ];
            cap.seq(t, frames);
        }
        Then::Dropped(at, port) => {
            let mut c = TcpConversation::new(client, 40001, at, port);
            let syn = c.syn();
            for off in [0, 1, 3, 7] {
                cap.frames.push((T0 + t + off * SEC, syn.clone()));
            }
        }
        Then::Reset(at, port) => {
            let mut c = TcpConversation::new(client, 40001, at, port);
            let frames = vec![c.syn(), c.rst_s()];
            cap.seq(t, frames);
        }
        Then::Nothing => {}
    }
}

/// Another client's connection 10 s on, so the capture goes on long after
/// the answer.
fn later_traffic(cap: &mut Cap) {
    let mut c = TcpConversation::new(v4(CLIENT2), 40500, v4(SERVER), 445);
    let frames = vec![c.syn(), c.syn_ack(), c.ack()];
    cap.seq(10 * SEC, frames);
}

fn capture(name: &str, a: &Ask, what: Then) -> String {
    let mut cap = Cap::default();
    let t = ask(&mut cap, 0, a) + 3 * MS;
    then(&mut cap, t, a.client, what);
    later_traffic(&mut cap);
    write_pcap(name, &cap.frames)
}

/// A ResolveOxid2 exchange between CLIENT and SERVER naming `bindings`.
fn resolve(bindings: &[&str]) -> Ask {
    Ask {
        client: v4(CLIENT),
        server: v4(SERVER),
        interface: IOBJECT_EXPORTER,
        opnum: 4,
        answer: resolve_oxid2_answer(bindings, 0),
        level: None,
        bytewise: false,
    }
}

// ---------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------

/// The JSON report, the same with 1 and 3 threads and through the live path.
fn report(path: &str) -> Value {
    let one = run(&["analyze", "--format", "json", "--threads", "1", path]);
    let three = run(&["analyze", "--format", "json", "--threads", "3", path]);
    assert!(matches!(one.status.code(), Some(0 | 1)), "{}", stderr(&one));
    assert_eq!(one.stdout, three.stdout, "{path}: --threads 1 and 3 differ");
    let r: Value = serde_json::from_slice(&one.stdout).unwrap();
    live_agrees(path, &r);
    r
}

fn handoffs(r: &Value) -> &Vec<Value> {
    r["handoffs"].as_array().unwrap()
}

fn handoff(r: &Value) -> &Value {
    let hs = handoffs(r);
    assert_eq!(hs.len(), 1, "{:#}", r["handoffs"]);
    &hs[0]
}

fn flow_to<'a>(r: &'a Value, server: &IpAddr, port: u16) -> &'a Value {
    r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["server"] == server.to_string() && f["server_port"] == port)
        .unwrap_or_else(|| panic!("no flow to {server}:{port}: {:#}", r["flows"]))
}

/// (kind, port, evidence types) of every finding.
fn findings(r: &Value) -> Vec<(String, u64, Vec<String>)> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
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

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// The real capture against tshark
// ---------------------------------------------------------------------------

/// Every string binding with a TCP port that tshark decodes in a DCOM
/// answer of a shared capture is in exflow's hand-off for that client,
/// server and port, and every binding of exflow's hand-offs is one tshark
/// decoded; each answer with such bindings gives one hand-off per port.
#[test]
fn every_dcom_binding_with_a_port_equals_tsharks() {
    let text = std::fs::read_to_string(crate_root().join("tests/data/dcom_tshark.jsonl"))
        .expect("tests/data/dcom_tshark.jsonl (run tests/support/dcom_expected.py)");
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let files: BTreeSet<&str> = rows.iter().map(|r| r["file"].as_str().unwrap()).collect();
    assert!(
        files.iter().any(|f| f.contains("kerberos135_auth")),
        "the oracle has no DCOM answer"
    );
    let mut compared = 0;
    for file in files {
        // tshark's (client, server, port, binding) with a bracketed port.
        let want: BTreeSet<(String, String, u64, String)> = rows
            .iter()
            .filter(|r| r["file"] == file && r["tower_id"] == 7)
            .filter_map(|r| {
                let a = r["network_addr"].as_str().unwrap();
                let port: u64 = a.strip_suffix(']')?.rsplit_once('[')?.1.parse().ok()?;
                Some((
                    r["client"].as_str().unwrap().to_string(),
                    r["server"].as_str().unwrap().to_string(),
                    port,
                    a.to_string(),
                ))
            })
            .collect();
        let r = analyze_json(&[file], &[0, 1]);
        let mut got = BTreeSet::new();
        for h in handoffs(&r) {
            let Some(b) = h.get("string_bindings") else {
                continue;
            };
            for s in strs(b) {
                got.insert((
                    h["client"].as_str().unwrap().to_string(),
                    h["mapper"].as_str().unwrap().to_string(),
                    h["port"].as_u64().unwrap(),
                    s,
                ));
            }
        }
        assert_eq!(got, want, "{file}");
        compared += want.len();
    }
    assert!(compared >= 2, "only {compared} bindings compared");
}

/// The real trace: one hand-off, remote-create-instance on ISystemActivator
/// to 10.10.10.100:49718 named by both its bindings; the trace was cut to
/// the TCP 135 conversation (editcap), so no follow-up is in it.
#[test]
fn the_real_wmi_activation_is_a_handoff() {
    let p = shared_captures()
        .join("public/zeek+zeek/testing__btest__Traces__dce-rpc__kerberos135_auth.pcapng");
    let r = report(path_str(&p));
    let h = handoff(&r);
    assert_eq!(h["operation"], "remote-create-instance");
    assert_eq!(h["interface"]["uuid"], ISYSTEM_ACTIVATOR);
    assert_eq!(h["interface"]["name"], "ISystemActivator");
    assert_eq!(
        (&h["server"], &h["port"]),
        (&"10.10.10.100".into(), &49718.into())
    );
    assert_eq!(
        strs(&h["string_bindings"]),
        ["BLACKCLOVER-DC[49718]", "10.10.10.100[49718]"]
    );
    assert_eq!(h["service"], "dcom");
    let t = text_joined(path_str(&p));
    assert!(
        t.contains("-> 10.10.10.100:49718/tcp ISystemActivator (dcom, 000001a0-0000-0000-c000-000000000046 v0.0) via remote-create-instance"),
        "{t}"
    );
    assert!(
        t.contains("bindings BLACKCLOVER-DC[49718], 10.10.10.100[49718]"),
        "{t}"
    );
}

// ---------------------------------------------------------------------------
// Constructed captures
// ---------------------------------------------------------------------------

/// Followed: the client connects to the port at the binding's address and
/// binds IRemUnknown2 then IWbemLevel1Login: the follow-up is labelled by
/// the hand-off with the object's interface, and nothing is a finding.
#[test]
fn a_followed_resolve_oxid2_labels_its_follow_up_with_the_bound_interface() {
    let a = resolve(&["SRV01[50123]", "198.51.100.10[50123]"]);
    let p = capture("dcom-followed.pcap", &a, Then::Follows(v4(SERVER), PORT));
    let r = report(&p);
    let h = handoff(&r);
    assert_eq!(h["operation"], "resolve-oxid2");
    assert_eq!(h["interface"]["uuid"], IOBJECT_EXPORTER);
    assert_eq!(h["outcome"]["kind"], "established");
    assert_eq!(h["followed"], true);
    assert_eq!(h["matched"], "tower-address");
    assert_eq!(h["matched_address"], "198.51.100.10");
    let f = flow_to(&r, &v4(SERVER), PORT);
    assert_eq!(f["identified_by"], "dcom-handoff");
    assert_eq!(f["interface"]["uuid"], IWBEMLEVEL1LOGIN);
    assert_eq!(f["interface"]["name"], "IWbemLevel1Login");
    assert_eq!(f["service"], "dcom");
    assert!(findings(&r).is_empty(), "{:#}", r["findings"]);
    let t = text_joined(&p);
    assert!(
        t.contains("via resolve-oxid2 over ncacn_ip_tcp followed after"),
        "{t}"
    );
}

/// Dropped: nothing follows → a blocked finding with the hand-off as
/// evidence and DCOM's fix (KB154596); SYNs unanswered → that outcome.
#[test]
fn an_unfollowed_dcom_handoff_is_blocked_with_the_kb154596_fix() {
    let a = resolve(&["198.51.100.10[50123]"]);
    let p = capture("dcom-nothing.pcap", &a, Then::Nothing);
    let r = report(&p);
    let h = handoff(&r);
    assert_eq!(h["outcome"]["kind"], "no-attempt");
    assert_eq!(
        findings(&r),
        [("blocked".into(), 50123, vec!["handoff-unfulfilled".into()])]
    );
    let f = &r["findings"][0];
    assert_eq!(f["service"], "dcom");
    assert_eq!(f["evidence"][0]["operation"], "resolve-oxid2");
    let note = f["fix"]["note"].as_str().unwrap();
    assert!(note.contains("DCOM stores raw IP addresses in the interface marshaling packets"));
    let range = f["fix"]["restrict_range"].as_str().unwrap();
    assert!(range.contains(r"HKEY_LOCAL_MACHINE\Software\Microsoft\Rpc\Internet"));
    assert!(f["consequence"].as_str().unwrap().contains("KB154596"));

    let p = capture("dcom-dropped.pcap", &a, Then::Dropped(v4(SERVER), PORT));
    let r = report(&p);
    let h = handoff(&r);
    assert_eq!(h["outcome"]["kind"], "syn-unanswered");
    assert_eq!(h["outcome"]["syns"], 4);
    assert!(findings(&r)
        .iter()
        .any(|(k, port, _)| k == "blocked" && *port == 50123));
    assert!(text_joined(&p).contains("NOT FOLLOWED: SYN unanswered"));
}

#[test]
fn a_reset_follow_up_is_the_handoffs_outcome() {
    let a = resolve(&["198.51.100.10[50123]"]);
    let p = capture("dcom-reset.pcap", &a, Then::Reset(v4(SERVER), PORT));
    let r = report(&p);
    assert_eq!(handoff(&r)["outcome"]["kind"], "reset");
}

/// IPv6: the client reached the resolver over IPv6. With an IPv6 binding
/// equal to that address among the IPv4 ones, the follow-up is matched at
/// it; with IPv4 bindings only, at the address the client used.
#[test]
fn over_ipv6_the_follow_up_is_matched_at_the_v6_binding_or_the_answering_address() {
    let mut a = resolve(&[
        "SRV01[50123]",
        "198.51.100.10[50123]",
        "2001:db8:1::10[50123]",
    ]);
    a.client = client6();
    a.server = server6();
    let p = capture("dcom-v6.pcap", &a, Then::Follows(server6(), PORT));
    let r = report(&p);
    let h = handoff(&r);
    assert_eq!(h["server"], server6().to_string());
    assert_eq!(h["matched"], "tower-address");
    assert_eq!(h["outcome"]["kind"], "established");

    a.answer = resolve_oxid2_answer(&["SRV01[50123]", "198.51.100.10[50123]"], 0);
    let p = capture(
        "dcom-v6-v4bindings.pcap",
        &a,
        Then::Follows(server6(), PORT),
    );
    let r = report(&p);
    let h = handoff(&r);
    assert_eq!(h["server"], "198.51.100.10");
    assert_eq!(h["matched"], "mapper-address");
    assert_eq!(h["matched_address"], server6().to_string());
    assert_eq!(h["outcome"]["kind"], "established");
}

/// Behind NAT: the bindings name the server's internal address; the client
/// connects to the address it reached the activator at.
#[test]
fn behind_nat_the_follow_up_is_matched_at_the_address_the_client_used() {
    let mut a = resolve(&["SRV01[50123]", "10.20.30.40[50123]"]);
    a.server = v4(NAT);
    let p = capture("dcom-nat.pcap", &a, Then::Follows(v4(NAT), PORT));
    let r = report(&p);
    let h = handoff(&r);
    assert_eq!(h["server"], v4(INTERNAL).to_string());
    assert_eq!(h["mapper"], v4(NAT).to_string());
    assert_eq!(h["matched"], "mapper-address");
    assert_eq!(h["outcome"]["kind"], "established");
    assert!(text_joined(&p).contains("the address the client reached the mapper on"));
}

/// Bindings that name the host only by name: matched at the answering
/// host, and said so; not followed, the text says where it was looked for.
#[test]
fn a_binding_by_name_is_matched_at_the_answering_host() {
    let a = resolve(&["SRV01[50123]", "srv01.example.com[50123]"]);
    let p = capture("dcom-name.pcap", &a, Then::Follows(v4(SERVER), PORT));
    let r = report(&p);
    let h = handoff(&r);
    assert_eq!(h["server"], "198.51.100.10");
    assert_eq!(h["matched"], "answering-host");
    assert_eq!(h["outcome"]["kind"], "established");
    assert!(
        text_joined(&p).contains("at the answering host: the bindings name the host only by name")
    );

    let p = capture("dcom-name-nothing.pcap", &a, Then::Nothing);
    let r = report(&p);
    assert_eq!(handoff(&r)["matched"], Value::Null);
    assert!(text_joined(&p).contains("the bindings name the host only by name: a follow-up is looked for at the answering host only"));
}

/// RemoteActivation (IRemoteActivation opnum 0), and the real
/// RemoteCreateInstance answer in a capture where the client follows.
#[test]
fn remote_activation_and_remote_create_instance_answers() {
    let a = Ask {
        interface: IREMOTE_ACTIVATION,
        opnum: 0,
        answer: remote_activation_answer(&["198.51.100.10[50123]"]),
        ..resolve(&[])
    };
    let p = capture("dcom-remact.pcap", &a, Then::Follows(v4(SERVER), PORT));
    let r = report(&p);
    let h = handoff(&r);
    assert_eq!(h["operation"], "remote-activation");
    assert_eq!(h["interface"]["uuid"], IREMOTE_ACTIVATION);
    assert_eq!(h["outcome"]["kind"], "established");

    let real = v4(Ipv4Addr::new(10, 10, 10, 100));
    let a = Ask {
        client: v4(Ipv4Addr::new(10, 10, 10, 129)),
        server: real,
        interface: ISYSTEM_ACTIVATOR,
        opnum: 4,
        answer: real_remote_create_instance_answer(),
        level: Some(2),
        bytewise: false,
    };
    let p = capture("dcom-rci.pcap", &a, Then::Follows(real, 49718));
    let r = report(&p);
    let h = handoff(&r);
    assert_eq!(h["operation"], "remote-create-instance");
    assert_eq!(h["outcome"]["kind"], "established");
    let f = flow_to(&r, &real, 49718);
    assert_eq!(f["identified_by"], "dcom-handoff");
    assert_eq!(f["interface"]["name"], "IWbemLevel1Login");
}

/// Every byte of the TCP 135 conversation in its own segment: the same
/// hand-off as whole PDUs.
#[test]
fn one_byte_segments_give_the_same_handoff() {
    let whole = resolve(&["SRV01[50123]", "198.51.100.10[50123]"]);
    let bytewise = Ask {
        bytewise: true,
        ..whole.clone()
    };
    let a = report(&capture(
        "dcom-whole.pcap",
        &whole,
        Then::Follows(v4(SERVER), PORT),
    ));
    let b = report(&capture(
        "dcom-bytes.pcap",
        &bytewise,
        Then::Follows(v4(SERVER), PORT),
    ));
    assert_eq!(
        handoff(&b)["string_bindings"],
        handoff(&a)["string_bindings"]
    );
    let strip = |h: &Value| {
        let mut h = h.clone();
        h.as_object_mut().unwrap().remove("ts");
        h.as_object_mut().unwrap().remove("outcome");
        h
    };
    assert_eq!(strip(handoff(&b)), strip(handoff(&a)));
    assert_eq!(handoff(&b)["outcome"]["kind"], "established");
}

/// Packet privacy: the answer cannot be read. A hand-off says so (port 0,
/// outcome `sealed`, not a failure); a connection from the client to the
/// server's dynamic range within 5 s is its inferred follow-up; one to a
/// well-known port (3268, the global catalog) or after the window is not.
#[test]
fn a_sealed_activation_is_reported_and_its_follow_up_inferred() {
    let a = Ask {
        level: Some(6),
        ..resolve(&["198.51.100.10[50123]"])
    };
    let p = capture("dcom-sealed.pcap", &a, Then::Nothing);
    let r = report(&p);
    let h = handoff(&r);
    assert_eq!(h["sealed"], true);
    assert_eq!(h["inferred"], false);
    assert_eq!(h["port"], 0);
    assert_eq!(h["outcome"]["kind"], "sealed");
    assert_eq!(h["followed"], false);
    assert!(h.get("string_bindings").is_none());
    assert!(findings(&r).is_empty(), "{:#}", r["findings"]);
    assert!(text_joined(&p).contains("cannot be seen: sealed"));

    let p = capture(
        "dcom-sealed-followed.pcap",
        &a,
        Then::Follows(v4(SERVER), 50999),
    );
    let r = report(&p);
    let h = handoff(&r);
    assert_eq!(h["sealed"], true);
    assert_eq!(h["inferred"], true);
    assert_eq!(h["port"], 50999);
    assert_eq!(h["outcome"]["kind"], "established");
    assert_eq!(h["matched_address"], "198.51.100.10");
    let f = flow_to(&r, &v4(SERVER), 50999);
    assert_eq!(f["identified_by"], "dcom-inferred");
    assert_eq!(f["interface"]["name"], "IWbemLevel1Login");
    assert!(text_joined(&p).contains("port inferred"));

    let p = capture("dcom-sealed-gc.pcap", &a, Then::Follows(v4(SERVER), 3268));
    assert_eq!(handoff(&report(&p))["outcome"]["kind"], "sealed");
    let mut cap = Cap::default();
    let t = ask(&mut cap, 0, &a);
    then(
        &mut cap,
        t + 6 * SEC,
        a.client,
        Then::Follows(v4(SERVER), 50999),
    );
    later_traffic(&mut cap);
    let p = write_pcap("dcom-sealed-late.pcap", &cap.frames);
    assert_eq!(handoff(&report(&p))["outcome"]["kind"], "sealed");
}

/// String-binding arrays whose sizes lie (wNumEntries one more or one less
/// than the entries, or far more than the stub holds): no hand-off, the
/// connection still counted, also one byte at a time.
#[test]
fn hostile_string_binding_arrays_give_no_handoff() {
    for (k, lie) in [1, -1, 2, 3000, -20].into_iter().enumerate() {
        for bytewise in [false, true] {
            let a = Ask {
                answer: resolve_oxid2_answer(&["198.51.100.10[50123]"], lie),
                bytewise,
                ..resolve(&[])
            };
            let p = capture(
                &format!("dcom-hostile-{k}-{bytewise}.pcap"),
                &a,
                Then::Follows(v4(SERVER), PORT),
            );
            let r = analyze_json(&[&p], &[0, 1]);
            assert!(handoffs(&r).is_empty(), "lie {lie}: {:#}", r["handoffs"]);
            let f = flow_to(&r, &v4(SERVER), 135);
            assert_eq!(f["rpc"]["requests"], 1, "lie {lie}");
        }
    }
}
