//! Catching up on history this service missed (docs/adr/0015). A
//! notification service that starts after orders were placed cannot count
//! on the broker for them: the embedded broker is trimmed of what every
//! reader has passed and starts empty, and Apache Kafka keeps a topic for
//! its retention only. The order service's read model keeps every order
//! with its timeline, each entry the event as it was published. So on its
//! first start the notification service pages through `GET /orders`, reads
//! each order's timeline (`GET /orders/{order_id}`) and feeds every entry
//! through the same [`react`] as the live consumer, on the route the
//! consumer would have named ([`route_of`]). The decider keys
//! notices by order and kind, so what the backfill and the broker both
//! deliver is queued once. The consumer runs meanwhile; an order written
//! while the backfill pages moves to the front of the list and may be
//! passed over, so passes repeat over the orders written since the
//! previous pass began (by the write time in the list's cursor), until one
//! finds none. A mark in the store says it is done.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use udders_contracts::{Integration, Subject};
use udders_eventstore::{Document, EventStore, StoreError};
use udders_kernel::{Decider, Timestamp};
use udders_notification_domain::{Notices, react, route_of};
use udders_runtime::{Cause, Outbound, change_reference, clock};

/// The view holding the backfill's mark (key `order`).
pub const BACKFILL_VIEW: &str = "backfills";
/// Orders per page of `GET /orders`.
const PAGE: u32 = 500;
/// Passes at most, before the backfill calls itself done.
const MAX_PASSES: usize = 5;

/// A row of `GET /orders`.
#[derive(Debug, Deserialize)]
struct OrderRow {
    order_id: String,
}

/// What the backfill reads of `GET /orders/{order_id}`.
#[derive(Debug, Deserialize)]
struct OrderTimeline {
    correlation_id: String,
    channel: String,
    country: String,
    timeline: Vec<Entry>,
}

/// A timeline entry: one event as published.
#[derive(Debug, Deserialize)]
struct Entry {
    event_id: String,
    subject: String,
    time: String,
    #[serde(default)]
    payload: Value,
}

/// Why a backfill stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The order service did not answer as expected.
    #[error("reading the order service at {url}: {reason}")]
    Order {
        /// The request.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A notice could not be recorded.
    #[error("recording the notices of order {order_id}: {detail}")]
    Record {
        /// The order.
        order_id: String,
        /// What went wrong.
        detail: String,
    },
    /// This service's store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Feeds the history of every order the order service at `order_url` knows
/// through the live reaction, unless a previous backfill finished. Returns
/// how many orders were read, each counted once (0 when already done).
pub async fn backfill(store: &EventStore, outbound: &Outbound, order_url: &str) -> Result<usize, BackfillError> {
    if store.document(BACKFILL_VIEW, "order").await?.is_some() {
        return Ok(0);
    }
    let base = order_url.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| BackfillError::Order { url: base.to_owned(), reason: e.to_string() })?;
    let mut read = 0;
    let mut since: Option<i64> = None;
    for _ in 0..MAX_PASSES {
        let began = clock::now();
        let mut this_pass = 0;
        let mut next = Some(format!("/orders?limit={PAGE}"));
        while let Some(path) = next.take() {
            let (rows, link): (Vec<OrderRow>, _) = get_json(&client, &format!("{base}{path}")).await?;
            for row in &rows {
                let url = format!("{base}/orders/{}", row.order_id);
                let (order, _): (OrderTimeline, _) = get_json(&client, &url).await?;
                // New to this pass: an order that heard of something since
                // the previous pass began (its newest timeline entry).
                let newest = order.timeline.iter().filter_map(|e| Timestamp::parse_rfc3339(&e.time).ok()).max();
                if since.is_none_or(|since| newest.is_some_and(|at| at.micros() >= since)) {
                    this_pass += 1;
                }
                feed(store, outbound, &row.order_id, &order).await?;
            }
            // Most recently written first: once a page ends before `since`,
            // the rest was read by the previous pass.
            next = link.filter(|path| since.is_none_or(|since| written_at(path).is_none_or(|at| at >= since)));
        }
        read += this_pass;
        if this_pass == 0 {
            break;
        }
        // A second's margin for clocks: reading an order again is harmless.
        since = Some(began.plus_micros(-1_000_000).micros());
    }
    let mut tx = store.begin().await?;
    let mark = json!({ "source": base, "orders_read": read, "finished_at": clock::now().to_string() });
    tx.put_document(Document {
        view: BACKFILL_VIEW.to_owned(),
        key: "order".to_owned(),
        doc: mark,
        tags: [None, None, None],
        due: None,
    })
    .await?;
    tx.commit().await?;
    Ok(read)
}

/// Runs [`backfill`] until it succeeds (the order service may start later),
/// or `cancel`.
pub async fn run_backfill(store: EventStore, outbound: Outbound, order_url: String, cancel: CancellationToken) {
    let mut pause = Duration::from_millis(200);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            done = backfill(&store, &outbound, &order_url) => match done {
                Ok(0) => return,
                Ok(orders) => {
                    tracing::info!(orders, from = %order_url, "notification backfill read the orders it missed");
                    return;
                }
                Err(error) => tracing::warn!(%error, "the notification backfill failed; trying again"),
            },
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// One order's timeline through the live reaction.
async fn feed(
    store: &EventStore,
    outbound: &Outbound,
    order_id: &str,
    order: &OrderTimeline,
) -> Result<(), BackfillError> {
    for entry in &order.timeline {
        // Entries recorded before payloads were kept cannot be read again.
        let (Ok(subject), false) = (entry.subject.parse::<Subject>(), entry.payload.is_null()) else { continue };
        let Ok(event) = Integration::parse(&subject, entry.payload.clone()) else { continue };
        let at = Timestamp::parse_rfc3339(&entry.time).unwrap_or_else(|_| clock::now());
        // The route the consumer would have named: no route, no notice.
        let Some(route) = route_of(&subject) else { continue };
        let Some((_, command)) = react(route, &event, at) else { continue };
        let mut cause = Cause::new_saga("none".to_owned(), order.country.clone(), order.channel.clone());
        cause.correlation_id = order.correlation_id.parse().unwrap_or(cause.correlation_id);
        cause.causation_id = entry.event_id.parse().ok();
        cause.time = at;
        change_reference::<Notices>(
            store,
            outbound,
            order_id,
            &cause,
            |state| Ok(Notices::decide(state, command.clone()).unwrap_or_default()),
            |_, _| None,
        )
        .await
        .map_err(|problem| BackfillError::Record { order_id: order_id.to_owned(), detail: problem.detail })?;
    }
    Ok(())
}

/// The write time (microseconds) in the cursor of a next-page path
/// (`…&after=<micros>.<order id>`): the last listed order's.
fn written_at(path: &str) -> Option<i64> {
    let (_, cursor) = path.split_once("after=")?;
    cursor.split('.').next()?.parse().ok()
}

/// A GET's JSON body and, from its `Link` header, the path of the next page.
async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<(T, Option<String>), BackfillError> {
    let failed = |reason: String| BackfillError::Order { url: url.to_owned(), reason };
    let response = client.get(url).send().await.map_err(|e| failed(e.to_string()))?;
    let response = response.error_for_status().map_err(|e| failed(e.to_string()))?;
    let next = response
        .headers()
        .get(reqwest::header::LINK)
        .and_then(|link| link.to_str().ok())
        .and_then(|link| link.strip_prefix('<'))
        .and_then(|link| link.split_once('>'))
        .map(|(path, _)| path.to_owned());
    let body = response.json().await.map_err(|e| failed(e.to_string()))?;
    Ok((body, next))
}
