//! What the client knows of the cluster: brokers, topics, partition leaders, and one pool of
//! connections shared by everything a client does.
//!
//! Metadata is an immutable snapshot swapped on refresh; readers clone an `Arc` and never wait.
//! Connections are keyed by broker and *lane*: fetches that long-poll and group requests that
//! must not queue behind them get their own connection to the same broker, as the Java client
//! does for its coordinator.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::config::ClientConfig;
use crate::conn::Connection;
use crate::error::{Error, Result};

/// Which connection to a broker a request travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lane {
    /// Produce, metadata, admin, offsets.
    Data,
    /// Long-polling fetches.
    Fetch,
    /// Group coordination: heartbeats must not wait behind a fetch.
    Group,
}

#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error_code: i16,
}

#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    pub error_code: i16,
    pub id: uuid::Uuid,
    pub internal: bool,
    /// Indexed by partition number.
    pub partitions: Vec<PartitionInfo>,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    pub brokers: HashMap<i32, String>,
    pub topics: HashMap<String, TopicInfo>,
    pub controller_id: i32,
    pub cluster_id: Option<String>,
}

impl ClusterView {
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let t = self.topics.get(topic)?;
        let p = t.partitions.get(usize::try_from(partition).ok()?)?;
        (p.leader >= 0 && self.brokers.contains_key(&p.leader)).then_some(p.leader)
    }

    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        let t = self.topics.get(topic)?;
        (t.error_code == 0 && !t.partitions.is_empty()).then_some(t.partitions.len())
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

pub(crate) struct Cluster {
    pub cfg: ClientConfig,
    view: RwLock<(Arc<ClusterView>, Option<Instant>)>,
    slots: Mutex<HashMap<(i32, Lane), Slot>>,
    next_bootstrap: AtomicUsize,
}

impl Cluster {
    pub fn new(cfg: ClientConfig) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            view: RwLock::new((Arc::default(), None)),
            slots: Mutex::default(),
            next_bootstrap: AtomicUsize::new(0),
        })
    }

    pub fn view(&self) -> Arc<ClusterView> {
        self.view
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// Whether the cached metadata is older than `metadata.max.age.ms` (or missing).
    pub fn is_stale(&self) -> bool {
        let g = self.view.read().unwrap_or_else(|p| p.into_inner());
        g.1.is_none_or(|t| t.elapsed() >= self.cfg.metadata_max_age)
    }

    /// A connection to broker `node` on `lane`, opened on first use and reopened when it broke.
    pub async fn conn(&self, node: i32, lane: Lane) -> Result<Arc<Connection>> {
        let addr = if node < 0 {
            None
        } else {
            Some(
                self.view()
                    .brokers
                    .get(&node)
                    .cloned()
                    .ok_or_else(|| Error::Transport {
                        addr: format!("node {node}"),
                        message: "broker not in metadata".into(),
                    })?,
            )
        };
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry((node, lane)).or_default().clone()
        };
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref() {
            if !c.is_dead() && addr.as_deref().is_none_or(|a| a == c.addr) {
                return Ok(c.clone());
            }
        }
        let c = match addr {
            Some(a) => self.open(&a).await?,
            None => self.open_bootstrap().await?,
        };
        *guard = Some(c.clone());
        Ok(c)
    }

    async fn open(&self, addr: &str) -> Result<Arc<Connection>> {
        Connection::connect(
            addr,
            &self.cfg.client_id,
            self.cfg.connection_setup_timeout,
            self.cfg.request_timeout,
            self.cfg.response_bytes_max,
        )
        .await
    }

    /// Tries the known brokers, then the bootstrap list, starting at a rotating position.
    async fn open_bootstrap(&self) -> Result<Arc<Connection>> {
        let mut addrs: Vec<String> = self.view().brokers.values().cloned().collect();
        addrs.sort();
        addrs.extend(self.cfg.bootstrap_servers.iter().cloned());
        let start = self.next_bootstrap.fetch_add(1, Ordering::Relaxed);
        let mut last = None;
        for i in 0..addrs.len() {
            match self.open(&addrs[(start + i) % addrs.len()]).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Config("no bootstrap servers".into())))
    }

    /// Any live broker (for metadata and cluster-wide admin requests).
    pub async fn any_conn(&self) -> Result<Arc<Connection>> {
        self.conn(-1, Lane::Data).await
    }

    /// Asks for metadata of `topics` (`None`: all topics) and merges it into the cache.
    pub async fn refresh(
        &self,
        topics: Option<&[String]>,
        allow_auto_create: bool,
    ) -> Result<Arc<ClusterView>> {
        let conn = self.any_conn().await?;
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(allow_auto_create);
        let resp = conn.send(&req).await?;
        let mut next = ClusterView {
            brokers: resp
                .brokers
                .iter()
                .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
                .collect(),
            topics: if topics.is_some() {
                self.view().topics.clone()
            } else {
                HashMap::new()
            },
            controller_id: resp.controller_id.0,
            cluster_id: resp.cluster_id.as_ref().map(|s| s.to_string()),
        };
        for t in &resp.topics {
            let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                continue;
            };
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                    isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            if partitions
                .iter()
                .enumerate()
                .any(|(i, p)| p.partition != i as i32)
            {
                return Err(Error::protocol(format!(
                    "metadata for {name}: partitions are not numbered 0..n"
                )));
            }
            if t.error_code != 0 && partitions.is_empty() {
                next.topics.remove(&name);
            }
            next.topics.insert(
                name.clone(),
                TopicInfo {
                    name,
                    error_code: t.error_code,
                    id: t.topic_id,
                    internal: t.is_internal,
                    partitions,
                },
            );
        }
        let next = Arc::new(next);
        *self.view.write().unwrap_or_else(|p| p.into_inner()) =
            (next.clone(), Some(Instant::now()));
        Ok(next)
    }

    /// The topic's metadata, fetched (and auto-created if allowed) until it has partitions
    /// with leaders or `deadline` passes.
    pub async fn wait_topic(
        &self,
        topic: &str,
        allow_auto_create: bool,
        deadline: Instant,
    ) -> Result<TopicInfo> {
        if let Some(t) = self.view().topics.get(topic) {
            if t.error_code == 0 && !t.partitions.is_empty() && !self.is_stale() {
                return Ok(t.clone());
            }
        }
        let names = [topic.to_string()];
        loop {
            let last = match self.refresh(Some(&names), allow_auto_create).await {
                Ok(view) => match view.topics.get(topic) {
                    Some(t) if t.error_code == 0 && !t.partitions.is_empty() => {
                        return Ok(t.clone())
                    }
                    Some(t) => Error::kafka(t.error_code, format!("topic {topic}")),
                    None => Error::kafka(3, format!("topic {topic}")),
                },
                Err(e) => e,
            };
            if !last.is_retriable() || Instant::now() + self.cfg.retry_backoff >= deadline {
                return Err(last);
            }
            tokio::time::sleep(self.cfg.retry_backoff).await;
        }
    }

    /// Refreshes in the background-friendly way: at most once per `retry.backoff.ms`.
    pub async fn refresh_soon(&self, topics: &[String]) {
        let recent = {
            let g = self.view.read().unwrap_or_else(|p| p.into_inner());
            g.1.is_some_and(|t| t.elapsed() < self.cfg.retry_backoff)
        };
        if !recent {
            if let Err(e) = self.refresh(Some(topics), false).await {
                tracing::debug!(error = %e, "metadata refresh failed");
            }
        }
    }

    pub fn backoff(&self) -> Duration {
        self.cfg.retry_backoff
    }
}

