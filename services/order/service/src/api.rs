//! The point-of-sale API and the order queries.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use udders_contracts::events::{OrderLine, OrderPlaced};
use udders_contracts::{Service, Subject, reference};
use udders_eventstore::{DeadLetterFilter, DeadLetterStatus, DocumentCursor, DocumentFilter, EventStore, StoreError};
use udders_kernel::{CustomerId, Decider, ReadModel};
use udders_order_domain::{Order, OrderCommand, OrderView, Placement, Status};
use udders_runtime::http::{JsonBody, Path, Problem, Query};
use udders_runtime::{Cause, Outbound, clock};
use uuid::Uuid;

use crate::admission::{Admission, Refusal};
use crate::intake::Intake;
use crate::progress::{self, AuditEntry, Stuck, Waiting};
use crate::{decide_on_order, own_cause, refusal};

/// What the order routes need.
#[derive(Debug, Clone)]
pub struct OrderApi {
    /// The order database.
    pub store: EventStore,
    /// The order service's way out.
    pub outbound: Outbound,
    /// The saga deadline given to new orders.
    pub deadline: Duration,
    /// Where placements are committed, many at a time.
    intake: Intake,
    /// Whether one more order can be finished within the deadline.
    admission: Admission,
    /// The service databases of this process whose dead letters an order
    /// page and the stuck list show.
    dead_letter_stores: Vec<(Service, EventStore)>,
}

impl OrderApi {
    /// The routes' state; starts the intake task on the current runtime.
    /// A new order is admitted while it would wait at most `admission_wait`
    /// (see [`crate::admission`]; must be shorter than `deadline`).
    pub fn new(store: EventStore, outbound: Outbound, deadline: Duration, admission_wait: Duration) -> Self {
        let intake = Intake::start(store.clone(), outbound.clone());
        let admission = Admission::start(store.clone(), deadline, admission_wait);
        let dead_letter_stores = vec![(Service::Order, store.clone())];
        Self { store, outbound, deadline, intake, admission, dead_letter_stores }
    }

    /// Where this API's placements are committed (its timings, for `/metrics`).
    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// Shows the dead letters of these service databases too (every service
    /// of `udders up`; the order service's own otherwise).
    pub fn with_dead_letter_stores(mut self, stores: Vec<(Service, EventStore)>) -> Self {
        self.dead_letter_stores = stores;
        self
    }
}

/// The order routes.
pub fn routes(api: OrderApi) -> Router {
    Router::new()
        .route("/orders", post(place).get(list))
        .route("/orders/stats", get(stats))
        .route("/orders/stuck", get(stuck))
        .route("/orders/{order_id}", get(one))
        .route("/orders/{order_id}/events", get(events))
        .route("/orders/{order_id}/cancel", post(cancel))
        .route("/prices", get(crate::prices::prices))
        .with_state(api)
}

/// The operator's routes (the caller puts them behind the operator token):
/// `PUT /admin/prices/{flavor}/{country}`.
pub fn admin_routes(api: OrderApi) -> Router {
    Router::new().route("/admin/prices/{flavor}/{country}", put(crate::prices::change_price)).with_state(api)
}

/// One line of `POST /orders`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemRequest {
    /// Flavour.
    pub flavor: String,
    /// How many (a whole number; `2.0` is read as 2). Outside 1 to 100 the
    /// order is accepted and ends `REJECTED` (a business refusal).
    #[serde(deserialize_with = "udders_runtime::http::whole_u32")]
    #[schema(value_type = i64, minimum = 0, maximum = 4294967295_i64)]
    pub quantity: u32,
    /// `cup`, `pint` or `tub` (the default, also for null). Payload 1.2 publishes it,
    /// with the line's SKU; 1.1 has no place for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
}

/// The size of an order line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// A cup.
    Cup,
    /// A pint.
    Pint,
    /// A tub.
    Tub,
}

