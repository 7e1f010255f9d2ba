use super::*;
use crate::proto::dcerpc::tests::{EXAMPLE5, EXAMPLE6};
use crate::proto::dcerpc::{parse_pdu, UUID_NDR20};
use crate::proto::test_hex::hex;
use proptest::prelude::*;

fn uuid(s: &str) -> Uuid {
    s.parse().unwrap()
}

fn stub_of(pdu: &[u8]) -> Vec<u8> {
    parse_pdu(pdu).unwrap().stub().unwrap().to_vec()
}

/// The 75-byte NSPI tower of Examples 5/6 with the given port and IPv4.
fn nspi_tower(port: [u8; 2], ip: [u8; 4]) -> Vec<u8> {
    let mut t = hex(
        "05 00 13 00 0d 18 5a cc f5 64 42 1a 10 8c 59 08 00 2b 2f 84 26 38 00 02
         00 00 00 13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8 08 00 2b 10 48 60 02 00 02
         00 00 00 01 00 0b 02 00 00 00 01 00 07 02 00",
    );
    t.extend_from_slice(&port);
    t.extend_from_slice(&[1, 0, 9, 4, 0]);
    t.extend_from_slice(&ip);
    assert_eq!(t.len(), 75);
    t
}

/// Build a tower: interface floor, NDR floor, then (protocol id, rhs) floors.
fn tower(iface: &str, major: u16, minor: u16, rest: &[(u8, &[u8])]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&((2 + rest.len()) as u16).to_le_bytes());
    for (u, maj, min) in [(uuid(iface), major, minor), (UUID_NDR20, 2, 0)] {
        t.extend_from_slice(&[19, 0, 0x0d]);
        t.extend_from_slice(&u.to_wire_le());
        t.extend_from_slice(&maj.to_le_bytes());
        t.extend_from_slice(&[2, 0]);
        t.extend_from_slice(&min.to_le_bytes());
    }
    for (p, rhs) in rest {
        t.extend_from_slice(&[1, 0, *p]);
        t.extend_from_slice(&(rhs.len() as u16).to_le_bytes());
        t.extend_from_slice(rhs);
    }
    t
}

#[test]
fn example5_ept_map_request() {
    let stub = stub_of(&hex(EXAMPLE5));
    let m = parse_ept_map_request(&stub, NdrSyntax::Ndr20, true).unwrap();
    assert_eq!(m.object, Some(Uuid::NIL));
    assert_eq!(m.max_towers, 4);
    assert!(m.entry_handle.is_null());
    let t = m.tower.unwrap();
    let i = t.interface.unwrap();
    assert_eq!(i.uuid, uuid("f5cc5a18-4264-101a-8c59-08002b2f8426"));
    assert_eq!((i.major(), i.minor()), (56, 0));
    assert_eq!(t.transfer_syntax.unwrap().uuid, UUID_NDR20);
    assert_eq!(t.transfer_syntax.unwrap().major(), 2);
    assert_eq!(t.protocol, Some(RpcProtocol::Ncacn));
    assert_eq!(
        t.endpoint(),
        Some((Transport::Tcp, 135, Some(Ipv4Addr::UNSPECIFIED)))
    );
    assert_eq!(t.protocols, vec![0x0d, 0x0d, 0x0b, 0x07, 0x09]);
    assert_eq!(t.len, 75);
}

#[test]
fn example6_ept_map_response() {
    let stub = stub_of(&hex(EXAMPLE6));
    let m = parse_ept_map_response(&stub, NdrSyntax::Ndr20, true).unwrap();
    assert!(m.entry_handle.is_null());
    assert_eq!(m.num_towers, 1);
    assert_eq!(m.status, 0);
    assert_eq!(m.towers.len(), 1);
    let t = &m.towers[0];
    assert_eq!(
        t.endpoint(),
        Some((Transport::Tcp, 4997, Some(Ipv4Addr::new(192, 168, 0, 2))))
    );
    assert_eq!(t.interface.unwrap().major(), 56);
    // The generic entry point and the scan agree.
    let a = parse_epm_response(OPNUM_EPT_MAP, &stub, NdrSyntax::Ndr20, true).unwrap();
    assert_eq!(a.decoding, Decoding::Structured);
    assert_eq!(a.towers[0].0, *t);
    assert_eq!(scan_towers(&stub), vec![t.clone()]);
    assert_eq!(EpmStatus::from_u32(a.status), EpmStatus::Ok);
}

