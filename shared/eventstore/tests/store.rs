//! The event store's contract, run on SQLite and on PostgreSQL.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Ledger, LedgerEvent, event, message_for};
use tokio::sync::Barrier;
use udders_eventstore::{
    ConsumerPosition, Document, EventMetadata, EventStore, ExpectedVersion, NewEvent, OutboxStatus, SnapshotRecord,
    StoreError, StreamId, StreamOf,
};
use udders_kernel::{EventId, Timestamp};
use uuid::Uuid;

fn stream(name: &str) -> StreamId {
    StreamId::new("test", format!("{name}.{}", Uuid::new_v4().simple()))
}

on_both_backends! {
    /// Eight writers race for every version: one wins, seven get Conflict.
    async fn concurrent_appends_to_one_stream_have_one_winner_per_version(store: EventStore) {
        const WRITERS: usize = 8;
        const ROUNDS: u64 = 25;
        let stream = stream("race");
        let barrier = Arc::new(Barrier::new(WRITERS));
        let mut tasks = Vec::new();
        for _ in 0..WRITERS {
            let (store, stream, barrier) = (store.clone(), stream.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let mut outcome = Vec::new();
                for round in 0..ROUNDS {
                    barrier.wait().await;
                    let result = store.append(&stream, ExpectedVersion::from_u64(round), &[event(round)], &[]).await;
                    outcome.push(match result {
                        Ok(appended) => {
                            assert_eq!(appended.version, round + 1);
                            true
                        }
                        Err(e) if e.is_conflict() => false,
                        Err(e) => panic!("append failed with something other than a conflict: {e}"),
                    });
                    barrier.wait().await;
                }
                outcome
            }));
        }
        let mut wins_per_round = vec![0; ROUNDS as usize];
        for task in tasks {
            for (round, won) in task.await.unwrap().into_iter().enumerate() {
                wins_per_round[round] += usize::from(won);
            }
        }
        assert!(wins_per_round.iter().all(|w| *w == 1), "one winner per version: {wins_per_round:?}");
        let stored = store.read_stream(&stream, 0).await.unwrap();
        let versions: Vec<u64> = stored.iter().map(|e| e.version).collect();
        assert_eq!(versions, (1..=ROUNDS).collect::<Vec<_>>(), "versions have no gaps and no repeats");
    }
}

on_both_backends! {
    /// A version the stream has not reached yet is refused too: no gaps.
    async fn an_expected_version_ahead_of_the_stream_is_a_conflict(store: EventStore) {
        let stream = stream("ahead");
        store.append(&stream, ExpectedVersion::NoStream, &[event(1)], &[]).await.unwrap();
        let err = store.append(&stream, ExpectedVersion::Exact(5), &[event(2)], &[]).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        let err = store.append(&stream, ExpectedVersion::NoStream, &[event(3)], &[]).await.unwrap_err();
        assert!(err.is_conflict(), "{err}");
        assert_eq!(store.stream_version(&stream).await.unwrap(), 1);
        let ok = store.append(&stream, ExpectedVersion::Exact(1), &[event(4), event(5), event(6)], &[]).await.unwrap();
        assert_eq!(ok.version, 4);
    }
}

on_both_backends! {
    async fn an_event_id_is_stored_once(store: EventStore) {
        let first = event(1);
        store.append(&stream("a"), ExpectedVersion::NoStream, std::slice::from_ref(&first), &[]).await.unwrap();
        let other = stream("b");
        let err = store.append(&other, ExpectedVersion::NoStream, &[event(2), first.clone()], &[]).await.unwrap_err();
        match err {
            StoreError::DuplicateEventId { event_id, .. } => assert_eq!(event_id, first.event_id.to_string()),
            other => panic!("expected DuplicateEventId, got {other}"),
        }
        assert_eq!(store.stream_version(&other).await.unwrap(), 0, "nothing of the failed append is kept");
    }
}

on_both_backends! {
    /// Outbox rows exist if and only if the append committed.
    async fn outbox_rows_exist_only_if_the_append_committed(store: EventStore) {
        let s = stream("outbox");
        // 1. A transaction that dies after its inserts, before commit.
        let e1 = event(1);
        let mut tx = store.begin().await.unwrap();
        tx.append(&s, ExpectedVersion::NoStream, std::slice::from_ref(&e1)).await.unwrap();
        tx.enqueue(&[message_for(&e1)]).await.unwrap();
        drop(tx);
        assert_eq!(store.stream_version(&s).await.unwrap(), 0);
        assert_eq!(store.outbox_backlog().await.unwrap(), 0);

        // 2. A failure injected after the event insert: the outbox insert
        //    collides with an existing message id, so the whole append fails.
        let e2 = event(2);
        store.append(&stream("other"), ExpectedVersion::NoStream, std::slice::from_ref(&e2), &[message_for(&e2)]).await.unwrap();
        let e3 = event(3);
        let mut colliding = message_for(&e3);
        colliding.message_id = *e2.event_id.as_uuid();
        let err = store.append(&s, ExpectedVersion::NoStream, &[e3], &[colliding]).await.unwrap_err();
        assert!(matches!(err, StoreError::DuplicateMessageId { .. }), "{err}");
        assert_eq!(store.stream_version(&s).await.unwrap(), 0, "the events went with the failed outbox insert");
        assert_eq!(store.outbox_backlog().await.unwrap(), 1, "only the committed append's row");

        // 3. A committed append: both are there.
        let e4 = event(4);
        store.append(&s, ExpectedVersion::NoStream, std::slice::from_ref(&e4), &[message_for(&e4)]).await.unwrap();
        assert_eq!(store.stream_version(&s).await.unwrap(), 1);
        let claimed = store.claim_outbox("relay", 10, Duration::from_secs(30)).await.unwrap();
        let ids: Vec<Uuid> = claimed.iter().map(|c| c.message.message_id).collect();
        assert_eq!(ids, vec![*e2.event_id.as_uuid(), *e4.event_id.as_uuid()]);
        assert_eq!(claimed[1].message, message_for(&e4), "the row comes back as written");
    }
}

