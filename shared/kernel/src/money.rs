//! Money in integer minor units, and quantities. Never `f64`.

use std::fmt;
use std::ops::Add;

use serde::{Deserialize, Serialize};

/// An amount of money in minor units (cents). One currency per deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(i64);

/// Arithmetic that would leave the range of [`Money`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The result does not fit in 64 bits of minor units.
    #[error("amount overflows")]
    Overflow,
}

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// An amount in minor units.
    pub const fn from_minor(minor: i64) -> Self {
        Self(minor)
    }

    /// The amount in minor units.
    pub const fn minor(self) -> i64 {
        self.0
    }

    /// `self + other`, or an error when it overflows.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.0.checked_add(other.0).map(Money).ok_or(MoneyError::Overflow)
    }

    /// `self - other`, or an error when it overflows.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.0.checked_sub(other.0).map(Money).ok_or(MoneyError::Overflow)
    }

    /// `self * quantity`, or an error when it overflows.
    pub fn checked_times(self, quantity: Quantity) -> Result<Money, MoneyError> {
        self.0.checked_mul(i64::from(quantity.0)).map(Money).ok_or(MoneyError::Overflow)
    }

    /// True when the amount is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }
}

impl Add for Money {
    type Output = Money;
    /// Saturating addition, for totals of amounts already checked.
    fn add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// A count of items (scoops, tubs, units of stock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantity(u32);

impl Quantity {
    /// Wraps a count.
    pub const fn new(count: u32) -> Self {
        Self(count)
    }

    /// The count.
    pub const fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_arithmetic_is_checked() {
        let price = Money::from_minor(650);
        assert_eq!(price.checked_times(Quantity::new(3)), Ok(Money::from_minor(1950)));
        assert_eq!(Money::from_minor(i64::MAX).checked_add(Money::from_minor(1)), Err(MoneyError::Overflow));
        assert_eq!(Money::from_minor(i64::MIN).checked_sub(Money::from_minor(1)), Err(MoneyError::Overflow));
        assert_eq!(Money::from_minor(i64::MAX).checked_times(Quantity::new(2)), Err(MoneyError::Overflow));
    }

    #[test]
    fn money_displays_in_major_units() {
        assert_eq!(Money::from_minor(1950).to_string(), "19.50");
        assert_eq!(Money::from_minor(-5).to_string(), "-0.05");
    }
}
