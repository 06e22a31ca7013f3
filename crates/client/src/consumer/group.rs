//! Group membership: the classic protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup,
//! with client-side assignors, eager or cooperative) and the KIP-848 consumer protocol
//! (ConsumerGroupHeartbeat, assignments computed by the broker).
//!
//! A background task heartbeats and records what it hears (rebalance needed, membership lost,
//! a new target assignment) in [`GroupShared`]; `poll` acts on it: it runs the join, calls
//! the [`RebalanceListener`], commits before revoking (with auto-commit on) and changes the
//! assignment. Keeping the rebalance inside `poll` is the Java client's design: the
//! application sees revocations between two of its own calls, never in the middle of one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;

use super::assignor::{self, Assignor};
use super::{offsets, Consumer, ConsumerConfig, GroupProtocol};
use crate::cluster::{Cluster, Lane};
use crate::conn::Connection;
use crate::error::{Error, KafkaCode, Result};
use crate::types::TopicPartition;

/// Told of partitions moving to and from this consumer, inside `poll`.
pub trait RebalanceListener: Send {
    /// Before `partitions` are taken away: commit what was processed (`r.commit(..)`).
    fn on_partitions_revoked(&mut self, r: &mut Revocation<'_>) {
        let _ = r;
    }
    /// After `partitions` were added to the assignment.
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }
    /// The membership was lost (session expired, fenced): `partitions` may already belong to
    /// someone else, so nothing is committed for them.
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }
}

/// The partitions about to be revoked, their positions, and the offsets to commit for them.
pub struct Revocation<'a> {
    pub partitions: &'a [TopicPartition],
    positions: &'a BTreeMap<TopicPartition, i64>,
    commits: BTreeMap<TopicPartition, i64>,
}

impl Revocation<'_> {
    /// The consumer's position in `tp` (the next offset it would have returned).
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.positions.get(tp).copied()
    }
    /// Commits `offset` for `tp` before it is revoked.
    pub fn commit(&mut self, tp: &TopicPartition, offset: i64) {
        self.commits.insert(tp.clone(), offset);
    }
    /// Commits the current positions of all revoked partitions.
    pub fn commit_positions(&mut self) {
        for tp in self.partitions {
            if let Some(o) = self.positions.get(tp) {
                self.commits.insert(tp.clone(), *o);
            }
        }
    }
}

#[derive(Debug)]
struct GroupState {
    member_id: String,
    /// Classic: the generation; KIP-848: the member epoch.
    generation: i32,
    coordinator: Option<i32>,
    joined: bool,
    rejoin_needed: bool,
    lost: bool,
    last_poll: Instant,
    /// Left because `poll` was not called within `max.poll.interval.ms`.
    left_for_poll_timeout: bool,
    target: Option<Vec<TopicPartition>>,
    owned: Vec<TopicPartition>,
    subscription: Vec<String>,
    heartbeat_interval: Duration,
    stopped: bool,
    fatal: Option<Error>,
}

pub(crate) struct GroupShared {
    pub id: String,
    pub instance_id: Option<String>,
    state: Mutex<GroupState>,
    wake: Notify,
}

impl GroupShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `(member id, generation or epoch, instance id)` for commits.
    pub fn identity(&self) -> (String, i32, Option<String>) {
        let s = self.lock();
        if s.joined || s.generation > 0 {
            (s.member_id.clone(), s.generation, self.instance_id.clone())
        } else {
            (String::new(), -1, None)
        }
    }

    pub async fn coordinator(&self, cluster: &Cluster) -> Result<i32> {
        if let Some(c) = self.lock().coordinator {
            return Ok(c);
        }
        let c = cluster.find_coordinator(&self.id, 0).await?;
        self.lock().coordinator = Some(c);
        Ok(c)
    }

    /// The connection to the coordinator, on the group lane.
    pub async fn coordinator_conn(&self, cluster: &Cluster) -> Result<Arc<Connection>> {
        let node = self.coordinator(cluster).await?;
        cluster.conn(node, Lane::Group).await
    }

    pub fn forget_coordinator(&self) {
        self.lock().coordinator = None;
    }

    pub fn request_rejoin(&self) {
        self.lock().rejoin_needed = true;
    }

    /// The coordinator no longer knows us as a member of this generation.
    pub fn membership_lost(&self) {
        let mut s = self.lock();
        s.joined = false;
        s.rejoin_needed = true;
        s.lost = true;
        s.generation = if s.generation > 0 { 0 } else { s.generation };
    }
}

