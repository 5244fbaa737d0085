//! Validation's pure domain: the business rules per payload version and
//! country, as a decider over one order's validation.
//!
//! Rule set 1.1 applies to every order, in either payload version (a 1.2
//! order is read as 1.1): known flavours, quantities in 1..=100, a served
//! country, at least one line. Rule set 1.2 (bound to the subscription
//! `order/init/1.2/**/us/*`, run by the validation-us deployable) reads the
//! 1.2 payload and adds: a five-digit postal code, a known size and a SKU
//! that names the line's flavour and size, every amount in the country's
//! currency, and a total that is the sum of its lines.
//! Each order is validated once: a redelivered `order/init` decides nothing.
//!
//! Its subscriptions ([`SUBSCRIPTIONS`]: one [`Route`] per rule set, each
//! row with the deployable that runs it) are declared beside [`react`],
//! which takes the route a record came on first.
//!
//! What must not: I/O. The service crate feeds commands and publishes events.

use serde::{Deserialize, Serialize};
use udders_contracts::events::{OrderInvalidated, OrderPlaced, OrderPlacedV1_2, OrderValidated};
use udders_contracts::{Integration, Service, Subscribe, reference};
use udders_kernel::{Aggregate, Decider, ReadModel};

/// Validation's routes: one per rule set. Both deployables, `validation`
/// and `validation-us`, share them in one route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `rules-1.2-us`: payload 1.2 from the US, run by `validation-us`.
    Rules1_2Us,
    /// `rules-1.1`: every other order, run by `validation`.
    Rules1_1,
}

impl udders_contracts::Route for Route {
    const ALL: &'static [Route] = &[Route::Rules1_2Us, Route::Rules1_1];

    fn name(self) -> &'static str {
        match self {
            Route::Rules1_2Us => "rules-1.2-us",
            Route::Rules1_1 => "rules-1.1",
        }
    }
}

/// What a validation route may publish in answer.
const VALIDATED: &[&str] = &["order/valid", "order/invalid"];

/// Validation's subscriptions, each with the deployable that runs it, in the
/// order both deployables' consumers try them (the first match names the
/// route, and the deployable whose route it is handles the record). The
/// `udders` binary assembles them into the catalog.
pub const SUBSCRIPTIONS: &[(Service, Subscribe<Route>)] = &[
    // Version 1.2 from the US has its own deployable; validation,
    // which publishes for it, leaves those records to it (first
    // match across the two, see `Catalog::routes_of`).
    (Service::ValidationUs, Subscribe::new(Route::Rules1_2Us, "order/init/1.2/**/us/*", VALIDATED)),
    (Service::Validation, Subscribe::new(Route::Rules1_1, "order/init/>", VALIDATED)),
];

/// What validation does with an integration event heard on `route`: validate
/// a placed order with the route's rule set; `None` ignores it.
pub fn react(route: Route, event: &Integration) -> Option<Validate> {
    let order = match event {
        Integration::OrderPlaced(order) => Placed::V1_1(order.clone()),
        Integration::OrderPlacedV1_2(order) => Placed::V1_2(order.clone()),
        _ => return None,
    };
    Some(Validate { order, rule_set: RuleSet::of(route) })
}

/// A rule set, chosen by the subscription the order arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleSet {
    /// Every order.
    #[serde(rename = "1.1")]
    V1_1,
    /// Payload 1.2 from the US: 1.1 plus a five-digit postal code.
    #[serde(rename = "1.2")]
    V1_2,
}

impl RuleSet {
    /// `1.1` or `1.2`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSet::V1_1 => "1.1",
            RuleSet::V1_2 => "1.2",
        }
    }

    /// The rule set a route stands for.
    pub fn of(route: Route) -> RuleSet {
        match route {
            Route::Rules1_2Us => RuleSet::V1_2,
            Route::Rules1_1 => RuleSet::V1_1,
        }
    }

    /// Every rule the order breaks, in words; empty when it passes.
    pub fn check(self, placed: &Placed) -> Vec<String> {
        let order = placed.as_v1_1();
        let mut reasons = check_1_1(&order);
        if self == RuleSet::V1_2 {
            match placed {
                Placed::V1_2(order) => reasons.extend(check_1_2(order)),
                Placed::V1_1(_) => reasons.push("rule set 1.2 reads payload version 1.2 only".to_owned()),
            }
        }
        reasons
    }
}

