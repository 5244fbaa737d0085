//! The order service's I/O: the point-of-sale API and its intake (orders
//! placed many to a transaction), the handler that follows
//! every saga event (`**`) into the order's lifecycle and timeline, the saga
//! deadline sweeper, and the order read models. The lifecycle rules are in
//! `udders-order-domain`.
//!
//! HTTP: `POST /orders` (with `Idempotency-Key`; refused with 503 at
//! capacity, [`admission`]), `GET /orders/{order_id}`
//! (with what it waits on and its dead letters), `GET /orders/{order_id}/events`
//! (its own stream), `POST /orders/{order_id}/cancel`, `GET /orders`,
//! `GET /orders/stats`, `GET /orders/stuck` ([`progress`]).

pub mod admission;
pub mod api;
pub mod intake;
pub mod prices;
pub mod progress;

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use udders_contracts::Service;
use udders_eventstore::{EventStore, Loaded, StoreError, Tx};
use udders_kernel::{Decider, ReadModel, Timestamp};
use udders_messaging::{Handler, HandlerError, Incoming};
use udders_order_domain::price::Price;
use udders_order_domain::{Observation, Order, OrderCommand, OrderError, OrderEvent, OrderState, react};
use udders_runtime::live::{self, LiveEvent};
use udders_runtime::replay::rebuild;
use udders_runtime::{Cause, Outbound, clock, integration, record_viewed, route};

pub use api::{OrderApi, admin_routes, routes};
/// This service's route and subscription, declared in its domain crate.
pub use udders_order_domain::{Route, SUBSCRIPTIONS};

/// This service.
pub const SERVICE: Service = Service::Order;

/// The default saga deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// Follows every saga event into the order it belongs to.
#[derive(Debug, Clone)]
pub struct OrderHandler {
    outbound: Outbound,
}

impl OrderHandler {
    /// A handler publishing through `outbound`.
    pub fn new(outbound: Outbound) -> Self {
        Self { outbound }
    }
}

impl Handler for OrderHandler {
    async fn handle(&self, tx: &mut Tx, incoming: &Incoming) -> Result<(), HandlerError> {
        let route: Route = route(incoming, SERVICE)?;
        let event = integration(incoming)?;
        let envelope = &incoming.envelope;
        // Reference data (prices, stock, limits) belongs to no order: the
        // live feed shows it, no order records it.
        let Some(step) = react(route, &event) else {
            let seen = LiveEvent {
                event_id: envelope.id.to_string(),
                subject: envelope.subject.to_string(),
                order_id: String::new(),
                time: envelope.time.to_string(),
                source: envelope.source.clone(),
                status: None,
            };
            live::feed().announce_on_commit(tx, seen, envelope.time);
            return Ok(());
        };
        let order_id = event.order_id().to_owned();
        let observation = Observation {
            event_id: envelope.id.to_string(),
            subject: envelope.subject.to_string(),
            source: envelope.source.clone(),
            time: envelope.time,
            step,
            causation_id: envelope.causation_id.map(|id| id.to_string()),
            payload: incoming.payload.clone(),
        };
        let mut order = tx.load::<Order>(&order_id).await?;
        let events = Order::decide(&order.state, OrderCommand::Observe(observation, clock::now()))
            .map_err(|e| HandlerError::permanent(format!("order {order_id}: {e}")))?;
        record_order(tx, &mut order, events, Cause::of(incoming), &self.outbound).await?;
        let seen = LiveEvent {
            event_id: envelope.id.to_string(),
            subject: envelope.subject.to_string(),
            order_id,
            time: envelope.time.to_string(),
            source: envelope.source.clone(),
            status: Some(order.state.status.as_str().to_owned()),
        };
        live::feed().announce_on_commit(tx, seen, envelope.time);
        Ok(())
    }
}

/// Records an order's events, publishes `order/init`, `order/cancelled`
/// and `order/expired`, and folds them into the order read model.
pub(crate) async fn record_order(
    tx: &mut Tx,
    order: &mut Loaded<Order>,
    events: Vec<OrderEvent>,
    cause: Cause,
    outbound: &Outbound,
) -> Result<(), StoreError> {
    let id = order.stream.id().to_owned();
    let was_terminal = order.state.status.is_terminal();
    record_viewed(tx, order, events, &cause, outbound, |e| e.integration(&id)).await?;
    // The saga ends here: COMPLETED (shipped), REJECTED or CANCELLED.
    if let (false, true, Some(placement)) = (was_terminal, order.state.status.is_terminal(), &order.state.placement) {
        let took = order.state.updated_at.micros().saturating_sub(placement.placed_at.micros()).max(0);
        let (status, took) = (order.state.status.as_str(), Duration::from_micros(took as u64));
        udders_runtime::metrics::saga().saga_concluded(tx, status, took);
        live::feed().saga_ended_on_commit(tx, status, took);
    }
    Ok(())
}