pub(crate) struct Group {
    shared: Arc<GroupShared>,
    protocol: GroupProtocol,
    task: tokio::task::JoinHandle<()>,
}

struct Settings {
    protocol: GroupProtocol,
    session_timeout: Duration,
    max_poll_interval: Duration,
    remote_assignor: Option<String>,
}

impl Group {
    pub fn new(id: String, cfg: &ConsumerConfig, cluster: Arc<Cluster>) -> Self {
        let member_id = match cfg.group_protocol {
            GroupProtocol::Classic => String::new(),
            // KIP-1082: consumer-protocol members choose their own id.
            GroupProtocol::Consumer => uuid::Uuid::new_v4().simple().to_string(),
        };
        let shared = Arc::new(GroupShared {
            id,
            instance_id: cfg.group_instance_id.clone(),
            state: Mutex::new(GroupState {
                member_id,
                generation: if cfg.group_protocol == GroupProtocol::Consumer {
                    0
                } else {
                    -1
                },
                coordinator: None,
                joined: false,
                rejoin_needed: true,
                lost: false,
                last_poll: Instant::now(),
                left_for_poll_timeout: false,
                target: None,
                owned: Vec::new(),
                subscription: Vec::new(),
                heartbeat_interval: cfg.heartbeat_interval,
                stopped: false,
                fatal: None,
            }),
            wake: Notify::new(),
        });
        let settings = Settings {
            protocol: cfg.group_protocol,
            session_timeout: cfg.session_timeout,
            max_poll_interval: cfg.max_poll_interval,
            remote_assignor: cfg.remote_assignor.clone(),
        };
        let task = tokio::spawn(heartbeat_loop(shared.clone(), cluster, settings));
        Self {
            shared,
            protocol: cfg.group_protocol,
            task,
        }
    }

    pub fn shared(&self) -> &Arc<GroupShared> {
        &self.shared
    }

    pub fn set_subscription(&mut self, topics: Vec<String>) {
        let mut s = self.shared.lock();
        if s.subscription != topics {
            s.subscription = topics;
            s.rejoin_needed = true;
        }
        drop(s);
        self.shared.wake.notify_one();
    }

    pub fn polled(&self) {
        let mut s = self.shared.lock();
        s.last_poll = Instant::now();
        if s.left_for_poll_timeout {
            s.left_for_poll_timeout = false;
            s.rejoin_needed = true;
            drop(s);
            self.shared.wake.notify_one();
        }
    }

    pub fn stop(&self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_one();
        if self.protocol == GroupProtocol::Classic {
            self.task.abort();
        }
    }
}

