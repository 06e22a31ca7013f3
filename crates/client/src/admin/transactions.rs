//! Transactions for operators: ListTransactions and DescribeTransactions (asked of the
//! coordinators), DescribeProducers (asked of partition leaders), and aborting a hanging
//! transaction by writing its ABORT marker (WriteTxnMarkers) — the jobs of Kafka's
//! `kafka-transactions.sh`.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::*;

use super::{s, Admin};
use crate::cluster::Lane;
use crate::error::{check, Error, Result};
use crate::types::TopicPartition;

/// A transactional id as ListTransactions gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: String,
    pub coordinator: i32,
}

/// A transactional id as DescribeTransactions gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    pub transactional_id: String,
    pub coordinator: i32,
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// -1 when no transaction has started.
    pub start_time_ms: i64,
    pub partitions: Vec<TopicPartition>,
}

/// A producer a partition's log knows (DescribeProducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction, -1 if none.
    pub current_txn_start_offset: i64,
}

/// The ABORT marker to write for a hanging transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortSpec {
    pub partition: TopicPartition,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
}

impl Admin {
    /// Every transactional id the cluster's coordinators know, filtered by state names
    /// (`Ongoing`, ...) and producer ids (both: all when empty), and (`min_duration_ms` >= 0)
    /// running longer than that.
    pub async fn list_transactions(
        &self,
        states: &[String],
        producer_ids: &[i64],
        min_duration_ms: i64,
    ) -> Result<Vec<TransactionListing>> {
        let view = self.cluster.refresh(None, false).await?;
        let mut out = Vec::new();
        for &node in view.brokers.keys() {
            let conn = self.cluster.conn(node, Lane::Data).await?;
            let v = conn.version_for::<ListTransactionsRequest>()?;
            let req = ListTransactionsRequest::default()
                .with_state_filters(states.iter().map(|x| s(x)).collect())
                .with_producer_id_filters(producer_ids.iter().map(|p| ProducerId(*p)).collect())
                .with_duration_filter(if v >= 1 { min_duration_ms } else { -1 });
            let resp = self.retrying(|| conn.send_at(&req, v)).await?;
            check(resp.error_code, || {
                format!("ListTransactions on broker {node}")
            })?;
            out.extend(resp.transaction_states.iter().map(|t| TransactionListing {
                transactional_id: t.transactional_id.to_string(),
                producer_id: t.producer_id.0,
                state: t.transaction_state.to_string(),
                coordinator: node,
            }));
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }

    /// The state of `transactional_id`, from its coordinator.
    pub async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription> {
        let node = self.cluster.find_coordinator(transactional_id, 1).await?;
        let conn = self.cluster.conn(node, Lane::Data).await?;
        let req = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(s(transactional_id))]);
        let resp = self.retrying(|| conn.send(&req)).await?;
        let t = resp
            .transaction_states
            .first()
            .ok_or_else(|| Error::protocol("DescribeTransactions: empty answer"))?;
        check(t.error_code, || {
            format!("transactional id {transactional_id}")
        })?;
        Ok(TransactionDescription {
            transactional_id: t.transactional_id.to_string(),
            coordinator: node,
            state: t.transaction_state.to_string(),
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
            timeout_ms: t.transaction_timeout_ms,
            start_time_ms: t.transaction_start_time_ms,
            partitions: t
                .topics
                .iter()
                .flat_map(|td| {
                    td.partitions
                        .iter()
                        .map(|p| TopicPartition::new(td.topic.to_string(), *p))
                })
                .collect(),
        })
    }

    /// The producers the leader of `tp` knows, with their open transactions.
    pub async fn describe_producers(&self, tp: &TopicPartition) -> Result<Vec<ProducerState>> {
        let leader = self.leader_of(tp).await?;
        let conn = self.cluster.conn(leader, Lane::Data).await?;
        let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(TopicName(s(&tp.topic)))
            .with_partition_indexes(vec![tp.partition])]);
        let resp = self.retrying(|| conn.send(&req)).await?;
        let p = resp
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == tp.partition)
            .ok_or_else(|| Error::protocol("DescribeProducers: no answer for the partition"))?;
        check(p.error_code, || {
            format!("topic {} partition {}", tp.topic, tp.partition)
        })?;
        Ok(p.active_producers
            .iter()
            .map(|a| ProducerState {
                producer_id: a.producer_id.0,
                producer_epoch: a.producer_epoch,
                last_sequence: a.last_sequence,
                last_timestamp: a.last_timestamp,
                coordinator_epoch: a.coordinator_epoch,
                current_txn_start_offset: a.current_txn_start_offset,
            })
            .collect())
    }

    /// Writes an ABORT marker for a transaction left open on a partition (a hanging
    /// transaction: its coordinator no longer knows it), so the partition's last stable
    /// offset can move on.
    pub async fn abort_transaction(&self, spec: &AbortSpec) -> Result<()> {
        let leader = self.leader_of(&spec.partition).await?;
        let conn = self.cluster.conn(leader, Lane::Data).await?;
        let req =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(spec.producer_id))
                .with_producer_epoch(spec.producer_epoch)
                .with_transaction_result(false)
                .with_coordinator_epoch(spec.coordinator_epoch)
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(TopicName(s(&spec.partition.topic)))
                    .with_partition_indexes(vec![spec.partition.partition])])]);
        let resp = self.retrying(|| conn.send(&req)).await?;
        let code = resp
            .markers
            .iter()
            .flat_map(|m| m.topics.iter())
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.error_code)
            .find(|c| *c != 0)
            .unwrap_or(0);
        check(code, || {
            format!(
                "abort of producer {} on {}-{}",
                spec.producer_id, spec.partition.topic, spec.partition.partition
            )
        })
    }

    async fn leader_of(&self, tp: &TopicPartition) -> Result<i32> {
        let view = self
            .cluster
            .refresh(Some(std::slice::from_ref(&tp.topic)), false)
            .await?;
        view.leader(&tp.topic, tp.partition).ok_or_else(|| {
            Error::kafka(3, format!("topic {} partition {}", tp.topic, tp.partition))
        })
    }

    /// Partitions led by `broker` (every broker: `None`), by topic, for `find-hanging`.
    pub async fn partitions_led_by(
        &self,
        broker: Option<i32>,
    ) -> Result<BTreeMap<String, Vec<i32>>> {
        let view = self.cluster.refresh(None, false).await?;
        let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (name, t) in &view.topics {
            for p in &t.partitions {
                if broker.is_none_or(|b| p.leader == b) {
                    out.entry(name.clone()).or_default().push(p.partition);
                }
            }
        }
        Ok(out)
    }
}
