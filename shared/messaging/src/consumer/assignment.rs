//! Which partitions the client reads, and from where: a fresh client's
//! assignment (alone) or subscription (in a group), the group's rebalances,
//! the resume points read from the database, gates that stopped moving, and
//! the seek a group member makes instead of replacing its client. The
//! decisions are `Partitions`'s; the Kafka and database calls are here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::context::{LoopContext, Rebalanced};
use super::gate::Restart;
use super::partitions::{PartitionKey, Position, Start};
use super::shell::Loop;
use super::{Handler, Membership};
use crate::MessagingError;
use crate::backoff::Backoff;
use crate::metrics::PartitionEnds;

/// Where a partition with no position starts: offset 0, named rather than
/// `Offset::Beginning`, which librdkafka resolves with a ListOffsets request
/// before its first fetch. After a fresh start that made each consumer's first
/// records wait 200 to 400 ms (docs/benchmarks.md). Below a log start that
/// moved, the embedded broker answers from the log start; Apache Kafka
/// answers OFFSET_OUT_OF_RANGE, and `auto.offset.reset=earliest` moves the
/// consumer there.
const FROM_THE_START: Offset = Offset::Offset(0);

impl<H: Handler> Loop<H> {
    /// In a group, where a fresh client would mean leaving and rejoining (a
    /// rebalance for every instance, whose gates would then ask for the
    /// same again): moves the partitions a gate decided on (`restarts`)
    /// with a seek on the client in use. librdkafka drops what it fetched
    /// for them before the seek.
    /// False when a seek failed: the caller must fall back to a fresh client.
    pub(super) async fn reposition(&mut self, consumer: &StreamConsumer<LoopContext>) -> bool {
        let plan = self.partitions.reposition();
        let keys: Vec<PartitionKey> = plan.wanted.iter().map(|(k, _)| k.clone()).collect();
        let moved = match self.resume_points(&keys).await {
            Ok(mut tpl) => {
                for ((topic, partition), offset) in &plan.rewinds {
                    let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
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
                self.partitions.reposition_failed(plan.wanted);
                false
            }
        }
    }

    /// Applies a group rebalance: a revocation stores the positions of
    /// skipped records and forgets the partitions; an assignment starts each
    /// partition from the position in the database (another instance may
    /// have moved it), gated like any resume. False when cancelled.
    pub(super) async fn rebalanced(
        &mut self,
        consumer: &StreamConsumer<LoopContext>,
        event: Rebalanced,
        cancel: &CancellationToken,
        ready: &watch::Sender<bool>,
    ) -> bool {
        match event {
            Rebalanced::Revoke(keys) => {
                self.flush_skipped().await;
                self.partitions.revoke(&keys);
                if let Err(error) = consumer.unassign() {
                    tracing::warn!(consumer = %self.config.name, %error, "unassign failed");
                }
                tracing::info!(consumer = %self.config.name, partitions = keys.len(), "partitions revoked");
                true
            }
            Rebalanced::Assign(keys) => {
                // Positions come from the database, which other instances
                // move too: probe them like a first start.
                self.partitions.probe_next();
                let mut backoff = Backoff::outage();
                let tpl = loop {
                    match self.resume_points(&keys).await {
                        Ok(tpl) => break tpl,
                        Err(error) => {
                            tracing::warn!(consumer = %self.config.name, %error, "cannot read positions; retrying");
                            if !backoff.wait(cancel).await {
                                return false;
                            }
                        }
                    }
                };
                if let Err(error) = consumer.assign(&tpl) {
                    tracing::warn!(consumer = %self.config.name, %error, "assign failed");
                }
                self.partitions.hold(&keys);
                tracing::info!(consumer = %self.config.name, partitions = keys.len(), "partitions assigned");
                let _ = ready.send(true);
                true
            }
        }
    }

    /// Gates that stopped moving (see `Gate::stalled`): true when some
    /// partition must restart (its restart is noted).
    pub(super) fn probe_timed_out(&mut self) -> bool {
        let ends = &self.ends;
        let stuck = self.partitions.stalled(Instant::now(), |key| ends.get(&key.0, key.1));
        for (key, restart) in &stuck {
            if *restart == Restart::Replay {
                tracing::warn!(consumer = %self.config.name, topic = %key.0, partition = key.1,
                    "the log ends before this position (broker lost it?): replaying the partition");
            }
        }
        !stuck.is_empty()
    }

    /// Makes sure the dead-letter topic exists, then creates a fresh client:
    /// alone, it is assigned every partition of every topic, gated at its
    /// resume point; in a group, it subscribes and waits for the group's
    /// assignment (see [`Self::rebalanced`]).
    pub(super) async fn assign(&mut self) -> Result<StreamConsumer<LoopContext>, MessagingError> {
        let dlq = [self.config.dead_letter_topic.clone()];
        crate::topics::ensure_topics(&self.settings, &dlq).await?;
        let partitions = self.all_partitions().await?;
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
            // Partition ends (high watermarks) for the lag metric and for
            // the gates of stalled scans, into `LoopContext::stats` (other
            // clients keep statistics off).
            .set("statistics.interval.ms", PartitionEnds::EVERY.as_millis().to_string())
            .set(
                "client.id",
                format!("{}-{}", self.settings.client_id.as_deref().unwrap_or(&self.config.name), self.clients),
            )
            .create_with_context(context)
            .map_err(MessagingError::Kafka)?;
        tracing::debug!(consumer = %self.config.name, client = self.clients, "new consumer client");
        self.partitions.fresh_client();
        match self.config.membership {
            Membership::Alone => {
                let tpl = self.resume_points(&partitions).await?;
                consumer.assign(&tpl).map_err(MessagingError::Kafka)?;
                self.partitions.hold(&partitions);
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
        let stored: HashMap<PartitionKey, Position> = self
            .store
            .positions(&self.config.name)
            .await?
            .into_iter()
            .map(|p| ((p.topic, p.partition), Position { next: p.next_offset, last: p.last_record }))
            .collect();
        let mut tpl = TopicPartitionList::new();
        for resume in self.partitions.resume(partitions, &stored, Instant::now()) {
            let key = resume.key;
            if resume.replaying {
                tracing::warn!(consumer = %self.config.name, topic = %key.0, partition = key.1,
                    "the log is not the one this position was taken in (broker lost it?): replaying the partition");
            }
            let offset = match resume.start {
                Start::FromTheStart => FROM_THE_START,
                Start::At(offset) => Offset::Offset(offset),
            };
            tpl.add_partition_offset(&key.0, key.1, offset).map_err(MessagingError::Kafka)?;
        }
        Ok(tpl)
    }

    async fn all_partitions(&self) -> Result<Vec<PartitionKey>, MessagingError> {
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
}
