//! Payment's pure domain: one payment per order, charged through a card
//! gateway once both reservations exist, refunded by compensations.
//!
//! [`Payment`] (stream `payment-<order>`) collects three facts in whichever
//! order they arrive: the validated order (amount, card token), the credit
//! reservation and the stock reservation. When all three are there the
//! charge is due ([`charge_due`]). A release or refusal of either
//! reservation before that closes the payment for good. The first
//! compensation trigger is answered with one `payment/refunded` (amount zero
//! when nothing was captured).
//!
//! The gateway is a port, [`PaymentGateway`], that the caller supplies;
//! [`SimulatedGateway`] is the one Udders runs (`tok_visa` is approved, every
//! other token declined). The decider never calls it: the gateway's answer
//! comes back as a command, [`PaymentCommand::GatewayAnswered`].
//! [`decide_and_charge`] strings the two together for one incoming fact, so
//! the completing note and the charge's outcome are recorded together.
//!
//! Its subscriptions ([`SUBSCRIPTIONS`], one [`Route`] per purpose:
//! `order`, `credit`, `stock`, `refund`) are declared beside [`react`],
//! which takes the route a record came on first.
//!
//! What must not: I/O, clocks.

use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use udders_contracts::events::{OrderValidated, PaymentMoved, StepRefused};
use udders_contracts::{Integration, Subscribe};
use udders_kernel::{Aggregate, Decider, Money, ReadModel};

/// The card token the simulated gateway approves.
pub const APPROVED_TOKEN: &str = "tok_visa";
/// The card token it declines (so does every unknown token).
pub const DECLINED_TOKEN: &str = "tok_declined";

/// A charge that is due: what the gateway is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The order paid for.
    pub order_id: String,
    /// The card token the order came with.
    pub card_token: String,
    /// The order's total.
    pub amount: Money,
}

/// What a gateway answers to a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money is taken.
    Approved {
        /// The gateway's id of the charge (`payment/captured` carries it).
        charge_id: String,
    },
    /// The card was refused.
    Declined {
        /// Why, for people (`payment/declined` carries it).
        reason: String,
    },
}

/// The card gateway, a port: the caller supplies one and asks it when a
/// charge is due ([`charge_due`], [`decide_and_charge`]). The decider never
/// calls it.
pub trait PaymentGateway: std::fmt::Debug + Send + Sync {
    /// Charges `request.amount` to `request.card_token` for `request.order_id`.
    fn charge(&self, request: &ChargeRequest) -> ChargeOutcome;
}

/// The gateway Udders runs: [`APPROVED_TOKEN`] is approved as charge
/// `ch_<order id>`; [`DECLINED_TOKEN`] is declined by the issuer; any other
/// token is declined as unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimulatedGateway;

impl PaymentGateway for SimulatedGateway {
    fn charge(&self, request: &ChargeRequest) -> ChargeOutcome {
        match request.card_token.as_str() {
            APPROVED_TOKEN => ChargeOutcome::Approved { charge_id: format!("ch_{}", request.order_id) },
            DECLINED_TOKEN => ChargeOutcome::Declined { reason: "card declined by the issuer".to_owned() },
            other => ChargeOutcome::Declined { reason: format!("unknown card token {other:?}") },
        }
    }
}

/// One order's payment.
#[derive(Debug)]
pub struct Payment;

/// What the payment knows of one reservation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// Not heard of yet.
    #[default]
    Unknown,
    /// Reserved.
    Held,
    /// Rejected or released: the order will not be paid.
    Gone,
}

/// What the payment needs of the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The order's total.
    pub amount: Money,
    /// Card token.
    pub card_token: String,
    /// Where fulfillment ships to.
    pub postal_code: Option<String>,
}

/// Where the payment stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    /// Waiting for the order and both reservations.
    #[default]
    Waiting,
    /// Charged.
    Captured {
        /// The gateway's charge id.
        charge_id: String,
        /// What was charged.
        amount: Money,
    },
    /// The gateway said no.
    Declined,
    /// Charged, then given back.
    Refunded {
        /// What was given back.
        amount: Money,
    },
    /// Will never charge (a reservation went away, or a compensation came first).
    Closed,
}

