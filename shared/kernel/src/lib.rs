//! The pure kernel every Udders crate stands on.
//!
//! What lives here: the [`Decider`] trait (initial state, `decide`, `evolve`)
//! that every aggregate implements, [`Aggregate`] (how a decider's events and
//! state are named and versioned in a store), a given/when/then helper to test deciders
//! without I/O ([`testing`]), and the newtypes the domain speaks in: ids,
//! [`Money`] in integer minor units, [`Quantity`] and [`Timestamp`].
//!
//! What must not: I/O of any kind. No tokio, sqlx, rdkafka, clock or random
//! source is a dependency of this crate; time and ids arrive as values.

mod aggregate;
mod decider;
mod ids;
mod money;
pub mod testing;
mod time;

pub use aggregate::{Aggregate, ReadModel};
pub use decider::Decider;
pub use ids::{CorrelationId, CustomerId, EventId, IdError, OrderId};
pub use money::{Money, MoneyError, Quantity};
pub use time::{Timestamp, TimestampError};
