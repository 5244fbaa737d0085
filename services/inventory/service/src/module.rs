//! The inventory service described once, for the registry: its handler,
//! its replay, the stock seed, its route and the operator's, and the paths
//! they document.

use udders_contracts::Service;
use udders_eventstore::{EventStore, StoreError};
use udders_messaging::MessagingError;
use udders_runtime::module::{BoxFuture, ServiceModule, ServiceRoutes, Wiring};
use udders_runtime::{Outbound, RunningService};

use crate::{InventoryHandler, SERVICE};

/// The inventory service's [`ServiceModule`].
#[derive(Debug)]
pub struct Module;

/// The inventory service, as the registry lists it.
pub static MODULE: Module = Module;

/// The stock, and the operator's restock.
#[derive(utoipa::OpenApi)]
#[openapi(paths(crate::restock, crate::inventory), tags((name = "inventory", description = "Stock per flavour and country")))]
struct Api;

impl ServiceModule for Module {
    fn service(&self) -> Service {
        SERVICE
    }

    fn start(&self, store: EventStore, wiring: Wiring) -> Result<RunningService, MessagingError> {
        wiring.start(SERVICE, store, InventoryHandler::new)
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

    /// Every flavour in every country served, stocked once ([`crate::seed`]).
    fn seed<'a>(&'a self, store: &'a EventStore, outbound: &'a Outbound) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            crate::seed(store, outbound).await?;
            anyhow::Ok(())
        })
    }
}
