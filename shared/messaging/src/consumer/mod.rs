//! The at-least-once consumer loop with an inbox and a dead-letter topic.
//!
//! It reads the topics its patterns need, starting from the positions stored
//! in the service database. Alone ([`Membership::Alone`]) it assigns every
//! partition directly (no group join wait). With several instances of a
//! service ([`Membership::Group`]) they share the partitions through a Kafka
//! consumer group named after the consumer; the group's rebalance events
//! reach the loop, which assigns what it was given at the positions in the
//! (shared) service database and forgets what was taken away. Each
//! record is handled in ONE transaction: inbox entry (a duplicate is skipped),
//! the handler's effects, and the new position commit together, so a restart
//! resumes exactly. Records already fetched are taken together, up to
//! `max_batch`, into one such transaction; if anything in it fails, it rolls
//! back and its records are handled one by one. A failing handler is retried with backoff a bounded number
//! of times; then the record goes to the dead-letter topic with its origin,
//! the error and the attempt count in headers, and the partition moves on.
//! Malformed records (missing or garbled headers, bad JSON, unknown event
//! type or version, oversized) are dead-lettered at once. A database that is
//! away is waited for, never dead-lettered.
//!
//! Resuming, and a broker that comes back empty: every stored position N
//! carries the id of the record at N-1. On start, and after the client
//! reported every broker down, each partition is assigned at N-1 and *gated*:
//! - the record at N-1 arrives with the stored id: the log is the one we
//!   left; resume at N;
//! - a later offset arrives instead, or nothing within a second: some
//!   brokers answer a fetch from inside a record batch with the next batch
//!   (or nothing, inside the last one: Tansu's own storage did; the
//!   embedded broker now answers as Kafka does, see
//!   `tests/tansu_behaviour.rs`), so the partition is read again from its
//!   start, skipping (not handling) everything before N-1 until the record
//!   at N-1 is confirmed. Every later re-assignment scans this way rather
//!   than probing;
//! - the record at N-1 is missing or different, or the log is shorter: the
//!   broker lost the log. The partition is replayed from its start and the
//!   inbox drops what was already handled.
//!
//! Every re-assignment uses a fresh client, so no record fetched for an
//! earlier assignment can arrive after it.
//!
//! Where it lives: this file holds the public types and [`spawn_consumer`].
//! What the consumer knows and decides per partition (gates, positions,
//! what it holds, restarts and rewinds) is a pure state machine,
//! `partitions` (with the gate itself in `gate`), and a failing record's
//! retries are another, `retry`; the I/O around them is `shell` (the loop
//! and its client), `assignment` (rebalances, resume points, seeks),
//! `handling` (batches, transactions, retries) and `dead_lettering` (parking
//! and the dead-letter topic, stored positions). `context` is the client's
//! rdkafka context; `record` checks and routes one record.

mod assignment;
mod context;
mod dead_lettering;
mod gate;
mod handling;
mod partitions;
mod record;
mod retry;
mod shell;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use udders_contracts::{Catalog, Envelope, Pattern};
use udders_eventstore::{EventStore, StoreError, Tx};

use crate::MessagingError;
use crate::kafka::{KafkaSettings, Sentinel};
use crate::metrics::{HANDLER_BOUNDS, HOP_BOUNDS, Histogram, PartitionEnds};

pub(crate) use record::{RawRecord, parse_record, wall_clock};

/// Headers added to a dead-lettered record (its own headers are kept).
pub mod dead_letter {
    /// The topic it was read from.
    pub const ORIGINAL_TOPIC: &str = "dlq_original_topic";
    /// Its partition there.
    pub const ORIGINAL_PARTITION: &str = "dlq_original_partition";
    /// Its offset there.
    pub const ORIGINAL_OFFSET: &str = "dlq_original_offset";
    /// Why it was dead-lettered.
    pub const ERROR: &str = "dlq_error";
    /// How many times the handler tried it (0: malformed, never handled).
    pub const ATTEMPTS: &str = "dlq_attempts";
    /// Which consumer gave up on it.
    pub const CONSUMER: &str = "dlq_consumer";
}

