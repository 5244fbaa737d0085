//! The messaging layer against the embedded broker: nothing accepted is lost,
//! every effect happens once, bad records are dead-lettered, and broker loss
//! is survived.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use rdkafka::Message;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use udders_kernel::EventId;
use udders_messaging::outbound::record_headers;
use udders_messaging::{
    ConsumerConfig, Membership, Relay, RelayConfig, SharedClients, assign_from_start, dead_letter, ensure_topics,
};

const MINUTE: Duration = Duration::from_secs(60);

fn assert_once(effects: &[String], published: &[EventId]) {
    let unique: HashSet<&String> = effects.iter().collect();
    assert_eq!(unique.len(), effects.len(), "an effect happened twice");
    let expected: HashSet<String> = published.iter().map(ToString::to_string).collect();
    let got: HashSet<String> = effects.iter().cloned().collect();
    assert_eq!(got.len(), expected.len(), "effects: {} of {} events", got.len(), expected.len());
    assert_eq!(got, expected, "every published event has exactly one effect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_events_arrive_and_each_effect_happens_once_even_when_delivered_twice() {
    let Rig { broker: _broker, stores, settings, .. } = rig().await;
    let published = publish(&stores.publisher, 10_000, None).await;
    let running = start(&stores, &settings, consumer_config(5), true);

    eventually(MINUTE, "10,000 events handled", || async { running.watch.stats().handled >= 10_000 }).await;
    // Deliver every record a second time, once the relay has marked them all.
    eventually(MINUTE, "outbox drained", || async { stores.publisher.outbox_backlog().await.unwrap() == 0 }).await;
    assert_eq!(stores.publisher.unpublish_recent(Duration::from_secs(3600)).await.unwrap(), 10_000);
    stores.publisher.outbox_signal().notify_one();
    eventually(MINUTE, "10,000 duplicates dropped", || async { running.watch.stats().duplicates >= 10_000 }).await;

    let stats = running.watch.stats();
    assert_eq!((stats.handled, stats.duplicates, stats.dead_lettered), (10_000, 10_000, 0));
    assert_once(&effects(&stores.consumer).await, &published);
    // The consumer can see a record before the relay has its delivery report
    // and marks the row published: the backlog drains shortly after.
    eventually(MINUTE, "outbox drained", || async { stores.publisher.outbox_backlog().await.unwrap() == 0 }).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_between_produce_and_mark_published_sends_again_and_the_duplicate_is_dropped() {
    let Rig { broker: _broker, stores, settings, .. } = rig().await;
    ensure_topics(&settings, &[TOPIC.to_owned()]).await.unwrap();
    let published = publish(&stores.publisher, 300, None).await;

    // A relay claims and produces, then dies before marking anything.
    let mut doomed = relay_config();
    doomed.relay_id = "doomed".into();
    doomed.lease = Duration::from_millis(500);
    let claimed = stores.publisher.claim_outbox("doomed", 1000, doomed.lease).await.unwrap();
    assert_eq!(claimed.len(), 300);
    let producer: FutureProducer = settings.producer_config().create().unwrap();
    for row in &claimed {
        let headers = record_headers(&row.message.headers);
        let record = FutureRecord::to(TOPIC).key(&row.message.key).payload(&row.message.payload).headers(headers);
        producer.send(record, Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!(stores.publisher.outbox_backlog().await.unwrap(), 300, "nothing was marked");

    // The next relay takes the rows over when the lease expires.
    let running = start(&stores, &settings, consumer_config(5), true);
    eventually(MINUTE, "all rows published", || async { stores.publisher.outbox_backlog().await.unwrap() == 0 }).await;
    eventually(MINUTE, "300 handled, 300 duplicates", || async {
        let s = running.watch.stats();
        s.handled == 300 && s.duplicates == 300
    })
    .await;
    assert_once(&effects(&stores.consumer).await, &published);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_malformed_records_among_valid_ones_go_to_the_dead_letter_topic_without_a_stall() {
    let Rig { broker: _broker, stores, settings, .. } = rig().await;
    ensure_topics(&settings, &[TOPIC.to_owned()]).await.unwrap();
    let producer: FutureProducer = settings.producer_config().create().unwrap();
    let mut valid = Vec::new();
    let mut malformed = 0;
    for i in 0..1000 {
        let env = envelope(SUBJECT);
        let key = uuid::Uuid::now_v7().to_string();
        let mut headers: Vec<(String, Option<Vec<u8>>)> =
            env.headers().into_iter().map(|(k, v)| (k, Some(v.into_bytes()))).collect();
        let mut payload = serde_json::json!({ "order_id": key, "n": i }).to_string().into_bytes();
        if i % 33 == 16 && malformed < 30 {
            malformed += 1;
            match malformed % 6 {
                0 => payload = b"{not json".to_vec(),
                1 => headers.retain(|(k, _)| k != "ce_subject"),
                2 => headers.iter_mut().filter(|(k, _)| k == "ce_id").for_each(|(_, v)| *v = Some(vec![0xff, 0xfe])),
                3 => headers
                    .iter_mut()
                    .filter(|(k, _)| k == "ce_subject")
                    .for_each(|(_, v)| *v = Some(b"order/init/9.9/icecream/udders/mango/sg/web".to_vec())),
                4 => payload = vec![b' '; 100 * 1024],
                _ => headers.iter_mut().filter(|(k, _)| k == "ce_time").for_each(|(_, v)| *v = None),
            }
        } else {
            valid.push(env.id);
        }
        let mut owned = OwnedHeaders::new();
        for (k, v) in &headers {
            owned = owned.insert(Header { key: k, value: v.as_deref() });
        }
        let record = FutureRecord::to(TOPIC).key(&key).payload(&payload).headers(owned);
        producer.send(record, Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!((malformed, valid.len()), (30, 970));

    let running = start(&stores, &settings, consumer_config(5), false);
    eventually(MINUTE, "970 handled and 30 dead-lettered", || async {
        let s = running.watch.stats();
        s.handled + s.dead_lettered == 1000
    })
    .await;
    let stats = running.watch.stats();
    assert_eq!((stats.handled, stats.dead_lettered), (970, 30));
    assert_once(&effects(&stores.consumer).await, &valid);

    // The dead-letter topic holds exactly the 30, each with its origin and reason.
    let dlq = udders_contracts::Service::Credit.dead_letter_topic();
    let reader: BaseConsumer = settings.consumer_config("dlq-reader").create().unwrap();
    assign_from_start(&reader, &dlq, settings.partitions).unwrap();
    let mut dead = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
            let header = |name: &str| {
                m.headers().and_then(|h| {
                    h.iter()
                        .find(|x| x.key == name)
                        .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
                })
            };
            assert_eq!(header(dead_letter::ORIGINAL_TOPIC).as_deref(), Some(TOPIC));
            assert_eq!(header(dead_letter::ATTEMPTS).as_deref(), Some("0"), "malformed records are never handled");
            assert!(header(dead_letter::ORIGINAL_OFFSET).is_some());
            dead.push(header(dead_letter::ERROR).unwrap());
        }
    }
    assert_eq!(dead.len(), 30, "exactly the malformed records: {dead:#?}");
    for expected in [
        "not JSON",
        "header ce_subject is missing",
        "header ce_id is not UTF-8",
        "no catalogued event",
        "over the limit",
        "header ce_time is null",
    ] {
        assert!(dead.iter().any(|d| d.contains(expected)), "a record dead-lettered for {expected:?}: {dead:#?}");
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_handler_is_retried_then_its_record_is_dead_lettered_and_the_partition_moves_on() {
    let Rig { broker: _broker, stores, settings, .. } = rig().await;
    let published = publish(&stores.publisher, 200, Some(50)).await;
    let running = start(&stores, &settings, consumer_config(3), true);
    eventually(MINUTE, "196 handled and 4 dead-lettered", || async {
        let s = running.watch.stats();
        s.handled == 196 && s.dead_lettered == 4
    })
    .await;
    let succeeded: Vec<EventId> =
        published.iter().enumerate().filter(|(i, _)| i % 50 != 49).map(|(_, id)| *id).collect();
    assert_once(&effects(&stores.consumer).await, &succeeded);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handler_that_fails_twice_then_succeeds_is_retried_and_never_dead_lettered() {
    let Rig { broker: _broker, stores, settings, .. } = rig().await;
    let published = publish(&stores.publisher, 100, None).await;
    // Three attempts: the third call succeeds. Without retries every record
    // would be dead-lettered.
    let recorder = Recorder { fail_first: 2, ..Recorder::default() };
    let running = start_with(&stores, &settings, consumer_config(3), true, recorder.clone());
    eventually(MINUTE, "100 handled", || async { running.watch.stats().handled == 100 }).await;
    assert_eq!(running.watch.stats().dead_lettered, 0);
    assert_once(&effects(&stores.consumer).await, &published);
    assert!(published.iter().all(|id| recorder.calls_of(*id) >= 3), "each record was called until it succeeded");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_failure_inside_a_handler_is_waited_out_never_dead_lettered_and_every_effect_happens_once() {
    let Rig { broker: _broker, stores, settings, .. } = rig().await;
    let published = publish(&stores.publisher, 100, None).await;
    // Each record's transaction fails four times after writing its effect;
    // the consumer gives a failing record only one attempt. Database
    // failures are not the record's: none may count toward that limit.
    let recorder = Recorder { outage_first: 4, ..Recorder::default() };
    let running = start_with(&stores, &settings, consumer_config(1), true, recorder.clone());
    eventually(MINUTE, "100 handled", || async { running.watch.stats().handled == 100 }).await;
    assert_eq!(running.watch.stats().dead_lettered, 0);
    assert_eq!(stores.consumer.parked_dead_letters().await.unwrap(), 0);
    // The effects written before each failure were rolled back: once each.
    assert_once(&effects(&stores.consumer).await, &published);
    assert!(published.iter().all(|id| recorder.calls_of(*id) >= 5));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_restarted_mid_stream_resumes_at_its_stored_position() {
    let Rig { broker: _broker, stores, settings, .. } = rig().await;
    let published = publish(&stores.publisher, 3000, None).await;
    let relay = Relay::new(stores.publisher.clone(), settings.clone(), relay_config()).unwrap();
    let relay_cancel = tokio_util::sync::CancellationToken::new();
    let relay = tokio::spawn(relay.run(relay_cancel.clone()));

    // One millisecond per record: 3,000 records take at least 3 s, so stopping
    // after the first 1,000 is always mid-stream.
    let first = start_with(
        &stores,
        &settings,
        consumer_config(5),
        false,
        Recorder { pace: Duration::from_millis(1), ..Recorder::default() },
    );
    eventually(MINUTE, "a first part handled", || async { first.watch.stats().handled >= 1000 }).await;
    let before = first.watch.stats();
    first.stop().await;
    let handled_first = effects(&stores.consumer).await.len() as u64;
    assert!(handled_first >= before.handled && handled_first < 3000, "stopped mid-stream at {handled_first}");

    let second = start(&stores, &settings, consumer_config(5), false);
    eventually(MINUTE, "the rest handled", || async { second.watch.stats().handled + handled_first >= 3000 }).await;
    let stats = second.watch.stats();
    assert_eq!(stats.duplicates, 0, "the restart re-read nothing it had handled");
    assert_eq!(stats.handled + handled_first, 3000, "and skipped nothing");
    assert_once(&effects(&stores.consumer).await, &published);
    second.stop().await;
    relay_cancel.cancel();
    relay.await.unwrap().unwrap();
}

/// A consumer with no stored position asks for offset 0, not for "the
/// beginning" (which costs librdkafka a ListOffsets round before its first
/// fetch). When the log's first records were deleted, offset 0 lies below the
/// log start: the embedded broker answers from the log start, Apache Kafka
/// with OFFSET_OUT_OF_RANGE and `auto.offset.reset=earliest` moves the
/// consumer there. Either way it reads what is left, and does not stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_with_no_position_on_a_log_whose_start_was_deleted_reads_from_the_log_start() {
    let Rig { broker: _broker, stores, settings, .. } = rig().await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let relay = Relay::new(stores.publisher.clone(), settings.clone(), relay_config()).unwrap();
    let relay = tokio::spawn(relay.run(cancel.clone()));
    let reader: BaseConsumer = settings.consumer_config("watermarks").create().unwrap();
    // Until the relay has created the topic, its partitions are unknown: 0.
    let highs = || -> Vec<i64> {
        (0..settings.partitions)
            .map(|p| {
                rdkafka::consumer::Consumer::fetch_watermarks(&reader, TOPIC, p, Duration::from_secs(5))
                    .map_or(0, |(_, high)| high)
            })
            .collect()
    };
    let on_the_broker = |n: i64| {
        let total: i64 = highs().iter().sum();
        async move { total == n }
    };
    publish(&stores.publisher, 300, None).await;
    eventually(MINUTE, "the first 300 records on the broker", || on_the_broker(300)).await;
    // Every record so far goes (deletion is by whole batches, so all of them).
    let cut: Vec<(String, i32, i64)> =
        highs().iter().enumerate().map(|(p, &high)| (TOPIC.to_owned(), p as i32, high)).collect();
    udders_messaging::delete_records(&settings, &cut).await.unwrap();
    let kept = publish(&stores.publisher, 60, None).await;
    eventually(MINUTE, "60 more on the broker", || on_the_broker(360)).await;

    let consumer = start(&stores, &settings, consumer_config(5), false);
    eventually(MINUTE, "the 60 records left in the log handled", || async { consumer.watch.stats().handled >= 60 })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(consumer.watch.stats().handled, 60, "only the records left in the log, each once");
    assert_once(&effects(&stores.consumer).await, &kept);
    consumer.stop().await;
    cancel.cancel();
    relay.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_in_a_group_share_the_partitions_and_one_takes_over_from_the_other() {
    let Rig { broker: _broker, stores, settings, .. } = rig().await;
    let published = publish(&stores.publisher, 4000, None).await;
    let mut config = consumer_config(5);
    config.membership = Membership::Group;
    // Two milliseconds per record: 4,000 records take two instances at least
    // 4 s, long enough for both to join and for one to leave mid-stream.
    let pace = Recorder { pace: Duration::from_millis(2), ..Recorder::default() };
    let first = start_with(&stores, &settings, config.clone(), true, pace.clone());
    let second = start_with(&stores, &settings, config, false, pace);
    eventually(MINUTE, "both instances handle records", || async {
        first.watch.is_ready()
            && second.watch.is_ready()
            && second.watch.stats().handled >= 200
            && first.watch.stats().handled >= 200
    })
    .await;

    // The second leaves; the first takes its partitions over from the
    // positions the second stored, so it re-handles nothing.
    let second_watch = second.watch.clone();
    second.stop().await;
    let by_second = second_watch.stats().handled;
    assert!(by_second < 4000, "the second left mid-stream");
    let deadline = tokio::time::Instant::now() + MINUTE;
    while effects(&stores.consumer).await.len() < 4000 {
        if tokio::time::Instant::now() > deadline {
            // This wait timed out once under load (.config/nextest.toml): say
            // where the member that stayed stands, for the next time.
            panic!(
                "timed out waiting for every record: {} effects; first {:?} (ready: {}); second handled {by_second}; stored positions {:?}",
                effects(&stores.consumer).await.len(),
                first.watch.stats(),
                first.watch.is_ready(),
                stores.consumer.positions("credit").await,
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = first.watch.stats();
    assert_once(&effects(&stores.consumer).await, &published);
    assert_eq!(stats.handled + by_second, 4000, "each record handled by exactly one instance: {stats:?}");
    assert_eq!(stats.dead_lettered, 0);
    // Records read twice around a hand-over (Tansu's group coordinator may
    // hand a partition out before its last owner let go) are dropped by the
    // inbox: counted as duplicates above, never as a second effect.
    eprintln!("duplicates dropped: first {}, second {}", stats.duplicates, second_watch.stats().duplicates);
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everything_recovers_when_the_broker_starts_after_the_services() {
    let addr = free_addr();
    let stores = stores().await;
    let settings = settings(addr);
    let running = start(&stores, &settings, consumer_config(5), true);
    let published = publish(&stores.publisher, 500, None).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!running.watch.is_ready(), "no broker yet");
    assert_eq!(stores.publisher.outbox_backlog().await.unwrap(), 500, "nothing lost while the broker is away");

    let _broker = start_broker(addr).await;
    eventually(MINUTE, "500 handled", || async { running.watch.stats().handled == 500 }).await;
    assert_once(&effects(&stores.consumer).await, &published);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_restarted_empty_mid_stream_loses_nothing_and_repeats_no_effect() {
    let Rig { addr, broker, stores, settings } = rig().await;
    let running = start(&stores, &settings, consumer_config(5), true);
    let mut published = publish(&stores.publisher, 5000, None).await;
    eventually(MINUTE, "a first part handled", || async { running.watch.stats().handled >= 2000 }).await;

    broker.stop().await;
    let during = publish(&stores.publisher, 2000, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _broker = start_broker(addr).await;
    published.extend(during);
    published.extend(publish(&stores.publisher, 3000, None).await);

    eventually(Duration::from_secs(120), "10,000 handled", || async { running.watch.stats().handled >= 10_000 }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = running.watch.stats();
    assert_eq!((stats.handled, stats.dead_lettered), (10_000, 0), "{stats:?}");
    assert!(stats.broker_recoveries >= 1, "the consumer noticed the broker loss: {stats:?}");
    assert_once(&effects(&stores.consumer).await, &published);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn services_sharing_their_clients_each_recover_when_the_broker_comes_back_empty() {
    let Rig { addr, broker, stores, settings } = rig().await;
    let dir = tempfile::tempdir().unwrap();
    let second = udders_eventstore::EventStore::open_sqlite(
        &dir.path().join("second.db"),
        &udders_eventstore::StoreOptions::default(),
    )
    .await
    .unwrap();
    // Two relays share one producer, and the consumer hears the loss
    // through the sentinel they share, as the services of `udders up` do.
    let shared = SharedClients::start(&settings).unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let relays: Vec<_> = [(&stores.publisher, "first-1"), (&second, "second-1")]
        .into_iter()
        .map(|(store, name)| {
            let relay = Relay::with_producer(
                store.clone(),
                settings.clone(),
                RelayConfig::new(name, TOPIC),
                shared.producer.clone(),
            );
            tokio::spawn(relay.run(cancel.clone()))
        })
        .collect();
    let config = ConsumerConfig { sentinel: Some(shared.sentinel.clone()), ..consumer_config(5) };
    let running = start(&stores, &settings, config, false);
    let mut published = publish(&stores.publisher, 2000, None).await;
    published.extend(publish(&second, 2000, None).await);
    eventually(MINUTE, "a first part handled", || async { running.watch.stats().handled >= 1000 }).await;

    broker.stop().await;
    published.extend(publish(&stores.publisher, 500, None).await);
    published.extend(publish(&second, 500, None).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _broker = start_broker(addr).await;
    published.extend(publish(&stores.publisher, 500, None).await);
    published.extend(publish(&second, 500, None).await);

    eventually(Duration::from_secs(120), "6,000 handled", || async { running.watch.stats().handled >= 6000 }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = running.watch.stats();
    assert_eq!((stats.handled, stats.dead_lettered), (6000, 0), "{stats:?}");
    assert!(shared.producer.losses() >= 1, "the shared producer heard the broker go");
    assert!(stats.broker_recoveries >= 1, "the consumer heard it through the shared sentinel: {stats:?}");
    assert_once(&effects(&stores.consumer).await, &published);
    for store in [&stores.publisher, &second] {
        eventually(MINUTE, "outbox drained", || async { store.outbox_backlog().await.unwrap() == 0 }).await;
    }
    cancel.cancel();
    for relay in relays {
        relay.await.unwrap().unwrap();
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tap_prints_only_the_events_its_pattern_matches() {
    let Rig { broker: _broker, stores, settings, .. } = rig().await;
    ensure_topics(&settings, &[TOPIC.to_owned()]).await.unwrap();
    // Two subjects: web in Singapore, store711 in Malaysia.
    let producer: FutureProducer = settings.producer_config().create().unwrap();
    let mut from_711 = Vec::new();
    for (i, subject) in
        ["order/init/1.1/icecream/udders/mango/sg/web", "order/init/1.1/icecream/udders/durian/my/store711"]
            .iter()
            .cycle()
            .take(20)
            .enumerate()
    {
        let env = envelope(subject);
        if subject.ends_with("store711") {
            from_711.push(env.id.to_string());
        }
        let headers = record_headers(&env.headers());
        let key = format!("order-{i}");
        producer
            .send(FutureRecord::to(TOPIC).key(&key).payload("{}").headers(headers), Duration::from_secs(5))
            .await
            .unwrap();
    }
    let pattern: udders_contracts::Pattern = "order/*/*/*/*/*/*/store711".parse().unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let tap = {
        let (lines, cancel, settings) = (lines.clone(), cancel.clone(), settings.clone());
        tokio::spawn(async move {
            udders_messaging::tap::tap(&settings, &pattern, &[TOPIC.to_owned()], None, cancel, |line| {
                lines.lock().unwrap().push(line);
            })
            .await
        })
    };
    eventually(MINUTE, "10 lines", || async { lines.lock().unwrap().len() >= 10 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    tap.await.unwrap().unwrap();
    let lines = lines.lock().unwrap();
    let mut ids: Vec<String> = lines.iter().map(|l| l.id.clone()).collect();
    ids.sort();
    from_711.sort();
    assert_eq!(ids, from_711, "exactly the store711 events");
    assert!(lines.iter().all(|l| l.subject.ends_with("/my/store711") && l.key.starts_with("order-")));
    drop(stores);
}

/// How many records of one of ten groups a handler has seen: an aggregate
/// it opens as new ([`udders_eventstore::Tx::open`]).
struct Tally;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "data")]
enum Counted {
    Counted,
}

impl udders_kernel::Decider for Tally {
    type State = u64;
    type Command = ();
    type Event = Counted;
    type Error = std::convert::Infallible;

    fn initial_state() -> u64 {
        0
    }

    fn decide(_: &u64, (): ()) -> Result<Vec<Counted>, Self::Error> {
        Ok(vec![Counted::Counted])
    }

    fn evolve(state: u64, _: &Counted) -> u64 {
        state + 1
    }
}

impl udders_kernel::Aggregate for Tally {
    const CATEGORY: &'static str = "tally";
    const SNAPSHOT_EVERY: Option<std::num::NonZeroU64> = None;
}

/// Counts each record in its group's tally, opened as new.
struct Opener;

impl udders_messaging::Handler for Opener {
    async fn handle(
        &self,
        tx: &mut udders_eventstore::Tx,
        incoming: &udders_messaging::Incoming,
    ) -> Result<(), udders_messaging::HandlerError> {
        let group = incoming.payload["n"].as_u64().unwrap_or(0) % 10;
        let mut tally = tx.open::<Tally>(group).await?;
        tx.record(&mut tally, vec![Counted::Counted], udders_eventstore::EventMetadata::default()).await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_opened_as_new_that_exists_is_read_on_the_retry_and_never_dead_lettered() {
    use udders_eventstore::{EventMetadata, ExpectedVersion, NewEvent, StreamOf};
    let Rig { broker: _broker, stores, settings, .. } = rig().await;
    // Every tally exists before the consumer starts, written past any cache:
    // each first open guesses wrong.
    for group in 0..10u64 {
        let counted = NewEvent {
            event_id: EventId::from_uuid(uuid::Uuid::now_v7()),
            event_type: "Counted".into(),
            schema_version: 1,
            payload: serde_json::Value::Null,
            metadata: EventMetadata::default(),
        };
        stores.consumer.append(&Tally::stream(group), ExpectedVersion::NoStream, &[counted], &[]).await.unwrap();
    }
    publish(&stores.publisher, 100, None).await;
    // One attempt per record: a conflict counted against it would dead-letter it.
    let cancel = tokio_util::sync::CancellationToken::new();
    let relay = udders_messaging::Relay::new(stores.publisher.clone(), settings.clone(), relay_config()).unwrap();
    let relay = tokio::spawn(relay.run(cancel.clone()));
    let (consumer, watch) = udders_messaging::spawn_consumer(
        stores.consumer.clone(),
        settings.clone(),
        consumer_config(1),
        Opener,
        cancel.clone(),
    )
    .unwrap();
    eventually(MINUTE, "100 handled", || async { watch.stats().handled == 100 }).await;
    assert_eq!(watch.stats().dead_lettered, 0);
    for group in 0..10u64 {
        let tally = stores.consumer.load::<Tally>(group).await.unwrap();
        assert_eq!(tally.state, 11, "group {group}: the one written before and its ten records, each once");
    }
    // With a cache (SQLite) a tally read once stays known; without one
    // (PostgreSQL) every open guesses, so any record may be retried once.
    let most = if stores.consumer.is_exclusive() { 10 } else { 100 };
    let wrong = stores.consumer.wrong_opens();
    assert!((1..=most).contains(&wrong), "at most {most} guesses were wrong, and some were: {wrong}");
    cancel.cancel();
    consumer.await.unwrap().unwrap();
    relay.await.unwrap().unwrap();
}
