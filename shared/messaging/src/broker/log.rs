//! The embedded broker's storage: Tansu's memory storage for everything but
//! the records, and an indexed in-memory log per partition for the records.
//!
//! Tansu's memory storage (DynoStore on an in-memory object store) keeps
//! every batch as an object, lists every object of a partition on every
//! fetch, and rewrites a JSON document of all producers on every produce: a
//! fetch costs more with each record ever produced, and nothing is ever
//! freed (ADR 0009). Here a partition is a `BTreeMap` of batches by base
//! offset: produce and fetch cost a lookup, and `DeleteRecords` (the Kafka
//! admin request) frees what every reader has passed. Topics, consumer
//! groups, committed offsets, producer ids and configuration stay Tansu's.
//!
//! Kept from Kafka: offsets are dense and assigned here; an idempotent
//! producer's batches are checked for sequence (a repeat is
//! `DUPLICATE_SEQUENCE_NUMBER`, a gap `OUT_OF_ORDER_SEQUENCE_NUMBER`), per
//! producer epoch and partition; a fetch from inside a batch returns that
//! batch; `ListOffsets` answers earliest, latest and by timestamp.
//! Not kept, as in Tansu: transactions (records of aborted transactions are
//! read as any others).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use async_trait::async_trait;
use tansu_sans_io::create_topics_request::CreatableTopic;
use tansu_sans_io::delete_groups_response::DeletableGroupResult;
use tansu_sans_io::delete_records_request::DeleteRecordsTopic;
use tansu_sans_io::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use tansu_sans_io::describe_cluster_response::DescribeClusterBroker;
use tansu_sans_io::describe_configs_response::DescribeConfigsResult;
use tansu_sans_io::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
use tansu_sans_io::incremental_alter_configs_request::AlterConfigsResource;
use tansu_sans_io::incremental_alter_configs_response::AlterConfigsResourceResponse;
use tansu_sans_io::list_groups_response::ListedGroup;
use tansu_sans_io::record::deflated;
use tansu_sans_io::txn_offset_commit_response::TxnOffsetCommitResponseTopic;
use tansu_sans_io::{ConfigResource, ErrorCode, IsolationLevel, ListOffset, ScramMechanism};
use tansu_storage::{
    BrokerRegistrationRequest, Error, GroupDetail, ListOffsetResponse, MetadataResponse, NamedGroupDetail,
    OffsetCommitRequest, OffsetStage, ProducerIdResponse, Result, ScramCredential, Storage, StorageContainer, TopicId,
    Topition, TxnAddPartitionsRequest, TxnAddPartitionsResponse, TxnOffsetCommitRequest, UpdateError, Version,
};
use url::Url;
use uuid::Uuid;

/// One partition's records.
#[derive(Debug, Default)]
struct PartitionLog {
    /// Batches by base offset.
    batches: BTreeMap<i64, deflated::Batch>,
    /// The next offset (the high watermark).
    next: i64,
    /// The first offset still readable (the log start).
    start: i64,
    /// Per idempotent producer: its epoch and the next sequence expected.
    sequences: HashMap<i64, (i16, i32)>,
    /// Wakes the fetches waiting for this partition's next records.
    arrivals: Arc<Notify>,
}

impl PartitionLog {
    fn append(&mut self, mut batch: deflated::Batch) -> Result<i64> {
        if batch.producer_id >= 0 {
            let expected = match self.sequences.get(&batch.producer_id) {
                Some((epoch, next)) if *epoch == batch.producer_epoch => *next,
                Some((epoch, _)) if *epoch > batch.producer_epoch => return Err(Error::Api(ErrorCode::ProducerFenced)),
                _ => 0,
            };
            if batch.base_sequence < expected {
                return Err(Error::Api(ErrorCode::DuplicateSequenceNumber));
            }
            if batch.base_sequence > expected {
                return Err(Error::Api(ErrorCode::OutOfOrderSequenceNumber));
            }
            let next = batch.base_sequence.wrapping_add(batch.last_offset_delta + 1);
            self.sequences.insert(batch.producer_id, (batch.producer_epoch, next));
        }
        let base = self.next;
        batch.base_offset = base;
        self.next = base + i64::from(batch.last_offset_delta) + 1;
        self.batches.insert(base, batch);
        Ok(base)
    }