/// The rules of 1.1, which every order keeps.
fn check_1_1(order: &OrderPlaced) -> Vec<String> {
    {
        let mut reasons = Vec::new();
        if order.items.is_empty() {
            reasons.push("the order has no items".to_owned());
        }
        for line in &order.items {
            if reference::unit_price(&line.flavor).is_none() {
                reasons.push(format!("unknown flavour {:?}", line.flavor));
            } else if line.unit_price < 1 {
                reasons.push(format!("{} has no unit price", line.flavor));
            }
            if !(1..=100).contains(&line.quantity) {
                reasons.push(format!("quantity {} of {} is outside 1..=100", line.quantity, line.flavor));
            }
        }
        if !reference::serves(&order.country) {
            reasons.push(format!("country {:?} is not served", order.country));
        }
        reasons
    }
}

/// What 1.2 adds, on the fields only payload 1.2 has.
fn check_1_2(order: &OrderPlacedV1_2) -> Vec<String> {
    let mut reasons = Vec::new();
    let ok = order.postal_code.as_deref().is_some_and(|p| p.len() == 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        reasons.push("rule set 1.2 needs a five-digit postal code".to_owned());
    }
    let currency = reference::currency(&order.country).unwrap_or_default();
    for line in &order.items {
        if !reference::SIZES.contains(&line.size.as_str()) {
            reasons.push(format!(
                "size {:?} of {} is not one of {}",
                line.size,
                line.flavor,
                reference::SIZES.join(", ")
            ));
        }
        if line.sku != reference::sku(&line.flavor, &line.size) {
            reasons.push(format!("SKU {:?} is not {} in {}", line.sku, line.flavor, line.size));
        }
        if line.unit_price.currency != currency {
            reasons.push(format!("{} is priced in {:?}, not {currency}", line.flavor, line.unit_price.currency));
        }
    }
    if order.total.currency != currency {
        reasons.push(format!("the total is in {:?}, not {currency}", order.total.currency));
    }
    let sum = order.items.iter().map(|l| l.unit_price.amount.saturating_mul(i64::from(l.quantity))).sum::<i64>();
    if order.total.amount != sum {
        reasons.push(format!("the total {} is not the sum of the lines, {sum}", order.total.amount));
    }
    reasons
}

/// A placed order in the payload version it was published in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Payload 1.1.
    V1_1(OrderPlaced),
    /// Payload 1.2.
    V1_2(OrderPlacedV1_2),
}

impl Placed {
    /// The order's id.
    pub fn order_id(&self) -> &str {
        match self {
            Placed::V1_1(order) => &order.order_id,
            Placed::V1_2(order) => &order.order_id,
        }
    }

    /// The order as rule set 1.1 (and `order/valid`) reads it.
    pub fn as_v1_1(&self) -> OrderPlaced {
        match self {
            Placed::V1_1(order) => order.clone(),
            Placed::V1_2(order) => order.to_v1_1(),
        }
    }
}

impl From<OrderPlaced> for Placed {
    fn from(order: OrderPlaced) -> Self {
        Placed::V1_1(order)
    }
}

/// The validation of one order (stream `validation-<order id>`).
#[derive(Debug)]
pub struct Validation;

/// What validation remembers of an order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Not seen yet.
    #[default]
    Unseen,
    /// Passed.
    Passed {
        /// By which rule set.
        rule_set: RuleSet,
    },
    /// Refused.
    Refused {
        /// By which rule set.
        rule_set: RuleSet,
        /// The rules broken.
        reasons: Vec<String>,
    },
}

/// Validate an order with a rule set.
#[derive(Debug, Clone)]
pub struct Validate {
    /// The order as placed.
    pub order: Placed,
    /// The rule set of the route it came on.
    pub rule_set: RuleSet,
}

