//! `udders replay SERVICE`: drop a service's read models and rebuild them
//! from its event log.

use udders_contracts::Service;
use udders_eventstore::{EventStore, StoreError};

/// Rebuilds `service`'s read models in `store`; returns how many aggregates were folded.
pub async fn replay(service: Service, store: &EventStore) -> Result<usize, StoreError> {
    match service {
        Service::Order => udders_order::replay(store).await,
        Service::Validation | Service::ValidationUs => udders_validation::replay(store).await,
        Service::Credit => udders_credit::replay(store).await,
        Service::Inventory => udders_inventory::replay(store).await,
        Service::Payment => udders_payment::replay(store).await,
        Service::Fulfillment => udders_fulfillment::replay(store).await,
        Service::Notification => udders_notification::replay(store).await,
        Service::Insights => udders_insights::replay(store).await,
    }
}
