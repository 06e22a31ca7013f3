//! DeleteRecords: moves each partition's log start offset forward (never past the high
//! watermark); whole segments below it are deleted.
//!
//! Everything here is file IO (segment deletion, the checkpoint files and their fsync), so it
//! runs on the blocking pool, not on the runtime; the answer still waits for the checkpoint,
//! so a new log start offset that was acknowledged survives a restart.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::broker::{now_ms, Broker};

pub async fn handle(broker: &Arc<Broker>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let broker = broker.clone();
    // Kept to answer with if the blocking task is lost (it panicked, or the runtime stops).
    let asked: Vec<(kafka_protocol::messages::TopicName, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            let ps = t.partitions.iter().map(|p| p.partition_index).collect();
            (t.name.clone(), ps)
        })
        .collect();
    match tokio::task::spawn_blocking(move || delete(&broker, req)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "DeleteRecords did not complete");
            let topics = asked
                .into_iter()
                .map(|(name, ps)| {
                    DeleteRecordsTopicResult::default()
                        .with_name(name)
                        .with_partitions(
                            ps.into_iter()
                                .map(|p| {
                                    DeleteRecordsPartitionResult::default()
                                        .with_partition_index(p)
                                        .with_low_watermark(-1)
                                        .with_error_code(ResponseError::UnknownServerError.code())
                                })
                                .collect(),
                        )
                })
                .collect();
            DeleteRecordsResponse::default().with_topics(topics)
        }
    }
}

/// The blocking part: moves the log starts, then writes the checkpoints.
fn delete(broker: &Broker, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let now = now_ms();
    let mut moved = false;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    let Some(part) = broker.partition(t.name.as_str(), p.partition_index) else {
                        return r.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let result = part.log().delete_records(p.offset, now);
                    match result {
                        Ok(low) => {
                            moved = true;
                            r.with_low_watermark(low)
                        }
                        Err(e) => r.with_error_code(crate::errors::log(&e).code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    // The new log start offsets must survive a restart.
    if moved {
        if let Err(e) = broker.checkpoint() {
            tracing::error!(error = %e, "cannot write checkpoints after DeleteRecords");
        }
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::Compression;
    use strand_metadata::controller::NewTopic;
    use strand_protocol::testing::{encode, record};

    use super::*;

    /// A checkpoint write that cannot finish (another thread holds the checkpoint lock) must
    /// leave the runtime free, and the answer must wait for it.
    #[test]
    fn delete_records_writes_checkpoints_off_the_async_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let config = crate::BrokerConfig::from_map(BTreeMap::from([
                ("listeners".into(), "PLAINTEXT://127.0.0.1:0".into()),
                ("log.dirs".into(), dir.path().display().to_string()),
            ]))
            .unwrap();
            let broker = Broker::open(config).unwrap();
            broker.register().await.unwrap();
            let new = NewTopic {
                name: "t".into(),
                num_partitions: 1,
                replication_factor: 1,
                assignments: Vec::new(),
                configs: BTreeMap::new(),
            };
            broker
                .submit(strand_metadata::ControllerRequest::CreateTopic(new))
                .await
                .unwrap();
            let part = broker.partition("t", 0).unwrap();
            {
                let records: Vec<_> = (0..3).map(|i| record(i, None, None, 0)).collect();
                let mut log = part.log();
                log.append(
                    &mut encode(&records, Compression::None),
                    part.leader_epoch,
                    0,
                )
                .unwrap();
                let end = log.log_end_offset();
                log.update_high_watermark(end);
            }

            let (locked_tx, locked_rx) = std::sync::mpsc::channel();
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let holder = {
                let broker = broker.clone();
                std::thread::spawn(move || {
                    let _held = broker.lock_checkpoints();
                    locked_tx.send(()).unwrap();
                    // Bounded, so a broken handler fails the test instead of hanging it.
                    let _ = release_rx.recv_timeout(Duration::from_secs(10));
                })
            };
            locked_rx.recv().unwrap();
            let req =
                DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(2)])]);
            let task = tokio::spawn({
                let broker = broker.clone();
                async move { handle(&broker, req).await }
            });
            // On this one-thread runtime the timer fires only if the handler yielded.
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(
                !task.is_finished(),
                "the runtime was blocked, or the answer did not wait for the checkpoint"
            );
            release_tx.send(()).unwrap();
            let resp = task.await.unwrap();
            holder.join().unwrap();
            let p = &resp.topics[0].partitions[0];
            assert_eq!((p.error_code, p.low_watermark), (0, 2));
            let starts =
                std::fs::read_to_string(dir.path().join(strand_storage::manager::LOG_START_FILE))
                    .unwrap();
            assert!(starts.lines().any(|l| l == "t 0 2"), "{starts}");
        });
    }
}
