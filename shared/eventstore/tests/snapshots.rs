//! Property: loading with snapshots equals a full replay, for random event
//! sequences, batch sizes and snapshot intervals, on both backends.

mod common;

use common::{Ledger, LedgerEvent, TestStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use udders_eventstore::{Aggregate, EventMetadata, EventStore, Loaded};
use udders_kernel::Decider;
use uuid::Uuid;

fn ledger_event() -> impl Strategy<Value = LedgerEvent> {
    prop_oneof![
        6 => (1i64..1000).prop_map(|amount| LedgerEvent::Deposited { amount }),
        3 => (1i64..1000).prop_map(|amount| LedgerEvent::Withdrawn { amount }),
        1 => Just(LedgerEvent::Frozen),
    ]
}

/// Records `batches` through `record`, then checks `load` against a replay.
async fn check<const N: u64>(store: &EventStore, batches: &[Vec<LedgerEvent>]) -> Result<(), TestCaseError> {
    let id = Uuid::new_v4();
    let mut live: Loaded<Ledger<N>> = store.load(id).await.unwrap();
    for batch in batches {
        let mut tx = store.begin().await.unwrap();
        tx.record(&mut live, batch.clone(), EventMetadata::default()).await.unwrap();
        tx.commit().await.unwrap();
    }
    let all: Vec<LedgerEvent> = batches.concat();
    let replayed = Ledger::<N>::fold(&all);
    let loaded = store.load::<Ledger<N>>(id).await.unwrap();
    let unsnapshotted = store.load_without_snapshot::<Ledger<N>>(id).await.unwrap();
    prop_assert_eq!(&loaded.state, &replayed);
    prop_assert_eq!(&unsnapshotted.state, &replayed);
    prop_assert_eq!(&live.state, &replayed);
    prop_assert_eq!(loaded.version, all.len() as u64);
    if let Some(every) = Ledger::<N>::SNAPSHOT_EVERY {
        let expected = (all.len() as u64 >= every.get()).then(|| {
            // the end of the last batch that crossed a multiple of N
            let mut at = 0;
            let mut best = None;
            for b in batches {
                let before = at;
                at += b.len() as u64;
                if before / every.get() != at / every.get() {
                    best = Some(at);
                }
            }
            best
        });
        prop_assert_eq!(loaded.snapshot_version, expected.flatten());
        prop_assert!(loaded.snapshot_version.is_none_or(|v| v <= loaded.version), "never ahead of its events");
    } else {
        prop_assert_eq!(loaded.snapshot_version, None);
    }
    Ok(())
}

/// Runs the property on `runtime`, the runtime that opened `store` (a pool's
/// connections belong to the runtime that made them).
fn run_property(runtime: &tokio::runtime::Runtime, store: &TestStore, cases: u32) {
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    let strategy = (0usize..8, prop::collection::vec(prop::collection::vec(ledger_event(), 1..6), 0..30));
    runner
        .run(&strategy, |(interval, batches)| {
            runtime.block_on(async {
                match interval {
                    0 => check::<0>(&store.store, &batches).await,
                    1 => check::<1>(&store.store, &batches).await,
                    2 => check::<2>(&store.store, &batches).await,
                    3 => check::<3>(&store.store, &batches).await,
                    4 => check::<5>(&store.store, &batches).await,
                    5 => check::<7>(&store.store, &batches).await,
                    6 => check::<10>(&store.store, &batches).await,
                    _ => check::<25>(&store.store, &batches).await,
                }
            })
        })
        .unwrap();
}

#[test]
fn load_with_snapshots_equals_full_replay_sqlite() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(common::sqlite());
    run_property(&runtime, &store, 64);
}

#[test]
fn load_with_snapshots_equals_full_replay_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(store) = runtime.block_on(common::postgres("load_with_snapshots_equals_full_replay_postgres")) else {
        return;
    };
    run_property(&runtime, &store, 64);
}
