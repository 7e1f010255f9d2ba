//! Issue #24, point 1: RPC over HTTP.
//!
//! * The RPC over HTTP endpoint mapper on TCP 593: every connection opens
//!   with the server's `ncacn_http/1.0` banner, then DCE/RPC as on 135. Its
//!   ept_map answers are hand-offs (`transport: ncacn_http`), followed or
//!   not like any other.
//! * An RPC proxy: the client's `RPC_IN_DATA` / `RPC_OUT_DATA`
//!   `/rpc/rpcproxy.dll?host:port` names the backend; the proxy's
//!   connection to that port (opening with the banner) is the follow-up.
//!   By name, any address the proxy connects to at that port matches. A
//!   proxy hand-off never followed is not judged (the proxy's backend side
//!   may be outside the capture); a follow-up seen failing is.
//!
//! Constructed captures (real PDUs of protocols.md; the URL and banner as
//! MS-RPCH writes them); each through `analyze` with 1 and 3 threads and
//! through the live path. Documentation addresses only.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::live::live_agrees;
use common::pdus::{epm_bind, epm_bind_ack, ept_map_answer_at, ept_map_nspi, hex};
use common::*;
use exflow_testkit::TcpConversation;
use serde_json::Value;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const T0: u64 = 1_795_305_697_000_000_000;

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const PROXY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const BANNER: &[u8] = b"ncacn_http/1.0";
const NSPI: &str = "f5cc5a18-4264-101a-8c59-08002b2f8426";

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

/// `data` from the server, one segment or one per byte.
fn s2c(c: &mut TcpConversation, data: &[u8], bytewise: bool) -> Vec<Vec<u8>> {
    if bytewise {
        data.iter().map(|b| c.data_s2c(&[*b])).collect()
    } else {
        vec![c.data_s2c(data)]
    }
}

/// A client's ept_map for NSPI over ncacn_http on 593: handshake, the
/// server's banner, bind, bind_ack, request, the answer naming `port`.
fn mapper_593(cap: &mut Cap, t: u64, port: u16, bytewise: bool) -> u64 {
    let mut c = TcpConversation::new(v4(CLIENT), 50_000, v4(BACKEND), 593);
    let mut f = vec![c.syn(), c.syn_ack(), c.ack()];
    f.extend(s2c(&mut c, BANNER, bytewise));
    f.push(c.data_c2s(&epm_bind()));
    f.extend(s2c(&mut c, &epm_bind_ack(), bytewise));
    f.push(c.data_c2s(&ept_map_nspi()));
    f.extend(s2c(
        &mut c,
        &ept_map_answer_at(Ipv4Addr::UNSPECIFIED, port),
        bytewise,
    ));
    f.extend([c.fin_c(), c.fin_s(), c.ack()]);
    cap.seq(t, f)
}

/// What became of a connection attempt.
#[derive(Clone, Copy, PartialEq)]
enum Then {
    /// Established; the server sends the banner.
    Followed,
    /// Three SYNs, no answer.
    Dropped,
    /// Answered by a reset.
    Reset,
    /// No attempt.
    Nothing,
}

/// `from` connects to `to`:`port` (an ncacn_http server: banner first).
fn connect(cap: &mut Cap, t: u64, from: Ipv4Addr, cport: u16, to: Ipv4Addr, port: u16, what: Then) {
    let mut c = TcpConversation::new(v4(from), cport, v4(to), port);
    match what {
        Then::Followed => {
            let f = vec![
                c.syn(),
                c.syn_ack(),
                c.ack(),
                c.data_s2c(BANNER),
                c.data_c2s(&epm_bind()),
                c.data_s2c(&epm_bind_ack()),
                c.fin_c(),
                c.fin_s(),
                c.ack(),
            ];
            cap.seq(t, f);
        }
        Then::Dropped => {
            let syn = c.syn();
            for k in 0..3 {
                cap.frames.push((T0 + t + k * SEC, syn.clone()));
            }
        }
        Then::Reset => {
            let f = vec![c.syn(), c.rst_s()];
            cap.seq(t, f);
        }
        Then::Nothing => {}
    }
}

