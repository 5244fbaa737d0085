//! Giving up on a record: it is parked in the service's database with the
//! position past it, then copied to the dead-letter topic with its origin,
//! the error and the attempt count in headers. Also the stored positions of
//! skipped records. Every write here waits out an outage ([`Backoff::outage`]).

use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use tokio_util::sync::CancellationToken;
use udders_eventstore::{ConsumerPosition, NewDeadLetter, StoreError};
use udders_kernel::Timestamp;

use super::handling::Outcome;
use super::record::fingerprint;
use super::shell::Loop;
use super::{Handler, dead_letter, wall_clock};
use crate::backoff::Backoff;

impl<H: Handler> Loop<H> {
    /// Parks a record in the service's database with the position past it
    /// (retrying while the database is away), then sends a copy to the
    /// dead-letter topic for tools that read it (retrying until the broker
    /// takes it). A shutdown ends either wait: a record not parked yet is
    /// fetched again at the next start (its position was not stored); a
    /// parked one is on record, and the topic's copy is only for tools.
    pub(super) async fn dead_letter(
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
                    if !backoff.wait(cancel).await {
                        return Outcome::DeadLettered;
                    }
                }
            }
        }
        self.partitions.parked(&(position.topic, position.partition));
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
                        if !backoff.wait(cancel).await {
                            return Outcome::DeadLettered;
                        }
                        continue;
                    }
                },
            };
            match producer.send(record, Duration::from_secs(0)).await {
                Ok(_) => break,
                Err((error, _)) => {
                    tracing::warn!(%error, "dead-letter topic unreachable; retrying");
                    if !backoff.wait(cancel).await {
                        return Outcome::DeadLettered;
                    }
                }
            }
        }
        Outcome::DeadLettered
    }

    /// Stores the positions of skipped records not yet stored.
    pub(super) async fn flush_skipped(&mut self) {
        let positions: Vec<ConsumerPosition> = self
            .partitions
            .take_unsaved()
            .into_iter()
            .map(|((topic, partition), at)| ConsumerPosition {
                topic,
                partition,
                next_offset: at.next,
                last_record: at.last,
            })
            .collect();
        if positions.is_empty() {
            return;
        }
        self.save_positions(&positions).await;
    }

    async fn save_positions(&self, positions: &[ConsumerPosition]) {
        let mut backoff = Backoff::outage();
        loop {
            let result: Result<(), StoreError> = async {
                let mut tx = self.store.begin().await?;
                tx.save_positions(&self.config.name, positions).await?;
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
