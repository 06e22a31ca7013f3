//! DescribeConfigs, IncrementalAlterConfigs and DescribeCluster.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};

use super::types::config_source_name;
use super::{
    check_msg, s, Admin, AlterConfigOp, BrokerDescription, ClusterDescription, ConfigEntry,
    ConfigResource, ResourceKind,
};
use crate::cluster::Lane;
use crate::conn::Connection;
use crate::error::{Error, Result};

/// DescribeConfigs `config_source` of a value nothing sets.
const DEFAULT_CONFIG: i8 = 5;

impl Admin {
    /// Every config of a topic or a broker, with where its value comes from.
    pub async fn describe_configs(&self, resource: ConfigResource) -> Result<Vec<ConfigEntry>> {
        self.retrying(|| async {
            let conn = self.config_conn(&resource).await?;
            let req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(resource.kind.code())
                    .with_resource_name(s(&resource.name))
                    .with_configuration_keys(None),
            ]);
            let resp = conn.send(&req).await?;
            let r = resp
                .results
                .iter()
                .find(|r| {
                    r.resource_type == resource.kind.code()
                        && r.resource_name.as_str() == resource.name
                })
                .ok_or_else(|| Error::protocol(format!("no answer for {resource}")))?;
            check_msg(r.error_code, r.error_message.as_ref(), || {
                resource.to_string()
            })?;
            Ok(r.configs
                .iter()
                .map(|c| ConfigEntry {
                    name: c.name.to_string(),
                    value: c.value.as_ref().map(|v| v.to_string()),
                    source: config_source_name(c.config_source).to_string(),
                    read_only: c.read_only,
                    is_default: c.config_source == DEFAULT_CONFIG,
                    sensitive: c.is_sensitive,
                })
                .collect())
        })
        .await
    }

    /// Changes configs of a topic or a broker, leaving the others as they are.
    pub async fn incremental_alter_configs(
        &self,
        resource: ConfigResource,
        ops: Vec<AlterConfigOp>,
    ) -> Result<()> {
        for op in &ops {
            if op.value.is_none() && op.op != super::AlterOpType::Delete {
                return Err(Error::Config(format!(
                    "{:?} of {} needs a value",
                    op.op, op.name
                )));
            }
        }
        let configs: Vec<AlterableConfig> = ops
            .iter()
            .map(|o| {
                AlterableConfig::default()
                    .with_name(s(&o.name))
                    .with_config_operation(o.op.code())
                    .with_value(o.value.as_deref().map(s))
            })
            .collect();
        self.retrying(|| async {
            let conn = self.config_conn(&resource).await?;
            let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(resource.kind.code())
                    .with_resource_name(s(&resource.name))
                    .with_configs(configs.clone()),
            ]);
            let resp = conn.send(&req).await?;
            let r = resp
                .responses
                .iter()
                .find(|r| {
                    r.resource_type == resource.kind.code()
                        && r.resource_name.as_str() == resource.name
                })
                .ok_or_else(|| Error::protocol(format!("no answer for {resource}")))?;
            check_msg(r.error_code, r.error_message.as_ref(), || {
                resource.to_string()
            })
        })
        .await
    }

    /// The cluster id, the controller and the brokers. Uses Metadata when the broker does
    /// not speak DescribeCluster.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        self.retrying(|| async {
            let conn = self.cluster.any_conn().await?;
            if !conn.supports(ApiKey::DescribeCluster) {
                let view = self.cluster.refresh(Some(&[]), false).await?;
                let mut brokers: Vec<BrokerDescription> = view
                    .brokers
                    .iter()
                    .map(|(&node_id, addr)| {
                        let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "-1"));
                        BrokerDescription {
                            node_id,
                            host: host.to_string(),
                            port: port.parse().unwrap_or(-1),
                            rack: None,
                        }
                    })
                    .collect();
                brokers.sort_by_key(|b| b.node_id);
                return Ok(ClusterDescription {
                    cluster_id: view.cluster_id.clone().unwrap_or_default(),
                    controller_id: view.controller_id,
                    brokers,
                });
            }
            let resp = conn.send(&DescribeClusterRequest::default()).await?;
            check_msg(resp.error_code, resp.error_message.as_ref(), || {
                "DescribeCluster".into()
            })?;
            let mut brokers: Vec<BrokerDescription> = resp
                .brokers
                .iter()
                .map(|b| BrokerDescription {
                    node_id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                })
                .collect();
            brokers.sort_by_key(|b| b.node_id);
            Ok(ClusterDescription {
                cluster_id: resp.cluster_id.to_string(),
                controller_id: resp.controller_id.0,
                brokers,
            })
        })
        .await
    }

    /// Where a config request goes: a broker's own configs to that broker (as Kafka
    /// requires), everything else to any broker.
    async fn config_conn(&self, resource: &ConfigResource) -> Result<Arc<Connection>> {
        let node = match resource.kind {
            ResourceKind::Broker => resource.name.parse::<i32>().ok(),
            ResourceKind::Topic => None,
        };
        let Some(node) = node else {
            return self.cluster.any_conn().await;
        };
        if !self.cluster.view().brokers.contains_key(&node) {
            self.cluster.refresh(Some(&[]), false).await?;
        }
        if self.cluster.view().brokers.contains_key(&node) {
            self.cluster.conn(node, Lane::Data).await
        } else {
            // No such broker: any broker says so with a proper error.
            self.cluster.any_conn().await
        }
    }
}
