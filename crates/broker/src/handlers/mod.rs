//! One module per API. [`dispatch`] decodes the body at the request's version, calls the
//! handler, and encodes its answer; decoding errors close the connection, as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use strand_protocol::frame::{decode_body, encode_response, RequestFrame};

use crate::broker::Broker;
use crate::connection::{Reply, Response};

mod api_versions;
mod configs;
mod consumer_group;
mod create_partitions;
mod create_topics;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_log_dirs;
mod describe_producers;
mod describe_quorum;
mod fetch;
mod find_coordinator;
mod group_admin;
mod list_offsets;
mod membership;
mod metadata;
mod offsets;
mod produce;
mod txn;

pub async fn dispatch(
    broker: &Arc<Broker>,
    frame: RequestFrame,
    session: &crate::connection::Session,
) -> Reply {
    let peer = session.peer;
    let listener = &*session.listener;
    let key = frame.api_key;
    let table = broker.api_table();
    if !table.is_supported(key, frame.version()) {
        if key == ApiKey::ApiVersions {
            return api_versions::unsupported(&frame, table);
        }
        return Reply::Close(format!("{key:?} v{} is not supported", frame.version()));
    }
    match key {
        ApiKey::ApiVersions => run(
            &frame,
            |_r: kafka_protocol::messages::ApiVersionsRequest| api_versions::handle(table),
        ),
        ApiKey::Metadata => {
            run_async(&frame, |r| metadata::handle(broker, &frame, r, listener)).await
        }
        ApiKey::CreateTopics => {
            run_async(&frame, |r| create_topics::handle(broker, &frame, r)).await
        }
        ApiKey::DeleteTopics => {
            run_async(&frame, |r| delete_topics::handle(broker, &frame, r)).await
        }
        ApiKey::CreatePartitions => {
            run_async(&frame, |r| create_partitions::handle(broker, r)).await
        }
        ApiKey::Produce => match decode_body(&frame) {
            Ok(r) => produce::handle(broker, frame, r),
            Err(e) => malformed(&frame, e),
        },
        ApiKey::Fetch => match decode_body(&frame) {
            Ok(r) => fetch::handle(broker, &frame, r),
            Err(e) => malformed(&frame, e),
        },
        ApiKey::ListOffsets => run(&frame, |r| list_offsets::handle(broker, &frame, r)),
        ApiKey::DescribeConfigs => run(&frame, |r| configs::describe(broker, &frame, r)),
        ApiKey::AlterConfigs => run_async(&frame, |r| configs::alter(broker, r)).await,
        ApiKey::IncrementalAlterConfigs => {
            run_async(&frame, |r| configs::incremental_alter(broker, r)).await
        }
        ApiKey::DescribeQuorum => run(&frame, |r| describe_quorum::handle(broker, &frame, r)),
        ApiKey::DescribeCluster => run(&frame, |r| describe_cluster::handle(broker, r, listener)),
        ApiKey::DescribeLogDirs => run(&frame, |r| describe_log_dirs::handle(broker, r)),
        ApiKey::FindCoordinator => {
            run_async(&frame, |r| {
                find_coordinator::handle(broker, &frame, r, listener)
            })
            .await
        }
        ApiKey::JoinGroup => match decode_body(&frame) {
            Ok(r) => membership::join(broker, &frame, r, peer).await,
            Err(e) => malformed(&frame, e),
        },
        ApiKey::SyncGroup => match decode_body(&frame) {
            Ok(r) => membership::sync(broker, &frame, r).await,
            Err(e) => malformed(&frame, e),
        },
        ApiKey::Heartbeat => run_async(&frame, |r| membership::heartbeat(broker, &frame, r)).await,
        ApiKey::LeaveGroup => run_async(&frame, |r| membership::leave(broker, &frame, r)).await,
        ApiKey::OffsetCommit => run_async(&frame, |r| offsets::commit(broker, &frame, r)).await,
        ApiKey::OffsetFetch => run_async(&frame, |r| offsets::fetch(broker, &frame, r)).await,
        ApiKey::OffsetDelete => run_async(&frame, |r| offsets::delete(broker, r)).await,
        ApiKey::DeleteRecords => run_async(&frame, |r| delete_records::handle(broker, r)).await,
        ApiKey::ListGroups => run_async(&frame, |r| group_admin::list(broker, &frame, r)).await,
        ApiKey::DescribeGroups => {
            run_async(&frame, |r| group_admin::describe(broker, &frame, r)).await
        }
        ApiKey::DeleteGroups => run_async(&frame, |r| group_admin::delete(broker, r)).await,
        ApiKey::ConsumerGroupHeartbeat => match decode_body(&frame) {
            Ok(r) => respond(
                &frame,
                &consumer_group::heartbeat(broker, &frame, r, peer).await,
            ),
            Err(e) => malformed(&frame, e),
        },
        ApiKey::InitProducerId => {
            let v = frame.version();
            run_async(&frame, |r| txn::init_producer_id::handle(broker, v, r)).await
        }
        ApiKey::AddPartitionsToTxn => {
            let v = frame.version();
            run_async(&frame, |r| txn::add_partitions::handle(broker, v, r)).await
        }
        ApiKey::AddOffsetsToTxn => {
            let v = frame.version();
            run_async(&frame, |r| txn::add_offsets::handle(broker, v, r)).await
        }
        ApiKey::EndTxn => {
            let v = frame.version();
            run_async(&frame, |r| txn::end_txn::handle(broker, v, r)).await
        }
        ApiKey::TxnOffsetCommit => {
            let v = frame.version();
            run_async(&frame, |r| txn::txn_offset_commit::handle(broker, v, r)).await
        }
        ApiKey::ListTransactions => {
            let v = frame.version();
            run_async(&frame, |r| txn::list::handle(broker, v, r)).await
        }
        ApiKey::DescribeTransactions => {
            run_async(&frame, |r| txn::describe::handle(broker, r)).await
        }
        ApiKey::DescribeProducers => run(&frame, |r| describe_producers::handle(broker, r)),
        ApiKey::WriteTxnMarkers => {
            run_async(&frame, |r| txn::write_markers::handle(broker, r)).await
        }
        ApiKey::ConsumerGroupDescribe => {
            run_async(&frame, |r| consumer_group::describe(broker, r)).await
        }
        other => Reply::Close(format!("{other:?} is not implemented")),
    }
}

