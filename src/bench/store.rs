//! `udders bench store`: the event store against the database underneath it.
//!
//! Per backend, on the same database and settings:
//! - raw single-row INSERTs of an event-shaped row (autocommit): the baseline;
//! - single-event appends through the store (transaction, version guard,
//!   unique keys, indexes), with and without an outbox row;
//! - batched appends of 10 events;
//! - loading an aggregate of 1,000 events with and without snapshots.
//!
//! Raw INSERTs and appends run in alternating rounds so that neither gets a
//! warmer cache or a smaller table. The last lines are machine-readable:
//! `append_ratio <backend> <x>` and `snapshot_speedup <backend> <y>`.

use std::num::NonZeroU64;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use udders_eventstore::{
    Aggregate, Backend, EventMetadata, EventStore, ExpectedVersion, NewEvent, OutboxMessage, StoreOptions, StreamId,
};
use udders_kernel::{Decider, EventId, Timestamp};
use uuid::Uuid;

use super::{header, rate, row};
use crate::cli::StoreBenchArgs;

const ROUNDS: u32 = 5;
const STREAMS: u64 = 100;
const LOADS: u32 = 50;

/// A tally aggregate; `N` is its snapshot interval (0: never).
struct Tally<const N: u64>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum TallyEvent {
    Counted { flavor: String, quantity: i64 },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TallyState {
    total: i64,
    events: u64,
}

impl<const N: u64> Decider for Tally<N> {
    type State = TallyState;
    type Command = ();
    type Event = TallyEvent;
    type Error = ();
    fn initial_state() -> TallyState {
        TallyState::default()
    }
    fn decide(_: &TallyState, (): ()) -> Result<Vec<TallyEvent>, ()> {
        Ok(vec![])
    }
    fn evolve(mut state: TallyState, TallyEvent::Counted { quantity, .. }: &TallyEvent) -> TallyState {
        state.total += quantity;
        state.events += 1;
        state
    }
}

impl<const N: u64> Aggregate for Tally<N> {
    const CATEGORY: &'static str = "tally";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = NonZeroU64::new(N);
}

fn payload(i: u64) -> serde_json::Value {
    serde_json::json!({ "flavor": "rumraisin", "quantity": (i % 100) + 1, "country": "sg", "channel": "lazada" })
}

fn new_event(i: u64) -> NewEvent {
    NewEvent {
        event_id: EventId::from_uuid(Uuid::now_v7()),
        event_type: "Counted".into(),
        schema_version: 1,
        payload: payload(i),
        metadata: EventMetadata { occurred_at: Timestamp::from_micros(i as i64), ..Default::default() },
    }
}

fn outbox_row(event: &NewEvent) -> OutboxMessage {
    OutboxMessage {
        message_id: *event.event_id.as_uuid(),
        topic: "bench".into(),
        key: "order-1".into(),
        headers: vec![("ce_type".into(), "Counted".into())],
        payload: event.payload.to_string().into_bytes(),
    }
}

/// One backend's results.
struct Figures {
    backend: &'static str,
    rows: Vec<(String, u64, Duration)>,
    append_ratio: f64,
    snapshot_speedup: f64,
}

pub async fn run(args: StoreBenchArgs) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let dir = tempfile_dir()?;
    let sqlite = EventStore::open_sqlite(&dir.join("bench.db"), &StoreOptions::default()).await?;
    all.push(measure(&sqlite, &args).await.context("benchmarking SQLite")?);
    sqlite.close().await;
    std::fs::remove_dir_all(&dir).ok();

    if let Some(url) = &args.postgres {
        let schema = format!("bench_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(url).await.context("connecting to PostgreSQL")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await?;
        let options = PgConnectOptions::from_str(url)?.options([("search_path", schema.as_str())]);
        let store = EventStore::connect_postgres(options, &StoreOptions::default()).await?;
        let result = measure(&store, &args).await.context("benchmarking PostgreSQL");
        store.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut admin).await?;
        all.push(result?);
    }

    let mut out = header("ops");
    for f in &all {
        for (name, ops, took) in &f.rows {
            out.push_str(&row(f.backend, name, *ops, *took));
        }
    }
    for f in &all {
        out.push_str(&format!("append_ratio {} {:.2}\n", f.backend, f.append_ratio));
    }
    for f in &all {
        out.push_str(&format!("snapshot_speedup {} {:.1}\n", f.backend, f.snapshot_speedup));
    }
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("udders-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn measure(store: &EventStore, args: &StoreBenchArgs) -> anyhow::Result<Figures> {
    let backend = store.backend().name();
    create_raw_table(store).await?;
    let per_round = u64::from(args.events / ROUNDS).max(1);
    let streams: Vec<StreamId> = (0..STREAMS).map(|i| StreamId::new("bench", i)).collect();
    let mut versions = vec![0u64; STREAMS as usize];
    let (mut raw, mut single, mut with_outbox) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut n = 0u64;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for i in 0..per_round {
            raw_insert(store, n + i).await?;
        }
        raw += started.elapsed();

        let started = Instant::now();
        for i in 0..per_round {
            let s = ((n + i) % STREAMS) as usize;
            let appended =
                store.append(&streams[s], ExpectedVersion::from_u64(versions[s]), &[new_event(n + i)], &[]).await?;
            versions[s] = appended.version;
        }
        single += started.elapsed();

        let started = Instant::now();
        for i in 0..per_round {
            let s = ((n + i) % STREAMS) as usize;
            let event = new_event(n + i);
            let row = outbox_row(&event);
            let appended = store.append(&streams[s], ExpectedVersion::from_u64(versions[s]), &[event], &[row]).await?;
            versions[s] = appended.version;
        }
        with_outbox += started.elapsed();
        n += per_round;
    }
    let ops = per_round * u64::from(ROUNDS);