on_both_backends! {
    async fn a_commit_with_outbox_rows_wakes_the_relay(store: EventStore) {
        let notified = store.outbox_signal().notified();
        let e = event(1);
        store.append(&stream("wake"), ExpectedVersion::NoStream, std::slice::from_ref(&e), &[message_for(&e)]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), notified).await.expect("the relay signal fired");
    }
}

on_both_backends! {
    /// On an exclusive store a commit hands the relay the rows a read would
    /// return, with the same ids, and a rolled-back transaction hands over
    /// nothing and leaves no gap; where several processes write, the relay
    /// always reads.
    async fn commits_hand_the_relay_the_outbox_rows_it_would_read(store: EventStore) {
        store.start_outbox_hand_over();
        let zero = event(0);
        store.append(&stream("zero"), ExpectedVersion::NoStream, std::slice::from_ref(&zero), &[message_for(&zero)]).await.unwrap();
        assert!(store.handed_over_after(0, 100).is_none(), "a relay with no place yet reads");
        let place = store.unpublished_after(0, 100).await.unwrap()[0].id;
        let one = event(1);
        store.append(&stream("one"), ExpectedVersion::NoStream, std::slice::from_ref(&one), &[message_for(&one)]).await.unwrap();
        let (two, three) = (event(2), event(3));
        let mut tx = store.begin().await.unwrap();
        tx.append(&stream("two"), ExpectedVersion::NoStream, &[two.clone(), three.clone()]).await.unwrap();
        tx.enqueue(&[message_for(&two), message_for(&three)]).await.unwrap();
        tx.commit().await.unwrap();
        let dropped = event(4);
        let mut tx = store.begin().await.unwrap();
        tx.enqueue(&[message_for(&dropped)]).await.unwrap();
        tx.flush().await.unwrap();
        drop(tx);
        let five = event(5);
        store.append(&stream("five"), ExpectedVersion::NoStream, std::slice::from_ref(&five), &[message_for(&five)]).await.unwrap();

        let read = store.unpublished_after(place, 100).await.unwrap();
        let messages: Vec<Uuid> = read.iter().map(|r| r.message.message_id).collect();
        let expected: Vec<Uuid> = [&one, &two, &three, &five].iter().map(|e| *e.event_id.as_uuid()).collect();
        assert_eq!(messages, expected);
        let handed = store.handed_over_after(place, 100);
        if store.is_exclusive() {
            assert_eq!(handed.as_ref(), Some(&read), "the same rows, ids and contents");
            let ids: Vec<i64> = read.iter().map(|r| r.id).collect();
            assert_eq!(ids, (read[0].id..read[0].id + 4).collect::<Vec<_>>(), "no gap where the rollback was");
            assert_eq!(store.handed_over_after(read[3].id, 100), Some(Vec::new()), "nothing committed since");
        } else {
            assert_eq!(handed, None);
        }
    }
}

on_both_backends! {
    /// The outbox status counts unpublished rows and ages the oldest; a
    /// published row leaves both.
    async fn the_outbox_status_counts_waiting_rows_and_ages_the_oldest(store: EventStore) {
        assert_eq!(store.outbox_status().await.unwrap(), OutboxStatus { backlog: 0, oldest_age: None });
        let (e1, e2) = (event(1), event(2));
        store.append(&stream("a"), ExpectedVersion::NoStream, std::slice::from_ref(&e1), &[message_for(&e1)]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        store.append(&stream("b"), ExpectedVersion::NoStream, std::slice::from_ref(&e2), &[message_for(&e2)]).await.unwrap();
        let status = store.outbox_status().await.unwrap();
        assert_eq!(status.backlog, 2);
        let age = status.oldest_age.expect("an age");
        assert!(age >= Duration::from_millis(50) && age < Duration::from_secs(30), "{age:?}");
        let first = store.claim_outbox("relay", 1, Duration::from_secs(30)).await.unwrap();
        store.mark_published(&[first[0].id]).await.unwrap();
        let status = store.outbox_status().await.unwrap();
        assert_eq!(status.backlog, 1);
        assert!(status.oldest_age.expect("an age") < age, "the younger row is now the oldest");
    }
}

on_both_backends! {
    /// Work queued with `on_commit` runs after a commit, never after a rollback.
    async fn on_commit_runs_only_when_the_transaction_commits(store: EventStore) {
        let ran = Arc::new(AtomicU32::new(0));
        let count = |ran: &Arc<AtomicU32>| {
            let ran = ran.clone();
            move || {
                ran.fetch_add(1, Ordering::SeqCst);
            }
        };
        let mut tx = store.begin().await.unwrap();
        tx.on_commit(count(&ran));
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        tx.on_commit(count(&ran));
        tx.rollback().await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        let mut tx = store.begin().await.unwrap();
        tx.on_commit(count(&ran));
        tx.on_commit(count(&ran));
        tx.commit().await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    }
}

on_both_backends! {
    /// Relays claiming at the same time never get the same row, and together
    /// they get every row.
    async fn two_relays_never_claim_the_same_row(store: EventStore) {
        const ROWS: usize = 600;
        for chunk in 0..(ROWS / 50) {
            let events: Vec<NewEvent> = (0..50).map(|i| event((chunk * 50 + i) as u64)).collect();
            let messages: Vec<_> = events.iter().map(message_for).collect();
            store.append(&stream("bulk"), ExpectedVersion::NoStream, &events, &messages).await.unwrap();
        }
        let mut relays = Vec::new();
        for relay in ["relay-a", "relay-b", "relay-c"] {
            let store = store.clone();
            relays.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claimed = store.claim_outbox(relay, 7, Duration::from_secs(60)).await.unwrap();
                    if claimed.is_empty() {
                        break mine;
                    }
                    let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
                    assert_eq!(store.mark_published(&ids).await.unwrap(), ids.len() as u64);
                    mine.extend(ids);
                    tokio::task::yield_now().await;
                }
            }));
        }
        let mut seen = HashSet::new();
        let mut per_relay = Vec::new();
        for relay in relays {
            let ids = relay.await.unwrap();
            per_relay.push(ids.len());
            for id in ids {
                assert!(seen.insert(id), "row {id} was claimed twice");
            }
        }
        assert_eq!(seen.len(), ROWS, "every row was claimed ({per_relay:?} per relay)");
        assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    }
}

