//! Broker configuration, under Kafka's names.
//!
//! Sources, lowest precedence first: built-in defaults, a `server.properties` file
//! (`--config`), environment variables (`STRAND_LOG_DIRS=...` sets `log.dirs`: the prefix
//! dropped, lower-cased, `_` read as `.`), and `--override key=value` flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use strand_metadata::config::topic_config_by_broker_name;
use strand_protocol::batch::Codec;
use strand_storage::{LogConfig, TimestampType};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected key=value")]
    Syntax { path: PathBuf, line: usize },
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

/// Keys the broker reads itself, with their defaults (`None`: no default, Kafka's null, so
/// unset unless configured). Topic-config defaults (`log.*`, `message.max.bytes`, ...) are
/// known from the topic config table.
pub const BROKER_KEYS: &[(&str, Option<&str>)] = &[
    ("node.id", Some("1")),
    ("listeners", Some("PLAINTEXT://127.0.0.1:9092")),
    ("advertised.listeners", None),
    (
        "listener.security.protocol.map",
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
    ),
    ("inter.broker.listener.name", None),
    ("controller.listener.names", None),
    ("process.roles", Some("broker,controller")),
    ("controller.quorum.voters", None),
    ("controller.quorum.bootstrap.servers", None),
    ("log.dirs", Some("./strand-data")),
    ("num.partitions", Some("1")),
    ("default.replication.factor", Some("1")),
    ("auto.create.topics.enable", Some("true")),
    ("socket.request.max.bytes", Some("104857600")),
    ("max.connections", Some("10000")),
    ("queued.max.requests", Some("500")),
    ("fetch.max.bytes", Some("57671680")),
    ("metadata.log.max.snapshot.records", Some("10000")),
    ("offsets.topic.num.partitions", Some("50")),
    ("offsets.topic.replication.factor", Some("3")),
    ("offsets.topic.segment.bytes", Some("104857600")),
    ("offsets.retention.minutes", Some("10080")),
    ("offset.metadata.max.bytes", Some("4096")),
    ("group.min.session.timeout.ms", Some("6000")),
    ("group.max.session.timeout.ms", Some("1800000")),
    ("group.max.size", Some("2147483647")),
    ("group.initial.rebalance.delay.ms", Some("3000")),
    ("log.retention.check.interval.ms", Some("300000")),
    ("log.cleaner.enable", Some("true")),
    ("log.cleaner.backoff.ms", Some("15000")),
    (
        "log.cleaner.io.max.bytes.per.second",
        Some("1.7976931348623157E308"),
    ),
    ("producer.id.expiration.ms", Some("86400000")),
    ("transaction.state.log.num.partitions", Some("50")),
    ("transaction.state.log.replication.factor", Some("3")),
    ("transaction.state.log.segment.bytes", Some("104857600")),
    ("transaction.max.timeout.ms", Some("900000")),
    ("transactional.id.expiration.ms", Some("604800000")),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Some("10000"),
    ),
    ("group.consumer.session.timeout.ms", Some("45000")),
    ("group.consumer.heartbeat.interval.ms", Some("5000")),
    ("strand.allow.old.protocol.versions", Some("true")),
];

/// Synonyms Kafka accepts for a setting in another unit; folded into the `.ms` key.
const UNIT_SYNONYMS: &[(&str, &str, i64)] = &[
    ("log.retention.hours", "log.retention.ms", 3_600_000),
    ("log.retention.minutes", "log.retention.ms", 60_000),
    ("log.roll.hours", "log.roll.ms", 3_600_000),
];

