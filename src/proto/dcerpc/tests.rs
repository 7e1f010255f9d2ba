use super::*;
use crate::proto::test_hex::hex;
use proptest::prelude::*;

/// protocols.md Example 1 — EPM bind (T-MAPI f397).
pub(crate) const EXAMPLE1: &str = "
    05 00 0b 03 10 00 00 00 48 00 00 00 01 00 00 00
    d0 16 d0 16 00 00 00 00 01 00 00 00 00 00 01 00
    08 83 af e1 1f 5d c9 11 91 a4 08 00 2b 14 a0 fa
    03 00 00 00 04 5d 88 8a eb 1c c9 11 9f e8 08 00
    2b 10 48 60 02 00 00 00";

/// protocols.md Example 2 — first 0xa8 bytes of a three-context bind (T-NL f1).
const EXAMPLE2_HEAD: &str = "
    05 00 0b 07 10 00 00 00 e4 00 3c 00 02 00 00 00
    d0 16 d0 16 00 00 00 00 03 00 00 00 00 00 01 00
    78 56 34 12 34 12 cd ab ef 00 01 23 45 67 cf fb
    01 00 00 00 04 5d 88 8a eb 1c c9 11 9f e8 08 00
    2b 10 48 60 02 00 00 00 01 00 01 00 78 56 34 12
    34 12 cd ab ef 00 01 23 45 67 cf fb 01 00 00 00
    33 05 71 71 ba be 37 49 83 19 b5 db ef 9c cc 36
    01 00 00 00 02 00 01 00 78 56 34 12 34 12 cd ab
    ef 00 01 23 45 67 cf fb 01 00 00 00 2c 1c b7 6c
    12 98 40 45 03 00 00 00 00 00 00 00 01 00 00 00
    44 06 00 00 00 00 00 00";

/// protocols.md Example 3 — EPM bind_ack (T-MAPI f398).
pub(crate) const EXAMPLE3: &str = "
    05 00 0c 03 10 00 00 00 3c 00 00 00 01 00 00 00
    d0 16 d0 16 e5 c8 00 00 04 00 31 33 35 00 00 00
    01 00 00 00 00 00 00 00 04 5d 88 8a eb 1c c9 11
    9f e8 08 00 2b 10 48 60 02 00 00 00";

/// protocols.md Example 4 — bind_ack choosing NDR64 (T-NL f2).
const EXAMPLE4: &str = "
    05 00 0c 07 10 00 00 00 80 00 0c 00 02 00 00 00
    d0 16 d0 16 63 1e 00 00 06 00 34 39 36 37 36 00
    03 00 00 00 02 00 02 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    33 05 71 71 ba be 37 49 83 19 b5 db ef 9c cc 36
    01 00 00 00 03 00 03 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 44 06 00 00
    00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00";

/// protocols.md Example 5 — ept_map request (T-MAPI f399).
pub(crate) const EXAMPLE5: &str = "
    05 00 00 03 10 00 00 00 9c 00 00 00 01 00 00 00
    84 00 00 00 00 00 03 00 01 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 02 00 00 00
    4b 00 00 00 4b 00 00 00 05 00 13 00 0d 18 5a cc
    f5 64 42 1a 10 8c 59 08 00 2b 2f 84 26 38 00 02
    00 00 00 13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8
    08 00 2b 10 48 60 02 00 02 00 00 00 01 00 0b 02
    00 00 00 01 00 07 02 00 00 87 01 00 09 04 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 04 00 00 00";

/// protocols.md Example 6 — ept_map response (T-MAPI f400).
pub(crate) const EXAMPLE6: &str = "
    05 00 02 03 10 00 00 00 98 00 00 00 01 00 00 00
    80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00
    04 00 00 00 00 00 00 00 01 00 00 00 03 00 00 00
    4b 00 00 00 4b 00 00 00 05 00 13 00 0d 18 5a cc
    f5 64 42 1a 10 8c 59 08 00 2b 2f 84 26 38 00 02
    00 00 00 13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8
    08 00 2b 10 48 60 02 00 02 00 00 00 01 00 0b 02
    00 00 00 01 00 07 02 00 13 85 01 00 09 04 00 c0
    a8 00 02 00 00 00 00 00";

fn uuid(s: &str) -> Uuid {
    s.parse().unwrap()
}

