//! Lock-free histograms for latencies, and their Prometheus text form.
//!
//! The consumer keeps one for its handler calls and one for its
//! transactions ([`ConsumerWatch`](crate::ConsumerWatch)); the runtime keeps
//! saga durations in the same type. Observing is a few relaxed atomic adds,
//! cheap enough for the hot path of every record. [`PartitionEnds`] keeps
//! the partition ends a consumer last heard of, for its lag.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket upper bounds in seconds for work done per record or transaction:
/// 50 µs to 10 s.
pub const HANDLER_BOUNDS: &[f64] =
    &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Bucket upper bounds in seconds for one hop between services: 1 ms to 1 min.
pub const HOP_BOUNDS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Bucket upper bounds in seconds for a whole saga: 10 ms to 2 min.
pub const SAGA_BOUNDS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// A cumulative histogram with fixed bounds, updated with atomics.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound (not cumulative), then the overflow bucket.
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Histogram {
    /// An empty histogram with these upper bounds (ascending, in seconds).
    pub fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds must ascend");
        Self { bounds, buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(), sum_ns: AtomicU64::new(0) }
    }

    /// Counts one observation.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let i = self.bounds.partition_point(|b| *b < seconds);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(u64::try_from(value.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The sum of all observations.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns.load(Ordering::Relaxed))
    }

    /// Cumulative counts: `(upper bound, observations <= bound)`, ending
    /// with `+Inf` and the total.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        let mut out = Vec::with_capacity(self.buckets.len());
        for (i, bucket) in self.buckets.iter().enumerate() {
            total += bucket.load(Ordering::Relaxed);
            out.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), total));
        }
        out
    }

    /// Appends this histogram's `_bucket`, `_sum` and `_count` lines for
    /// metric `name` with `labels` (`key="value"` pairs, comma-separated,
    /// or empty). The `# HELP` and `# TYPE` lines are the caller's.
    pub fn write_prometheus(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let cumulative = self.cumulative();
        for (bound, n) in &cumulative {
            let le = if bound.is_infinite() { "+Inf".to_owned() } else { bound.to_string() };
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
        }
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum().as_secs_f64());
        let _ = writeln!(out, "{name}_count{braces} {}", cumulative.last().map_or(0, |(_, n)| *n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        let h = Histogram::new(&[0.001, 0.01, 0.1]);
        h.observe(Duration::from_micros(500)); // <= 1 ms
        h.observe(Duration::from_millis(1)); // exactly 1 ms: same bucket
        h.observe(Duration::from_millis(50)); // <= 100 ms
        h.observe(Duration::from_secs(3)); // overflow
        assert_eq!(h.cumulative(), vec![(0.001, 2), (0.01, 2), (0.1, 3), (f64::INFINITY, 4)]);
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum(), Duration::from_micros(3_051_500));
    }

    #[test]
    fn the_prometheus_text_is_cumulative_and_ends_with_inf_sum_and_count() {
        let h = Histogram::new(&[0.5, 1.0]);
        h.observe(Duration::from_millis(250));
        h.observe(Duration::from_millis(750));
        let mut text = String::new();
        h.write_prometheus(&mut text, "x_seconds", "service=\"order\"");
        assert_eq!(
            text,
            "x_seconds_bucket{service=\"order\",le=\"0.5\"} 1\n\
             x_seconds_bucket{service=\"order\",le=\"1\"} 2\n\
             x_seconds_bucket{service=\"order\",le=\"+Inf\"} 2\n\
             x_seconds_sum{service=\"order\"} 1\n\
             x_seconds_count{service=\"order\"} 2\n"
        );
        let mut bare = String::new();
        Histogram::new(&[1.0]).write_prometheus(&mut bare, "y", "");
        assert_eq!(bare, "y_bucket{le=\"1\"} 0\ny_bucket{le=\"+Inf\"} 0\ny_sum 0\ny_count 0\n");
    }
}

/// The end (high watermark: the offset the next record will get) of each
/// partition a consumer reads, as librdkafka's statistics last reported it
/// (every [`PartitionEnds::EVERY`]). A consumer's lag on a partition is its
/// end minus the consumer's stored position; a scan stalled short of its
/// resume point asks it whether the log reaches that point (the consumer's
/// gate).
#[derive(Debug, Clone, Default)]
pub struct PartitionEnds(std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<(String, i32), i64>>>);

/// librdkafka's `fetch_state`s of a partition the client reads.
const FETCHING: [&str; 4] = ["active", "offset-query", "offset-wait", "validate-epoch-wait"];

impl PartitionEnds {
    /// How often librdkafka reports (`statistics.interval.ms`).
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(5);

    /// Replaces the ends with those a statistics report gives for the
    /// partitions the consumer reads now (`fetch_state` active, or finding
    /// its offset): one it does not fetch ("none" when never assigned,
    /// "stopped" once revoked and handed to another instance) is left out,
    /// so its stale end does not linger as lag; so is one whose end
    /// librdkafka does not know yet (below 0).
    pub fn record(&self, statistics: &rdkafka::Statistics) {
        let fresh = statistics.topics.iter().flat_map(|(name, topic)| {
            topic
                .partitions
                .iter()
                .filter(|(partition, p)| {
                    **partition >= 0 && p.hi_offset >= 0 && FETCHING.contains(&p.fetch_state.as_str())
                })
                .map(move |(partition, p)| ((name.clone(), *partition), p.hi_offset))
        });
        let fresh: std::collections::BTreeMap<(String, i32), i64> = fresh.collect();
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
    }

    /// The end of a partition, if reported.
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&(topic.to_owned(), partition)).copied()
    }
}
