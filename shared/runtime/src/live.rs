//! The live feed the console reads: every saga event the order service
//! follows, announced when its transaction commits, to any number of
//! listeners (a bounded broadcast: a slow listener misses events and is told
//! how many, it never holds the service back); per-subject counts and last
//! sight; and the sagas that ended in the last minute, for completed/s and
//! p50/p99 POST-to-terminal.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::broadcast;
use udders_eventstore::Tx;
use udders_kernel::Timestamp;

/// How long the board's rates and percentiles look back.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Events held for listeners that fall behind.
const BACKLOG: usize = 4096;

/// One saga event, as the console's live views show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveEvent {
    /// `ce_id`.
    pub event_id: String,
    /// The taxonomy subject.
    pub subject: String,
    /// The order (the record key).
    pub order_id: String,
    /// `ce_time`, RFC 3339.
    pub time: String,
    /// The publisher (`ce_source`).
    pub source: String,
    /// The order's status once the event is folded in.
    pub status: Option<String>,
}

/// Count and last sight of one event type (`domain/action/version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// Events seen since start.
    pub count: u64,
    /// The newest one's `ce_time`.
    pub last_seen: Timestamp,
}

/// Sagas ended in the last [`WINDOW`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recent {
    /// Ended `COMPLETED` per second over the window (or since start, when shorter).
    pub completed_per_sec: f64,
    /// Median POST-to-terminal of every saga ended in the window, milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile, milliseconds.
    pub p99_ms: Option<f64>,
    /// Sagas ended in the window, by status.
    pub ended: BTreeMap<String, u64>,
    /// The window, seconds.
    pub window_secs: u64,
}

/// The feed. One per process: [`feed`].
#[derive(Debug)]
pub struct LiveFeed {
    events: broadcast::Sender<LiveEvent>,
    seen: Mutex<BTreeMap<String, Seen>>,
    ended: Mutex<VecDeque<(Instant, &'static str, Duration)>>,
    started: Instant,
}

static FEED: LazyLock<LiveFeed> = LazyLock::new(|| LiveFeed {
    events: broadcast::channel(BACKLOG).0,
    seen: Mutex::new(BTreeMap::new()),
    ended: Mutex::new(VecDeque::new()),
    started: Instant::now(),
});

/// This process's live feed.
pub fn feed() -> &'static LiveFeed {
    &FEED
}

/// The `domain/action/version` of a subject.
fn event_type(subject: &str) -> String {
    subject.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")
}

impl LiveFeed {
    /// Announces `event` once `tx` commits.
    pub fn announce_on_commit(&'static self, tx: &mut Tx, event: LiveEvent, time: Timestamp) {
        tx.on_commit(move || self.announce(event, time));
    }

    /// Announces `event` now.
    pub fn announce(&self, event: LiveEvent, time: Timestamp) {
        if let Ok(mut seen) = self.seen.lock() {
            let entry = seen.entry(event_type(&event.subject)).or_insert(Seen { count: 0, last_seen: time });
            entry.count += 1;
            entry.last_seen = entry.last_seen.max(time);
        }
        // No listener is not an error.
        let _ = self.events.send(event);
    }

    /// Notes a saga that ended `status` after `took`, once `tx` commits.
    pub fn saga_ended_on_commit(&'static self, tx: &mut Tx, status: &'static str, took: Duration) {
        tx.on_commit(move || self.saga_ended(status, took));
    }

    /// Notes a saga that ended `status` after `took`.
    pub fn saga_ended(&self, status: &'static str, took: Duration) {
        if let Ok(mut ended) = self.ended.lock() {
            let now = Instant::now();
            ended.push_back((now, status, took));
            while ended.front().is_some_and(|(at, ..)| now.duration_since(*at) > WINDOW) {
                ended.pop_front();
            }
        }
    }

    /// A new listener: every event announced from now on (a listener more
    /// than 4,096 events behind skips ahead and is told how many it missed).
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.events.subscribe()
    }

    /// Count and last sight per event type.
    pub fn seen(&self) -> BTreeMap<String, Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Rates and percentiles of the sagas ended in the last minute.
    pub fn recent(&self) -> Recent {
        let now = Instant::now();
        let mut ended_by: BTreeMap<String, u64> = BTreeMap::new();
        let mut took: Vec<f64> = Vec::new();
        if let Ok(ended) = self.ended.lock() {
            for (at, status, duration) in ended.iter() {
                if now.duration_since(*at) <= WINDOW {
                    *ended_by.entry((*status).to_owned()).or_default() += 1;
                    took.push(duration.as_secs_f64() * 1000.0);
                }
            }
        }
        took.sort_by(f64::total_cmp);
        let percentile = |p: f64| -> Option<f64> {
            let last = took.len().checked_sub(1)?;
            let at = ((last as f64) * p).round() as usize;
            took.get(at.min(last)).copied()
        };
        let span = now.duration_since(self.started).min(WINDOW).as_secs_f64().max(1.0);
        Recent {
            completed_per_sec: ended_by.get("COMPLETED").copied().unwrap_or(0) as f64 / span,
            p50_ms: percentile(0.50),
            p99_ms: percentile(0.99),
            ended: ended_by,
            window_secs: WINDOW.as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(subject: &str) -> LiveEvent {
        LiveEvent {
            event_id: "e".into(),
            subject: subject.into(),
            order_id: "o".into(),
            time: "t".into(),
            source: "/udders/order".into(),
            status: None,
        }
    }

    #[test]
    fn listeners_get_what_is_announced_after_they_subscribe_and_counts_go_by_event_type() {
        let feed = LiveFeed {
            events: broadcast::channel(4).0,
            seen: Mutex::new(BTreeMap::new()),
            ended: Mutex::new(VecDeque::new()),
            started: Instant::now(),
        };
        feed.announce(event("order/init/1.1/icecream/udders/mango/sg/web"), Timestamp::from_micros(1));
        let mut listener = feed.subscribe();
        feed.announce(event("order/init/1.1/icecream/udders/vanilla/my/pos"), Timestamp::from_micros(5));
        assert_eq!(listener.try_recv().unwrap().subject, "order/init/1.1/icecream/udders/vanilla/my/pos");
        assert!(listener.try_recv().is_err());
        let seen = feed.seen();
        assert_eq!(seen["order/init/1.1"], Seen { count: 2, last_seen: Timestamp::from_micros(5) });
    }

    #[test]
    fn percentiles_come_from_the_sagas_ended_in_the_window() {
        let feed = LiveFeed {
            events: broadcast::channel(4).0,
            seen: Mutex::new(BTreeMap::new()),
            ended: Mutex::new(VecDeque::new()),
            started: Instant::now(),
        };
        assert_eq!((feed.recent().p50_ms, feed.recent().p99_ms), (None, None));
        for ms in 1..=100 {
            feed.saga_ended(if ms % 4 == 0 { "REJECTED" } else { "COMPLETED" }, Duration::from_millis(ms));
        }
        let recent = feed.recent();
        assert_eq!((recent.p50_ms, recent.p99_ms), (Some(51.0), Some(99.0)));
        assert_eq!((recent.ended["COMPLETED"], recent.ended["REJECTED"]), (75, 25));
        assert!(recent.completed_per_sec >= 75.0 / 60.0, "{recent:?}");
    }
}
