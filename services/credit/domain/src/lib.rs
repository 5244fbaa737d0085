//! Credit's pure domain: customer accounts with a limit, and the credit hold
//! of each order.
//!
//! Two deciders. [`Account`] (stream `credit-<customer>`) holds the limit and
//! the open reservations and decides whether an amount fits. [`OrderHold`]
//! (stream `credit_hold-<order>`) remembers what this service did for one
//! order, so every reaction is idempotent and a compensation that arrives
//! before the reservation closes the order for good.
//!
//! Compensation rule shared by credit, inventory and payment: the first
//! compensation trigger an order's hold sees is answered with exactly one
//! `credit/released` (amount zero when nothing was held), later ones with
//! nothing. The order service waits for these answers.
//!
//! Its subscriptions ([`SUBSCRIPTIONS`], one [`Route`] per purpose:
//! `reserve`, `release`, `settle`) are declared beside [`react`], which
//! takes the route a record came on first.
//!
//! A reaction involves both deciders, and the rules of how they meet live
//! here too: [`account_touched`] names the account a reaction touches (known
//! from the reaction and the hold, before the account is loaded), and
//! [`decide_reaction`] decides both aggregates' events from both states. The
//! handler only loads, asks and records.
//!
//! What must not: I/O, clocks.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use udders_contracts::events::{CreditMoved, StepRefused};
use udders_contracts::{Integration, Subscribe};
use udders_kernel::{Aggregate, Decider, Money, ReadModel};

/// Seeded credit rule: every customer gets this limit (minor units) ...
pub const DEFAULT_LIMIT: Money = Money::from_minor(100_000);
/// ... except this one, whose limit is zero.
pub const BROKE_CUSTOMER: &str = "cust-broke";

/// The limit a new account opens with.
pub fn limit_for(customer: &str) -> Money {
    if customer == BROKE_CUSTOMER { Money::ZERO } else { DEFAULT_LIMIT }
}

/// A customer's account.
#[derive(Debug)]
pub struct Account;

/// What an account remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// `None` until the first reservation opens the account.
    pub limit: Option<Money>,
    /// Sum of the open reservations.
    pub reserved: Money,
    /// Open reservations by order.
    pub open: BTreeMap<String, Money>,
}

impl AccountState {
    /// What can still be reserved.
    pub fn available(&self) -> Money {
        Money::from_minor(self.limit.unwrap_or(Money::ZERO).minor() - self.reserved.minor())
    }
}

/// What an account is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    /// Hold `amount` for `order`; `limit` opens a new account.
    Reserve {
        /// The order.
        order: String,
        /// Minor units.
        amount: Money,
        /// The limit of a new account (looked up by the caller).
        limit: Money,
    },
    /// Let go of what `order` holds.
    Release {
        /// The order.
        order: String,
    },
    /// `order` shipped: what it holds becomes a sale and leaves the
    /// reserved credit.
    Settle {
        /// The order.
        order: String,
    },
    /// An operator sets the limit (holds already taken stay, even above it).
    SetLimit {
        /// The new limit.
        limit: Money,
        /// The limit a new account would open with.
        opening: Money,
    },
}

/// What happened to an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AccountEvent {
    /// The account exists, with this limit.
    Opened {
        /// The limit.
        limit: Money,
    },
    /// An amount is held.
    Reserved {
        /// The order.
        order: String,
        /// Minor units.
        amount: Money,
    },
    /// An amount did not fit.
    Rejected {
        /// The order.
        order: String,
        /// Asked for.
        amount: Money,
        /// What was available.
        available: Money,
    },
    /// A hold was let go.
    Released {
        /// The order.
        order: String,
        /// Minor units.
        amount: Money,
    },
    /// A hold became a sale: the order shipped.
    Settled {
        /// The order.
        order: String,
        /// Minor units.
        amount: Money,
    },
    /// An operator changed the limit; published as `credit/limit-changed`.
    LimitChanged {
        /// The new limit.
        limit: Money,
        /// The one it replaces.
        previous: Money,
    },
}

/// Something an account cannot do at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountError {
    /// A negative amount.
    NegativeAmount,
}

impl Decider for Account {
    type State = AccountState;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn initial_state() -> AccountState {
        AccountState::default()
    }

