//! The native pcap/pcapng reader over a whole file, read in small chunks and
//! in one big chunk: both must give the same frames and the same facts
//! (problem offsets and messages included), so chunk boundaries never change
//! what is read.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&c, file)) = data.split_first() else {
        return;
    };
    // 1..=256-byte chunks: records straddle boundaries all the time.
    let small = usize::from(c) + 1;
    let (Some(a), Some(b)) = (common::native(file, small), common::native(file, 1 << 20)) else {
        assert!(common::native(file, small).is_none() && common::native(file, 1 << 20).is_none());
        return;
    };
    let (fa, ia) = common::drain(a);
    let (fb, ib) = common::drain(b);
    assert_eq!(fa, fb, "frames differ between chunk sizes {small} and 1 MiB");
    assert_eq!(ia, ib, "input facts differ between chunk sizes {small} and 1 MiB");
    let info = &ia[0];
    assert!(info.packets_matched <= info.packets);
    assert_eq!(fa.len() as u64, info.packets_matched);
});
