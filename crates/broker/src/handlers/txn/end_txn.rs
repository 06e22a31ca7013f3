//! EndTxn: commits or aborts the ongoing transaction. The answer comes once the decision is
//! durable and, unless a marker cannot be written now, once every marker is written and the
//! transaction is complete (so a client's next transaction never meets the last one's
//! CONCURRENT_TRANSACTIONS). From v5 the transaction ends at a new epoch (KIP-890), which the
//! answer carries.

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use strand_coordinator::txn::EndResult;

use crate::broker::Broker;
use crate::txns;

const FIRST_WITH_EPOCH_BUMP: i16 = 5;

pub async fn handle(broker: &Arc<Broker>, version: i16, req: EndTxnRequest) -> EndTxnResponse {
    let id = req.transactional_id.to_string();
    let (pid, epoch, commit) = (req.producer_id.0, req.producer_epoch, req.committed);
    let bump = version >= FIRST_WITH_EPOCH_BUMP;
    let decided = txns::write(broker, &id, |c, now| {
        c.end_txn(&id, pid, epoch, commit, bump, now)
    })
    .await;
    let ok = |producer_id: i64, producer_epoch: i16| {
        EndTxnResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
    };
    match decided {
        Ok(EndResult::Prepared(prepared)) => {
            let (producer_id, producer_epoch) = (prepared.producer_id, prepared.producer_epoch);
            // The decision is durable: a marker that cannot be written now is retried later.
            let _ = txns::finish(broker, prepared).await;
            ok(producer_id, producer_epoch)
        }
        Ok(EndResult::Done {
            producer_id,
            producer_epoch,
        }) => ok(producer_id, producer_epoch),
        Ok(EndResult::Failed(e)) | Err(e) => EndTxnResponse::default()
            .with_error_code(super::fenced_as(version, 2, e).code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}
