//! Strand patch: tests for the request/response versions that Kafka 4.0 removed (KIP-896)
//! and that Strand restores in this vendored copy: ListOffsets v0, OffsetCommit v0-1,
//! OffsetFetch v0, DescribeConfigs v0, CreateTopics v0-1 and DeleteTopics v0. Field layouts
//! follow Kafka 3.9's JSON message specs.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use crate::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use crate::messages::create_topics_response::CreatableTopicResult;
use crate::messages::delete_topics_response::DeletableTopicResult;
use crate::messages::describe_configs_request::DescribeConfigsResource;
use crate::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use crate::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use crate::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use crate::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use crate::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use crate::messages::offset_fetch_request::OffsetFetchRequestTopic;
use crate::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use crate::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse, GroupId,
    ListOffsetsRequest, ListOffsetsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use crate::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};

fn s(v: &'static str) -> StrBytes {
    StrBytes::from_static_str(v)
}

fn topic(v: &'static str) -> TopicName {
    TopicName(s(v))
}

fn encode<T: Encodable>(value: &T, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    value.encode(&mut buf, version).unwrap();
    assert_eq!(
        value.compute_size(version).unwrap(),
        buf.len(),
        "compute_size disagrees with encode at v{version}"
    );
    buf.to_vec()
}

/// Encodes `value` at `version`, decodes it back, and checks the result is equal and that the
/// decoder consumed exactly the encoded bytes. Returns the encoding.
fn round_trip<T>(value: &T, version: i16) -> Vec<u8>
where
    T: Encodable + Decodable + PartialEq + Debug,
{
    let bytes = encode(value, version);
    let mut buf = Bytes::from(bytes.clone());
    let decoded = T::decode(&mut buf, version).unwrap();
    assert_eq!(&decoded, value, "round trip at v{version}");
    assert!(buf.is_empty(), "{} trailing bytes at v{version}", buf.len());
    bytes
}

/// Decodes `bytes` at `version` and checks the whole buffer is consumed.
fn decode_all<T: Decodable>(bytes: &[u8], version: i16) -> T {
    let mut buf = Bytes::copy_from_slice(bytes);
    let value = T::decode(&mut buf, version).unwrap();
    assert!(buf.is_empty(), "{} trailing bytes at v{version}", buf.len());
    value
}

fn encode_fails<T: Encodable>(value: &T, version: i16) {
    let mut buf = BytesMut::new();
    assert!(value.encode(&mut buf, version).is_err(), "encode at v{version}");
    assert!(value.compute_size(version).is_err(), "compute_size at v{version}");
}

#[test]
fn old_versions_are_advertised() {
    for (key, max) in [
        (ApiKey::ListOffsets, 10),
        (ApiKey::OffsetCommit, 10),
        (ApiKey::OffsetFetch, 10),
        (ApiKey::DescribeConfigs, 4),
        (ApiKey::CreateTopics, 7),
        (ApiKey::DeleteTopics, 6),
    ] {
        let range = key.valid_versions();
        assert_eq!(range.min, 0, "{key:?}");
        assert_eq!(range.max, max, "{key:?}");
        // Old versions are non-flexible: request header v1, response header v0.
        assert_eq!(key.request_header_version(0), 1, "{key:?}");
        assert_eq!(key.response_header_version(0), 0, "{key:?}");
    }
    assert_eq!(ListOffsetsRequest::VERSIONS.min, 0);
    assert_eq!(ListOffsetsResponse::VERSIONS.min, 0);
    assert_eq!(OffsetCommitRequest::VERSIONS.min, 0);
    assert_eq!(OffsetCommitResponse::VERSIONS.min, 0);
    assert_eq!(OffsetFetchRequest::VERSIONS.min, 0);
    assert_eq!(OffsetFetchResponse::VERSIONS.min, 0);
    assert_eq!(DescribeConfigsRequest::VERSIONS.min, 0);
    assert_eq!(DescribeConfigsResponse::VERSIONS.min, 0);
    assert_eq!(CreateTopicsRequest::VERSIONS.min, 0);
    assert_eq!(CreateTopicsResponse::VERSIONS.min, 0);
    assert_eq!(DeleteTopicsRequest::VERSIONS.min, 0);
    assert_eq!(DeleteTopicsResponse::VERSIONS.min, 0);
    assert_eq!(OffsetCommitRequest::header_version(1), 1);
    assert_eq!(CreateTopicsResponse::header_version(1), 0);
}