/// What validation decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// The order passed; priced lines for the next steps.
    Passed(OrderValidated),
    /// The order broke rules.
    Refused(OrderInvalidated),
}

impl Decider for Validation {
    type State = State;
    type Command = Validate;
    type Event = Event;
    type Error = std::convert::Infallible;

    fn initial_state() -> State {
        State::Unseen
    }

    fn decide(state: &State, Validate { order, rule_set }: Validate) -> Result<Vec<Event>, Self::Error> {
        if *state != State::Unseen {
            return Ok(Vec::new());
        }
        let reasons = rule_set.check(&order);
        let order = order.as_v1_1();
        if !reasons.is_empty() {
            return Ok(vec![Event::Refused(OrderInvalidated {
                order_id: order.order_id,
                reasons,
                rule_set: rule_set.as_str().to_owned(),
            })]);
        }
        // The lines keep the prices the point of sale placed them at: a
        // price changed since (`price/changed`) applies to later orders.
        let items = order.items;
        let total = items.iter().map(|l| l.unit_price * i64::from(l.quantity)).sum();
        Ok(vec![Event::Passed(OrderValidated {
            order_id: order.order_id,
            customer_id: order.customer_id,
            country: order.country,
            items,
            total,
            card_token: order.card_token,
            postal_code: order.postal_code,
            rule_set: rule_set.as_str().to_owned(),
        })])
    }

    fn evolve(_state: State, event: &Event) -> State {
        match event {
            Event::Passed(e) => State::Passed { rule_set: rule_set_of(&e.rule_set) },
            Event::Refused(e) => State::Refused { rule_set: rule_set_of(&e.rule_set), reasons: e.reasons.clone() },
        }
    }
}

fn rule_set_of(text: &str) -> RuleSet {
    if text == "1.2" { RuleSet::V1_2 } else { RuleSet::V1_1 }
}

/// How an order's validation came out, as its read model shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// It passed its rule set.
    Passed,
    /// It broke rules.
    Refused,
}

impl Outcome {
    /// `PASSED` or `REFUSED`: its JSON value, and the view's tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "PASSED",
            Outcome::Refused => "REFUSED",
        }
    }
}

/// The read model of one order's validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationView {
    /// The order.
    pub order_id: String,
    /// `PASSED` or `REFUSED`.
    pub outcome: Outcome,
    /// `1.1` or `1.2`.
    pub rule_set: RuleSet,
    /// The rules broken.
    pub reasons: Vec<String>,
}

impl ReadModel for Validation {
    const VIEW: &'static str = "validations";
    type Doc = ValidationView;

    fn project(key: &str, _: Option<ValidationView>, state: &State, _: &Event) -> Option<ValidationView> {
        let (outcome, rule_set, reasons) = match state {
            State::Unseen => return None,
            State::Passed { rule_set } => (Outcome::Passed, *rule_set, Vec::new()),
            State::Refused { rule_set, reasons } => (Outcome::Refused, *rule_set, reasons.clone()),
        };
        Some(ValidationView { order_id: key.to_owned(), outcome, rule_set, reasons })
    }

    fn tags(doc: &ValidationView) -> [Option<String>; 3] {
        [Some(doc.outcome.as_str().to_owned()), Some(doc.rule_set.as_str().to_owned()), None]
    }
}

impl Aggregate for Validation {
    const CATEGORY: &'static str = "validation";
    const SNAPSHOT_EVERY: Option<std::num::NonZeroU64> = None;
}

#[cfg(test)]
mod tests {
    use udders_contracts::events::OrderLine;
    use udders_kernel::testing::given;

    use super::*;

    fn order(flavor: &str, quantity: u32, country: &str, postal_code: Option<&str>) -> OrderPlaced {
        OrderPlaced {
            order_id: "o-1".into(),
            customer_id: "cust-1".into(),
            channel: "web".into(),
            country: country.into(),
            items: vec![OrderLine {
                flavor: flavor.into(),
                quantity,
                unit_price: reference::unit_price(flavor).unwrap_or(0),
            }],
            total: 0,
            card_token: "tok_visa".into(),
            postal_code: postal_code.map(Into::into),
        }
    }

