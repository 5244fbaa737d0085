//! Admission: the point of sale refuses, at the door, what it could not
//! finish within the saga deadline, instead of accepting it to expire.
//!
//! Every 200 ms a task reads two figures from the order read model (so they
//! hold for every instance of the order service alike): the open orders
//! (every status but the terminal ones, compensating included, counted on
//! the status index) and how many orders reached a terminal status in the
//! last 5 s (the drain rate). A new
//! order waits behind the open ones: at that rate it would be done in
//! `open / rate` seconds. When that passes the admission wait (a setting,
//! by default a fifteenth of the saga deadline: [`default_wait`]), `POST
//! /orders` answers 503 with `Retry-After` and writes nothing. The rate is
//! never taken below [`FLOOR_RATE`]: a quiet or cold system measures what
//! little came in, not what it can do, and must still take a burst.
//!
//! That bounds the mean wait, not the slowest: some orders wait far longer
//! than the mean (a partition behind the others, a service's pause). So the
//! door also counts the orders in a forward status that have waited longer
//! than the same wait and not yet reached their deadline (on the due
//! index: an open order is due at its deadline), and refuses while they
//! are [`MIN_AGED`] or more and at least one in a hundred of the open
//! orders. A few orders stuck on a stopped service, or one the sweeper
//! cannot call off, do not close the door: the deadline and the alerts deal
//! with them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use udders_eventstore::EventStore;
use udders_kernel::ReadModel;
use udders_order_domain::Order;
use udders_runtime::clock;

/// The least drain rate assumed, orders per second: a measured rate below
/// it says more about the demand than about the capacity.
pub const FLOOR_RATE: f64 = 100.0;

/// The fewest orders waiting past the bound that close the door (and at
/// least one in a hundred of the open ones): fewer are stragglers, not load.
pub const MIN_AGED: u64 = 10;

/// The statuses of an order still in its saga.
const OPEN: [&str; 5] = ["PLACED", "VALIDATED", "RESERVED", "PAID", "COMPENSATING"];
/// The statuses it ends in.
const ENDED: [&str; 3] = ["COMPLETED", "REJECTED", "CANCELLED"];

/// The admission wait when none is set: a fifteenth of the saga deadline
/// (2 s of the default 30 s). Every order admitted waits behind this
/// backlog and every one of them is held in memory meanwhile, so the bound
/// is the least that keeps the pipeline full. At twice and three times this
/// machine's capacity a fifteenth completed as many orders per second as a
/// tenth, with a p99 about 0.7 of a tenth's and peak RSS under 200 MB; a
/// tenth completed as many as a third, with a p99 of 3.5 s against 11 s; a
/// thirtieth (1 s) left it idle between refusals, since `Retry-After`
/// counts whole seconds (ADR 0013).
pub fn default_wait(deadline: Duration) -> Duration {
    deadline / 15
}

/// How often the figures are read.
const EVERY: Duration = Duration::from_millis(200);

/// How far back the drain rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Why an order is refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    /// Open orders now.
    pub open: u64,
    /// Orders ended per second lately.
    pub rate: f64,
    /// Orders in a forward status that have waited past the bound.
    pub aged: u64,
    /// Seconds until the backlog should be back under the bound.
    pub retry_after_secs: u64,
    /// The bound: the admission wait, seconds.
    pub wait_secs: f64,
}

/// What the door reads: the backlog, how fast it drains, how many of its
/// orders have waited too long already.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    /// Open orders (placed here since the last reading included).
    pub open: u64,
    /// Ended per second lately (0: none measured).
    pub rate: f64,
    /// Orders in a forward status that have waited longer than the bound
    /// and not yet reached their deadline.
    pub aged: u64,
}

/// The door's state, shared by the routes and the task that reads it.
#[derive(Debug)]
struct Shared {
    /// The last reading.
    figures: Mutex<Backlog>,
    /// Orders placed here since the last reading (the reading counts them after).
    placed_since: AtomicU64,
    /// Refused since start.
    refused: AtomicU64,
    bound_secs: f64,
    deadline: Duration,
}

