//! The Strand producer against a real broker: every option changes what reaches the log.

use std::time::Duration;

use bytes::Bytes;
use strand_client::producer::partitioner::partition_for_key;
use strand_client::{Config, Error, Producer, ProducerRecord};
use strand_testkit::TestBroker;

use strand_tests::{create_topic, decode_records, fetch};

fn producer(b: &TestBroker, extra: &[(&str, &str)]) -> Producer {
    let mut c = Config::new().set("bootstrap.servers", b.bootstrap());
    for (k, v) in extra {
        c.insert(*k, v);
    }
    Producer::new(c).unwrap()
}

/// Batch attributes and record counts of a partition, read raw from the broker.
async fn batches(b: &TestBroker, topic: &str, partition: i32) -> Vec<(i16, i32, i64)> {
    let mut c = b.client().await.unwrap();
    let data = fetch(&mut c, topic, partition, 0, 100, 64 << 20)
        .await
        .unwrap();
    let mut bytes = data.records.unwrap_or_default();
    let mut out = Vec::new();
    while bytes.len() >= 61 {
        let len = i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize + 12;
        let attrs = i16::from_be_bytes(bytes[21..23].try_into().unwrap());
        let count = i32::from_be_bytes(bytes[57..61].try_into().unwrap());
        let base = i64::from_be_bytes(bytes[..8].try_into().unwrap());
        out.push((attrs, count, base));
        let _ = bytes.split_to(len);
    }
    out
}

#[tokio::test]
async fn every_codec_and_acks_level_round_trips() {
    let b = TestBroker::start(&[]).await.unwrap();
    for (i, codec) in ["none", "gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
        for acks in ["0", "1", "all"] {
            let topic = format!("codec-{codec}-{acks}");
            let p = producer(
                &b,
                &[
                    ("compression.type", codec),
                    ("acks", acks),
                    ("linger.ms", "20"),
                ],
            );
            let mut pending = Vec::new();
            for n in 0..2000 {
                let rec = ProducerRecord::new(topic.clone())
                    .partition(0)
                    .key(format!("k{n}"))
                    .value(format!("value-{n}-{}", "x".repeat(n % 50)))
                    .timestamp(1_700_000_000_000 + n as i64)
                    .header("n", Some(n.to_string()));
                pending.push(p.send(rec).await.unwrap());
            }
            let mut offsets = Vec::new();
            for d in pending {
                offsets.push(d.await.unwrap().offset);
            }
            if acks == "0" {
                assert!(offsets.iter().all(|o| *o == -1));
            } else {
                assert_eq!(
                    offsets,
                    (0..2000).collect::<Vec<i64>>(),
                    "{codec} acks={acks}"
                );
            }
            p.close().await.unwrap();
            let bs = batches(&b, &topic, 0).await;
            assert!(
                bs.iter().all(|(attrs, _, _)| (attrs & 7) as usize == i),
                "{codec}: {bs:?}"
            );
            let mut c = b.client().await.unwrap();
            let mut got = Vec::new();
            let mut next = 0i64;
            while got.len() < 2000 {
                let d = fetch(&mut c, &topic, 0, next, 500, 8 << 20).await.unwrap();
                let recs = decode_records(d.records.unwrap_or_default());
                assert!(!recs.is_empty(), "{codec} acks={acks}: stuck at {next}");
                next = recs.last().unwrap().offset + 1;
                got.extend(recs);
            }
            for (n, r) in got.iter().enumerate() {
                assert_eq!(r.offset, n as i64);
                assert_eq!(r.key.as_deref(), Some(format!("k{n}").as_bytes()));
                assert_eq!(
                    r.value.as_deref(),
                    Some(format!("value-{n}-{}", "x".repeat(n % 50)).as_bytes())
                );
                assert_eq!(r.timestamp, 1_700_000_000_000 + n as i64);
                let h: Vec<_> = r.headers.iter().collect();
                assert_eq!(h.len(), 1);
                assert_eq!(h[0].0.as_str(), "n");
                assert_eq!(h[0].1.as_deref(), Some(n.to_string().as_bytes()));
            }
        }
    }
}

