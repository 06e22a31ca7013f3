//! The consumer: subscribe (or assign), `poll` records, commit offsets.
//!
//! ```no_run
//! # async fn f() -> strand_client::Result<()> {
//! use std::time::Duration;
//! use strand_client::{Config, Consumer};
//! let mut consumer = Consumer::new(Config::from([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("group.id", "billing"),
//!     ("auto.offset.reset", "earliest"),
//! ]))?;
//! consumer.subscribe(&["orders"])?;
//! loop {
//!     for r in consumer.poll(Duration::from_millis(500)).await? {
//!         println!("{}-{}@{}: {:?}", r.topic, r.partition, r.offset, r.value);
//!     }
//!     consumer.commit_sync().await?;
//! }
//! # }
//! ```
//!
//! Like the Java consumer, one application task drives it (`&mut self`); a background fetcher
//! prefetches records into a buffer and a background heartbeat keeps the group membership
//! alive between polls. Rebalances run inside `poll`, where the [`RebalanceListener`] is
//! called, so an application can commit what it processed before its partitions move.

pub mod assignor;
mod fetcher;
mod group;
mod offsets;
pub mod records;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::config::{ClientConfig, Config};
use crate::error::{Error, Result};
use crate::types::TopicPartition;
use assignor::Assignor;
use fetcher::{FetchSettings, Fetcher};
pub use group::{RebalanceListener, Revocation};
pub use records::{ConsumerRecord, TimestampType};

/// `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    None,
}

/// `group.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupProtocol {
    Classic,
    /// KIP-848: the broker assigns partitions; members heartbeat with ConsumerGroupHeartbeat.
    Consumer,
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub client: ClientConfig,
    pub group_id: Option<String>,
    pub group_instance_id: Option<String>,
    pub group_protocol: GroupProtocol,
    pub remote_assignor: Option<String>,
    pub auto_offset_reset: OffsetReset,
    pub enable_auto_commit: bool,
    pub auto_commit_interval: Duration,
    pub max_poll_records: usize,
    pub max_poll_interval: Duration,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub assignors: Vec<Assignor>,
    pub isolation_level: i8,
    pub default_api_timeout: Duration,
    pub(crate) fetch: FetchSettings,
}

