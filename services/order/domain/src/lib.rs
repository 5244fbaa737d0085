//! The order service's pure domain: the order lifecycle that follows every
//! other service's events, and the order read models.
//!
//! [`Order`] (stream `order-<id>`) is placed by the point of sale, then
//! observes every event of its saga ([`Step`]) and moves through `PLACED`,
//! `VALIDATED`, `RESERVED`, `PAID` to `COMPLETED`. A refusal by any step (or
//! a customer cancel, or the saga deadline) moves it to `COMPENSATING`; it
//! becomes `REJECTED` or `CANCELLED` only once every service that may hold
//! something has answered (see [`OrderState::settled`]).
//!
//! Its one subscription ([`SUBSCRIPTIONS`]: route [`Route::Follow`] on
//! `**`) is declared beside [`react`].
//!
//! What must not: I/O, clocks. Time arrives in commands.

use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use udders_contracts::events::{OrderCalledOff, OrderLine, OrderPlaced, OrderPlacedV1_2};
use udders_contracts::{Integration, Subscribe, reference};
use udders_kernel::{Aggregate, CorrelationId, Decider, Money, ReadModel, Timestamp};

/// Where an order stands, as the API shows it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Not placed (a stream that only observed foreign events).
    #[default]
    Unknown,
    /// Accepted at the point of sale.
    Placed,
    /// Passed its rule set.
    Validated,
    /// Credit and stock are held.
    Reserved,
    /// The card was charged.
    Paid,
    /// Shipped. Terminal.
    Completed,
    /// A step refused, or it was called off: holders are giving back.
    Compensating,
    /// A step refused and everything is given back. Terminal.
    Rejected,
    /// Cancelled by the customer or the deadline, everything given back. Terminal.
    Cancelled,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 8] = [
        Status::Placed,
        Status::Validated,
        Status::Reserved,
        Status::Paid,
        Status::Completed,
        Status::Compensating,
        Status::Rejected,
        Status::Cancelled,
    ];

    /// `PLACED`, `COMPLETED`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "UNKNOWN",
            Status::Placed => "PLACED",
            Status::Validated => "VALIDATED",
            Status::Reserved => "RESERVED",
            Status::Paid => "PAID",
            Status::Completed => "COMPLETED",
            Status::Compensating => "COMPENSATING",
            Status::Rejected => "REJECTED",
            Status::Cancelled => "CANCELLED",
        }
    }

    /// Parses `as_str`'s output (any case).
    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(text))
    }

    /// True for `COMPLETED`, `REJECTED` and `CANCELLED`.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Rejected | Status::Cancelled)
    }
}

/// What the order knows of a reservation (credit or stock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hold {
    /// Nothing heard.
    #[default]
    Unknown,
    /// Reserved.
    Held,
    /// The service refused.
    Refused,
    /// The service answered a compensation (released, or never held).
    Released,
}

impl Hold {
    /// Where the hold stands once `heard` arrives. An answer (refused or
    /// released) is final: the events of one service can reach the order out
    /// of order (two relay instances publish one outbox in parallel, and a
    /// killed one's claimed rows go out after its successor's), so a
    /// `credit/reserved` heard after `credit/released` must not hold again.
    pub fn then(self, heard: Hold) -> Hold {
        match self {
            Hold::Refused | Hold::Released => self,
            _ => heard,
        }
    }
}

/// What the order knows of the payment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Charge {
    /// Nothing heard.
    #[default]
    Unknown,
    /// Charged.
    Captured,
    /// The card was declined.
    Declined,
    /// Payment answered a compensation (refunded, or never charged).
    Refunded,
}

impl Charge {
    /// Where the payment stands once `heard` arrives; a decline or a refund
    /// is final, whatever arrives after it (see [`Hold::then`]).
    pub fn then(self, heard: Charge) -> Charge {
        match self {
            Charge::Declined | Charge::Refunded => self,
            _ => heard,
        }
    }
}

