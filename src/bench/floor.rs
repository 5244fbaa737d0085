//! `udders bench floor`: what this machine can do at best for the work one
//! order takes, measured in the same run, and `udders` orders/s as a
//! fraction of it.
//!
//! 1. What one order writes, from the real system, not from a table kept by
//!    hand: the command starts the one-process system of `udders up`
//!    ([`System::start`], on a temporary data directory, free ports, the
//!    embedded broker), lets it settle, posts `--sample-orders` happy orders
//!    (the happy bodies `udders load` posts) through `POST /orders`, waits
//!    until every one is `COMPLETED` and every store has settled again (no
//!    unpublished outbox row, no count changing for 1.5 s), and reads, in
//!    every service's database, the rows those orders added: events and
//!    outbox rows past the positions noted before, inbox rows received since,
//!    read-model documents and snapshots whose key did not exist before. Rows
//!    are net additions: a document or snapshot written again, an outbox row
//!    marked published, a consumer position moved, are writes the real
//!    system makes that the floor does not. Running the real saga in-process
//!    was chosen over a constant table so the counts follow the services as
//!    they change; the table printed is the one measured.
//! 2. The store floor: the sampled rows, copied as they are (same tables,
//!    same payloads, documents and states; keys made unique; one order's
//!    rows carry its id), inserted for `--orders` orders into one fresh
//!    SQLite store per service (opened by [`EventStore::open_sqlite`], so
//!    with the store's own schema, pragmas and single writer connection),
//!    `--batch` orders per transaction, as multi-row INSERTs through raw
//!    sqlx, one writer task per store, every store at once.
//! 3. The broker floor: a fresh embedded broker (as `udders up` starts it,
//!    with its partitions), the topics created, one consumer per service
//!    that subscribes to anything, assigned every partition of its topics
//!    (as many groups as services read, each reading every record of its
//!    topics, as the services' consumers do); then one producer per store
//!    that publishes (the relay's settings, its batch of sends in flight)
//!    sends `--orders` orders' outbox rows, copied as sampled (topic,
//!    headers, payload) and keyed by order id. Timed from the first send
//!    (every consumer has read a warm-up record per topic before) until every
//!    consumer has read every record.
//! 4. `udders` itself: `--udders-orders-per-sec` when given
//!    (`scripts/bench-floor` passes the `throughput` line of a
//!    `scripts/bench-up` run made just before: terminal orders/s of the
//!    `udders load` mix at the offered rate); otherwise the sample run's own
//!    rate, from the first POST to the last `COMPLETED`, in this process.
//!
//! The floor is the lower of the two floors (an order needs both), and the
//! last lines are machine-readable: `floor_store_orders_per_sec`,
//! `floor_broker_orders_per_sec`, `floor_orders_per_sec`,
//! `udders_orders_per_sec` and `floor_fraction` (udders ÷ floor).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use sqlx::{Row, SqliteConnection, SqlitePool};
use udders::system::{System, SystemConfig};
use udders_contracts::{Catalog, Service};
use udders_eventstore::{EventStore, StoreOptions};
use udders_messaging::outbound::record_headers;
use udders_messaging::{EmbeddedBroker, KafkaSettings, RelayConfig, ensure_topics};
use uuid::Uuid;

use super::{header, rate, row};
use crate::cli::FloorBenchArgs;

/// Rows one multi-row INSERT carries at most (11 columns at most: far under
/// SQLite's limit on parameters).
const ROWS_PER_STATEMENT: usize = 100;

/// POSTs in flight during the sample run.
const POSTS_IN_FLIGHT: usize = 64;

/// How long every store's counts must stay the same to count as settled.
const SETTLED_FOR: Duration = Duration::from_millis(1500);

/// An event the sample orders appended.
#[derive(Debug)]
struct EventRow {
    stream: String,
    category: String,
    version: i64,
    event_type: String,
    schema_version: i64,
    payload: String,
    correlated: bool,
    causation_id: Option<Uuid>,
}

/// An outbox row the sample orders queued.
#[derive(Debug)]
struct OutboxRow {
    topic: String,
    /// The headers as the outbox stores them (JSON).
    headers_json: String,
    /// The same, as the relay sends them.
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

/// A read-model document the sample orders added.
#[derive(Debug)]
struct DocumentRow {
    view: String,
    key: String,
    doc: String,
    tags: [Option<String>; 3],
    due_at_us: Option<i64>,
}

/// A snapshot the sample orders added.
#[derive(Debug)]
struct SnapshotRow {
    stream: String,
    version: i64,
    state_schema: i64,
    state: String,
}

/// What the sample orders added to one store, table by table.
#[derive(Debug, Default)]
struct Gained {
    events: Vec<EventRow>,
    outbox: Vec<OutboxRow>,
    /// The consumer of each inbox row.
    inbox: Vec<String>,
    documents: Vec<DocumentRow>,
    snapshots: Vec<SnapshotRow>,
}

impl Gained {
    fn rows(&self) -> usize {
        self.events.len() + self.outbox.len() + self.inbox.len() + self.documents.len() + self.snapshots.len()
    }

