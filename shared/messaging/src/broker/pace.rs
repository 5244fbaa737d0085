//! How long the embedded broker lets records gather on a busy connection
//! before it answers that connection's next fetch (the pace of ADR 0010,
//! which now follows the machine's load: ADR 0022).
//!
//! A pace trades latency for CPU: records that gather go out in one answer
//! and are handled in one transaction, where answering each at once costs
//! a fetch round trip and a commit apiece. That trade pays only when the
//! cores are short. So every [`SAMPLE_EVERY`] the broker reads how busy the
//! machine's cores were (Linux's `/proc/stat`, all processes: the services,
//! the broker, a load generator, PostgreSQL), smooths it, and sets the pace
//! between [`FASTEST`] on idle cores and [`SLOWEST`] on saturated ones. At
//! 200 orders/s on two cores the fixed 10 ms pace was about two fifths of
//! an order's p50; near capacity a 5 ms pace took the p99 1.7 times higher
//! (docs/benchmarks.md, the fourteenth measurement).
//! Where `/proc/stat` cannot be read the pace is [`SLOWEST`], the fixed pace
//! of before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The pace on cores that are not busy.
pub(crate) const FASTEST: Duration = Duration::from_millis(2);
/// The pace on saturated cores: ADR 0010's fixed pace.
pub(crate) const SLOWEST: Duration = Duration::from_millis(10);
/// Below this busy share of the cores the pace is [`FASTEST`]...
const CALM: f64 = 0.72;
/// ...and above this one [`SLOWEST`]; in between it goes in a line.
const SATURATED: f64 = 0.88;
/// How often the load is read.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// The weight of the newest reading in the smoothed load (a time constant
/// of about three readings, 0.6 s: one busy moment does not swing the pace;
/// a reading is only 40 clock ticks on two cores, 2.5% each).
const NEWEST_WEIGHT: f64 = 0.3;

/// The pace for a share `busy` (0 to 1) of the machine's cores busy.
pub(crate) fn pace_for(busy: f64) -> Duration {
    let share = ((busy - CALM) / (SATURATED - CALM)).clamp(0.0, 1.0);
    if !share.is_finite() {
        return SLOWEST;
    }
    FASTEST + (SLOWEST - FASTEST).mul_f64(share)
}

/// The smoothed load after a reading `busy`, from the smoothed load before
/// it (none before the first reading).
pub(crate) fn smoothed(before: Option<f64>, busy: f64) -> f64 {
    before.map_or(busy, |load| load + NEWEST_WEIGHT * (busy - load))
}

/// The cores' time counters since boot, in clock ticks: all of it, and the
/// part spent idle (idle and waiting for I/O).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    total: u64,
    idle: u64,
}

impl CpuTimes {
    /// The counters of the first (`cpu`, all cores) line of `/proc/stat`:
    /// user, nice, system, idle, iowait, irq, softirq, steal. (Guest time
    /// is counted inside user time already.)
    pub(crate) fn parse(proc_stat: &str) -> Option<Self> {
        let line = proc_stat.lines().next()?;
        let mut fields = line.split_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        let ticks: Vec<u64> = fields.take(8).map(str::parse).collect::<Result<_, _>>().ok()?;
        if ticks.len() < 5 {
            return None;
        }
        Some(Self { total: ticks.iter().sum(), idle: ticks[3] + ticks[4] })
    }

    fn read() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The busy share of the cores between `earlier` and these counters;
    /// `None` when no tick passed or a counter went back (the kernel's idle
    /// counts are not strictly monotonic: iowait can go down).
    pub(crate) fn busy_since(self, earlier: Self) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total).filter(|t| *t > 0)?;
        let idle = self.idle.checked_sub(earlier.idle)?.min(total);
        Some(1.0 - idle as f64 / total as f64)
    }
}

/// The current pace, shared by every connection of one broker, and the
/// load it follows.
#[derive(Debug)]
pub(crate) struct AnswerPace {
    micros: AtomicU64,
}

impl Default for AnswerPace {
    fn default() -> Self {
        Self { micros: AtomicU64::new(SLOWEST.as_micros() as u64) }
    }
}

impl AnswerPace {
    /// The pace now.
    pub(crate) fn get(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }

    /// Reads the machine's load every [`SAMPLE_EVERY`] and sets the pace,
    /// until the task is dropped. Returns at once where the load cannot be
    /// read, leaving the pace at [`SLOWEST`].
    pub(crate) async fn follow_the_load(&self) {
        let Some(mut last) = CpuTimes::read() else {
            tracing::debug!("no /proc/stat: the embedded broker keeps a fixed pace");
            return;
        };
        let mut load: Option<f64> = None;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE_EVERY, SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(now) = CpuTimes::read() else {
                // Unreadable now: the fixed pace of before, until it reads again.
                load = None;
                self.set(SLOWEST);
                continue;
            };
            if let Some(busy) = now.busy_since(last) {
                let smooth = smoothed(load, busy);
                load = Some(smooth);
                self.set(pace_for(smooth));
            }
            last = now;
        }
    }

    fn set(&self, pace: Duration) {
        self.micros.store(pace.as_micros() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_goes_from_fastest_on_calm_cores_to_slowest_on_saturated_ones() {
        assert_eq!(pace_for(0.0), FASTEST);
        assert_eq!(pace_for(CALM), FASTEST);
        assert_eq!(pace_for(SATURATED), SLOWEST);
        assert_eq!(pace_for(1.0), SLOWEST);
        let middle = pace_for((CALM + SATURATED) / 2.0);
        assert!(middle > FASTEST && middle < SLOWEST, "{middle:?}");
        assert!(pace_for(0.8) < pace_for(0.9));
    }

    #[test]
    fn the_load_is_smoothed_so_one_busy_reading_does_not_swing_the_pace() {
        assert_eq!(smoothed(None, 0.5), 0.5, "the first reading is the load");
        let after_spike = smoothed(Some(0.5), 1.0);
        assert!((after_spike - 0.65).abs() < 1e-9, "{after_spike}");
        assert!(pace_for(after_spike) < SLOWEST, "one busy reading after calm ones does not saturate the pace");
        let mut load = Some(0.5);
        for _ in 0..20 {
            load = Some(smoothed(load, 1.0));
        }
        assert_eq!(pace_for(load.unwrap()), SLOWEST, "a busy second does");
        assert_eq!(pace_for(f64::NAN), SLOWEST);
    }

    #[test]
    fn the_busy_share_comes_from_the_all_cores_line_of_proc_stat() {
        let earlier = CpuTimes::parse("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n").unwrap();
        // 100 ticks pass, 25 of them idle or waiting: 75% busy.
        let later = CpuTimes::parse("cpu  150 0 75 820 55 0 0 0 0 0\ncpu0 75 0 40 410 25 0 0 0 0 0\n").unwrap();
        let busy = later.busy_since(earlier).unwrap();
        assert!((busy - 0.75).abs() < 1e-9, "{busy}");
        assert_eq!(later.busy_since(later), None, "no tick passed");
        let idle_went_back = CpuTimes::parse("cpu  200 0 75 819 55 0 0 0 0 0\n").unwrap();
        assert_eq!(idle_went_back.busy_since(later), None, "a counter that went back is no reading");
        assert_eq!(CpuTimes::parse("intr 1 2 3\n"), None);
        assert_eq!(CpuTimes::parse("cpu 1 x 3 4 5\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_gives_the_load() {
        assert!(CpuTimes::read().is_some());
    }
}