impl ConsumerConfig {
    pub fn from_config(c: &Config) -> Result<Self> {
        let auto_offset_reset = match c
            .string("auto.offset.reset", "latest")
            .to_ascii_lowercase()
            .as_str()
        {
            "earliest" | "smallest" | "beginning" => OffsetReset::Earliest,
            "latest" | "largest" | "end" => OffsetReset::Latest,
            "none" | "error" => OffsetReset::None,
            other => {
                return Err(Error::Config(format!(
                    "auto.offset.reset={other:?}: use earliest, latest or none"
                )))
            }
        };
        let group_protocol = match c
            .string("group.protocol", "classic")
            .to_ascii_lowercase()
            .as_str()
        {
            "classic" => GroupProtocol::Classic,
            "consumer" => GroupProtocol::Consumer,
            other => {
                return Err(Error::Config(format!(
                    "group.protocol={other:?}: use classic or consumer"
                )))
            }
        };
        let strategies = c.string("partition.assignment.strategy", "range,cooperative-sticky");
        let assignors = strategies
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                Assignor::parse(s).ok_or_else(|| {
                    Error::Config(format!(
                        "partition.assignment.strategy: unknown assignor {s:?}"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if assignors.is_empty() {
            return Err(Error::Config(
                "partition.assignment.strategy is empty".into(),
            ));
        }
        let isolation_level = match c.string("isolation.level", "read_uncommitted").as_str() {
            "read_uncommitted" => 0,
            "read_committed" => 1,
            other => return Err(Error::Config(format!("isolation.level={other:?}"))),
        };
        let group_id = c
            .get("group.id")
            .filter(|g| !g.is_empty())
            .map(str::to_string);
        let max_poll_records: usize = c.parse("max.poll.records", 500usize)?;
        if max_poll_records == 0 {
            return Err(Error::Config("max.poll.records must be at least 1".into()));
        }
        Ok(Self {
            client: ClientConfig::from_config(c, 30_000)?,
            enable_auto_commit: c.bool("enable.auto.commit", group_id.is_some())?,
            group_id,
            group_instance_id: c
                .get("group.instance.id")
                .filter(|g| !g.is_empty())
                .map(str::to_string),
            group_protocol,
            remote_assignor: c.get("group.remote.assignor").map(str::to_string),
            auto_offset_reset,
            auto_commit_interval: c.ms("auto.commit.interval.ms", 5_000)?,
            max_poll_records,
            max_poll_interval: c.ms("max.poll.interval.ms", 300_000)?,
            session_timeout: c.ms("session.timeout.ms", 45_000)?,
            heartbeat_interval: c.ms("heartbeat.interval.ms", 3_000)?,
            assignors,
            isolation_level,
            default_api_timeout: c.ms("default.api.timeout.ms", 60_000)?,
            fetch: FetchSettings {
                min_bytes: c.parse("fetch.min.bytes", 1i32)?,
                max_bytes: c.parse("fetch.max.bytes", 52_428_800i32)?,
                max_wait: c.ms("fetch.max.wait.ms", 500)?,
                partition_max_bytes: c.parse("max.partition.fetch.bytes", 1_048_576i32)?,
                isolation_level,
                prefetch_bytes_max: c.parse("strand.prefetch.bytes.max", 64usize << 20)?,
            },
        })
    }
}

enum Subscription {
    None,
    Topics,
    Manual,
}

/// An async Kafka consumer.
pub struct Consumer {
    cfg: ConsumerConfig,
    cluster: Arc<Cluster>,
    fetcher: Arc<Fetcher>,
    fetch_task: tokio::task::JoinHandle<()>,
    subscription: Subscription,
    group: Option<group::Group>,
    listener: Option<std::sync::Mutex<Box<dyn RebalanceListener>>>,
    next_auto_commit: Instant,
    async_commits: Vec<tokio::task::JoinHandle<()>>,
}

impl Consumer {
    /// Creates a consumer; must be called inside a Tokio runtime. Connects lazily.
    pub fn new(config: Config) -> Result<Self> {
        let cfg = ConsumerConfig::from_config(&config)?;
        let cluster = Cluster::new(cfg.client.clone());
        let fetcher = Fetcher::new();
        let fetch_task = tokio::spawn(fetcher::run(
            fetcher.clone(),
            cluster.clone(),
            cfg.fetch.clone(),
        ));
        let group = cfg
            .group_id
            .clone()
            .map(|id| group::Group::new(id, &cfg, cluster.clone()));
        Ok(Self {
            next_auto_commit: Instant::now() + cfg.auto_commit_interval,
            cfg,
            cluster,
            fetcher,
            fetch_task,
            subscription: Subscription::None,
            group,
            listener: None,
            async_commits: Vec::new(),
        })
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.cfg
    }

    /// The group and this member's place in it, for a transactional producer's
    /// `send_offsets_to_transaction` (the Java client's `groupMetadata()`).
    pub fn group_metadata(&self) -> Option<crate::ConsumerGroupMetadata> {
        let g = self.group.as_ref()?;
        let shared = g.shared();
        let (member_id, generation_id, group_instance_id) = shared.identity();
        Some(crate::ConsumerGroupMetadata {
            group_id: shared.id.clone(),
            generation_id,
            member_id,
            group_instance_id,
        })
    }

    /// Joins the group (on the next `poll`) to consume `topics`.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        self.subscribe_with(topics, None)
    }

    /// Like [`subscribe`](Self::subscribe), with a listener told of every revocation and
    /// assignment.
    pub fn subscribe_with(
        &mut self,
        topics: &[&str],
        listener: Option<Box<dyn RebalanceListener>>,
    ) -> Result<()> {
        let Some(g) = self.group.as_mut() else {
            return Err(Error::Config("subscribe needs group.id".into()));
        };
        if matches!(self.subscription, Subscription::Manual) {
            return Err(Error::Config(
                "subscribe after assign: call unsubscribe first".into(),
            ));
        }
        let mut topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        topics.sort();
        topics.dedup();
        g.set_subscription(topics);
        self.subscription = Subscription::Topics;
        self.listener = listener.map(std::sync::Mutex::new);
        Ok(())
    }

    /// Reads `partitions` without a group (offsets can still be committed with `group.id`).
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        if matches!(self.subscription, Subscription::Topics) {
            return Err(Error::Config(
                "assign after subscribe: call unsubscribe first".into(),
            ));
        }
        self.subscription = Subscription::Manual;
        let wanted: BTreeSet<&TopicPartition> = partitions.iter().collect();
        let mut st = self.fetcher.lock();
        st.parts.retain(|tp, _| wanted.contains(tp));
        for tp in partitions {
            st.parts.entry(tp.clone()).or_default();
        }
        drop(st);
        self.fetcher.wake.notify_one();
        Ok(())
    }

    /// Leaves the group (revoking its partitions) or drops the manual assignment.
    pub async fn unsubscribe(&mut self) -> Result<()> {
        if matches!(self.subscription, Subscription::Topics) {
            self.leave_group().await?;
        }
        self.subscription = Subscription::None;
        self.fetcher.lock().parts.clear();
        Ok(())
    }

    /// The partitions currently assigned.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.fetcher.lock().parts.keys().cloned().collect()
    }

    /// Records that arrived, waiting up to `timeout` for some. Rebalances, offset resets,
    /// auto-commits and the rebalance listener all run in here.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        if let Some(g) = &self.group {
            g.polled();
        }
        let fetcher = self.fetcher.clone();
        loop {
            let data = fetcher.data.notified();
            tokio::pin!(data);
            data.as_mut().enable();
            if matches!(self.subscription, Subscription::Topics) {
                self.ensure_group(deadline).await?;
            }
            self.maybe_auto_commit();
            self.update_positions(deadline).await?;
            let records = {
                let mut st = self.fetcher.lock();
                let error = st.parts.values_mut().find_map(|p| p.error.take());
                if let Some(e) = error {
                    return Err(e);
                }
                st.drain(self.cfg.max_poll_records)
            };
            if !records.is_empty() {
                self.fetcher.wake.notify_one();
                return Ok(records);
            }
            self.fetcher.wake.notify_one();
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            // Group events (a rebalance, a lost membership) are checked at least every 100 ms.
            let slice = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(slice, data).await;
        }
    }

    /// Positions that need one: committed offsets first (in a group), then `auto.offset.reset`.
    async fn update_positions(&mut self, deadline: Instant) -> Result<()> {
        let (missing, out_of_range): (Vec<TopicPartition>, Vec<TopicPartition>) = {
            let st = self.fetcher.lock();
            (
                st.parts
                    .iter()
                    .filter(|(_, p)| p.position.is_none())
                    .map(|(tp, _)| tp.clone())
                    .collect(),
                st.parts
                    .iter()
                    .filter(|(_, p)| p.out_of_range)
                    .map(|(tp, _)| tp.clone())
                    .collect(),
            )
        };
        if missing.is_empty() && out_of_range.is_empty() {
            return Ok(());
        }
        let mut to_reset: Vec<TopicPartition> = out_of_range;
        if !missing.is_empty() {
            let committed = match &self.group {
                Some(g) => {
                    offsets::fetch_committed(
                        &self.cluster,
                        g,
                        &missing,
                        deadline.max(Instant::now() + self.cfg.default_api_timeout),
                    )
                    .await?
                }
                None => BTreeMap::new(),
            };
            let mut st = self.fetcher.lock();
            for tp in &missing {
                match committed.get(tp) {
                    Some(&o) if o >= 0 => {
                        if let Some(p) = st.parts.get_mut(tp) {
                            if p.position.is_none() {
                                p.seek(o);
                            }
                        }
                    }
                    _ => to_reset.push(tp.clone()),
                }
            }
        }
        if to_reset.is_empty() {
            self.fetcher.wake.notify_one();
            return Ok(());
        }
        let spec = match self.cfg.auto_offset_reset {
            OffsetReset::Earliest => -2,
            OffsetReset::Latest => -1,
            OffsetReset::None => {
                let tp = &to_reset[0];
                return Err(Error::kafka(
                    1,
                    format!(
                        "{tp}: no committed offset or out of range, and auto.offset.reset=none"
                    ),
                ));
            }
        };
        let found =
            offsets::list_offsets(&self.cluster, &to_reset, spec, self.cfg.isolation_level).await?;
        let mut st = self.fetcher.lock();
        for (tp, offset) in found {
            if let Some(p) = st.parts.get_mut(&tp) {
                if p.position.is_none() || p.out_of_range {
                    tracing::debug!(%tp, offset, "position reset");
                    p.seek(offset);
                }
            }
        }
        drop(st);
        self.fetcher.wake.notify_one();
        Ok(())
    }

    fn maybe_auto_commit(&mut self) {
        if !self.cfg.enable_auto_commit || Instant::now() < self.next_auto_commit {
            return;
        }
        self.next_auto_commit = Instant::now() + self.cfg.auto_commit_interval;
        self.commit_async(None);
    }

    /// Current positions of all assigned partitions that have one.
    pub fn positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.fetcher
            .lock()
            .parts
            .iter()
            .filter_map(|(tp, p)| p.position.map(|o| (tp.clone(), o)))
            .collect()
    }

    /// Commits the positions of every assigned partition and waits for the answer.
    pub async fn commit_sync(&mut self) -> Result<()> {
        let positions = self.positions();
        self.commit_offsets_sync(positions).await
    }

    /// Commits `offsets` (the next offset to read, per partition) and waits.
    pub async fn commit_offsets_sync(
        &mut self,
        offsets: BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        let Some(g) = &self.group else {
            return Err(Error::Config("committing offsets needs group.id".into()));
        };
        if offsets.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.cfg.default_api_timeout;
        offsets::commit(&self.cluster, g.shared(), &offsets, deadline).await
    }

    /// Commits the current positions in the background; `callback` gets the outcome.
    pub fn commit_async(&mut self, callback: Option<Box<dyn FnOnce(Result<()>) + Send>>) {
        self.async_commits.retain(|t| !t.is_finished());
        let Some(g) = &self.group else {
            if let Some(cb) = callback {
                cb(Err(Error::Config(
                    "committing offsets needs group.id".into(),
                )));
            }
            return;
        };
        let offsets = self.positions();
        let (cluster, shared) = (self.cluster.clone(), g.shared().clone());
        let deadline = Instant::now() + self.cfg.default_api_timeout;
        self.async_commits.push(tokio::spawn(async move {
            let r = if offsets.is_empty() {
                Ok(())
            } else {
                offsets::commit(&cluster, &shared, &offsets, deadline).await
            };
            if let Err(e) = &r {
                tracing::debug!(error = %e, "async commit failed");
            }
            if let Some(cb) = callback {
                cb(r);
            }
        }));
    }

    /// The committed offsets of `partitions` (`None`: nothing committed).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        let Some(g) = &self.group else {
            return Err(Error::Config("committed offsets need group.id".into()));
        };
        let deadline = Instant::now() + self.cfg.default_api_timeout;
        let found = offsets::fetch_committed(&self.cluster, g, partitions, deadline).await?;
        Ok(partitions
            .iter()
            .map(|tp| (tp.clone(), found.get(tp).copied().filter(|o| *o >= 0)))
            .collect())
    }

    /// The next `poll` returns records of `tp` from `offset`.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let mut st = self.fetcher.lock();
        let p = st
            .parts
            .get_mut(tp)
            .ok_or_else(|| Error::Config(format!("seek: {tp} is not assigned")))?;
        p.seek(offset);
        drop(st);
        self.fetcher.wake.notify_one();
        Ok(())
    }

    pub async fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_to(partitions, -2).await
    }

    pub async fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_to(partitions, -1).await
    }

    async fn seek_to(&mut self, partitions: &[TopicPartition], spec: i64) -> Result<()> {
        let found =
            offsets::list_offsets(&self.cluster, partitions, spec, self.cfg.isolation_level)
                .await?;
        for (tp, o) in found {
            self.seek(&tp, o)?;
        }
        Ok(())
    }

    /// The offset of the next record `poll` returns for `tp`.
    pub async fn position(&mut self, tp: &TopicPartition) -> Result<i64> {
        let deadline = Instant::now() + self.cfg.default_api_timeout;
        if !self.fetcher.lock().parts.contains_key(tp) {
            return Err(Error::Config(format!("position: {tp} is not assigned")));
        }
        self.update_positions(deadline).await?;
        self.fetcher
            .lock()
            .parts
            .get(tp)
            .and_then(|p| p.position)
            .ok_or_else(|| Error::Timeout(format!("no position for {tp}")))
    }

    /// Stops returning records of `partitions` until [`resume`](Self::resume); the group
    /// membership is kept.
    pub fn pause(&mut self, partitions: &[TopicPartition]) {
        let mut st = self.fetcher.lock();
        for tp in partitions {
            if let Some(p) = st.parts.get_mut(tp) {
                p.paused = true;
            }
        }
    }

    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        let mut st = self.fetcher.lock();
        for tp in partitions {
            if let Some(p) = st.parts.get_mut(tp) {
                p.paused = false;
            }
        }
        drop(st);
        self.fetcher.wake.notify_one();
    }

    pub fn paused(&self) -> Vec<TopicPartition> {
        self.fetcher
            .lock()
            .parts
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The high watermark last seen for `tp` in a fetch.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.fetcher.lock().parts.get(tp).map(|p| p.high_watermark)
    }

    /// Commits (with auto-commit on), leaves the group, stops the fetcher.
    pub async fn close(mut self) -> Result<()> {
        let mut result = Ok(());
        if self.cfg.enable_auto_commit && self.group.is_some() {
            if let Err(e) = self.commit_sync().await {
                tracing::debug!(error = %e, "commit on close failed");
            }
        }
        for t in self.async_commits.drain(..) {
            let _ = t.await;
        }
        if matches!(self.subscription, Subscription::Topics) {
            result = self.leave_group().await;
        }
        self.shutdown();
        result
    }

    fn shutdown(&mut self) {
        self.fetcher.lock().closed = true;
        self.fetcher.wake.notify_one();
        self.fetch_task.abort();
        if let Some(g) = &self.group {
            g.stop();
        }
    }

    fn parts_mut(&self) -> std::sync::MutexGuard<'_, fetcher::FetchState> {
        self.fetcher.lock()
    }

    /// Replaces the assignment with `partitions`; new ones start without a position.
    fn set_assignment(&self, partitions: &[TopicPartition]) {
        let wanted: BTreeSet<&TopicPartition> = partitions.iter().collect();
        let mut st = self.parts_mut();
        st.parts.retain(|tp, _| wanted.contains(tp));
        for tp in partitions {
            st.parts.entry(tp.clone()).or_default();
        }
        drop(st);
        self.fetcher.wake.notify_one();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