/// The admission check of one order service process (cheap to clone).
#[derive(Debug, Clone)]
pub struct Admission {
    shared: Arc<Shared>,
}

/// The pure rule: with `backlog.open` orders ahead draining at
/// `backlog.rate` per second, is a new one done within `bound_secs`, and
/// are the orders that already waited longer than that few? `Err` carries
/// the refusal.
pub fn admit(backlog: Backlog, bound_secs: f64) -> Result<(), Refusal> {
    let Backlog { open, rate, aged } = backlog;
    // A quiet system drains slowly because little comes in, not because it
    // cannot do more: below the floor, the floor is the rate.
    let rate = rate.max(FLOOR_RATE);
    let over_mean = (open as f64 - rate * bound_secs) / rate;
    let too_many_aged = aged >= MIN_AGED.max(open / 100);
    if over_mean <= 0.0 && !too_many_aged {
        return Ok(());
    }
    // Aged orders with the mean within bounds: the slow part needs a few
    // seconds (a tenth of the bound), not one.
    let floor = if too_many_aged { (bound_secs / 10.0).max(1.0) } else { 1.0 };
    let retry_after_secs = over_mean.ceil().clamp(floor, 60.0) as u64;
    Err(Refusal { open, rate, aged, retry_after_secs, wait_secs: bound_secs })
}

impl Admission {
    /// Starts reading `store` on the current runtime; the reading stops when
    /// the last clone is dropped. Orders are refused when they would wait
    /// more than `wait` (a mean: the slowest wait longer), which is shorter
    /// than `deadline` ([`admission_wait`]).
    pub fn start(store: EventStore, deadline: Duration, wait: Duration) -> Self {
        let shared = Arc::new(Shared {
            figures: Mutex::new(Backlog::default()),
            placed_since: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            bound_secs: wait.as_secs_f64(),
            deadline,
        });
        tokio::spawn(read(store, Arc::downgrade(&shared)));
        Self { shared }
    }

