//! Aggregates: deciders whose events and state are stored (the store lives
//! in `udders-eventstore`; this trait only says how to encode them).

use std::num::NonZeroU64;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Decider;

/// A [`Decider`] that lives in an event store.
///
/// Its events are serde enums in adjacently tagged form,
/// `#[serde(tag = "type", content = "data")]`: the tag is stored as the event
/// type and the content as the payload.
///
/// Its state is plain data (`Clone + Send + Sync`): a store may keep it in
/// memory between transactions.
pub trait Aggregate:
    Decider<Event: Serialize + DeserializeOwned, State: Serialize + DeserializeOwned + Clone + Send + Sync + 'static>
{
    /// The stream category, for example `order` (streams are `order-<id>`).
    const CATEGORY: &'static str;
    /// Snapshot every N events; `None` never snapshots.
    const SNAPSHOT_EVERY: Option<NonZeroU64>;
    /// The schema version of `State`. Bump it when `State` changes shape:
    /// snapshots of any other version are ignored and the state is rebuilt.
    const STATE_SCHEMA: u32 = 1;
    /// The schema version of the event payloads this build writes.
    const EVENT_SCHEMA: u16 = 1;

    /// Turns a stored payload of an older schema version into the current
    /// one. The default accepts only [`Aggregate::EVENT_SCHEMA`].
    fn upcast(event_type: &str, schema_version: u16, payload: Value) -> Result<Value, String> {
        let _ = event_type;
        if schema_version == Self::EVENT_SCHEMA {
            Ok(payload)
        } else {
            Err(format!("this build reads schema version {} only", Self::EVENT_SCHEMA))
        }
    }
}

/// An aggregate with a read model: one document per aggregate, folded from
/// its events. The document is a pure function of the previous document, the
/// state after the event and the event, so the live projection and a replay
/// from the event log produce the same documents.
pub trait ReadModel: Aggregate {
    /// The view's name, for example `orders`.
    const VIEW: &'static str;
    /// The document.
    type Doc: Serialize + DeserializeOwned;

    /// The document after `event`; `None` while there is nothing to show.
    fn project(key: &str, previous: Option<Self::Doc>, state: &Self::State, event: &Self::Event) -> Option<Self::Doc>;

    /// When a document needs attention (orders: the saga deadline), if ever.
    fn due(doc: &Self::Doc) -> Option<crate::Timestamp> {
        let _ = doc;
        None
    }

    /// Up to three filter tags of a document (orders: status, country, channel).
    fn tags(doc: &Self::Doc) -> [Option<String>; 3] {
        let _ = doc;
        [None, None, None]
    }
}
