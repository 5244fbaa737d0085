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

use std::collections::{HashMap, HashSet};
use std::future::Future;

use futures::FutureExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use udders_contracts::{Catalog, Envelope, Pattern};
use udders_eventstore::{ConsumerPosition, EventStore, NewDeadLetter, StoreError, Tx};
use udders_kernel::{EventId, Timestamp};

use crate::backoff::Backoff;

use crate::MessagingError;
use crate::kafka::{KafkaSettings, WatchfulContext};
use crate::metrics::{HANDLER_BOUNDS, HOP_BOUNDS, Histogram, PartitionEnds};

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

/// Where a partition with no position starts: offset 0, named rather than
/// `Offset::Beginning`, which librdkafka resolves with a ListOffsets request
/// before its first fetch. After a fresh start that made each consumer's first
/// records wait 200 to 400 ms (docs/benchmarks.md). Below a log start that
/// moved, the embedded broker answers from the log start; Apache Kafka
/// answers OFFSET_OUT_OF_RANGE, and `auto.offset.reset=earliest` moves the
/// consumer there.
const FROM_THE_START: Offset = Offset::Offset(0);

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
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Handled,
    Duplicate,
    Skipped,
    DeadLettered,
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

type PartitionKey = (String, i32);

struct Loop<H> {
    store: EventStore,
    settings: KafkaSettings,
    config: ConsumerConfig,
    handler: H,
    /// The dead-letter producer, made when the first record needs it (its
    /// polling thread costs CPU even when idle).
    producer: Option<FutureProducer>,
    /// Next offset and last record id per partition, as far as read.
    seen: HashMap<PartitionKey, (i64, Option<String>)>,
    /// Positions of skipped records not yet stored.
    unsaved: HashMap<PartitionKey, (i64, Option<String>)>,
    /// Partitions whose resume point is not yet confirmed.
    gates: HashMap<PartitionKey, Gate>,
    /// How the next assignment starts these partitions.
    restarts: HashMap<PartitionKey, Restart>,
    /// True after the first assignment (later ones scan instead of probing).
    assigned_before: bool,
    /// Clients created so far (names them `<consumer>-<n>`).
    clients: u32,
    /// The client in use, for the watchdog that unassigns it when the broker goes.
    current: Arc<std::sync::Mutex<Option<Arc<StreamConsumer<LoopContext>>>>>,
    context: WatchfulContext,
    /// The group's rebalance events for the client in use.
    rebalances: mpsc::UnboundedReceiver<Rebalanced>,
    /// In a group: the partitions this instance holds now.
    owned: HashSet<PartitionKey>,
    /// Partitions whose records were fetched but dropped at a reassignment,
    /// with the first dropped offset.
    rewinds: HashMap<PartitionKey, i64>,
    stats: watch::Sender<ConsumerStats>,
    latency: Arc<ConsumerLatency>,
    ends: PartitionEnds,
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
}

impl Default for ConsumerLatency {
    fn default() -> Self {
        Self {
            handler: Histogram::new(HANDLER_BOUNDS),
            transaction: Histogram::new(HANDLER_BOUNDS),
            hop: Histogram::new(HOP_BOUNDS),
        }
    }
}

/// A partition whose resume point `next` is being confirmed: the record at
/// `next - 1` must carry the id `last`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Gate {
    /// Assigned at `next - 1`; waiting for its first record.
    Probing { next: i64, last: String, since: Instant },
    /// Assigned at the start; skipping up to `next - 1`. `since`: the last
    /// progress (assignment or a skipped record). A scan that stops short of
    /// `next - 1` found a shorter log (a broker that came back empty and
    /// has not got that far again): what it skipped was never handled.
    Scanning { next: i64, last: String, since: Instant },
}

/// How a partition starts at the next assignment, after a gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restart {
    /// From the start, skipping up to the resume point.
    Scan,
    /// From the start, handling everything (the log is not the one we left).
    Replay,
}

/// A rebalance of the group, as the client's context heard it. The loop
/// applies it (assigns at the stored positions, or unassigns), so the
/// client's own callback never waits on the database.
#[derive(Debug)]
enum Rebalanced {
    /// These partitions are ours now.
    Assign(Vec<PartitionKey>),
    /// These are taken away (eager protocol: all of them).
    Revoke(Vec<PartitionKey>),
}

/// The consumer client's context: hears the broker go (through the shared
/// [`WatchfulContext`]) and forwards the group's rebalances to the loop.
struct LoopContext {
    watch: WatchfulContext,
    /// Where librdkafka's statistics (partition ends) go.
    ends: PartitionEnds,
    rebalances: mpsc::UnboundedSender<Rebalanced>,
    /// Set before the client is dropped: closing it revokes the assignment
    /// and waits for the unassign, which the loop is no longer there to make.
    closing: std::sync::atomic::AtomicBool,
}

impl ClientContext for LoopContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.watch.error(error, reason);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        self.ends.record(&statistics);
    }
}

