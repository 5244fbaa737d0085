//! The inventory service's I/O: its handler (reserve on `order/valid`,
//! ship on `order/shipped`, release on compensation triggers), the stock
//! seed, its read model and `GET /inventory`. The rules are in
//! `udders-inventory-domain`.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use udders_contracts::{Service, reference};
use udders_eventstore::{DocumentFilter, EventStore, StoreError, Tx};
use udders_inventory_domain::{
    Reaction, Reservation, ReservationCommand, ReservationEvent, Stock, StockCommand, StockView, initial_stock,
    per_flavor, react, stock_id,
};
use udders_kernel::{Decider, ReadModel};
use udders_messaging::{Handler, HandlerError, Incoming};
use udders_runtime::http::{Problem, Query};
use udders_runtime::replay::replay_one;
use udders_runtime::{Cause, Outbound, integration, record, record_viewed};

/// This service.
pub const SERVICE: Service = Service::Inventory;

/// Reserves, ships and releases stock.
#[derive(Debug, Clone)]
pub struct InventoryHandler {
    outbound: Outbound,
}

impl InventoryHandler {
    /// A handler publishing through `outbound`.
    pub fn new(outbound: Outbound) -> Self {
        Self { outbound }
    }

    /// Applies the stock moves a reservation event implies, each to its stock.
    async fn move_stock(&self, tx: &mut Tx, cause: &Cause, event: &ReservationEvent) -> Result<(), HandlerError> {
        for (id, command) in event.stock_commands() {
            let mut stock = tx.load::<Stock>(&id).await?;
            // A stock that refuses here was changed by a concurrent handler
            // (another instance): retrying re-reads it.
            let events =
                Stock::decide(&stock.state, command).map_err(|e| HandlerError::retry(format!("stock {id}: {e:?}")))?;
            record_viewed(tx, &mut stock, events, cause, &self.outbound, |_| None).await?;
        }
        Ok(())
    }
}

impl Handler for InventoryHandler {
    async fn handle(&self, tx: &mut Tx, incoming: &Incoming) -> Result<(), HandlerError> {
        let Some(reaction) = react(&integration(incoming)?) else { return Ok(()) };
        let cause = Cause::of(incoming);
        let (order, command) = match reaction {
            Reaction::Reserve { order, country, items } => {
                let mut available = BTreeMap::new();
                for flavor in per_flavor(&items).into_keys() {
                    let stock = tx.load::<Stock>(stock_id(&flavor, &country)).await?;
                    available.insert(flavor, stock.state.available());
                }
                (order, ReservationCommand::Reserve { country, items, available })
            }
            Reaction::Ship { order } => (order, ReservationCommand::Ship),
            Reaction::Compensate { order, cause } => (order, ReservationCommand::Compensate { cause }),
        };
        let mut reservation = tx.load::<Reservation>(&order).await?;
        let Ok(events) = Reservation::decide(&reservation.state, (order, command));
        for event in &events {
            self.move_stock(tx, &cause, event).await?;
        }
        let publish = |e: &ReservationEvent| e.integration().map(|i| (i, None));
        record(tx, &mut reservation, events, &cause, &self.outbound, publish).await?;
        Ok(())
    }
}

/// Stocks every flavour in every country served, once: a stock that has
/// any event is left alone. Returns how many stocks were seeded.
pub async fn seed(store: &EventStore, outbound: &Outbound) -> Result<usize, StoreError> {
    let mut tx = store.begin().await?;
    let mut seeded = 0;
    for (flavor, _) in reference::FLAVORS {
        for country in reference::COUNTRIES {
            let mut stock = tx.load::<Stock>(stock_id(flavor, country)).await?;
            if stock.version > 0 {
                continue;
            }
            let cause = Cause::new_saga(flavor.to_owned(), country.to_owned(), "seed".to_owned());
            let events = Stock::decide(&stock.state, StockCommand::Restock(initial_stock(flavor)))
                .map_err(|e| StoreError::Encode { what: "the stock seed".into(), reason: format!("{e:?}") })?;
            record_viewed(&mut tx, &mut stock, events, &cause, outbound, |_| None).await?;
            seeded += 1;
        }
    }
    tx.commit().await?;
    Ok(seeded)
}

/// Drops and rebuilds this service's read models from its events.
pub async fn replay(store: &EventStore) -> Result<usize, StoreError> {
    replay_one::<Stock>(store).await
}

/// `GET /inventory`.
pub fn routes(store: EventStore) -> Router {
    Router::new().route("/inventory", get(inventory)).with_state(store)
}

/// Filters of `GET /inventory`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InventoryQuery {
    /// Only this flavour.
    flavor: Option<String>,
    /// Only this country.
    country: Option<String>,
}

/// Stock per flavour and country: on hand, reserved, available, shipped.
#[utoipa::path(get, path = "/inventory", tag = "inventory", params(InventoryQuery),
    responses((status = 200, body = Vec<StockView>)))]
pub async fn inventory(
    State(store): State<EventStore>,
    Query(q): Query<InventoryQuery>,
) -> Result<axum::Json<Vec<StockView>>, Problem> {
    let filter = DocumentFilter { tags: [q.flavor, q.country, None], limit: 10_000, ..Default::default() };
    let mut rows: Vec<StockView> = store
        .documents(Stock::VIEW, &filter)
        .await?
        .into_iter()
        .map(|d| serde_json::from_value(d.doc))
        .collect::<Result<_, _>>()
        .map_err(|e| Problem::internal(&e))?;
    rows.sort_by(|a, b| (&a.flavor, &a.country).cmp(&(&b.flavor, &b.country)));
    Ok(axum::Json(rows))
}
