//! The one-process system of `udders up`: the embedded broker, the
//! services (each with its own SQLite database, relay and consumer, from its
//! module in the [`crate::registry`]), their background work (the saga
//! deadline sweeper, the notification sender and backfill), the broker's
//! log trimmer and one HTTP port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::http::Extensions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use udders_contracts::{Catalog, Service};
use udders_eventstore::{EventStore, StoreOptions};
use udders_messaging::pruning::{Retention, run_pruner};
use udders_messaging::{
    ConsumerWatch, EmbeddedBroker, KafkaSettings, Membership, RecordDeleter, RelayConfig, SharedClients, ensure_topics,
};
use udders_runtime::access::Access;
use udders_runtime::module::{Background, Wiring};
use udders_runtime::{Outbound, RunningService};

use crate::http::{AppState, Replayers, serve};

/// How to run the system.
#[derive(Debug, Clone)]
pub struct SystemConfig {
    /// The HTTP port (port 0 picks a free one).
    pub http_addr: SocketAddr,
    /// Where the embedded broker listens (port 0 picks a free one).
    pub broker_addr: SocketAddr,
    /// One SQLite file per service lives here.
    pub data_dir: PathBuf,
    /// Partitions per topic.
    pub partitions: i32,
    /// The saga deadline.
    pub deadline: Duration,
    /// The door's bound on a new order's wait (`None`:
    /// [`udders_order::admission::default_wait`] of the deadline).
    pub admission_wait: Option<Duration>,
    /// Longest wait of a consumer's fetch, milliseconds.
    pub fetch_wait_ms: u32,
    /// How often overdue orders are looked for.
    pub sweep_every: Duration,
    /// How often the broker drops records every consumer has passed.
    pub trim_every: Duration,
    /// How far back a relay sends its events again when the broker is new
    /// (a restart of the embedded broker): the inboxes drop duplicates.
    pub republish_window: Duration,
    /// How long published outbox rows and inbox ids are kept (raised to
    /// cover `republish_window`).
    pub retention: Retention,
    /// How often each store is pruned.
    pub prune_every: Duration,
    /// Services not started (their databases are opened): for fault tests.
    pub stopped: Vec<Service>,
    /// The token operator actions need (`None`: they are refused).
    pub operator_token: Option<String>,
    /// API keys the POS needs (empty: the POS is open).
    pub api_keys: Vec<String>,
    /// Services whose database is at this URL (`postgres://…`) instead of
    /// a SQLite file in `data_dir`: how the tests run the system on
    /// PostgreSQL too.
    pub database_urls: BTreeMap<Service, String>,
    /// How each SQLite store is opened (its caches).
    pub store_options: StoreOptions,
    /// What each consumer fetches ahead of its handler, KiB at most.
    pub consumer_queue_kib: u32,
}

impl SystemConfig {
    /// The defaults of `udders up` with data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            broker_addr: SocketAddr::from(([127, 0, 0, 1], 9092)),
            data_dir: data_dir.into(),
            // One consumer per service reads every partition: more would
            // only add fetch work for the broker (docs/benchmarks.md).
            partitions: 1,
            deadline: udders_order::DEFAULT_DEADLINE,
            admission_wait: None,
            fetch_wait_ms: KafkaSettings::DEFAULT_FETCH_WAIT_MS,
            sweep_every: Duration::from_millis(500),
            trim_every: Duration::from_secs(1),
            republish_window: RelayConfig::DEFAULT_REPUBLISH_WINDOW,
            retention: Retention::DEFAULT,
            prune_every: udders_messaging::pruning::EVERY,
            stopped: Vec::new(),
            operator_token: Some(udders_runtime::access::Access::random_token()),
            api_keys: Vec::new(),
            database_urls: BTreeMap::new(),
            store_options: StoreOptions::default(),
            consumer_queue_kib: KafkaSettings::DEFAULT_CONSUMER_QUEUE_KIB,
        }
    }
}

/// The running system.
#[derive(Debug)]
pub struct System {
    /// Where HTTP is served.
    pub http_addr: SocketAddr,
    /// Where the broker listens.
    pub broker_addr: SocketAddr,
    /// Each service's database.
    pub stores: BTreeMap<Service, EventStore>,
    catalog: Arc<Catalog>,
    settings: KafkaSettings,
    /// The producer every service's relay sends through, and the sentinel
    /// every consumer hears the broker's loss through.
    shared: SharedClients,
    republish_window: Duration,
    broker: EmbeddedBroker,
    running: Arc<Mutex<BTreeMap<Service, ConsumerWatch>>>,
    replayers: Replayers,
    services: Vec<(Service, CancellationToken, RunningService)>,
    background: CancellationToken,
    trimmer: JoinHandle<()>,
    pruners: Vec<JoinHandle<()>>,
    /// The services' background work (the sweeper, the sender, the backfill).
    tasks: Vec<JoinHandle<()>>,
    courier: Arc<udders_notification::SimulatedCourier>,
    http_stop: CancellationToken,
    http: JoinHandle<std::io::Result<()>>,
}