impl ConsumerContext for LoopContext {
    /// Leaves the assign and unassign calls to the loop: librdkafka waits for
    /// them (and keeps heart-beating) after this returns.
    fn rebalance(&self, base: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = base.unassign();
            return;
        }
        let keys: Vec<PartitionKey> = tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
        let event = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalanced::Assign(keys),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalanced::Revoke(keys),
            other => {
                tracing::warn!(error = ?other, "group rebalance failed; giving up this assignment");
                Rebalanced::Revoke(keys)
            }
        };
        let _ = self.rebalances.send(event);
    }
}

/// What to do after a batch.
enum Step {
    Continue,
    Reassign,
}

/// What a partition's gate says about one record.
enum Passage {
    /// Handle it.
    Pass,
    /// Already handled (or the confirming record itself): skip it.
    Skip,
    /// The partition must be assigned again (see `restarts`).
    Reassign,
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
    let lp = Loop {
        store,
        settings,
        config,
        handler,
        producer: None,
        seen: HashMap::new(),
        unsaved: HashMap::new(),
        gates: HashMap::new(),
        restarts: HashMap::new(),
        assigned_before: false,
        clients: 0,
        current: Arc::default(),
        context: WatchfulContext::default(),
        rebalances: mpsc::unbounded_channel().1,
        owned: HashSet::new(),
        rewinds: HashMap::new(),
        stats: stats_tx,
        latency: latency.clone(),
        ends: ends.clone(),
    };
    let task = tokio::spawn(lp.run(cancel, ready_tx));
    Ok((task, ConsumerWatch { ready, stats, latency, ends }))
}

fn fingerprint(message: &OwnedMessage) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == udders_contracts::envelope::ID)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
}

