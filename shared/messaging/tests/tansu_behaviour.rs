//! What the embedded broker (Tansu 0.6 with our partition log) does where
//! brokers differ, checked, so a change is noticed.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use udders_messaging::{EmbeddedBroker, KafkaSettings, ensure_topics};

async fn first_offset_read_from(settings: &udders_messaging::KafkaSettings, topic: &str, from: i64) -> Option<i64> {
    let reader: BaseConsumer = settings.consumer_config("probe").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(from)).unwrap();
    reader.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
            return Some(m.offset());
        }
    }
    None
}

/// A fetch that starts inside a record batch returns that batch, and the
/// client drops what lies before the offset, as with Apache Kafka. (Tansu's
/// own memory storage answered with the next batch; the consumer still
/// tolerates that, see the consumer's gate, shared/messaging/src/consumer/gate.rs.) `DeleteRecords` moves the log start:
/// a reader from the beginning then starts at the first batch left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_from_inside_a_batch_returns_it_and_deleted_records_are_gone() {
    let addr = free_addr();
    let _broker = start_broker(addr).await;
    let settings = settings(addr);
    ensure_topics(&udders_messaging::KafkaSettings { partitions: 1, ..settings.clone() }, &["probe".to_owned()])
        .await
        .unwrap();
    let producer: FutureProducer = settings.producer_config().create().unwrap();
    // 100 records sent at once travel as one batch (or a few).
    let sends: Vec<_> = (0..100)
        .map(|i| {
            let p = producer.clone();
            async move {
                p.send(FutureRecord::to("probe").partition(0).key("k").payload(&format!("{i}")), Duration::from_secs(5))
                    .await
            }
        })
        .collect();
    futures::future::join_all(sends).await.into_iter().for_each(|r| assert!(r.is_ok()));
    // Then ten records one by one: batches of one.
    for i in 100..110 {
        let payload = format!("{i}");
        let record = FutureRecord::to("probe").partition(0).key("k").payload(&payload);
        producer.send(record, Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!(first_offset_read_from(&settings, "probe", 0).await, Some(0));
    assert_eq!(first_offset_read_from(&settings, "probe", 105).await, Some(105), "a batch of one starts where asked");
    assert_eq!(first_offset_read_from(&settings, "probe", 50).await, Some(50), "inside a batch");
    let start = udders_messaging::delete_records(&settings, &[("probe".to_owned(), 0, 107)]).await.unwrap();
    assert_eq!(start, vec![("probe".to_owned(), 0, 107)]);
    assert_eq!(first_offset_read_from(&settings, "probe", 0).await, Some(107), "below the log start");
    assert_eq!(first_offset_read_from(&settings, "probe", 109).await, Some(109));
}

/// A fetch waiting at the end of a partition answers as soon as a record
/// arrives, as Apache Kafka's does, not when its wait runs out (Tansu's own
/// fetch answered at the end of the wait with what was there when it began,
/// so the record waited for the next fetch: two waits). A 5 s wait makes the
/// difference plain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_answers_when_a_record_arrives_not_when_its_wait_runs_out() {
    let addr = free_addr();
    let _broker = start_broker(addr).await;
    let settings = udders_messaging::KafkaSettings { partitions: 1, fetch_wait_max_ms: 5000, ..settings(addr) };
    ensure_topics(&settings, &["waiting".to_owned()]).await.unwrap();
    let reader: BaseConsumer = settings.consumer_config("waiting").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("waiting", 0, Offset::Offset(0)).unwrap();
    reader.assign(&tpl).unwrap();
    // Let the reader's first fetch reach the broker and wait there.
    assert!(reader.poll(Duration::from_millis(1500)).is_none(), "nothing to read yet");

    let producer: FutureProducer = settings.producer_config().create().unwrap();
    producer
        .send(FutureRecord::to("waiting").partition(0).key("k").payload("1"), Duration::from_secs(5))
        .await
        .unwrap();
    let sent = std::time::Instant::now();
    let received = loop {
        match reader.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => break m.offset(),
            _ if sent.elapsed() > Duration::from_secs(12) => panic!("the record never arrived"),
            _ => {}
        }
    };
    let took = sent.elapsed();
    assert_eq!(received, 0);
    assert!(took < Duration::from_millis(1000), "the record took {took:?} against a fetch wait of 5 s");
}

/// Topics created with the cluster's defaults on the embedded broker, one
/// broker, get one replica each, and the metadata says so; asking for
/// `min.insync.replicas` is accepted too. A cluster of one broker is never
/// reported as thinly replicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_take_the_clusters_replication_and_one_broker_is_not_a_warning() {
    let broker = EmbeddedBroker::start(free_addr()).await.unwrap();
    let defaults = settings(broker.addr());
    let topics = ["udders.defaults".to_owned()];
    assert_eq!(ensure_topics(&defaults, &topics).await.unwrap(), 1);
    let asked = KafkaSettings { replication_factor: Some(1), min_insync_replicas: Some(1), ..defaults.clone() };
    assert_eq!(ensure_topics(&asked, &["udders.asked".to_owned()]).await.unwrap(), 1);
    let wanted = ["udders.defaults".to_owned(), "udders.asked".to_owned(), "udders.absent".to_owned()];
    let (brokers, found) = udders_messaging::topics::cluster_replication(&defaults, &wanted).await.unwrap();
    assert_eq!(brokers, 1);
    let mut found = found;
    found.sort();
    assert_eq!(
        found,
        [("udders.asked".to_owned(), 1), ("udders.defaults".to_owned(), 1)],
        "absent topics are not listed"
    );
    assert!(udders_messaging::topics::thinly_replicated(brokers, &found).is_empty());
    broker.stop().await;
}
