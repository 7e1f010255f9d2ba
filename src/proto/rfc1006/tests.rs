use super::*;
use crate::proto::test_hex::hex;
use proptest::prelude::*;

/// protocols.md §5.2, the illustrative CR.
const CR: &str = "03 00 00 16 11 e0 00 00 00 01 00 c0 01 0a c1 02 01 00 c2 02 01 02";
/// The CC answering it (DST-REF = CR's SRC-REF 1, SRC-REF 2).
const CC: &str = "03 00 00 16 11 d0 00 01 00 02 00 c0 01 0a c1 02 01 00 c2 02 01 02";
/// DR answering it: reason 136 "connection request refused".
const DR_136: &str = "03 00 00 0b 06 80 00 01 00 02 88";
/// ER answering it: cause 3 (invalid parameter value), offending TPDU bytes `e0 11`.
const ER_3: &str = "03 00 00 0d 08 70 00 01 03 c1 02 e0 11";
/// S7comm "Setup communication" job in a class-0 DT (libsnap7, lab capture frame 9).
const DT_S7_SETUP: &str =
    "03 00 00 19 02 f0 80 32 01 00 00 00 00 00 08 00 00 f0 00 00 01 00 01 01 e0";
/// Its Ack_Data (frame 10).
const DT_S7_ACK: &str =
    "03 00 00 1b 02 f0 80 32 03 00 00 00 00 00 08 00 00 00 00 f0 00 00 01 00 01 01 e0";

/// MMS initiate-request: session CONNECT user data of a real capture
/// (nDPI iso9506-1-mms.pcap frame 7, after `02 f0 80`).
const MMS_CONNECT_UD: &str = "0d 9e 05 06 13 01 00 16 01 02 14 02 00 02 33 02 00 01 34 02 00 01
    c1 88 31 81 85 a0 03 80 01 01 a2 7e 81 04 00 00 00 01 82 04 00 00 00 01 a4 23 30 0f 02 01 01
    06 04 52 01 00 01 30 04 06 02 51 01 30 10 02 01 03 06 05 28 ca 22 02 01 30 04 06 02 51 01 88
    02 06 00 61 47 30 45 02 01 01 a0 40 60 3e 80 02 07 80 a1 07 06 05 28 ca 22 02 03 be 2f 28 2d
    02 01 03 a0 28 a8 26 80 03 00 fa 00 81 01 0a 82 01 0a 83 01 05 a4 16 80 01 01 81 03 05 e1 00
    82 0c 03 a0 00 00 00 00 00 00 00 00 e1 10";

fn dt(user_data: &[u8], eot: bool) -> Vec<u8> {
    let len = 7 + user_data.len();
    let mut v = vec![
        3,
        0,
        (len >> 8) as u8,
        len as u8,
        2,
        0xf0,
        if eot { 0x80 } else { 0 },
    ];
    v.extend_from_slice(user_data);
    v
}

/// BER TLV with definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    match content.len() {
        n @ 0..=0x7f => v.push(n as u8),
        n @ 0x80..=0xff => v.extend_from_slice(&[0x81, n as u8]),
        n => v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    v.extend_from_slice(content);
    v
}

/// ISO 8327 PI/LI/value (or SI/LI/params): LI 0xFF + u16 from 255 bytes up.
fn spi(pi: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![pi];
    if value.len() < 255 {
        v.push(value.len() as u8);
    } else {
        v.push(0xff);
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    }
    v.extend_from_slice(value);
    v
}

/// Session CONNECT with the usual items and `user_data` as PI 0xC1.
fn session_connect(user_data: &[u8]) -> Vec<u8> {
    let mut p = hex("05 06 13 01 00 16 01 02  14 02 00 02  33 02 00 01  34 02 00 01");
    p.extend(spi(0xc1, user_data));
    spi(SPDU_CONNECT, &p)
}

