//! The `udders` binary's library: the whole system in one process
//! ([`system`]) and its shared HTTP surface ([`http`]), so the end-to-end
//! tests start exactly what `udders up` starts.
//!
//! What lives here: wiring. Services, rules and machinery live in
//! `services/*` and `shared/*`.

pub mod http;
pub mod invariants;
pub mod openapi;
pub mod replay;
pub mod system;