#[test]
fn uuid_text_and_wire() {
    let u = uuid("e1af8308-5d1f-11c9-91a4-08002b14a0fa");
    assert_eq!(u, UUID_EPM);
    assert_eq!(u.to_string(), "e1af8308-5d1f-11c9-91a4-08002b14a0fa");
    let wire = hex("08 83 af e1 1f 5d c9 11 91 a4 08 00 2b 14 a0 fa");
    assert_eq!(u.to_wire_le().to_vec(), wire);
    let arr: [u8; 16] = wire.try_into().unwrap();
    assert_eq!(Uuid::from_wire(&arr, true), u);
    // Big-endian drep: Data1-3 are not swapped.
    assert_eq!(Uuid::from_wire(&u.0, false), u);
    assert_eq!(uuid("{E1AF8308-5D1F-11C9-91A4-08002B14A0FA}"), u);
    for bad in [
        "",
        "e1af8308-5d1f-11c9-91a4-08002b14a0f",
        "e1af8308x5d1f-11c9-91a4-08002b14a0fa",
        "g1af8308-5d1f-11c9-91a4-08002b14a0fa",
        "e1af8308-5d1f-11c9-91a4-08002b14a0fa0",
        "é1af8308-5d1f-11c9-91a4-08002b14a0f",
    ] {
        assert!(bad.parse::<Uuid>().is_err(), "{bad}");
    }
    assert_eq!(
        UUID_NDR64.to_string(),
        "71710533-beba-4937-8319-b5dbef9ccc36"
    );
}

#[test]
fn example1_bind() {
    let b = hex(EXAMPLE1);
    assert!(looks_like_dcerpc(&b));
    let p = parse_pdu(&b).unwrap();
    assert_eq!(p.header.ptype, PacketType::Bind);
    assert_eq!(p.header.call_id, 1);
    assert_eq!(p.header.frag_length, 72);
    assert!(p.header.first_frag() && p.header.last_frag());
    assert!(p.auth.is_none());
    let CoBody::Bind(bind) = &p.body else {
        panic!()
    };
    assert_eq!((bind.max_xmit_frag, bind.max_recv_frag), (5840, 5840));
    assert_eq!(bind.assoc_group_id, 0);
    assert_eq!(bind.contexts.len(), 1);
    let c = &bind.contexts[0];
    assert_eq!(c.context_id, 0);
    assert_eq!(c.abstract_syntax.uuid, UUID_EPM);
    assert_eq!(
        (c.abstract_syntax.major(), c.abstract_syntax.minor()),
        (3, 0)
    );
    assert_eq!(c.transfer_syntaxes.len(), 1);
    assert_eq!(c.transfer_syntaxes[0].kind(), TransferSyntaxKind::Ndr20);
    assert_eq!(c.transfer_syntaxes[0].major(), 2);
}

#[test]
fn example2_three_context_bind() {
    let mut b = hex(EXAMPLE2_HEAD);
    assert_eq!(b.len(), 0xa8);
    // The dump stops after the sec_trailer; the 60-byte auth_value follows.
    b.extend_from_slice(&[0xaa; 60]);
    let p = parse_pdu(&b).unwrap();
    assert_eq!(p.header.pfc_flags, 0x07);
    assert_eq!(p.header.auth_length, 60);
    let CoBody::Bind(bind) = &p.body else {
        panic!()
    };
    let netlogon = uuid("12345678-1234-abcd-ef00-01234567cffb");
    assert_eq!(bind.contexts.len(), 3);
    for (i, c) in bind.contexts.iter().enumerate() {
        assert_eq!(c.context_id as usize, i);
        assert_eq!(c.abstract_syntax.uuid, netlogon);
        assert_eq!(
            (c.abstract_syntax.major(), c.abstract_syntax.minor()),
            (1, 0)
        );
    }
    assert_eq!(
        bind.contexts[0].transfer_syntaxes[0].kind(),
        TransferSyntaxKind::Ndr20
    );
    assert_eq!(
        bind.contexts[1].transfer_syntaxes[0].kind(),
        TransferSyntaxKind::Ndr64
    );
    assert_eq!(
        bind.contexts[2].transfer_syntaxes[0].kind(),
        TransferSyntaxKind::BindTimeFeatures(0x03)
    );
    let a = p.auth.unwrap();
    assert_eq!((a.auth_type, a.auth_level, a.pad_length), (68, 6, 0));
    assert_eq!(a.value.len(), 60);
    assert!(p.stub_encrypted());
    // Only the header is present: parse_header works, parse_pdu reports the length.
    let head = hex(EXAMPLE2_HEAD);
    assert_eq!(parse_header(&head).unwrap().frag_length, 228);
    assert_eq!(
        parse_pdu(&head),
        Err(DceError::LengthMismatch {
            frag_length: 228,
            have: 0xa8
        })
    );
}

