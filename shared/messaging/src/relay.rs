//! The relay: publishes outbox rows to Kafka and marks them published once
//! the broker acknowledged them.
//!
//! How it takes rows depends on who else may: relays of several instances
//! sharing a database claim rows with a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL), two writes per batch. The only relay of a store whose
//! process is the database's only writer ([`EventStore::is_exclusive`]:
//! SQLite) takes the rows each commit hands over in memory while they
//! follow the last it sent without a gap, and otherwise reads the
//! unpublished rows past that one (see the store's `handover.rs`); neither
//! costs a write. It marks what the broker acknowledged in one write when a
//! read finds nothing new, after a failed send, every `batch` rows, or
//! [`MARK_EVERY`] after its last mark, whichever comes first (an empty
//! hand-over is a signal whose rows an earlier take had: it waits for
//! [`MARK_EVERY`]); after a mark it reads from the start again, so rows
//! re-queued meanwhile, or left by a failed send, are not missed. A row
//! sent but not yet marked when the process dies is sent again after the
//! restart; consumers' inboxes drop the duplicate. A round that sent less
//! than a batch waits for the next commit's signal instead of looking
//! again: the signal keeps a permit, so a commit made during the round is
//! not missed.
//!
//! Many sends are in flight at once (one claimed batch), each awaited on its
//! delivery report; nothing is flushed per message. The relay wakes on the
//! store's outbox signal after every commit, and polls as a fallback. While
//! the broker is away it retries with backoff and loses nothing: a row is
//! marked published only after its acknowledgement, and a claim it could not
//! finish is released (or expires) and is claimed again. A relay that
//! starts gives back the claims its name still holds: they belong to its
//! predecessor under that name, killed before it could mark or release them,
//! and waiting out their lease would leave them unpublished that long.
//!
//! A broker that comes back empty: the relay recreates its topic, and when
//! the topic had to be created, or its client saw every broker go away (a
//! separate `udders broker` recreates the topics itself when it restarts),
//! it re-queues the rows published within `republish_window`, so that
//! consumers can read what the broker lost. Inboxes drop what they had.

use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;
use udders_eventstore::{ClaimedMessage, EventStore};

use crate::MessagingError;
use crate::backoff::Backoff;
use crate::broker::wait_for_broker;
use crate::clients::SharedProducer;
use crate::kafka::{KafkaSettings, WatchfulContext};
use crate::topics::ensure_topics;

/// The longest an exclusive store's relay leaves acknowledged rows unmarked
/// while it keeps sending (and how soon it marks them once quiet).
pub const MARK_EVERY: Duration = Duration::from_millis(100);

/// How a relay behaves.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Names this relay's claims (for example `credit-1`). A relay that
    /// starts takes back the claims of an earlier one of its name, so each
    /// live instance needs its own.
    pub relay_id: String,
    /// The topic this relay's service owns; recreated when missing.
    pub topic: String,
    /// Rows claimed and sent at once.
    pub batch: u32,
    /// How long a claim is held before another relay may take it.
    pub lease: Duration,
    /// How often to look for rows when no commit signalled any.
    pub poll_interval: Duration,
    /// Rows published this recently are sent again after the broker came back empty.
    pub republish_window: Duration,
    /// The longest wait between retries while the broker is away.
    pub max_backoff: Duration,
    /// How long a shutdown may spend publishing what is left.
    pub drain_timeout: Duration,
}

impl RelayConfig {
    /// The default [`RelayConfig::republish_window`]: ten minutes.
    pub const DEFAULT_REPUBLISH_WINDOW: Duration = Duration::from_secs(600);

