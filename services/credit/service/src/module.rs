//! The credit service described once, for the registry: its handler, its
//! replay, its route and the operator's, and the paths they document.

use udders_contracts::Service;
use udders_eventstore::{EventStore, StoreError};
use udders_messaging::MessagingError;
use udders_runtime::module::{BoxFuture, ServiceModule, ServiceRoutes, Wiring};
use udders_runtime::{Outbound, RunningService};

use crate::{CreditHandler, SERVICE};

/// The credit service's [`ServiceModule`].
#[derive(Debug)]
pub struct Module;

/// The credit service, as the registry lists it.
pub static MODULE: Module = Module;

/// A customer's credit, and the operator's change of a limit.
#[derive(utoipa::OpenApi)]
#[openapi(paths(crate::change_limit, crate::credit), tags((name = "credit", description = "Customer credit")))]
struct Api;

impl ServiceModule for Module {
    fn service(&self) -> Service {
        SERVICE
    }

    fn start(&self, store: EventStore, wiring: Wiring) -> Result<RunningService, MessagingError> {
        wiring.start(SERVICE, store, CreditHandler::new)
    }

    fn replay<'a>(&'a self, store: &'a EventStore) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(crate::replay(store))
    }

    fn routes(&self, store: EventStore, outbound: Outbound) -> ServiceRoutes {
        ServiceRoutes { public: Some(crate::routes(store.clone())), admin: Some(crate::admin_routes(store, outbound)) }
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <Api as utoipa::OpenApi>::openapi()
    }
}
