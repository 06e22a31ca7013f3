use strand_protocol::batch::Codec;

/// How record timestamps are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamp is kept.
    #[default]
    CreateTime,
    /// The broker stamps each batch with the time it appends it.
    LogAppendTime,
}

/// The per-partition settings the log needs, under Kafka's topic config names.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment before it grows past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll the active segment once its first batch is this old.
    pub segment_ms: i64,
    /// `index.interval.bytes`: bytes between two index entries.
    pub index_interval_bytes: u64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime timestamp may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime timestamp may be.
    pub timestamp_after_max_ms: i64,
    /// `compression.type`: the codec batches are stored in; `None` keeps the producer's.
    pub compression: Option<Codec>,
    /// `cleanup.policy` contains `delete`: old segments go by age and size.
    pub delete_policy: bool,
    /// `cleanup.policy` contains `compact`: the cleaner keeps the latest value per key.
    pub compact_policy: bool,
    /// `retention.ms` (-1: no limit).
    pub retention_ms: i64,
    /// `retention.bytes` (-1: no limit).
    pub retention_bytes: i64,
    /// `file.delete.delay.ms`: how long a deleted segment's files stay (renamed `.deleted`).
    pub file_delete_delay_ms: i64,
    /// `delete.retention.ms`: how long tombstones survive compaction.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`
    pub min_cleanable_dirty_ratio: f64,
    /// `producer.id.expiration.ms` (a broker setting): idle producers are forgotten after it.
    pub producer_id_expiration_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            // Kafka 4's default (KIP-1030): at most an hour ahead of the broker's clock.
            timestamp_after_max_ms: 3_600_000,
            compression: None,
            delete_policy: true,
            compact_policy: false,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            file_delete_delay_ms: 60_000,
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            producer_id_expiration_ms: 86_400_000,
        }
    }
}