    fn validate(order: OrderPlaced, rule_set: RuleSet) -> Validate {
        Validate { order: order.into(), rule_set }
    }

    fn order_1_2(size: &str, currency: &str, postal_code: Option<&str>) -> Placed {
        let mut placed = order("mango", 2, "us", postal_code);
        placed.total = 1200;
        Placed::V1_2(OrderPlacedV1_2::from_v1_1(&placed, &[size.to_owned()], currency))
    }

    #[test]
    fn a_valid_order_passes_at_the_prices_it_was_placed_with() {
        let state = given::<Validation>([])
            .when(validate(order("mango", 2, "sg", Some("018956")), RuleSet::V1_1))
            .then([Event::Passed(OrderValidated {
                order_id: "o-1".into(),
                customer_id: "cust-1".into(),
                country: "sg".into(),
                items: vec![OrderLine { flavor: "mango".into(), quantity: 2, unit_price: 600 }],
                total: 1200,
                card_token: "tok_visa".into(),
                postal_code: Some("018956".into()),
                rule_set: "1.1".into(),
            })]);
        assert_eq!(state, State::Passed { rule_set: RuleSet::V1_1 });
    }

    #[test]
    fn a_price_changed_after_placement_does_not_reach_the_order() {
        let mut placed = order("mango", 2, "sg", None);
        placed.items[0].unit_price = 550; // the price in force when it was placed
        let events = Validation::decide(&State::Unseen, validate(placed, RuleSet::V1_1)).unwrap();
        let Event::Passed(passed) = &events[0] else { panic!("{events:?}") };
        assert_eq!((passed.items[0].unit_price, passed.total), (550, 1100));
        let mut unpriced = order("mango", 2, "sg", None);
        unpriced.items[0].unit_price = 0;
        assert_eq!(RuleSet::V1_1.check(&unpriced.into()), ["mango has no unit price"]);
    }