impl Size {
    /// As in the payload: `cup`, `pint` or `tub`.
    pub fn as_str(self) -> &'static str {
        match self {
            Size::Cup => "cup",
            Size::Pint => "pint",
            Size::Tub => "tub",
        }
    }
}

/// `payment` of `POST /orders`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentRequest {
    /// Card token: `tok_visa` is approved, `tok_declined` declined.
    pub card_token: String,
}

/// `delivery` of `POST /orders`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryRequest {
    /// Postal code; `00000` is undeliverable.
    #[serde(default)]
    pub postal_code: Option<String>,
}

/// The body of `POST /orders`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlaceOrder {
    /// Who buys.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub customer_id: String,
    /// Sales channel (`lazada`, `shopee`, `store711`, `web`, `pos`, ...).
    #[schema(pattern = "^[a-z0-9._-]{1,64}$")]
    pub channel: String,
    /// Country code.
    #[schema(pattern = "^[a-z0-9._-]{1,16}$")]
    pub country: String,
    /// What is bought.
    #[schema(max_items = 100)]
    pub items: Vec<ItemRequest>,
    /// How it is paid.
    pub payment: PaymentRequest,
    /// Where it goes.
    #[serde(default)]
    pub delivery: Option<DeliveryRequest>,
    /// Payload schema version, `1.1` (default) or `1.2`.
    #[serde(default)]
    #[schema(pattern = "^1\\.[12]$")]
    pub schema_version: Option<String>,
}

/// The answer to `POST /orders`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The order.
    pub order_id: String,
    /// Its status now.
    pub status: Status,
    /// The saga's correlation id.
    pub correlation_id: String,
}

/// The subject's product level for an order's lines: the flavour when
/// every line has the same catalogued one, else `mixed` (or `none`). A
/// flavour nobody sells is not a level: its length is the client's, and a
/// subject must stay within 255 bytes.
pub(crate) fn product_level(items: &[OrderLine]) -> String {
    let level = reference::product_level(items.iter().map(|l| l.flavor.as_str()));
    let known = level == "none" || reference::unit_price(&level).is_some();
    if known && is_level(&level) { level } else { "mixed".to_owned() }
}

/// The longest country and channel levels accepted: with the longest
/// catalogued subject prefix and product level, a subject stays within 255
/// bytes (`subjects_of_the_longest_accepted_order_fit_the_limit`).
pub const MAX_COUNTRY: usize = 16;
/// See [`MAX_COUNTRY`].
pub const MAX_CHANNEL: usize = 64;

fn is_level(text: &str) -> bool {
    Subject::from_levels(["order", "init", "1.1", "icecream", "udders", text, "sg", "web"]).is_ok()
}

/// 1 to 255 of ASCII 0x20 to 0x7E, the first and last not a space.
fn is_idempotency_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    (1..=255).contains(&bytes.len())
        && bytes.iter().all(|b| (0x20..=0x7e).contains(b))
        && bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
}

const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x7564_6465_7273_2d6f_7264_6572_2d6b_6579);