#[test]
fn tower_kinds() {
    let emsmdb = "a4f1db00-ca47-1067-b31f-00dd010662da";
    let udp = tower(
        emsmdb,
        0,
        81,
        &[
            (0x0a, &[0, 0]),
            (0x08, &[0x04, 0x2f]),
            (0x09, &[10, 0, 0, 1]),
        ],
    );
    let t = parse_tower(&udp).unwrap();
    assert_eq!(t.interface.unwrap().minor(), 81);
    assert_eq!(t.protocol, Some(RpcProtocol::Ncadg));
    assert_eq!(
        t.endpoint(),
        Some((Transport::Udp, 1071, Some(Ipv4Addr::new(10, 0, 0, 1))))
    );
    // ncacn_http with the observed 0x20 IPv4 floor.
    let http = tower(
        emsmdb,
        0,
        81,
        &[
            (0x0b, &[0, 0]),
            (0x1f, &[0x13, 0x88]),
            (0x20, &[192, 168, 0, 2]),
        ],
    );
    assert_eq!(
        parse_tower(&http).unwrap().endpoint(),
        Some((Transport::Http, 5000, Some(Ipv4Addr::new(192, 168, 0, 2))))
    );
    let np = tower(
        emsmdb,
        0,
        81,
        &[
            (0x0b, &[0, 0]),
            (0x0f, b"\\PIPE\\lsass\0"),
            (0x11, b"\\\\DC1\0"),
        ],
    );
    let t = parse_tower(&np).unwrap();
    assert_eq!(t.named_pipe.as_deref(), Some("\\PIPE\\lsass"));
    assert_eq!(t.netbios_host.as_deref(), Some("\\\\DC1"));
    assert_eq!(t.endpoint(), None);
    let lrpc = tower(emsmdb, 0, 81, &[(0x0c, &[]), (0x10, b"LRPC-1234\0")]);
    let t = parse_tower(&lrpc).unwrap();
    assert_eq!(t.protocol, Some(RpcProtocol::Ncalrpc));
    assert_eq!(t.lrpc_endpoint.as_deref(), Some("LRPC-1234"));
    assert_eq!(t.named_pipe, None);
}

#[test]
fn hostile_towers() {
    // floor_count far beyond the data: rejected before allocating.
    assert_eq!(
        parse_tower(&[0xff, 0xff, 1, 0, 0x0d]),
        Err(EpmError::TooManyFloors {
            count: 0xffff,
            have: 5
        })
    );
    assert!(parse_tower(&[]).is_err());
    assert!(parse_tower(&[0]).is_err());
    assert_eq!(parse_tower(&[0, 0]).unwrap().protocols.len(), 0);
    // lhs_len beyond the data.
    assert!(matches!(
        parse_tower(&[1, 0, 0xff, 0xff, 0x0d, 0, 0]),
        Err(EpmError::TowerTruncated { .. })
    ));
    assert!(matches!(
        parse_tower(&[1, 0, 0, 0, 0, 0, 0]),
        Err(EpmError::EmptyLhs { floor: 1 })
    ));
    // Short UUID / port floors are tolerated but not typed.
    let t = parse_tower(&[2, 0, 1, 0, 0x0d, 0, 0, 1, 0, 0x07, 1, 0, 0x99]).unwrap();
    assert_eq!((t.interface, t.transport), (None, None));
    let good = nspi_tower([0x13, 0x85], [1, 2, 3, 4]);
    for n in 0..good.len() {
        assert!(parse_tower(&good[..n]).is_err(), "prefix {n}");
    }
}

#[test]
fn hostile_ndr_counts() {
    // ept_map response whose actual_count claims 2^32-1 towers.
    let mut s = vec![0u8; 20];
    s.extend_from_slice(&u32::MAX.to_le_bytes());
    s.extend_from_slice(&4u32.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes());
    s.extend_from_slice(&u32::MAX.to_le_bytes());
    s.extend_from_slice(&[0; 8]);
    assert!(matches!(
        parse_ept_map_response(&s, NdrSyntax::Ndr20, true),
        Err(EpmError::Ndr(NdrError::CountTooLarge { .. }))
    ));
    // NDR64 with a u64 count of 2^63 (num_ents 0 must not hide it).
    let mut s = vec![0u8; 24];
    s.extend_from_slice(&4u64.to_le_bytes());
    s.extend_from_slice(&0u64.to_le_bytes());
    s.extend_from_slice(&(1u64 << 63).to_le_bytes());
    assert!(matches!(
        parse_ept_lookup_response(&s, NdrSyntax::Ndr64, true),
        Err(EpmError::Ndr(NdrError::CountTooLarge { .. }))
    ));
    // Tower length larger than the stub.
    let mut s = hex("00 00 00 00 02 00 00 00");
    s.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    s.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    assert!(parse_ept_map_request(&s, NdrSyntax::Ndr20, true).is_err());
    // Empty stubs.
    for syn in [NdrSyntax::Ndr20, NdrSyntax::Ndr64] {
        assert!(parse_ept_map_request(&[], syn, true).is_err());
        assert!(parse_ept_map_response(&[], syn, true).is_err());
        assert!(parse_ept_lookup_request(&[], syn, true).is_err());
        assert!(parse_ept_lookup_response(&[], syn, true).is_err());
        assert!(parse_epm_response(2, &[], syn, true).is_err());
        assert!(parse_epm_response(3, &[], syn, true).is_err());
    }
    assert!(scan_towers(&[]).is_empty());
    // Every prefix of Example 6's stub fails cleanly.
    let stub = stub_of(&hex(EXAMPLE6));
    for n in 0..stub.len() {
        assert!(parse_ept_map_response(&stub[..n], NdrSyntax::Ndr20, true).is_err());
        let _ = parse_epm_response(3, &stub[..n], NdrSyntax::Ndr64, true);
    }
}

