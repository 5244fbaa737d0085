//! The order service described once, for the registry: its handler, its
//! replay, the saga deadline sweeper and the paths it documents. Its routes
//! are not here: the point-of-sale API needs the saga deadline (and, in
//! `udders up`, every service's dead letters), so the process builds
//! [`OrderApi`](crate::OrderApi) and serves [`routes`](crate::routes) and
//! [`admin_routes`](crate::admin_routes) itself.

use tokio::task::JoinHandle;
use udders_contracts::Service;
use udders_eventstore::{EventStore, StoreError};
use udders_messaging::MessagingError;
use udders_runtime::RunningService;
use udders_runtime::module::{Background, BoxFuture, ServiceModule, Wiring};

use crate::{OrderHandler, SERVICE};

/// The order service's [`ServiceModule`].
#[derive(Debug)]
pub struct Module;

/// The order service, as the registry lists it.
pub static MODULE: Module = Module;

/// The point of sale, the order lifecycle and the prices.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    crate::api::place,
    crate::api::one,
    crate::api::cancel,
    crate::api::list,
    crate::api::stats,
    crate::api::stuck,
    crate::api::events,
    crate::prices::prices,
    crate::prices::change_price,
), tags((name = "order", description = "The point of sale and the order lifecycle")))]
struct Api;

impl ServiceModule for Module {
    fn service(&self) -> Service {
        SERVICE
    }

    fn start(&self, store: EventStore, wiring: Wiring) -> Result<RunningService, MessagingError> {
        wiring.start(SERVICE, store, OrderHandler::new)
    }

    fn replay<'a>(&'a self, store: &'a EventStore) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(crate::replay(store))
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <Api as utoipa::OpenApi>::openapi()
    }

    /// The saga deadline sweeper.
    fn background(&self, context: &Background) -> Vec<JoinHandle<()>> {
        let (store, outbound, cancel) = (context.store.clone(), context.outbound.clone(), context.cancel.clone());
        vec![tokio::spawn(crate::run_deadline_sweeper(store, outbound, context.sweep_every, cancel))]
    }
}
