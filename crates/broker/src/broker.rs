//! The broker's shared state: the metadata image, the partitions it leads, and the controller
//! path through which every metadata change goes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use strand_metadata::config::{resolve_topic_configs, BrokerDefaults, ResolvedConfig};
use strand_metadata::controller::{ApiError, ControllerConfig};
use strand_metadata::{LocalQuorum, MetadataImage, MetadataRecord, TopicImage};
use strand_storage::{LogConfig, LogManager};
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::flusher::Flusher;
use crate::partition::{Partition, TopicPartition};

use crate::controller_client::ControllerClient;
pub use crate::controller_client::Decision;
use strand_metadata::ControllerRequest;

/// Directory (in the first log dir) holding the metadata log.
pub const METADATA_DIR: &str = "strand-metadata";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] strand_storage::LogError),
    #[error(transparent)]
    Metadata(#[from] strand_metadata::QuorumError),
    #[error("{0}")]
    Other(String),
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    image: RwLock<Arc<MetadataImage>>,
    controller: ControllerClient,
    pub logs: LogManager,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    pub flusher: Flusher,
    pub groups: crate::groups::Groups,
    pub txns: crate::txns::Txns,
    pub producer_ids: crate::producer_ids::ProducerIds,
    appended: watch::Sender<u64>,
    /// Tickers, retention, the cleaner: stopped and joined before the logs close.
    pub background: Arc<crate::background::Background>,
    /// Held while the checkpoint files are written: writers (DeleteRecords, retention, the
    /// shutdown) run on blocking threads and share each file's `.tmp`, so they take turns.
    /// True once the shutdown has written the last checkpoints; nobody writes after it.
    checkpoints_closed: std::sync::Mutex<bool>,
}

impl Broker {
    /// Opens the metadata log and every partition log, recovering what a crash left behind,
    /// and registers this broker. Must run inside a Tokio runtime (it starts the flusher).
    pub fn open(config: BrokerConfig) -> Result<Arc<Self>, StartError> {
        let logs = LogManager::open(config.log_dirs.clone())?;
        let cluster_id = crate::meta_properties::ensure(&config.log_dirs, config.node_id)
            .map_err(StartError::Other)?;
        let (quorum, report) = LocalQuorum::open(
            &config.log_dirs[0].join(METADATA_DIR),
            config.node_id,
            config.metadata_snapshot_records,
        )?;
        if report.truncated_bytes > 0 {
            tracing::warn!(?report, "metadata log had a torn tail");
        }
        let controller_config = ControllerConfig {
            num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
        };
        let controller = ControllerClient::new(Arc::new(quorum), controller_config);
        let image = controller.image();
        tracing::info!(
            offset = image.offset,
            topics = image.topics.len(),
            "metadata replayed"
        );
        let (appended, _) = watch::channel(0);
        let groups = crate::groups::new_groups(config.groups.clone());
        let txns = crate::txns::Txns::new(config.transactions.coordinator.clone());
        let broker = Arc::new(Self {
            groups,
            txns,
            producer_ids: Default::default(),
            config,
            cluster_id,
            image: RwLock::new(image),
            controller,
            logs,
            partitions: RwLock::new(HashMap::new()),
            flusher: Flusher::start(),
            appended,
            background: Default::default(),
            checkpoints_closed: std::sync::Mutex::new(false),
        });
        broker.load_partitions()?;
        broker.groups.load_all(&broker);
        crate::groups::start_ticker(&broker);
        crate::txns::start(&broker);
        start_retention(&broker);
        if broker.config.cleaner_enable {
            start_cleaner(&broker);
        }
        Ok(broker)
    }

    /// Registers this broker's endpoint if the image does not have it yet.
    pub async fn register(&self) -> Result<(), ApiError> {
        let request = ControllerRequest::RegisterBroker {
            node_id: self.config.node_id,
            host: self.config.advertised_host.clone(),
            port: i32::from(self.config.advertised_port),
            rack: None,
        };
        self.submit(request).await.map(|_| ())
    }

