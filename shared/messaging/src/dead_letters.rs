//! Replaying a parked dead letter: the record is read back from the
//! service's database, checked and routed as the consumer would, and handled
//! by the service's own handler in one transaction with its inbox entry. A
//! record handled already is a duplicate to the inbox and changes nothing.

use std::sync::Arc;

use futures::future::BoxFuture;
use udders_eventstore::{DeadLetter, DeadLetterStatus, EventStore, StoreError};

use crate::consumer::{ConsumerConfig, Handler, RawRecord, parse_record, wall_clock};

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// The handler ran and its effects are committed.
    Handled,
    /// The inbox had it: it was handled before, nothing changed.
    Duplicate,
    /// No route of the service wants it any more.
    Skipped,
}

/// Why a replay did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No dead letter of this id.
    #[error("no dead letter {0}")]
    NotFound(i64),
    /// It is not parked (replayed or discarded already).
    #[error("dead letter {id} is {status}, not parked")]
    NotParked {
        /// Which.
        id: i64,
        /// Where it stands.
        status: &'static str,
    },
    /// It failed again; it stays parked with one more attempt.
    #[error("{0}")]
    FailedAgain(String),
    /// The database failed: nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The handler found its database away: nothing changed; try again.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// Replays one service's dead letters through its handler.
pub trait ReplayDeadLetter: Send + Sync + std::fmt::Debug {
    /// Replays dead letter `id`.
    fn replay(&self, id: i64) -> BoxFuture<'_, Result<Replayed, ReplayError>>;
}

/// The service's store, consumer configuration and a copy of its handler.
#[derive(Debug)]
pub struct Replayer<H> {
    store: EventStore,
    config: ConsumerConfig,
    handler: H,
}

impl<H: Handler + std::fmt::Debug> Replayer<H> {
    /// A replayer for the consumer configured by `config`.
    pub fn shared(store: EventStore, config: ConsumerConfig, handler: H) -> Arc<dyn ReplayDeadLetter> {
        Arc::new(Self { store, config, handler })
    }

    async fn run(&self, id: i64) -> Result<Replayed, ReplayError> {
        let letter = self.store.dead_letter(id).await?.ok_or(ReplayError::NotFound(id))?;
        if letter.status != DeadLetterStatus::Parked {
            return Err(ReplayError::NotParked { id, status: letter.status.as_str() });
        }
        let outcome = match self.handle(&letter).await {
            Ok(outcome) => outcome,
            Err(HandleError::Store(error)) => return Err(error.into()),
            Err(HandleError::Outage(reason)) => return Err(ReplayError::Unavailable(reason)),
            Err(HandleError::Record(reason)) => {
                self.store.dead_letter_failed_again(id, &reason, wall_clock()).await?;
                return Err(ReplayError::FailedAgain(reason));
            }
        };
        // Resolved after the effects committed: a crash in between leaves it
        // parked, and the next replay finds it in the inbox.
        self.store.resolve_dead_letter(id, DeadLetterStatus::Replayed, None).await?;
        tracing::info!(consumer = %self.config.name, id, ?outcome, "dead letter replayed");
        Ok(outcome)
    }

    async fn handle(&self, letter: &DeadLetter) -> Result<Replayed, HandleError> {
        let record = &letter.record;
        let headers: Vec<(&str, Option<&[u8]>)> =
            record.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref().map(str::as_bytes))).collect();
        let raw = RawRecord {
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
            key: record.key.as_deref().map(str::as_bytes),
            payload: record.payload.as_deref(),
            headers,
        };
        let Some(incoming) = parse_record(&self.config, raw).map_err(HandleError::Record)? else {
            return Ok(Replayed::Skipped);
        };
        let mut tx = self.store.begin().await.map_err(HandleError::Store)?;
        if !tx.inbox_record(&self.config.name, incoming.envelope.id).await.map_err(HandleError::Store)? {
            tx.rollback().await.map_err(HandleError::Store)?;
            return Ok(Replayed::Duplicate);
        }
        if let Err(error) = self.handler.handle(&mut tx, &incoming).await {
            let _ = tx.rollback().await;
            return Err(if error.outage {
                HandleError::Outage(error.message)
            } else {
                HandleError::Record(format!("handler failed: {error}"))
            });
        }
        tx.commit().await.map_err(HandleError::Store)?;
        Ok(Replayed::Handled)
    }
}

enum HandleError {
    Store(StoreError),
    Outage(String),
    Record(String),
}

impl<H: Handler + std::fmt::Debug> ReplayDeadLetter for Replayer<H> {
    fn replay(&self, id: i64) -> BoxFuture<'_, Result<Replayed, ReplayError>> {
        Box::pin(self.run(id))
    }
}
