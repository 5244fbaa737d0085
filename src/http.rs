//! The one HTTP port of `udders up`: every service's routes, plus the
//! catalog, health and metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use udders_contracts::{Catalog, Service};
use udders_eventstore::EventStore;
use udders_messaging::ConsumerWatch;
use udders_runtime::http::{MAX_BODY_BYTES, no_such_path};
use utoipa::OpenApi;

/// What the shared routes read.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Each service's database.
    pub stores: BTreeMap<Service, EventStore>,
    /// The event catalog.
    pub catalog: Arc<Catalog>,
    /// The consumers running now.
    pub running: Arc<Mutex<BTreeMap<Service, ConsumerWatch>>>,
    /// How many consumers must run for `/readyz` to say yes.
    pub expected: usize,
    /// The order service's routes.
    pub order: udders_order::OrderApi,
}

/// Every route of the one-process system.
pub fn router(state: AppState) -> Router {
    let shared = Router::new()
        .route("/catalog", get(catalog))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    Router::new()
        .merge(utoipa_swagger_ui::SwaggerUi::new("/swagger-ui").url("/openapi.json", crate::openapi::ApiDoc::openapi()))
        .merge(udders_order::routes(state.order.clone()))
        .merge(udders_credit::routes(state.stores[&Service::Credit].clone()))
        .merge(udders_inventory::routes(state.stores[&Service::Inventory].clone()))
        .merge(udders_payment::routes(state.stores[&Service::Payment].clone()))
        .merge(udders_fulfillment::routes(state.stores[&Service::Fulfillment].clone()))
        .merge(shared)
        .fallback(no_such_path)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The event catalog: every subject, its payload schema and version, its
/// publisher and its subscribers.
#[utoipa::path(get, path = "/catalog", tag = "system", responses((status = 200, body = Object)))]
pub async fn catalog(State(state): State<AppState>) -> axum::Json<serde_json::Value> {
    axum::Json(state.catalog.to_json())
}

fn consumers(state: &AppState) -> BTreeMap<Service, ConsumerWatch> {
    state.running.lock().map(|r| r.clone()).unwrap_or_default()
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/livez", tag = "system", responses((status = 200, body = String)))]
pub async fn livez() -> &'static str {
    "ok"
}

/// 200 only when every service's consumer is running.
#[utoipa::path(get, path = "/readyz", tag = "system", responses((status = 200, body = Object), (status = 503, body = Object)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let running = consumers(&state);
    let services: BTreeMap<&str, bool> =
        Service::ALL.iter().map(|s| (s.name(), running.get(s).is_some_and(ConsumerWatch::is_ready))).collect();
    let ready = services.values().filter(|r| **r).count() == state.expected;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(serde_json::json!({ "ready": ready, "consumers": services }))).into_response()
}

/// Prometheus text: consumer counters, outbox backlog, orders by status.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    let running = consumers(&state);
    let _ = writeln!(out, "# HELP udders_consumer_records_total Records a service's consumer has seen, by outcome.");
    let _ = writeln!(out, "# TYPE udders_consumer_records_total counter");
    for (service, watch) in &running {
        let s = watch.stats();
        for (outcome, n) in [
            ("handled", s.handled),
            ("duplicate", s.duplicates),
            ("skipped", s.skipped),
            ("dead_lettered", s.dead_lettered),
        ] {
            let _ = writeln!(out, "udders_consumer_records_total{{service=\"{service}\",outcome=\"{outcome}\"}} {n}");
        }
    }
    let _ = writeln!(out, "# HELP udders_outbox_backlog Outbox rows not yet published.");
    let _ = writeln!(out, "# TYPE udders_outbox_backlog gauge");
    for (service, store) in &state.stores {
        if let Ok(n) = store.outbox_backlog().await {
            let _ = writeln!(out, "udders_outbox_backlog{{service=\"{service}\"}} {n}");
        }
    }
    let _ = writeln!(out, "# HELP udders_orders Orders by status.");
    let _ = writeln!(out, "# TYPE udders_orders gauge");
    if let Ok(counts) = state.stores[&Service::Order].count_documents("orders", 0).await {
        for (status, n) in counts {
            let _ = writeln!(out, "udders_orders{{status=\"{}\"}} {n}", status.unwrap_or_default());
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
