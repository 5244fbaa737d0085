//! The payment service described once, for the registry: its handler
//! (charging through the simulated card gateway), its replay, its route and
//! the path it documents.

use std::sync::Arc;

use udders_contracts::Service;
use udders_eventstore::{EventStore, StoreError};
use udders_messaging::MessagingError;
use udders_payment_domain::SimulatedGateway;
use udders_runtime::module::{BoxFuture, ServiceModule, ServiceRoutes, Wiring};
use udders_runtime::{Outbound, RunningService};

use crate::{PaymentHandler, SERVICE};

/// The payment service's [`ServiceModule`].
#[derive(Debug)]
pub struct Module;

/// The payment service, as the registry lists it.
pub static MODULE: Module = Module;

/// The payment of an order.
#[derive(utoipa::OpenApi)]
#[openapi(paths(crate::payment), tags((name = "payment", description = "Charges and refunds")))]
struct Api;

impl ServiceModule for Module {
    fn service(&self) -> Service {
        SERVICE
    }

    fn start(&self, store: EventStore, wiring: Wiring) -> Result<RunningService, MessagingError> {
        wiring.start(SERVICE, store, |outbound| PaymentHandler::new(outbound, Arc::new(SimulatedGateway)))
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
