//! Timestamp formatting: RFC 3339 UTC with microseconds, as the report contract asks.

use crate::Ts;

/// A timestamp that displays (and serializes) as RFC 3339 UTC with
/// microseconds, without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub Ts);

impl Rfc3339 {
    /// The 27 ASCII bytes `YYYY-MM-DDTHH:MM:SS.ffffffZ` (years 0..=9999).
    pub fn bytes(self) -> [u8; 27] {
        let ts = self.0;
        let secs = (ts / 1_000_000_000) as i64;
        let micros = ((ts % 1_000_000_000) / 1_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for k in (0..width).rev() {
                b[at + k] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y.clamp(0, 9999) as u32);
        put(5, 2, m);
        put(8, 2, d);
        put(11, 2, sod / 3600);
        put(14, 2, (sod % 3600) / 60);
        put(17, 2, sod % 60);
        put(20, 6, micros);
        b
    }
}

impl Rfc3339 {
    /// [`Rfc3339::bytes`], reusing the date and time of day of the last
    /// two seconds formatted on this thread: records are written in time
    /// order, thousands of them within one second.
    pub fn bytes_cached(self) -> [u8; 27] {
        // The two seconds formatted last: a flow's first and last
        // timestamps often fall in different seconds, and they alternate.
        thread_local! {
            static LAST: std::cell::RefCell<[(u64, [u8; 27]); 2]> =
                const { std::cell::RefCell::new([(u64::MAX, [0; 27]); 2]) };
        }
        let secs = self.0 / 1_000_000_000;
        let mut b = LAST.with(|last| {
            let mut last = last.borrow_mut();
            if last[0].0 != secs {
                if last[1].0 == secs {
                    last.swap(0, 1);
                } else {
                    last[1] = last[0];
                    last[0] = (secs, self.bytes());
                }
            }
            last[0].1
        });
        let micros = ((self.0 % 1_000_000_000) / 1_000) as usize;
        for (k, pair) in [micros / 10_000, micros / 100 % 100, micros % 100]
            .into_iter()
            .enumerate()
        {
            b[20 + 2 * k] = b'0' + (pair / 10) as u8;
            b[21 + 2 * k] = b'0' + (pair % 10) as u8;
        }
        b
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.bytes();
        // Only ASCII digits and separators were written.
        f.write_str(std::str::from_utf8(&b).map_err(|_| std::fmt::Error)?)
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.bytes();
        s.serialize_str(std::str::from_utf8(&b).map_err(serde::ser::Error::custom)?)
    }
}

/// Formats `ts` (ns since the epoch) as `2026-11-21T23:41:07.123456Z`.
pub fn rfc3339_micros(ts: Ts) -> String {
    Rfc3339(ts).to_string()
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `EXFLOW_TIMING` (set to anything): each stage of a run prints one line
/// `timing: STAGE SECONDS s (rss R MiB, peak P MiB)` on stderr as it ends
/// (resident and peak resident memory from /proc/self/status, `?` where
/// there is none) — `read` (until the last
/// packet is read and dispatched), `workers` (until the shard workers are
/// done), `merge` (flows merged and sorted), `correlate`, `judge`,
/// `render`. `benches/throughput.rs` reads these lines.
pub fn stage_done(stage: &str, took: std::time::Duration) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("EXFLOW_TIMING").is_some()) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or_else(|| "?".to_string(), |kb| (kb >> 10).to_string())
        };
        eprintln!(
            "timing: {stage} {:.3} s (rss {} MiB, peak {} MiB)",
            took.as_secs_f64(),
            kb("VmRSS:"),
            kb("VmHWM:")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_bytes_equal_bytes_in_any_order() {
        let mut ts: Ts = 1_704_067_199_999_999_000;
        let mut seen = Vec::new();
        for k in 0..20_000u64 {
            // Steps within a second, across seconds, days and back again.
            ts += (k * 7919) % 1_300_000_000;
            seen.push(ts);
            assert_eq!(Rfc3339(ts).bytes_cached(), Rfc3339(ts).bytes(), "{ts}");
        }
        for &t in seen.iter().rev().step_by(7) {
            assert_eq!(Rfc3339(t).bytes_cached(), Rfc3339(t).bytes(), "{t}");
        }
    }

    #[test]
    fn formats_epoch_and_known_dates() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        // 2026-11-21T23:41:07.123456Z = 1795304467 s
        assert_eq!(
            rfc3339_micros(1_795_304_467_123_456_789),
            "2026-11-21T23:41:07.123456Z"
        );
        // leap day
        assert_eq!(
            rfc3339_micros(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }
}
