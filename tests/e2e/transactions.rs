//! Idempotent and transactional producers: raw requests for the broker's rules (duplicates,
//! sequence gaps, stale epochs, transaction states, control batches), the Rust client for
//! whole transactions.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use strand_client::{Config, Consumer, Producer, ProducerRecord, TopicPartition};
use strand_protocol::testing::{encode, record};
use strand_testkit::{RawClient, TestBroker};

use strand_tests::*;

/// A batch of `n` records from producer `pid` at `epoch`, starting at sequence `seq`.
fn producer_batch(pid: i64, epoch: i16, seq: i32, n: usize, transactional: bool) -> Bytes {
    // Producers expire by their records' timestamps: these are recent.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let records: Vec<_> = (0..n)
        .map(|i| {
            let mut r = record(
                i as i64,
                Some(format!("k{i}").into()),
                Some(format!("v{}", seq as usize + i).into()),
                now + i as i64,
            );
            r.producer_id = pid;
            r.producer_epoch = epoch;
            r.sequence = seq + i as i32;
            r.transactional = transactional;
            r
        })
        .collect();
    encode(&records, Compression::None).freeze()
}

async fn init_producer_id(c: &mut RawClient, txn: Option<&str>) -> anyhow::Result<(i64, i16)> {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(txn.map(|t| TransactionalId(s(t))))
        .with_transaction_timeout_ms(60_000);
    let r: InitProducerIdResponse = c.send(ApiKey::InitProducerId, 4, &req).await?;
    anyhow::ensure!(r.error_code == 0, "InitProducerId: error {}", r.error_code);
    Ok((r.producer_id.0, r.producer_epoch))
}

async fn latest(c: &mut RawClient, topic: &str, isolation_level: i8) -> anyhow::Result<i64> {
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_isolation_level(isolation_level)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let r: ListOffsetsResponse = c.send(ApiKey::ListOffsets, 7, &req).await?;
    Ok(r.topics[0].partitions[0].offset)
}

async fn find_txn_coordinator(c: &mut RawClient, id: &str) -> anyhow::Result<()> {
    let req = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![s(id)]);
    let r: FindCoordinatorResponse = c.send(ApiKey::FindCoordinator, 4, &req).await?;
    anyhow::ensure!(r.coordinators[0].error_code == 0, "FindCoordinator failed");
    Ok(())
}

#[tokio::test]
async fn a_retried_batch_is_answered_with_its_first_offset_and_written_once() -> anyhow::Result<()>
{
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "idem", 1, &[]).await?;
    let (pid, epoch) = init_producer_id(&mut c, None).await?;
    let (pid2, _) = init_producer_id(&mut c, None).await?;
    assert_ne!(pid, pid2, "every idempotent producer gets its own id");
    let first = produce(
        &mut c,
        "idem",
        0,
        -1,
        producer_batch(pid, epoch, 0, 3, false),
    )
    .await?;
    let second = produce(
        &mut c,
        "idem",
        0,
        -1,
        producer_batch(pid, epoch, 3, 2, false),
    )
    .await?;
    assert_eq!((first.error_code, first.base_offset), (0, 0));
    assert_eq!((second.error_code, second.base_offset), (0, 3));
    // The retry of the first batch: success, its original offset, nothing written.
    let retry = produce(
        &mut c,
        "idem",
        0,
        -1,
        producer_batch(pid, epoch, 0, 3, false),
    )
    .await?;
    assert_eq!((retry.error_code, retry.base_offset), (0, 0));
    assert_eq!(latest(&mut c, "idem", 0).await?, 5);
    // Producer ids survive a restart: the next one is new.
    drop(c);
    let broker = broker.restart().await?;
    let mut c = broker.client().await?;
    let (pid3, _) = init_producer_id(&mut c, None).await?;
    assert!(
        pid3 != pid && pid3 != pid2,
        "producer id {pid3} handed out twice"
    );
    // So is the producer's state: a retry after the restart is still recognised.
    let retry = produce(
        &mut c,
        "idem",
        0,
        -1,
        producer_batch(pid, epoch, 3, 2, false),
    )
    .await?;
    assert_eq!((retry.error_code, retry.base_offset), (0, 3));
    assert_eq!(latest(&mut c, "idem", 0).await?, 5);
    Ok(())
}

