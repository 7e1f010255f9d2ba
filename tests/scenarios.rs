//! Constructed captures for exact scenarios: every handshake outcome, each
//! link type, IPv6, fragments, ICMP errors quoting a flow, snaplen cuts,
//! pcapng, timestamp merging of several files and BPF filters.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use exflow_testkit::{Frame, Link, PcapWriter, PcapngWriter, TcpConversation};
use serde_json::Value;

const S: u64 = 1_000_000_000;
const T0: u64 = 1_795_305_697 * S;
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const FIREWALL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn write_pcap(name: &str, link: Link, frames: &[(u64, Vec<u8>)]) -> String {
    let p = tmp_path(name);
    let mut w = PcapWriter::create(&p, link, 65535, false).unwrap();
    for (ts, f) in frames {
        w.write_packet(*ts, f).unwrap();
    }
    w.flush().unwrap();
    path_str(&p).to_string()
}

fn conv(cport: u16, sport: u16) -> TcpConversation {
    TcpConversation::new(IpAddr::V4(CLIENT), cport, IpAddr::V4(SERVER), sport)
}

fn only_flow(report: &Value) -> &Value {
    let flows = report["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1, "flows: {flows:#?}");
    &flows[0]
}

/// A script of frames at 10 ms steps.
fn timed(frames: Vec<Vec<u8>>) -> Vec<(u64, Vec<u8>)> {
    frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| (T0 + i as u64 * 10_000_000, f))
        .collect()
}

fn state_of(name: &str, frames: Vec<Vec<u8>>) -> Value {
    let p = write_pcap(name, Link::Ethernet, &timed(frames));
    let r = analyze_json(&[&p], &[0, 1]);
    only_flow(&r).clone()
}

#[test]
fn every_handshake_outcome_gets_its_zeek_state() {
    let mut c = conv(40000, 135);
    let sf = state_of(
        "sf.pcap",
        vec![
            c.syn(),
            c.syn_ack(),
            c.ack(),
            c.data_c2s(b"hello"),
            c.data_s2c(b"world"),
            c.fin_c(),
            c.fin_s(),
            c.ack(),
        ],
    );
    assert_eq!(sf["state"], "SF");
    assert_eq!(sf["packets"], serde_json::json!([5, 3]));
    assert_eq!(sf["payload_bytes"], serde_json::json!([5, 5]));
    assert_eq!(sf["client"], "192.0.2.10");
    assert_eq!(sf["server_port"], 135);
    assert_eq!(sf["service"], "epm");

    let mut c = conv(40001, 55000);
    let s1 = state_of(
        "s1.pcap",
        vec![c.syn(), c.syn_ack(), c.ack(), c.data_c2s(b"x")],
    );
    assert_eq!(s1["state"], "S1");

    let mut c = conv(40002, 55000);
    let rej = state_of("rej.pcap", vec![c.syn(), c.rst_s()]);
    assert_eq!(rej["state"], "REJ");

    let mut c = conv(40003, 55000);
    let rsto = state_of("rsto.pcap", vec![c.syn(), c.syn_ack(), c.ack(), c.rst_c()]);
    assert_eq!(rsto["state"], "RSTO");

    let mut c = conv(40004, 55000);
    let rstr = state_of("rstr.pcap", vec![c.syn(), c.syn_ack(), c.ack(), c.rst_s()]);
    assert_eq!(rstr["state"], "RSTR");

    let mut c = conv(40005, 55000);
    let sh = state_of("sh.pcap", vec![c.syn(), c.fin_c()]);
    assert_eq!(sh["state"], "SH");

    let mut c = conv(40006, 55000);
    let oth = state_of("oth.pcap", vec![c.data_c2s(b"mid"), c.data_s2c(b"stream")]);
    assert_eq!(oth["state"], "OTH");
    assert_eq!(oth["client_port"], 40006, "first sender is the originator");

    let mut c = conv(40007, 55000);
    let rstos0 = state_of("rstos0.pcap", vec![c.syn(), c.rst_c()]);
    assert_eq!(rstos0["state"], "RSTOS0");
}

#[test]
fn unanswered_syns_count_retries_and_their_spacing() {
    let mut c = conv(49616, 55000);
    let syn = c.syn();
    let frames = vec![
        (T0, syn.clone()),
        (T0 + S, syn.clone()),
        (T0 + 3 * S, syn.clone()),
        (T0 + 7 * S, syn),
    ];
    let p = write_pcap("s0.pcap", Link::Ethernet, &frames);
    let text = run(&["analyze", &p]);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        out.contains("Failed connection attempts: 1") && out.contains("SYN unanswered (4 sent"),
        "{out}"
    );
    let f = only_flow(&analyze_json(&[&p], &[0, 1])).clone();
    assert_eq!(f["state"], "S0");
    assert_eq!(f["syn_retries"], 3);
    assert_eq!(
        f["syn_gaps_ms"],
        serde_json::json!([1000.0, 2000.0, 4000.0])
    );
}