    /// Batches from the one holding `offset` on, up to about `max_bytes`
    /// (at least one).
    fn read(&self, offset: i64, max_bytes: u32) -> Vec<deflated::Batch> {
        let first = match self.batches.range(..=offset).next_back() {
            Some((base, batch)) if base + i64::from(batch.last_offset_delta) >= offset => *base,
            _ => offset,
        };
        let mut left = u64::from(max_bytes);
        let mut out = Vec::new();
        for batch in self.batches.range(first..).map(|(_, b)| b) {
            let size = batch.record_data.len() as u64 + 61;
            out.push(batch.clone());
            if size > left {
                break;
            }
            left -= size;
        }
        out
    }

    /// Makes `offset` the log start (-1: the high watermark) and frees every
    /// batch that ends before it. Returns the new log start.
    fn delete_below(&mut self, offset: i64) -> i64 {
        let offset = if offset < 0 { self.next } else { offset.min(self.next) };
        self.start = self.start.max(offset);
        let start = self.start;
        let kept = match self.batches.range(..=start).next_back() {
            Some((base, batch)) if base + i64::from(batch.last_offset_delta) >= start => *base,
            _ => start,
        };
        self.batches = self.batches.split_off(&kept);
        self.start
    }

    fn stage(&self) -> OffsetStage {
        // OffsetStage has no public constructor; it is (de)serialisable.
        serde_json::from_value(serde_json::json!({
            "last_stable": self.next,
            "high_watermark": self.next,
            "log_start": self.start,
        }))
        .unwrap_or_default()
    }
}

/// One partition as a fetch sees it.
#[derive(Debug, Default)]
pub(crate) struct PartitionRead {
    /// Batches from the one holding the offset asked for.
    pub(crate) batches: Vec<deflated::Batch>,
    /// The next offset to be written.
    pub(crate) high_watermark: i64,
    /// The first offset still readable.
    pub(crate) log_start: i64,
}

/// Tansu's storage with the records kept in [`PartitionLog`]s.
#[derive(Clone, Debug)]
pub(crate) struct LogStorage {
    control: StorageContainer,
    /// Topics created through this broker, with their partition count
    /// (`None`: the broker's default).
    topics: Arc<Mutex<HashMap<String, Option<i32>>>>,
    logs: Arc<Mutex<HashMap<Topition, PartitionLog>>>,
}

impl LogStorage {
    pub(crate) fn new(control: StorageContainer) -> Self {
        Self { control, topics: Arc::default(), logs: Arc::default() }
    }

    fn logs(&self) -> std::sync::MutexGuard<'_, HashMap<Topition, PartitionLog>> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<i32>>> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What a fetch of `topition` from `offset` sees: the batches from the
    /// one holding `offset` on (up to about `max_bytes`), the high watermark
    /// and the log start. `None`: no such partition.
    pub(crate) fn read(&self, topition: &Topition, offset: i64, max_bytes: u32) -> Option<PartitionRead> {
        if !self.exists(topition) {
            return None;
        }
        let logs = self.logs();
        Some(logs.get(topition).map_or_else(PartitionRead::default, |log| PartitionRead {
            batches: log.read(offset, max_bytes),
            high_watermark: log.next,
            log_start: log.start,
        }))
    }

    /// Signalled whenever records are appended to `topition` (`None`: no
    /// such partition). Only futures already waiting (or enabled) hear it.
    pub(crate) fn arrivals(&self, topition: &Topition) -> Option<Arc<Notify>> {
        self.exists(topition).then(|| self.logs().entry(topition.clone()).or_default().arrivals.clone())
    }