#[tokio::test]
async fn sequence_gaps_stale_epochs_and_control_batches_get_kafkas_errors() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "seq", 1, &[]).await?;
    let (pid, _) = init_producer_id(&mut c, None).await?;
    assert_eq!(
        produce(&mut c, "seq", 0, -1, producer_batch(pid, 1, 0, 2, false))
            .await?
            .error_code,
        0
    );
    let gap = produce(&mut c, "seq", 0, -1, producer_batch(pid, 1, 5, 1, false)).await?;
    assert_eq!(gap.error_code, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    let new_epoch_not_at_zero =
        produce(&mut c, "seq", 0, -1, producer_batch(pid, 2, 2, 1, false)).await?;
    assert_eq!(new_epoch_not_at_zero.error_code, 45);
    assert_eq!(
        produce(&mut c, "seq", 0, -1, producer_batch(pid, 2, 0, 1, false))
            .await?
            .error_code,
        0
    );
    let stale = produce(&mut c, "seq", 0, -1, producer_batch(pid, 1, 2, 1, false)).await?;
    assert_eq!(stale.error_code, 47, "INVALID_PRODUCER_EPOCH");
    // Clients may not write transaction markers.
    let marker = strand_protocol::batch::end_txn_marker(pid, 2, true, 0, 1_000);
    let refused = produce(&mut c, "seq", 0, -1, Bytes::from(marker)).await?;
    assert_eq!(refused.error_code, 87, "INVALID_RECORD");
    // A transactional batch outside any transaction.
    let outside = produce(&mut c, "seq", 0, -1, producer_batch(pid, 2, 1, 1, true)).await?;
    assert_eq!(outside.error_code, 48, "INVALID_TXN_STATE");
    // Nothing refused was written.
    assert_eq!(latest(&mut c, "seq", 0).await?, 3);
    Ok(())
}

#[tokio::test]
async fn transaction_requests_in_the_wrong_state_change_nothing() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "tt", 1, &[]).await?;
    find_txn_coordinator(&mut c, "tx-a").await?;
    let (pid, epoch) = init_producer_id(&mut c, Some("tx-a")).await?;
    let add = |pid: i64, epoch: i16| {
        AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s("tx-a")))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(name("tt"))
                .with_partitions(vec![0])])
    };
    let end = |pid: i64, epoch: i16, commit: bool| {
        EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s("tx-a")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit)
    };
    let code = |r: &AddPartitionsToTxnResponse| {
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
    };
    // No transaction is open: EndTxn is refused.
    let r: EndTxnResponse = c.send(ApiKey::EndTxn, 3, &end(pid, epoch, true)).await?;
    assert_eq!(r.error_code, 48, "INVALID_TXN_STATE");
    // Another producer id: INVALID_PRODUCER_ID_MAPPING.
    let r: AddPartitionsToTxnResponse = c
        .send(ApiKey::AddPartitionsToTxn, 3, &add(pid + 100, epoch))
        .await?;
    assert_eq!(code(&r), 49);
    // TxnOffsetCommit before AddOffsetsToTxn: the group's partition is not in the transaction.
    let r: AddPartitionsToTxnResponse = c
        .send(ApiKey::AddPartitionsToTxn, 3, &add(pid, epoch))
        .await?;
    assert_eq!(code(&r), 0);
    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s("tx-a")))
        .with_group_id(GroupId(s("g")))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(name("tt"))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])]);
    let r: TxnOffsetCommitResponse = c.send(ApiKey::TxnOffsetCommit, 3, &commit).await?;
    assert_eq!(
        r.topics[0].partitions[0].error_code, 48,
        "INVALID_TXN_STATE"
    );
    // Data in the transaction, then a second instance fences the first.
    assert_eq!(
        produce_txn(&mut c, "tx-a", producer_batch(pid, epoch, 0, 2, true)).await?,
        0
    );
    assert_eq!(
        latest(&mut c, "tt", 1).await?,
        0,
        "LSO held at the open transaction"
    );
    let mut c2 = broker.client().await?;
    let r: InitProducerIdResponse = c2
        .send(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s("tx-a"))))
                .with_transaction_timeout_ms(60_000),
        )
        .await?;
    assert_eq!(
        r.error_code, 51,
        "CONCURRENT_TRANSACTIONS while the old one is aborted"
    );
    let (pid2, epoch2) = init_producer_id(&mut c2, Some("tx-a")).await?;
    assert_eq!((pid2, epoch2), (pid, epoch + 2));
    // The old instance: fenced (v1 still says INVALID_PRODUCER_EPOCH).
    let r: EndTxnResponse = c.send(ApiKey::EndTxn, 1, &end(pid, epoch, true)).await?;
    assert_eq!(r.error_code, 47);
    let r: EndTxnResponse = c.send(ApiKey::EndTxn, 3, &end(pid, epoch, true)).await?;
    assert_eq!(r.error_code, 90, "PRODUCER_FENCED");
    // Its data was aborted: nothing for a committed reader, the LSO moved past it.
    assert_eq!(
        latest(&mut c, "tt", 1).await?,
        3,
        "data and the ABORT marker"
    );
    let data = fetch_committed(&mut c, "tt").await?;
    assert_eq!(
        data.aborted_transactions.as_deref().map(|a| a.len()),
        Some(1),
        "{data:?}"
    );
    Ok(())
}