// ---------------------------------------------------------------- ListOffsets

fn list_offsets_request_v0() -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic("t1"))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(3)
                .with_timestamp(-2)
                .with_max_num_offsets(5)])])
}

#[test]
fn list_offsets_request_v0_round_trip() {
    round_trip(&list_offsets_request_v0(), 0);
}

#[test]
fn list_offsets_request_v0_bytes() {
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0xff, 0xff, 0xff, 0xff,                         // replica_id = -1
        0x00, 0x00, 0x00, 0x01,                         // topics: 1 element
        0x00, 0x02, b't', b'1',                         //   name = "t1"
        0x00, 0x00, 0x00, 0x01,                         //   partitions: 1 element
        0x00, 0x00, 0x00, 0x03,                         //     partition_index = 3
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, //     timestamp = -2
        0x00, 0x00, 0x00, 0x05,                         //     max_num_offsets = 5
    ];
    let value = list_offsets_request_v0();
    assert_eq!(encode(&value, 0), expected);
    assert_eq!(decode_all::<ListOffsetsRequest>(&expected, 0), value);
}

#[test]
fn list_offsets_request_max_num_offsets_is_v0_only() {
    // v1 has no max_num_offsets: the same value less that field, 4 bytes shorter.
    let mut v1 = list_offsets_request_v0();
    v1.topics[0].partitions[0].max_num_offsets = 1;
    let bytes = round_trip(&v1, 1);
    assert_eq!(bytes.len(), 28);
    assert_eq!(&bytes[..], &encode(&list_offsets_request_v0(), 0)[..28]);
    // The field is not ignorable: a non-default value cannot be sent at v1+.
    encode_fails(&list_offsets_request_v0(), 1);
    // Decoding v1 leaves it at its default.
    let decoded: ListOffsetsRequest = decode_all(&bytes, 1);
    assert_eq!(decoded.topics[0].partitions[0].max_num_offsets, 1);
}

fn list_offsets_response_v0() -> ListOffsetsResponse {
    ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
        .with_name(topic("t1"))
        .with_partitions(vec![
            ListOffsetsPartitionResponse::default()
                .with_partition_index(0)
                .with_old_style_offsets(vec![42, 7, 0]),
            ListOffsetsPartitionResponse::default()
                .with_partition_index(1)
                .with_error_code(3),
        ])])
}

#[test]
fn list_offsets_response_v0_round_trip() {
    round_trip(&list_offsets_response_v0(), 0);
}

#[test]
fn list_offsets_response_v0_bytes() {
    let value = ListOffsetsResponse::default().with_topics(vec![
        ListOffsetsTopicResponse::default()
            .with_name(topic("t"))
            .with_partitions(vec![ListOffsetsPartitionResponse::default()
                .with_partition_index(2)
                .with_old_style_offsets(vec![9])]),
    ]);
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        // no throttle_time_ms before v2
        0x00, 0x00, 0x00, 0x01,                         // topics: 1 element
        0x00, 0x01, b't',                               //   name = "t"
        0x00, 0x00, 0x00, 0x01,                         //   partitions: 1 element
        0x00, 0x00, 0x00, 0x02,                         //     partition_index = 2
        0x00, 0x00,                                     //     error_code = 0
        0x00, 0x00, 0x00, 0x01,                         //     old_style_offsets: 1 element
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, //       9
    ];
    assert_eq!(encode(&value, 0), expected);
    assert_eq!(decode_all::<ListOffsetsResponse>(&expected, 0), value);
}