/// The cause of an order's own follow-up events (cancel, expiry): its saga.
pub(crate) fn own_cause(order: &Loaded<Order>, now: Timestamp) -> Option<Cause> {
    let placement = order.state.placement.as_ref()?;
    let mut cause = Cause::new_saga(
        api::product_level(&placement.order.items),
        placement.order.country.clone(),
        placement.order.channel.clone(),
    );
    cause.correlation_id = placement.correlation_id;
    cause.time = now;
    Some(cause)
}

/// Calls off every unfinished order whose deadline has passed; returns how many.
pub async fn expire_overdue(store: &EventStore, outbound: &Outbound) -> Result<usize, StoreError> {
    let now = clock::now();
    let mut expired = 0;
    // The order read model marks every open order due at its deadline.
    for order_id in store.due_documents(Order::VIEW, now, 500).await? {
        let mut tx = store.begin().await?;
        let mut order = tx.load::<Order>(&order_id).await?;
        let events = Order::decide(&order.state, OrderCommand::Expire { at: now }).unwrap_or_default();
        if let (false, Some(cause)) = (events.is_empty(), own_cause(&order, now)) {
            // Another instance's sweep (or the saga itself) may get there
            // first: that order is then not ours to expire.
            let done = match record_order(&mut tx, &mut order, events, cause, outbound).await {
                Ok(()) => tx.commit().await,
                Err(error) => Err(error),
            };
            match done {
                Ok(()) => expired += 1,
                Err(StoreError::Conflict { .. }) => continue,
                // One order that cannot be expired must not hold up the others.
                Err(error) => tracing::warn!(%order_id, %error, "cannot expire an overdue order; trying the next"),
            }
        }
    }
    Ok(expired)
}

/// Runs [`expire_overdue`] every `every` until `cancel`.
pub async fn run_deadline_sweeper(store: EventStore, outbound: Outbound, every: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match expire_overdue(&store, &outbound).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "orders past their saga deadline called off"),
            Err(error) => tracing::warn!(%error, "the deadline sweep failed; trying again"),
        }
    }
}

/// Drops and rebuilds this service's read models from its events.
pub async fn replay(store: &EventStore) -> Result<usize, StoreError> {
    let mut tx = store.begin().await?;
    tx.clear_documents().await?;
    let folded = rebuild::<Order>(store, &mut tx).await? + rebuild::<Price>(store, &mut tx).await?;
    tx.commit().await?;
    Ok(folded)
}

/// One command on one order, in a transaction of its own. `decide` gives
/// the events and their cause for the order as loaded. A conflict at commit
/// (the saga moved the order on, or a request with the same
/// `Idempotency-Key` placed it meanwhile) reloads and decides again on the
/// newer state, up to 10 attempts. `fresh`: the order id was just generated
/// here, so the first attempt starts from an empty stream without a read.
pub(crate) async fn decide_on_order(
    store: &EventStore,
    outbound: &Outbound,
    order_id: &str,
    fresh: bool,
    mut decide: impl FnMut(&Loaded<Order>) -> Result<(Vec<OrderEvent>, Cause), udders_runtime::http::Problem>,
) -> Result<OrderState, udders_runtime::http::Problem> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut tx = store.begin().await?;
        let mut order =
            if fresh && attempts == 1 { tx.new_stream::<Order>(order_id) } else { tx.load::<Order>(order_id).await? };
        let (events, cause) = decide(&order)?;
        let done = match record_order(&mut tx, &mut order, events, cause, outbound).await {
            Ok(()) => tx.commit().await,
            Err(e) => Err(e),
        };
        match done {
            Ok(()) => return Ok(order.state),
            Err(StoreError::Conflict { .. }) if attempts < 10 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// How an order's refusal of a command is answered over HTTP.
pub(crate) fn refusal(error: OrderError) -> udders_runtime::http::Problem {
    use udders_runtime::http::Problem;
    match error {
        OrderError::NotFound => Problem::not_found(error.to_string()),
        OrderError::AlreadyShipped | OrderError::AlreadyEnding(_) => Problem::conflict(error.to_string()),
    }
}

mod module;

pub use module::{MODULE, Module};
