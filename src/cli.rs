//! The command line of `udders`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Event-sourced ice-cream order processing, choreographed over Kafka.
#[derive(Debug, Parser)]
#[command(name = "udders", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines as `pretty` text or as `json` objects (one per line).
    #[arg(long, global = true, env = "UDDERS_LOG_FORMAT", default_value = "pretty")]
    pub log_format: LogFormat,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    Pretty,
    /// One JSON object per line, with the span fields (`order_id`, `correlation_id`).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the demo in one process: the embedded broker, the saga's six
    /// services (validation as two deployables: validation and
    /// validation-us), notification and insights (one SQLite database each) and
    /// the POS API on one HTTP port.
    Up(UpArgs),
    /// Run one service in its own process, on PostgreSQL (or SQLite) and
    /// Kafka; start several instances of a service to share its work.
    Service(ServiceArgs),
    /// Exit 0 when the `/readyz` of URL answers 200 (for container health checks).
    Healthcheck(HealthcheckArgs),
    /// Run the embedded Kafka-compatible broker (Tansu, memory storage) with
    /// every Udders topic created. It keeps nothing across a restart.
    Broker(BrokerArgs),
    /// Print the event catalog: every event, its publisher, topic, payload
    /// schema and subscribers.
    Catalog(CatalogArgs),
    /// Print every event whose subject matches PATTERN as it passes.
    Tap(TapArgs),
    /// Drive a running system with orders at a steady rate, then report
    /// throughput, latency, outcomes and the invariants.
    Load(LoadArgs),
    /// Drop a service's read models and rebuild them from its event log
    /// (run it while `udders up` is stopped).
    Replay(ReplayArgs),
    /// Measure a layer and print its figures.
    #[command(subcommand)]
    Bench(Bench),
    /// List, replay or discard the records a service's consumer gave up on
    /// (through a running process's HTTP API).
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLettersCommand),
    /// Change reference data, published as events: a flavour's price in a
    /// country, a restock, a customer's credit limit (needs the operator token).
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// `udders admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set FLAVOR's unit price in COUNTRY for orders placed from now on (`price/changed`).
    Price {
        #[command(flatten)]
        target: OperatorTarget,
        /// For example `mango`.
        flavor: String,
        /// For example `sg`.
        country: String,
        /// Minor units, for example 550.
        unit_price: i64,
    },
    /// Add ADD to FLAVOR's stock in COUNTRY (`stock/restocked`).
    Restock {
        #[command(flatten)]
        target: OperatorTarget,
        /// For example `durian`.
        flavor: String,
        /// For example `sg`.
        country: String,
        /// How many to add.
        add: i64,
    },
    /// Set CUSTOMER's credit limit for the reservations to come (`credit/limit-changed`).
    CreditLimit {
        #[command(flatten)]
        target: OperatorTarget,
        /// For example `cust-42`.
        customer: String,
        /// Minor units, for example 200000.
        limit: i64,
    },
}

/// Who may act: the same flags for `udders up` and `udders service`.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// The token operator actions (dead-letter replay and discard, admin)
    /// need as `Authorization: Bearer <token>` [default: `udders up` makes a
    /// random one at each start and prints it; `udders service` refuses
    /// operator actions].
    #[arg(long, env = "UDDERS_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// API keys, comma-separated, that `POST /orders` and cancel need (as
    /// `Authorization: Bearer <key>` or `X-API-Key`) [default: none, the POS is open].
    #[arg(long, env = "UDDERS_API_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<String>,
}

/// `udders dead-letters …`.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Print the dead letters, newest first.
    List(DeadLettersListArgs),
    /// Replay one dead letter (`service-number`), or with `--all` every parked one that matches.
    Replay(DeadLettersReplayArgs),
    /// Set a parked dead letter aside with a note.
    Discard(DeadLettersDiscardArgs),
}

