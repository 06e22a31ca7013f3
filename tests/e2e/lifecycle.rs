//! Log lifecycle over real sockets: retention, DeleteRecords, and a disk that fills up.

use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use strand_testkit::{RawClient, TestBroker};
use strand_tests::*;

async fn earliest(c: &mut RawClient, topic: &str) -> anyhow::Result<i64> {
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-2),
            ])]);
    let r: ListOffsetsResponse = c.send(ApiKey::ListOffsets, 7, &req).await?;
    Ok(r.topics[0].partitions[0].offset)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::test]
async fn retention_deletes_old_segments_and_keeps_the_active_one() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[("log.retention.check.interval.ms", "100")]).await?;
    let mut c = broker.client().await?;
    create_topic(
        &mut c,
        "old",
        1,
        &[
            ("retention.ms", "2000"),
            ("segment.bytes", "1024"),
            ("file.delete.delay.ms", "0"),
        ],
    )
    .await?;
    // Records an hour old: every closed segment is past retention.ms at once.
    let hour_ago = now_ms() - 3_600_000;
    for i in 0..20 {
        produce(
            &mut c,
            "old",
            0,
            1,
            batch(i * 5, 5, hour_ago, Compression::None),
        )
        .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while earliest(&mut c, "old").await? == 0 {
        anyhow::ensure!(Instant::now() < deadline, "retention never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let part = broker.broker.partition("old", 0).expect("partition");
    assert_eq!(
        part.log().segment_count(),
        1,
        "only the active segment is left"
    );
    let start = earliest(&mut c, "old").await?;
    assert!(start > 0 && start < 100);
    // A consumer below the log start is told so.
    assert_eq!(fetch(&mut c, "old", 0, 0, 0, 1 << 20).await?.error_code, 1);
    let p = fetch(&mut c, "old", 0, start, 0, 1 << 20).await?;
    assert_eq!(
        decode_records(p.records.unwrap_or_default())
            .last()
            .map(|r| r.offset),
        Some(99)
    );
    Ok(())
}

#[tokio::test]
async fn delete_records_survives_a_restart() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "dr", 1, &[("segment.bytes", "1024")]).await?;
    for i in 0..20 {
        produce(&mut c, "dr", 0, 1, batch(i * 5, 5, 0, Compression::None)).await?;
    }
    let req = |offset: i64| {
        DeleteRecordsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                .with_name(name("dr"))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(offset),
                ])])
    };
    let r: DeleteRecordsResponse = c.send(ApiKey::DeleteRecords, 2, &req(101)).await?;
    assert_eq!(
        r.topics[0].partitions[0].error_code, 1,
        "past the high watermark"
    );
    let r: DeleteRecordsResponse = c.send(ApiKey::DeleteRecords, 2, &req(63)).await?;
    assert_eq!(r.topics[0].partitions[0].low_watermark, 63);
    assert_eq!(earliest(&mut c, "dr").await?, 63);
    drop(c);
    let broker = broker.restart().await?;
    let mut c = broker.client().await?;
    assert_eq!(earliest(&mut c, "dr").await?, 63);
    assert_eq!(fetch(&mut c, "dr", 0, 62, 0, 1 << 20).await?.error_code, 1);
    Ok(())
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(bytes: u64) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("strand-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&dir)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "mounting a tmpfs failed: this test needs root (the test command runs as root in CI)"
        );
        Ok(Self(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: detaches now even if a file is still open (a failing test's broker).
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[tokio::test]
async fn a_full_disk_refuses_writes_keeps_reads_and_loses_nothing_acknowledged(
) -> anyhow::Result<()> {
    let disk = SmallDisk::mount(2 << 20)?;
    let data = disk.0.join("data");
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; 1 << 20])?;
    let dir = data.display().to_string();
    let broker =
        TestBroker::start(&[("log.dirs", &dir), ("offsets.topic.num.partitions", "1")]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "full", 1, &[]).await?;
    let mut acked = 0usize;
    let mut refused = 0;
    for i in 0..2000 {
        let r = produce(
            &mut c,
            "full",
            0,
            -1,
            batch(acked, 200, i, Compression::None),
        )
        .await?;
        match r.error_code {
            0 => {
                assert_eq!(r.base_offset as usize, acked, "offsets stay contiguous");
                acked += 200;
            }
            56 => {
                refused += 1;
                if refused > 3 {
                    break;
                }
            }
            other => anyhow::bail!("unexpected error {other}"),
        }
    }
    assert!(refused > 0, "the disk never filled");
    assert!(acked > 0);
    // Reads still work, and see exactly what was acknowledged.
    let read_all = async |c: &mut RawClient| -> anyhow::Result<usize> {
        let (mut offset, mut n) = (0i64, 0usize);
        loop {
            let p = fetch(c, "full", 0, offset, 0, 1 << 20).await?;
            anyhow::ensure!(p.error_code == 0, "{p:?}");
            let records = decode_records(p.records.unwrap_or_default());
            let Some(last) = records.last() else {
                return Ok(n);
            };
            for (k, r) in records.iter().enumerate() {
                anyhow::ensure!(
                    r.offset == offset + k as i64
                        && r.key.as_deref() == Some(format!("k{}", r.offset).as_bytes()),
                    "record {r:?}"
                );
            }
            n += records.len();
            offset = last.offset + 1;
        }
    };
    assert_eq!(read_all(&mut c).await?, acked);
    // Space comes back: writes resume where they stopped.
    std::fs::remove_file(&filler)?;
    let r = produce(
        &mut c,
        "full",
        0,
        -1,
        batch(acked, 10, 0, Compression::None),
    )
    .await?;
    assert_eq!((r.error_code, r.base_offset as usize), (0, acked));
    acked += 10;
    drop(c);
    let broker = broker.restart().await?;
    let mut c = broker.client().await?;
    assert_eq!(read_all(&mut c).await?, acked);
    drop(c);
    let mut broker = broker;
    broker.stop().await?;
    Ok(())
}
