//! A service-level test harness: one service's handler, on a real SQLite
//! store, handed one integration event at a time in a real transaction, and
//! the outbox rows that transaction wrote read back as integration events.
//!
//! It sits between the decider tests (pure, in each domain crate) and the
//! six-service tests (`tests/saga.rs`: the whole system through HTTP and
//! Kafka). What it runs is what the consumer runs for one record: the route
//! picked from the catalog (the first subscription of the service whose
//! pattern matches the subject), a transaction begun on the store, the inbox
//! entry (a record delivered twice is a duplicate: skipped), the handler,
//! the commit. What it leaves out is the broker: no Kafka, no relay, no
//! positions, so a test runs in milliseconds.
//!
//! Why here: it needs the store, the consumer's `Incoming` and `Handler`,
//! and the [`Outbound`] every handler publishes through, and this crate
//! already depends on all three; every service crate depends on this one,
//! so each can test its own handler with it from its `tests/`. It is behind
//! the `testing` feature (which brings `tempfile`), so nothing of it is in
//! a binary: a service crate enables it in its dev-dependencies only.
//!
//! ```ignore
//! let mut credit = ServiceHarness::start(SERVICE, SUBSCRIPTIONS, CreditHandler::new).await?;
//! let published = credit.deliver(&order_valid).await?;
//! assert_eq!(published[0].integration, Integration::CreditReserved(..));
//! ```

use std::sync::Arc;

use udders_contracts::{
    Catalog, CatalogError, Envelope, Integration, Route, Service, Subject, Subscribe, subscriptions, udders_events,
};
use udders_eventstore::{EventStore, StoreError, StoreOptions};
use udders_kernel::{CorrelationId, EventId};
use udders_messaging::{Handler, HandlerError, Incoming};
use uuid::Uuid;

use crate::Outbound;
use crate::node::consumer_config;

/// The product, country and channel levels of the subjects the harness
/// delivers on (what a handler's outgoing subjects copy).
pub const LEVELS: [&str; 3] = ["vanilla", "sg", "web"];

/// Why the harness could not start or deliver.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The temporary directory for the database could not be made.
    #[error("a temporary directory: {0}")]
    TempDir(#[from] std::io::Error),
    /// The service's subscriptions do not make a catalog.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event is not in the catalog (in this payload version).
    #[error("{0} is not a catalogued event")]
    NotCatalogued(String),
    /// No subscription of the service takes the subject: the consumer would
    /// skip the record without handling it.
    #[error("no subscription of {service} takes {subject}: the consumer would skip it")]
    Skipped {
        /// The service.
        service: Service,
        /// The subject delivered.
        subject: Subject,
    },
    /// The handler failed; its transaction rolled back, as the consumer's does.
    #[error("the handler failed: {0}")]
    Handler(#[from] HandlerError),
    /// An outbox row the handler wrote does not read back as an integration
    /// event.
    #[error("an outbox row does not read back: {0}")]
    Unreadable(String),
}

/// One outbox row, read back: what the relay would publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its topic.
    pub topic: String,
    /// Its key (the order id).
    pub key: String,
    /// Its CloudEvents attributes.
    pub envelope: Envelope,
    /// Its payload, typed.
    pub integration: Integration,
}

/// One service's handler on a fresh SQLite store in a temporary directory
/// (deleted when the harness is dropped).
#[derive(Debug)]
pub struct ServiceHarness<H> {
    service: Service,
    handler: H,
    store: EventStore,
    outbound: Outbound,
    catalog: Arc<Catalog>,
    /// The id of the last outbox row already returned or passed over.
    seen: i64,
    /// The offset the next delivered record gets.
    offset: i64,
    /// Holds the database's directory; last, so the store closes first.
    _dir: tempfile::TempDir,
}

impl<H: Handler> ServiceHarness<H> {
    /// Opens a store for `service` and makes its handler with `handler` from
    /// the service's [`Outbound`] (as `Wiring::start` does:
    /// `CreditHandler::new`, ...). The catalog is the published events and
    /// `rows`, the service's own subscriptions.
    pub async fn start<R: Route>(
        service: Service,
        rows: &[Subscribe<R>],
        handler: impl FnOnce(Outbound) -> H,
    ) -> Result<Self, HarnessError> {
        let catalog = Arc::new(Catalog::assemble(udders_events(), subscriptions(service, rows)?)?);
        let dir = tempfile::tempdir()?;
        let store =
            EventStore::open_sqlite(&dir.path().join(format!("{service}.db")), &StoreOptions::default()).await?;
        let outbound = Outbound::new(service, catalog.clone());
        let handler = handler(outbound.clone());
        Ok(Self { service, handler, store, outbound, catalog, seen: 0, offset: 0, _dir: dir })
    }