on_both_backends! {
    /// A relay that claims rows and dies leaves them to be claimed again once
    /// its lease runs out; nothing is lost.
    async fn a_crashed_claim_is_claimed_again_after_its_lease(store: EventStore) {
        let events: Vec<NewEvent> = (0..3).map(event).collect();
        let messages: Vec<_> = events.iter().map(message_for).collect();
        store.append(&stream("lease"), ExpectedVersion::NoStream, &events, &messages).await.unwrap();

        let lease = Duration::from_millis(300);
        let first = store.claim_outbox("relay-that-dies", 10, lease).await.unwrap();
        assert_eq!(first.len(), 3);
        assert!(first.iter().all(|c| c.attempts == 1));
        assert!(store.claim_outbox("relay-2", 10, lease).await.unwrap().is_empty(), "leased rows are not handed out");

        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        let again = store.claim_outbox("relay-2", 10, lease).await.unwrap();
        let ids = |c: &[udders_eventstore::ClaimedMessage]| c.iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(&again), ids(&first), "the same rows, in the same order");
        assert!(again.iter().all(|c| c.attempts == 2), "each claim is counted");

        // A release hands rows back at once.
        store.release_claims(&ids(&again)).await.unwrap();
        let third = store.claim_outbox("relay-3", 10, lease).await.unwrap();
        assert_eq!(ids(&third), ids(&first));
        assert_eq!(store.mark_published(&ids(&third)).await.unwrap(), 3);
        assert_eq!(store.mark_published(&ids(&third)).await.unwrap(), 0, "marking twice is harmless");
        assert_eq!(store.unpublish_recent(Duration::from_secs(60)).await.unwrap(), 3, "a broker lost them: send again");
        assert_eq!(ids(&store.claim_outbox("relay-4", 10, lease).await.unwrap()), ids(&first));
        store.mark_published(&ids(&first)).await.unwrap();
        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        assert!(store.claim_outbox("relay-2", 10, lease).await.unwrap().is_empty(), "published rows stay published");
    }
}

on_both_backends! {
    /// A relay started again under its name takes back at once what its
    /// predecessor had claimed, lease or not, and nothing of another relay's
    /// claims or of what is published.
    async fn a_relay_restarted_under_its_name_takes_back_its_claims_at_once(store: EventStore) {
        let events: Vec<NewEvent> = (0..5).map(event).collect();
        let messages: Vec<_> = events.iter().map(message_for).collect();
        store.append(&stream("restart"), ExpectedVersion::NoStream, &events, &messages).await.unwrap();
        let ids = |c: &[udders_eventstore::ClaimedMessage]| c.iter().map(|c| c.id).collect::<Vec<_>>();
        let hour = Duration::from_secs(3600);
        let published = store.claim_outbox("credit-1", 1, hour).await.unwrap();
        store.mark_published(&ids(&published)).await.unwrap();
        let held = store.claim_outbox("credit-1", 2, hour).await.unwrap();
        let other = store.claim_outbox("credit-2", 2, hour).await.unwrap();
        assert_eq!((held.len(), other.len()), (2, 2));
        assert!(store.claim_outbox("credit-1", 10, hour).await.unwrap().is_empty(), "every row is leased or published");

        assert_eq!(store.release_claims_of("credit-1").await.unwrap(), 2, "the predecessor's two claims");
        assert_eq!(store.release_claims_of("credit-1").await.unwrap(), 0, "nothing left to take back");
        let again = store.claim_outbox("credit-1", 10, hour).await.unwrap();
        assert_eq!(ids(&again), ids(&held), "its own rows, and not credit-2's or the published one");
        assert_eq!(store.outbox_backlog().await.unwrap(), 4);
    }
}

on_both_backends! {
    async fn the_inbox_says_seen_the_second_time(store: EventStore) {
        let id = EventId::from_uuid(Uuid::now_v7());
        let mut tx = store.begin().await.unwrap();
        assert!(tx.inbox_record("credit", id).await.unwrap(), "new the first time");
        assert!(!tx.inbox_record("credit", id).await.unwrap(), "seen within the same transaction");
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        assert!(!tx.inbox_record("credit", id).await.unwrap(), "seen after commit");
        assert!(tx.inbox_record("inventory", id).await.unwrap(), "each consumer has its own inbox");
        tx.rollback().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        assert!(tx.inbox_record("inventory", id).await.unwrap(), "a rolled-back entry was never recorded");
        tx.commit().await.unwrap();
    }
}

on_both_backends! {
    /// The consumer position commits or rolls back with the handler's effects.
    async fn consumer_positions_commit_with_the_handler(store: EventStore) {
        let at = |offset: i64| ConsumerPosition {
            topic: "order".into(),
            partition: 3,
            next_offset: offset,
            last_record: Some(format!("record-{}", offset - 1)),
        };
        let mut tx = store.begin().await.unwrap();
        tx.save_position("credit", &at(10)).await.unwrap();
        tx.save_position("credit", &ConsumerPosition { partition: 0, ..at(4) }).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let e = event(1);
        tx.append(&stream("pos"), ExpectedVersion::NoStream, &[e]).await.unwrap();
        tx.save_position("credit", &at(11)).await.unwrap();
        drop(tx); // the handler crashed before commit

        let positions = store.positions("credit").await.unwrap();
        assert_eq!(positions, vec![ConsumerPosition { partition: 0, ..at(4) }, at(10)]);
        assert!(store.positions("nobody").await.unwrap().is_empty());
    }
}

