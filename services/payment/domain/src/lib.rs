//! Payment's pure domain: one payment per order, charged through a simulated
//! card gateway once both reservations exist, refunded by compensations.
//!
//! [`Payment`] (stream `payment-<order>`) collects three facts in whichever
//! order they arrive: the validated order (amount, card token), the credit
//! reservation and the stock reservation. When all three are there it
//! charges: `tok_visa` is approved, every other token declined. A release or
//! refusal of either reservation before that closes the payment for good.
//! The first compensation trigger is answered with one `payment/refunded`
//! (amount zero when nothing was captured).
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
use udders_kernel::{Aggregate, Decider, ReadModel};

/// The card token the simulated gateway approves.
pub const APPROVED_TOKEN: &str = "tok_visa";
/// The card token it declines (so does every unknown token).
pub const DECLINED_TOKEN: &str = "tok_declined";

/// The simulated gateway: approved, or declined with a reason.
pub fn gateway(card_token: &str) -> Result<(), String> {
    match card_token {
        APPROVED_TOKEN => Ok(()),
        DECLINED_TOKEN => Err("card declined by the issuer".to_owned()),
        other => Err(format!("unknown card token {other:?}")),
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
    /// Minor units.
    pub amount: i64,
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
        /// Minor units.
        amount: i64,
    },
    /// The gateway said no.
    Declined,
    /// Charged, then given back.
    Refunded {
        /// Minor units.
        amount: i64,
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
            PaymentCommand::Compensate { cause } if !state.answered => {
                let amount = match state.status {
                    PaymentStatus::Captured { amount, .. } => amount,
                    _ => 0,
                };
                let charge_id = match &state.status {
                    PaymentStatus::Captured { charge_id, .. } => charge_id.clone(),
                    _ => String::new(),
                };
                return Ok(vec![PaymentEvent::Refunded(PaymentMoved {
                    order_id,
                    amount,
                    charge_id,
                    postal_code: None,
                    cause: Some(cause),
                })]);
            }
            _ => return Ok(Vec::new()),
        };
        let next = Self::fold_from(state.clone(), &events);
        if next.status == PaymentStatus::Waiting {
            if next.credit == Side::Gone || next.stock == Side::Gone {
                events.push(PaymentEvent::Closed);
            } else if let (Some(charge), Side::Held, Side::Held) = (&next.charge, next.credit, next.stock) {
                events.push(match gateway(&charge.card_token) {
                    Ok(()) => PaymentEvent::Captured(PaymentMoved {
                        order_id: order_id.clone(),
                        amount: charge.amount,
                        charge_id: format!("ch_{order_id}"),
                        postal_code: charge.postal_code.clone(),
                        cause: None,
                    }),
                    Err(reason) => PaymentEvent::Declined(StepRefused { order_id, reason }),
                });
            }
        }
        Ok(events)
    }

    fn evolve(mut state: PaymentState, event: &PaymentEvent) -> PaymentState {
        match event {
            PaymentEvent::OrderNoted(charge) => state.charge = Some(charge.clone()),
            PaymentEvent::CreditNoted(side) => state.credit = *side,
            PaymentEvent::StockNoted(side) => state.stock = *side,
            PaymentEvent::Captured(e) => {
                state.status = PaymentStatus::Captured { charge_id: e.charge_id.clone(), amount: e.amount }
            }
            PaymentEvent::Declined(_) => state.status = PaymentStatus::Declined,
            PaymentEvent::Refunded(e) => {
                state.answered = true;
                state.status = match state.status {
                    PaymentStatus::Captured { .. } => PaymentStatus::Refunded { amount: e.amount },
                    PaymentStatus::Waiting => PaymentStatus::Closed,
                    other => other,
                };
            }
            PaymentEvent::Closed => state.status = PaymentStatus::Closed,
        }
        state
    }
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
                amount: *total,
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

/// The read model of a payment: `GET /payments/{order_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentView {
    /// The order.
    pub order_id: String,
    /// `WAITING`, `CAPTURED`, `DECLINED`, `REFUNDED` or `CLOSED`.
    pub status: String,
    /// The order's amount, once known.
    pub amount: Option<i64>,
    /// Captured minus refunded: what the customer paid in the end.
    pub net_charged: i64,
    /// The gateway's charge id, once captured.
    pub charge_id: Option<String>,
}

/// The payment's read model, folded from its state.
pub fn payment_view(order_id: &str, state: &PaymentState) -> PaymentView {
    let (status, net, charge_id) = match &state.status {
        PaymentStatus::Waiting => ("WAITING", 0, None),
        PaymentStatus::Captured { charge_id, amount } => ("CAPTURED", *amount, Some(charge_id.clone())),
        PaymentStatus::Declined => ("DECLINED", 0, None),
        PaymentStatus::Refunded { .. } => ("REFUNDED", 0, Some(format!("ch_{order_id}"))),
        PaymentStatus::Closed => ("CLOSED", 0, None),
    };
    PaymentView {
        order_id: order_id.to_owned(),
        status: status.to_owned(),
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
        [Some(doc.status.clone()), None, None]
    }
}

#[cfg(test)]
mod tests {
    use udders_kernel::testing::given;

    use super::*;

    fn charge(token: &str) -> Charge {
        Charge { amount: 1200, card_token: token.into(), postal_code: Some("12345".into()) }
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

    #[test]
    fn payment_charges_once_both_reservations_exist_in_whichever_order() {
        let history = [PaymentEvent::OrderNoted(charge(APPROVED_TOKEN)), PaymentEvent::StockNoted(Side::Held)];
        given::<Payment>(history.clone())
            .when(cmd(PaymentCommand::NoteCredit(Side::Held)))
            .then([PaymentEvent::CreditNoted(Side::Held), captured()]);
        let history = [PaymentEvent::CreditNoted(Side::Held), PaymentEvent::StockNoted(Side::Held)];
        given::<Payment>(history)
            .when(cmd(PaymentCommand::NoteOrder(charge(APPROVED_TOKEN))))
            .then([PaymentEvent::OrderNoted(charge(APPROVED_TOKEN)), captured()]);
    }

    #[test]
    fn payment_waits_while_a_reservation_is_missing() {
        given::<Payment>([PaymentEvent::OrderNoted(charge(APPROVED_TOKEN))])
            .when(cmd(PaymentCommand::NoteCredit(Side::Held)))
            .then([PaymentEvent::CreditNoted(Side::Held)]);
    }

    #[test]
    fn a_declined_card_is_a_declined_event() {
        let events = Payment::decide(
            &Payment::fold(&[PaymentEvent::OrderNoted(charge(DECLINED_TOKEN)), PaymentEvent::CreditNoted(Side::Held)]),
            cmd(PaymentCommand::NoteStock(Side::Held)),
        )
        .unwrap();
        assert!(matches!(&events[1], PaymentEvent::Declined(d) if d.reason.contains("declined")), "{events:?}");
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
        assert_eq!(payment_view("o-1", &state).net_charged, 0);
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
        assert!(
            Payment::decide(&state, cmd(PaymentCommand::NoteStock(Side::Held)))
                .unwrap()
                .iter()
                .all(|e| e.integration().is_none())
        );
    }
}
