//! Record, publish, project: what every handler and command does with the
//! events its decider returned, in one transaction.

use std::sync::Arc;

use serde::Deserialize;
use udders_contracts::{Catalog, Envelope, Integration, Route, Service};
use udders_eventstore::{Document, EventMetadata, Loaded, StoreError, Tx};
use udders_kernel::{Aggregate, CorrelationId, EventId, ReadModel, Timestamp};
use udders_messaging::Incoming;
use udders_messaging::outbound::outbox_message;
use uuid::Uuid;

use crate::clock;

/// Why events are being recorded: the incoming event (or request) they
/// answer. Outgoing events inherit its correlation id and the last three
/// levels of its subject (product, country, channel), and name it as their
/// causation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The saga's id.
    pub correlation_id: CorrelationId,
    /// The event being answered (`None` for a request at the point of sale).
    pub causation_id: Option<EventId>,
    /// W3C trace context: the span the events are recorded in, or, with
    /// tracing off, the incoming record's, passed along.
    pub traceparent: Option<String>,
    /// Product level of outgoing subjects.
    pub product: String,
    /// Country level.
    pub country: String,
    /// Channel level.
    pub channel: String,
    /// When the recorded events happen.
    pub time: Timestamp,
}

impl Cause {
    /// The cause of a handler's events: the record it is handling.
    pub fn of(incoming: &Incoming) -> Cause {
        let levels: Vec<&str> = incoming.envelope.subject.levels().collect();
        let level = |i: usize| levels.get(i).copied().unwrap_or("none").to_owned();
        Cause {
            correlation_id: incoming.envelope.correlation_id,
            causation_id: Some(incoming.envelope.id),
            traceparent: udders_messaging::trace::traceparent_of(&tracing::Span::current())
                .or_else(|| incoming.envelope.traceparent.clone()),
            product: level(5),
            country: level(6),
            channel: level(7),
            time: clock::now(),
        }
    }

    /// The cause of a new saga (a request at the point of sale).
    pub fn new_saga(product: String, country: String, channel: String) -> Cause {
        Cause {
            correlation_id: CorrelationId::from_uuid(Uuid::now_v7()),
            causation_id: None,
            traceparent: udders_messaging::trace::traceparent_of(&tracing::Span::current()),
            product,
            country,
            channel,
            time: clock::now(),
        }
    }

    /// The metadata of events recorded for this cause.
    pub fn metadata(&self) -> EventMetadata {
        EventMetadata {
            correlation_id: Some(self.correlation_id),
            causation_id: self.causation_id,
            occurred_at: self.time,
        }
    }
}

/// A service's way out: turns integration events into outbox rows on its
/// topic, with subjects from the catalog.
#[derive(Debug, Clone)]
pub struct Outbound {
    service: Service,
    catalog: Arc<Catalog>,
}

impl Outbound {
    /// The way out of `service`.
    pub fn new(service: Service, catalog: Arc<Catalog>) -> Self {
        Self { service, catalog }
    }

    /// The service it publishes for.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The catalog it publishes by.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Writes the outbox row of one integration event. `event_id` is the id
    /// the event has in the store (so the wire and the store agree), and
    /// `sequence` its version in its stream. `version` picks the payload
    /// version when the catalog has several (`order/init` 1.1 and 1.2).
    pub async fn enqueue(
        &self,
        tx: &mut Tx,
        cause: &Cause,
        event_id: EventId,
        sequence: u64,
        event: &Integration,
        version: Option<&str>,
    ) -> Result<(), StoreError> {
        let (domain, action) = event.name();
        let bad = |reason: String| StoreError::Encode { what: format!("{domain}/{action}"), reason };
        let spec = self
            .catalog
            .spec_named(domain, action, version)
            .ok_or_else(|| bad(format!("not in the catalog (version {version:?})")))?;
        if spec.publisher != self.service.publishes_as() {
            return Err(bad(format!("published by {}, not {}", spec.publisher, self.service)));
        }
        let subject = spec.subject(&cause.product, &cause.country, &cause.channel).map_err(|e| bad(e.to_string()))?;
        let envelope = Envelope {
            id: event_id,
            source: format!("/udders/{}", self.service),
            event_type: spec.cloudevents_type(),
            subject,
            time: cause.time,
            correlation_id: cause.correlation_id,
            causation_id: cause.causation_id,
            traceparent: cause.traceparent.clone(),
            sequence,
        };
        tx.enqueue(&[outbox_message(spec.topic(), &event.key(), &envelope, &event.payload())?]).await?;
        if let Some(kind) = event.compensation_kind() {
            crate::metrics::saga().compensated(tx, self.service, kind);
        }
        Ok(())
    }
}

/// Records decided events on a loaded aggregate and publishes those that
/// `publish` maps to integration events. Returns the new events' ids.
pub async fn record<A: Aggregate>(
    tx: &mut Tx,
    loaded: &mut Loaded<A>,
    events: Vec<A::Event>,
    cause: &Cause,
    outbound: &Outbound,
    mut publish: impl FnMut(&A::Event) -> Option<(Integration, Option<String>)>,
) -> Result<Vec<EventId>, StoreError>
where
    A::Event: Clone,
{
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let first_version = loaded.version + 1;
    let ids = tx.record(loaded, events.clone(), cause.metadata()).await?;
    for (i, (event, id)) in events.iter().zip(&ids).enumerate() {
        if let Some((integration, version)) = publish(event) {
            outbound.enqueue(tx, cause, *id, first_version + i as u64, &integration, version.as_deref()).await?;
        }
    }
    Ok(ids)
}

