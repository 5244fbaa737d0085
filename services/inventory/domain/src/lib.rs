//! Inventory's pure domain: stock per flavour and country, and the stock
//! reservation of each order.
//!
//! [`Stock`] (stream `stock-<flavour>-<country>`) counts what is on hand,
//! reserved and shipped; it refuses to reserve more than is available.
//! [`Reservation`] (stream `reservation-<order>`) decides for a whole order
//! at once, all lines or none, from the availability the caller looked up,
//! and remembers the outcome so reactions are idempotent. Stock leaves the
//! warehouse when `order/shipped` arrives; a compensation releases what is
//! still held (restock), and one that arrives first closes the order. If the
//! carrier took a parcel whose hold was already released (a cancel or the
//! deadline raced the shipment), the goods still leave the books: what left
//! the warehouse always equals what shipped.
//!
//! Its subscriptions ([`SUBSCRIPTIONS`], one [`Route`] per purpose:
//! `reserve`, `release`, `ship`) are declared beside [`react`], which takes
//! the route a record came on first.
//!
//! What must not: I/O, clocks.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use udders_contracts::events::{OrderLine, StepRefused, StockMoved};
use udders_contracts::{Integration, Subscribe};
use udders_kernel::{Aggregate, Decider, Quantity, ReadModel};

/// Seeded stock per flavour and country.
pub const INITIAL_STOCK: Quantity = Quantity::new(1000);

/// The seeded stock of a flavour (durian is never in stock).
pub fn initial_stock(flavor: &str) -> Quantity {
    if flavor == "durian" { Quantity::new(0) } else { INITIAL_STOCK }
}

/// A quantity as a signed count, the unit of a stock's counters.
pub fn count(quantity: Quantity) -> i64 {
    i64::from(quantity.get())
}

/// The id of a stock stream: `<flavour>-<country>`.
pub fn stock_id(flavor: &str, country: &str) -> String {
    format!("{flavor}-{country}")
}

/// Quantities per flavour, lines of one flavour added up (saturating; a
/// valid order has at most 100 lines of at most 100 each).
pub fn per_flavor(lines: &[OrderLine]) -> BTreeMap<String, Quantity> {
    let mut out: BTreeMap<String, Quantity> = BTreeMap::new();
    for line in lines {
        let sum = out.entry(line.flavor.clone()).or_default();
        *sum = Quantity::new(sum.get().saturating_add(line.quantity));
    }
    out
}

/// One flavour in one country.
#[derive(Debug)]
pub struct Stock;

/// The counters of one stock, signed counts of items (a quantity is
/// [`count`]ed into them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockState {
    /// In the warehouse (reserved or not).
    pub on_hand: i64,
    /// Held for open orders.
    pub reserved: i64,
    /// Left the warehouse with a shipment.
    pub shipped: i64,
    /// Every restock added up, the seed included: `on_hand + shipped`.
    #[serde(default)]
    pub stocked: i64,
}

impl StockState {
    /// What can still be reserved.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// What a stock is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockCommand {
    /// Add to what is on hand (seeding).
    Restock(Quantity),
    /// Hold for an order.
    Reserve(String, Quantity),
    /// Let go of an order's hold.
    Release(String, Quantity),
    /// An order's hold left with its shipment.
    Ship(String, Quantity),
    /// An order's goods left although its hold had been released (the
    /// carrier took it before the call-off reached fulfillment).
    ShipReleased(String, Quantity),
}

/// What happened to a stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum StockEvent {
    /// Added to on hand.
    Restocked {
        /// How many.
        quantity: Quantity,
    },
    /// Held for an order.
    Reserved {
        /// The order.
        order: String,
        /// How many.
        quantity: Quantity,
    },
    /// An order's hold was let go.
    Released {
        /// The order.
        order: String,
        /// How many.
        quantity: Quantity,
    },
    /// Left the warehouse.
    Shipped {
        /// The order.
        order: String,
        /// How many.
        quantity: Quantity,
    },
    /// Left the warehouse after its hold was released.
    ShippedReleased {
        /// The order.
        order: String,
        /// How many.
        quantity: Quantity,
    },
}

