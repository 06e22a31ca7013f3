//! What the admin client takes and returns: plain structs, no protocol types.

use crate::types::TopicPartition;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs such as `("retention.ms", "86400000")`.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
        }
    }

    /// Adds a topic config (builder style).
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// What kind of thing a config belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Topic,
    Broker,
}

impl ResourceKind {
    /// Kafka's resource type code.
    pub(crate) fn code(self) -> i8 {
        match self {
            ResourceKind::Topic => 2,
            ResourceKind::Broker => 4,
        }
    }
}

/// A topic, or a broker (by node id; `""` is the cluster-wide default of every broker).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    pub kind: ResourceKind,
    pub name: String,
}

impl ConfigResource {
    pub fn topic(name: impl Into<String>) -> Self {
        Self {
            kind: ResourceKind::Topic,
            name: name.into(),
        }
    }

    pub fn broker(node_id: i32) -> Self {
        Self {
            kind: ResourceKind::Broker,
            name: node_id.to_string(),
        }
    }

    /// The default every broker falls back to (dynamic cluster-wide broker configs).
    pub fn broker_default() -> Self {
        Self {
            kind: ResourceKind::Broker,
            name: String::new(),
        }
    }
}

impl std::fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.kind, self.name.as_str()) {
            (ResourceKind::Topic, name) => write!(f, "topic {name}"),
            (ResourceKind::Broker, "") => write!(f, "the default broker config"),
            (ResourceKind::Broker, name) => write!(f, "broker {name}"),
        }
    }
}

/// One config of a topic or broker, as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// `None` for sensitive values and for configs without a value.
    pub value: Option<String>,
    /// Where the value comes from, in Kafka's names: `DYNAMIC_TOPIC_CONFIG`,
    /// `DYNAMIC_BROKER_CONFIG`, `DYNAMIC_DEFAULT_BROKER_CONFIG`, `STATIC_BROKER_CONFIG`,
    /// `DEFAULT_CONFIG`, ... (`UNKNOWN` for codes this client does not know).
    pub source: String,
    pub read_only: bool,
    /// The source is `DEFAULT_CONFIG`: nothing sets it.
    pub is_default: bool,
    pub sensitive: bool,
}

/// Kafka's name for a DescribeConfigs `config_source` code.
pub(crate) fn config_source_name(code: i8) -> &'static str {
    match code {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// How an [`AlterConfigOp`] changes a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlterOpType {
    /// Sets the value.
    Set,
    /// Removes the setting: the config falls back to its default.
    Delete,
    /// Adds the value to a list config.
    Append,
    /// Removes the value from a list config.
    Subtract,
}

impl AlterOpType {
    pub(crate) fn code(self) -> i8 {
        match self {
            AlterOpType::Set => 0,
            AlterOpType::Delete => 1,
            AlterOpType::Append => 2,
            AlterOpType::Subtract => 3,
        }
    }
}

/// One change of one config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigOp {
    pub name: String,
    pub op: AlterOpType,
    /// Required except for [`AlterOpType::Delete`].
    pub value: Option<String>,
}

impl AlterConfigOp {
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: AlterOpType::Set,
            value: Some(value.into()),
        }
    }

    pub fn delete(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: AlterOpType::Delete,
            value: None,
        }
    }

    pub fn append(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: AlterOpType::Append,
            value: Some(value.into()),
        }
    }

    pub fn subtract(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: AlterOpType::Subtract,
            value: Some(value.into()),
        }
    }
}

/// The cluster: its id, its controller and its brokers (sorted by node id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDescription {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// A group, as ListGroups lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    /// `consumer` for consumer groups, `connect` for Connect workers, `""` for groups that
    /// only hold committed offsets.
    pub protocol_type: String,
    /// `Stable`, `Empty`, `PreparingRebalance`, ... (`None` from brokers older than
    /// ListGroups v4).
    pub state: Option<String>,
    /// `classic` or `consumer` (KIP-848) (`None` from brokers older than ListGroups v5).
    pub group_type: Option<String>,
}

/// A group and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    /// The chosen assignor (`range`, `uniform`, ...); empty while a classic group rebalances.
    pub protocol: String,
    /// `classic`, or `consumer` for a KIP-848 group described with ConsumerGroupDescribe.
    pub group_type: String,
    /// Sorted by member id.
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    /// The partitions assigned to the member (sorted); empty while the group rebalances
    /// and for groups that do not use the consumer protocol.
    pub assignment: Vec<TopicPartition>,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub offset: i64,
    /// The leader epoch of the last record consumed, when the committer knew it.
    pub leader_epoch: Option<i32>,
    /// The metadata string committed with the offset (`None` when empty).
    pub metadata: Option<String>,
}

impl OffsetAndMetadata {
    pub fn new(offset: i64) -> Self {
        Self {
            offset,
            leader_epoch: None,
            metadata: None,
        }
    }
}

/// Which offset of a partition to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark: the offset the next record will get.
    Latest,
    /// The record with the largest timestamp (ListOffsets v7+).
    MaxTimestamp,
    /// The first record whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    /// The ListOffsets `timestamp` field: -2, -1, -3 or the timestamp.
    pub(crate) fn wire(self) -> i64 {
        match self {
            OffsetSpec::Latest => -1,
            OffsetSpec::Earliest => -2,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// An offset ListOffsets found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// -1 when no record has a timestamp at or after the one asked for.
    pub offset: i64,
    /// The record's timestamp for timestamp lookups; -1 for earliest and latest.
    pub timestamp: i64,
    pub leader_epoch: Option<i32>,
}