    /// The service's store, to set things up (a seed) or look at what the
    /// handler left (events, read models).
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// The service's way out, for a setup step that publishes (a seed).
    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// `event` as the consumer would hand it to the handler: a new event id,
    /// the subject of its catalogued type on [`LEVELS`], the correlation id
    /// of its order (the same for every event of one order), and the route
    /// of the first of the service's subscriptions that takes the subject.
    pub fn incoming(&mut self, event: &Integration) -> Result<Incoming, HarnessError> {
        let (domain, action) = event.name();
        let version = match event {
            Integration::OrderPlacedV1_2(_) => Some("1.2"),
            _ => None,
        };
        let spec = self
            .catalog
            .spec_named(domain, action, version)
            .ok_or_else(|| HarnessError::NotCatalogued(format!("{domain}/{action}")))?;
        let [product, country, channel] = LEVELS;
        let subject =
            spec.subject(product, country, channel).map_err(|e| HarnessError::NotCatalogued(e.to_string()))?;
        let config = consumer_config(self.service, self.catalog.clone());
        let route = match config.routes.iter().find(|(_, pattern)| pattern.matches(&subject)) {
            Some((route, _)) if !config.routes_elsewhere.contains(route) => route.clone(),
            _ => return Err(HarnessError::Skipped { service: self.service, subject }),
        };
        let key = event.key();
        let envelope = Envelope {
            id: EventId::from_uuid(Uuid::now_v7()),
            source: format!("/udders/{}", spec.publisher),
            event_type: spec.cloudevents_type(),
            subject,
            time: crate::clock::now(),
            correlation_id: CorrelationId::from_uuid(Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes())),
            causation_id: None,
            traceparent: None,
            sequence: 1,
        };
        self.offset += 1;
        Ok(Incoming {
            route,
            envelope,
            key,
            payload: event.payload(),
            topic: spec.topic().to_owned(),
            partition: 0,
            offset: self.offset,
        })
    }

    /// Delivers one event: [`ServiceHarness::incoming`], then
    /// [`ServiceHarness::handle`]. Returns what the handler published.
    pub async fn deliver(&mut self, event: &Integration) -> Result<Vec<Published>, HarnessError> {
        let incoming = self.incoming(event)?;
        self.handle(&incoming).await
    }

    /// Hands one record to the handler as the consumer does, in one
    /// transaction: the inbox entry (a record it has seen is a duplicate and
    /// is not handled), the handler, the commit. A failing handler's
    /// transaction rolls back and leaves nothing. Returns the outbox rows
    /// the transaction wrote, in order.
    pub async fn handle(&mut self, incoming: &Incoming) -> Result<Vec<Published>, HarnessError> {
        // Rows written since the last delivery (a seed's) are not this one's.
        self.read_outbox().await?;
        let mut tx = self.store.begin().await?;
        if tx.inbox_record(self.service.name(), incoming.envelope.id).await? {
            self.handler.handle(&mut tx, incoming).await?;
        }
        tx.commit().await?;
        self.read_outbox().await
    }

    /// The outbox rows after the last one seen, read back; they are seen now.
    async fn read_outbox(&mut self) -> Result<Vec<Published>, HarnessError> {
        let mut published = Vec::new();
        loop {
            let rows = self.store.unpublished_after(self.seen, 1000).await?;
            let Some(last) = rows.last() else { return Ok(published) };
            self.seen = last.id;
            for row in rows {
                let message = row.message;
                let headers = message.headers.iter().map(|(name, value)| (name.as_str(), Some(value.as_bytes())));
                let envelope = Envelope::from_headers(headers).map_err(|e| HarnessError::Unreadable(e.to_string()))?;
                let payload = serde_json::from_slice(&message.payload)
                    .map_err(|e| HarnessError::Unreadable(format!("{}: {e}", envelope.subject)))?;
                let integration = Integration::parse(&envelope.subject, payload)
                    .map_err(|e| HarnessError::Unreadable(e.to_string()))?;
                published.push(Published { topic: message.topic, key: message.key, envelope, integration });
            }
        }
    }
}
