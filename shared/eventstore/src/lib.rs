//! The event-sourcing core of every Udders service: event store, snapshots,
//! transactional outbox, inbox and consumer positions, on SQLite and
//! PostgreSQL behind one API.
//!
//! What lives here:
//! - [`EventStore`]: append with optimistic concurrency (a stale expected
//!   version is [`StoreError::Conflict`], never an overwrite), read a stream,
//!   read the global log in commit order, claim and mark outbox rows (or,
//!   on a single-writer store, hand a commit's rows to the relay in memory:
//!   `handover.rs`), prune.
//! - [`Tx`]: the one transaction a handler does all its work in. Inbox
//!   entry, events, snapshot, outbox rows and consumer position commit
//!   together or not at all.
//! - [`Aggregate`] and [`Loaded`]: typed load (newest usable snapshot plus
//!   the events after it) and record (append, evolve, snapshot every N).
//! - [`DeadLetter`]: records a consumer gave up on, parked with the position
//!   that passes them, until an operator replays or discards them.
//! - [`Document`]: read-model documents per (view, key) with filter tags,
//!   written in the handler's transaction and dropped before a replay.
//! - The SQL: one text for both dialects in `sql.rs`, and what differs in
//!   `sqlite.rs` and `postgres.rs`; migrations in
//!   `migrations/{sqlite,postgres}` at the repository root, applied when a
//!   store opens.
//!
//! What must not: Kafka, HTTP, or any service's domain rules. The store
//! knows streams and rows, not orders.

mod aggregate;
mod cache;
mod dead_letters;
mod documents;
mod error;
mod handover;
mod model;
mod postgres;
mod sql;
mod sqlite;
mod store;
mod tx;

pub use aggregate::{Loaded, StreamOf, decode_event, encode_event};
pub use dead_letters::{DeadLetter, DeadLetterFilter, DeadLetterStatus, NewDeadLetter};
pub use documents::{Document, DocumentCursor, DocumentFilter, DocumentPage};
pub use error::StoreError;
pub use handover::HAND_OVER_CAPACITY;
pub use model::{
    Appended, ClaimedMessage, ConsumerPosition, EventMetadata, ExpectedVersion, NewEvent, OutboxMessage, OutboxStatus,
    Pruned, RecordedEvent, SnapshotRecord, StreamId,
};
pub use store::{Backend, EventStore, StoreOptions};
pub use tx::Tx;
pub use udders_kernel::{Aggregate, ReadModel};