/// What the payment remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentState {
    /// The validated order's charge, once seen.
    pub charge: Option<Charge>,
    /// The credit reservation.
    pub credit: Side,
    /// The stock reservation.
    pub stock: Side,
    /// Where it stands.
    pub status: PaymentStatus,
    /// A compensation trigger was answered.
    pub answered: bool,
}

/// What a payment is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCommand {
    /// The order passed validation.
    NoteOrder(Charge),
    /// Credit reserved (`Held`) or rejected/released (`Gone`).
    NoteCredit(Side),
    /// Stock reserved or rejected/released.
    NoteStock(Side),
    /// A compensation trigger arrived.
    Compensate {
        /// Its name.
        cause: String,
    },
    /// The gateway answered the charge [`charge_due`] asked for: `Captured`
    /// or `Declined`, while the charge is still due; otherwise nothing.
    GatewayAnswered(ChargeOutcome),
}

/// What happened to a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PaymentEvent {
    /// The order's charge is known.
    OrderNoted(Charge),
    /// The credit reservation changed.
    CreditNoted(Side),
    /// The stock reservation changed.
    StockNoted(Side),
    /// `payment/captured`
    Captured(PaymentMoved),
    /// `payment/declined`
    Declined(StepRefused),
    /// `payment/refunded`: amount zero when nothing was captured.
    Refunded(PaymentMoved),
    /// A reservation went away before the charge: never charge.
    Closed,
}

impl Decider for Payment {
    type State = PaymentState;
    type Command = (String, PaymentCommand);
    type Event = PaymentEvent;
    type Error = std::convert::Infallible;

    fn initial_state() -> PaymentState {
        PaymentState::default()
    }

    fn decide(
        state: &PaymentState,
        (order_id, command): (String, PaymentCommand),
    ) -> Result<Vec<PaymentEvent>, Self::Error> {
        let mut events = match command {
            PaymentCommand::NoteOrder(charge) if state.charge.is_none() => vec![PaymentEvent::OrderNoted(charge)],
            PaymentCommand::NoteCredit(side) if state.credit != side && state.credit != Side::Gone => {
                vec![PaymentEvent::CreditNoted(side)]
            }
            PaymentCommand::NoteStock(side) if state.stock != side && state.stock != Side::Gone => {
                vec![PaymentEvent::StockNoted(side)]
            }
            PaymentCommand::GatewayAnswered(outcome) => {
                // Only a charge still due is answered: a late or repeated answer changes nothing.
                let (Some(charge), true) = (&state.charge, charge_due(&order_id, state).is_some()) else {
                    return Ok(Vec::new());
                };
                return Ok(vec![match outcome {
                    ChargeOutcome::Approved { charge_id } => PaymentEvent::Captured(PaymentMoved {
                        order_id,
                        amount: charge.amount.minor(),
                        charge_id,
                        postal_code: charge.postal_code.clone(),
                        cause: None,
                    }),
                    ChargeOutcome::Declined { reason } => PaymentEvent::Declined(StepRefused { order_id, reason }),
                }]);
            }
            PaymentCommand::Compensate { cause } if !state.answered => {
                let amount = match state.status {
                    PaymentStatus::Captured { amount, .. } => amount,
                    _ => Money::ZERO,
                };
                let charge_id = match &state.status {
                    PaymentStatus::Captured { charge_id, .. } => charge_id.clone(),
                    _ => String::new(),
                };
                return Ok(vec![PaymentEvent::Refunded(PaymentMoved {
                    order_id,
                    amount: amount.minor(),
                    charge_id,
                    postal_code: None,
                    cause: Some(cause),
                })]);
            }
            _ => return Ok(Vec::new()),
        };
        let next = Self::fold_from(state.clone(), &events);
        if next.status == PaymentStatus::Waiting && (next.credit == Side::Gone || next.stock == Side::Gone) {
            events.push(PaymentEvent::Closed);
        }
        Ok(events)
    }