/// Accepts an order (202) and starts its saga. Business refusals (unknown
/// flavour, no credit, ...) are not HTTP errors: the order ends `REJECTED`.
#[utoipa::path(post, path = "/orders", tag = "order", request_body = PlaceOrder,
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, max_length = 255, pattern = "^[!-~]([ -~]*[!-~])?$",
        description = "The same key returns the same order, never a second one")),
    responses(
        (status = 202, body = Accepted, headers(("Location" = String, description = "/orders/{order_id}"))),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The Idempotency-Key was used for a different request", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or malformed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "At capacity: an order accepted now would wait longer than the admission wait (by default a fifteenth of the saga deadline); nothing was written", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    ))]
pub async fn place(
    State(api): State<OrderApi>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PlaceOrder>,
) -> Result<Response, Problem> {
    let customer = CustomerId::parse(request.customer_id.as_str())
        .map_err(|e| Problem::unprocessable(format!("customer_id: {e}")))?;
    for (field, value, longest) in
        [("country", &request.country, MAX_COUNTRY), ("channel", &request.channel, MAX_CHANNEL)]
    {
        if !is_level(value) || value.len() > longest {
            return Err(Problem::unprocessable(format!(
                "{field}: {value:?} must be 1 to {longest} of a-z, 0-9, '.', '_' and '-'"
            )));
        }
    }
    let schema_version = request.schema_version.clone().unwrap_or_else(|| "1.1".to_owned());
    if !["1.1", "1.2"].contains(&schema_version.as_str()) {
        return Err(Problem::unprocessable(format!("schema_version: {schema_version:?} is not 1.1 or 1.2")));
    }
    if request.items.len() > 100 {
        return Err(Problem::unprocessable("items: at most 100 lines"));
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => match value.to_str() {
            Ok(key) if is_idempotency_key(key) => Some(key.to_owned()),
            _ => {
                return Err(Problem::bad_request(
                    "Idempotency-Key must be 1 to 255 printable ASCII characters, not starting or ending with a space",
                ));
            }
        },
    };
    // Refused at the door when it could not finish in time: nothing is written.
    if let Err(refusal) = api.admission.check() {
        return Ok(at_capacity(refusal));
    }
    let fingerprint = serde_json::to_string(&request).map_err(|e| Problem::internal(&e))?;
    let order_id = match &key {
        Some(key) => Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, key.as_bytes()),
        None => Uuid::now_v7(),
    }
    .to_string();
    // Priced now, at the prices in force in its country; it keeps them.
    let prices =
        crate::prices::price_list(&api.store, &request.country, request.items.iter().map(|i| i.flavor.as_str()))
            .await?;
    let items: Vec<OrderLine> = request
        .items
        .iter()
        .map(|i| OrderLine {
            flavor: i.flavor.clone(),
            quantity: i.quantity,
            unit_price: prices.get(&i.flavor).copied().unwrap_or(0),
        })
        .collect();
    let total =
        items.iter().map(|l| l.unit_price.saturating_mul(i64::from(l.quantity))).fold(0i64, i64::saturating_add);
    let cause = Cause::new_saga(product_level(&items), request.country.clone(), request.channel.clone());
    let placement = Placement {
        order: OrderPlaced {
            order_id: order_id.clone(),
            customer_id: customer.to_string(),
            channel: request.channel.clone(),
            country: request.country.clone(),
            items,
            total,
            card_token: request.payment.card_token.clone(),
            postal_code: request.delivery.and_then(|d| d.postal_code),
        },
        schema_version,
        sizes: request.items.iter().map(|i| i.size.unwrap_or(Size::Tub).as_str().to_owned()).collect(),
        currency: reference::currency(&request.country).unwrap_or_default().to_owned(),
        placed_at: cause.time,
        deadline: cause.time.plus_micros(i64::try_from(api.deadline.as_micros()).unwrap_or(i64::MAX)),
        request_fingerprint: key.is_some().then(|| fingerprint.clone()),
        correlation_id: cause.correlation_id,
    };
    // Many placements commit together; a request with a key may find its
    // order placed already (the same key returns the same order).
    let state = api.intake.place(placement, cause, key.is_none()).await?;
    let placed = state.placement.as_ref().ok_or_else(|| {
        Problem::internal(&StoreError::Encode {
            what: format!("order {order_id}"),
            reason: "placed but not found".into(),
        })
    })?;
    if key.is_some() && placed.request_fingerprint.as_deref() != Some(fingerprint.as_str()) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "idempotency-key-reused",
            "this Idempotency-Key was used for a different request",
        ));
    }
    let body = Accepted {
        order_id: order_id.clone(),
        status: state.status,
        correlation_id: placed.correlation_id.to_string(),
    };
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, format!("/orders/{order_id}"))], axum::Json(body)).into_response())
}

