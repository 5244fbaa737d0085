//! Where a saga stands, for the console: which services an unfinished order
//! waits on and since when, the orders stuck longer than a threshold grouped
//! by what they wait on, and an order's own stream (the audit view).
//!
//! "Waits on" comes from the order's timeline and the catalog, not from a
//! list of steps: for each event of the timeline, oldest first, the services
//! that answer that event type (the catalog's subscribers whose route
//! publishes) and have published nothing since; the first event with such
//! services names them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use udders_contracts::{Catalog, Service, Subject};
use udders_eventstore::{DeadLetterFilter, DeadLetterStatus, DocumentFilter, EventStore, StreamId};
use udders_kernel::{Aggregate, ReadModel, Timestamp};
use udders_order_domain::{Order, OrderView, Status};

/// What an unfinished order waits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Waiting {
    /// The services that have not answered yet.
    pub on: Vec<String>,
    /// The event they have not answered (`domain/action`), or `order/init`
    /// when the order's first event has not come back from the broker.
    pub step: String,
    /// Since when (RFC 3339).
    pub since: String,
    /// For how long, milliseconds.
    pub for_ms: i64,
}

/// What `view` waits on at `now`; `None` once it is terminal.
pub fn waiting(view: &OrderView, catalog: &Catalog, now: Timestamp) -> Option<Waiting> {
    if view.status.is_terminal() {
        return None;
    }
    let since_ms = |time: &str| {
        let at = Timestamp::parse_rfc3339(time).unwrap_or(now);
        (now.micros() - at.micros()).max(0) / 1000
    };
    let Some(first) = view.timeline.first() else {
        return Some(Waiting {
            on: vec![Service::Order.name().to_owned()],
            step: "order/init".into(),
            since: view.placed_at.clone(),
            for_ms: since_ms(&view.placed_at),
        });
    };
    for entry in &view.timeline {
        let Some(spec) = entry.subject.parse::<Subject>().ok().and_then(|s| catalog.spec_of(&s).cloned()) else {
            continue;
        };
        let pending: Vec<String> = catalog
            .answerers_of(&spec)
            .into_iter()
            .filter(|service| {
                // An answer from any deployable publishing as the service.
                let answered_by = |source: &str| {
                    source.strip_prefix("/udders/").and_then(Service::from_name).map(Service::publishes_as)
                        == Some(*service)
                };
                !view.timeline.iter().any(|later| answered_by(&later.source) && later.time >= entry.time)
            })
            .map(|s| s.name().to_owned())
            .collect();
        if !pending.is_empty() {
            return Some(Waiting {
                on: pending,
                step: spec.name(),
                since: entry.time.clone(),
                for_ms: since_ms(&entry.time),
            });
        }
    }
    // Everyone answered what they heard, and the order is not terminal:
    // it waits on itself (its next step is its own).
    let last = view.timeline.last().unwrap_or(first);
    Some(Waiting {
        on: vec![Service::Order.name().to_owned()],
        step: last.subject.splitn(3, '/').take(2).collect::<Vec<_>>().join("/"),
        since: last.time.clone(),
        for_ms: since_ms(&last.time),
    })
}

/// One stuck order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StuckOrder {
    /// The order.
    pub order_id: String,
    /// Its status.
    pub status: String,
    /// Since it was placed, milliseconds.
    pub age_ms: i64,
    /// Its newest event's subject, if any came back.
    pub last_subject: Option<String>,
    /// What it waits on.
    pub waiting: Waiting,
    /// Its parked dead letters (`service-id`), where it is stuck.
    pub dead_letters: Vec<String>,
}

/// Stuck orders that wait on the same services after the same step.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StuckGroup {
    /// The services waited on, joined with `+`.
    pub waiting_on: String,
    /// The step they have not answered.
    pub step: String,
    /// How many orders.
    pub count: usize,
    /// The oldest one's age, milliseconds.
    pub oldest_age_ms: i64,
    /// The orders, oldest first (at most 100 per group).
    pub orders: Vec<StuckOrder>,
}

/// `GET /orders/stuck`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Stuck {
    /// The threshold, milliseconds.
    pub older_than_ms: i64,
    /// Stuck orders found (at most 1,000 are examined).
    pub total: usize,
    /// By what they wait on, largest group first.
    pub groups: Vec<StuckGroup>,
}

/// Orders examined at most by one stuck query.
const MAX_STUCK: u32 = 1000;

