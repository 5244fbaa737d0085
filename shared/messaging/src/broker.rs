//! The embedded broker: Tansu, the Kafka-compatible broker, linked into our
//! binary. Tansu speaks the protocol and keeps topics, consumer groups and
//! producer ids in its memory storage; the records live in an indexed
//! in-memory log per partition ([`log`]), which `DeleteRecords` trims, and
//! `Fetch` is answered here ([`fetch`]) as soon as records arrive rather
//! than at the end of the client's wait. It keeps nothing across a restart,
//! which is exactly the fault the event stores and outboxes must survive.
//!
//! The listener is ours too: Tansu's `Broker` builds its protocol routes
//! itself, so it could not take another `Fetch`. [`protocol`] builds the
//! same stack from Tansu's services with ours in place of its fetch, and
//! with frames decoded and encoded on the connection's task ([`frames`])
//! instead of on tokio's blocking pool.

mod fetch;
mod frames;
mod log;
mod pace;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rama::layer::{MapErrLayer, MapStateLayer};
use rama::{Context, Layer as _, Service as _};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_broker::service::{auth, coordinator, storage as routes};
use tansu_sans_io::{ApiKey as _, FetchRequest};
use tansu_service::{
    FrameRequestLayer, FrameRouteBuilder, FrameRouteService, TcpBytesLayer, TcpBytesService, TcpContext,
    TcpContextLayer, TcpContextService,
};
use tansu_storage::{BrokerRegistrationRequest, Storage as _, StorageContainer};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use url::Url;

use crate::kafka::{Sentinel, WatchfulContext};
use crate::{KafkaSettings, MessagingError};

/// The cluster id the embedded broker registers and answers with.
const CLUSTER_ID: &str = "udders";