/// A client's RPC over HTTP request to the proxy (port 80): the request
/// line names `backend`; the proxy answers 200, as for an OUT channel.
fn proxy_request(cap: &mut Cap, t: u64, cport: u16, method: &str, backend: &str) -> u64 {
    let mut c = TcpConversation::new(v4(CLIENT), cport, v4(PROXY), 80);
    let req = format!(
        "{method} /rpc/rpcproxy.dll?{backend} HTTP/1.1\r\nAccept: application/rpc\r\nUser-Agent: MSRPC\r\nHost: mail.example.net\r\nContent-Length: 1073741824\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\nPragma: no-cache\r\n\r\n"
    );
    let f = vec![
        c.syn(),
        c.syn_ack(),
        c.ack(),
        c.data_c2s(req.as_bytes()),
        c.data_s2c(b"HTTP/1.1 200 Success\r\nContent-Type: application/rpc\r\nContent-Length: 1073741824\r\n\r\n"),
    ];
    cap.seq(t, f)
}

/// Later traffic, so no window is cut by the capture's end.
fn later(cap: &mut Cap) {
    let mut c = TcpConversation::new(v4(CLIENT), 40_000, v4(BACKEND), 389);
    let f = vec![c.syn(), c.syn_ack(), c.ack()];
    cap.seq(60 * SEC, f);
}

/// The analysis of `path`, the same with 1 and 3 threads and through the
/// live path.
fn report(path: &str) -> Value {
    let one = analyze_json(&[path, "--threads", "1"], &[0, 1]);
    let three = analyze_json(&[path, "--threads", "3"], &[0, 1]);
    assert_eq!(one, three, "{path}: --threads 1 and 3 differ");
    live_agrees(path, &one);
    one
}

fn handoffs(r: &Value) -> &Vec<Value> {
    r["handoffs"].as_array().unwrap()
}

