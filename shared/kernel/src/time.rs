//! Time as a value: microseconds since the Unix epoch, passed in, never read here.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An instant, in microseconds since 1970-01-01T00:00:00Z.
///
/// The kernel never reads a clock: the edge reads it and passes the value in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// An instant from microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// This instant moved by a number of microseconds (saturating).
    pub const fn plus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }
}

/// Why a text is not an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 time (YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)): {0}")]
pub struct TimestampError(&'static str);

impl Timestamp {
    /// Parses RFC 3339 (`2026-11-22T14:03:05.123456Z`, or with a `±HH:MM`
    /// offset). Fractions finer than a microsecond are cut.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        let b = text.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't' | b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(TimestampError("layout"));
        }
        let num = |range: std::ops::Range<usize>| -> Result<i64, TimestampError> {
            let part = text.get(range).ok_or(TimestampError("layout"))?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(TimestampError("digits"));
            }
            part.parse().map_err(|_| TimestampError("digits"))
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return Err(TimestampError("field out of range"));
        }
        let mut rest = &text[19..];
        let mut micros = 0i64;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(TimestampError("empty fraction"));
            }
            for (i, c) in frac.bytes().take(6).enumerate() {
                if i < digits {
                    micros = micros * 10 + i64::from(c - b'0');
                }
            }
            micros *= 10i64.pow(6u32.saturating_sub(digits.min(6) as u32));
            rest = &frac[digits..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
                let sign = if rest.starts_with('-') { -1 } else { 1 };
                let h: i64 = rest[1..3].parse().map_err(|_| TimestampError("offset"))?;
                let m: i64 = rest[4..6].parse().map_err(|_| TimestampError("offset"))?;
                sign * (h * 3600 + m * 60)
            }
            _ => return Err(TimestampError("offset")),
        };
        let days = days_from_civil(year, month as u32, day as u32);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
        Ok(Self(secs * 1_000_000 + micros))
    }
}

/// A proleptic Gregorian date to days since the epoch (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with microseconds, for example `2026-11-22T14:03:00.000000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    }
}

/// Days since the epoch to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_display_as_rfc3339_utc() {
        assert_eq!(Timestamp::from_micros(0).to_string(), "1970-01-01T00:00:00.000000Z");
        // 2026-11-22T14:03:05.123456Z
        assert_eq!(Timestamp::from_micros(1_795_356_185_123_456).to_string(), "2026-11-22T14:03:05.123456Z");
        assert_eq!(Timestamp::from_micros(-1).to_string(), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn rfc3339_parses_back_what_display_writes() {
        for micros in [0, 1, -1, 1_795_356_185_123_456, 951_782_400_000_000, 4_102_444_799_999_999] {
            let t = Timestamp::from_micros(micros);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Ok(t));
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-22T22:03:05.5+08:00"),
            Ok(Timestamp::from_micros(1_795_356_185_500_000))
        );
        for bad in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-22T14:03:05",
            "2026-11-22T14:03:05.Z",
            "2026-11-22T14:03:0xZ",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
