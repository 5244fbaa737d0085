//! A batch of fetched records: each passes its partition's gate, is parsed
//! and routed, and the routed ones are handled in one transaction (inbox
//! entries, effects, positions); when that fails, one by one, retried as
//! `retry` decides, until the dead letters take them. What became of each
//! record is counted, and the handler calls and transactions timed.

use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::message::{Headers, OwnedMessage};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use udders_eventstore::{ConsumerPosition, StoreError};
use udders_kernel::EventId;

use super::partitions::{PartitionKey, Passage, Position};
use super::record::fingerprint;
use super::retry::{Next, Retries};
use super::shell::Loop;
use super::{Handler, HandlerError, Incoming, RawRecord, TransactionPhase, parse_record, wall_clock};

/// What to do after a batch.
pub(super) enum Step {
    Continue,
    Reassign,
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Handled,
    Duplicate,
    Skipped,
    DeadLettered,
}

enum Failure {
    /// The store failed (or a handler saw it fail): wait, never blame the record.
    Store(String),
    /// The commit found a stream moved (another writer, or a stream opened
    /// as new that existed, ADR 0021): try again at once, reading it; never
    /// blame the record.
    Conflict(String),
    /// The handler refused the record.
    Handler(HandlerError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        if error.is_conflict() { Failure::Conflict(error.to_string()) } else { Failure::Store(error.to_string()) }
    }
}

impl From<HandlerError> for Failure {
    fn from(error: HandlerError) -> Self {
        if error.outage { Failure::Store(error.message) } else { Failure::Handler(error) }
    }
}

impl<H: Handler> Loop<H> {
    /// Applies the partition's gate, if it has one, to a record.
    fn gate(&mut self, message: &OwnedMessage) -> Passage {
        let key = (message.topic().to_owned(), message.partition());
        if !self.partitions.is_gated(&key) {
            return Passage::Handle;
        }
        let passage = self.partitions.gate(&key, message.offset(), fingerprint(message), Instant::now());
        if passage == Passage::Replay {
            tracing::warn!(consumer = %self.config.name, topic = %key.0, partition = key.1,
                "the log is shorter than this position (broker lost it?): replaying the partition");
        }
        passage
    }

    /// Gates, parses and routes a batch of records; handles the routed ones
    /// in one transaction. Records ahead of a malformed one (or of a
    /// re-assignment) are committed first, so no stored position ever passes
    /// a record that was not handled.
    pub(super) async fn process_batch(&mut self, batch: &[OwnedMessage], cancel: &CancellationToken) -> Step {
        let mut ready: Vec<(usize, Incoming)> = Vec::new();
        for (i, message) in batch.iter().enumerate() {
            match self.gate(message) {
                Passage::Skip => continue,
                Passage::Reassign => {
                    self.handle_ready(batch, &mut ready, cancel).await;
                    // The rest of the batch is dropped: a fresh client reads
                    // it again; a seek (in a group) must rewind to it.
                    for later in &batch[i + 1..] {
                        self.partitions.dropped((later.topic().to_owned(), later.partition()), later.offset());
                    }
                    return Step::Reassign;
                }
                Passage::Handle | Passage::Replay => {}
            }
            let key: PartitionKey = (message.topic().to_owned(), message.partition());
            let next = Position { next: message.offset() + 1, last: fingerprint(message) };
            match self.parse(message) {
                Err(reason) => {
                    self.handle_ready(batch, &mut ready, cancel).await;
                    let outcome = self.dead_letter(message, &reason, 0, None, cancel).await;
                    self.partitions.read_past(key, next);
                    self.count(Some(outcome));
                }
                Ok(None) => {
                    self.partitions.skipped(key, next);
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
                Err(Failure::Store(error) | Failure::Conflict(error)) => {
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
    fn committed(&mut self, incoming: &Incoming, record_id: Option<String>) {
        let key = (incoming.topic.clone(), incoming.partition);
        self.partitions.committed(key, Position { next: incoming.offset + 1, last: record_id });
    }

    /// One transaction for one or several records (each with the id of its
    /// record, for the position): inbox entries, effects, and the last
    /// position of each partition.
    async fn attempt(&self, items: &[(&Incoming, Option<String>)]) -> Result<Vec<Outcome>, Failure> {
        let started = Instant::now();
        let mut tx = self.store.begin().await.map_err(Failure::from)?;
        let held = Instant::now();
        let mut outcomes = Vec::with_capacity(items.len());
        // Each record's position; `save_positions` keeps a partition's last.
        let mut positions: Vec<ConsumerPosition> = Vec::with_capacity(items.len());
        let mut handled_times = Vec::with_capacity(items.len());
        let ids: Vec<EventId> = items.iter().map(|(incoming, _)| incoming.envelope.id).collect();
        let fresh = tx.inbox_record_many(&self.config.name, &ids).await.map_err(Failure::from)?;
        let inboxed = Instant::now();
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
            positions.push(ConsumerPosition {
                topic: incoming.topic.clone(),
                partition: incoming.partition,
                next_offset: incoming.offset + 1,
                last_record: record_id.clone(),
            });
        }
        let handled = Instant::now();
        tx.save_positions(&self.config.name, &positions).await.map_err(Failure::from)?;
        // What waits is written now rather than inside the commit, so the
        // two are timed apart.
        tx.flush().await.map_err(Failure::from)?;
        let written = Instant::now();
        tx.commit().await.map_err(Failure::from)?;
        let committed = Instant::now();
        let elapsed = committed - started;
        self.latency.transaction.observe(elapsed);
        let marks = [started, held, inboxed, handled, written, committed];
        for (phase, span) in TransactionPhase::ALL.into_iter().zip(marks.windows(2)) {
            self.latency.phase(phase).observe(span[1] - span[0]);
        }
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

    /// Handles one record in a transaction of its own, retrying as long as
    /// the store fails and until the handler's attempts are used up (then
    /// dead-letters it). `None` when cancelled meanwhile.
    async fn handle(
        &mut self,
        message: &OwnedMessage,
        incoming: &Incoming,
        fingerprint: Option<String>,
        cancel: &CancellationToken,
    ) -> Option<Outcome> {
        let one = [(incoming, fingerprint)];
        let mut retries = Retries::new(self.config.retry_backoff, self.config.max_attempts);
        let mut first_failed_at = None;
        let mut conflicts = 0;
        loop {
            let delay = match self.attempt(&one).await {
                Ok(outcomes) => return outcomes.first().copied(),
                Err(Failure::Store(error)) => {
                    // The database, not the record: wait for it, never dead-letter.
                    tracing::warn!(consumer = %self.config.name, %error, "store unavailable; retrying");
                    retries.store_failed()
                }
                Err(Failure::Conflict(error)) => {
                    // The retry reads what moved: at once the first time.
                    tracing::debug!(consumer = %self.config.name, %error, "a stream moved meanwhile; retrying");
                    conflicts += 1;
                    if conflicts == 1 { Duration::ZERO } else { retries.store_failed() }
                }
                Err(Failure::Handler(error)) => {
                    first_failed_at.get_or_insert_with(wall_clock);
                    match retries.handler_failed(error.permanent) {
                        Next::GiveUp { attempts } => {
                            let reason = format!("handler failed: {error}");
                            return Some(self.dead_letter(message, &reason, attempts, first_failed_at, cancel).await);
                        }
                        Next::Retry { after, attempts } => {
                            tracing::debug!(consumer = %self.config.name, attempts, %error, "handler failed; retrying");
                            after
                        }
                    }
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return None,
                () = tokio::time::sleep(delay) => {}
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
}