    fn decide(state: &AccountState, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Reserve { order, amount, limit } => {
                if amount.is_negative() {
                    return Err(AccountError::NegativeAmount);
                }
                if state.open.contains_key(&order) {
                    return Ok(Vec::new());
                }
                let mut events = Vec::new();
                let mut available = state.available();
                if state.limit.is_none() {
                    events.push(AccountEvent::Opened { limit });
                    available = Money::from_minor(limit.minor() - state.reserved.minor());
                }
                events.push(if amount <= available {
                    AccountEvent::Reserved { order, amount }
                } else {
                    AccountEvent::Rejected { order, amount, available }
                });
                Ok(events)
            }
            AccountCommand::Release { order } => Ok(match state.open.get(&order) {
                Some(amount) => vec![AccountEvent::Released { order, amount: *amount }],
                None => Vec::new(),
            }),
            AccountCommand::Settle { order } => Ok(match state.open.get(&order) {
                Some(amount) => vec![AccountEvent::Settled { order, amount: *amount }],
                None => Vec::new(),
            }),
            AccountCommand::SetLimit { limit, opening } => {
                if limit.is_negative() {
                    return Err(AccountError::NegativeAmount);
                }
                let previous = state.limit.unwrap_or(opening);
                Ok(if state.limit == Some(limit) {
                    Vec::new()
                } else {
                    vec![AccountEvent::LimitChanged { limit, previous }]
                })
            }
        }
    }

    fn evolve(mut state: AccountState, event: &AccountEvent) -> AccountState {
        match event {
            AccountEvent::Opened { limit } | AccountEvent::LimitChanged { limit, .. } => state.limit = Some(*limit),
            AccountEvent::Reserved { order, amount } => {
                state.reserved = state.reserved + *amount;
                state.open.insert(order.clone(), *amount);
            }
            AccountEvent::Rejected { .. } => {}
            AccountEvent::Released { order, amount } | AccountEvent::Settled { order, amount } => {
                state.reserved = Money::from_minor(state.reserved.minor() - amount.minor());
                state.open.remove(order);
            }
        }
        state
    }
}

impl Aggregate for Account {
    const CATEGORY: &'static str = "credit";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = NonZeroU64::new(50);
}

/// The credit side of one order.
#[derive(Debug)]
pub struct OrderHold;

/// Where an order's credit stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldStatus {
    /// Nothing decided yet.
    #[default]
    Unseen,
    /// An amount is held on the customer's account.
    Held {
        /// The customer.
        customer: String,
        /// Minor units.
        amount: Money,
    },
    /// The amount did not fit the limit.
    Refused,
    /// The hold was let go.
    Released,
    /// The order shipped: the hold became a sale.
    Settled,
    /// A compensation came first: nothing will be held for this order.
    Closed,
}

/// What credit remembers of one order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldState {
    /// Where it stands.
    pub status: HoldStatus,
    /// A compensation trigger was answered.
    pub answered: bool,
}

/// What an order's hold is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldCommand {
    /// The account decided on the reservation (`Reserved` or `Rejected`).
    Note(AccountEvent, String),
    /// A compensation trigger arrived, caused by `cause` (`payment/declined`, ...).
    Compensate {
        /// The trigger's name.
        cause: String,
    },
    /// The order shipped.
    Settle,
}

/// What happened to an order's credit. Every variant is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum HoldEvent {
    /// `credit/reserved`
    Held(CreditMoved),
    /// `credit/rejected`
    Refused(StepRefused),
    /// `credit/released`, amount zero when nothing was held.
    Released(CreditMoved),
    /// `credit/settled`
    Settled(CreditMoved),
}

impl Decider for OrderHold {
    type State = HoldState;
    type Command = (String, HoldCommand);
    type Event = HoldEvent;
    type Error = std::convert::Infallible;

    fn initial_state() -> HoldState {
        HoldState::default()
    }