    fn exists(&self, topition: &Topition) -> bool {
        match self.topics().get(topition.topic()) {
            Some(Some(partitions)) => (0..*partitions).contains(&topition.partition()),
            Some(None) => topition.partition() >= 0,
            None => false,
        }
    }
}

#[async_trait]
impl Storage for LogStorage {
    async fn register_broker(&self, broker_registration: BrokerRegistrationRequest) -> Result<()> {
        self.control.register_broker(broker_registration).await
    }

    async fn create_topic(&self, topic: CreatableTopic, validate_only: bool) -> Result<Uuid> {
        let (name, partitions) = (topic.name.clone(), topic.num_partitions);
        let id = self.control.create_topic(topic, validate_only).await?;
        if !validate_only {
            self.topics().insert(name, (partitions > 0).then_some(partitions));
        }
        Ok(id)
    }

    async fn incremental_alter_resource(&self, resource: AlterConfigsResource) -> Result<AlterConfigsResourceResponse> {
        self.control.incremental_alter_resource(resource).await
    }

    async fn delete_records(&self, topics: &[DeleteRecordsTopic]) -> Result<Vec<DeleteRecordsTopicResult>> {
        let mut results = Vec::new();
        for topic in topics {
            let mut partitions = Vec::new();
            for p in topic.partitions.iter().flatten() {
                let topition = Topition::new(topic.name.clone(), p.partition_index);
                let mut result = DeleteRecordsPartitionResult::default();
                result.partition_index = p.partition_index;
                if self.exists(&topition) {
                    result.low_watermark = self.logs().entry(topition).or_default().delete_below(p.offset);
                    result.error_code = ErrorCode::None.into();
                } else {
                    result.low_watermark = -1;
                    result.error_code = ErrorCode::UnknownTopicOrPartition.into();
                }
                partitions.push(result);
            }
            let mut result = DeleteRecordsTopicResult::default();
            result.name = topic.name.clone();
            result.partitions = Some(partitions);
            results.push(result);
        }
        Ok(results)
    }

    async fn delete_topic(&self, topic: &TopicId) -> Result<ErrorCode> {
        let name = match topic {
            TopicId::Name(name) => Some(name.clone()),
            TopicId::Id(_) => {
                let metadata = self.control.metadata(Some(std::slice::from_ref(topic))).await?;
                metadata.topics().first().and_then(|t| t.name.clone())
            }
        };
        let outcome = self.control.delete_topic(topic).await?;
        if let Some(name) = name {
            self.topics().remove(&name);
            self.logs().retain(|topition, _| topition.topic() != name);
        }
        Ok(outcome)
    }

    async fn brokers(&self) -> Result<Vec<DescribeClusterBroker>> {
        self.control.brokers().await
    }

    async fn produce(&self, _transaction_id: Option<&str>, topition: &Topition, batch: deflated::Batch) -> Result<i64> {
        if !self.exists(topition) {
            return Err(Error::Api(ErrorCode::UnknownTopicOrPartition));
        }
        let mut logs = self.logs();
        let log = logs.entry(topition.clone()).or_default();
        let base = log.append(batch)?;
        log.arrivals.notify_waiters();
        Ok(base)
    }

    async fn fetch(
        &self,
        topition: &'_ Topition,
        offset: i64,
        _min_bytes: u32,
        max_bytes: u32,
        _isolation: IsolationLevel,
    ) -> Result<Vec<deflated::Batch>> {
        Ok(self.logs().get(topition).map(|log| log.read(offset, max_bytes)).unwrap_or_default())
    }

    async fn offset_stage(&self, topition: &Topition) -> Result<OffsetStage> {
        Ok(self.logs().get(topition).map(PartitionLog::stage).unwrap_or_default())
    }

