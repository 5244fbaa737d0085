//! The consumer's I/O shell: the loop that owns the client and waits on
//! cancellation, the group's rebalances, the broker's loss, the flush tick
//! and fetched records, and the client's lifecycle (a fresh client, the
//! watchdog, closing). What each partition needs it asks
//! [`Partitions`]; batches go to `handling`, assignments to `assignment`.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use udders_eventstore::EventStore;

use super::context::{LoopContext, Rebalanced};
use super::handling::Step;
use super::partitions::Partitions;
use super::{ConsumerConfig, ConsumerLatency, ConsumerStats, Handler, Membership};
use crate::MessagingError;
use crate::kafka::{KafkaSettings, Sentinel, WatchfulContext};
use crate::metrics::PartitionEnds;

pub(super) struct Loop<H> {
    pub(super) store: EventStore,
    pub(super) settings: KafkaSettings,
    pub(super) config: ConsumerConfig,
    pub(super) handler: H,
    /// The dead-letter producer, made when the first record needs it (its
    /// polling thread costs CPU even when idle).
    pub(super) producer: Option<FutureProducer>,
    /// Per partition: how far it is read, positions of skipped records not
    /// yet stored, gates, what is held, restarts and rewinds.
    pub(super) partitions: Partitions,
    /// Clients created so far (names them `<consumer>-<n>`).
    pub(super) clients: u32,
    /// The client in use, for the watchdog that unassigns it when the broker goes.
    pub(super) current: Arc<std::sync::Mutex<Option<Arc<StreamConsumer<LoopContext>>>>>,
    pub(super) context: WatchfulContext,
    /// The group's rebalance events for the client in use.
    pub(super) rebalances: mpsc::UnboundedReceiver<Rebalanced>,
    pub(super) stats: watch::Sender<ConsumerStats>,
    pub(super) latency: Arc<ConsumerLatency>,
    pub(super) ends: PartitionEnds,
}

impl<H: Handler> Loop<H> {
    /// A loop that has not started: no client, nothing known of any partition.
    pub(super) fn new(
        store: EventStore,
        settings: KafkaSettings,
        config: ConsumerConfig,
        handler: H,
        stats: watch::Sender<ConsumerStats>,
        latency: Arc<ConsumerLatency>,
        ends: PartitionEnds,
    ) -> Self {
        Self {
            store,
            settings,
            config,
            handler,
            producer: None,
            partitions: Partitions::default(),
            clients: 0,
            current: Arc::default(),
            context: WatchfulContext::default(),
            rebalances: mpsc::unbounded_channel().1,
            stats,
            latency,
            ends,
        }
    }

