//! The catalog: every event and every subscription of Udders, checked as
//! one. Topic routing, the start-up check and the published event catalog
//! all come from it.
//!
//! What lives here: the published events, which are the contract
//! ([`udders_events`]: subject, payload schema and version, publisher, Kafka
//! topic); the [`Catalog`] type, its check ([`Catalog::assemble`],
//! [`Catalog::check`]: dead patterns, duplicates, foreign emits, event
//! loops) and its views (routes, topics, answerers, JSON, markdown,
//! AsyncAPI). What does not: the subscriptions. Each service declares its
//! own in its domain crate, beside its `react`, as a typed `Route` enum and
//! a `SUBSCRIPTIONS` table ([`crate::Subscribe`]); the `udders` binary
//! (`src/catalog.rs`, `udders::catalog::udders`) assembles them with these
//! events.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use schemars::{JsonSchema, Schema, schema_for};
use serde::Serialize;
use serde_json::{Value, json};

use crate::events::{
    CreditLimitChanged, CreditMoved, OrderCalledOff, OrderInvalidated, OrderPlaced, OrderPlacedV1_2, OrderShipped,
    OrderValidated, PaymentMoved, PriceChanged, StepRefused, StockMoved, StockRestocked,
};
use crate::pattern::{LevelValue, Pattern};
use crate::subject::{Subject, SubjectError};

/// The services: the six of the saga, and those that only listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// The POS API and the order lifecycle.
    Order,
    /// Business rules per payload version and country.
    Validation,
    /// The US rule set of payload 1.2, deployed on its own: part of
    /// validation (it publishes validation's events on validation's topic).
    #[serde(rename = "validation-us")]
    ValidationUs,
    /// Customer credit limits and reservations.
    Credit,
    /// Stock per flavour and country.
    Inventory,
    /// Charges and refunds.
    Payment,
    /// Shipments.
    Fulfillment,
    /// Tells customers how their orders went (listens only: it answers nothing).
    Notification,
    /// The 711 chain's sales and Singapore's orders waiting for dispatch (listens only).
    Insights,
}

impl Service {
    /// Every service: the saga's six in saga order, then the listeners.
    pub const ALL: [Service; 9] = [
        Service::Order,
        Service::Validation,
        Service::ValidationUs,
        Service::Credit,
        Service::Inventory,
        Service::Payment,
        Service::Fulfillment,
        Service::Notification,
        Service::Insights,
    ];

    /// Its name, as in `udders service NAME`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Order => "order",
            Service::Validation => "validation",
            Service::ValidationUs => "validation-us",
            Service::Credit => "credit",
            Service::Inventory => "inventory",
            Service::Payment => "payment",
            Service::Fulfillment => "fulfillment",
            Service::Notification => "notification",
            Service::Insights => "insights",
        }
    }

    /// The service whose events it publishes: itself, except for a
    /// deployable that runs some of another service's routes on its own
    /// (validation-us, for validation).
    pub fn publishes_as(self) -> Service {
        match self {
            Service::ValidationUs => Service::Validation,
            other => other,
        }
    }

    /// The one Kafka topic it publishes to: its own, shared only by the
    /// deployables that publish as it ([`Service::publishes_as`]).
    pub fn topic(self) -> &'static str {
        match self.publishes_as() {
            Service::Order => "udders.order",
            Service::Validation | Service::ValidationUs => "udders.validation",
            Service::Credit => "udders.credit",
            Service::Inventory => "udders.inventory",
            Service::Payment => "udders.payment",
            Service::Fulfillment => "udders.fulfillment",
            Service::Notification => "udders.notification",
            Service::Insights => "udders.insights",
        }
    }

    /// True for a service outside the saga that only listens (it answers
    /// nothing, and no order waits on it).
    pub fn is_listener(self) -> bool {
        matches!(self, Service::Notification | Service::Insights)
    }

    /// Where its consumer sends records it cannot handle: one per
    /// deployable, `udders.<name>.dlq`.
    pub fn dead_letter_topic(self) -> String {
        format!("udders.{}.dlq", self.name())
    }

    /// The service of this name.
    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The fixed levels of every Udders subject.