/// One observed saga event, as the order understands it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// `order/init` came back from the broker.
    Placed,
    /// `order/valid`
    Validated,
    /// `order/invalid`
    Invalidated {
        /// Every rule broken.
        reasons: Vec<String>,
    },
    /// `credit/reserved`
    CreditReserved,
    /// `credit/rejected`
    CreditRejected {
        /// Why.
        reason: String,
    },
    /// `credit/released`
    CreditReleased,
    /// `credit/settled`: after shipping, the hold became a sale.
    CreditSettled,
    /// `inventory/reserved`
    StockReserved,
    /// `inventory/rejected`
    StockRejected {
        /// Why.
        reason: String,
    },
    /// `inventory/released`
    StockReleased,
    /// `payment/captured`
    PaymentCaptured {
        /// What was charged.
        amount: Money,
    },
    /// `payment/declined`
    PaymentDeclined {
        /// Why.
        reason: String,
    },
    /// `payment/refunded`
    PaymentRefunded {
        /// What was given back (zero when nothing was captured).
        amount: Money,
    },
    /// `order/shipped`
    Shipped,
    /// `fulfillment/failed`
    FulfillmentFailed {
        /// Why.
        reason: String,
    },
    /// `order/cancelled` came back.
    Cancelled,
    /// `order/expired` came back.
    Expired,
}

impl Step {
    /// What an integration event means for an order (`None` for reference
    /// data, which is about no order).
    pub fn of(event: &Integration) -> Option<Step> {
        Some(match event {
            Integration::OrderPlaced(_) | Integration::OrderPlacedV1_2(_) => Step::Placed,
            Integration::OrderValidated(_) => Step::Validated,
            Integration::OrderInvalidated(e) => Step::Invalidated { reasons: e.reasons.clone() },
            Integration::CreditReserved(_) => Step::CreditReserved,
            Integration::CreditRejected(e) => Step::CreditRejected { reason: e.reason.clone() },
            Integration::CreditReleased(_) => Step::CreditReleased,
            Integration::CreditSettled(_) => Step::CreditSettled,
            Integration::StockReserved(_) => Step::StockReserved,
            Integration::StockRejected(e) => Step::StockRejected { reason: e.reason.clone() },
            Integration::StockReleased(_) => Step::StockReleased,
            Integration::PaymentCaptured(e) => Step::PaymentCaptured { amount: Money::from_minor(e.amount) },
            Integration::PaymentDeclined(e) => Step::PaymentDeclined { reason: e.reason.clone() },
            Integration::PaymentRefunded(e) => Step::PaymentRefunded { amount: Money::from_minor(e.amount) },
            Integration::OrderShipped(_) => Step::Shipped,
            Integration::FulfillmentFailed(e) => Step::FulfillmentFailed { reason: e.reason.clone() },
            Integration::OrderCancelled(_) => Step::Cancelled,
            Integration::OrderExpired(_) => Step::Expired,
            Integration::PriceChanged(_) | Integration::StockRestocked(_) | Integration::CreditLimitChanged(_) => {
                return None;
            }
        })
    }

    /// The refusal it carries, if it is one: the reason an order is rejected for.
    fn refusal(&self) -> Option<String> {
        match self {
            Step::Invalidated { reasons } => Some(format!("invalid: {}", reasons.join("; "))),
            Step::CreditRejected { reason }
            | Step::StockRejected { reason }
            | Step::PaymentDeclined { reason }
            | Step::FulfillmentFailed { reason } => Some(reason.clone()),
            _ => None,
        }
    }

    /// How the console draws it: a refusal (a step said no), a
    /// compensation (something held is given back, or the order is called
    /// off) or a step.
    pub fn kind(&self) -> StepKind {
        match self {
            Step::CreditReleased
            | Step::StockReleased
            | Step::PaymentRefunded { .. }
            | Step::Cancelled
            | Step::Expired => StepKind::Compensation,
            step if step.refusal().is_some() => StepKind::Refusal,
            _ => StepKind::Step,
        }
    }
}

/// What a line of an order's timeline is, as the console draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// `step`: the saga moved on.
    Step,
    /// `refusal`: a step said no.
    Refusal,
    /// `compensation`: something held is given back, or the order is called off.
    Compensation,
}

impl StepKind {
    /// `step`, `refusal` or `compensation`: its JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Step => "step",
            StepKind::Refusal => "refusal",
            StepKind::Compensation => "compensation",
        }
    }
}

/// The order service's one route: it follows everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `follow`: every event, into the order it is about.
    Follow,
}

