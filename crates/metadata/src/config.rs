//! Topic configs: names, types, defaults, validation, and how a topic's effective value is
//! resolved (topic setting, then dynamic broker setting, then `server.properties`, then default).
//!
//! Only configs Strand knows are accepted; an unknown name or a bad value gets INVALID_CONFIG,
//! as Kafka answers.

use std::collections::BTreeMap;

/// Kafka's config types, as DescribeConfigs v3+ reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// Kafka's config sources, as DescribeConfigs reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigSource {
    TopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
}

#[derive(Debug)]
pub struct TopicConfigDef {
    pub name: &'static str,
    /// The broker config that sets the default for every topic.
    pub broker_name: &'static str,
    pub ty: ConfigType,
    pub default: &'static str,
    /// Allowed values for enumerated strings and lists.
    pub choices: &'static [&'static str],
    /// Smallest allowed value for numbers.
    pub min: f64,
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    broker_name: &'static str,
    ty: ConfigType,
    default: &'static str,
    min: f64,
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        broker_name,
        ty,
        default,
        choices: &[],
        min,
        doc,
    }
}

const LONG_MAX: &str = "9223372036854775807";

/// Every topic config Strand accepts, with Kafka's defaults.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        choices: &["delete", "compact"],
        ..def(
            "cleanup.policy",
            "log.cleanup.policy",
            ConfigType::List,
            "delete",
            0.0,
            "Retention policy for old segments: delete, compact, or both.",
        )
    },
    TopicConfigDef {
        choices: &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"],
        ..def(
            "compression.type",
            "compression.type",
            ConfigType::String,
            "producer",
            0.0,
            "Final compression of the topic's data; producer keeps what the producer sent.",
        )
    },
    def(
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        ConfigType::Long,
        "86400000",
        0.0,
        "How long tombstones are kept on compacted topics.",
    ),
    def(
        "file.delete.delay.ms",
        "log.segment.delete.delay.ms",
        ConfigType::Long,
        "60000",
        0.0,
        "Wait before a deleted segment's files are removed.",
    ),
    def(
        "flush.messages",
        "log.flush.interval.messages",
        ConfigType::Long,
        LONG_MAX,
        1.0,
        "Force an fsync after this many messages.",
    ),
    def(
        "flush.ms",
        "log.flush.interval.ms",
        ConfigType::Long,
        LONG_MAX,
        0.0,
        "Force an fsync after this much time.",
    ),
    def(
        "index.interval.bytes",
        "log.index.interval.bytes",
        ConfigType::Int,
        "4096",
        0.0,
        "Bytes of log between two offset index entries.",
    ),
    def(
        "max.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        ConfigType::Long,
        LONG_MAX,
        1.0,
        "Longest time a message stays uncompacted.",
    ),
    def(
        "max.message.bytes",
        "message.max.bytes",
        ConfigType::Int,
        "1048588",
        0.0,
        "Largest record batch the topic accepts.",
    ),
    TopicConfigDef {
        choices: &["CreateTime", "LogAppendTime"],
        ..def(
            "message.timestamp.type",
            "log.message.timestamp.type",
            ConfigType::String,
            "CreateTime",
            0.0,
            "Whether records keep the producer's timestamp or get the broker's append time.",
        )
    },
    def(
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        ConfigType::Long,
        "3600000",
        0.0,
        "How far ahead of the broker's clock a CreateTime timestamp may be.",
    ),
    def(
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        ConfigType::Long,
        LONG_MAX,
        0.0,
        "How far behind the broker's clock a CreateTime timestamp may be.",
    ),
    def(
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        ConfigType::Double,
        "0.5",
        0.0,
        "Dirty fraction of a log above which it is compacted.",
    ),
    def(
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        ConfigType::Long,
        "0",
        0.0,
        "Shortest time a message stays uncompacted.",
    ),
    def(
        "min.insync.replicas",
        "min.insync.replicas",
        ConfigType::Int,
        "1",
        1.0,
        "Replicas that must acknowledge an acks=all write.",
    ),
    def(
        "retention.bytes",
        "log.retention.bytes",
        ConfigType::Long,
        "-1",
        -1.0,
        "Largest size a partition grows to before old segments are deleted (-1: no limit).",
    ),
    def(
        "retention.ms",
        "log.retention.ms",
        ConfigType::Long,
        "604800000",
        -1.0,
        "Age after which old segments are deleted (-1: no limit).",
    ),
    def(
        "segment.bytes",
        "log.segment.bytes",
        ConfigType::Int,
        "1073741824",
        14.0,
        "Size at which a new segment is started.",
    ),
    def(
        "segment.ms",
        "log.roll.ms",
        ConfigType::Long,
        "604800000",
        1.0,
        "Age at which a new segment is started.",
    ),
    def(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        ConfigType::Boolean,
        "false",
        0.0,
        "Whether an out-of-sync replica may become leader.",
    ),
];

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

pub fn topic_config_by_broker_name(broker_name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.broker_name == broker_name)
}

