//! The embedded broker's answer to `Fetch`, as Apache Kafka gives it: at
//! once when the partitions asked for hold records at the offsets asked for;
//! otherwise as soon as a record arrives on one of them; otherwise, empty,
//! when the request's `max_wait_ms` runs out.
//!
//! Tansu's own fetch service holds every request for the whole wait and
//! answers with what was there when the request came in, so a record
//! produced meanwhile waited for the next fetch: one to two waits per hop
//! whatever the load (ADR 0010). Here each partition's log signals its
//! appends, and a waiting fetch reads again when one of its partitions
//! moved. A partition that does not exist answers
//! `UNKNOWN_TOPIC_OR_PARTITION` at once, as Kafka does.
//!
//! One thing Kafka does not do: a connection that was answered with records
//! less than a pace ago waits for the rest of that pace before it is
//! answered again. Answering every single record at once made each consumer
//! fetch, and then commit, one record at a time under load (ADR 0010). The
//! pace follows the machine's load, from 2 ms on calm cores to 10 ms on
//! saturated ones ([`super::pace`], ADR 0022). A quiet partition's record
//! goes out at once; a busy partition's records go out together, at most
//! one pace late.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rama::{Context, Service};
use tansu_sans_io::fetch_response::{FetchableTopicResponse, PartitionData};
use tansu_sans_io::metadata_response::MetadataResponseTopic;
use tansu_sans_io::record::deflated::Frame;
use tansu_sans_io::{ErrorCode, FetchRequest, FetchResponse};
use tansu_storage::{Error, Result, Storage, TopicId, Topition};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::log::LogStorage;
use super::pace::AnswerPace;

/// The most record bytes one answer carries, whatever the request allows.
const MAX_ANSWER_BYTES: u32 = 5 * 1024 * 1024;

/// A batch's size on the wire beyond its records (the v2 batch header).
const BATCH_HEADER_BYTES: u32 = 61;

tokio::task_local! {
    /// When the connection being served was last answered with records
    /// (each connection is served on a task of its own, its requests in turn).
    pub(crate) static LAST_RECORDS: std::cell::Cell<Option<Instant>>;
}

/// The `Fetch` service of the embedded broker, with the pace its
/// connections keep.
#[derive(Debug, Clone, Default)]
pub(crate) struct WakingFetch {
    pub(crate) pace: Arc<AnswerPace>,
}

/// One partition a request asks for, resolved against the broker's topics.
struct Wanted {
    /// The topic's entry in the answer.
    topic: usize,
    topition: Topition,
    offset: i64,
    max_bytes: u32,
}

impl Service<LogStorage, FetchRequest> for WakingFetch {
    type Response = FetchResponse;
    type Error = Error;

