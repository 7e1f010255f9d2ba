//! Real captures through the RFC 1006 parsers alone (exflow::proto::rfc1006):
//! TCP payload is concatenated per direction in capture order (sequence
//! numbers only drop retransmitted bytes and report holes as `gap`) and fed
//! to one `Rfc1006Conn` per TCP connection; the expected outcome, TSAPs,
//! TPDU sizes, TPDU counts and classification were read with tshark 4.x
//! (`tshark -Y cotp -T fields -e cotp.type -e cotp.src-tsap -e cotp.dst-tsap
//! -e cotp.tpdu_size` and the S7COMM / MMS dissectors' verdicts):
//!
//! * lab rfc1006-allow: libsnap7 client and server; CR/CC with TSAPs
//!   0x0100 → 0x0101, TPDU size 1024, then 14 DT (S7 setup and DB reads).
//! * nDPI s7comm.pcap: CR/CC 0x0100 → 0x0102, 1024; 53 DT of S7comm,
//!   including empty non-EOT DTs before the data (`02 f0 00`).
//! * ITI snap7_s300_everything.pcapng: starts after the CR/CC — 64 DT of
//!   S7comm only, so the outcome is Unknown.
//! * nDPI iso9506-1-mms.pcap: CR/CC 0x0001 → 0x0001, CR asks 8192, CC
//!   grants 1024; session CONNECT/ACCEPT with MMS initiate; 10 DT.
//! * lab rfc1006-drop: three SYNs to 102 and nothing else.
//!
//! No X.400 capture is available; the X.400 case is a unit test in
//! src/proto/rfc1006/tests.rs built from protocols.md §5.3.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

mod common;

use common::ips;
use etherparse::{SlicedPacket, TransportSlice};
use exflow::proto::rfc1006::{Application, Outcome, Rfc1006Conn, Rfc1006Summary};

type Endpoint = (IpAddr, u16);

const ISO_TSAP_PORT: u16 = 102;

struct Conn {
    rfc: Rfc1006Conn,
    /// The endpoint that opened the connection (dir 0).
    originator: Endpoint,
    next_seq: [Option<u32>; 2],
    payload_bytes: usize,
    gaps: usize,
}