/// NDR 2.0 ept_lookup response: 2 entries (one NULL tower), handle non-zero.
fn lookup_response_ndr20(t1: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&[0; 4]);
    s.extend_from_slice(&uuid("11111111-2222-3333-4444-555555555555").to_wire_le());
    s.extend_from_slice(&2u32.to_le_bytes()); // num_ents
    s.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]); // max, offset, actual
    let ann = b"MS Exchange Directory NSP Interface\0";
    for (i, a) in [(1u32, &ann[..]), (0, b"\0")] {
        s.extend_from_slice(&[0; 16]);
        s.extend_from_slice(&i.to_le_bytes());
        s.extend_from_slice(&0u32.to_le_bytes());
        s.extend_from_slice(&(a.len() as u32).to_le_bytes());
        s.extend_from_slice(a);
        while s.len() % 4 != 0 {
            s.push(0);
        }
    }
    s.extend_from_slice(&(t1.len() as u32).to_le_bytes());
    s.extend_from_slice(&(t1.len() as u32).to_le_bytes());
    s.extend_from_slice(t1);
    while s.len() % 4 != 0 {
        s.push(0);
    }
    s.extend_from_slice(&0u32.to_le_bytes());
    s
}

#[test]
fn ept_lookup_ndr20() {
    let t1 = nspi_tower([0x13, 0x88], [192, 168, 0, 2]);
    let s = lookup_response_ndr20(&t1);
    let r = parse_ept_lookup_response(&s, NdrSyntax::Ndr20, true).unwrap();
    assert!(!r.entry_handle.is_null());
    assert_eq!(r.num_ents, 2);
    assert_eq!(r.entries.len(), 2);
    assert_eq!(
        r.entries[0].annotation,
        "MS Exchange Directory NSP Interface"
    );
    assert_eq!(
        r.entries[0].tower.as_ref().unwrap().endpoint().unwrap().1,
        5000
    );
    assert_eq!(r.entries[1].tower, None);
    assert_eq!(r.entries[1].annotation, "");
    let a = parse_epm_response(OPNUM_EPT_LOOKUP, &s, NdrSyntax::Ndr20, true).unwrap();
    assert_eq!(a.towers.len(), 1);
    assert_eq!(
        a.towers[0].1.as_deref(),
        Some("MS Exchange Directory NSP Interface")
    );

    // End of enumeration: null handle, no entries, not-registered.
    let mut end = vec![0u8; 24];
    end.extend_from_slice(&[0; 12]);
    end.extend_from_slice(&EPT_S_NOT_REGISTERED.to_le_bytes());
    let r = parse_ept_lookup_response(&end, NdrSyntax::Ndr20, true).unwrap();
    assert!(r.entry_handle.is_null());
    assert!(r.entries.is_empty());
    assert_eq!(EpmStatus::from_u32(r.status), EpmStatus::NotRegistered);

    // Request: inquiry 1, object NULL, interface NSPI 56.0, vers_option 1, max_ents 1.
    let mut q = Vec::new();
    q.extend_from_slice(&1u32.to_le_bytes());
    q.extend_from_slice(&0u32.to_le_bytes());
    q.extend_from_slice(&2u32.to_le_bytes());
    q.extend_from_slice(&uuid("f5cc5a18-4264-101a-8c59-08002b2f8426").to_wire_le());
    q.extend_from_slice(&[56, 0, 0, 0]);
    q.extend_from_slice(&1u32.to_le_bytes());
    q.extend_from_slice(&[0; 20]);
    q.extend_from_slice(&1u32.to_le_bytes());
    let r = parse_ept_lookup_request(&q, NdrSyntax::Ndr20, true).unwrap();
    assert_eq!((r.inquiry_type, r.vers_option, r.max_ents), (1, 1, 1));
    assert_eq!(r.object, None);
    assert_eq!(r.interface.unwrap().major(), 56);
}