/// The transaction coordinator's settings.
#[derive(Debug, Clone)]
pub struct TransactionsConfig {
    /// `transaction.state.log.num.partitions`
    pub log_partitions: i32,
    /// `transaction.state.log.replication.factor` (capped by the number of brokers)
    pub log_replication_factor: i16,
    /// `transaction.state.log.segment.bytes`
    pub log_segment_bytes: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    pub abort_check_interval_ms: u64,
    /// `transaction.max.timeout.ms`, `transactional.id.expiration.ms`
    pub coordinator: strand_coordinator::txn::TxnConfig,
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// The inter-broker listener's address (the one registered in the metadata).
    pub listener: SocketAddr,
    /// Host and port the inter-broker listener advertises.
    pub advertised_host: String,
    pub advertised_port: u16,
    /// Every listener, named (`listeners`, `advertised.listeners`, ...).
    pub listeners: Vec<crate::listeners::Listener>,
    /// Listeners of `controller.listener.names`: checked, not served (this node is its own
    /// single-voter quorum).
    pub controller_listeners: Vec<crate::listeners::Listener>,
    /// `inter.broker.listener.name`
    pub inter_broker_listener: String,
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub socket_request_max_bytes: usize,
    pub max_connections: usize,
    pub queued_max_requests: usize,
    pub fetch_max_bytes: usize,
    pub metadata_snapshot_records: usize,
    /// `log.retention.check.interval.ms`
    pub retention_check_interval_ms: u64,
    /// `log.cleaner.enable`
    pub cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`: pause between compaction passes.
    pub cleaner_backoff_ms: u64,
    /// `log.cleaner.io.max.bytes.per.second`
    pub cleaner_io_bytes_per_sec: f64,
    /// `offsets.topic.num.partitions`
    pub offsets_topic_partitions: i32,
    /// `offsets.topic.replication.factor` (capped by the number of brokers)
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes`
    pub offsets_topic_segment_bytes: i32,
    /// `producer.id.expiration.ms`: an idle producer's state is dropped after this.
    pub producer_id_expiration_ms: i64,
    pub transactions: TransactionsConfig,
    /// `strand.allow.old.protocol.versions`: serve the request versions Kafka 4 removed
    /// (KIP-896) that Kafka 3.9 served; `false` answers exactly as Kafka 4.
    pub allow_old_protocol_versions: bool,
    /// The group coordinator's settings (`group.*`, `offsets.retention.minutes`, ...).
    pub groups: strand_coordinator::GroupConfig,
    /// Every key set explicitly (file, environment, flags), after unit folding: what
    /// DescribeConfigs reports as STATIC_BROKER_CONFIG.
    pub static_config: BTreeMap<String, String>,
}

