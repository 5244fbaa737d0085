//! Test harness: the same test body runs once on SQLite and once on PostgreSQL.
//!
//! SQLite tests use a fresh database file in a temporary directory.
//! PostgreSQL tests read the server URL from `UDDERS_TEST_POSTGRES_URL` and put
//! each test in a schema of its own; without the variable they print that they
//! did not run (and fail if `UDDERS_REQUIRE_POSTGRES=1`, as in CI).
#![allow(dead_code)]

use std::num::NonZeroU64;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use udders_eventstore::{Aggregate, EventMetadata, EventStore, NewEvent, OutboxMessage, StoreOptions};
use udders_kernel::{Decider, EventId, Timestamp};
use uuid::Uuid;

pub const POSTGRES_URL_VAR: &str = "UDDERS_TEST_POSTGRES_URL";

/// A store on a throwaway database; keeps its temporary directory alive.
pub struct TestStore {
    pub store: EventStore,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("service.db");
    let url = format!("sqlite:{}", path.display());
    let store = EventStore::connect(&url, &StoreOptions::default()).await.expect("open SQLite store");
    TestStore { store, url, _dir: Some(dir) }
}

/// A store in a fresh schema of the PostgreSQL test server, or `None` (with a
/// line on stderr) when no server is configured.
pub async fn postgres(test: &str) -> Option<TestStore> {
    let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
        if std::env::var("UDDERS_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!("{POSTGRES_URL_VAR} is not set but UDDERS_REQUIRE_POSTGRES=1");
        }
        eprintln!("NOT RUN on PostgreSQL: {test} (set {POSTGRES_URL_VAR} to run it)");
        return None;
    };
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&url).await.expect("connect to the PostgreSQL test server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create schema");
    admin.close().await.ok();
    let options =
        PgConnectOptions::from_str(&url).expect("a PostgreSQL URL").options([("search_path", schema.as_str())]);
    let store = EventStore::connect_postgres(options, &StoreOptions::default()).await.expect("open PostgreSQL store");
    Some(TestStore { store, url: format!("{url} (schema {schema})"), _dir: None })
}

/// Declares one test body that runs on both backends, as `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($(#[$meta:meta])* async fn $name:ident($store:ident: EventStore) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($store: udders_eventstore::EventStore) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = $crate::common::sqlite().await;
                body(db.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = $crate::common::postgres(concat!(stringify!($name), "::postgres")).await else {
                    return;
                };
                body(db.store.clone()).await;
            }
        }
    };
}

/// A bank-ledger aggregate for tests, snapshotting every `N` events (0: never).
#[derive(Debug)]
pub struct Ledger<const N: u64>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum LedgerEvent {
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
    Frozen,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    pub balance: i64,
    pub entries: u64,
    pub frozen: bool,
    /// An order-sensitive digest, so a fold in the wrong order is caught.
    pub digest: u64,
}

impl<const N: u64> Decider for Ledger<N> {
    type State = LedgerState;
    type Command = LedgerEvent;
    type Event = LedgerEvent;
    type Error = &'static str;

    fn initial_state() -> LedgerState {
        LedgerState::default()
    }

    fn decide(state: &LedgerState, command: LedgerEvent) -> Result<Vec<LedgerEvent>, Self::Error> {
        if state.frozen { Err("frozen") } else { Ok(vec![command]) }
    }

    fn evolve(mut state: LedgerState, event: &LedgerEvent) -> LedgerState {
        let code = match event {
            LedgerEvent::Deposited { amount } => {
                state.balance += amount;
                *amount as u64
            }
            LedgerEvent::Withdrawn { amount } => {
                state.balance -= amount;
                (*amount as u64) << 1
            }
            LedgerEvent::Frozen => {
                state.frozen = true;
                7
            }
        };
        state.entries += 1;
        state.digest = state.digest.wrapping_mul(31).wrapping_add(code);
        state
    }
}

impl<const N: u64> Aggregate for Ledger<N> {
    const CATEGORY: &'static str = "ledger";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = NonZeroU64::new(N);
}

/// A raw event with a fresh id.
pub fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: EventId::from_uuid(Uuid::now_v7()),
        event_type: "Deposited".into(),
        schema_version: 1,
        payload: serde_json::json!({ "amount": n }),
        metadata: EventMetadata { occurred_at: Timestamp::from_micros(n as i64), ..EventMetadata::default() },
    }
}

/// An outbox message announcing `event`.
pub fn message_for(event: &NewEvent) -> OutboxMessage {
    OutboxMessage {
        message_id: *event.event_id.as_uuid(),
        topic: "test.events".into(),
        key: "key-1".into(),
        headers: vec![("ce_type".into(), event.event_type.clone())],
        payload: event.payload.to_string().into_bytes(),
    }
}
