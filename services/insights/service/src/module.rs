//! The insights service described once, for the registry: its handler, its
//! replay, its routes and the paths they document.

use udders_contracts::Service;
use udders_eventstore::{EventStore, StoreError};
use udders_messaging::MessagingError;
use udders_runtime::module::{BoxFuture, ServiceModule, ServiceRoutes, Wiring};
use udders_runtime::{Outbound, RunningService};

use crate::{InsightsHandler, SERVICE};

/// The insights service's [`ServiceModule`].
#[derive(Debug)]
pub struct Module;

/// The insights service, as the registry lists it.
pub static MODULE: Module = Module;

/// The 711 chain's last hour and Singapore's orders waiting for dispatch.
#[derive(utoipa::OpenApi)]
#[openapi(paths(crate::channel, crate::country), tags((name = "insights", description = "The 711 chain's last hour and Singapore's orders waiting for dispatch")))]
struct Api;

impl ServiceModule for Module {
    fn service(&self) -> Service {
        SERVICE
    }

    fn start(&self, store: EventStore, wiring: Wiring) -> Result<RunningService, MessagingError> {
        wiring.start(SERVICE, store, InsightsHandler::new)
    }

    fn replay<'a>(&'a self, store: &'a EventStore) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(crate::replay(store))
    }

    fn routes(&self, store: EventStore, _outbound: Outbound) -> ServiceRoutes {
        ServiceRoutes { public: Some(crate::routes(store)), admin: None }
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <Api as utoipa::OpenApi>::openapi()
    }
}
