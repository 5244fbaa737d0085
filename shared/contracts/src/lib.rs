//! What Udders services say to each other, and nothing about how they say it.
//!
//! What lives here: [`Subject`] (the eight-level taxonomy address) and
//! [`Pattern`] (wildcard subscriptions over it); the integration event
//! payloads ([`events`]) and [`Integration`], all of them as one typed value;
//! the published events ([`udders_events`]: which service publishes which
//! event on which topic) and the [`Catalog`] that checks them together with
//! every subscription; [`Route`] and [`Subscribe`], in which each service
//! declares its own subscriptions in its domain crate, beside its `react`;
//! the CloudEvents [`Envelope`] as Kafka headers; a JSON-to-YAML writer for
//! the AsyncAPI document.
//!
//! What must not: I/O. No Kafka client, database or clock: this crate is
//! pure, so every service and tool can share it.

mod catalog;
pub mod compat;
pub mod envelope;
pub mod events;
mod integration;
mod pattern;
pub mod reference;
mod subject;
mod subscribe;
pub mod yaml;

pub use catalog::{BRAND, CATEGORY, Catalog, CatalogError, EventSpec, Service, Subscription, udders_events};
pub use envelope::{Envelope, EnvelopeError};
pub use integration::{Integration, IntegrationError};
pub use pattern::{LevelValue, Pattern, PatternError};
pub use subject::{LEVELS, MAX_SUBJECT_LEN, Subject, SubjectError};
pub use subscribe::{Route, Subscribe, route_for, route_table_problems, subscriptions};