impl udders_contracts::Route for Route {
    const ALL: &'static [Route] = &[Route::Follow];

    fn name(self) -> &'static str {
        match self {
            Route::Follow => "follow",
        }
    }
}

/// The order service's subscriptions: every event of every service, to
/// follow each order's saga. It only records: nothing is published in
/// answer. The `udders` binary assembles them into the catalog.
pub const SUBSCRIPTIONS: &[Subscribe<Route>] = &[Subscribe::new(Route::Follow, "**", &[])];

/// What an integration event heard on `route` means for the order it is
/// about ([`Step::of`]); `None` for reference data, which is about no order.
pub fn react(route: Route, event: &Integration) -> Option<Step> {
    match route {
        Route::Follow => Step::of(event),
    }
}

/// One saga event seen on the wire: a line of the order's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The event id (`ce_id`).
    pub event_id: String,
    /// Its taxonomy subject.
    pub subject: String,
    /// Its publisher (`ce_source`).
    pub source: String,
    /// When it happened (`ce_time`).
    pub time: Timestamp,
    /// What it means for the order.
    pub step: Step,
    /// The event that caused it (`causationid`), absent in events recorded
    /// before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Its payload as published, absent in events recorded before it was kept.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub payload: Value,
}

/// An order as the point of sale placed it, priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The order as published in `order/init`.
    pub order: OrderPlaced,
    /// Payload schema version, `1.1` or `1.2`.
    pub schema_version: String,
    /// Each line's size (`cup`, `pint` or `tub`), in line order. Payload
    /// 1.2 publishes them; a request that names none orders tubs.
    pub sizes: Vec<String>,
    /// The currency of its amounts: its country's.
    pub currency: String,
    /// When it was accepted.
    pub placed_at: Timestamp,
    /// When the saga deadline passes.
    pub deadline: Timestamp,
    /// A fingerprint of the request, to tell a replay from a reused key.
    pub request_fingerprint: Option<String>,
    /// The saga's correlation id.
    pub correlation_id: CorrelationId,
}

impl Placement {
    /// `order/init` in the placement's payload version.
    pub fn published(&self) -> Integration {
        if self.schema_version == "1.2" {
            Integration::OrderPlacedV1_2(OrderPlacedV1_2::from_v1_1(&self.order, &self.sizes, &self.currency))
        } else {
            Integration::OrderPlaced(self.order.clone())
        }
    }
}

/// The order.
#[derive(Debug)]
pub struct Order;

/// Why an order is being compensated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compensation {
    /// Where it ends: `Rejected` or `Cancelled`.
    pub ends: Status,
    /// Why, for people.
    pub reason: String,
    /// `order/invalid` needs no answers: nobody held anything.
    pub needs_answers: bool,
}

/// What the order remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    /// As placed, once placed.
    pub placement: Option<Placement>,
    /// Where it stands.
    pub status: Status,
    /// Credit.
    pub credit: Hold,
    /// Stock.
    pub stock: Hold,
    /// Payment.
    pub payment: Charge,
    /// The carrier took it.
    pub shipped: bool,
    /// Set once compensating.
    pub compensation: Option<Compensation>,
    /// The reason shown for a rejected or cancelled order.
    pub reason: Option<String>,
    /// When the status last changed.
    pub updated_at: Timestamp,
}

impl OrderState {
    /// True when every service that may hold something for the order has
    /// answered: credit and stock refused or released, payment declined or
    /// refunded, or never charged because a reservation was refused.
    pub fn settled(&self) -> bool {
        let Some(compensation) = &self.compensation else { return false };
        if !compensation.needs_answers {
            return true;
        }
        let done = |h: Hold| matches!(h, Hold::Refused | Hold::Released);
        let never_charged =
            self.payment == Charge::Unknown && (self.credit == Hold::Refused || self.stock == Hold::Refused);
        done(self.credit)
            && done(self.stock)
            && (matches!(self.payment, Charge::Declined | Charge::Refunded) || never_charged)
    }
}