impl System {
    /// Opens the databases, starts the broker, seeds reference data, starts
    /// the services and serves HTTP.
    pub async fn start(config: SystemConfig) -> anyhow::Result<System> {
        let admission_wait = udders_order::admission::admission_wait(config.deadline, config.admission_wait)
            .map_err(anyhow::Error::msg)?;
        let catalog = Arc::new(crate::catalog::udders()?);
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
        let mut stores = BTreeMap::new();
        for service in Service::ALL {
            let store = match config.database_urls.get(&service) {
                Some(url) => EventStore::connect(url, &StoreOptions::default()).await.with_context(|| {
                    format!("opening the {service} database at {}", url.split('@').next_back().unwrap_or_default())
                })?,
                None => {
                    let path = config.data_dir.join(format!("{service}.db"));
                    EventStore::open_sqlite(&path, &config.store_options)
                        .await
                        .with_context(|| format!("opening the {service} database at {}", path.display()))?
                }
            };
            stores.insert(service, store);
        }
        let broker = EmbeddedBroker::start(config.broker_addr).await.context("starting the embedded broker")?;
        let settings = KafkaSettings {
            partitions: config.partitions,
            fetch_wait_max_ms: config.fetch_wait_ms,
            consumer_queue_kib: config.consumer_queue_kib,
            ..KafkaSettings::new(broker.bootstrap())
        };
        // A topic that had to be created means a new (or emptied) broker:
        // what its service published lately may never have been consumed, so
        // its outbox sends that window again (inboxes drop the duplicates).
        // Deployables that publish as one service share its topic: each of
        // their outboxes sends its window again when the topic is new.
        let window = config.republish_window;
        let mut new_topics = std::collections::BTreeSet::new();
        for service in Service::ALL {
            if ensure_topics(&settings, &[service.topic().to_owned()]).await.context("creating the topics")? > 0 {
                new_topics.insert(service.topic());
            }
            ensure_topics(&settings, &[service.dead_letter_topic()]).await.context("creating the topics")?;
        }
        for service in Service::ALL {
            if new_topics.contains(service.topic()) {
                let requeued = stores[&service].unpublish_recent(window).await?;
                if requeued > 0 {
                    tracing::info!(%service, requeued, "new broker: recent events queued to be sent again");
                }
            }
        }
        for (service, store) in &stores {
            crate::node::seed(*service, store, &catalog).await?;
        }

        // One producer, one sentinel for every service of this process (ADR 0024).
        let shared = SharedClients::start(&settings)?;
        let background = CancellationToken::new();
        let trimmer = tokio::spawn(trim_the_broker_log(
            settings.clone(),
            RecordDeleter::new(&settings).watched_by(&shared.sentinel),
            stores.clone(),
            catalog.clone(),
            config.trim_every,
            background.clone(),
        ));
        let retention = config.retention.covering(config.republish_window);
        let pruners = stores
            .iter()
            .map(|(service, store)| {
                let (store, cancel) = (store.clone(), background.clone());
                tokio::spawn(run_pruner(store, service.name(), retention, config.prune_every, cancel))
            })
            .collect();
        let running = Arc::new(Mutex::new(BTreeMap::new()));
        let replayers: Replayers = Arc::new(Mutex::new(BTreeMap::new()));
        let every_store: Vec<(Service, EventStore)> = stores.iter().map(|(s, store)| (*s, store.clone())).collect();
        let order_outbound = Outbound::new(Service::Order, catalog.clone());
        let order = udders_order::OrderApi::new(
            stores[&Service::Order].clone(),
            order_outbound,
            config.deadline,
            admission_wait,
        )
        .with_dead_letter_stores(every_store);
        let state = AppState {
            stores: stores.clone(),
            catalog: catalog.clone(),
            running: running.clone(),
            expected: Service::ALL.len(),
            order: Some(order),
            access: Access::new(config.operator_token.clone(), config.api_keys.clone()),
            stopping: CancellationToken::new(),
            replayers: replayers.clone(),
        };
        let (http_addr, http_stop, http) = serve(config.http_addr, state).await?;
        // Notification reads the history it missed from the order service:
        // here, this process's own port.
        let order_url = if http_addr.ip().is_unspecified() {
            format!("http://127.0.0.1:{}", http_addr.port())
        } else {
            format!("http://{http_addr}")
        };
        // The notification sender sends through this courier, which the
        // system keeps to show what was sent (`System::courier`).
        let courier = Arc::new(udders_notification::SimulatedCourier::new());
        let mut extras = Extensions::new();
        extras.insert(courier.clone());
        let mut tasks = Vec::new();
        for (service, store) in &stores {
            tasks.extend(crate::registry::module(*service).background(&Background {
                store: store.clone(),
                outbound: Outbound::new(*service, catalog.clone()),
                cancel: background.clone(),
                sweep_every: config.sweep_every,
                order_url: Some(order_url.clone()),
                extras: extras.clone(),
            }));
        }
        let mut system = System {
            http_addr,
            broker_addr: broker.addr(),
            stores,
            catalog,
            shared,
            settings,
            republish_window: config.republish_window,
            broker,
            running,
            replayers,
            services: Vec::new(),
            background,
            trimmer,
            pruners,
            tasks,
            courier,
            http_stop,
            http,
        };
        for service in Service::ALL {
            if !config.stopped.contains(&service) {
                system.start_service(service)?;
            }
        }
        Ok(system)
    }

