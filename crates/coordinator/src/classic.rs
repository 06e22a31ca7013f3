//! The classic rebalance protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, and the
//! timeouts that drive them (session expiry, end of the join phase, pending member ids).

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::{GroupCoordinator, Outcome, Reply};
use crate::group::{Group, GroupState, Member, RequestId};
use crate::records::GroupRecord;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Who sent a request (for DescribeGroups).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub client_id: String,
    pub client_host: String,
}

/// A JoinGroup answer that carries only an error.
fn join_error(version: i16, member_id: &str, error: E) -> JoinGroupResponse {
    let mut r = JoinGroupResponse::default()
        .with_error_code(error.code())
        .with_generation_id(-1)
        .with_member_id(s(member_id));
    if version < 7 {
        r.protocol_name = Some(s(""));
    }
    r
}

/// The JoinGroup answer for `member_id` in the group's current generation; the leader gets
/// every member's metadata to compute the assignment.
fn join_success(group: &Group, member_id: &str, version: i16) -> JoinGroupResponse {
    let protocol = group.protocol.clone().unwrap_or_default();
    let is_leader = group.leader.as_deref() == Some(member_id);
    let mut r = JoinGroupResponse::default()
        .with_generation_id(group.generation)
        .with_protocol_name(Some(s(protocol.clone())))
        .with_leader(s(group.leader.clone().unwrap_or_default()))
        .with_member_id(s(member_id));
    if version >= 7 {
        r.protocol_type = group.protocol_type.clone().map(s);
    }
    if is_leader {
        r.members = group
            .members
            .values()
            .map(|m| {
                let member = JoinGroupResponseMember::default()
                    .with_member_id(s(m.id.clone()))
                    .with_metadata(m.metadata(&protocol));
                if version >= 5 {
                    member.with_group_instance_id(m.instance_id.clone().map(s))
                } else {
                    member
                }
            })
            .collect();
    }
    r
}

fn sync_reply(group: &Group, version: i16, error: E, assignment: Bytes) -> SyncGroupResponse {
    let mut r = SyncGroupResponse::default()
        .with_error_code(error.code())
        .with_assignment(assignment);
    if version >= 5 {
        r.protocol_type = group.protocol_type.clone().map(s);
        r.protocol_name = group.protocol.clone().map(s);
    }
    r
}

impl GroupCoordinator {
    /// JoinGroup. The answer comes back in [`Outcome::replies`] under `request`, now or when
    /// the join phase ends.
    pub fn join(
        &mut self,
        req: JoinGroupRequest,
        version: i16,
        client: ClientInfo,
        request: RequestId,
        now: i64,
    ) -> Outcome {
        let mut out = Outcome::default();
        let member_id = req.member_id.to_string();
        let reply =
            |out: &mut Outcome, r: JoinGroupResponse| out.replies.push((request, Reply::Join(r)));
        let group_id = req.group_id.to_string();
        if group_id.is_empty() {
            reply(&mut out, join_error(version, &member_id, E::InvalidGroupId));
            return out;
        }
        let min = self.config.min_session_timeout_ms;
        let max = self.config.max_session_timeout_ms;
        if req.session_timeout_ms < min || req.session_timeout_ms > max {
            reply(
                &mut out,
                join_error(version, &member_id, E::InvalidSessionTimeout),
            );
            return out;
        }
        let protocols: Vec<(String, Bytes)> = req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect();
        let protocol_type = req.protocol_type.to_string();
        if protocols.is_empty() || protocol_type.is_empty() {
            reply(
                &mut out,
                join_error(version, &member_id, E::InconsistentGroupProtocol),
            );
            return out;
        }
        // Rebalance timeout appeared in v1; before that the session timeout stands in.
        let rebalance_timeout_ms = if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        };
        let instance_id = if version >= 5 {
            req.group_instance_id.as_ref().map(|i| i.to_string())
        } else {
            None
        };
        // One id, one kind of group. A KIP-848 group with members keeps its id (Strand does
        // not take classic members into one); an empty one gives way, as Kafka turns an
        // empty consumer group into a classic one. Its offsets stay with the id.
        match self.consumer_groups.get(&group_id) {
            Some(cg) if !cg.members.is_empty() => {
                reply(
                    &mut out,
                    join_error(version, &member_id, E::InconsistentGroupProtocol),
                );
                return out;
            }
            Some(_) => {
                self.consumer_groups.remove(&group_id);
            }
            None => {}
        }
        let config = self.config.clone();
        let group = self
            .groups
            .get_or_insert_with(group_id.clone(), || Group::new(&group_id, now));
        if group.state == GroupState::Dead {
            reply(
                &mut out,
                join_error(version, &member_id, E::CoordinatorNotAvailable),
            );
            return out;
        }
        if !group.supports(&protocol_type, &protocols) {
            reply(
                &mut out,
                join_error(version, &member_id, E::InconsistentGroupProtocol),
            );
            return out;
        }
        let new_member = |id: String| Member {
            id,
            instance_id: instance_id.clone(),
            client_id: client.client_id.clone(),
            client_host: client.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms,
            protocols: protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: Some((request, version)),
            awaiting_sync: None,
            session_deadline_ms: now + i64::from(req.session_timeout_ms),
        };