/// A stock command that breaks the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockError {
    /// Not enough available (a concurrent reservation came first).
    Short {
        /// Asked for.
        wanted: i64,
        /// Available.
        available: i64,
    },
    /// More released or shipped than is reserved (or on hand).
    Inconsistent(&'static str),
}

impl Decider for Stock {
    type State = StockState;
    type Command = StockCommand;
    type Event = StockEvent;
    type Error = StockError;

    fn initial_state() -> StockState {
        StockState::default()
    }

    fn decide(state: &StockState, command: StockCommand) -> Result<Vec<StockEvent>, StockError> {
        Ok(vec![match command {
            StockCommand::Restock(quantity) => StockEvent::Restocked { quantity },
            StockCommand::Reserve(order, quantity) => {
                if count(quantity) > state.available() {
                    return Err(StockError::Short { wanted: count(quantity), available: state.available() });
                }
                StockEvent::Reserved { order, quantity }
            }
            StockCommand::Release(order, quantity) => {
                if count(quantity) > state.reserved {
                    return Err(StockError::Inconsistent("release of more than is reserved"));
                }
                StockEvent::Released { order, quantity }
            }
            StockCommand::Ship(order, quantity) => {
                if count(quantity) > state.reserved {
                    return Err(StockError::Inconsistent("shipment of more than is reserved"));
                }
                StockEvent::Shipped { order, quantity }
            }
            StockCommand::ShipReleased(order, quantity) => {
                if count(quantity) > state.on_hand {
                    return Err(StockError::Inconsistent("shipment of more than is on hand"));
                }
                StockEvent::ShippedReleased { order, quantity }
            }
        }])
    }

    fn evolve(mut state: StockState, event: &StockEvent) -> StockState {
        match event {
            StockEvent::Restocked { quantity } => {
                state.on_hand += count(*quantity);
                state.stocked += count(*quantity);
            }
            StockEvent::Reserved { quantity, .. } => state.reserved += count(*quantity),
            StockEvent::Released { quantity, .. } => state.reserved -= count(*quantity),
            StockEvent::Shipped { quantity, .. } => {
                state.reserved -= count(*quantity);
                state.on_hand -= count(*quantity);
                state.shipped += count(*quantity);
            }
            StockEvent::ShippedReleased { quantity, .. } => {
                state.on_hand -= count(*quantity);
                state.shipped += count(*quantity);
            }
        }
        state
    }
}

impl Aggregate for Stock {
    const CATEGORY: &'static str = "stock";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = NonZeroU64::new(100);
    /// 2: the state counts `stocked`. A snapshot of 1 would fold it from 0,
    /// so it is passed over and the stock folded from its events.
    const STATE_SCHEMA: u32 = 2;
}

/// The stock reservation of one order.
#[derive(Debug)]
pub struct Reservation;

/// Where an order's reservation stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationStatus {
    /// Nothing decided yet.
    #[default]
    Unseen,
    /// Held in `country`.
    Held {
        /// The warehouse country.
        country: String,
        /// The lines held.
        items: Vec<OrderLine>,
    },
    /// Not enough stock.
    Refused,
    /// Let go (restocked); the lines are kept in case the carrier took them anyway.
    Released {
        /// The warehouse country.
        country: String,
        /// The lines that were held.
        items: Vec<OrderLine>,
    },
    /// Left with the shipment.
    Shipped,
    /// A compensation came first: nothing will be held.
    Closed,
}

/// What inventory remembers of one order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationState {
    /// Where it stands.
    pub status: ReservationStatus,
    /// A compensation trigger was answered.
    pub answered: bool,
}

/// What an order's reservation is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReservationCommand {
    /// Reserve every line, or none.
    Reserve {
        /// The warehouse country.
        country: String,
        /// The lines.
        items: Vec<OrderLine>,
        /// Available per flavour in that country (looked up by the caller).
        available: BTreeMap<String, i64>,
    },
    /// The order shipped.
    Ship,
    /// A compensation trigger arrived.
    Compensate {
        /// Its name.
        cause: String,
    },
}

