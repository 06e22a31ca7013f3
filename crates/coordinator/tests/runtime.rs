//! Both coordinators driven through the runtime with a partition writer that can be made to
//! fail: a write whose records cannot be appended leaves the state as it was and fails the
//! replies it held. No sockets, no sleeps.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strand_coordinator::txn::{
    EndResult, InitResult, TxnConfig, TxnCoordinator, TxnPartitions, TxnState,
};
use strand_coordinator::*;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A partition that takes records until told to fail.
#[derive(Default)]
struct Log {
    end: i64,
    fail: bool,
    kinds: Vec<BatchKind>,
}

impl<R> PartitionWriter<R> for Log {
    fn append(&mut self, records: &[R], kind: BatchKind, _now: i64) -> Result<i64, WriteError> {
        if self.fail {
            return Err(WriteError::NotAvailable("disk full".into()));
        }
        self.end += records.len().max(1) as i64;
        self.kinds.push(kind);
        Ok(self.end)
    }
}

fn join(member: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"m"))])
}

fn client() -> ClientInfo {
    ClientInfo {
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
    }
}

#[test]
fn a_failed_group_append_leaves_the_group_as_it_was_and_fails_the_held_sync() {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    };
    let mut rt = ShardRuntime::new(GroupCoordinator::new(config), 0);
    let mut log = Log::default();
    // Join (member id first), then the join completes at once: one member.
    let w = rt
        .write(&mut log, 0, |c, now| {
            ((), c.join(join(""), 9, client(), 1, now))
        })
        .unwrap();
    let Reply::Join(r) = &rt.durable(w.wait_for, 0)[0].1 else {
        panic!()
    };
    let member = r.member_id.to_string();
    let w = rt
        .write(&mut log, 0, |c, now| {
            ((), c.join(join(&member), 9, client(), 2, now))
        })
        .unwrap();
    let replies = rt.durable(w.wait_for, 0);
    let Reply::Join(r) = &replies[0].1 else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    let generation = r.generation_id;
    let before = format!("{:?}", rt.state().group("g").unwrap());

    // The leader's SyncGroup writes the group's metadata: the append fails.
    log.fail = true;
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id(generation)
        .with_member_id(s(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(Bytes::from_static(b"a"))]);
    let failed = rt
        .write(&mut log, 0, |c, now| ((), c.sync(sync.clone(), 5, 3, now)))
        .unwrap_err();
    assert_eq!(failed.requests, vec![3], "the held SyncGroup is failed");
    assert_eq!(
        format!("{:?}", rt.state().group("g").unwrap()),
        before,
        "the group is as it was before the SyncGroup"
    );
    assert_eq!(
        rt.state().group("g").unwrap().state,
        GroupState::CompletingRebalance
    );

    // Once the partition takes writes again, the same SyncGroup goes through.
    log.fail = false;
    let w = rt
        .write(&mut log, 0, |c, now| ((), c.sync(sync, 5, 4, now)))
        .unwrap();
    let replies = rt.durable(w.wait_for, 0);
    assert_eq!(replies[0].0, 4);
    assert_eq!(rt.state().group("g").unwrap().state, GroupState::Stable);
}

#[test]
fn a_failed_offset_commit_leaves_no_offset_behind() {
    let mut rt = ShardRuntime::new(GroupCoordinator::new(GroupConfig::default()), 0);
    let mut log = Log {
        fail: true,
        ..Log::default()
    };
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(42)])]);
    let failed = rt.write(&mut log, 0, |c, now| {
        c.commit_offsets(&req, 8, now, |_, _| true)
    });
    assert!(failed.is_err());
    assert!(rt.state().committed("g").is_none());
    assert!(
        rt.state().group("g").is_none(),
        "no simple group was made either"
    );
}

fn txn_rt() -> ShardRuntime<TxnCoordinator> {
    ShardRuntime::new(TxnCoordinator::new(TxnConfig::default()), 0)
}

fn init(rt: &mut ShardRuntime<TxnCoordinator>, log: &mut Log, fresh: i64, now: i64) -> InitResult {
    let w = rt
        .write(log, now, |c, now| {
            c.init_producer_id("tx", 60_000, None, fresh, now)
        })
        .unwrap();
    rt.durable(w.wait_for, now);
    w.value
}

fn partitions(topic: &str, ps: &[i32]) -> TxnPartitions {
    TxnPartitions::from([(
        topic.to_string(),
        ps.iter().copied().collect::<BTreeSet<_>>(),
    )])
}

