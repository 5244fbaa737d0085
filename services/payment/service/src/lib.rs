//! The payment service's I/O: its handler (collect the validated order and
//! both reservations, charge through the gateway it is given, refund on
//! compensation triggers), its read model and `GET /payments/{order_id}`.
//! The rules are in `udders-payment-domain`, and so is the gateway port
//! (`PaymentGateway`); the module supplies the `SimulatedGateway`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use udders_contracts::Service;
use udders_eventstore::{EventStore, StoreError, Tx};
use udders_kernel::ReadModel;
use udders_messaging::{Handler, HandlerError, Incoming};
use udders_payment_domain::{Payment, PaymentGateway, PaymentView, decide_and_charge, react};
use udders_runtime::http::{Path, Problem};
use udders_runtime::replay::replay_one;
use udders_runtime::{Cause, Outbound, integration, record_viewed, route};

/// This service's routes and subscriptions, declared in its domain crate.
pub use udders_payment_domain::{Route, SUBSCRIPTIONS};

/// This service.
pub const SERVICE: Service = Service::Payment;

/// Charges and refunds.
#[derive(Debug, Clone)]
pub struct PaymentHandler {
    outbound: Outbound,
    gateway: Arc<dyn PaymentGateway>,
}

impl PaymentHandler {
    /// A handler publishing through `outbound` and charging through
    /// `gateway` (the service runs [`SimulatedGateway`](udders_payment_domain::SimulatedGateway)).
    pub fn new(outbound: Outbound, gateway: Arc<dyn PaymentGateway>) -> Self {
        Self { outbound, gateway }
    }
}

impl Handler for PaymentHandler {
    async fn handle(&self, tx: &mut Tx, incoming: &Incoming) -> Result<(), HandlerError> {
        let route: Route = route(incoming, SERVICE)?;
        let Some((order, command)) = react(route, &integration(incoming)?) else { return Ok(()) };
        // Loaded, never opened without a read (Tx::open): the gateway is
        // called before the commit, and a charge must not rest on a guess
        // that only the commit proves.
        let mut payment = tx.load::<Payment>(&order).await?;
        let events = decide_and_charge(&payment.state, (order, command), &*self.gateway);
        let publish = |e: &udders_payment_domain::PaymentEvent| e.integration().map(|i| (i, None));
        record_viewed(tx, &mut payment, events, &Cause::of(incoming), &self.outbound, publish).await?;
        Ok(())
    }
}

/// Drops and rebuilds this service's read models from its events.
pub async fn replay(store: &EventStore) -> Result<usize, StoreError> {
    replay_one::<Payment>(store).await
}

/// `GET /payments/{order_id}`.
pub fn routes(store: EventStore) -> Router {
    Router::new().route("/payments/{order_id}", get(payment)).with_state(store)
}

/// The payment of an order: status, amount, net charge.
#[utoipa::path(get, path = "/payments/{order_id}", tag = "payment",
    params(("order_id" = String, Path, description = "The order")),
    responses((status = 200, body = PaymentView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn payment(
    State(store): State<EventStore>,
    Path(order): Path<String>,
) -> Result<axum::Json<PaymentView>, Problem> {
    match store.document(Payment::VIEW, &order).await? {
        Some(doc) => Ok(axum::Json(serde_json::from_value(doc.doc).map_err(|e| Problem::internal(&e))?)),
        None => Err(Problem::not_found(format!("no payment for order {order}"))),
    }
}

mod module;

pub use module::{MODULE, Module};
