//! Link/IP/TCP/UDP/ICMP decoding (`packet::decode`, ICMP errors' quoted
//! headers included) of one frame of any supported link type. Checks: the
//! payload a packet points to lies inside the frame, and the dispatcher's
//! `fast_flow_hash`, whenever it answers, equals the decoded packet's flow
//! hash (else one flow would split across shards).
#![no_main]
use exflow::packet::{decode, decode_ip, fast_flow_hash, quoted_flow, Decoded, LinkType};
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 8] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::IPV4,
    LinkType::IPV6,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(sel) % LINKS.len()];
    let wire = frame.len() as u32 + u32::from(sel >> 4);
    match decode(link, 1, wire, frame) {
        Ok(Decoded::Packet(p)) => {
            if let Some(pl) = p.payload() {
                assert!(
                    pl.offset as usize + pl.len as usize <= frame.len(),
                    "payload {pl:?} outside a {}-byte frame",
                    frame.len()
                );
            }
            if let Some(h) = fast_flow_hash(link, frame) {
                let t = p.tuple().expect("fast hash of a packet without a 5-tuple");
                assert_eq!(h, t.symmetric_hash(), "fast_flow_hash differs from the decode");
            }
        }
        Ok(Decoded::Fragment(f)) => {
            assert!(f.header.len() <= frame.len() && f.data.len() <= frame.len());
        }
        Err(_) => {}
    }
    let _ = decode_ip(1, frame.len() as u32, frame);
    let _ = quoted_flow(frame);
});