    #[test]
    fn unknown_flavour_bad_quantity_and_unserved_country_are_each_named() {
        let mut o = order("bubblegum", 0, "fr", None);
        o.items.push(OrderLine { flavor: "mango".into(), quantity: 101, unit_price: 600 });
        let reasons = RuleSet::V1_1.check(&o.into());
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("bubblegum") && reasons[3].contains("\"fr\""), "{reasons:?}");
    }

    #[test]
    fn rule_set_1_2_needs_a_five_digit_postal_code_and_1_1_does_not() {
        assert!(RuleSet::V1_1.check(&order("mango", 1, "us", None).into()).is_empty());
        assert!(RuleSet::V1_1.check(&order_1_2("pint", "USD", None)).is_empty(), "1.1 reads a 1.2 order as 1.1");
        assert_eq!(RuleSet::V1_2.check(&order_1_2("pint", "USD", Some("1234"))).len(), 1);
        assert!(RuleSet::V1_2.check(&order_1_2("pint", "USD", Some("12345"))).is_empty());
        assert_eq!(RuleSet::of(Route::Rules1_2Us), RuleSet::V1_2);
        assert_eq!(RuleSet::of(Route::Rules1_1), RuleSet::V1_1);
    }

    #[test]
    fn each_route_validates_a_placed_order_with_its_rule_set_and_ignores_the_rest() {
        let Placed::V1_2(v1_2) = order_1_2("pint", "USD", Some("12345")) else { unreachable!() };
        let placed = Integration::OrderPlacedV1_2(v1_2);
        let Some(validate) = react(Route::Rules1_2Us, &placed) else { panic!("{placed:?}") };
        assert_eq!((validate.rule_set, matches!(validate.order, Placed::V1_2(_))), (RuleSet::V1_2, true));
        let placed = Integration::OrderPlaced(order("mango", 2, "sg", None));
        assert_eq!(react(Route::Rules1_1, &placed).map(|v| v.rule_set), Some(RuleSet::V1_1));
        let invalid = OrderInvalidated { order_id: "o-1".into(), reasons: Vec::new(), rule_set: "1.1".into() };
        assert!(react(Route::Rules1_1, &Integration::OrderInvalidated(invalid)).is_none());
    }

    #[test]
    fn every_route_has_a_subscription_and_a_name_of_its_own_and_us_comes_first() {
        let rows: Vec<Subscribe<Route>> = SUBSCRIPTIONS.iter().map(|(_, row)| *row).collect();
        assert_eq!(udders_contracts::route_table_problems(&rows), Vec::<String>::new());
        let deployables: Vec<(Service, Route)> = SUBSCRIPTIONS.iter().map(|(s, row)| (*s, row.route)).collect();
        assert_eq!(
            deployables,
            [(Service::ValidationUs, Route::Rules1_2Us), (Service::Validation, Route::Rules1_1)],
            "one route table, in priority order"
        );
    }

    #[test]
    fn rule_set_1_2_checks_what_only_payload_1_2_carries() {
        assert_eq!(
            RuleSet::V1_2.check(&order_1_2("bucket", "SGD", Some("12345"))),
            [
                "size \"bucket\" of mango is not one of cup, pint, tub",
                "mango is priced in \"SGD\", not USD",
                "the total is in \"SGD\", not USD",
            ]
        );
        let Placed::V1_2(mut wrong) = order_1_2("cup", "USD", Some("12345")) else { unreachable!() };
        wrong.items[0].sku = "mango-tub".into();
        wrong.total.amount = 1;
        assert_eq!(
            RuleSet::V1_2.check(&Placed::V1_2(wrong)),
            ["SKU \"mango-tub\" is not mango in cup", "the total 1 is not the sum of the lines, 1200"]
        );
        assert_eq!(
            RuleSet::V1_2.check(&order("mango", 1, "us", Some("12345")).into()),
            ["rule set 1.2 reads payload version 1.2 only"]
        );
        let events = Validation::decide(
            &State::Unseen,
            Validate { order: order_1_2("pint", "USD", Some("12345")), rule_set: RuleSet::V1_2 },
        )
        .unwrap();
        let Event::Passed(passed) = &events[0] else { panic!("{events:?}") };
        assert_eq!((passed.total, passed.rule_set.as_str()), (1200, "1.2"), "order/valid stays 1.0, in minor units");
    }

    #[test]
    fn an_order_is_validated_once_even_when_delivered_again() {
        let o = order("vanilla", 3, "sg", None);
        let first = Validation::decide(&State::Unseen, validate(o.clone(), RuleSet::V1_1)).unwrap();
        let Event::Passed(passed) = &first[0] else { panic!("{first:?}") };
        assert_eq!((passed.total, passed.items[0].unit_price), (1500, 500));
        given::<Validation>(first).when(validate(o, RuleSet::V1_1)).then([]);
    }

    #[test]
    fn the_view_keeps_its_json_shape_and_its_tags() {
        let events =
            Validation::decide(&State::Unseen, validate(order("durian", 1, "xx", None), RuleSet::V1_1)).unwrap();
        let state = Validation::fold(&events);
        let view = Validation::project("o-1", None, &state, &events[0]).expect("a view");
        let json = serde_json::json!({
            "order_id": "o-1", "outcome": "REFUSED", "rule_set": "1.1", "reasons": ["country \"xx\" is not served"]
        });
        assert_eq!(serde_json::to_value(&view).unwrap(), json);
        assert_eq!(serde_json::from_value::<ValidationView>(json).unwrap(), view);
        assert_eq!(Validation::tags(&view), [Some("REFUSED".to_owned()), Some("1.1".to_owned()), None]);
        assert_eq!(serde_json::to_value(Outcome::Passed).unwrap(), Outcome::Passed.as_str());
        assert_eq!(serde_json::to_value(RuleSet::V1_2).unwrap(), RuleSet::V1_2.as_str());
    }

    #[test]
    fn a_broken_order_is_refused_with_its_reasons() {
        given::<Validation>([]).when(validate(order("durian", 1, "xx", None), RuleSet::V1_1)).then([Event::Refused(
            OrderInvalidated {
                order_id: "o-1".into(),
                reasons: vec!["country \"xx\" is not served".into()],
                rule_set: "1.1".into(),
            },
        )]);
    }
}