/// There is no X.400 capture: this X.400 P1 (1984) connect is built from the
/// rules of protocols.md §5.3 — a session CONNECT whose user data is a
/// presentation CP-type in X.410-1984 mode (mode-selector `a0 03 80 01 00`)
/// carrying, as x410-mode-parameters [1], an RTSE RTORQ with checkpointSize
/// 0, windowSize 3, monologue, connectionDataRQ open [0] holding an MTA bind
/// (initiator name "MTA-A", simple password credentials), and
/// applicationProtocol [4] = 1 (mts-transfer-protocol-1984).
fn x400_p1_1984_connect() -> Vec<u8> {
    let mut bind = tlv(0x80, b"MTA-A");
    bind.extend(tlv(0xa1, &tlv(0x80, b"secret")));
    let open = tlv(0xa0, &tlv(0xa1, &bind));
    let mut rtorq = hex("80 01 00  81 01 03  82 01 00");
    rtorq.extend(tlv(0xa3, &open));
    rtorq.extend(hex("84 01 01"));
    let mut cp = hex("a0 03 80 01 00");
    cp.extend(tlv(0xa1, &rtorq));
    session_connect(&tlv(0x31, &cp))
}

// ---------------------------------------------------------------------------
// TPKT / COTP

#[test]
fn illustrative_cr() {
    let b = hex(CR);
    assert!(looks_like_tpkt(&b));
    let (len, tpdu) = parse_tpkt(&b).unwrap();
    assert_eq!(len, 22);
    assert_eq!(tpdu.len(), 18);
    let Cotp::Cr(c) = parse_cotp(tpdu).unwrap() else {
        panic!("not a CR")
    };
    assert_eq!(
        (c.cdt, c.dst_ref, c.src_ref, c.class, c.options),
        (0, 0, 1, 0, 0)
    );
    assert_eq!(c.params.tpdu_size, Some(1024));
    assert_eq!(c.params.calling_tsap.unwrap().bytes(), &[1, 0]);
    assert_eq!(c.params.called_tsap.unwrap().bytes(), &[1, 2]);
    assert_eq!(c.params.calling_tsap.unwrap().display(), "0x0100");
    assert_eq!(c.params.called_tsap.unwrap().to_string(), "0x0102");
    assert_eq!(c.params.count, 3);
    assert!(c.user_data.is_empty());
}

#[test]
fn cc_dr_er() {
    let b = hex(CC);
    let Cotp::Cc(c) = parse_cotp(parse_tpkt(&b).unwrap().1).unwrap() else {
        panic!("not a CC")
    };
    assert_eq!(
        (c.dst_ref, c.src_ref, c.params.tpdu_size),
        (1, 2, Some(1024))
    );

    let b = hex(DR_136);
    assert!(looks_like_tpkt(&b));
    let Cotp::Dr(d) = parse_cotp(parse_tpkt(&b).unwrap().1).unwrap() else {
        panic!("not a DR")
    };
    assert_eq!((d.dst_ref, d.src_ref, d.reason), (1, 2, 136));
    assert_eq!(d.reason_name(), "connection request refused");

    let b = hex(ER_3);
    let Cotp::Er(e) = parse_cotp(parse_tpkt(&b).unwrap().1).unwrap() else {
        panic!("not an ER")
    };
    assert_eq!((e.dst_ref, e.cause), (1, 3));
    assert_eq!(e.cause_name(), "invalid parameter value");
    assert_eq!(e.invalid_tpdu, Some(&[0xe0, 0x11][..]));
}

#[test]
fn dt_s7_setup() {
    let b = hex(DT_S7_SETUP);
    assert!(looks_like_tpkt(&b));
    let (len, tpdu) = parse_tpkt(&b).unwrap();
    assert_eq!(len, 25);
    let Cotp::Dt(d) = parse_cotp(tpdu).unwrap() else {
        panic!("not a DT")
    };
    assert!(d.eot);
    assert_eq!((d.dst_ref, d.tpdu_nr, d.user_data.len()), (None, 0, 18));
    assert_eq!(classify_user_data(d.user_data), Application::S7comm);
    assert_eq!(Application::S7comm.service_name(), "s7comm");
}

