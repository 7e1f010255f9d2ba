//! Software prefetch: a hint to start loading a cache line that will be
//! needed soon, so that memory latency overlaps with other work. The shard
//! workers know the packets ahead of the one they are processing; they
//! prefetch those packets' flows and header bytes.

/// Asks the CPU to start loading the cache line holding `p` into all cache
/// levels. A hint only: it never faults, whatever the address, and does
/// nothing on targets without a prefetch instruction.
#[inline(always)]
pub fn line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint; it does not fault on any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetches every cache line of the `len` bytes at `p`.
#[inline(always)]
pub fn bytes(p: *const u8, len: usize) {
    let mut off = 0;
    while off < len {
        line(p.wrapping_add(off));
        off += 64;
    }
    if len > 0 && (p as usize + len - 1) / 64 != (p as usize + off - 64) / 64 {
        line(p.wrapping_add(len - 1));
    }
}
