//! The transaction a handler does all its work in, as a unit of work.
//!
//! Reads go to the database; writes made through the typed API wait in the
//! transaction and go out at commit, each kind in as few statements as the
//! dialect allows: one insert for every event recorded (whatever the streams),
//! one for the outbox rows, one upsert for the snapshots and one for the
//! documents. A handler that records on three aggregates and projects two
//! documents pays for those four statements once per consumer batch, not
//! once per record. What the transaction has written stays visible to it:
//! a second load of an aggregate returns the state after the events
//! recorded so far, a document read returns the one put.
//!
//! Optimistic concurrency is kept: each pending event carries the version
//! its stream had when the transaction first recorded on it, and the insert
//! writes nothing for a stream that has moved since (or that a unique key
//! finds taken), which fails the commit with [`StoreError::Conflict`].
//!
//! With a cache ([`StoreOptions::cache_capacity`](crate::StoreOptions)),
//! loads and document reads take from it and a commit gives back what the
//! transaction holds (see `cache.rs`).

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection, Transaction};
use udders_kernel::EventId;

use crate::cache::{Cached, Key};
use crate::documents::Document;
use crate::error::{Context, StoreError};
use crate::model::{
    Appended, ClaimedMessage, ConsumerPosition, ExpectedVersion, NewEvent, OutboxMessage, RecordedEvent,
    SnapshotRecord, StreamId,
};
use crate::store::{Conn, EventStore, dispatch};
use crate::{postgres, sql, sqlite};

pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl TxInner {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            TxInner::Sqlite(t) => Conn::Sqlite(t),
            TxInner::Postgres(t) => Conn::Postgres(t),
        }
    }
}

/// An event waiting for the commit, at its version in its stream.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub(crate) stream: StreamId,
    pub(crate) version: u64,
    pub(crate) event: NewEvent,
}

impl PendingEvent {
    /// Inserts `events` as one append to `stream` after `expected`, and says
    /// what it wrote.
    pub(crate) async fn append(
        conn: Conn<'_>,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Appended, StoreError> {
        let after = expected.as_u64();
        let pending: Vec<PendingEvent> = (after + 1..)
            .zip(events)
            .map(|(version, event)| PendingEvent { stream: stream.clone(), version, event: event.clone() })
            .collect();
        let last_position = dispatch!(conn, insert_events(&pending))?;
        Ok(Appended { version: after + events.len() as u64, last_position })
    }

    /// For each event, the version its stream must have in the database
    /// before `events` are inserted together: one less than the first
    /// version among them of that stream.
    pub(crate) fn guards(events: &[PendingEvent]) -> Vec<u64> {
        let mut first: HashMap<&str, u64> = HashMap::new();
        for e in events {
            let v = first.entry(e.stream.as_str()).or_insert(e.version);
            *v = (*v).min(e.version);
        }
        events.iter().map(|e| first[e.stream.as_str()] - 1).collect()
    }

    /// The conflict of a multi-stream insert that wrote only `inserted`
    /// rows per stream: the first stream short of its rows.
    pub(crate) fn conflict(events: &[PendingEvent], inserted: &[String]) -> StoreError {
        let guards = Self::guards(events);
        let short = events.iter().zip(&guards).find(|(e, _)| {
            let wanted = events.iter().filter(|x| x.stream == e.stream).count();
            inserted.iter().filter(|s| *s == e.stream.as_str()).count() < wanted
        });
        let (stream, guard) = short.map_or((&events[0].stream, guards[0]), |(e, g)| (&e.stream, *g));
        StoreError::Conflict { stream: stream.to_string(), expected: ExpectedVersion::from_u64(guard) }
    }
}