/// The unfinished orders placed more than `older_than` ago, grouped by what
/// they wait on. `deadline` is the saga deadline (an open order's read model
/// is due at its deadline, so the due index finds the old ones). Dead
/// letters are looked up in `dead_letter_stores` (every service database
/// this process holds).
pub async fn stuck(
    store: &EventStore,
    catalog: &Catalog,
    dead_letter_stores: &[(Service, EventStore)],
    older_than: Duration,
    deadline: Duration,
    now: Timestamp,
) -> Result<Stuck, udders_eventstore::StoreError> {
    let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    let placed_before = now.plus_micros(-micros(older_than));
    // Due at placed + deadline: due before `placed_before + deadline` is placed before `placed_before`.
    let mut docs =
        store.due_documents_read(Order::VIEW, placed_before.plus_micros(micros(deadline)), MAX_STUCK).await?;
    // A compensating order is no longer due (the sweeper has nothing left to
    // call off), yet it can wait for ever on a holder that does not answer.
    let compensating = DocumentFilter {
        tags: [Some(Status::Compensating.as_str().to_owned()), None, None],
        limit: MAX_STUCK,
        ..Default::default()
    };
    for doc in store.documents(Order::VIEW, &compensating).await? {
        if !docs.iter().any(|due| due.key == doc.key) {
            docs.push(doc);
        }
    }
    let mut parked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (service, peer) in dead_letter_stores {
        let filter = DeadLetterFilter { status: Some(DeadLetterStatus::Parked), limit: 10_000, ..Default::default() };
        for letter in peer.dead_letters(&filter).await? {
            if let Some(key) = letter.record.key {
                parked.entry(key).or_default().push(format!("{service}-{}", letter.id));
            }
        }
    }
    let mut groups: BTreeMap<(String, String), StuckGroup> = BTreeMap::new();
    let mut total = 0;
    for doc in docs {
        let Ok(view) = serde_json::from_value::<OrderView>(doc.doc) else { continue };
        let placed = Timestamp::parse_rfc3339(&view.placed_at).unwrap_or(now);
        if placed > placed_before {
            continue;
        }
        let Some(waiting) = waiting(&view, catalog, now) else { continue };
        total += 1;
        let group = groups.entry((waiting.on.join("+"), waiting.step.clone())).or_insert_with(|| StuckGroup {
            waiting_on: waiting.on.join("+"),
            step: waiting.step.clone(),
            count: 0,
            oldest_age_ms: 0,
            orders: Vec::new(),
        });
        let age_ms = (now.micros() - placed.micros()) / 1000;
        group.count += 1;
        group.oldest_age_ms = group.oldest_age_ms.max(age_ms);
        if group.orders.len() < 100 {
            group.orders.push(StuckOrder {
                order_id: view.order_id.clone(),
                status: view.status.as_str().to_owned(),
                age_ms,
                last_subject: view.timeline.last().map(|e| e.subject.clone()),
                waiting,
                dead_letters: parked.remove(&view.order_id).unwrap_or_default(),
            });
        }
    }
    let mut groups: Vec<StuckGroup> = groups.into_values().collect();
    for group in &mut groups {
        group.orders.sort_by_key(|o| std::cmp::Reverse(o.age_ms));
    }
    groups.sort_by_key(|g| std::cmp::Reverse((g.count, g.oldest_age_ms)));
    Ok(Stuck { older_than_ms: micros(older_than) / 1000, total, groups })
}

/// How many orders are compensating with no change to their read model for
/// `quiet` (the order service's `/metrics` uses the saga deadline): a
/// compensation takes milliseconds, so one this quiet waits on a holder
/// that does not answer, and no deadline will end it. One count on the
/// status index.
pub async fn quiet_compensations(
    store: &EventStore,
    quiet: Duration,
    now: Timestamp,
) -> Result<u64, udders_eventstore::StoreError> {
    let since = now.plus_micros(-i64::try_from(quiet.as_micros()).unwrap_or(i64::MAX));
    store.count_documents_tagged_before(Order::VIEW, &[Status::Compensating.as_str()], since).await
}

/// One event of the order's own stream.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Its version in the stream.
    pub sequence: u64,
    /// Its type, for example `Observed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its schema version.
    pub schema_version: u16,
    /// When the store committed it (RFC 3339).
    pub recorded_at: String,
    /// Its data.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Its id, correlation and causation ids, and when it happened.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}

