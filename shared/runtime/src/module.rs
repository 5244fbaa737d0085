//! A service described once: [`ServiceModule`] says what a deployable runs
//! (its handler, behind its relay and consumer), how its read models are
//! rebuilt, which routes it serves and documents, which reference data it
//! seeds and which background work it does. Each service crate implements
//! it (`udders_order::MODULE`, ...); the binary lists the modules in one
//! registry (`src/registry.rs`) and both topologies, `udders up` and
//! `udders service NAME`, read it instead of naming each service.
//!
//! What stays with the process: when each method is called, the retries
//! around a seed, the listeners' fetch tuning, the operator token in front
//! of the admin routes, and the order service's point-of-sale API (it needs
//! the saga deadline and, in `udders up`, every service's dead letters).

use std::fmt::Debug;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Extensions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use udders_contracts::{Catalog, Service};
use udders_eventstore::{EventStore, StoreError};
use udders_messaging::{Handler, KafkaSettings, Membership, MessagingError, SharedClients};

use crate::Outbound;
use crate::node::{RunningService, ServiceSpec, start_service};

/// A boxed future that can be sent to another thread: what the async
/// methods of [`ServiceModule`] answer, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One deployable, described once: everything the binary needs to run it,
/// rebuild it, serve and document its routes, seed it and start its
/// background work. Object-safe: the registry holds `&'static dyn
/// ServiceModule`.
pub trait ServiceModule: Send + Sync + 'static {
    /// Which deployable this is.
    fn service(&self) -> Service;

    /// Starts its relay and its consumer with its own handler (one line:
    /// [`Wiring::start`]).
    fn start(&self, store: EventStore, wiring: Wiring) -> Result<RunningService, MessagingError>;

    /// Drops its read models and rebuilds them from its event log; answers
    /// how many aggregates were folded.
    fn replay<'a>(&'a self, store: &'a EventStore) -> BoxFuture<'a, Result<usize, StoreError>>;

    /// Its HTTP routes on `store`, publishing through `outbound` (none by
    /// default).
    fn routes(&self, _store: EventStore, _outbound: Outbound) -> ServiceRoutes {
        ServiceRoutes::default()
    }

    /// The OpenAPI document of its paths (and the schemas they use), merged
    /// into the process's document; empty by default.
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        utoipa::openapi::OpenApi::default()
    }

    /// Seeds its reference data, once: a second call finds it done (nothing
    /// by default). Instances starting together may race on it: the caller
    /// tries again.
    fn seed<'a>(&'a self, _store: &'a EventStore, _outbound: &'a Outbound) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Starts its background work; each task ends on `context.cancel`
    /// (none by default).
    fn background(&self, _context: &Background) -> Vec<JoinHandle<()>> {
        Vec::new()
    }
}

/// What starting a service takes besides its database: the broker
/// settings, the catalog, which instance this is, whether it shares the
/// partitions, and the token that stops it.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// The broker and the topic layout (a listener's fetch tuning already
    /// applied by the caller).
    pub settings: KafkaSettings,
    /// The event catalog.
    pub catalog: Arc<Catalog>,
    /// Names this instance's outbox claims and client ids (`1`, `order-1`, ...).
    pub instance: String,
    /// The only instance, or one of several sharing the partitions.
    pub membership: Membership,
    /// Stops the relay and the consumer.
    pub cancel: CancellationToken,
    /// How far back the relay sends what it published again when the broker
    /// lost its log (`RelayConfig::republish_window`).
    pub republish_window: Duration,
    /// The producer and sentinel the services of this process share
    /// (`udders up`); `None`: the service makes its own.
    pub shared: Option<SharedClients>,
}

impl Wiring {
    /// Starts `service`'s relay and consumer on the current runtime, with the
    /// handler `handler` makes from the service's [`Outbound`]
    /// (`OrderHandler::new`, ...).
    pub fn start<H: Handler + Clone + Debug>(
        self,
        service: Service,
        store: EventStore,
        handler: impl FnOnce(Outbound) -> H,
    ) -> Result<RunningService, MessagingError> {
        let Wiring { settings, catalog, instance, membership, cancel, republish_window, shared } = self;
        let handler = handler(Outbound::new(service, catalog.clone()));
        let spec = ServiceSpec { service, store, handler, instance, membership, republish_window, shared };
        start_service(spec, &settings, catalog, cancel)
    }
}

/// The routes a service serves.
#[derive(Debug, Default)]
pub struct ServiceRoutes {
    /// Open to anyone (its read models).
    pub public: Option<Router>,
    /// Reference-data changes (prices, stock, credit limits): the caller puts
    /// them behind the operator token.
    pub admin: Option<Router>,
}

/// What a service's background work is given.
#[derive(Debug, Clone)]
pub struct Background {
    /// Its database.
    pub store: EventStore,
    /// Its way out.
    pub outbound: Outbound,
    /// Ends every task.
    pub cancel: CancellationToken,
    /// How often overdue orders are looked for (the order service's sweeper).
    pub sweep_every: Duration,
    /// Where the order service answers (notification's backfill; none: no
    /// backfill).
    pub order_url: Option<String>,
    /// Anything else a process hands a service, by type: the notification
    /// sender sends through the `Arc<SimulatedCourier>` found here (`udders
    /// up` keeps it, to show what was sent), or through one of its own.
    pub extras: Extensions,
}
