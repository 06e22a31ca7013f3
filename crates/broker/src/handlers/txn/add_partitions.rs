//! AddPartitionsToTxn: v0-v3 from producers (one transaction), v4+ batched (several
//! transactions, each either adding or, with `verify_only`, only checking: KIP-890).

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use strand_coordinator::txn::TxnPartitions;

use crate::broker::Broker;
use crate::txns;

/// Each partition with its error (0: none).
type Results = Vec<AddPartitionsToTxnTopicResult>;

fn results(topics: &[AddPartitionsToTxnTopic], error_of: impl Fn(&str, i32) -> i16) -> Results {
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(error_of(t.name.as_str(), *p))
                        })
                        .collect(),
                )
        })
        .collect()
}

/// Adds (or checks) one transaction's partitions.
async fn one(
    broker: &Broker,
    version: i16,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
) -> Results {
    let image = broker.image();
    // Unknown partitions fail the whole request; the others are OPERATION_NOT_ATTEMPTED.
    let unknown: BTreeSet<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), *p)))
        .filter(|(t, p)| {
            image
                .topic(t)
                .is_none_or(|t| !t.partitions.iter().any(|x| x.partition == *p))
        })
        .collect();
    if !unknown.is_empty() {
        return results(topics, |t, p| {
            if unknown.contains(&(t.to_string(), p)) {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                ResponseError::OperationNotAttempted.code()
            }
        });
    }
    let mut wanted = TxnPartitions::new();
    for t in topics {
        wanted
            .entry(t.name.to_string())
            .or_default()
            .extend(t.partitions.iter().copied());
    }
    let all = |e: ResponseError| {
        let code = super::fenced_as(version, 2, e).code();
        results(topics, |_, _| code)
    };
    if verify_only {
        let checked = txns::read(broker, id, |c| {
            c.verify_partitions(id, producer_id, epoch, &wanted)
        })
        .await;
        return match checked {
            Ok(Ok(per_partition)) => results(topics, |t, p| {
                per_partition
                    .iter()
                    .find(|(pt, pp, _)| pt == t && *pp == p)
                    .and_then(|(_, _, e)| *e)
                    .map_or(0, |e| e.code())
            }),
            Ok(Err(e)) | Err(e) => all(e),
        };
    }
    let added = txns::write(broker, id, |c, now| {
        c.add_partitions(id, producer_id, epoch, &wanted, now)
    })
    .await;
    match added {
        Ok(Ok(())) => results(topics, |_, _| 0),
        Ok(Err(e)) | Err(e) => all(e),
    }
}

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if version < 4 {
        let r = one(
            broker,
            version,
            req.v3_and_below_transactional_id.as_str(),
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            &req.v3_and_below_topics,
            false,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(r);
    }
    let mut out = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let r = one(
            broker,
            version,
            t.transactional_id.as_str(),
            t.producer_id.0,
            t.producer_epoch,
            &t.topics,
            t.verify_only,
        )
        .await;
        out.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(r),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(out)
}
