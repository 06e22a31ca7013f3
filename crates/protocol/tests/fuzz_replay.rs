//! Replays the fuzz targets' inputs on stable Rust: generated seeds (a valid request for every
//! advertised API and version, a batch for every codec), every truncation of each, a fixed
//! number of seeded byte mutations, and every file under `fuzz/corpus/`. None may panic.

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strand_protocol::api::ApiTable;
use strand_protocol::fuzzing;

const MUTATIONS_PER_SEED: usize = 300;

fn batch(compression: Compression) -> BytesMut {
    let records: Vec<Record> = (0..4)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: i as i32,
            timestamp: 1000 + i,
            key: Some("key".into()),
            value: Some("value".into()),
            headers: [(StrBytes::from_static_str("h"), Some("v".into()))]
                .into_iter()
                .collect(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encodes");
    buf
}

fn body(key: ApiKey, version: i16, buf: &mut BytesMut) -> anyhow::Result<()> {
    let topic = TopicName(StrBytes::from_static_str("t"));
    match key {
        ApiKey::Produce => ProduceRequest::default()
            .with_acks(1)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(topic)
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_records(Some(batch(Compression::None).freeze())),
                ])])
            .encode(buf, version),
        ApiKey::Fetch => FetchRequest::default()
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(topic)
                .with_partitions(vec![Default::default()])])
            .encode(buf, version),
        ApiKey::ListOffsets => ListOffsetsRequest::default()
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic)
                .with_partitions(vec![Default::default()])])
            .encode(buf, version),
        ApiKey::Metadata => MetadataRequest::default().encode(buf, version),
        ApiKey::ApiVersions => ApiVersionsRequest::default().encode(buf, version),
        ApiKey::CreateTopics => CreateTopicsRequest::default()
            .with_topics(vec![create_topics_request::CreatableTopic::default()
                .with_name(topic)
                .with_num_partitions(1)])
            .encode(buf, version),
        ApiKey::DeleteTopics => DeleteTopicsRequest::default()
            .with_topic_names(vec![topic])
            .encode(buf, version),
        ApiKey::DescribeConfigs => DescribeConfigsRequest::default()
            .with_resources(vec![Default::default()])
            .encode(buf, version),
        ApiKey::AlterConfigs => AlterConfigsRequest::default()
            .with_resources(vec![Default::default()])
            .encode(buf, version),
        ApiKey::DescribeLogDirs => DescribeLogDirsRequest::default().encode(buf, version),
        ApiKey::CreatePartitions => CreatePartitionsRequest::default()
            .with_topics(vec![Default::default()])
            .encode(buf, version),
        ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default()
            .with_resources(vec![Default::default()])
            .encode(buf, version),
        ApiKey::DescribeCluster => DescribeClusterRequest::default().encode(buf, version),
        ApiKey::DescribeQuorum => DescribeQuorumRequest::default()
            .with_topics(vec![describe_quorum_request::TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
                .with_partitions(vec![
                    describe_quorum_request::PartitionData::default().with_partition_index(0),
                ])])
            .encode(buf, version),
        ApiKey::OffsetCommit => OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic)
                    .with_partitions(vec![Default::default()]),
            ])
            .encode(buf, version),
        ApiKey::OffsetFetch if version >= 8 => OffsetFetchRequest::default()
            .with_groups(vec![Default::default()])
            .encode(buf, version),
        ApiKey::OffsetFetch => OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .encode(buf, version),
        ApiKey::FindCoordinator if version >= 4 => FindCoordinatorRequest::default()
            .with_coordinator_keys(vec![StrBytes::from_static_str("g")])
            .encode(buf, version),
        ApiKey::FindCoordinator => FindCoordinatorRequest::default()
            .with_key(StrBytes::from_static_str("g"))
            .encode(buf, version),
        ApiKey::JoinGroup => JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(StrBytes::from_static_str("range"))])
            .encode(buf, version),
        ApiKey::Heartbeat => HeartbeatRequest::default().encode(buf, version),
        ApiKey::LeaveGroup if version >= 3 => LeaveGroupRequest::default()
            .with_members(vec![Default::default()])
            .encode(buf, version),
        ApiKey::LeaveGroup => LeaveGroupRequest::default().encode(buf, version),
        ApiKey::SyncGroup => SyncGroupRequest::default()
            .with_assignments(vec![Default::default()])
            .encode(buf, version),
        ApiKey::DescribeGroups => DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_static_str("g"))])
            .encode(buf, version),
        ApiKey::ListGroups => ListGroupsRequest::default().encode(buf, version),
        ApiKey::DeleteGroups => DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(StrBytes::from_static_str("g"))])
            .encode(buf, version),
        ApiKey::OffsetDelete => OffsetDeleteRequest::default()
            .with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(topic)
                    .with_partitions(vec![Default::default()]),
            ])
            .encode(buf, version),
        ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_subscribed_topic_names(Some(vec![topic]))
            .encode(buf, version),
        ApiKey::ConsumerGroupDescribe => ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(StrBytes::from_static_str("g"))])
            .encode(buf, version),
        ApiKey::DeleteRecords => DeleteRecordsRequest::default()
            .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                .with_name(topic)
                .with_partitions(vec![Default::default()])])
            .encode(buf, version),
        ApiKey::InitProducerId => InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))))
            .with_transaction_timeout_ms(60_000)
            .encode(buf, version),
        ApiKey::AddPartitionsToTxn if version < 4 => AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
            .with_v3_and_below_topics(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic)
                    .with_partitions(vec![0]),
            ])
            .encode(buf, version),
        ApiKey::AddPartitionsToTxn => AddPartitionsToTxnRequest::default()
            .with_transactions(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
                    .with_verify_only(true)
                    .with_topics(vec![
                        add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                            .with_name(topic)
                            .with_partitions(vec![0]),
                    ]),
            ])
            .encode(buf, version),
        ApiKey::AddOffsetsToTxn => AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .encode(buf, version),
        ApiKey::EndTxn => EndTxnRequest::default()
            .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
            .with_committed(true)
            .encode(buf, version),
        ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(topic)
                    .with_partitions(vec![Default::default()]),
            ])
            .encode(buf, version),
        ApiKey::DescribeProducers => DescribeProducersRequest::default()
            .with_topics(vec![describe_producers_request::TopicRequest::default()
                .with_name(topic)
                .with_partition_indexes(vec![0])])
            .encode(buf, version),
        ApiKey::DescribeTransactions => DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_static_str("tx"))])
            .encode(buf, version),
        ApiKey::ListTransactions => ListTransactionsRequest::default()
            .with_state_filters(vec![StrBytes::from_static_str("Ongoing")])
            .encode(buf, version),
        ApiKey::WriteTxnMarkers => WriteTxnMarkersRequest::default()
            .with_markers(vec![write_txn_markers_request::WritableTxnMarker::default(
            )
            .with_topics(vec![
                write_txn_markers_request::WritableTxnMarkerTopic::default()
                    .with_name(topic)
                    .with_partition_indexes(vec![0]),
            ])])
            .encode(buf, version),
        other => anyhow::bail!("no seed for {other:?}"),
    }
}