    fn decide(state: &HoldState, (order_id, command): (String, HoldCommand)) -> Result<Vec<HoldEvent>, Self::Error> {
        Ok(match command {
            HoldCommand::Note(decision, customer) if state.status == HoldStatus::Unseen => match decision {
                AccountEvent::Reserved { amount, .. } => vec![HoldEvent::Held(CreditMoved {
                    order_id,
                    customer_id: customer,
                    amount: amount.minor(),
                    cause: None,
                })],
                AccountEvent::Rejected { amount, available, .. } => vec![HoldEvent::Refused(StepRefused {
                    order_id,
                    reason: format!(
                        "credit: {} needed, {} available for {customer}",
                        amount.minor(),
                        available.minor()
                    ),
                })],
                AccountEvent::Opened { .. }
                | AccountEvent::Released { .. }
                | AccountEvent::Settled { .. }
                | AccountEvent::LimitChanged { .. } => Vec::new(),
            },
            HoldCommand::Note(..) => Vec::new(),
            HoldCommand::Settle => match &state.status {
                HoldStatus::Held { customer, amount } => vec![HoldEvent::Settled(CreditMoved {
                    order_id,
                    customer_id: customer.clone(),
                    amount: amount.minor(),
                    cause: None,
                })],
                _ => Vec::new(),
            },
            HoldCommand::Compensate { .. } if state.answered => Vec::new(),
            HoldCommand::Compensate { cause } => {
                let (customer_id, amount) = match &state.status {
                    HoldStatus::Held { customer, amount } => (customer.clone(), amount.minor()),
                    _ => (String::new(), 0),
                };
                vec![HoldEvent::Released(CreditMoved { order_id, customer_id, amount, cause: Some(cause) })]
            }
        })
    }

    fn evolve(mut state: HoldState, event: &HoldEvent) -> HoldState {
        match event {
            HoldEvent::Held(e) => {
                state.status = HoldStatus::Held { customer: e.customer_id.clone(), amount: Money::from_minor(e.amount) }
            }
            HoldEvent::Refused(_) => state.status = HoldStatus::Refused,
            HoldEvent::Settled(_) => state.status = HoldStatus::Settled,
            HoldEvent::Released(_) => {
                state.answered = true;
                state.status = match state.status {
                    HoldStatus::Held { .. } => HoldStatus::Released,
                    HoldStatus::Unseen => HoldStatus::Closed,
                    other => other,
                };
            }
        }
        state
    }
}

impl Aggregate for OrderHold {
    const CATEGORY: &'static str = "credit_hold";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = None;
}

impl HoldEvent {
    /// The integration event it is published as.
    pub fn integration(&self) -> Integration {
        match self {
            HoldEvent::Held(e) => Integration::CreditReserved(e.clone()),
            HoldEvent::Refused(e) => Integration::CreditRejected(e.clone()),
            HoldEvent::Released(e) => Integration::CreditReleased(e.clone()),
            HoldEvent::Settled(e) => Integration::CreditSettled(e.clone()),
        }
    }
}

/// What credit does with an incoming event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Reserve the order's total on the customer's account.
    Reserve {
        /// The order.
        order: String,
        /// The customer.
        customer: String,
        /// Minor units.
        amount: Money,
    },
    /// Answer a compensation trigger.
    Compensate {
        /// The order.
        order: String,
        /// The trigger's name.
        cause: String,
    },
    /// The order shipped: settle its hold.
    Settle {
        /// The order.
        order: String,
    },
}

impl Reaction {
    /// The order it is about: the id of the hold it decides on.
    pub fn order(&self) -> &str {
        match self {
            Reaction::Reserve { order, .. } | Reaction::Compensate { order, .. } | Reaction::Settle { order } => {
                order.as_str()
            }
        }
    }
}

/// What credit decides on one reaction: the events of the customer's
/// account and those of the order's hold, recorded in that order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditDecision {
    /// For the account [`account_touched`] named (empty when it named none).
    pub account: Vec<AccountEvent>,
    /// For the order's hold; each is published ([`HoldEvent::integration`]).
    pub hold: Vec<HoldEvent>,
}

/// The account a reaction touches, known from the reaction and the order's
/// hold before any account is loaded: the order's customer for a
/// reservation the hold has not seen (`Unseen`), the held customer for a
/// compensation or a shipment that moves a `Held` hold, otherwise none.
pub fn account_touched<'a>(reaction: &'a Reaction, hold: &'a HoldState) -> Option<&'a str> {
    match reaction {
        Reaction::Reserve { customer, .. } => (hold.status == HoldStatus::Unseen).then_some(customer.as_str()),
        Reaction::Compensate { .. } | Reaction::Settle { .. } => match &hold.status {
            HoldStatus::Held { customer, .. } if hold_answer(reaction, hold).is_some_and(|e| !e.is_empty()) => {
                Some(customer.as_str())
            }
            _ => None,
        },
    }
}

