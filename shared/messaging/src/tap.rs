//! The parasitic listener: every record whose subject matches a pattern,
//! printed as it passes, without joining any service's consumer group.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use udders_contracts::{Envelope, Pattern};
use udders_kernel::Timestamp;

use crate::{KafkaSettings, MessagingError};

/// One matching record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapLine {
    /// Its subject.
    pub subject: String,
    /// Its key (the order id).
    pub key: String,
    /// Its event id.
    pub id: String,
    /// Where it was read.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// Reads `topics` and calls `on_line` for every record whose subject matches
/// `pattern` and whose `ce_time` is at or after `since` (all records when
/// `None`). Runs until `cancel`.
pub async fn tap(
    settings: &KafkaSettings,
    pattern: &Pattern,
    topics: &[String],
    since: Option<Timestamp>,
    cancel: CancellationToken,
    mut on_line: impl FnMut(TapLine),
) -> Result<(), MessagingError> {
    crate::broker::wait_for_broker(settings, Duration::from_secs(30)).await?;
    let group = format!("udders-tap-{}", uuid::Uuid::new_v4().simple());
    let consumer: StreamConsumer = settings.consumer_config(&group).create().map_err(MessagingError::Kafka)?;
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).map_err(MessagingError::Kafka)?;
        for t in metadata.topics().iter().filter(|t| t.error().is_none()) {
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning).map_err(MessagingError::Kafka)?;
            }
        }
    }
    consumer.assign(&tpl).map_err(MessagingError::Kafka)?;
    loop {
        let message = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            received = consumer.recv() => match received {
                Ok(m) => m,
                Err(_) => continue,
            }
        };
        let headers: Vec<(&str, Option<&[u8]>)> =
            message.headers().map(|h| h.iter().map(|h| (h.key, h.value)).collect()).unwrap_or_default();
        let Ok(envelope) = Envelope::from_headers(headers) else { continue };
        if !pattern.matches(&envelope.subject) || since.is_some_and(|s| envelope.time < s) {
            continue;
        }
        on_line(TapLine {
            subject: envelope.subject.to_string(),
            key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default(),
            id: envelope.id.to_string(),
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
        });
    }
}