/// The running process an operator command talks to, and who asks.
#[derive(Debug, Args)]
pub struct OperatorTarget {
    /// The process's HTTP address (in the one-process-per-service topology:
    /// the process of the service that owns the data).
    #[arg(long, env = "UDDERS_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The operator token (every change: replay, discard, admin).
    #[arg(long, env = "UDDERS_OPERATOR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeadLettersListArgs {
    #[command(flatten)]
    pub target: OperatorTarget,
    /// Only this service's.
    #[arg(long)]
    pub service: Option<String>,
    /// `parked`, `replayed` or `discarded`.
    #[arg(long)]
    pub status: Option<String>,
    /// Print the JSON the API answers.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeadLettersReplayArgs {
    #[command(flatten)]
    pub target: OperatorTarget,
    /// The dead letter, for example `validation-3`.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<String>,
    /// Every parked dead letter that matches --service and --reason.
    #[arg(long)]
    pub all: bool,
    /// With --all: only this service's.
    #[arg(long, requires = "all")]
    pub service: Option<String>,
    /// With --all: only those whose reason contains this text.
    #[arg(long, requires = "all")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeadLettersDiscardArgs {
    #[command(flatten)]
    pub target: OperatorTarget,
    /// The dead letter, for example `validation-3`.
    pub id: String,
    /// Why it is set aside.
    #[arg(long)]
    pub note: String,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Orders to post.
    #[arg(long, default_value_t = 1000)]
    pub orders: u64,
    /// Orders per second.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// The system's HTTP address.
    #[arg(long, env = "UDDERS_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The operator token: with it, the run first adds the stock its orders
    /// can take (`POST /admin/stock/{flavor}/{country}`), so stock never
    /// runs out and the mix holds at any rate and length; without it, a
    /// long run may drift.
    #[arg(long, env = "UDDERS_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// POSTs in flight at most.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// How long to wait for the last orders to finish, seconds; 0 posts and
    /// returns without waiting or checking.
    #[arg(long, default_value_t = 120)]
    pub wait_secs: u64,
    /// Where the credit read models answer, when not at --url (one process per service).
    #[arg(long, env = "UDDERS_CREDIT_URL")]
    pub credit_url: Option<String>,
    /// Where the inventory read models answer, when not at --url.
    #[arg(long, env = "UDDERS_INVENTORY_URL")]
    pub inventory_url: Option<String>,
    /// Where the payment read models answer, when not at --url.
    #[arg(long, env = "UDDERS_PAYMENT_URL")]
    pub payment_url: Option<String>,
    /// Where the fulfillment read models answer, when not at --url.
    #[arg(long, env = "UDDERS_FULFILLMENT_URL")]
    pub fulfillment_url: Option<String>,
    /// Where the notification read models answer, when not at --url.
    #[arg(long, env = "UDDERS_NOTIFICATION_URL")]
    pub notification_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The service: order, validation, validation-us, credit, inventory, payment, fulfillment, notification or insights.
    #[arg(env = "UDDERS_SERVICE")]
    pub service: String,
    /// Its database: `postgres://USER@HOST:PORT/DATABASE` (one database per
    /// service, shared by its instances) or `sqlite:PATH`.
    #[arg(long, env = "UDDERS_DATABASE_URL")]
    pub database_url: String,
    /// Kafka bootstrap servers, `host:port[,host:port…]`.
    #[arg(long, env = "UDDERS_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Its HTTP port: the service's routes, /livez, /readyz, /metrics.
    #[arg(long, env = "UDDERS_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: std::net::SocketAddr,
    /// Names this instance in outbox claims and client ids (default: `$HOSTNAME-<pid>`).
    #[arg(long, env = "UDDERS_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Where the order service answers (notification: the history it
    /// missed before its first start is read there; without it, none is).
    #[arg(long, env = "UDDERS_ORDER_URL")]
    pub order_url: Option<String>,
    /// Replicas of each topic it creates [default: the cluster's
    /// `default.replication.factor`; 1 on a cluster of one broker]. Set 3
    /// on a production cluster (docs/adr/0017).
    #[arg(long, env = "UDDERS_REPLICATION_FACTOR", value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: Option<i32>,
    /// `min.insync.replicas` of each topic it creates [default: the
    /// cluster's]. With `acks=all`, a write is acknowledged once this many
    /// replicas hold it; set 2 with 3 replicas.
    #[arg(long, env = "UDDERS_MIN_INSYNC_REPLICAS", value_parser = clap::value_parser!(u32).range(1..))]
    pub min_insync_replicas: Option<u32>,
    #[command(flatten)]
    pub saga: SagaArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub traces: TraceArgs,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The process's HTTP address.
    #[arg(env = "UDDERS_HEALTHCHECK_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The service: order, validation, validation-us, credit, inventory, payment, fulfillment, notification or insights.
    pub service: String,
    /// Where the service databases live.
    #[arg(long, env = "UDDERS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Where the broker listens (use a loopback address).
    #[arg(long, env = "UDDERS_BROKER_ADDR", default_value = "127.0.0.1:9092")]
    pub broker_addr: std::net::SocketAddr,
    /// Partitions of every topic.
    #[arg(long, env = "UDDERS_PARTITIONS", default_value_t = udders::node::DEFAULT_PARTITIONS)]
    pub partitions: i32,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CatalogFormat {
    /// Events with schemas and subscribers, and the subscriptions.
    Json,
    /// An AsyncAPI 3.0 document.
    Asyncapi,
    /// Markdown tables: each event and who reacts to it, each subscription
    /// (what `docs/events.md` holds).
    Markdown,
}

#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: CatalogFormat,
}