#[test]
fn other_tpdus() {
    let cases: [(&str, TpduCode); 5] = [
        ("05 c0 00 01 00 02", TpduCode::Dc),
        ("04 10 00 01 85 aa", TpduCode::Ed),
        ("04 61 00 01 07", TpduCode::Ak),
        ("04 20 00 01 07", TpduCode::Ea),
        ("04 52 00 01 07", TpduCode::Rj),
    ];
    for (h, code) in cases {
        let b = hex(h);
        let t = parse_cotp(&b).unwrap();
        assert_eq!(t.code(), code, "{h}");
        match t {
            Cotp::Dc { dst_ref, src_ref } => assert_eq!((dst_ref, src_ref), (1, 2)),
            Cotp::Ed(d) => {
                assert_eq!((d.dst_ref, d.eot, d.tpdu_nr), (Some(1), true, 5));
                assert_eq!(d.user_data, &[0xaa]);
            }
            Cotp::Ak(a) => assert_eq!((a.cdt, a.dst_ref, a.nr), (1, 1, 7)),
            Cotp::Ea(a) | Cotp::Rj(a) => assert_eq!((a.dst_ref, a.nr), (1, 7)),
            other => panic!("{other:?}"),
        }
    }
    // Class 2 DT, normal format: DST-REF then EOT/NR.
    let b = hex("04 f0 00 09 03 ff");
    let Cotp::Dt(d) = parse_cotp(&b).unwrap() else {
        panic!()
    };
    assert_eq!(
        (d.dst_ref, d.eot, d.tpdu_nr, d.user_data),
        (Some(9), false, 3, &[0xff][..])
    );
}

#[test]
fn cr_truncated_at_every_byte() {
    let b = hex(CR);
    for n in 0..b.len() {
        let want = if n < 4 {
            Rfc1006Error::Truncated { need: 4, have: n }
        } else {
            Rfc1006Error::Truncated { need: 22, have: n }
        };
        assert_eq!(parse_tpkt(&b[..n]), Err(want), "tpkt prefix {n}");
        assert!(!looks_like_tpkt(&b[..n.min(5)]), "probe prefix {n}");
    }
    let tpdu = &b[4..];
    for n in 0..tpdu.len() {
        let want = Rfc1006Error::Truncated {
            need: if n == 0 { 2 } else { 18 },
            have: n,
        };
        assert_eq!(parse_cotp(&tpdu[..n]), Err(want), "cotp prefix {n}");
    }
    assert!(parse_cotp(tpdu).is_ok());
}

#[test]
fn bad_headers() {
    assert_eq!(
        parse_tpkt(&hex("02 00 00 16")),
        Err(Rfc1006Error::BadVersion(2))
    );
    assert_eq!(
        parse_tpkt(&hex("03 01 00 16")),
        Err(Rfc1006Error::BadReserved(1))
    );
    assert_eq!(
        parse_tpkt(&hex("03 00 00 06 01 f0")),
        Err(Rfc1006Error::BadLength(6))
    );
    assert!(!looks_like_tpkt(&hex("03 00 00 06 02 f0 80")));
    // LI larger than the packet.
    assert!(!looks_like_tpkt(&hex("03 00 00 07 05 f0 80")));
    // Unknown code, and CR with LI below its fixed part.
    assert!(!looks_like_tpkt(&hex("03 00 00 07 02 30 80")));
    assert!(!looks_like_tpkt(&hex("03 00 00 07 02 e0 80")));
    assert_eq!(
        parse_cotp(&hex("02 30 80")),
        Err(Rfc1006Error::UnknownTpdu(0x30))
    );
    assert_eq!(
        parse_cotp(&hex("02 e0 80")),
        Err(Rfc1006Error::BadLi { code: 0xe0, li: 2 })
    );
    assert_eq!(
        parse_cotp(&[255, 0xf0, 0x80]),
        Err(Rfc1006Error::BadLi {
            code: 0xf0,
            li: 255
        })
    );
    // Variable part: a parameter whose length runs past LI.
    assert_eq!(
        parse_cotp(&hex("09 e0 00 00 00 01 00 c1 05 01 00")),
        Err(Rfc1006Error::BadParameter {
            code: 0xc1,
            offset: 7
        })
    );
    // A lone parameter code with no length byte.
    assert_eq!(
        parse_cotp(&hex("07 e0 00 00 00 01 00 c1")),
        Err(Rfc1006Error::BadParameter {
            code: 0xc1,
            offset: 7
        })
    );
    // Unknown parameters are skipped; TPDU size outside 7..=13 is ignored.
    let b = hex("0d e0 00 00 00 01 00 c0 01 20 f2 02 00 01");
    let Cotp::Cr(c) = parse_cotp(&b).unwrap() else {
        panic!()
    };
    assert_eq!((c.params.tpdu_size, c.params.count), (None, 2));
}