/// Decides a reaction on both aggregates, given the hold's state and the
/// state of the account [`account_touched`] named (`None` when it named
/// none).
///
/// - `Reserve`: only while the hold is `Unseen`. The account decides
///   (opening with [`limit_for`] the customer), then the hold notes the
///   account's last event: `Held` or `Refused`.
/// - `Compensate`, `Settle`: the hold decides; when it was `Held` and moves,
///   the account releases or settles the order's amount.
///
/// `Err` is a permanent failure, in words: an account that refuses the
/// command (a negative amount), or one that was needed and not given.
pub fn decide_reaction(
    reaction: Reaction,
    hold: &HoldState,
    account: Option<&AccountState>,
) -> Result<CreditDecision, String> {
    let hold_events = hold_answer(&reaction, hold);
    let Some(customer) = account_touched(&reaction, hold).map(str::to_owned) else {
        return Ok(CreditDecision { account: Vec::new(), hold: hold_events.unwrap_or_default() });
    };
    let Some(account) = account else {
        return Err(format!("credit for {}: the account of {customer} was not given", reaction.order()));
    };
    let command = match reaction {
        Reaction::Reserve { order, amount, .. } => {
            let command = AccountCommand::Reserve { order: order.clone(), amount, limit: limit_for(&customer) };
            let decided = Account::decide(account, command).map_err(|e| format!("credit for {order}: {e:?}"))?;
            let noted = match decided.last() {
                Some(outcome) => {
                    let Ok(events) = OrderHold::decide(hold, (order, HoldCommand::Note(outcome.clone(), customer)));
                    events
                }
                None => Vec::new(),
            };
            return Ok(CreditDecision { account: decided, hold: noted });
        }
        Reaction::Compensate { order, .. } => AccountCommand::Release { order },
        Reaction::Settle { order } => AccountCommand::Settle { order },
    };
    let decided = Account::decide(account, command).map_err(|e| format!("{e:?}"))?;
    Ok(CreditDecision { account: decided, hold: hold_events.unwrap_or_default() })
}

/// The hold's own answer to a compensation or a shipment; `None` for a
/// reservation, which the hold notes only once the account has decided.
fn hold_answer(reaction: &Reaction, hold: &HoldState) -> Option<Vec<HoldEvent>> {
    let command = match reaction {
        Reaction::Reserve { .. } => return None,
        Reaction::Compensate { order, cause } => (order.clone(), HoldCommand::Compensate { cause: cause.clone() }),
        Reaction::Settle { order } => (order.clone(), HoldCommand::Settle),
    };
    let Ok(events) = OrderHold::decide(hold, command);
    Some(events)
}

/// Credit's routes: what each of its subscriptions is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `reserve`: a validated order's total is held on the customer's account.
    Reserve,
    /// `release`: a compensation trigger lets the order's hold go.
    Release,
    /// `settle`: a shipped order's hold becomes a sale.
    Settle,
}

impl udders_contracts::Route for Route {
    const ALL: &'static [Route] = &[Route::Reserve, Route::Release, Route::Settle];

    fn name(self) -> &'static str {
        match self {
            Route::Reserve => "reserve",
            Route::Release => "release",
            Route::Settle => "settle",
        }
    }
}

/// What `release` may publish in answer.
const RELEASED: &[&str] = &["credit/released"];

/// Credit's subscriptions, in the order its consumer tries them (the first
/// match names the route), each with what its route may publish in answer.
/// The `udders` binary assembles them into the catalog.
pub const SUBSCRIPTIONS: &[Subscribe<Route>] = &[
    Subscribe::new(Route::Reserve, "order/valid/>", &["credit/reserved", "credit/rejected"]),
    Subscribe::new(Route::Release, "inventory/rejected/>", RELEASED),
    Subscribe::new(Route::Settle, "order/shipped/>", &["credit/settled"]),
    // The compensation triggers every holder answers (credit/rejected, its
    // own, it does not hear).
    Subscribe::new(Route::Release, "order/cancelled/>", RELEASED),
    Subscribe::new(Route::Release, "order/expired/>", RELEASED),
    Subscribe::new(Route::Release, "payment/declined/>", RELEASED),
    Subscribe::new(Route::Release, "fulfillment/failed/>", RELEASED),
];