/// 503 with `Retry-After`: the backlog would not drain within the bound, or
/// too many of its orders have waited too long already.
fn at_capacity(refusal: Refusal) -> Response {
    let detail = format!(
        "at capacity: {} orders open, ending {:.0}/s, {} of them waiting longer than the admission wait of {:.1} s; an \
         order placed now would wait longer than that; nothing was written, try again in {} s",
        refusal.open, refusal.rate, refusal.aged, refusal.wait_secs, refusal.retry_after_secs
    );
    let mut response = Problem::unavailable(detail).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(refusal.retry_after_secs));
    response
}

async fn view_of(store: &EventStore, order_id: &str) -> Result<OrderView, Problem> {
    match store.document(Order::VIEW, order_id).await? {
        Some(doc) => serde_json::from_value(doc.doc).map_err(|e| Problem::internal(&e)),
        None => Err(Problem::not_found(format!("no order {order_id}"))),
    }
}

/// An order's parked dead letter, as its page shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ParkedLetter {
    /// `service-number`, for `POST /dead-letters/{id}/replay`.
    pub id: String,
    /// The service that gave up on it.
    pub service: String,
    /// Its subject, if it had one.
    pub subject: Option<String>,
    /// Why.
    pub reason: String,
    /// Handler attempts.
    pub attempts: u32,
}

/// `GET /orders/{order_id}`: the order, what it waits on, its dead letters.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderDetail {
    /// The order read model.
    #[serde(flatten)]
    pub order: OrderView,
    /// While it is not terminal: the services it waits on, since when.
    pub waiting: Option<Waiting>,
    /// Its records parked in dead letters (in the databases this process holds).
    pub dead_letters: Vec<ParkedLetter>,
}