    /// `Ok` to accept one more order now; counts it as placed.
    pub fn check(&self) -> Result<(), Refusal> {
        let mut backlog = match self.shared.figures.lock() {
            Ok(f) => *f,
            Err(_) => Backlog::default(),
        };
        backlog.open += self.shared.placed_since.load(Ordering::Relaxed);
        match admit(backlog, self.shared.bound_secs) {
            Ok(()) => {
                self.shared.placed_since.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(refusal) => {
                self.shared.refused.fetch_add(1, Ordering::Relaxed);
                Err(refusal)
            }
        }
    }

    /// Orders refused since start.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }
}

/// The admission wait: the one set, or [`default_wait`]. It must be more
/// than nothing and less than the saga deadline (the orders that waited
/// longer than it and are not yet due are the door's second rule).
pub fn admission_wait(deadline: Duration, set: Option<Duration>) -> Result<Duration, String> {
    let wait = set.unwrap_or_else(|| default_wait(deadline));
    if wait.is_zero() || wait >= deadline {
        return Err(format!(
            "the admission wait ({wait:?}) must be more than zero and less than the saga deadline ({deadline:?})"
        ));
    }
    Ok(wait)
}

/// The orders in a forward status placed more than `bound_secs` ago whose
/// deadline has not passed yet: an open order is due at its deadline,
/// `deadline` after it was placed, so they are those due within the next
/// `deadline - bound`. One count on the due index; orders past their
/// deadline are the sweeper's (and `UddersSagasStuck`'s), not the door's.
async fn aged_orders(
    store: &EventStore,
    deadline: Duration,
    bound_secs: f64,
) -> Result<u64, udders_eventstore::StoreError> {
    let now = clock::now();
    let left = deadline.saturating_sub(Duration::from_secs_f64(bound_secs));
    store.count_due(Order::VIEW, now, now.plus_micros(i64::try_from(left.as_micros()).unwrap_or(i64::MAX))).await
}

async fn read(store: EventStore, shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(EVERY).await;
        let Some(shared) = shared.upgrade() else { return };
        let since = clock::now().plus_micros(-i64::try_from(RATE_WINDOW.as_micros()).unwrap_or(0));
        let placed = shared.placed_since.load(Ordering::Relaxed);
        let open = store.count_documents_tagged(Order::VIEW, &OPEN, None).await;
        let ended = store.count_documents_tagged(Order::VIEW, &ENDED, Some(since)).await;
        let aged = aged_orders(&store, shared.deadline, shared.bound_secs).await;
        match (open, ended, aged) {
            (Ok(open), Ok(ended), Ok(aged)) => {
                if let Ok(mut figures) = shared.figures.lock() {
                    *figures = Backlog { open, rate: ended as f64 / RATE_WINDOW.as_secs_f64(), aged };
                }
                // What was placed before this reading is in it now.
                shared.placed_since.fetch_sub(placed, Ordering::Relaxed);
            }
            (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                tracing::debug!(%error, "reading the order backlog failed; keeping the last figures");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(open: u64, rate: f64, aged: u64) -> Backlog {
        Backlog { open, rate, aged }
    }

    #[test]
    fn an_order_is_admitted_while_the_backlog_drains_within_the_bound() {
        // 15 s of bound at 200/s: up to 3,000 open orders.
        assert_eq!(admit(backlog(3_000, 200.0, 0), 15.0), Ok(()));
        let refusal = admit(backlog(3_400, 200.0, 0), 15.0).unwrap_err();
        assert_eq!((refusal.open, refusal.retry_after_secs), (3_400, 2));
        // No rate yet, or a quiet system's: the floor rate.
        assert_eq!(admit(backlog(1_500, 0.0, 0), 15.0), Ok(()));
        assert!(admit(backlog(1_501, 0.0, 0), 15.0).is_err());
        assert_eq!(admit(backlog(1_500, 1.0, 0), 15.0), Ok(()), "a burst after a quiet minute is taken");
        assert_eq!(admit(backlog(1_000_000, 1.0, 0), 15.0).unwrap_err().retry_after_secs, 60);
    }

    #[test]
    fn an_order_is_refused_while_orders_that_waited_past_the_bound_are_more_than_stragglers() {
        let cases = [
            (backlog(1_000, 400.0, MIN_AGED), false, "the mean is 2.5 s, but ten orders have waited past 15 s"),
            (backlog(1_000, 400.0, MIN_AGED - 1), true, "fewer are stragglers"),
            (backlog(3_000, 400.0, 29), true, "under one in a hundred of a large backlog"),
            (backlog(3_000, 400.0, 30), false, "one in a hundred"),
            (backlog(12, 400.0, 1), true, "one order stuck on a stopped service does not close the door"),
            (backlog(0, 0.0, 0), true, "nothing open"),
        ];
        for (backlog, admitted, why) in cases {
            assert_eq!(admit(backlog, 15.0).is_ok(), admitted, "{why}");
        }
        let refusal = admit(backlog(1_000, 400.0, 50), 15.0).unwrap_err();
        assert_eq!((refusal.retry_after_secs, refusal.aged), (1, 50), "a tenth of a 15 s bound, rounded down");
        assert_eq!(admit(backlog(1_000, 400.0, 50), 30.0).unwrap_err().retry_after_secs, 3, "a tenth of 30 s");
    }

    #[test]
    fn the_admission_wait_is_a_fifteenth_of_the_deadline_unless_set_and_always_shorter_than_it() {
        let deadline = Duration::from_secs(30);
        assert_eq!(admission_wait(deadline, None), Ok(Duration::from_secs(2)));
        assert_eq!(admission_wait(deadline, Some(Duration::from_secs(3))), Ok(Duration::from_secs(3)));
        assert!(admission_wait(deadline, Some(deadline)).unwrap_err().contains("less than the saga deadline"));
        assert!(admission_wait(deadline, Some(Duration::ZERO)).is_err());
    }
}