#[test]
fn tsap_display_forms() {
    assert_eq!(Tsap(b"MTA-A").display(), "MTA-A");
    assert_eq!(Tsap(&[0x4d, 0x00]).display(), "0x4d00");
    assert_eq!(Tsap(&[]).display(), "0x");
    assert_eq!(TsapInfo::from_tsap(Tsap(b"AB")).hex, "4142");
}

// ---------------------------------------------------------------------------
// Classification

#[test]
fn classify_session_users() {
    assert_eq!(classify_user_data(&hex(MMS_CONNECT_UD)), Application::Mms);
    let x400 = x400_p1_1984_connect();
    assert!(parse_spdu(&x400).is_some());
    assert_eq!(classify_user_data(&x400), Application::X400Mta);
    assert_eq!(Application::X400Mta.service_name(), "x400-mta");

    // X.400 P1 1988 in normal mode: AARQ with id-ac-mts-transfer.
    let mut aarq = hex("a0 03 80 01 01");
    aarq.extend(tlv(
        0xa2,
        &tlv(0x61, &tlv(0x60, &tlv(0xa1, &hex("06 04 56 00 01 06")))),
    ));
    assert_eq!(
        classify_user_data(&session_connect(&tlv(0x31, &aarq))),
        Application::X400Mta
    );

    // A CONNECT without known OIDs (ACSE only) is some other OSI user.
    let mut acse = hex("a0 03 80 01 01");
    acse.extend(tlv(0xa2, &hex("06 04 52 01 00 01")));
    let other = session_connect(&tlv(0x31, &acse));
    assert_eq!(classify_user_data(&other), Application::OtherOsi);
    assert_eq!(Application::OtherOsi.service_name(), "rfc1006");

    // MMS OIDs in a data-phase SPDU do not make MMS (CONNECT/ACCEPT only).
    let mut data = hex("01 00 01 00");
    data.extend(hex("06 05 28 ca 22 02 03"));
    assert_eq!(classify_user_data(&data), Application::OtherOsi);

    // Long session LI form (0xFF + u16).
    let big = session_connect(&[0u8; 300]);
    assert_eq!(&big[..2], &[0x0d, 0xff]);
    assert_eq!(classify_user_data(&big), Application::OtherOsi);
}

#[test]
fn classify_negatives() {
    assert_eq!(classify_user_data(&[]), Application::Unknown);
    assert_eq!(classify_user_data(&[0x32]), Application::Unknown);
    // ROSCTR 8 is not S7comm; 0x32 is not taken as a session SPDU.
    assert_eq!(
        classify_user_data(&hex("32 08 00 00")),
        Application::Unknown
    );
    // CONNECT whose LI overruns the data, or whose parameters overrun the LI.
    assert_eq!(
        classify_user_data(&hex("0d 05 05 01")),
        Application::Unknown
    );
    assert_eq!(
        classify_user_data(&hex("0d 03 05 07 00")),
        Application::Unknown
    );
    assert_eq!(classify_user_data(&hex("0d ff 00")), Application::Unknown);
    assert_eq!(
        classify_user_data(b"GET / HTTP/1.1\r\n"),
        Application::Unknown
    );
}

// ---------------------------------------------------------------------------
// Connection state

fn stream(events: &[(usize, &str)]) -> Vec<(usize, Vec<u8>)> {
    events.iter().map(|&(d, h)| (d, hex(h))).collect()
}