fn malformed(frame: &RequestFrame, error: String) -> Reply {
    Reply::Close(format!(
        "malformed {:?} v{} request: {error}",
        frame.api_key,
        frame.version()
    ))
}

/// Encodes `body` as the response to `frame`.
pub fn respond<R: Encodable + HeaderVersion>(frame: &RequestFrame, body: &R) -> Reply {
    match encode_response(frame.api_key, frame.version(), frame.correlation_id(), body) {
        Ok(b) => Reply::Now(Response::Bytes(b)),
        Err(e) => {
            tracing::error!(api = ?frame.api_key, version = frame.version(), error = %e, "cannot encode response");
            Reply::Close(e.to_string())
        }
    }
}

fn run<Req: Decodable, Resp: Encodable + HeaderVersion>(
    frame: &RequestFrame,
    f: impl FnOnce(Req) -> Resp,
) -> Reply {
    match decode_body::<Req>(frame) {
        Ok(req) => respond(frame, &f(req)),
        Err(e) => malformed(frame, e),
    }
}

async fn run_async<
    Req: Decodable,
    Resp: Encodable + HeaderVersion,
    F: std::future::Future<Output = Resp>,
>(
    frame: &RequestFrame,
    f: impl FnOnce(Req) -> F,
) -> Reply {
    match decode_body::<Req>(frame) {
        Ok(req) => respond(frame, &f(req).await),
        Err(e) => malformed(frame, e),
    }
}

pub fn str(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