/// What an order is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Place it (idempotent: placing again changes nothing).
    Place(Placement),
    /// Take note of a saga event, now.
    Observe(Observation, Timestamp),
    /// The customer cancels.
    Cancel {
        /// Now.
        at: Timestamp,
    },
    /// Call it off if its deadline has passed.
    Expire {
        /// Now.
        at: Timestamp,
    },
}

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum OrderEvent {
    /// Accepted; published as `order/init`.
    Placed(Placement),
    /// A saga event seen.
    Observed(Observation),
    /// Moved forward on the happy path.
    Advanced {
        /// The new status.
        status: Status,
        /// When.
        at: Timestamp,
    },
    /// A step refused: holders will give back.
    CompensationStarted {
        /// Why.
        compensation: Compensation,
        /// When.
        at: Timestamp,
    },
    /// The customer cancelled; published as `order/cancelled`.
    CancelRequested {
        /// When.
        at: Timestamp,
    },
    /// The deadline passed; published as `order/expired`.
    Expired {
        /// When.
        at: Timestamp,
    },
    /// Every holder answered: `REJECTED` or `CANCELLED`.
    Concluded {
        /// The terminal status.
        status: Status,
        /// When.
        at: Timestamp,
    },
}

/// Why an order cannot do what it is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderError {
    /// No such order.
    NotFound,
    /// The parcel left: too late to cancel.
    AlreadyShipped,
    /// It is already ending (`COMPENSATING`) or ended.
    AlreadyEnding(Status),
}

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderError::NotFound => f.write_str("no such order"),
            OrderError::AlreadyShipped => f.write_str("the order has shipped; it can no longer be cancelled"),
            OrderError::AlreadyEnding(status) => {
                write!(f, "the order is {}; it can no longer be cancelled", status.as_str())
            }
        }
    }
}

impl Decider for Order {
    type State = OrderState;
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn initial_state() -> OrderState {
        OrderState::default()
    }

    fn decide(state: &OrderState, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        match command {
            OrderCommand::Place(placement) => {
                Ok(if state.placement.is_some() { Vec::new() } else { vec![OrderEvent::Placed(placement)] })
            }
            OrderCommand::Cancel { at } => {
                if state.placement.is_none() {
                    Err(OrderError::NotFound)
                } else if state.shipped {
                    Err(OrderError::AlreadyShipped)
                } else if state.status.is_terminal() || state.status == Status::Compensating {
                    Err(OrderError::AlreadyEnding(state.status))
                } else {
                    Ok(vec![OrderEvent::CancelRequested { at }])
                }
            }
            OrderCommand::Expire { at } => Ok(match &state.placement {
                Some(p) if at >= p.deadline && !state.status.is_terminal() && state.status != Status::Compensating => {
                    vec![OrderEvent::Expired { at }]
                }
                _ => Vec::new(),
            }),
            OrderCommand::Observe(observation, at) => Ok(observe(state, observation, at)),
        }
    }

    fn evolve(mut state: OrderState, event: &OrderEvent) -> OrderState {
        match event {
            OrderEvent::Placed(p) => {
                state.status = Status::Placed;
                state.updated_at = p.placed_at;
                state.placement = Some(p.clone());
            }
            OrderEvent::Observed(o) => match o.step {
                Step::CreditReserved => state.credit = state.credit.then(Hold::Held),
                Step::CreditRejected { .. } => state.credit = state.credit.then(Hold::Refused),
                Step::CreditReleased => state.credit = state.credit.then(Hold::Released),
                Step::StockReserved => state.stock = state.stock.then(Hold::Held),
                Step::StockRejected { .. } => state.stock = state.stock.then(Hold::Refused),
                Step::StockReleased => state.stock = state.stock.then(Hold::Released),
                Step::PaymentCaptured { .. } => state.payment = state.payment.then(Charge::Captured),
                Step::PaymentDeclined { .. } => state.payment = state.payment.then(Charge::Declined),
                Step::PaymentRefunded { .. } => state.payment = state.payment.then(Charge::Refunded),
                Step::Shipped => state.shipped = true,
                _ => {}
            },
            OrderEvent::Advanced { status, at } => {
                state.status = *status;
                state.updated_at = *at;
            }
            OrderEvent::CompensationStarted { compensation, at } => {
                state.status = Status::Compensating;
                state.reason = Some(compensation.reason.clone());
                state.compensation = Some(compensation.clone());
                state.updated_at = *at;
            }
            OrderEvent::CancelRequested { at } => {
                state.status = Status::Compensating;
                state.reason = Some("cancelled by the customer".into());
                state.compensation = Some(Compensation {
                    ends: Status::Cancelled,
                    reason: "cancelled by the customer".into(),
                    needs_answers: true,
                });
                state.updated_at = *at;
            }
            OrderEvent::Expired { at } => {
                state.status = Status::Compensating;
                state.reason = Some("the saga deadline passed".into());
                state.compensation = Some(Compensation {
                    ends: Status::Cancelled,
                    reason: "the saga deadline passed".into(),
                    needs_answers: true,
                });
                state.updated_at = *at;
            }
            OrderEvent::Concluded { status, at } => {
                state.status = *status;
                state.updated_at = *at;
            }
        }
        state
    }
}