/// A running embedded broker. Dropping it (or [`EmbeddedBroker::stop`]) stops
/// it and loses everything it held.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `addr` (use a loopback address) and waits
    /// until it answers metadata requests.
    pub async fn start(addr: SocketAddr) -> Result<Self, MessagingError> {
        let failed = |e: tansu_storage::Error| MessagingError::Broker(format!("building the broker: {e:?}"));
        let url = Url::parse(&format!("tcp://{addr}")).map_err(|e| MessagingError::Broker(e.to_string()))?;
        let memory = Url::parse("memory://tansu/").map_err(|e| MessagingError::Broker(e.to_string()))?;
        let control = StorageContainer::builder()
            .cluster_id(CLUSTER_ID)
            .node_id(1)
            .advertised_listener(url.clone())
            .storage(memory)
            .silent(true)
            .build()
            .await
            .map_err(failed)?;
        let storage = log::LogStorage::new(control);
        let registration = BrokerRegistrationRequest {
            broker_id: 1,
            cluster_id: CLUSTER_ID.into(),
            incarnation_id: uuid::Uuid::new_v4(),
            rack: None,
        };
        storage.register_broker(registration).await.map_err(failed)?;
        let groups = Controller::with_storage(storage.clone())
            .map_err(|e| MessagingError::Broker(format!("building the broker: {e:?}")))?;
        let fetch = fetch::WakingFetch::default();
        let pace = fetch.pace.clone();
        let service = protocol(storage, groups, fetch)
            .map_err(|e| MessagingError::Broker(format!("building the broker's protocol: {e:?}")))?;
        let listener =
            TcpListener::bind(addr).await.map_err(|e| MessagingError::Broker(format!("listening on {addr}: {e}")))?;
        let task = tokio::spawn(async move {
            // The pace follows the load for as long as the broker serves.
            tokio::join!(serve(listener, service), pace.follow_the_load());
        });
        let broker = Self { addr, task };
        wait_for_broker(&KafkaSettings::new(addr.to_string()), Duration::from_secs(20)).await?;
        tracing::info!(%addr, "embedded broker ready (memory storage)");
        Ok(broker)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bootstrap string for clients.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Stops the broker and waits until its port is free again.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(self.addr).await.is_ok() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The Kafka protocol over TCP: every request Tansu's broker answers, with
/// `Fetch` answered by [`fetch::WakingFetch`] and frames converted by
/// [`frames::InlineFrameLayer`].
type Protocol =
    TcpContextService<TcpBytesService<frames::InlineFrameService<FrameRouteService<(), tansu_broker::Error>>, ()>>;

type Routes = FrameRouteBuilder<(), tansu_broker::Error>;

/// One of Tansu's functions that adds a route for a request to the builder.
type AddRoute = fn(Routes, log::LogStorage) -> Result<Routes, tansu_broker::Error>;

fn protocol(
    storage: log::LogStorage,
    groups: Controller<log::LogStorage>,
    fetch: fetch::WakingFetch,
) -> Result<Protocol, tansu_broker::Error> {
    // Tansu's storage routes (tansu_broker::service::storage::services)
    // but its fetch.
    let tansu_routes: [AddRoute; 25] = [
        routes::add_offsets_to_txn,
        routes::add_partitions_to_txn,
        routes::alter_user_scram_credentials,
        routes::consumer_group_describe,
        routes::create_acls,
        routes::create_topics,
        routes::delete_groups,
        routes::delete_records,
        routes::delete_topics,
        routes::describe_acls,
        routes::describe_cluster,
        routes::describe_configs,
        routes::describe_groups,
        routes::describe_topic_partitions,
        routes::describe_user_scram_credentials,
        routes::find_coordinator,
        routes::get_telemetry_subscriptions,
        routes::incremental_alter_configs,
        routes::init_producer_id,
        routes::list_groups,
        routes::list_offsets,
        routes::list_partition_reassignments,
        routes::metadata,
        routes::produce,
        routes::txn_offset_commit_request,
    ];
    let builder = tansu_routes.iter().try_fold(FrameRouteService::builder(), |b, route| route(b, storage.clone()))?;
    let fetch = (
        MapErrLayer::new(tansu_broker::Error::from),
        MapStateLayer::new(move |_| storage),
        FrameRequestLayer::<FetchRequest>::new(),
    )
        .into_layer(fetch)
        .boxed();
    let builder = builder.with_route(FetchRequest::KEY, fetch)?;
    let route = auth::services(coordinator::services(builder, groups)?)?.build()?;
    Ok((
        TcpContextLayer::new(TcpContext::default().cluster_id(Some(CLUSTER_ID.into()))),
        TcpBytesLayer::default(),
        frames::InlineFrameLayer,
    )
        .into_layer(route))
}

/// Accepts connections until aborted; each is served on a task of its own,
/// and every one of them ends with this one.
async fn serve(listener: TcpListener, service: Protocol) {
    let service = std::sync::Arc::new(service);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let service = service.clone();
                    let connection = async move {
                        if let Err(error) = service.serve(Context::default(), stream).await {
                            tracing::debug!(?error, "a broker connection ended");
                        }
                    };
                    connections.spawn(fetch::LAST_RECORDS.scope(std::cell::Cell::new(None), connection));
                }
                Err(error) => {
                    tracing::warn!(%error, "the embedded broker could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Deletes the records below `offset` of each `(topic, partition, offset)`
/// (the Kafka `DeleteRecords` request): what every reader has passed.
/// Returns the new log start of each. One call, one client: a caller that
/// trims again and again keeps a [`RecordDeleter`].
pub async fn delete_records(
    settings: &KafkaSettings,
    below: &[(String, i32, i64)],
) -> Result<Vec<(String, i32, i64)>, MessagingError> {
    RecordDeleter::new(settings).delete_below(below).await
}

/// Deletes records through one admin client kept from call to call.
///
/// A client made and dropped for every call costs its threads, a
/// connection and a metadata request each time, and `udders up` trims
/// every second; dropping one also waits, on the calling thread, for its
/// threads to end. The client is replaced after a failed call, and after
/// every broker went away as the [`Sentinel`] it is watched by reports (a
/// broker that comes back empty recreates its topics, and a client that
/// knew the old ones must not talk to it; see [`WatchfulContext`]). An
/// admin client hears no such report itself: rust-rdkafka's does not ask
/// librdkafka for error events.
pub struct RecordDeleter {
    settings: KafkaSettings,
    context: WatchfulContext,
    admin: Option<AdminClient<WatchfulContext>>,
}

impl std::fmt::Debug for RecordDeleter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordDeleter").field("connected", &self.admin.is_some()).finish()
    }
}

impl RecordDeleter {
    /// A deleter for the brokers of `settings`; its client is made on first use.
    pub fn new(settings: &KafkaSettings) -> Self {
        Self { settings: settings.clone(), context: WatchfulContext::default(), admin: None }
    }

    /// Replaces its client after every loss `sentinel` hears.
    pub fn watched_by(self, sentinel: &Sentinel) -> Self {
        sentinel.watch(&self.context);
        self
    }

    /// [`delete_records`] through the kept client.
    pub async fn delete_below(
        &mut self,
        below: &[(String, i32, i64)],
    ) -> Result<Vec<(String, i32, i64)>, MessagingError> {
        if self.context.take_broker_lost() {
            self.admin = None;
        }
        let outcome = self.delete(below).await;
        if outcome.is_err() {
            self.admin = None;
        }
        outcome
    }

    async fn delete(&mut self, below: &[(String, i32, i64)]) -> Result<Vec<(String, i32, i64)>, MessagingError> {
        let admin = match &mut self.admin {
            Some(admin) => admin,
            None => self.admin.insert(
                self.settings
                    .admin_config()
                    .create_with_context(self.context.clone())
                    .map_err(MessagingError::Kafka)?,
            ),
        };
        let mut offsets = TopicPartitionList::new();
        for (topic, partition, offset) in below {
            offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset)).map_err(MessagingError::Kafka)?;
        }
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
        let deleted = admin.delete_records(&offsets, &options).await.map_err(MessagingError::Kafka)?;
        deleted
            .elements()
            .iter()
            .map(|e| match (e.error(), e.offset()) {
                (Ok(()), Offset::Offset(start)) => Ok((e.topic().to_owned(), e.partition(), start)),
                (Err(error), _) => Err(MessagingError::Kafka(error)),
                (Ok(()), other) => Err(MessagingError::Broker(format!("deleting records: log start {other:?}"))),
            })
            .collect()
    }
}

/// Waits until a broker answers a metadata request.
pub async fn wait_for_broker(settings: &KafkaSettings, timeout: Duration) -> Result<(), MessagingError> {
    let config = settings.admin_config();
    let bootstrap = settings.bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create().map_err(MessagingError::Kafka)?;
        let deadline = Instant::now() + timeout;
        loop {
            match consumer.fetch_metadata(None, Duration::from_millis(500)) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(MessagingError::Broker(format!("no broker answered at {bootstrap}: {e}")));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    })
    .await
    .map_err(|e| MessagingError::Broker(e.to_string()))?
}

/// Assigns every partition of `topic` to `consumer`, each from its start.
pub fn assign_from_start<C: rdkafka::consumer::ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
    partitions: i32,
) -> Result<(), MessagingError> {
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).map_err(MessagingError::Kafka)?;
    }
    consumer.assign(&tpl).map_err(MessagingError::Kafka)
}
