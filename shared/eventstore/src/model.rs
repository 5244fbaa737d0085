//! The values that go into and come out of the store.

use std::fmt;

use serde_json::Value;
use udders_kernel::{CorrelationId, EventId, Timestamp};
use uuid::Uuid;

/// The name of one event stream: an aggregate category and the aggregate's id,
/// written `category-id` (for example `order-0193…`, `stock-vanilla.sg`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    category: String,
    name: String,
}

impl StreamId {
    /// The stream of aggregate `id` in `category`.
    pub fn new(category: &str, id: impl fmt::Display) -> Self {
        Self { category: category.to_owned(), name: format!("{category}-{id}") }
    }

    /// The aggregate category (the part before the first `-`).
    pub fn category(&self) -> &str {
        &self.category
    }

    /// The full stream name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The aggregate id: the name after `<category>-`.
    pub fn id(&self) -> &str {
        self.name.get(self.category.len() + 1..).unwrap_or("")
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The version a writer believes a stream is at; a stale belief is a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version (1-based).
    Exact(u64),
}

impl ExpectedVersion {
    /// The version as a number: 0 for a stream that does not exist.
    pub fn as_u64(self) -> u64 {
        match self {
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(v) => v,
        }
    }

    /// The expectation that the stream is at `version` (0 means no stream).
    pub fn from_u64(version: u64) -> Self {
        if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// Where an event came from and when: carried by every event in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventMetadata {
    /// The saga this event belongs to.
    pub correlation_id: Option<CorrelationId>,
    /// The event that caused this one.
    pub causation_id: Option<EventId>,
    /// When it happened, by the writer's clock.
    pub occurred_at: Timestamp,
}

/// An event about to be appended, already encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique across every store.
    pub event_id: EventId,
    /// The event's type name, for example `Reserved`.
    pub event_type: String,
    /// The schema version of `payload`.
    pub schema_version: u16,
    /// The event's data as JSON.
    pub payload: Value,
    /// Correlation, causation and time.
    pub metadata: EventMetadata,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Position in the store's global, commit-ordered log (starts at 1).
    pub position: i64,
    /// The stream it belongs to.
    pub stream: String,
    /// The stream's category.
    pub category: String,
    /// Its version within the stream (starts at 1, no gaps).
    pub version: u64,
    /// Unique across every store.
    pub event_id: EventId,
    /// The event's type name.
    pub event_type: String,
    /// The schema version of `payload`.
    pub schema_version: u16,
    /// The event's data.
    pub payload: Value,
    /// Correlation, causation and time.
    pub metadata: EventMetadata,
    /// When the store committed it, by the database's clock.
    pub recorded_at: Timestamp,
}

/// What an append wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The stream's version after the append.
    pub version: u64,
    /// The global position of the last event written (0 when none were).
    pub last_position: i64,
}

/// A record for the relay to publish, written in the same transaction as the
/// events it announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Unique; consumers deduplicate by it (usually the event id).
    pub message_id: Uuid,
    /// Destination topic.
    pub topic: String,
    /// Record key (the order id, so one order's records keep their order).
    pub key: String,
    /// Record headers, in order.
    pub headers: Vec<(String, String)>,
    /// Record value.
    pub payload: Vec<u8>,
}

/// An outbox row handed to one relay by a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMessage {
    /// The row's id, in write order; give it back to `mark_published`.
    pub id: i64,
    /// How many times the row has been claimed, this claim included.
    pub attempts: u32,
    /// What to publish.
    pub message: OutboxMessage,
}

/// A consumer's resume point on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerPosition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the next record to read.
    pub next_offset: i64,
    /// The id of the record at `next_offset - 1` (its `ce_id`), to check on
    /// resume that the log is still the one this position was taken in.
    pub last_record: Option<String>,
}

/// A stored snapshot, not yet decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRecord {
    /// The stream version the state folds up to.
    pub version: u64,
    /// The version of the state's schema that wrote it.
    pub state_schema: u32,
    /// The state as JSON.
    pub state: Value,
}

/// A stream as an aggregate load needs it, read in one round trip: its
/// snapshot, the events after the snapshot (all of them without one), and
/// the stream's last version.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamLoad {
    pub(crate) snapshot: Option<SnapshotRecord>,
    pub(crate) events: Vec<RecordedEvent>,
    pub(crate) head: u64,
}

/// The relay's queue: how many outbox rows wait and how long the oldest has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStatus {
    /// Rows not yet published.
    pub backlog: u64,
    /// The age of the oldest of them (`None` when there are none).
    pub oldest_age: Option<std::time::Duration>,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Published outbox rows removed.
    pub outbox_rows: u64,
    /// Inbox rows removed.
    pub inbox_rows: u64,
}

/// The ids of a batch without repeats, in order of first appearance.
pub(crate) fn first_occurrences(ids: &[EventId]) -> Vec<&EventId> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().filter(|id| seen.insert(**id)).collect()
}

/// For each id of a batch: true when the inbox took it (`inserted`) and it
/// is its first appearance in the batch.
pub(crate) fn fresh_flags(ids: &[EventId], inserted: &std::collections::HashSet<uuid::Uuid>) -> Vec<bool> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().map(|id| seen.insert(*id) && inserted.contains(id.as_uuid())).collect()
}

/// Splits `n` rows into chunks of powers of two, largest first, none over
/// `max` (a power of two): a multi-row statement then takes one of a few
/// shapes, which stay in the connection's statement cache.
pub(crate) fn pow2_chunks(n: usize, max: usize) -> Vec<std::ops::Range<usize>> {
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < n {
        let left = n - at;
        let size = if left >= max { max } else { 1 << left.ilog2() };
        chunks.push(at..at + size);
        at += size;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::pow2_chunks;

    #[test]
    fn chunks_are_powers_of_two_that_cover_every_row_once() {
        assert_eq!(pow2_chunks(0, 64), vec![]);
        assert_eq!(pow2_chunks(13, 64), vec![0..8, 8..12, 12..13]);
        assert_eq!(pow2_chunks(130, 64), vec![0..64, 64..128, 128..130]);
        for n in 0..300 {
            let chunks = pow2_chunks(n, 64);
            assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), n);
            assert!(chunks.iter().all(|c| c.len().is_power_of_two() && c.len() <= 64));
            assert!(chunks.windows(2).all(|w| w[0].end == w[1].start));
        }
    }
}