#[test]
fn list_offsets_response_version_gates() {
    // old_style_offsets is v0 only and not ignorable.
    encode_fails(&list_offsets_response_v0(), 1);
    // timestamp and offset are 1+ and not ignorable.
    let with_offset = ListOffsetsResponse::default().with_topics(vec![
        ListOffsetsTopicResponse::default().with_partitions(vec![
            ListOffsetsPartitionResponse::default()
                .with_timestamp(5)
                .with_offset(6),
        ]),
    ]);
    encode_fails(&with_offset, 0);
    round_trip(&with_offset, 1);
    // throttle_time_ms is 2+ and ignorable: dropped at v0, decoded as 0.
    let throttled = list_offsets_response_v0().with_throttle_time_ms(100);
    let bytes = encode(&throttled, 0);
    assert_eq!(bytes, encode(&list_offsets_response_v0(), 0));
    let decoded: ListOffsetsResponse = decode_all(&bytes, 0);
    assert_eq!(decoded.throttle_time_ms, 0);
    assert_eq!(decoded.topics[0].partitions[0].timestamp, -1);
    assert_eq!(decoded.topics[0].partitions[0].offset, -1);
}

// ---------------------------------------------------------------- OffsetCommit

fn offset_commit_request(version: i16) -> OffsetCommitRequest {
    let mut partition = OffsetCommitRequestPartition::default()
        .with_partition_index(2)
        .with_committed_offset(100)
        .with_committed_metadata(Some(s("md")));
    let mut request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic("t"))
            .with_partitions(vec![])]);
    if version >= 1 {
        request = request
            .with_generation_id_or_member_epoch(7)
            .with_member_id(s("m"));
    }
    if version == 1 {
        partition = partition.with_commit_timestamp(1_700_000_000_000);
    }
    request.topics[0].partitions.push(partition);
    request
}

#[test]
fn offset_commit_request_v0_round_trip() {
    round_trip(&offset_commit_request(0), 0);
}

#[test]
fn offset_commit_request_v1_round_trip() {
    round_trip(&offset_commit_request(1), 1);
}

#[test]
fn offset_commit_request_v0_bytes() {
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0x00, 0x01, b'g',                               // group_id = "g"
        // no generation_id_or_member_epoch / member_id before v1
        0x00, 0x00, 0x00, 0x01,                         // topics: 1 element
        0x00, 0x01, b't',                               //   name = "t"
        0x00, 0x00, 0x00, 0x01,                         //   partitions: 1 element
        0x00, 0x00, 0x00, 0x02,                         //     partition_index = 2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, //     committed_offset = 100
        0x00, 0x02, b'm', b'd',                         //     committed_metadata = "md"
    ];
    let value = offset_commit_request(0);
    assert_eq!(encode(&value, 0), expected);
    assert_eq!(decode_all::<OffsetCommitRequest>(&expected, 0), value);
}

#[test]
fn offset_commit_request_v1_bytes() {
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0x00, 0x01, b'g',                               // group_id = "g"
        0x00, 0x00, 0x00, 0x07,                         // generation_id_or_member_epoch = 7
        0x00, 0x01, b'm',                               // member_id = "m"
        // no retention_time_ms before v2
        0x00, 0x00, 0x00, 0x01,                         // topics: 1 element
        0x00, 0x01, b't',                               //   name = "t"
        0x00, 0x00, 0x00, 0x01,                         //   partitions: 1 element
        0x00, 0x00, 0x00, 0x02,                         //     partition_index = 2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, //     committed_offset = 100
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, //     commit_timestamp = 1700000000000
        0x00, 0x02, b'm', b'd',                         //     committed_metadata = "md"
    ];
    let value = offset_commit_request(1);
    assert_eq!(encode(&value, 1), expected);
    assert_eq!(decode_all::<OffsetCommitRequest>(&expected, 1), value);
}

