//! ApiVersions: the table of what is implemented.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiVersionsResponse;
use strand_protocol::api::ApiTable;
use strand_protocol::frame::RequestFrame;

use crate::connection::Reply;

pub fn handle(table: ApiTable) -> ApiVersionsResponse {
    table.response(0)
}

/// A version the broker does not know: answer at v0 with UNSUPPORTED_VERSION and the table, so
/// the client can pick a version both sides speak (KIP-511).
pub fn unsupported(frame: &RequestFrame, table: ApiTable) -> Reply {
    let body = table.response(ResponseError::UnsupportedVersion.code());
    match strand_protocol::frame::encode_response(frame.api_key, 0, frame.correlation_id(), &body) {
        Ok(b) => Reply::Now(crate::connection::Response::Bytes(b)),
        Err(e) => Reply::Close(e.to_string()),
    }
}