on_both_backends! {
    /// Readers paging through the global log while writers commit (and some
    /// roll back) see every committed event exactly once, in commit order,
    /// each stream in version order.
    async fn the_global_log_returns_every_committed_event_once_under_concurrent_writers(store: EventStore) {
        const WRITERS: u64 = 6;
        const APPENDS: u64 = 120;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (store, done) = (store.clone(), done.clone());
            tokio::spawn(async move {
                let (mut after, mut seen) = (0, Vec::new());
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                    let page = store.read_all(after, 37).await.unwrap();
                    if page.is_empty() && finished {
                        break seen;
                    }
                    for e in page {
                        assert!(e.position > after, "positions only grow");
                        after = e.position;
                        seen.push(e);
                    }
                }
            })
        };
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let s = stream(&format!("writer{w}"));
                let mut committed = Vec::new();
                for i in 0..APPENDS {
                    let batch: Vec<NewEvent> = (0..1 + i % 3).map(|k| event(i * 10 + k)).collect();
                    let mut tx = store.begin().await.unwrap();
                    let version = committed.len() as u64;
                    tx.append(&s, ExpectedVersion::from_u64(version), &batch).await.unwrap();
                    if i % 5 == 4 {
                        drop(tx); // rolled back: its positions are never seen
                        continue;
                    }
                    tokio::task::yield_now().await;
                    tx.commit().await.unwrap();
                    committed.extend(batch.into_iter().map(|e| e.event_id));
                }
                committed
            }));
        }
        let mut committed = HashSet::new();
        for w in writers {
            committed.extend(w.await.unwrap());
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let seen = reader.await.unwrap();
        let ids: Vec<EventId> = seen.iter().map(|e| e.event_id).collect();
        let unique: HashSet<EventId> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "no event was returned twice");
        assert_eq!(unique, committed, "every committed event, and nothing else, was returned");
        let mut last_version: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &seen {
            let last = last_version.entry(&e.stream).or_default();
            assert_eq!(e.version, *last + 1, "stream {} in version order", e.stream);
            *last = e.version;
        }
        assert_eq!(store.head_position().await.unwrap(), seen.last().unwrap().position);
    }
}

on_both_backends! {
    async fn events_keep_their_metadata_and_correlation(store: EventStore) {
        let correlation = udders_kernel::CorrelationId::from_uuid(Uuid::now_v7());
        let cause = EventId::from_uuid(Uuid::now_v7());
        let mut e = event(9);
        e.metadata = EventMetadata {
            correlation_id: Some(correlation),
            causation_id: Some(cause),
            occurred_at: udders_kernel::Timestamp::from_micros(1_795_356_185_123_456),
        };
        let s = stream("meta");
        store.append(&s, ExpectedVersion::NoStream, &[e.clone(), event(10)], &[]).await.unwrap();
        let stored = store.read_stream(&s, 0).await.unwrap();
        assert_eq!(stored[0].metadata, e.metadata);
        assert_eq!(stored[0].payload, e.payload);
        assert_eq!((stored[0].stream.as_str(), stored[0].category.as_str()), (s.as_str(), "test"));
        let correlated = store.read_correlated(correlation).await.unwrap();
        assert_eq!(correlated.iter().map(|e| e.event_id).collect::<Vec<_>>(), vec![e.event_id]);
        assert!(stored[0].recorded_at.micros() > 1_700_000_000_000_000, "recorded by the database clock");
    }
}

on_both_backends! {
    /// An event the aggregate does not know is an error that names the
    /// stream, the version and the type.
    async fn an_unknown_event_type_names_stream_version_and_type(store: EventStore) {
        type L = Ledger<0>;
        let id = Uuid::new_v4();
        let s = L::stream(id);
        let mut bogus = event(1);
        bogus.event_type = "Embezzled".into();
        store.append(&s, ExpectedVersion::NoStream, &[event(5), bogus], &[]).await.unwrap();
        let err = store.load::<L>(id).await.unwrap_err();
        match &err {
            StoreError::UnknownEvent { stream, version, event_type, .. } => {
                assert_eq!((stream.as_str(), *version, event_type.as_str()), (s.as_str(), 2, "Embezzled"));
            }
            other => panic!("expected UnknownEvent, got {other}"),
        }
        let text = err.to_string();
        assert!(text.contains(s.as_str()) && text.contains("version 2") && text.contains("Embezzled"), "{text}");

        let mut future = event(1);
        future.schema_version = 9;
        let s2 = L::stream(Uuid::new_v4());
        store.append(&s2, ExpectedVersion::NoStream, &[future], &[]).await.unwrap();
        let id2 = s2.as_str().trim_start_matches("ledger-").to_owned();
        let err = store.load::<L>(id2).await.unwrap_err().to_string();
        assert!(err.contains("schema version 9"), "{err}");
    }
}

on_both_backends! {
    /// Snapshots every N: a load starts from the newest snapshot and folds
    /// only the events after it.
    async fn a_load_starts_from_the_newest_snapshot(store: EventStore) {
        type L = Ledger<10>;
        let id = Uuid::new_v4();
        let mut loaded = store.load::<L>(id).await.unwrap();
        for i in 0..23 {
            let mut tx = store.begin().await.unwrap();
            tx.record::<L>(&mut loaded, vec![LedgerEvent::Deposited { amount: i }], EventMetadata::default()).await.unwrap();
            tx.commit().await.unwrap();
        }
        let fresh = store.load::<L>(id).await.unwrap();
        assert_eq!((fresh.version, fresh.snapshot_version, fresh.replayed), (23, Some(20), 3));
        assert_eq!(fresh.state, loaded.state);
        assert_eq!(fresh.state, store.load_without_snapshot::<L>(id).await.unwrap().state);
        assert_eq!(fresh.state.balance, (0..23).sum::<i64>());
    }
}

on_both_backends! {
    /// A snapshot written by an older state schema is ignored, and the state
    /// is rebuilt from the events.
    async fn a_snapshot_of_another_state_schema_is_ignored(store: EventStore) {
        type L = Ledger<0>;
        let id = Uuid::new_v4();
        let s = L::stream(id);
        store.append(&s, ExpectedVersion::NoStream, &[event(3), event(4)], &[]).await.unwrap();
        let stale = SnapshotRecord { version: 2, state_schema: 0, state: serde_json::json!({ "balance": 1_000_000 }) };
        let unreadable = SnapshotRecord { version: 2, state_schema: 1, state: serde_json::json!("not a ledger") };
        for snapshot in [stale, unreadable] {
            let mut tx = store.begin().await.unwrap();
            tx.save_snapshot(&s, &snapshot).await.unwrap();
            tx.commit().await.unwrap();
            let loaded = store.load::<L>(id).await.unwrap();
            assert_eq!((loaded.version, loaded.snapshot_version, loaded.replayed), (2, None, 2));
            assert_eq!(loaded.state.balance, 7);
        }
        // A snapshot ahead of its events (a restored backup) is not trusted.
        let ahead = SnapshotRecord { version: 5, state_schema: 1, state: serde_json::to_value(common::LedgerState::default()).unwrap() };
        let mut tx = store.begin().await.unwrap();
        tx.save_snapshot(&s, &ahead).await.unwrap();
        tx.commit().await.unwrap();
        let loaded = store.load::<L>(id).await.unwrap();
        assert_eq!((loaded.version, loaded.snapshot_version, loaded.state.balance), (2, None, 7));
    }
}

