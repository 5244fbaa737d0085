//! Harness: an embedded broker on a free loopback port, SQLite stores for a
//! publishing and a consuming service, a handler whose effects are countable.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use udders_contracts::{Catalog, Envelope, Service, udders_events};
use udders_eventstore::{EventMetadata, EventStore, ExpectedVersion, NewEvent, StoreOptions, StreamId, Tx};
use udders_kernel::{CorrelationId, EventId, Timestamp};
use udders_messaging::outbound::outbox_message;
use udders_messaging::{
    ConsumerConfig, ConsumerWatch, EmbeddedBroker, Handler, HandlerError, Incoming, KafkaSettings, MessagingError,
    Relay, RelayConfig, spawn_consumer,
};
use uuid::Uuid;

pub const TOPIC: &str = "udders.order";
pub const SUBJECT: &str = "order/init/1.1/icecream/udders/mango/sg/web";

/// Logs to the test's output when `RUST_LOG` is set.
pub fn init_logs() {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
}

pub fn free_addr() -> SocketAddr {
    init_logs();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

pub struct Stores {
    pub publisher: EventStore,
    pub consumer: EventStore,
    _dir: tempfile::TempDir,
}

/// Two stores: SQLite files, or with `UDDERS_TEST_BACKEND=postgres` two
/// fresh schemas of the PostgreSQL test database (`UDDERS_TEST_POSTGRES_URL`).
pub async fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var("UDDERS_TEST_BACKEND").as_deref() == Ok("postgres") {
        let url = std::env::var("UDDERS_TEST_POSTGRES_URL")
            .expect("UDDERS_TEST_BACKEND=postgres needs UDDERS_TEST_POSTGRES_URL (a database of the test server)");
        let admin = EventStore::connect(&url, &StoreOptions::default()).await.expect("the PostgreSQL test server");
        let mut opened = Vec::new();
        for role in ["order", "credit"] {
            let schema = format!("m_{}_{role}", Uuid::new_v4().simple());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(admin.postgres_pool().expect("a PostgreSQL store"))
                .await
                .expect("creating a schema");
            let separator = if url.contains('?') { '&' } else { '?' };
            let at = format!("{url}{separator}options[search_path]={schema}");
            opened.push(EventStore::connect(&at, &StoreOptions::default()).await.expect("a PostgreSQL store"));
        }
        admin.close().await;
        let consumer = opened.pop().unwrap();
        let publisher = opened.pop().unwrap();
        return Stores { publisher, consumer, _dir: dir };
    }
    let publisher = EventStore::open_sqlite(&dir.path().join("order.db"), &StoreOptions::default()).await.unwrap();
    let consumer = EventStore::open_sqlite(&dir.path().join("credit.db"), &StoreOptions::default()).await.unwrap();
    Stores { publisher, consumer, _dir: dir }
}

pub fn settings(addr: SocketAddr) -> KafkaSettings {
    KafkaSettings::new(addr.to_string())
}

pub fn now() -> Timestamp {
    Timestamp::from_micros(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64)
}

/// An envelope for an `order/init` event of a new order.
pub fn envelope(subject: &str) -> Envelope {
    Envelope {
        id: EventId::from_uuid(Uuid::now_v7()),
        source: "/udders/order".into(),
        event_type: "udders.order.init".into(),
        subject: subject.parse().unwrap(),
        time: now(),
        correlation_id: CorrelationId::from_uuid(Uuid::now_v7()),
        causation_id: None,
        traceparent: None,
        sequence: 1,
    }
}

/// Appends `n` order events with their outbox rows, 200 to a transaction.
/// `fail_every`: every k-th payload asks the handler to fail.
pub async fn publish(store: &EventStore, n: usize, fail_every: Option<usize>) -> Vec<EventId> {
    let mut ids = Vec::with_capacity(n);
    for chunk_start in (0..n).step_by(200) {
        let mut tx = store.begin().await.unwrap();
        for i in chunk_start..(chunk_start + 200).min(n) {
            let env = envelope(SUBJECT);
            let order = Uuid::now_v7();
            let fail = fail_every.is_some_and(|k| i % k == k - 1);
            let payload = json!({ "order_id": order.to_string(), "n": i, "fail": fail });
            let event = NewEvent {
                event_id: env.id,
                event_type: "Placed".into(),
                schema_version: 1,
                payload: payload.clone(),
                metadata: EventMetadata {
                    correlation_id: Some(env.correlation_id),
                    causation_id: None,
                    occurred_at: env.time,
                },
            };
            tx.append(&StreamId::new("order", order), ExpectedVersion::NoStream, &[event]).await.unwrap();
            tx.enqueue(&[outbox_message(TOPIC, &order.to_string(), &env, &payload).unwrap()]).await.unwrap();
            ids.push(env.id);
        }
        tx.commit().await.unwrap();
    }
    ids
}

