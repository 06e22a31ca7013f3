//! DescribeConfigs, AlterConfigs (replace all settings of a resource) and
//! IncrementalAlterConfigs (set, delete, append, subtract), for topics and brokers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use strand_metadata::config::{
    resolve_topic_configs, BrokerDefaults, ConfigSource, ConfigType, TOPIC_CONFIGS,
};
use strand_metadata::controller::{ApiError, ConfigOp};
use strand_metadata::ConfigResource;
use strand_metadata::MetadataImage;
use strand_protocol::frame::RequestFrame;

use super::str;
use crate::broker::Broker;
use crate::config::BROKER_KEYS;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// A config entry as DescribeConfigs reports it. `value` is `None` for a config that is
/// not set and has no default (Kafka answers null); an empty string is a value like another.
struct Entry {
    name: String,
    value: Option<String>,
    source: ConfigSource,
    read_only: bool,
    ty: ConfigType,
    doc: Option<&'static str>,
    synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

pub fn describe(
    broker: &Broker,
    frame: &RequestFrame,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let version = frame.version();
    let image = broker.image();
    let results = req
        .resources
        .into_iter()
        .map(|res| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let entries = match res.resource_type {
                TOPIC => topic_entries(broker, &image, res.resource_name.as_str()),
                BROKER => broker_node(broker, res.resource_name.as_str())
                    .map(|node| broker_entries(broker, &image, node)),
                other => Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Resource type {other} is not supported"),
                )),
            };
            match entries {
                Err(e) => base
                    .with_error_code(e.code)
                    .with_error_message(Some(str(e.message))),
                Ok(entries) => {
                    // Null or empty: every config, as Kafka answers.
                    let keys: Option<Vec<String>> = res
                        .configuration_keys
                        .filter(|k| !k.is_empty())
                        .map(|k| k.iter().map(|s| s.to_string()).collect());
                    let configs = entries
                        .into_iter()
                        .filter(|e| keys.as_ref().is_none_or(|k| k.contains(&e.name)))
                        .map(|e| {
                            let mut c = DescribeConfigsResourceResult::default()
                                .with_name(str(e.name))
                                .with_value(e.value.map(str))
                                .with_read_only(e.read_only)
                                .with_config_source(e.source as i8)
                                .with_is_sensitive(false);
                            if version == 0 {
                                // v0 has no source, only whether the value is the default (as
                                // Kafka up to 2.6 answered; 3.x left it false).
                                c.is_default = c.config_source
                                    == strand_metadata::config::ConfigSource::DefaultConfig as i8;
                            }
                            if version >= 1 && req.include_synonyms {
                                c.synonyms = e
                                    .synonyms
                                    .into_iter()
                                    .map(|(n, v, s)| {
                                        DescribeConfigsSynonym::default()
                                            .with_name(str(n))
                                            .with_value(v.map(str))
                                            .with_source(s as i8)
                                    })
                                    .collect();
                            }
                            if version >= 3 {
                                c.config_type = e.ty as i8;
                                if req.include_documentation {
                                    c.documentation = e.doc.map(str);
                                }
                            }
                            c
                        })
                        .collect();
                    base.with_configs(configs)
                }
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn topic_entries(
    broker: &Broker,
    image: &MetadataImage,
    name: &str,
) -> Result<Vec<Entry>, ApiError> {
    let topic = image.topic(name).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("Topic {name} does not exist"),
        )
    })?;
    Ok(broker
        .resolved_topic_configs(image, topic)
        .into_iter()
        .map(|c| {
            let def = TOPIC_CONFIGS.iter().find(|d| d.name == c.name);
            Entry {
                name: c.name.to_string(),
                value: Some(c.value),
                source: c.source,
                read_only: false,
                ty: def.map_or(ConfigType::String, |d| d.ty),
                doc: def.map(|d| d.doc),
                synonyms: c
                    .synonyms
                    .into_iter()
                    .map(|(n, v, s)| (n, Some(v), s))
                    .collect(),
            }
        })
        .collect())
}

/// `""` is the cluster-wide default resource; otherwise it must be this broker's id.
fn broker_node(broker: &Broker, name: &str) -> Result<Option<i32>, ApiError> {
    if name.is_empty() {
        return Ok(None);
    }
    match name.parse::<i32>() {
        Ok(n) if n == broker.config.node_id => Ok(Some(n)),
        _ => Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                broker.config.node_id
            ),
        )),
    }
}

