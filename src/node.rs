//! One service in its own process (`udders service NAME`): its database
//! (PostgreSQL or SQLite, by URL), its relay, its consumer in the service's
//! consumer group, its background work (the order service's deadline
//! sweeper, the notification sender and backfill), and an HTTP port with its
//! own routes, `/livez`, `/readyz` and `/metrics`. Start several instances of one service on one database: the
//! group shares the partitions out, outbox claims keep the relays apart.
//!
//! [`start_handler`] is also how the one-process [`crate::system::System`]
//! starts each of its services, so both topologies run the same wiring: the
//! service's module in the [`crate::registry`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::http::Extensions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use udders_contracts::{Catalog, Service};
use udders_eventstore::{EventStore, StoreOptions};
use udders_messaging::pruning::{Retention, run_pruner};
use udders_messaging::{KafkaSettings, Membership};
use udders_runtime::access::Access;
use udders_runtime::module::{Background, Wiring};
use udders_runtime::{Outbound, RunningService};

use crate::http::{AppState, serve};

/// Partitions per topic when each service runs in its own processes: the
/// instances of a service share them (at most this many do work at once).
pub const DEFAULT_PARTITIONS: i32 = 6;

/// What a listener's fetch waits for: this many bytes, or this long.
pub const LISTENER_FETCH_MIN_BYTES: u32 = 64 * 1024;
/// See [`LISTENER_FETCH_MIN_BYTES`].
pub const LISTENER_FETCH_WAIT_MS: u32 = 250;

/// Starts `service`'s relay and consumer with its own handler (its module's
/// in the [`crate::registry`]), a listener with its own fetch tuning.
pub fn start_handler(service: Service, store: EventStore, mut wiring: Wiring) -> anyhow::Result<RunningService> {
    // No order waits on a listener: it asks the broker less often and takes
    // more per answer, which leaves the broker to the saga.
    if service.is_listener() {
        let settings = &mut wiring.settings;
        settings.fetch_min_bytes = LISTENER_FETCH_MIN_BYTES;
        settings.fetch_wait_max_ms = settings.fetch_wait_max_ms.max(LISTENER_FETCH_WAIT_MS);
    }
    let running = crate::registry::module(service).start(store, wiring)?;
    Ok(running)
}

/// Seeds a service's reference data, when its module has any (the stock,
/// for inventory). Instances starting together may race on it: a loser
/// tries again and finds it done.
pub async fn seed(service: Service, store: &EventStore, catalog: &Arc<Catalog>) -> anyhow::Result<()> {
    let module = crate::registry::module(service);
    let outbound = Outbound::new(service, catalog.clone());
    let mut attempts = 0;
    loop {
        match module.seed(store, &outbound).await {
            Ok(()) => return Ok(()),
            Err(error) if attempts < 5 => {
                attempts += 1;
                tracing::info!(%service, %error, "seeding the reference data raced another instance; trying again");
                tokio::time::sleep(Duration::from_millis(100 * attempts)).await;
            }
            Err(error) => return Err(error.context(format!("seeding the {service} reference data"))),
        }
    }
}

/// Warns when the Udders topics that exist live on one broker of a cluster
/// of several: one disk's loss would lose their events (docs/adr/0017).
async fn warn_when_thinly_replicated(settings: &KafkaSettings, catalog: &Catalog) {
    let topics: Vec<String> = catalog.all_topics().into_iter().collect();
    match udders_messaging::topics::cluster_replication(settings, &topics).await {
        Ok((brokers, found)) => {
            let thin = udders_messaging::topics::thinly_replicated(brokers, &found);
            if !thin.is_empty() {
                tracing::warn!(
                    brokers,
                    topics = %thin.join(", "),
                    "topics with one replica on a cluster of several brokers: a broker's loss loses their events; \
                     raise their replication (kafka-reassign-partitions) and set --replication-factor for new ones"
                );
            }
        }
        Err(error) => tracing::debug!(%error, "could not read the cluster's replication"),
    }
}

/// How to run one service.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Which service.
    pub service: Service,
    /// `postgres://…` or `sqlite:PATH`.
    pub database_url: String,
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// Its HTTP port.
    pub http_addr: SocketAddr,
    /// Names this instance (outbox claims, client ids, logs).
    pub instance: String,
    /// Partitions of the topics it creates.
    pub partitions: i32,
    /// Replicas of the topics it creates (`None`: the cluster's default).
    pub replication_factor: Option<i32>,
    /// `min.insync.replicas` of the topics it creates (`None`: the cluster's).
    pub min_insync_replicas: Option<u32>,
    /// Longest fetch wait, milliseconds.
    pub fetch_wait_ms: u32,
    /// The saga deadline (order service).
    pub deadline: Duration,
    /// The door's bound on a new order's wait (order service; `None`:
    /// [`udders_order::admission::default_wait`] of the deadline).
    pub admission_wait: Option<Duration>,
    /// How often overdue orders are looked for (order service).
    pub sweep_every: Duration,
    /// How long published outbox rows and inbox ids are kept (raised to
    /// cover the relay's re-send window).
    pub retention: Retention,
    /// How far back the relay sends what it published again when the
    /// broker lost its log.
    pub republish_window: Duration,
    /// Where the order service answers (notification's backfill).
    pub order_url: Option<String>,
    /// The operator token and the POS API keys.
    pub access: Access,
}

