//! TCP stream reassembly (`flow::stream::StreamReassembler`) against a
//! model: segments (offset, length, FIN) cut from one known byte stream, in
//! any order, with retransmissions and overlaps, and holes given up on
//! mid-stream (`flush`, then more segments). Checks: every delivered
//! byte is the stream's byte at that position (holes declared as gaps
//! advance the position), the out-of-order buffer stays under its bound, and
//! after a flush everything up to the highest byte seen was delivered or
//! declared missing.
#![no_main]
use exflow::flow::stream::{Chunk, StreamReassembler};
use libfuzzer_sys::fuzz_target;

const MAX_BUFFERED: usize = 2048;

fn byte_at(pos: u64) -> u8 {
    (pos.wrapping_mul(2654435761) >> 7) as u8
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let isn = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let syn = data[4] & 1 == 1;
    let mut r = StreamReassembler::new(MAX_BUFFERED);
    if syn {
        r.on_syn(isn);
    }
    // Stream position 0 is byte isn+1.
    let mut pos: u64 = 0;
    let mut started = syn;
    let mut scratch = Vec::new();
    for rec in data[5..].chunks_exact(4) {
        let off = u64::from(u16::from_le_bytes([rec[0], rec[1]]));
        let len = usize::from(rec[2]) * if rec[3] & 2 != 0 { 16 } else { 1 };
        let fin = rec[3] & 1 != 0;
        scratch.clear();
        scratch.extend((0..len as u64).map(|k| byte_at(off + k)));
        let seq = isn.wrapping_add(1).wrapping_add(off as u32);
        if !started && (len > 0 || fin) {
            // Without a SYN the first segment seen sets the start.
            started = true;
            pos = off;
        }
        let mut emit = |c: Chunk<'_>| match c {
            Chunk::Data(b) => {
                for (k, &x) in b.iter().enumerate() {
                    assert_eq!(x, byte_at(pos + k as u64), "wrong byte at stream offset {}", pos + k as u64);
                }
                pos += b.len() as u64;
            }
            Chunk::Gap { missing } => pos += u64::from(missing),
        };
        r.push(seq, &scratch, fin, &mut emit);
        assert!(r.buffered() <= MAX_BUFFERED, "{} bytes buffered", r.buffered());
        // Giving up on the holes mid-stream (what the RFC 1006 budget
        // does), then going on.
        if rec[3] & 4 != 0 {
            r.flush(&mut emit);
            assert_eq!(r.buffered(), 0);
        }
    }
    let mut emit = |c: Chunk<'_>| match c {
        Chunk::Data(b) => {
            for (k, &x) in b.iter().enumerate() {
                assert_eq!(x, byte_at(pos + k as u64));
            }
            pos += b.len() as u64;
        }
        Chunk::Gap { missing } => pos += u64::from(missing),
    };
    r.flush(&mut emit);
    assert_eq!(r.buffered(), 0);
});