fn group_id(id: &str) -> GroupId {
    GroupId(StrBytes::from_string(id.to_string()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// LeaveGroup names the member in the request before v3, in a member list from v3 on.
fn leave_request(group: &str, member_id: &str, reason: &str, version: i16) -> LeaveGroupRequest {
    let req = LeaveGroupRequest::default().with_group_id(group_id(group));
    if version < 3 {
        return req.with_member_id(s(member_id));
    }
    let mut m = MemberIdentity::default().with_member_id(s(member_id));
    if version >= 5 {
        m = m.with_reason(Some(s(reason)));
    }
    req.with_members(vec![m])
}

fn minus(a: &[TopicPartition], b: &[TopicPartition]) -> Vec<TopicPartition> {
    let b: BTreeSet<&TopicPartition> = b.iter().collect();
    a.iter().filter(|tp| !b.contains(tp)).cloned().collect()
}

impl Consumer {
    fn group_ref(&self) -> Result<&Group> {
        self.group
            .as_ref()
            .ok_or_else(|| Error::Config("group.id is not set".into()))
    }

    /// Runs whatever the group needs before records can be returned.
    pub(super) async fn ensure_group(&mut self, deadline: Instant) -> Result<()> {
        let shared = self.group_ref()?.shared.clone();
        let (fatal, lost) = {
            let mut st = shared.lock();
            (st.fatal.take(), std::mem::take(&mut st.lost))
        };
        if let Some(e) = fatal {
            return Err(e);
        }
        if lost {
            let owned = self.assignment();
            if !owned.is_empty() {
                tracing::info!(group = %shared.id, partitions = owned.len(), "group membership lost");
                if let Some(l) = self
                    .listener
                    .as_mut()
                    .map(|m| m.get_mut().unwrap_or_else(|p| p.into_inner()))
                {
                    l.on_partitions_lost(&owned);
                }
                self.set_assignment(&[]);
            }
            shared.lock().owned.clear();
        }
        match self.group_ref()?.protocol {
            GroupProtocol::Classic => {
                let (rejoin, paused) = {
                    let st = shared.lock();
                    (st.rejoin_needed || !st.joined, st.left_for_poll_timeout)
                };
                if rejoin && !paused {
                    self.join_classic(deadline).await?;
                }
            }
            GroupProtocol::Consumer => self.reconcile_assignment().await?,
        }
        Ok(())
    }

    /// Calls the listener, commits (listener's offsets, plus positions with auto-commit), and
    /// drops `partitions` from the assignment.
    async fn revoke(&mut self, partitions: &[TopicPartition]) {
        if partitions.is_empty() {
            return;
        }
        let positions = self.positions();
        let mut r = Revocation {
            partitions,
            positions: &positions,
            commits: BTreeMap::new(),
        };
        if let Some(l) = self
            .listener
            .as_mut()
            .map(|m| m.get_mut().unwrap_or_else(|p| p.into_inner()))
        {
            l.on_partitions_revoked(&mut r);
        }
        let mut commits = r.commits;
        if self.cfg.enable_auto_commit {
            for tp in partitions {
                if let Some(o) = positions.get(tp) {
                    commits.entry(tp.clone()).or_insert(*o);
                }
            }
        }
        if let (false, Some(g)) = (commits.is_empty(), &self.group) {
            let deadline = Instant::now() + self.cfg.default_api_timeout;
            if let Err(e) = offsets::commit(&self.cluster, g.shared(), &commits, deadline).await {
                tracing::warn!(error = %e, "commit before revocation failed");
            }
        }
        let keep = minus(&self.assignment(), partitions);
        self.set_assignment(&keep);
    }

    async fn join_classic(&mut self, deadline: Instant) -> Result<()> {
        let shared = self.group_ref()?.shared.clone();
        let cooperative = self.cfg.assignors.iter().all(|a| a.is_cooperative());
        if !cooperative {
            let owned = self.assignment();
            self.revoke(&owned).await;
            shared.lock().owned.clear();
        }
        let _ = deadline;
        loop {
            let (member_id, subscription, owned) = {
                let mut st = shared.lock();
                st.rejoin_needed = false;
                st.joined = false;
                (
                    st.member_id.clone(),
                    st.subscription.clone(),
                    st.owned.clone(),
                )
            };
            let protocols = self
                .cfg
                .assignors
                .iter()
                .map(|a| {
                    JoinGroupRequestProtocol::default()
                        .with_name(s(a.name()))
                        .with_metadata(assignor::encode_subscription(&subscription, &owned))
                })
                .collect();
            let req = JoinGroupRequest::default()
                .with_group_id(group_id(&shared.id))
                .with_session_timeout_ms(self.cfg.session_timeout.as_millis() as i32)
                .with_rebalance_timeout_ms(
                    self.cfg.max_poll_interval.as_millis().min(i32::MAX as u128) as i32,
                )
                .with_member_id(s(&member_id))
                .with_group_instance_id(shared.instance_id.as_deref().map(s))
                .with_protocol_type(s("consumer"))
                .with_protocols(protocols);
            let resp = async {
                let conn = shared.coordinator_conn(&self.cluster).await?;
                let v = conn.version_for::<JoinGroupRequest>()?;
                conn.send_at_timeout(
                    &req,
                    v,
                    self.cfg.max_poll_interval + self.cfg.client.request_timeout,
                )
                .await
            }
            .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    shared.forget_coordinator();
                    tokio::time::sleep(self.cluster.backoff()).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match resp.error_code {
                0 => {}
                79 => {
                    // MEMBER_ID_REQUIRED: join again with the id the coordinator chose.
                    shared.lock().member_id = resp.member_id.to_string();
                    continue;
                }
                25 => {
                    shared.lock().member_id = String::new();
                    continue;
                }
                27 => continue,
                14..=16 => {
                    shared.forget_coordinator();
                    tokio::time::sleep(self.cluster.backoff()).await;
                    continue;
                }
                code => return Err(Error::kafka(code, format!("joining group {}", shared.id))),
            }
            let member_id = resp.member_id.to_string();
            let generation = resp.generation_id;
            let protocol = resp
                .protocol_name
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            {
                let mut st = shared.lock();
                st.member_id = member_id.clone();
                st.generation = generation;
            }
            let assignments = if *resp.leader == *member_id && !resp.skip_assignment {
                self.lead_assignment(&protocol, &resp.members).await?
            } else {
                Vec::new()
            };
            let sync = SyncGroupRequest::default()
                .with_group_id(group_id(&shared.id))
                .with_generation_id(generation)
                .with_member_id(s(&member_id))
                .with_group_instance_id(shared.instance_id.as_deref().map(s))
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s(&protocol)))
                .with_assignments(assignments);
            let resp = async {
                let conn = shared.coordinator_conn(&self.cluster).await?;
                let v = conn.version_for::<SyncGroupRequest>()?;
                conn.send_at_timeout(
                    &sync,
                    v,
                    self.cfg.max_poll_interval + self.cfg.client.request_timeout,
                )
                .await
            }
            .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    shared.forget_coordinator();
                    continue;
                }
                Err(e) => return Err(e),
            };
            match resp.error_code {
                0 => {}
                25 => {
                    shared.lock().member_id = String::new();
                    continue;
                }
                22 | 27 => continue,
                14..=16 => {
                    shared.forget_coordinator();
                    continue;
                }
                code => return Err(Error::kafka(code, format!("syncing group {}", shared.id))),
            }
            let assigned = assignor::decode_assignment(resp.assignment.clone())?;
            let before = self.assignment();
            let revoked = minus(&before, &assigned);
            let added = minus(&assigned, &before);
            tracing::info!(group = %shared.id, generation, member = %member_id, assigned = assigned.len(), "joined group");
            {
                let mut st = shared.lock();
                st.joined = true;
            }
            if cooperative && !revoked.is_empty() {
                // KIP-429: give these up, then rejoin so the leader can hand them on.
                self.revoke(&revoked).await;
                let mut st = shared.lock();
                st.owned = minus(&assigned, &revoked);
                st.rejoin_needed = true;
            } else {
                shared.lock().owned = assigned.clone();
            }
            let now_owned = shared.lock().owned.clone();
            self.set_assignment(&now_owned);
            let added: Vec<TopicPartition> = added
                .into_iter()
                .filter(|tp| now_owned.contains(tp))
                .collect();
            if let Some(l) = self
                .listener
                .as_mut()
                .map(|m| m.get_mut().unwrap_or_else(|p| p.into_inner()))
            {
                l.on_partitions_assigned(&added);
            }
            shared.wake.notify_one();
            if shared.lock().rejoin_needed {
                continue;
            }
            return Ok(());
        }
    }

    /// The leader's job: assign every member's subscribed partitions with `protocol`.
    async fn lead_assignment(
        &self,
        protocol: &str,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let assignor = Assignor::from_name(protocol).ok_or_else(|| {
            Error::protocol(format!(
                "the coordinator chose unknown assignor {protocol:?}"
            ))
        })?;
        let subs = members
            .iter()
            .map(|m| assignor::decode_subscription(&m.member_id, m.metadata.clone()))
            .collect::<Result<Vec<_>>>()?;
        let mut topics: Vec<String> = subs.iter().flat_map(|m| m.topics.iter().cloned()).collect();
        topics.sort();
        topics.dedup();
        let view = self.cluster.refresh(Some(&topics), false).await?;
        let counts: BTreeMap<String, i32> = topics
            .iter()
            .filter_map(|t| view.partition_count(t).map(|n| (t.clone(), n as i32)))
            .collect();
        let plan = assignor.assign(&subs, &counts);
        Ok(plan
            .into_iter()
            .map(|(member, tps)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(assignor::encode_assignment(&tps))
            })
            .collect())
    }

    /// KIP-848: move the assignment to the target the broker sent, revoking first.
    async fn reconcile_assignment(&mut self) -> Result<()> {
        let shared = self.group_ref()?.shared.clone();
        let Some(target) = shared.lock().target.take() else {
            return Ok(());
        };
        let owned = self.assignment();
        let revoked = minus(&owned, &target);
        let added = minus(&target, &owned);
        if revoked.is_empty() && added.is_empty() {
            return Ok(());
        }
        self.revoke(&revoked).await;
        self.set_assignment(&target);
        shared.lock().owned = target;
        if let Some(l) = self
            .listener
            .as_mut()
            .map(|m| m.get_mut().unwrap_or_else(|p| p.into_inner()))
        {
            l.on_partitions_assigned(&added);
        }
        // Tell the coordinator at once what we own now.
        shared.wake.notify_one();
        Ok(())
    }

    /// Revokes everything (committing first) and leaves the group.
    pub(super) async fn leave_group(&mut self) -> Result<()> {
        let Some(g) = &self.group else { return Ok(()) };
        let shared = g.shared.clone();
        let protocol = g.protocol;
        let owned = self.assignment();
        self.revoke(&owned).await;
        match protocol {
            GroupProtocol::Classic => {
                let (member_id, joined) = {
                    let st = shared.lock();
                    (st.member_id.clone(), st.joined)
                };
                // Static members do not leave: their partitions wait for them (KIP-345).
                if member_id.is_empty() || !joined || shared.instance_id.is_some() {
                    return Ok(());
                }
                let r = async {
                    let conn = shared.coordinator_conn(&self.cluster).await?;
                    let v = conn.version_for::<LeaveGroupRequest>()?;
                    conn.send_at(
                        &leave_request(&shared.id, &member_id, "the consumer is closing", v),
                        v,
                    )
                    .await
                }
                .await;
                let mut st = shared.lock();
                st.joined = false;
                st.member_id.clear();
                st.generation = -1;
                st.owned.clear();
                drop(st);
                match r {
                    Ok(resp) if resp.error_code == 0 || resp.error_code == 25 => Ok(()),
                    Ok(resp) => Err(Error::kafka(
                        resp.error_code,
                        format!("leaving group {}", shared.id),
                    )),
                    Err(e) => Err(e),
                }
            }
            GroupProtocol::Consumer => {
                let (member_id, epoch) = {
                    let st = shared.lock();
                    (st.member_id.clone(), st.generation)
                };
                let leave_epoch = if shared.instance_id.is_some() { -2 } else { -1 };
                shared.lock().stopped = true;
                if epoch <= 0 {
                    return Ok(());
                }
                let req = ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(group_id(&shared.id))
                    .with_member_id(s(&member_id))
                    .with_member_epoch(leave_epoch)
                    .with_instance_id(shared.instance_id.as_deref().map(s));
                let r = async {
                    let conn = shared.coordinator_conn(&self.cluster).await?;
                    conn.send(&req).await
                }
                .await;
                let mut st = shared.lock();
                st.generation = 0;
                st.owned.clear();
                drop(st);
                match r {
                    Ok(resp) if resp.error_code == 0 || resp.error_code == 25 => Ok(()),
                    Ok(resp) => Err(Error::kafka(
                        resp.error_code,
                        format!("leaving group {}", shared.id),
                    )),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

async fn heartbeat_loop(shared: Arc<GroupShared>, cluster: Arc<Cluster>, settings: Settings) {
    loop {
        let interval = shared.lock().heartbeat_interval;
        let wake = shared.wake.notified();
        tokio::select! {
            _ = wake => {}
            _ = tokio::time::sleep(interval) => {}
        }
        if shared.lock().stopped {
            return;
        }
        let outcome = match settings.protocol {
            GroupProtocol::Classic => classic_heartbeat(&shared, &cluster, &settings).await,
            GroupProtocol::Consumer => consumer_heartbeat(&shared, &cluster, &settings).await,
        };
        if let Err(e) = outcome {
            tracing::debug!(group = %shared.id, error = %e, "heartbeat failed");
            if e.is_retriable() {
                shared.forget_coordinator();
            }
            tokio::time::sleep(cluster.backoff()).await;
        }
    }
}

/// `poll` was not called for `max.poll.interval.ms`: leave, as the Java client does.
fn poll_timed_out(shared: &GroupShared, settings: &Settings) -> bool {
    let st = shared.lock();
    st.last_poll.elapsed() > settings.max_poll_interval && !st.left_for_poll_timeout
}

async fn classic_heartbeat(
    shared: &GroupShared,
    cluster: &Cluster,
    settings: &Settings,
) -> Result<()> {
    let (joined, member_id, generation) = {
        let st = shared.lock();
        (st.joined, st.member_id.clone(), st.generation)
    };
    if !joined {
        return Ok(());
    }
    let conn = shared.coordinator_conn(cluster).await?;
    if poll_timed_out(shared, settings) {
        tracing::warn!(group = %shared.id, "poll was not called within max.poll.interval.ms: leaving the group");
        if shared.instance_id.is_none() {
            if let Ok(v) = conn.version_for::<LeaveGroupRequest>() {
                let _ = conn
                    .send_at(
                        &leave_request(&shared.id, &member_id, "max.poll.interval.ms expired", v),
                        v,
                    )
                    .await;
            }
        }
        let mut st = shared.lock();
        st.left_for_poll_timeout = true;
        st.joined = false;
        st.lost = true;
        if shared.instance_id.is_none() {
            st.member_id.clear();
        }
        st.generation = -1;
        return Ok(());
    }
    let req = HeartbeatRequest::default()
        .with_group_id(group_id(&shared.id))
        .with_generation_id(generation)
        .with_member_id(s(&member_id))
        .with_group_instance_id(shared.instance_id.as_deref().map(s));
    let resp = conn.send(&req).await?;
    let mut st = shared.lock();
    if st.generation != generation || !st.joined {
        return Ok(()); // a rejoin happened while this heartbeat was out
    }
    match resp.error_code {
        0 => Ok(()),
        27 => {
            st.rejoin_needed = true;
            Ok(())
        }
        22 | 25 => {
            if resp.error_code == 25 {
                st.member_id.clear();
            }
            st.joined = false;
            st.rejoin_needed = true;
            st.lost = true;
            Ok(())
        }
        82 => {
            st.fatal = Some(Error::kafka(
                82,
                format!(
                    "group {}: another consumer uses group.instance.id",
                    shared.id
                ),
            ));
            st.joined = false;
            Ok(())
        }
        code => Err(Error::kafka(
            code,
            format!("heartbeat to group {}", shared.id),
        )),
    }
}

async fn consumer_heartbeat(
    shared: &GroupShared,
    cluster: &Cluster,
    settings: &Settings,
) -> Result<()> {
    let (member_id, epoch, subscription, owned, paused) = {
        let st = shared.lock();
        (
            st.member_id.clone(),
            st.generation,
            st.subscription.clone(),
            st.owned.clone(),
            st.left_for_poll_timeout,
        )
    };
    if subscription.is_empty() || paused {
        return Ok(());
    }
    let conn = shared.coordinator_conn(cluster).await?;
    if epoch > 0 && poll_timed_out(shared, settings) {
        tracing::warn!(group = %shared.id, "poll was not called within max.poll.interval.ms: leaving the group");
        let req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group_id(&shared.id))
            .with_member_id(s(&member_id))
            .with_member_epoch(-1);
        let _ = conn.send(&req).await;
        let mut st = shared.lock();
        st.left_for_poll_timeout = true;
        st.generation = 0;
        st.lost = true;
        st.owned.clear();
        return Ok(());
    }
    // Topic ids for what we own and for decoding the assignment.
    let mut view = cluster.view();
    if subscription.iter().any(|t| !view.topics.contains_key(t)) || cluster.is_stale() {
        view = cluster.refresh(Some(&subscription), false).await?;
    }
    let mut owned_by_id: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
    for tp in &owned {
        if let Some(t) = view.topics.get(&tp.topic) {
            owned_by_id.entry(t.id).or_default().push(tp.partition);
        }
    }
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group_id(&shared.id))
        .with_member_id(s(&member_id))
        .with_member_epoch(epoch)
        .with_instance_id(shared.instance_id.as_deref().map(s))
        .with_rebalance_timeout_ms(
            settings.max_poll_interval.as_millis().min(i32::MAX as u128) as i32
        )
        .with_subscribed_topic_names(Some(subscription.iter().map(|t| TopicName(s(t))).collect()))
        .with_server_assignor(settings.remote_assignor.as_deref().map(s))
        .with_topic_partitions(Some(
            owned_by_id
                .into_iter()
                .map(|(id, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_partitions(ps)
                })
                .collect(),
        ));
    let _ = settings.session_timeout;
    let resp = conn.send(&req).await?;
    match resp.error_code {
        0 => {}
        25 | 110 => {
            // Fenced: release everything and join again with epoch 0.
            let mut st = shared.lock();
            st.generation = 0;
            st.lost = true;
            st.owned.clear();
            st.target = None;
            drop(st);
            shared.wake.notify_one();
            return Ok(());
        }
        14..=16 => {
            return Err(Error::kafka(
                resp.error_code,
                format!("group {}", shared.id),
            ))
        }
        111 => return Ok(()), // UNRELEASED_INSTANCE_ID: the old instance is still leaving
        code => {
            let e = Error::kafka(
                code,
                format!(
                    "consumer group heartbeat for {}: {}",
                    shared.id,
                    resp.error_message.as_deref().unwrap_or("")
                ),
            );
            if !e.is_retriable() {
                shared.lock().fatal = Some(e.clone());
            }
            return Err(e);
        }
    }
    let assignment = match resp.assignment {
        None => None,
        Some(a) => {
            let mut tps = Vec::new();
            let mut missing = false;
            for t in &a.topic_partitions {
                match view.topics.values().find(|x| x.id == t.topic_id) {
                    Some(x) => tps.extend(
                        t.partitions
                            .iter()
                            .map(|p| TopicPartition::new(x.name.clone(), *p)),
                    ),
                    None => missing = true,
                }
            }
            if missing {
                // A topic created after our metadata: learn its id, take the assignment next time.
                let _ = cluster.refresh(Some(&subscription), false).await;
                let mut st = shared.lock();
                st.generation = resp.member_epoch;
                return Err(Error::kafka(
                    KafkaCode::UNKNOWN_TOPIC_ID.0,
                    "assignment names an unknown topic id",
                ));
            }
            tps.sort();
            Some(tps)
        }
    };
    let mut st = shared.lock();
    if let Some(id) = resp.member_id {
        if !id.is_empty() {
            st.member_id = id.to_string();
        }
    }
    st.generation = resp.member_epoch;
    st.joined = resp.member_epoch > 0;
    if resp.heartbeat_interval_ms > 0 {
        st.heartbeat_interval = Duration::from_millis(resp.heartbeat_interval_ms as u64);
    }
    if let Some(a) = assignment {
        st.target = Some(a);
    }
    Ok(())
}
