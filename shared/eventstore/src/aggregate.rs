//! Typed aggregates on the store: load = newest usable snapshot + the events
//! after it; record = encode, append, evolve, and snapshot every N events.

use std::fmt;

use serde::Serialize;
use serde_json::Value;
use udders_kernel::{Aggregate, EventId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{EventMetadata, NewEvent, RecordedEvent, SnapshotRecord, StreamId, StreamLoad};
use crate::store::{Conn, EventStore, dispatch};
use crate::tx::Tx;
use crate::{postgres, sql, sqlite};

/// The stream of an aggregate: `A::stream(id)` is `<CATEGORY>-<id>`.
pub trait StreamOf {
    /// The stream of the aggregate with this id.
    fn stream(id: impl fmt::Display) -> StreamId;
}

impl<A: Aggregate> StreamOf for A {
    fn stream(id: impl fmt::Display) -> StreamId {
        StreamId::new(A::CATEGORY, id)
    }
}

/// An aggregate's state as loaded, with the version it folds up to.
pub struct Loaded<A: Aggregate> {
    /// The stream.
    pub stream: StreamId,
    /// The folded state.
    pub state: A::State,
    /// The version of the last event folded in (0 for a new stream).
    pub version: u64,
    /// The version of the snapshot the load started from, if one was used.
    pub snapshot_version: Option<u64>,
    /// How many events were folded on top of the snapshot (or from scratch).
    pub replayed: usize,
}

impl<A: Aggregate> fmt::Debug for Loaded<A>
where
    A::State: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaded")
            .field("stream", &self.stream)
            .field("state", &self.state)
            .field("version", &self.version)
            .field("snapshot_version", &self.snapshot_version)
            .field("replayed", &self.replayed)
            .finish()
    }
}

/// Encodes one event of an adjacently tagged enum as (type, payload).
pub fn encode_event<E: Serialize>(event: &E) -> Result<(String, Value), StoreError> {
    let bad = |reason: String| StoreError::Encode { what: "an event".into(), reason };
    match serde_json::to_value(event).map_err(|e| bad(e.to_string()))? {
        Value::Object(mut fields) => match fields.remove("type") {
            Some(Value::String(event_type)) => Ok((event_type, fields.remove("data").unwrap_or(Value::Null))),
            _ => Err(bad("event enums must be #[serde(tag = \"type\", content = \"data\")]".into())),
        },
        _ => Err(bad("event enums must serialise to a JSON object".into())),
    }
}

/// Decodes a stored event into the aggregate's event type, upcasting it first.
pub fn decode_event<A: Aggregate>(event: &RecordedEvent) -> Result<A::Event, StoreError> {
    let unknown = |reason: String| StoreError::UnknownEvent {
        stream: event.stream.clone(),
        version: event.version,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        reason,
    };
    let payload = A::upcast(&event.event_type, event.schema_version, event.payload.clone()).map_err(unknown)?;
    let mut tagged = serde_json::Map::with_capacity(2);
    tagged.insert("type".into(), Value::String(event.event_type.clone()));
    if !payload.is_null() {
        tagged.insert("data".into(), payload);
    }
    serde_json::from_value(Value::Object(tagged)).map_err(|e| unknown(e.to_string()))
}

async fn load_from<A: Aggregate>(mut conn: Conn<'_>, stream: StreamId) -> Result<Loaded<A>, StoreError> {
    let StreamLoad { snapshot, mut events, head } = dispatch!(&mut conn, load_stream(&stream))?;
    let (mut state, mut from) = (A::initial_state(), 0);
    if let Some(snapshot) = snapshot {
        let restored = if snapshot.state_schema != A::STATE_SCHEMA {
            tracing::debug!(%stream, found = snapshot.state_schema, current = A::STATE_SCHEMA, "snapshot of another state schema ignored");
            None
        } else {
            serde_json::from_value(snapshot.state)
                .map_err(|error| tracing::warn!(%stream, %error, "unreadable snapshot ignored; rebuilding from events"))
                .ok()
        };
        match restored {
            Some(restored) => (state, from) = (restored, snapshot.version),
            None => events = sql::read_stream(conn.reborrow(), &stream, 0).await?,
        }
    }
    let ahead = match events.first() {
        Some(first) => first.version != from + 1,
        None => from > 0 && head != from,
    };
    if ahead {
        // Cannot happen through this API (snapshots commit with their events),
        // but a restored backup can produce it: never trust such a snapshot.
        tracing::warn!(%stream, snapshot = from, "snapshot does not match the stream; rebuilding from events");
        (state, from) = (A::initial_state(), 0);
        events = sql::read_stream(conn.reborrow(), &stream, 0).await?;
    }
    let snapshot_version = (from > 0).then_some(from);
    let (state, version) = fold_recorded::<A>(state, from, &events)?;
    Ok(Loaded { stream, state, version, snapshot_version, replayed: events.len() })
}

/// Decodes and folds stored events into `state` (at `version`); returns the
/// new state and the version of the last event.
fn fold_recorded<A: Aggregate>(
    mut state: A::State,
    mut version: u64,
    events: &[RecordedEvent],
) -> Result<(A::State, u64), StoreError> {
    for recorded in events {
        state = A::evolve(state, &decode_event::<A>(recorded)?);
        version = recorded.version;
    }
    Ok((state, version))
}

impl EventStore {
    /// Loads an aggregate: its newest usable snapshot plus the events after it.
    pub async fn load<A: Aggregate>(&self, id: impl fmt::Display) -> Result<Loaded<A>, StoreError> {
        let mut reader = self.reader().await?;
        load_from::<A>(reader.conn(), A::stream(id)).await
    }

