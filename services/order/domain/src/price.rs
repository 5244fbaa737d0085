//! The point of sale's prices: one [`Price`] per flavour and country (stream
//! `price-<flavour>-<country>`), changed by an operator and published as
//! `price/changed`. An order is priced when it is placed and carries its
//! prices in its payload, so a change never reaches an order in flight.
//! Until the first change a flavour sells at its list price
//! (`udders_contracts::reference::FLAVORS`).

use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use udders_kernel::{Aggregate, Decider, Money, ReadModel};

/// The lowest unit price accepted.
pub const MIN_UNIT_PRICE: Money = Money::from_minor(1);
/// The highest unit price accepted.
pub const MAX_UNIT_PRICE: Money = Money::from_minor(1_000_000);

/// One flavour's price in one country.
#[derive(Debug)]
pub struct Price;

/// What a price remembers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceState {
    /// `None` while the list price applies.
    pub unit_price: Option<Money>,
}

/// Set the price to `unit_price`; `list_price` is what applies until the
/// first change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetPrice {
    /// The new unit price.
    pub unit_price: Money,
    /// The flavour's list price.
    pub list_price: Money,
}

/// What happened to a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PriceEvent {
    /// `price/changed`.
    Changed {
        /// The new unit price.
        unit_price: Money,
        /// The one it replaces.
        previous: Money,
    },
}

/// A price that cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceOutOfRange(pub Money);

impl std::fmt::Display for PriceOutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unit_price must be {} to {} (minor units), not {}",
            MIN_UNIT_PRICE.minor(),
            MAX_UNIT_PRICE.minor(),
            self.0.minor()
        )
    }
}

impl Decider for Price {
    type State = PriceState;
    type Command = SetPrice;
    type Event = PriceEvent;
    type Error = PriceOutOfRange;

    fn initial_state() -> PriceState {
        PriceState::default()
    }

    fn decide(
        state: &PriceState,
        SetPrice { unit_price, list_price }: SetPrice,
    ) -> Result<Vec<PriceEvent>, Self::Error> {
        if !(MIN_UNIT_PRICE..=MAX_UNIT_PRICE).contains(&unit_price) {
            return Err(PriceOutOfRange(unit_price));
        }
        let previous = state.unit_price.unwrap_or(list_price);
        Ok(if previous == unit_price { Vec::new() } else { vec![PriceEvent::Changed { unit_price, previous }] })
    }

    fn evolve(mut state: PriceState, event: &PriceEvent) -> PriceState {
        match event {
            PriceEvent::Changed { unit_price, .. } => state.unit_price = Some(*unit_price),
        }
        state
    }
}

impl Aggregate for Price {
    const CATEGORY: &'static str = "price";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = None;
}

/// The id of a price stream and document: `<flavour>-<country>`.
pub fn price_id(flavor: &str, country: &str) -> String {
    format!("{flavor}-{country}")
}

/// A price as `GET /prices` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PriceView {
    /// The flavour.
    pub flavor: String,
    /// The country.
    pub country: String,
    /// Minor units: what an order placed now pays per unit.
    #[schema(value_type = i64)]
    pub unit_price: Money,
    /// False while the list price applies.
    pub changed: bool,
}

impl ReadModel for Price {
    const VIEW: &'static str = "prices";
    type Doc = PriceView;

    fn project(key: &str, _: Option<PriceView>, state: &PriceState, _: &PriceEvent) -> Option<PriceView> {
        let (flavor, country) = key.rsplit_once('-')?;
        Some(PriceView {
            flavor: flavor.to_owned(),
            country: country.to_owned(),
            unit_price: state.unit_price?,
            changed: true,
        })
    }

    fn tags(doc: &PriceView) -> [Option<String>; 3] {
        [Some(doc.flavor.clone()), Some(doc.country.clone()), None]
    }
}

#[cfg(test)]
mod tests {
    use udders_kernel::testing::given;

    use super::*;

    fn set(unit_price: i64, list_price: i64) -> SetPrice {
        SetPrice { unit_price: Money::from_minor(unit_price), list_price: Money::from_minor(list_price) }
    }

    fn changed(unit_price: i64, previous: i64) -> PriceEvent {
        PriceEvent::Changed { unit_price: Money::from_minor(unit_price), previous: Money::from_minor(previous) }
    }

    #[test]
    fn the_first_change_replaces_the_list_price_and_the_same_price_changes_nothing() {
        let state = given::<Price>([]).when(set(550, 600)).then([changed(550, 600)]);
        assert_eq!(state.unit_price, Some(Money::from_minor(550)));
        given::<Price>([changed(550, 600)]).when(set(550, 600)).then([]);
        given::<Price>([]).when(set(600, 600)).then([]);
    }

    #[test]
    fn a_price_outside_one_to_the_maximum_is_refused() {
        for bad in [0, -5, MAX_UNIT_PRICE.minor() + 1] {
            assert_eq!(
                Price::decide(&PriceState::default(), set(bad, 600)),
                Err(PriceOutOfRange(Money::from_minor(bad)))
            );
        }
        assert_eq!(
            PriceOutOfRange(Money::from_minor(0)).to_string(),
            "unit_price must be 1 to 1000000 (minor units), not 0"
        );
    }

    #[test]
    fn prices_keep_their_json_shape_in_minor_units() {
        assert_eq!(
            serde_json::to_value(changed(550, 600)).unwrap(),
            serde_json::json!({"type": "Changed", "data": {"unit_price": 550, "previous": 600}})
        );
        let view = PriceView {
            flavor: "mango".into(),
            country: "sg".into(),
            unit_price: Money::from_minor(550),
            changed: true,
        };
        assert_eq!(
            serde_json::to_value(&view).unwrap(),
            serde_json::json!({"flavor": "mango", "country": "sg", "unit_price": 550, "changed": true})
        );
    }
}
