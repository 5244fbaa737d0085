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
    /// Seconds until the backlog should be back under the bound.
    pub retry_after_secs: u64,
}

#[derive(Debug, Default)]
struct Figures {
    /// Open orders at the last reading.
    open: u64,
    /// Ended per second at the last reading (0: none measured).
    rate: f64,
}

/// The door's state, shared by the routes and the task that reads it.
#[derive(Debug)]
struct Shared {
    figures: Mutex<Figures>,
    /// Orders placed here since the last reading (the reading counts them after).
    placed_since: AtomicU64,
    /// Refused since start.
    refused: AtomicU64,
    bound_secs: f64,
}

/// The admission check of one order service process (cheap to clone).
#[derive(Debug, Clone)]
pub struct Admission {
    shared: Arc<Shared>,
}

/// The pure rule: with `open` orders ahead draining at `rate` per second, is
/// a new one done within `bound_secs`? `Err` carries the refusal.
pub fn admit(open: u64, rate: f64, bound_secs: f64) -> Result<(), Refusal> {
    // A quiet system drains slowly because little comes in, not because it
    // cannot do more: below the floor, the floor is the rate.
    let rate = rate.max(FLOOR_RATE);
    let wait = open as f64 / rate;
    if wait <= bound_secs {
        return Ok(());
    }
    let over = (open as f64 - rate * bound_secs) / rate;
    Err(Refusal { open, rate, retry_after_secs: over.ceil().clamp(1.0, 60.0) as u64 })
}

impl Admission {
    /// Starts reading `store` on the current runtime; the reading stops when
    /// the last clone is dropped. Orders are refused when they would wait
    /// more than a third of `deadline` (a mean: the slowest wait longer).
    pub fn start(store: EventStore, deadline: Duration) -> Self {
        let shared = Arc::new(Shared {
            figures: Mutex::new(Figures::default()),
            placed_since: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            bound_secs: deadline.as_secs_f64() / 3.0,
        });
        tokio::spawn(read(store, Arc::downgrade(&shared)));
        Self { shared }
    }

    /// `Ok` to accept one more order now; counts it as placed.
    pub fn check(&self) -> Result<(), Refusal> {
        let (open, rate) = match self.shared.figures.lock() {
            Ok(f) => (f.open, f.rate),
            Err(_) => (0, 0.0),
        };
        let placed = self.shared.placed_since.load(Ordering::Relaxed);
        match admit(open + placed, rate, self.shared.bound_secs) {
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

async fn read(store: EventStore, shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(EVERY).await;
        let Some(shared) = shared.upgrade() else { return };
        let since = clock::now().plus_micros(-i64::try_from(RATE_WINDOW.as_micros()).unwrap_or(0));
        let placed = shared.placed_since.load(Ordering::Relaxed);
        let open = store.count_documents_tagged(Order::VIEW, &OPEN, None).await;
        let ended = store.count_documents_tagged(Order::VIEW, &ENDED, Some(since)).await;
        match (open, ended) {
            (Ok(open), Ok(ended)) => {
                if let Ok(mut figures) = shared.figures.lock() {
                    *figures = Figures { open, rate: ended as f64 / RATE_WINDOW.as_secs_f64() };
                }
                // What was placed before this reading is in it now.
                shared.placed_since.fetch_sub(placed, Ordering::Relaxed);
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::debug!(%error, "reading the order backlog failed; keeping the last figures");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_admitted_while_the_backlog_drains_within_the_bound() {
        // 15 s of bound at 200/s: up to 3,000 open orders.
        assert_eq!(admit(3_000, 200.0, 15.0), Ok(()));
        let refusal = admit(3_400, 200.0, 15.0).unwrap_err();
        assert_eq!((refusal.open, refusal.retry_after_secs), (3_400, 2));
        // No rate yet, or a quiet system's: the floor rate.
        assert_eq!(admit(1_500, 0.0, 15.0), Ok(()));
        assert!(admit(1_501, 0.0, 15.0).is_err());
        assert_eq!(admit(1_500, 1.0, 15.0), Ok(()), "a burst after a quiet minute is taken");
        assert_eq!(admit(1_000_000, 1.0, 15.0).unwrap_err().retry_after_secs, 60);
    }
}
