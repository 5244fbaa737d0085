//! The fulfillment service described once, for the registry: its handler,
//! its replay, its route and the path it documents.

use udders_contracts::Service;
use udders_eventstore::{EventStore, StoreError};
use udders_messaging::MessagingError;
use udders_runtime::module::{BoxFuture, ServiceModule, ServiceRoutes, Wiring};
use udders_runtime::{Outbound, RunningService};

use crate::{FulfillmentHandler, SERVICE};

/// The fulfillment service's [`ServiceModule`].
#[derive(Debug)]
pub struct Module;

/// The fulfillment service, as the registry lists it.
pub static MODULE: Module = Module;

/// The shipment of an order.
#[derive(utoipa::OpenApi)]
#[openapi(paths(crate::shipment), tags((name = "fulfillment", description = "Shipments")))]
struct Api;

impl ServiceModule for Module {
    fn service(&self) -> Service {
        SERVICE
    }

    fn start(&self, store: EventStore, wiring: Wiring) -> Result<RunningService, MessagingError> {
        wiring.start(SERVICE, store, FulfillmentHandler::new)
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
