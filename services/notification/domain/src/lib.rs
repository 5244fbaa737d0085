//! Notification's pure domain: what a customer is told about an order, and
//! whether it reached them.
//!
//! [`Notices`] (stream `notices-<order>`) folds what the other services
//! published about one order. `order/init` names the customer and queues
//! the *received* notice; the first outcome (shipped, refused by a step,
//! cancelled, expired) queues the closing notice, and later outcomes change
//! nothing. An outcome can arrive before `order/init` (they travel on
//! different topics): it is queued all the same, and nothing is sent before
//! the customer is known.
//!
//! The sender reports each attempt: delivered, or failed and tried again
//! after a growing pause, up to [`MAX_ATTEMPTS`]. A notice is identified by
//! its order and kind ([`notification_id`]), so the same fact heard twice
//! (from the broker and from a backfill, or redelivered) queues one notice,
//! and the sender passes that id to the courier as its idempotency key.
//!
//! Its subscriptions ([`SUBSCRIPTIONS`], one [`Route`] per purpose:
//! `address`, `conclude`) are declared beside [`react`], which takes the
//! route a record came on first.
//!
//! What must not: I/O, clocks.

use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use udders_contracts::{Integration, Subscribe};
use udders_kernel::{Aggregate, Decider, Money, ReadModel, Timestamp};

/// Attempts before a notice is given up on (`FAILED`).
pub const MAX_ATTEMPTS: u32 = 8;
/// The pause after the first failed attempt; it doubles with each failure.
pub const FIRST_RETRY_MICROS: i64 = 500_000;
/// The longest pause between two attempts.
pub const LONGEST_RETRY_MICROS: i64 = 60_000_000;

/// The notices of one order.
#[derive(Debug)]
pub struct Notices;

/// What a notice tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The order was placed.
    Received,
    /// The carrier took the parcel.
    Shipped,
    /// A step refused the order (rules, credit, stock, payment, carrier).
    Refused,
    /// The customer cancelled it.
    Cancelled,
    /// The saga deadline passed.
    Expired,
}

impl Kind {
    /// Its name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Received => "received",
            Kind::Shipped => "shipped",
            Kind::Refused => "refused",
            Kind::Cancelled => "cancelled",
            Kind::Expired => "expired",
        }
    }

    /// True for the kinds that close an order's story: one per order.
    pub fn is_closing(self) -> bool {
        self != Kind::Received
    }

    /// The subject line the customer reads.
    pub fn subject(self, order_id: &str) -> String {
        match self {
            Kind::Received => format!("We have your order {order_id}"),
            Kind::Shipped => format!("Your order {order_id} is on its way"),
            Kind::Refused => format!("We could not complete your order {order_id}"),
            Kind::Cancelled => format!("Your order {order_id} is cancelled"),
            Kind::Expired => format!("Your order {order_id} could not be completed in time"),
        }
    }
}

/// The id of an order's notice of one kind: the courier's idempotency key.
pub fn notification_id(order_id: &str, kind: Kind) -> String {
    format!("{order_id}.{}", kind.as_str())
}

/// Where a notice's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Delivery {
    /// Queued, or failed and waiting for its next attempt.
    Pending,
    /// The courier took it.
    Delivered,
    /// Given up after [`MAX_ATTEMPTS`].
    Failed,
}

/// One notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// What it tells.
    pub kind: Kind,
    /// The particulars (a refusal's reason, the shipment), for people.
    pub detail: String,
    /// When the fact it tells happened (the event's time).
    pub at: Timestamp,
    /// Its delivery.
    pub delivery: Delivery,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due, while pending.
    pub next_attempt: Option<Timestamp>,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When the courier took it.
    pub delivered_at: Option<Timestamp>,
}

/// An order's notices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticesState {
    /// Who to tell, once `order/init` has been heard.
    pub customer_id: Option<String>,
    /// The order's total.
    pub total: Money,
    /// Queued notices, oldest first.
    pub notices: Vec<Notice>,
}

impl NoticesState {
    /// The notice of a kind, if queued.
    pub fn notice(&self, kind: Kind) -> Option<&Notice> {
        self.notices.iter().find(|n| n.kind == kind)
    }
}

/// What an order's notices are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticesCommand {
    /// `order/init`: who placed it (and queue *received*).
    Address {
        /// The customer.
        customer_id: String,
        /// The order's total.
        total: Money,
        /// When it was placed.
        at: Timestamp,
    },
    /// An outcome: queue the closing notice, unless one is queued already.
    Conclude {
        /// What happened.
        kind: Kind,
        /// Its particulars.
        detail: String,
        /// When.
        at: Timestamp,
    },
    /// The sender's report of one attempt.
    Report {
        /// Which notice.
        kind: Kind,
        /// `Err`: why the courier did not take it.
        result: Result<(), String>,
        /// When the attempt ended.
        at: Timestamp,
    },
}

