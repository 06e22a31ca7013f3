//! The controller: checks admin requests against the image and answers with the records that
//! carry them out. It never changes state itself; the caller appends the records and the image
//! changes by replaying them.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::config::validate_topic_configs;
use crate::image::MetadataImage;
use crate::record::{ConfigResource, MetadataRecord, PartitionRecord};

/// Longest topic name Kafka allows (so that `<name>-<partition>` fits in a file name).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Most partitions one request may create, so that a typo cannot make a million directories.
pub const PARTITIONS_PER_REQUEST_MAX: i32 = 100_000;

/// A refused request: a Kafka error code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: i16,
    pub message: String,
}

impl ApiError {
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        Self {
            code: error.code(),
            message: message.into(),
        }
    }
}

/// Settings the controller needs from the broker config.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub num_partitions: i32,
    pub default_replication_factor: i16,
}

/// Checks a topic name by Kafka's rules.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let invalid = |why: String| Err(ApiError::new(ResponseError::InvalidTopicException, why));
    if name.is_empty() {
        return invalid("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return invalid("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return invalid(format!(
            "Topic name is illegal, it can't be longer than {TOPIC_NAME_BYTES_MAX} characters"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Kafka treats `.` and `_` alike in metric names, so two topics differing only there collide.
fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

/// A topic to create, as CreateTopics asks for it.
#[derive(Debug, Clone, Default)]
pub struct NewTopic {
    pub name: String,
    /// -1: `num.partitions`.
    pub num_partitions: i32,
    /// -1: `default.replication.factor`.
    pub replication_factor: i16,
    /// Explicit replica lists by partition, instead of a count.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: BTreeMap<String, String>,
}

/// Checks a new topic and returns the record that creates it.
pub fn create_topic(
    image: &MetadataImage,
    req: &NewTopic,
    cfg: &ControllerConfig,
) -> Result<MetadataRecord, ApiError> {
    validate_topic_name(&req.name)?;
    if image.topic(&req.name).is_some() {
        return Err(ApiError::new(
            ResponseError::TopicAlreadyExists,
            format!("Topic '{}' already exists.", req.name),
        ));
    }
    let key = collision_key(&req.name);
    if let Some(other) = image.topics.keys().find(|t| collision_key(t) == key) {
        return Err(ApiError::new(
            ResponseError::InvalidTopicException,
            format!("Topic '{}' collides with existing topic: {other}", req.name),
        ));
    }
    let brokers: Vec<i32> = image.brokers.keys().copied().collect();
    if brokers.is_empty() {
        return Err(ApiError::new(
            ResponseError::BrokerNotAvailable,
            "No brokers are registered",
        ));
    }
    let partitions = if req.assignments.is_empty() {
        let n = if req.num_partitions == -1 {
            cfg.num_partitions
        } else {
            req.num_partitions
        };
        if n <= 0 || n > PARTITIONS_PER_REQUEST_MAX {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("Number of partitions must be between 1 and {PARTITIONS_PER_REQUEST_MAX}, got {n}"),
            ));
        }
        let rf = if req.replication_factor == -1 {
            cfg.default_replication_factor
        } else {
            req.replication_factor
        };
        if rf <= 0 || rf as usize > brokers.len() {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Replication factor: {rf} larger than available brokers: {}, or not positive.",
                    brokers.len()
                ),
            ));
        }
        (0..n)
            .map(|p| assign(p, place(p, rf as usize, &brokers)))
            .collect()
    } else {
        if req.num_partitions != -1 || req.replication_factor != -1 {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
            ));
        }
        let mut parts = Vec::new();
        for (i, (p, replicas)) in req.assignments.iter().enumerate() {
            if *p != i as i32 {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    "Partitions should be a consecutive 0-based integer sequence",
                ));
            }
            check_replicas(replicas, &brokers)?;
            parts.push(assign(*p, replicas.clone()));
        }
        parts
    };
    validate_topic_configs(req.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|m| ApiError::new(ResponseError::InvalidConfig, m))?;
    Ok(MetadataRecord::CreateTopic {
        name: req.name.clone(),
        topic_id: Uuid::new_v4(),
        partitions,
        configs: req.configs.clone(),
    })
}