#[test]
fn offset_commit_request_version_gates() {
    // commit_timestamp is v1 only and not ignorable.
    let v1 = offset_commit_request(1);
    encode_fails(&v1, 0);
    encode_fails(&v1, 2);
    // generation_id_or_member_epoch and member_id are 1+ and ignorable: dropped at v0.
    let mut v1_without_timestamp = v1.clone();
    v1_without_timestamp.topics[0].partitions[0].commit_timestamp = -1;
    let bytes = encode(&v1_without_timestamp, 0);
    assert_eq!(bytes, encode(&offset_commit_request(0), 0));
    let decoded: OffsetCommitRequest = decode_all(&bytes, 0);
    assert_eq!(decoded.generation_id_or_member_epoch, -1);
    assert!(decoded.member_id.is_empty());
    // retention_time_ms is 2-4 and ignorable: not written at v0/v1, written at v2.
    let retained = offset_commit_request(1).with_retention_time_ms(60_000);
    let bytes = encode(&retained, 1);
    assert_eq!(bytes, encode(&offset_commit_request(1), 1));
    let decoded: OffsetCommitRequest = decode_all(&bytes, 1);
    assert_eq!(decoded.retention_time_ms, -1);
    let mut v2 = retained.clone();
    v2.topics[0].partitions[0].commit_timestamp = -1;
    let v2_bytes = round_trip(&v2, 2);
    // v2 trades the 8-byte commit_timestamp for the 8-byte retention_time_ms.
    assert_eq!(v2_bytes.len(), bytes.len());
    let decoded: OffsetCommitRequest = decode_all(&v2_bytes, 2);
    assert_eq!(decoded.retention_time_ms, 60_000);
}

fn offset_commit_response() -> OffsetCommitResponse {
    OffsetCommitResponse::default().with_topics(vec![OffsetCommitResponseTopic::default()
        .with_name(topic("t"))
        .with_partitions(vec![
            OffsetCommitResponsePartition::default().with_partition_index(0),
            OffsetCommitResponsePartition::default()
                .with_partition_index(1)
                .with_error_code(25),
        ])])
}

#[test]
fn offset_commit_response_v0_round_trip() {
    round_trip(&offset_commit_response(), 0);
}

#[test]
fn offset_commit_response_v1_round_trip() {
    let bytes = round_trip(&offset_commit_response(), 1);
    // Same layout as v0 and v2; no throttle_time_ms before v3.
    assert_eq!(bytes, encode(&offset_commit_response(), 0));
    assert_eq!(bytes, encode(&offset_commit_response(), 2));
    assert_eq!(bytes.len() + 4, encode(&offset_commit_response(), 3).len());
}

// ---------------------------------------------------------------- OffsetFetch

fn offset_fetch_request() -> OffsetFetchRequest {
    OffsetFetchRequest::default()
        .with_group_id(GroupId(s("group")))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic("t"))
            .with_partition_indexes(vec![0, 1, 2])]))
}

#[test]
fn offset_fetch_request_v0_round_trip() {
    let bytes = round_trip(&offset_fetch_request(), 0);
    assert_eq!(bytes, encode(&offset_fetch_request(), 1));
}

fn offset_fetch_response() -> OffsetFetchResponse {
    OffsetFetchResponse::default().with_topics(vec![OffsetFetchResponseTopic::default()
        .with_name(topic("t"))
        .with_partitions(vec![
            OffsetFetchResponsePartition::default()
                .with_partition_index(0)
                .with_committed_offset(12)
                .with_metadata(Some(s("meta"))),
            OffsetFetchResponsePartition::default()
                .with_partition_index(1)
                .with_committed_offset(-1)
                .with_metadata(None)
                .with_error_code(3),
        ])])
}

#[test]
fn offset_fetch_response_v0_round_trip() {
    let bytes = round_trip(&offset_fetch_response(), 0);
    assert_eq!(bytes, encode(&offset_fetch_response(), 1));
}

// ---------------------------------------------------------------- DescribeConfigs

fn describe_configs_request() -> DescribeConfigsRequest {
    DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("t"))
            .with_configuration_keys(Some(vec![s("retention.ms")])),
        DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s("1"))
            .with_configuration_keys(None),
    ])
}