    /// Bytes of the variable columns: payloads, headers, documents, states, ids.
    fn bytes(&self) -> usize {
        let events: usize =
            self.events.iter().map(|e| e.stream.len() + e.event_type.len() + e.payload.len() + 32).sum();
        let outbox: usize =
            self.outbox.iter().map(|o| o.topic.len() + 36 + o.headers_json.len() + o.payload.len()).sum();
        let inbox: usize = self.inbox.iter().map(|consumer| consumer.len() + 16).sum();
        let documents: usize = self.documents.iter().map(|d| d.view.len() + d.key.len() + d.doc.len()).sum();
        let snapshots: usize = self.snapshots.iter().map(|s| s.stream.len() + s.state.len()).sum();
        events + outbox + inbox + documents + snapshots
    }
}

/// One service's store after the sample.
#[derive(Debug)]
struct StoreSample {
    service: Service,
    gained: Gained,
}

/// The sample run: how many orders, how long from the first POST to the
/// last `COMPLETED`, and what each store gained.
#[derive(Debug)]
struct Sample {
    orders: u64,
    took: Duration,
    stores: Vec<StoreSample>,
}

/// Where a store stood before the sample.
#[derive(Debug)]
struct Marks {
    last_event: i64,
    last_outbox: i64,
    documents: HashSet<(String, String)>,
    snapshots: HashSet<String>,
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// The id of the floor's order `o` in run `run`.
fn order_id(run: u64, o: u64) -> Uuid {
    Uuid::from_u64_pair(run, o)
}

/// The rows, of a table that gained `rows` over `sample` orders, that
/// orders `from..to` of the floor write: the sample's rows spread evenly,
/// so that N orders write `rows * N / sample` (the shares of consecutive
/// orders tile, so row numbers are unique over a run).
fn share(rows: usize, sample: u64, from: u64, to: u64) -> Range<u64> {
    let at = |o: u64| (u128::from(o) * rows as u128 / u128::from(sample.max(1))) as u64;
    at(from)..at(to)
}

/// `(row number, order)` of every row orders `from..to` write to a table
/// that gained `rows` rows over `sample` orders.
fn placements(rows: usize, sample: u64, from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut placed = Vec::new();
    for o in from..to {
        placed.extend(share(rows, sample, o, o + 1).map(|j| (j, o)));
    }
    placed
}

/// Row `j`'s template (the sampled rows in turn) and its round (how many
/// times the templates were used before): keys get the round as a suffix.
fn pick<T>(rows: &[T], j: u64) -> (&T, u64) {
    let n = rows.len() as u64;
    (&rows[(j % n) as usize], j / n)
}

/// `(?, ?, …), (?, ?, …)`: `rows` rows of `columns` parameters.
fn values(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// Runs the sample, both floors, and prints the tables and the figures.
pub async fn run(args: FloorBenchArgs) -> anyhow::Result<()> {
    let catalog = udders::catalog::udders()?;
    let sample = Arc::new(sample(args.sample_orders).await.context("running the sample orders through udders")?);
    anyhow::ensure!(sample.stores.iter().any(|s| s.gained.rows() > 0), "the sample orders wrote no rows");
    let run_id = Uuid::new_v4().as_u64_pair().0;
    let store = store_floor(&sample, args.orders, args.batch, run_id).await.context("measuring the store floor")?;
    let broker = broker_floor(&sample, &catalog, args.orders, run_id).await.context("measuring the broker floor")?;

    let mut out = rows_table(&sample);
    out.push_str(&records_table(&sample, &catalog));
    out.push('\n');
    out.push_str(&header("orders"));
    out.push_str(&row(
        "udders",
        &format!("{} sample orders, first POST to last COMPLETED", sample.orders),
        sample.orders,
        sample.took,
    ));
    for (service, rows, took) in &store.per_store {
        out.push_str(&row("sqlite", &format!("store floor: {service}, {rows} rows"), args.orders, *took));
    }
    out.push_str(&row(
        "sqlite",
        &format!("store floor: {} stores at once, {} per transaction", store.per_store.len(), args.batch),
        args.orders,
        store.took,
    ));
    out.push_str(&row(
        "broker",
        &format!("broker floor: {} records, {} reads, {} groups", broker.produced, broker.consumed, broker.groups),
        args.orders,
        broker.took,
    ));
    let store_rate = rate(args.orders, store.took);
    let broker_rate = rate(args.orders, broker.took);
    let floor = store_rate.min(broker_rate);
    let (udders_rate, source) = match args.udders_orders_per_sec {
        Some(given) => (given, "given (--udders-orders-per-sec)".to_owned()),
        None => (
            rate(sample.orders, sample.took),
            format!("the sample run in this process ({} orders, first POST to last COMPLETED)", sample.orders),
        ),
    };
    out.push_str(&format!("udders orders/s: {source}\n"));
    out.push_str(&format!("floor_store_orders_per_sec {store_rate:.0}\n"));
    out.push_str(&format!("floor_broker_orders_per_sec {broker_rate:.0}\n"));
    out.push_str(&format!("floor_orders_per_sec {floor:.0}\n"));
    out.push_str(&format!("udders_orders_per_sec {udders_rate:.0}\n"));
    out.push_str(&format!("floor_fraction {:.2}\n", udders_rate / floor.max(1e-9)));
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }
    Ok(())
}

/// The per-order row table: what one completed order adds to each store.
fn rows_table(sample: &Sample) -> String {
    let k = sample.orders.max(1) as f64;
    let per = |n: usize| n as f64 / k;
    let mut out = format!(
        "rows one completed order adds to each store (mean of {} orders run through udders in this process)\n",
        sample.orders
    );
    out.push_str(&format!(
        "{:<14} {:>8} {:>8} {:>8} {:>10} {:>10} {:>8} {:>10}\n",
        "store", "events", "outbox", "inbox", "documents", "snapshots", "rows", "bytes"
    ));
    let mut total = [0usize; 7];
    for s in &sample.stores {
        let g = &s.gained;
        let counts =
            [g.events.len(), g.outbox.len(), g.inbox.len(), g.documents.len(), g.snapshots.len(), g.rows(), g.bytes()];
        for (sum, n) in total.iter_mut().zip(counts) {
            *sum += n;
        }
        out.push_str(&format!(
            "{:<14} {:>8.2} {:>8.2} {:>8.2} {:>10.2} {:>10.2} {:>8.2} {:>10.0}\n",
            s.service.name(),
            per(counts[0]),
            per(counts[1]),
            per(counts[2]),
            per(counts[3]),
            per(counts[4]),
            per(counts[5]),
            per(counts[6])
        ));
    }
    out.push_str(&format!(
        "{:<14} {:>8.2} {:>8.2} {:>8.2} {:>10.2} {:>10.2} {:>8.2} {:>10.0}\n",
        "all",
        per(total[0]),
        per(total[1]),
        per(total[2]),
        per(total[3]),
        per(total[4]),
        per(total[5]),
        per(total[6])
    ));
    out
}

/// The records one order publishes, by topic, and who reads them.
fn records_table(sample: &Sample, catalog: &Catalog) -> String {
    let k = sample.orders.max(1) as f64;
    let mut by_topic: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in &sample.stores {
        for o in &s.gained.outbox {
            let entry = by_topic.entry(o.topic.as_str()).or_default();
            entry.0 += 1;
            entry.1 += 36 + o.headers_json.len() + o.payload.len();
        }
    }
    let mut out = String::from("records one order publishes (its outbox rows) and the consumers that read them\n");
    out.push_str(&format!("{:<22} {:>8} {:>10}  {}\n", "topic", "records", "bytes each", "read by"));
    let (mut published, mut read) = (0.0, 0.0);
    for (topic, (records, bytes)) in &by_topic {
        let readers: Vec<&str> =
            Service::ALL.into_iter().filter(|s| reads(catalog, *s, topic)).map(Service::name).collect();
        let per_order = *records as f64 / k;
        published += per_order;
        read += per_order * readers.len() as f64;
        out.push_str(&format!(
            "{topic:<22} {per_order:>8.2} {:>10.0}  {} ({})\n",
            *bytes as f64 / (*records).max(1) as f64,
            readers.len(),
            readers.join(", ")
        ));
    }
    out.push_str(&format!("{:<22} {published:>8.2} published, {read:.2} read per order\n", "all"));
    out
}

/// True when `service`'s consumer reads `topic`.
fn reads(catalog: &Catalog, service: Service, topic: &str) -> bool {
    catalog.topics_for(service).iter().any(|t| *t == topic)
}

/// A local address no one listens on now (the OS picks the port).
fn free_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

// --- 1. The sample: what one order writes, from the real system. ---

/// Runs `orders` happy orders through `udders up`'s system in this process
/// and reads what they added to each store.
async fn sample(orders: u64) -> anyhow::Result<Sample> {
    let dir = tempfile::Builder::new().prefix("udders-floor-").tempdir()?;
    let mut config = SystemConfig::new(dir.path());
    // Ports free now: the broker's clients must be told a real one.
    config.http_addr = free_addr()?;
    config.broker_addr = free_addr()?;
    let system = System::start(config).await.context("starting udders in this process")?;
    let sampled = sample_on(&system, orders).await;
    let stopped = system.stop().await;
    let sample = sampled?;
    stopped.context("stopping udders")?;
    Ok(sample)
}

async fn sample_on(system: &System, orders: u64) -> anyhow::Result<Sample> {
    system.wait_ready(Duration::from_secs(60)).await?;
    let mut pools: Vec<(Service, SqlitePool)> = Vec::new();
    for (service, store) in &system.stores {
        pools.push((*service, store.sqlite_writer().context("udders up runs on SQLite")?.clone()));
    }
    let all: Vec<SqlitePool> = pools.iter().map(|(_, pool)| pool.clone()).collect();
    settle(&all, "before the sample").await?;
    let mut marks = Vec::with_capacity(pools.len());
    for (_, pool) in &pools {
        marks.push(marks_of(pool).await?);
    }
    let since = now_us();

    let run = format!("floor{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs());
    let bodies: Vec<Value> = (0u64..)
        .map(|i| crate::load::body(i, &run))
        .filter(|(kind, _)| *kind == "happy")
        .map(|(_, body)| body)
        .take(usize::try_from(orders)?)
        .collect();
    let client = reqwest::Client::new();
    let url = format!("http://{}/orders", system.http_addr);
    let started = Instant::now();
    let mut posts =
        futures::stream::iter(bodies.iter().map(|body| place(&client, &url, body))).buffer_unordered(POSTS_IN_FLIGHT);
    while let Some(placed) = posts.next().await {
        placed?;
    }
    wait_completed(&system.stores[&Service::Order], orders).await?;
    let took = started.elapsed();

    settle(&all, "after the sample").await?;
    let mut stores = Vec::with_capacity(pools.len());
    for ((service, pool), marks) in pools.iter().zip(&marks) {
        stores.push(StoreSample { service: *service, gained: gained(pool, marks, since).await? });
    }
    Ok(Sample { orders, took, stores })
}

/// Posts one order; waits out a 503 (the door at capacity) and tries again.
async fn place(client: &reqwest::Client, url: &str, order: &Value) -> anyhow::Result<()> {
    for _ in 0..100 {
        let answer = client.post(url).json(order).send().await.context("POST /orders")?;
        match answer.status().as_u16() {
            202 => return Ok(()),
            503 => {
                let wait =
                    answer.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            status => {
                let detail = answer.text().await.unwrap_or_default();
                anyhow::bail!("POST /orders answered {status}: {detail}")
            }
        }
    }
    anyhow::bail!("POST /orders was still refused at capacity after 100 tries")
}

/// Waits until `orders` orders are `COMPLETED` in the order read model (the
/// system is fresh: they are the sample's); fails if any ended otherwise.
async fn wait_completed(order: &EventStore, orders: u64) -> anyhow::Result<()> {
    let view = <udders_order_domain::Order as udders_kernel::ReadModel>::VIEW;
    let deadline = Instant::now() + Duration::from_secs(120) + Duration::from_millis(orders.saturating_mul(100));
    loop {
        let by_status = order.count_documents(view, 0).await?;
        let otherwise = tally(&by_status, &["REJECTED", "CANCELLED"]);
        anyhow::ensure!(
            otherwise == 0,
            "{otherwise} sample orders were rejected or cancelled ({by_status:?}): the sample must be completed orders"
        );
        if tally(&by_status, &["COMPLETED"]) >= orders {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the sample orders did not complete in time ({by_status:?})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many documents carry one of the `wanted` tags.
fn tally(by_tag: &[(Option<String>, u64)], wanted: &[&str]) -> u64 {
    by_tag.iter().filter(|(tag, _)| tag.as_deref().is_some_and(|tag| wanted.contains(&tag))).map(|(_, n)| *n).sum()
}

/// Row counts of a store, and its unpublished outbox rows (index 1).
async fn counts(pool: &SqlitePool) -> anyhow::Result<[i64; 6]> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM outbox WHERE published_at_us IS NULL),
                (SELECT count(*) FROM outbox), (SELECT count(*) FROM inbox), (SELECT count(*) FROM read_models),
                (SELECT count(*) FROM snapshots)",
    )
    .fetch_one(pool)
    .await?;
    Ok(std::array::from_fn(|i| row.get::<i64, _>(i)))
}

/// Waits until no store has an unpublished outbox row and no count has
/// changed for [`SETTLED_FOR`]: every consumer has caught up (in an
/// event-sourced store every change appends an event).
async fn settle(pools: &[SqlitePool], when: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last: Vec<[i64; 6]> = Vec::new();
    let mut since = Instant::now();
    loop {
        let mut seen = Vec::with_capacity(pools.len());
        for pool in pools {
            seen.push(counts(pool).await?);
        }
        let published = seen.iter().all(|c| c[1] == 0);
        if !published || seen != last {
            last = seen;
            since = Instant::now();
        } else if since.elapsed() >= SETTLED_FOR {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{when}: the stores did not settle within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn marks_of(pool: &SqlitePool) -> anyhow::Result<Marks> {
    let last_event: i64 =
        sqlx::query_scalar("SELECT COALESCE(max(global_position), 0) FROM events").fetch_one(pool).await?;
    let last_outbox: i64 = sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM outbox").fetch_one(pool).await?;
    let documents: Vec<(String, String)> = sqlx::query_as("SELECT view, key FROM read_models").fetch_all(pool).await?;
    let snapshots: Vec<(String,)> = sqlx::query_as("SELECT stream FROM snapshots").fetch_all(pool).await?;
    Ok(Marks {
        last_event,
        last_outbox,
        documents: documents.into_iter().collect(),
        snapshots: snapshots.into_iter().map(|(stream,)| stream).collect(),
    })
}

/// What a store gained since `marks` (taken at `since_us`).
async fn gained(pool: &SqlitePool, marks: &Marks, since_us: i64) -> anyhow::Result<Gained> {
    let events = sqlx::query(
        "SELECT stream, category, version, event_type, schema_version, payload, correlation_id IS NOT NULL, causation_id
         FROM events WHERE global_position > ? ORDER BY global_position",
    )
    .bind(marks.last_event)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| EventRow {
        stream: r.get(0),
        category: r.get(1),
        version: r.get(2),
        event_type: r.get(3),
        schema_version: r.get(4),
        payload: r.get(5),
        correlated: r.get::<i64, _>(6) != 0,
        causation_id: r.get(7),
    })
    .collect();
    let mut outbox = Vec::new();
    for r in sqlx::query("SELECT topic, headers, payload FROM outbox WHERE id > ? ORDER BY id")
        .bind(marks.last_outbox)
        .fetch_all(pool)
        .await?
    {
        let headers_json: String = r.get(1);
        let headers: Vec<(String, String)> =
            serde_json::from_str(&headers_json).context("reading the headers of an outbox row")?;
        outbox.push(OutboxRow { topic: r.get(0), headers_json, headers, payload: r.get(2) });
    }
    let inbox: Vec<(String,)> =
        sqlx::query_as("SELECT consumer FROM inbox WHERE received_at_us >= ?").bind(since_us).fetch_all(pool).await?;
    let mut documents = Vec::new();
    for r in sqlx::query(
        "SELECT view, key, doc, tag_a, tag_b, tag_c, due_at_us FROM read_models WHERE updated_at_us >= ?
         ORDER BY updated_at_us",
    )
    .bind(since_us)
    .fetch_all(pool)
    .await?
    {
        let (view, key): (String, String) = (r.get(0), r.get(1));
        if marks.documents.contains(&(view.clone(), key.clone())) {
            continue;
        }
        documents.push(DocumentRow {
            view,
            key,
            doc: r.get(2),
            tags: [r.get(3), r.get(4), r.get(5)],
            due_at_us: r.get(6),
        });
    }
    let mut snapshots = Vec::new();
    for r in sqlx::query(
        "SELECT stream, version, state_schema, state FROM snapshots WHERE taken_at_us >= ? ORDER BY taken_at_us",
    )
    .bind(since_us)
    .fetch_all(pool)
    .await?
    {
        let stream: String = r.get(0);
        if marks.snapshots.contains(&stream) {
            continue;
        }
        snapshots.push(SnapshotRow { stream, version: r.get(1), state_schema: r.get(2), state: r.get(3) });
    }
    Ok(Gained { events, outbox, inbox: inbox.into_iter().map(|(consumer,)| consumer).collect(), documents, snapshots })
}

// --- 2. The store floor. ---

/// The store floor: the whole run, and each store's (service, rows, time).
#[derive(Debug)]
struct StoreFloor {
    took: Duration,
    per_store: Vec<(Service, u64, Duration)>,
}

async fn store_floor(sample: &Arc<Sample>, orders: u64, batch: u64, run: u64) -> anyhow::Result<StoreFloor> {
    let dir = tempfile::Builder::new().prefix("udders-floor-").tempdir()?;
    let mut stores = Vec::new();
    for (index, s) in sample.stores.iter().enumerate() {
        if s.gained.rows() == 0 {
            continue;
        }
        let path = dir.path().join(format!("{}.db", s.service));
        let store = EventStore::open_sqlite(&path, &StoreOptions::default()).await?;
        stores.push((index, store));
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(stores.len());
    for (index, store) in &stores {
        let pool = store.sqlite_writer().context("a SQLite store")?.clone();
        tasks.push((*index, tokio::spawn(fill(pool, sample.clone(), *index, orders, batch.max(1), run))));
    }
    let mut per_store = Vec::with_capacity(tasks.len());
    for (index, task) in tasks {
        let (rows, took) = task.await??;
        per_store.push((sample.stores[index].service, rows, took));
    }
    let took = started.elapsed();
    for (_, store) in &stores {
        store.close().await;
    }
    Ok(StoreFloor { took, per_store })
}

/// One store's writer: `orders` orders' rows, `batch` orders per
/// transaction. Returns the rows written and how long it took.
async fn fill(
    pool: SqlitePool,
    sample: Arc<Sample>,
    store: usize,
    orders: u64,
    batch: u64,
    run: u64,
) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let gained = &sample.stores[store].gained;
    let (mut rows, mut from) = (0, 0);
    while from < orders {
        let to = (from + batch).min(orders);
        // As the store begins its transactions (it is the file's only writer).
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        rows += write_orders(&mut tx, gained, sample.orders, run, from, to).await?;
        tx.commit().await?;
        from = to;
    }
    Ok((rows, started.elapsed()))
}

/// Inserts the rows orders `from..to` write to one store, as multi-row
/// INSERTs of up to [`ROWS_PER_STATEMENT`] rows; returns how many.
async fn write_orders(
    conn: &mut SqliteConnection,
    gained: &Gained,
    sample: u64,
    run: u64,
    from: u64,
    to: u64,
) -> anyhow::Result<u64> {
    let now = now_us();
    let mut written = 0;
    let placed = |rows: usize| placements(rows, sample, from, to);

    written += insert_rows(
        conn,
        "events (stream, category, version, event_id, event_type, schema_version, payload, \
         correlation_id, causation_id, occurred_at_us, recorded_at_us)",
        11,
        &placed(gained.events.len()),
        |query, j, o| {
            let (t, round) = pick(&gained.events, j);
            query
                .bind(format!("{}~{round}", t.stream))
                .bind(&t.category)
                .bind(t.version)
                .bind(Uuid::from_u64_pair(run, j))
                .bind(&t.event_type)
                .bind(t.schema_version)
                .bind(&t.payload)
                .bind(t.correlated.then(|| order_id(run, o)))
                .bind(t.causation_id)
                .bind(now)
                .bind(now)
        },
    )
    .await?;
    written += insert_rows(
        conn,
        "outbox (message_id, topic, key, headers, payload, created_at_us)",
        6,
        &placed(gained.outbox.len()),
        |query, j, o| {
            let (t, _) = pick(&gained.outbox, j);
            query
                .bind(Uuid::from_u64_pair(run, j))
                .bind(&t.topic)
                .bind(order_id(run, o).to_string())
                .bind(&t.headers_json)
                .bind(&t.payload)
                .bind(now)
        },
    )
    .await?;
    written += insert_rows(
        conn,
        "inbox (consumer, event_id, received_at_us)",
        3,
        &placed(gained.inbox.len()),
        |query, j, _| {
            let (consumer, _) = pick(&gained.inbox, j);
            query.bind(consumer).bind(Uuid::from_u64_pair(run, j)).bind(now)
        },
    )
    .await?;
    written += insert_rows(
        conn,
        "read_models (view, key, doc, tag_a, tag_b, tag_c, due_at_us, updated_at_us)",
        8,
        &placed(gained.documents.len()),
        |query, j, _| {
            let (t, round) = pick(&gained.documents, j);
            query
                .bind(&t.view)
                .bind(format!("{}~{round}", t.key))
                .bind(&t.doc)
                .bind(&t.tags[0])
                .bind(&t.tags[1])
                .bind(&t.tags[2])
                .bind(t.due_at_us)
                .bind(now)
        },
    )
    .await?;
    written += insert_rows(
        conn,
        "snapshots (stream, version, state_schema, state, taken_at_us)",
        5,
        &placed(gained.snapshots.len()),
        |query, j, _| {
            let (t, round) = pick(&gained.snapshots, j);
            query.bind(format!("{}~{round}", t.stream)).bind(t.version).bind(t.state_schema).bind(&t.state).bind(now)
        },
    )
    .await?;
    Ok(written)
}

/// A statement of the floor: one multi-row INSERT's arguments.
type Insert = sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Inserts one row per placement (template index, order) into `table`
/// (`name (columns…)`), [`ROWS_PER_STATEMENT`] rows per statement, each
/// row's `columns` values bound by `bind`. Returns the rows written.
async fn insert_rows(
    conn: &mut SqliteConnection,
    table: &str,
    columns: usize,
    placed: &[(u64, u64)],
    bind: impl Fn(Insert, u64, u64) -> Insert,
) -> anyhow::Result<u64> {
    for chunk in placed.chunks(ROWS_PER_STATEMENT) {
        let sql = sqlx::AssertSqlSafe(format!("INSERT INTO {table} VALUES {}", values(chunk.len(), columns)));
        let mut query = sqlx::query(sql);
        for &(j, o) in chunk {
            query = bind(query, j, o);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(placed.len() as u64)
}

// --- 3. The broker floor. ---

/// The broker floor: how long, records sent, records read, consumer groups.
#[derive(Debug)]
struct BrokerFloor {
    took: Duration,
    produced: u64,
    consumed: u64,
    groups: usize,
}

async fn broker_floor(sample: &Arc<Sample>, catalog: &Catalog, orders: u64, run: u64) -> anyhow::Result<BrokerFloor> {
    let broker = EmbeddedBroker::start(free_addr()?).await?;
    let outcome = carry(sample, catalog, orders, run, &broker).await;
    broker.stop().await;
    outcome
}

/// A consumer's task, how many records it has read, and how many of them
/// are warm-up records.
#[derive(Debug)]
struct Reader {
    seen: Arc<AtomicU64>,
    warm: u64,
    task: tokio::task::JoinHandle<anyhow::Result<Instant>>,
}

async fn carry(
    sample: &Arc<Sample>,
    catalog: &Catalog,
    orders: u64,
    run: u64,
    broker: &EmbeddedBroker,
) -> anyhow::Result<BrokerFloor> {
    // The partitions of `udders up`.
    let partitions = SystemConfig::new(std::env::temp_dir()).partitions;
    let settings = KafkaSettings { partitions, ..KafkaSettings::new(broker.bootstrap()) };
    // What each topic carries for `orders` orders (the producers below send
    // exactly these rows).
    let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
    for s in &sample.stores {
        let outbox = &s.gained.outbox;
        for j in share(outbox.len(), sample.orders, 0, orders) {
            *per_topic.entry(pick(outbox, j).0.topic.as_str()).or_default() += 1;
        }
    }
    let readers: Vec<(Service, Vec<String>)> = Service::ALL
        .into_iter()
        .map(|s| (s, catalog.topics_for(s).into_iter().map(str::to_owned).collect::<Vec<String>>()))
        .filter(|(_, topics)| !topics.is_empty())
        .collect();
    let mut topics: BTreeSet<String> = per_topic.keys().map(|t| (*t).to_owned()).collect();
    topics.extend(readers.iter().flat_map(|(_, topics)| topics.iter().cloned()));
    let topics: Vec<String> = topics.into_iter().collect();
    ensure_topics(&settings, &topics).await?;

    // The producers (one per store that publishes, as its relay), and the
    // warm-up records: one from each producer to its topic, and one to each
    // topic no producer sends to, so that every consumer has fetched and
    // every producer has connected before the clock starts.
    let mut producers = Vec::new();
    let mut warm_per_topic: BTreeMap<String, u64> = BTreeMap::new();
    for (index, s) in sample.stores.iter().enumerate() {
        if let Some(first) = s.gained.outbox.first() {
            let producer: FutureProducer = settings.producer_config().create()?;
            *warm_per_topic.entry(first.topic.clone()).or_default() += 1;
            producers.push((index, first.topic.clone(), producer));
        }
    }
    let mut unsent = Vec::new();
    for topic in &topics {
        let warm = warm_per_topic.entry(topic.clone()).or_default();
        if *warm == 0 {
            *warm = 1;
            unsent.push(topic.clone());
        }
    }

    let mut consumed = 0;
    let mut consumers = Vec::with_capacity(readers.len());
    for (service, topics) in &readers {
        let consumer: StreamConsumer = settings.consumer_config(&format!("floor-{service}")).create()?;
        let mut assignment = TopicPartitionList::new();
        for topic in topics {
            for partition in 0..settings.partitions {
                assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
            }
        }
        consumer.assign(&assignment)?;
        let expected: u64 = topics.iter().map(|t| per_topic.get(t.as_str()).copied().unwrap_or(0)).sum();
        consumed += expected;
        let warm: u64 = topics.iter().map(|t| warm_per_topic.get(t).copied().unwrap_or(0)).sum();
        let seen = Arc::new(AtomicU64::new(0));
        let counter = seen.clone();
        let task = tokio::spawn(async move {
            let target = warm + expected;
            while counter.load(Ordering::Relaxed) < target {
                consumer.recv().await?;
                counter.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(Instant::now())
        });
        consumers.push(Reader { seen, warm, task });
    }

    for (_, topic, producer) in &producers {
        producer
            .send(FutureRecord::to(topic).key("warm-up").payload("0"), Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)?;
    }
    if !unsent.is_empty() {
        let producer: FutureProducer = settings.producer_config().create()?;
        for topic in &unsent {
            producer
                .send(FutureRecord::to(topic).key("warm-up").payload("0"), Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumers.iter().any(|c| c.seen.load(Ordering::Relaxed) < c.warm) {
        anyhow::ensure!(Instant::now() < deadline, "the consumers did not read the warm-up records within 60 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let in_flight = RelayConfig::new("floor", "floor").batch as usize;

    let started = Instant::now();
    let mut sending = Vec::with_capacity(producers.len());
    for (index, _, producer) in producers {
        sending.push(tokio::spawn(publish(producer, sample.clone(), index, orders, run, in_flight)));
    }
    let (mut produced, mut finished) = (0, started);
    for task in sending {
        let (sent, at) = task.await??;
        produced += sent;
        finished = finished.max(at);
    }
    for c in consumers {
        let at = tokio::time::timeout(Duration::from_secs(600), c.task)
            .await
            .context("the consumers did not read every record within 600 s")???;
        finished = finished.max(at);
    }
    Ok(BrokerFloor { took: finished - started, produced, consumed, groups: readers.len() })
}

/// One store's relay, at best: its outbox rows for `orders` orders, keyed
/// by order id, `in_flight` sends at once. Returns the records sent and
/// when the last was acknowledged.
async fn publish(
    producer: FutureProducer,
    sample: Arc<Sample>,
    store: usize,
    orders: u64,
    run: u64,
    in_flight: usize,
) -> anyhow::Result<(u64, Instant)> {
    let outbox = &sample.stores[store].gained.outbox;
    let mut pending = FuturesUnordered::new();
    let mut sent = 0;
    for o in 0..orders {
        let key = order_id(run, o).to_string();
        for j in share(outbox.len(), sample.orders, o, o + 1) {
            let (t, _) = pick(outbox, j);
            let record = FutureRecord::to(&t.topic)
                .key(key.as_str())
                .payload(t.payload.as_slice())
                .headers(record_headers(&t.headers));
            pending.push(producer.send_result(record).map_err(|(e, _)| e)?);
            sent += 1;
            while pending.len() >= in_flight.max(1) {
                if let Some(outcome) = pending.next().await {
                    outcome.map_err(|_| anyhow::anyhow!("the producer went away"))?.map_err(|(e, _)| e)?;
                }
            }
        }
    }
    while let Some(outcome) = pending.next().await {
        outcome.map_err(|_| anyhow::anyhow!("the producer went away"))?.map_err(|(e, _)| e)?;
    }
    Ok((sent, Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_of_consecutive_orders_tile_and_add_up() {
        // 7 rows over 3 sample orders: 10 orders write 23 (7 * 10 / 3).
        let rows: Vec<(u64, u64)> = placements(7, 3, 0, 10);
        assert_eq!(rows.len(), 23);
        assert!(rows.iter().map(|(j, _)| *j).eq(0..23), "row numbers run on without a gap: {rows:?}");
        let batched: Vec<(u64, u64)> =
            (0..10).step_by(4).flat_map(|from| placements(7, 3, from, (from + 4).min(10))).collect();
        assert_eq!(batched, rows, "batches write what one pass writes");
        assert!(placements(0, 3, 0, 10).is_empty());
    }

    #[test]
    fn templates_are_taken_in_turn_and_rounds_count_up() {
        let rows = ["a", "b", "c"];
        assert_eq!(pick(&rows, 1), (&"b", 0));
        assert_eq!(pick(&rows, 4), (&"b", 1));
        assert_eq!(values(2, 3), "(?, ?, ?), (?, ?, ?)");
    }
}