#[test]
fn example3_bind_ack() {
    let b = hex(EXAMPLE3);
    let p = parse_pdu(&b).unwrap();
    let CoBody::BindAck(ack) = &p.body else {
        panic!()
    };
    assert_eq!(ack.assoc_group_id, 0xc8e5);
    assert_eq!(ack.sec_addr, b"135\0");
    assert_eq!(ack.sec_addr_str(), Some("135"));
    assert_eq!(ack.results.len(), 1);
    assert!(ack.results[0].accepted());
    assert_eq!(
        ack.results[0].transfer_syntax.kind(),
        TransferSyntaxKind::Ndr20
    );
}

#[test]
fn example4_bind_ack_ndr64() {
    let b = hex(EXAMPLE4);
    assert_eq!(b.len(), 128);
    let p = parse_pdu(&b).unwrap();
    let CoBody::BindAck(ack) = &p.body else {
        panic!()
    };
    assert_eq!(ack.assoc_group_id, 0x1e63);
    assert_eq!(ack.sec_addr_str(), Some("49676"));
    let r = &ack.results;
    assert_eq!(r.len(), 3);
    assert_eq!(
        (r[0].result, r[0].reason),
        (ack_result::PROVIDER_REJECTION, 2)
    );
    assert_eq!(r[0].transfer_syntax.kind(), TransferSyntaxKind::None);
    assert!(r[1].accepted());
    assert_eq!(r[1].transfer_syntax.kind(), TransferSyntaxKind::Ndr64);
    assert_eq!((r[2].result, r[2].reason), (ack_result::NEGOTIATE_ACK, 3));
    let a = p.auth.unwrap();
    assert_eq!((a.auth_type, a.auth_level, a.context_id), (68, 6, 0));
    assert_eq!(a.value, &hex("01 00 00 00 00 00 00 00 00 00 00 00")[..]);
}

#[test]
fn example5_and_6_request_response() {
    let req = hex(EXAMPLE5);
    let p = parse_pdu(&req).unwrap();
    let CoBody::Request(r) = &p.body else {
        panic!()
    };
    assert_eq!((r.alloc_hint, r.context_id, r.opnum), (132, 0, 3));
    assert_eq!(r.object, None);
    assert_eq!(r.stub.len(), 132);
    let resp = hex(EXAMPLE6);
    let p = parse_pdu(&resp).unwrap();
    let CoBody::Response(r) = &p.body else {
        panic!()
    };
    assert_eq!((r.alloc_hint, r.context_id, r.cancel_count), (128, 0, 0));
    assert_eq!(r.stub.len(), 128);
}

