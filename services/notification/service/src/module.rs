//! The notification service described once, for the registry: its handler,
//! its replay, its route and the path it documents, and its background
//! work: the sender and, given the order service's URL, the backfill.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use udders_contracts::Service;
use udders_eventstore::{EventStore, StoreError};
use udders_messaging::MessagingError;
use udders_runtime::module::{Background, BoxFuture, ServiceModule, ServiceRoutes, Wiring};
use udders_runtime::{Outbound, RunningService};

use crate::{NotificationHandler, SERVICE, SimulatedCourier, run_backfill, run_sender};

/// How often the sender looks for due notices.
pub const SEND_EVERY: Duration = Duration::from_millis(100);

/// The notification service's [`ServiceModule`].
#[derive(Debug)]
pub struct Module;

/// The notification service, as the registry lists it.
pub static MODULE: Module = Module;

/// What a customer was told about their orders.
#[derive(utoipa::OpenApi)]
#[openapi(paths(crate::notifications), tags((name = "notification", description = "What customers were told about their orders")))]
struct Api;

impl ServiceModule for Module {
    fn service(&self) -> Service {
        SERVICE
    }

    fn start(&self, store: EventStore, wiring: Wiring) -> Result<RunningService, MessagingError> {
        wiring.start(SERVICE, store, NotificationHandler::new)
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

    /// The sender, through the process's `Arc<SimulatedCourier>` in
    /// `context.extras` (a new one when there is none), and, given the
    /// order service's URL, the backfill.
    fn background(&self, context: &Background) -> Vec<JoinHandle<()>> {
        let courier = context.extras.get::<Arc<SimulatedCourier>>().cloned().unwrap_or_default();
        let (store, outbound, cancel) = (&context.store, &context.outbound, &context.cancel);
        let mut tasks =
            vec![tokio::spawn(run_sender(store.clone(), outbound.clone(), courier, SEND_EVERY, cancel.clone()))];
        if let Some(url) = &context.order_url {
            tasks.push(tokio::spawn(run_backfill(store.clone(), outbound.clone(), url.clone(), cancel.clone())));
        }
        tasks
    }
}