/// Maps an integration event heard on `route` to what credit does; `None`
/// ignores it.
pub fn react(route: Route, event: &Integration) -> Option<Reaction> {
    match (route, event) {
        (Route::Reserve, Integration::OrderValidated(e)) => Some(Reaction::Reserve {
            order: e.order_id.clone(),
            customer: e.customer_id.clone(),
            amount: Money::from_minor(e.total),
        }),
        (Route::Settle, Integration::OrderShipped(e)) => Some(Reaction::Settle { order: e.order_id.clone() }),
        (Route::Release, e) if e.is_compensation_trigger() && !matches!(e, Integration::CreditRejected(_)) => {
            let (domain, action) = e.name();
            Some(Reaction::Compensate { order: e.order_id().to_owned(), cause: format!("{domain}/{action}") })
        }
        _ => None,
    }
}

/// The read model of an account: `GET /customers/{id}/credit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreditView {
    /// The customer.
    pub customer_id: String,
    /// The limit.
    #[schema(value_type = i64)]
    pub limit: Money,
    /// Sum of open reservations.
    #[schema(value_type = i64)]
    pub reserved: Money,
    /// `limit - reserved`.
    #[schema(value_type = i64)]
    pub available: Money,
    /// Open reservations.
    pub open_reservations: usize,
}

/// The account's read model, folded from its state.
pub fn credit_view(customer: &str, state: &AccountState) -> CreditView {
    let limit = state.limit.unwrap_or(limit_for(customer));
    CreditView {
        customer_id: customer.to_owned(),
        limit,
        reserved: state.reserved,
        available: Money::from_minor(limit.minor() - state.reserved.minor()),
        open_reservations: state.open.len(),
    }
}

impl ReadModel for Account {
    const VIEW: &'static str = "credit";
    type Doc = CreditView;

    fn project(key: &str, _: Option<CreditView>, state: &AccountState, _: &AccountEvent) -> Option<CreditView> {
        Some(credit_view(key, state))
    }
}

#[cfg(test)]
mod tests {
    use udders_kernel::testing::given;

    use super::*;

    fn reserve(order: &str, amount: i64, limit: i64) -> AccountCommand {
        AccountCommand::Reserve {
            order: order.into(),
            amount: Money::from_minor(amount),
            limit: Money::from_minor(limit),
        }
    }

    #[test]
    fn the_first_reservation_opens_the_account_and_holds_the_amount() {
        let state = given::<Account>([]).when(reserve("o-1", 1200, 100_000)).then([
            AccountEvent::Opened { limit: Money::from_minor(100_000) },
            AccountEvent::Reserved { order: "o-1".into(), amount: Money::from_minor(1200) },
        ]);
        assert_eq!(state.available(), Money::from_minor(98_800));
    }

    #[test]
    fn an_amount_above_what_is_available_is_rejected_not_held() {
        given::<Account>([
            AccountEvent::Opened { limit: Money::from_minor(1000) },
            AccountEvent::Reserved { order: "o-1".into(), amount: Money::from_minor(600) },
        ])
        .when(reserve("o-2", 500, 1000))
        .then([AccountEvent::Rejected {
            order: "o-2".into(),
            amount: Money::from_minor(500),
            available: Money::from_minor(400),
        }]);
    }

    #[test]
    fn a_new_limit_applies_to_the_next_reservation_and_holds_taken_stay() {
        let opened = [
            AccountEvent::Opened { limit: Money::from_minor(1000) },
            AccountEvent::Reserved { order: "o-1".into(), amount: Money::from_minor(800) },
        ];
        let lowered = given::<Account>(opened.clone())
            .when(AccountCommand::SetLimit { limit: Money::from_minor(500), opening: DEFAULT_LIMIT })
            .then([AccountEvent::LimitChanged { limit: Money::from_minor(500), previous: Money::from_minor(1000) }]);
        assert_eq!((lowered.reserved.minor(), lowered.available().minor()), (800, -300));
        let mut history = opened.to_vec();
        history.push(AccountEvent::LimitChanged { limit: Money::from_minor(5000), previous: Money::from_minor(1000) });
        given::<Account>(history)
            .when(reserve("o-2", 4000, 1000))
            .then([AccountEvent::Reserved { order: "o-2".into(), amount: Money::from_minor(4000) }]);
        // A limit set before the first order opens the account with it.
        let state = given::<Account>([])
            .when(AccountCommand::SetLimit { limit: Money::from_minor(200), opening: DEFAULT_LIMIT })
            .then([AccountEvent::LimitChanged { limit: Money::from_minor(200), previous: DEFAULT_LIMIT }]);
        assert!(matches!(
            Account::decide(&state, reserve("o-3", 300, 100_000)).unwrap()[..],
            [AccountEvent::Rejected { .. }]
        ));
    }

