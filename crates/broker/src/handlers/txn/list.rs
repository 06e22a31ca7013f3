//! ListTransactions: the transactional ids this broker coordinates, filtered by state,
//! producer id and (v1+) how long the transaction has run.

use std::collections::BTreeSet;

use kafka_protocol::messages::list_transactions_response::TransactionState as Listed;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use strand_coordinator::txn::TxnState;

use crate::broker::{now_ms, Broker};
use crate::handlers::str;

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut states = BTreeSet::new();
    let mut unknown = Vec::new();
    for s in &req.state_filters {
        match TxnState::from_name(s.as_str()) {
            Some(st) => {
                states.insert(st);
            }
            None => unknown.push(s.clone()),
        }
    }
    let producer_ids: BTreeSet<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let duration = if version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let mut listed = Vec::new();
    // With state filters that are all unknown, nothing can match.
    if unknown.is_empty() || !states.is_empty() || req.state_filters.is_empty() {
        let now = now_ms();
        for shard in broker.txns.host.shard_ids() {
            let found = broker
                .txns
                .host
                .read(broker, shard, |c| {
                    c.list(&states, &producer_ids, duration, now)
                })
                .await;
            match found {
                Ok(f) => listed.extend(f),
                Err(e) => return ListTransactionsResponse::default().with_error_code(e.code()),
            }
        }
    }
    listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    let transaction_states = listed
        .into_iter()
        .map(|t| {
            Listed::default()
                .with_transactional_id(TransactionalId(str(t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(str(t.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(transaction_states)
}
