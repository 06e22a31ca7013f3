//! AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction, so that
//! TxnOffsetCommit may write there and the marker reaches it.

use std::collections::BTreeSet;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use strand_coordinator::txn::TxnPartitions;

use crate::broker::Broker;
use crate::groups::{self, OFFSETS_TOPIC};
use crate::txns;

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let fail = |e| {
        AddOffsetsToTxnResponse::default().with_error_code(super::fenced_as(version, 2, e).code())
    };
    if let Err(e) = groups::ensure_offsets_topic(broker).await {
        tracing::error!(error = %e.message, "cannot create {OFFSETS_TOPIC}");
        return fail(kafka_protocol::error::ResponseError::CoordinatorNotAvailable);
    }
    let partition = groups::shard_of(broker, req.group_id.as_str());
    let wanted = TxnPartitions::from([(OFFSETS_TOPIC.to_string(), BTreeSet::from([partition]))]);
    let id = req.transactional_id.to_string();
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    match txns::write(broker, &id, |c, now| {
        c.add_partitions(&id, pid, epoch, &wanted, now)
    })
    .await
    {
        Ok(Ok(())) => AddOffsetsToTxnResponse::default(),
        Ok(Err(e)) | Err(e) => fail(e),
    }
}
