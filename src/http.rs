//! The HTTP port of a process: the routes of the services it runs (all six
//! in `udders up`, one in `udders service`), the console (with the order
//! service), the dead letters, plus the catalog, health, metrics, the
//! OpenAPI document and Swagger UI.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use udders_contracts::{Catalog, Service};
use udders_eventstore::EventStore;
use udders_messaging::{ConsumerWatch, ReplayDeadLetter, TransactionPhase};
use udders_runtime::Outbound;
use udders_runtime::access::{Access, require_api_key, require_operator};
use udders_runtime::http::{MAX_BODY_BYTES, no_such_path, wrong_method};

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
    /// The order service's routes, when this process runs it.
    pub order: Option<udders_order::OrderApi>,
    /// The operator token and the POS API keys.
    pub access: Access,
    /// Each running service's dead-letter replayer.
    pub replayers: Replayers,
    /// Cancelled when HTTP stops: long-lived answers (the live feed) end.
    pub stopping: CancellationToken,
}

/// The dead-letter replayer of each running service.
pub type Replayers = Arc<Mutex<BTreeMap<Service, Arc<dyn ReplayDeadLetter>>>>;

/// Serves [`router`] on `addr` until the returned token (`state.stopping`)
/// is cancelled: the bound address (port 0 picks one), the token, and the
/// server's task.
pub async fn serve(
    addr: std::net::SocketAddr,
    state: AppState,
) -> anyhow::Result<(std::net::SocketAddr, CancellationToken, JoinHandle<std::io::Result<()>>)> {
    use anyhow::Context as _;
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the HTTP port {addr}"))?;
    let bound = listener.local_addr()?;
    let stop = state.stopping.clone();
    let stopped = stop.clone();
    // `into_make_service` readies every route once, here. Handed to
    // `axum::serve` as it is, a `Router` readies a copy of all its routes
    // for each connection (axum 0.8), and each connection keeps that copy:
    // some 30 KB, or half of what the live Rust heap grew by under
    // overload, with a POS holding 256 connections open
    // (docs/benchmarks.md, the eleventh measurement).
    let app = router(state).into_make_service();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async move { stopped.cancelled().await }).await
    });
    Ok((bound, stop, task))
}

/// The routes of the services in `state.stores` (each from its module in
/// the [`crate::registry`]), and the shared ones.
pub fn router(state: AppState) -> Router {
    let shared = Router::new()
        .route("/catalog", get(catalog))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    let mut app = Router::new()
        .merge(utoipa_swagger_ui::SwaggerUi::new("/swagger-ui").url("/openapi.json", crate::openapi::document()));
    if let Some(order) = &state.order {
        let pos = udders_order::routes(order.clone())
            .route_layer(axum::middleware::from_fn_with_state(state.access.clone(), require_api_key));
        app = app.merge(pos).merge(crate::console::routes(state.clone()));
    }
    app = app.merge(crate::console::dead_letters::routes(state.clone()));
    // Reference data (prices, stock, credit limits): operator token only.
    let (mut admin, mut owns_reference_data) = (Router::new(), false);
    if let Some(order) = &state.order {
        admin = admin.merge(udders_order::admin_routes(order.clone()));
        owns_reference_data = true;
    }
    for (service, store) in &state.stores {
        let outbound = Outbound::new(*service, state.catalog.clone());
        let routes = crate::registry::module(*service).routes(store.clone(), outbound);
        if let Some(own) = routes.admin {
            admin = admin.merge(own);
            owns_reference_data = true;
        }
        if let Some(public) = routes.public {
            app = app.merge(public);
        }
    }
    // A process of a service that owns none has no admin routes (and axum
    // refuses a route layer on an empty router).
    if owns_reference_data {
        let guard = axum::middleware::from_fn_with_state(state.access.clone(), require_operator);
        app = app.merge(admin.route_layer(guard));
    }
    app.merge(shared)
        .fallback(no_such_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(udders_runtime::telemetry::trace_request))
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

/// 200 only when the database answers and every consumer of this process
/// runs (holds its partitions).
#[utoipa::path(get, path = "/readyz", tag = "system", responses((status = 200, body = Object), (status = 503, body = Object)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let running = consumers(&state);
    let services: BTreeMap<&str, bool> =
        state.stores.keys().map(|s| (s.name(), running.get(s).is_some_and(ConsumerWatch::is_ready))).collect();
    let mut databases = true;
    for store in state.stores.values() {
        databases &= store.outbox_backlog().await.is_ok();
    }
    let ready = databases && services.values().filter(|r| **r).count() == state.expected;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({ "ready": ready, "consumers": services, "databases": databases });
    (status, axum::Json(body)).into_response()
}

