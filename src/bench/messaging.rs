//! `udders bench messaging`: events through relay, broker, consumer and inbox,
//! against raw rdkafka produce and consume in the same run; and the latency of
//! one hop (commit in the publisher's store to commit of the consumer's
//! handler) at a steady rate.
//!
//! Raw: a consumer assigned to a fresh topic, then N records produced with
//! every send in flight; the clock stops when the consumer has read N.
//! Pipeline: N events already committed in a publisher's outbox; a consumer
//! (inbox, position and handler in one transaction per record) is ready; the
//! clock runs from the relay's start until the consumer has handled N.
//! The last lines are machine-readable: `pipeline_ratio <backend> <x>` and
//! `hop_p50_ms`/`hop_p99_ms <backend> <y>`.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::join_all;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;
use udders_contracts::{Envelope, Service};
use udders_eventstore::{EventMetadata, EventStore, ExpectedVersion, NewEvent, StoreOptions, StreamId, Tx};
use udders_kernel::{CorrelationId, EventId, Timestamp};
use udders_messaging::outbound::outbox_message;
use udders_messaging::{
    ConsumerConfig, EmbeddedBroker, Handler, HandlerError, Incoming, KafkaSettings, Relay, RelayConfig,
    assign_from_start, ensure_topics, spawn_consumer,
};
use uuid::Uuid;

use super::{header, rate, row};
use crate::cli::MessagingBenchArgs;

const TOPIC: &str = "udders.order";
const SUBJECT: &str = "order/init/1.1/icecream/udders/mango/sg/web";

fn now() -> Timestamp {
    Timestamp::from_micros(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64),
    )
}

/// Records how long each event took from its commit to its handling.
#[derive(Clone, Default)]
struct Stopwatch {
    hops_us: Arc<Mutex<Vec<i64>>>,
}

impl Handler for Stopwatch {
    async fn handle(&self, _tx: &mut Tx, event: &Incoming) -> Result<(), HandlerError> {
        let took = now().micros() - event.envelope.time.micros();
        if let Ok(mut hops) = self.hops_us.lock() {
            hops.push(took);
        }
        Ok(())
    }
}

/// Appends one order event and its outbox row inside `tx`.
async fn write_event(tx: &mut Tx, n: u64) -> anyhow::Result<()> {
    let order = Uuid::now_v7();
    let envelope = Envelope {
        id: EventId::from_uuid(Uuid::now_v7()),
        source: "/udders/order".into(),
        event_type: "udders.order.init".into(),
        subject: SUBJECT.parse()?,
        time: now(),
        correlation_id: CorrelationId::from_uuid(order),
        causation_id: None,
        traceparent: None,
        sequence: 1,
    };
    let payload = json!({ "order_id": order.to_string(), "n": n });
    let event = NewEvent {
        event_id: envelope.id,
        event_type: "Placed".into(),
        schema_version: 1,
        payload: payload.clone(),
        metadata: EventMetadata {
            correlation_id: Some(envelope.correlation_id),
            causation_id: None,
            occurred_at: envelope.time,
        },
    };
    tx.append(&StreamId::new("order", order), ExpectedVersion::NoStream, &[event]).await?;
    tx.enqueue(&[outbox_message(TOPIC, &order.to_string(), &envelope, &payload)?]).await?;
    Ok(())
}

struct Stores {
    publisher: EventStore,
    consumer: EventStore,
    cleanup: Box<dyn FnOnce() + Send>,
}

