//! The point of sale's prices: one [`Price`] per flavour and country (stream
//! `price-<flavour>-<country>`), changed by an operator and published as
//! `price/changed`. An order is priced when it is placed and carries its
//! prices in its payload, so a change never reaches an order in flight.
//! Until the first change a flavour sells at its list price
//! (`udders_contracts::reference::FLAVORS`).

use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use udders_kernel::{Aggregate, Decider, ReadModel};

/// The highest unit price accepted, minor units.
pub const MAX_UNIT_PRICE: i64 = 1_000_000;

/// One flavour's price in one country.
#[derive(Debug)]
pub struct Price;

/// What a price remembers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceState {
    /// Minor units; `None` while the list price applies.
    pub unit_price: Option<i64>,
}

/// Set the price to `unit_price`; `list_price` is what applies until the
/// first change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetPrice {
    /// The new unit price, minor units.
    pub unit_price: i64,
    /// The flavour's list price.
    pub list_price: i64,
}

/// What happened to a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PriceEvent {
    /// `price/changed`.
    Changed {
        /// The new unit price.
        unit_price: i64,
        /// The one it replaces.
        previous: i64,
    },
}

/// A price that cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceOutOfRange(pub i64);

impl std::fmt::Display for PriceOutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unit_price must be 1 to {MAX_UNIT_PRICE} (minor units), not {}", self.0)
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
        if !(1..=MAX_UNIT_PRICE).contains(&unit_price) {
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
    pub unit_price: i64,
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

    #[test]
    fn the_first_change_replaces_the_list_price_and_the_same_price_changes_nothing() {
        let state = given::<Price>([])
            .when(SetPrice { unit_price: 550, list_price: 600 })
            .then([PriceEvent::Changed { unit_price: 550, previous: 600 }]);
        assert_eq!(state.unit_price, Some(550));
        given::<Price>([PriceEvent::Changed { unit_price: 550, previous: 600 }])
            .when(SetPrice { unit_price: 550, list_price: 600 })
            .then([]);
        given::<Price>([]).when(SetPrice { unit_price: 600, list_price: 600 }).then([]);
    }

    #[test]
    fn a_price_outside_one_to_the_maximum_is_refused() {
        for bad in [0, -5, MAX_UNIT_PRICE + 1] {
            assert_eq!(
                Price::decide(&PriceState::default(), SetPrice { unit_price: bad, list_price: 600 }),
                Err(PriceOutOfRange(bad))
            );
        }
    }
}
