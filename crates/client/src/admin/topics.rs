//! CreateTopics, DeleteTopics, CreatePartitions, and topic listings from Metadata.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, TopicName,
};

use super::{check_msg, s, Admin, NewTopic};
use crate::cluster::TopicInfo;
use crate::error::{Error, Result};

impl Admin {
    /// Creates topics; one answer per distinct name, in the order given. With
    /// `validate_only` the broker only checks that it could create them.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Result<Vec<(String, Result<()>)>> {
        let mut order = Vec::new();
        let mut specs: BTreeMap<String, NewTopic> = BTreeMap::new();
        for t in topics {
            if !specs.contains_key(&t.name) {
                order.push(t.name.clone());
                specs.insert(t.name.clone(), t);
            }
        }
        let specs = &specs;
        let mut results = self
            .per_key(order.clone(), |names| async move {
                let conn = self.cluster.any_conn().await?;
                let req = CreateTopicsRequest::default()
                    .with_timeout_ms(self.timeout_ms())
                    .with_validate_only(validate_only)
                    .with_topics(
                        names
                            .iter()
                            .filter_map(|n| specs.get(n))
                            .map(creatable)
                            .collect(),
                    );
                let resp = conn.send(&req).await?;
                Ok(resp
                    .topics
                    .iter()
                    .map(|t| {
                        let name = t.name.to_string();
                        let r = check_msg(t.error_code, t.error_message.as_ref(), || {
                            format!("topic {name}")
                        });
                        (name, r)
                    })
                    .collect())
            })
            .await?;
        Ok(in_order(order, &mut results))
    }

    /// Creates one topic.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<()> {
        let name = topic.name.clone();
        self.create_topics(vec![topic], false)
            .await?
            .into_iter()
            .next()
            .map_or_else(|| Err(no_answer(&name)), |(_, r)| r)
    }

    /// Deletes topics by name; one answer per distinct name, in the order given.
    pub async fn delete_topics(&self, names: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let mut order: Vec<String> = Vec::new();
        for n in names {
            if !order.contains(n) {
                order.push(n.clone());
            }
        }
        let mut results = self
            .per_key(order.clone(), |names| async move {
                let conn = self.cluster.any_conn().await?;
                let v = conn.version_for::<DeleteTopicsRequest>()?;
                let mut req = DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms());
                if v >= 6 {
                    req.topics = names
                        .iter()
                        .map(|n| DeleteTopicState::default().with_name(Some(TopicName(s(n)))))
                        .collect();
                } else {
                    req.topic_names = names.iter().map(|n| TopicName(s(n))).collect();
                }
                let resp = conn.send_at(&req, v).await?;
                Ok(resp
                    .responses
                    .iter()
                    .filter_map(|t| {
                        let name = t.name.as_ref()?.to_string();
                        let r = check_msg(t.error_code, t.error_message.as_ref(), || {
                            format!("topic {name}")
                        });
                        Some((name, r))
                    })
                    .collect())
            })
            .await?;
        Ok(in_order(order, &mut results))
    }

    /// The names of all topics, sorted; internal ones (`__consumer_offsets`) only if asked.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<String>> {
        let view = self.retrying(|| self.cluster.refresh(None, false)).await?;
        let mut names: Vec<String> = view
            .topics
            .values()
            .filter(|t| t.error_code == 0 && (include_internal || !t.internal))
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Partitions, leaders, replicas and ISRs of each topic, in the order asked. Fails with
    /// the topic's error (`UNKNOWN_TOPIC_OR_PARTITION`, ...) if any of them cannot be
    /// described.
    pub async fn describe_topics(&self, names: &[String]) -> Result<Vec<TopicInfo>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.retrying(|| async {
            let view = self.cluster.refresh(Some(names), false).await?;
            names
                .iter()
                .map(|n| match view.topics.get(n) {
                    Some(t) if t.error_code == 0 => Ok(t.clone()),
                    Some(t) => Err(Error::kafka(t.error_code, format!("topic {n}"))),
                    None => Err(Error::kafka(3, format!("topic {n}"))),
                })
                .collect()
        })
        .await
    }

    /// Grows `topic` to `total_count` partitions (Kafka never shrinks a topic).
    pub async fn create_partitions(&self, topic: &str, total_count: i32) -> Result<()> {
        self.retrying(|| async {
            let conn = self.cluster.any_conn().await?;
            let req = CreatePartitionsRequest::default()
                .with_timeout_ms(self.timeout_ms())
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_count(total_count)
                    .with_assignments(None)]);
            let resp = conn.send(&req).await?;
            let r = resp
                .results
                .iter()
                .find(|r| r.name.as_str() == topic)
                .ok_or_else(|| no_answer(topic))?;
            check_msg(r.error_code, r.error_message.as_ref(), || {
                format!("topic {topic}")
            })
        })
        .await
    }
}

fn creatable(t: &NewTopic) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(TopicName(s(&t.name)))
        .with_num_partitions(t.partitions)
        .with_replication_factor(t.replication_factor)
        .with_configs(
            t.configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                })
                .collect(),
        )
}

fn no_answer(topic: &str) -> Error {
    Error::protocol(format!("the broker did not answer for topic {topic}"))
}

/// The answers for `order`, in that order.
fn in_order(
    order: Vec<String>,
    results: &mut BTreeMap<String, Result<()>>,
) -> Vec<(String, Result<()>)> {
    order
        .into_iter()
        .map(|n| {
            let r = results.remove(&n).unwrap_or_else(|| Err(no_answer(&n)));
            (n, r)
        })
        .collect()
}
