//! Constructed DCE/RPC captures (PDU bytes from the examples in
//! ../shared/spec/protocols.md): hand-offs followed or not, a flow from
//! another client, "not registered" findings, segmentation and reordering,
//! captures that start mid-stream, and connectionless DCE/RPC on UDP.

mod common;

use common::pdus::{epm_bind, epm_bind_ack, ept_map_nspi, hex};

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use exflow_testkit::TcpConversation;
use serde_json::Value;

const MS: u64 = 1_000_000;
const T0: u64 = 1_795_305_697_000_000_000;
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const CLIENT2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const NSPI: &str = "f5cc5a18-4264-101a-8c59-08002b2f8426";

/// Example 6 with the tower's address floor set to 0.0.0.0 (as Samba
/// writes it): NSPI on TCP 4997 of the mapper itself.
fn ept_map_answer_4997() -> Vec<u8> {
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
    b
}

/// An ept_map response with no tower and status 0x16c9a0d6 (not registered).
fn ept_map_not_registered() -> Vec<u8> {
    let mut b = hex("05 00 02 03 10 00 00 00 40 00 00 00 01 00 00 00
                     28 00 00 00 00 00 00 00");
    b.extend([0u8; 20]); // entry handle
    b.extend(0u32.to_le_bytes()); // num_towers
    b.extend(4u32.to_le_bytes()); // max_count
    b.extend(0u32.to_le_bytes()); // offset
    b.extend(0u32.to_le_bytes()); // actual_count
    b.extend(0x16c9_a0d6u32.to_le_bytes()); // status
    assert_eq!(b.len(), 0x40);
    b
}

struct Capture {
    frames: Vec<(u64, Vec<u8>)>,
    t: u64,
}

impl Capture {
    fn new() -> Self {
        Capture {
            frames: Vec::new(),
            t: T0,
        }
    }

    fn add(&mut self, f: Vec<u8>) {
        self.t += MS;
        self.frames.push((self.t, f));
    }

    fn wait(&mut self, ns: u64) {
        self.t += ns;
    }

    fn write(&self, name: &str) -> String {
        // Frames are pushed in time order: the stable sort keeps them.
        write_pcap(name, &self.frames)
    }
}

fn conv(client: Ipv4Addr, cport: u16, sport: u16) -> TcpConversation {
    TcpConversation::new(IpAddr::V4(client), cport, IpAddr::V4(SERVER), sport)
}

/// Client asks the mapper on 135 for NSPI and gets `answer`.
fn epm_exchange(cap: &mut Capture, answer: Vec<u8>) {
    let mut c = conv(CLIENT, 40000, 135);
    cap.add(c.syn());
    cap.add(c.syn_ack());
    cap.add(c.ack());
    cap.add(c.data_c2s(&epm_bind()));
    cap.add(c.data_s2c(&epm_bind_ack()));
    cap.add(c.data_c2s(&ept_map_nspi()));
    cap.add(c.data_s2c(&answer));
    cap.add(c.fin_c());
    cap.add(c.fin_s());
    cap.add(c.ack());
}

fn established(cap: &mut Capture, client: Ipv4Addr, cport: u16, sport: u16) {
    let mut c = conv(client, cport, sport);
    cap.add(c.syn());
    cap.add(c.syn_ack());
    cap.add(c.ack());
}

fn flow_to<'a>(r: &'a Value, client: &str, port: u64) -> &'a Value {
    r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["client"] == client && f["server_port"] == port)
        .unwrap_or_else(|| panic!("no flow from {client} to port {port}"))
}

