use super::*;
use crate::proto::test_hex::hex;

/// The response stub of RemoteCreateInstance in zeek's kerberos135_auth
/// trace (frame 11), as captured.
fn real_stub() -> Vec<u8> {
    hex(include_str!("remote_create_instance_response.hex"))
}

/// What tshark 4.0 shows of that stub (`-V`, frame 11): the OBJREF's
/// resolver address (STRINGBINDINGs=2, SECURITYBINDINGs=7, NumEntries 53,
/// SecurityOffset 31) and ScmReplyInfo's OXID bindings
/// (STRINGBINDINGs=2, SECURITYBINDINGs=6, NumEntries 204, SecurityOffset 45).
#[test]
fn the_real_remote_create_instance_answer_gives_what_tshark_shows() {
    let a = parse_dcom_response(DcomOperation::RemoteCreateInstance, &real_stub(), true).unwrap();
    assert_eq!(a.status, 0);
    assert!(!a.cut);
    let shape: Vec<(u16, u16, usize, usize, bool)> = a
        .arrays
        .iter()
        .map(|d| {
            (
                d.num_entries,
                d.security_offset,
                d.string_bindings.len(),
                d.security_bindings,
                d.conformant,
            )
        })
        .collect();
    assert_eq!(shape, vec![(53, 31, 2, 7, false), (204, 45, 2, 6, true)]);
    let texts: Vec<String> = a.string_bindings().iter().map(|b| b.to_string()).collect();
    assert_eq!(
        texts,
        [
            "ncacn_ip_tcp:BLACKCLOVER-DC",
            "ncacn_ip_tcp:10.10.10.100",
            "ncacn_ip_tcp:BLACKCLOVER-DC[49718]",
            "ncacn_ip_tcp:10.10.10.100[49718]",
        ]
    );
    let ports: Vec<(BindingHost, Option<u16>)> = a
        .string_bindings()
        .iter()
        .map(|b| (b.host(), b.tcp_port()))
        .collect();
    assert_eq!(
        ports[2..],
        [
            (BindingHost::Name("BLACKCLOVER-DC".into()), Some(49718)),
            (
                BindingHost::Ip("10.10.10.100".parse().unwrap()),
                Some(49718)
            ),
        ]
    );
    assert_eq!(ports[0].1, None, "the resolver's own address has no port");
}

/// The stub cut at every length: never a panic, and an array is found
/// only once all of it is there.
#[test]
fn a_truncated_answer_yields_only_whole_arrays() {
    let stub = real_stub();
    for n in 0..stub.len() {
        let arrays = scan_dual_string_arrays(&stub[..n], true);
        for a in &arrays {
            let end = a.offset + 4 + 2 * usize::from(a.num_entries);
            assert!(end <= n);
        }
        assert!(arrays.len() <= 2);
    }
    assert_eq!(scan_dual_string_arrays(&stub, true).len(), 2);
}

/// Builds a DUALSTRINGARRAY's u16 entries.
fn dsa_entries(bindings: &[(u16, &str)], security: &[(u16, u16, &str)]) -> (Vec<u16>, u16) {
    let mut e = Vec::new();
    for (t, a) in bindings {
        e.push(*t);
        e.extend(a.encode_utf16());
        e.push(0);
    }
    e.push(0);
    let s = e.len() as u16;
    for (n, z, p) in security {
        e.push(*n);
        e.push(*z);
        e.extend(p.encode_utf16());
        e.push(0);
    }
    e.push(0);
    (e, s)
}