    async fn list_offsets(
        &self,
        _isolation_level: IsolationLevel,
        offsets: &[(Topition, ListOffset)],
    ) -> Result<Vec<(Topition, ListOffsetResponse)>> {
        let logs = self.logs();
        let empty = PartitionLog::default();
        Ok(offsets
            .iter()
            .map(|(topition, request)| {
                let log = logs.get(topition).unwrap_or(&empty);
                let offset = match request {
                    ListOffset::Earliest => Some(log.start),
                    ListOffset::Latest => Some(log.next),
                    ListOffset::Timestamp(at) => {
                        let millis = at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
                        log.batches.values().find(|b| b.max_timestamp >= millis).map(|b| b.base_offset)
                    }
                };
                let response = ListOffsetResponse { error_code: ErrorCode::None, timestamp: None, offset };
                (topition.clone(), response)
            })
            .collect())
    }

    async fn offset_commit(
        &self,
        group_id: &str,
        retention_time_ms: Option<Duration>,
        offsets: &[(Topition, OffsetCommitRequest)],
    ) -> Result<Vec<(Topition, ErrorCode)>> {
        self.control.offset_commit(group_id, retention_time_ms, offsets).await
    }

    async fn offset_fetch(
        &self,
        group_id: Option<&str>,
        topics: &[Topition],
        require_stable: Option<bool>,
    ) -> Result<BTreeMap<Topition, i64>> {
        self.control.offset_fetch(group_id, topics, require_stable).await
    }

    async fn committed_offset_topitions(&self, group_id: &str) -> Result<BTreeMap<Topition, i64>> {
        self.control.committed_offset_topitions(group_id).await
    }

    async fn metadata(&self, topics: Option<&[TopicId]>) -> Result<MetadataResponse> {
        self.control.metadata(topics).await
    }