/// What happened to an order's notices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum NoticesEvent {
    /// The customer is known.
    Addressed {
        /// The customer.
        customer_id: String,
        /// The order's total.
        total: Money,
    },
    /// A notice is queued for sending.
    Queued {
        /// What it tells.
        kind: Kind,
        /// Its particulars.
        detail: String,
        /// When the fact happened.
        at: Timestamp,
    },
    /// The courier took it.
    Delivered {
        /// Which notice.
        kind: Kind,
        /// When.
        at: Timestamp,
    },
    /// An attempt failed.
    AttemptFailed {
        /// Which notice.
        kind: Kind,
        /// Why.
        error: String,
        /// When the next attempt is due; `None`: given up.
        retry_at: Option<Timestamp>,
    },
}

/// The pause after the `failures`-th failed attempt.
pub fn retry_pause_micros(failures: u32) -> i64 {
    let doublings = failures.saturating_sub(1).min(30);
    FIRST_RETRY_MICROS.saturating_mul(1_i64 << doublings).min(LONGEST_RETRY_MICROS)
}

impl Decider for Notices {
    type State = NoticesState;
    type Command = NoticesCommand;
    type Event = NoticesEvent;
    type Error = std::convert::Infallible;

    fn initial_state() -> NoticesState {
        NoticesState::default()
    }

    fn decide(state: &NoticesState, command: NoticesCommand) -> Result<Vec<NoticesEvent>, Self::Error> {
        Ok(match command {
            NoticesCommand::Address { customer_id, total, at } => {
                if state.customer_id.is_some() {
                    return Ok(Vec::new());
                }
                vec![
                    NoticesEvent::Addressed { customer_id, total },
                    NoticesEvent::Queued { kind: Kind::Received, detail: String::new(), at },
                ]
            }
            NoticesCommand::Conclude { kind, detail, at } => {
                if !kind.is_closing() || state.notices.iter().any(|n| n.kind.is_closing()) {
                    return Ok(Vec::new());
                }
                vec![NoticesEvent::Queued { kind, detail, at }]
            }
            NoticesCommand::Report { kind, result, at } => {
                let Some(notice) = state.notice(kind).filter(|n| n.delivery == Delivery::Pending) else {
                    return Ok(Vec::new());
                };
                match result {
                    Ok(()) => vec![NoticesEvent::Delivered { kind, at }],
                    Err(error) => {
                        let failures = notice.attempts + 1;
                        let retry_at = (failures < MAX_ATTEMPTS).then(|| at.plus_micros(retry_pause_micros(failures)));
                        vec![NoticesEvent::AttemptFailed { kind, error, retry_at }]
                    }
                }
            }
        })
    }

    fn evolve(mut state: NoticesState, event: &NoticesEvent) -> NoticesState {
        fn notice(state: &mut NoticesState, kind: Kind) -> Option<&mut Notice> {
            state.notices.iter_mut().find(|n| n.kind == kind)
        }
        match event {
            NoticesEvent::Addressed { customer_id, total } => {
                state.customer_id = Some(customer_id.clone());
                state.total = *total;
            }
            NoticesEvent::Queued { kind, detail, at } => state.notices.push(Notice {
                kind: *kind,
                detail: detail.clone(),
                at: *at,
                delivery: Delivery::Pending,
                attempts: 0,
                next_attempt: Some(*at),
                last_error: None,
                delivered_at: None,
            }),
            NoticesEvent::Delivered { kind, at } => {
                if let Some(n) = notice(&mut state, *kind) {
                    n.attempts += 1;
                    n.delivery = Delivery::Delivered;
                    n.delivered_at = Some(*at);
                    n.next_attempt = None;
                }
            }
            NoticesEvent::AttemptFailed { kind, error, retry_at } => {
                if let Some(n) = notice(&mut state, *kind) {
                    n.attempts += 1;
                    n.last_error = Some(error.clone());
                    n.next_attempt = *retry_at;
                    if retry_at.is_none() {
                        n.delivery = Delivery::Failed;
                    }
                }
            }
        }
        state
    }
}

impl Aggregate for Notices {
    const CATEGORY: &'static str = "notices";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = None;
}

/// Notification's routes: what each of its subscriptions is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `address`: a placed order names its customer and is acknowledged.
    Address,
    /// `conclude`: an outcome closes the order's notices.
    Conclude,
}