/// What happened to an order's reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ReservationEvent {
    /// `inventory/reserved`
    Held(StockMoved),
    /// `inventory/rejected`
    Refused(StepRefused),
    /// `inventory/released`: what was let go (nothing when nothing was held).
    Released(StockMoved),
    /// The held lines left the warehouse (not published: `order/shipped` says it).
    Shipped(StockMoved),
    /// The lines left although they had been released: the carrier took the
    /// parcel before the call-off reached fulfillment (not published).
    ShippedAfterRelease(StockMoved),
}

impl Decider for Reservation {
    type State = ReservationState;
    type Command = (String, ReservationCommand);
    type Event = ReservationEvent;
    type Error = std::convert::Infallible;

    fn initial_state() -> ReservationState {
        ReservationState::default()
    }

    fn decide(
        state: &ReservationState,
        (order_id, command): (String, ReservationCommand),
    ) -> Result<Vec<ReservationEvent>, Self::Error> {
        Ok(match command {
            ReservationCommand::Reserve { country, items, available } => {
                if state.status != ReservationStatus::Unseen {
                    return Ok(Vec::new());
                }
                let short: Vec<String> = per_flavor(&items)
                    .into_iter()
                    .filter_map(|(flavor, wanted)| {
                        let have = available.get(&flavor).copied().unwrap_or(0);
                        (count(wanted) > have)
                            .then(|| format!("{flavor} in {country}: {} wanted, {have} available", wanted.get()))
                    })
                    .collect();
                if short.is_empty() {
                    vec![ReservationEvent::Held(StockMoved { order_id, country, items, cause: None })]
                } else {
                    vec![ReservationEvent::Refused(StepRefused {
                        order_id,
                        reason: format!("out of stock: {}", short.join("; ")),
                    })]
                }
            }
            ReservationCommand::Ship => match &state.status {
                ReservationStatus::Held { country, items } => vec![ReservationEvent::Shipped(StockMoved {
                    order_id,
                    country: country.clone(),
                    items: items.clone(),
                    cause: None,
                })],
                ReservationStatus::Released { country, items } => {
                    vec![ReservationEvent::ShippedAfterRelease(StockMoved {
                        order_id,
                        country: country.clone(),
                        items: items.clone(),
                        cause: None,
                    })]
                }
                _ => Vec::new(),
            },
            ReservationCommand::Compensate { .. } if state.answered => Vec::new(),
            ReservationCommand::Compensate { cause } => {
                let (country, items) = match &state.status {
                    ReservationStatus::Held { country, items } => (country.clone(), items.clone()),
                    _ => (String::new(), Vec::new()),
                };
                vec![ReservationEvent::Released(StockMoved { order_id, country, items, cause: Some(cause) })]
            }
        })
    }

    fn evolve(mut state: ReservationState, event: &ReservationEvent) -> ReservationState {
        match event {
            ReservationEvent::Held(e) => {
                state.status = ReservationStatus::Held { country: e.country.clone(), items: e.items.clone() }
            }
            ReservationEvent::Refused(_) => state.status = ReservationStatus::Refused,
            ReservationEvent::Shipped(_) | ReservationEvent::ShippedAfterRelease(_) => {
                state.status = ReservationStatus::Shipped
            }
            ReservationEvent::Released(_) => {
                state.answered = true;
                state.status = match state.status {
                    ReservationStatus::Held { country, items } => ReservationStatus::Released { country, items },
                    ReservationStatus::Unseen => ReservationStatus::Closed,
                    other => other,
                };
            }
        }
        state
    }
}

impl Aggregate for Reservation {
    const CATEGORY: &'static str = "reservation";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = None;
}

impl ReservationEvent {
    /// The integration event it is published as, if any.
    pub fn integration(&self) -> Option<Integration> {
        match self {
            ReservationEvent::Held(e) => Some(Integration::StockReserved(e.clone())),
            ReservationEvent::Refused(e) => Some(Integration::StockRejected(e.clone())),
            ReservationEvent::Released(e) => Some(Integration::StockReleased(e.clone())),
            ReservationEvent::Shipped(_) | ReservationEvent::ShippedAfterRelease(_) => None,
        }
    }