    let batches = ops / 10;
    let started = Instant::now();
    for b in 0..batches {
        let s = (b % STREAMS) as usize;
        let events: Vec<NewEvent> = (0..10).map(|k| new_event(b * 10 + k)).collect();
        let appended = store.append(&streams[s], ExpectedVersion::from_u64(versions[s]), &events, &[]).await?;
        versions[s] = appended.version;
    }
    let batched = started.elapsed();

    let (with_snapshots, without) = load_times(store, args.aggregate_events).await?;
    let rows = vec![
        ("raw single-row INSERT (baseline)".to_owned(), ops, raw),
        ("append, 1 event".to_owned(), ops, single),
        ("append, 1 event + 1 outbox row".to_owned(), ops, with_outbox),
        ("append, batches of 10 (events)".to_owned(), batches * 10, batched),
        (format!("load {} events, snapshot every 100", args.aggregate_events), u64::from(LOADS), with_snapshots),
        (format!("load {} events, no snapshot", args.aggregate_events), u64::from(LOADS), without),
    ];
    Ok(Figures {
        backend,
        rows,
        append_ratio: rate(ops, single) / rate(ops, raw),
        snapshot_speedup: without.as_secs_f64() / with_snapshots.as_secs_f64().max(1e-9),
    })
}

/// Loads the same history as two aggregate types, one snapshotting every 100.
async fn load_times(store: &EventStore, events: u32) -> anyhow::Result<(Duration, Duration)> {
    let id = Uuid::new_v4();
    let mut snapshotted = store.load::<Tally<100>>(id).await?;
    let mut plain = store.load::<Tally<0>>(format!("{id}.plain")).await?;
    for chunk in 0..events.div_ceil(10) {
        let batch: Vec<TallyEvent> = (0..10.min(events - chunk * 10))
            .map(|k| TallyEvent::Counted { flavor: "mango".into(), quantity: i64::from(chunk * 10 + k) })
            .collect();
        let mut tx = store.begin().await?;
        tx.record(&mut snapshotted, batch.clone(), EventMetadata::default()).await?;
        tx.record(&mut plain, batch, EventMetadata::default()).await?;
        tx.commit().await?;
    }
    let (mut with_snapshots, mut without) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..LOADS {
        let started = Instant::now();
        let a = store.load::<Tally<100>>(id).await?;
        with_snapshots += started.elapsed();
        let started = Instant::now();
        let b = store.load::<Tally<0>>(format!("{id}.plain")).await?;
        without += started.elapsed();
        anyhow::ensure!(a.state.total == b.state.total && a.version == b.version, "both loads fold the same history");
        anyhow::ensure!(a.snapshot_version.is_some() && b.replayed == events as usize, "the loads differ as intended");
    }
    Ok((with_snapshots, without))
}

const RAW_TABLE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS bench_raw (
    global_position INTEGER PRIMARY KEY, stream TEXT NOT NULL, category TEXT NOT NULL, version INTEGER NOT NULL,
    event_id BLOB NOT NULL, event_type TEXT NOT NULL, schema_version INTEGER NOT NULL, payload TEXT NOT NULL,
    correlation_id BLOB, causation_id BLOB, occurred_at_us INTEGER NOT NULL, recorded_at_us INTEGER NOT NULL)";
const RAW_TABLE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS bench_raw (
    global_position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, stream TEXT NOT NULL, category TEXT NOT NULL,
    version BIGINT NOT NULL, event_id UUID NOT NULL, event_type TEXT NOT NULL, schema_version INT NOT NULL,
    payload JSONB NOT NULL, correlation_id UUID, causation_id UUID, occurred_at_us BIGINT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())";

async fn create_raw_table(store: &EventStore) -> anyhow::Result<()> {
    match store.backend() {
        Backend::Sqlite => {
            sqlx::query(RAW_TABLE_SQLITE).execute(store.sqlite_writer().context("sqlite pool")?).await?;
        }
        Backend::Postgres => {
            sqlx::query(RAW_TABLE_POSTGRES).execute(store.postgres_pool().context("postgres pool")?).await?;
        }
    }
    Ok(())
}

/// One event-shaped row, one autocommit INSERT, on the store's own pool.
async fn raw_insert(store: &EventStore, i: u64) -> anyhow::Result<()> {
    let id = Uuid::now_v7();
    match store.backend() {
        Backend::Sqlite => {
            sqlx::query(
                "INSERT INTO bench_raw (stream, category, version, event_id, event_type, schema_version, payload,
                    correlation_id, causation_id, occurred_at_us, recorded_at_us)
                 VALUES (?, 'bench', ?, ?, 'Counted', 1, ?, NULL, NULL, ?, ?)",
            )
            .bind(format!("bench-{}", i % STREAMS))
            .bind(i as i64 + 1)
            .bind(id)
            .bind(payload(i).to_string())
            .bind(i as i64)
            .bind(i as i64)
            .execute(store.sqlite_writer().context("sqlite pool")?)
            .await?;
        }
        Backend::Postgres => {
            sqlx::query(
                "INSERT INTO bench_raw (stream, category, version, event_id, event_type, schema_version, payload,
                    correlation_id, causation_id, occurred_at_us)
                 VALUES ($1, 'bench', $2, $3, 'Counted', 1, $4, NULL, NULL, $5)",
            )
            .bind(format!("bench-{}", i % STREAMS))
            .bind(i as i64 + 1)
            .bind(id)
            .bind(payload(i))
            .bind(i as i64)
            .execute(store.postgres_pool().context("postgres pool")?)
            .await?;
        }
    }
    Ok(())
}