    fn evolve(mut state: PaymentState, event: &PaymentEvent) -> PaymentState {
        match event {
            PaymentEvent::OrderNoted(charge) => state.charge = Some(charge.clone()),
            PaymentEvent::CreditNoted(side) => state.credit = *side,
            PaymentEvent::StockNoted(side) => state.stock = *side,
            PaymentEvent::Captured(e) => {
                state.status =
                    PaymentStatus::Captured { charge_id: e.charge_id.clone(), amount: Money::from_minor(e.amount) }
            }
            PaymentEvent::Declined(_) => state.status = PaymentStatus::Declined,
            PaymentEvent::Refunded(e) => {
                state.answered = true;
                state.status = match state.status {
                    PaymentStatus::Captured { .. } => PaymentStatus::Refunded { amount: Money::from_minor(e.amount) },
                    PaymentStatus::Waiting => PaymentStatus::Closed,
                    other => other,
                };
            }
            PaymentEvent::Closed => state.status = PaymentStatus::Closed,
        }
        state
    }
}

/// The charge a payment in `state` is ready to make: while it is
/// `Waiting`, with the order's charge known and both reservations `Held`.
/// `None` otherwise.
pub fn charge_due(order_id: &str, state: &PaymentState) -> Option<ChargeRequest> {
    match (&state.status, &state.charge, state.credit, state.stock) {
        (PaymentStatus::Waiting, Some(charge), Side::Held, Side::Held) => Some(ChargeRequest {
            order_id: order_id.to_owned(),
            card_token: charge.card_token.clone(),
            amount: charge.amount,
        }),
        _ => None,
    }
}

/// One incoming fact, decided, and charged when it makes the charge due:
/// [`Payment::decide`] on the command, then, if the payment is now
/// [`charge_due`], `gateway` is asked once and its answer decided as
/// [`PaymentCommand::GatewayAnswered`]. The events of both, in that order,
/// are what the caller records (for example `CreditNoted` then `Captured`).
pub fn decide_and_charge(
    state: &PaymentState,
    (order_id, command): (String, PaymentCommand),
    gateway: &dyn PaymentGateway,
) -> Vec<PaymentEvent> {
    let Ok(mut events) = Payment::decide(state, (order_id.clone(), command));
    if events.is_empty() {
        return events;
    }
    let next = Payment::fold_from(state.clone(), &events);
    if let Some(request) = charge_due(&order_id, &next) {
        let outcome = gateway.charge(&request);
        let Ok(answered) = Payment::decide(&next, (order_id, PaymentCommand::GatewayAnswered(outcome)));
        events.extend(answered);
    }
    events
}

impl Aggregate for Payment {
    const CATEGORY: &'static str = "payment";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = None;
}

impl PaymentEvent {
    /// The integration event it is published as, if any.
    pub fn integration(&self) -> Option<Integration> {
        match self {
            PaymentEvent::Captured(e) => Some(Integration::PaymentCaptured(e.clone())),
            PaymentEvent::Declined(e) => Some(Integration::PaymentDeclined(e.clone())),
            PaymentEvent::Refunded(e) => Some(Integration::PaymentRefunded(e.clone())),
            _ => None,
        }
    }
}

/// Payment's routes: what each of its subscriptions is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `order`: the validated order's amount and card.
    Order,
    /// `credit`: the credit reservation, held or gone.
    Credit,
    /// `stock`: the stock reservation, held or gone.
    Stock,
    /// `refund`: a compensation trigger refunds what was captured.
    Refund,
}

impl udders_contracts::Route for Route {
    const ALL: &'static [Route] = &[Route::Order, Route::Credit, Route::Stock, Route::Refund];

    fn name(self) -> &'static str {
        match self {
            Route::Order => "order",
            Route::Credit => "credit",
            Route::Stock => "stock",
            Route::Refund => "refund",
        }
    }
}

/// What a route that may complete the order, the card and both
/// reservations publishes in answer: the charge's outcome.
const CHARGED: &[&str] = &["payment/captured", "payment/declined"];
/// What `refund` may publish in answer.
const REFUNDED: &[&str] = &["payment/refunded"];

