//! Producing and fetching: offsets, limits, long polls, durability, restarts.

use std::time::Duration;

use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use strand_testkit::TestBroker;
use strand_tests::*;

#[tokio::test]
async fn produce_then_fetch_every_codec() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "codecs", 1, &[]).await?;
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for (i, codec) in codecs.into_iter().enumerate() {
        let r = produce(
            &mut c,
            "codecs",
            0,
            1,
            batch(i * 10, 10, 5_000 + i as i64 * 10, codec),
        )
        .await?;
        assert_eq!((r.error_code, r.base_offset), (0, i as i64 * 10));
    }
    let p = fetch(&mut c, "codecs", 0, 0, 100, 1 << 20).await?;
    assert_eq!(p.high_watermark, 50);
    let records = decode_records(p.records.unwrap_or_default());
    assert_eq!(records.len(), 50);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(r.timestamp, 5_000 + i as i64);
    }
    // From the middle, and at the end (an empty, non-null record set).
    let p = fetch(&mut c, "codecs", 0, 25, 0, 1 << 20).await?;
    assert_eq!(decode_records(p.records.unwrap_or_default())[0].offset, 20);
    let p = fetch(&mut c, "codecs", 0, 50, 0, 1 << 20).await?;
    assert_eq!(p.records.as_ref().map(|r| r.len()), Some(0));
    // Past the end.
    assert_eq!(
        fetch(&mut c, "codecs", 0, 51, 0, 1 << 20).await?.error_code,
        1
    );
    Ok(())
}

#[tokio::test]
async fn fetch_limits_keep_at_least_one_batch() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "big", 1, &[]).await?;
    for i in 0..4 {
        produce(
            &mut c,
            "big",
            0,
            1,
            batch(i * 100, 100, 0, Compression::None),
        )
        .await?;
    }
    // 10 bytes allowed: the first batch comes whole all the same (KIP-74).
    let p = fetch(&mut c, "big", 0, 0, 0, 10).await?;
    assert_eq!(decode_records(p.records.unwrap_or_default()).len(), 100);
    Ok(())
}

#[tokio::test]
async fn long_poll_answers_when_data_arrives() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "lp", 1, &[]).await?;
    let mut consumer = broker.client().await?;
    // Waits up to 60 s; the test gives up after 20 s, so it passes only if the append wakes it.
    let waiting =
        tokio::spawn(async move { fetch(&mut consumer, "lp", 0, 0, 60_000, 1 << 20).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    produce(&mut c, "lp", 0, 1, batch(0, 1, 0, Compression::None)).await?;
    let p = tokio::time::timeout(Duration::from_secs(20), waiting).await???;
    assert_eq!(decode_records(p.records.unwrap_or_default()).len(), 1);
    Ok(())
}

#[tokio::test]
async fn acks_all_is_fsynced_before_the_answer_and_acks_zero_gets_none() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "d", 1, &[]).await?;
    let r = produce(&mut c, "d", 0, -1, batch(0, 10, 0, Compression::None)).await?;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let p = broker.broker.partition("d", 0).expect("partition exists");
    assert_eq!(
        p.log().recovery_point(),
        10,
        "acknowledged acks=all data is on stable storage"
    );
    // acks=0: no response; the next request's answer is the next frame.
    c.send_only(
        ApiKey::Produce,
        9,
        &produce_request("d", 0, 0, batch(10, 5, 0, Compression::None)),
    )
    .await?;
    let m: MetadataResponse = c
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await?;
    assert_eq!(m.brokers.len(), 1);
    assert_eq!(p.log().log_end_offset(), 15);
    Ok(())
}