#[test]
fn describe_configs_request_v0_round_trip() {
    let bytes = round_trip(&describe_configs_request(), 0);
    // v1 adds the include_synonyms byte at the end.
    assert_eq!(bytes.len() + 1, encode(&describe_configs_request(), 1).len());
    // include_synonyms is 1+ and not ignorable.
    encode_fails(&describe_configs_request().with_include_synonyms(true), 0);
}

fn describe_configs_response_v0() -> DescribeConfigsResponse {
    DescribeConfigsResponse::default()
        .with_throttle_time_ms(5)
        .with_results(vec![DescribeConfigsResult::default()
            .with_error_code(0)
            .with_error_message(None)
            .with_resource_type(2)
            .with_resource_name(s("t"))
            .with_configs(vec![
                DescribeConfigsResourceResult::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("1000")))
                    .with_is_default(false)
                    .with_is_sensitive(false),
                DescribeConfigsResourceResult::default()
                    .with_name(s("cleanup.policy"))
                    .with_value(None)
                    .with_read_only(true)
                    .with_is_default(true)
                    .with_is_sensitive(true),
            ])])
}

#[test]
fn describe_configs_response_v0_round_trip() {
    round_trip(&describe_configs_response_v0(), 0);
}

#[test]
fn describe_configs_response_v0_bytes() {
    let value = DescribeConfigsResponse::default()
        .with_throttle_time_ms(1)
        .with_results(vec![DescribeConfigsResult::default()
            .with_error_message(None)
            .with_resource_type(2)
            .with_resource_name(s("t"))
            .with_configs(vec![DescribeConfigsResourceResult::default()
                .with_name(s("k"))
                .with_value(Some(s("v")))
                .with_read_only(false)
                .with_is_default(true)
                .with_is_sensitive(false)])]);
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0x00, 0x00, 0x00, 0x01, // throttle_time_ms = 1
        0x00, 0x00, 0x00, 0x01, // results: 1 element
        0x00, 0x00,             //   error_code = 0
        0xff, 0xff,             //   error_message = null
        0x02,                   //   resource_type = 2
        0x00, 0x01, b't',       //   resource_name = "t"
        0x00, 0x00, 0x00, 0x01, //   configs: 1 element
        0x00, 0x01, b'k',       //     name = "k"
        0x00, 0x01, b'v',       //     value = "v"
        0x00,                   //     read_only = false
        0x01,                   //     is_default = true (v0 only; no config_source)
        0x00,                   //     is_sensitive = false (no synonyms before v1)
    ];
    assert_eq!(encode(&value, 0), expected);
    assert_eq!(decode_all::<DescribeConfigsResponse>(&expected, 0), value);
}

#[test]
fn describe_configs_response_version_gates() {
    // is_default is v0 only and not ignorable.
    encode_fails(&describe_configs_response_v0(), 1);
    // config_source and synonyms are 1+ and ignorable: dropped at v0, defaults on decode.
    let mut v1 = describe_configs_response_v0();
    for config in &mut v1.results[0].configs {
        config.is_default = false;
        config.config_source = 5;
        config.synonyms = vec![DescribeConfigsSynonym::default()
            .with_name(s("log.retention.ms"))
            .with_value(Some(s("1000")))
            .with_source(5)];
    }
    round_trip(&v1, 1);
    let decoded: DescribeConfigsResponse = decode_all(&encode(&v1, 0), 0);
    for config in &decoded.results[0].configs {
        assert!(!config.is_default);
        assert_eq!(config.config_source, -1);
        assert!(config.synonyms.is_empty());
    }
}

// ---------------------------------------------------------------- CreateTopics

fn create_topics_request(version: i16) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(topic("a"))
                .with_num_partitions(3)
                .with_replication_factor(1)
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(s("cleanup.policy"))
                    .with_value(Some(s("compact")))]),
            CreatableTopic::default()
                .with_name(topic("b"))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2)])]),
        ])
        .with_timeout_ms(30_000)
        .with_validate_only(version >= 1)
}