    /// The stock moves it implies, per (flavour, country).
    pub fn stock_commands(&self) -> Vec<(String, StockCommand)> {
        let (e, make): (&StockMoved, fn(String, Quantity) -> StockCommand) = match self {
            ReservationEvent::Held(e) => (e, StockCommand::Reserve),
            ReservationEvent::Released(e) => (e, StockCommand::Release),
            ReservationEvent::Shipped(e) => (e, StockCommand::Ship),
            ReservationEvent::ShippedAfterRelease(e) => (e, StockCommand::ShipReleased),
            ReservationEvent::Refused(_) => return Vec::new(),
        };
        per_flavor(&e.items)
            .into_iter()
            .map(|(flavor, quantity)| (stock_id(&flavor, &e.country), make(e.order_id.clone(), quantity)))
            .collect()
    }
}

/// What inventory does with an incoming event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Reserve an order's lines in a country.
    Reserve {
        /// The order.
        order: String,
        /// The warehouse country.
        country: String,
        /// The lines.
        items: Vec<OrderLine>,
    },
    /// The order shipped.
    Ship {
        /// The order.
        order: String,
    },
    /// Answer a compensation trigger.
    Compensate {
        /// The order.
        order: String,
        /// Its name.
        cause: String,
    },
}

/// Inventory's routes: what each of its subscriptions is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `reserve`: a validated order's lines are held in its country.
    Reserve,
    /// `release`: a compensation trigger lets the order's hold go.
    Release,
    /// `ship`: a shipped order's goods leave the warehouse.
    Ship,
}

impl udders_contracts::Route for Route {
    const ALL: &'static [Route] = &[Route::Reserve, Route::Release, Route::Ship];

    fn name(self) -> &'static str {
        match self {
            Route::Reserve => "reserve",
            Route::Release => "release",
            Route::Ship => "ship",
        }
    }
}

/// What `release` may publish in answer.
const RELEASED: &[&str] = &["inventory/released"];

/// Inventory's subscriptions, in the order its consumer tries them (the
/// first match names the route), each with what its route may publish in
/// answer (`ship` only records). The `udders` binary assembles them into
/// the catalog.
pub const SUBSCRIPTIONS: &[Subscribe<Route>] = &[
    Subscribe::new(Route::Reserve, "order/valid/>", &["inventory/reserved", "inventory/rejected"]),
    Subscribe::new(Route::Release, "credit/rejected/>", RELEASED),
    Subscribe::new(Route::Ship, "order/shipped/>", &[]),
    // The compensation triggers every holder answers (inventory/rejected,
    // its own, it does not hear).
    Subscribe::new(Route::Release, "order/cancelled/>", RELEASED),
    Subscribe::new(Route::Release, "order/expired/>", RELEASED),
    Subscribe::new(Route::Release, "payment/declined/>", RELEASED),
    Subscribe::new(Route::Release, "fulfillment/failed/>", RELEASED),
];

/// Maps an integration event heard on `route` to what inventory does;
/// `None` ignores it.
pub fn react(route: Route, event: &Integration) -> Option<Reaction> {
    match (route, event) {
        (Route::Reserve, Integration::OrderValidated(e)) => {
            Some(Reaction::Reserve { order: e.order_id.clone(), country: e.country.clone(), items: e.items.clone() })
        }
        (Route::Ship, Integration::OrderShipped(e)) => Some(Reaction::Ship { order: e.order_id.clone() }),
        (Route::Release, e) if e.is_compensation_trigger() && !matches!(e, Integration::StockRejected(_)) => {
            let (domain, action) = e.name();
            Some(Reaction::Compensate { order: e.order_id().to_owned(), cause: format!("{domain}/{action}") })
        }
        _ => None,
    }
}

/// The read model of one stock: a row of `GET /inventory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockView {
    /// The flavour.
    pub flavor: String,
    /// The country.
    pub country: String,
    /// In the warehouse.
    pub on_hand: i64,
    /// Held for open orders.
    pub reserved: i64,
    /// `on_hand - reserved`.
    pub available: i64,
    /// Left with shipments.
    pub shipped: i64,
    /// Every restock added up, the seed included (`on_hand + shipped`).
    pub stocked: i64,
}

