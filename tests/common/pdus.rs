//! DCE/RPC PDUs from the byte examples of ../shared/spec/protocols.md, shared by the
//! end-to-end tests that build captures.

pub fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|t| u8::from_str_radix(t, 16).unwrap())
        .collect()
}

/// protocols.md Example 1: bind to the endpoint mapper.
pub fn epm_bind() -> Vec<u8> {
    hex("05 00 0b 03 10 00 00 00 48 00 00 00 01 00 00 00
         d0 16 d0 16 00 00 00 00 01 00 00 00 00 00 01 00
         08 83 af e1 1f 5d c9 11 91 a4 08 00 2b 14 a0 fa
         03 00 00 00 04 5d 88 8a eb 1c c9 11 9f e8 08 00
         2b 10 48 60 02 00 00 00")
}

/// Example 3: its bind_ack.
pub fn epm_bind_ack() -> Vec<u8> {
    hex("05 00 0c 03 10 00 00 00 3c 00 00 00 01 00 00 00
         d0 16 d0 16 e5 c8 00 00 04 00 31 33 35 00 00 00
         01 00 00 00 00 00 00 00 04 5d 88 8a eb 1c c9 11
         9f e8 08 00 2b 10 48 60 02 00 00 00")
}

/// Example 5: ept_map for NSPI.
pub fn ept_map_nspi() -> Vec<u8> {
    hex("05 00 00 03 10 00 00 00 9c 00 00 00 01 00 00 00
         84 00 00 00 00 00 03 00 01 00 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 00 02 00 00 00
         4b 00 00 00 4b 00 00 00 05 00 13 00 0d 18 5a cc
         f5 64 42 1a 10 8c 59 08 00 2b 2f 84 26 38 00 02
         00 00 00 13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8
         08 00 2b 10 48 60 02 00 02 00 00 00 01 00 0b 02
         00 00 00 01 00 07 02 00 00 87 01 00 09 04 00 00
         00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 04 00 00 00")
}

/// Example 6 (the ept_map response) with its tower naming `tower` (the
/// address floor; 0.0.0.0: the mapper itself) and TCP `port`.
pub fn ept_map_answer_at(tower: std::net::Ipv4Addr, port: u16) -> Vec<u8> {
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
    // Floor 5 (IPv4: protocol 0x09, four address bytes) at 0x8f.
    assert_eq!(&b[0x8a..0x8f], &[0x01, 0x00, 0x09, 0x04, 0x00]);
    b[0x8f..0x93].copy_from_slice(&tower.octets());
    // Floor 4 (TCP: protocol 0x07, the port big-endian).
    assert_eq!(&b[0x85..0x8a], &[0x07, 0x02, 0x00, 0x13, 0x85]);
    b[0x88..0x8a].copy_from_slice(&port.to_be_bytes());
    b
}
