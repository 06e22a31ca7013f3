//! The prefetching fetcher: a background task that keeps Fetch requests going to the leaders
//! of assigned partitions and queues the decoded records for `poll`.
//!
//! The task and `poll` share [`FetchState`]. The fetcher asks each partition for data from its
//! *fetch offset*, which runs ahead of the consumer's *position* by whatever is buffered (up
//! to `strand.prefetch.bytes.max`). Every seek, reset or reassignment bumps the partition's
//! epoch, so data fetched for an older epoch is dropped instead of returned.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;

use super::records::{self, ConsumerRecord};
use crate::cluster::{Cluster, Lane};
use crate::error::Error;
use crate::types::TopicPartition;

#[derive(Debug, Clone)]
pub(crate) struct FetchSettings {
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub max_wait: Duration,
    pub partition_max_bytes: i32,
    pub isolation_level: i8,
    pub prefetch_bytes_max: usize,
}

#[derive(Debug, Default)]
pub(crate) struct PartState {
    /// The next offset `poll` returns; `None` until committed offsets or a reset say.
    pub position: Option<i64>,
    /// The next offset to ask the broker for.
    pub fetch_offset: Option<i64>,
    pub paused: bool,
    pub epoch: u64,
    pub in_flight: bool,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// The broker said OFFSET_OUT_OF_RANGE: `poll` applies `auto.offset.reset`.
    pub out_of_range: bool,
    /// An error to hand to the application on its next `poll`.
    pub error: Option<Error>,
}

impl PartState {
    pub fn seek(&mut self, offset: i64) {
        self.position = Some(offset);
        self.fetch_offset = Some(offset);
        self.out_of_range = false;
        self.epoch += 1;
    }
}

pub(crate) struct Completed {
    pub tp: TopicPartition,
    pub epoch: u64,
    /// The position this data continues from.
    pub position: i64,
    /// Where the position goes once every record here is returned.
    pub next_offset: i64,
    pub records: VecDeque<ConsumerRecord>,
    pub bytes: usize,
}

#[derive(Default)]
pub(crate) struct FetchState {
    pub parts: BTreeMap<TopicPartition, PartState>,
    pub completed: VecDeque<Completed>,
    pub buffered_bytes: usize,
    pub closed: bool,
}

impl FetchState {
    /// Takes up to `max` records that continue the current positions, leaves paused
    /// partitions' data in place, and drops data made stale by a seek or reassignment.
    pub fn drain(&mut self, max: usize) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.completed.len() && out.len() < max {
            let c = &mut self.completed[i];
            let keep = match self.parts.get_mut(&c.tp) {
                Some(p) if p.epoch == c.epoch && p.paused => {
                    i += 1;
                    continue;
                }
                Some(p) if p.epoch == c.epoch && p.position == Some(c.position) => {
                    let take = (max - out.len()).min(c.records.len());
                    out.extend(c.records.drain(..take));
                    c.position = if c.records.is_empty() {
                        c.next_offset
                    } else {
                        out.last().map_or(c.position, |r| r.offset + 1)
                    };
                    p.position = Some(c.position);
                    !c.records.is_empty()
                }
                _ => false,
            };
            if keep {
                i += 1;
            } else if let Some(c) = self.completed.remove(i) {
                self.buffered_bytes = self.buffered_bytes.saturating_sub(c.bytes);
            }
        }
        out
    }
}

pub(crate) struct Fetcher {
    pub state: Mutex<FetchState>,
    /// Data arrived, or a partition became fetchable.
    pub data: Notify,
    pub wake: Notify,
}

impl Fetcher {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            data: Notify::new(),
            wake: Notify::new(),
        })
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, FetchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) async fn run(f: Arc<Fetcher>, cluster: Arc<Cluster>, s: FetchSettings) {
    loop {
        let wake = f.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let view = cluster.view();
        let mut by_leader: HashMap<i32, Vec<(TopicPartition, i64, u64)>> = HashMap::new();
        let mut unknown: Vec<String> = Vec::new();
        {
            let mut st = f.lock();
            if st.closed {
                return;
            }
            let room = st.buffered_bytes < s.prefetch_bytes_max;
            for (tp, p) in st.parts.iter_mut() {
                let Some(offset) = p.fetch_offset else {
                    continue;
                };
                if p.paused || p.in_flight || p.out_of_range || p.error.is_some() || !room {
                    continue;
                }
                match view.leader(&tp.topic, tp.partition) {
                    Some(l) => {
                        p.in_flight = true;
                        by_leader
                            .entry(l)
                            .or_default()
                            .push((tp.clone(), offset, p.epoch));
                    }
                    None => unknown.push(tp.topic.clone()),
                }
            }
        }
        if unknown.is_empty() && cluster.is_stale() && !view.topics.is_empty() {
            // metadata.max.age.ms: look again, so moved leaders are seen.
            unknown = view.topics.keys().cloned().collect();
        }
        if !unknown.is_empty() {
            unknown.sort();
            unknown.dedup();
            cluster.refresh_soon(&unknown).await;
        }
        for (leader, parts) in by_leader {
            let (f2, c2, s2) = (f.clone(), cluster.clone(), s.clone());
            tokio::spawn(async move {
                fetch_from(&f2, &c2, &s2, leader, parts).await;
                f2.wake.notify_one();
            });
        }
        let idle = if unknown.is_empty() {
            Duration::from_millis(500)
        } else {
            cluster.backoff()
        };
        tokio::select! {
            _ = &mut wake => {}
            _ = tokio::time::sleep(idle) => {}
        }
    }
}

