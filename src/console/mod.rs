//! The Udders console: the pages (compiled into the binary, no build step)
//! and the JSON and server-sent-event routes they read that belong to no
//! single service: the board's summary, the live feed (`/live`), the event
//! portal's pattern matcher and live counts, the AsyncAPI document, the
//! access facts, and the dead letters of every service this process runs
//! ([`dead_letters`]). Served by `udders up`, and by the order service in the
//! one-process-per-service topology (it follows every event).

pub mod dead_letters;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use udders_contracts::{Pattern, Service, Subject};
use udders_kernel::ReadModel;
use udders_runtime::http::{Problem, Query};
use udders_runtime::live;

use crate::http::AppState;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// The console's pages and feeds (the process that runs the order service
/// serves them; every process serves its own [`dead_letters`]).
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
        .route("/console/summary", get(summary))
        .route("/console/access", get(access))
        .route("/live", get(live_events))
        .route("/catalog/match", get(match_pattern))
        .route("/catalog/live", get(catalog_live))
        .route("/asyncapi.json", get(asyncapi))
        .with_state(state)
}

async fn index() -> Html<&'static str> {
    Html(INDEX)
}

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// The board's figures: orders by status, and the sagas that ended in the
/// last minute (completed/s, p50 and p99 POST-to-terminal).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Every order the read model holds.
    total: u64,
    /// Orders by status.
    by_status: std::collections::BTreeMap<String, u64>,
    /// Completed orders per second over the last minute.
    completed_per_sec: f64,
    /// Median POST-to-terminal of the sagas ended in the last minute, ms.
    p50_ms: Option<f64>,
    /// 99th percentile, ms.
    p99_ms: Option<f64>,
    /// The sagas ended in the last minute, by status.
    ended: std::collections::BTreeMap<String, u64>,
    /// The window, seconds.
    window_secs: u64,
}

/// Orders by status and the last minute's completions and latencies.
#[utoipa::path(get, path = "/console/summary", tag = "console", responses((status = 200, body = Summary)))]
pub async fn summary(State(state): State<AppState>) -> Result<axum::Json<Summary>, Problem> {
    let store = state.stores.get(&Service::Order).ok_or_else(|| Problem::not_found("no order service here"))?;
    let by_status: std::collections::BTreeMap<String, u64> = store
        .count_documents(<udders_order_domain::Order as ReadModel>::VIEW, 0)
        .await?
        .into_iter()
        .map(|(k, n)| (k.unwrap_or_default(), n))
        .collect();
    let recent = live::feed().recent();
    Ok(axum::Json(Summary {
        total: by_status.values().sum(),
        by_status,
        completed_per_sec: recent.completed_per_sec,
        p50_ms: recent.p50_ms,
        p99_ms: recent.p99_ms,
        ended: recent.ended,
        window_secs: recent.window_secs,
    }))
}

/// What the console must ask for: the operator token (always, for operator
/// actions) and an API key for the POS (when keys are configured).
#[utoipa::path(get, path = "/console/access", tag = "console", responses((status = 200, body = Object)))]
pub async fn access(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(json!({
        "operator_token_required": true,
        "operator_actions_enabled": state.access.has_operator_token(),
        "api_keys_required": state.access.api_keys_required(),
    }))
}

/// A subject pattern in a query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PatternQuery {
    /// A subject pattern: `*` one level, `abc*` one level by prefix, `>` the
    /// rest (last level only), `**` zero or more levels. Default `**`.
    #[param(pattern = "^(((\\*\\*?|[a-z0-9._-]+\\*?)/)*(\\*\\*?|[a-z0-9._-]+\\*?|>))?$")]
    pattern: Option<String>,
}

fn pattern_of(query: &PatternQuery) -> Result<Pattern, Problem> {
    let text = query.pattern.as_deref().filter(|p| !p.is_empty()).unwrap_or("**");
    text.parse::<Pattern>().map_err(|e| Problem::bad_request(format!("pattern {text:?}: {e}")))
}

/// Every saga event matching `pattern` as it commits in the order service,
/// as server-sent events (`event: event`, data: subject, order id, time,
/// source, event id, the order's status). A listener that falls more than
/// 4,096 events behind is sent `event: lagged` with how many it missed.
#[utoipa::path(get, path = "/live", tag = "console", params(PatternQuery),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream"),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn live_events(
    State(state): State<AppState>,
    Query(query): Query<PatternQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let pattern = pattern_of(&query)?;
    let listener = live::feed().subscribe();
    // Ends when the client goes: axum drops the stream, and the listener with it.
    let stream = futures::stream::unfold((listener, pattern), |(mut listener, pattern)| async move {
        loop {
            let event = match listener.recv().await {
                Ok(event) if event.subject.parse::<Subject>().is_ok_and(|s| pattern.matches(&s)) => {
                    Event::default().event("event").json_data(&event).unwrap_or_default()
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => Event::default().event("lagged").data(missed.to_string()),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok::<Event, Infallible>(event), (listener, pattern)));
        }
    });
    // The headers go out at once, with a first comment: the browser knows
    // the stream is open before the first event. A graceful stop waits for
    // every answer to end: this one ends then.
    let opened = futures::stream::once(async { Ok::<Event, Infallible>(Event::default().comment("connected")) });
    let stream = opened.chain(stream).take_until(state.stopping.cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keepalive")))
}

/// The catalog's answer for a pattern: the event types it can match, and
/// who subscribes to each.
#[utoipa::path(get, path = "/catalog/match", tag = "system", params(PatternQuery),
    responses((status = 200, body = Object), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn match_pattern(
    State(state): State<AppState>,
    Query(query): Query<PatternQuery>,
) -> Result<axum::Json<Value>, Problem> {
    let pattern = pattern_of(&query)?;
    let catalog = &state.catalog;
    let mut all_subscribers = std::collections::BTreeSet::new();
    let events: Vec<Value> = catalog
        .matched_by(&pattern)
        .map(|spec| {
            let subscribers: Vec<Value> = catalog
                .subscriptions
                .iter()
                .filter(|s| s.pattern.could_match(&spec.levels()))
                .map(|s| {
                    all_subscribers.insert((s.service, s.route, s.pattern.to_string()));
                    json!({"service": s.service, "route": s.route, "pattern": s.pattern.to_string()})
                })
                .collect();
            json!({
                "subject": spec.template(),
                "name": spec.name(),
                "version": spec.version,
                "publisher": spec.publisher,
                "summary": spec.summary,
                "subscribers": subscribers,
            })
        })
        .collect();
    let subscribers: Vec<Value> = all_subscribers
        .into_iter()
        .map(|(service, route, pattern)| json!({"service": service, "route": route, "pattern": pattern}))
        .collect();
    Ok(axum::Json(json!({"pattern": pattern.to_string(), "events": events, "subscribers": subscribers})))
}

/// Events seen per event type (`domain/action/version`) since start, and
/// when the newest was.
#[utoipa::path(get, path = "/catalog/live", tag = "system", responses((status = 200, body = Object)))]
pub async fn catalog_live() -> axum::Json<Value> {
    let seen: serde_json::Map<String, Value> = live::feed()
        .seen()
        .into_iter()
        .map(|(name, seen)| (name, json!({"count": seen.count, "last_seen": seen.last_seen.to_string()})))
        .collect();
    axum::Json(Value::Object(seen))
}

/// The event catalog as an AsyncAPI 3.0 document.
#[utoipa::path(get, path = "/asyncapi.json", tag = "system", responses((status = 200, body = Object)))]
pub async fn asyncapi(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(state.catalog.to_asyncapi())
}