impl BrokerConfig {
    /// Builds the config from explicitly set keys (defaults fill the rest).
    pub fn from_map(mut set: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        if let Some(dir) = set.remove("log.dir") {
            set.entry("log.dirs".into()).or_insert(dir);
        }
        for (from, to, factor) in UNIT_SYNONYMS {
            if let Some(v) = set.remove(*from) {
                if !set.contains_key(*to) {
                    let n: i64 = parse(from, &v)?;
                    set.insert((*to).to_string(), (n * factor).to_string());
                }
            }
        }
        for (k, v) in &set {
            if let Some(def) = topic_config_by_broker_name(k) {
                strand_metadata::config::validate(def, v).map_err(|reason| {
                    ConfigError::Invalid {
                        key: k.clone(),
                        value: v.clone(),
                        reason,
                    }
                })?;
            } else if !BROKER_KEYS.iter().any(|(name, _)| name == k) {
                tracing::warn!(key = %k, "unknown configuration key ignored");
            }
        }
        let get = |k: &str| -> String {
            set.get(k).cloned().unwrap_or_else(|| {
                BROKER_KEYS
                    .iter()
                    .find(|(name, _)| *name == k)
                    .and_then(|(_, d)| *d)
                    .unwrap_or_default()
                    .to_string()
            })
        };
        let crate::listeners::Listeners {
            client: listeners,
            controller: controller_listeners,
            inter_broker: inter_broker_listener,
        } = crate::listeners::parse(
            &get("listeners"),
            &get("advertised.listeners"),
            &get("listener.security.protocol.map"),
            &get("inter.broker.listener.name"),
            &get("controller.listener.names"),
        )?;
        let node_id: i32 = parse("node.id", &get("node.id"))?;
        check_roles(
            &get("process.roles"),
            &get("controller.quorum.voters"),
            &get("controller.quorum.bootstrap.servers"),
            node_id,
        )?;
        let inter = listeners
            .iter()
            .find(|l| l.name == inter_broker_listener)
            .cloned()
            .ok_or_else(|| {
                invalid(
                    "inter.broker.listener.name",
                    &inter_broker_listener,
                    "unknown",
                )
            })?;
        let (listener, advertised_host, advertised_port) =
            (inter.bind, inter.advertised_host, inter.advertised_port);
        let log_dirs: Vec<PathBuf> = get("log.dirs")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            return Err(invalid("log.dirs", "", "at least one directory is needed"));
        }
        let cfg = Self {
            node_id,
            listener,
            advertised_host,
            advertised_port,
            listeners,
            controller_listeners,
            inter_broker_listener,
            log_dirs,
            num_partitions: positive("num.partitions", &get("num.partitions"))?,
            default_replication_factor: positive::<i16>(
                "default.replication.factor",
                &get("default.replication.factor"),
            )?,
            auto_create_topics: parse_bool(
                "auto.create.topics.enable",
                &get("auto.create.topics.enable"),
            )?,
            socket_request_max_bytes: positive(
                "socket.request.max.bytes",
                &get("socket.request.max.bytes"),
            )?,
            max_connections: positive("max.connections", &get("max.connections"))?,
            queued_max_requests: positive("queued.max.requests", &get("queued.max.requests"))?,
            fetch_max_bytes: positive("fetch.max.bytes", &get("fetch.max.bytes"))?,
            metadata_snapshot_records: positive(
                "metadata.log.max.snapshot.records",
                &get("metadata.log.max.snapshot.records"),
            )?,
            cleaner_enable: parse_bool("log.cleaner.enable", &get("log.cleaner.enable"))?,
            cleaner_backoff_ms: positive("log.cleaner.backoff.ms", &get("log.cleaner.backoff.ms"))?,
            cleaner_io_bytes_per_sec: parse::<f64>(
                "log.cleaner.io.max.bytes.per.second",
                &get("log.cleaner.io.max.bytes.per.second"),
            )?,
            retention_check_interval_ms: positive(
                "log.retention.check.interval.ms",
                &get("log.retention.check.interval.ms"),
            )?,
            offsets_topic_partitions: positive(
                "offsets.topic.num.partitions",
                &get("offsets.topic.num.partitions"),
            )?,
            offsets_topic_replication_factor: positive(
                "offsets.topic.replication.factor",
                &get("offsets.topic.replication.factor"),
            )?,
            offsets_topic_segment_bytes: positive(
                "offsets.topic.segment.bytes",
                &get("offsets.topic.segment.bytes"),
            )?,
            producer_id_expiration_ms: positive(
                "producer.id.expiration.ms",
                &get("producer.id.expiration.ms"),
            )?,
            transactions: TransactionsConfig {
                log_partitions: positive(
                    "transaction.state.log.num.partitions",
                    &get("transaction.state.log.num.partitions"),
                )?,
                log_replication_factor: positive(
                    "transaction.state.log.replication.factor",
                    &get("transaction.state.log.replication.factor"),
                )?,
                log_segment_bytes: positive(
                    "transaction.state.log.segment.bytes",
                    &get("transaction.state.log.segment.bytes"),
                )?,
                abort_check_interval_ms: positive(
                    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                    &get("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
                )?,
                coordinator: strand_coordinator::txn::TxnConfig {
                    max_timeout_ms: positive(
                        "transaction.max.timeout.ms",
                        &get("transaction.max.timeout.ms"),
                    )?,
                    id_expiration_ms: positive(
                        "transactional.id.expiration.ms",
                        &get("transactional.id.expiration.ms"),
                    )?,
                },
            },
            allow_old_protocol_versions: parse_bool(
                "strand.allow.old.protocol.versions",
                &get("strand.allow.old.protocol.versions"),
            )?,
            groups: strand_coordinator::GroupConfig {
                min_session_timeout_ms: positive(
                    "group.min.session.timeout.ms",
                    &get("group.min.session.timeout.ms"),
                )?,
                max_session_timeout_ms: positive(
                    "group.max.session.timeout.ms",
                    &get("group.max.session.timeout.ms"),
                )?,
                max_size: positive::<i32>("group.max.size", &get("group.max.size"))? as usize,
                initial_rebalance_delay_ms: parse::<i64>(
                    "group.initial.rebalance.delay.ms",
                    &get("group.initial.rebalance.delay.ms"),
                )?
                .max(0),
                offsets_retention_ms: positive::<i64>(
                    "offsets.retention.minutes",
                    &get("offsets.retention.minutes"),
                )?
                .saturating_mul(60_000),
                offset_metadata_max_bytes: positive(
                    "offset.metadata.max.bytes",
                    &get("offset.metadata.max.bytes"),
                )?,
                consumer_session_timeout_ms: positive(
                    "group.consumer.session.timeout.ms",
                    &get("group.consumer.session.timeout.ms"),
                )?,
                consumer_heartbeat_interval_ms: positive(
                    "group.consumer.heartbeat.interval.ms",
                    &get("group.consumer.heartbeat.interval.ms"),
                )?,
            },
            static_config: set,
        };
        Ok(cfg)
    }