/// One record, parsed and routed, as a handler sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The route (subscription) that matched its subject.
    pub route: String,
    /// Its CloudEvents attributes.
    pub envelope: Envelope,
    /// Its key (the order id).
    pub key: String,
    /// Its JSON payload.
    pub payload: Value,
    /// Where it was read.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// A handler's failure.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// What went wrong.
    pub message: String,
    /// True: retrying cannot help; dead-letter at once.
    pub permanent: bool,
    /// True: the store failed, not the record (it was away, busy or
    /// locked): retried without limit, never counted toward the
    /// dead-letter limit.
    pub outage: bool,
}

impl HandlerError {
    /// A failure worth retrying.
    pub fn retry(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: false, outage: false }
    }

    /// A failure no retry can mend (for example a payload that breaks a rule of its schema).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: true, outage: false }
    }
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        Self { message: e.to_string(), permanent: false, outage: e.is_transient() }
    }
}

/// What a service does with one record, inside the consumer's transaction.
pub trait Handler: Send + Sync + 'static {
    /// Handles one record. Everything written through `tx` commits with the
    /// inbox entry and the new position, or not at all.
    fn handle(&self, tx: &mut Tx, event: &Incoming) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// How a consumer behaves.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Names the consumer in the inbox and positions (usually the service).
    pub name: String,
    /// The topics to read.
    pub topics: Vec<String>,
    /// Routes in priority order: the first pattern matching a subject wins;
    /// a record no pattern matches is skipped.
    pub routes: Vec<(String, Pattern)>,
    /// Routes of [`ConsumerConfig::routes`] that another deployable handles
    /// (validation-us, for validation): a record whose first match is one
    /// of them is skipped like one that matches nothing.
    pub routes_elsewhere: Vec<String>,
    /// Where records it gives up on go.
    pub dead_letter_topic: String,
    /// Event types it accepts (subject and `ce_type` must be catalogued).
    pub catalog: Arc<Catalog>,
    /// Handler attempts before a record is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt.
    pub retry_backoff: Duration,
    /// Larger records (key + value + headers) are dead-lettered.
    pub max_record_bytes: usize,
    /// How often positions of skipped records are stored.
    pub position_flush: Duration,
    /// Records handled in one transaction at most (whatever is already
    /// fetched, up to this).
    pub max_batch: usize,
    /// Alone, or one of several instances sharing the partitions.
    pub membership: Membership,
    /// The sentinel this consumer hears the broker's loss through, shared
    /// by the consumers of a process; `None`: a sentinel of its own.
    pub sentinel: Option<Arc<Sentinel>>,
}

/// Whether a consumer reads every partition itself or shares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Membership {
    /// The only instance: every partition is assigned directly, at once.
    #[default]
    Alone,
    /// One of several instances of a service: a consumer group (named after
    /// the consumer, range assignor, so partition N of every topic, and with
    /// it every event of one order, goes to the same instance) shares the
    /// partitions out, and each instance resumes what it is given from the
    /// positions in the service database.
    Group,
}

impl ConsumerConfig {
    /// Defaults for a consumer named `name`.
    pub fn new(name: impl Into<String>, catalog: Arc<Catalog>, dead_letter_topic: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            topics: Vec::new(),
            routes: Vec::new(),
            routes_elsewhere: Vec::new(),
            dead_letter_topic: dead_letter_topic.into(),
            catalog,
            max_attempts: 5,
            retry_backoff: Duration::from_millis(20),
            max_record_bytes: 1 << 20,
            position_flush: Duration::from_millis(500),
            max_batch: 256,
            membership: Membership::Alone,
            sentinel: None,
        }
    }
}

/// Counts of what the consumer did, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Records handled (effects committed).
    pub handled: u64,
    /// Records dropped by the inbox as already handled.
    pub duplicates: u64,
    /// Records no route matched.
    pub skipped: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Times positions were checked after the broker was lost.
    pub broker_recoveries: u64,
}