#[test]
fn create_topics_request_v0_round_trip() {
    round_trip(&create_topics_request(0), 0);
}

#[test]
fn create_topics_request_v1_round_trip() {
    let bytes = round_trip(&create_topics_request(1), 1);
    // validate_only (1+) is the one byte v0 lacks.
    assert_eq!(bytes.len(), encode(&create_topics_request(0), 0).len() + 1);
    assert_eq!(*bytes.last().unwrap(), 1);
    // It is not ignorable.
    encode_fails(&create_topics_request(1), 0);
}

fn create_topics_response(version: i16) -> CreateTopicsResponse {
    let mut result = CreatableTopicResult::default()
        .with_name(topic("a"))
        .with_error_code(36);
    if version >= 1 {
        result = result.with_error_message(Some(s("Topic 'a' already exists.")));
    }
    CreateTopicsResponse::default().with_topics(vec![
        result,
        CreatableTopicResult::default().with_name(topic("b")),
    ])
}

#[test]
fn create_topics_response_v0_round_trip() {
    round_trip(&create_topics_response(0), 0);
}

#[test]
fn create_topics_response_v1_round_trip() {
    round_trip(&create_topics_response(1), 1);
}

#[test]
fn create_topics_response_version_gates() {
    // error_message (1+) and throttle_time_ms (2+) are ignorable: dropped when absent.
    let full = create_topics_response(1).with_throttle_time_ms(9);
    assert_eq!(encode(&full, 0), encode(&create_topics_response(0), 0));
    assert_eq!(encode(&full, 1), encode(&create_topics_response(1), 1));
    let decoded: CreateTopicsResponse = decode_all(&encode(&full, 1), 1);
    assert_eq!(decoded.throttle_time_ms, 0);
    assert_eq!(decoded.topics[0].error_message, Some(s("Topic 'a' already exists.")));
    let decoded: CreateTopicsResponse = decode_all(&encode(&full, 0), 0);
    assert_eq!(decoded.topics[0].error_message, CreatableTopicResult::default().error_message);
    round_trip(&full, 2);
    // v0: topics array, then per topic name + error_code only.
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0x00, 0x00, 0x00, 0x02, // topics: 2 elements
        0x00, 0x01, b'a',       //   name = "a"
        0x00, 0x24,             //   error_code = 36
        0x00, 0x01, b'b',       //   name = "b"
        0x00, 0x00,             //   error_code = 0
    ];
    assert_eq!(encode(&full, 0), expected);
}

// ---------------------------------------------------------------- DeleteTopics

fn delete_topics_request() -> DeleteTopicsRequest {
    DeleteTopicsRequest::default()
        .with_topic_names(vec![topic("a"), topic("bb")])
        .with_timeout_ms(15_000)
}

#[test]
fn delete_topics_request_v0_round_trip() {
    let bytes = round_trip(&delete_topics_request(), 0);
    assert_eq!(bytes, encode(&delete_topics_request(), 1));
}

fn delete_topics_response() -> DeleteTopicsResponse {
    DeleteTopicsResponse::default().with_responses(vec![
        DeletableTopicResult::default()
            .with_name(Some(topic("a")))
            .with_error_code(0),
        DeletableTopicResult::default()
            .with_name(Some(topic("bb")))
            .with_error_code(3),
    ])
}

#[test]
fn delete_topics_response_v0_round_trip() {
    let bytes = round_trip(&delete_topics_response(), 0);
    // throttle_time_ms (1+) is the 4 bytes v0 lacks; it is ignorable.
    let throttled = delete_topics_response().with_throttle_time_ms(10);
    assert_eq!(encode(&throttled, 0), bytes);
    assert_eq!(encode(&throttled, 1).len(), bytes.len() + 4);
    let decoded: DeleteTopicsResponse = decode_all(&bytes, 0);
    assert_eq!(decoded.throttle_time_ms, 0);
    round_trip(&throttled, 1);
}
