//! Every flow carries a service and how it was identified: by payload on any
//! port (and a note when a standard port carries something else), RFC 1006
//! users told apart, and no lab flow left unknown once roles are given.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use exflow_testkit::{Link, PcapWriter, TcpConversation};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

#[test]
fn every_flow_of_every_capture_has_a_service_and_how() {
    shared_captures();
    for path in tshark_expected().keys() {
        let r = analyze_json(&[path], &[0, 1]);
        for f in r["flows"].as_array().unwrap() {
            let service = f["service"].as_str().unwrap_or("");
            let how = f["identified_by"].as_str().unwrap_or("");
            assert!(!service.is_empty() && !how.is_empty(), "{path}: {f}");
            assert_eq!(service == "unknown", how == "none", "{path}: {f}");
        }
    }
}

#[test]
fn no_lab_flow_is_unknown_once_roles_are_given() {
    let lab = shared_captures().join("lab");
    let mut checked = 0;
    for e in std::fs::read_dir(&lab).unwrap() {
        let dir = e.unwrap().path();
        if !dir.join("truth.json").is_file() {
            continue;
        }
        for tap in ["client-tap.pcap", "server-tap.pcap"] {
            let p = dir.join(tap);
            let r = analyze_json(
                &[
                    "--exchange",
                    "198.51.100.10",
                    "--dc",
                    "198.51.100.10",
                    "--clients",
                    "192.0.2.0/24",
                    path_str(&p),
                ],
                &[0, 1],
            );
            let truth: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap())
                    .unwrap();
            // A scan's probes go to whatever ports the scanner chose: no
            // service to name there.
            let scanned = |f: &serde_json::Value| {
                truth["scans"].as_array().is_some_and(|scans| {
                    scans
                        .iter()
                        .any(|s| s["scanner"] == f["client"] && s["target"] == f["server"])
                })
            };
            for f in r["flows"].as_array().unwrap() {
                if scanned(f) {
                    continue;
                }
                checked += 1;
                assert_ne!(f["service"], "unknown", "{}: {f}", p.display());
            }
        }
    }
    assert!(checked > 100, "{checked} flows");
}

#[test]
fn rfc1006_users_are_told_apart_with_the_cotp_outcome() {
    let p = shared_captures().join("lab/rfc1006-allow/client-tap.pcap");
    let r = analyze_json(&[path_str(&p)], &[0]);
    let f = &r["flows"][0];
    assert_eq!(f["service"], "s7comm");
    assert_eq!(f["identified_by"], "payload");
    assert!(
        f.get("port_service_mismatch").is_none(),
        "S7comm belongs on 102: {f}"
    );
    assert_eq!(
        f["app"]["rfc1006"]["outcome"]["state"], "accepted",
        "{}",
        f["app"]
    );
    assert_eq!(f["app"]["rfc1006"]["calling_tsap"]["hex"], "0100");
    let mms =
        shared_captures().join("public/ntop+nDPI/tests__cfgs__default__pcap__iso9506-1-mms.pcap");
    let r = analyze_json(&[path_str(&mms)], &[0]);
    assert_eq!(r["flows"][0]["service"], "mms");
}

fn tcp_capture(name: &str, sport: u16, server_says: &[u8], client_says: &[u8]) -> String {
    let mut c = TcpConversation::new(IpAddr::V4(CLIENT), 41000, IpAddr::V4(SERVER), sport);
    let frames = [
        c.syn(),
        c.syn_ack(),
        c.ack(),
        c.data_s2c(server_says),
        c.data_c2s(client_says),
    ];
    let p = tmp_path(name);
    let mut w = PcapWriter::create(&p, Link::Ethernet, 65535, false).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(1_795_305_697_000_000_000 + i as u64 * 1_000_000, f)
            .unwrap();
    }
    w.flush().unwrap();
    path_str(&p).to_string()
}

#[test]
fn a_service_on_a_non_standard_port_is_recognized_from_its_payload() {
    let p = tcp_capture(
        "smtp-2525.pcap",
        2525,
        b"220 mail.example.com ESMTP ready\r\n",
        b"EHLO client.example.com\r\n",
    );
    let r = analyze_json(&[&p], &[0]);
    let f = &r["flows"][0];
    assert_eq!(
        (f["service"].as_str(), f["identified_by"].as_str()),
        (Some("smtp"), Some("payload"))
    );
    assert!(f.get("port_service_mismatch").is_none());
}

