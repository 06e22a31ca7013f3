//! The transaction APIs: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! TxnOffsetCommit, ListTransactions, DescribeTransactions and WriteTxnMarkers, one module each. They translate
//! to and from the wire; the transaction coordinator (`strand_coordinator::txn`) decides, and
//! `crate::txns` writes the markers.

pub mod add_offsets;
pub mod add_partitions;
pub mod describe;
pub mod end_txn;
pub mod init_producer_id;
pub mod list;
pub mod txn_offset_commit;
pub mod write_markers;

use kafka_protocol::error::ResponseError;

/// Old versions of a request know no PRODUCER_FENCED (KIP-588): they get
/// INVALID_PRODUCER_EPOCH, as Kafka answers them.
pub fn fenced_as(version: i16, first_with_fenced: i16, e: ResponseError) -> ResponseError {
    if e == ResponseError::ProducerFenced && version < first_with_fenced {
        ResponseError::InvalidProducerEpoch
    } else {
        e
    }
}