fn check_replicas(replicas: &[i32], brokers: &[i32]) -> Result<(), ApiError> {
    let mut seen = replicas.to_vec();
    seen.sort_unstable();
    seen.dedup();
    if replicas.is_empty()
        || seen.len() != replicas.len()
        || replicas.iter().any(|r| !brokers.contains(r))
    {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            format!("Replica assignment {replicas:?} names unknown or duplicate brokers"),
        ));
    }
    Ok(())
}

/// Round-robin placement, each partition starting on the next broker.
fn place(partition: i32, rf: usize, brokers: &[i32]) -> Vec<i32> {
    (0..rf)
        .map(|i| brokers[(partition as usize + i) % brokers.len()])
        .collect()
}

fn assign(partition: i32, replicas: Vec<i32>) -> PartitionRecord {
    PartitionRecord {
        partition,
        leader: replicas[0],
        isr: replicas.clone(),
        replicas,
        leader_epoch: 0,
    }
}

/// Checks a CreatePartitions request: `count` is the new total.
pub fn create_partitions(
    image: &MetadataImage,
    topic: &str,
    count: i32,
    assignments: Option<&[Vec<i32>]>,
) -> Result<MetadataRecord, ApiError> {
    let t = image.topic(topic).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("The topic '{topic}' does not exist."),
        )
    })?;
    let current = t.partitions.len() as i32;
    if count <= current {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!("Topic currently has {current} partitions, which is higher than the requested {count}."),
        ));
    }
    if count - current > PARTITIONS_PER_REQUEST_MAX {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!("Cannot add more than {PARTITIONS_PER_REQUEST_MAX} partitions at once"),
        ));
    }
    let brokers: Vec<i32> = image.brokers.keys().copied().collect();
    let rf = t.partitions.first().map_or(1, |p| p.replicas.len());
    let added = match assignments {
        Some(a) => {
            if a.len() as i32 != count - current {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Increasing the number of partitions by {} but {} assignments provided.",
                        count - current,
                        a.len()
                    ),
                ));
            }
            a.iter()
                .enumerate()
                .map(|(i, r)| {
                    check_replicas(r, &brokers).map(|()| assign(current + i as i32, r.clone()))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        None => {
            if rf > brokers.len() {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicationFactor,
                    "Not enough brokers for the topic's replication factor",
                ));
            }
            (current..count)
                .map(|p| assign(p, place(p, rf, &brokers)))
                .collect()
        }
    };
    Ok(MetadataRecord::AddPartitions {
        topic_id: t.id,
        partitions: added,
    })
}

/// Checks a topic deletion, by name or by id.
pub fn delete_topic(
    image: &MetadataImage,
    name: Option<&str>,
    id: Option<Uuid>,
) -> Result<(String, Uuid, MetadataRecord), ApiError> {
    let t = match (name, id) {
        (Some(n), _) if !n.is_empty() => image.topic(n).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                "This server does not host this topic-partition.",
            )
        })?,
        (_, Some(id)) if !id.is_nil() => image.topic_by_id(&id).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicId,
                "This server does not host this topic ID.",
            )
        })?,
        _ => {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "Neither topic name nor id was given",
            ))
        }
    };
    Ok((
        t.name.clone(),
        t.id,
        MetadataRecord::DeleteTopic { topic_id: t.id },
    ))
}

/// One config change, as AlterConfigs / IncrementalAlterConfigs carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