    pub(super) async fn run(
        mut self,
        cancel: CancellationToken,
        ready: watch::Sender<bool>,
    ) -> Result<(), MessagingError> {
        // Stop fetching the moment every broker is down (see WatchfulContext):
        // the sentinel hears it at once, the watchdog unassigns the client in
        // use, and the loop replaces that client.
        let sentinel = match &self.config.sentinel {
            Some(shared) => shared.clone(),
            None => Arc::new(Sentinel::start(&self.settings).map_err(MessagingError::Kafka)?),
        };
        sentinel.watch(&self.context);
        let watchdog = {
            let (context, current, cancel) = (self.context.clone(), self.current.clone(), cancel.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = context.broker_lost() => {
                            let client = current.lock().map(|c| c.clone()).unwrap_or(None);
                            if let Some(client) = client {
                                let _ = client.unassign();
                            }
                        }
                    }
                }
            })
        };
        let result = self.consume(cancel, ready).await;
        watchdog.abort();
        result
    }

    async fn consume(&mut self, cancel: CancellationToken, ready: watch::Sender<bool>) -> Result<(), MessagingError> {
        let Some(mut consumer) = self.assign_when_possible(&cancel).await else { return Ok(()) };
        if self.config.membership == Membership::Alone {
            let _ = ready.send(true); // in a group: once the first assignment is applied
        }
        tracing::info!(consumer = %self.config.name, topics = ?self.config.topics, membership = ?self.config.membership, "consumer running");
        let mut flush = tokio::time::interval(self.config.position_flush);
        loop {
            let message = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Some(event) = self.rebalances.recv() => {
                    if !self.rebalanced(&consumer, event, &cancel, &ready).await {
                        break;
                    }
                    continue;
                }
                () = self.context.broker_lost() => {
                    self.context.take_broker_lost();
                    tracing::warn!(consumer = %self.config.name, "every broker is down: dropping the client; positions will be checked against the log");
                    let Some(c) = self.replace_client(consumer, &cancel, Some(&ready)).await else { return self.stopped(None).await };
                    consumer = c;
                    continue;
                }
                _ = flush.tick() => {
                    self.flush_skipped().await;
                    if self.probe_timed_out() {
                        if self.config.membership == Membership::Alone || !self.reposition(&consumer).await {
                            let Some(c) = self.replace_client(consumer, &cancel, None).await else { return self.stopped(None).await };
                            consumer = c;
                        }
                    } else if self.context.take_broker_lost() {
                        tracing::warn!(consumer = %self.config.name, "every broker was down: checking positions against the log");
                        let Some(c) = self.replace_client(consumer, &cancel, Some(&ready)).await else { return self.stopped(None).await };
                        consumer = c;
                    }
                    continue;
                }
                received = consumer.recv() => match received {
                    Ok(message) => message.detach(),
                    Err(error) => {
                        tracing::debug!(consumer = %self.config.name, %error, "receive failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            };
            // Take whatever else is already fetched, up to a batch.
            let mut batch = vec![message];
            while batch.len() < self.config.max_batch {
                match consumer.recv().now_or_never() {
                    Some(Ok(more)) => batch.push(more.detach()),
                    _ => break,
                }
            }
            // A rebalance heard meanwhile comes first: records of partitions
            // taken away are left to their new owner.
            let mut stopped = false;
            while let Ok(event) = self.rebalances.try_recv() {
                if !self.rebalanced(&consumer, event, &cancel, &ready).await {
                    stopped = true;
                    break;
                }
            }
            if stopped {
                break;
            }
            if self.config.membership == Membership::Group {
                batch.retain(|m| self.partitions.holds(&(m.topic().to_owned(), m.partition())));
                if batch.is_empty() {
                    continue;
                }
            }
            if let Step::Reassign = self.process_batch(&batch, &cancel).await
                && (self.config.membership == Membership::Alone || !self.reposition(&consumer).await)
            {
                let Some(c) = self.replace_client(consumer, &cancel, None).await else {
                    return self.stopped(None).await;
                };
                consumer = c;
            }
        }
        self.stopped(Some(consumer)).await
    }

    /// Stores what is left to store and closes the client, if one is left.
    async fn stopped(&mut self, client: Option<Arc<StreamConsumer<LoopContext>>>) -> Result<(), MessagingError> {
        self.flush_skipped().await;
        if let Some(client) = client {
            self.close(client);
        }
        Ok(())
    }

    /// Destroys the client in use and assigns a fresh one (`None` when
    /// cancelled). After a broker loss (`ready` given) the consumer reports
    /// not ready meanwhile, and the recovery is counted.
    async fn replace_client(
        &mut self,
        old: Arc<StreamConsumer<LoopContext>>,
        cancel: &CancellationToken,
        ready: Option<&watch::Sender<bool>>,
    ) -> Option<Arc<StreamConsumer<LoopContext>>> {
        if let Some(ready) = ready {
            let _ = ready.send(false);
        }
        self.close(old);
        self.partitions.drop_rewinds();
        let fresh = self.assign_when_possible(cancel).await?;
        if let Some(ready) = ready {
            self.stats.send_modify(|s| s.broker_recoveries += 1);
            let _ = ready.send(true);
        }
        Some(fresh)
    }

    /// Destroys a client (leaving the group, if it is in one). The
    /// watchdog's handle goes first, so this drop is the last.
    fn close(&self, client: Arc<StreamConsumer<LoopContext>>) {
        client.context().close();
        if let Ok(mut current) = self.current.lock() {
            *current = None;
        }
        drop(client);
    }

    /// Assigns, retrying until the broker and topics are there; `None` when cancelled.
    async fn assign_when_possible(&mut self, cancel: &CancellationToken) -> Option<Arc<StreamConsumer<LoopContext>>> {
        loop {
            let attempt = async {
                crate::broker::wait_for_broker(&self.settings, Duration::from_secs(5)).await?;
                self.assign().await
            };
            tokio::select! {
                () = cancel.cancelled() => return None,
                result = attempt => match result {
                    Ok(consumer) => {
                        let consumer = Arc::new(consumer);
                        if let Ok(mut current) = self.current.lock() {
                            *current = Some(consumer.clone());
                        }
                        return Some(consumer);
                    }
                    Err(error) => {
                        tracing::info!(consumer = %self.config.name, %error, "waiting for the broker and topics");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        }
    }
}

impl<H> Drop for Loop<H> {
    /// A loop dropped without stopping (its task aborted, the runtime shut
    /// down) must still let its client close: a group member's close waits
    /// for an unassign that only a closing context makes.
    fn drop(&mut self) {
        let client = self.current.lock().ok().and_then(|mut c| c.take());
        if let Some(client) = client {
            client.context().close();
        }
    }
}
