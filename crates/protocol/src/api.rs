//! The ApiVersions table: which APIs Strand implements, and at which versions.
//!
//! The lower bound of each range in [`SUPPORTED`] is Kafka 4's baseline (KIP-896: clients from
//! Kafka 2.1 on), the upper bound what the generated codecs know. An API that is not finished
//! is not listed, so clients never try it. [`OLD_VERSIONS`] lowers the bound of a few APIs to
//! what Kafka 3.9 served, for the monitoring tools and clients that still send them; the
//! broker setting `strand.allow.old.protocol.versions=false` leaves them out, as Kafka 4 does.

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
    (ApiKey::DescribeQuorum, 0, 2),
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

/// Request versions Kafka 4 removed and Strand serves again (with their semantics) unless told
/// not to: `(api, oldest version Kafka 3.9 served)`. Produce below v3 and Fetch below v4 are
/// not among them: they carry the pre-2017 message formats (magic 0 and 1).
pub const OLD_VERSIONS: &[(ApiKey, i16)] = &[
    (ApiKey::ListOffsets, 0),
    (ApiKey::OffsetCommit, 0),
    (ApiKey::OffsetFetch, 0),
    (ApiKey::DescribeConfigs, 0),
    (ApiKey::CreateTopics, 0),
    (ApiKey::DeleteTopics, 0),
];

/// Which versions a broker advertises and serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiTable {
    /// `strand.allow.old.protocol.versions`: serve [`OLD_VERSIONS`] too.
    pub allow_old: bool,
}

impl Default for ApiTable {
    fn default() -> Self {
        Self { allow_old: true }
    }
}

impl ApiTable {
    /// `(api, min, max)` for every API served.
    pub fn entries(self) -> impl Iterator<Item = (ApiKey, i16, i16)> {
        SUPPORTED.iter().map(move |&(key, min, max)| {
            let old = OLD_VERSIONS
                .iter()
                .find(|(k, _)| self.allow_old && *k == key)
                .map_or(min, |&(_, oldest)| oldest);
            (key, old.min(min), max)
        })
    }

    /// The version range served for `key`, if the API is implemented.
    pub fn versions(self, key: ApiKey) -> Option<(i16, i16)> {
        self.entries()
            .find(|(k, _, _)| *k == key)
            .map(|(_, min, max)| (min, max))
    }

    /// Whether `version` of `key` is served.
    pub fn is_supported(self, key: ApiKey, version: i16) -> bool {
        self.versions(key)
            .is_some_and(|(min, max)| (min..=max).contains(&version))
    }

    /// The ApiVersions response body: the table, with `error_code`.
    ///
    /// Tagged fields (supported features, finalized features) are left at their defaults,
    /// which the encoder omits: librdkafka 2.0.2 rejects a response that spells out
    /// default-valued tags.
    pub fn response(self, error_code: i16) -> ApiVersionsResponse {
        api_versions_response_of(self.entries(), error_code)
    }
}

/// Whether `version` of `key` is served by a broker with the default table.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    ApiTable::default().is_supported(key, version)
}

/// The ApiVersions response body of the default table, with `error_code`.
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    ApiTable::default().response(error_code)
}

fn api_versions_response_of(
    entries: impl Iterator<Item = (ApiKey, i16, i16)>,
    error_code: i16,
) -> ApiVersionsResponse {
    let api_keys = entries
        .map(|(key, min, max)| {
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
    fn old_versions_are_served_unless_turned_off() {
        let kafka4 = ApiTable { allow_old: false };
        let old = ApiTable::default();
        assert_eq!(kafka4.versions(ApiKey::OffsetCommit), Some((2, 9)));
        assert_eq!(old.versions(ApiKey::OffsetCommit), Some((0, 9)));
        assert!(old.is_supported(ApiKey::ListOffsets, 0));
        assert!(!kafka4.is_supported(ApiKey::ListOffsets, 0));
        assert!(!old.is_supported(ApiKey::Produce, 2));
        for &(key, oldest) in OLD_VERSIONS {
            assert!(
                key.valid_versions().min <= oldest,
                "{key:?}: no codec for v{oldest}"
            );
            assert!(SUPPORTED.iter().any(|(k, _, _)| *k == key));
        }
        assert_eq!(old.entries().count(), SUPPORTED.len());
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