    /// Where a client that came in on `listener` reaches broker `b`: this broker's own entry
    /// is that listener's advertised endpoint, others' what they registered.
    pub fn endpoint_of(
        &self,
        b: &strand_metadata::BrokerImage,
        listener: &crate::listeners::Listener,
    ) -> (String, i32) {
        if b.node_id == self.config.node_id {
            (
                listener.advertised_host.clone(),
                i32::from(listener.advertised_port),
            )
        } else {
            (b.host.clone(), b.port)
        }
    }

    /// The request versions this broker serves (`strand.allow.old.protocol.versions`).
    pub fn api_table(&self) -> strand_protocol::api::ApiTable {
        strand_protocol::api::ApiTable {
            allow_old: self.config.allow_old_protocol_versions,
        }
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Has the controller decide `request` and commit its records; the committed image is
    /// then swapped in and partitions follow it. Returns the decision and the image after it.
    pub async fn submit(
        &self,
        request: ControllerRequest,
    ) -> Result<(Decision, Arc<MetadataImage>), ApiError> {
        let (decision, committed) = self.controller.submit(&request).await?;
        let Some(committed) = committed else {
            return Ok((decision, self.image()));
        };
        let after = committed.image;
        *self
            .image
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = after.clone();
        self.reconcile(&after, &decision.records);
        Ok((decision, after))
    }

    /// The metadata quorum as DescribeQuorum reports it.
    pub fn describe_quorum(&self, now_ms: i64) -> strand_metadata::QuorumDescription {
        self.controller.describe_quorum(now_ms)
    }

    /// The id of the log dir that holds the metadata log (its `meta.properties`
    /// `directory.id`; nil if it has none).
    pub fn metadata_directory_id(&self) -> uuid::Uuid {
        crate::meta_properties::read(&self.config.log_dirs[0])
            .ok()
            .flatten()
            .and_then(|m| m.directory_id)
            .and_then(|d| crate::meta_properties::uuid_of(&d))
            .unwrap_or_default()
    }

    /// The decision `request` would get now, with nothing committed (`validate_only`).
    pub fn decide(&self, request: &ControllerRequest) -> Result<Decision, ApiError> {
        self.controller.decide(request)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let tp = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        self.partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&tp)
            .cloned()
    }

    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Signals fetch waiters that data arrived.
    pub fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Every topic config of `topic`, resolved through the broker levels.
    pub fn resolved_topic_configs(
        &self,
        image: &MetadataImage,
        topic: &TopicImage,
    ) -> Vec<ResolvedConfig> {
        resolve_topic_configs(&topic.configs, &self.broker_defaults(image))
    }

    pub fn broker_defaults<'a>(&'a self, image: &'a MetadataImage) -> BrokerDefaults<'a> {
        BrokerDefaults {
            dynamic_broker: image.broker_configs.get(&Some(self.config.node_id)),
            dynamic_default: image.broker_configs.get(&None),
            static_config: Some(&self.config.static_config),
        }
    }

    fn log_config(&self, image: &MetadataImage, topic: &TopicImage) -> LogConfig {
        let resolved: BTreeMap<String, String> = self
            .resolved_topic_configs(image, topic)
            .into_iter()
            .map(|c| (c.name.to_string(), c.value))
            .collect();
        self.config.log_config_for(&resolved)
    }

    /// Opens the logs of every partition this broker leads, and removes logs of topics the
    /// image no longer has.
    fn load_partitions(&self) -> Result<(), StartError> {
        let image = self.image();
        let found = self.logs.discover()?;
        let mut map = HashMap::new();
        let now = now_ms();
        for f in &found {
            let topic = image
                .topic(&f.topic)
                .filter(|t| t.partitions.iter().any(|p| p.partition == f.partition));
            let Some(topic) = topic else {
                tracing::warn!(dir = %f.dir.display(), "removing the log of a partition the metadata does not have");
                let _ = std::fs::remove_dir_all(&f.dir);
                continue;
            };
            let (log, report) = self.logs.open_log(f, self.log_config(&image, topic), now)?;
            if report.truncated_bytes() > 0
                || !report.rebuilt_indexes.is_empty()
                || !report.dropped_segments.is_empty()
            {
                tracing::warn!(topic = %f.topic, partition = f.partition, ?report, "recovered partition log");
            }
            let epoch = topic
                .partitions
                .iter()
                .find(|p| p.partition == f.partition)
                .map_or(0, |p| p.leader_epoch);
            let tp = TopicPartition {
                topic: f.topic.clone(),
                partition: f.partition,
            };
            map.insert(
                tp.clone(),
                Arc::new(Partition::new(tp, topic.id, epoch, log)),
            );
        }
        *self
            .partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = map;
        // Partitions in the image with no directory (created just before a crash): create them.
        self.reconcile(&image, &[]);
        Ok(())
    }

