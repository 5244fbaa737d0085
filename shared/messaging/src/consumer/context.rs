//! The consumer client's rdkafka context: it hears the broker go, keeps
//! librdkafka's statistics (partition ends) and forwards the group's
//! rebalances to the loop, which applies them.

use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use tokio::sync::mpsc;

use super::partitions::PartitionKey;
use crate::kafka::WatchfulContext;
use crate::metrics::PartitionEnds;

/// A rebalance of the group, as the client's context heard it. The loop
/// applies it (assigns at the stored positions, or unassigns), so the
/// client's own callback never waits on the database.
#[derive(Debug)]
pub(super) enum Rebalanced {
    /// These partitions are ours now.
    Assign(Vec<PartitionKey>),
    /// These are taken away (eager protocol: all of them).
    Revoke(Vec<PartitionKey>),
}

/// The consumer client's context: hears the broker go (through the shared
/// [`WatchfulContext`]) and forwards the group's rebalances to the loop.
pub(super) struct LoopContext {
    pub(super) watch: WatchfulContext,
    /// Where librdkafka's statistics (partition ends) go.
    pub(super) ends: PartitionEnds,
    pub(super) rebalances: mpsc::UnboundedSender<Rebalanced>,
    /// Set before the client is dropped: closing it revokes the assignment
    /// and waits for the unassign, which the loop is no longer there to make.
    pub(super) closing: AtomicBool,
}

impl LoopContext {
    /// The loop is letting the client go: from now on the context makes the
    /// unassign a close waits for.
    pub(super) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }
}

impl ClientContext for LoopContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.watch.error(error, reason);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        self.ends.record(&statistics);
    }
}

impl ConsumerContext for LoopContext {
    /// Leaves the assign and unassign calls to the loop: librdkafka waits for
    /// them (and keeps heart-beating) after this returns.
    fn rebalance(&self, base: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        if self.closing.load(Ordering::SeqCst) {
            let _ = base.unassign();
            return;
        }
        let keys: Vec<PartitionKey> = tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
        let event = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalanced::Assign(keys),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalanced::Revoke(keys),
            other => {
                tracing::warn!(error = ?other, "group rebalance failed; giving up this assignment");
                Rebalanced::Revoke(keys)
            }
        };
        let _ = self.rebalances.send(event);
    }
}
