//! Topic creation and how durable the topics are: Udders creates the topics
//! it writes with the cluster's own replication defaults unless told
//! otherwise, and says so when the topics it finds live on one broker of
//! many (ADR 0017).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::{KafkaSettings, MessagingError};

/// How many replicas a new topic gets: the setting, or else the cluster's
/// `default.replication.factor` (-1 in CreateTopics, Kafka 2.4 and later).
/// A cluster of one broker can only hold one replica, so it gets 1 (which
/// also suits brokers that predate the default, such as the embedded one).
pub fn replication_for(setting: Option<i32>, brokers: usize) -> i32 {
    match setting {
        Some(replicas) => replicas,
        None if brokers <= 1 => 1,
        None => -1,
    }
}

/// The topics of `found` (name, fewest replicas of any partition) that a
/// single broker's loss would take down, on a cluster of `brokers`: empty
/// on a one-broker cluster, where nothing better is possible.
pub fn thinly_replicated(brokers: usize, found: &[(String, usize)]) -> Vec<String> {
    if brokers <= 1 {
        return Vec::new();
    }
    found.iter().filter(|(_, replicas)| *replicas <= 1).map(|(name, _)| name.clone()).collect()
}

/// The cluster as its metadata says: how many brokers, and for each of
/// `topics` that exists, the fewest replicas of any of its partitions.
pub async fn cluster_replication(
    settings: &KafkaSettings,
    topics: &[String],
) -> Result<(usize, Vec<(String, usize)>), MessagingError> {
    let config = settings.admin_config();
    let wanted = topics.to_vec();
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = config.create().map_err(MessagingError::Kafka)?;
        let metadata = client.fetch_metadata(None, Duration::from_secs(5)).map_err(MessagingError::Kafka)?;
        let found = metadata
            .topics()
            .iter()
            .filter(|t| wanted.iter().any(|w| w == t.name()) && !t.partitions().is_empty())
            .map(|t| (t.name().to_owned(), t.partitions().iter().map(|p| p.replicas().len()).min().unwrap_or(0)))
            .collect();
        Ok((metadata.brokers().len(), found))
    })
    .await
    .map_err(|e| MessagingError::Broker(e.to_string()))?
}

/// Creates the topics that do not exist yet, each with the configured number
/// of partitions, replicas ([`replication_for`]) and `min.insync.replicas`
/// (the cluster's when unset). Idempotent: a topic that exists is left as it
/// is. Returns how many topics had to be created.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[String]) -> Result<usize, MessagingError> {
    let brokers = match settings.replication_factor {
        Some(_) => 0,
        None => cluster_replication(settings, &[]).await?.0,
    };
    let replicas = replication_for(settings.replication_factor, brokers);
    let min_insync = settings.min_insync_replicas.map(|n| n.to_string());
    let admin: AdminClient<DefaultClientContext> = settings.admin_config().create().map_err(MessagingError::Kafka)?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            let topic = NewTopic::new(t, settings.partitions, TopicReplication::Fixed(replicas));
            match &min_insync {
                Some(n) => topic.set("min.insync.replicas", n),
                None => topic,
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics(&new, &options).await.map_err(MessagingError::Kafka)?;
    let mut created = 0;
    for result in results {
        match result {
            Ok(_) => created += 1,
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(MessagingError::Broker(format!("creating topic {topic}: {code}")));
            }
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_follow_the_setting_else_the_cluster() {
        let cases = [
            (Some(3), 5, 3, "the setting wins"),
            (Some(1), 3, 1, "even a thin one, when asked for"),
            (None, 3, -1, "the cluster's default.replication.factor"),
            (None, 1, 1, "one broker holds one replica"),
            (None, 0, 1, "no broker listed yet: as for one"),
        ];
        for (setting, brokers, replicas, why) in cases {
            assert_eq!(replication_for(setting, brokers), replicas, "{why}");
        }
    }

    #[test]
    fn one_replica_is_a_warning_only_on_a_cluster_of_several_brokers() {
        let found = vec![("udders.order".to_owned(), 1), ("udders.credit".to_owned(), 3)];
        assert_eq!(thinly_replicated(3, &found), ["udders.order"]);
        assert!(thinly_replicated(1, &found).is_empty());
        assert!(thinly_replicated(3, &[("udders.order".to_owned(), 2)]).is_empty());
    }
}
