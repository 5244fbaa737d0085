//! Admission: the point of sale refuses, at the door, what it could not
//! finish within the saga deadline, instead of accepting it to expire.
//!
//! Every 200 ms a task reads two figures from the order read model (so they
//! hold for every instance of the order service alike): the open orders
//! (every status but the terminal ones, compensating included, counted on
//! the status index) and how many orders reached a terminal status in the
//! last 5 s (the drain rate). A new
//! order waits behind the open ones: at that rate it would be done in
//! `open / rate` seconds. When that passes a third of the saga deadline, `POST
//! /orders` answers 503 with `Retry-After` and writes nothing. The rate is
//! never taken below [`FLOOR_RATE`]: a quiet or cold system measures what
//! little came in, not what it can do, and must still take a burst.
//!
//! That bounds the mean wait, not the slowest: some orders wait far longer
//! than the mean (a partition behind the others, a service's pause). So the
//! door also reads the oldest order still in a forward status (the first of
//! the due index: it is due at its deadline) and refuses while that order
//! has been open for more than the same third of the deadline, as long as
//! the backlog is large enough to be load ([`MIN_BACKLOG`]): one order
//! stuck on a stopped service does not close the door.

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

/// The open orders below which the age of the oldest does not close the
/// door: a few orders waiting on a stopped service are not load, and the
/// deadline deals with them.
pub const MIN_BACKLOG: u64 = 200;

/// The statuses of an order still in its saga.
const OPEN: [&str; 5] = ["PLACED", "VALIDATED", "RESERVED", "PAID", "COMPENSATING"];
/// The statuses it ends in.
const ENDED: [&str; 3] = ["COMPLETED", "REJECTED", "CANCELLED"];

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
    /// How long the oldest order in a forward status has been open, seconds.
    pub oldest_secs: f64,
    /// Seconds until the backlog should be back under the bound.
    pub retry_after_secs: u64,
}

/// What the door reads: the backlog, how fast it drains, how old its
/// oldest order is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    /// Open orders (placed here since the last reading included).
    pub open: u64,
    /// Ended per second lately (0: none measured).
    pub rate: f64,
    /// Seconds the oldest order in a forward status has been open (0: none).
    pub oldest_secs: f64,
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
/// has the oldest open order waited less than that? `Err` carries the
/// refusal.
pub fn admit(backlog: Backlog, bound_secs: f64) -> Result<(), Refusal> {
    let Backlog { open, rate, oldest_secs } = backlog;
    // A quiet system drains slowly because little comes in, not because it
    // cannot do more: below the floor, the floor is the rate.
    let rate = rate.max(FLOOR_RATE);
    let over_mean = (open as f64 - rate * bound_secs) / rate;
    let too_old = open >= MIN_BACKLOG && oldest_secs > bound_secs;
    if over_mean <= 0.0 && !too_old {
        return Ok(());
    }
    // Too old with the mean within bounds: the slow part needs a moment.
    let retry_after_secs = over_mean.ceil().clamp(1.0, 60.0) as u64;
    Err(Refusal { open, rate, oldest_secs, retry_after_secs })
}

impl Admission {
    /// Starts reading `store` on the current runtime; the reading stops when
    /// the last clone is dropped. Orders are refused when they would wait
    /// more than a third of `deadline` (a mean: the slowest wait longer).
    pub fn start(store: EventStore, deadline: Duration) -> Self {
        let shared = Arc::new(Shared {
            figures: Mutex::new(Backlog::default()),
            placed_since: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            bound_secs: deadline.as_secs_f64() / 3.0,
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

/// How long the oldest order in a forward status has been open, seconds (0
/// when there is none): the first document of the due index is due at its
/// deadline, `deadline` after it was placed.
async fn oldest_open_secs(store: &EventStore, deadline: Duration) -> Result<f64, udders_eventstore::StoreError> {
    let far = clock::now().plus_micros(i64::MAX / 4);
    let Some(key) = store.due_documents(Order::VIEW, far, 1).await?.into_iter().next() else { return Ok(0.0) };
    let Some(due) = store.document(Order::VIEW, &key).await?.and_then(|d| d.due) else { return Ok(0.0) };
    let deadline_us = i64::try_from(deadline.as_micros()).unwrap_or(i64::MAX);
    let open_us = clock::now().micros() - (due.micros() - deadline_us);
    Ok((open_us.max(0) as f64) / 1e6)
}

async fn read(store: EventStore, shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(EVERY).await;
        let Some(shared) = shared.upgrade() else { return };
        let since = clock::now().plus_micros(-i64::try_from(RATE_WINDOW.as_micros()).unwrap_or(0));
        let placed = shared.placed_since.load(Ordering::Relaxed);
        let open = store.count_documents_tagged(Order::VIEW, &OPEN, None).await;
        let ended = store.count_documents_tagged(Order::VIEW, &ENDED, Some(since)).await;
        let oldest = oldest_open_secs(&store, shared.deadline).await;
        match (open, ended, oldest) {
            (Ok(open), Ok(ended), Ok(oldest_secs)) => {
                if let Ok(mut figures) = shared.figures.lock() {
                    *figures = Backlog { open, rate: ended as f64 / RATE_WINDOW.as_secs_f64(), oldest_secs };
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

    fn backlog(open: u64, rate: f64, oldest_secs: f64) -> Backlog {
        Backlog { open, rate, oldest_secs }
    }

    #[test]
    fn an_order_is_admitted_while_the_backlog_drains_within_the_bound() {
        // 15 s of bound at 200/s: up to 3,000 open orders.
        assert_eq!(admit(backlog(3_000, 200.0, 5.0), 15.0), Ok(()));
        let refusal = admit(backlog(3_400, 200.0, 5.0), 15.0).unwrap_err();
        assert_eq!((refusal.open, refusal.retry_after_secs), (3_400, 2));
        // No rate yet, or a quiet system's: the floor rate.
        assert_eq!(admit(backlog(1_500, 0.0, 0.0), 15.0), Ok(()));
        assert!(admit(backlog(1_501, 0.0, 0.0), 15.0).is_err());
        assert_eq!(admit(backlog(1_500, 1.0, 0.0), 15.0), Ok(()), "a burst after a quiet minute is taken");
        assert_eq!(admit(backlog(1_000_000, 1.0, 0.0), 15.0).unwrap_err().retry_after_secs, 60);
    }

    #[test]
    fn an_order_is_refused_while_the_oldest_open_one_has_waited_past_the_bound() {
        let cases = [
            (backlog(1_000, 400.0, 15.1), false, "the mean is 2.5 s, but the oldest has waited past 15 s"),
            (backlog(1_000, 400.0, 14.9), true, "the oldest within the bound"),
            (backlog(MIN_BACKLOG - 1, 400.0, 29.0), true, "a few stuck orders are not load"),
            (backlog(MIN_BACKLOG, 400.0, 29.0), false, "but a backlog with an old head is"),
            (backlog(0, 0.0, 0.0), true, "nothing open"),
        ];
        for (backlog, admitted, why) in cases {
            assert_eq!(admit(backlog, 15.0).is_ok(), admitted, "{why}");
        }
        let refusal = admit(backlog(1_000, 400.0, 20.0), 15.0).unwrap_err();
        assert_eq!((refusal.retry_after_secs, refusal.oldest_secs), (1, 20.0), "a moment, while the mean is fine");
    }
}