        if member_id.is_empty() {
            let full = group.members.len() + group.pending.len() >= config.max_size;
            // A static member coming back under a new member id.
            if let Some(old_id) = instance_id
                .as_ref()
                .and_then(|i| group.static_members.get(i))
                .cloned()
            {
                let new_id = format!(
                    "{}-{}",
                    instance_id.clone().unwrap_or_default(),
                    uuid::Uuid::new_v4()
                );
                let Some(mut m) = group.members.remove(&old_id) else {
                    reply(
                        &mut out,
                        join_error(version, &member_id, E::UnknownMemberId),
                    );
                    return out;
                };
                // Whoever still waits under the old id has been replaced.
                if let Some((rid, v)) = m.awaiting_join.take() {
                    out.replies.push((
                        rid,
                        Reply::Join(join_error(v, &old_id, E::FencedInstanceId)),
                    ));
                }
                if let Some((rid, v)) = m.awaiting_sync.take() {
                    out.replies.push((
                        rid,
                        Reply::Sync(sync_reply(group, v, E::FencedInstanceId, Bytes::new())),
                    ));
                }
                m.id = new_id.clone();
                m.client_id = client.client_id.clone();
                m.client_host = client.client_host.clone();
                m.session_timeout_ms = req.session_timeout_ms;
                m.rebalance_timeout_ms = rebalance_timeout_ms;
                m.session_deadline_ms = now + i64::from(req.session_timeout_ms);
                // The new subscription is kept whatever happens next (Kafka's updateMember).
                m.protocols = protocols.clone();
                let was_leader = group.leader.as_deref() == Some(old_id.as_str());
                if was_leader {
                    group.leader = Some(new_id.clone());
                }
                group
                    .static_members
                    .insert(instance_id.clone().unwrap_or_default(), new_id.clone());
                group.members.insert(new_id.clone(), m);
                // KIP-345: a static member back in a stable group keeps its assignment, and
                // nobody rebalances, unless the group's selected protocol would change (as
                // Kafka decides it: the metadata bytes are not compared, since a restarted
                // member no longer knows what it owned).
                if group.state == GroupState::Stable && group.select_protocol() == group.protocol {
                    let mut r = join_success(group, &new_id, version);
                    if was_leader && version >= 9 {
                        // KIP-814: the leader sees the members but must not assign again.
                        r.skip_assignment = true;
                    } else if was_leader {
                        // Before v9 the leader cannot be told to skip: it is named under its
                        // old id, so it takes itself for a follower and syncs for its share.
                        r.leader = s(old_id.clone());
                        r.members.clear();
                    }
                    reply(&mut out, r);
                    out.records.push(GroupRecord::Group {
                        group: group_id,
                        value: Some(group.to_value()),
                    });
                    return out;
                }
                if let Some(m) = group.members.get_mut(&new_id) {
                    m.awaiting_join = Some((request, version));
                }
                self.prepare_rebalance_or_check(&group_id, now, &mut out);
                return out;
            }
            if full {
                reply(
                    &mut out,
                    join_error(version, &member_id, E::GroupMaxSizeReached),
                );
                return out;
            }
            let new_id = format!(
                "{}-{}",
                if instance_id.is_some() {
                    instance_id.clone().unwrap_or_default()
                } else {
                    client.client_id.clone()
                },
                uuid::Uuid::new_v4()
            );
            if version >= 4 && instance_id.is_none() {
                // KIP-394: hand out the id first; the member joins with it.
                group
                    .pending
                    .insert(new_id.clone(), now + i64::from(req.session_timeout_ms));
                reply(&mut out, join_error(version, &new_id, E::MemberIdRequired));
                return out;
            }
            if let Some(i) = &instance_id {
                group.static_members.insert(i.clone(), new_id.clone());
            }
            group
                .members
                .insert(new_id.clone(), new_member(new_id.clone()));
            group.leader.get_or_insert(new_id);
            group.protocol_type = Some(protocol_type);
            self.prepare_rebalance_or_check(&group_id, now, &mut out);
            return out;
        }