    /// Makes the set of open partitions match `after`.
    fn reconcile(&self, after: &MetadataImage, records: &[MetadataRecord]) {
        let now = now_ms();
        let mut parts = self
            .partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Deleted topics: drop their partitions and delete their logs.
        let gone: Vec<TopicPartition> = parts
            .iter()
            .filter(|(tp, p)| {
                after.topic(&tp.topic).is_none_or(|t| {
                    t.id != p.topic_id || !t.partitions.iter().any(|x| x.partition == tp.partition)
                })
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in gone {
            if let Some(p) = parts.remove(&tp) {
                match Arc::try_unwrap(p) {
                    Ok(p) => {
                        if let Err(e) = p.into_log().delete() {
                            tracing::error!(partition = %tp, error = %e, "cannot delete log");
                        }
                    }
                    Err(p) => {
                        // An in-flight request still holds it: delete the files, the handle goes with it.
                        let dir = p.log().dir().to_owned();
                        let _ = std::fs::remove_dir_all(dir);
                    }
                }
            }
        }
        for topic in after.topics.values() {
            for pr in &topic.partitions {
                if pr.leader != self.config.node_id {
                    continue;
                }
                let tp = TopicPartition {
                    topic: topic.name.clone(),
                    partition: pr.partition,
                };
                if parts.contains_key(&tp) {
                    continue;
                }
                match self.logs.create_log(
                    &topic.name,
                    pr.partition,
                    self.log_config(after, topic),
                    now,
                ) {
                    Ok(log) => {
                        parts.insert(
                            tp.clone(),
                            Arc::new(Partition::new(tp, topic.id, pr.leader_epoch, log)),
                        );
                    }
                    Err(e) => tracing::error!(partition = %tp, error = %e, "cannot create log"),
                }
            }
        }
        // Config changes: every partition of a changed topic, or all of them for broker changes.
        let config_changed = records
            .iter()
            .any(|r| matches!(r, MetadataRecord::SetConfig { .. }));
        if config_changed {
            for (tp, p) in parts.iter() {
                if let Some(topic) = after.topic(&tp.topic) {
                    let cfg = self.log_config(after, topic);
                    let mut log = p.log();
                    if *log.config() != cfg {
                        log.set_config(cfg);
                    }
                }
            }
        }
    }

    /// Flushes and closes every log, writes the checkpoints and marks a clean shutdown.
    pub fn shutdown(&self) -> Result<(), strand_storage::LogError> {
        let parts: Vec<Arc<Partition>> = self
            .partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .map(|(_, p)| p)
            .collect();
        let mut first_error = None;
        for p in &parts {
            if let Err(e) = p.log().flush() {
                tracing::error!(partition = %p.tp, error = %e, "flush at shutdown failed");
                first_error.get_or_insert(e);
            }
        }
        {
            let mut closed = self.lock_checkpoints();
            // The partitions are gone from the broker now: a later checkpoint would list none.
            *closed = true;
            self.logs.write_checkpoints(&checkpoint_entries(&parts))?;
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        self.logs.mark_clean_shutdown()
    }
}

fn checkpoint_entries(parts: &[Arc<Partition>]) -> Vec<strand_storage::CheckpointEntry> {
    parts
        .iter()
        .map(|p| {
            let log = p.log();
            strand_storage::CheckpointEntry {
                topic: p.tp.topic.clone(),
                partition: p.tp.partition,
                recovery_point: log.recovery_point(),
                log_start_offset: log.log_start_offset(),
                dir: log.dir().to_owned(),
            }
        })
        .collect()
}

impl Broker {
    /// Writes the recovery-point and log-start checkpoints of every partition (nothing once
    /// the broker has shut down). Blocking file IO and an fsync: call it off the runtime.
    pub fn checkpoint(&self) -> Result<(), strand_storage::LogError> {
        let closed = self.lock_checkpoints();
        if *closed {
            return Ok(());
        }
        // Read the offsets under the lock, so the last file written has the newest ones.
        self.logs
            .write_checkpoints(&checkpoint_entries(&self.partitions()))
    }

    pub(crate) fn lock_checkpoints(&self) -> std::sync::MutexGuard<'_, bool> {
        self.checkpoints_closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One retention pass over every partition: old segments by `retention.ms` /
    /// `retention.bytes`, files whose `file.delete.delay.ms` is over, then the checkpoints.
    pub fn retention_pass(&self) {
        let now = now_ms();
        let mut deleted = 0;
        for p in self.partitions() {
            let mut log = p.log();
            match log.apply_retention(now) {
                Ok(out) => deleted += out.segments,
                Err(e) => tracing::error!(partition = %p.tp, error = %e, "retention failed"),
            }
            log.purge_deleted(now);
            log.expire_producers(now);
        }
        if deleted > 0 {
            tracing::info!(segments = deleted, "retention deleted segments");
        }
        if let Err(e) = self.checkpoint() {
            tracing::error!(error = %e, "cannot write checkpoints");
        }
    }
}

/// Runs [`Broker::retention_pass`] every `log.retention.check.interval.ms`.
fn start_retention(broker: &Arc<Broker>) {
    let weak = Arc::downgrade(broker);
    let every_ms = broker.config.retention_check_interval_ms;
    broker.background.spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(every_ms));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            let Some(broker) = weak.upgrade() else { return };
            let _ = tokio::task::spawn_blocking(move || broker.retention_pass()).await;
        }
    });
}