/// The stock's read model, from its id (`flavour-country`) and state.
pub fn stock_view(id: &str, state: &StockState) -> StockView {
    let (flavor, country) = id.rsplit_once('-').unwrap_or((id, ""));
    StockView {
        flavor: flavor.to_owned(),
        country: country.to_owned(),
        on_hand: state.on_hand,
        reserved: state.reserved,
        available: state.available(),
        shipped: state.shipped,
        stocked: state.stocked,
    }
}

impl ReadModel for Stock {
    const VIEW: &'static str = "inventory";
    type Doc = StockView;

    fn project(key: &str, _: Option<StockView>, state: &StockState, _: &StockEvent) -> Option<StockView> {
        Some(stock_view(key, state))
    }

    fn tags(doc: &StockView) -> [Option<String>; 3] {
        [Some(doc.flavor.clone()), Some(doc.country.clone()), None]
    }
}

#[cfg(test)]
mod tests {
    use udders_kernel::testing::given;

    use super::*;

    fn line(flavor: &str, quantity: u32) -> OrderLine {
        OrderLine { flavor: flavor.into(), quantity, unit_price: 600 }
    }

    fn reserve(items: Vec<OrderLine>, available: &[(&str, i64)]) -> (String, ReservationCommand) {
        let available = available.iter().map(|(f, n)| ((*f).to_owned(), *n)).collect();
        ("o-1".into(), ReservationCommand::Reserve { country: "sg".into(), items, available })
    }

    fn held(items: Vec<OrderLine>) -> ReservationEvent {
        ReservationEvent::Held(StockMoved { order_id: "o-1".into(), country: "sg".into(), items, cause: None })
    }

    #[test]
    fn an_order_is_reserved_whole_when_every_flavour_is_available() {
        let items = vec![line("mango", 2), line("vanilla", 1), line("mango", 3)];
        let state =
            given::<Reservation>([]).when(reserve(items.clone(), &[("mango", 5), ("vanilla", 1)])).then([held(items)]);
        assert!(matches!(state.status, ReservationStatus::Held { .. }));
    }

    #[test]
    fn one_short_flavour_refuses_the_whole_order() {
        let events = Reservation::decide(
            &ReservationState::default(),
            reserve(vec![line("mango", 2), line("durian", 1)], &[("mango", 5), ("durian", 0)]),
        )
        .unwrap();
        let [ReservationEvent::Refused(refused)] = events.as_slice() else { panic!("{events:?}") };
        assert!(refused.reason.contains("durian in sg: 1 wanted, 0 available"), "{}", refused.reason);
        assert!(events[0].stock_commands().is_empty());
    }

    #[test]
    fn payment_declined_releases_reserved_stock_once() {
        let items = vec![line("mango", 2)];
        let compensate = || ("o-1".to_owned(), ReservationCommand::Compensate { cause: "payment/declined".into() });
        let released = ReservationEvent::Released(StockMoved {
            order_id: "o-1".into(),
            country: "sg".into(),
            items: items.clone(),
            cause: Some("payment/declined".into()),
        });
        given::<Reservation>([held(items.clone())]).when(compensate()).then([released.clone()]);
        assert_eq!(
            released.stock_commands(),
            vec![("mango-sg".into(), StockCommand::Release("o-1".into(), Quantity::new(2)))]
        );
        given::<Reservation>([held(items), released]).when(compensate()).then([]);
    }

    #[test]
    fn a_compensation_before_the_reservation_closes_the_order_and_holds_nothing() {
        let state = given::<Reservation>([])
            .when(("o-1".into(), ReservationCommand::Compensate { cause: "order/expired".into() }))
            .then([ReservationEvent::Released(StockMoved {
                order_id: "o-1".into(),
                country: String::new(),
                items: Vec::new(),
                cause: Some("order/expired".into()),
            })]);
        assert_eq!(state.status, ReservationStatus::Closed);
        given::<Reservation>([ReservationEvent::Released(StockMoved {
            order_id: "o-1".into(),
            country: String::new(),
            items: Vec::new(),
            cause: Some("order/expired".into()),
        })])
        .when(reserve(vec![line("mango", 1)], &[("mango", 9)]))
        .then([]);
    }