/// Appends one `effect` event per handled record; a second effect for the
/// same record would be a conflict. Payloads with `"fail": true` fail.
/// `pace` slows each record down, so a test can stop a consumer mid-stream.
/// `fail_first` fails each record's first calls as a handler would (a
/// retryable refusal); `outage_first` fails each record's first calls after
/// its effect is written, as a database that goes away mid-transaction.
#[derive(Clone, Default)]
pub struct Recorder {
    pub pace: Duration,
    pub fail_first: u32,
    pub outage_first: u32,
    pub calls: Arc<std::sync::Mutex<std::collections::HashMap<EventId, u32>>>,
}

impl Recorder {
    /// How many times the handler was called for each record.
    pub fn calls_of(&self, id: EventId) -> u32 {
        self.calls.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
}

impl Handler for Recorder {
    async fn handle(&self, tx: &mut Tx, event: &Incoming) -> Result<(), HandlerError> {
        if !self.pace.is_zero() {
            tokio::time::sleep(self.pace).await;
        }
        if event.payload["fail"] == json!(true) {
            return Err(HandlerError::retry("this record always fails"));
        }
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(event.envelope.id).or_default();
            *n += 1;
            *n
        };
        if call <= self.fail_first {
            return Err(HandlerError::retry(format!("call {call} of this record fails")));
        }
        let effect = NewEvent {
            event_id: EventId::from_uuid(Uuid::now_v7()),
            event_type: "Effect".into(),
            schema_version: 1,
            payload: json!({ "of": event.envelope.id.to_string(), "offset": event.offset }),
            metadata: EventMetadata::default(),
        };
        tx.append(&StreamId::new("effect", event.envelope.id), ExpectedVersion::NoStream, &[effect]).await?;
        if call <= self.fail_first + self.outage_first {
            let gone = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the database went away");
            return Err(udders_eventstore::StoreError::Database {
                op: "appending events",
                source: sqlx::Error::Io(gone),
            }
            .into());
        }
        Ok(())
    }
}

/// The ids of the events whose effects are stored, one per effect.
pub async fn effects(store: &EventStore) -> Vec<String> {
    let (mut after, mut out) = (0, Vec::new());
    loop {
        let page = store.read_all(after, 5000).await.unwrap();
        let Some(last) = page.last() else { return out };
        after = last.position;
        out.extend(
            page.iter().filter(|e| e.category == "effect").map(|e| e.payload["of"].as_str().unwrap().to_owned()),
        );
    }
}

pub fn consumer_config(max_attempts: u32) -> ConsumerConfig {
    // The consumer reads the catalog's events (a record's subject and type
    // must be catalogued); its routes are set below, not taken from it.
    let catalog = Arc::new(Catalog::assemble(udders_events(), Vec::new()).unwrap());
    let mut config = ConsumerConfig::new("credit", catalog, Service::Credit.dead_letter_topic());
    config.topics = vec![TOPIC.to_owned()];
    config.routes = vec![("all".to_owned(), "order/>".parse().unwrap())];
    config.max_attempts = max_attempts;
    config.retry_backoff = Duration::from_millis(5);
    config.max_record_bytes = 64 * 1024;
    config
}

pub struct Running {
    pub cancel: CancellationToken,
    pub consumer: tokio::task::JoinHandle<Result<(), MessagingError>>,
    pub watch: ConsumerWatch,
    pub relay: Option<tokio::task::JoinHandle<Result<(), MessagingError>>>,
}

impl Running {
    pub async fn stop(self) {
        self.cancel.cancel();
        self.consumer.await.unwrap().unwrap();
        if let Some(relay) = self.relay {
            relay.await.unwrap().unwrap();
        }
    }
}

pub fn relay_config() -> RelayConfig {
    RelayConfig::new("order-relay-1", TOPIC)
}

/// Starts a relay for the publisher (if `with_relay`) and a consumer for the consumer store.
pub fn start(stores: &Stores, settings: &KafkaSettings, config: ConsumerConfig, with_relay: bool) -> Running {
    start_with(stores, settings, config, with_relay, Recorder::default())
}

/// [`start`] with a given recorder.
pub fn start_with(
    stores: &Stores,
    settings: &KafkaSettings,
    config: ConsumerConfig,
    with_relay: bool,
    recorder: Recorder,
) -> Running {
    let cancel = CancellationToken::new();
    let relay = with_relay.then(|| {
        let relay = Relay::new(stores.publisher.clone(), settings.clone(), relay_config()).unwrap();
        tokio::spawn(relay.run(cancel.clone()))
    });
    let (consumer, watch) =
        spawn_consumer(stores.consumer.clone(), settings.clone(), config, recorder, cancel.clone()).unwrap();
    Running { cancel, consumer, watch, relay }
}

/// Waits until `check` holds, or panics after `timeout` with `what`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A broker on a free port, the two stores and settings pointing at it.
pub struct Rig {
    pub addr: SocketAddr,
    pub broker: EmbeddedBroker,
    pub stores: Stores,
    pub settings: KafkaSettings,
}

pub async fn rig() -> Rig {
    let addr = free_addr();
    let broker = start_broker(addr).await;
    Rig { addr, broker, stores: stores().await, settings: settings(addr) }
}

pub async fn start_broker(addr: SocketAddr) -> EmbeddedBroker {
    EmbeddedBroker::start(addr).await.expect("the embedded broker starts")
}