#[test]
fn request_with_object_and_auth_pad() {
    // Request with object UUID, 5-byte stub, 11 pad bytes, NTLMSSP trailer, 16-byte verifier.
    let mut b = vec![5, 0, 0, 0x83, 0x10, 0, 0, 0];
    let flen = 40 + 5 + 11 + 8 + 16;
    b.extend_from_slice(&(flen as u16).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(&9u32.to_le_bytes());
    b.extend_from_slice(&5u32.to_le_bytes()); // alloc_hint
    b.extend_from_slice(&[1, 0, 7, 0]); // ctx 1, opnum 7
    b.extend_from_slice(&UUID_EPM.to_wire_le());
    b.extend_from_slice(b"hello");
    b.extend_from_slice(&[0xee; 11]);
    b.extend_from_slice(&[10, 4, 11, 0, 1, 0, 0, 0]);
    b.extend_from_slice(&[0x55; 16]);
    let p = parse_pdu(&b).unwrap();
    let CoBody::Request(r) = &p.body else {
        panic!()
    };
    assert_eq!(r.object, Some(UUID_EPM));
    assert_eq!((r.context_id, r.opnum), (1, 7));
    assert_eq!(r.stub, b"hello");
    assert!(!p.stub_encrypted());
    // Pad length beyond the stub is rejected.
    let mut bad = b.clone();
    bad[40 + 16 + 2] = 17;
    assert_eq!(
        parse_pdu(&bad),
        Err(DceError::Malformed("auth_pad_length exceeds the stub"))
    );
}

#[test]
fn big_endian_header() {
    // drep 00: big-endian integers.
    let mut b = vec![5, 0, 0, 3, 0, 0, 0, 0, 0, 24 + 3, 0, 0, 0, 0, 0, 7];
    b.extend_from_slice(&[0, 0, 0, 3, 0, 1, 0, 2, b'a', b'b', b'c']);
    let p = parse_pdu(&b).unwrap();
    assert!(!p.header.little_endian());
    assert_eq!(p.header.call_id, 7);
    let CoBody::Request(r) = &p.body else {
        panic!()
    };
    assert_eq!(
        (r.alloc_hint, r.context_id, r.opnum, r.stub),
        (3, 1, 2, &b"abc"[..])
    );
}

#[test]
fn fault_nak_and_bodyless() {
    let mut f = vec![5, 0, 3, 3, 0x10, 0, 0, 0, 32, 0, 0, 0, 4, 0, 0, 0];
    f.extend_from_slice(&[0, 0, 0, 0, 2, 0, 0, 1]);
    f.extend_from_slice(&0x1c01_0003u32.to_le_bytes());
    f.extend_from_slice(&[0; 4]);
    let p = parse_pdu(&f).unwrap();
    assert_eq!(
        p.body,
        CoBody::Fault(Fault {
            alloc_hint: 0,
            context_id: 2,
            cancel_count: 0,
            flags: 1,
            status: 0x1c01_0003
        })
    );
    let nak = [
        5, 0, 13, 3, 0x10, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 4, 0, 1, 5,
    ];
    assert_eq!(parse_pdu(&nak).unwrap().body, CoBody::BindNak { reason: 4 });
    let shutdown = [5, 0, 17, 3, 0x10, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0];
    assert_eq!(parse_pdu(&shutdown).unwrap().body, CoBody::Shutdown);
    let mut auth3 = vec![5, 0, 16, 3, 0x10, 0, 0, 0, 32, 0, 4, 0, 1, 0, 0, 0];
    auth3.extend_from_slice(&[0, 0, 0, 0, 10, 2, 0, 0, 1, 0, 0, 0, 9, 9, 9, 9]);
    let p = parse_pdu(&auth3).unwrap();
    assert_eq!(p.body, CoBody::Auth3);
    assert_eq!(p.auth.unwrap().value, &[9, 9, 9, 9]);
    // Empty request stub.
    let empty = [
        5, 0, 0, 3, 0x10, 0, 0, 0, 24, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(parse_pdu(&empty).unwrap().stub(), Some(&[][..]));
    // Truncated fixed parts.
    let short_req = [
        5, 0, 0, 3, 0x10, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert!(matches!(
        parse_pdu(&short_req),
        Err(DceError::Truncated { .. })
    ));
}

#[test]
fn hostile_headers() {
    let base = hex(EXAMPLE1);
    let with = |off: usize, v: &[u8]| {
        let mut b = base.clone();
        b[off..off + v.len()].copy_from_slice(v);
        b
    };
    assert_eq!(
        parse_header(&with(8, &[0, 0])),
        Err(DceError::BadFragLength(0))
    );
    // frag_length 65535 with 72 bytes present: header fine, PDU incomplete.
    let big = with(8, &[0xff, 0xff]);
    assert_eq!(parse_header(&big).unwrap().frag_length, 65535);
    assert!(matches!(
        parse_pdu(&big),
        Err(DceError::LengthMismatch { .. })
    ));
    // auth_length larger than the PDU.
    assert!(matches!(
        parse_header(&with(10, &[0x40, 0])),
        Err(DceError::BadAuthLength { .. })
    ));
    assert!(matches!(
        parse_header(&with(10, &[0xff, 0xff])),
        Err(DceError::BadAuthLength { .. })
    ));
    // auth_length that exactly fits: 72 - 16 - 8 = 48.
    assert!(parse_header(&with(10, &[48, 0])).is_ok());
    assert!(parse_header(&with(10, &[49, 0])).is_err());
    assert!(matches!(
        parse_header(&with(0, &[4])),
        Err(DceError::BadVersion { .. })
    ));
    assert!(parse_header(&with(1, &[1])).is_ok());
    assert!(parse_header(&with(1, &[2])).is_err());
    assert_eq!(parse_header(&with(2, &[21])), Err(DceError::BadPtype(21)));
    assert!(matches!(
        parse_header(&with(4, &[0x20])),
        Err(DceError::BadDrep(_))
    ));
    assert!(parse_header(&with(4, &[0x11])).is_ok()); // LE + EBCDIC is legal
    assert!(matches!(
        parse_header(&with(5, &[4])),
        Err(DceError::BadDrep(_))
    ));
    assert!(!looks_like_dcerpc(&base[..15]));
    assert!(!looks_like_dcerpc(b"GET / HTTP/1.1\r\n\r\n"));
    // Bind claiming 255 contexts in 72 bytes.
    assert!(matches!(
        parse_pdu(&with(24, &[255])),
        Err(DceError::Truncated { .. })
    ));
    // Context claiming 255 transfer syntaxes.
    assert!(parse_pdu(&with(30, &[255])).is_err());
    // bind_ack with sec_addr length beyond the PDU.
    let ack = hex(EXAMPLE3);
    let mut b = ack.clone();
    b[24] = 0xff;
    assert!(matches!(parse_pdu(&b), Err(DceError::Truncated { .. })));
    let mut b = ack.clone();
    b[32] = 200;
    assert!(parse_pdu(&b).is_err());
    // Every prefix of every example fails cleanly; nothing panics.
    for ex in [EXAMPLE1, EXAMPLE3, EXAMPLE4, EXAMPLE5, EXAMPLE6] {
        let b = hex(ex);
        for n in 0..b.len() {
            assert!(parse_pdu(&b[..n]).is_err());
            let mut t = b[..n].to_vec();
            if n >= 10 {
                t[8..10].copy_from_slice(&(n as u16).to_le_bytes());
                let _ = parse_pdu(&t);
            }
        }
    }
}

proptest! {
    #[test]
    fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_header(&data);
        let _ = parse_pdu(&data);
        let _ = parse_cl_header(&data);
        let mut d = data.clone();
        if d.len() >= 16 {
            d[0] = 5; d[1] = 0; d[2] %= 21; d[4] = 0x10; d[5] = 0;
            let n = d.len() as u16;
            d[8..10].copy_from_slice(&n.to_le_bytes());
            let _ = parse_pdu(&d);
        }
        let mut f = PduFramer::default();
        f.push(&data);
        while f.next_pdu().is_some() {}
    }
}

// ---------------------------------------------------------------------------
// Framer and reassembler

/// Build a single request/response PDU (LE) with the given stub and flags.
pub(crate) fn build_pdu(ptype: u8, flags: u8, call_id: u32, opnum: u16, stub: &[u8]) -> Vec<u8> {
    let mut b = vec![5, 0, ptype, flags, 0x10, 0, 0, 0];
    b.extend_from_slice(&((24 + stub.len()) as u16).to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&call_id.to_le_bytes());
    b.extend_from_slice(&(stub.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    if ptype == 0 {
        b.extend_from_slice(&opnum.to_le_bytes());
    } else {
        b.extend_from_slice(&[0, 0]);
    }
    b.extend_from_slice(stub);
    b
}

fn arb_pdu() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(hex(EXAMPLE1)),
        Just(hex(EXAMPLE3)),
        Just(hex(EXAMPLE4)),
        Just(hex(EXAMPLE5)),
        Just(hex(EXAMPLE6)),
        (
            prop_oneof![Just(0u8), Just(2u8)],
            0u8..4,
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(t, f, c, s)| build_pdu(t, f, c, 3, &s)),
    ]
}

fn drain(f: &mut PduFramer, out: &mut Vec<Vec<u8>>) {
    while let Some(p) = f.next_pdu() {
        out.push(p.to_vec());
    }
}

proptest! {
    #[test]
    fn framer_any_split_same_pdus(
        pdus in proptest::collection::vec(arb_pdu(), 1..12),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let stream: Vec<u8> = pdus.concat();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        points.dedup();
        let mut f = PduFramer::default();
        let mut got = Vec::new();
        for w in points.windows(2) {
            f.push(&stream[w[0]..w[1]]);
            drain(&mut f, &mut got);
        }
        prop_assert_eq!(&got, &pdus);
        prop_assert_eq!(f.stats().pdus, pdus.len() as u64);
        prop_assert_eq!(f.stats().resyncs, 0);
        prop_assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn framer_resyncs_after_garbage_any_split(
        pdus in proptest::collection::vec(arb_pdu(), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        garbage_len in 1usize..64,
    ) {
        // Garbage that cannot start a header (no 0x05 bytes).
        let garbage: Vec<u8> = (0..garbage_len).map(|i| (i as u8 % 200) + 0x06).collect();
        let mut stream = garbage.clone();
        stream.extend(pdus.concat());
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        points.dedup();
        let mut f = PduFramer::default();
        let mut got = Vec::new();
        for w in points.windows(2) {
            f.push(&stream[w[0]..w[1]]);
            drain(&mut f, &mut got);
        }
        prop_assert_eq!(&got, &pdus);
        prop_assert_eq!(f.stats().resyncs, 1);
        prop_assert_eq!(f.stats().bytes_skipped, garbage_len as u64);
    }
}

#[test]
fn framer_gap_and_overflow() {
    let a = hex(EXAMPLE5);
    let b = hex(EXAMPLE6);
    let mut f = PduFramer::default();
    let mut got = Vec::new();
    // Half a PDU, then a gap, then the tail of that PDU and a whole one.
    f.push(&a[..50]);
    drain(&mut f, &mut got);
    f.gap();
    f.push(&a[50..]);
    f.push(&b);
    drain(&mut f, &mut got);
    assert_eq!(got, vec![b.clone()]);
    let s = f.stats();
    assert_eq!(s.resyncs, 1);
    assert_eq!(s.bytes_skipped, a.len() as u64);
    // A header claiming 65535 bytes followed by nothing: waits, bounded.
    let mut f = PduFramer::new(0);
    let mut hdr = a[..16].to_vec();
    hdr[8..10].copy_from_slice(&[0xff, 0xff]);
    f.push(&hdr);
    assert!(f.next_pdu().is_none());
    for _ in 0..10 {
        f.push(&[0u8; 30000]);
        while f.next_pdu().is_some() {}
    }
    assert!(f.buffered() <= 65535 + 16);
}

#[test]
fn reassembler_three_fragments() {
    let mut r = CallReassembler::new(1000, 2);
    let f1 = build_pdu(2, pfc::FIRST_FRAG, 9, 0, b"abc");
    let f2 = build_pdu(2, 0, 9, 0, b"def");
    let f3 = build_pdu(2, pfc::LAST_FRAG, 9, 0, b"gh");
    let single = build_pdu(0, 3, 10, 4, b"xyz");
    assert!(r.push(&parse_pdu(&f1).unwrap()).is_none());
    // An unrelated single-fragment call in between is passed through borrowed.
    let s = parse_pdu(&single).unwrap();
    let c = r.push(&s).unwrap();
    assert!(matches!(c.stub, Cow::Borrowed(b"xyz")));
    assert_eq!(c.opnum, Some(4));
    assert!(r.push(&parse_pdu(&f2).unwrap()).is_none());
    let c = r.push(&parse_pdu(&f3).unwrap()).unwrap();
    assert_eq!(&*c.stub, b"abcdefgh");
    assert_eq!(c.fragments, 3);
    assert_eq!(c.ptype, PacketType::Response);
    assert_eq!(r.in_progress(), 0);
    let st = r.stats();
    assert_eq!((st.calls, st.multi_fragment_calls), (2, 1));
}

#[test]
fn reassembler_bounds() {
    let mut r = CallReassembler::new(8, 2);
    // Orphan middle / last fragments.
    assert!(r
        .push(&parse_pdu(&build_pdu(2, 0, 1, 0, b"a")).unwrap())
        .is_none());
    assert!(r
        .push(&parse_pdu(&build_pdu(2, 2, 1, 0, b"a")).unwrap())
        .is_none());
    assert_eq!(r.stats().orphan_fragments, 2);
    // Too many concurrent calls.
    for id in 0..3 {
        r.push(&parse_pdu(&build_pdu(2, 1, 100 + id, 0, b"a")).unwrap());
    }
    assert_eq!(r.in_progress(), 2);
    assert_eq!(r.stats().too_many_calls, 1);
    // Oversize: 1 + 8 > 8.
    assert!(r
        .push(&parse_pdu(&build_pdu(2, 0, 100, 0, b"12345678")).unwrap())
        .is_none());
    assert_eq!(r.stats().oversize, 1);
    assert_eq!(r.in_progress(), 1);
    // Restart of a call in progress.
    r.push(&parse_pdu(&build_pdu(2, 1, 101, 0, b"b")).unwrap());
    assert_eq!(r.stats().restarted, 1);
    let last = build_pdu(2, 2, 101, 0, b"c");
    let c = r.push(&parse_pdu(&last).unwrap()).unwrap();
    assert_eq!(&*c.stub, b"bc");
    // Non request/response PDUs are ignored.
    assert!(r.push(&parse_pdu(&hex(EXAMPLE1)).unwrap()).is_none());
}

// ---------------------------------------------------------------------------
// Connectionless

fn cl_datagram(body: &[u8]) -> Vec<u8> {
    let mut b = vec![4, 0, 0x20, 0, 0x10, 0, 0, 0];
    b.extend_from_slice(&[0; 16]); // object
    b.extend_from_slice(&UUID_EPM.to_wire_le());
    b.extend_from_slice(&[0x11; 16]); // activity
    b.extend_from_slice(&7u32.to_le_bytes()); // server_boot
    b.extend_from_slice(&3u32.to_le_bytes()); // if_vers 3.0
    b.extend_from_slice(&42u32.to_le_bytes()); // seqnum
    b.extend_from_slice(&2u16.to_le_bytes()); // opnum
    b.extend_from_slice(&0xffffu16.to_le_bytes());
    b.extend_from_slice(&0xffffu16.to_le_bytes());
    b.extend_from_slice(&(body.len() as u16).to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes()); // fragnum
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(body);
    b
}

#[test]
fn connectionless_header() {
    let d = cl_datagram(b"body!");
    assert!(looks_like_dcerpc_cl(&d));
    let p = parse_cl_header(&d).unwrap();
    assert_eq!(p.ptype, PacketType::Request);
    assert_eq!(p.interface, UUID_EPM);
    assert_eq!(p.activity.0, [0x11; 16]);
    assert_eq!((p.opnum, p.seqnum, p.if_vers, p.server_boot), (2, 42, 3, 7));
    assert_eq!(p.body, b"body!");
    assert!(parse_cl_header(&d[..d.len() - 1]).is_err());
    let mut bad = d.clone();
    bad[1] = 11;
    assert_eq!(parse_cl_header(&bad), Err(DceError::BadPtype(11)));
    let mut bad = d.clone();
    bad[3] = 0x04;
    assert!(parse_cl_header(&bad).is_err());
    let mut bad = d.clone();
    bad[74..76].copy_from_slice(&[0xff, 0xff]);
    assert!(matches!(
        parse_cl_header(&bad),
        Err(DceError::Truncated { .. })
    ));
    assert!(!looks_like_dcerpc(&d));
    assert!(!looks_like_dcerpc_cl(&hex(EXAMPLE1)));
}

/// Found by `parsers_never_panic`: an auth_pad_length larger than the whole
/// body made the stub end wrap around in release builds.
#[test]
fn auth_pad_length_beyond_the_body_is_rejected() {
    // Request, frag 40, auth_length 8: trailer at 24, pad length 200.
    let mut pdu = vec![
        0x05, 0x00, 0x00, 0x03, 0x10, 0x00, 0x00, 0x00, 40, 0x00, 8, 0x00, 1, 0, 0, 0,
    ];
    pdu.extend([0u8; 8]); // alloc_hint, ctx, opnum
    pdu.extend([0x0a, 0x02, 200, 0x00, 0, 0, 0, 0]); // sec_trailer: pad 200
    pdu.extend([0u8; 8]); // auth value
    assert_eq!(pdu.len(), 40);
    assert!(parse_pdu(&pdu).is_err());
}
