//! `udders bench …`: benchmarks that print their figures, each measured
//! against a baseline taken in the same run.

pub mod board;
pub mod floor;
pub mod messaging;
pub mod store;

use std::time::Duration;

/// Operations per second.
pub fn rate(ops: u64, took: Duration) -> f64 {
    ops as f64 / took.as_secs_f64().max(1e-9)
}

/// The header of a benchmark table.
pub fn header(ops: &str) -> String {
    format!("{:<9} {:<52} {:>8} {:>9} {:>12}\n", "backend", "measure", ops, "seconds", "per second")
}

/// One row of a benchmark table: what was measured, how many, how long, the rate.
pub fn row(backend: &str, measure: &str, ops: u64, took: Duration) -> String {
    format!("{backend:<9} {measure:<52} {ops:>8} {:>9.3} {:>12.0}\n", took.as_secs_f64(), rate(ops, took))
}