    /// Reads a `server.properties`-style file: `key=value` lines, `#` and `!` comments.
    pub fn read_properties(
        path: &std::path::Path,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut out = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .or_else(|| line.split_once(':'))
                .ok_or(ConfigError::Syntax {
                    path: path.to_owned(),
                    line: i + 1,
                })?;
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(out)
    }

    /// Keys from `STRAND_*` environment variables (`STRAND_LOG`, the log filter, excepted).
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
        vars.into_iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix("STRAND_").filter(|r| *r != "LOG")?;
                (!rest.is_empty()).then(|| (rest.to_ascii_lowercase().replace('_', "."), v))
            })
            .collect()
    }

    /// The log settings a new topic gets from the broker level (before its own settings).
    pub fn log_config_for(&self, resolved: &BTreeMap<String, String>) -> LogConfig {
        let d = LogConfig::default();
        let num = |k: &str, dflt: i64| {
            resolved
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(dflt)
        };
        let policy: Vec<&str> = resolved
            .get("cleanup.policy")
            .map_or(vec!["delete"], |p| p.split(',').map(str::trim).collect());
        LogConfig {
            segment_bytes: num("segment.bytes", d.segment_bytes as i64).max(14) as u64,
            segment_ms: num("segment.ms", d.segment_ms).max(1),
            index_interval_bytes: num("index.interval.bytes", d.index_interval_bytes as i64).max(0)
                as u64,
            max_message_bytes: num("max.message.bytes", d.max_message_bytes as i64).max(0) as usize,
            timestamp_type: match resolved.get("message.timestamp.type").map(String::as_str) {
                Some("LogAppendTime") => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            },
            timestamp_before_max_ms: num(
                "message.timestamp.before.max.ms",
                d.timestamp_before_max_ms,
            )
            .max(0),
            timestamp_after_max_ms: num("message.timestamp.after.max.ms", d.timestamp_after_max_ms)
                .max(0),
            // `producer` (the default) keeps what the producer sent.
            compression: resolved
                .get("compression.type")
                .and_then(|c| Codec::from_config_name(c)),
            delete_policy: policy.contains(&"delete"),
            compact_policy: policy.contains(&"compact"),
            retention_ms: num("retention.ms", d.retention_ms),
            retention_bytes: num("retention.bytes", d.retention_bytes),
            file_delete_delay_ms: num("file.delete.delay.ms", d.file_delete_delay_ms).max(0),
            delete_retention_ms: num("delete.retention.ms", d.delete_retention_ms).max(0),
            min_compaction_lag_ms: num("min.compaction.lag.ms", d.min_compaction_lag_ms).max(0),
            max_compaction_lag_ms: num("max.compaction.lag.ms", d.max_compaction_lag_ms).max(1),
            min_cleanable_dirty_ratio: resolved
                .get("min.cleanable.dirty.ratio")
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(d.min_cleanable_dirty_ratio),
            producer_id_expiration_ms: self.producer_id_expiration_ms,
        }
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn parse<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| invalid(key, v, "not a number of the right type"))
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    key: &str,
    v: &str,
) -> Result<T, ConfigError> {
    let n: T = parse(key, v)?;
    if n <= T::default() {
        return Err(invalid(key, v, "must be positive"));
    }
    Ok(n)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, v, "expected true or false")),
    }
}