on_both_backends! {
    /// Pruning removes published outbox rows and inbox rows past their window,
    /// and never an unpublished row.
    async fn pruning_removes_only_old_published_and_old_inbox_rows(store: EventStore) {
        let events: Vec<NewEvent> = (0..4).map(event).collect();
        let messages: Vec<_> = events.iter().map(message_for).collect();
        store.append(&stream("prune"), ExpectedVersion::NoStream, &events, &messages).await.unwrap();
        let claimed = store.claim_outbox("relay", 2, Duration::from_secs(60)).await.unwrap();
        store.mark_published(&claimed.iter().map(|c| c.id).collect::<Vec<_>>()).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        for e in &events {
            tx.inbox_record("credit", e.event_id).await.unwrap();
        }
        tx.commit().await.unwrap();

        let hour = Duration::from_secs(3600);
        assert_eq!(store.prune(hour, hour).await.unwrap(), udders_eventstore::Pruned::default(), "nothing is old yet");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let pruned = store.prune(Duration::ZERO, Duration::ZERO).await.unwrap();
        assert_eq!((pruned.outbox_rows, pruned.inbox_rows), (2, 4));
        assert_eq!(store.outbox_backlog().await.unwrap(), 2, "unpublished rows stay");
        let mut tx = store.begin().await.unwrap();
        assert!(tx.inbox_record("credit", events[0].event_id).await.unwrap(), "a pruned inbox entry is forgotten");
    }
}

#[tokio::test]
async fn a_sqlite_store_belongs_to_one_opener_until_it_closes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("svc.db").display());
    let first = EventStore::connect(&url, &Default::default()).await.unwrap();
    let err = EventStore::connect(&url, &Default::default()).await.unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("in use by another process"), "{err}");
    first.close().await;
    let again = EventStore::connect(&url, &Default::default()).await.unwrap();
    again.close().await;
}

#[tokio::test]
async fn opening_a_store_twice_applies_migrations_once_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("svc.db").display());
    let s = stream("reopen");
    {
        let store = EventStore::connect(&url, &Default::default()).await.unwrap();
        store.append(&s, ExpectedVersion::NoStream, &[event(1)], &[]).await.unwrap();
        store.close().await;
    }
    let store = EventStore::connect(&url, &Default::default()).await.unwrap();
    assert_eq!(store.stream_version(&s).await.unwrap(), 1);
}

