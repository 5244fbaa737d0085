//! The inventory service's I/O: its handler (reserve on `order/valid`,
//! ship on `order/shipped`, release on compensation triggers), the stock
//! seed, its read model and `GET /inventory`, and the operator's
//! `POST /admin/stock/{flavor}/{country}`, which restocks and publishes
//! `stock/restocked`. The rules are in `udders-inventory-domain`.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use udders_contracts::events::StockRestocked;
use udders_contracts::{Integration, Service, reference};
use udders_eventstore::{DocumentFilter, EventStore, StoreError, Tx};
use udders_inventory_domain::{
    Reaction, Reservation, ReservationCommand, ReservationEvent, Stock, StockCommand, StockView, per_flavor, react,
    stock_id,
};
use udders_kernel::{Decider, Quantity, ReadModel};
use udders_messaging::{Handler, HandlerError, Incoming};
use udders_runtime::http::{JsonBody, Path, Problem, Query};
use udders_runtime::replay::replay_one;
use udders_runtime::{Cause, Outbound, change_reference, integration, record, record_viewed, route};

pub use udders_inventory_domain::initial_stock;
/// This service's routes and subscriptions, declared in its domain crate.
pub use udders_inventory_domain::{Route, SUBSCRIPTIONS};

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
        let route: Route = route(incoming, SERVICE)?;
        let Some(reaction) = react(route, &integration(incoming)?) else { return Ok(()) };
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
        // The validated order starts the reservation: no read would find one.
        let mut reservation = match command {
            ReservationCommand::Reserve { .. } => tx.open::<Reservation>(&order).await?,
            _ => tx.load::<Reservation>(&order).await?,
        };
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

/// The operator's route (the caller puts it behind the operator token):
/// `POST /admin/stock/{flavor}/{country}`.
pub fn admin_routes(store: EventStore, outbound: Outbound) -> Router {
    Router::new().route("/admin/stock/{flavor}/{country}", post(restock)).with_state((store, outbound))
}

/// The body of `POST /admin/stock/{flavor}/{country}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restock {
    /// How many to add, 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1000000)]
    #[serde(deserialize_with = "udders_runtime::http::whole_i64")]
    pub add: i64,
}

/// The most one restock adds.
pub const MAX_RESTOCK: i64 = 1_000_000;

/// Adds goods to a flavour's stock in a country and publishes
/// `stock/restocked`.
#[utoipa::path(post, path = "/admin/stock/{flavor}/{country}", tag = "operations",
    params(("flavor" = String, Path, description = "A flavour on sale"),
        ("country" = String, Path, description = "A country served")),
    request_body = Restock,
    security(("operator" = [])),
    responses((status = 200, body = StockView),
        (status = 404, description = "No such flavour or country", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Changed concurrently too often", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn restock(
    State((store, outbound)): State<(EventStore, Outbound)>,
    Path((flavor, country)): Path<(String, String)>,
    JsonBody(body): JsonBody<Restock>,
) -> Result<axum::Json<StockView>, Problem> {
    if reference::unit_price(&flavor).is_none() {
        return Err(Problem::not_found(format!("no flavour {flavor:?} is on sale")));
    }
    if !reference::serves(&country) {
        return Err(Problem::not_found(format!("country {country:?} is not served")));
    }
    let add = u32::try_from(body.add)
        .ok()
        .filter(|add| (1..=MAX_RESTOCK).contains(&i64::from(*add)))
        .map(Quantity::new)
        .ok_or_else(|| Problem::unprocessable(format!("add must be 1 to {MAX_RESTOCK}, not {}", body.add)))?;
    let id = stock_id(&flavor, &country);
    let cause = Cause::new_saga(flavor.clone(), country.clone(), "admin".to_owned());
    let state = change_reference::<Stock>(
        &store,
        &outbound,
        &id,
        &cause,
        |state| Stock::decide(state, StockCommand::Restock(add)).map_err(|e| Problem::unprocessable(format!("{e:?}"))),
        |after, _| {
            Some(Integration::StockRestocked(StockRestocked {
                flavor: flavor.clone(),
                country: country.clone(),
                added: body.add,
                on_hand: after.on_hand,
            }))
        },
    )
    .await?;
    Ok(axum::Json(udders_inventory_domain::stock_view(&id, &state)))
}

mod module;

pub use module::{MODULE, Module};
