//! DescribeTransactions: state, producer, timeout, start time and partitions of each id.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};

use crate::broker::Broker;
use crate::handlers::str;
use crate::txns;

pub async fn handle(
    broker: &Broker,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut out = Vec::with_capacity(req.transactional_ids.len());
    for id in &req.transactional_ids {
        let base = TransactionState::default().with_transactional_id(id.clone());
        if id.is_empty() {
            out.push(base.with_error_code(ResponseError::InvalidRequest.code()));
            continue;
        }
        let found = txns::read(broker, id.as_str(), |c| c.get(id.as_str()).cloned()).await;
        let m = match found {
            Ok(Some(m)) if m.value.producer_epoch >= 0 => m,
            Ok(_) => {
                out.push(base.with_error_code(ResponseError::TransactionalIdNotFound.code()));
                continue;
            }
            Err(e) => {
                out.push(base.with_error_code(e.code()));
                continue;
            }
        };
        let v = &m.value;
        let topics = v
            .partitions
            .iter()
            .map(|(t, ps)| {
                TopicData::default()
                    .with_topic(TopicName(str(t.clone())))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect();
        out.push(
            base.with_transaction_state(str(v.state.name()))
                .with_transaction_timeout_ms(v.timeout_ms)
                .with_transaction_start_time_ms(v.start_ms)
                .with_producer_id(ProducerId(v.producer_id))
                .with_producer_epoch(v.producer_epoch)
                .with_topics(topics),
        );
    }
    DescribeTransactionsResponse::default().with_transaction_states(out)
}