pub const CATEGORY: &str = "icecream";
/// The brand level.
pub const BRAND: &str = "udders";

/// One catalogued event type: `domain/action/version/icecream/udders/{product}/{country}/{channel}`.
#[derive(Debug, Clone)]
pub struct EventSpec {
    /// First level, for example `order`.
    pub domain: &'static str,
    /// Second level, for example `init`.
    pub action: &'static str,
    /// Third level: the payload schema version.
    pub version: &'static str,
    /// Who publishes it.
    pub publisher: Service,
    /// What it means.
    pub summary: &'static str,
    /// The payload type's name.
    pub payload: &'static str,
    schema: fn() -> Schema,
}

impl EventSpec {
    fn new<T: JsonSchema>(
        domain: &'static str,
        action: &'static str,
        version: &'static str,
        publisher: Service,
        summary: &'static str,
    ) -> Self {
        let payload = std::any::type_name::<T>().rsplit("::").next().unwrap_or("payload");
        Self { domain, action, version, publisher, summary, payload, schema: || schema_for!(T) }
    }

    /// `domain/action`, the event's name in the catalog.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.action)
    }

    /// The CloudEvents type: `udders.<domain>.<action>`.
    pub fn cloudevents_type(&self) -> String {
        format!("udders.{}.{}", self.domain, self.action)
    }

    /// The subject template, variable levels in braces.
    pub fn template(&self) -> String {
        format!(
            "{}/{}/{}/{CATEGORY}/{BRAND}/{{product}}/{{country}}/{{channel}}",
            self.domain, self.action, self.version
        )
    }

    /// The subject of one such event.
    pub fn subject(&self, product: &str, country: &str, channel: &str) -> Result<Subject, SubjectError> {
        Subject::from_levels([self.domain, self.action, self.version, CATEGORY, BRAND, product, country, channel])
    }

    /// The template as matcher levels: fixed levels known, the rest any.
    pub fn levels(&self) -> [LevelValue<'static>; 8] {
        [
            LevelValue::Is(self.domain),
            LevelValue::Is(self.action),
            LevelValue::Is(self.version),
            LevelValue::Is(CATEGORY),
            LevelValue::Is(BRAND),
            LevelValue::Any,
            LevelValue::Any,
            LevelValue::Any,
        ]
    }

    /// True when a subject is an instance of this event type.
    pub fn describes(&self, subject: &Subject) -> bool {
        let mut levels = subject.levels();
        [self.domain, self.action, self.version, CATEGORY, BRAND].iter().all(|fixed| levels.next() == Some(fixed))
    }

    /// The payload's JSON Schema.
    pub fn schema(&self) -> Schema {
        (self.schema)()
    }

    /// The topic it travels on.
    pub fn topic(&self) -> &'static str {
        self.publisher.topic()
    }
}

/// One subscription: a service listening on a pattern.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Who listens.
    pub service: Service,
    /// A short name for the route, for example `rules-1.2-us`.
    pub route: &'static str,
    /// What it listens to.
    pub pattern: Pattern,
    /// The events (`domain/action`, the service's own) the route may publish
    /// in answer to what it hears; empty for routes that only record (the
    /// order service following every event, fulfillment calling off a
    /// shipment, inventory booking a shipment). The loop check reads it.
    pub emits: &'static [&'static str],
}

impl Subscription {
    /// True when the route publishes an answer to what it hears.
    pub fn answers(&self) -> bool {
        !self.emits.is_empty()
    }
}

