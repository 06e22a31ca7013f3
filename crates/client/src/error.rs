//! Typed errors. A Kafka error code keeps its name, whether it is retriable, and where it
//! happened (topic, partition, group); transport errors say which broker.

use kafka_protocol::ResponseError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The broker answered with a Kafka error code.
    #[error("{code}{}{}", context_sep(.context), .context)]
    Kafka { code: KafkaCode, context: String },
    /// A connection could not be opened or broke.
    #[error("broker {addr}: {message}")]
    Transport { addr: String, message: String },
    /// No answer within `request.timeout.ms` (or another configured limit).
    #[error("timed out: {0}")]
    Timeout(String),
    /// The broker sent bytes we cannot decode, or an answer that breaks the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A configuration value is missing or invalid.
    #[error("config: {0}")]
    Config(String),
    /// No broker speaks a version of this API that the client knows.
    #[error("the broker does not support {0}")]
    Unsupported(String),
    /// The record cannot be sent as it is (too large, unknown partition, ...).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// `send` waited `max.block.ms` for room in `buffer.memory` or for metadata.
    #[error("blocked for max.block.ms: {0}")]
    BufferExhausted(String),
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// The consumer lost its group membership; its partitions were revoked.
    #[error("group membership lost: {0}")]
    Rebalance(String),
    /// A record of the open transaction failed: the transaction can only be aborted.
    #[error("the transaction must be aborted: {0}")]
    TransactionAbortable(String),
    /// The broker refused a batch for some of its records (KIP-467): `records` are their
    /// positions in the batch and the broker's reasons. Each record's delivery gets
    /// [`Error::for_record`] of it.
    #[error("{code}: {context}")]
    RecordsRefused {
        code: KafkaCode,
        context: String,
        records: std::sync::Arc<[(i32, String)]>,
    },
}

fn context_sep(context: &str) -> &'static str {
    if context.is_empty() {
        ""
    } else {
        ": "
    }
}

impl Error {
    /// A Kafka error for `code` (must be non-zero) with a context such as `topic t partition 3`.
    pub fn kafka(code: i16, context: impl Into<String>) -> Self {
        Error::Kafka {
            code: KafkaCode(code),
            context: context.into(),
        }
    }

    /// Whether trying again (after refreshing metadata or reconnecting) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => code.is_retriable(),
            Error::Transport { .. } | Error::Timeout(_) => true,
            _ => false,
        }
    }

    /// The Kafka error code, if the broker sent one.
    pub fn code(&self) -> Option<KafkaCode> {
        match self {
            Error::Kafka { code, .. } | Error::RecordsRefused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// What the record at `offset_delta` of a failed batch is told: a refused record gets the
    /// broker's code and its own reason; the others of its batch, that they were not appended
    /// because another record was refused (as Kafka's Java client and librdkafka say).
    pub fn for_record(&self, offset_delta: i32) -> Error {
        match self {
            Error::RecordsRefused { code, records, .. } => {
                match records.iter().find(|(i, _)| *i == offset_delta) {
                    Some((_, reason)) => Error::Kafka {
                        code: *code,
                        context: reason.clone(),
                    },
                    None => Error::InvalidRecord(format!(
                        "not appended: another record of its batch was refused ({code})"
                    )),
                }
            }
            e => e.clone(),
        }
    }

    pub(crate) fn protocol(message: impl std::fmt::Display) -> Self {
        Error::Protocol(message.to_string())
    }
}

/// `Ok(())` for error code 0, else the error with its context.
pub fn check(code: i16, context: impl FnOnce() -> String) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::kafka(code, context()))
    }
}

/// A Kafka error code, named as Kafka's `Errors` enum names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    pub const OFFSET_OUT_OF_RANGE: KafkaCode = KafkaCode(1);
    pub const UNKNOWN_TOPIC_OR_PARTITION: KafkaCode = KafkaCode(3);
    pub const LEADER_NOT_AVAILABLE: KafkaCode = KafkaCode(5);
    pub const NOT_LEADER_OR_FOLLOWER: KafkaCode = KafkaCode(6);
    pub const REQUEST_TIMED_OUT: KafkaCode = KafkaCode(7);
    pub const MESSAGE_TOO_LARGE: KafkaCode = KafkaCode(10);
    pub const COORDINATOR_LOAD_IN_PROGRESS: KafkaCode = KafkaCode(14);
    pub const COORDINATOR_NOT_AVAILABLE: KafkaCode = KafkaCode(15);
    pub const NOT_COORDINATOR: KafkaCode = KafkaCode(16);
    pub const ILLEGAL_GENERATION: KafkaCode = KafkaCode(22);
    pub const UNKNOWN_MEMBER_ID: KafkaCode = KafkaCode(25);
    pub const REBALANCE_IN_PROGRESS: KafkaCode = KafkaCode(27);
    pub const TOPIC_ALREADY_EXISTS: KafkaCode = KafkaCode(36);
    pub const MEMBER_ID_REQUIRED: KafkaCode = KafkaCode(79);
    pub const FENCED_INSTANCE_ID: KafkaCode = KafkaCode(82);
    pub const GROUP_ID_NOT_FOUND: KafkaCode = KafkaCode(69);
    pub const FENCED_MEMBER_EPOCH: KafkaCode = KafkaCode(110);
    pub const UNKNOWN_TOPIC_ID: KafkaCode = KafkaCode(100);
    pub const UNRELEASED_INSTANCE_ID: KafkaCode = KafkaCode(111);
    pub const STALE_MEMBER_EPOCH: KafkaCode = KafkaCode(113);

    pub fn is_retriable(self) -> bool {
        ResponseError::try_from_code(self.0).is_some_and(|e| e.is_retriable())
    }

    /// Kafka's name, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn name(self) -> String {
        match ResponseError::try_from_code(self.0) {
            None => "NONE".into(),
            Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE_{c}"),
            Some(e) => screaming_snake(&format!("{e:?}")),
        }
    }
}

impl std::fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_kafka_names_and_retriability() {
        assert_eq!(
            KafkaCode::UNKNOWN_TOPIC_OR_PARTITION.name(),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert!(KafkaCode::NOT_LEADER_OR_FOLLOWER.is_retriable());
        assert!(!KafkaCode::TOPIC_ALREADY_EXISTS.is_retriable());
        let e = Error::kafka(3, "topic t partition 9");
        assert_eq!(
            e.to_string(),
            "UNKNOWN_TOPIC_OR_PARTITION (3): topic t partition 9"
        );
    }
}
