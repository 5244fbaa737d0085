//! One running service: its outbox relay and its consumer, wired from the
//! catalog (the topics its patterns need, its routes in priority order, its
//! dead-letter topic), and the replayer of its parked dead letters.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use udders_contracts::{Catalog, Service};
use udders_eventstore::EventStore;
use udders_messaging::{
    ConsumerConfig, ConsumerWatch, Handler, KafkaSettings, Membership, MessagingError, Relay, RelayConfig,
    ReplayDeadLetter, Replayer, SharedClients, SharedProducer, spawn_consumer,
};

/// What a service needs to run.
#[derive(Debug)]
pub struct ServiceSpec<H> {
    /// Which service.
    pub service: Service,
    /// Its database.
    pub store: EventStore,
    /// What it does with incoming events.
    pub handler: H,
    /// Names this instance's outbox claims (`order-1`, ...).
    pub instance: String,
    /// The only instance, or one of several sharing the partitions.
    pub membership: Membership,
    /// How far back its relay sends what it published again when the
    /// broker lost its log ([`RelayConfig::republish_window`]).
    pub republish_window: Duration,
    /// The producer and sentinel it shares with the other services of this
    /// process; `None`: clients of its own.
    pub shared: Option<SharedClients>,
}

/// A service whose relay and consumer run.
#[derive(Debug)]
pub struct RunningService {
    /// Which service.
    pub service: Service,
    /// Its database.
    pub store: EventStore,
    /// Its consumer's readiness and counters.
    pub watch: ConsumerWatch,
    /// Replays its parked dead letters through its handler.
    pub replayer: Arc<dyn ReplayDeadLetter>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), MessagingError>>)>,
}

impl RunningService {
    /// True once its consumer has its partitions and records flow.
    pub fn is_ready(&self) -> bool {
        self.watch.is_ready()
    }

    /// Waits for the relay and the consumer to stop (after the cancel), and
    /// reports the first failure.
    pub async fn join(self) -> Result<(), MessagingError> {
        let mut first = Ok(());
        for (what, task) in self.tasks {
            let outcome = task
                .await
                .map_err(|e| MessagingError::Broker(format!("{} {what} task: {e}", self.service)))
                .and_then(|r| r);
            if let Err(error) = outcome {
                tracing::error!(service = %self.service, what, %error, "stopped with an error");
                if first.is_ok() {
                    first = Err(error);
                }
            }
        }
        first
    }
}

/// The consumer configuration of a service, from the catalog.
pub fn consumer_config(service: Service, catalog: Arc<Catalog>) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(service.name(), catalog.clone(), service.dead_letter_topic());
    config.topics = catalog.topics_for(service).into_iter().map(str::to_owned).collect();
    for (subscription, mine) in catalog.routes_of(service) {
        config.routes.push((subscription.route.to_owned(), subscription.pattern.clone()));
        if !mine {
            config.routes_elsewhere.push(subscription.route.to_owned());
        }
    }
    config
}

/// Starts a service's relay and consumer on the current runtime; both stop on `cancel`.
pub fn start_service<H: Handler + Clone + std::fmt::Debug>(
    spec: ServiceSpec<H>,
    settings: &KafkaSettings,
    catalog: Arc<Catalog>,
    cancel: CancellationToken,
) -> Result<RunningService, MessagingError> {
    let ServiceSpec { service, store, handler, instance, membership, republish_window, shared } = spec;
    // Two instances of a service differ in their client ids too.
    let settings = &KafkaSettings { client_id: Some(format!("{service}-{instance}")), ..settings.clone() };
    let producer = match &shared {
        Some(shared) => shared.producer.clone(),
        None => SharedProducer::new(settings)?,
    };
    let relay = Relay::with_producer(
        store.clone(),
        settings.clone(),
        RelayConfig { republish_window, ..RelayConfig::new(format!("{service}-{instance}"), service.topic()) },
        producer,
    );
    let relay = tokio::spawn(relay.run(cancel.clone()));
    let mut config = consumer_config(service, catalog);
    config.membership = membership;
    config.sentinel = shared.map(|shared| shared.sentinel);
    let replayer = Replayer::shared(store.clone(), config.clone(), handler.clone());
    let (consumer, watch) = spawn_consumer(store.clone(), settings.clone(), config, handler, cancel)?;
    Ok(RunningService { service, store, watch, replayer, tasks: vec![("relay", relay), ("consumer", consumer)] })
}