#[tokio::test]
async fn an_unsupported_url_is_a_clear_error() {
    let err = EventStore::connect("mysql://user:secret@host/db", &Default::default()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unsupported database URL") && !text.contains("secret"), "{text}");
}

on_both_backends! {
    /// A transaction sees its own pending work: a second load returns the
    /// state after the events recorded so far, a document read returns the
    /// one put; nothing reaches the database before the commit.
    async fn a_transaction_sees_what_it_recorded_before_the_commit(store: EventStore) {
        type L = Ledger<3>;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut tx = store.begin().await.unwrap();
        let mut ledger = tx.load::<L>(a).await.unwrap();
        tx.record(&mut ledger, vec![LedgerEvent::Deposited { amount: 5 }], EventMetadata::default()).await.unwrap();
        let mut again = tx.load::<L>(a).await.unwrap();
        assert_eq!((again.version, again.state.balance), (1, 5));
        tx.record(&mut again, vec![LedgerEvent::Deposited { amount: 2 }; 3], EventMetadata::default()).await.unwrap();
        let mut other = tx.load::<L>(b).await.unwrap();
        tx.record(&mut other, vec![LedgerEvent::Withdrawn { amount: 1 }], EventMetadata::default()).await.unwrap();
        let doc = Document { view: "v".into(), key: "k".into(), doc: serde_json::json!({"n": 1}), tags: [None, None, None], due: None };
        tx.put_document(doc.clone()).await.unwrap();
        assert_eq!(tx.document("v", "k").await.unwrap(), Some(doc.clone()));
        assert_eq!(store.stream_version(&L::stream(a)).await.unwrap(), 0, "nothing is written before the commit");
        assert_eq!(tx.stream_version(&L::stream(a)).await.unwrap(), 4);
        tx.commit().await.unwrap();

        let loaded = store.load::<L>(a).await.unwrap();
        assert_eq!((loaded.version, loaded.state.balance, loaded.snapshot_version), (4, 11, Some(4)));
        assert_eq!(loaded.state, store.load_without_snapshot::<L>(a).await.unwrap().state);
        assert_eq!(store.load::<L>(b).await.unwrap().state.balance, -1);
        assert_eq!(store.document("v", "k").await.unwrap(), Some(doc));
        let log: Vec<(String, u64)> = store.read_all(0, 100).await.unwrap().into_iter().map(|e| (e.stream, e.version)).collect();
        let a_versions: Vec<u64> = log.iter().filter(|(s, _)| *s == L::stream(a).to_string()).map(|(_, v)| *v).collect();
        assert_eq!(a_versions, vec![1, 2, 3, 4], "in version order in the global log");
    }
}

on_both_backends! {
    /// A record on a state that another writer has moved past fails the
    /// commit with a conflict, and nothing of that transaction is kept.
    async fn a_record_on_a_stale_state_fails_the_commit_and_keeps_nothing(store: EventStore) {
        type L = Ledger<0>;
        let (id, bystander) = (Uuid::new_v4(), Uuid::new_v4());
        let mut stale = store.load::<L>(id).await.unwrap();
        store.append(&L::stream(id), ExpectedVersion::NoStream, &[event(1)], &[]).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let mut fine = tx.load::<L>(bystander).await.unwrap();
        tx.record(&mut fine, vec![LedgerEvent::Deposited { amount: 1 }], EventMetadata::default()).await.unwrap();
        tx.record(&mut stale, vec![LedgerEvent::Deposited { amount: 2 }], EventMetadata::default()).await.unwrap();
        tx.enqueue(&[message_for(&event(9))]).await.unwrap();
        let err = tx.commit().await.unwrap_err();
        match &err {
            StoreError::Conflict { stream, .. } => assert_eq!(*stream, L::stream(id).to_string()),
            other => panic!("expected a conflict, got {other}"),
        }
        assert_eq!(store.stream_version(&L::stream(bystander)).await.unwrap(), 0);
        assert_eq!(store.stream_version(&L::stream(id)).await.unwrap(), 1);
        assert_eq!(store.outbox_backlog().await.unwrap(), 0);

        // A state ahead of the stream (say, from a transaction that rolled
        // back) is refused as well: versions never have gaps.
        let mut ahead = store.load::<L>(id).await.unwrap();
        ahead.version = 5;
        let mut tx = store.begin().await.unwrap();
        tx.record(&mut ahead, vec![LedgerEvent::Frozen], EventMetadata::default()).await.unwrap();
        assert!(tx.commit().await.unwrap_err().is_conflict());
        assert_eq!(store.stream_version(&L::stream(id)).await.unwrap(), 1);
    }
}

on_both_backends! {
    /// A commit writes its events, outbox rows, documents and consumer
    /// position together: the failure of a later write is named for what it
    /// wrote, and nothing of the transaction is kept, not its events nor its
    /// documents nor its consumer position.
    async fn a_failed_write_at_commit_is_named_and_keeps_nothing(store: EventStore) {
        type L = Ledger<0>;
        let id = Uuid::new_v4();
        let taken = event(1);
        store.append(&stream("taken"), ExpectedVersion::NoStream, std::slice::from_ref(&taken), &[message_for(&taken)]).await.unwrap();
        let position = ConsumerPosition { topic: "order".into(), partition: 1, next_offset: 7, last_record: None };
        let mut tx = store.begin().await.unwrap();
        let mut ledger = tx.load::<L>(id).await.unwrap();
        tx.record(&mut ledger, vec![LedgerEvent::Deposited { amount: 3 }], EventMetadata::default()).await.unwrap();
        let mut colliding = message_for(&event(2));
        colliding.message_id = *taken.event_id.as_uuid();
        tx.enqueue(&[colliding]).await.unwrap();
        let doc = Document { view: "v".into(), key: id.to_string(), doc: serde_json::json!(3), tags: [None, None, None], due: None };
        tx.put_document(doc.clone()).await.unwrap();
        tx.save_position("credit", &position).await.unwrap();
        let err = tx.commit().await.unwrap_err();
        assert!(matches!(err, StoreError::DuplicateMessageId { .. }), "{err}");
        assert_eq!(store.stream_version(&L::stream(id)).await.unwrap(), 0);
        assert_eq!(store.document("v", &id.to_string()).await.unwrap(), None);
        assert!(store.positions("credit").await.unwrap().is_empty());
        assert_eq!(store.outbox_backlog().await.unwrap(), 1);

        // The same writes without the collision commit together.
        let mut tx = store.begin().await.unwrap();
        let mut ledger = tx.load::<L>(id).await.unwrap();
        tx.record(&mut ledger, vec![LedgerEvent::Deposited { amount: 3 }], EventMetadata::default()).await.unwrap();
        tx.enqueue(&[message_for(&event(3))]).await.unwrap();
        tx.put_document(doc.clone()).await.unwrap();
        tx.save_position("credit", &position).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.stream_version(&L::stream(id)).await.unwrap(), 1);
        assert_eq!(store.document("v", &id.to_string()).await.unwrap(), Some(doc));
        assert_eq!(store.positions("credit").await.unwrap(), vec![position]);
        assert_eq!(store.outbox_backlog().await.unwrap(), 2);
    }
}

on_both_backends! {
    /// What a rolled-back transaction did is never seen again, not even by
    /// a store that keeps aggregates and documents in memory; what a raw
    /// append writes is.
    async fn loads_after_a_rollback_or_a_raw_append_see_the_database(store: EventStore) {
        type L = Ledger<0>;
        let id = Uuid::new_v4();
        let doc = |n: i64| Document { view: "v".into(), key: id.to_string(), doc: serde_json::json!(n), tags: [None, None, None], due: None };
        let mut tx = store.begin().await.unwrap();
        let mut ledger = tx.load::<L>(id).await.unwrap();
        tx.record(&mut ledger, vec![LedgerEvent::Deposited { amount: 10 }], EventMetadata::default()).await.unwrap();
        tx.put_document(doc(10)).await.unwrap();
        tx.commit().await.unwrap();

        for rolled_back in [true, false] {
            let mut tx = store.begin().await.unwrap();
            let mut ledger = tx.load::<L>(id).await.unwrap();
            assert_eq!((ledger.version, ledger.state.balance), (1, 10));
            assert_eq!(tx.document("v", &id.to_string()).await.unwrap(), Some(doc(10)));
            tx.record(&mut ledger, vec![LedgerEvent::Deposited { amount: 1 }], EventMetadata::default()).await.unwrap();
            tx.put_document(doc(11)).await.unwrap();
            if rolled_back {
                tx.rollback().await.unwrap();
            } else {
                drop(tx);
            }
        }

        store.append(&L::stream(id), ExpectedVersion::Exact(1), &[event(5)], &[]).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let ledger = tx.load::<L>(id).await.unwrap();
        assert_eq!((ledger.version, ledger.state.balance), (2, 15), "the raw append is seen");
        assert_eq!(tx.document("v", &id.to_string()).await.unwrap(), Some(doc(10)));
        tx.commit().await.unwrap();
    }
}

fn dead_letter(key: &str, reason: &str) -> udders_eventstore::NewDeadLetter {
    udders_eventstore::NewDeadLetter {
        consumer: "credit".into(),
        topic: "udders.order".into(),
        partition: 2,
        offset: 41,
        subject: Some("order/valid/1.0/icecream/udders/mango/sg/web".into()),
        key: Some(key.into()),
        reason: reason.into(),
        attempts: 5,
        first_failed_at: Timestamp::from_micros(1_000),
        last_failed_at: Timestamp::from_micros(2_000),
        headers: vec![("ce_id".into(), Some("e-1".into())), ("traceparent".into(), None)],
        payload: Some(b"{\"order_id\":\"o-1\"}".to_vec()),
    }
}