#[derive(Debug, Args)]
pub struct TapArgs {
    /// A subject pattern, for example 'order/>' or 'order/*/*/*/*/*/*/store711'.
    pub pattern: String,
    /// The broker to read from.
    #[arg(long, env = "UDDERS_BROKER_ADDR", default_value = "127.0.0.1:9092")]
    pub broker_addr: String,
    /// Print matching events already in the log too, not only new ones.
    #[arg(long)]
    pub from_beginning: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where the service databases live (one SQLite file per service).
    #[arg(long, env = "UDDERS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The HTTP port of the POS API and every query.
    #[arg(long, env = "UDDERS_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: std::net::SocketAddr,
    /// Where the embedded broker listens.
    #[arg(long, env = "UDDERS_BROKER_ADDR", default_value = "127.0.0.1:9092")]
    pub broker_addr: std::net::SocketAddr,
    #[command(flatten)]
    pub saga: SagaArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub traces: TraceArgs,
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// What each SQLite store and each consumer of `udders up` keeps in memory:
/// the bounds of their share of the process's resident memory
/// (docs/benchmarks.md, memory).
#[derive(Debug, Args)]
pub struct MemoryArgs {
    /// Aggregates and read-model documents each store keeps between
    /// transactions (ADR 0008); fewer cost reads of the database.
    #[arg(long, env = "UDDERS_STORE_CACHE", default_value_t = udders_eventstore::StoreOptions::SQLITE_CACHE_CAPACITY)]
    pub store_cache: usize,
    /// SQLite's page cache of each store's writer connection, KiB (each
    /// reader connection gets an eighth, at least 64).
    #[arg(long, env = "UDDERS_SQLITE_PAGE_CACHE_KIB", default_value_t = udders_eventstore::StoreOptions::SQLITE_PAGE_CACHE_KIB)]
    pub sqlite_page_cache_kib: u32,
    /// Records each consumer fetches ahead of its handler, KiB at most
    /// (librdkafka's `queued.max.messages.kbytes`).
    #[arg(long, env = "UDDERS_CONSUMER_QUEUE_KIB", default_value_t = udders_messaging::KafkaSettings::DEFAULT_CONSUMER_QUEUE_KIB)]
    pub consumer_queue_kib: u32,
}

/// How long a service's database keeps what it no longer needs: the same
/// flags for `udders up` and `udders service` (docs/adr/0019).
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Published outbox rows older than this are deleted (never less than
    /// the relay's re-send window, `--republish-window`).
    #[arg(long, env = "UDDERS_OUTBOX_RETENTION", default_value = "1h", value_parser = udders_runtime::clock::parse_long_duration)]
    pub outbox_retention: std::time::Duration,
    /// Inbox ids (the records a consumer has handled) older than this are
    /// deleted: keep them at least as long as the broker keeps records.
    #[arg(long, env = "UDDERS_INBOX_RETENTION", default_value = "7d", value_parser = udders_runtime::clock::parse_long_duration)]
    pub inbox_retention: std::time::Duration,
    /// How far back a relay sends what it published again when the broker
    /// lost its log (a broker that came back empty). Published outbox rows
    /// and inbox ids are kept at least this long. A replicated Kafka
    /// cluster that cannot lose its log can do with less.
    #[arg(long, env = "UDDERS_REPUBLISH_WINDOW", default_value = "10m", value_parser = udders_runtime::clock::parse_long_duration)]
    pub republish_window: std::time::Duration,
}

impl RetentionArgs {
    /// The retention these flags ask for.
    pub fn retention(&self) -> udders_messaging::pruning::Retention {
        udders_messaging::pruning::Retention { outbox: self.outbox_retention, inbox: self.inbox_retention }
    }
}

/// Where traces go: the same flag for `udders up` and `udders service`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Export OpenTelemetry traces over OTLP/HTTP to this endpoint (spans
    /// go to `<endpoint>/v1/traces`), for example `http://localhost:4318`
    /// [default: off: nothing is exported or carried]
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// How the saga runs: the same flags for `udders up` and `udders service`.
#[derive(Debug, Args)]
pub struct SagaArgs {
    /// Partitions of every topic Udders creates [default: 1 for `up`, whose
    /// one consumer per service reads them all; 6 for `service`, whose
    /// instances share them].
    #[arg(long, env = "UDDERS_PARTITIONS")]
    pub partitions: Option<i32>,
    /// The saga deadline: an order not finished by then is called off (`order/expired`).
    #[arg(long, env = "UDDERS_SAGA_DEADLINE", default_value = "30s", value_parser = udders_runtime::clock::parse_duration)]
    pub saga_deadline: std::time::Duration,
    /// The door's bound: `POST /orders` answers 503 with `Retry-After` once a
    /// new order would wait longer than this behind the open ones, at the
    /// rate they are ending (docs/adr/0013). Less than the saga deadline
    /// [default: a fifteenth of the saga deadline].
    #[arg(long, env = "UDDERS_ADMISSION_WAIT", value_parser = udders_runtime::clock::parse_duration)]
    pub admission_wait: Option<std::time::Duration>,
    /// Longest wait of a consumer's fetch for new records, milliseconds
    /// (librdkafka `fetch.wait.max.ms`). The broker answers as soon as records
    /// arrive, so this sets only how often an idle consumer asks (docs/adr/0010).
    #[arg(long, env = "UDDERS_FETCH_WAIT_MS", default_value_t = udders_messaging::KafkaSettings::DEFAULT_FETCH_WAIT_MS)]
    pub fetch_wait_ms: u32,
}

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// The event store: appends against raw INSERTs, and loads with and
    /// without snapshots, on SQLite (and PostgreSQL with --postgres).
    Store(StoreBenchArgs),
    /// The messaging layer: relay, broker, consumer and inbox against raw
    /// rdkafka produce and consume, and per-hop latency at a steady rate.
    Messaging(MessagingBenchArgs),
    /// The console's orders board: its queries on an order read model of a
    /// million orders against one of 10,000.
    Board(BoardBenchArgs),
    /// The floor: batched inserts of the rows one order writes across the
    /// stores, and produce plus consume of its records through the embedded
    /// broker, against udders' orders/s (`floor_fraction`).
    Floor(FloorBenchArgs),
}