/// Checks config changes to a topic and returns the records that make them. With `replace`
/// (the legacy AlterConfigs), every setting not named is removed.
pub fn alter_topic_configs(
    image: &MetadataImage,
    topic: &str,
    ops: &[(String, ConfigOp)],
    replace: bool,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let t = image.topic(topic).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("Topic {topic} does not exist"),
        )
    })?;
    let mut next = if replace {
        BTreeMap::new()
    } else {
        t.configs.clone()
    };
    for (key, op) in ops {
        let def = crate::config::topic_config_def(key).ok_or_else(|| {
            ApiError::new(
                ResponseError::InvalidConfig,
                format!("Unknown topic config name: {key}"),
            )
        })?;
        let current = next
            .get(key)
            .cloned()
            .unwrap_or_else(|| def.default.to_string());
        match op {
            ConfigOp::Set(v) => {
                next.insert(key.clone(), v.clone());
            }
            ConfigOp::Delete => {
                next.remove(key);
            }
            ConfigOp::Append(v) | ConfigOp::Subtract(v) => {
                if def.ty != crate::config::ConfigType::List {
                    return Err(ApiError::new(
                        ResponseError::InvalidConfig,
                        format!("Config {key} is not a list"),
                    ));
                }
                let mut items: Vec<String> = current
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if matches!(op, ConfigOp::Append(_)) {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                next.insert(key.clone(), items.join(","));
            }
        }
    }
    validate_topic_configs(next.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|m| ApiError::new(ResponseError::InvalidConfig, m))?;
    let mut records = Vec::new();
    for (k, v) in &next {
        if t.configs.get(k) != Some(v) {
            records.push(MetadataRecord::SetConfig {
                resource: ConfigResource::Topic(topic.into()),
                key: k.clone(),
                value: Some(v.clone()),
            });
        }
    }
    for k in t.configs.keys().filter(|k| !next.contains_key(*k)) {
        records.push(MetadataRecord::SetConfig {
            resource: ConfigResource::Topic(topic.into()),
            key: k.clone(),
            value: None,
        });
    }
    Ok(records)
}

/// Checks dynamic config changes to a broker (`node: None` for the cluster-wide default).
/// Only the broker defaults of topic configs can change at run time.
pub fn alter_broker_configs(
    image: &MetadataImage,
    node: Option<i32>,
    ops: &[(String, ConfigOp)],
    replace: bool,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let current = image.broker_configs.get(&node).cloned().unwrap_or_default();
    let mut next = if replace {
        BTreeMap::new()
    } else {
        current.clone()
    };
    for (key, op) in ops {
        let def = crate::config::topic_config_by_broker_name(key).ok_or_else(|| {
            ApiError::new(
                ResponseError::InvalidRequest,
                format!("Cannot update these configs dynamically: Set({key})"),
            )
        })?;
        match op {
            ConfigOp::Set(v) => {
                crate::config::validate(def, v)
                    .map_err(|m| ApiError::new(ResponseError::InvalidConfig, m))?;
                next.insert(key.clone(), v.clone());
            }
            ConfigOp::Delete => {
                next.remove(key);
            }
            ConfigOp::Append(_) | ConfigOp::Subtract(_) => {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Append and subtract are not supported for {key}"),
                ));
            }
        }
    }
    let resource = ConfigResource::Broker(node);
    let mut records: Vec<MetadataRecord> = next
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(v))
        .map(|(k, v)| MetadataRecord::SetConfig {
            resource: resource.clone(),
            key: k.clone(),
            value: Some(v.clone()),
        })
        .collect();
    records.extend(current.keys().filter(|k| !next.contains_key(*k)).map(|k| {
        MetadataRecord::SetConfig {
            resource: resource.clone(),
            key: k.clone(),
            value: None,
        }
    }));
    Ok(records)
}