    #[test]
    fn a_customer_with_limit_zero_is_rejected() {
        assert_eq!(limit_for(BROKE_CUSTOMER), Money::ZERO);
        let events = Account::decide(&AccountState::default(), reserve("o-1", 500, 0)).unwrap();
        assert!(matches!(events[1], AccountEvent::Rejected { .. }), "{events:?}");
    }

    #[test]
    fn reserving_twice_for_one_order_holds_once_and_release_is_idempotent() {
        let history = [
            AccountEvent::Opened { limit: Money::from_minor(1000) },
            AccountEvent::Reserved { order: "o-1".into(), amount: Money::from_minor(600) },
        ];
        given::<Account>(history.clone()).when(reserve("o-1", 600, 1000)).then([]);
        let mut released = history.to_vec();
        released.push(AccountEvent::Released { order: "o-1".into(), amount: Money::from_minor(600) });
        given::<Account>(history)
            .when(AccountCommand::Release { order: "o-1".into() })
            .then([AccountEvent::Released { order: "o-1".into(), amount: Money::from_minor(600) }]);
        let state = given::<Account>(released.clone()).when(AccountCommand::Release { order: "o-1".into() }).then([]);
        assert_eq!((state.reserved, state.open.len()), (Money::ZERO, 0));
    }

    fn held() -> HoldEvent {
        HoldEvent::Held(CreditMoved { order_id: "o-1".into(), customer_id: "c".into(), amount: 600, cause: None })
    }

    #[test]
    fn payment_declined_releases_the_held_credit_once() {
        let compensate = || ("o-1".to_owned(), HoldCommand::Compensate { cause: "payment/declined".into() });
        let released = HoldEvent::Released(CreditMoved {
            order_id: "o-1".into(),
            customer_id: "c".into(),
            amount: 600,
            cause: Some("payment/declined".into()),
        });
        let state = given::<OrderHold>([held()]).when(compensate()).then([released.clone()]);
        assert_eq!(state.status, HoldStatus::Released);
        given::<OrderHold>([held(), released]).when(compensate()).then([]);
    }

    #[test]
    fn a_compensation_before_the_reservation_answers_zero_and_closes_the_order() {
        let state = given::<OrderHold>([])
            .when(("o-1".into(), HoldCommand::Compensate { cause: "order/cancelled".into() }))
            .then([HoldEvent::Released(CreditMoved {
                order_id: "o-1".into(),
                customer_id: String::new(),
                amount: 0,
                cause: Some("order/cancelled".into()),
            })]);
        assert_eq!(state.status, HoldStatus::Closed);
        let late = AccountEvent::Reserved { order: "o-1".into(), amount: Money::from_minor(1) };
        assert!(OrderHold::decide(&state, ("o-1".into(), HoldCommand::Note(late, "c".into()))).unwrap().is_empty());
    }

    #[test]
    fn credit_reacts_to_valid_orders_and_to_every_trigger_but_its_own_rejection() {
        let refused = StepRefused { order_id: "o-1".into(), reason: "x".into() };
        assert!(react(Route::Release, &Integration::CreditRejected(refused.clone())).is_none());
        assert_eq!(
            react(Route::Release, &Integration::StockRejected(refused)),
            Some(Reaction::Compensate { order: "o-1".into(), cause: "inventory/rejected".into() })
        );
    }

    #[test]
    fn every_route_has_a_subscription_and_a_name_of_its_own() {
        assert_eq!(udders_contracts::route_table_problems(SUBSCRIPTIONS), Vec::<String>::new());
    }

    #[test]
    fn a_shipped_order_settles_its_hold_and_the_credit_comes_back() {
        let held = [
            AccountEvent::Opened { limit: Money::from_minor(1000) },
            AccountEvent::Reserved { order: "o-1".into(), amount: Money::from_minor(500) },
        ];
        let state = given::<Account>(held.clone())
            .when(AccountCommand::Settle { order: "o-1".into() })
            .then([AccountEvent::Settled { order: "o-1".into(), amount: Money::from_minor(500) }]);
        assert_eq!(state.reserved, Money::ZERO);
        assert_eq!(state.available(), Money::from_minor(1000));
        let mut settled = held.to_vec();
        settled.push(AccountEvent::Settled { order: "o-1".into(), amount: Money::from_minor(500) });
        given::<Account>(settled).when(AccountCommand::Settle { order: "o-1".into() }).then([]);
    }

