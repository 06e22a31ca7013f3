//! InitProducerId: a producer id and epoch for an idempotent producer (a new id each time),
//! or for a transactional id (through the transaction coordinator, which fences the previous
//! instance of the id).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use strand_coordinator::txn::InitResult;

use crate::broker::Broker;
use crate::txns;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let fail = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(super::fenced_as(version, 4, e).code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let ok = |producer_id: i64, producer_epoch: i16| {
        InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
    };
    let expected = (req.producer_id.0, req.producer_epoch);
    if version >= 3 && ((expected.0 == -1) != (expected.1 == -1)) {
        return fail(ResponseError::InvalidRequest);
    }
    let Some(id) = req.transactional_id.as_ref().map(|t| t.to_string()) else {
        // Idempotent only: a fresh id at epoch 0, whatever the client held.
        return match broker.producer_ids.next(broker).await {
            Ok(pid) => ok(pid, 0),
            Err(e) => fail(e),
        };
    };
    if id.is_empty() {
        return fail(ResponseError::InvalidRequest);
    }
    let fresh = match broker.producer_ids.next(broker).await {
        Ok(pid) => pid,
        Err(e) => return fail(e),
    };
    let expected = (expected.0 >= 0).then_some(expected);
    let timeout = req.transaction_timeout_ms;
    let decided = txns::write(broker, &id, |c, now| {
        c.init_producer_id(&id, timeout, expected, fresh, now)
    })
    .await;
    match decided {
        Ok(InitResult::Ready {
            producer_id,
            producer_epoch,
        }) => ok(producer_id, producer_epoch),
        Ok(InitResult::Fencing(prepared)) => {
            // The previous instance's transaction is aborted before the client retries.
            let _ = txns::finish(broker, prepared).await;
            fail(ResponseError::ConcurrentTransactions)
        }
        Ok(InitResult::Failed(e)) | Err(e) => fail(e),
    }
}