#[test]
fn a_new_syn_after_a_close_is_a_new_flow() {
    let mut a = conv(50000, 445);
    let mut frames = vec![a.syn(), a.syn_ack(), a.ack(), a.fin_c(), a.fin_s(), a.ack()];
    let mut b = TcpConversation::with_isn(
        IpAddr::V4(CLIENT),
        50000,
        IpAddr::V4(SERVER),
        445,
        9000,
        7000,
    );
    frames.extend([b.syn(), b.syn_ack(), b.ack()]);
    let p = write_pcap("reuse.pcap", Link::Ethernet, &timed(frames));
    let r = analyze_json(&[&p], &[0, 1]);
    let flows = r["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0]["state"], "SF");
    assert_eq!(flows[1]["state"], "S1");
    assert_eq!(r["stats"]["flows_reused"], 1);
}

#[test]
fn every_link_type_and_vlan_tagging_decodes_the_same_flow() {
    let mut reference: Option<Value> = None;
    type Variant = (&'static str, Link, Option<(u16, u16)>);
    let variants: Vec<Variant> = vec![
        ("eth", Link::Ethernet, None),
        ("vlan", Link::Ethernet, Some((10, 0))),
        ("qinq", Link::Ethernet, Some((100, 20))),
        ("sll", Link::Sll, None),
        ("sll2", Link::Sll2, None),
        ("raw", Link::Raw, None),
        ("null", Link::Null, None),
        ("loop", Link::Loop, None),
    ];
    for (name, link, tags) in variants {
        let mut c = conv(40100, 389).link(link);
        let mut frames = vec![
            c.syn(),
            c.syn_ack(),
            c.ack(),
            c.data_c2s(&[0x30; 40]),
            c.fin_c(),
            c.fin_s(),
            c.ack(),
        ];
        if let Some((outer, inner)) = tags {
            // Re-wrap the IP datagram behind VLAN tags.
            frames = frames
                .iter()
                .map(|f| {
                    let ip = &f[14..];
                    let fr = if inner == 0 {
                        Frame::ethernet().vlan(outer)
                    } else {
                        Frame::ethernet().qinq(outer, inner)
                    };
                    fr.wrap(ip)
                })
                .collect();
        }
        let p = write_pcap(&format!("link-{name}.pcap"), link, &timed(frames));
        let r = analyze_json(&[&p], &[0, 1]);
        assert!(
            r["stats"]["decode_errors"].as_object().unwrap().is_empty(),
            "{name}: {}",
            r["stats"]
        );
        let mut f = only_flow(&r).clone();
        // Frame sizes differ per link layer; everything else must not.
        f["bytes"] = Value::Null;
        assert_eq!(f["state"], "SF", "{name}");
        match &reference {
            None => reference = Some(f),
            Some(want) => assert_eq!(&f, want, "{name}"),
        }
    }
}

#[test]
fn ipv6_flows_and_icmpv6_errors() {
    let c6: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let s6: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
    let fw6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut c = TcpConversation::new(IpAddr::V6(c6), 41000, IpAddr::V6(s6), 55001);
    let syn = c.syn();
    let quoted = syn[14..].to_vec();
    let icmp = Frame::ethernet()
        .ipv6(fw6, c6)
        .icmp_unreachable(1, &quoted)
        .build();
    let p = write_pcap("v6.pcap", Link::Ethernet, &timed(vec![syn, icmp]));
    let r = analyze_json(&[&p], &[0, 1]);
    let f = only_flow(&r);
    assert_eq!(f["client"], "2001:db8::10");
    assert_eq!(f["state"], "S0");
    assert_eq!(f["icmp_errors"][0]["sender"], "2001:db8::1");
    assert_eq!(f["icmp_errors"][0]["icmp_version"], 6);
    assert_eq!(f["icmp_errors"][0]["code"], 1);
}

#[test]
fn icmp_admin_prohibited_is_attached_to_the_attempt_it_quotes() {
    let mut c = conv(40792, 55000);
    let syn = c.syn();
    let icmp = Frame::ethernet()
        .ipv4(FIREWALL, CLIENT)
        .icmp_unreachable(13, &syn[14..])
        .build();
    let p = write_pcap("icmp.pcap", Link::Ethernet, &timed(vec![syn, icmp]));
    let r = analyze_json(&[&p], &[0, 1]);
    let f = only_flow(&r);
    assert_eq!(f["state"], "S0");
    assert_eq!(f["icmp_error_count"], 1);
    let e = &f["icmp_errors"][0];
    assert_eq!(
        (e["sender"].as_str(), e["type"].as_u64(), e["code"].as_u64()),
        (Some("192.0.2.1"), Some(3), Some(13))
    );
    assert_eq!(e["quotes_originator"], true);
    assert_eq!(r["stats"]["icmp_packets"], 1);
    assert_eq!(r["stats"]["icmp_unmatched"], 0);
    assert_eq!(r["stats"]["scan_probes_untracked"], 0);
}

#[test]
fn ip_fragments_are_reassembled_into_one_datagram() {
    let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let frags = Frame::ethernet()
        .ipv4(SERVER, CLIENT)
        .ip_id(0x4242)
        .udp(2571, 1054)
        .payload(&payload)
        .build_fragments(3);
    assert_eq!(frags.len(), 3);
    // Out of order on purpose.
    let order = vec![frags[2].clone(), frags[0].clone(), frags[1].clone()];
    let p = write_pcap("frags.pcap", Link::Ethernet, &timed(order));
    let r = analyze_json(&[&p], &[0, 1]);
    let f = only_flow(&r);
    assert_eq!(f["proto"], "udp");
    assert_eq!(
        (f["client_port"].as_u64(), f["server_port"].as_u64()),
        (Some(2571), Some(1054))
    );
    assert_eq!(f["payload_bytes"][0], 3000);
    assert_eq!(r["stats"]["fragments"]["fragments_seen"], 3);
    assert_eq!(r["stats"]["fragments"]["datagrams_reassembled"], 1);
}

#[test]
fn snaplen_truncated_frames_are_counted_and_still_tracked() {
    let mut c = conv(40200, 445);
    let frames = [c.syn(), c.syn_ack(), c.ack(), c.data_c2s(&[7u8; 1200])];
    let p = tmp_path("snap.pcap");
    let mut w = PcapWriter::create(&p, Link::Ethernet, 96, false).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let ts = T0 + i as u64 * 1000;
        if f.len() > 96 {
            w.write_packet_truncated(ts, &f[..96], f.len() as u32)
                .unwrap();
        } else {
            w.write_packet(ts, f).unwrap();
        }
    }
    w.flush().unwrap();
    let r = analyze_json(&[path_str(&p)], &[0, 1]);
    assert_eq!(r["stats"]["snaplen_truncated"], 1);
    assert_eq!(r["inputs"][0]["snaplen_truncated"], 1);
    let f = only_flow(&r);
    assert_eq!(f["packets"], serde_json::json!([3, 1]));
    assert_eq!(
        f["payload_bytes"][0], 1200,
        "payload counts what the wire carried"
    );
}

#[test]
fn pcapng_with_two_interfaces_and_nanosecond_stamps() {
    let mut c = conv(40300, 88);
    let p = tmp_path("two-if.pcapng");
    let mut w = PcapngWriter::create(&p).unwrap();
    let eth = w.add_interface(Link::Ethernet, 65535, true).unwrap();
    let raw = w.add_interface(Link::Raw, 65535, false).unwrap();
    let syn = c.syn();
    let synack = c.syn_ack();
    let ack = c.ack();
    w.write_packet(eth, T0 + 1, &syn).unwrap();
    w.write_packet(raw, T0 + 2_000, &synack[14..]).unwrap();
    w.write_packet(eth, T0 + 3_000_123, &ack).unwrap();
    w.flush().unwrap();
    drop(w);
    let r = analyze_json(&[path_str(&p)], &[0, 1]);
    assert_eq!(r["inputs"][0]["format"], "pcapng");
    assert_eq!(
        r["inputs"][0]["link_types"],
        serde_json::json!(["ethernet", "raw"])
    );
    let f = only_flow(&r);
    assert_eq!(f["state"], "S1");
    assert_eq!(f["first_ts"], "2026-11-22T00:01:37.000000Z");
    assert_eq!(f["last_ts"], "2026-11-22T00:01:37.003000Z");
}

#[test]
fn two_taps_are_merged_by_timestamp() {
    // The client's packets in one file, the server's in another, interleaved in time.
    let mut c = conv(40400, 3268);
    let frames = timed(vec![
        c.syn(),
        c.syn_ack(),
        c.ack(),
        c.data_s2c(b"x"),
        c.fin_c(),
        c.fin_s(),
        c.ack(),
    ]);
    let (cl, sv): (Vec<_>, Vec<_>) = frames
        .into_iter()
        .enumerate()
        .partition(|(i, _)| [0, 2, 4, 6].contains(i));
    let strip = |v: Vec<(usize, (u64, Vec<u8>))>| v.into_iter().map(|(_, f)| f).collect::<Vec<_>>();
    let a = write_pcap("tap-a.pcap", Link::Ethernet, &strip(cl));
    let b = write_pcap("tap-b.pcap", Link::Ethernet, &strip(sv));
    let r = analyze_json(&[&b, &a], &[0, 1]);
    let f = only_flow(&r);
    assert_eq!(f["state"], "SF", "merged in time order: {f}");
    assert_eq!(f["client_port"], 40400);
    assert_eq!(r["stats"]["packets"], 7);
}

#[test]
fn bpf_filter_applies_to_files() {
    let mut a = conv(40500, 135);
    let mut b = conv(40501, 389);
    let frames = timed(vec![a.syn(), b.syn(), a.syn_ack(), b.syn_ack()]);
    let p = write_pcap("bpf.pcap", Link::Ethernet, &frames);
    let r = analyze_json(&["--filter", "tcp port 389", &p], &[0, 1]);
    let f = only_flow(&r);
    assert_eq!(f["server_port"], 389);
    assert_eq!(r["inputs"][0]["packets"], 4);
    assert_eq!(r["inputs"][0]["packets_matched"], 2);
    assert_eq!(r["stats"]["packets"], 2);
}

#[test]
fn garbage_frames_are_counted_by_reason_never_fatal() {
    let mut c = conv(40600, 445);
    let arp = {
        let mut f = vec![0xffu8; 12];
        f.extend([0x08, 0x06]);
        f.extend([0u8; 28]);
        f
    };
    let short = vec![0x02u8; 10];
    let bad_ip = {
        let mut f = c.syn();
        f[14] = 0x4f; // IHL 15 words, beyond the header
        f[16] = 0;
        f[17] = 20;
        f
    };
    let p = write_pcap(
        "garbage.pcap",
        Link::Ethernet,
        &timed(vec![arp, short, bad_ip, c.syn()]),
    );
    let r = analyze_json(&[&p], &[0, 1]);
    let errs = r["stats"]["decode_errors"].as_object().unwrap();
    let total: u64 = errs.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 3, "{errs:?}");
    assert_eq!(errs["not-ip"], 1);
    assert_eq!(errs["truncated-link-header"], 1);
    assert_eq!(r["flows"].as_array().unwrap().len(), 1);
}
