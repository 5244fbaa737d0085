//! The fulfillment service's I/O: its handler (ship on `payment/captured`,
//! stand down on cancel or expiry), its read model and
//! `GET /shipments/{order_id}`. The rules are in `udders-fulfillment-domain`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use udders_contracts::Service;
use udders_eventstore::{EventStore, StoreError, Tx};
use udders_fulfillment_domain::{Shipment, ShipmentCommand, ShipmentView, react};
use udders_kernel::{Decider, ReadModel};
use udders_messaging::{Handler, HandlerError, Incoming};
use udders_runtime::http::{Path, Problem};
use udders_runtime::replay::replay_one;
use udders_runtime::{Cause, Outbound, integration, record_viewed, route};

/// This service's routes and subscriptions, declared in its domain crate.
pub use udders_fulfillment_domain::{Route, SUBSCRIPTIONS};

/// This service.
pub const SERVICE: Service = Service::Fulfillment;

/// Ships paid orders.
#[derive(Debug, Clone)]
pub struct FulfillmentHandler {
    outbound: Outbound,
}

impl FulfillmentHandler {
    /// A handler publishing through `outbound`.
    pub fn new(outbound: Outbound) -> Self {
        Self { outbound }
    }
}

impl Handler for FulfillmentHandler {
    async fn handle(&self, tx: &mut Tx, incoming: &Incoming) -> Result<(), HandlerError> {
        let route: Route = route(incoming, SERVICE)?;
        let Some((order, command)) = react(route, &integration(incoming)?) else { return Ok(()) };
        // A captured payment starts the shipment: no read would find one.
        let mut shipment = match command {
            ShipmentCommand::Ship { .. } => tx.open::<Shipment>(&order).await?,
            ShipmentCommand::CallOff { .. } => tx.load::<Shipment>(&order).await?,
        };
        let Ok(events) = Shipment::decide(&shipment.state, (order, command));
        let publish = |e: &udders_fulfillment_domain::ShipmentEvent| e.integration().map(|i| (i, None));
        record_viewed(tx, &mut shipment, events, &Cause::of(incoming), &self.outbound, publish).await?;
        Ok(())
    }
}

/// Drops and rebuilds this service's read models from its events.
pub async fn replay(store: &EventStore) -> Result<usize, StoreError> {
    replay_one::<Shipment>(store).await
}

/// `GET /shipments/{order_id}`.
pub fn routes(store: EventStore) -> Router {
    Router::new().route("/shipments/{order_id}", get(shipment)).with_state(store)
}

/// The shipment of an order.
#[utoipa::path(get, path = "/shipments/{order_id}", tag = "fulfillment",
    params(("order_id" = String, Path, description = "The order")),
    responses((status = 200, body = ShipmentView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn shipment(
    State(store): State<EventStore>,
    Path(order): Path<String>,
) -> Result<axum::Json<ShipmentView>, Problem> {
    match store.document(Shipment::VIEW, &order).await? {
        Some(doc) => Ok(axum::Json(serde_json::from_value(doc.doc).map_err(|e| Problem::internal(&e))?)),
        None => Err(Problem::not_found(format!("no shipment for order {order}"))),
    }
}

mod module;

pub use module::{MODULE, Module};
