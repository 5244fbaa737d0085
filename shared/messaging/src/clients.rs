//! The Kafka clients the services of one process share.
//!
//! Every librdkafka client is threads of its own (a polling thread, one per
//! broker, its main thread) and requests of its own. `udders up` runs every
//! service in one process, against the same brokers, so its services share
//! [`SharedClients`]: one producer for every relay, and one [`Sentinel`]
//! for every consumer. A process of one service (`udders service`) makes
//! its own.
//!
//! Sharing the producer: the relays send to different topics, so one
//! produce request carries several relays' records to a broker, and one
//! polling thread takes every delivery report. Order is kept as before: each
//! relay awaits its own sends, and the records of one order come from one
//! store, so from one relay.
//!
//! When every broker goes away, the producer's id and sequence numbers mean
//! nothing to the broker that comes back. The first relay to notice asks
//! for a new client ([`SharedProducer::renewed`]); the others find it made
//! and take it. Each relay counts the losses it has seen, so each one also
//! re-queues its own recent window.

use std::sync::{Arc, Mutex};

use rdkafka::producer::FutureProducer;

use crate::MessagingError;
use crate::kafka::{KafkaSettings, Sentinel, WatchfulContext};

/// The producer a process's relays share, and what renews it.
#[derive(Clone)]
pub struct SharedProducer {
    settings: KafkaSettings,
    /// Hears "every broker is down" for every client this has made.
    context: WatchfulContext,
    current: Arc<Mutex<Current>>,
}

struct Current {
    producer: FutureProducer<WatchfulContext>,
    /// The count of losses when this client was made.
    made_after: u64,
}

impl std::fmt::Debug for SharedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedProducer").field("client_id", &self.settings.client_id()).finish()
    }
}

impl SharedProducer {
    /// A producer for the brokers of `settings`, named by its `client_id`.
    pub fn new(settings: &KafkaSettings) -> Result<Self, MessagingError> {
        let context = WatchfulContext::default();
        let producer = Self::make(settings, &context)?;
        let current = Arc::new(Mutex::new(Current { producer, made_after: context.losses() }));
        Ok(Self { settings: settings.clone(), context, current })
    }

    fn make(
        settings: &KafkaSettings,
        context: &WatchfulContext,
    ) -> Result<FutureProducer<WatchfulContext>, MessagingError> {
        settings.producer_config().create_with_context(context.clone()).map_err(MessagingError::Kafka)
    }

    /// How many times every broker was reported down to this producer's clients.
    pub fn losses(&self) -> u64 {
        self.context.losses()
    }

    /// The client in use, with the count of losses it was made after: a
    /// loss counted past that one is one this client has not survived.
    pub fn current(&self) -> (FutureProducer<WatchfulContext>, u64) {
        let current = self.lock();
        (current.producer.clone(), current.made_after)
    }

    /// A client made after `losses` losses, with the count it was made
    /// after: the one in use if it was, otherwise a new one that replaces it
    /// (the old one closes when its last sender lets go of it).
    pub fn renewed(&self, losses: u64) -> Result<(FutureProducer<WatchfulContext>, u64), MessagingError> {
        let mut current = self.lock();
        if current.made_after < losses {
            // Counted before the client is made: a late report of the old
            // client counted meanwhile renews once more, which re-sends a
            // window the inboxes drop, rather than being missed.
            let made_after = self.context.losses().max(losses);
            current.producer = Self::make(&self.settings, &self.context)?;
            current.made_after = made_after;
        }
        Ok((current.producer.clone(), current.made_after))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        // Nothing panics while holding it; a poisoned lock still holds a client.
        self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What the services of one process share: the producer of their relays
/// and the sentinel of their consumers.
#[derive(Debug, Clone)]
pub struct SharedClients {
    /// Every relay sends through it.
    pub producer: SharedProducer,
    /// Every consumer hears the broker's loss through it.
    pub sentinel: Arc<Sentinel>,
}

impl SharedClients {
    /// Both clients, for the brokers of `settings`, on the current runtime.
    pub fn start(settings: &KafkaSettings) -> Result<Self, MessagingError> {
        let producer = SharedProducer::new(settings)?;
        let sentinel = Arc::new(Sentinel::start(settings).map_err(MessagingError::Kafka)?);
        Ok(Self { producer, sentinel })
    }
}
