//! The dead letters of every service this process runs: list them, replay
//! one or all that match a filter (through the service's own handler and
//! inbox, so a record handled already changes nothing), discard one with a
//! note. Replay and discard need the operator token. A dead letter's id is
//! `service-number` (`validation-3`): the number is its row in that
//! service's database.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use udders_contracts::Service;
use udders_eventstore::{DeadLetter, DeadLetterFilter, DeadLetterStatus, EventStore};
use udders_messaging::{ReplayError, Replayed};
use udders_runtime::access::require_operator;
use udders_runtime::http::{JsonBody, Path, Problem, Query};

use crate::http::AppState;

/// The dead-letter routes; the actions behind the operator token.
pub fn routes(state: AppState) -> Router {
    let actions = Router::new()
        .route("/dead-letters/replay", post(replay_matching))
        .route("/dead-letters/{id}/replay", post(replay_one))
        .route("/dead-letters/{id}/discard", post(discard))
        .route_layer(from_fn_with_state(state.access.clone(), require_operator))
        .with_state(state.clone());
    Router::new().route("/dead-letters", get(list)).with_state(state).merge(actions)
}

/// A dead letter as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetterView {
    /// `service-number`.
    pub id: String,
    /// The service whose consumer gave up on it.
    pub service: String,
    /// Where it was read.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its subject (`ce_subject`), if it had one.
    pub subject: Option<String>,
    /// Its key: the order id.
    pub order_id: Option<String>,
    /// Why it was given up on.
    pub reason: String,
    /// Handler attempts (0: malformed, never handled).
    pub attempts: u32,
    /// RFC 3339.
    pub first_failed_at: String,
    /// RFC 3339.
    pub last_failed_at: String,
    /// `parked`, `replayed` or `discarded`.
    pub status: String,
    /// The operator's note.
    pub note: Option<String>,
    /// Its headers.
    pub headers: Vec<(String, Option<String>)>,
    /// Its value: JSON when it parses, else the text (lossy).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

fn view(service: Service, letter: DeadLetter) -> DeadLetterView {
    let payload = letter.record.payload.as_deref().map_or(serde_json::Value::Null, |bytes| {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
    });
    DeadLetterView {
        id: format!("{service}-{}", letter.id),
        service: service.name().to_owned(),
        topic: letter.record.topic,
        partition: letter.record.partition,
        offset: letter.record.offset,
        subject: letter.record.subject,
        order_id: letter.record.key,
        reason: letter.record.reason,
        attempts: letter.record.attempts,
        first_failed_at: letter.record.first_failed_at.to_string(),
        last_failed_at: letter.record.last_failed_at.to_string(),
        status: letter.status.as_str().to_owned(),
        note: letter.note,
        headers: letter.record.headers,
        payload,
    }
}

/// Filters of the dead-letter list and of "replay all that match".
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Only this service's.
    #[param(
        pattern = "^(order|validation|validation-us|credit|inventory|payment|fulfillment|notification|insights)?$"
    )]
    service: Option<String>,
    /// `parked` (the default for replay), `replayed` or `discarded`; all when absent (list).
    #[param(pattern = "^(parked|replayed|discarded)?$")]
    status: Option<String>,
    /// Only those whose reason contains this text.
    reason: Option<String>,
    /// Only this order's.
    order_id: Option<String>,
    /// At most this many per service (default 200, at most 10,000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
}

fn services_of<'a>(state: &'a AppState, query: &DeadLetterQuery) -> Result<Vec<(Service, &'a EventStore)>, Problem> {
    let wanted = match query.service.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(name) => {
            Some(Service::from_name(name).ok_or_else(|| Problem::bad_request(format!("service: unknown {name:?}")))?)
        }
    };
    Ok(state.stores.iter().filter(|(s, _)| wanted.is_none_or(|w| w == **s)).map(|(s, store)| (*s, store)).collect())
}

fn filter_of(query: &DeadLetterQuery, default_status: Option<DeadLetterStatus>) -> Result<DeadLetterFilter, Problem> {
    let status =
        match query.status.as_deref().filter(|s| !s.is_empty()) {
            None => default_status,
            Some(text) => Some(DeadLetterStatus::parse(text).ok_or_else(|| {
                Problem::bad_request(format!("status: {text:?} is not parked, replayed or discarded"))
            })?),
        };
    Ok(DeadLetterFilter {
        status,
        reason: query.reason.clone().filter(|r| !r.is_empty()),
        key: query.order_id.clone().filter(|k| !k.is_empty()),
        limit: match query.limit.unwrap_or(200) {
            limit @ 1..=10_000 => limit,
            other => return Err(Problem::bad_request(format!("limit: {other} is not from 1 to 10,000"))),
        },
    })
}

