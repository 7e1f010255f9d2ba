//! Durations on the command line (`--duration`, `--stats-interval`,
//! `--stop-timeout`), read by `humantime` with one addition: a bare number
//! is seconds (`90`, `0.5`). So `90`, `90s`, `10m`, `8h`, `2d`, `1.5h`,
//! `1h30m` and `10min` are all taken.

use std::time::Duration;

/// A duration as [`parse_duration`] takes it, or 0 (`0`, `0s`, ...) for never.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let num = s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if num.parse::<f64>() == Ok(0.0) {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

/// A positive duration: `90` (seconds), `90s`, `10m`, `8h`, `2d`, `1h30m`,
/// `1.5h`, or anything else `humantime` reads.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let secs = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        s.parse::<f64>().map_err(|_| not_a_duration(s))?
    } else {
        humantime::parse_duration(s)
            .map_err(|e| explain(s, &e))?
            .as_secs_f64()
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("'{s}' must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn not_a_duration(s: &str) -> String {
    format!("'{s}' is not a duration (e.g. 90, 90s, 10m, 8h, 2d)")
}

/// Why `s` is not a duration, in the words exflow always used.
fn explain(s: &str, e: &humantime::DurationError) -> String {
    match e {
        humantime::DurationError::UnknownUnit { unit, .. } => {
            format!("'{s}': unknown unit '{unit}' (use s, m, h or d)")
        }
        _ => not_a_duration(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_what_it_always_took_and_more() {
        let secs = |s: &str| parse_duration(s).map(|d| d.as_secs_f64());
        assert_eq!(secs("90"), Ok(90.0));
        assert_eq!(secs(" 90s "), Ok(90.0));
        assert_eq!(secs("10m"), Ok(600.0));
        assert_eq!(secs("8h"), Ok(28_800.0));
        assert_eq!(secs("2d"), Ok(172_800.0));
        assert_eq!(secs("1.5h"), Ok(5_400.0));
        assert_eq!(secs("0.5"), Ok(0.5));
        assert_eq!(secs("1h30m"), Ok(5_400.0));
        assert_eq!(secs("10min"), Ok(600.0));
        assert_eq!(
            secs("1.5x"),
            Err("'1.5x': unknown unit 'x' (use s, m, h or d)".into())
        );
        assert_eq!(secs("1.5h30m"), Ok(7_200.0));
    }

    #[test]
    fn says_why_not() {
        assert_eq!(
            parse_duration("5x"),
            Err("'5x': unknown unit 'x' (use s, m, h or d)".into())
        );
        assert_eq!(
            parse_duration("abc"),
            Err("'abc' is not a duration (e.g. 90, 90s, 10m, 8h, 2d)".into())
        );
        assert_eq!(
            parse_duration("0"),
            Err("'0' must be a positive duration".into())
        );
        assert_eq!(
            parse_duration("0s"),
            Err("'0s' must be a positive duration".into())
        );
        assert_eq!(parse_interval("0"), Ok(Duration::ZERO));
        assert_eq!(parse_interval("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_interval("60s"), Ok(Duration::from_secs(60)));
    }
}