async fn stores(backend: &str, postgres: Option<&str>) -> anyhow::Result<Stores> {
    match postgres {
        None => {
            let dir = std::env::temp_dir().join(format!("udders-bench-{}", Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir)?;
            let publisher = EventStore::open_sqlite(&dir.join("order.db"), &StoreOptions::default()).await?;
            let consumer = EventStore::open_sqlite(&dir.join("credit.db"), &StoreOptions::default()).await?;
            Ok(Stores { publisher, consumer, cleanup: Box::new(move || drop(std::fs::remove_dir_all(&dir))) })
        }
        Some(url) => {
            let mut admin = PgConnection::connect(url).await.context("connecting to PostgreSQL")?;
            let mut open = Vec::new();
            let mut schemas = Vec::new();
            for name in ["order", "credit"] {
                let schema = format!("bench_{backend}_{name}_{}", Uuid::new_v4().simple());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await?;
                let options = PgConnectOptions::from_str(url)?.options([("search_path", schema.as_str())]);
                open.push(EventStore::connect_postgres(options, &StoreOptions::default()).await?);
                schemas.push(schema);
            }
            let url = url.to_owned();
            let consumer = open.pop().context("two stores")?;
            let publisher = open.pop().context("two stores")?;
            Ok(Stores {
                publisher,
                consumer,
                cleanup: Box::new(move || {
                    // Best effort, on a runtime of its own (we are inside one).
                    std::thread::spawn(move || {
                        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                        rt.block_on(async {
                            if let Ok(mut c) = PgConnection::connect(&url).await {
                                for s in schemas {
                                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {s} CASCADE")))
                                        .execute(&mut c)
                                        .await;
                                }
                            }
                        });
                    })
                    .join()
                    .ok();
                }),
            })
        }
    }
}

fn consumer_config() -> anyhow::Result<ConsumerConfig> {
    let catalog = Arc::new(udders::catalog::udders()?);
    let mut config = ConsumerConfig::new("credit", catalog, Service::Credit.dead_letter_topic());
    config.topics = vec![TOPIC.to_owned()];
    config.routes = vec![("all".to_owned(), "order/>".parse()?)];
    Ok(config)
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Raw rdkafka: N records produced (all in flight) and consumed, concurrently.
async fn raw(settings: &KafkaSettings, n: u32) -> anyhow::Result<Duration> {
    let topic = format!("bench.raw.{}", Uuid::new_v4().simple());
    ensure_topics(settings, std::slice::from_ref(&topic)).await?;
    let consumer: StreamConsumer = settings.consumer_config("bench-raw").create()?;
    assign_from_start(&consumer, &topic, settings.partitions)?;
    let producer: FutureProducer = settings.producer_config().create()?;
    let payload = json!({ "order_id": Uuid::now_v7().to_string(), "n": 0 }).to_string();
    let started = Instant::now();
    let reader = async {
        for _ in 0..n {
            consumer.recv().await?;
        }
        anyhow::Ok(())
    };
    let writer = async {
        let keys: Vec<String> = (0..n).map(|i| format!("order-{i}")).collect();
        let sends = keys
            .iter()
            .map(|k| producer.send(FutureRecord::to(&topic).key(k).payload(&payload), Duration::from_secs(30)));
        for r in join_all(sends).await {
            r.map_err(|(e, _)| e)?;
        }
        anyhow::Ok(())
    };
    let (r, w) = tokio::join!(reader, writer);
    r?;
    w?;
    Ok(started.elapsed())
}

/// Raw rdkafka at a steady rate: each record carries its send time; the
/// consumer notes how long it took to arrive. The floor under one hop.
async fn raw_latency(settings: &KafkaSettings, rate: u32, seconds: u32) -> anyhow::Result<Vec<i64>> {
    let topic = format!("bench.latency.{}", Uuid::new_v4().simple());
    ensure_topics(settings, std::slice::from_ref(&topic)).await?;
    let consumer: StreamConsumer = settings.consumer_config("bench-latency").create()?;
    assign_from_start(&consumer, &topic, settings.partitions)?;
    let producer: FutureProducer = settings.producer_config().create()?;
    // Let the consumer's first fetches and the producer's connection settle.
    producer
        .send(FutureRecord::to(&topic).key("warm-up").payload("0"), Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)?;
    consumer.recv().await?;
    let total = (u64::from(rate) * u64::from(seconds)) as usize;
    let reader = async {
        let mut took = Vec::with_capacity(total);
        for _ in 0..total {
            let m = consumer.recv().await?;
            let sent: i64 = rdkafka::Message::payload(&m)
                .and_then(|p| std::str::from_utf8(p).ok())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            took.push(now().micros() - sent);
        }
        anyhow::Ok(took)
    };
    let writer = async {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
        let mut pending = Vec::new();
        for i in 0..total {
            tick.tick().await;
            let (producer, topic, key) = (producer.clone(), topic.clone(), format!("order-{i}"));
            pending.push(tokio::spawn(async move {
                let payload = now().micros().to_string();
                producer
                    .send(FutureRecord::to(&topic).key(&key).payload(&payload), Duration::from_secs(30))
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| e)
            }));
        }
        for p in pending {
            p.await??;
        }
        anyhow::Ok(())
    };
    let (r, w) = tokio::join!(reader, writer);
    w?;
    r
}

struct Figures {
    backend: &'static str,
    idle_cpu: f64,
    raw_hops_us: Vec<i64>,
    raw: Duration,
    pipeline: Duration,
    events: u32,
    hops_us: Vec<i64>,
}

async fn measure(backend: &'static str, postgres: Option<&str>, args: &MessagingBenchArgs) -> anyhow::Result<Figures> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let broker = EmbeddedBroker::start(addr).await?;
    let settings = KafkaSettings::new(broker.bootstrap());
    ensure_topics(&settings, &[TOPIC.to_owned()]).await?;
    let raw_time = raw(&settings, args.events).await?;
    let raw_hops_us = raw_latency(&settings, args.rate, args.seconds.min(5)).await?;

    // Throughput: N committed events, then relay + consumer.
    let s = stores(backend, postgres).await?;
    for chunk in (0..args.events).step_by(500) {
        let mut tx = s.publisher.begin().await?;
        for n in chunk..(chunk + 500).min(args.events) {
            write_event(&mut tx, u64::from(n)).await?;
        }
        tx.commit().await?;
    }
    let cancel = CancellationToken::new();
    let stopwatch = Stopwatch::default();
    let (consumer, mut watch) =
        spawn_consumer(s.consumer.clone(), settings.clone(), consumer_config()?, stopwatch.clone(), cancel.clone())?;
    watch.wait_ready().await;
    let started = Instant::now();
    let relay = tokio::spawn(
        Relay::new(s.publisher.clone(), settings.clone(), RelayConfig::new("bench", TOPIC))?.run(cancel.clone()),
    );
    let target = u64::from(args.events);
    wait_until("the pipeline", Duration::from_secs(600), || watch.stats().handled >= target).await?;
    let pipeline = started.elapsed();

    // Latency: events committed one by one at a steady rate.
    stopwatch.hops_us.lock().map(|mut h| h.clear()).ok();
    let before = watch.stats().handled;
    let total = (u64::from(args.rate) * u64::from(args.seconds)) as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for n in 0..total {
        tick.tick().await;
        let mut tx = s.publisher.begin().await?;
        write_event(&mut tx, n as u64).await?;
        tx.commit().await?;
    }
    wait_until("the steady run", Duration::from_secs(120), || watch.stats().handled >= before + total as u64).await?;
    // What an idle relay, consumer and broker cost.
    let idle_from = (cpu_seconds(), Instant::now());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_cpu = (cpu_seconds() - idle_from.0) / idle_from.1.elapsed().as_secs_f64();
    cancel.cancel();
    consumer.await??;
    relay.await??;
    let hops_us = stopwatch.hops_us.lock().map(|h| h.clone()).unwrap_or_default();
    s.publisher.close().await;
    s.consumer.close().await;
    (s.cleanup)();
    broker.stop().await;
    Ok(Figures { backend, idle_cpu, raw_hops_us, raw: raw_time, pipeline, events: args.events, hops_us })
}

/// CPU time of this process so far (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / 100.0
}

