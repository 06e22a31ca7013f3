//! TxnOffsetCommit: offsets committed inside a transaction (`sendOffsetsToTransaction`). The
//! group's `__consumer_offsets` partition must be in the transaction (AddOffsetsToTxn): the
//! transaction coordinator is asked first, as Kafka's brokers do (KIP-890). The offsets are
//! held by the group coordinator until the transaction's marker.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use strand_coordinator::txn::TxnPartitions;

use crate::broker::Broker;
use crate::groups::{self, OFFSETS_TOPIC};
use crate::txns;

const FIRST_WITH_ABORTABLE: i16 = 4;

fn all_failed(req: &TxnOffsetCommitRequest, e: ResponseError) -> TxnOffsetCommitResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(e.code())
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// Whether the group's partition is in the producer's ongoing transaction.
async fn verify(
    broker: &Broker,
    version: i16,
    req: &TxnOffsetCommitRequest,
) -> Result<(), ResponseError> {
    let id = req.transactional_id.as_str();
    let partition = groups::shard_of(broker, req.group_id.as_str());
    let wanted = TxnPartitions::from([(OFFSETS_TOPIC.to_string(), BTreeSet::from([partition]))]);
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    let checked = txns::read(broker, id, |c| c.verify_partitions(id, pid, epoch, &wanted)).await?;
    let not_added = if version >= FIRST_WITH_ABORTABLE {
        ResponseError::TransactionAbortable
    } else {
        ResponseError::InvalidTxnState
    };
    match checked {
        Ok(per_partition) if per_partition.iter().all(|(_, _, e)| e.is_none()) => Ok(()),
        Ok(_) => Err(not_added),
        Err(ResponseError::ProducerFenced) => Err(ResponseError::InvalidProducerEpoch),
        Err(ResponseError::ConcurrentTransactions) => Err(ResponseError::CoordinatorLoadInProgress),
        Err(e) => Err(e),
    }
}

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    if req.group_id.is_empty() {
        return all_failed(&req, ResponseError::InvalidGroupId);
    }
    if let Err(e) = verify(broker, version, &req).await {
        return all_failed(&req, e);
    }
    let image = broker.image();
    let exists = |topic: &str, p: i32| {
        image
            .topic(topic)
            .is_some_and(|t| t.partitions.iter().any(|x| x.partition == p))
    };
    let written = groups::write(broker, req.group_id.as_str(), |c, now| {
        c.txn_commit_offsets(&req, version, now, exists)
    })
    .await;
    match written {
        Ok(r) => r,
        Err(e) => {
            // Old clients do not know COORDINATOR_LOAD_IN_PROGRESS here.
            let e = if version < 2 && e == ResponseError::CoordinatorLoadInProgress {
                ResponseError::CoordinatorNotAvailable
            } else {
                e
            };
            all_failed(&req, e)
        }
    }
}
