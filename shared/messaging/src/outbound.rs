//! An event on its way out: the outbox row a handler writes in its
//! transaction, with the CloudEvents headers the relay sends as they are.

use rdkafka::message::{Header, OwnedHeaders};
use serde::Serialize;
use udders_contracts::Envelope;
use udders_eventstore::{OutboxMessage, StoreError};

/// The outbox row for one event: topic, key (the order id), envelope headers
/// and the JSON payload. The message id is the event id, so consumers
/// deduplicate redeliveries by it.
pub fn outbox_message(
    topic: &str,
    key: &str,
    envelope: &Envelope,
    payload: &impl Serialize,
) -> Result<OutboxMessage, StoreError> {
    let payload = serde_json::to_vec(payload).map_err(|e| StoreError::Encode {
        what: format!("the payload of {}", envelope.subject),
        reason: e.to_string(),
    })?;
    Ok(OutboxMessage {
        message_id: *envelope.id.as_uuid(),
        topic: topic.to_owned(),
        key: key.to_owned(),
        headers: envelope.headers(),
        payload,
    })
}

/// Record headers from `(name, value)` pairs, in order.
pub fn record_headers(pairs: &[(String, String)]) -> OwnedHeaders {
    pairs.iter().fold(OwnedHeaders::new_with_capacity(pairs.len()), |headers, (key, value)| {
        headers.insert(Header { key, value: Some(value.as_bytes()) })
    })
}