#[test]
fn a_failed_transaction_append_changes_nothing_and_a_pending_write_blocks_others() {
    let mut rt = txn_rt();
    let mut log = Log::default();
    assert_eq!(
        init(&mut rt, &mut log, 1000, 0),
        InitResult::Ready {
            producer_id: 1000,
            producer_epoch: 0
        }
    );
    // AddPartitions whose record is not yet durable: the id is pending.
    let w = rt
        .write(&mut log, 1, |c, now| {
            c.add_partitions("tx", 1000, 0, &partitions("t", &[0]), now)
        })
        .unwrap();
    let (second, _) = rt
        .state()
        .clone()
        .add_partitions("tx", 1000, 0, &partitions("t", &[1]), 1);
    assert_eq!(second, Err(E::ConcurrentTransactions));
    rt.durable(w.wait_for, 1);
    assert_eq!(rt.state().get("tx").unwrap().value.state, TxnState::Ongoing);

    // EndTxn whose PrepareCommit cannot be appended: still Ongoing, nothing pending.
    log.fail = true;
    let before = rt.state().get("tx").unwrap().clone();
    let failed = rt.write(&mut log, 2, |c, now| {
        let (r, out) = c.end_txn("tx", 1000, 0, true, false, now);
        (r, out)
    });
    assert!(failed.is_err());
    assert_eq!(rt.state().get("tx").unwrap(), &before);

    log.fail = false;
    let w = rt
        .write(&mut log, 3, |c, now| {
            c.end_txn("tx", 1000, 0, true, false, now)
        })
        .unwrap();
    let EndResult::Prepared(prepared) = w.value else {
        panic!("{:?}", w.value)
    };
    assert_eq!(prepared.partitions, partitions("t", &[0]));
    // Until the PrepareCommit is durable the state has not moved.
    assert_eq!(rt.state().get("tx").unwrap().value.state, TxnState::Ongoing);
    rt.durable(w.wait_for, 3);
    assert_eq!(
        rt.state().get("tx").unwrap().value.state,
        TxnState::PrepareCommit
    );
    assert_eq!(rt.state().prepared(), vec![prepared.clone()]);
    let w = rt
        .write(&mut log, 4, |c, now| c.complete(&prepared, now))
        .unwrap();
    rt.durable(w.wait_for, 4);
    assert_eq!(
        rt.state().get("tx").unwrap().value.state,
        TxnState::CompleteCommit
    );
    // A retried EndTxn(commit) is answered as done; an abort now is refused.
    let (retry, out) = rt.state().clone().end_txn("tx", 1000, 0, true, false, 5);
    assert!(matches!(retry, EndResult::Done { .. }) && out.records.is_empty());
    let (abort, _) = rt.state().clone().end_txn("tx", 1000, 0, false, false, 5);
    assert_eq!(abort, EndResult::Failed(E::InvalidTxnState));
}

#[test]
fn a_second_instance_fences_the_first_and_aborts_its_transaction() {
    let mut rt = txn_rt();
    let mut log = Log::default();
    init(&mut rt, &mut log, 7, 0);
    let w = rt
        .write(&mut log, 1, |c, now| {
            c.add_partitions("tx", 7, 0, &partitions("t", &[0, 1]), now)
        })
        .unwrap();
    rt.durable(w.wait_for, 1);
    // The second instance: the open transaction is aborted at epoch 1.
    let InitResult::Fencing(prepared) = init(&mut rt, &mut log, 8, 2) else {
        panic!()
    };
    assert_eq!((prepared.producer_epoch, prepared.commit), (1, false));
    // The first instance is fenced.
    let (r, _) = rt.state().clone().end_txn("tx", 7, 0, true, false, 3);
    assert_eq!(r, EndResult::Failed(E::ProducerFenced));
    // While the abort is unfinished, a retry of InitProducerId must wait.
    let (r, _) = rt
        .state()
        .clone()
        .init_producer_id("tx", 60_000, None, 9, 3);
    assert_eq!(r, InitResult::Failed(E::ConcurrentTransactions));
    let w = rt
        .write(&mut log, 3, |c, now| c.complete(&prepared, now))
        .unwrap();
    rt.durable(w.wait_for, 3);
    assert_eq!(
        init(&mut rt, &mut log, 9, 4),
        InitResult::Ready {
            producer_id: 7,
            producer_epoch: 2
        }
    );
}

#[test]
fn transactions_past_their_timeout_are_aborted_at_a_new_epoch() {
    let mut rt = txn_rt();
    let mut log = Log::default();
    init(&mut rt, &mut log, 7, 0);
    let w = rt
        .write(&mut log, 1_000, |c, now| {
            c.add_partitions("tx", 7, 0, &partitions("t", &[0]), now)
        })
        .unwrap();
    rt.durable(w.wait_for, 1_000);
    let w = rt.write(&mut log, 60_000, |c, now| c.tick(now)).unwrap();
    assert!(w.value.is_empty(), "not yet timed out");
    let w = rt.write(&mut log, 61_001, |c, now| c.tick(now)).unwrap();
    rt.durable(w.wait_for, 61_001);
    assert_eq!(w.value.len(), 1);
    assert_eq!(w.value[0].producer_epoch, 1);
    assert_eq!(
        rt.state().get("tx").unwrap().value.state,
        TxnState::PrepareAbort
    );
}

