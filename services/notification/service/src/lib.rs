//! The notification service's I/O: its handler (what the other services
//! publish about an order becomes notices), its sender (the delivery queue:
//! due notices go to a [`Courier`], each attempt recorded), its backfill
//! (history missed before it first ran, read from the order service) and
//! `GET /customers/{customer_id}/notifications`. The rules are in
//! `udders-notification-domain`.
//!
//! No other service knows this one exists: it subscribes, and nothing
//! answers it (it publishes nothing).

mod backfill;
mod courier;
mod sender;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use udders_contracts::Service;
use udders_eventstore::{DocumentFilter, EventStore, StoreError, Tx};
use udders_kernel::{Decider, ReadModel};
use udders_messaging::{Handler, HandlerError, Incoming};
use udders_notification_domain::{Notices, NoticesCommand, NoticesView, NotificationView, react};
use udders_runtime::http::{Path, Problem, Query};
use udders_runtime::replay::replay_one;
use udders_runtime::{Cause, Outbound, integration, record_viewed, route};

pub use backfill::{BACKFILL_VIEW, backfill, run_backfill};
pub use courier::{Courier, Message, SimulatedCourier};
pub use sender::{run_sender, send_due};
/// This service's routes and subscriptions, declared in its domain crate.
pub use udders_notification_domain::{Route, SUBSCRIPTIONS};

/// This service.
pub const SERVICE: Service = Service::Notification;

/// Turns what the other services publish about an order into notices.
#[derive(Debug, Clone)]
pub struct NotificationHandler {
    outbound: Outbound,
}

impl NotificationHandler {
    /// A handler recording through `outbound` (it publishes nothing).
    pub fn new(outbound: Outbound) -> Self {
        Self { outbound }
    }
}

impl Handler for NotificationHandler {
    async fn handle(&self, tx: &mut Tx, incoming: &Incoming) -> Result<(), HandlerError> {
        let route: Route = route(incoming, SERVICE)?;
        let Some((order, command)) = react(route, &integration(incoming)?, incoming.envelope.time) else {
            return Ok(());
        };
        // The placed order starts its notices: no read would find them.
        let mut notices = match command {
            NoticesCommand::Address { .. } => tx.open::<Notices>(&order).await?,
            _ => tx.load::<Notices>(&order).await?,
        };
        let Ok(events) = Notices::decide(&notices.state, command);
        record_viewed(tx, &mut notices, events, &Cause::of(incoming), &self.outbound, |_| None).await?;
        Ok(())
    }
}

/// Drops and rebuilds this service's read models from its events (the
/// backfill mark goes too: the next start backfills again, which finds
/// every notice already queued).
pub async fn replay(store: &EventStore) -> Result<usize, StoreError> {
    replay_one::<Notices>(store).await
}

/// `GET /customers/{customer_id}/notifications`.
pub fn routes(store: EventStore) -> Router {
    Router::new().route("/customers/{customer_id}/notifications", get(notifications)).with_state(store)
}

/// Filters of `GET /customers/{customer_id}/notifications`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationsQuery {
    /// At most this many notices (default 50, at most 1,000), newest first.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The most notices one request lists.
const MAX_NOTICES: u32 = 1000;

/// What a customer was told about their orders, newest first, with each
/// notice's delivery status. A customer never told anything has none.
#[utoipa::path(get, path = "/customers/{customer_id}/notifications", tag = "notification",
    params(("customer_id" = String, Path, pattern = "^[A-Za-z0-9_.:-]{1,64}$", description = "The customer, for example cust-42"), NotificationsQuery),
    responses((status = 200, body = Vec<NotificationView>), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn notifications(
    State(store): State<EventStore>,
    Path(customer): Path<String>,
    Query(q): Query<NotificationsQuery>,
) -> Result<axum::Json<Vec<NotificationView>>, Problem> {
    if udders_kernel::CustomerId::parse(customer.as_str()).is_err() {
        return Err(Problem::bad_request(format!("{customer:?} is not a customer id")));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_NOTICES).contains(&limit) {
        return Err(Problem::bad_request(format!("limit: {limit} is not from 1 to {MAX_NOTICES}")));
    }
    // Each order has at most two notices: `limit` orders hold the newest `limit`.
    let filter = DocumentFilter { tags: [Some(customer), None, None], limit, ..DocumentFilter::default() };
    let mut listed = Vec::new();
    for doc in store.documents(Notices::VIEW, &filter).await? {
        let view: NoticesView = serde_json::from_value(doc.doc).map_err(|e| Problem::internal(&e))?;
        listed.extend(view.notifications);
    }
    // RFC 3339 texts in UTC with fixed digits sort as their instants.
    listed.sort_by(|a, b| (&b.time, &b.notification_id).cmp(&(&a.time, &a.notification_id)));
    listed.truncate(limit as usize);
    Ok(axum::Json(listed))
}

mod module;

pub use module::{MODULE, Module, SEND_EVERY};