fn pad8(s: &mut Vec<u8>) {
    while s.len() % 8 != 0 {
        s.push(0);
    }
}

#[test]
fn ept_map_ndr64_and_fallback() {
    // Derived NDR64 layout of §2.5.
    let t = nspi_tower([0x04, 0x08], [0, 0, 0, 0]);
    let mut s = vec![0u8; 20];
    s.extend_from_slice(&1u32.to_le_bytes()); // num_towers
    s.extend_from_slice(&4u64.to_le_bytes());
    s.extend_from_slice(&0u64.to_le_bytes());
    s.extend_from_slice(&1u64.to_le_bytes());
    s.extend_from_slice(&3u64.to_le_bytes()); // referent
    s.extend_from_slice(&(t.len() as u64).to_le_bytes());
    s.extend_from_slice(&(t.len() as u32).to_le_bytes());
    s.extend_from_slice(&t);
    while s.len() % 4 != 0 {
        s.push(0);
    }
    s.extend_from_slice(&0u32.to_le_bytes());
    let m = parse_ept_map_response(&s, NdrSyntax::Ndr64, true).unwrap();
    assert_eq!(m.towers.len(), 1);
    assert_eq!(m.towers[0].endpoint().unwrap().1, 1032);
    // Parsing it as NDR 2.0 fails structurally; the generic entry point
    // falls back to the tower scan and still finds the tower.
    assert!(parse_ept_map_response(&s, NdrSyntax::Ndr20, true).is_err());
    let a = parse_epm_response(OPNUM_EPT_MAP, &s, NdrSyntax::Ndr20, true).unwrap();
    assert_eq!(a.decoding, Decoding::TowerScan);
    assert_eq!(a.entry_handle, None);
    assert_eq!(a.towers.len(), 1);
    assert_eq!(a.towers[0].0, m.towers[0]);

    // NDR64 request.
    let mut q = Vec::new();
    q.extend_from_slice(&1u64.to_le_bytes());
    q.extend_from_slice(&[0; 16]);
    q.extend_from_slice(&2u64.to_le_bytes());
    q.extend_from_slice(&(t.len() as u64).to_le_bytes());
    q.extend_from_slice(&(t.len() as u32).to_le_bytes());
    q.extend_from_slice(&t);
    while q.len() % 4 != 0 {
        q.push(0);
    }
    q.extend_from_slice(&[0; 20]);
    q.extend_from_slice(&4u32.to_le_bytes());
    let r = parse_ept_map_request(&q, NdrSyntax::Ndr64, true).unwrap();
    assert_eq!(r.max_towers, 4);
    assert_eq!(r.tower.unwrap().interface.unwrap().major(), 56);

    // NDR64 ept_lookup response with one entry.
    let mut s = vec![0u8; 20];
    s.extend_from_slice(&1u32.to_le_bytes());
    s.extend_from_slice(&1u64.to_le_bytes());
    s.extend_from_slice(&0u64.to_le_bytes());
    s.extend_from_slice(&1u64.to_le_bytes());
    s.extend_from_slice(&[0; 16]);
    s.extend_from_slice(&1u64.to_le_bytes());
    s.extend_from_slice(&0u64.to_le_bytes());
    s.extend_from_slice(&4u64.to_le_bytes());
    s.extend_from_slice(b"abc\0");
    pad8(&mut s);
    s.extend_from_slice(&(t.len() as u64).to_le_bytes());
    s.extend_from_slice(&(t.len() as u32).to_le_bytes());
    s.extend_from_slice(&t);
    while s.len() % 4 != 0 {
        s.push(0);
    }
    s.extend_from_slice(&0u32.to_le_bytes());
    let r = parse_ept_lookup_response(&s, NdrSyntax::Ndr64, true).unwrap();
    assert_eq!(r.entries.len(), 1);
    assert_eq!(r.entries[0].annotation, "abc");
    assert!(r.entries[0].tower.is_some());
}

proptest! {
    #[test]
    fn epm_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_tower(&data);
        let _ = scan_towers(&data);
        for syn in [NdrSyntax::Ndr20, NdrSyntax::Ndr64] {
            let _ = parse_ept_map_request(&data, syn, true);
            let _ = parse_ept_lookup_request(&data, syn, false);
            let _ = parse_epm_response(2, &data, syn, true);
            let _ = parse_epm_response(3, &data, syn, false);
        }
    }
}