fn broker_entries(broker: &Broker, image: &MetadataImage, node: Option<i32>) -> Vec<Entry> {
    let stat = &broker.config.static_config;
    let mut out: Vec<Entry> = BROKER_KEYS
        .iter()
        .map(|(name, default)| {
            let (value, source) = match stat.get(*name) {
                Some(v) => (Some(v.clone()), ConfigSource::StaticBrokerConfig),
                None => (default.map(str::to_string), ConfigSource::DefaultConfig),
            };
            let ty = match default {
                Some(d) if d.parse::<i64>().is_ok() => ConfigType::Int,
                Some("true" | "false") => ConfigType::Boolean,
                _ => ConfigType::String,
            };
            Entry {
                synonyms: vec![(name.to_string(), value.clone(), source)],
                name: name.to_string(),
                value,
                source,
                read_only: true,
                ty,
                doc: None,
            }
        })
        .collect();
    // Broker defaults of topic configs: alterable at run time.
    let defaults = BrokerDefaults {
        dynamic_broker: node.and_then(|n| image.broker_configs.get(&Some(n))),
        dynamic_default: image.broker_configs.get(&None),
        static_config: Some(stat),
    };
    for c in resolve_topic_configs(&Default::default(), &defaults) {
        let Some(def) = TOPIC_CONFIGS.iter().find(|d| d.name == c.name) else {
            continue;
        };
        if out.iter().any(|e| e.name == def.broker_name) {
            continue;
        }
        let synonyms: Vec<_> = c
            .synonyms
            .into_iter()
            .map(|(_, v, s)| (def.broker_name.to_string(), Some(v), s))
            .collect();
        out.push(Entry {
            name: def.broker_name.to_string(),
            value: Some(c.value),
            source: c.source,
            read_only: false,
            ty: def.ty,
            doc: Some(def.doc),
            synonyms,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

async fn apply(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    ops: Vec<(String, ConfigOp)>,
    replace: bool,
    validate_only: bool,
) -> Result<(), ApiError> {
    let resource = match resource_type {
        TOPIC => ConfigResource::Topic(name.to_string()),
        BROKER => ConfigResource::Broker(broker_node(broker, name)?),
        other => {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("Resource type {other} is not supported"),
            ))
        }
    };
    let request = strand_metadata::ControllerRequest::AlterConfigs {
        resource,
        ops,
        replace,
    };
    if validate_only {
        broker.decide(&request).map(|_| ())
    } else {
        broker.submit(request).await.map(|_| ())
    }
}

pub async fn alter(broker: &Broker, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::new();
    for res in req.resources {
        let ops = res
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value
                        .as_ref()
                        .map_or(ConfigOp::Delete, |v| ConfigOp::Set(v.to_string())),
                )
            })
            .collect();
        let outcome = apply(
            broker,
            res.resource_type,
            res.resource_name.as_str(),
            ops,
            true,
            req.validate_only,
        )
        .await;
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name);
        if let Err(e) = outcome {
            r = r
                .with_error_code(e.code)
                .with_error_message(Some(str(e.message)));
        }
        responses.push(r);
    }
    AlterConfigsResponse::default().with_responses(responses)
}

pub async fn incremental_alter(
    broker: &Broker,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::new();
    for res in req.resources {
        let ops: Result<Vec<(String, ConfigOp)>, ApiError> = res
            .configs
            .iter()
            .map(|c| {
                let value = c.value.as_ref().map(|v| v.to_string());
                let op = match (c.config_operation, value) {
                    (0, Some(v)) => ConfigOp::Set(v),
                    (1, _) => ConfigOp::Delete,
                    (2, Some(v)) => ConfigOp::Append(v),
                    (3, Some(v)) => ConfigOp::Subtract(v),
                    (op @ 0..=3, None) => {
                        return Err(ApiError::new(
                            ResponseError::InvalidRequest,
                            format!("Null value not supported for operation {op} on {}", c.name),
                        ));
                    }
                    (op, _) => {
                        return Err(ApiError::new(
                            ResponseError::InvalidRequest,
                            format!("Unknown config operation {op}"),
                        ))
                    }
                };
                Ok((c.name.to_string(), op))
            })
            .collect();
        let outcome = match ops {
            Ok(ops) => {
                apply(
                    broker,
                    res.resource_type,
                    res.resource_name.as_str(),
                    ops,
                    false,
                    req.validate_only,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name);
        if let Err(e) = outcome {
            r = r
                .with_error_code(e.code)
                .with_error_message(Some(str(e.message)));
        }
        responses.push(r);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