fn feed(events: &[(usize, Vec<u8>)]) -> Rfc1006Conn {
    let mut c = Rfc1006Conn::new();
    for (d, b) in events {
        c.on_data(*d, b);
    }
    c
}

#[test]
fn accepted_s7_connection() {
    let c = feed(&stream(&[
        (0, CR),
        (1, CC),
        (0, DT_S7_SETUP),
        (1, DT_S7_ACK),
    ]));
    assert_eq!(c.outcome(), &Outcome::Accepted);
    assert_eq!(c.classification(), Application::S7comm);
    assert_eq!(c.service_name(), "s7comm");
    let s = c.summary();
    assert_eq!(s.application_by_dir, [Application::S7comm; 2]);
    assert_eq!(s.calling_tsap.as_ref().unwrap().display, "0x0100");
    assert_eq!(s.called_tsap.as_ref().unwrap().hex, "0102");
    assert_eq!(
        (s.tpdu_size_requested, s.tpdu_size_confirmed),
        (Some(1024), Some(1024))
    );
    assert_eq!(
        (s.tpdus.cr, s.tpdus.cc, s.tpdus.dt, s.tpdus.total()),
        (1, 1, 2, 4)
    );
    assert_eq!(s.tpdus.get(TpduCode::Dt), 2);
    assert_eq!(s.service, "s7comm");
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains(r#""outcome":{"state":"accepted"}"#), "{json}");
    assert!(json.contains(r#""application":"s7comm""#), "{json}");
}

#[test]
fn refused_error_pending_unknown() {
    let c = feed(&stream(&[(0, CR), (1, DR_136)]));
    assert_eq!(
        c.outcome(),
        &Outcome::Refused {
            reason: 136,
            name: "connection request refused"
        }
    );
    let c = feed(&stream(&[(0, CR), (1, ER_3)]));
    assert_eq!(
        c.outcome(),
        &Outcome::Error {
            cause: 3,
            name: "invalid parameter value"
        }
    );
    let c = feed(&stream(&[(0, CR)]));
    assert_eq!(c.outcome(), &Outcome::Pending);
    assert_eq!(c.summary().calling_tsap.unwrap().display, "0x0100");
    // Mid-stream: no CR, but the data still classifies.
    let c = feed(&stream(&[(0, DT_S7_SETUP), (1, DT_S7_ACK)]));
    assert_eq!(c.outcome(), &Outcome::Unknown);
    assert_eq!(c.classification(), Application::S7comm);
    // A DR after the CC is a disconnect, not a refusal.
    let c = feed(&stream(&[(0, CR), (1, CC), (1, DR_136)]));
    assert_eq!(c.outcome(), &Outcome::Accepted);
    assert_eq!(c.summary().disconnect_reason, Some(136));
    // Nothing at all.
    let s = Rfc1006Conn::new().summary();
    assert_eq!(
        (s.outcome, s.application, s.service),
        (Outcome::Unknown, Application::Unknown, "rfc1006")
    );
}

#[test]
fn x400_connection_from_spec() {
    let mut ev = stream(&[(0, CR), (1, CC)]);
    ev.push((0, dt(&x400_p1_1984_connect(), true)));
    let c = feed(&ev);
    assert_eq!(c.outcome(), &Outcome::Accepted);
    assert_eq!(c.classification(), Application::X400Mta);
    assert_eq!(c.summary().service, "x400-mta");
}

#[test]
fn tsdu_split_over_dts_and_empty_dt() {
    // S7 style: an empty non-EOT DT, then the data; MMS: CONNECT split in two.
    let ud = hex(MMS_CONNECT_UD);
    let mut ev = stream(&[(0, CR), (1, CC)]);
    ev.push((0, dt(&[], false)));
    ev.push((0, dt(&ud[..50], false)));
    ev.push((0, dt(&ud[50..], true)));
    let c = feed(&ev);
    assert_eq!(c.classification(), Application::Mms);
    assert_eq!(c.summary().tpdus.dt, 3);
}

#[test]
fn gap_resyncs_at_next_header() {
    let mut c = Rfc1006Conn::new();
    let cr = hex(CR);
    c.on_data(0, &cr[..10]);
    c.gap(0);
    assert_eq!(c.buffered(0), 0);
    // Rest of a lost packet, junk, then a real packet.
    let mut b = cr[10..].to_vec();
    b.extend(hex("03 00 ff 00 17 99"));
    b.extend(hex(DT_S7_SETUP));
    c.on_data(0, &b);
    let s = c.summary();
    assert_eq!(s.tpdus.dt, 1);
    assert_eq!(s.tpdus.cr, 0);
    assert_eq!(s.application, Application::S7comm);
    assert_eq!(s.framing[0].packets, 1);
    // The CR's header was accepted before its bytes ran out: the gap is one loss of sync.
    assert_eq!(s.framing[0].resyncs, 1);
    assert_eq!(s.framing[0].bytes_skipped, 10 + 12 + 6);

    // Sync held, then a bad header: one resync.
    let mut c = Rfc1006Conn::new();
    let mut b = hex(CR);
    b.extend(hex("04 00 00 10 00"));
    b.extend(hex(CC));
    c.on_data(0, &b);
    assert_eq!(c.summary().framing[0].resyncs, 1);
    assert_eq!(c.counts().cc, 1);
}

#[test]
fn gap_inside_a_tsdu_skips_to_its_end() {
    let ud = hex(MMS_CONNECT_UD);
    let mut c = Rfc1006Conn::new();
    c.on_data(0, &dt(&ud[..50], false));
    c.gap(0);
    // The tail would not parse as a session SPDU anyway, but it must not be
    // glued to anything: the next whole TSDU is what gets classified.
    c.on_data(0, &dt(&ud[60..], true));
    c.on_data(0, &hex(DT_S7_SETUP));
    assert_eq!(c.classification(), Application::S7comm);
}

#[test]
fn buffer_stays_bounded() {
    let mut c = Rfc1006Conn::new();
    // A header announcing 65535 bytes, then fed slowly.
    c.on_data(0, &hex("03 00 ff ff 02 f0 80"));
    for _ in 0..100 {
        c.on_data(0, &[0u8; 1000]);
        assert!(c.buffered(0) <= MAX_FRAMER_BUFFER);
    }
    assert_eq!(c.counts().dt, 1);
    // One huge junk chunk.
    c.on_data(1, &vec![0x55u8; 1 << 20]);
    assert!(c.buffered(1) < TPKT_PROBE_LEN);
    assert_eq!(c.summary().framing[1].bytes_skipped, (1 << 20) - 5);
}

/// CR, CC, then S7 setup both ways: the reference stream for segmentation.
fn reference_stream() -> Vec<(usize, Vec<u8>)> {
    stream(&[(0, CR), (1, CC), (0, DT_S7_SETUP), (1, DT_S7_ACK)])
}

/// Feed `events` cutting the whole byte sequence at `cuts` (and at event
/// boundaries, where the direction may change).
fn feed_split(events: &[(usize, Vec<u8>)], cuts: &[usize]) -> Rfc1006Conn {
    let mut c = Rfc1006Conn::new();
    let mut base = 0;
    for (d, b) in events {
        let mut inner: Vec<usize> = cuts
            .iter()
            .filter(|&&x| x > base && x < base + b.len())
            .map(|&x| x - base)
            .collect();
        inner.sort_unstable();
        inner.dedup();
        let mut prev = 0;
        for x in inner.into_iter().chain([b.len()]) {
            c.on_data(*d, &b[prev..x]);
            prev = x;
        }
        base += b.len();
    }
    c
}

#[test]
fn byte_by_byte_equals_whole() {
    let ev = reference_stream();
    let total: usize = ev.iter().map(|e| e.1.len()).sum();
    let cuts: Vec<usize> = (0..total).collect();
    assert_eq!(feed_split(&ev, &cuts).summary(), feed(&ev).summary());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn segmentation_independent(cuts in proptest::collection::vec(0usize..100, 0..30)) {
        let ev = reference_stream();
        let whole = feed(&ev).summary();
        prop_assert_eq!(whole.outcome.clone(), Outcome::Accepted);
        prop_assert_eq!(feed_split(&ev, &cuts).summary(), whole);
    }

    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = looks_like_tpkt(&b);
        let _ = parse_tpkt(&b);
        let _ = parse_cotp(&b);
        let _ = parse_spdu(&b);
        let _ = classify_user_data(&b);
        let mut c = Rfc1006Conn::new();
        c.on_data(0, &b);
        c.gap(1);
        c.on_data(1, &b);
        let _ = c.summary();
    }

    #[test]
    fn mutated_packets_never_panic(
        i in 0usize..25, v in any::<u8>(), tail in proptest::collection::vec(any::<u8>(), 0..40),
        gap_at in 0usize..4,
    ) {
        let mut ev = reference_stream();
        let pkt = &mut ev[i % 4].1;
        let at = i % pkt.len();
        pkt[at] = v;
        pkt.extend(&tail);
        let mut c = Rfc1006Conn::new();
        for (n, (d, b)) in ev.iter().enumerate() {
            if n == gap_at {
                c.gap(*d);
            }
            c.on_data(*d, b);
            prop_assert!(c.buffered(*d) <= MAX_FRAMER_BUFFER);
        }
        let _ = c.summary();
    }

    #[test]
    fn tpdu_prefixes_are_truncated(n in 0usize..18) {
        let b = hex(CR);
        let r = parse_cotp(&b[4..4 + n]);
        prop_assert!(matches!(r, Err(Rfc1006Error::Truncated { .. })), "{:?}", r);
    }
}

/// #23: a TPKT length that lies (65,535, then a trickle) holds at most
/// `MAX_TPKT_HELD` bytes; the packet's head is read, the rest passed over
/// and counted, and the packet after it is framed as usual.
#[test]
fn lying_tpkt_length_holds_only_the_head() {
    let mut c = Rfc1006Conn::new();
    c.on_data(0, &hex(CR));
    c.on_data(1, &hex(CC));
    c.on_data(0, &hex("03 00 ff ff 02 f0 80"));
    for _ in 0..65 {
        c.on_data(0, &[0x11; 1000]);
        assert!(c.buffered(0) <= MAX_TPKT_HELD);
        assert!(c.heap_bytes() <= 2 * MAX_TPKT_HELD + 2 * CLASSIFY_MAX);
    }
    // The rest of the lying packet, then a real one.
    let rest = 65535 - 7 - 65 * 1000;
    c.on_data(0, &vec![0x11; rest]);
    c.on_data(0, &hex(DT_S7_SETUP));
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Accepted);
    assert_eq!(s.tpdus.dt, 2);
    assert_eq!(s.tpdus.malformed, 0);
    assert_eq!(s.framing[0].tpkts_cut, 1);
    assert_eq!(s.framing[0].bytes_passed, (65535 - MAX_TPKT_HELD) as u64);
    assert_eq!(s.framing[0].resyncs, 0);
    assert_eq!(c.buffered(0), 0);
}

/// A real TSDU in one DT longer than the head held classifies as it would
/// whole: only its first `CLASSIFY_MAX` bytes are read either way.
#[test]
fn long_dt_classifies_from_its_head() {
    let mut ud = hex(MMS_CONNECT_UD);
    ud.resize(20_000, 0);
    let pkt = dt(&ud, true);
    assert!(pkt.len() > MAX_TPKT_HELD);
    let mut whole = Rfc1006Conn::new();
    whole.on_data(0, &pkt);
    let mut trickled = Rfc1006Conn::new();
    for b in pkt.chunks(7) {
        trickled.on_data(0, b);
    }
    assert_eq!(whole.classification(), Application::Mms);
    assert_eq!(trickled.classification(), Application::Mms);
    assert_eq!(whole.summary(), trickled.summary());
    assert_eq!(whole.summary().framing[0].tpkts_cut, 1);
}
