//! One record checked and routed: `parse_record` (shared with the replay
//! of dead letters), the id a record carries for the position after it
//! (`fingerprint`), and the wall clock the dead letters are timed by.

use rdkafka::Message;
use rdkafka::message::{Headers, OwnedMessage};
use serde_json::Value;
use udders_contracts::Envelope;
use udders_kernel::Timestamp;

use super::{ConsumerConfig, Incoming};

/// The id (`ce_id` header) of a record, stored with the position past it.
pub(super) fn fingerprint(message: &OwnedMessage) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == udders_contracts::envelope::ID)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
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
