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