/// `<backend> <what> for <n> <unit>: p50 …, p99 …, max …` from latencies in µs.
fn latency_line(backend: &str, what: &str, unit: &str, micros: &[i64]) -> String {
    let mut sorted = micros.to_vec();
    sorted.sort_unstable();
    format!(
        "{backend:<9} {what} for {} {unit}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n",
        sorted.len(),
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.99),
        percentile(&sorted, 1.0)
    )
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

pub async fn run(args: MessagingBenchArgs) -> anyhow::Result<()> {
    let mut all = vec![measure("sqlite", None, &args).await.context("benchmarking on SQLite")?];
    if let Some(url) = &args.postgres {
        all.push(measure("postgres", Some(url), &args).await.context("benchmarking on PostgreSQL")?);
    }
    let mut out = header("events");
    for f in &all {
        let n = u64::from(f.events);
        out.push_str(&row(f.backend, "raw rdkafka produce + consume (baseline)", n, f.raw));
        out.push_str(&row(f.backend, "outbox -> relay -> broker -> consumer + inbox", n, f.pipeline));
    }
    for f in &all {
        let what = format!("raw produce -> consume at {}/s", args.rate);
        out.push_str(&latency_line(f.backend, &what, "records", &f.raw_hops_us));
        out.push_str(&latency_line(f.backend, &format!("one hop at {}/s", args.rate), "events", &f.hops_us));
    }
    for f in &all {
        out.push_str(&format!(
            "{:<9} idle broker + relay + consumer: {:.1}% of one core\n",
            f.backend,
            f.idle_cpu * 100.0
        ));
    }
    for f in &all {
        let n = u64::from(f.events);
        out.push_str(&format!("pipeline_ratio {} {:.2}\n", f.backend, rate(n, f.pipeline) / rate(n, f.raw)));
    }
    for f in &all {
        let mut sorted = f.hops_us.clone();
        sorted.sort_unstable();
        out.push_str(&format!("hop_p50_ms {} {:.1}\n", f.backend, percentile(&sorted, 0.50)));
        out.push_str(&format!("hop_p99_ms {} {:.1}\n", f.backend, percentile(&sorted, 0.99)));
    }
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }
    Ok(())
}