impl<H: Handler> Loop<H> {
    async fn run(mut self, cancel: CancellationToken, ready: watch::Sender<bool>) -> Result<(), MessagingError> {
        // Stop fetching the moment every broker is down (see WatchfulContext):
        // the sentinel hears it at once, the watchdog unassigns the client in
        // use, and the loop replaces that client.
        let _sentinel =
            crate::kafka::Sentinel::start(&self.settings, self.context.clone()).map_err(MessagingError::Kafka)?;
        let watchdog = {
            let (context, current, cancel) = (self.context.clone(), self.current.clone(), cancel.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = context.broker_lost() => {
                            let client = current.lock().map(|c| c.clone()).unwrap_or(None);
                            if let Some(client) = client {
                                let _ = client.unassign();
                            }
                        }
                    }
                }
            })
        };
        let result = self.consume(cancel, ready).await;
        watchdog.abort();
        result
    }

    async fn consume(&mut self, cancel: CancellationToken, ready: watch::Sender<bool>) -> Result<(), MessagingError> {
        let Some(mut consumer) = self.assign_when_possible(&cancel).await else { return Ok(()) };
        if self.config.membership == Membership::Alone {
            let _ = ready.send(true); // in a group: once the first assignment is applied
        }
        tracing::info!(consumer = %self.config.name, topics = ?self.config.topics, membership = ?self.config.membership, "consumer running");
        let mut flush = tokio::time::interval(self.config.position_flush);
        loop {
            let message = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Some(event) = self.rebalances.recv() => {
                    if !self.rebalanced(&consumer, event, &cancel, &ready).await {
                        break;
                    }
                    continue;
                }
                () = self.context.broker_lost() => {
                    self.context.take_broker_lost();
                    tracing::warn!(consumer = %self.config.name, "every broker is down: dropping the client; positions will be checked against the log");
                    let Some(c) = self.replace_client(consumer, &cancel, Some(&ready)).await else { return self.stopped(None).await };
                    consumer = c;
                    continue;
                }
                _ = flush.tick() => {
                    self.flush_skipped().await;
                    if self.probe_timed_out() {
                        if self.config.membership == Membership::Alone || !self.reposition(&consumer).await {
                            let Some(c) = self.replace_client(consumer, &cancel, None).await else { return self.stopped(None).await };
                            consumer = c;
                        }
                    } else if self.context.take_broker_lost() {
                        tracing::warn!(consumer = %self.config.name, "every broker was down: checking positions against the log");
                        let Some(c) = self.replace_client(consumer, &cancel, Some(&ready)).await else { return self.stopped(None).await };
                        consumer = c;
                    }
                    continue;
                }
                received = consumer.recv() => match received {
                    Ok(message) => message.detach(),
                    Err(error) => {
                        tracing::debug!(consumer = %self.config.name, %error, "receive failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            };
            // Take whatever else is already fetched, up to a batch.
            let mut batch = vec![message];
            while batch.len() < self.config.max_batch {
                match consumer.recv().now_or_never() {
                    Some(Ok(more)) => batch.push(more.detach()),
                    _ => break,
                }
            }
            // A rebalance heard meanwhile comes first: records of partitions
            // taken away are left to their new owner.
            let mut stopped = false;
            while let Ok(event) = self.rebalances.try_recv() {
                if !self.rebalanced(&consumer, event, &cancel, &ready).await {
                    stopped = true;
                    break;
                }
            }
            if stopped {
                break;
            }
            if self.config.membership == Membership::Group {
                batch.retain(|m| self.owned.contains(&(m.topic().to_owned(), m.partition())));
                if batch.is_empty() {
                    continue;
                }
            }
            if let Step::Reassign = self.process_batch(&batch, &cancel).await
                && (self.config.membership == Membership::Alone || !self.reposition(&consumer).await)
            {
                let Some(c) = self.replace_client(consumer, &cancel, None).await else {
                    return self.stopped(None).await;
                };
                consumer = c;
            }
        }
        self.stopped(Some(consumer)).await
    }

    /// In a group, where a fresh client would mean leaving and rejoining (a
    /// rebalance for every instance, whose gates would then ask for the
    /// same again): moves the partitions a gate decided on (`restarts`)
    /// with a seek on the client in use. librdkafka drops what it fetched
    /// for them before the seek.
    /// False when a seek failed: the caller must fall back to a fresh client.
    async fn reposition(&mut self, consumer: &StreamConsumer<LoopContext>) -> bool {
        self.restarts.retain(|key, _| self.owned.contains(key));
        let wanted: Vec<(PartitionKey, Restart)> = self.restarts.iter().map(|(k, r)| (k.clone(), *r)).collect();
        let keys: Vec<PartitionKey> = wanted.iter().map(|(k, _)| k.clone()).collect();
        for key in &keys {
            self.gates.remove(key);
        }
        self.assigned_before = true; // scan, not probe
        let rewinds = std::mem::take(&mut self.rewinds);
        let moved = match self.resume_points(&keys).await {
            Ok(mut tpl) => {
                for ((topic, partition), offset) in &rewinds {
                    let key = (topic.clone(), *partition);
                    if self.owned.contains(&key) && !keys.contains(&key) {
                        let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
                    }
                }
                consumer.seek_partitions(tpl, Duration::from_secs(5)).map_err(MessagingError::Kafka).and_then(
                    |result| match result.elements().iter().find_map(|e| e.error().err()) {
                        Some(error) => Err(MessagingError::Kafka(error)),
                        None => Ok(()),
                    },
                )
            }
            Err(error) => Err(error),
        };
        match moved {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(consumer = %self.config.name, %error, "cannot seek; replacing the client");
                // What the seek was for must happen at the next assignment.
                self.restarts.extend(wanted);
                false
            }
        }
    }

    /// Stores what is left to store and closes the client, if one is left.
    async fn stopped(&mut self, client: Option<Arc<StreamConsumer<LoopContext>>>) -> Result<(), MessagingError> {
        self.flush_skipped().await;
        if let Some(client) = client {
            self.close(client);
        }
        Ok(())
    }

    /// Applies a group rebalance: a revocation stores the positions of
    /// skipped records and forgets the partitions; an assignment starts each
    /// partition from the position in the database (another instance may
    /// have moved it), gated like any resume. False when cancelled.
    async fn rebalanced(
        &mut self,
        consumer: &StreamConsumer<LoopContext>,
        event: Rebalanced,
        cancel: &CancellationToken,
        ready: &watch::Sender<bool>,
    ) -> bool {
        match event {
            Rebalanced::Revoke(keys) => {
                self.flush_skipped().await;
                for key in &keys {
                    self.seen.remove(key);
                    self.gates.remove(key);
                    self.owned.remove(key);
                }
                if let Err(error) = consumer.unassign() {
                    tracing::warn!(consumer = %self.config.name, %error, "unassign failed");
                }
                tracing::info!(consumer = %self.config.name, partitions = keys.len(), "partitions revoked");
                true
            }
            Rebalanced::Assign(keys) => {
                // Positions come from the database, which other instances
                // move too: probe them like a first start.
                self.assigned_before = false;
                let mut backoff = Backoff::outage();
                let tpl = loop {
                    match self.resume_points(&keys).await {
                        Ok(tpl) => break tpl,
                        Err(error) => {
                            tracing::warn!(consumer = %self.config.name, %error, "cannot read positions; retrying");
                            tokio::select! {
                                () = cancel.cancelled() => return false,
                                () = tokio::time::sleep(backoff.next_delay()) => {}
                            }
                        }
                    }
                };
                if let Err(error) = consumer.assign(&tpl) {
                    tracing::warn!(consumer = %self.config.name, %error, "assign failed");
                }
                self.owned = keys.iter().cloned().collect();
                tracing::info!(consumer = %self.config.name, partitions = keys.len(), "partitions assigned");
                let _ = ready.send(true);
                true
            }
        }
    }

    /// Destroys the client in use and assigns a fresh one (`None` when
    /// cancelled). After a broker loss (`ready` given) the consumer reports
    /// not ready meanwhile, and the recovery is counted.
    async fn replace_client(
        &mut self,
        old: Arc<StreamConsumer<LoopContext>>,
        cancel: &CancellationToken,
        ready: Option<&watch::Sender<bool>>,
    ) -> Option<Arc<StreamConsumer<LoopContext>>> {
        if let Some(ready) = ready {
            let _ = ready.send(false);
        }
        self.close(old);
        self.rewinds.clear();
        let fresh = self.assign_when_possible(cancel).await?;
        if let Some(ready) = ready {
            self.stats.send_modify(|s| s.broker_recoveries += 1);
            let _ = ready.send(true);
        }
        Some(fresh)
    }

    /// Destroys a client (leaving the group, if it is in one). The
    /// watchdog's handle goes first, so this drop is the last.
    fn close(&self, client: Arc<StreamConsumer<LoopContext>>) {
        client.context().closing.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut current) = self.current.lock() {
            *current = None;
        }
        drop(client);
    }

    /// Gates that stopped moving. A probe unanswered for a second means the
    /// resume point lies inside the last batch of a Tansu log (or past the
    /// end of an empty one): scan that partition instead. A scan idle for
    /// three seconds short of the resume point means the log is shorter
    /// than the one the position was taken in: replay the partition (the
    /// inbox drops what was handled before).
    fn probe_timed_out(&mut self) -> bool {
        let mut stuck = false;
        for (key, gate) in &self.gates {
            let restart = match gate {
                Gate::Probing { since, .. } if since.elapsed() > Duration::from_secs(1) => Restart::Scan,
                Gate::Scanning { since, .. } if since.elapsed() > Duration::from_secs(3) => {
                    tracing::warn!(consumer = %self.config.name, topic = %key.0, partition = key.1,
                        "the log ends before this position (broker lost it?): replaying the partition");
                    Restart::Replay
                }
                _ => continue,
            };
            self.restarts.insert(key.clone(), restart);
            stuck = true;
        }
        stuck
    }

    /// Assigns, retrying until the broker and topics are there; `None` when cancelled.
    async fn assign_when_possible(&mut self, cancel: &CancellationToken) -> Option<Arc<StreamConsumer<LoopContext>>> {
        loop {
            let attempt = async {
                crate::broker::wait_for_broker(&self.settings, Duration::from_secs(5)).await?;
                self.assign().await
            };
            tokio::select! {
                () = cancel.cancelled() => return None,
                result = attempt => match result {
                    Ok(consumer) => {
                        let consumer = Arc::new(consumer);
                        if let Ok(mut current) = self.current.lock() {
                            *current = Some(consumer.clone());
                        }
                        return Some(consumer);
                    }
                    Err(error) => {
                        tracing::info!(consumer = %self.config.name, %error, "waiting for the broker and topics");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        }
    }

    fn count(&self, outcome: Option<Outcome>) {
        self.stats.send_modify(|s| match outcome {
            Some(Outcome::Handled) => s.handled += 1,
            Some(Outcome::Duplicate) => s.duplicates += 1,
            Some(Outcome::Skipped) => s.skipped += 1,
            Some(Outcome::DeadLettered) => s.dead_lettered += 1,
            None => {}
        });
    }

    /// Makes sure the dead-letter topic exists, then creates a fresh client:
    /// alone, it is assigned every partition of every topic, gated at its
    /// resume point; in a group, it subscribes and waits for the group's
    /// assignment (see [`Self::rebalanced`]).
    async fn assign(&mut self) -> Result<StreamConsumer<LoopContext>, MessagingError> {
        let dlq = [self.config.dead_letter_topic.clone()];
        crate::topics::ensure_topics(&self.settings, &dlq).await?;
        let partitions = self.partitions().await?;
        self.clients += 1;
        let (sender, receiver) = mpsc::unbounded_channel();
        self.rebalances = receiver;
        let context = LoopContext {
            watch: self.context.clone(),
            ends: self.ends.clone(),
            rebalances: sender,
            closing: false.into(),
        };
        let consumer: StreamConsumer<LoopContext> = self
            .settings
            .consumer_config(&self.config.name)
            // Partition ends (high watermarks) for the lag metric, into
            // `LoopContext::stats` (other clients keep statistics off).
            .set("statistics.interval.ms", PartitionEnds::EVERY.as_millis().to_string())
            .set(
                "client.id",
                format!("{}-{}", self.settings.client_id.as_deref().unwrap_or(&self.config.name), self.clients),
            )
            .create_with_context(context)
            .map_err(MessagingError::Kafka)?;
        tracing::debug!(consumer = %self.config.name, client = self.clients, "new consumer client");
        self.gates.clear();
        self.owned.clear();
        match self.config.membership {
            Membership::Alone => {
                let tpl = self.resume_points(&partitions).await?;
                consumer.assign(&tpl).map_err(MessagingError::Kafka)?;
                self.owned = partitions.into_iter().collect();
            }
            Membership::Group => {
                let topics: Vec<&str> = self.config.topics.iter().map(String::as_str).collect();
                consumer.subscribe(&topics).map_err(MessagingError::Kafka)?;
            }
        }
        Ok(consumer)
    }

    /// Where each of `partitions` starts, with its gate: the position this
    /// loop last saw, else the one stored in the database.
    async fn resume_points(&mut self, partitions: &[PartitionKey]) -> Result<TopicPartitionList, MessagingError> {
        let stored: HashMap<PartitionKey, ConsumerPosition> = self
            .store
            .positions(&self.config.name)
            .await?
            .into_iter()
            .map(|p| ((p.topic.clone(), p.partition), p))
            .collect();
        let mut tpl = TopicPartitionList::new();
        for key in partitions {
            let key = key.clone();
            let known = self
                .seen
                .get(&key)
                .cloned()
                .or_else(|| stored.get(&key).map(|p| (p.next_offset, p.last_record.clone())));
            let restart = self.restarts.remove(&key);
            let offset = match (known, restart) {
                (_, Some(Restart::Replay)) | (None, _) | (Some((0, _)), _) | (Some((_, None)), _) => {
                    if restart == Some(Restart::Replay) {
                        tracing::warn!(consumer = %self.config.name, topic = %key.0, partition = key.1,
                            "the log is not the one this position was taken in (broker lost it?): replaying the partition");
                        self.seen.remove(&key);
                    }
                    FROM_THE_START
                }
                // A probe is only worth it once: after that, scanning cannot
                // get stuck, so one partition's fallback never re-probes another.
                (Some((next, Some(last))), Some(Restart::Scan)) | (Some((next, Some(last))), None)
                    if self.assigned_before =>
                {
                    self.gates.insert(key.clone(), Gate::Scanning { next, last, since: Instant::now() });
                    FROM_THE_START
                }
                (Some((next, Some(last))), _) => {
                    self.gates.insert(key.clone(), Gate::Probing { next, last, since: Instant::now() });
                    Offset::Offset(next - 1)
                }
            };
            tpl.add_partition_offset(&key.0, key.1, offset).map_err(MessagingError::Kafka)?;
        }
        self.assigned_before = true;
        Ok(tpl)
    }

    async fn partitions(&self) -> Result<Vec<PartitionKey>, MessagingError> {
        let config = self.settings.consumer_config(&format!("{}-metadata", self.config.name));
        let topics = self.config.topics.clone();
        tokio::task::spawn_blocking(move || {
            let client: BaseConsumer = config.create().map_err(MessagingError::Kafka)?;
            let mut keys = Vec::new();
            for topic in &topics {
                let metadata =
                    client.fetch_metadata(Some(topic), Duration::from_secs(5)).map_err(MessagingError::Kafka)?;
                let partitions = metadata.topics().first().map(|t| (t.error(), t.partitions().len()));
                match partitions {
                    Some((None, n)) if n > 0 => keys.extend((0..n as i32).map(|p| (topic.clone(), p))),
                    _ => return Err(MessagingError::Broker(format!("topic {topic} does not exist yet"))),
                }
            }
            Ok(keys)
        })
        .await
        .map_err(|e| MessagingError::Broker(e.to_string()))?
    }

    /// Applies the partition's gate, if it has one, to a record.
    fn gate(&mut self, message: &OwnedMessage) -> Passage {
        let key = (message.topic().to_owned(), message.partition());
        let Some(gate) = self.gates.get(&key).cloned() else { return Passage::Pass };
        let fingerprint = fingerprint(message);
        let offset = message.offset();
        let (next, last, probing) = match &gate {
            Gate::Probing { next, last, .. } => (*next, last, true),
            Gate::Scanning { next, last, .. } => (*next, last, false),
        };
        if offset < next - 1 && !probing {
            if let Some(Gate::Scanning { since, .. }) = self.gates.get_mut(&key) {
                *since = Instant::now();
            }
            return Passage::Skip; // before the resume point: handled already (if the log is the same)
        }
        if offset == next - 1 && fingerprint.as_deref() == Some(last.as_str()) {
            self.gates.remove(&key);
            self.seen.insert(key, (next, fingerprint));
            return Passage::Skip; // the log is the one we left: resume after it
        }
        if offset > next - 1 && probing {
            self.restarts.insert(key, Restart::Scan);
            return Passage::Reassign;
        }
        if offset < next - 1 {
            // Probing, and the broker reset us to an earlier start: the log is shorter.
            tracing::warn!(consumer = %self.config.name, topic = %key.0, partition = key.1,
                "the log is shorter than this position (broker lost it?): replaying the partition");
            self.gates.remove(&key);
            self.seen.remove(&key);
            Passage::Pass
        } else {
            self.restarts.insert(key, Restart::Replay);
            Passage::Reassign
        }
    }

    /// Gates, parses and routes a batch of records; handles the routed ones
    /// in one transaction. Records ahead of a malformed one (or of a
    /// re-assignment) are committed first, so no stored position ever passes
    /// a record that was not handled.
    async fn process_batch(&mut self, batch: &[OwnedMessage], cancel: &CancellationToken) -> Step {
        let mut ready: Vec<(usize, Incoming)> = Vec::new();
        for (i, message) in batch.iter().enumerate() {
            match self.gate(message) {
                Passage::Skip => continue,
                Passage::Reassign => {
                    self.handle_ready(batch, &mut ready, cancel).await;
                    // The rest of the batch is dropped: a fresh client reads
                    // it again; a seek (in a group) must rewind to it.
                    for later in &batch[i + 1..] {
                        let key = (later.topic().to_owned(), later.partition());
                        let at = self.rewinds.entry(key).or_insert(later.offset());
                        *at = (*at).min(later.offset());
                    }
                    return Step::Reassign;
                }
                Passage::Pass => {}
            }
            let key = (message.topic().to_owned(), message.partition());
            let next = (message.offset() + 1, fingerprint(message));
            match self.parse(message) {
                Err(reason) => {
                    self.handle_ready(batch, &mut ready, cancel).await;
                    let outcome = self.dead_letter(message, &reason, 0, None, cancel).await;
                    self.seen.insert(key, next);
                    self.count(Some(outcome));
                }
                Ok(None) => {
                    self.unsaved.insert(key.clone(), next.clone());
                    self.seen.insert(key, next);
                    self.count(Some(Outcome::Skipped));
                }
                Ok(Some(incoming)) => ready.push((i, incoming)),
            }
        }
        self.handle_ready(batch, &mut ready, cancel).await;
        Step::Continue
    }

    /// Handles routed records: all in one transaction, or, when that fails,
    /// one by one with retries and the dead-letter topic.
    async fn handle_ready(
        &mut self,
        batch: &[OwnedMessage],
        ready: &mut Vec<(usize, Incoming)>,
        cancel: &CancellationToken,
    ) {
        let items = std::mem::take(ready);
        if items.len() > 1 {
            let together: Vec<(&Incoming, Option<String>)> =
                items.iter().map(|(i, incoming)| (incoming, fingerprint(&batch[*i]))).collect();
            match self.attempt(&together).await {
                Ok(outcomes) => {
                    for ((incoming, record_id), outcome) in together.into_iter().zip(outcomes) {
                        self.committed(incoming, record_id);
                        self.count(Some(outcome));
                    }
                    return;
                }
                Err(Failure::Handler(error)) => {
                    tracing::debug!(consumer = %self.config.name, %error, "a batch failed; handling its records one by one");
                }
                Err(Failure::Store(error)) => {
                    tracing::debug!(consumer = %self.config.name, %error, "a batch failed; handling its records one by one");
                }
            }
        }
        for (i, incoming) in &items {
            let message = &batch[*i];
            let outcome = self.handle(message, incoming, fingerprint(message), cancel).await;
            if outcome.is_some() {
                self.committed(incoming, fingerprint(message));
            }
            self.count(outcome);
        }
    }

    /// Notes a record whose effects and position are committed.
    fn committed(&mut self, incoming: &Incoming, fingerprint: Option<String>) {
        let key = (incoming.topic.clone(), incoming.partition);
        let next = incoming.offset + 1;
        if self.unsaved.get(&key).is_some_and(|(n, _)| *n <= next) {
            self.unsaved.remove(&key);
        }
        if self.seen.get(&key).is_none_or(|(n, _)| *n <= next) {
            self.seen.insert(key, (next, fingerprint));
        }
    }

    /// One transaction for one or several records (each with the id of its
    /// record, for the position): inbox entries, effects, and the last
    /// position of each partition.
    async fn attempt(&self, items: &[(&Incoming, Option<String>)]) -> Result<Vec<Outcome>, Failure> {
        let started = Instant::now();
        let mut tx = self.store.begin().await.map_err(Failure::from)?;
        let mut outcomes = Vec::with_capacity(items.len());
        let mut positions: HashMap<PartitionKey, ConsumerPosition> = HashMap::new();
        let mut handled_times = Vec::with_capacity(items.len());
        let ids: Vec<EventId> = items.iter().map(|(incoming, _)| incoming.envelope.id).collect();
        let fresh = tx.inbox_record_many(&self.config.name, &ids).await.map_err(Failure::from)?;
        for ((incoming, record_id), fresh) in items.iter().zip(fresh) {
            if fresh {
                let span = tracing::info_span!("record", order_id = %incoming.key,
                    correlation_id = %incoming.envelope.correlation_id, subject = %incoming.envelope.subject,
                    udders.service = %self.config.name, otel.name = tracing::field::Empty,
                    otel.kind = "consumer");
                if crate::trace::enabled() {
                    let name = incoming.envelope.subject.levels().take(2).collect::<Vec<_>>().join("/");
                    span.record("otel.name", format!("{} handles {name}", self.config.name));
                    crate::trace::continue_trace(&span, incoming.envelope.traceparent.as_deref());
                }
                let call = Instant::now();
                self.handler.handle(&mut tx, incoming).instrument(span).await.map_err(Failure::from)?;
                self.latency.handler.observe(call.elapsed());
                handled_times.push(incoming.envelope.time);
            }
            outcomes.push(if fresh { Outcome::Handled } else { Outcome::Duplicate });
            positions.insert(
                (incoming.topic.clone(), incoming.partition),
                ConsumerPosition {
                    topic: incoming.topic.clone(),
                    partition: incoming.partition,
                    next_offset: incoming.offset + 1,
                    last_record: record_id.clone(),
                },
            );
        }
        for position in positions.values() {
            tx.save_position(&self.config.name, position).await.map_err(Failure::from)?;
        }
        tx.commit().await.map_err(Failure::from)?;
        let elapsed = started.elapsed();
        self.latency.transaction.observe(elapsed);
        let now = wall_clock();
        for time in handled_times {
            let micros = u64::try_from(now.micros().saturating_sub(time.micros())).unwrap_or(0);
            self.latency.hop.observe(Duration::from_micros(micros));
        }
        tracing::debug!(target: "udders_messaging::batch", consumer = %self.config.name, records = items.len(),
            elapsed_us = elapsed.as_micros() as u64, "batch committed");
        Ok(outcomes)
    }

    /// `Ok(None)`: no route wants it. `Err`: malformed, with the reason.
    fn parse(&self, message: &OwnedMessage) -> Result<Option<Incoming>, String> {
        let headers: Vec<(&str, Option<&[u8]>)> =
            message.headers().map(|h| h.iter().map(|h| (h.key, h.value)).collect()).unwrap_or_default();
        parse_record(
            &self.config,
            RawRecord {
                topic: message.topic(),
                partition: message.partition(),
                offset: message.offset(),
                key: message.key(),
                payload: message.payload(),
                headers,
            },
        )
    }

    async fn handle(
        &mut self,
        message: &OwnedMessage,
        incoming: &Incoming,
        fingerprint: Option<String>,
        cancel: &CancellationToken,
    ) -> Option<Outcome> {
        let one = [(incoming, fingerprint)];
        let mut attempts = 0;
        let mut first_failed_at = None;
        let mut backoff = Backoff::new(self.config.retry_backoff, Duration::from_secs(2));
        loop {
            match self.attempt(&one).await {
                Ok(outcomes) => return outcomes.first().copied(),
                Err(Failure::Store(error)) => {
                    // The database, not the record: wait for it, never dead-letter.
                    tracing::warn!(consumer = %self.config.name, %error, "store unavailable; retrying");
                }
                Err(Failure::Handler(error)) => {
                    attempts += 1;
                    first_failed_at.get_or_insert_with(wall_clock);
                    if error.permanent || attempts >= self.config.max_attempts {
                        let reason = format!("handler failed: {error}");
                        return Some(self.dead_letter(message, &reason, attempts, first_failed_at, cancel).await);
                    }
                    tracing::debug!(consumer = %self.config.name, attempts, %error, "handler failed; retrying");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return None,
                () = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    /// Parks a record in the service's database with the position past it
    /// (retrying while the database is away), then sends a copy to the
    /// dead-letter topic for tools that read it (retrying until the broker
    /// takes it).
    async fn dead_letter(
        &mut self,
        message: &OwnedMessage,
        reason: &str,
        attempts: u32,
        first_failed_at: Option<Timestamp>,
        cancel: &CancellationToken,
    ) -> Outcome {
        tracing::warn!(consumer = %self.config.name, topic = message.topic(), partition = message.partition(),
            offset = message.offset(), %reason, attempts, "dead-lettering a record");
        let now = wall_clock();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let headers: Vec<(String, Option<String>)> = message
            .headers()
            .map(|h| h.iter().map(|h| (h.key.to_owned(), h.value.map(text))).collect())
            .unwrap_or_default();
        let subject =
            headers.iter().find(|(k, _)| k == udders_contracts::envelope::SUBJECT).and_then(|(_, v)| v.clone());
        let letter = NewDeadLetter {
            consumer: self.config.name.clone(),
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            subject,
            key: message.key().map(text),
            reason: reason.to_owned(),
            attempts,
            first_failed_at: first_failed_at.unwrap_or(now),
            last_failed_at: now,
            headers,
            payload: message.payload().map(<[u8]>::to_vec),
        };
        let position = ConsumerPosition {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            next_offset: message.offset() + 1,
            last_record: fingerprint(message),
        };
        let mut backoff = Backoff::outage();
        loop {
            match self.store.park_dead_letter(&letter, &position).await {
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(consumer = %self.config.name, %error, "cannot park a dead letter; retrying");
                    tokio::select! {
                        () = cancel.cancelled() => return Outcome::DeadLettered,
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
        self.unsaved.remove(&(position.topic, position.partition));
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for h in original.iter() {
                headers = headers.insert(Header { key: h.key, value: h.value });
            }
        }
        let (partition, offset, attempts_text) =
            (message.partition().to_string(), message.offset().to_string(), attempts.to_string());
        for (key, value) in [
            (dead_letter::ORIGINAL_TOPIC, message.topic()),
            (dead_letter::ORIGINAL_PARTITION, partition.as_str()),
            (dead_letter::ORIGINAL_OFFSET, offset.as_str()),
            (dead_letter::ERROR, reason),
            (dead_letter::ATTEMPTS, attempts_text.as_str()),
            (dead_letter::CONSUMER, self.config.name.as_str()),
        ] {
            headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
        }
        let mut backoff = Backoff::outage();
        loop {
            let mut record = FutureRecord::to(&self.config.dead_letter_topic).headers(headers.clone());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(payload) = message.payload() {
                record = record.payload(payload);
            }
            let producer = match &self.producer {
                Some(producer) => producer,
                None => match self.settings.producer_config().create() {
                    Ok(producer) => self.producer.insert(producer),
                    Err(error) => {
                        tracing::warn!(%error, "cannot create the dead-letter producer; retrying");
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                },
            };
            match producer.send(record, Duration::from_secs(0)).await {
                Ok(_) => break,
                Err((error, _)) => {
                    tracing::warn!(%error, "dead-letter topic unreachable; retrying");
                    if cancel.is_cancelled() {
                        return Outcome::DeadLettered;
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
        Outcome::DeadLettered
    }

    async fn flush_skipped(&mut self) {
        if self.unsaved.is_empty() {
            return;
        }
        let positions: Vec<ConsumerPosition> = self
            .unsaved
            .drain()
            .map(|((topic, partition), (next_offset, last_record))| ConsumerPosition {
                topic,
                partition,
                next_offset,
                last_record,
            })
            .collect();
        self.save_positions(&positions).await;
    }

    async fn save_positions(&self, positions: &[ConsumerPosition]) {
        let mut backoff = Backoff::outage();
        loop {
            let result: Result<(), StoreError> = async {
                let mut tx = self.store.begin().await?;
                for p in positions {
                    tx.save_position(&self.config.name, p).await?;
                }
                tx.commit().await
            }
            .await;
            match result {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(consumer = %self.config.name, %error, "cannot store positions; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
}

impl<H> Drop for Loop<H> {
    /// A loop dropped without stopping (its task aborted, the runtime shut
    /// down) must still let its client close: a group member's close waits
    /// for an unassign that only a closing context makes.
    fn drop(&mut self) {
        let client = self.current.lock().ok().and_then(|mut c| c.take());
        if let Some(client) = client {
            client.context().closing.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

enum Failure {
    /// The store failed (or a handler saw it fail): wait, never blame the record.
    Store(String),
    /// The handler refused the record.
    Handler(HandlerError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error.to_string())
    }
}

impl From<HandlerError> for Failure {
    fn from(error: HandlerError) -> Self {
        if error.outage { Failure::Store(error.message) } else { Failure::Handler(error) }
    }
}

/// A record as it came off the broker (or out of the dead letters).
#[derive(Debug, Clone)]
pub(crate) struct RawRecord<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) payload: Option<&'a [u8]>,
    pub(crate) headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// Checks a record against the catalog and routes it: `Ok(None)` when no
/// route wants it, `Err` (the reason) when it is malformed.
pub(crate) fn parse_record(config: &ConsumerConfig, record: RawRecord<'_>) -> Result<Option<Incoming>, String> {
    let payload = record.payload.unwrap_or_default();
    let header_bytes: usize = record.headers.iter().map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len)).sum();
    let size = payload.len() + record.key.map_or(0, <[u8]>::len) + header_bytes;
    if size > config.max_record_bytes {
        return Err(format!("record of {size} bytes is over the limit of {} bytes", config.max_record_bytes));
    }
    let envelope = Envelope::from_headers(record.headers).map_err(|e| e.to_string())?;
    let Some((route, _)) = config.routes.iter().find(|(_, p)| p.matches(&envelope.subject)) else {
        return Ok(None);
    };
    if config.routes_elsewhere.contains(route) {
        return Ok(None);
    }
    let spec = config
        .catalog
        .spec_of(&envelope.subject)
        .ok_or_else(|| format!("no catalogued event has the subject {} (unknown type or version)", envelope.subject))?;
    if spec.cloudevents_type() != envelope.event_type {
        return Err(format!(
            "ce_type {:?} does not belong to subject {} (expected {:?})",
            envelope.event_type,
            envelope.subject,
            spec.cloudevents_type()
        ));
    }
    let key = record.key.map(|k| std::str::from_utf8(k).map_err(|_| "the key is not UTF-8".to_owned()));
    let key = key.transpose()?.ok_or("the record has no key")?.to_owned();
    let payload: Value = serde_json::from_slice(payload).map_err(|e| format!("the value is not JSON: {e}"))?;
    Ok(Some(Incoming {
        route: route.clone(),
        envelope,
        key,
        payload,
        topic: record.topic.to_owned(),
        partition: record.partition,
        offset: record.offset,
    }))
}

/// Now, from the system clock, for the dead letters' failure times.
pub(crate) fn wall_clock() -> Timestamp {
    let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    Timestamp::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}