/// A ResolveOxid2 answer ([MS-DCOM] IObjectExporter, out parameters in
/// order): ppdsaOxidBindings (unique pointer, conformance, the array),
/// pipidRemUnknown, pAuthnHint, pComVersion, error_status.
pub(crate) fn resolve_oxid2_stub(
    bindings: &[(u16, &str)],
    le: bool,
    num_entries: Option<u16>,
    security_offset: Option<u16>,
) -> Vec<u8> {
    let (e, s) = dsa_entries(bindings, &[(0x0a, 0xffff, "")]);
    let u16b = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    let u32b = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    let n = num_entries.unwrap_or(e.len() as u16);
    let mut b = Vec::new();
    b.extend(u32b(0x0002_0000));
    b.extend(u32b(u32::from(n)));
    b.extend(u16b(n));
    b.extend(u16b(security_offset.unwrap_or(s)));
    for x in &e {
        b.extend(u16b(*x));
    }
    while b.len() % 4 != 0 {
        b.push(0);
    }
    b.extend([0x11; 16]);
    b.extend(u32b(4));
    b.extend(u16b(5));
    b.extend(u16b(7));
    b.extend(u32b(0));
    b
}

#[test]
fn a_resolve_oxid2_answer_in_either_byte_order() {
    for le in [true, false] {
        let stub = resolve_oxid2_stub(
            &[
                (7, "SRV01[50123]"),
                (7, "192.0.2.7[50123]"),
                (7, "2001:db8::7[50123]"),
            ],
            le,
            None,
            None,
        );
        let a = parse_dcom_response(DcomOperation::ResolveOxid2, &stub, le).unwrap();
        assert_eq!(a.arrays.len(), 1, "le {le}");
        assert!(a.arrays[0].conformant);
        let hosts: Vec<(BindingHost, Option<u16>)> = a
            .string_bindings()
            .iter()
            .map(|b| (b.host(), b.tcp_port()))
            .collect();
        assert_eq!(
            hosts,
            [
                (BindingHost::Name("SRV01".into()), Some(50123)),
                (BindingHost::Ip("192.0.2.7".parse().unwrap()), Some(50123)),
                (BindingHost::Ip("2001:db8::7".parse().unwrap()), Some(50123)),
            ]
        );
    }
}

/// Sizes that lie are refused, whatever they claim: more entries than the
/// stub holds, a security offset inside a binding or past the end, a
/// binding without its NUL, a tower id out of range, control characters.
#[test]
fn lying_sizes_and_bad_entries_are_refused() {
    let good = [(7u16, "SRV01[50123]")];
    let (e, s) = dsa_entries(&good, &[(0x0a, 0xffff, "")]);
    let n = e.len() as u16;
    let found = |stub: &[u8]| scan_dual_string_arrays(stub, true);
    assert_eq!(found(&resolve_oxid2_stub(&good, true, None, None)).len(), 1);
    for lie in [n + 1, n + 2, n - 1, u16::MAX, 0, 1, s] {
        let stub = resolve_oxid2_stub(&good, true, Some(lie), None);
        assert!(found(&stub).is_empty(), "wNumEntries {lie} of {n}");
    }
    for lie in [0, 1, s - 1, s + 1, n, n - 1, u16::MAX] {
        let stub = resolve_oxid2_stub(&good, true, None, Some(lie));
        assert!(found(&stub).is_empty(), "wSecurityOffset {lie} of {s}");
    }
    for bad in [
        (0x20u16, "SRV01[50123]"),
        (0x7, "SRV 01[50123]"),
        (0x7, "SRV\u{1}01[50123]"),
        (0x7, "SRV\u{e9}01[50123]"),
    ] {
        let stub = resolve_oxid2_stub(&[bad], true, None, None);
        assert!(found(&stub).is_empty(), "{bad:?}");
    }
}

/// Ports: only a bracketed decimal 1–65535 is one.
#[test]
fn only_a_bracketed_port_is_a_port() {
    let b = |a: &str| StringBinding {
        tower_id: tower::NCACN_IP_TCP,
        address: a.into(),
    };
    assert_eq!(b("H[135]").host_port(), ("H", Some(135)));
    assert_eq!(b("H[65535]").tcp_port(), Some(65535));
    for no in [
        "H",
        "H[]",
        "H[0]",
        "H[65536]",
        "H[12a]",
        "H[123456]",
        "H]",
        "H[-1]",
    ] {
        assert_eq!(b(no).tcp_port(), None, "{no}");
    }
    assert_eq!(
        b("fe80::1%11[49670]").host(),
        BindingHost::Ip("fe80::1".parse().unwrap())
    );
    let udp = StringBinding {
        tower_id: tower::NCADG_IP_UDP,
        address: "H[135]".into(),
    };
    assert_eq!(udp.tcp_port(), None);
}

