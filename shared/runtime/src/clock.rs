//! The wall clock, read at the edge and passed into deciders as a value.

use std::time::{SystemTime, UNIX_EPOCH};

use udders_kernel::Timestamp;

/// Now.
pub fn now() -> Timestamp {
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    Timestamp::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}