on_both_backends! {
    /// A dead letter is parked with the position past its record (one
    /// transaction), listed by status, reason and key, resolved once, and a
    /// failed replay counts one more attempt.
    async fn dead_letters_are_parked_with_their_position_listed_and_resolved_once(store: EventStore) {
        use udders_eventstore::{ConsumerPosition, DeadLetterFilter, DeadLetterStatus};
        let position = ConsumerPosition { topic: "udders.order".into(), partition: 2, next_offset: 42, last_record: None };
        let first = store.park_dead_letter(&dead_letter("o-1", "handler failed: no such flavour"), &position).await.unwrap();
        let second = store.park_dead_letter(&dead_letter("o-2", "the value is not JSON"), &position).await.unwrap();
        assert_ne!(first, second);
        assert_eq!(store.positions("credit").await.unwrap(), [position]);
        let stored = store.dead_letter(first).await.unwrap().unwrap();
        assert_eq!(stored.record, dead_letter("o-1", "handler failed: no such flavour"));
        assert_eq!((stored.status, stored.note), (DeadLetterStatus::Parked, None));
        let all = DeadLetterFilter { limit: 100, ..Default::default() };
        assert_eq!(store.dead_letters(&all).await.unwrap().iter().map(|d| d.id).collect::<Vec<_>>(), [second, first]);
        let json = DeadLetterFilter { reason: Some("not JSON".into()), ..all.clone() };
        assert_eq!(store.dead_letters(&json).await.unwrap().len(), 1);
        let of_o1 = DeadLetterFilter { key: Some("o-1".into()), ..all.clone() };
        assert_eq!(store.dead_letters(&of_o1).await.unwrap()[0].id, first);
        assert_eq!(store.parked_dead_letters().await.unwrap(), 2);

        store.dead_letter_failed_again(first, "handler failed: still", Timestamp::from_micros(9_000)).await.unwrap();
        let again = store.dead_letter(first).await.unwrap().unwrap();
        assert_eq!((again.record.attempts, again.record.reason.as_str()), (6, "handler failed: still"));
        assert_eq!((again.record.first_failed_at.micros(), again.record.last_failed_at.micros()), (1_000, 9_000));

        assert!(store.resolve_dead_letter(first, DeadLetterStatus::Discarded, Some("a test")).await.unwrap());
        assert!(!store.resolve_dead_letter(first, DeadLetterStatus::Replayed, None).await.unwrap(), "resolved once");
        let discarded = store.dead_letter(first).await.unwrap().unwrap();
        assert_eq!((discarded.status, discarded.note.as_deref()), (DeadLetterStatus::Discarded, Some("a test")));
        let parked = DeadLetterFilter { status: Some(DeadLetterStatus::Parked), ..all };
        assert_eq!(store.dead_letters(&parked).await.unwrap().iter().map(|d| d.id).collect::<Vec<_>>(), [second]);
        assert_eq!(store.parked_dead_letters().await.unwrap(), 1);
        assert!(store.dead_letter(first + second + 100).await.unwrap().is_none());
    }
}

on_both_backends! {
    /// A page of documents can be narrowed by a field of the document, with
    /// the tags and the cursor as before.
    async fn documents_are_filtered_by_a_field_of_the_document(store: EventStore) {
        use udders_eventstore::DocumentFilter;
        let mut tx = store.begin().await.unwrap();
        for (key, customer, status) in [("a", "c-1", "OPEN"), ("b", "c-2", "OPEN"), ("c", "c-1", "DONE"), ("d", "c-1", "OPEN")] {
            let doc = serde_json::json!({"customer_id": customer, "n": key});
            let tags = [Some(status.to_owned()), None, None];
            tx.put_document(Document { view: "orders".into(), key: key.into(), doc, tags, due: None }).await.unwrap();
        }
        tx.commit().await.unwrap();
        let keys = |page: udders_eventstore::DocumentPage| page.documents.into_iter().map(|d| d.key).collect::<Vec<_>>();
        let of_c1 = DocumentFilter { limit: 10, field: Some(("customer_id".into(), "c-1".into())), ..Default::default() };
        let mut found = keys(store.document_page("orders", &of_c1).await.unwrap());
        found.sort();
        assert_eq!(found, ["a", "c", "d"]);
        let open_c1 = DocumentFilter { tags: [Some("OPEN".into()), None, None], ..of_c1.clone() };
        let mut found = keys(store.document_page("orders", &open_c1).await.unwrap());
        found.sort();
        assert_eq!(found, ["a", "d"]);
        let nobody = DocumentFilter { field: Some(("customer_id".into(), "c-9".into())), ..of_c1 };
        assert!(store.document_page("orders", &nobody).await.unwrap().documents.is_empty());
        // Counted by their first tag, and by when they were written.
        assert_eq!(store.count_documents_tagged("orders", &["OPEN"], None).await.unwrap(), 3);
        assert_eq!(store.count_documents_tagged("orders", &["OPEN", "DONE"], None).await.unwrap(), 4);
        assert_eq!(store.count_documents_tagged("orders", &["GONE"], None).await.unwrap(), 0);
        let long_ago = udders_kernel::Timestamp::from_micros(0);
        assert_eq!(store.count_documents_tagged("orders", &["DONE"], Some(long_ago)).await.unwrap(), 1);
        let later = udders_kernel::Timestamp::from_micros(i64::MAX);
        assert_eq!(store.count_documents_tagged("orders", &["OPEN", "DONE"], Some(later)).await.unwrap(), 0);
        // Or by not having been written since.
        assert_eq!(store.count_documents_tagged_before("orders", &["OPEN"], later).await.unwrap(), 3);
        assert_eq!(store.count_documents_tagged_before("orders", &["OPEN"], long_ago).await.unwrap(), 0);
    }
}

