//! rdkafka settings in one place, and a client context that notices when
//! every broker is gone (so a relay or consumer can check for a broker that
//! came back empty).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

/// Where the brokers are and how topics are laid out.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `host:port[,host:port…]`.
    pub bootstrap: String,
    /// Partitions of every topic Udders creates.
    pub partitions: i32,
    /// Upper bound of a fetch's wait for data. The embedded broker, like
    /// Apache Kafka, answers as soon as records arrive (ADR 0010), so this
    /// bounds only how often an idle consumer asks again (100 ms, ADR 0010).
    pub fetch_wait_max_ms: u32,
    /// Bytes a fetch waits for (up to `fetch_wait_max_ms`) before the broker
    /// answers: 1 answers at once; more lets a consumer that is not in a
    /// hurry ask less often and take more per answer.
    pub fetch_min_bytes: u32,
    /// Names this process's clients to the brokers (`client.id`, in their
    /// logs and quotas): `<service>-<instance>` for a service's clients;
    /// `udders` when unset.
    pub client_id: Option<String>,
    /// Replicas of each topic Udders creates; `None` leaves it to the
    /// cluster (see [`crate::topics::replication_for`]).
    pub replication_factor: Option<i32>,
    /// `min.insync.replicas` of each topic Udders creates; `None` leaves it
    /// to the cluster. With `acks=all`, a write succeeds once this many
    /// replicas have it.
    pub min_insync_replicas: Option<u32>,
    /// What a consumer fetches ahead of its handler, KiB at most
    /// (`queued.max.messages.kbytes`).
    pub consumer_queue_kib: u32,
}

impl KafkaSettings {
    /// The default longest fetch wait, milliseconds (ADR 0010).
    pub const DEFAULT_FETCH_WAIT_MS: u32 = 100;
    /// The default [`KafkaSettings::consumer_queue_kib`].
    pub const DEFAULT_CONSUMER_QUEUE_KIB: u32 = 8192;

    /// Settings for a broker at `bootstrap` with the default 6 partitions.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            partitions: 6,
            fetch_wait_max_ms: Self::DEFAULT_FETCH_WAIT_MS,
            fetch_min_bytes: 1,
            client_id: None,
            replication_factor: None,
            min_insync_replicas: None,
            consumer_queue_kib: Self::DEFAULT_CONSUMER_QUEUE_KIB,
        }
    }

    /// The `client.id` of this process's clients.
    pub fn client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or("udders")
    }

    /// Settings every client shares.
    fn base_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        // Nagle plus delayed ACKs add up to 40 ms to small requests on loopback.
        c.set("bootstrap.servers", &self.bootstrap).set("socket.nagle.disable", "true").set("log_level", "3");
        c.set("client.id", self.client_id());
        c
    }

    /// A producer: idempotent, `acks=all`, bounded delivery time so a
    /// missing broker shows up as failed deliveries rather than a hang.
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = self.base_config();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", "10000")
            .set("reconnect.backoff.max.ms", "1000");
        c
    }

    /// A consumer with manual positions: no auto commit, no auto offset
    /// store; `earliest` when a stored position lies beyond the log.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut c = self.base_config();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string())
            .set("fetch.min.bytes", self.fetch_min_bytes.max(1).to_string())
            // In a group, partition N of every topic goes to one instance, so
            // every event of an order (key = order id) meets in one place.
            .set("partition.assignment.strategy", "range")
            // A member's session must outlast a join round without a
            // heartbeat: Tansu's coordinator holds a follower's JoinGroup for
            // 3 s, and the first heartbeat comes an interval after the sync.
            // With a 2 s interval that left 1 s of the 6 s session: a loaded
            // machine dropped members mid-join and the group could stop
            // forming (ADR 0007). A 1 s interval leaves 2 s; a longer session
            // would delay every crashed member's hand-over instead.
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("reconnect.backoff.max.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "2000")
            // librdkafka pre-fetches up to 100,000 records or 64 MiB per
            // consumer by default; the loop handles a few hundred at a time.
            .set("queued.min.messages", "2000")
            .set("queued.max.messages.kbytes", self.consumer_queue_kib.max(1).to_string())
            // When that queue is full librdkafka stops fetching for this long
            // (default 1 s): a consumer behind a backlog then drains its 2,000
            // records and sits idle for the rest of the second.
            .set("fetch.queue.backoff.ms", "10");
        c
    }

    /// An admin client.
    pub fn admin_config(&self) -> ClientConfig {
        self.base_config()
    }
}

/// A client context that notices "all brokers down" events.
///
/// Why it matters: a broker that comes back empty recreates topics under new
/// ids, and a client that fetched from the old broker must not talk to the
/// new one. librdkafka 2.12 crashes (NULL `strcmp` in
/// `rd_kafka_metadata_update_op`) on the leader-discovery tags Tansu sends for
/// a topic it lost, and an idempotent producer's id means nothing to the new
/// broker. Owners therefore stop and replace their clients when this fires.
#[derive(Debug, Clone, Default)]
pub struct WatchfulContext {
    state: Arc<BrokerWatch>,
}