    /// Defaults for the relay of `topic`.
    pub fn new(relay_id: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            relay_id: relay_id.into(),
            topic: topic.into(),
            batch: 1000,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            republish_window: Self::DEFAULT_REPUBLISH_WINDOW,
            max_backoff: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// A relay for one store.
pub struct Relay {
    store: EventStore,
    settings: KafkaSettings,
    config: RelayConfig,
    /// The client this relay sends through, taken from `shared`.
    producer: FutureProducer<WatchfulContext>,
    shared: SharedProducer,
    /// The losses of every broker this relay has acted on.
    losses_seen: u64,
    /// `Some` for the only relay of an exclusive store: where it stands.
    cursor: Option<Cursor>,
}

/// The only relay's place in its outbox.
#[derive(Debug)]
struct Cursor {
    /// Every unpublished row up to here has been sent (0: read from the start).
    after: i64,
    /// Rows the broker acknowledged that are not marked published yet.
    unmarked: Vec<i64>,
    /// When they were last marked.
    marked_at: Instant,
}

impl Default for Cursor {
    fn default() -> Self {
        Self { after: 0, unmarked: Vec::new(), marked_at: Instant::now() }
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("config", &self.config).finish()
    }
}

impl Relay {
    /// A relay publishing `store`'s outbox through the brokers of
    /// `settings`, with a producer of its own.
    pub fn new(store: EventStore, settings: KafkaSettings, config: RelayConfig) -> Result<Self, MessagingError> {
        let shared = SharedProducer::new(&settings)?;
        Ok(Self::with_producer(store, settings, config, shared))
    }

    /// A relay that sends through `shared`, the producer of every relay of
    /// this process.
    pub fn with_producer(
        store: EventStore,
        settings: KafkaSettings,
        config: RelayConfig,
        shared: SharedProducer,
    ) -> Self {
        // A loss counted after the client was made is one to act on.
        let (producer, losses_seen) = shared.current();
        let cursor = store.is_exclusive().then(Cursor::default);
        if cursor.is_some() {
            store.start_outbox_hand_over();
        }
        Self { store, settings, config, producer, shared, losses_seen, cursor }
    }

    /// Makes sure the topic exists; when it had to be created (a new or an
    /// emptied broker), re-queues the recent window. Returns the rows re-queued.
    pub async fn recover(&mut self) -> Result<u64, MessagingError> {
        self.recover_after(false).await
    }

    /// [`Self::recover`]; `lost`: every broker went away meanwhile, so the
    /// log may be gone even though the topic exists.
    async fn recover_after(&mut self, lost: bool) -> Result<u64, MessagingError> {
        let created = ensure_topics(&self.settings, std::slice::from_ref(&self.config.topic)).await?;
        if created == 0 && !lost {
            return Ok(0);
        }
        self.mark_acked().await?;
        let requeued = self.store.unpublish_recent(self.config.republish_window).await?;
        if requeued > 0 {
            tracing::warn!(topic = %self.config.topic, requeued, "the broker may have lost its log (topic missing, or every broker went away): publishing the recent window again");
        }
        Ok(requeued)
    }

    /// Takes one batch (claims it, or reads what is unpublished and not sent
    /// yet), sends it, and marks what was acknowledged. Returns how many rows
    /// were published.
    pub async fn publish_once(&mut self) -> Result<usize, MessagingError> {
        let (rows, handed_over) = match &self.cursor {
            None => {
                (self.store.claim_outbox(&self.config.relay_id, self.config.batch, self.config.lease).await?, false)
            }
            Some(cursor) => match self.store.handed_over_after(cursor.after, self.config.batch) {
                Some(rows) => (rows, true),
                None => (self.store.unpublished_after(cursor.after, self.config.batch).await?, false),
            },
        };
        if rows.is_empty() {
            // Nothing new: mark what was acknowledged. An empty hand-over
            // (a commit's signal whose rows an earlier take had) keeps the
            // relay's place until the usual time to mark comes.
            let due = self.cursor.as_ref().is_none_or(|c| c.marked_at.elapsed() >= MARK_EVERY);
            if !handed_over || due {
                self.mark_acked().await?;
            }
            return Ok(0);
        }
        let sends = rows.iter().map(|row| self.send(row));
        let results = join_all(sends).await;
        let (mut done, mut failed, mut missing_topic, mut first_error) = (Vec::new(), Vec::new(), false, None);
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(()) => done.push(row.id),
                Err(e) => {
                    missing_topic |= e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition);
                    failed.push(row.id);
                    first_error.get_or_insert(e);
                }
            }
        }
        let published = done.len();
        match &mut self.cursor {
            None if !done.is_empty() => {
                self.store.mark_published(&done).await?;
            }
            None => {}
            Some(cursor) => {
                cursor.after = rows.last().map_or(cursor.after, |r| r.id);
                cursor.unmarked.append(&mut done);
                // After a failed send, mark what was acknowledged and read
                // from the start: the failed rows are in the outbox, not in
                // the hand-over any more.
                if !failed.is_empty()
                    || cursor.unmarked.len() >= self.config.batch as usize
                    || cursor.marked_at.elapsed() >= MARK_EVERY
                {
                    self.mark_acked().await?;
                }
            }
        }
        if let Some(error) = first_error {
            if self.cursor.is_none() {
                self.store.release_claims(&failed).await?;
            }
            if missing_topic {
                self.recover().await?;
            }
            return Err(MessagingError::Publish { failed: failed.len(), published, source: error });
        }
        Ok(published)
    }

    /// Marks the rows sent and acknowledged since the last mark; the next
    /// read starts from the first unpublished row.
    async fn mark_acked(&mut self) -> Result<(), MessagingError> {
        if let Some(cursor) = &mut self.cursor {
            if !cursor.unmarked.is_empty() {
                self.store.mark_published(&cursor.unmarked).await?;
                cursor.unmarked.clear();
            }
            cursor.after = 0;
            cursor.marked_at = Instant::now();
        }
        Ok(())
    }

    async fn send(&self, row: &ClaimedMessage) -> Result<(), rdkafka::error::KafkaError> {
        let headers = crate::outbound::record_headers(&row.message.headers);
        let record =
            FutureRecord::to(&row.message.topic).key(&row.message.key).payload(&row.message.payload).headers(headers);
        let sending = self.producer.send(record, Duration::from_secs(0));
        if !crate::trace::enabled() {
            return sending.await.map(|_| ()).map_err(|(e, _)| e);
        }
        // A span from the send to the broker's acknowledgement, in the trace
        // of the span that recorded the event.
        let header = |name: &str| row.message.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let span = tracing::info_span!("send", otel.name = %format!("send {}", header(udders_contracts::envelope::SUBJECT).unwrap_or("?")),
            otel.kind = "producer", udders.relay = %self.config.relay_id, messaging.destination.name = %row.message.topic);
        crate::trace::continue_trace(&span, header(udders_contracts::envelope::TRACEPARENT));
        tracing::Instrument::instrument(sending, span).await.map(|_| ()).map_err(|(e, _)| e)
    }

    /// Runs until cancelled, then publishes what is left (bounded by
    /// `drain_timeout`). Every send it made has been awaited, so there is
    /// nothing of its own to flush (and the producer may be shared).
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), MessagingError> {
        if self.cursor.is_none() {
            self.release_predecessors_claims().await;
        }
        // One doubling delay for every wait on the broker: a send, a new
        // producer, a recovery; a success starts it over.
        let mut backoff = Backoff::new(Duration::from_millis(50), self.config.max_backoff);
        let mut recovered = false;
        let mut lost = false;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let losses = self.shared.losses();
            if losses > self.losses_seen {
                // The producer's id and sequence numbers belong to the broker
                // that went away: start over with a new producer (the first
                // relay to get here makes it for all).
                match self.shared.renewed(losses) {
                    Ok((producer, made_after)) => {
                        (self.producer, self.losses_seen) = (producer, made_after);
                        recovered = false;
                        lost = true;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "relay could not make a new producer; retrying");
                        if !backoff.wait(&cancel).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            if !recovered {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    result = wait_for_broker(&self.settings, Duration::from_secs(2)) => {
                        if result.is_err() { continue; }
                    }
                }
                match self.recover_after(lost).await {
                    Ok(_) => (recovered, lost) = (true, false),
                    Err(error) => {
                        tracing::warn!(%error, "relay cannot reach the broker yet");
                        if !backoff.wait(&cancel).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            match self.publish_once().await {
                // A full batch: there may be more.
                Ok(n) if n as u32 >= self.config.batch => backoff.reset(),
                Ok(_) => {
                    backoff.reset();
                    // Rows sent and not marked: look again soon, to mark them
                    // once quiet (an empty look marks).
                    let unmarked = self.cursor.as_ref().is_some_and(|c| !c.unmarked.is_empty());
                    let wait = if unmarked { MARK_EVERY } else { self.config.poll_interval };
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = self.store.outbox_signal().notified() => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, backoff = ?backoff.upcoming(), "relay could not publish; retrying");
                    if !backoff.wait(&cancel).await {
                        break;
                    }
                }
            }
        }
        self.drain().await
    }

    /// Gives back what a relay of this name claimed before this one started
    /// (a process killed and started again). Should that fail, the lease
    /// expires and the rows are claimed again then.
    async fn release_predecessors_claims(&self) {
        match self.store.release_claims_of(&self.config.relay_id).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(relay = %self.config.relay_id, released,
                "took back the outbox rows an earlier relay of this name had claimed and not published"),
            Err(error) => tracing::warn!(%error, relay = %self.config.relay_id,
                "could not take back an earlier relay's claims; they are claimed again when their lease runs out"),
        }
    }

    async fn drain(&mut self) -> Result<(), MessagingError> {
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, self.publish_once()).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "relay stopped with rows unpublished; they stay in the outbox");
                    break;
                }
            }
        }
        if let Err(error) = self.mark_acked().await {
            tracing::warn!(%error, "relay stopped before marking what it sent; it is sent again after a restart");
        }
        Ok(())
    }
}