/// The order's stream, oldest first: what the order service itself recorded.
pub async fn audit(store: &EventStore, order_id: &str) -> Result<Vec<AuditEntry>, udders_eventstore::StoreError> {
    let events = store.read_stream(&StreamId::new(Order::CATEGORY, order_id), 0).await?;
    Ok(events
        .into_iter()
        .map(|e| AuditEntry {
            sequence: e.version,
            event_type: e.event_type,
            schema_version: e.schema_version,
            recorded_at: e.recorded_at.to_string(),
            data: e.payload,
            metadata: serde_json::json!({
                "event_id": e.event_id.to_string(),
                "correlation_id": e.metadata.correlation_id.map(|c| c.to_string()),
                "causation_id": e.metadata.causation_id.map(|c| c.to_string()),
                "occurred_at": e.metadata.occurred_at.to_string(),
            }),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use udders_contracts::{CatalogError, Subscription, subscriptions, udders_events};
    use udders_kernel::Money;
    use udders_order_domain::{Status, StepKind, TimelineEntry};

    use super::*;

    /// The events with the subscriptions of every service that answers in
    /// the saga (validation's two deployables, credit, inventory, payment,
    /// fulfillment): what `waiting` reads. The whole catalog is assembled
    /// by the `udders` crate, which this one cannot depend on, so the
    /// domain crates that declare these subscriptions are dev-dependencies.
    fn catalog() -> Catalog {
        Catalog::assemble(udders_events(), saga().unwrap()).unwrap()
    }

    /// Those services' subscriptions, in their declared order.
    fn saga() -> Result<Vec<Subscription>, CatalogError> {
        let mut rows = Vec::new();
        for (service, row) in udders_validation_domain::SUBSCRIPTIONS {
            rows.push(row.subscription(*service)?);
        }
        rows.extend(subscriptions(Service::Credit, udders_credit_domain::SUBSCRIPTIONS)?);
        rows.extend(subscriptions(Service::Inventory, udders_inventory_domain::SUBSCRIPTIONS)?);
        rows.extend(subscriptions(Service::Payment, udders_payment_domain::SUBSCRIPTIONS)?);
        rows.extend(subscriptions(Service::Fulfillment, udders_fulfillment_domain::SUBSCRIPTIONS)?);
        Ok(rows)
    }

    fn entry(subject: &str, service: &str, second: u32) -> TimelineEntry {
        TimelineEntry {
            event_id: format!("{subject}-{second}"),
            subject: format!("{subject}/1.0/icecream/udders/mango/sg/web").replace("order/init/1.0", "order/init/1.1"),
            source: format!("/udders/{service}"),
            time: format!("2026-12-01T10:00:{second:02}Z"),
            causation_id: None,
            kind: StepKind::Step,
            payload: serde_json::Value::Null,
        }
    }

    fn view(status: Status, timeline: Vec<TimelineEntry>) -> OrderView {
        OrderView {
            order_id: "o-1".into(),
            status,
            reason: None,
            total: Money::from_minor(600),
            customer_id: "c".into(),
            channel: "web".into(),
            country: "sg".into(),
            items: Vec::new(),
            schema_version: "1.1".into(),
            placed_at: "2026-12-01T10:00:00Z".into(),
            updated_at: "2026-12-01T10:00:00Z".into(),
            deadline: "2026-12-01T10:00:30Z".into(),
            correlation_id: "c".into(),
            timeline,
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::parse_rfc3339("2026-12-01T10:00:00Z").unwrap().plus_micros(second * 1_000_000)
    }

    #[test]
    fn an_order_whose_stock_was_reserved_but_not_its_credit_waits_on_credit_and_payment() {
        let catalog = catalog();
        let order = view(
            Status::Validated,
            vec![
                entry("order/init", "order", 1),
                entry("order/valid", "validation", 2),
                entry("inventory/reserved", "inventory", 3),
            ],
        );
        let waiting = waiting(&order, &catalog, at(10)).unwrap();
        assert_eq!(
            (waiting.on, waiting.step.as_str(), waiting.for_ms),
            (vec!["credit".into(), "payment".into()], "order/valid", 8000)
        );
    }

    #[test]
    fn a_1_2_order_from_the_us_answered_by_validation_us_waits_on_the_next_steps_not_on_validation() {
        let catalog = catalog();
        let mut init = entry("order/init", "order", 1);
        init.subject = "order/init/1.2/icecream/udders/mango/us/web".into();
        let mut valid = entry("order/valid", "validation-us", 2);
        valid.subject = valid.subject.replace("/sg/", "/us/");
        let validated = view(Status::Validated, vec![init.clone(), valid]);
        assert_eq!(waiting(&validated, &catalog, at(5)).unwrap().on, ["credit", "inventory", "payment"]);
        let placed = view(Status::Placed, vec![init]);
        assert_eq!(waiting(&placed, &catalog, at(5)).unwrap().on, ["validation"], "one validation, either deployable");
    }

    #[test]
    fn a_reserved_order_waits_on_payment_and_a_fresh_one_on_its_own_first_event() {
        let catalog = catalog();
        let reserved = view(
            Status::Reserved,
            vec![
                entry("order/init", "order", 1),
                entry("order/valid", "validation", 2),
                entry("credit/reserved", "credit", 3),
                entry("inventory/reserved", "inventory", 3),
            ],
        );
        assert_eq!(waiting(&reserved, &catalog, at(9)).unwrap().on, ["payment"]);
        let fresh = view(Status::Placed, Vec::new());
        let waiting_fresh = waiting(&fresh, &catalog, at(4)).unwrap();
        assert_eq!(
            (waiting_fresh.on, waiting_fresh.step.as_str(), waiting_fresh.for_ms),
            (vec!["order".into()], "order/init", 4000)
        );
        let done = view(Status::Completed, Vec::new());
        assert!(super::waiting(&done, &catalog, at(4)).is_none());
    }

    #[test]
    fn a_declined_order_waits_on_the_holders_that_have_not_released() {
        let catalog = catalog();
        let order = view(
            Status::Compensating,
            vec![
                entry("order/init", "order", 1),
                entry("order/valid", "validation", 2),
                entry("credit/reserved", "credit", 3),
                entry("inventory/reserved", "inventory", 3),
                entry("payment/declined", "payment", 4),
                entry("credit/released", "credit", 5),
            ],
        );
        let waiting = waiting(&order, &catalog, at(6)).unwrap();
        assert_eq!((waiting.on, waiting.step.as_str()), (vec!["inventory".into()], "payment/declined"));
    }
}
