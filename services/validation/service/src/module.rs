//! The two validation deployables described once, for the registry: the
//! same handler and replay, each as its own service (its own database and
//! consumer group). Neither serves an HTTP path.

use udders_contracts::Service;
use udders_eventstore::{EventStore, StoreError};
use udders_messaging::MessagingError;
use udders_runtime::RunningService;
use udders_runtime::module::{BoxFuture, ServiceModule, Wiring};

use crate::{SERVICE, US_SERVICE, ValidationHandler};

/// A validation deployable's [`ServiceModule`]: [`MODULE`] or [`US_MODULE`].
#[derive(Debug)]
pub struct Module {
    service: Service,
}

/// `validation` (route `rules-1.1`), as the registry lists it.
pub static MODULE: Module = Module { service: SERVICE };

/// `validation-us` (route `rules-1.2-us`), as the registry lists it.
pub static US_MODULE: Module = Module { service: US_SERVICE };

impl ServiceModule for Module {
    fn service(&self) -> Service {
        self.service
    }

    fn start(&self, store: EventStore, wiring: Wiring) -> Result<RunningService, MessagingError> {
        wiring.start(self.service, store, ValidationHandler::new)
    }

    fn replay<'a>(&'a self, store: &'a EventStore) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(crate::replay(store))
    }
}