impl udders_contracts::Route for Route {
    const ALL: &'static [Route] = &[Route::Address, Route::Conclude];

    fn name(self) -> &'static str {
        match self {
            Route::Address => "address",
            Route::Conclude => "conclude",
        }
    }
}

/// Notification's subscriptions, in the order its consumer tries them (the
/// first match names the route). Every route only records: it publishes
/// nothing in answer. The `udders` binary assembles them into the catalog.
pub const SUBSCRIPTIONS: &[Subscribe<Route>] = &[
    // Notification listens to an order's start and its outcomes;
    // no one listens to it.
    Subscribe::new(Route::Address, "order/init/>", &[]),
    Subscribe::new(Route::Conclude, "order/shipped/>", &[]),
    Subscribe::new(Route::Conclude, "order/invalid/>", &[]),
    Subscribe::new(Route::Conclude, "credit/rejected/>", &[]),
    Subscribe::new(Route::Conclude, "inventory/rejected/>", &[]),
    Subscribe::new(Route::Conclude, "payment/declined/>", &[]),
    Subscribe::new(Route::Conclude, "fulfillment/failed/>", &[]),
    Subscribe::new(Route::Conclude, "order/cancelled/>", &[]),
    Subscribe::new(Route::Conclude, "order/expired/>", &[]),
];

/// What notification does with an event another service published about
/// an order, heard on `route` at `at`: the order id and the command; `None`
/// ignores it.
pub fn react(route: Route, event: &Integration, at: Timestamp) -> Option<(String, NoticesCommand)> {
    let conclude = |kind: Kind, detail: String| NoticesCommand::Conclude { kind, detail, at };
    let command = match (route, event) {
        (Route::Address, Integration::OrderPlaced(_) | Integration::OrderPlacedV1_2(_)) => {
            let e = event.placed()?;
            NoticesCommand::Address { customer_id: e.customer_id, total: Money::from_minor(e.total), at }
        }
        (Route::Address, _) => return None,
        (Route::Conclude, _) => match event {
            Integration::OrderShipped(e) => {
                conclude(Kind::Shipped, format!("shipment {} to {}", e.shipment_id, e.postal_code))
            }
            Integration::OrderInvalidated(e) => conclude(Kind::Refused, e.reasons.join("; ")),
            Integration::CreditRejected(e)
            | Integration::StockRejected(e)
            | Integration::PaymentDeclined(e)
            | Integration::FulfillmentFailed(e) => conclude(Kind::Refused, e.reason.clone()),
            Integration::OrderCancelled(_) => conclude(Kind::Cancelled, "cancelled at your request".to_owned()),
            Integration::OrderExpired(_) => {
                conclude(Kind::Expired, "the order took too long and was called off".to_owned())
            }
            _ => return None,
        },
    };
    Some((event.order_id().to_owned(), command))
}

/// The route the consumer would hand a record of `subject` to: that of the
/// first of [`SUBSCRIPTIONS`] whose pattern matches it. The backfill, which
/// reads events from the order service's timelines, feeds each through
/// [`react`] on it.
pub fn route_of(subject: &udders_contracts::Subject) -> Option<Route> {
    udders_contracts::route_for(SUBSCRIPTIONS, subject)
}

/// One notice as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationView {
    /// `{order_id}.{kind}`: one per order and kind.
    pub notification_id: String,
    /// The order it is about.
    pub order_id: String,
    /// What it tells.
    pub kind: Kind,
    /// The subject line.
    pub subject: String,
    /// Its particulars (empty for *received*).
    pub detail: String,
    /// RFC 3339: when the fact it tells happened.
    pub time: String,
    /// Its delivery.
    pub status: Delivery,
    /// Attempts made so far.
    pub attempts: u32,
    /// RFC 3339: when the courier took it.
    pub delivered_at: Option<String>,
    /// RFC 3339: when the next attempt is due, while pending.
    pub next_attempt_at: Option<String>,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// The read model of an order's notices (one document per order, listed
/// per customer by `GET /customers/{customer_id}/notifications`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NoticesView {
    /// The order.
    pub order_id: String,
    /// Who is told.
    pub customer_id: String,
    /// Its notices, oldest first.
    pub notifications: Vec<NotificationView>,
    /// Microseconds: when the sender should next look at it (absent: nothing pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_us: Option<i64>,
}