/// [`record`], then folds the events into the aggregate's read model.
pub async fn record_viewed<A: ReadModel>(
    tx: &mut Tx,
    loaded: &mut Loaded<A>,
    events: Vec<A::Event>,
    cause: &Cause,
    outbound: &Outbound,
    publish: impl FnMut(&A::Event) -> Option<(Integration, Option<String>)>,
) -> Result<Vec<EventId>, StoreError>
where
    A::Event: Clone,
{
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let before = loaded.state.clone();
    let key = loaded.stream.id().to_owned();
    if loaded.version == 0 {
        // The document folds the aggregate's events: there are none yet.
        tx.document_is_new(A::VIEW, &key);
    }
    let ids = record(tx, loaded, events.clone(), cause, outbound, publish).await?;
    project::<A>(tx, &key, before, &events).await?;
    Ok(ids)
}

/// Folds events into the read model of the aggregate `key`, starting from
/// the state before them. Used live and by replay.
pub async fn project<A: ReadModel>(
    tx: &mut Tx,
    key: &str,
    mut state: A::State,
    events: &[A::Event],
) -> Result<(), StoreError> {
    let mut doc: Option<A::Doc> = match tx.document_ref(A::VIEW, key).await? {
        Some(found) => Some(A::Doc::deserialize(&found.doc).map_err(|e| StoreError::Corrupt {
            what: format!("read model {}/{key}", A::VIEW),
            reason: e.to_string(),
        })?),
        None => None,
    };
    for event in events {
        state = A::evolve(state, event);
        doc = A::project(key, doc, &state, event);
    }
    if let Some(doc) = doc {
        let (tags, due) = (A::tags(&doc), A::due(&doc));
        let value = serde_json::to_value(&doc)
            .map_err(|e| StoreError::Encode { what: format!("read model {}/{key}", A::VIEW), reason: e.to_string() })?;
        tx.put_document(Document { view: A::VIEW.to_owned(), key: key.to_owned(), doc: value, tags, due }).await?;
    }
    Ok(())
}

/// The integration event of an incoming record. A payload that does not fit
/// its subject is a permanent failure: the record is dead-lettered at once.
pub fn integration(incoming: &Incoming) -> Result<Integration, udders_messaging::HandlerError> {
    Integration::parse(&incoming.envelope.subject, incoming.payload.clone())
        .map_err(|e| udders_messaging::HandlerError::permanent(e.to_string()))
}

/// The typed route an incoming record came on, read from the name the
/// consumer gave it. A name `service`'s routes do not know is a permanent
/// failure (the record is dead-lettered with the reason), never a fallback.
pub fn route<R: Route>(incoming: &Incoming, service: Service) -> Result<R, udders_messaging::HandlerError> {
    route_named(&incoming.route, service)
}

/// The typed route of this name, as [`route`] reads it.
pub fn route_named<R: Route>(name: &str, service: Service) -> Result<R, udders_messaging::HandlerError> {
    R::from_name(name).ok_or_else(|| {
        udders_messaging::HandlerError::permanent(format!("no route {name:?} in {service}'s subscriptions"))
    })
}

/// An operator's change to reference data (a price, a stock, a credit
/// limit): one command on one aggregate in a transaction of its own,
/// recorded, published and projected like any other. `decide` maps the
/// state to events (or a refusal); a conflict with a concurrent writer
/// decides again on the newer state, up to 10 attempts. Returns the state
/// after the change.
pub async fn change_reference<A: ReadModel>(
    store: &udders_eventstore::EventStore,
    outbound: &Outbound,
    id: &str,
    cause: &Cause,
    mut decide: impl FnMut(&A::State) -> Result<Vec<A::Event>, crate::http::Problem>,
    publish: impl Fn(&A::State, &A::Event) -> Option<Integration>,
) -> Result<A::State, crate::http::Problem>
where
    A::Event: Clone,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut tx = store.begin().await?;
        let mut loaded = tx.load::<A>(id).await?;
        let events = decide(&loaded.state)?;
        // Each event is published with the state it leaves behind.
        let mut state = loaded.state.clone();
        let mut published = Vec::with_capacity(events.len());
        for event in &events {
            state = A::evolve(state, event);
            published.push(publish(&state, event));
        }
        let mut published = published.into_iter();
        let recorded = record_viewed(&mut tx, &mut loaded, events, cause, outbound, |_| {
            published.next().flatten().map(|event| (event, None))
        })
        .await;
        let done = match recorded {
            Ok(_) => tx.commit().await,
            Err(e) => Err(e),
        };
        match done {
            Ok(()) => return Ok(loaded.state),
            Err(StoreError::Conflict { .. }) if attempts < 10 => continue,
            Err(StoreError::Conflict { .. }) => {
                return Err(crate::http::Problem::conflict(format!(
                    "{id} was changed concurrently {attempts} times; try again"
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
}