    /// Starts one service's relay and consumer (again, after [`System::stop_service`]).
    pub fn start_service(&mut self, service: Service) -> anyhow::Result<()> {
        anyhow::ensure!(!self.services.iter().any(|(s, ..)| *s == service), "{service} is already running");
        let store = self.stores[&service].clone();
        let cancel = CancellationToken::new();
        let wiring = Wiring {
            settings: self.settings.clone(),
            catalog: self.catalog.clone(),
            instance: "1".to_owned(),
            membership: Membership::Alone,
            cancel: cancel.clone(),
            republish_window: self.republish_window,
            shared: Some(self.shared.clone()),
        };
        let running = crate::node::start_handler(service, store, wiring)?;
        self.running.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.insert(service, running.watch.clone());
        self.replayers.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.insert(service, running.replayer.clone());
        self.services.push((service, cancel, running));
        Ok(())
    }

    /// Stops one service's relay and consumer (its database stays open).
    pub async fn stop_service(&mut self, service: Service) -> anyhow::Result<()> {
        let at = self.services.iter().position(|(s, ..)| *s == service).context("not running")?;
        let (_, cancel, running) = self.services.remove(at);
        self.running.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.remove(&service);
        self.replayers.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.remove(&service);
        cancel.cancel();
        running.join().await?;
        Ok(())
    }

    /// True when every service's consumer is running.
    pub fn is_ready(&self) -> bool {
        self.services.len() == Service::ALL.len() && self.services.iter().all(|(_, _, r)| r.is_ready())
    }

    /// Waits until [`System::is_ready`], at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.services.iter().all(|(_, _, r)| r.is_ready()) {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the services were not ready within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The courier the notification service sends through.
    pub fn courier(&self) -> &Arc<udders_notification::SimulatedCourier> {
        &self.courier
    }

    /// The event catalog in use.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Stops intake (HTTP), then the background work (the deadline sweeper,
    /// the notification sender, ...), then every service (each relay drains
    /// what is committed), then the broker.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.http_stop.cancel();
        let served = self.http.await;
        self.background.cancel();
        let _ = self.trimmer.await;
        for task in self.pruners.into_iter().chain(self.tasks) {
            let _ = task.await;
        }
        let mut first: anyhow::Result<()> = Ok(());
        for (service, cancel, running) in self.services {
            cancel.cancel();
            if let Err(error) = running.join().await
                && first.is_ok()
            {
                first = Err(anyhow::Error::new(error).context(format!("stopping {service}")));
            }
        }
        for store in self.stores.values() {
            store.close().await;
        }
        self.broker.stop().await;
        served.context("the HTTP task")?.context("serving HTTP")?;
        first
    }
}

/// Every `every`, deletes from each topic the records that every service
/// reading it has handled, by the positions stored in the services'
/// databases (the Kafka `DeleteRecords` request). The record just before
/// each position stays: a consumer that resumes checks it (ADR 0009). A
/// service that never stored a position for a partition (one that has not
/// run yet) keeps that partition whole.
async fn trim_the_broker_log(
    settings: KafkaSettings,
    mut deleter: RecordDeleter,
    stores: BTreeMap<Service, EventStore>,
    catalog: Arc<Catalog>,
    every: Duration,
    cancel: CancellationToken,
) {
    let readers: BTreeMap<&str, Vec<Service>> = Service::ALL.iter().fold(BTreeMap::new(), |mut readers, service| {
        for topic in catalog.topics_for(*service) {
            readers.entry(topic).or_insert_with(Vec::new).push(*service);
        }
        readers
    });
    let mut trimmed: BTreeMap<(String, i32), i64> = BTreeMap::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let mut positions = BTreeMap::new();
        for (service, store) in &stores {
            positions.insert(*service, store.positions(service.name()).await.unwrap_or_default());
        }
        let mut passed: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for (topic, services) in &readers {
            for partition in 0..settings.partitions {
                let next = |service: &Service| {
                    let stored = positions[service].iter().find(|p| p.topic == *topic && p.partition == partition);
                    stored.map_or(0, |p| p.next_offset)
                };
                let lowest = services.iter().map(next).min().unwrap_or(0);
                passed.insert(((*topic).to_owned(), partition), lowest - 1);
            }
        }
        let below: Vec<(String, i32, i64)> = passed
            .into_iter()
            .filter(|(key, offset)| *offset > trimmed.get(key).copied().unwrap_or(0))
            .map(|((topic, partition), offset)| (topic, partition, offset))
            .collect();
        if below.is_empty() {
            continue;
        }
        match deleter.delete_below(&below).await {
            Ok(starts) => {
                for (topic, partition, start) in starts {
                    trimmed.insert((topic, partition), start);
                }
            }
            Err(error) => tracing::debug!(%error, "trimming the broker log failed; trying again"),
        }
    }
}