    #[test]
    fn shipped_stock_leaves_the_warehouse_and_is_counted() {
        let state = given::<Stock>([
            StockEvent::Restocked { quantity: Quantity::new(10) },
            StockEvent::Reserved { order: "o-1".into(), quantity: Quantity::new(4) },
        ])
        .when(StockCommand::Ship("o-1".into(), Quantity::new(4)))
        .then([StockEvent::Shipped { order: "o-1".into(), quantity: Quantity::new(4) }]);
        assert_eq!(state, StockState { on_hand: 6, reserved: 0, shipped: 4, stocked: 10 });
    }

    #[test]
    fn goods_shipped_after_their_release_still_leave_the_warehouse() {
        let items = vec![line("mango", 2)];
        let released = ReservationEvent::Released(StockMoved {
            order_id: "o-1".into(),
            country: "sg".into(),
            items: items.clone(),
            cause: Some("order/expired".into()),
        });
        let events =
            Reservation::decide(&Reservation::fold(&[held(items), released]), ("o-1".into(), ReservationCommand::Ship))
                .unwrap();
        assert_eq!(
            events[0].stock_commands(),
            vec![("mango-sg".into(), StockCommand::ShipReleased("o-1".into(), Quantity::new(2)))]
        );
        let state = given::<Stock>([StockEvent::Restocked { quantity: Quantity::new(10) }])
            .when(StockCommand::ShipReleased("o-1".into(), Quantity::new(2)))
            .then([StockEvent::ShippedReleased { order: "o-1".into(), quantity: Quantity::new(2) }]);
        assert_eq!(state, StockState { on_hand: 8, reserved: 0, shipped: 2, stocked: 10 });
    }

    #[test]
    fn inventory_reacts_on_each_route_to_what_it_is_for() {
        let refused = StepRefused { order_id: "o-1".into(), reason: "x".into() };
        assert_eq!(
            react(Route::Release, &Integration::CreditRejected(refused.clone())),
            Some(Reaction::Compensate { order: "o-1".into(), cause: "credit/rejected".into() })
        );
        assert!(react(Route::Release, &Integration::StockRejected(refused)).is_none(), "its own rejection");
        let shipped = udders_contracts::events::OrderShipped {
            order_id: "o-1".into(),
            shipment_id: "s-1".into(),
            postal_code: "018956".into(),
        };
        assert_eq!(
            react(Route::Ship, &Integration::OrderShipped(shipped)),
            Some(Reaction::Ship { order: "o-1".into() })
        );
    }

    #[test]
    fn every_route_has_a_subscription_and_a_name_of_its_own() {
        assert_eq!(udders_contracts::route_table_problems(SUBSCRIPTIONS), Vec::<String>::new());
    }

    #[test]
    fn a_stock_never_reserves_more_than_is_available() {
        given::<Stock>([StockEvent::Restocked { quantity: Quantity::new(3) }])
            .when(StockCommand::Reserve("o-1".into(), Quantity::new(4)))
            .then_error(StockError::Short { wanted: 4, available: 3 });
        assert_eq!(
            stock_view("rumraisin-sg", &StockState { on_hand: 5, reserved: 2, shipped: 0, stocked: 5 }).available,
            3
        );
        assert_eq!(initial_stock("durian"), Quantity::new(0));
    }

    #[test]
    fn stock_events_keep_their_json_shape_a_bare_count() {
        let stored = serde_json::json!({"type": "Reserved", "data": {"order": "o-1", "quantity": 4}});
        let reserved = StockEvent::Reserved { order: "o-1".into(), quantity: Quantity::new(4) };
        assert_eq!(serde_json::to_value(&reserved).unwrap(), stored);
        assert_eq!(serde_json::from_value::<StockEvent>(stored).unwrap(), reserved);
        let lines = [line("mango", 2), line("vanilla", 1), line("mango", 3)];
        let wanted: Vec<(String, u32)> = per_flavor(&lines).into_iter().map(|(f, q)| (f, q.get())).collect();
        assert_eq!(wanted, [("mango".to_owned(), 5), ("vanilla".to_owned(), 1)]);
    }
}