/// `process.roles` and the quorum settings, as far as a node that is its own single-voter
/// quorum can honour them: combined roles, and no voter but itself.
fn check_roles(
    roles: &str,
    voters: &str,
    bootstrap: &str,
    node_id: i32,
) -> Result<(), ConfigError> {
    let mut named: Vec<String> = roles
        .split(',')
        .map(|r| r.trim().to_ascii_lowercase())
        .filter(|r| !r.is_empty())
        .collect();
    named.sort();
    named.dedup();
    if let Some(bad) = named.iter().find(|r| *r != "broker" && *r != "controller") {
        return Err(invalid(
            "process.roles",
            roles,
            &format!("unknown role {bad}"),
        ));
    }
    if named != ["broker", "controller"] {
        return Err(invalid(
            "process.roles",
            roles,
            "a node with one role needs a cluster, which Strand does not form yet: use \
             broker,controller",
        ));
    }
    let others: Vec<&str> = voters
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .filter(|v| {
            v.split_once('@')
                .and_then(|(id, _)| id.trim().parse::<i32>().ok())
                != Some(node_id)
        })
        .collect();
    if !others.is_empty() {
        return Err(invalid(
            "controller.quorum.voters",
            voters,
            "voters other than this node need the replicated metadata quorum, which Strand \
             does not have yet",
        ));
    }
    if bootstrap
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .count()
        > 1
    {
        return Err(invalid(
            "controller.quorum.bootstrap.servers",
            bootstrap,
            "several controllers need the replicated metadata quorum, which Strand does not \
             have yet",
        ));
    }
    Ok(())
}

impl BrokerConfig {
    /// Records where listener `name` was bound (port 0 gets a port at bind time); a listener
    /// that advertised its bound port advertises the new one.
    pub fn set_bound(&mut self, name: &str, addr: SocketAddr) {
        for l in self.listeners.iter_mut().filter(|l| l.name == name) {
            if l.advertised_port == l.bind.port() {
                l.advertised_port = addr.port();
            }
            l.bind = addr;
            if l.name == self.inter_broker_listener {
                self.listener = addr;
                self.advertised_port = l.advertised_port;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_work_on_a_laptop() {
        let c = BrokerConfig::from_map(BTreeMap::new()).unwrap();
        assert_eq!(c.listener.to_string(), "127.0.0.1:9092");
        assert_eq!(
            (c.advertised_host.as_str(), c.advertised_port),
            ("127.0.0.1", 9092)
        );
        assert_eq!(c.node_id, 1);
        assert!(c.auto_create_topics);
        assert_eq!(c.num_partitions, 1);
    }

    #[test]
    fn units_fold_and_bad_values_fail() {
        let c = BrokerConfig::from_map(map(&[
            ("log.retention.hours", "2"),
            ("listeners", "PLAINTEXT://localhost:1234"),
        ]))
        .unwrap();
        assert_eq!(
            c.static_config.get("log.retention.ms").map(String::as_str),
            Some("7200000")
        );
        assert_eq!(c.listener.port(), 1234);
        assert!(BrokerConfig::from_map(map(&[("num.partitions", "0")])).is_err());
        assert!(BrokerConfig::from_map(map(&[("log.segment.bytes", "x")])).is_err());
        assert!(BrokerConfig::from_map(map(&[("listeners", "SSL://1.2.3.4:1")])).is_err());
    }

    #[test]
    fn kafkas_combined_mode_settings_are_taken_for_a_single_node() {
        let kafka = map(&[
            ("process.roles", "broker,controller"),
            ("node.id", "1"),
            ("controller.quorum.bootstrap.servers", "localhost:9093"),
            ("controller.quorum.voters", "1@localhost:9093"),
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("inter.broker.listener.name", "PLAINTEXT"),
            (
                "advertised.listeners",
                "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093",
            ),
            ("controller.listener.names", "CONTROLLER"),
            (
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL",
            ),
        ]);
        let c = BrokerConfig::from_map(kafka.clone()).unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.controller_listeners[0].name, "CONTROLLER");
        assert_eq!(
            (c.advertised_host.as_str(), c.advertised_port),
            ("localhost", 9092)
        );
        for (k, v) in [
            ("process.roles", "broker"),
            ("process.roles", "controller"),
            ("process.roles", "broker,witch"),
            ("controller.quorum.voters", "1@a:1,2@b:1"),
            ("controller.quorum.bootstrap.servers", "a:1,b:1"),
        ] {
            let mut m = kafka.clone();
            m.insert(k.into(), v.into());
            assert!(BrokerConfig::from_map(m).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn env_names() {
        let m = BrokerConfig::from_env([
            ("STRAND_LOG_DIRS".to_string(), "/x".to_string()),
            ("HOME".to_string(), "/".to_string()),
        ]);
        assert_eq!(m, map(&[("log.dirs", "/x")]));
    }
}
