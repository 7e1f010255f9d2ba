//! IP defragmentation: a sequence of raw IPv4/IPv6 datagrams (length-prefixed
//! pieces) decoded and their fragments pushed into one `Defragmenter` with
//! small caps; whatever it reassembles is decoded. Checks: the caps hold
//! after every push (datagrams in progress, buffered bytes), and a
//! reassembled datagram is no longer than an IP datagram can be.
#![no_main]
use exflow::packet::{decode_ip, Decoded, DefragConfig, Defragmenter};
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;

const CFG: DefragConfig = DefragConfig {
    max_datagrams: 4,
    max_datagram_bytes: 65535,
    max_total_bytes: 16 << 10,
    timeout: 50,
};

fuzz_target!(|data: &[u8]| {
    let mut d = Defragmenter::new(CFG);
    for (i, p) in common::pieces(data).into_iter().enumerate() {
        let ts = i as u64 * 7;
        let Ok(Decoded::Fragment(f)) = decode_ip(ts, p.len() as u32, p) else {
            continue;
        };
        if let Some(r) = d.push(&f) {
            // IPv6: the 40-byte fixed header is not counted by the payload length.
            assert!(r.bytes.len() <= 65535 + 40 + 8 * 256, "{} bytes", r.bytes.len());
            let _ = r.decode();
        }
        assert!(d.in_progress() <= CFG.max_datagrams, "{} in progress", d.in_progress());
        assert!(
            d.buffered_bytes() <= CFG.max_total_bytes,
            "{} bytes buffered",
            d.buffered_bytes()
        );
        if i % 16 == 15 {
            d.expire(ts);
        }
    }
    d.flush(u64::MAX);
    let _ = d.take_incomplete();
    assert_eq!(d.in_progress(), 0);
});