/// The events one observation produces: the observation itself, then
/// whatever status change it brings.
fn observe(state: &OrderState, observation: Observation, now: Timestamp) -> Vec<OrderEvent> {
    let at = now.max(state.updated_at);
    let refusal = observation.step.refusal();
    let invalid = matches!(observation.step, Step::Invalidated { .. });
    let mut events = vec![OrderEvent::Observed(observation)];
    let next = Order::fold_from(state.clone(), &events);
    if next.placement.is_none() || next.status.is_terminal() {
        return events;
    }
    if next.status == Status::Compensating {
        if next.settled() {
            let ends = next.compensation.as_ref().map_or(Status::Rejected, |c| c.ends);
            events.push(OrderEvent::Concluded { status: ends, at });
        }
        return events;
    }
    if let Some(reason) = refusal {
        let compensation = Compensation { ends: Status::Rejected, reason, needs_answers: !invalid };
        events.push(OrderEvent::CompensationStarted { compensation, at });
        let next = Order::fold_from(next, &events[events.len() - 1..]);
        if next.settled() {
            events.push(OrderEvent::Concluded { status: Status::Rejected, at });
        }
        return events;
    }
    let advance = if next.shipped {
        Some(Status::Completed)
    } else if next.payment == Charge::Captured {
        Some(Status::Paid)
    } else if next.credit == Hold::Held && next.stock == Hold::Held {
        Some(Status::Reserved)
    } else if next.status == Status::Placed
        && matches!(events[0], OrderEvent::Observed(Observation { step: Step::Validated, .. }))
    {
        Some(Status::Validated)
    } else {
        None
    };
    if let Some(status) = advance.filter(|s| *s > next.status) {
        events.push(OrderEvent::Advanced { status, at });
    }
    events
}

impl Aggregate for Order {
    const CATEGORY: &'static str = "order";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = NonZeroU64::new(20);
    /// 2: the placement gained `sizes` and `currency`.
    const STATE_SCHEMA: u32 = 2;
    /// 2: `Placed` gained `sizes` and `currency` (see [`Order::upcast`]).
    const EVENT_SCHEMA: u16 = 2;

    /// A `Placed` of schema 1, recorded before orders had sizes and a
    /// currency, reads as a placement of tubs in its country's currency;
    /// every other event kept its shape.
    fn upcast(event_type: &str, schema_version: u16, mut payload: Value) -> Result<Value, String> {
        match schema_version {
            2 => Ok(payload),
            1 if event_type == "Placed" => {
                let order = &payload["order"];
                let lines = order["items"].as_array().map_or(0, Vec::len);
                let country = order["country"].as_str().unwrap_or_default();
                let currency = reference::currency(country).unwrap_or_default();
                let fields = payload.as_object_mut().ok_or("a Placed payload is an object")?;
                fields.insert("sizes".into(), Value::from(vec![reference::DEFAULT_SIZE; lines]));
                fields.insert("currency".into(), Value::from(currency));
                Ok(payload)
            }
            1 => Ok(payload),
            other => Err(format!("this build reads order events of schema 1 and 2, not {other}")),
        }
    }
}

impl OrderEvent {
    /// The integration event it is published as, with the payload version
    /// of its subject when it is not the catalog's only one.
    pub fn integration(&self, order_id: &str) -> Option<(Integration, Option<String>)> {
        match self {
            OrderEvent::Placed(p) => Some((p.published(), Some(p.schema_version.clone()))),
            OrderEvent::CancelRequested { .. } => Some((
                Integration::OrderCancelled(OrderCalledOff {
                    order_id: order_id.to_owned(),
                    reason: "customer".into(),
                }),
                None,
            )),
            OrderEvent::Expired { .. } => Some((
                Integration::OrderExpired(OrderCalledOff { order_id: order_id.to_owned(), reason: "deadline".into() }),
                None,
            )),
            _ => None,
        }
    }
}