    /// Loads an aggregate by replaying every event, ignoring snapshots.
    pub async fn load_without_snapshot<A: Aggregate>(&self, id: impl fmt::Display) -> Result<Loaded<A>, StoreError> {
        let stream = A::stream(id);
        let events = self.read_stream(&stream, 0).await?;
        let (state, version) = fold_recorded::<A>(A::initial_state(), 0, &events)?;
        Ok(Loaded { stream, state, version, snapshot_version: None, replayed: events.len() })
    }
}

impl Tx {
    /// Loads an aggregate inside this transaction: as this transaction left
    /// it if it holds it already, else from the cache, else from the
    /// database (newest usable snapshot plus the events after it).
    pub async fn load<A: Aggregate>(&mut self, id: impl fmt::Display) -> Result<Loaded<A>, StoreError> {
        let stream = A::stream(id);
        match self.known::<A>(&stream) {
            Some(loaded) => Ok(loaded),
            None => self.read::<A>(stream).await,
        }
    }

    /// Opens an aggregate this transaction most likely creates: one keyed
    /// by an order that the reaction at hand starts (validating a placed
    /// order, reserving its stock), so that a read would find nothing. As
    /// [`Tx::load`] when the transaction or the cache holds it; otherwise
    /// its initial state, without a read. The commit proves the guess: the
    /// insert of its first event finds the stream taken, or, when nothing
    /// was recorded on it, one read finds it there; either fails the commit
    /// with [`StoreError::Conflict`], and the store remembers the stream, so
    /// the retry reads it. A wrong guess costs a retry, never a decision
    /// committed on the wrong state. Until the commit the state is a guess:
    /// a handler that acts outside the transaction before it commits (calls
    /// a card gateway, sends a message) must [`Tx::load`] instead.
    pub async fn open<A: Aggregate>(&mut self, id: impl fmt::Display) -> Result<Loaded<A>, StoreError> {
        let stream = A::stream(id);
        if let Some(loaded) = self.known::<A>(&stream) {
            return Ok(loaded);
        }
        if self.store().take_opened_existing(&stream) {
            return self.read::<A>(stream).await;
        }
        self.opened(&stream);
        Ok(self.initial::<A>(stream))
    }

    /// An aggregate taken as new (its initial state), held without a read.
    fn initial<A: Aggregate>(&mut self, stream: StreamId) -> Loaded<A> {
        self.hold(&stream, 0, A::initial_state());
        Loaded { stream, state: A::initial_state(), version: 0, snapshot_version: None, replayed: 0 }
    }

    /// An aggregate this transaction holds, or the cache: without a read.
    fn known<A: Aggregate>(&mut self, stream: &StreamId) -> Option<Loaded<A>> {
        let (version, state) = match self.held::<A::State>(stream) {
            Some(held) => held,
            None => self.take_cached::<A::State>(stream)?,
        };
        self.hold(stream, version, state.clone());
        Some(Loaded { stream: stream.clone(), state, version, snapshot_version: None, replayed: 0 })
    }

    /// An aggregate read from the database (after writing its pending events).
    async fn read<A: Aggregate>(&mut self, stream: StreamId) -> Result<Loaded<A>, StoreError> {
        if self.has_pending(&stream) {
            self.flush().await?;
        }
        let loaded = load_from::<A>(self.conn(), stream).await?;
        self.hold(&loaded.stream, loaded.version, loaded.state.clone());
        Ok(loaded)
    }

    /// An aggregate this transaction creates under an id no one else can
    /// know yet (one it just generated): its initial state, without a read.
    /// Should the stream exist after all, the commit fails with
    /// [`StoreError::Conflict`].
    pub fn new_stream<A: Aggregate>(&mut self, id: impl fmt::Display) -> Loaded<A> {
        self.initial::<A>(A::stream(id))
    }

    /// Records decided events on a loaded aggregate: folds them into its
    /// state, and queues them (and a snapshot, when the events cross a
    /// multiple of [`Aggregate::SNAPSHOT_EVERY`]) for the commit. Returns the
    /// ids given to the events. A stream that moved meanwhile fails the
    /// commit with [`StoreError::Conflict`].
    pub async fn record<A: Aggregate>(
        &mut self,
        loaded: &mut Loaded<A>,
        events: Vec<A::Event>,
        metadata: EventMetadata,
    ) -> Result<Vec<EventId>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut new_events = Vec::with_capacity(events.len());
        for event in &events {
            let (event_type, payload) = encode_event(event)?;
            new_events.push(NewEvent {
                event_id: EventId::from_uuid(Uuid::now_v7()),
                event_type,
                schema_version: A::EVENT_SCHEMA,
                payload,
                metadata,
            });
        }
        let ids = new_events.iter().map(|e| e.event_id).collect();
        let before = loaded.version;
        self.push_events(&loaded.stream, before, new_events)?;
        loaded.state = A::fold_from(loaded.state.clone(), &events);
        loaded.version = before + events.len() as u64;
        let version = loaded.version;
        if let Some(every) = A::SNAPSHOT_EVERY
            && before / every.get() != version / every.get()
        {
            let state = serde_json::to_value(&loaded.state).map_err(|e| StoreError::Encode {
                what: format!("the state of {}", loaded.stream),
                reason: e.to_string(),
            })?;
            self.push_snapshot(&loaded.stream, SnapshotRecord { version, state_schema: A::STATE_SCHEMA, state });
        }
        self.hold(&loaded.stream, version, loaded.state.clone());
        Ok(ids)
    }
}