        // A known member id.
        if let Some(i) = &instance_id {
            if group.static_members.get(i).is_some_and(|m| *m != member_id) {
                reply(
                    &mut out,
                    join_error(version, &member_id, E::FencedInstanceId),
                );
                return out;
            }
        }
        if group.pending.remove(&member_id).is_some() {
            if let Some(i) = &instance_id {
                group.static_members.insert(i.clone(), member_id.clone());
            }
            group
                .members
                .insert(member_id.clone(), new_member(member_id.clone()));
            group.leader.get_or_insert(member_id.clone());
            group.protocol_type = Some(protocol_type);
            self.prepare_rebalance_or_check(&group_id, now, &mut out);
            return out;
        }
        let Some(m) = group.members.get_mut(&member_id) else {
            reply(
                &mut out,
                join_error(version, &member_id, E::UnknownMemberId),
            );
            return out;
        };
        m.session_deadline_ms = now + i64::from(req.session_timeout_ms);
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = rebalance_timeout_ms;
        let unchanged = m.same_protocols(&protocols);
        // A join repeated while one is already waiting: the newer one waits instead.
        if let Some((rid, v)) = m.awaiting_join.replace((request, version)) {
            out.replies.push((
                rid,
                Reply::Join(join_error(v, &member_id, E::UnknownServerError)),
            ));
        }
        m.protocols = protocols;
        match group.state {
            GroupState::PreparingRebalance => self.maybe_complete_join(&group_id, now, &mut out),
            GroupState::CompletingRebalance | GroupState::Stable => {
                let is_leader = group.leader.as_deref() == Some(member_id.as_str());
                if unchanged && (group.state == GroupState::CompletingRebalance || !is_leader) {
                    // Nothing changed: the member missed the answer, give it again.
                    if let Some(m) = group.members.get_mut(&member_id) {
                        m.awaiting_join = None;
                    }
                    reply(&mut out, join_success(group, &member_id, version));
                } else {
                    self.prepare_rebalance(&group_id, now, &mut out);
                }
            }
            GroupState::Empty | GroupState::Dead => {
                reply(
                    &mut out,
                    join_error(version, &member_id, E::UnknownMemberId),
                );
            }
        }
        out
    }

    fn prepare_rebalance_or_check(&mut self, group_id: &str, now: i64, out: &mut Outcome) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        if group.state == GroupState::PreparingRebalance {
            // A new member during the initial delay pushes the end of the join phase out
            // (up to the rebalance timeout), as Kafka's delayed initial join does.
            let delay = self.config.initial_rebalance_delay_ms;
            if let Some(group) = self.groups.get_mut(group_id) {
                if let (Some(until), Some(deadline)) =
                    (group.initial_join_until_ms, group.join_deadline_ms)
                {
                    group.join_deadline_ms = Some((now + delay).min(until).max(deadline));
                }
            }
            self.maybe_complete_join(group_id, now, out);
        } else {
            self.prepare_rebalance(group_id, now, out);
        }
    }

    /// Starts a rebalance: members must rejoin before the join phase ends.
    pub(crate) fn prepare_rebalance(&mut self, group_id: &str, now: i64, out: &mut Outcome) {
        let delay = self.config.initial_rebalance_delay_ms;
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        // Followers waiting for an assignment will not get one in this generation.
        let waiting: Vec<(RequestId, i16)> = group
            .members
            .values_mut()
            .filter_map(|m| m.awaiting_sync.take())
            .collect();
        for (rid, v) in waiting {
            out.replies.push((
                rid,
                Reply::Sync(sync_reply(group, v, E::RebalanceInProgress, Bytes::new())),
            ));
        }
        let rebalance_timeout = group
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        if group.state == GroupState::Empty {
            let until = now + rebalance_timeout;
            group.initial_join_until_ms = Some(until);
            group.join_deadline_ms = Some((now + delay).min(until));
        } else {
            group.initial_join_until_ms = None;
            group.join_deadline_ms = Some(now + rebalance_timeout);
        }
        group.set_state(GroupState::PreparingRebalance, now);
        self.maybe_complete_join(group_id, now, out);
    }

    /// Ends the join phase if every member has rejoined (outside the initial delay), or if
    /// its deadline has passed.
    pub(crate) fn maybe_complete_join(&mut self, group_id: &str, now: i64, out: &mut Outcome) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let deadline_passed = group.join_deadline_ms.is_some_and(|d| now >= d);
        let early = group.initial_join_until_ms.is_none()
            && group.all_joined()
            && !group.members.is_empty();
        if deadline_passed || early {
            self.complete_join(group_id, now, out);
        }
    }

    fn complete_join(&mut self, group_id: &str, now: i64, out: &mut Outcome) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        // Dynamic members that did not rejoin are gone; static ones stay (with the metadata
        // they last sent) until their session expires, and get their share.
        let gone: Vec<String> = group
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            group.remove_member(&id);
        }
        if !group.members.is_empty() && group.members.values().all(|m| m.awaiting_join.is_none()) {
            // Only absent static members: nobody to lead. Kafka waits another rebalance
            // timeout (their sessions may expire first, which ends the join phase).
            let timeout = group
                .members
                .values()
                .map(|m| i64::from(m.rebalance_timeout_ms))
                .max()
                .unwrap_or(0);
            group.join_deadline_ms = Some(now + timeout);
            return;
        }
        group.join_deadline_ms = None;
        group.initial_join_until_ms = None;
        group.generation += 1;
        if group.members.is_empty() {
            group.protocol = None;
            group.leader = None;
            group.set_state(GroupState::Empty, now);
            out.records.push(GroupRecord::Group {
                group: group_id.to_string(),
                value: Some(group.to_value()),
            });
            return;
        }
        group.protocol = group.select_protocol();
        // The leader must be a member that rejoined (it computes the assignment).
        if group
            .leader
            .as_ref()
            .and_then(|l| group.members.get(l))
            .is_none_or(|l| l.awaiting_join.is_none())
        {
            group.leader = group
                .members
                .values()
                .find(|m| m.awaiting_join.is_some())
                .map(|m| m.id.clone());
        }
        group.set_state(GroupState::CompletingRebalance, now);
        let ids: Vec<String> = group.members.keys().cloned().collect();
        for id in ids {
            let response_version = group
                .members
                .get(&id)
                .and_then(|m| m.awaiting_join)
                .map(|(_, v)| v);
            let Some(version) = response_version else {
                continue;
            };
            let r = join_success(group, &id, version);
            if let Some(m) = group.members.get_mut(&id) {
                if let Some((rid, _)) = m.awaiting_join.take() {
                    m.session_deadline_ms = now + i64::from(m.session_timeout_ms);
                    out.replies.push((rid, Reply::Join(r)));
                }
            }
        }
    }

    /// SyncGroup. The answer comes back in [`Outcome::replies`] under `request`: at once, or
    /// when the leader's assignment arrives.
    pub fn sync(
        &mut self,
        req: SyncGroupRequest,
        version: i16,
        request: RequestId,
        now: i64,
    ) -> Outcome {
        let mut out = Outcome::default();
        let group_id = req.group_id.to_string();
        let member_id = req.member_id.to_string();
        let Some(group) = self.groups.get_mut(&group_id) else {
            out.replies.push((
                request,
                Reply::Sync(
                    SyncGroupResponse::default().with_error_code(E::UnknownMemberId.code()),
                ),
            ));
            return out;
        };
        let error = |group: &Group, e: E| Reply::Sync(sync_reply(group, version, e, Bytes::new()));
        if let Some(i) = req.group_instance_id.as_ref().filter(|_| version >= 3) {
            if group
                .static_members
                .get(i.as_str())
                .is_some_and(|m| *m != member_id)
            {
                out.replies
                    .push((request, error(group, E::FencedInstanceId)));
                return out;
            }
        }
        if !group.members.contains_key(&member_id) {
            out.replies
                .push((request, error(group, E::UnknownMemberId)));
            return out;
        }
        if req.generation_id != group.generation {
            out.replies
                .push((request, error(group, E::IllegalGeneration)));
            return out;
        }
        if version >= 5 {
            let type_ok = req
                .protocol_type
                .as_ref()
                .is_none_or(|t| group.protocol_type.as_deref() == Some(t.as_str()));
            let name_ok = req
                .protocol_name
                .as_ref()
                .is_none_or(|n| group.protocol.as_deref() == Some(n.as_str()));
            if !type_ok || !name_ok {
                out.replies
                    .push((request, error(group, E::InconsistentGroupProtocol)));
                return out;
            }
        }
        if let Some(m) = group.members.get_mut(&member_id) {
            m.session_deadline_ms = now + i64::from(m.session_timeout_ms);
        }
        match group.state {
            GroupState::PreparingRebalance => out
                .replies
                .push((request, error(group, E::RebalanceInProgress))),
            GroupState::Stable => {
                let assignment = group
                    .members
                    .get(&member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                out.replies.push((
                    request,
                    Reply::Sync(
                        sync_reply(group, version, E::UnknownServerError, assignment)
                            .with_error_code(0),
                    ),
                ));
            }
            GroupState::CompletingRebalance => {
                if let Some(m) = group.members.get_mut(&member_id) {
                    m.awaiting_sync = Some((request, version));
                }
                if group.leader.as_deref() == Some(member_id.as_str()) {
                    for m in group.members.values_mut() {
                        m.assignment = req
                            .assignments
                            .iter()
                            .find(|a| a.member_id.as_str() == m.id)
                            .map(|a| a.assignment.clone())
                            .unwrap_or_default();
                    }
                    group.set_state(GroupState::Stable, now);
                    out.records.push(GroupRecord::Group {
                        group: group_id.clone(),
                        value: Some(group.to_value()),
                    });
                    let waiting: Vec<(RequestId, i16, Bytes)> = group
                        .members
                        .values_mut()
                        .filter_map(|m| {
                            m.awaiting_sync
                                .take()
                                .map(|(rid, v)| (rid, v, m.assignment.clone()))
                        })
                        .collect();
                    for (rid, v, assignment) in waiting {
                        out.replies.push((
                            rid,
                            Reply::Sync(
                                sync_reply(group, v, E::UnknownServerError, assignment)
                                    .with_error_code(0),
                            ),
                        ));
                    }
                }
            }
            GroupState::Empty | GroupState::Dead => out
                .replies
                .push((request, error(group, E::UnknownMemberId))),
        }
        out
    }

    /// Heartbeat: keeps a member's session alive and tells it when to rejoin.
    pub fn heartbeat(
        &mut self,
        req: &HeartbeatRequest,
        version: i16,
        now: i64,
    ) -> HeartbeatResponse {
        let code = |e: E| HeartbeatResponse::default().with_error_code(e.code());
        let Some(group) = self.groups.get_mut(req.group_id.as_str()) else {
            return code(E::UnknownMemberId);
        };
        let member_id = req.member_id.as_str();
        if let Some(i) = req.group_instance_id.as_ref().filter(|_| version >= 3) {
            if group
                .static_members
                .get(i.as_str())
                .is_some_and(|m| m != member_id)
            {
                return code(E::FencedInstanceId);
            }
        }
        let Some(m) = group.members.get_mut(member_id) else {
            return code(E::UnknownMemberId);
        };
        if req.generation_id != group.generation {
            return code(E::IllegalGeneration);
        }
        m.session_deadline_ms = now + i64::from(m.session_timeout_ms);
        match group.state {
            GroupState::PreparingRebalance => code(E::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => HeartbeatResponse::default(),
            GroupState::Empty | GroupState::Dead => code(E::UnknownMemberId),
        }
    }

    /// LeaveGroup: one member (v0-2) or a batch, by member id or instance id (v3+).
    pub fn leave(
        &mut self,
        req: &LeaveGroupRequest,
        version: i16,
        now: i64,
    ) -> (LeaveGroupResponse, Outcome) {
        let mut out = Outcome::default();
        let group_id = req.group_id.to_string();
        let leaving: Vec<(String, Option<String>)> = if version >= 3 {
            req.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.group_instance_id.as_ref().map(|i| i.to_string()),
                    )
                })
                .collect()
        } else {
            vec![(req.member_id.to_string(), None)]
        };
        let Some(group) = self.groups.get_mut(&group_id) else {
            return (
                LeaveGroupResponse::default().with_error_code(E::UnknownMemberId.code()),
                out,
            );
        };
        let mut results = Vec::new();
        let mut removed_any = false;
        for (member_id, instance_id) in leaving {
            let target = match &instance_id {
                Some(i) => match group.static_members.get(i) {
                    Some(m) if member_id.is_empty() || *m == member_id => Ok(m.clone()),
                    Some(_) => Err(E::FencedInstanceId),
                    None => Err(E::UnknownMemberId),
                },
                None if group.pending.remove(&member_id).is_some() => {
                    results.push(MemberResponse::default().with_member_id(s(member_id.clone())));
                    continue;
                }
                None if group.members.contains_key(&member_id) => Ok(member_id.clone()),
                None => Err(E::UnknownMemberId),
            };
            let mut r = MemberResponse::default()
                .with_member_id(s(member_id.clone()))
                .with_group_instance_id(instance_id.map(s));
            match target {
                Ok(id) => {
                    if let Some(mut m) = group.remove_member(&id) {
                        if let Some((rid, v)) = m.awaiting_join.take() {
                            out.replies
                                .push((rid, Reply::Join(join_error(v, &id, E::UnknownMemberId))));
                        }
                        if let Some((rid, v)) = m.awaiting_sync.take() {
                            out.replies.push((
                                rid,
                                Reply::Sync(sync_reply(group, v, E::UnknownMemberId, Bytes::new())),
                            ));
                        }
                        removed_any = true;
                    }
                }
                Err(e) => r.error_code = e.code(),
            }
            results.push(r);
        }
        if removed_any {
            self.after_member_removed(&group_id, now, &mut out);
        }
        let response = if version >= 3 {
            LeaveGroupResponse::default().with_members(results)
        } else {
            LeaveGroupResponse::default()
                .with_error_code(results.first().map_or(0, |r| r.error_code))
        };
        (response, out)
    }

    /// A member is gone: rebalance the rest, or finish the join phase without it.
    pub(crate) fn after_member_removed(&mut self, group_id: &str, now: i64, out: &mut Outcome) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(group_id, now, out)
            }
            GroupState::PreparingRebalance => {
                if group.members.is_empty() {
                    self.complete_join(group_id, now, out);
                } else {
                    self.maybe_complete_join(group_id, now, out);
                }
            }
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Fires the timeouts due at `now`: pending member ids, ends of join phases, sessions.
    pub(crate) fn tick_classic(&mut self, now: i64, out: &mut Outcome) {
        // Only groups with something due are touched (a touched group is saved for a revert).
        let ids: Vec<String> = self
            .groups
            .values()
            .filter(|g| {
                g.pending.values().any(|deadline| *deadline <= now)
                    || g.members.values().any(|m| m.session_expired(now))
                    || (g.state == GroupState::PreparingRebalance
                        && g.join_deadline_ms.is_some_and(|d| now >= d))
            })
            .map(|g| g.id.clone())
            .collect();
        for id in ids {
            let Some(group) = self.groups.get_mut(&id) else {
                continue;
            };
            group.pending.retain(|_, deadline| *deadline > now);
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| m.session_expired(now))
                .map(|m| m.id.clone())
                .collect();
            let mut removed = false;
            for m in expired {
                if let Some(mut member) = group.remove_member(&m) {
                    if let Some((rid, v)) = member.awaiting_sync.take() {
                        out.replies.push((
                            rid,
                            Reply::Sync(sync_reply(group, v, E::UnknownMemberId, Bytes::new())),
                        ));
                    }
                    removed = true;
                }
            }
            if removed {
                self.after_member_removed(&id, now, out);
            }
            self.maybe_complete_join(&id, now, out);
        }
    }
}