    async fn serve(&self, ctx: Context<LogStorage>, request: FetchRequest) -> Result<FetchResponse> {
        let storage = ctx.state();
        let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
        let deadline = Instant::now() + wait;
        let min_bytes = u32::try_from(request.min_bytes).unwrap_or(0).max(1);
        let max_bytes =
            request.max_bytes.and_then(|b| u32::try_from(b).ok()).map_or(MAX_ANSWER_BYTES, |b| b.min(MAX_ANSWER_BYTES));

        // Resolve every topic once (requests name topics, or from v13 give
        // their ids); the answer keeps the request's order.
        let mut topics = Vec::new();
        let mut wanted = Vec::new();
        for fetch in request.topics.iter().flatten() {
            let metadata = storage.metadata(Some(&[TopicId::from(fetch)])).await?;
            let known = metadata.topics().first().and_then(|t: &MetadataResponseTopic| {
                t.name.clone().filter(|_| t.error_code == i16::from(ErrorCode::None)).map(|name| (name, t.topic_id))
            });
            let topic = topics.len();
            let (name, topic_id) = known.unwrap_or_else(|| (fetch.topic.clone().unwrap_or_default(), fetch.topic_id));
            for partition in fetch.partitions.iter().flatten() {
                wanted.push(Wanted {
                    topic,
                    topition: Topition::new(name.clone(), partition.partition),
                    offset: partition.fetch_offset,
                    max_bytes: u32::try_from(partition.partition_max_bytes).unwrap_or(0),
                });
            }
            topics.push(FetchableTopicResponse::default().topic(fetch.topic.clone()).topic_id(topic_id));
        }
        let arrivals: Vec<Arc<Notify>> = wanted.iter().filter_map(|w| storage.arrivals(&w.topition)).collect();

        loop {
            // Listen before reading, so an append between the read and the
            // wait is not missed.
            let mut moved: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> =
                arrivals.iter().map(|n| Box::pin(n.notified())).collect();
            for listener in &mut moved {
                listener.as_mut().enable();
            }
            let (partitions, bytes, unknown) = read(storage, &wanted, max_bytes);
            let now = Instant::now();
            let paced = LAST_RECORDS.try_with(|last| last.get()).ok().flatten().map(|last| last + self.pace.get());
            if let Some(at) = paced.filter(|at| bytes >= min_bytes && now < *at && *at < deadline) {
                // Records, but this connection had some a moment ago: let
                // more gather until its pace allows another answer.
                tokio::time::sleep_until(at).await;
                continue;
            }
            if bytes >= min_bytes || unknown || moved.is_empty() || now >= deadline {
                if bytes > 0 {
                    let _ = LAST_RECORDS.try_with(|last| last.set(Some(now)));
                }
                return Ok(answer(topics, partitions));
            }
            tokio::select! {
                _ = futures::future::select_all(moved) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// Reads every wanted partition within the request's byte budget. Returns
/// each partition's data, the record bytes read, and whether a partition
/// does not exist.
fn read(storage: &LogStorage, wanted: &[Wanted], max_bytes: u32) -> (Vec<(usize, PartitionData)>, u32, bool) {
    let (mut left, mut bytes, mut unknown) = (max_bytes, 0u32, false);
    let mut out = Vec::with_capacity(wanted.len());
    for w in wanted {
        let data = PartitionData::default()
            .partition_index(w.topition.partition())
            .aborted_transactions(Some(Vec::new()))
            .preferred_read_replica(Some(-1));
        let Some(read) = storage.read(&w.topition, w.offset, w.max_bytes.min(left)) else {
            unknown = true;
            let data = data
                .error_code(ErrorCode::UnknownTopicOrPartition.into())
                .high_watermark(-1)
                .last_stable_offset(Some(-1))
                .log_start_offset(Some(-1))
                .records(None);
            out.push((w.topic, data));
            continue;
        };
        let size: u32 = read.batches.iter().map(|b| b.record_data.len() as u32 + BATCH_HEADER_BYTES).sum();
        left = left.saturating_sub(size);
        bytes = bytes.saturating_add(size);
        let data = data
            .error_code(ErrorCode::None.into())
            .high_watermark(read.high_watermark)
            .last_stable_offset(Some(read.high_watermark))
            .log_start_offset(Some(read.log_start))
            .records((!read.batches.is_empty()).then_some(Frame { batches: read.batches }));
        out.push((w.topic, data));
    }
    (out, bytes, unknown)
}

fn answer(mut topics: Vec<FetchableTopicResponse>, partitions: Vec<(usize, PartitionData)>) -> FetchResponse {
    let mut by_topic: Vec<Vec<PartitionData>> = topics.iter().map(|_| Vec::new()).collect();
    for (topic, data) in partitions {
        by_topic[topic].push(data);
    }
    for (response, partitions) in topics.iter_mut().zip(by_topic) {
        response.partitions = Some(partitions);
    }
    FetchResponse::default()
        .throttle_time_ms(Some(0))
        .error_code(Some(ErrorCode::None.into()))
        .session_id(Some(0))
        .node_endpoints(Some(Vec::new()))
        .responses(Some(topics))
}