#[test]
fn a_followed_handoff_labels_the_connection_and_one_from_another_client() {
    let mut cap = Capture::new();
    epm_exchange(&mut cap, ept_map_answer_4997());
    established(&mut cap, CLIENT, 40001, 4997);
    cap.wait(2_000 * MS);
    established(&mut cap, CLIENT2, 40002, 4997);
    let p = cap.write("handoff-followed.pcap");
    let r = analyze_json(&[&p], &[0]);

    let h = &r["handoffs"].as_array().unwrap()[0];
    assert_eq!(r["handoffs"].as_array().unwrap().len(), 1);
    assert_eq!(h["client"], "192.0.2.10");
    assert_eq!(
        h["server"], "198.51.100.10",
        "0.0.0.0 in the tower means the mapper"
    );
    assert_eq!(
        (h["proto"].as_str(), h["port"].as_u64()),
        (Some("tcp"), Some(4997))
    );
    assert_eq!(h["interface"]["uuid"], NSPI);
    assert_eq!(h["interface"]["version"], "56.0");
    assert_eq!(h["operation"], "ept_map");
    assert_eq!(h["followed"], true);
    assert_eq!(h["outcome"]["kind"], "established");
    assert_eq!(h["service"], "exchange-directory");

    let own = flow_to(&r, "192.0.2.10", 4997);
    assert_eq!(own["identified_by"], "epm-handoff");
    assert_eq!(own["service"], "exchange-directory");
    assert_eq!(own["handoff"]["other_client"], false);
    assert!(own["handoff"]["latency_ms"].as_f64().unwrap() > 0.0);
    let other = flow_to(&r, "192.0.2.20", 4997);
    assert_eq!(other["identified_by"], "epm-handoff");
    assert_eq!(other["handoff"]["other_client"], true);
    assert_eq!(other["handoff"]["client"], "192.0.2.10");

    let epm = flow_to(&r, "192.0.2.10", 135);
    assert_eq!(epm["service"], "epm");
    assert_eq!(epm["rpc"]["epm_answers"], 1);
    assert_eq!(
        epm["rpc"]["interfaces"][0]["uuid"],
        "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
    );

    let e = &r["endpoints"].as_array().unwrap()[0];
    assert_eq!(
        (e["server"].as_str(), e["port"].as_u64()),
        (Some("198.51.100.10"), Some(4997))
    );
}

#[test]
fn an_unfollowed_handoff_says_what_happened() {
    let mut cap = Capture::new();
    epm_exchange(&mut cap, ept_map_answer_4997());
    let mut c = conv(CLIENT, 40003, 4997);
    let syn = c.syn();
    cap.add(syn.clone());
    cap.wait(1_000 * MS);
    cap.add(syn.clone());
    cap.wait(2_000 * MS);
    cap.add(syn);
    let p = cap.write("handoff-dropped.pcap");
    // Exit 1: the unanswered SYNs make a `blocked` finding for the port.
    let r = analyze_json(&[&p], &[1]);
    let f = &r["findings"][0];
    assert_eq!(
        (f["kind"].as_str(), f["port"].as_u64()),
        (Some("blocked"), Some(4997))
    );
    let h = &r["handoffs"][0];
    assert_eq!(h["followed"], false);
    assert_eq!(h["outcome"]["kind"], "syn-unanswered");
    assert_eq!(h["outcome"]["syns"], 3);
    let text = text_joined(&p);
    assert!(
        text.contains("NOT FOLLOWED: SYN unanswered (3 SYNs in 1 attempt)"),
        "{text}"
    );

    // Without any attempt within the window.
    let mut cap = Capture::new();
    epm_exchange(&mut cap, ept_map_answer_4997());
    cap.wait(40_000 * MS);
    established(&mut cap, CLIENT, 40004, 4997);
    let p = cap.write("handoff-late.pcap");
    let r = analyze_json(&[&p], &[0]);
    assert_eq!(r["handoffs"][0]["outcome"]["kind"], "no-attempt");
    let r = analyze_json(&["--handoff-window", "60", &p], &[0]);
    assert_eq!(r["handoffs"][0]["outcome"]["kind"], "established");
}