async fn produce_txn(c: &mut RawClient, id: &str, records: Bytes) -> anyhow::Result<i16> {
    let req =
        produce_request("tt", 0, -1, records).with_transactional_id(Some(TransactionalId(s(id))));
    let r: ProduceResponse = c.send(ApiKey::Produce, 9, &req).await?;
    Ok(r.responses[0].partition_responses[0].error_code)
}

async fn fetch_committed(
    c: &mut RawClient,
    topic: &str,
) -> anyhow::Result<fetch_response::PartitionData> {
    let req = fetch_request(topic, 0, 0, 0, 1 << 20).with_isolation_level(1);
    let r: FetchResponse = c.send(ApiKey::Fetch, 11, &req).await?;
    Ok(r.responses[0].partitions[0].clone())
}

fn client_config(broker: &TestBroker, extra: &[(&str, &str)]) -> Config {
    let mut c = Config::from([("bootstrap.servers", broker.bootstrap().as_str())]);
    for (k, v) in extra {
        c.insert(*k, *v);
    }
    c
}

async fn read_values(
    broker: &TestBroker,
    topic: &str,
    isolation: &str,
) -> anyhow::Result<Vec<String>> {
    let mut consumer = Consumer::new(client_config(
        broker,
        &[
            ("isolation.level", isolation),
            ("auto.offset.reset", "earliest"),
        ],
    ))?;
    consumer.assign(&[TopicPartition::new(topic, 0)])?;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(200)).await? {
            out.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
    }
    Ok(out)
}

#[tokio::test]
async fn the_rust_client_commits_aborts_and_is_fenced() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let p = Producer::new(client_config(&broker, &[("transactional.id", "rust-tx")]))?;
    p.init_transactions().await?;
    let send = |v: &str| ProducerRecord::new("rt").partition(0).value(v.to_string());
    p.begin_transaction()?;
    for v in ["a", "b"] {
        p.send(send(v)).await?;
    }
    p.commit_transaction().await?;
    p.begin_transaction()?;
    p.send(send("aborted")).await?;
    p.abort_transaction().await?;
    p.begin_transaction()?;
    p.send(send("c")).await?;
    // An open transaction is not read by committed readers yet.
    p.flush().await?;
    assert_eq!(
        read_values(&broker, "rt", "read_committed").await?,
        vec!["a", "b"]
    );
    p.commit_transaction().await?;
    assert_eq!(
        read_values(&broker, "rt", "read_committed").await?,
        vec!["a", "b", "c"]
    );
    assert_eq!(
        read_values(&broker, "rt", "read_uncommitted").await?,
        vec!["a", "b", "aborted", "c"]
    );
    // A second instance fences the first: its next transaction fails for good.
    let p2 = Producer::new(client_config(&broker, &[("transactional.id", "rust-tx")]))?;
    p2.init_transactions().await?;
    p.begin_transaction()?;
    let _ = p.send(send("late")).await;
    let err = p.commit_transaction().await.unwrap_err();
    assert!(
        matches!(err.code(), Some(c) if c.0 == 47 || c.0 == 90)
            || err.to_string().contains("fenced"),
        "{err}"
    );
    assert!(
        p.begin_transaction().is_err(),
        "a fenced producer stays fenced"
    );
    p2.begin_transaction()?;
    p2.send(send("d")).await?;
    p2.commit_transaction().await?;
    assert_eq!(
        read_values(&broker, "rt", "read_committed").await?,
        vec!["a", "b", "c", "d"]
    );
    Ok(())
}

#[tokio::test]
async fn an_open_transaction_left_by_a_restart_is_aborted_after_its_timeout() -> anyhow::Result<()>
{
    let overrides = [(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "200",
    )];
    let broker = TestBroker::start(&overrides).await?;
    let p = Producer::new(client_config(
        &broker,
        &[
            ("transactional.id", "left"),
            ("transaction.timeout.ms", "1000"),
        ],
    ))?;
    p.init_transactions().await?;
    p.begin_transaction()?;
    p.send(ProducerRecord::new("left").partition(0).value("open"))
        .await?;
    p.flush().await?;
    drop(p);
    let broker = broker.restart().await?;
    let mut c = broker.client().await?;
    // The coordinator aborts it on its own; the LSO then passes it.
    let mut lso = 0;
    for _ in 0..100 {
        lso = latest(&mut c, "left", 1).await?;
        if lso == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(lso, 2, "record and ABORT marker below the LSO");
    assert!(read_values(&broker, "left", "read_committed")
        .await?
        .is_empty());
    assert_eq!(
        read_values(&broker, "left", "read_uncommitted").await?,
        vec!["open"]
    );
    Ok(())
}
