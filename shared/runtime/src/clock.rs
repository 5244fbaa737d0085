//! The wall clock, read at the edge and passed into deciders as a value.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use udders_kernel::Timestamp;

/// Now.
pub fn now() -> Timestamp {
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    Timestamp::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}

/// Parses `30s`, `500ms`, `2m` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 30s, 500ms or 2m"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(|| format!("{text:?} is too long")),
        _ => Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    }
}

/// Like [`parse_duration`], and hours (`6h`) and days (`7d`) too: for
/// retentions, which run long.
pub fn parse_long_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let hours = |n: &str, per: u64| {
        let n: u64 = n.parse().map_err(|_| format!("{text:?} is not a duration like 10m, 6h or 7d"))?;
        n.checked_mul(per * 3_600).map(Duration::from_secs).ok_or_else(|| format!("{text:?} is too long"))
    };
    if let Some(n) = text.strip_suffix('h') {
        hours(n, 1)
    } else if let Some(n) = text.strip_suffix('d') {
        hours(n, 24)
    } else {
        parse_duration(text).map_err(|e| e.replace("(use ms, s or m)", "(use ms, s, m, h or d)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_durations_read_in_hours_and_days_too() {
        assert_eq!(parse_long_duration("6h"), Ok(Duration::from_secs(6 * 3_600)));
        assert_eq!(parse_long_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_long_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_long_duration("2w").unwrap_err().contains("use ms, s, m, h or d"));
        assert!(parse_long_duration("xh").is_err());
        assert!(parse_long_duration("307445734561825861d").is_err());
    }

    #[test]
    fn durations_read_in_seconds_milliseconds_or_minutes() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("307445734561825861m").is_err());
    }
}