impl Cluster {
    /// The broker coordinating `key` (`key_type` 0: a group, 1: a transaction), retried while
    /// the coordinator is loading or not yet available.
    pub async fn find_coordinator(&self, key: &str, key_type: i8) -> Result<i32> {
        use kafka_protocol::messages::FindCoordinatorRequest;
        let deadline = Instant::now() + self.cfg.request_timeout;
        loop {
            let attempt = async {
                let conn = self.any_conn().await?;
                let v = conn.version_for::<FindCoordinatorRequest>()?;
                let mut req = FindCoordinatorRequest::default().with_key_type(key_type);
                if v >= 4 {
                    req.coordinator_keys = vec![StrBytes::from_string(key.to_string())];
                } else {
                    req.key = StrBytes::from_string(key.to_string());
                }
                let resp = conn.send_at(&req, v).await?;
                let (code, node, host, port) = if v >= 4 {
                    let c = resp
                        .coordinators
                        .first()
                        .ok_or_else(|| Error::protocol("FindCoordinator: empty answer"))?;
                    (c.error_code, c.node_id.0, c.host.to_string(), c.port)
                } else {
                    (
                        resp.error_code,
                        resp.node_id.0,
                        resp.host.to_string(),
                        resp.port,
                    )
                };
                crate::error::check(code, || format!("coordinator for {key}"))?;
                // Make sure the pool can reach the coordinator even before a metadata refresh.
                let known = self.view().brokers.contains_key(&node);
                if !known {
                    let mut v = (*self.view()).clone();
                    v.brokers.insert(node, format!("{host}:{port}"));
                    let mut g = self.view.write().unwrap_or_else(|p| p.into_inner());
                    g.0 = Arc::new(v);
                }
                Ok::<i32, Error>(node)
            };
            match attempt.await {
                Ok(n) => return Ok(n),
                Err(e)
                    if e.is_retriable() && Instant::now() + self.cfg.retry_backoff < deadline =>
                {
                    tokio::time::sleep(self.cfg.retry_backoff).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