/// How long a consumer's work takes, as histograms.
#[derive(Debug)]
pub struct ConsumerLatency {
    /// Each handler call (one record's effects, before the commit).
    pub handler: Histogram,
    /// Each transaction: inbox entries, handler calls, positions and commit.
    pub transaction: Histogram,
    /// Each handled record's hop: from its event's time (`ce_time`, set by
    /// the publisher when the event was recorded) to the commit of its
    /// effects here, by the wall clocks of both (outbox, relay, broker and
    /// this consumer's queue included).
    pub hop: Histogram,
    /// Each transaction in the parts it spends its time in, in
    /// [`TransactionPhase`] order ([`ConsumerLatency::phase`]); a
    /// transaction's parts add up to it.
    phases: [Histogram; TransactionPhase::ALL.len()],
}

impl ConsumerLatency {
    /// The histogram of one part of the transactions.
    pub fn phase(&self, phase: TransactionPhase) -> &Histogram {
        &self.phases[phase as usize]
    }
}

impl Default for ConsumerLatency {
    fn default() -> Self {
        Self {
            handler: Histogram::new(HANDLER_BOUNDS),
            transaction: Histogram::new(HANDLER_BOUNDS),
            hop: Histogram::new(HOP_BOUNDS),
            phases: TransactionPhase::ALL.map(|_| Histogram::new(HANDLER_BOUNDS)),
        }
    }
}

/// The parts of a consumer transaction, in the order it goes through them
/// (`udders_consumer_transaction_phase_seconds{phase}` on `/metrics`). A
/// store with one writer (SQLite) serves one transaction at a time, so
/// `waiting` is the time other transactions of that store (the point of
/// sale's, the relay's marks) held it; the rest is this one holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionPhase {
    /// Beginning: waiting for the store's writer.
    Waiting,
    /// Recording the records' ids in the inbox (one statement per chunk).
    Inbox,
    /// The handler calls, with the reads they make.
    Handlers,
    /// Writing what the handlers recorded (events, outbox rows, snapshots,
    /// documents) and the positions.
    Writes,
    /// The commit itself.
    Commit,
}

impl TransactionPhase {
    /// Every phase, in order.
    pub const ALL: [TransactionPhase; 5] = [
        TransactionPhase::Waiting,
        TransactionPhase::Inbox,
        TransactionPhase::Handlers,
        TransactionPhase::Writes,
        TransactionPhase::Commit,
    ];

    /// Its `phase` label.
    pub fn label(self) -> &'static str {
        match self {
            TransactionPhase::Waiting => "waiting",
            TransactionPhase::Inbox => "inbox",
            TransactionPhase::Handlers => "handlers",
            TransactionPhase::Writes => "writes",
            TransactionPhase::Commit => "commit",
        }
    }
}

/// A running consumer's view for its owner.
#[derive(Debug, Clone)]
pub struct ConsumerWatch {
    ready: watch::Receiver<bool>,
    stats: watch::Receiver<ConsumerStats>,
    latency: Arc<ConsumerLatency>,
    ends: PartitionEnds,
}

impl ConsumerWatch {
    /// True once partitions are assigned and records flow.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until ready.
    pub async fn wait_ready(&mut self) {
        let _ = self.ready.wait_for(|r| *r).await;
    }

    /// What it has done so far.
    pub fn stats(&self) -> ConsumerStats {
        *self.stats.borrow()
    }

    /// How long its handler calls and transactions took.
    pub fn latency(&self) -> &ConsumerLatency {
        &self.latency
    }

    /// The ends of the partitions it reads, for its lag.
    pub fn ends(&self) -> &PartitionEnds {
        &self.ends
    }
}

/// Starts a consumer on the current runtime. It runs until `cancel`.
pub fn spawn_consumer<H: Handler>(
    store: EventStore,
    settings: KafkaSettings,
    config: ConsumerConfig,
    handler: H,
    cancel: CancellationToken,
) -> Result<(tokio::task::JoinHandle<Result<(), MessagingError>>, ConsumerWatch), MessagingError> {
    let (ready_tx, ready) = watch::channel(false);
    let (stats_tx, stats) = watch::channel(ConsumerStats::default());
    let latency = Arc::new(ConsumerLatency::default());
    let ends = PartitionEnds::default();
    let lp = shell::Loop::new(store, settings, config, handler, stats_tx, latency.clone(), ends.clone());
    let task = tokio::spawn(lp.run(cancel, ready_tx));
    Ok((task, ConsumerWatch { ready, stats, latency, ends }))
}