impl NoticesView {
    /// The notices the sender should try at `now`: pending and due (a view
    /// exists only once the customer to send them to is known).
    pub fn due(&self, now: Timestamp) -> impl Iterator<Item = &NotificationView> {
        self.notifications.iter().filter(move |n| {
            let next = n.next_attempt_at.as_deref().and_then(|at| Timestamp::parse_rfc3339(at).ok());
            n.status == Delivery::Pending && next.is_some_and(|due| due <= now)
        })
    }
}

/// The read model of an order's notices; `None` until its customer is known.
pub fn notices_view(order_id: &str, state: &NoticesState) -> Option<NoticesView> {
    let customer_id = state.customer_id.clone()?;
    let notifications = state
        .notices
        .iter()
        .map(|n| NotificationView {
            notification_id: notification_id(order_id, n.kind),
            order_id: order_id.to_owned(),
            kind: n.kind,
            subject: n.kind.subject(order_id),
            detail: n.detail.clone(),
            time: n.at.to_string(),
            status: n.delivery,
            attempts: n.attempts,
            delivered_at: n.delivered_at.map(|t| t.to_string()),
            next_attempt_at: n.next_attempt.filter(|_| n.delivery == Delivery::Pending).map(|t| t.to_string()),
            last_error: n.last_error.clone(),
        })
        .collect();
    let due_us = state
        .notices
        .iter()
        .filter(|n| n.delivery == Delivery::Pending)
        .filter_map(|n| n.next_attempt)
        .min()
        .map(Timestamp::micros);
    Some(NoticesView { order_id: order_id.to_owned(), customer_id, notifications, due_us })
}

impl ReadModel for Notices {
    const VIEW: &'static str = "notifications";
    type Doc = NoticesView;

    fn project(key: &str, _: Option<NoticesView>, state: &NoticesState, _: &NoticesEvent) -> Option<NoticesView> {
        notices_view(key, state)
    }

    fn due(doc: &NoticesView) -> Option<Timestamp> {
        doc.due_us.map(Timestamp::from_micros)
    }

    fn tags(doc: &NoticesView) -> [Option<String>; 3] {
        [Some(doc.customer_id.clone()), None, None]
    }
}

#[cfg(test)]
mod tests {
    use udders_contracts::events::{OrderCalledOff, OrderShipped, StepRefused};
    use udders_kernel::testing::given;

    use super::*;

    const T0: Timestamp = Timestamp::from_micros(1_000_000);

    fn address() -> NoticesCommand {
        NoticesCommand::Address { customer_id: "cust-1".into(), total: Money::from_minor(900), at: T0 }
    }

    fn addressed() -> [NoticesEvent; 2] {
        [
            NoticesEvent::Addressed { customer_id: "cust-1".into(), total: Money::from_minor(900) },
            NoticesEvent::Queued { kind: Kind::Received, detail: String::new(), at: T0 },
        ]
    }

    fn queued(kind: Kind) -> NoticesEvent {
        NoticesEvent::Queued { kind, detail: "why".into(), at: T0 }
    }

    fn conclude(kind: Kind) -> NoticesCommand {
        NoticesCommand::Conclude { kind, detail: "why".into(), at: T0 }
    }

    fn report(kind: Kind, result: Result<(), String>) -> NoticesCommand {
        NoticesCommand::Report { kind, result, at: T0 }
    }

    #[test]
    fn a_stored_addressed_event_keeps_its_total_in_minor_units() {
        let [first, _] = addressed();
        let stored = serde_json::json!({"type": "Addressed", "data": {"customer_id": "cust-1", "total": 900}});
        assert_eq!(serde_json::to_value(&first).unwrap(), stored);
        assert_eq!(serde_json::from_value::<NoticesEvent>(stored).unwrap(), first);
    }

    #[test]
    fn a_placed_order_is_acknowledged_once() {
        given::<Notices>([]).when(address()).then(addressed());
        given::<Notices>(addressed()).when(address()).then([]);
    }

    #[test]
    fn only_the_first_outcome_is_told() {
        given::<Notices>(addressed()).when(conclude(Kind::Refused)).then([queued(Kind::Refused)]);
        let refused = [addressed().to_vec(), vec![queued(Kind::Refused)]].concat();
        given::<Notices>(refused.clone()).when(conclude(Kind::Refused)).then([]);
        given::<Notices>(refused).when(conclude(Kind::Expired)).then([]);
        given::<Notices>(addressed()).when(conclude(Kind::Received)).then([]);
    }

