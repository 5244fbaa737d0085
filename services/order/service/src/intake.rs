//! The intake: where accepted orders are placed, many to a transaction.
//!
//! `POST /orders` hands its placement to one task per process and waits for
//! the answer. The task takes every placement already waiting (up to
//! [`MAX_BATCH`]) into one transaction, commits, then answers each: a
//! request is answered 202 only once its order is committed, and under load
//! a hundred orders cost one commit instead of a hundred. When the shared
//! transaction fails (a conflict: two instances placing under one
//! `Idempotency-Key`), each placement of the batch is placed again on its
//! own, reloading on conflict.
//!
//! The intake times each placement in two parts, for `/metrics`
//! (`udders_intake_duration_seconds{phase}`): `waiting`, from the hand-over
//! until its transaction holds the order store's writer (the intake's queue
//! and the writer's), and `placing`, from there to the commit. The order
//! store's one writer also serves the order service's consumer, so when
//! `waiting` grows while `placing` stays short, that writer is the
//! bottleneck (docs/benchmarks.md, seventeenth measurement). A batch placed
//! again one by one is timed by its first, shared attempt.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use udders_eventstore::{EventStore, Loaded, StoreError, Tx};
use udders_kernel::Decider;
use udders_messaging::metrics::{HOP_BOUNDS, Histogram};
use udders_order_domain::{Order, OrderCommand, OrderState, Placement};
use udders_runtime::http::Problem;
use udders_runtime::{Cause, Outbound};

use crate::{decide_on_order, record_order, refusal};

/// Placements in one transaction at most.
pub const MAX_BATCH: usize = 256;

/// One placement waiting for the intake.
#[derive(Debug)]
struct Placing {
    placement: Placement,
    cause: Cause,
    /// True for an order id this process just generated: no one else can
    /// have placed it, so there is nothing to read first.
    fresh: bool,
    reply: oneshot::Sender<Result<OrderState, Problem>>,
    /// When the request handed it to the intake.
    handed_at: Instant,
}

/// The way into the intake task (cheap to clone).
#[derive(Debug, Clone)]
pub struct Intake {
    queue: mpsc::Sender<Placing>,
    times: Arc<IntakeTimes>,
}

/// How long placements took, in the two phases of the module's doc.
#[derive(Debug)]
struct IntakeTimes {
    waiting: Histogram,
    placing: Histogram,
}

impl IntakeTimes {
    /// Observes every placement of a batch whose transaction held the
    /// writer at `held` and committed (or failed) at `done`.
    fn observe(&self, batch: &[Placing], held: Instant, done: Instant) {
        for placing in batch {
            self.waiting.observe(held.saturating_duration_since(placing.handed_at));
            self.placing.observe(done.saturating_duration_since(held));
        }
    }
}

impl Intake {
    /// Starts the intake task on the current runtime; it ends when the last
    /// [`Intake`] is dropped.
    pub fn start(store: EventStore, outbound: Outbound) -> Self {
        let (queue, waiting) = mpsc::channel(4 * MAX_BATCH);
        let times = Arc::new(IntakeTimes { waiting: Histogram::new(HOP_BOUNDS), placing: Histogram::new(HOP_BOUNDS) });
        tokio::spawn(run(store, outbound, waiting, times.clone()));
        Self { queue, times }
    }

    /// Appends `udders_intake_duration_seconds{phase}` in Prometheus text,
    /// its `# HELP` and `# TYPE` lines included.
    pub fn write_prometheus(&self, out: &mut String) {
        let name = "udders_intake_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} One placement at the point of sale: waiting (the intake's queue and the order store's \
             writer), then placing (its transaction, to the commit)."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        self.times.waiting.write_prometheus(out, name, "phase=\"waiting\"");
        self.times.placing.write_prometheus(out, name, "phase=\"placing\"");
    }

    /// Places an order (or finds it placed) and returns its state once
    /// committed.
    pub async fn place(&self, placement: Placement, cause: Cause, fresh: bool) -> Result<OrderState, Problem> {
        let (reply, answer) = oneshot::channel();
        let gone = || Problem::unavailable("the order intake has stopped");
        self.queue
            .send(Placing { placement, cause, fresh, reply, handed_at: Instant::now() })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn run(store: EventStore, outbound: Outbound, mut waiting: mpsc::Receiver<Placing>, times: Arc<IntakeTimes>) {
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(more) = waiting.try_recv()
        {
            batch.push(more);
        }
        let mut held = None;
        let placed = place_together(&store, &outbound, &batch, &mut held).await;
        let done = Instant::now();
        times.observe(&batch, held.unwrap_or(done), done);
        match placed {
            Ok(states) => {
                for (placing, state) in batch.into_iter().zip(states) {
                    let _ = placing.reply.send(state);
                }
            }
            Err(error) => {
                tracing::debug!(%error, placements = batch.len(), "placing together failed; placing one by one");
                for placing in batch {
                    let placed = place_alone(&store, &outbound, &placing).await;
                    let _ = placing.reply.send(placed);
                }
            }
        }
    }
}

/// The order a placement is for, as this transaction sees it.
async fn order_of(tx: &mut Tx, placing: &Placing) -> Result<Loaded<Order>, StoreError> {
    let id = &placing.placement.order.order_id;
    if placing.fresh { Ok(tx.new_stream::<Order>(id)) } else { tx.load::<Order>(id).await }
}

/// Places every placement of `batch` in one transaction.
async fn place_together(
    store: &EventStore,
    outbound: &Outbound,
    batch: &[Placing],
    held: &mut Option<Instant>,
) -> Result<Vec<Result<OrderState, Problem>>, StoreError> {
    let mut tx = store.begin().await?;
    *held = Some(Instant::now());
    let mut states = Vec::with_capacity(batch.len());
    for placing in batch {
        let mut order = order_of(&mut tx, placing).await?;
        match Order::decide(&order.state, OrderCommand::Place(placing.placement.clone())) {
            Ok(events) => {
                record_order(&mut tx, &mut order, events, placing.cause.clone(), outbound).await?;
                states.push(Ok(order.state));
            }
            Err(refused) => states.push(Err(refusal(refused))),
        }
    }
    tx.commit().await?;
    Ok(states)
}

/// Places one placement on its own (see [`decide_on_order`]).
async fn place_alone(store: &EventStore, outbound: &Outbound, placing: &Placing) -> Result<OrderState, Problem> {
    let placement = &placing.placement;
    decide_on_order(store, outbound, &placement.order.order_id, placing.fresh, |order| {
        let events = Order::decide(&order.state, OrderCommand::Place(placement.clone())).map_err(refusal)?;
        Ok((events, placing.cause.clone()))
    })
    .await
}