/// One running service.
#[derive(Debug)]
pub struct Node {
    /// Where its HTTP port listens.
    pub http_addr: SocketAddr,
    /// Which service.
    pub service: Service,
    store: EventStore,
    cancel: CancellationToken,
    running: RunningService,
    background: Vec<JoinHandle<()>>,
    http_stop: CancellationToken,
    http: JoinHandle<std::io::Result<()>>,
}

impl Node {
    /// Opens the database (applying migrations), seeds, starts the relay,
    /// the consumer (as a member of the service's group) and HTTP.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Node> {
        let service = config.service;
        let admission_wait = udders_order::admission::admission_wait(config.deadline, config.admission_wait)
            .map_err(anyhow::Error::msg)?;
        let catalog = Arc::new(crate::catalog::udders()?);
        let shown = config.database_url.split('@').next_back().unwrap_or_default().to_owned();
        let store = EventStore::connect(&config.database_url, &StoreOptions::default())
            .await
            .with_context(|| format!("opening the {service} database at {shown}"))?;
        seed(service, &store, &catalog).await?;
        let settings = KafkaSettings {
            partitions: config.partitions,
            fetch_wait_max_ms: config.fetch_wait_ms,
            replication_factor: config.replication_factor,
            min_insync_replicas: config.min_insync_replicas,
            ..KafkaSettings::new(config.bootstrap.clone())
        };
        let cancel = CancellationToken::new();
        // The order service's deadline sweeper, notification's sender (with
        // a courier of its own) and backfill.
        let mut background = crate::registry::module(service).background(&Background {
            store: store.clone(),
            outbound: Outbound::new(service, catalog.clone()),
            cancel: cancel.clone(),
            sweep_every: config.sweep_every,
            order_url: config.order_url.clone(),
            extras: Extensions::new(),
        });
        let wiring = Wiring {
            settings: settings.clone(),
            catalog: catalog.clone(),
            instance: config.instance.clone(),
            membership: Membership::Group,
            cancel: cancel.clone(),
            republish_window: config.republish_window,
            shared: None,
        };
        let running = start_handler(service, store.clone(), wiring)?;
        let retention = config.retention.covering(config.republish_window);
        let every = udders_messaging::pruning::EVERY;
        background.push(tokio::spawn(run_pruner(store.clone(), service.name(), retention, every, cancel.clone())));
        // Once the consumer holds its partitions, the topics it reads exist
        // (and the relay has made its own): only then can their replication
        // be read, on a fresh cluster as on a running one.
        let (mut watch, stop) = (running.watch.clone(), cancel.clone());
        let (cluster, topics) = (settings.clone(), catalog.clone());
        background.push(tokio::spawn(async move {
            tokio::select! {
                () = watch.wait_ready() => warn_when_thinly_replicated(&cluster, &topics).await,
                () = stop.cancelled() => {}
            }
        }));
        let order = (service == Service::Order).then(|| {
            udders_order::OrderApi::new(
                store.clone(),
                Outbound::new(service, catalog.clone()),
                config.deadline,
                admission_wait,
            )
        });
        let state = AppState {
            stores: BTreeMap::from([(service, store.clone())]),
            catalog,
            running: Arc::new(Mutex::new(BTreeMap::from([(service, running.watch.clone())]))),
            expected: 1,
            order,
            access: config.access.clone(),
            stopping: CancellationToken::new(),
            replayers: Arc::new(Mutex::new(BTreeMap::from([(service, running.replayer.clone())]))),
        };
        let (http_addr, http_stop, http) = serve(config.http_addr, state).await?;
        Ok(Node { http_addr, service, store, cancel, running, background, http_stop, http })
    }

    /// True once its consumer holds its share of the partitions.
    pub fn is_ready(&self) -> bool {
        self.running.is_ready()
    }

    /// Stops intake (HTTP), then the sweeper, the consumer (after the batch
    /// in hand) and the relay (after publishing what is committed, within
    /// its drain timeout), then closes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.http_stop.cancel();
        let served = self.http.await;
        self.cancel.cancel();
        for task in self.background {
            let _ = task.await;
        }
        let joined = self.running.join().await;
        self.store.close().await;
        served.context("the HTTP task")?.context("serving HTTP")?;
        joined.with_context(|| format!("stopping {}", self.service))
    }
}