/// A catalog that does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// A subscription's pattern matches no catalogued event.
    #[error("the {service} subscription {route:?} on {pattern:?} matches no catalogued event")]
    DeadSubscription {
        /// Who.
        service: Service,
        /// Which route.
        route: &'static str,
        /// The pattern.
        pattern: String,
    },
    /// A pattern in the declaration does not parse.
    #[error("the {service} subscription {route:?}: {reason}")]
    BadPattern {
        /// Who.
        service: Service,
        /// Which route.
        route: &'static str,
        /// The parser's words.
        reason: String,
    },
    /// Two events share a subject template.
    #[error("the event {0} is declared twice")]
    Duplicate(String),
    /// A route says it publishes an event that is not catalogued, or that
    /// another service publishes.
    #[error("the {service} subscription {route:?} emits {event:?}, which is not a catalogued event of {service}")]
    UnknownEmit {
        /// Who.
        service: Service,
        /// Which route.
        route: &'static str,
        /// The event named.
        event: &'static str,
    },
    /// An event can cause itself: the chain of events, first and last the same.
    #[error("an event can cause itself (an infinite event loop): {}", .0.join(" -> "))]
    Loop(Vec<String>),
}

/// Every event and every subscription of Udders.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The event types.
    pub events: Vec<EventSpec>,
    /// The subscriptions, in priority order per service (first match routes).
    pub subscriptions: Vec<Subscription>,
}

/// The events Udders publishes, in the order the catalog lists them: the
/// contract every service keeps. The subscriptions are declared by the
/// services (see [`crate::Subscribe`]).
pub fn udders_events() -> Vec<EventSpec> {
    use Service::*;
    vec![
        EventSpec::new::<OrderPlaced>("order", "init", "1.1", Order, "The point of sale placed an order."),
        EventSpec::new::<OrderPlacedV1_2>(
            "order",
            "init",
            "1.2",
            Order,
            "An order in payload version 1.2: lines with SKU and size, money with its currency.",
        ),
        EventSpec::new::<OrderValidated>("order", "valid", "1.0", Validation, "The order passed its rule set."),
        EventSpec::new::<OrderInvalidated>("order", "invalid", "1.0", Validation, "The order broke its rule set."),
        EventSpec::new::<CreditMoved>(
            "credit",
            "reserved",
            "1.0",
            Credit,
            "The order amount is held against the customer's limit.",
        ),
        EventSpec::new::<StepRefused>(
            "credit",
            "rejected",
            "1.0",
            Credit,
            "The customer's available credit is too low.",
        ),
        EventSpec::new::<CreditMoved>(
            "credit",
            "released",
            "1.0",
            Credit,
            "A credit reservation was let go (compensation).",
        ),
        EventSpec::new::<CreditMoved>(
            "credit",
            "settled",
            "1.0",
            Credit,
            "The order shipped: its hold became a sale and left the customer's reserved credit.",
        ),
        EventSpec::new::<StockMoved>("inventory", "reserved", "1.0", Inventory, "Stock is held for the order."),
        EventSpec::new::<StepRefused>("inventory", "rejected", "1.0", Inventory, "Not enough stock."),
        EventSpec::new::<StockMoved>(
            "inventory",
            "released",
            "1.0",
            Inventory,
            "A stock reservation was let go or restocked (compensation).",
        ),
        EventSpec::new::<PaymentMoved>("payment", "captured", "1.0", Payment, "The card was charged."),
        EventSpec::new::<StepRefused>("payment", "declined", "1.0", Payment, "The card was declined."),
        EventSpec::new::<PaymentMoved>("payment", "refunded", "1.0", Payment, "A capture was refunded (compensation)."),
        EventSpec::new::<OrderShipped>("order", "shipped", "1.0", Fulfillment, "The carrier took the parcel."),
        EventSpec::new::<StepRefused>("fulfillment", "failed", "1.0", Fulfillment, "The carrier cannot deliver."),
        EventSpec::new::<OrderCalledOff>("order", "cancelled", "1.0", Order, "The customer cancelled before shipping."),
        EventSpec::new::<OrderCalledOff>("order", "expired", "1.0", Order, "The saga deadline passed."),
        EventSpec::new::<PriceChanged>(
            "price",
            "changed",
            "1.0",
            Order,
            "Reference data: the point of sale prices a flavour in a country anew (orders in flight keep theirs).",
        ),
        EventSpec::new::<StockRestocked>(
            "stock",
            "restocked",
            "1.0",
            Inventory,
            "Reference data: goods were added to a flavour's stock in a country.",
        ),
        EventSpec::new::<CreditLimitChanged>(
            "credit",
            "limit-changed",
            "1.0",
            Credit,
            "Reference data: a customer's credit limit changed (holds already taken stay).",
        ),
    ]
}