/// Prometheus text: consumer records by outcome, handler and transaction
/// latency, consumer positions, outbox backlog and oldest age, orders by
/// status, saga durations and compensations.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    let running = consumers(&state);
    help(&mut out, "udders_consumer_records_total", "counter", "Records a service's consumer has seen, by outcome.");
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
    help(
        &mut out,
        "udders_handler_duration_seconds",
        "histogram",
        "One handler call: a record's effects, before the commit.",
    );
    for (service, watch) in &running {
        watch.latency().handler.write_prometheus(
            &mut out,
            "udders_handler_duration_seconds",
            &format!("service=\"{service}\""),
        );
    }
    help(
        &mut out,
        "udders_consumer_transaction_duration_seconds",
        "histogram",
        "One consumer transaction: inbox entries, handler calls, positions and commit.",
    );
    for (service, watch) in &running {
        let labels = format!("service=\"{service}\"");
        watch.latency().transaction.write_prometheus(&mut out, "udders_consumer_transaction_duration_seconds", &labels);
    }
    help(
        &mut out,
        "udders_consumer_transaction_phase_seconds",
        "histogram",
        "One part of a consumer transaction: waiting for the store's writer, the inbox entries, the handler calls, \
         the writes (events, outbox rows, snapshots, documents, positions) or the commit.",
    );
    for (service, watch) in &running {
        for phase in TransactionPhase::ALL {
            let labels = format!("service=\"{service}\",phase=\"{}\"", phase.label());
            watch.latency().phase(phase).write_prometheus(
                &mut out,
                "udders_consumer_transaction_phase_seconds",
                &labels,
            );
        }
    }
    help(
        &mut out,
        "udders_hop_duration_seconds",
        "histogram",
        "One hop: from an event's time (ce_time, when its publisher recorded it) to the commit of its effects in \
         the service that handled it (outbox, relay, broker and consumer queue included).",
    );
    for (service, watch) in &running {
        let labels = format!("service=\"{service}\"");
        watch.latency().hop.write_prometheus(&mut out, "udders_hop_duration_seconds", &labels);
    }
    help(
        &mut out,
        "udders_consumer_position",
        "gauge",
        "The next offset a service's consumer will read, as stored in its database.",
    );
    let mut lags = Vec::new();
    for (service, store) in &state.stores {
        for p in store.positions(service.name()).await.unwrap_or_default() {
            let _ = writeln!(
                out,
                "udders_consumer_position{{service=\"{service}\",topic=\"{}\",partition=\"{}\"}} {}",
                p.topic, p.partition, p.next_offset
            );
            let end = running.get(service).and_then(|w| w.ends().get(&p.topic, p.partition));
            if let Some(end) = end {
                lags.push((*service, p.topic, p.partition, (end - p.next_offset).max(0)));
            }
        }
    }
    help(
        &mut out,
        "udders_consumer_lag",
        "gauge",
        "Records on a partition a service's consumer has not handled yet: the partition's end (as its client last \
         heard, every 5 s) less its stored position.",
    );
    for (service, topic, partition, lag) in lags {
        let _ = writeln!(
            out,
            "udders_consumer_lag{{service=\"{service}\",topic=\"{topic}\",partition=\"{partition}\"}} {lag}"
        );
    }
    let mut outbox = BTreeMap::new();
    for (service, store) in &state.stores {
        if let Ok(status) = store.outbox_status().await {
            outbox.insert(*service, status);
        }
    }
    help(&mut out, "udders_outbox_backlog", "gauge", "Outbox rows not yet published.");
    for (service, status) in &outbox {
        let _ = writeln!(out, "udders_outbox_backlog{{service=\"{service}\"}} {}", status.backlog);
    }
    help(
        &mut out,
        "udders_outbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest unpublished outbox row (0 when none).",
    );
    for (service, status) in &outbox {
        let age = status.oldest_age.unwrap_or_default().as_secs_f64();
        let _ = writeln!(out, "udders_outbox_oldest_age_seconds{{service=\"{service}\"}} {age}");
    }
    help(
        &mut out,
        "udders_store_wrong_opens_total",
        "counter",
        "Commits that failed because a stream a handler opened as new (one a read would most likely not find) \
         existed: each cost its records a retry, which reads the stream.",
    );
    for (service, store) in &state.stores {
        let _ = writeln!(out, "udders_store_wrong_opens_total{{service=\"{service}\"}} {}", store.wrong_opens());
    }
    help(&mut out, "udders_orders", "gauge", "Orders by status.");
    if let Some(store) = state.stores.get(&Service::Order)
        && let Ok(counts) = store.count_documents("orders", 0).await
    {
        for (status, n) in counts {
            let _ = writeln!(out, "udders_orders{{status=\"{}\"}} {n}", status.unwrap_or_default());
        }
    }
    help(
        &mut out,
        "udders_orders_past_deadline",
        "gauge",
        "Orders in a forward status (placed, validated, reserved, paid) past their saga deadline (counted up to \
         10,000): the sweeper calls an order off at its deadline, so more than 0 for long means it is not running.",
    );
    if let Some(store) = state.stores.get(&Service::Order)
        && let Ok(overdue) = store.due_documents("orders", udders_runtime::clock::now(), 10_000).await
    {
        let _ = writeln!(out, "udders_orders_past_deadline {}", overdue.len());
    }
    if let (Some(store), Some(api)) = (state.stores.get(&Service::Order), &state.order) {
        help(
            &mut out,
            "udders_orders_compensating_quiet",
            "gauge",
            "Orders compensating whose read model has not changed for a saga deadline: a compensation takes \
             milliseconds, so these wait on a holder that does not answer, and no deadline ends them.",
        );
        let now = udders_runtime::clock::now();
        if let Ok(quiet) = udders_order::progress::quiet_compensations(store, api.deadline, now).await {
            let _ = writeln!(out, "udders_orders_compensating_quiet {quiet}");
        }
    }
    if let Some(api) = &state.order {
        api.intake().write_prometheus(&mut out);
    }
    udders_runtime::metrics::saga().write_prometheus(&mut out, state.stores.keys().copied());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}
