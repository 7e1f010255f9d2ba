//! Real captures vs tshark: the payload recognizers alone
//! (`exflow::proto::recognize`) must name every TCP/UDP conversation the way
//! tshark does.
//!
//! Expected data: tests/data/recognize_tshark.json, written by
//! tests/support/recognize_expected.py (tshark 4.0): per conversation, the
//! first application protocol tshark names in frame order, mapped to the
//! report's service names (`service`), `"other"` for a protocol outside the
//! recognizers' scope (dcerpc, ymsg, raw data), `null` when tshark names
//! none.
//!
//! Inputs to the recognizers, as a flow table would keep them: per TCP
//! direction the first payload bytes, contiguous by sequence number
//! (retransmissions dropped), up to 512; per UDP direction the first
//! datagram. The originator is the sender of the SYN (TCP) or else of the
//! first packet.
//!
//! Asserted: every conversation with a mapped service is recognized as that
//! service (TLS as "tls"); every "other" conversation is not recognized at
//! all; nor is any conversation tshark leaves unnamed (in these captures:
//! mid-stream tails of Kerberos PDUs whose start was not captured, and
//! POP3 connections without payload). `--nocapture` prints the counts.

use std::collections::HashMap;
use std::net::IpAddr;

mod common;

use common::ips;
use etherparse::{SlicedPacket, TransportSlice};
use exflow::proto::recognize::{recognize_tcp, recognize_udp, Recognized};
use serde_json::Value;

const FIRST_BYTES: usize = 512;

type Endpoint = (IpAddr, u16);

#[derive(Default)]
struct Side {
    bytes: Vec<u8>,
    next_seq: Option<u32>,
    /// A datagram / segment has been taken (UDP: stop after the first).
    started: bool,
}

struct Conv {
    proto: &'static str,
    orig: Endpoint,
    saw_syn: bool,
    sides: HashMap<Endpoint, Side>,
}

fn key(proto: &'static str, a: Endpoint, b: Endpoint) -> (&'static str, Endpoint, Endpoint) {
    if a <= b {
        (proto, a, b)
    } else {
        (proto, b, a)
    }
}

type Key = (&'static str, Endpoint, Endpoint);

fn read(path: &str) -> HashMap<Key, Conv> {
    let mut cap = pcap::Capture::from_file(path).expect("open capture");
    let mut convs: HashMap<Key, Conv> = HashMap::new();
    while let Ok(pkt) = cap.next_packet() {
        let Ok(sliced) = SlicedPacket::from_ethernet(pkt.data) else {
            continue;
        };
        let Some(net) = &sliced.net else { continue };
        let Some((src, dst)) = ips(net) else { continue };
        match &sliced.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                let (s, d) = ((src, tcp.source_port()), (dst, tcp.destination_port()));
                let conv = convs.entry(key("tcp", s, d)).or_insert_with(|| Conv {
                    proto: "tcp",
                    orig: s,
                    saw_syn: false,
                    sides: HashMap::new(),
                });
                let seq = tcp.sequence_number();
                if tcp.syn() && !tcp.ack() && !conv.saw_syn {
                    conv.saw_syn = true;
                    conv.orig = s;
                }
                let side = conv.sides.entry(s).or_default();
                if tcp.syn() {
                    side.next_seq = Some(seq.wrapping_add(1));
                    continue;
                }
                let payload = tcp.payload();
                if payload.is_empty() || side.bytes.len() >= FIRST_BYTES {
                    continue;
                }
                if side.started && side.next_seq != Some(seq) {
                    continue; // retransmission, reordering or a hole: stop at contiguous bytes
                }
                if !side.started && side.next_seq.is_some_and(|n| n != seq) {
                    // Retransmitted start (or data before our view): keep only the new part.
                    let behind = side.next_seq.unwrap().wrapping_sub(seq) as usize;
                    if behind >= payload.len() {
                        continue;
                    }
                    side.bytes.extend_from_slice(&payload[behind..]);
                } else {
                    side.bytes.extend_from_slice(payload);
                }
                side.started = true;
                side.next_seq = Some(seq.wrapping_add(payload.len() as u32));
                side.bytes.truncate(FIRST_BYTES);
            }
            Some(TransportSlice::Udp(udp)) => {
                let (s, d) = ((src, udp.source_port()), (dst, udp.destination_port()));
                let conv = convs.entry(key("udp", s, d)).or_insert_with(|| Conv {
                    proto: "udp",
                    orig: s,
                    saw_syn: false,
                    sides: HashMap::new(),
                });
                let side = conv.sides.entry(s).or_default();
                if !side.started {
                    side.started = true;
                    let p = udp.payload();
                    side.bytes.extend_from_slice(&p[..p.len().min(FIRST_BYTES)]);
                }
            }
            _ => {}
        }
    }
    convs
}

