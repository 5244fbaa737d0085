//! The insights service's I/O: its handler (each record goes to every
//! listener whose subscription its subject matches), its read models and
//! `GET /insights/channels/{channel}` and `GET /insights/countries/sg`. The
//! rules are in `udders-insights-domain`.
//!
//! Like notification, it joined by subscribing: no other service knows it,
//! and it publishes nothing.

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use udders_contracts::Service;
use udders_eventstore::{DocumentFilter, EventStore, StoreError, Tx};
use udders_insights_domain::{
    ChannelInsight, Dispatch, DispatchView, FollowCommand, Listener, Sale, SaleView, channel_insight, react_dispatch,
    react_sale,
};
use udders_kernel::{Decider, ReadModel, Timestamp};
use udders_messaging::{Handler, HandlerError, Incoming};
use udders_runtime::http::{Path, Problem, Query};
use udders_runtime::replay::rebuild;
use udders_runtime::{Cause, Outbound, clock, integration, record_viewed, route, route_named};

/// This service's routes and subscriptions, declared in its domain crate.
pub use udders_insights_domain::{Route, SUBSCRIPTIONS};

/// This service.
pub const SERVICE: Service = Service::Insights;
/// The one channel the 711 listener follows.
pub const CHANNEL: &str = "store711";
/// The one country the dispatch listener follows.
pub const COUNTRY: &str = "sg";

/// Feeds the 711 and Singapore listeners.
#[derive(Debug, Clone)]
pub struct InsightsHandler {
    outbound: Outbound,
}

impl InsightsHandler {
    /// A handler recording through `outbound` (it publishes nothing).
    pub fn new(outbound: Outbound) -> Self {
        Self { outbound }
    }
}

impl Handler for InsightsHandler {
    async fn handle(&self, tx: &mut Tx, incoming: &Incoming) -> Result<(), HandlerError> {
        // The consumer names the first matching route; an order of the 711
        // chain in Singapore is for both listeners, so ask the catalog for
        // every route that matches.
        let subject = &incoming.envelope.subject;
        let mut listeners = BTreeSet::from([route::<Route>(incoming, SERVICE)?.listener()]);
        for s in self.outbound.catalog().subscriptions_of(SERVICE).filter(|s| s.pattern.matches(subject)) {
            listeners.insert(route_named::<Route>(s.route, SERVICE)?.listener());
        }
        let event = integration(incoming)?;
        let (at, cause) = (incoming.envelope.time, Cause::of(incoming));
        for listener in listeners {
            match listener {
                Listener::Store711 => self.record::<Sale, _>(tx, react_sale(&event, at), &cause).await?,
                Listener::Singapore => self.record::<Dispatch, _>(tx, react_dispatch(&event, at), &cause).await?,
            }
        }
        Ok(())
    }
}

impl InsightsHandler {
    /// Decides a listener's reaction on its order and records it.
    async fn record<A, S>(
        &self,
        tx: &mut Tx,
        reaction: Option<(String, FollowCommand<S>)>,
        cause: &Cause,
    ) -> Result<(), StoreError>
    where
        A: ReadModel + Decider<Command = FollowCommand<S>, Error = std::convert::Infallible>,
        A::Event: Clone,
    {
        let Some((order, command)) = reaction else { return Ok(()) };
        // The fact that starts a followed order: no read would find it.
        let mut followed = match command {
            FollowCommand::Start(_) => tx.open::<A>(&order).await?,
            FollowCommand::End { .. } => tx.load::<A>(&order).await?,
        };
        let Ok(events) = A::decide(&followed.state, command);
        record_viewed(tx, &mut followed, events, cause, &self.outbound, |_| None).await?;
        Ok(())
    }
}

/// Drops and rebuilds this service's read models from its events.
pub async fn replay(store: &EventStore) -> Result<usize, StoreError> {
    let mut tx = store.begin().await?;
    tx.clear_documents().await?;
    let folded = rebuild::<Sale>(store, &mut tx).await? + rebuild::<Dispatch>(store, &mut tx).await?;
    tx.commit().await?;
    Ok(folded)
}