/// One order with its timeline across all six services, what it waits on
/// while unfinished, and its parked dead letters.
#[utoipa::path(get, path = "/orders/{order_id}", tag = "order", params(("order_id" = String, Path, description = "The order")),
    responses((status = 200, body = OrderDetail), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn one(
    State(api): State<OrderApi>,
    Path(order_id): Path<String>,
) -> Result<axum::Json<OrderDetail>, Problem> {
    let order = view_of(&api.store, &order_id).await?;
    let waiting = progress::waiting(&order, api.outbound.catalog(), clock::now());
    let mut dead_letters = Vec::new();
    let filter = DeadLetterFilter {
        status: Some(DeadLetterStatus::Parked),
        key: Some(order_id.clone()),
        limit: 100,
        ..Default::default()
    };
    for (service, store) in &api.dead_letter_stores {
        for letter in store.dead_letters(&filter).await? {
            dead_letters.push(ParkedLetter {
                id: format!("{service}-{}", letter.id),
                service: service.name().to_owned(),
                subject: letter.record.subject,
                reason: letter.record.reason,
                attempts: letter.record.attempts,
            });
        }
    }
    Ok(axum::Json(OrderDetail { order, waiting, dead_letters }))
}

/// The order's own stream, oldest first: the audit view of what the order
/// service recorded (placement, every observed event, status changes).
#[utoipa::path(get, path = "/orders/{order_id}/events", tag = "order", params(("order_id" = String, Path, description = "The order")),
    responses((status = 200, body = Vec<AuditEntry>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    State(api): State<OrderApi>,
    Path(order_id): Path<String>,
) -> Result<axum::Json<Vec<AuditEntry>>, Problem> {
    let entries = progress::audit(&api.store, &order_id).await?;
    if entries.is_empty() {
        return Err(Problem::not_found(format!("no order {order_id}")));
    }
    Ok(axum::Json(entries))
}

/// Filters of `GET /orders/stuck`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StuckQuery {
    /// Orders unfinished this long after they were placed: `5s` (default), `500ms`, `2m`.
    #[param(pattern = "^([0-9]{1,12}(ms|s|m)?)?$")]
    older_than: Option<String>,
}

/// The unfinished orders older than a threshold, grouped by the services
/// they wait on and the step those have not answered, with counts, the
/// oldest age and their dead letters.
#[utoipa::path(get, path = "/orders/stuck", tag = "order", params(StuckQuery),
    responses((status = 200, body = Stuck), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn stuck(State(api): State<OrderApi>, Query(q): Query<StuckQuery>) -> Result<axum::Json<Stuck>, Problem> {
    let older_than = match q.older_than.as_deref() {
        None | Some("") => Duration::from_secs(5),
        Some(text) => {
            udders_runtime::clock::parse_duration(text).map_err(|e| Problem::bad_request(format!("older_than: {e}")))?
        }
    };
    let found = progress::stuck(
        &api.store,
        api.outbound.catalog(),
        &api.dead_letter_stores,
        older_than,
        api.deadline,
        clock::now(),
    )
    .await?;
    Ok(axum::Json(found))
}

/// The customer cancels: 202 while the order has not shipped, 409 after.
#[utoipa::path(post, path = "/orders/{order_id}/cancel", tag = "order", params(("order_id" = String, Path, description = "The order")),
    responses((status = 202, body = OrderView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Shipped, or already ending", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel(State(api): State<OrderApi>, Path(order_id): Path<String>) -> Result<Response, Problem> {
    // The saga moves the order on meanwhile: a conflict decides again on
    // the newer state (which may refuse the cancel).
    decide_on_order(&api.store, &api.outbound, &order_id, false, |order| {
        let now = clock::now();
        let events = Order::decide(&order.state, OrderCommand::Cancel { at: now }).map_err(refusal)?;
        let cause = own_cause(order, now).ok_or_else(|| Problem::not_found(format!("no order {order_id}")))?;
        Ok((events, cause))
    })
    .await?;
    let view = view_of(&api.store, &order_id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(view)).into_response())
}

/// Filters of `GET /orders`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// PLACED, VALIDATED, RESERVED, PAID, COMPLETED, COMPENSATING, REJECTED or CANCELLED.
    #[param(pattern = "^(PLACED|VALIDATED|RESERVED|PAID|COMPLETED|COMPENSATING|REJECTED|CANCELLED)?$")]
    status: Option<String>,
    /// Country code.
    country: Option<String>,
    /// Sales channel.
    channel: Option<String>,
    /// Customer id.
    customer: Option<String>,
    /// At most this many (default 50, at most 1,000), most recently updated first.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The next page: the cursor from the previous page's `Link: <…>; rel="next"`.
    #[param(pattern = "^([0-9]{1,18}\\.[\\s\\S]*)?$")]
    after: Option<String>,
}

/// The largest page of `GET /orders`. A page is read whole, each order's
/// document with its timeline (about 3 KB of text, some 30 KB once parsed):
/// a thousand of them is some 30 MB of the process for as long as the
/// request lasts (docs/benchmarks.md, memory).
const MAX_PAGE: u32 = 1_000;

/// A row of `GET /orders`: the order without its timeline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderSummary {
    order_id: String,
    status: Status,
    reason: Option<String>,
    total: i64,
    customer_id: String,
    channel: String,
    country: String,
    placed_at: String,
    updated_at: String,
}