/// Arbitrary bytes and nested lies: no panic, bounded work, every array
/// returned inside the stub; many candidates that each fail late cost
/// O(bindings) each (the scan of 64 KiB of them stays fast).
#[test]
fn hostile_stubs_are_scanned_in_bounded_time() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut rand = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2000 {
        let len = (rand() % 600) as usize;
        let stub: Vec<u8> = (0..len)
            .map(|_| match rand() % 4 {
                0 => 0,
                1 => 7,
                2 => b'A' + (rand() % 26) as u8,
                _ => rand() as u8,
            })
            .collect();
        for a in scan_dual_string_arrays(&stub, true) {
            assert!(a.offset + 4 + 2 * usize::from(a.num_entries) <= stub.len());
            assert!(a.string_bindings.len() <= MAX_BINDINGS);
        }
    }
    // 64 KiB of "N S 7 'A' 'A' ... " with a lying N at every offset: each
    // candidate walks its binding, then fails.
    let mut stub = Vec::new();
    while stub.len() < MAX_SCAN_BYTES {
        stub.extend(4000u16.to_le_bytes());
        stub.extend(3000u16.to_le_bytes());
        stub.extend(7u16.to_le_bytes());
        for _ in 0..200 {
            stub.extend(u16::from(b'A').to_le_bytes());
        }
        stub.extend(0u16.to_le_bytes());
    }
    let t = std::time::Instant::now();
    let a = parse_dcom_response(DcomOperation::ResolveOxid, &stub, true).unwrap();
    assert!(a.arrays.is_empty());
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
    // Beyond MAX_SCAN_BYTES: not searched, and said so.
    let mut big = vec![0u8; MAX_SCAN_BYTES];
    big.extend(resolve_oxid2_stub(&[(7, "SRV01[50123]")], true, None, None));
    let a = parse_dcom_response(DcomOperation::ResolveOxid2, &big, true).unwrap();
    assert!(a.cut && a.arrays.is_empty());
}

#[test]
fn operations_by_interface_and_opnum() {
    use DcomOperation as D;
    assert_eq!(
        D::of(&UUID_ISYSTEM_ACTIVATOR, 4),
        Some(D::RemoteCreateInstance)
    );
    assert_eq!(
        D::of(&UUID_ISYSTEM_ACTIVATOR, 3),
        Some(D::RemoteGetClassObject)
    );
    assert_eq!(
        D::of(&UUID_IREMOTE_ACTIVATION, 0),
        Some(D::RemoteActivation)
    );
    assert_eq!(D::of(&UUID_IOBJECT_EXPORTER, 0), Some(D::ResolveOxid));
    assert_eq!(D::of(&UUID_IOBJECT_EXPORTER, 4), Some(D::ResolveOxid2));
    assert_eq!(D::of(&UUID_IOBJECT_EXPORTER, 5), Some(D::ServerAlive2));
    assert_eq!(D::of(&UUID_IOBJECT_EXPORTER, 3), None);
    assert_eq!(D::of(&UUID_ISYSTEM_ACTIVATOR, 0), None);
    assert_eq!(
        UUID_ISYSTEM_ACTIVATOR.to_string(),
        "000001a0-0000-0000-c000-000000000046"
    );
    assert_eq!(
        UUID_IREMOTE_ACTIVATION.to_string(),
        "4d9f4ab8-7d1c-11cf-861e-0020af6e7c57"
    );
    assert_eq!(
        UUID_IOBJECT_EXPORTER.to_string(),
        "99fcfec4-5260-101b-bbcb-00aa0021347a"
    );
}