async fn fetch_from(
    f: &Fetcher,
    cluster: &Cluster,
    s: &FetchSettings,
    leader: i32,
    parts: Vec<(TopicPartition, i64, u64)>,
) {
    let clear = |f: &Fetcher| {
        let mut st = f.lock();
        for (tp, _, _) in &parts {
            if let Some(p) = st.parts.get_mut(tp) {
                p.in_flight = false;
            }
        }
    };
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, offset, _) in &parts {
        let fp = FetchPartition::default()
            .with_partition(tp.partition)
            .with_current_leader_epoch(-1)
            .with_fetch_offset(*offset)
            .with_last_fetched_epoch(-1)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(s.partition_max_bytes);
        match topics.iter_mut().find(|t| *t.topic.0 == *tp.topic) {
            Some(t) => t.partitions.push(fp),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(vec![fp]),
            ),
        }
    }
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(s.max_wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(s.min_bytes)
        .with_max_bytes(s.max_bytes)
        .with_isolation_level(s.isolation_level)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics);
    let resp = async {
        let conn = cluster.conn(leader, Lane::Fetch).await?;
        let v = conn.version_for::<FetchRequest>()?;
        conn.send_at_timeout(&req, v, cluster.cfg.request_timeout + s.max_wait)
            .await
    }
    .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(leader, error = %e, "fetch failed");
            clear(f);
            let topics: Vec<String> = parts.iter().map(|(tp, _, _)| tp.topic.clone()).collect();
            tokio::time::sleep(cluster.backoff()).await;
            cluster.refresh_soon(&topics).await;
            return;
        }
    };
    let mut stale: Vec<String> = Vec::new();
    let mut got_data = false;
    for t in &resp.responses {
        let topic: Arc<str> = Arc::from(t.topic.0.as_str());
        for pd in &t.partitions {
            let tp = TopicPartition::new(topic.to_string(), pd.partition_index);
            let Some(&(_, offset, epoch)) = parts.iter().find(|(x, _, _)| *x == tp) else {
                continue;
            };
            let decoded = if pd.error_code == 0 {
                let data = pd.records.clone().unwrap_or_default();
                let aborted: Vec<(i64, i64)> = pd
                    .aborted_transactions
                    .iter()
                    .flatten()
                    .map(|a| (a.producer_id.0, a.first_offset))
                    .collect();
                Some(records::decode(
                    &topic,
                    pd.partition_index,
                    data,
                    offset,
                    &aborted,
                ))
            } else {
                None
            };
            let mut st = f.lock();
            let Some(p) = st.parts.get_mut(&tp) else {
                continue;
            };
            if p.epoch != epoch || p.fetch_offset != Some(offset) {
                continue; // seeked or reassigned while this fetch was out
            }
            match (pd.error_code, decoded) {
                (0, Some(Ok(d))) => {
                    p.high_watermark = pd.high_watermark;
                    p.log_start_offset = pd.log_start_offset;
                    let Some(next) = d.next_offset else { continue };
                    p.fetch_offset = Some(next);
                    st.buffered_bytes += d.bytes;
                    st.completed.push_back(Completed {
                        tp,
                        epoch,
                        position: offset,
                        next_offset: next,
                        records: d.records.into(),
                        bytes: d.bytes,
                    });
                    got_data = true;
                }
                (0, Some(Err(e))) => {
                    tracing::warn!(topic = %tp.topic, partition = tp.partition, offset, error = %e, "cannot decode fetched records");
                    p.error = Some(e);
                    got_data = true;
                }
                (1, _) => {
                    p.out_of_range = true;
                    got_data = true;
                }
                (code, _) => {
                    let e = Error::kafka(code, format!("fetch {tp} at offset {offset}"));
                    if e.is_retriable() {
                        stale.push(tp.topic.clone());
                    } else {
                        p.error = Some(e);
                        got_data = true;
                    }
                }
            }
        }
    }
    clear(f);
    if got_data {
        f.data.notify_waiters();
    }
    if !stale.is_empty() {
        stale.sort();
        stale.dedup();
        tokio::time::sleep(cluster.backoff()).await;
        cluster.refresh_soon(&stale).await;
    }
}