impl Catalog {
    /// The catalog of `events` and `subscriptions` (each service's in its
    /// priority order: the first match routes), checked (see
    /// [`Catalog::check`]). A pattern that does not parse was refused when
    /// its row became a [`Subscription`] ([`CatalogError::BadPattern`]).
    pub fn assemble(events: Vec<EventSpec>, subscriptions: Vec<Subscription>) -> Result<Catalog, CatalogError> {
        let catalog = Catalog { events, subscriptions };
        catalog.check()?;
        Ok(catalog)
    }

    /// Checks that every subscription matches at least one catalogued event,
    /// that no event is declared twice, that every route emits only its own
    /// service's catalogued events, and that no event can cause itself.
    pub fn check(&self) -> Result<(), CatalogError> {
        let mut seen = BTreeSet::new();
        for e in &self.events {
            if !seen.insert(e.template()) {
                return Err(CatalogError::Duplicate(e.template()));
            }
        }
        for s in &self.subscriptions {
            if self.matched_by(&s.pattern).next().is_none() {
                return Err(CatalogError::DeadSubscription {
                    service: s.service,
                    route: s.route,
                    pattern: s.pattern.to_string(),
                });
            }
            for &event in s.emits {
                let own = self.events.iter().any(|e| e.name() == event && e.publisher == s.service.publishes_as());
                if !own {
                    return Err(CatalogError::UnknownEmit { service: s.service, route: s.route, event });
                }
            }
        }
        match self.find_loop() {
            Some(chain) => Err(CatalogError::Loop(chain)),
            None => Ok(()),
        }
    }

    /// What each event can cause: `domain/action` to every event a route that
    /// hears it may publish in answer.
    pub fn causes(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for event in &self.events {
            let effects = graph.entry(event.name()).or_default();
            for s in self.subscriptions.iter().filter(|s| s.pattern.could_match(&event.levels())) {
                effects.extend(s.emits.iter().map(|e| (*e).to_owned()));
            }
        }
        graph
    }

    /// A chain of events that leads back to its first one, if the
    /// subscriptions allow any (depth-first search over [`Catalog::causes`]).
    pub fn find_loop(&self) -> Option<Vec<String>> {
        fn visit(
            node: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(start) = path.iter().position(|n| n == node) {
                let mut chain = path[start..].to_vec();
                chain.push(node.to_owned());
                return Some(chain);
            }
            if done.contains(node) {
                return None;
            }
            path.push(node.to_owned());
            for next in graph.get(node).into_iter().flatten() {
                if let Some(chain) = visit(next, graph, path, done) {
                    return Some(chain);
                }
            }
            path.pop();
            done.insert(node.to_owned());
            None
        }
        let graph = self.causes();
        let mut done = BTreeSet::new();
        graph.keys().find_map(|start| visit(start, &graph, &mut Vec::new(), &mut done))
    }

    /// The event types a pattern can match.
    pub fn matched_by<'a>(&'a self, pattern: &'a Pattern) -> impl Iterator<Item = &'a EventSpec> {
        self.events.iter().filter(move |e| pattern.could_match(&e.levels()))
    }

    /// A service's subscriptions, in priority order.
    pub fn subscriptions_of(&self, service: Service) -> impl Iterator<Item = &Subscription> {
        self.subscriptions.iter().filter(move |s| s.service == service)
    }

    /// The routes a service's consumer tries, in priority order, each with
    /// whether the service handles it: its own subscriptions, and those of
    /// every deployable publishing as the same service. A record goes to
    /// the first route that matches; one whose first match belongs to a
    /// sibling is the sibling's, and this service passes it by.
    pub fn routes_of(&self, service: Service) -> impl Iterator<Item = (&Subscription, bool)> {
        self.subscriptions
            .iter()
            .filter(move |s| s.service.publishes_as() == service.publishes_as())
            .map(move |s| (s, s.service == service))
    }

