//! Kafka for Udders: the embedded broker, the outbox relay, and the
//! at-least-once consumer with inbox deduplication and a dead-letter topic.
//!
//! What lives here: [`EmbeddedBroker`] (Tansu, linked in, memory storage),
//! [`topics`] (creation, replication), [`trace`] (trace context across the broker), [`KafkaSettings`] (every rdkafka setting in one place),
//! [`Relay`], [`SharedClients`] (one producer and one sentinel for a process's services), [`spawn_consumer`] with its [`Handler`] trait, [`Replayer`]
//! (a parked dead letter handled again on demand), [`Backoff`], [`outbound`]
//! (an event as an outbox row with its CloudEvents headers), [`pruning`]
//! (published outbox rows and old inbox ids deleted on a retention), [`tap`], and
//! [`metrics`] (the latency histograms a consumer keeps).
//!
//! What must not: domain rules. Handlers (in the services) decide; this crate
//! moves records, stores positions and never loses an accepted event.

mod backoff;
pub mod broker;
mod clients;
mod consumer;
mod dead_letters;
mod kafka;
pub mod metrics;
pub mod outbound;
pub mod pruning;
mod relay;
pub mod tap;
pub mod topics;
pub mod trace;

pub use backoff::Backoff;
pub use broker::{EmbeddedBroker, RecordDeleter, assign_from_start, delete_records, wait_for_broker};
pub use clients::{SharedClients, SharedProducer};
pub use consumer::{
    ConsumerConfig, ConsumerLatency, ConsumerStats, ConsumerWatch, Handler, HandlerError, Incoming, Membership,
    TransactionPhase, dead_letter, spawn_consumer,
};
pub use dead_letters::{ReplayDeadLetter, ReplayError, Replayed, Replayer};
pub use kafka::{KafkaSettings, Sentinel, WatchfulContext};
pub use relay::{Relay, RelayConfig};
pub use topics::ensure_topics;

/// An error of the messaging layer.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// The Kafka client failed.
    #[error("kafka client: {0}")]
    Kafka(#[source] rdkafka::error::KafkaError),
    /// The broker is missing or refused something.
    #[error("broker: {0}")]
    Broker(String),
    /// Some records of a batch were not acknowledged.
    #[error("{failed} records not acknowledged ({published} were): {source}")]
    Publish {
        /// How many failed.
        failed: usize,
        /// How many went through.
        published: usize,
        /// The first failure.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] udders_eventstore::StoreError),
}