on_both_backends! {
    /// The documents due at a time are read with their bodies, tags and due
    /// times, most overdue first, up to the limit: the same documents, in
    /// the same order, as the keys of the due index.
    async fn due_documents_are_read_with_their_bodies(store: EventStore) {
        let at = udders_kernel::Timestamp::from_micros;
        let mut tx = store.begin().await.unwrap();
        for (key, due) in [("late", Some(30)), ("later", Some(10)), ("soon", Some(50)), ("never", None)] {
            let tags = [Some(format!("t-{key}")), None, Some("c".to_owned())];
            tx.put_document(Document { view: "notices".into(), key: key.into(), doc: serde_json::json!({"n": key}), tags, due: due.map(at) })
                .await
                .unwrap();
        }
        tx.put_document(Document { view: "other".into(), key: "x".into(), doc: serde_json::json!(1), tags: [None, None, None], due: Some(at(1)) })
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let due = store.due_documents_read("notices", at(40), 10).await.unwrap();
        let keys: Vec<&str> = due.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["later", "late"], "due at 40 or earlier, most overdue first, of this view only");
        assert_eq!(keys, store.due_documents("notices", at(40), 10).await.unwrap(), "the due index's keys");
        assert_eq!(due[0].doc, serde_json::json!({"n": "later"}));
        assert_eq!(due[0].view, "notices");
        assert_eq!(due[0].tags, [Some("t-later".to_owned()), None, Some("c".to_owned())]);
        assert_eq!(due[0].due, Some(at(10)));
        let first = store.due_documents_read("notices", at(100), 1).await.unwrap();
        assert_eq!(first.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), ["later"], "the limit");
        assert!(store.due_documents_read("notices", at(5), 10).await.unwrap().is_empty());
    }
}

on_both_backends! {
    /// Documents are counted by when they fall due, in a span.
    async fn documents_due_in_a_span_are_counted(store: EventStore) {
        let at = udders_kernel::Timestamp::from_micros;
        let mut tx = store.begin().await.unwrap();
        for (key, due) in [("a", Some(10)), ("b", Some(20)), ("c", Some(30)), ("d", None)] {
            let doc = serde_json::json!({"n": key});
            let document = Document { view: "orders".into(), key: key.into(), doc, tags: [None, None, None], due: due.map(at) };
            tx.put_document(document).await.unwrap();
        }
        tx.commit().await.unwrap();
        assert_eq!(store.count_due("orders", at(0), at(100)).await.unwrap(), 3);
        assert_eq!(store.count_due("orders", at(10), at(30)).await.unwrap(), 2, "after 10, up to 30 included");
        assert_eq!(store.count_due("orders", at(30), at(100)).await.unwrap(), 0);
        assert_eq!(store.count_due("other", at(0), at(100)).await.unwrap(), 0);
    }
}

on_both_backends! {
    /// `Tx::open` takes a stream as new without reading it, and the commit
    /// proves the guess: a stream that exists fails it with a conflict,
    /// whether events were recorded on it (their insert finds it taken) or
    /// not (a read finds it), and the next open reads it.
    async fn a_stream_opened_as_new_commits_only_if_it_is_new(store: EventStore) {
        type L = Ledger<0>;
        let deposit = |amount| vec![LedgerEvent::Deposited { amount }];
        let meta = EventMetadata::default;

        // New indeed: recorded and committed, no conflict.
        let id = Uuid::new_v4();
        let mut tx = store.begin().await.unwrap();
        let mut opened = tx.open::<L>(id).await.unwrap();
        assert_eq!(opened.version, 0);
        tx.record(&mut opened, deposit(5), meta()).await.unwrap();
        tx.commit().await.unwrap();
        let loaded = store.load::<L>(id).await.unwrap();
        assert_eq!((loaded.version, loaded.state.balance), (1, 5));
        assert_eq!(store.wrong_opens(), 0);

        // Existing (appended outside the typed API, so no cache holds it),
        // with events recorded on it: the insert finds the stream taken.
        let id = Uuid::new_v4();
        store.append(&L::stream(id), ExpectedVersion::NoStream, &[event(7)], &[]).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let mut opened = tx.open::<L>(id).await.unwrap();
        assert_eq!(opened.version, 0, "taken as new: not read");
        tx.record(&mut opened, deposit(1), meta()).await.unwrap();
        let failed = tx.commit().await.unwrap_err();
        assert!(failed.is_conflict(), "{failed}");
        assert_eq!(store.wrong_opens(), 1);
        // The retry reads it, and decides on what is there.
        let mut tx = store.begin().await.unwrap();
        let mut opened = tx.open::<L>(id).await.unwrap();
        assert_eq!((opened.version, opened.state.balance), (1, 7));
        tx.record(&mut opened, deposit(1), meta()).await.unwrap();
        tx.commit().await.unwrap();
        let loaded = store.load::<L>(id).await.unwrap();
        assert_eq!((loaded.version, loaded.state.balance), (2, 8));

        // Existing, and nothing recorded on it: a read at commit finds it.
        let id = Uuid::new_v4();
        store.append(&L::stream(id), ExpectedVersion::NoStream, &[event(3)], &[]).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.open::<L>(id).await.unwrap().version, 0);
        let failed = tx.commit().await.unwrap_err();
        assert!(failed.is_conflict(), "{failed}");
        assert_eq!(store.wrong_opens(), 2);
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.open::<L>(id).await.unwrap().state.balance, 3);
        tx.commit().await.unwrap();

        // New, and nothing recorded on it: the read finds nothing, it commits.
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.open::<L>(Uuid::new_v4()).await.unwrap().version, 0);
        tx.commit().await.unwrap();
        assert_eq!(store.wrong_opens(), 2);

        // A conflict on another stream is not a wrong open.
        let moved = Uuid::new_v4();
        store.append(&L::stream(moved), ExpectedVersion::NoStream, &[event(1)], &[]).await.unwrap();
        let mut stale = store.load::<L>(moved).await.unwrap();
        store.append(&L::stream(moved), ExpectedVersion::Exact(1), &[event(2)], &[]).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let mut opened = tx.open::<L>(Uuid::new_v4()).await.unwrap();
        tx.record(&mut opened, deposit(1), meta()).await.unwrap();
        tx.record(&mut stale, deposit(1), meta()).await.unwrap();
        let failed = tx.commit().await.unwrap_err();
        assert!(failed.is_conflict(), "{failed}");
        assert_eq!(store.wrong_opens(), 2, "the conflict was on {moved}, not on the stream opened");
    }
}