    #[test]
    fn only_a_held_order_settles_and_only_once() {
        let state =
            given::<OrderHold>([held()]).when(("o-1".to_owned(), HoldCommand::Settle)).then([HoldEvent::Settled(
                CreditMoved { order_id: "o-1".into(), customer_id: "c".into(), amount: 600, cause: None },
            )]);
        assert_eq!(state.status, HoldStatus::Settled);
        given::<OrderHold>([]).when(("o-1".to_owned(), HoldCommand::Settle)).then([]);
    }

    /// One row of the reaction table: the histories of the hold and the
    /// account, a reaction, and what credit decides.
    struct Case {
        name: &'static str,
        hold: Vec<HoldEvent>,
        account: Vec<AccountEvent>,
        reaction: Reaction,
        touches: Option<&'static str>,
        account_events: Vec<AccountEvent>,
        hold_events: Vec<HoldEvent>,
    }

    fn moved(amount: i64, customer: &str, cause: Option<&str>) -> CreditMoved {
        CreditMoved { order_id: "o-1".into(), customer_id: customer.into(), amount, cause: cause.map(str::to_owned) }
    }

    fn reserve_reaction(customer: &str, amount: i64) -> Reaction {
        Reaction::Reserve { order: "o-1".into(), customer: customer.into(), amount: Money::from_minor(amount) }
    }

    fn compensate_reaction(cause: &str) -> Reaction {
        Reaction::Compensate { order: "o-1".into(), cause: cause.into() }
    }

    /// An account of limit 100,000 holding 1,200 for `o-1`.
    fn holding() -> Vec<AccountEvent> {
        vec![
            AccountEvent::Opened { limit: DEFAULT_LIMIT },
            AccountEvent::Reserved { order: "o-1".into(), amount: Money::from_minor(1200) },
        ]
    }

    fn cases() -> Vec<Case> {
        let held = HoldEvent::Held(moved(1200, "cust-1", None));
        vec![
            Case {
                name: "a reservation within the limit opens the account and holds",
                hold: vec![],
                account: vec![],
                reaction: reserve_reaction("cust-1", 1200),
                touches: Some("cust-1"),
                account_events: holding(),
                hold_events: vec![held.clone()],
            },
            Case {
                name: "a reservation over what is available is refused",
                hold: vec![],
                account: vec![
                    AccountEvent::Opened { limit: Money::from_minor(1000) },
                    AccountEvent::Reserved { order: "o-0".into(), amount: Money::from_minor(600) },
                ],
                reaction: reserve_reaction("cust-1", 500),
                touches: Some("cust-1"),
                account_events: vec![AccountEvent::Rejected {
                    order: "o-1".into(),
                    amount: Money::from_minor(500),
                    available: Money::from_minor(400),
                }],
                hold_events: vec![HoldEvent::Refused(StepRefused {
                    order_id: "o-1".into(),
                    reason: "credit: 500 needed, 400 available for cust-1".into(),
                })],
            },
            Case {
                name: "the broke customer's account opens at zero and refuses",
                hold: vec![],
                account: vec![],
                reaction: reserve_reaction(BROKE_CUSTOMER, 500),
                touches: Some(BROKE_CUSTOMER),
                account_events: vec![
                    AccountEvent::Opened { limit: Money::ZERO },
                    AccountEvent::Rejected {
                        order: "o-1".into(),
                        amount: Money::from_minor(500),
                        available: Money::ZERO,
                    },
                ],
                hold_events: vec![HoldEvent::Refused(StepRefused {
                    order_id: "o-1".into(),
                    reason: "credit: 500 needed, 0 available for cust-broke".into(),
                })],
            },
            Case {
                name: "a redelivered reservation is skipped: the hold has seen it",
                hold: vec![held.clone()],
                account: holding(),
                reaction: reserve_reaction("cust-1", 1200),
                touches: None,
                account_events: vec![],
                hold_events: vec![],
            },
            Case {
                name: "a reservation after a compensation holds nothing",
                hold: vec![HoldEvent::Released(moved(0, "", Some("order/cancelled")))],
                account: vec![],
                reaction: reserve_reaction("cust-1", 1200),
                touches: None,
                account_events: vec![],
                hold_events: vec![],
            },
            Case {
                name: "a compensation of a held order releases it on the account",
                hold: vec![held.clone()],
                account: holding(),
                reaction: compensate_reaction("inventory/rejected"),
                touches: Some("cust-1"),
                account_events: vec![AccountEvent::Released { order: "o-1".into(), amount: Money::from_minor(1200) }],
                hold_events: vec![HoldEvent::Released(moved(1200, "cust-1", Some("inventory/rejected")))],
            },
            Case {
                name: "a compensation of an unseen order answers zero and touches no account",
                hold: vec![],
                account: vec![],
                reaction: compensate_reaction("order/cancelled"),
                touches: None,
                account_events: vec![],
                hold_events: vec![HoldEvent::Released(moved(0, "", Some("order/cancelled")))],
            },
            Case {
                name: "a compensation of a refused order answers zero and touches no account",
                hold: vec![HoldEvent::Refused(StepRefused { order_id: "o-1".into(), reason: "credit".into() })],
                account: vec![],
                reaction: compensate_reaction("inventory/rejected"),
                touches: None,
                account_events: vec![],
                hold_events: vec![HoldEvent::Released(moved(0, "", Some("inventory/rejected")))],
            },
            Case {
                name: "a second compensation gets nothing",
                hold: vec![held.clone(), HoldEvent::Released(moved(1200, "cust-1", Some("inventory/rejected")))],
                account: vec![
                    AccountEvent::Opened { limit: DEFAULT_LIMIT },
                    AccountEvent::Reserved { order: "o-1".into(), amount: Money::from_minor(1200) },
                    AccountEvent::Released { order: "o-1".into(), amount: Money::from_minor(1200) },
                ],
                reaction: compensate_reaction("order/expired"),
                touches: None,
                account_events: vec![],
                hold_events: vec![],
            },
            Case {
                name: "a shipment settles a held order on the account",
                hold: vec![held.clone()],
                account: holding(),
                reaction: Reaction::Settle { order: "o-1".into() },
                touches: Some("cust-1"),
                account_events: vec![AccountEvent::Settled { order: "o-1".into(), amount: Money::from_minor(1200) }],
                hold_events: vec![HoldEvent::Settled(moved(1200, "cust-1", None))],
            },
            Case {
                name: "a shipment of an order never held settles nothing",
                hold: vec![],
                account: vec![],
                reaction: Reaction::Settle { order: "o-1".into() },
                touches: None,
                account_events: vec![],
                hold_events: vec![],
            },
        ]
    }

