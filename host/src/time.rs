//! The ground floor's clock and date formats: the one place that reads the system clock and
//! the few ways a time is written. A run reads [`unix_now`] once and passes `now` down, so every
//! step of a run sees the same instant (and tests can pass any instant).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now (negative before 1970, for a badly set clock).
pub fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn format(unix: i64, pattern: &str) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format(pattern).to_string())
        .unwrap_or_else(|| format!("{unix} (Unix time)"))
}

/// A point in time as an admin writes it for `--at`: RFC 3339 (`2027-01-31T00:00:00Z`, any
/// offset), Unix seconds (`1800000000`), or relative to `now`, a sign and a number with a unit
/// (`+30d`, `-12h`, `+90m`, `+45s`; `d` days, `h` hours, `m` minutes, `s` seconds). Unix seconds.
pub fn parse_at(text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| format!("{text:?} is too far from now"));
    }
    if let Some(rest) =
        text.strip_prefix('+').map(|r| (1, r)).or_else(|| text.strip_prefix('-').map(|r| (-1, r)))
    {
        let (sign, rest) = rest;
        let unit = rest.chars().last().ok_or_else(|| at_error(text))?;
        let seconds = match unit {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(at_error(text)),
        };
        let count: i64 = rest[..rest.len() - 1].parse().map_err(|_| at_error(text))?;
        // Within 10,000 years of now: further is a typo, and would leave what a timestamp holds.
        const MAX: i64 = 10_000 * 366 * 86_400;
        return count
            .checked_mul(seconds)
            .filter(|d| (0..=MAX).contains(d))
            .and_then(|d| now.checked_add(sign * d))
            .ok_or_else(|| format!("{text:?} is too far from now (or negative)"));
    }
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp()).map_err(|_| at_error(text))
}

fn at_error(text: &str) -> String {
    format!(
        "{text:?} is not a time: write RFC 3339 (2027-01-31T00:00:00Z), Unix seconds, or +30d, +12h, +90m, +45s from now"
    )
}

/// `YYYYmmddTHHMMSSZ` (UTC): names of backups and set-aside files, which sort by time.
pub fn stamp(unix: i64) -> String {
    format(unix, "%Y%m%dT%H%M%SZ")
}

/// `YYYY-mm-dd HH:MM:SS UTC`: times in messages and reports.
pub fn utc_seconds(unix: i64) -> String {
    format(unix, "%Y-%m-%d %H:%M:%S UTC")
}

/// `YYYY-mm-dd HH:MM UTC`: times in the administrator's mail.
pub fn utc_minutes(unix: i64) -> String {
    format(unix, "%Y-%m-%d %H:%M UTC")
}

/// A duration for people: `5s`, `1.5s`, `300ms`.
pub fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_is_rfc3339_or_relative_to_now() {
        let now = 1_800_000_000;
        assert_eq!(super::parse_at("+30d", now), Ok(now + 30 * 86_400));
        assert_eq!(super::parse_at("-12h", now), Ok(now - 12 * 3_600));
        assert_eq!(super::parse_at("+90m", now), Ok(now + 5_400));
        assert_eq!(super::parse_at("1970-01-02T00:00:00Z", now), Ok(86_400));
        assert_eq!(super::parse_at("1970-01-02T01:00:00+01:00", now), Ok(86_400));
        assert_eq!(super::parse_at("1800000000", now), Ok(1_800_000_000));
        for bad in ["30d", "+30", "+d", "+30w", "tomorrow", "", "+99999999999999d"] {
            assert!(super::parse_at(bad, now).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn formats_known_instants() {
        // 2025-06-15 14:30:05 UTC: 20,254 days after 1970-01-01 (Python: date(2025,6,15) - date(1970,1,1)).
        let t = 20_254 * 86_400 + 14 * 3600 + 30 * 60 + 5;
        assert_eq!(stamp(t), "20250615T143005Z");
        assert_eq!(utc_seconds(t), "2025-06-15 14:30:05 UTC");
        assert_eq!(utc_minutes(t), "2025-06-15 14:30 UTC");
        assert_eq!(stamp(0), "19700101T000000Z");
        assert_eq!(utc_seconds(i64::MAX), format!("{} (Unix time)", i64::MAX));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_secs(5)), "5s");
        assert_eq!(duration(Duration::from_millis(300)), "300ms");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn the_clock_is_after_this_code_was_written() {
        assert!(unix_now() > 1_790_000_000);
    }
}
