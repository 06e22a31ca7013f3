//! `strand configs`: describe and alter topic and broker configs (Kafka's `kafka-configs`).

use anyhow::{bail, Context};
use serde_json::json;
use strand_client::{Admin, AlterConfigOp, ConfigEntry, ConfigResource, ResourceKind};

use crate::client_args::{runtime, AdminArgs};
use crate::common::{self, split_config_list, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: AdminArgs,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Show configs: those set (dynamically or in the broker's file), or --all.
    Describe {
        #[command(flatten)]
        entity: Entity,
        /// Every config, defaults included.
        #[arg(long)]
        all: bool,
    },
    /// Set and delete configs, leaving the others as they are.
    Alter {
        #[command(flatten)]
        entity: Entity,
        /// Configs to set: KEY=VALUE[,KEY=VALUE...]; a list value goes in brackets
        /// (cleanup.policy=[compact,delete]). Repeatable.
        #[arg(long = "add-config", value_name = "KEY=VALUE,...")]
        add: Vec<String>,
        /// Configs to remove (back to their defaults): KEY[,KEY...]. Repeatable.
        #[arg(long = "delete-config", value_name = "KEY,...", value_delimiter = ',')]
        delete: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EntityType {
    Topics,
    Brokers,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Entity {
    #[arg(long, value_enum)]
    entity_type: EntityType,
    /// A topic name or broker id (describe: default every topic or broker).
    #[arg(long, value_name = "NAME")]
    entity_name: Option<String>,
    /// The cluster-wide default of every broker (brokers only).
    #[arg(long, conflicts_with = "entity_name")]
    entity_default: bool,
}

impl Entity {
    /// The one resource named; errors when none is.
    fn resource(&self) -> anyhow::Result<ConfigResource> {
        match (self.entity_type, &self.entity_name, self.entity_default) {
            (EntityType::Topics, _, true) => bail!("--entity-default is for brokers only"),
            (EntityType::Topics, Some(n), false) => Ok(ConfigResource::topic(n)),
            (EntityType::Brokers, Some(n), false) => {
                let id: i32 = n.parse().with_context(|| format!("broker id {n:?}"))?;
                Ok(ConfigResource::broker(id))
            }
            (EntityType::Brokers, None, true) => Ok(ConfigResource::broker_default()),
            (EntityType::Brokers, Some(_), true) => {
                bail!("give --entity-name or --entity-default, not both")
            }
            (_, None, false) => bail!("give --entity-name (or, for brokers, --entity-default)"),
        }
    }

    /// The resources named, or every topic or broker when none is.
    async fn resources(&self, admin: &Admin) -> anyhow::Result<Vec<ConfigResource>> {
        if self.entity_name.is_some() || self.entity_default {
            return Ok(vec![self.resource()?]);
        }
        Ok(match self.entity_type {
            EntityType::Topics => admin
                .list_topics(true)
                .await?
                .into_iter()
                .map(ConfigResource::topic)
                .collect(),
            EntityType::Brokers => admin
                .describe_cluster()
                .await?
                .brokers
                .iter()
                .map(|b| ConfigResource::broker(b.node_id))
                .collect(),
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.client.admin()?;
    let json = args.client.json();
    let out = runtime()?.block_on(execute(&admin, args.command, json))?;
    common::print(&out)
}

async fn execute(admin: &Admin, cmd: Cmd, json: bool) -> anyhow::Result<String> {
    match cmd {
        Cmd::Describe { entity, all } => {
            let mut described = Vec::new();
            for r in entity.resources(admin).await? {
                let mut entries = admin.describe_configs(r.clone()).await?;
                entries.retain(|e| all || !e.is_default);
                entries.sort_by(|a, b| a.name.cmp(&b.name));
                described.push((r, entries));
            }
            Ok(if json {
                common::json(&describe_json(&described))
            } else {
                describe_text(&described, all)
            })
        }
        Cmd::Alter {
            entity,
            add,
            delete,
        } => {
            let resource = entity.resource()?;
            let mut set = Vec::new();
            for a in &add {
                set.extend(split_config_list(a).context("--add-config")?);
            }
            let delete: Vec<String> = delete
                .iter()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect();
            if set.is_empty() && delete.is_empty() {
                bail!("nothing to alter: give --add-config or --delete-config");
            }
            if let Some((k, _)) = set.iter().find(|(k, _)| delete.contains(k)) {
                bail!("{k} is both added and deleted");
            }
            let ops = set
                .iter()
                .map(|(k, v)| AlterConfigOp::set(k, v))
                .chain(delete.iter().map(AlterConfigOp::delete))
                .collect();
            admin
                .incremental_alter_configs(resource.clone(), ops)
                .await?;
            Ok(if json {
                let set: serde_json::Map<String, serde_json::Value> =
                    set.into_iter().map(|(k, v)| (k, json!(v))).collect();
                common::json(&json!({
                    "entity_type": kind_name(resource.kind),
                    "entity_name": resource.name,
                    "set": set,
                    "deleted": delete,
                }))
            } else if resource.kind == ResourceKind::Broker && resource.name.is_empty() {
                "Completed updating default config for brokers in the cluster.\n".into()
            } else {
                format!(
                    "Completed updating config for {} {}.\n",
                    singular(resource.kind),
                    resource.name
                )
            })
        }
    }
}

fn kind_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Topic => "topics",
        ResourceKind::Broker => "brokers",
    }
}

fn singular(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Topic => "topic",
        ResourceKind::Broker => "broker",
    }
}

fn shown_value(e: &ConfigEntry) -> String {
    match (&e.value, e.sensitive) {
        (_, true) => "(sensitive)".into(),
        (Some(v), false) => v.clone(),
        (None, false) => "null".into(),
    }
}

fn describe_text(described: &[(ConfigResource, Vec<ConfigEntry>)], all: bool) -> String {
    let mut out = String::new();
    for (i, (r, entries)) in described.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let what = if r.kind == ResourceKind::Broker && r.name.is_empty() {
            "the default of every broker".to_string()
        } else {
            format!("{} {}", singular(r.kind), r.name)
        };
        let which = if all { "All configs" } else { "Configs set" };
        out += &format!("{which} for {what}:\n");
        if entries.is_empty() {
            out += "(none)\n";
            continue;
        }
        let mut table = Table::new(&["NAME", "VALUE", "SOURCE", "READ-ONLY"]);
        for e in entries {
            table.row(vec![
                e.name.clone(),
                shown_value(e),
                e.source.clone(),
                e.read_only.to_string(),
            ]);
        }
        out += &table.render();
    }
    out
}

fn describe_json(described: &[(ConfigResource, Vec<ConfigEntry>)]) -> serde_json::Value {
    json!(described
        .iter()
        .map(|(r, entries)| json!({
            "entity_type": kind_name(r.kind),
            "entity_name": r.name,
            "configs": entries.iter().map(|e| json!({
                "name": e.name,
                "value": if e.sensitive { None } else { e.value.clone() },
                "source": e.source,
                "read_only": e.read_only,
                "is_default": e.is_default,
                "sensitive": e.sensitive,
            })).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entity(t: EntityType, name: Option<&str>, default: bool) -> Entity {
        Entity {
            entity_type: t,
            entity_name: name.map(String::from),
            entity_default: default,
        }
    }

    #[test]
    fn entities_name_one_resource() {
        use EntityType::*;
        assert_eq!(
            entity(Topics, Some("t"), false).resource().unwrap(),
            ConfigResource::topic("t")
        );
        assert_eq!(
            entity(Brokers, Some("3"), false).resource().unwrap(),
            ConfigResource::broker(3)
        );
        assert_eq!(
            entity(Brokers, None, true).resource().unwrap(),
            ConfigResource::broker_default()
        );
        assert!(entity(Brokers, Some("x"), false).resource().is_err());
        assert!(entity(Topics, None, true).resource().is_err());
        assert!(entity(Topics, None, false).resource().is_err());
    }

    #[test]
    fn sensitive_values_are_not_printed() {
        let e = ConfigEntry {
            name: "sasl.jaas.config".into(),
            value: Some("secret".into()),
            source: "DYNAMIC_BROKER_CONFIG".into(),
            read_only: false,
            is_default: false,
            sensitive: true,
        };
        let d = vec![(ConfigResource::broker(1), vec![e])];
        let text = describe_text(&d, false);
        assert!(text.starts_with("Configs set for broker 1:\n"));
        assert!(
            text.contains("(sensitive)") && !text.contains("secret"),
            "{text}"
        );
        assert_eq!(describe_json(&d)[0]["configs"][0]["value"], json!(null));
    }
}