fn recognize(conv: &Conv, a: Endpoint, b: Endpoint) -> Option<Recognized> {
    let resp = if conv.orig == a { b } else { a };
    let empty = Vec::new();
    let o = conv.sides.get(&conv.orig).map_or(&empty, |s| &s.bytes);
    let r = conv.sides.get(&resp).map_or(&empty, |s| &s.bytes);
    if conv.proto == "tcp" {
        recognize_tcp(o, r)
    } else {
        recognize_udp(o, r, conv.orig.1, resp.1)
    }
}

fn endpoint(v: &Value) -> Endpoint {
    (
        v[0].as_str().unwrap().parse().unwrap(),
        v[1].as_u64().unwrap() as u16,
    )
}

#[test]
fn recognizers_agree_with_tshark() {
    let exp: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/data/recognize_tshark.json").expect("expected data"),
    )
    .unwrap();
    let mut failures = Vec::new();
    let mut checked: HashMap<String, usize> = HashMap::new();
    let mut others = 0;
    for capture in exp["captures"].as_array().unwrap() {
        let path = capture["path"].as_str().unwrap();
        let convs = read(path);
        let name = path.rsplit('/').next().unwrap();
        let mut unnamed = Vec::new();
        for c in capture["conversations"].as_array().unwrap() {
            let proto = if c["proto"] == "tcp" { "tcp" } else { "udp" };
            let (a, b) = (endpoint(&c["a"]), endpoint(&c["b"]));
            let Some(conv) = convs.get(&key(proto, a, b)) else {
                failures.push(format!("{name}: {proto} {a:?} {b:?} not read"));
                continue;
            };
            let got = recognize(conv, a, b);
            let got_svc = got.as_ref().map(|r| r.service);
            match c["service"].as_str() {
                None => {
                    // Mid-stream tails and empty conversations: nothing to name.
                    unnamed.push(format!("{proto} {a:?}-{b:?}"));
                    if got.is_some() {
                        failures.push(format!(
                            "{name}: {proto} {a:?}-{b:?} tshark names nothing, recognized {got:?}"
                        ));
                    }
                }
                Some("other") => {
                    others += 1;
                    if got.is_some() {
                        failures.push(format!(
                            "{name}: {proto} {a:?}-{b:?} tshark {} (out of scope), recognized {got:?}",
                            c["tshark"]
                        ));
                    }
                }
                Some(want) => {
                    *checked.entry(want.to_string()).or_default() += 1;
                    if got_svc != Some(want) {
                        failures.push(format!(
                            "{name}: {proto} {a:?}-{b:?} tshark {want}, recognized {got:?}"
                        ));
                    }
                }
            }
        }
        println!(
            "{name}: {} conversations; tshark names none in {}: {unnamed:?}",
            capture["conversations"].as_array().unwrap().len(),
            unnamed.len()
        );
    }
    let mut checked: Vec<_> = checked.into_iter().collect();
    checked.sort();
    println!("matched per service: {checked:?}; out-of-scope left unrecognized: {others}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The comparison must actually cover the services the brief names.
    for svc in [
        "smtp", "pop3", "imap", "ldap", "kerberos", "smb", "dns", "tls",
    ] {
        assert!(
            checked.iter().any(|(s, n)| s == svc && *n > 0),
            "no {svc} conversation compared"
        );
    }
}