/// What the transaction has read and what waits to be written.
#[derive(Default)]
struct UnitOfWork {
    /// Aggregates loaded or recorded: their latest version and state.
    aggregates: HashMap<String, (u64, Arc<dyn Any + Send + Sync>)>,
    /// Documents read or put: the latest, and whether it must be written.
    documents: HashMap<(String, String), (Option<Document>, bool)>,
    /// Streams whose events changed outside the typed API (not cacheable).
    raw_streams: Vec<String>,
    events: Vec<PendingEvent>,
    outbox: Vec<OutboxMessage>,
    snapshots: HashMap<String, (StreamId, SnapshotRecord)>,
    /// Streams opened as new without a read ([`Tx::open`]), and whether
    /// events were recorded on them (whose insert proves them new).
    opened: Vec<(StreamId, bool)>,
}

/// One database transaction of a store. Dropped without [`Tx::commit`], it
/// rolls back and leaves no trace: no events, no outbox rows, no inbox entry.
pub struct Tx {
    inner: TxInner,
    store: EventStore,
    /// Its place in the order of transactions holding the writer (cache).
    stamp: u64,
    wrote_outbox: bool,
    /// SQLite: the outbox rows written, with their ids, for the relay's
    /// hand-over once this transaction commits.
    written_outbox: Vec<ClaimedMessage>,
    on_commit: Vec<Box<dyn FnOnce() + Send>>,
    work: UnitOfWork,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("backend", &self.store.backend())
            .field("pending_events", &self.work.events.len())
            .field("pending_outbox", &self.work.outbox.len())
            .field("wrote_outbox", &self.wrote_outbox)
            .field("on_commit", &self.on_commit.len())
            .finish()
    }
}

impl Tx {
    pub(crate) fn new(inner: TxInner, store: EventStore) -> Self {
        let stamp = store.cache().map_or(0, crate::cache::Cache::stamp);
        Tx {
            inner,
            store,
            stamp,
            wrote_outbox: false,
            written_outbox: Vec::new(),
            on_commit: Vec::new(),
            work: UnitOfWork::default(),
        }
    }