fn capture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Every TCP connection of the capture (keyed by its sorted endpoints).
fn analyze(rel: &str) -> HashMap<(Endpoint, Endpoint), Conn> {
    let path = capture(rel);
    let mut cap =
        pcap::Capture::from_file(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut conns: HashMap<(Endpoint, Endpoint), Conn> = HashMap::new();
    while let Ok(pkt) = cap.next_packet() {
        let Ok(sliced) = SlicedPacket::from_ethernet(pkt.data) else {
            continue;
        };
        let (Some(net), Some(TransportSlice::Tcp(tcp))) = (&sliced.net, &sliced.transport) else {
            continue;
        };
        let Some((src, dst)) = ips(net) else { continue };
        let from: Endpoint = (src, tcp.source_port());
        let to: Endpoint = (dst, tcp.destination_port());
        let key = if from <= to { (from, to) } else { (to, from) };
        let syn_only = tcp.syn() && !tcp.ack();
        let conn = conns.entry(key).or_insert_with(|| Conn {
            rfc: Rfc1006Conn::new(),
            // A SYN says who opened it; mid-stream, the side not on 102 did
            // (and when that does not decide, the first sender).
            originator: if syn_only || from.1 != ISO_TSAP_PORT || to.1 == ISO_TSAP_PORT {
                from
            } else {
                to
            },
            next_seq: [None; 2],
            payload_bytes: 0,
            gaps: 0,
        });
        let dir = usize::from(from != conn.originator);
        let seq = tcp.sequence_number();
        if tcp.syn() {
            conn.next_seq[dir] = Some(seq.wrapping_add(1));
            continue;
        }
        let mut payload = tcp.payload();
        if payload.is_empty() {
            continue;
        }
        match conn.next_seq[dir] {
            None => {}
            Some(next) if seq == next => {}
            Some(next) => {
                let behind = next.wrapping_sub(seq);
                if behind < 1 << 31 {
                    // Retransmission / overlap: keep only the new bytes.
                    if behind as usize >= payload.len() {
                        continue;
                    }
                    payload = &payload[behind as usize..];
                } else {
                    conn.gaps += 1;
                    conn.rfc.gap(dir);
                }
            }
        }
        conn.next_seq[dir] = Some(seq.wrapping_add(tcp.payload().len() as u32));
        conn.payload_bytes += payload.len();
        conn.rfc.on_data(dir, payload);
    }
    conns
}

/// The capture's only TCP connection to port 102.
fn only_conn(rel: &str) -> (Conn, Rfc1006Summary) {
    let mut conns = analyze(rel);
    assert_eq!(conns.len(), 1, "{rel}: one TCP connection");
    let (_, c) = conns.drain().next().unwrap();
    let s = c.rfc.summary();
    println!("{rel}: {}", serde_json::to_string(&s).unwrap());
    assert_eq!(c.gaps, 0, "{rel}: no holes in these captures");
    assert_eq!(s.tpdus.malformed, 0, "{rel}");
    assert_eq!(s.framing[0].bytes_skipped + s.framing[1].bytes_skipped, 0);
    (c, s)
}

fn tsaps(s: &Rfc1006Summary) -> (String, String) {
    (
        s.calling_tsap
            .as_ref()
            .expect("calling TSAP")
            .display
            .clone(),
        s.called_tsap.as_ref().expect("called TSAP").display.clone(),
    )
}

#[test]
fn lab_libsnap7_s7comm_accepted() {
    let (c, s) = only_conn("../shared/captures/lab/rfc1006-allow/client-tap.pcap");
    assert_eq!(c.originator.1, 56758);
    assert_eq!(s.outcome, Outcome::Accepted);
    assert_eq!(s.application, Application::S7comm);
    assert_eq!(s.application_by_dir, [Application::S7comm; 2]);
    assert_eq!(s.service, "s7comm");
    assert_eq!(tsaps(&s), ("0x0100".into(), "0x0101".into()));
    assert_eq!(s.called_tsap.as_ref().unwrap().hex, "0101");
    assert_eq!(
        (s.tpdu_size_requested, s.tpdu_size_confirmed),
        (Some(1024), Some(1024))
    );
    let cr = s.cr.as_ref().unwrap();
    let cc = s.cc.as_ref().unwrap();
    assert_eq!((cr.src_ref, cc.dst_ref, cc.src_ref), (1, 1, 1));
    assert_eq!(
        (s.tpdus.cr, s.tpdus.cc, s.tpdus.dt, s.tpdus.total()),
        (1, 1, 14, 16)
    );
}

#[test]
fn ndpi_s7comm_accepted() {
    let (_, s) =
        only_conn("../shared/captures/public/ntop+nDPI/tests__cfgs__default__pcap__s7comm.pcap");
    assert_eq!(s.outcome, Outcome::Accepted);
    assert_eq!(s.application, Application::S7comm);
    assert_eq!(s.service, "s7comm");
    assert_eq!(tsaps(&s), ("0x0100".into(), "0x0102".into()));
    assert_eq!(
        (s.tpdu_size_requested, s.tpdu_size_confirmed),
        (Some(1024), Some(1024))
    );
    assert_eq!(
        (s.tpdus.cr, s.tpdus.cc, s.tpdus.dt, s.tpdus.total()),
        (1, 1, 53, 55)
    );
}

#[test]
fn iti_snap7_mid_stream_s7comm() {
    let (c, s) = only_conn(
        "../shared/captures/public/ITI+ICS-Security-Tools/pcaps__s7__snap7_s300_everything.pcapng",
    );
    assert_eq!(c.originator.1, 51212);
    assert_eq!(s.outcome, Outcome::Unknown, "no CR in the capture");
    assert_eq!(s.application, Application::S7comm);
    assert_eq!(s.service, "s7comm");
    assert!(s.calling_tsap.is_none() && s.cr.is_none() && s.cc.is_none());
    assert_eq!((s.tpdus.dt, s.tpdus.total()), (64, 64));
}

#[test]
fn ndpi_mms_accepted() {
    let (_, s) = only_conn(
        "../shared/captures/public/ntop+nDPI/tests__cfgs__default__pcap__iso9506-1-mms.pcap",
    );
    assert_eq!(s.outcome, Outcome::Accepted);
    assert_eq!(s.application, Application::Mms);
    assert_eq!(s.application_by_dir, [Application::Mms; 2]);
    assert_eq!(s.service, "mms");
    assert_eq!(tsaps(&s), ("0x0001".into(), "0x0001".into()));
    assert_eq!(
        (s.tpdu_size_requested, s.tpdu_size_confirmed),
        (Some(8192), Some(1024))
    );
    assert_eq!(
        (s.tpdus.cr, s.tpdus.cc, s.tpdus.dt, s.tpdus.total()),
        (1, 1, 10, 12)
    );
}

#[test]
fn lab_drop_has_no_rfc1006_data() {
    let conns = analyze("../shared/captures/lab/rfc1006-drop/client-tap.pcap");
    assert_eq!(conns.len(), 1, "the SYNs of one connection attempt");
    let c = conns.values().next().unwrap();
    assert_eq!(c.originator.1, 55522);
    assert_eq!(c.payload_bytes, 0);
    let s = c.rfc.summary();
    assert_eq!(s.outcome, Outcome::Unknown);
    assert_eq!(s.application, Application::Unknown);
    assert_eq!(s.service, "rfc1006");
    assert_eq!(s.tpdus.total() + s.tpdus.malformed, 0);
    assert_eq!(s.framing[0].packets + s.framing[1].packets, 0);
    assert_eq!(s, Rfc1006Conn::new().summary());
}