#[test]
fn not_registered_answering_ept_map_is_a_finding() {
    let mut cap = Capture::new();
    epm_exchange(&mut cap, ept_map_not_registered());
    let p = cap.write("not-registered.pcap");
    let r = analyze_json(&[&p], &[1]);
    let f = r["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["kind"], "not-registered");
    assert_eq!(f[0]["server"], "198.51.100.10");
    assert_eq!(f[0]["port"], 135);
    assert_eq!(f[0]["service"], "exchange-directory");
    assert_eq!(f[0]["clients"], serde_json::json!(["192.0.2.10"]));
    assert_eq!(f[0]["evidence"][0]["status"], "0x16c9a0d6");
    assert!(r["handoffs"].as_array().unwrap().is_empty());
}

#[test]
fn any_segmentation_and_reordering_gives_the_same_handoff() {
    let want = {
        let mut cap = Capture::new();
        epm_exchange(&mut cap, ept_map_answer_4997());
        analyze_json(&[&cap.write("seg-ref.pcap")], &[0])["handoffs"].clone()
    };
    for (n, chunk) in [(1usize, 1usize), (2, 7), (3, 33), (4, 100)] {
        let mut cap = Capture::new();
        let mut c = conv(CLIENT, 40000, 135);
        cap.add(c.syn());
        cap.add(c.syn_ack());
        cap.add(c.ack());
        let mut stream_c = epm_bind();
        stream_c.extend(ept_map_nspi());
        let mut stream_s = epm_bind_ack();
        stream_s.extend(ept_map_answer_4997());
        // Client bytes in `chunk`-byte segments, the last two swapped
        // (out of order) and one retransmitted.
        let mut segs: Vec<Vec<u8>> = stream_c.chunks(chunk).map(|s| c.data_c2s(s)).collect();
        let k = segs.len();
        segs.swap(k - 1, k - 2);
        segs.insert(1, segs[0].clone());
        for s in segs {
            cap.add(s);
        }
        for s in stream_s.chunks(chunk * n) {
            cap.add(c.data_s2c(s));
        }
        let p = cap.write(&format!("seg-{chunk}.pcap"));
        let r = analyze_json(&[&p], &[0]);
        let mut got = r["handoffs"].clone();
        // Timestamps differ with the number of segments.
        for h in got.as_array_mut().unwrap() {
            h["ts"] = Value::Null;
        }
        let mut want = want.clone();
        for h in want.as_array_mut().unwrap() {
            h["ts"] = Value::Null;
        }
        assert_eq!(got, want, "segments of {chunk} bytes");
    }
}

#[test]
fn a_capture_that_starts_mid_stream_is_decoded_from_the_first_pdu() {
    let mut cap = Capture::new();
    let mut c = conv(CLIENT, 40000, 135);
    // No handshake, no bind: the capture begins with the tail of a
    // previous PDU, then the request and the answer.
    cap.add(c.data_c2s(&[0xde, 0xad, 0xbe, 0xef]));
    cap.add(c.data_c2s(&ept_map_nspi()));
    cap.add(c.data_s2c(&ept_map_answer_4997()));
    let p = cap.write("midstream.pcap");
    let r = analyze_json(&[&p], &[0]);
    assert_eq!(r["handoffs"][0]["port"], 4997);
    assert_eq!(r["handoffs"][0]["interface"]["uuid"], NSPI);
}

#[test]
fn connectionless_dcerpc_on_udp_is_labeled_by_its_interface() {
    let p = shared_captures()
        .join("public/OISF+suricata-verify/tests__dcerpc__dcerpc-udp-scapy__input.pcap");
    let r = analyze_json(&[path_str(&p)], &[0]);
    let flows = r["flows"].as_array().unwrap();
    assert!(!flows.is_empty());
    for f in flows {
        assert_eq!(f["proto"], "udp");
        assert_eq!(f["identified_by"], "payload", "{f}");
        assert_eq!(
            f["interface"]["uuid"],
            "8f8ab437-0c52-4b49-a2ae-33aa20bc561f"
        );
        assert!(f["rpc"]["pdus"].as_u64().unwrap() >= 2);
    }
}

/// A bind to EMSMDB v0.81 (Example 1 with the abstract syntax replaced).
fn emsmdb_bind() -> Vec<u8> {
    let mut b = epm_bind();
    b[0x20..0x30].copy_from_slice(&hex("00 db f1 a4 47 ca 67 10 b3 1f 00 dd 01 06 62 da"));
    b[0x30..0x34].copy_from_slice(&[0x00, 0x00, 0x51, 0x00]);
    b
}

/// protocols.md Example 7 (EcRRegisterPushNotification, NTLMSSP connect
/// level so the stub is in clear), callback address set to 192.0.2.10:1071.
fn register_push() -> Vec<u8> {
    let mut b = hex("05 00 00 03 10 00 00 00 80 00 10 00 06 00 00 00
        42 00 00 00 00 00 04 00 00 00 00 00 96 57 70 3b
        05 09 2b 45 8e b2 2f 53 83 13 30 45 00 00 00 00
        08 00 00 00 d0 27 3b 02 00 e0 fd 7f 08 00 a5 a5
        ff ff ff ff 10 00 00 00 02 00 04 2f c0 a8 00 ad
        00 00 00 00 00 00 00 00 10 00 00 16 a8 89 0b 00
        01 00 00 00 00 00 00 00 0a 02 0e 00 a8 89 0b 00
        01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    b[0x4c..0x50].copy_from_slice(&[192, 0, 2, 10]);
    b
}

#[test]
fn a_cleartext_push_registration_labels_the_notifications_sent_to_it() {
    let mut cap = Capture::new();
    let mut c = conv(CLIENT, 40100, 1032);
    cap.add(c.syn());
    cap.add(c.syn_ack());
    cap.add(c.ack());
    cap.add(c.data_c2s(&emsmdb_bind()));
    cap.add(c.data_s2c(&epm_bind_ack()));
    cap.add(c.data_c2s(&register_push()));
    // The server then notifies UDP 1071 from an ephemeral port, and sends
    // unrelated UDP to another client port (not a notification by registration).
    for k in 0..3 {
        cap.wait(500 * MS);
        cap.add(
            exflow_testkit::Frame::ethernet()
                .ipv4(SERVER, CLIENT)
                .udp(2571, 1071)
                .payload(&[0xd0, 0x27, 0x3b, 0x02, 0x00, 0xe0, 0xfd, k])
                .build(),
        );
    }
    cap.add(
        exflow_testkit::Frame::ethernet()
            .ipv4(SERVER, CLIENT)
            .udp(2572, 40999)
            .payload(b"other")
            .build(),
    );
    let p = cap.write("registration.pcap");
    let r = analyze_json(&[&p], &[0]);
    let n = flow_to(&r, "198.51.100.10", 1071);
    assert_eq!(n["service"], "mapi-notification");
    assert_eq!(n["identified_by"], "registration");
    assert_eq!(n["packets"], serde_json::json!([3, 0]));
    // The store connection is labeled by its bind and counts the registration.
    let store = flow_to(&r, "192.0.2.10", 1032);
    assert_eq!(store["service"], "exchange-store");
    assert_eq!(store["identified_by"], "payload");
    assert_eq!(store["rpc"]["registrations"], 1);
    // The host served EMSMDB: its other UDP to a client port > 1024 is a
    // notification by heuristic.
    let other = flow_to(&r, "198.51.100.10", 40999);
    assert_eq!(other["service"], "mapi-notification");
    assert_eq!(other["identified_by"], "heuristic");
}

#[test]
fn the_heuristic_needs_an_exchange_server_and_never_takes_well_known_udp() {
    let lab = shared_captures().join("lab/udp-notify-allow/server-tap.pcap");
    let lab = path_str(&lab);
    let r = analyze_json(&[lab], &[0]);
    let f = &r["flows"][0];
    assert_eq!(
        f["service"], "unknown",
        "no role, no EMSMDB seen: not guessed"
    );
    let r = analyze_json(
        &[
            "--exchange",
            "198.51.100.10",
            "--clients",
            "192.0.2.0/24",
            lab,
        ],
        &[0],
    );
    let f = &r["flows"][0];
    assert_eq!(
        (f["service"].as_str(), f["identified_by"].as_str()),
        (Some("mapi-notification"), Some("heuristic"))
    );
    assert_eq!(f["server_port"], 40500);
    // Clients elsewhere: not a notification.
    let r = analyze_json(
        &[
            "--exchange",
            "198.51.100.10",
            "--clients",
            "203.0.113.0/24",
            lab,
        ],
        &[0],
    );
    assert_eq!(r["flows"][0]["service"], "unknown");
    // Kerberos and DNS from a DC that is also called an Exchange server stay what they are.
    let allow = shared_captures().join("lab/allow-all/client-tap.pcap");
    let r = analyze_json(
        &["--exchange", "198.51.100.10,192.0.2.10", path_str(&allow)],
        &[0],
    );
    for f in r["flows"].as_array().unwrap() {
        assert_ne!(f["service"], "mapi-notification", "{f}");
    }
}
