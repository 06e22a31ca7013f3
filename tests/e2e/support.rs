//! Helpers shared by the end-to-end tests.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};
use strand_protocol::testing::{encode, record};
use strand_testkit::RawClient;

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub fn name(v: &str) -> TopicName {
    TopicName(s(v))
}

/// One batch of `n` records with keys `k{first + i}`, values `v{first + i}`, timestamps
/// `ts0 + i`.
pub fn batch(first: usize, n: usize, ts0: i64, compression: Compression) -> Bytes {
    let records: Vec<_> = (0..n)
        .map(|i| {
            record(
                i as i64,
                Some(format!("k{}", first + i).into()),
                Some(format!("v{}", first + i).into()),
                ts0 + i as i64,
            )
        })
        .collect();
    encode(&records, compression).freeze()
}

pub fn decode_records(mut bytes: Bytes) -> Vec<Record> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match RecordBatchDecoder::decode(&mut bytes) {
            Ok(set) => out.extend(set.records),
            Err(_) => break, // a partial trailing batch
        }
    }
    out
}

pub async fn create_topic(
    c: &mut RawClient,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> anyhow::Result<CreateTopicsResponse> {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(s(k))
                            .with_value(Some(s(v)))
                    })
                    .collect(),
            )]);
    c.send(ApiKey::CreateTopics, 7, &req).await
}

pub fn produce_request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

pub async fn produce(
    c: &mut RawClient,
    topic: &str,
    partition: i32,
    acks: i16,
    records: Bytes,
) -> anyhow::Result<produce_response::PartitionProduceResponse> {
    let resp: ProduceResponse = c
        .send(
            ApiKey::Produce,
            9,
            &produce_request(topic, partition, acks, records),
        )
        .await?;
    Ok(resp.responses[0].partition_responses[0].clone())
}

pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    max_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max_bytes)])])
}

pub async fn fetch(
    c: &mut RawClient,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    max_bytes: i32,
) -> anyhow::Result<fetch_response::PartitionData> {
    let resp: FetchResponse = c
        .send(
            ApiKey::Fetch,
            11,
            &fetch_request(topic, partition, offset, max_wait_ms, max_bytes),
        )
        .await?;
    Ok(resp.responses[0].partitions[0].clone())
}

pub async fn topic_id(c: &mut RawClient, topic: &str) -> anyhow::Result<uuid::Uuid> {
    let req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic))),
    ]));
    let resp: MetadataResponse = c.send(ApiKey::Metadata, 12, &req).await?;
    Ok(resp.topics[0].topic_id)
}

/// A simple-consumer commit (generation -1, no member) of `offset` for one partition.
pub fn commit_request(
    group: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset),
                ]),
        ])
}

/// Joins `group` as its only member at JoinGroup `version` (answering MEMBER_ID_REQUIRED from
/// v4); returns the member id and generation.
pub async fn join_group(
    c: &mut RawClient,
    group: &str,
    version: i16,
) -> anyhow::Result<(String, i32)> {
    let mut member = String::new();
    for _ in 0..2 {
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(s(&member))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"m"))]);
        let r: JoinGroupResponse = c.send(ApiKey::JoinGroup, version, &req).await?;
        if r.error_code == kafka_protocol::error::ResponseError::MemberIdRequired.code() {
            member = r.member_id.to_string();
            continue;
        }
        anyhow::ensure!(r.error_code == 0, "join: {r:?}");
        anyhow::ensure!(
            r.leader == r.member_id && r.members.len() == 1,
            "a lone member leads: {r:?}"
        );
        return Ok((r.member_id.to_string(), r.generation_id));
    }
    anyhow::bail!("MEMBER_ID_REQUIRED twice")
}

/// The lone member of a group that [`join_group`] joined syncs with `assignment` for itself
/// (SyncGroup v5, protocol `consumer`/`range` as joined); fails unless the broker says 0.
pub async fn sync_alone(
    c: &mut RawClient,
    group: &str,
    member: &str,
    generation: i32,
    assignment: Bytes,
) -> anyhow::Result<()> {
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(s(member))
                .with_assignment(assignment),
        ]);
    let r: SyncGroupResponse = c.send(ApiKey::SyncGroup, 5, &sync).await?;
    anyhow::ensure!(r.error_code == 0, "sync: {r:?}");
    Ok(())
}