/// Dead letters of every service of this process (or one), newest first.
#[utoipa::path(get, path = "/dead-letters", tag = "operations", operation_id = "list_dead_letters", params(DeadLetterQuery),
    responses((status = 200, body = Vec<DeadLetterView>), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<axum::Json<Vec<DeadLetterView>>, Problem> {
    let filter = filter_of(&query, None)?;
    let mut all = Vec::new();
    for (service, store) in services_of(&state, &query)? {
        all.extend(store.dead_letters(&filter).await?.into_iter().map(|l| view(service, l)));
    }
    all.sort_by(|a, b| b.last_failed_at.cmp(&a.last_failed_at));
    Ok(axum::Json(all))
}

fn parse_id(id: &str) -> Result<(Service, i64), Problem> {
    let bad = || Problem::not_found(format!("no dead letter {id}"));
    let (service, number) = id.rsplit_once('-').ok_or_else(bad)?;
    Ok((Service::from_name(service).ok_or_else(bad)?, number.parse().map_err(|_| bad())?))
}

/// What a replay did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayAnswer {
    /// The dead letter.
    id: String,
    /// Now `replayed`.
    status: &'static str,
    /// `handled` (its effects are committed), `duplicate` (it had been
    /// handled already: nothing changed) or `skipped` (no route wants it).
    outcome: &'static str,
}

async fn replay_id(state: &AppState, id: &str) -> Result<ReplayAnswer, Problem> {
    let (service, number) = parse_id(id)?;
    if !state.stores.contains_key(&service) {
        return Err(Problem::not_found(format!("no dead letter {id} here: {service} runs in another process")));
    }
    let replayer = state
        .replayers
        .lock()
        .ok()
        .and_then(|r| r.get(&service).cloned())
        .ok_or_else(|| Problem::unavailable(format!("{service} is not running; replay it once it runs")))?;
    match replayer.replay(number).await {
        Ok(outcome) => Ok(ReplayAnswer {
            id: id.to_owned(),
            status: DeadLetterStatus::Replayed.as_str(),
            outcome: match outcome {
                Replayed::Handled => "handled",
                Replayed::Duplicate => "duplicate",
                Replayed::Skipped => "skipped",
            },
        }),
        Err(ReplayError::NotFound(_)) => Err(Problem::not_found(format!("no dead letter {id}"))),
        Err(error @ ReplayError::NotParked { .. }) => Err(Problem::conflict(error.to_string())),
        Err(ReplayError::FailedAgain(reason)) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "replay-failed",
            format!("dead letter {id} failed again and stays parked: {reason}"),
        )),
        Err(ReplayError::Store(error)) => Err(error.into()),
        Err(ReplayError::Unavailable(reason)) => {
            Err(Problem::unavailable(format!("{service}'s database is unavailable; try again: {reason}")))
        }
    }
}

/// Replays one dead letter through its service's handler and inbox.
#[utoipa::path(post, path = "/dead-letters/{id}/replay", tag = "operations",
    params(("id" = String, Path, description = "`service-number`, for example `validation-3`")),
    security(("operator" = [])),
    responses((status = 200, body = ReplayAnswer),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not parked", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Failed again; stays parked", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The service or its database is not available here now", body = Problem, content_type = "application/problem+json")))]
pub async fn replay_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<ReplayAnswer>, Problem> {
    Ok(axum::Json(replay_id(&state, &id).await?))
}

/// Replays every parked dead letter that matches the filter.
#[utoipa::path(post, path = "/dead-letters/replay", tag = "operations", params(DeadLetterQuery),
    security(("operator" = [])),
    responses((status = 200, body = Object),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn replay_matching(
    State(state): State<AppState>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Response, Problem> {
    let filter = filter_of(&query, Some(DeadLetterStatus::Parked))?;
    let mut ids = Vec::new();
    for (service, store) in services_of(&state, &query)? {
        ids.extend(store.dead_letters(&filter).await?.into_iter().map(|l| format!("{service}-{}", l.id)));
    }
    let (mut replayed, mut failed) = (Vec::new(), Vec::new());
    for id in ids {
        match replay_id(&state, &id).await {
            Ok(answer) => replayed.push(serde_json::json!({"id": id, "outcome": answer.outcome})),
            Err(problem) => failed.push(serde_json::json!({"id": id, "detail": problem.detail})),
        }
    }
    let body = serde_json::json!({"replayed": replayed.len(), "failed": failed.len(), "results": {"replayed": replayed, "failed": failed}});
    Ok(axum::Json(body).into_response())
}

/// The body of a discard.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Discard {
    /// Why it is set aside (kept with it).
    #[schema(min_length = 1, max_length = 1000)]
    #[schema(pattern = "\\S")]
    pub note: String,
}

/// Sets a parked dead letter aside with a note; it is kept, no longer parked.
#[utoipa::path(post, path = "/dead-letters/{id}/discard", tag = "operations",
    params(("id" = String, Path, description = "`service-number`")), request_body = Discard,
    security(("operator" = [])),
    responses((status = 200, body = Object),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not parked", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn discard(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Discard>,
) -> Result<axum::Json<serde_json::Value>, Problem> {
    let note = body.note.trim();
    if note.is_empty() || note.chars().count() > 1000 {
        return Err(Problem::unprocessable("note: 1 to 1,000 characters saying why"));
    }
    let (service, number) = parse_id(&id)?;
    let store = state.stores.get(&service).ok_or_else(|| Problem::not_found(format!("no dead letter {id}")))?;
    let letter = store.dead_letter(number).await?.ok_or_else(|| Problem::not_found(format!("no dead letter {id}")))?;
    if !store.resolve_dead_letter(number, DeadLetterStatus::Discarded, Some(note)).await? {
        return Err(Problem::conflict(format!("dead letter {id} is {}, not parked", letter.status.as_str())));
    }
    tracing::info!(%id, "dead letter discarded");
    Ok(axum::Json(serde_json::json!({"id": id, "status": "discarded", "note": note})))
}
