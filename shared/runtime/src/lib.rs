//! The machinery the six services share, so each service crate holds only
//! what is its own: which events it reacts to and which routes it serves.
//!
//! What lives here:
//! - [`access`]: the operator token and the POS API keys, as middleware.
//! - [`record`]: record an aggregate's decided events, publish the ones that
//!   are integration events (envelope and outbox row, caused by the incoming
//!   event or the HTTP request), and fold them into its read model, all in
//!   the caller's transaction; read an incoming record's event and its typed
//!   route ([`route`]: a route name the service does not know is a dead
//!   letter).
//! - [`replay`]: drop a service's read models and rebuild them from its
//!   event log with the same projections.
//! - [`http`]: `application/problem+json` errors, a JSON body extractor
//!   whose rejections are problems, and the request body limit.
//! - [`node`]: one running service: its relay and its consumer, wired from
//!   the catalog.
//! - [`module`]: a service described once ([`module::ServiceModule`]): its
//!   handler, replay, routes, OpenAPI paths, seed and background work, which
//!   each service crate implements and the binary's registry lists.
//! - [`clock`]: the one place the services read the time.
//! - [`metrics`]: saga durations and compensations, counted on commit.
//! - [`live`]: the console's live feed (events as they commit, counts per
//!   event type, the last minute's ended sagas).
//! - [`telemetry`]: OpenTelemetry traces over OTLP/HTTP, when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the span of each HTTP request.
//! - `testing` (feature `testing`, for tests only): one service's handler
//!   on a real store, handed one integration event at a time, and what it
//!   published read back.
//!
//! What must not: any service's rules. Deciders live in the domain crates.

pub mod access;
pub mod clock;
pub mod http;
pub mod live;
pub mod metrics;
pub mod module;
pub mod node;
pub mod record;
pub mod replay;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use node::{RunningService, ServiceSpec, start_service};
pub use record::{Cause, Outbound, change_reference, integration, record, record_viewed, route, route_named};
