//! Record-level produce validation, each rule driven by a request built here: max timestamps
//! computed from the records, KIP-937 timestamp bounds, keys on compacted topics with
//! per-record errors (KIP-467), codec rules by request version, and a topic's codec.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use strand_protocol::batch::{compute_crc, BatchHeader, Codec};
use strand_protocol::testing::{encode, record};
use strand_testkit::TestBroker;

use strand_tests::*;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `batch` with its max timestamp overwritten by `max` and the CRC sealed again, as a
/// producer that leaves the field unset (-1) or wrong sends it.
fn with_stated_max(batch: Bytes, max: i64) -> Bytes {
    let mut b = batch.to_vec();
    b[35..43].copy_from_slice(&max.to_be_bytes());
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.into()
}

async fn offset_for(c: &mut strand_testkit::RawClient, topic: &str, ts: i64) -> (i64, i64) {
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(ts),
            ])]);
    let r: ListOffsetsResponse = c.send(ApiKey::ListOffsets, 8, &req).await.unwrap();
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "{p:?}");
    (p.offset, p.timestamp)
}

#[tokio::test]
async fn an_unset_max_timestamp_is_computed_and_found_by_timestamp() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "unset", 1, &[]).await?;
    let t0 = now_ms() - 60_000;
    for (i, codec) in [Compression::None, Compression::Lz4]
        .into_iter()
        .enumerate()
    {
        let first = i * 10;
        let b = with_stated_max(batch(first, 10, t0 + first as i64, codec), -1);
        let r = produce(&mut c, "unset", 0, 1, b).await?;
        assert_eq!((r.error_code, r.base_offset), (0, first as i64), "{r:?}");
    }
    // Each batch is found by the timestamps of its records.
    assert_eq!(offset_for(&mut c, "unset", t0 + 3).await, (3, t0 + 3));
    assert_eq!(offset_for(&mut c, "unset", t0 + 12).await, (12, t0 + 12));
    assert_eq!(offset_for(&mut c, "unset", -3).await, (19, t0 + 19));
    // The stored headers carry the computed max, with a CRC that matches.
    let data = fetch(&mut c, "unset", 0, 0, 0, 1 << 20).await?;
    let stored = data.records.expect("records");
    let first = BatchHeader::new(&stored).expect("a batch");
    assert_eq!(first.max_timestamp(), t0 + 9);
    assert!(strand_protocol::batch::crc_matches(
        &stored[..first.total_size().unwrap()]
    ));
    Ok(())
}

#[tokio::test]
async fn a_keyless_record_in_a_compacted_topic_fails_alone() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "compacted", 1, &[("cleanup.policy", "compact")]).await?;
    let now = now_ms();
    for codec in [Compression::None, Compression::Snappy] {
        let records = vec![
            record(0, Some("a".into()), Some("1".into()), now),
            record(1, None, Some("2".into()), now),
            record(2, Some("c".into()), Some("3".into()), now),
        ];
        let r = produce(&mut c, "compacted", 0, 1, encode(&records, codec).freeze()).await?;
        assert_eq!(r.error_code, 87, "{r:?}"); // INVALID_RECORD
        let indexes: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, [1], "{r:?}");
        let message = r.record_errors[0].batch_index_error_message.as_deref();
        assert!(message.unwrap_or("").contains("without key"), "{r:?}");
        assert!(r
            .error_message
            .as_deref()
            .unwrap_or("")
            .contains("1 record errors"));
    }
    // Nothing of those batches was appended; a keyed batch is.
    let ok = produce(
        &mut c,
        "compacted",
        0,
        1,
        batch(0, 2, now, Compression::None),
    )
    .await?;
    assert_eq!((ok.error_code, ok.base_offset), (0, 0));
    Ok(())
}

#[tokio::test]
async fn timestamps_outside_the_topic_bounds_are_refused() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    let bounds = [
        ("message.timestamp.before.max.ms", "60000"),
        ("message.timestamp.after.max.ms", "60000"),
    ];
    create_topic(&mut c, "bounded", 1, &bounds).await?;
    let now = now_ms();
    let records = vec![
        record(0, Some("a".into()), None, now),
        record(1, Some("b".into()), None, now - 3_600_000),
        record(2, Some("c".into()), None, now + 3_600_000),
    ];
    let r = produce(
        &mut c,
        "bounded",
        0,
        1,
        encode(&records, Compression::Zstd).freeze(),
    )
    .await?;
    assert_eq!(r.error_code, 32, "{r:?}"); // INVALID_TIMESTAMP
    let indexes: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, [1, 2]);
    assert!(r.record_errors[0]
        .batch_index_error_message
        .as_deref()
        .unwrap_or("")
        .contains("out of range"));
    // Kafka 4's default: at most an hour ahead.
    create_topic(&mut c, "defaults", 1, &[]).await?;
    let ahead = batch(0, 1, now + 2 * 3_600_000, Compression::None);
    assert_eq!(
        produce(&mut c, "defaults", 0, 1, ahead).await?.error_code,
        32
    );
    let old = batch(0, 1, 0, Compression::None);
    assert_eq!(produce(&mut c, "defaults", 0, 1, old).await?.error_code, 0);
    Ok(())
}

#[tokio::test]
async fn zstd_needs_produce_v7() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "z", 1, &[]).await?;
    for (version, code) in [(3, 76), (6, 76), (7, 0)] {
        let req = produce_request("z", 0, 1, batch(0, 3, now_ms(), Compression::Zstd));
        let r: ProduceResponse = c.send(ApiKey::Produce, version, &req).await?;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, code, "v{version}: {p:?}"); // UNSUPPORTED_COMPRESSION_TYPE
    }
    Ok(())
}

#[tokio::test]
async fn a_topic_codec_recompresses_what_producers_send() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "lz4", 1, &[("compression.type", "lz4")]).await?;
    create_topic(&mut c, "plain", 1, &[("compression.type", "uncompressed")]).await?;
    let now = now_ms();
    let sent = [
        ("lz4", Compression::None, Codec::Lz4),
        ("lz4", Compression::Gzip, Codec::Lz4),
        ("lz4", Compression::Lz4, Codec::Lz4),
        ("plain", Compression::Zstd, Codec::None),
    ];
    for (i, (topic, codec, _)) in sent.iter().enumerate() {
        let r = produce(&mut c, topic, 0, 1, batch(i * 10, 10, now, *codec)).await?;
        assert_eq!(r.error_code, 0, "{r:?}");
    }
    for (topic, batches) in [("lz4", 3), ("plain", 1)] {
        let stored = fetch(&mut c, topic, 0, 0, 0, 1 << 20)
            .await?
            .records
            .unwrap();
        let mut rest = &stored[..];
        let want: Vec<Codec> = sent
            .iter()
            .filter(|(t, _, _)| *t == topic)
            .map(|(_, _, c)| *c)
            .collect();
        for codec in want {
            let h = BatchHeader::new(rest).expect("a batch");
            assert_eq!(h.codec(), Some(codec), "{topic}");
            rest = &rest[h.total_size().unwrap()..];
        }
        assert!(rest.is_empty());
        let records = decode_records(stored.clone());
        assert_eq!(records.len(), batches * 10, "{topic}");
        assert!(records
            .iter()
            .all(|r| r.key.is_some() && (now..now + 10).contains(&r.timestamp)));
    }
    Ok(())
}