#[derive(Debug, Args)]
pub struct FloorBenchArgs {
    /// Orders whose rows the store floor inserts and whose records the
    /// broker floor carries.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub orders: u64,
    /// Orders per transaction in the store floor.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Happy orders run first through the whole system in this process, to
    /// count what one completed order writes (and, without
    /// --udders-orders-per-sec, to time udders).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub sample_orders: u64,
    /// udders' orders/s measured in the same sitting (scripts/bench-floor
    /// passes the `throughput` of a scripts/bench-up run) [default: the
    /// sample run's, first POST to last COMPLETED].
    #[arg(long)]
    pub udders_orders_per_sec: Option<f64>,
}

#[derive(Debug, Args)]
pub struct BoardBenchArgs {
    /// Orders in the large read model.
    #[arg(long, default_value_t = 1_000_000)]
    pub orders: u64,
}

#[derive(Debug, Args)]
pub struct MessagingBenchArgs {
    /// Events carried through the pipeline (and raw produce/consume).
    #[arg(long, default_value_t = 10_000)]
    pub events: u32,
    /// Rate of the latency run, events per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// Length of the latency run, seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
    /// Also measure on PostgreSQL, in throwaway schemas of this database.
    #[arg(long, env = "UDDERS_BENCH_POSTGRES_URL")]
    pub postgres: Option<String>,
}

#[derive(Debug, Args)]
pub struct StoreBenchArgs {
    /// Single-event appends (and raw INSERTs) to time, per backend.
    #[arg(long, default_value_t = 5000)]
    pub events: u32,
    /// Events in the aggregate whose load time is measured.
    #[arg(long, default_value_t = 1000)]
    pub aggregate_events: u32,
    /// Also measure PostgreSQL, in a throwaway schema of this database.
    #[arg(long, env = "UDDERS_BENCH_POSTGRES_URL")]
    pub postgres: Option<String>,
}