/// How many producer ids a broker takes at once (Kafka's block size).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// The next block of producer ids for `broker_id`: the record that takes it, and its range.
pub fn allocate_producer_ids(
    image: &MetadataImage,
    broker_id: i32,
) -> Result<(MetadataRecord, std::ops::Range<i64>), ApiError> {
    let start = image.next_producer_id;
    let end = start.checked_add(PRODUCER_ID_BLOCK_SIZE).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownServerError,
            "producer ids are exhausted",
        )
    })?;
    Ok((
        MetadataRecord::ProducerIds {
            broker_id,
            next_producer_id: end,
        },
        start..end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> MetadataImage {
        MetadataImage::empty().apply(
            0,
            &MetadataRecord::RegisterBroker {
                node_id: 1,
                host: "h".into(),
                port: 1,
                rack: None,
            },
        )
    }
    const CFG: ControllerConfig = ControllerConfig {
        num_partitions: 2,
        default_replication_factor: 1,
    };

    fn new_topic(name: &str) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            ..Default::default()
        }
    }

    #[test]
    fn create_checks_names_counts_and_configs() {
        let img = image();
        let MetadataRecord::CreateTopic { partitions, .. } =
            create_topic(&img, &new_topic("a.b"), &CFG).unwrap()
        else {
            panic!()
        };
        assert_eq!(partitions.len(), 2);
        let img = img.apply(1, &create_topic(&img, &new_topic("a.b"), &CFG).unwrap());
        assert_eq!(
            create_topic(&img, &new_topic("a.b"), &CFG)
                .unwrap_err()
                .code,
            36
        );
        assert_eq!(
            create_topic(&img, &new_topic("a_b"), &CFG)
                .unwrap_err()
                .code,
            17
        );
        assert_eq!(
            create_topic(&img, &new_topic("bad name"), &CFG)
                .unwrap_err()
                .code,
            17
        );
        assert_eq!(
            create_topic(&img, &new_topic(&"x".repeat(250)), &CFG)
                .unwrap_err()
                .code,
            17
        );
        let zero = NewTopic {
            num_partitions: 0,
            ..new_topic("z")
        };
        assert_eq!(create_topic(&img, &zero, &CFG).unwrap_err().code, 37);
        let rf = NewTopic {
            replication_factor: 3,
            ..new_topic("z")
        };
        assert_eq!(create_topic(&img, &rf, &CFG).unwrap_err().code, 38);
        let cfg = NewTopic {
            configs: [("retention.ms".into(), "abc".into())].into(),
            ..new_topic("z")
        };
        assert_eq!(create_topic(&img, &cfg, &CFG).unwrap_err().code, 40);
    }

    #[test]
    fn partitions_and_deletes_touch_only_their_topic() {
        let mut img = image();
        for n in ["a", "b"] {
            let r = create_topic(&img, &new_topic(n), &CFG).unwrap();
            img = img.apply(img.offset + 1, &r);
        }
        let r = create_partitions(&img, "a", 5, None).unwrap();
        img = img.apply(img.offset + 1, &r);
        assert_eq!(img.topic("a").unwrap().partitions.len(), 5);
        assert_eq!(create_partitions(&img, "a", 5, None).unwrap_err().code, 37);
        let (_, _, r) = delete_topic(&img, Some("a"), None).unwrap();
        img = img.apply(img.offset + 1, &r);
        assert!(img.topic("a").is_none());
        assert_eq!(img.topic("b").unwrap().partitions.len(), 2);
        assert_eq!(delete_topic(&img, Some("a"), None).unwrap_err().code, 3);
    }

    #[test]
    fn incremental_config_ops() {
        let mut img = image();
        img = img.apply(1, &create_topic(&img, &new_topic("t"), &CFG).unwrap());
        let ops = [
            (
                "cleanup.policy".to_string(),
                ConfigOp::Append("compact".into()),
            ),
            ("retention.ms".to_string(), ConfigOp::Set("10".into())),
        ];
        for r in alter_topic_configs(&img, "t", &ops, false).unwrap() {
            img = img.apply(img.offset + 1, &r);
        }
        let c = &img.topic("t").unwrap().configs;
        assert_eq!(
            c.get("cleanup.policy").map(String::as_str),
            Some("delete,compact")
        );
        let del = [("retention.ms".to_string(), ConfigOp::Delete)];
        for r in alter_topic_configs(&img, "t", &del, false).unwrap() {
            img = img.apply(img.offset + 1, &r);
        }
        assert!(!img.topic("t").unwrap().configs.contains_key("retention.ms"));
        let bad = [("retention.ms".to_string(), ConfigOp::Append("1".into()))];
        assert_eq!(
            alter_topic_configs(&img, "t", &bad, false)
                .unwrap_err()
                .code,
            40
        );
        let broker = [("log.retention.ms".to_string(), ConfigOp::Set("5".into()))];
        assert_eq!(
            alter_broker_configs(&img, None, &broker, false)
                .unwrap()
                .len(),
            1
        );
        let static_only = [("listeners".to_string(), ConfigOp::Set("x".into()))];
        assert_eq!(
            alter_broker_configs(&img, Some(1), &static_only, false)
                .unwrap_err()
                .code,
            42
        );
    }
}
