//! The ApiVersions table: which APIs Strand implements, and at which versions.
//!
//! The lower bound of each range is Kafka 4's baseline (KIP-896: clients from Kafka 2.1 on),
//! the upper bound what the generated codecs know. An API that is not finished is not listed,
//! so clients never try it.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// `(api, min version, max version)` for every API the broker serves.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::DeleteRecords, 0, 2),
    // Transactions: from v0, which aiokafka and old clients send.
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::WriteTxnMarkers, 1, 1),
];

/// The version range served for `key`, if the API is implemented.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
}

/// Whether `version` of `key` is served.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported_versions(key).is_some_and(|(min, max)| (min..=max).contains(&version))
}

/// The ApiVersions response body: the table, with `error_code`.
///
/// Tagged fields (supported features, finalized features) are left at their defaults, which the
/// encoder omits: librdkafka 2.0.2 rejects a response that spells out default-valued tags.
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    let api_keys = SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_within_what_the_codecs_know() {
        for &(key, min, max) in SUPPORTED {
            let known = key.valid_versions();
            assert!(
                min >= known.min && max <= known.max && min <= max,
                "{key:?}"
            );
        }
    }

    #[test]
    fn default_tagged_fields_are_not_encoded() {
        use kafka_protocol::protocol::Encodable;
        let resp = api_versions_response(0);
        let mut buf = bytes::BytesMut::new();
        resp.encode(&mut buf, 3).unwrap();
        // error_code(2) + compact array len(1) + n * (key 2, min 2, max 2, tags 1)
        // + throttle(4) + tagged-field count(1) == 0
        let n = SUPPORTED.len();
        assert_eq!(buf.len(), 2 + 1 + n * 7 + 4 + 1);
        assert_eq!(*buf.last().unwrap(), 0);
    }
}