/// `GET /insights/channels/{channel}` and `GET /insights/countries/{country}`.
pub fn routes(store: EventStore) -> Router {
    Router::new()
        .route("/insights/channels/{channel}", get(channel))
        .route("/insights/countries/{country}", get(country))
        .with_state(store)
}

/// Sales read per page while folding the last hour.
const PAGE: u32 = 1000;
/// The most sales one insight folds.
const MOST_SALES: usize = 200_000;

/// The 711 chain's last hour, minute by minute: orders placed, orders
/// shipped, revenue (minor units, counted when shipped) and top flavours.
#[utoipa::path(get, path = "/insights/channels/{channel}", tag = "insights",
    params(("channel" = String, Path, description = "The channel: `store711` (the one this listener follows)")),
    responses((status = 200, body = ChannelInsight),
        (status = 404, description = "A channel no listener follows", body = Problem, content_type = "application/problem+json")))]
pub async fn channel(
    State(store): State<EventStore>,
    Path(channel): Path<String>,
) -> Result<axum::Json<ChannelInsight>, Problem> {
    if channel != CHANNEL {
        return Err(Problem::not_found(format!(
            "no insight follows channel {channel:?}: the listener is bound to order/*/*/*/*/*/*/{CHANNEL}"
        )));
    }
    let now = clock::now();
    // Most recently updated first: a sale not updated for an hour and a
    // minute has nothing in the window.
    let oldest = now.plus_micros(-61 * 60_000_000).micros();
    let mut filter = DocumentFilter { tags: [Some(channel.clone()), None, None], limit: PAGE, ..Default::default() };
    let mut sales: Vec<SaleView> = Vec::new();
    loop {
        let page = store.document_page(Sale::VIEW, &filter).await?;
        for doc in page.documents {
            sales.push(serde_json::from_value(doc.doc).map_err(|e| Problem::internal(&e))?);
        }
        match page.next {
            Some(next) if next.updated_at_us >= oldest && sales.len() < MOST_SALES => filter.after = Some(next),
            _ => break,
        }
    }
    Ok(axum::Json(channel_insight(&channel, &sales, now)))
}

/// Filters of `GET /insights/countries/{country}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitingQuery {
    /// At most this many orders (default 100, at most 1,000), longest waiting first.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The valid orders of a country waiting for dispatch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DispatchQueue {
    /// The country.
    pub country: String,
    /// How many wait.
    pub waiting: u64,
    /// The longest waiting, oldest first.
    pub orders: Vec<DispatchView>,
}

/// Singapore's valid orders waiting for dispatch (validated, not yet
/// shipped, refused or called off), longest waiting first.
#[utoipa::path(get, path = "/insights/countries/{country}", tag = "insights",
    params(("country" = String, Path, description = "The country: `sg` (the one this listener follows)"), WaitingQuery),
    responses((status = 200, body = DispatchQueue),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A country no listener follows", body = Problem, content_type = "application/problem+json")))]
pub async fn country(
    State(store): State<EventStore>,
    Path(country): Path<String>,
    Query(q): Query<WaitingQuery>,
) -> Result<axum::Json<DispatchQueue>, Problem> {
    if country != COUNTRY {
        return Err(Problem::not_found(format!(
            "no insight follows country {country:?}: the listener is bound to order/valid/*/icecream/**/{COUNTRY}/*"
        )));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request(format!("limit: {limit} is not from 1 to 1000")));
    }
    let waiting = store.count_documents_tagged(Dispatch::VIEW, &["WAITING"], None).await?;
    // A waiting order is due from its validation: the due index lists the
    // longest waiting first.
    let mut orders: Vec<DispatchView> = Vec::new();
    for doc in store.due_documents_read(Dispatch::VIEW, Timestamp::from_micros(i64::MAX), limit).await? {
        orders.push(serde_json::from_value(doc.doc).map_err(|e| Problem::internal(&e))?);
    }
    Ok(axum::Json(DispatchQueue { country, waiting, orders }))
}

mod module;

pub use module::{MODULE, Module};