/// What a [`WatchfulContext`] saw.
#[derive(Debug, Default)]
pub struct BrokerWatch {
    lost: AtomicBool,
    losses: AtomicU64,
    signal: tokio::sync::Notify,
}

impl WatchfulContext {
    /// True (once) after every broker was reported down since the last call.
    pub fn take_broker_lost(&self) -> bool {
        self.state.lost.swap(false, Ordering::SeqCst)
    }

    /// How many times every broker was reported down.
    pub fn losses(&self) -> u64 {
        self.state.losses.load(Ordering::SeqCst)
    }

    /// Completes when every broker is next reported down.
    pub async fn broker_lost(&self) {
        self.state.signal.notified().await;
    }
}

impl BrokerWatch {
    fn lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
        self.losses.fetch_add(1, Ordering::SeqCst);
        self.signal.notify_waiters();
    }
}

/// True when a client's error event says every broker is down; any other
/// error is logged at debug level (librdkafka retries those itself).
fn all_brokers_down(error: &KafkaError, reason: &str) -> bool {
    let down = matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown));
    if !down {
        tracing::debug!(%error, %reason, "kafka client error");
    }
    down
}

impl ClientContext for WatchfulContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if all_brokers_down(&error, reason) {
            self.state.lost();
            tracing::warn!(%reason, "every broker is down");
        }
    }
}

impl ConsumerContext for WatchfulContext {}

impl ProducerContext for WatchfulContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, (): ()) {}
}

/// A client that sends nothing and is polled a few times a second, so that
/// the contexts that watch through it hear "all brokers down" at once. A
/// consumer's own client reports it only after every record already fetched
/// has been read, which can be too late. (Polled from a task, not by a
/// `ThreadedProducer`'s thread: that one spins through the last millisecond
/// of every 100 ms wait, about 1% of a core each.) One sentinel serves every
/// consumer of a process: each is a client with threads of its own.
pub struct Sentinel {
    watchers: Arc<Watchers>,
    poller: tokio::task::JoinHandle<()>,
}

/// The contexts a sentinel reports to; those dropped are skipped and pruned.
#[derive(Default)]
struct Watchers(std::sync::Mutex<Vec<std::sync::Weak<BrokerWatch>>>);

impl Watchers {
    /// The list, locked, without the contexts dropped since.
    fn live(&self) -> std::sync::MutexGuard<'_, Vec<std::sync::Weak<BrokerWatch>>> {
        let mut watchers = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        watchers.retain(|watch| watch.strong_count() > 0);
        watchers
    }
}

/// The sentinel client's own context: tells every watcher.
#[derive(Clone)]
struct SentinelContext {
    watchers: Arc<Watchers>,
}

impl ClientContext for SentinelContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if !all_brokers_down(&error, reason) {
            return;
        }
        let watchers = self.watchers.live();
        for watch in watchers.iter().filter_map(std::sync::Weak::upgrade) {
            watch.lost();
        }
        tracing::warn!(%reason, watchers = watchers.len(), "every broker is down");
    }
}

impl ProducerContext for SentinelContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, (): ()) {}
}

impl std::fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sentinel")
    }
}

impl Sentinel {
    /// How often the sentinel's client is polled.
    const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

    /// Starts a sentinel for the brokers of `settings`, on the current runtime.
    pub fn start(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        let mut config = settings.admin_config();
        config.set("client.id", format!("{}-sentinel", settings.client_id()));
        let watchers = Arc::new(Watchers::default());
        let producer: BaseProducer<SentinelContext> =
            config.create_with_context(SentinelContext { watchers: watchers.clone() })?;
        let poller = tokio::spawn(async move {
            let mut every = tokio::time::interval(Self::POLL_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                producer.poll(std::time::Duration::ZERO);
            }
        });
        Ok(Self { watchers, poller })
    }

    /// From now on, `context` hears every loss this sentinel hears, for as
    /// long as it lives.
    pub fn watch(&self, context: &WatchfulContext) {
        self.watchers.live().push(Arc::downgrade(&context.state));
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_of_a_service_instance_carries_its_client_id() {
        let named = KafkaSettings { client_id: Some("order-a".into()), ..KafkaSettings::new("127.0.0.1:9092") };
        assert_eq!(named.producer_config().get("client.id"), Some("order-a"));
        assert_eq!(named.admin_config().get("client.id"), Some("order-a"));
        assert_eq!(KafkaSettings::new("127.0.0.1:9092").producer_config().get("client.id"), Some("udders"));
    }
}