#[tokio::test]
async fn concurrent_acks_all_producers_all_get_durable_acks() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "gc", 3, &[]).await?;
    let mut tasks = Vec::new();
    for w in 0..6 {
        let mut c = broker.client().await?;
        tasks.push(tokio::spawn(async move {
            let mut offsets = Vec::new();
            for i in 0..50 {
                let r = produce(&mut c, "gc", w % 3, -1, batch(i, 2, 0, Compression::None)).await?;
                anyhow::ensure!(r.error_code == 0, "{r:?}");
                offsets.push(r.base_offset);
            }
            anyhow::Ok(offsets)
        }));
    }
    for t in tasks {
        let offsets = t.await??;
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "offsets increase per producer"
        );
    }
    for p in 0..3 {
        let part = broker.broker.partition("gc", p).expect("partition");
        let log = part.log();
        assert_eq!(log.log_end_offset(), 200);
        assert_eq!(log.recovery_point(), 200);
    }
    Ok(())
}

#[tokio::test]
async fn list_offsets_earliest_latest_timestamp_max() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "ts", 1, &[]).await?;
    produce(&mut c, "ts", 0, 1, batch(0, 10, 1_000, Compression::Zstd)).await?;
    produce(&mut c, "ts", 0, 1, batch(10, 10, 2_000, Compression::None)).await?;
    let ask = |ts: i64| {
        ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(name("ts"))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(ts),
                ])])
    };
    let mut get = async |ts: i64| -> anyhow::Result<(i64, i64)> {
        let r: ListOffsetsResponse = c.send(ApiKey::ListOffsets, 8, &ask(ts)).await?;
        let p = &r.topics[0].partitions[0];
        anyhow::ensure!(p.error_code == 0, "{p:?}");
        Ok((p.offset, p.timestamp))
    };
    assert_eq!(get(-2).await?.0, 0);
    assert_eq!(get(-1).await?.0, 20);
    assert_eq!(get(1_005).await?, (5, 1_005));
    assert_eq!(get(1_500).await?, (10, 2_000));
    assert_eq!(get(2_009).await?, (19, 2_009));
    assert_eq!(get(9_999).await?, (-1, -1));
    assert_eq!(get(-3).await?, (19, 2_009));
    Ok(())
}

#[tokio::test]
async fn log_append_time_topics_stamp_the_broker_time() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(
        &mut c,
        "lat",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await?;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let r = produce(&mut c, "lat", 0, 1, batch(0, 3, 5, Compression::Snappy)).await?;
    assert!(r.log_append_time_ms >= before, "{r:?}");
    let p = fetch(&mut c, "lat", 0, 0, 0, 1 << 20).await?;
    let records = decode_records(p.records.unwrap_or_default());
    assert!(records
        .iter()
        .all(|x| x.timestamp_type == kafka_protocol::records::TimestampType::LogAppend));
    Ok(())
}

#[tokio::test]
async fn a_clean_restart_keeps_topics_configs_and_data() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[("log.segment.bytes", "2048")]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "keep", 2, &[("retention.ms", "123456")]).await?;
    for i in 0..30 {
        produce(
            &mut c,
            "keep",
            i % 2,
            1,
            batch(i as usize * 10, 10, 0, Compression::None),
        )
        .await?;
    }
    drop(c);
    let broker = broker.restart().await?;
    let mut c = broker.client().await?;
    for p in 0..2 {
        let mut offset = 0;
        let mut n = 0;
        loop {
            let part = fetch(&mut c, "keep", p, offset, 0, 1 << 20).await?;
            assert_eq!(part.high_watermark, 150);
            let records = decode_records(part.records.unwrap_or_default());
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            n += records.len();
        }
        assert_eq!(n, 150);
    }
    let r = produce(&mut c, "keep", 0, 1, batch(0, 1, 0, Compression::None)).await?;
    assert_eq!(r.base_offset, 150, "offsets continue");
    let req = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("keep"))
            .with_configuration_keys(Some(vec![s("retention.ms")])),
    ]);
    let r: DescribeConfigsResponse = c.send(ApiKey::DescribeConfigs, 4, &req).await?;
    assert_eq!(r.results[0].configs[0].value.as_deref(), Some("123456"));
    Ok(())
}