/// Checks a value against its definition.
pub fn validate(def: &TopicConfigDef, value: &str) -> Result<(), String> {
    let v = value.trim();
    let bad = |why: &str| {
        Err(format!(
            "Invalid value {value} for configuration {}: {why}",
            def.name
        ))
    };
    match def.ty {
        ConfigType::Boolean => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return bad("Expected value to be either true or false");
            }
        }
        ConfigType::Int | ConfigType::Long => {
            let n: i64 = match v.parse() {
                Ok(n) => n,
                Err(_) => return bad("Not a number of the right type"),
            };
            if def.ty == ConfigType::Int && i32::try_from(n).is_err() {
                return bad("Out of range for an int");
            }
            if (n as f64) < def.min {
                return bad(&format!("Value must be at least {}", def.min));
            }
        }
        ConfigType::Double => match v.parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => {}
            _ => return bad("Value must be a number between 0 and 1"),
        },
        ConfigType::String => {
            if !def.choices.is_empty() && !def.choices.contains(&v) {
                return bad(&format!(
                    "String must be one of: {}",
                    def.choices.join(", ")
                ));
            }
        }
        ConfigType::List => {
            for item in v.split(',').map(str::trim) {
                if !def.choices.contains(&item) {
                    return bad(&format!("Items must be among: {}", def.choices.join(", ")));
                }
            }
        }
    }
    Ok(())
}

/// Checks a set of topic settings: every name known, every value valid.
pub fn validate_topic_configs<'a>(
    configs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    for (k, v) in configs {
        let def = topic_config_def(k).ok_or_else(|| format!("Unknown topic config name: {k}"))?;
        validate(def, v)?;
    }
    Ok(())
}

/// One resolved config value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedConfig {
    pub name: &'static str,
    pub value: String,
    pub source: ConfigSource,
    /// Every level that sets it, most specific first (Kafka's "synonyms").
    pub synonyms: Vec<(String, String, ConfigSource)>,
}

/// The broker-level settings that topic defaults come from.
#[derive(Debug, Clone, Default)]
pub struct BrokerDefaults<'a> {
    /// Set dynamically for this broker (AlterConfigs on broker `node.id`).
    pub dynamic_broker: Option<&'a BTreeMap<String, String>>,
    /// Set dynamically for every broker (AlterConfigs on broker "").
    pub dynamic_default: Option<&'a BTreeMap<String, String>>,
    /// From `server.properties`, the environment and flags, by broker config name.
    pub static_config: Option<&'a BTreeMap<String, String>>,
}

/// Resolves every topic config for a topic with the given settings.
pub fn resolve_topic_configs(
    topic: &BTreeMap<String, String>,
    broker: &BrokerDefaults<'_>,
) -> Vec<ResolvedConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = topic.get(def.name) {
                synonyms.push((def.name.to_string(), v.clone(), ConfigSource::TopicConfig));
            }
            let levels = [
                (broker.dynamic_broker, ConfigSource::DynamicBrokerConfig),
                (
                    broker.dynamic_default,
                    ConfigSource::DynamicDefaultBrokerConfig,
                ),
                (broker.static_config, ConfigSource::StaticBrokerConfig),
            ];
            for (map, source) in levels {
                if let Some(v) = map.and_then(|m| m.get(def.broker_name)) {
                    synonyms.push((def.broker_name.to_string(), v.clone(), source));
                }
            }
            synonyms.push((
                def.broker_name.to_string(),
                def.default.to_string(),
                ConfigSource::DefaultConfig,
            ));
            let (_, value, source) = synonyms[0].clone();
            ResolvedConfig {
                name: def.name,
                value,
                source,
                synonyms,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let ok = [
            ("retention.ms", "1000"),
            ("cleanup.policy", "compact,delete"),
            ("message.timestamp.type", "LogAppendTime"),
        ];
        assert!(validate_topic_configs(ok).is_ok());
        for bad in [
            ("retention.ms", "x"),
            ("segment.bytes", "1"),
            ("cleanup.policy", "keep"),
            ("nope", "1"),
            ("min.cleanable.dirty.ratio", "2"),
        ] {
            assert!(validate_topic_configs([bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolution_order() {
        let topic = BTreeMap::from([("retention.ms".to_string(), "1".to_string())]);
        let stat = BTreeMap::from([
            ("log.retention.ms".to_string(), "3".to_string()),
            ("log.segment.bytes".to_string(), "4096".to_string()),
        ]);
        let dynd = BTreeMap::from([("log.segment.bytes".to_string(), "8192".to_string())]);
        let r = resolve_topic_configs(
            &topic,
            &BrokerDefaults {
                dynamic_broker: None,
                dynamic_default: Some(&dynd),
                static_config: Some(&stat),
            },
        );
        let get = |n: &str| r.iter().find(|c| c.name == n).unwrap().clone();
        assert_eq!(
            (
                get("retention.ms").value.as_str(),
                get("retention.ms").source
            ),
            ("1", ConfigSource::TopicConfig)
        );
        assert_eq!(get("retention.ms").synonyms.len(), 3);
        assert_eq!(
            (
                get("segment.bytes").value.as_str(),
                get("segment.bytes").source
            ),
            ("8192", ConfigSource::DynamicDefaultBrokerConfig)
        );
        assert_eq!(get("flush.ms").source, ConfigSource::DefaultConfig);
    }
}