/// Payment's subscriptions, in the order its consumer tries them (the first
/// match names the route), each with what its route may publish in answer
/// (empty: it only records). The `udders` binary assembles them into the
/// catalog.
pub const SUBSCRIPTIONS: &[Subscribe<Route>] = &[
    Subscribe::new(Route::Order, "order/valid/>", CHARGED),
    // A reservation may complete the pair and charge; a refusal or a
    // release only tells payment never to charge.
    Subscribe::new(Route::Credit, "credit/reserved/>", CHARGED),
    Subscribe::new(Route::Credit, "credit/rejected/>", &[]),
    Subscribe::new(Route::Credit, "credit/released/>", &[]),
    Subscribe::new(Route::Stock, "inventory/reserved/>", CHARGED),
    Subscribe::new(Route::Stock, "inventory/rejected/>", &[]),
    Subscribe::new(Route::Stock, "inventory/released/>", &[]),
    Subscribe::new(Route::Refund, "fulfillment/failed/>", REFUNDED),
    Subscribe::new(Route::Refund, "order/cancelled/>", REFUNDED),
    Subscribe::new(Route::Refund, "order/expired/>", REFUNDED),
];

/// What payment does with an integration event heard on `route`: the order
/// id and the command; `None` ignores it.
pub fn react(route: Route, event: &Integration) -> Option<(String, PaymentCommand)> {
    let order = event.order_id().to_owned();
    let command = match (route, event) {
        (Route::Order, Integration::OrderValidated(OrderValidated { total, card_token, postal_code, .. })) => {
            PaymentCommand::NoteOrder(Charge {
                amount: Money::from_minor(*total),
                card_token: card_token.clone(),
                postal_code: postal_code.clone(),
            })
        }
        (Route::Credit, Integration::CreditReserved(_)) => PaymentCommand::NoteCredit(Side::Held),
        (Route::Credit, Integration::CreditRejected(_) | Integration::CreditReleased(_)) => {
            PaymentCommand::NoteCredit(Side::Gone)
        }
        (Route::Stock, Integration::StockReserved(_)) => PaymentCommand::NoteStock(Side::Held),
        (Route::Stock, Integration::StockRejected(_) | Integration::StockReleased(_)) => {
            PaymentCommand::NoteStock(Side::Gone)
        }
        (
            Route::Refund,
            Integration::FulfillmentFailed(_) | Integration::OrderCancelled(_) | Integration::OrderExpired(_),
        ) => {
            let (domain, action) = event.name();
            PaymentCommand::Compensate { cause: format!("{domain}/{action}") }
        }
        _ => return None,
    };
    Some((order, command))
}

/// Where a payment stands, as its read model shows it: the payment's
/// status without what each status holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStage {
    /// Waiting for the order and both reservations.
    Waiting,
    /// Charged.
    Captured,
    /// The gateway said no.
    Declined,
    /// Charged, then given back.
    Refunded,
    /// Will never charge.
    Closed,
}

impl PaymentStage {
    /// `WAITING`, `CAPTURED`, `DECLINED`, `REFUNDED` or `CLOSED`: its JSON
    /// value, and the view's tag.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStage::Waiting => "WAITING",
            PaymentStage::Captured => "CAPTURED",
            PaymentStage::Declined => "DECLINED",
            PaymentStage::Refunded => "REFUNDED",
            PaymentStage::Closed => "CLOSED",
        }
    }
}

/// The read model of a payment: `GET /payments/{order_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentView {
    /// The order.
    pub order_id: String,
    /// `WAITING`, `CAPTURED`, `DECLINED`, `REFUNDED` or `CLOSED`.
    pub status: PaymentStage,
    /// The order's amount, once known.
    #[schema(value_type = Option<i64>)]
    pub amount: Option<Money>,
    /// Captured minus refunded: what the customer paid in the end.
    #[schema(value_type = i64)]
    pub net_charged: Money,
    /// The gateway's charge id, once captured.
    pub charge_id: Option<String>,
}

/// The payment's read model, folded from its state.
pub fn payment_view(order_id: &str, state: &PaymentState) -> PaymentView {
    let (status, net, charge_id) = match &state.status {
        PaymentStatus::Waiting => (PaymentStage::Waiting, Money::ZERO, None),
        PaymentStatus::Captured { charge_id, amount } => (PaymentStage::Captured, *amount, Some(charge_id.clone())),
        PaymentStatus::Declined => (PaymentStage::Declined, Money::ZERO, None),
        PaymentStatus::Refunded { .. } => (PaymentStage::Refunded, Money::ZERO, Some(format!("ch_{order_id}"))),
        PaymentStatus::Closed => (PaymentStage::Closed, Money::ZERO, None),
    };
    PaymentView {
        order_id: order_id.to_owned(),
        status,
        amount: state.charge.as_ref().map(|c| c.amount),
        net_charged: net,
        charge_id,
    }
}

