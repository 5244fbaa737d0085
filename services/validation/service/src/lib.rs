//! The validation service's I/O: its handler, which validates each
//! `order/init` with the rule set of the route it arrived on (1.2 for
//! `order/init/1.2/**/us/*`, 1.1 for the rest), and its read model. It
//! serves no HTTP path of its own. The rules are in
//! `udders-validation-domain`.
//!
//! Two deployables run this handler: `validation` (route `rules-1.1`) and
//! `validation-us` (route `rules-1.2-us`), each with its own database and
//! consumer group. The domain crate declares both routes in one table
//! ([`SUBSCRIPTIONS`], each row with its deployable), and the catalog gives
//! both deployables that table, so each record is validated by exactly one
//! of them.

use udders_contracts::{Integration, Service};
use udders_eventstore::{EventStore, StoreError, Tx};
use udders_kernel::Decider;
use udders_messaging::{Handler, HandlerError, Incoming};
use udders_runtime::replay::replay_one;
use udders_runtime::{Cause, Outbound, integration, record_viewed, route};
use udders_validation_domain::{Event, Validation, react};

/// This service's routes and subscriptions (both deployables'), declared in
/// its domain crate.
pub use udders_validation_domain::{Route, SUBSCRIPTIONS};

/// This service.
pub const SERVICE: Service = Service::Validation;
/// The deployable of the US rule set of payload 1.2.
pub const US_SERVICE: Service = Service::ValidationUs;

/// Validates placed orders.
#[derive(Debug, Clone)]
pub struct ValidationHandler {
    outbound: Outbound,
}

impl ValidationHandler {
    /// A handler publishing through `outbound`.
    pub fn new(outbound: Outbound) -> Self {
        Self { outbound }
    }
}

impl Handler for ValidationHandler {
    async fn handle(&self, tx: &mut Tx, incoming: &Incoming) -> Result<(), HandlerError> {
        let route: Route = route(incoming, SERVICE)?;
        let Some(validate) = react(route, &integration(incoming)?) else { return Ok(()) };
        // A placed order is validated once: no read would find its validation.
        let mut validation = tx.open::<Validation>(validate.order.order_id()).await?;
        let Ok(events) = Validation::decide(&validation.state, validate);
        let publish = |e: &Event| {
            Some(match e {
                Event::Passed(v) => (Integration::OrderValidated(v.clone()), None),
                Event::Refused(v) => (Integration::OrderInvalidated(v.clone()), None),
            })
        };
        record_viewed(tx, &mut validation, events, &Cause::of(incoming), &self.outbound, publish).await?;
        Ok(())
    }
}

/// Drops and rebuilds this service's read models from its events.
pub async fn replay(store: &EventStore) -> Result<usize, StoreError> {
    replay_one::<Validation>(store).await
}

mod module;

pub use module::{MODULE, Module, US_MODULE};