    #[test]
    fn an_outcome_heard_before_the_order_waits_for_its_customer() {
        let early = given::<Notices>([queued(Kind::Shipped)]);
        let early_view = notices_view("o-1", early.state());
        assert!(early_view.is_none_or(|v| v.due(T0).next().is_none()), "nothing goes out before the customer is known");
        assert_eq!(notices_view("o-1", early.state()), None);
        let history = [vec![queued(Kind::Shipped)], addressed().to_vec()].concat();
        let state = Notices::fold(&history);
        let due: Vec<Kind> = notices_view("o-1", &state).expect("addressed").due(T0).map(|n| n.kind).collect();
        assert_eq!(due, [Kind::Shipped, Kind::Received]);
    }

    #[test]
    fn a_failed_attempt_is_tried_again_later_until_given_up() {
        let mut history = addressed().to_vec();
        let mut pauses = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let state = Notices::fold(&history);
            let events = Notices::decide(&state, report(Kind::Received, Err("mailbox full".into()))).unwrap();
            let [NoticesEvent::AttemptFailed { retry_at, .. }] = &events[..] else { panic!("{events:?}") };
            pauses.push(retry_at.map(|t| t.micros() - T0.micros()));
            history.extend(events);
        }
        assert_eq!(pauses[..3], [Some(500_000), Some(1_000_000), Some(2_000_000)]);
        assert_eq!(pauses.last(), Some(&None), "the last attempt gives up");
        let state = Notices::fold(&history);
        assert_eq!(state.notice(Kind::Received).map(|n| (n.delivery, n.attempts)), Some((Delivery::Failed, 8)));
        given::<Notices>(history).when(report(Kind::Received, Ok(()))).then([]);
    }

    #[test]
    fn a_delivered_notice_is_not_sent_again() {
        let delivered = [addressed().to_vec(), vec![NoticesEvent::Delivered { kind: Kind::Received, at: T0 }]].concat();
        given::<Notices>(delivered.clone()).when(report(Kind::Received, Ok(()))).then([]);
        let view = notices_view("o-1", &Notices::fold(&delivered)).expect("addressed");
        assert!(view.due(T0.plus_micros(1)).next().is_none());
    }

    #[test]
    fn the_view_lists_notices_and_is_due_at_the_earliest_pending_attempt() {
        let history = [
            addressed().to_vec(),
            vec![
                NoticesEvent::AttemptFailed {
                    kind: Kind::Received,
                    error: "down".into(),
                    retry_at: Some(T0.plus_micros(500_000)),
                },
                queued(Kind::Cancelled),
            ],
        ]
        .concat();
        let view = notices_view("o-1", &Notices::fold(&history)).expect("addressed");
        assert_eq!(view.notifications.len(), 2);
        assert_eq!(view.notifications[0].notification_id, "o-1.received");
        assert_eq!(view.notifications[1].subject, "Your order o-1 is cancelled");
        assert_eq!(Notices::due(&view), Some(T0), "the cancelled notice is due at once");
        assert_eq!(Notices::tags(&view)[0].as_deref(), Some("cust-1"));
    }

    #[test]
    fn each_outcome_event_maps_to_its_kind() {
        let refused = StepRefused { order_id: "o-1".into(), reason: "no stock".into() };
        let called_off = OrderCalledOff { order_id: "o-1".into(), reason: "deadline".into() };
        let shipped =
            OrderShipped { order_id: "o-1".into(), shipment_id: "shp_o-1".into(), postal_code: "12345".into() };
        let cases = [
            (Integration::StockRejected(refused.clone()), Kind::Refused),
            (Integration::PaymentDeclined(refused.clone()), Kind::Refused),
            (Integration::FulfillmentFailed(refused), Kind::Refused),
            (Integration::OrderExpired(called_off.clone()), Kind::Expired),
            (Integration::OrderCancelled(called_off), Kind::Cancelled),
            (Integration::OrderShipped(shipped), Kind::Shipped),
        ];
        for (event, expected) in cases {
            let Some((order, NoticesCommand::Conclude { kind, .. })) = react(Route::Conclude, &event, T0) else {
                panic!("{event:?}")
            };
            assert_eq!((order.as_str(), kind), ("o-1", expected), "{event:?}");
        }
    }

    #[test]
    fn every_route_has_a_subscription_and_a_name_of_its_own() {
        assert_eq!(udders_contracts::route_table_problems(SUBSCRIPTIONS), Vec::<String>::new());
        let subject = |s: &str| s.parse::<udders_contracts::Subject>().unwrap();
        assert_eq!(route_of(&subject("order/init/1.2/icecream/udders/mango/us/web")), Some(Route::Address));
        assert_eq!(route_of(&subject("payment/declined/1.0/icecream/udders/mango/sg/web")), Some(Route::Conclude));
        assert_eq!(route_of(&subject("credit/reserved/1.0/icecream/udders/mango/sg/web")), None);
    }
}