    pub(crate) fn conn(&mut self) -> Conn<'_> {
        self.inner.conn()
    }

    /// The SQLite connection of this transaction, for a service's own
    /// tables. Writes of the typed API wait for the commit: call
    /// [`Tx::flush`] first to see them.
    pub fn sqlite(&mut self) -> Option<&mut SqliteConnection> {
        match &mut self.inner {
            TxInner::Sqlite(t) => Some(&mut **t),
            TxInner::Postgres(_) => None,
        }
    }

    /// The PostgreSQL connection of this transaction (see [`Tx::sqlite`]).
    pub fn postgres(&mut self) -> Option<&mut PgConnection> {
        match &mut self.inner {
            TxInner::Postgres(t) => Some(&mut **t),
            TxInner::Sqlite(_) => None,
        }
    }

    /// The store this transaction belongs to.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Writes what waits (events, outbox rows, snapshots, documents) now
    /// instead of at commit. A stream that moved since this transaction
    /// first recorded on it is [`StoreError::Conflict`]; on PostgreSQL that
    /// aborts the transaction.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        let written = self.write_pending().await;
        if let Err(StoreError::Conflict { stream, .. }) = &written {
            self.opened_existing(stream);
        }
        written
    }

    async fn write_pending(&mut self) -> Result<(), StoreError> {
        let events = std::mem::take(&mut self.work.events);
        if !events.is_empty() {
            dispatch!(self.conn(), insert_events(&events))?;
        }
        let outbox = std::mem::take(&mut self.work.outbox);
        if !outbox.is_empty() {
            match &mut self.inner {
                TxInner::Sqlite(t) => {
                    let ids = sqlite::enqueue(t, &outbox).await?;
                    let written =
                        ids.into_iter().zip(outbox).map(|(id, message)| ClaimedMessage { id, attempts: 0, message });
                    self.written_outbox.extend(written);
                }
                TxInner::Postgres(t) => postgres::enqueue(t, &outbox).await?,
            }
            self.wrote_outbox = true;
        }
        let snapshots: Vec<(StreamId, SnapshotRecord)> =
            std::mem::take(&mut self.work.snapshots).into_values().collect();
        if !snapshots.is_empty() {
            dispatch!(self.conn(), save_snapshots(&snapshots))?;
        }
        // Written from where they wait, not from copies: a document is a
        // tree of JSON values, and copying each one cost more than its write.
        let dirty: Vec<&Document> =
            self.work.documents.values().filter(|(_, dirty)| *dirty).filter_map(|(doc, _)| doc.as_ref()).collect();
        if !dirty.is_empty() {
            dispatch!(self.inner.conn(), put_documents(&dirty))?;
            self.work.documents.values_mut().for_each(|(_, dirty)| *dirty = false);
        }
        Ok(())
    }

    /// Appends events to a stream at once (see [`EventStore::append`]),
    /// after writing what waits.
    ///
    /// On PostgreSQL a failed append aborts the whole transaction: drop it and
    /// start again.
    pub async fn append(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Appended, StoreError> {
        if events.is_empty() {
            return Ok(Appended { version: expected.as_u64(), last_position: 0 });
        }
        self.flush().await?;
        self.work.aggregates.remove(stream.as_str());
        // Its own expected version guards a raw append, not the guess.
        self.work.opened.retain(|(opened, _)| opened != stream);
        self.work.raw_streams.push(stream.to_string());
        if let Some(cache) = self.store.cache() {
            cache.touch(&Key::Stream(stream.to_string()), self.stamp);
        }
        PendingEvent::append(self.conn(), stream, expected, events).await
    }

    /// Writes outbox rows; the relay sees them once this transaction commits.
    pub async fn enqueue(&mut self, messages: &[OutboxMessage]) -> Result<(), StoreError> {
        self.work.outbox.extend_from_slice(messages);
        Ok(())
    }

    /// Records that `consumer` handles `event_id`. True the first time; false
    /// when it was already recorded (a duplicate delivery: skip it).
    pub async fn inbox_record(&mut self, consumer: &str, event_id: EventId) -> Result<bool, StoreError> {
        Ok(self.inbox_record_many(consumer, &[event_id]).await?.first().copied().unwrap_or(false))
    }

    /// [`Self::inbox_record`] for a whole batch in one statement: true for
    /// each id recorded now, false for one already there or repeated earlier
    /// in `event_ids`.
    pub async fn inbox_record_many(&mut self, consumer: &str, event_ids: &[EventId]) -> Result<Vec<bool>, StoreError> {
        dispatch!(self.conn(), inbox_record_many(consumer, event_ids))
    }

    /// Stores where `consumer` resumes, with the effects of what it handled.
    pub async fn save_position(&mut self, consumer: &str, position: &ConsumerPosition) -> Result<(), StoreError> {
        self.save_positions(consumer, std::slice::from_ref(position)).await
    }

    /// [`Self::save_position`] for several partitions in one statement; a
    /// partition named twice keeps its last position.
    pub async fn save_positions(&mut self, consumer: &str, positions: &[ConsumerPosition]) -> Result<(), StoreError> {
        let mut last: Vec<ConsumerPosition> = Vec::with_capacity(positions.len());
        for position in positions {
            match last.iter_mut().find(|p| p.topic == position.topic && p.partition == position.partition) {
                Some(earlier) => *earlier = position.clone(),
                None => last.push(position.clone()),
            }
        }
        dispatch!(self.conn(), save_positions(consumer, &last))
    }

    /// The events of a stream above `after_version`, as this transaction sees them.
    pub async fn read_stream(
        &mut self,
        stream: &StreamId,
        after_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.flush().await?;
        sql::read_stream(self.conn(), stream, after_version).await
    }

    /// The version of a stream's last event, as this transaction sees it.
    pub async fn stream_version(&mut self, stream: &StreamId) -> Result<u64, StoreError> {
        if let Some((version, _)) = self.work.aggregates.get(stream.as_str()) {
            return Ok(*version);
        }
        self.flush().await?;
        sql::stream_version(self.conn(), stream).await
    }

    /// Writes (or replaces) a read-model document, at commit.
    pub async fn put_document(&mut self, document: Document) -> Result<(), StoreError> {
        let key = (document.view.clone(), document.key.clone());
        if !self.work.documents.contains_key(&key)
            && let Some(cache) = self.store.cache()
        {
            cache.touch(&Key::Document(key.0.clone(), key.1.clone()), self.stamp);
        }
        self.work.documents.insert(key, (Some(document), true));
        Ok(())
    }

    /// Reads a read-model document as this transaction sees it.
    pub async fn document(&mut self, view: &str, key: &str) -> Result<Option<Document>, StoreError> {
        Ok(self.document_ref(view, key).await?.cloned())
    }

    /// [`Tx::document`], borrowed from the transaction instead of copied:
    /// for a caller that only reads it (a projection decoding its state).
    pub async fn document_ref(&mut self, view: &str, key: &str) -> Result<Option<&Document>, StoreError> {
        let at = (view.to_owned(), key.to_owned());
        if !self.work.documents.contains_key(&at) {
            let cached =
                self.store.cache().and_then(|c| c.take(&Key::Document(at.0.clone(), at.1.clone()), self.stamp));
            let doc = match cached {
                Some(Cached::Document(doc)) => doc,
                _ => sql::get_document(self.conn(), view, key).await?,
            };
            self.work.documents.insert(at.clone(), (doc, false));
        }
        Ok(self.work.documents.get(&at).and_then(|(doc, _)| doc.as_ref()))
    }

    /// Notes that document `key` of `view` does not exist, without a read:
    /// for a document derived from an aggregate that has no events yet.
    pub fn document_is_new(&mut self, view: &str, key: &str) {
        let at = (view.to_owned(), key.to_owned());
        if !self.work.documents.contains_key(&at) {
            if let Some(cache) = self.store.cache() {
                cache.touch(&Key::Document(at.0.clone(), at.1.clone()), self.stamp);
            }
            self.work.documents.insert(at, (None, false));
        }
    }

    /// Deletes every read-model document (before a replay rebuilds them).
    pub async fn clear_documents(&mut self) -> Result<u64, StoreError> {
        self.flush().await?;
        self.work.documents.clear();
        if let Some(cache) = self.store.cache() {
            cache.forget_documents(self.stamp);
        }
        sql::clear_documents(self.conn()).await
    }

    /// Writes (or replaces with a newer) snapshot of a stream, at once.
    pub async fn save_snapshot(&mut self, stream: &StreamId, snapshot: &SnapshotRecord) -> Result<(), StoreError> {
        self.flush().await?;
        dispatch!(self.conn(), save_snapshots(&[(stream.clone(), snapshot.clone())]))
    }

    /// An aggregate this transaction has loaded or recorded on, if its state
    /// is of type `S`.
    pub(crate) fn held<S: Clone + 'static>(&self, stream: &StreamId) -> Option<(u64, S)> {
        let (version, state) = self.work.aggregates.get(stream.as_str())?;
        Some((*version, state.downcast_ref::<S>()?.clone()))
    }

    /// An aggregate from the cache, taken for this transaction.
    pub(crate) fn take_cached<S: Clone + 'static>(&self, stream: &StreamId) -> Option<(u64, S)> {
        match self.store.cache()?.take(&Key::Stream(stream.to_string()), self.stamp)? {
            Cached::Aggregate { version, state } => Some((version, state.downcast_ref::<S>()?.clone())),
            Cached::Document(_) => None,
        }
    }

    /// True when events of `stream` wait for the commit.
    pub(crate) fn has_pending(&self, stream: &StreamId) -> bool {
        self.work.events.iter().any(|e| e.stream == *stream)
    }

    /// Notes the latest state of an aggregate this transaction holds.
    pub(crate) fn hold<S: Send + Sync + 'static>(&mut self, stream: &StreamId, version: u64, state: S) {
        self.work.aggregates.insert(stream.to_string(), (version, Arc::new(state)));
    }

    /// Queues events for the commit, at versions after `expected`.
    pub(crate) fn push_events(
        &mut self,
        stream: &StreamId,
        expected: u64,
        events: Vec<NewEvent>,
    ) -> Result<(), StoreError> {
        // Recording twice on one stream: the second must follow the first.
        if self.work.events.iter().rev().find(|e| e.stream == *stream).is_some_and(|last| last.version != expected) {
            return Err(StoreError::Conflict {
                stream: stream.to_string(),
                expected: ExpectedVersion::from_u64(expected),
            });
        }
        if let Some((_, recorded)) = self.work.opened.iter_mut().find(|(opened, _)| opened == stream) {
            *recorded = true;
        }
        for (i, event) in events.into_iter().enumerate() {
            self.work.events.push(PendingEvent { stream: stream.clone(), version: expected + 1 + i as u64, event });
        }
        Ok(())
    }

    /// Notes a stream opened as new without a read (see [`Tx::open`]).
    pub(crate) fn opened(&mut self, stream: &StreamId) {
        self.work.opened.push((stream.clone(), false));
    }

    /// Reads whether the streams opened as new that nothing was recorded on
    /// exist after all (those with events are proved by their insert).
    async fn prove_opened(&mut self) -> Result<(), StoreError> {
        let unproved: Vec<StreamId> =
            self.work.opened.iter().filter(|(_, recorded)| !recorded).map(|(stream, _)| stream.clone()).collect();
        for stream in unproved {
            if sql::stream_version(self.conn(), &stream).await? > 0 {
                self.opened_existing(stream.as_str());
                return Err(StoreError::Conflict { stream: stream.to_string(), expected: ExpectedVersion::NoStream });
            }
        }
        Ok(())
    }

    /// The commit met a conflict on `conflicted`: the store remembers every
    /// stream this transaction opened as new (any of them may exist, and
    /// the insert names only the first stream short of its rows), so their
    /// next open reads them, and counts a wrong open if `conflicted` is one.
    fn opened_existing(&self, conflicted: &str) {
        if !self.work.opened.is_empty() {
            let wrong = self.work.opened.iter().any(|(stream, _)| stream.as_str() == conflicted);
            tracing::debug!(streams = ?self.work.opened, conflicted, "a conflict; the retry reads the streams opened as new");
            self.store.note_opened_existing(self.work.opened.iter().map(|(stream, _)| stream), wrong);
        }
    }

    /// Queues a snapshot for the commit (the newest per stream wins).
    pub(crate) fn push_snapshot(&mut self, stream: &StreamId, snapshot: SnapshotRecord) {
        self.work.snapshots.insert(stream.to_string(), (stream.clone(), snapshot));
    }

    /// Commits everything this transaction wrote, gives what it holds back
    /// to the cache, then hands the outbox rows it wrote to the relay (on an
    /// exclusive store, see `handover.rs`) and wakes it. A stream
    /// opened as new ([`Tx::open`]) that exists fails it with
    /// [`StoreError::Conflict`].
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.prove_opened().await?;
        self.flush().await?;
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await,
            TxInner::Postgres(t) => t.commit().await,
        }
        .during("committing")?;
        if let Some(cache) = self.store.cache() {
            let raw = &self.work.raw_streams;
            let aggregates = self
                .work
                .aggregates
                .into_iter()
                .filter(|(stream, _)| !raw.contains(stream))
                .map(|(stream, (version, state))| (Key::Stream(stream), Cached::Aggregate { version, state }));
            let documents = self
                .work
                .documents
                .into_iter()
                .map(|((view, key), (doc, _))| (Key::Document(view, key), Cached::Document(doc)));
            cache.give_back(aggregates.chain(documents), self.stamp);
        }
        if self.wrote_outbox {
            if !self.written_outbox.is_empty() {
                self.store.hand_over(self.written_outbox);
            }
            self.store.outbox_signal().notify_one();
        }
        for after in self.on_commit {
            after();
        }
        Ok(())
    }

    /// Runs `after` once this transaction has committed, and never if it
    /// rolls back: for counters that must count only what happened.
    pub fn on_commit(&mut self, after: impl FnOnce() + Send + 'static) {
        self.on_commit.push(Box::new(after));
    }

    /// Rolls back everything this transaction wrote.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(t) => t.rollback().await,
            TxInner::Postgres(t) => t.rollback().await,
        }
        .during("rolling back")
    }
}