    async fn upsert_user_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    ) -> Result<()> {
        self.control.upsert_user_scram_credential(user, mechanism, credential).await
    }

    async fn delete_user_scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Result<()> {
        self.control.delete_user_scram_credential(user, mechanism).await
    }

    async fn user_scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Result<Option<ScramCredential>> {
        self.control.user_scram_credential(user, mechanism).await
    }

    async fn describe_config(
        &self,
        name: &str,
        resource: ConfigResource,
        keys: Option<&[String]>,
    ) -> Result<DescribeConfigsResult> {
        self.control.describe_config(name, resource, keys).await
    }

    async fn list_groups(&self, states_filter: Option<&[String]>) -> Result<Vec<ListedGroup>> {
        self.control.list_groups(states_filter).await
    }

    async fn delete_groups(&self, group_ids: Option<&[String]>) -> Result<Vec<DeletableGroupResult>> {
        self.control.delete_groups(group_ids).await
    }

    async fn describe_groups(
        &self,
        group_ids: Option<&[String]>,
        include_authorized_operations: bool,
    ) -> Result<Vec<NamedGroupDetail>> {
        self.control.describe_groups(group_ids, include_authorized_operations).await
    }

    async fn describe_topic_partitions(
        &self,
        topics: Option<&[TopicId]>,
        partition_limit: i32,
        cursor: Option<Topition>,
    ) -> Result<Vec<DescribeTopicPartitionsResponseTopic>> {
        self.control.describe_topic_partitions(topics, partition_limit, cursor).await
    }

    async fn update_group(
        &self,
        group_id: &str,
        detail: GroupDetail,
        version: Option<Version>,
    ) -> Result<Version, UpdateError<GroupDetail>> {
        self.control.update_group(group_id, detail, version).await
    }

    async fn init_producer(
        &self,
        transaction_id: Option<&str>,
        transaction_timeout_ms: i32,
        producer_id: Option<i64>,
        producer_epoch: Option<i16>,
    ) -> Result<ProducerIdResponse> {
        self.control.init_producer(transaction_id, transaction_timeout_ms, producer_id, producer_epoch).await
    }

    async fn txn_add_offsets(
        &self,
        transaction_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<ErrorCode> {
        self.control.txn_add_offsets(transaction_id, producer_id, producer_epoch, group_id).await
    }

    async fn txn_add_partitions(&self, partitions: TxnAddPartitionsRequest) -> Result<TxnAddPartitionsResponse> {
        self.control.txn_add_partitions(partitions).await
    }

    async fn txn_offset_commit(&self, offsets: TxnOffsetCommitRequest) -> Result<Vec<TxnOffsetCommitResponseTopic>> {
        self.control.txn_offset_commit(offsets).await
    }

    async fn txn_end(
        &self,
        transaction_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        committed: bool,
    ) -> Result<ErrorCode> {
        self.control.txn_end(transaction_id, producer_id, producer_epoch, committed).await
    }

    async fn maintain(&self, now: SystemTime) -> Result<()> {
        self.control.maintain(now).await
    }

    async fn cluster_id(&self) -> Result<String> {
        self.control.cluster_id().await
    }

    async fn node(&self) -> Result<i32> {
        self.control.node().await
    }

    async fn advertised_listener(&self) -> Result<Url> {
        self.control.advertised_listener().await
    }

    async fn ping(&self) -> Result<()> {
        self.control.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: i32, producer: i64, sequence: i32) -> deflated::Batch {
        deflated::Batch {
            last_offset_delta: records - 1,
            record_count: records as u32,
            producer_id: producer,
            producer_epoch: 0,
            base_sequence: sequence,
            max_timestamp: 1_000 + i64::from(sequence),
            ..deflated::Batch::default()
        }
    }

    #[test]
    fn offsets_are_dense_and_a_fetch_inside_a_batch_returns_that_batch() {
        let mut log = PartitionLog::default();
        assert_eq!(log.append(batch(3, -1, 0)).unwrap(), 0);
        assert_eq!(log.append(batch(2, -1, 0)).unwrap(), 3);
        assert_eq!(log.append(batch(1, -1, 0)).unwrap(), 5);
        let bases = |from| log.read(from, u32::MAX).iter().map(|b| b.base_offset).collect::<Vec<_>>();
        assert_eq!(bases(0), vec![0, 3, 5]);
        assert_eq!(bases(4), vec![3, 5]);
        assert_eq!(bases(5), vec![5]);
        assert!(bases(6).is_empty());
        assert_eq!(log.read(0, 1).len(), 1, "at least one batch, however small the limit");
        assert_eq!((log.stage().high_watermark(), log.stage().log_start()), (6, 0));
    }

    #[test]
    fn an_idempotent_producer_cannot_write_a_batch_twice_or_skip_one() {
        let mut log = PartitionLog::default();
        assert_eq!(log.append(batch(2, 7, 0)).unwrap(), 0);
        assert!(matches!(log.append(batch(2, 7, 0)), Err(Error::Api(ErrorCode::DuplicateSequenceNumber))));
        assert!(matches!(log.append(batch(1, 7, 5)), Err(Error::Api(ErrorCode::OutOfOrderSequenceNumber))));
        assert_eq!(log.append(batch(1, 7, 2)).unwrap(), 2);
        assert_eq!(log.append(batch(1, 8, 0)).unwrap(), 3, "another producer has its own sequence");
        assert_eq!(log.next, 4);
    }

    #[test]
    fn deleting_records_frees_whole_batches_below_the_new_log_start() {
        let mut log = PartitionLog::default();
        for _ in 0..4 {
            log.append(batch(2, -1, 0)).unwrap(); // 0-1, 2-3, 4-5, 6-7
        }
        assert_eq!(log.delete_below(5), 5);
        assert_eq!(log.batches.keys().copied().collect::<Vec<_>>(), vec![4, 6], "4-5 still holds offset 5");
        assert_eq!(log.delete_below(2), 5, "the log start never moves back");
        assert_eq!(log.read(0, u32::MAX).first().map(|b| b.base_offset), Some(4));
        assert_eq!(log.delete_below(-1), 8, "-1 is the high watermark");
        assert!(log.batches.is_empty());
        assert_eq!(log.append(batch(1, -1, 0)).unwrap(), 8);
    }
}