impl Broker {
    /// One compaction pass over every compacted partition. The partition is locked only to
    /// plan and to install; reading and rewriting happen outside the lock.
    pub fn cleaner_pass(&self) {
        use strand_storage::cleaner;
        for p in self.partitions() {
            let now = now_ms();
            let Some(plan) = cleaner::plan(&p.log(), now) else {
                continue;
            };
            let started = std::time::Instant::now();
            let mut throttle = cleaner::Throttle::new(self.config.cleaner_io_bytes_per_sec);
            let (cleaned, stats) = match cleaner::build(&plan, now, &mut throttle) {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(partition = %p.tp, error = %e, "compaction failed");
                    continue;
                }
            };
            let installed =
                cleaner::install(&mut p.log(), cleaned, &stats, plan.clean_until, now_ms());
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            match installed {
                Ok(n) => tracing::info!(
                    partition = %p.tp,
                    segments = n,
                    read_mb = stats.bytes_read as f64 / 1e6,
                    written_mb = stats.bytes_written as f64 / 1e6,
                    kept = stats.records_kept,
                    dropped = stats.records_dropped,
                    mb_per_s = stats.bytes_read as f64 / 1e6 / secs,
                    "compacted"
                ),
                Err(e) => {
                    tracing::error!(partition = %p.tp, error = %e, "installing compacted segments failed")
                }
            }
        }
    }
}

/// Runs [`Broker::cleaner_pass`] on its own thread every `log.cleaner.backoff.ms`.
fn start_cleaner(broker: &Arc<Broker>) {
    let weak = Arc::downgrade(broker);
    let backoff = std::time::Duration::from_millis(broker.config.cleaner_backoff_ms);
    let spawned = broker.background.spawn_thread("log-cleaner", move |bg| {
        while bg.sleep(backoff) {
            let Some(broker) = weak.upgrade() else { return };
            broker.cleaner_pass();
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the log cleaner");
    }
}