/// Orders, filtered, a page at a time: a full page carries a `Link` header
/// to the next.
#[utoipa::path(get, path = "/orders", tag = "order", operation_id = "list_orders", params(ListQuery),
    responses((status = 200, body = Vec<OrderSummary>,
        headers(("Link" = String, description = "`</orders?…&after=…>; rel=\"next\"` when there may be more"))),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn list(State(api): State<OrderApi>, Query(q): Query<ListQuery>) -> Result<Response, Problem> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            Status::parse(s)
                .filter(|status| status.as_str() == s)
                .ok_or_else(|| Problem::bad_request(format!("status: unknown {s:?} (PLACED, ..., CANCELLED)")))?,
        ),
    };
    let after = match q.after.as_deref() {
        None | Some("") => None,
        Some(cursor) => {
            Some(cursor.parse::<DocumentCursor>().map_err(|e| Problem::bad_request(format!("after: {e}")))?)
        }
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::bad_request(format!("limit: {limit} is not from 1 to {MAX_PAGE}")));
    }
    let filter = DocumentFilter {
        tags: [status.map(|s| s.as_str().to_owned()), q.country.clone(), q.channel.clone()],
        limit,
        after,
        field: q.customer.clone().filter(|c| !c.is_empty()).map(|c| ("customer_id".to_owned(), c)),
    };
    let page = api.store.document_page(Order::VIEW, &filter).await?;
    let rows: Vec<OrderSummary> = page
        .documents
        .into_iter()
        .filter_map(|d| serde_json::from_value::<OrderView>(d.doc).ok())
        .map(|v| OrderSummary {
            order_id: v.order_id,
            status: v.status,
            reason: v.reason,
            total: v.total.minor(),
            customer_id: v.customer_id,
            channel: v.channel,
            country: v.country,
            placed_at: v.placed_at,
            updated_at: v.updated_at,
        })
        .collect();
    let mut response = axum::Json(rows).into_response();
    if let Some(next) = page.next {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in
            [("status", q.status), ("country", q.country), ("channel", q.channel), ("customer", q.customer)]
        {
            if let Some(value) = value {
                query.append_pair(name, &value);
            }
        }
        query.append_pair("limit", &limit.to_string()).append_pair("after", &next.to_string());
        let link = format!("</orders?{}>; rel=\"next\"", query.finish());
        if let Ok(value) = header::HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// Counts of orders.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stats {
    total: u64,
    by_status: BTreeMap<String, u64>,
    by_country: BTreeMap<String, u64>,
    by_channel: BTreeMap<String, u64>,
}

/// Counts by status, country and channel.
#[utoipa::path(get, path = "/orders/stats", tag = "order", responses((status = 200, body = Stats)))]
pub async fn stats(State(api): State<OrderApi>) -> Result<axum::Json<Stats>, Problem> {
    let mut counts = Vec::new();
    for tag in 0..3 {
        let rows = api.store.count_documents(Order::VIEW, tag).await?;
        counts.push(rows.into_iter().map(|(k, n)| (k.unwrap_or_default(), n)).collect::<BTreeMap<_, _>>());
    }
    let by_channel = counts.pop().unwrap_or_default();
    let by_country = counts.pop().unwrap_or_default();
    let by_status = counts.pop().unwrap_or_default();
    Ok(axum::Json(Stats { total: by_status.values().sum(), by_status, by_country, by_channel }))
}

#[cfg(test)]
mod tests {
    use udders_contracts::{BRAND, CATEGORY, MAX_SUBJECT_LEN, udders_events};

    use super::*;

    #[test]
    fn subjects_of_the_longest_accepted_order_fit_the_limit() {
        let events = udders_events();
        let prefix =
            events.iter().map(|e| format!("{}/{}/{}/{CATEGORY}/{BRAND}/", e.domain, e.action, e.version).len());
        let product = reference::FLAVORS.iter().map(|(f, _)| f.len()).chain(["mixed".len(), "none".len()]);
        let longest = prefix.max().unwrap() + product.max().unwrap() + 1 + MAX_COUNTRY + 1 + MAX_CHANNEL;
        assert!(longest <= MAX_SUBJECT_LEN, "{longest}");
    }

    #[test]
    fn a_flavour_nobody_sells_is_not_a_product_level() {
        let line = |flavor: &str| OrderLine { flavor: flavor.into(), quantity: 1, unit_price: 0 };
        assert_eq!(product_level(&[line("mango"), line("mango")]), "mango");
        assert_eq!(product_level(&[line(&"a".repeat(217))]), "mixed");
        assert_eq!(product_level(&[line("mango"), line("vanilla")]), "mixed");
    }
}
