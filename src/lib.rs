//! The `udders` binary's library: the whole system in one process
//! ([`system`]), one service in its own process ([`node`]), and their shared
//! HTTP surface ([`http`]), so the end-to-end tests start exactly what
//! `udders up` and `udders service` start. Both read the [`registry`]: each
//! deployable's module, which says how to start, seed, route, document and
//! replay it.
//!
//! What lives here: wiring, the catalog's assembly included ([`catalog`]:
//! the published events with every service's subscriptions). Services,
//! rules and machinery live in `services/*` and `shared/*`.

pub mod catalog;
pub mod console;
pub mod heap;
pub mod http;
pub mod invariants;
pub mod node;
pub mod openapi;
pub mod registry;
pub mod system;