fn request_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    // Every version served, the old ones included.
    for (key, min, max) in ApiTable::default().entries() {
        for v in min..=max {
            let mut frame = BytesMut::new();
            let header = RequestHeader::default()
                .with_request_api_key(key as i16)
                .with_request_api_version(v)
                .with_correlation_id(1);
            header
                .encode(&mut frame, key.request_header_version(v))
                .expect("header encodes");
            body(key, v, &mut frame).unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
            let mut out = Vec::with_capacity(frame.len() + 4);
            out.put_i32(frame.len() as i32);
            out.extend_from_slice(&frame);
            seeds.push(out);
        }
    }
    seeds
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn exercise(seed: &[u8], target: fn(&[u8]), rng: &mut Rng) {
    target(seed);
    for n in 0..seed.len() {
        target(&seed[..n]);
    }
    for _ in 0..MUTATIONS_PER_SEED {
        let mut m = seed.to_vec();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % m.len().max(1);
            if let Some(b) = m.get_mut(at) {
                *b = match rng.next() % 3 {
                    0 => *b ^ (1 << (rng.next() % 8)),
                    1 => 0xff,
                    _ => rng.next() as u8,
                };
            }
        }
        target(&m);
    }
}

fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("corpus file reads"))
        .collect()
}

#[test]
fn request_target_survives_seeds_truncations_mutations_and_corpus() {
    let mut rng = Rng(0x5eed_0001);
    let seeds = request_seeds();
    assert!(seeds.len() > 50);
    for seed in &seeds {
        exercise(seed, fuzzing::request, &mut rng);
    }
    for input in corpus("request") {
        fuzzing::request(&input);
    }
}

#[test]
fn record_set_target_survives_seeds_truncations_mutations_and_corpus() {
    let mut rng = Rng(0x5eed_0002);
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        exercise(&batch(c), fuzzing::record_set, &mut rng);
    }
    for input in corpus("record_set") {
        fuzzing::record_set(&input);
    }
}