#[test]
fn epoch_bumping_end_txn_moves_the_epoch_and_accepts_a_retry() {
    let mut rt = txn_rt();
    let mut log = Log::default();
    init(&mut rt, &mut log, 7, 0);
    let w = rt
        .write(&mut log, 1, |c, now| {
            c.add_partitions("tx", 7, 0, &partitions("t", &[0]), now)
        })
        .unwrap();
    rt.durable(w.wait_for, 1);
    let w = rt
        .write(&mut log, 2, |c, now| c.end_txn("tx", 7, 0, true, true, now))
        .unwrap();
    rt.durable(w.wait_for, 2);
    let EndResult::Prepared(p) = w.value else {
        panic!()
    };
    assert_eq!(p.producer_epoch, 1, "markers carry the new epoch");
    let w = rt.write(&mut log, 3, |c, now| c.complete(&p, now)).unwrap();
    rt.durable(w.wait_for, 3);
    let (retry, _) = rt.state().clone().end_txn("tx", 7, 0, true, true, 4);
    assert_eq!(
        retry,
        EndResult::Done {
            producer_id: 7,
            producer_epoch: 1
        }
    );
    // The next transaction runs at the new epoch.
    let w = rt
        .write(&mut log, 5, |c, now| {
            c.add_partitions("tx", 7, 1, &partitions("t", &[0]), now)
        })
        .unwrap();
    assert_eq!(w.value, Ok(()));
}

fn txn_commit(offset: i64) -> TxnOffsetCommitRequest {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s("tx")))
        .with_group_id(GroupId(s("g")))
        .with_producer_id(ProducerId(7))
        .with_producer_epoch(0)
        .with_generation_id(-1)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])])
}

#[test]
fn transactional_offsets_wait_for_their_marker() {
    let mut rt = ShardRuntime::new(GroupCoordinator::new(GroupConfig::default()), 0);
    let mut log = Log::default();
    let committed = |rt: &ShardRuntime<GroupCoordinator>| {
        rt.state()
            .fetch_offsets("g", Some(&[("t".to_string(), vec![0])]))[0]
            .1[0]
            .1
    };
    let w = rt
        .write(&mut log, 0, |c, now| {
            c.txn_commit_offsets(&txn_commit(5), 3, now, |_, _| true)
        })
        .unwrap();
    rt.durable(w.wait_for, 0);
    assert_eq!(w.value.topics[0].partitions[0].error_code, 0);
    assert_eq!(
        log.kinds.last(),
        Some(&BatchKind::Transactional {
            producer_id: 7,
            producer_epoch: 0
        })
    );
    assert_eq!(committed(&rt), -1, "not visible before the marker");
    assert_eq!(rt.state().unstable_offsets("g").len(), 1);
    // An aborted transaction's offsets go.
    let marker = |commit| BatchKind::Marker {
        producer_id: 7,
        producer_epoch: 0,
        commit,
        coordinator_epoch: 0,
    };
    let w = rt
        .write(&mut log, 1, |c, now| {
            c.complete_txn(7, false, now);
            let out = Outcome {
                kind: marker(false),
                ..Outcome::default()
            };
            ((), out)
        })
        .unwrap();
    rt.durable(w.wait_for, 1);
    assert_eq!(committed(&rt), -1);
    assert!(rt.state().unstable_offsets("g").is_empty());
    // A committed one's become the group's.
    rt.write(&mut log, 2, |c, now| {
        c.txn_commit_offsets(&txn_commit(9), 3, now, |_, _| true)
    })
    .unwrap();
    rt.write(&mut log, 3, |c, now| {
        c.complete_txn(7, true, now);
        ((), Outcome::default())
    })
    .unwrap();
    assert_eq!(committed(&rt), 9);
    // Replay of the same batches and markers rebuilds the same state.
    let mut replayed = GroupCoordinator::new(GroupConfig::default());
    let record = GroupRecord::Offset {
        group: "g".into(),
        topic: "t".into(),
        partition: 0,
        value: Some(records::OffsetValue {
            offset: 9,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 2,
            expire_timestamp_ms: None,
        }),
    };
    Shard::replay(
        &mut replayed,
        Replayed::Record {
            record: &record,
            producer_id: Some(7),
        },
        4,
    );
    assert!(replayed.committed("g").is_none());
    Shard::replay(
        &mut replayed,
        Replayed::Marker {
            producer_id: 7,
            commit: true,
        },
        4,
    );
    assert_eq!(replayed.committed("g").unwrap().len(), 1);
}