    #[test]
    fn each_reaction_names_its_account_and_decides_both_aggregates() {
        for case in cases() {
            let hold = OrderHold::fold(&case.hold);
            let account = Account::fold(&case.account);
            assert_eq!(account_touched(&case.reaction, &hold), case.touches, "{}", case.name);
            let given = case.touches.map(|_| &account);
            let decision =
                decide_reaction(case.reaction, &hold, given).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let expected = CreditDecision { account: case.account_events, hold: case.hold_events };
            assert_eq!(decision, expected, "{}", case.name);
        }
    }

    #[test]
    fn a_negative_amount_and_a_missing_account_are_permanent_failures() {
        let unseen = HoldState::default();
        assert_eq!(
            decide_reaction(reserve_reaction("cust-1", -1), &unseen, Some(&AccountState::default())),
            Err("credit for o-1: NegativeAmount".to_owned())
        );
        let missing = decide_reaction(reserve_reaction("cust-1", 1), &unseen, None).unwrap_err();
        assert!(missing.contains("cust-1"), "{missing}");
    }

    #[test]
    fn the_view_keeps_its_json_shape_amounts_in_minor_units() {
        let state = Account::fold(&holding());
        let view = credit_view("cust-1", &state);
        assert_eq!(
            serde_json::to_value(&view).unwrap(),
            serde_json::json!({
                "customer_id": "cust-1", "limit": 100_000, "reserved": 1200, "available": 98_800, "open_reservations": 1
            })
        );
        assert_eq!(serde_json::from_value::<CreditView>(serde_json::to_value(&view).unwrap()).unwrap(), view);
    }

    #[test]
    fn credit_settles_when_the_order_ships() {
        let shipped = udders_contracts::events::OrderShipped {
            order_id: "o-1".into(),
            shipment_id: "s-1".into(),
            postal_code: "018956".into(),
        };
        assert_eq!(
            react(Route::Settle, &Integration::OrderShipped(shipped)),
            Some(Reaction::Settle { order: "o-1".into() })
        );
    }
}