#[test]
fn a_standard_port_carrying_something_else_is_labeled_by_what_it_carries() {
    let p = tcp_capture(
        "http-on-25.pcap",
        25,
        b"",
        b"GET /owa/ HTTP/1.1\r\nHost: mail.example.com\r\n\r\n",
    );
    let r = analyze_json(&[&p], &[0]);
    let f = &r["flows"][0];
    assert_eq!(f["service"], "http");
    assert_eq!(f["identified_by"], "payload");
    assert_eq!(f["port_service_mismatch"], "smtp");
    assert_eq!(f["app"]["detail"], "mail.example.com");
}

fn udp_capture(name: &str, dport: u16, query: &[u8], answer: &[u8]) -> String {
    let p = tmp_path(name);
    let mut w = PcapWriter::create(&p, Link::Ethernet, 65535, false).unwrap();
    let q = exflow_testkit::Frame::ethernet()
        .ipv4(CLIENT, SERVER)
        .udp(41000, dport)
        .payload(query)
        .build();
    let a = exflow_testkit::Frame::ethernet()
        .ipv4(SERVER, CLIENT)
        .udp(dport, 41000)
        .payload(answer)
        .build();
    w.write_packet(1_795_305_697_000_000_000, &q).unwrap();
    w.write_packet(1_795_305_697_001_000_000, &a).unwrap();
    w.flush().unwrap();
    path_str(&p).to_string()
}

#[test]
fn each_well_known_signature_is_recognized_end_to_end_off_its_port() {
    type Case<'a> = (&'a str, u16, &'a [u8], &'a [u8], &'a str);
    let cases: [Case; 3] = [
        (
            "pop3",
            1110,
            b"+OK POP3 server ready\r\n",
            b"CAPA\r\n",
            "pop3",
        ),
        (
            "imap",
            1143,
            b"* OK [CAPABILITY IMAP4rev1] ready\r\n",
            b"a1 CAPABILITY\r\n",
            "imap",
        ),
        // LDAP simple bind request: messageID 1, version 3, empty DN, empty password.
        (
            "ldap",
            10389,
            b"",
            &[
                0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
            ],
            "ldap",
        ),
    ];
    for (name, port, server, client, want) in cases {
        let p = tcp_capture(&format!("sig-{name}.pcap"), port, server, client);
        let r = analyze_json(&[&p], &[0]);
        let f = &r["flows"][0];
        assert_eq!(f["service"], want, "{name}: {f}");
        assert_eq!(f["identified_by"], "payload", "{name}");
    }
    // DNS query for example.com (A, IN) and its empty answer, on UDP 5354;
    // the same on 5353 is mDNS and on 5355 LLMNR (DNS's format, link-local
    // name resolution: not a DNS server).
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend(b"\x07example\x03com\x00\x00\x01\x00\x01");
    let mut a = q.clone();
    a[2] = 0x81;
    a[3] = 0x80;
    for (port, want) in [(5354, "dns"), (5353, "mdns"), (5355, "llmnr")] {
        let p = udp_capture(&format!("sig-dns-{port}.pcap"), port, &q, &a);
        let f = &analyze_json(&[&p], &[0])["flows"][0];
        assert_eq!(
            (f["service"].as_str(), f["identified_by"].as_str()),
            (Some(want), Some("payload")),
            "DNS format on UDP {port}"
        );
        assert_eq!(f["app"]["detail"], "example.com");
    }
    // NTP v4 client request and server reply on UDP 123.
    let mut req = vec![0u8; 48];
    req[0] = 0x23;
    req[40..48].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let mut rep = vec![0u8; 48];
    rep[0] = 0x24;
    rep[24..32].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let p = udp_capture("sig-ntp.pcap", 123, &req, &rep);
    let f = &analyze_json(&[&p], &[0])["flows"][0];
    assert_eq!(
        (f["service"].as_str(), f["identified_by"].as_str()),
        (Some("ntp"), Some("payload"))
    );
}