#[tokio::test]
async fn keyed_records_land_where_the_java_client_puts_them() {
    let b = TestBroker::start(&[]).await.unwrap();
    let mut c = b.client().await.unwrap();
    create_topic(&mut c, "keyed", 6, &[]).await.unwrap();
    let p = producer(&b, &[]);
    // Pinned: Kafka's UtilsTest vectors, toPositive(murmur2) % 6.
    let pinned = [
        ("21", 0),
        ("foobar", 0),
        ("a-little-bit-long-string", 2),
        ("abc", 3),
    ];
    for (key, partition) in pinned {
        assert_eq!(partition_for_key(key.as_bytes(), 6), partition, "{key}");
        let m = p
            .send(ProducerRecord::new("keyed").key(key).value("v"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(m.partition, partition, "{key}");
    }
    for n in 0..200 {
        let key = format!("key-{n}");
        let m = p
            .send(ProducerRecord::new("keyed").key(key.clone()).value("v"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(m.partition, partition_for_key(key.as_bytes(), 6));
    }
    // Null keys stick to one partition per batch; round-robin spreads them one by one.
    let rr = producer(
        &b,
        &[
            (
                "partitioner.class",
                "org.apache.kafka.clients.producer.RoundRobinPartitioner",
            ),
            ("linger.ms", "0"),
        ],
    );
    let mut seen = Vec::new();
    for _ in 0..12 {
        seen.push(
            rr.send(ProducerRecord::new("keyed").value("v"))
                .await
                .unwrap()
                .await
                .unwrap()
                .partition,
        );
    }
    assert_eq!(seen, (0..12).map(|i| i % 6).collect::<Vec<i32>>());
    let sticky = producer(&b, &[("linger.ms", "50"), ("batch.size", "1000000")]);
    let mut ds = Vec::new();
    for _ in 0..50 {
        ds.push(
            sticky
                .send(ProducerRecord::new("keyed").value("v"))
                .await
                .unwrap(),
        );
    }
    let parts: Vec<i32> = ds.iter().map(|d| d.partition()).collect();
    assert!(parts.iter().all(|p| *p == parts[0]), "sticky: {parts:?}");
}

#[tokio::test]
async fn linger_and_batch_size_shape_the_batches() {
    let b = TestBroker::start(&[]).await.unwrap();
    // A long linger gathers 100 records sent back to back into one batch.
    let p = producer(&b, &[("linger.ms", "300"), ("batch.size", "1000000")]);
    let ds: Vec<_> = {
        let mut v = Vec::new();
        for n in 0..100 {
            v.push(
                p.send(
                    ProducerRecord::new("linger")
                        .partition(0)
                        .value(format!("{n}")),
                )
                .await
                .unwrap(),
            );
        }
        v
    };
    for d in ds {
        d.await.unwrap();
    }
    assert_eq!(batches(&b, "linger", 0).await.len(), 1);
    // batch.size=1024 with 200-byte values: about five records a batch.
    let p = producer(&b, &[("linger.ms", "300"), ("batch.size", "1024")]);
    let mut v = Vec::new();
    for _ in 0..100 {
        v.push(
            p.send(
                ProducerRecord::new("small-batches")
                    .partition(0)
                    .value(vec![b'x'; 200]),
            )
            .await
            .unwrap(),
        );
    }
    for d in v {
        d.await.unwrap();
    }
    let bs = batches(&b, "small-batches", 0).await;
    assert!(bs.len() >= 20, "{} batches", bs.len());
    assert!(bs.iter().all(|(_, count, _)| *count <= 5), "{bs:?}");
    // linger.ms=0 and one record awaited at a time: one batch each.
    let p = producer(&b, &[("linger.ms", "0")]);
    for n in 0..5 {
        p.send(
            ProducerRecord::new("no-linger")
                .partition(0)
                .value(format!("{n}")),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    assert_eq!(batches(&b, "no-linger", 0).await.len(), 5);
}

#[tokio::test]
async fn buffer_memory_blocks_then_fails_after_max_block_ms() {
    let b = TestBroker::start(&[]).await.unwrap();
    let p = producer(
        &b,
        &[
            ("buffer.memory", "20000"),
            ("max.block.ms", "300"),
            ("linger.ms", "60000"),
            ("batch.size", "1000000"),
        ],
    );
    p.partitions_for("pressure").await.unwrap();
    let mut accepted = 0;
    let err = loop {
        match p
            .send(
                ProducerRecord::new("pressure")
                    .partition(0)
                    .value(vec![b'x'; 1000]),
            )
            .await
        {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "buffer.memory was not enforced");
    };
    assert!(matches!(err, Error::BufferExhausted(_)), "{err}");
    assert!(
        (15..=20).contains(&accepted),
        "{accepted} records fit in 20000 bytes"
    );
    // A flush sends what is buffered and frees the memory.
    p.flush().await.unwrap();
    let d = p
        .send(ProducerRecord::new("pressure").partition(0).value("after"))
        .await
        .unwrap();
    p.flush().await.unwrap(); // linger.ms is a minute: only a flush sends it now
    assert_eq!(d.await.unwrap().offset, accepted as i64);
    // A record larger than max.request.size is refused at once.
    let big = producer(&b, &[("max.request.size", "10000")]);
    let e = big
        .send(ProducerRecord::new("pressure").value(vec![0u8; 20_000]))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("RECORD_TOO_LARGE"), "{e}");
}

#[tokio::test]
async fn retries_carry_records_across_a_broker_restart() {
    let b = TestBroker::start(&[]).await.unwrap();
    let p = producer(
        &b,
        &[("retry.backoff.ms", "50"), ("request.timeout.ms", "2000")],
    );
    p.send(ProducerRecord::new("restart").partition(0).value("before"))
        .await
        .unwrap()
        .await
        .unwrap();
    let b = b.restart().await.unwrap();
    // The old connection is gone; the producer reconnects and delivers in order.
    let mut ds = Vec::new();
    for n in 0..100 {
        ds.push(
            p.send(
                ProducerRecord::new("restart")
                    .partition(0)
                    .value(format!("{n}")),
            )
            .await
            .unwrap(),
        );
    }
    let mut offsets = Vec::new();
    for d in ds {
        offsets.push(d.await.unwrap().offset);
    }
    assert_eq!(offsets, (1..101).collect::<Vec<i64>>());
    drop(b);
}

#[tokio::test]
async fn delivery_timeout_fails_records_that_cannot_be_sent() {
    let mut b = TestBroker::start(&[]).await.unwrap();
    let p = producer(
        &b,
        &[
            ("delivery.timeout.ms", "1500"),
            ("request.timeout.ms", "500"),
            ("retry.backoff.ms", "50"),
            ("socket.connection.setup.timeout.ms", "200"),
        ],
    );
    p.send(ProducerRecord::new("gone").partition(0).value("first"))
        .await
        .unwrap()
        .await
        .unwrap();
    b.stop().await.unwrap();
    let start = std::time::Instant::now();
    let d = p
        .send(ProducerRecord::new("gone").partition(0).value("lost"))
        .await
        .unwrap();
    let e = d.await.unwrap_err();
    assert!(
        start.elapsed() >= Duration::from_millis(1400),
        "failed early: {e}"
    );
    assert!(
        matches!(e, Error::Timeout(_) | Error::Transport { .. }),
        "{e}"
    );
    // retries=0: the first failure is final.
    let b2 = TestBroker::start(&[]).await.unwrap();
    let p = producer(&b2, &[("retries", "0")]);
    let e = p
        .send(ProducerRecord::new("x").partition(7).value("v"))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("partition 7"), "{e}");
}

#[tokio::test]
async fn log_append_time_and_explicit_timestamps_come_back() {
    let b = TestBroker::start(&[]).await.unwrap();
    let mut c = b.client().await.unwrap();
    create_topic(
        &mut c,
        "lat",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await
    .unwrap();
    let p = producer(&b, &[]);
    let m = p
        .send(ProducerRecord::new("lat").value("v").timestamp(5))
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        m.timestamp > 1_600_000_000_000,
        "broker time, not 5: {}",
        m.timestamp
    );
    let m = p
        .send(ProducerRecord::new("ct").value("v").timestamp(5))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(m.timestamp, 5);
    let m = p
        .send(ProducerRecord {
            topic: "ct".into(),
            value: None,
            key: Some(Bytes::from_static(b"k")),
            ..Default::default()
        })
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(m.offset, 1);
}

#[tokio::test]
async fn callbacks_report_every_record_once() {
    let b = TestBroker::start(&[]).await.unwrap();
    let p = producer(&b, &[("linger.ms", "5")]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for n in 0..500 {
        let tx = tx.clone();
        p.send_with_callback(
            ProducerRecord::new("cb").partition(0).value(format!("{n}")),
            move |r| {
                let _ = tx.send((n, r.map(|m| m.offset)));
            },
        )
        .await
        .unwrap();
    }
    // A record that cannot be delivered reports its error through the callback.
    let tx2 = tx.clone();
    let bad = producer(&b, &[("retries", "0"), ("max.block.ms", "500")]);
    let refused = bad
        .send_with_callback(
            ProducerRecord::new("cb").partition(9).value("x"),
            move |r| {
                let _ = tx2.send((-1, r.map(|m| m.offset)));
            },
        )
        .await;
    assert!(
        refused.is_err(),
        "an unknown partition is refused before enqueueing"
    );
    drop(tx);
    p.flush().await.unwrap();
    let mut got = Vec::new();
    while let Some((n, r)) = rx.recv().await {
        got.push((n, r.unwrap()));
    }
    got.sort();
    assert_eq!(got, (0..500).map(|n| (n, n as i64)).collect::<Vec<_>>());
}

/// A fake broker: answers ApiVersions and Metadata (one topic `hole`, led by itself) and
/// swallows every Produce request, counting them and the client ids they carry.
struct BlackHole {
    addr: std::net::SocketAddr,
    produces: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    client_ids: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

async fn black_hole() -> BlackHole {
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{ApiKey, BrokerId, MetadataResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use std::sync::atomic::Ordering;
    use strand_protocol::frame::{encode_response, RequestFrame};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let produces = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client_ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (p2, ids2) = (produces.clone(), client_ids.clone());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (p3, ids3) = (p2.clone(), ids2.clone());
            tokio::spawn(async move {
                loop {
                    let Ok(size) = sock.read_i32().await else {
                        return;
                    };
                    let mut buf = vec![0u8; size as usize];
                    if sock.read_exact(&mut buf).await.is_err() {
                        return;
                    }
                    let frame = RequestFrame::parse(Bytes::from(buf)).unwrap();
                    let (v, id) = (frame.version(), frame.correlation_id());
                    let out = match frame.api_key {
                        ApiKey::ApiVersions => encode_response(
                            ApiKey::ApiVersions,
                            v,
                            id,
                            &strand_protocol::api::api_versions_response(0),
                        )
                        .unwrap(),
                        ApiKey::Metadata => {
                            let resp = MetadataResponse::default()
                                .with_brokers(vec![MetadataResponseBroker::default()
                                    .with_node_id(BrokerId(1))
                                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                                    .with_port(addr.port() as i32)])
                                .with_controller_id(BrokerId(1))
                                .with_topics(vec![MetadataResponseTopic::default()
                                    .with_name(Some(TopicName(StrBytes::from_static_str("hole"))))
                                    .with_topic_id(uuid::Uuid::new_v4())
                                    .with_partitions(vec![MetadataResponsePartition::default()
                                        .with_partition_index(0)
                                        .with_leader_id(BrokerId(1))
                                        .with_replica_nodes(vec![BrokerId(1)])
                                        .with_isr_nodes(vec![BrokerId(1)])])]);
                            encode_response(ApiKey::Metadata, v, id, &resp).unwrap()
                        }
                        ApiKey::Produce => {
                            p3.fetch_add(1, Ordering::SeqCst);
                            ids3.lock()
                                .unwrap()
                                .push(frame.header.client_id.as_deref().unwrap_or("").to_string());
                            continue; // never answered
                        }
                        _ => return,
                    };
                    if sock.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    BlackHole {
        addr,
        produces,
        client_ids,
    }
}

#[tokio::test]
async fn request_timeout_max_in_flight_and_client_id_reach_the_wire() {
    use std::sync::atomic::Ordering;
    let hole = black_hole().await;
    let cfg = Config::new()
        .set("bootstrap.servers", hole.addr)
        .set("client.id", "billing-app")
        .set("request.timeout.ms", "400")
        .set("delivery.timeout.ms", "60000")
        .set("retries", "0")
        .set("linger.ms", "0")
        .set("batch.size", "1") // every record is a batch of its own
        .set("max.in.flight.requests.per.connection", "2");
    let p = Producer::new(cfg).unwrap();
    let start = std::time::Instant::now();
    let mut ds = Vec::new();
    for n in 0..5 {
        ds.push(
            p.send(
                ProducerRecord::new("hole")
                    .partition(0)
                    .value(format!("{n}")),
            )
            .await
            .unwrap(),
        );
    }
    // Only two requests go out while none is answered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        hole.produces.load(Ordering::SeqCst),
        2,
        "max.in.flight.requests.per.connection"
    );
    let e = ds.remove(0).await.unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(390),
        "request.timeout.ms: gave up after {waited:?}"
    );
    assert!(hole
        .client_ids
        .lock()
        .unwrap()
        .iter()
        .all(|c| c == "billing-app"));
}

#[tokio::test]
async fn retries_zero_fails_at_the_first_retriable_error() {
    let b = TestBroker::start(&[]).await.unwrap();
    let mut c = b.client().await.unwrap();
    create_topic(&mut c, "doomed", 1, &[]).await.unwrap();
    let once = producer(&b, &[("retries", "0")]);
    let patient = producer(
        &b,
        &[("delivery.timeout.ms", "1500"), ("retry.backoff.ms", "50")],
    );
    for p in [&once, &patient] {
        p.send(ProducerRecord::new("doomed").value("warm"))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // Delete the topic behind the producers' backs: produce answers UNKNOWN_TOPIC_OR_PARTITION.
    let req = kafka_protocol::messages::DeleteTopicsRequest::default()
        .with_topic_names(vec![strand_tests::name("doomed")])
        .with_timeout_ms(5000);
    let _: kafka_protocol::messages::DeleteTopicsResponse = c
        .send(kafka_protocol::messages::ApiKey::DeleteTopics, 4, &req)
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let e = once
        .send(ProducerRecord::new("doomed").partition(0).value("x"))
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Some(strand_client::KafkaCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{e}"
    );
    let first = start.elapsed();
    let e = patient
        .send(ProducerRecord::new("doomed").partition(0).value("x"))
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert!(
        start.elapsed() >= first + Duration::from_millis(1000),
        "retried until delivery.timeout.ms: {e}"
    );
}

#[tokio::test]
async fn new_partitions_are_seen_after_metadata_max_age() {
    let b = TestBroker::start(&[]).await.unwrap();
    let mut c = b.client().await.unwrap();
    create_topic(&mut c, "growing", 1, &[]).await.unwrap();
    let p = producer(
        &b,
        &[
            ("metadata.max.age.ms", "300"),
            ("partitioner.class", "RoundRobinPartitioner"),
            ("linger.ms", "0"),
        ],
    );
    assert_eq!(
        p.send(ProducerRecord::new("growing").value("a"))
            .await
            .unwrap()
            .await
            .unwrap()
            .partition,
        0
    );
    let admin =
        strand_client::Admin::new(Config::new().set("bootstrap.servers", b.bootstrap())).unwrap();
    admin.create_partitions("growing", 3).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "only partitions {seen:?} used"
        );
        seen.insert(
            p.send(ProducerRecord::new("growing").value("b"))
                .await
                .unwrap()
                .await
                .unwrap()
                .partition,
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn refused_records_fail_alone_and_the_rest_of_their_batch_says_why() {
    let b = TestBroker::start(&[]).await.unwrap();
    let mut c = b.client().await.unwrap();
    create_topic(&mut c, "compacted", 1, &[("cleanup.policy", "compact")])
        .await
        .unwrap();
    let p = producer(&b, &[("linger.ms", "100")]);
    let mut pending = Vec::new();
    for n in 0..4 {
        let mut rec = ProducerRecord::new("compacted").partition(0).value("v");
        if n != 2 {
            rec = rec.key(format!("k{n}"));
        }
        pending.push(p.send(rec).await.unwrap());
    }
    let mut results = Vec::new();
    for d in pending {
        results.push(d.await);
    }
    let keyless = results[2].as_ref().unwrap_err();
    assert_eq!(
        keyless.code(),
        Some(strand_client::KafkaCode(87)),
        "{keyless}"
    );
    assert!(keyless.to_string().contains("without key"), "{keyless}");
    for r in [&results[0], &results[1], &results[3]] {
        let e = r.as_ref().unwrap_err();
        assert!(
            matches!(e, Error::InvalidRecord(m) if m.contains("another record")),
            "{e}"
        );
    }
    // The producer goes on: a keyed record is appended, at the log's first offset.
    let ok = p
        .send(
            ProducerRecord::new("compacted")
                .partition(0)
                .key("k")
                .value("v"),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ok.offset, 0);
    p.close().await.unwrap();
}