impl ReadModel for Payment {
    const VIEW: &'static str = "payments";
    type Doc = PaymentView;

    fn project(key: &str, _: Option<PaymentView>, state: &PaymentState, _: &PaymentEvent) -> Option<PaymentView> {
        Some(payment_view(key, state))
    }

    fn tags(doc: &PaymentView) -> [Option<String>; 3] {
        [Some(doc.status.as_str().to_owned()), None, None]
    }
}

/// Gateway doubles for tests, here and in the service's (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use std::sync::Mutex;

    use super::{ChargeOutcome, ChargeRequest, PaymentGateway};

    /// Declines every charge and remembers what it was asked.
    #[derive(Debug, Default)]
    pub struct DecliningGateway {
        asked: Mutex<Vec<ChargeRequest>>,
    }

    impl PaymentGateway for DecliningGateway {
        fn charge(&self, request: &ChargeRequest) -> ChargeOutcome {
            self.asked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(request.clone());
            ChargeOutcome::Declined { reason: "insufficient funds".into() }
        }
    }

    impl DecliningGateway {
        /// The charges asked for so far, in order.
        pub fn requests(&self) -> Vec<ChargeRequest> {
            self.asked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::DecliningGateway;

    use udders_kernel::testing::given;

    use super::*;

    fn charge(token: &str) -> Charge {
        Charge { amount: Money::from_minor(1200), card_token: token.into(), postal_code: Some("12345".into()) }
    }

    fn cmd(command: PaymentCommand) -> (String, PaymentCommand) {
        ("o-1".into(), command)
    }

    fn captured() -> PaymentEvent {
        PaymentEvent::Captured(PaymentMoved {
            order_id: "o-1".into(),
            amount: 1200,
            charge_id: "ch_o-1".into(),
            postal_code: Some("12345".into()),
            cause: None,
        })
    }

    fn request(token: &str) -> ChargeRequest {
        ChargeRequest { order_id: "o-1".into(), card_token: token.into(), amount: Money::from_minor(1200) }
    }

    #[test]
    fn payment_charges_once_both_reservations_exist_in_whichever_order() {
        let history = [PaymentEvent::OrderNoted(charge(APPROVED_TOKEN)), PaymentEvent::StockNoted(Side::Held)];
        assert_eq!(
            decide_and_charge(&Payment::fold(&history), cmd(PaymentCommand::NoteCredit(Side::Held)), &SimulatedGateway),
            [PaymentEvent::CreditNoted(Side::Held), captured()]
        );
        let history = [PaymentEvent::CreditNoted(Side::Held), PaymentEvent::StockNoted(Side::Held)];
        assert_eq!(
            decide_and_charge(
                &Payment::fold(&history),
                cmd(PaymentCommand::NoteOrder(charge(APPROVED_TOKEN))),
                &SimulatedGateway
            ),
            [PaymentEvent::OrderNoted(charge(APPROVED_TOKEN)), captured()]
        );
    }

    #[test]
    fn payment_waits_while_a_reservation_is_missing() {
        let state = given::<Payment>([PaymentEvent::OrderNoted(charge(APPROVED_TOKEN))])
            .when(cmd(PaymentCommand::NoteCredit(Side::Held)))
            .then([PaymentEvent::CreditNoted(Side::Held)]);
        assert_eq!(charge_due("o-1", &state), None);
        let gateway = DecliningGateway::default();
        let events = decide_and_charge(
            &Payment::fold(&[PaymentEvent::OrderNoted(charge(APPROVED_TOKEN))]),
            cmd(PaymentCommand::NoteCredit(Side::Held)),
            &gateway,
        );
        assert_eq!(events, [PaymentEvent::CreditNoted(Side::Held)]);
        assert!(gateway.requests().is_empty(), "nothing is due: the gateway is not asked");
    }

    #[test]
    fn a_declined_card_is_a_declined_event() {
        let events = decide_and_charge(
            &Payment::fold(&[PaymentEvent::OrderNoted(charge(DECLINED_TOKEN)), PaymentEvent::CreditNoted(Side::Held)]),
            cmd(PaymentCommand::NoteStock(Side::Held)),
            &SimulatedGateway,
        );
        assert_eq!(
            events,
            [
                PaymentEvent::StockNoted(Side::Held),
                PaymentEvent::Declined(StepRefused {
                    order_id: "o-1".into(),
                    reason: "card declined by the issuer".into()
                })
            ]
        );
    }

    #[test]
    fn decide_alone_never_charges_it_makes_the_charge_due_and_takes_the_answer_as_a_command() {
        let history = vec![PaymentEvent::OrderNoted(charge(APPROVED_TOKEN)), PaymentEvent::StockNoted(Side::Held)];
        let state = given::<Payment>(history.clone())
            .when(cmd(PaymentCommand::NoteCredit(Side::Held)))
            .then([PaymentEvent::CreditNoted(Side::Held)]);
        assert_eq!(state.status, PaymentStatus::Waiting);
        assert_eq!(charge_due("o-1", &state), Some(request(APPROVED_TOKEN)));
        let mut due = history;
        due.push(PaymentEvent::CreditNoted(Side::Held));
        let approved = || cmd(PaymentCommand::GatewayAnswered(ChargeOutcome::Approved { charge_id: "ch_o-1".into() }));
        let captured_state = given::<Payment>(due.clone()).when(approved()).then([captured()]);
        assert_eq!(charge_due("o-1", &captured_state), None);
        due.push(captured());
        given::<Payment>(due).when(approved()).then([]);
        // An answer to a charge that was never due changes nothing.
        given::<Payment>([PaymentEvent::OrderNoted(charge(APPROVED_TOKEN))]).when(approved()).then([]);
    }

    #[test]
    fn a_declining_gateway_double_takes_the_declined_path() {
        let gateway = DecliningGateway::default();
        let state =
            Payment::fold(&[PaymentEvent::OrderNoted(charge(APPROVED_TOKEN)), PaymentEvent::CreditNoted(Side::Held)]);
        let events = decide_and_charge(&state, cmd(PaymentCommand::NoteStock(Side::Held)), &gateway);
        let declined = StepRefused { order_id: "o-1".into(), reason: "insufficient funds".into() };
        assert_eq!(events, [PaymentEvent::StockNoted(Side::Held), PaymentEvent::Declined(declined.clone())]);
        assert_eq!(gateway.requests(), [request(APPROVED_TOKEN)], "asked once, for the order's card and total");
        assert_eq!(events[1].integration(), Some(Integration::PaymentDeclined(declined)));
        let after = Payment::fold_from(state, &events);
        assert_eq!(after.status, PaymentStatus::Declined);
        assert_eq!(charge_due("o-1", &after), None);
    }

    #[test]
    fn the_simulated_gateway_keeps_its_charge_ids_and_reasons() {
        assert_eq!(
            SimulatedGateway.charge(&request(APPROVED_TOKEN)),
            ChargeOutcome::Approved { charge_id: "ch_o-1".into() }
        );
        assert_eq!(
            SimulatedGateway.charge(&request(DECLINED_TOKEN)),
            ChargeOutcome::Declined { reason: "card declined by the issuer".into() }
        );
        assert_eq!(
            SimulatedGateway.charge(&request("tok_amex")),
            ChargeOutcome::Declined { reason: "unknown card token \"tok_amex\"".into() }
        );
    }

    #[test]
    fn a_released_reservation_before_the_charge_closes_the_payment_for_good() {
        let state =
            given::<Payment>([PaymentEvent::OrderNoted(charge(APPROVED_TOKEN)), PaymentEvent::CreditNoted(Side::Held)])
                .when(cmd(PaymentCommand::NoteStock(Side::Gone)))
                .then([PaymentEvent::StockNoted(Side::Gone), PaymentEvent::Closed]);
        assert!(Payment::decide(&state, cmd(PaymentCommand::NoteStock(Side::Held))).unwrap().is_empty());
    }

    #[test]
    fn fulfillment_failed_refunds_a_capture_once() {
        let history = [
            PaymentEvent::OrderNoted(charge(APPROVED_TOKEN)),
            PaymentEvent::CreditNoted(Side::Held),
            PaymentEvent::StockNoted(Side::Held),
            captured(),
        ];
        let refunded = PaymentEvent::Refunded(PaymentMoved {
            order_id: "o-1".into(),
            amount: 1200,
            charge_id: "ch_o-1".into(),
            postal_code: None,
            cause: Some("fulfillment/failed".into()),
        });
        let compensate = || cmd(PaymentCommand::Compensate { cause: "fulfillment/failed".into() });
        let state = given::<Payment>(history.clone()).when(compensate()).then([refunded.clone()]);
        assert_eq!(payment_view("o-1", &state).net_charged, Money::ZERO);
        let mut again = history.to_vec();
        again.push(refunded);
        given::<Payment>(again).when(compensate()).then([]);
    }

    #[test]
    fn payment_notes_each_reservation_on_its_route_and_refunds_on_a_trigger() {
        let refused = StepRefused { order_id: "o-1".into(), reason: "x".into() };
        assert_eq!(
            react(Route::Credit, &Integration::CreditRejected(refused.clone())),
            Some(cmd(PaymentCommand::NoteCredit(Side::Gone)))
        );
        assert_eq!(
            react(Route::Stock, &Integration::StockRejected(refused.clone())),
            Some(cmd(PaymentCommand::NoteStock(Side::Gone)))
        );
        assert_eq!(
            react(Route::Refund, &Integration::FulfillmentFailed(refused.clone())),
            Some(cmd(PaymentCommand::Compensate { cause: "fulfillment/failed".into() }))
        );
        assert_eq!(react(Route::Refund, &Integration::PaymentDeclined(refused)), None, "its own decline");
    }

    #[test]
    fn the_view_keeps_its_json_shape_a_status_string_and_amounts_in_minor_units() {
        let state = Payment::fold(&[
            PaymentEvent::OrderNoted(charge(APPROVED_TOKEN)),
            PaymentEvent::CreditNoted(Side::Held),
            PaymentEvent::StockNoted(Side::Held),
            captured(),
        ]);
        let view = payment_view("o-1", &state);
        assert_eq!(
            serde_json::to_value(&view).unwrap(),
            serde_json::json!({
                "order_id": "o-1", "status": "CAPTURED", "amount": 1200, "net_charged": 1200, "charge_id": "ch_o-1"
            })
        );
        assert_eq!(serde_json::from_value::<PaymentView>(serde_json::to_value(&view).unwrap()).unwrap(), view);
        assert_eq!(Payment::tags(&view)[0].as_deref(), Some("CAPTURED"));
        for stage in [
            PaymentStage::Waiting,
            PaymentStage::Captured,
            PaymentStage::Declined,
            PaymentStage::Refunded,
            PaymentStage::Closed,
        ] {
            assert_eq!(serde_json::to_value(stage).unwrap(), stage.as_str());
        }
    }

    #[test]
    fn every_route_has_a_subscription_and_a_name_of_its_own() {
        assert_eq!(udders_contracts::route_table_problems(SUBSCRIPTIONS), Vec::<String>::new());
    }

    #[test]
    fn a_cancel_before_the_charge_answers_zero_and_the_order_is_never_charged() {
        let state = given::<Payment>([PaymentEvent::CreditNoted(Side::Held)])
            .when(cmd(PaymentCommand::Compensate { cause: "order/cancelled".into() }))
            .then([PaymentEvent::Refunded(PaymentMoved {
                order_id: "o-1".into(),
                amount: 0,
                charge_id: String::new(),
                postal_code: None,
                cause: Some("order/cancelled".into()),
            })]);
        let state = Payment::fold_from(state, &[PaymentEvent::OrderNoted(charge(APPROVED_TOKEN))]);
        let gateway = DecliningGateway::default();
        assert!(
            decide_and_charge(&state, cmd(PaymentCommand::NoteStock(Side::Held)), &gateway)
                .iter()
                .all(|e| e.integration().is_none())
        );
        assert!(gateway.requests().is_empty(), "a closed payment is never charged");
    }
}