fn blocked(r: &Value) -> Vec<(String, u64)> {
    findings(r)
        .iter()
        .filter(|f| f["kind"] == "blocked")
        .map(|f| {
            (
                f["server"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn mapper_capture(name: &str, what: Then, bytewise: bool) -> String {
    let mut cap = Cap::default();
    let t = mapper_593(&mut cap, 0, 49_700, bytewise);
    connect(&mut cap, t + 5 * MS, CLIENT, 50_001, BACKEND, 49_700, what);
    later(&mut cap);
    write_pcap(name, &cap.frames)
}

#[test]
fn the_593_mapper_answers_after_its_banner_and_the_handoff_is_followed() {
    for bytewise in [false, true] {
        let r = report(&mapper_capture(
            &format!("rpch-593-followed-{bytewise}.pcap"),
            Then::Followed,
            bytewise,
        ));
        let h = handoffs(&r);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0]["transport"], "ncacn_http");
        assert_eq!(h[0]["operation"], "ept_map");
        assert_eq!(h[0]["mapper"], BACKEND.to_string());
        assert_eq!(h[0]["port"], 49_700);
        assert_eq!(h[0]["interface"]["uuid"], NSPI);
        assert_eq!(h[0]["followed"], true);
        assert!(blocked(&r).is_empty());
        // The mapper's connection is read as DCE/RPC: the EPM bound on it.
        let f593 = r["flows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["server_port"] == 593)
            .unwrap();
        assert_eq!(f593["rpc"]["epm_answers"], 1, "{f593}");
    }
}

#[test]
fn a_593_handoff_dropped_or_reset_is_blocked() {
    for (what, name) in [(Then::Dropped, "dropped"), (Then::Reset, "reset")] {
        let r = report(&mapper_capture(
            &format!("rpch-593-{name}.pcap"),
            what,
            false,
        ));
        let h = &handoffs(&r)[0];
        assert_eq!(h["transport"], "ncacn_http");
        assert_eq!(h["followed"], false, "{h}");
        assert_eq!(
            h["outcome"]["kind"],
            if what == Then::Dropped {
                "syn-unanswered"
            } else {
                "reset"
            }
        );
        assert_eq!(
            blocked(&r),
            if what == Then::Dropped {
                vec![(BACKEND.to_string(), 49_700)]
            } else {
                vec![]
            },
            "{name}: {:?}",
            findings(&r)
        );
    }
}

/// A client asks the proxy for `backend` on both channels; the proxy
/// connects (or not) to BACKEND at `port` for each.
fn proxy_capture(name: &str, backend: &str, port: u16, what: Then) -> String {
    let mut cap = Cap::default();
    let t = proxy_request(&mut cap, 0, 51_000, "RPC_IN_DATA", backend);
    connect(&mut cap, t, PROXY, 52_000, BACKEND, port, what);
    let t = proxy_request(&mut cap, t + 200 * MS, 51_001, "RPC_OUT_DATA", backend);
    connect(&mut cap, t, PROXY, 52_001, BACKEND, port, what);
    later(&mut cap);
    write_pcap(name, &cap.frames)
}

#[test]
fn a_proxy_url_is_a_handoff_the_proxys_backend_connection_follows() {
    for (backend, name) in [
        ("ex01.contoso.com:6001", "name"),
        ("198.51.100.10:6001", "address"),
    ] {
        let r = report(&proxy_capture(
            &format!("rpch-proxy-{name}.pcap"),
            backend,
            6001,
            Then::Followed,
        ));
        let h = handoffs(&r);
        assert_eq!(h.len(), 2, "{name}: {h:?}");
        for (h, method) in h.iter().zip(["RPC_IN_DATA", "RPC_OUT_DATA"]) {
            assert_eq!(h["operation"], "rpc-proxy");
            assert_eq!(h["transport"], "ncacn_http");
            assert_eq!(h["proto"], "http");
            assert_eq!(h["client"], PROXY.to_string(), "the proxy connects");
            assert_eq!(h["mapper"], PROXY.to_string());
            assert_eq!(h["server"], BACKEND.to_string());
            assert_eq!(h["port"], 6001);
            assert_eq!(h["service"], "rpc-proxy-backend");
            assert_eq!(h["rpc_proxy"]["method"], method);
            assert_eq!(h["rpc_proxy"]["backend"], backend);
            assert_eq!(h["rpc_proxy"]["requested_by"], CLIENT.to_string());
            assert_eq!(h["followed"], true, "{name}: {h}");
            assert_eq!(
                h["matched"],
                if name == "name" {
                    "any-address"
                } else {
                    "tower-address"
                }
            );
        }
        // Each channel followed by its own connection.
        let ports: Vec<&Value> = h.iter().map(|h| &h["outcome"]["client_port"]).collect();
        assert_eq!(ports, [52_000, 52_001]);
        // The backend connections are labelled by the hand-off.
        let back: Vec<&Value> = r["flows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["server_port"] == 6001)
            .collect();
        assert_eq!(back.len(), 2);
        for f in back {
            assert_eq!(f["identified_by"], "rpc-proxy-handoff", "{f}");
        }
        assert!(blocked(&r).is_empty());
    }
}

#[test]
fn a_proxys_dropped_backend_connection_is_blocked_and_an_unseen_one_is_not_judged() {
    let r = report(&proxy_capture(
        "rpch-proxy-dropped.pcap",
        "ex01.contoso.com:6004",
        6004,
        Then::Dropped,
    ));
    for h in handoffs(&r) {
        assert_eq!(h["followed"], false);
        assert_eq!(h["outcome"]["kind"], "syn-unanswered", "{h}");
        assert_eq!(h["matched_address"], BACKEND.to_string());
        assert_eq!(h["server"], BACKEND.to_string());
    }
    assert_eq!(blocked(&r), vec![(BACKEND.to_string(), 6004)]);
    let text = text_joined(&proxy_capture(
        "rpch-proxy-dropped-text.pcap",
        "ex01.contoso.com:6004",
        6004,
        Then::Dropped,
    ));
    assert!(
        text.contains("backend ex01.contoso.com:6004 (rpc-proxy-backend)"),
        "{text}"
    );
    assert!(text.contains("asked by 192.0.2.10 (RPC_IN_DATA)"), "{text}");

    // The capture shows the client side only: nothing of the proxy's
    // backend side. Told, not judged.
    let r = report(&proxy_capture(
        "rpch-proxy-unseen.pcap",
        "ex01.contoso.com:6001",
        6001,
        Then::Nothing,
    ));
    let h = handoffs(&r);
    assert_eq!(h.len(), 2);
    for h in h {
        assert_eq!(h["outcome"]["kind"], "no-attempt");
        assert_eq!(
            h["server"], "0.0.0.0",
            "named by name, never seen: no address"
        );
        assert_eq!(h["matched"], Value::Null);
    }
    assert!(findings(&r).is_empty(), "{:?}", findings(&r));
}

#[test]
fn proxy_requests_that_are_not_are_not_handoffs() {
    let mut cap = Cap::default();
    let mut t = 0;
    for (k, line) in [
        "RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1",
        "GET /rpc/rpcproxy.dll?ex01:6001 HTTP/1.1",
        "RPC_IN_DATA /rpc/rpcproxy.dll?ex01:99999 HTTP/1.1",
        "RPC_IN_DATA /rpc/rpcproxy.dll?ex01:0 HTTP/1.1",
        "RPC_OUT_DATA /rpc/rpcproxy.dll?ex01:6001",
    ]
    .iter()
    .enumerate()
    {
        let mut c = TcpConversation::new(v4(CLIENT), 51_100 + k as u16, v4(PROXY), 80);
        let f = vec![
            c.syn(),
            c.syn_ack(),
            c.ack(),
            c.data_c2s(format!("{line}\r\n").as_bytes()),
        ];
        t = cap.seq(t, f);
    }
    later(&mut cap);
    let r = report(&write_pcap("rpch-not-proxy.pcap", &cap.frames));
    assert!(handoffs(&r).is_empty(), "{:?}", handoffs(&r));
}

#[test]
fn a_banner_without_rpc_after_it_and_rts_pdus_do_not_trouble_the_parser() {
    // The proxy's RTS CONN/B1-like PDU (ptype 20) after the banner, then
    // garbage: counted, no hand-off, no panic.
    let mut cap = Cap::default();
    let mut c = TcpConversation::new(v4(PROXY), 52_000, v4(BACKEND), 6001);
    let rts = hex("05 00 14 03 10 00 00 00 14 00 00 00 00 00 00 00
         00 00 00 00");
    let f = vec![
        c.syn(),
        c.syn_ack(),
        c.ack(),
        c.data_s2c(BANNER),
        c.data_c2s(&rts),
        c.data_c2s(&[0xff; 40]),
        c.data_s2c(b"ncacn_http/1.0ncacn_http/1.0"),
    ];
    cap.seq(0, f);
    later(&mut cap);
    let r = report(&write_pcap("rpch-rts.pcap", &cap.frames));
    let f = r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["server_port"] == 6001)
        .unwrap();
    assert!(f["rpc"]["pdus"].as_u64().unwrap() >= 1, "{f}");
    assert!(handoffs(&r).is_empty());
    // Labelled RPC over HTTP from its banner (no bind: an OUT channel).
    assert_eq!(f["service"], "rpc-over-http", "{f}");
    assert_eq!(f["identified_by"], "payload", "{f}");
}

#[test]
fn backend_connections_whose_requests_were_not_seen_are_said_so() {
    // The client's requests went over HTTPS: only the proxy's backend
    // connections (banner, bind) are in clear.
    let mut cap = Cap::default();
    let mut c = TcpConversation::new(v4(CLIENT), 51_000, v4(PROXY), 443);
    let f = vec![c.syn(), c.syn_ack(), c.ack()];
    let t = cap.seq(0, f);
    connect(&mut cap, t, PROXY, 52_000, BACKEND, 6001, Then::Followed);
    connect(
        &mut cap,
        t + 100 * MS,
        PROXY,
        52_001,
        BACKEND,
        6004,
        Then::Dropped,
    );
    later(&mut cap);
    let p = write_pcap("rpch-tls.pcap", &cap.frames);
    let r = report(&p);
    assert!(handoffs(&r).is_empty());
    // What can be seen is judged: the dropped backend connection.
    assert_eq!(blocked(&r), vec![(BACKEND.to_string(), 6004)]);
    let t = text_joined(&p);
    assert!(
        t.contains("203.0.113.5: 1 ncacn_http connection (port 6001) that no RPC proxy request in the capture named"),
        "{t}"
    );
}

#[test]
fn a_proxys_backend_connection_reset_is_the_handoffs_outcome() {
    let r = report(&proxy_capture(
        "rpch-proxy-reset.pcap",
        "ex01.contoso.com:6002",
        6002,
        Then::Reset,
    ));
    let h = handoffs(&r);
    assert_eq!(h.len(), 2);
    for h in h {
        assert_eq!(h["outcome"]["kind"], "reset", "{h}");
        assert_eq!(h["server"], BACKEND.to_string());
        assert_eq!(h["matched"], "any-address");
    }
    // A reset from the backend: refused by the host, not blocked.
    assert!(blocked(&r).is_empty(), "{:?}", findings(&r));
}