/// One line of an order's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// The event id.
    pub event_id: String,
    /// Its taxonomy subject.
    pub subject: String,
    /// Its publisher.
    pub source: String,
    /// RFC 3339.
    pub time: String,
    /// The event that caused it: an earlier entry's `event_id`, or an event
    /// outside the timeline (the order's own command).
    pub causation_id: Option<String>,
    /// `step`, `refusal` or `compensation`.
    pub kind: StepKind,
    /// Its payload as published (null for entries recorded before it was kept).
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// The order read model: `GET /orders/{id}` (and a row of `GET /orders`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    /// The order.
    pub order_id: String,
    /// `PLACED` ... `CANCELLED`.
    pub status: Status,
    /// Why it was rejected or cancelled; null otherwise.
    pub reason: Option<String>,
    /// Minor units.
    #[schema(value_type = i64)]
    pub total: Money,
    /// The customer.
    pub customer_id: String,
    /// Sales channel.
    pub channel: String,
    /// Country.
    pub country: String,
    /// The lines, priced.
    pub items: Vec<OrderLine>,
    /// Payload schema version.
    pub schema_version: String,
    /// RFC 3339.
    pub placed_at: String,
    /// RFC 3339: when the status last changed.
    pub updated_at: String,
    /// RFC 3339: when the saga deadline passes.
    pub deadline: String,
    /// The saga's correlation id.
    pub correlation_id: String,
    /// Every saga event of the order across all services, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// Folds one event into the order's read model (`None` before it is placed).
pub fn project(view: Option<OrderView>, state: &OrderState, event: &OrderEvent) -> Option<OrderView> {
    let placement = state.placement.as_ref()?;
    let mut view = view.unwrap_or_else(|| OrderView {
        order_id: placement.order.order_id.clone(),
        status: state.status,
        reason: None,
        total: Money::from_minor(placement.order.total),
        customer_id: placement.order.customer_id.clone(),
        channel: placement.order.channel.clone(),
        country: placement.order.country.clone(),
        items: placement.order.items.clone(),
        schema_version: placement.schema_version.clone(),
        placed_at: placement.placed_at.to_string(),
        updated_at: placement.placed_at.to_string(),
        deadline: placement.deadline.to_string(),
        correlation_id: placement.correlation_id.to_string(),
        timeline: Vec::new(),
    });
    view.status = state.status;
    view.reason = if matches!(state.status, Status::Rejected | Status::Cancelled | Status::Compensating) {
        state.reason.clone()
    } else {
        None
    };
    view.updated_at = state.updated_at.to_string();
    if let OrderEvent::Observed(o) = event {
        let entry = TimelineEntry {
            event_id: o.event_id.clone(),
            subject: o.subject.clone(),
            source: o.source.clone(),
            time: o.time.to_string(),
            causation_id: o.causation_id.clone(),
            kind: o.step.kind(),
            payload: o.payload.clone(),
        };
        let at = view.timeline.partition_point(|e| e.time <= entry.time);
        view.timeline.insert(at, entry);
    }
    Some(view)
}

impl ReadModel for Order {
    const VIEW: &'static str = "orders";
    type Doc = OrderView;

    fn project(_: &str, previous: Option<OrderView>, state: &OrderState, event: &OrderEvent) -> Option<OrderView> {
        project(previous, state, event)
    }

    fn tags(doc: &OrderView) -> [Option<String>; 3] {
        [Some(doc.status.as_str().to_owned()), Some(doc.country.clone()), Some(doc.channel.clone())]
    }

    /// The saga deadline, while the order can still expire.
    fn due(doc: &OrderView) -> Option<Timestamp> {
        let open = matches!(doc.status, Status::Placed | Status::Validated | Status::Reserved | Status::Paid);
        open.then(|| Timestamp::parse_rfc3339(&doc.deadline).ok()).flatten()
    }
}

pub mod price;

#[cfg(test)]
mod tests;