    /// The topics a service must read: those of every event its patterns can match.
    pub fn topics_for(&self, service: Service) -> BTreeSet<&'static str> {
        self.subscriptions_of(service).flat_map(|s| self.matched_by(&s.pattern).map(EventSpec::topic)).collect()
    }

    /// Every topic that carries events, plus every dead-letter topic.
    pub fn all_topics(&self) -> BTreeSet<String> {
        let mut topics: BTreeSet<String> = Service::ALL.iter().map(|s| s.topic().to_owned()).collect();
        topics.extend(Service::ALL.iter().map(|s| s.dead_letter_topic()));
        topics
    }

    /// The event type a subject belongs to.
    pub fn spec_of(&self, subject: &Subject) -> Option<&EventSpec> {
        self.events.iter().find(|e| e.describes(subject))
    }

    /// The event type named `domain/action`, in `version` when given (else
    /// the first declared).
    pub fn spec_named(&self, domain: &str, action: &str, version: Option<&str>) -> Option<&EventSpec> {
        self.events.iter().find(|e| e.domain == domain && e.action == action && version.is_none_or(|v| e.version == v))
    }

    /// The services that answer an event type: each publishes something
    /// once it has handled it (in saga order, each once). A deployable
    /// counts as the service it publishes as: `order/init` 1.2 is answered
    /// by validation, through validation or validation-us.
    pub fn answerers_of(&self, event: &EventSpec) -> Vec<Service> {
        let mut services: Vec<Service> = self
            .subscriptions
            .iter()
            .filter(|s| s.answers() && s.pattern.could_match(&event.levels()))
            .map(|s| s.service.publishes_as())
            .collect();
        services.sort();
        services.dedup();
        services
    }

    /// The services (with routes) that subscribe to an event type.
    pub fn subscribers_of(&self, event: &EventSpec) -> Vec<(Service, &'static str)> {
        let mut subscribers: Vec<(Service, &'static str)> = self
            .subscriptions
            .iter()
            .filter(|s| s.pattern.could_match(&event.levels()))
            .map(|s| (s.service, s.route))
            .collect();
        subscribers.dedup();
        subscribers
    }

    /// The catalog as JSON: every event with its subject template, version,
    /// publisher, topic, payload schema and subscribers.
    pub fn to_json(&self) -> Value {
        let events: Vec<Value> = self
            .events
            .iter()
            .map(|e| {
                json!({
                    "name": e.name(),
                    "subject": e.template(),
                    "version": e.version,
                    "type": e.cloudevents_type(),
                    "summary": e.summary,
                    "publisher": e.publisher,
                    "topic": e.topic(),
                    "payload": e.payload,
                    "schema": e.schema(),
                    "subscribers": self.subscribers_of(e).iter()
                        .map(|(s, route)| json!({ "service": s, "route": route })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let subscriptions: Vec<Value> = self
            .subscriptions
            .iter()
            .map(|s| json!({ "service": s.service, "route": s.route, "pattern": s.pattern.as_str() }))
            .collect();
        json!({ "events": events, "subscriptions": subscriptions })
    }

    /// The catalog as markdown, for `docs/events.md`: every event with its
    /// publisher and each service that reacts to it (route, and what it
    /// may publish in answer), then each service's subscriptions in the
    /// order they are tried. A test keeps the committed copy current.
    pub fn to_markdown(&self) -> String {
        let cell = |text: &str| text.replace('|', "\\|");
        let emits = |s: &Subscription| if s.emits.is_empty() { "nothing".to_owned() } else { s.emits.join(", ") };
        let mut out = String::from(
            "# Events and who reacts to them\n\n\
             Generated from the catalog (`shared/contracts/src/catalog.rs`) by\n\
             `udders catalog --format markdown`; a test fails when this copy is stale.\n\n\
             ## Events\n\n\
             | event | version | published by (topic) | meaning | reacts: service (route) → may publish |\n\
             |---|---|---|---|---|\n",
        );
        for e in &self.events {
            let mut reactions: Vec<String> = Vec::new();
            for s in self.subscriptions.iter().filter(|s| s.pattern.could_match(&e.levels())) {
                let reaction = format!("{} ({}) → {}", s.service, s.route, emits(s));
                if !reactions.contains(&reaction) {
                    reactions.push(reaction);
                }
            }
            out.push_str(&format!(
                "| `{}` | {} | {} (`{}`) | {} | {} |\n",
                e.name(),
                e.version,
                e.publisher,
                e.topic(),
                cell(e.summary),
                if reactions.is_empty() { "nobody".to_owned() } else { reactions.join("<br>") }
            ));
        }
        out.push_str(
            "\n## Subscriptions\n\n\
             Each service tries its patterns in this order; the first that matches\n\
             a subject names the route.\n\n\
             | service | route | pattern | may publish |\n|---|---|---|---|\n",
        );
        for s in &self.subscriptions {
            out.push_str(&format!("| {} | {} | `{}` | {} |\n", s.service, s.route, s.pattern.as_str(), emits(s)));
        }
        out
    }

    /// The catalog as an AsyncAPI 3.0 document (a JSON value; see
    /// [`crate::yaml::to_yaml`] for the YAML form).
    pub fn to_asyncapi(&self) -> Value {
        let mut channels = serde_json::Map::new();
        let mut messages = serde_json::Map::new();
        let mut operations = serde_json::Map::new();
        let mut schemas = serde_json::Map::new();
        for service in Service::ALL {
            let mine: Vec<&EventSpec> = self.events.iter().filter(|e| e.publisher == service).collect();
            if mine.is_empty() {
                // A service that only listens has no channel of its own.
                continue;
            }
            let mut channel_messages = serde_json::Map::new();
            for e in &mine {
                let id = message_id(e);
                // A document-local `#/$defs/X` means nothing in AsyncAPI:
                // the definitions move to components.schemas.
                let mut payload = serde_json::to_value(e.schema()).unwrap_or_default();
                hoist_definitions(&mut payload, &mut schemas);
                messages.insert(
                    id.clone(),
                    json!({
                        "name": e.name(),
                        "title": format!("{} {}", e.name(), e.version),
                        "summary": e.summary,
                        "contentType": "application/json",
                        "headers": envelope_headers_schema(),
                        "payload": payload,
                        "bindings": { "kafka": { "key": { "type": "string", "description": "the order id (reference data: flavour-country, or the customer id)" } } },
                        "x-subject": e.template(),
                        "x-cloudevents-type": e.cloudevents_type(),
                    }),
                );
                channel_messages.insert(id.clone(), json!({ "$ref": format!("#/components/messages/{id}") }));
            }
            let channel = service.name().to_owned();
            channels.insert(
                channel.clone(),
                json!({ "address": service.topic(), "description": format!("Everything the {service} service publishes."), "messages": channel_messages }),
            );
            operations.insert(
                format!("{service}-publishes"),
                json!({ "action": "send", "channel": { "$ref": format!("#/channels/{channel}") } }),
            );
        }
        for s in &self.subscriptions {
            let matched: Vec<&EventSpec> = self.matched_by(&s.pattern).collect();
            let topics: BTreeSet<&str> = matched.iter().map(|e| e.topic()).collect();
            for topic in topics {
                let publisher = Service::ALL.into_iter().find(|p| p.topic() == topic).map_or("unknown", Service::name);
                let refs: Vec<Value> = matched
                    .iter()
                    .filter(|e| e.topic() == topic)
                    .map(|e| json!({ "$ref": format!("#/channels/{publisher}/messages/{}", message_id(e)) }))
                    .collect();
                operations.insert(
                    format!("{}-{}-from-{publisher}", s.service, s.route),
                    json!({
                        "action": "receive",
                        "channel": { "$ref": format!("#/channels/{publisher}") },
                        "summary": format!("{} ({}) listens on {}", s.service, s.route, s.pattern),
                        "messages": refs,
                        "x-pattern": s.pattern.as_str(),
                    }),
                );
            }
        }
        json!({
            "asyncapi": "3.0.0",
            "info": {
                "title": "Udders",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Event-sourced ice-cream order processing, choreographed over Kafka. Topics are one per publishing service; the taxonomy subject rides in the ce_subject header and subscriptions are wildcard patterns over it.",
            },
            "channels": channels,
            "operations": operations,
            "components": { "messages": messages, "schemas": schemas },
        })
    }
}

/// Moves a JSON Schema's `$defs` into `schemas` and points its references
/// (`#/$defs/X`) there (`#/components/schemas/X`). The same name always
/// comes from the same Rust type, so a definition met twice is the same.
fn hoist_definitions(schema: &mut Value, schemas: &mut serde_json::Map<String, Value>) {
    if let Some(Value::Object(defs)) = schema.as_object_mut().and_then(|o| o.remove("$defs")) {
        for (name, mut def) in defs {
            point_references(&mut def);
            schemas.entry(name).or_insert(def);
        }
    }
    point_references(schema);
}

fn point_references(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/components/schemas/{name}");
            }
            map.values_mut().for_each(point_references);
        }
        Value::Array(items) => items.iter_mut().for_each(point_references),
        _ => {}
    }
}

fn message_id(e: &EventSpec) -> String {
    format!("{}-{}-{}", e.domain, e.action, e.version.replace('.', "_"))
}

fn envelope_headers_schema() -> Value {
    let text = json!({ "type": "string" });
    let mut properties = serde_json::Map::new();
    for header in crate::envelope::REQUIRED_HEADERS {
        properties.insert(header.to_owned(), text.clone());
    }
    properties.insert(crate::envelope::TRACEPARENT.to_owned(), text.clone());
    properties.insert(crate::envelope::CAUSATION_ID.to_owned(), text);
    json!({ "type": "object", "properties": properties, "required": crate::envelope::REQUIRED_HEADERS })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribe::{Route, Subscribe};

    /// Routes for hand-built catalogs (the services' own are in their
    /// domain crates, and the whole Udders catalog in the `udders` crate).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Test {
        Rules,
        Release,
        Typo,
        Echo,
        Borrow,
    }

    impl Route for Test {
        const ALL: &'static [Test] = &[Test::Rules, Test::Release, Test::Typo, Test::Echo, Test::Borrow];

        fn name(self) -> &'static str {
            match self {
                Test::Rules => "rules-1.1",
                Test::Release => "release",
                Test::Typo => "typo",
                Test::Echo => "echo",
                Test::Borrow => "borrow",
            }
        }
    }

    /// The Udders events with these rows, assembled.
    fn catalog(rows: &[(Service, Subscribe<Test>)]) -> Result<Catalog, CatalogError> {
        let subscriptions =
            rows.iter().map(|(service, row)| row.subscription(*service)).collect::<Result<Vec<_>, _>>()?;
        Catalog::assemble(udders_events(), subscriptions)
    }

    /// `shared/contracts/schemas/`: the committed schema of every payload
    /// version. `UDDERS_BLESS_SCHEMAS=1` writes new versions and compatible
    /// changes there; a breaking change is never written.
    #[test]
    fn every_payload_version_keeps_its_committed_schema() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let bless = std::env::var_os("UDDERS_BLESS_SCHEMAS").is_some();
        let events = udders_events();
        let (mut problems, mut files) = (Vec::new(), BTreeSet::new());
        let write = |path: &std::path::Path, schema: &Value| {
            let text = serde_json::to_string_pretty(schema).unwrap() + "\n";
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(path, text)).unwrap();
        };
        for e in &events {
            let file = format!("{}.{}.{}.json", e.domain, e.action, e.version);
            let path = dir.join(&file);
            files.insert(file);
            let current = serde_json::to_value(e.schema()).unwrap();
            let Ok(text) = std::fs::read_to_string(&path) else {
                if bless {
                    write(&path, &current);
                } else {
                    problems.push(format!(
                        "{} {}: no committed schema (UDDERS_BLESS_SCHEMAS=1 writes it)",
                        e.name(),
                        e.version
                    ));
                }
                continue;
            };
            let committed: Value = serde_json::from_str(&text).unwrap();
            let breaking = crate::compat::breaking_changes(&committed, &current);
            if !breaking.is_empty() {
                problems.push(format!(
                    "{} {}: a breaking change that kept its version (publish a new version): {}",
                    e.name(),
                    e.version,
                    breaking.join("; ")
                ));
            } else if committed != current {
                if bless {
                    write(&path, &current);
                } else {
                    problems.push(format!(
                        "{} {}: changed compatibly; UDDERS_BLESS_SCHEMAS=1 refreshes the committed copy",
                        e.name(),
                        e.version
                    ));
                }
            }
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !files.contains(&name) {
                problems.push(format!("{name}: a committed payload version the catalog no longer publishes"));
            }
        }
        assert!(problems.is_empty(), "payload schemas:\n  {}", problems.join("\n  "));
    }

    #[test]
    fn the_udders_events_are_the_saga_and_the_reference_data() {
        let catalog = catalog(&[]).unwrap();
        assert_eq!(catalog.events.len(), 21, "18 saga events and 3 of reference data");
        assert!(catalog.subscriptions.is_empty());
    }

    #[test]
    fn a_subscription_that_matches_nothing_fails_the_check() {
        let err = catalog(&[(Service::Credit, Subscribe::new(Test::Typo, "credit/reserverd/>", &[]))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the credit subscription \"typo\" on \"credit/reserverd/>\" matches no catalogued event"
        );
    }

    #[test]
    fn a_pattern_that_does_not_parse_is_a_bad_pattern() {
        let err = catalog(&[(Service::Credit, Subscribe::new(Test::Typo, "credit//>", &[]))]).unwrap_err();
        assert!(matches!(err, CatalogError::BadPattern { service: Service::Credit, route: "typo", .. }), "{err}");
    }

    #[test]
    fn a_subscription_that_lets_an_event_cause_itself_is_refused() {
        // Payment declining whenever credit is released: credit releases on a
        // decline, so a decline would cause a decline, for ever.
        let err = catalog(&[
            (Service::Credit, Subscribe::new(Test::Release, "payment/declined/>", &["credit/released"])),
            (Service::Payment, Subscribe::new(Test::Echo, "credit/released/>", &["payment/declined"])),
        ])
        .unwrap_err();
        let CatalogError::Loop(chain) = &err else { panic!("{err}") };
        assert_eq!(chain.first(), chain.last());
        assert!(chain.contains(&"payment/declined".to_owned()) && chain.contains(&"credit/released".to_owned()));
        assert!(err.to_string().starts_with("an event can cause itself"), "{err}");
    }

    #[test]
    fn a_route_may_only_emit_its_own_services_catalogued_events() {
        let borrow = Subscribe::new(Test::Borrow, "order/valid/>", &["payment/captured"]);
        assert!(matches!(
            catalog(&[(Service::Credit, borrow)]),
            Err(CatalogError::UnknownEmit { event: "payment/captured", .. })
        ));
    }

    #[test]
    fn subjects_are_routed_to_their_event_type() {
        let catalog = catalog(&[]).unwrap();
        let subject: Subject = "order/shipped/1.0/icecream/udders/mango/sg/web".parse().unwrap();
        let spec = catalog.spec_of(&subject).unwrap();
        assert_eq!((spec.publisher, spec.topic()), (Service::Fulfillment, "udders.fulfillment"));
        assert!(catalog.spec_of(&"order/teleported/1.0/icecream/udders/mango/sg/web".parse().unwrap()).is_none());
    }

    #[test]
    fn the_json_catalog_carries_schemas_and_subscribers() {
        let rules = Subscribe::new(Test::Rules, "order/init/>", &["order/valid", "order/invalid"]);
        let json = catalog(&[(Service::Validation, rules)]).unwrap().to_json();
        let init = &json["events"][0];
        assert_eq!(init["subject"], "order/init/1.1/icecream/udders/{product}/{country}/{channel}");
        assert_eq!(init["schema"]["properties"]["items"]["type"], "array");
        assert!(init["schema"]["required"].as_array().unwrap().contains(&json!("customer_id")));
        assert!(init["subscribers"].as_array().unwrap().iter().any(|s| s["service"] == "validation"));
        assert_eq!(json["subscriptions"][0]["route"], "rules-1.1");
    }
}
