//! Group commit: `acks=all` produce requests wait here until their data is fsynced.
//!
//! Requests queue up while an fsync runs; the next round syncs every partition they touched
//! once and answers them all. Under load, one fsync covers many requests, so throughput stays
//! high while every acknowledged `acks=all` write is on stable storage.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::partition::Partition;

struct FlushRequest {
    partition: Arc<Partition>,
    offset: i64,
    done: oneshot::Sender<Result<(), String>>,
}

/// Handle to the flusher task.
#[derive(Clone)]
pub struct Flusher {
    tx: mpsc::UnboundedSender<FlushRequest>,
}

impl Flusher {
    /// Starts the flusher task; it ends when every handle is dropped.
    pub fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx));
        Self { tx }
    }

    /// Waits until everything in `partition` below `offset` is fsynced.
    pub async fn wait_durable(&self, partition: Arc<Partition>, offset: i64) -> Result<(), String> {
        if partition.log().recovery_point() >= offset {
            return Ok(());
        }
        let (done, rx) = oneshot::channel();
        self.tx
            .send(FlushRequest {
                partition,
                offset,
                done,
            })
            .map_err(|_| "the broker is shutting down".to_string())?;
        rx.await
            .map_err(|_| "the broker is shutting down".to_string())?
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<FlushRequest>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        // One fsync round per partition touched, keyed by the partition's address.
        let mut partitions: Vec<Arc<Partition>> = Vec::new();
        for r in &batch {
            if !partitions.iter().any(|p| Arc::ptr_eq(p, &r.partition)) {
                partitions.push(r.partition.clone());
            }
        }
        let synced = partitions.clone();
        let results: Vec<Result<i64, String>> =
            tokio::task::spawn_blocking(move || synced.iter().map(|p| sync_partition(p)).collect())
                .await
                .unwrap_or_default();
        for r in batch {
            let result = match partitions
                .iter()
                .position(|p| Arc::ptr_eq(p, &r.partition))
                .and_then(|i| results.get(i))
            {
                Some(Ok(durable)) if *durable >= r.offset => Ok(()),
                Some(Ok(durable)) => Err(format!("only offsets below {durable} are durable")),
                Some(Err(e)) => Err(e.clone()),
                None => Err("flush did not run".to_string()),
            };
            let _ = r.done.send(result);
        }
    }
}

/// fsyncs the partition's unsynced files outside its lock; returns the durable offset.
fn sync_partition(p: &Partition) -> Result<i64, String> {
    let target = p.log().sync_target();
    let Some(target) = target else {
        return Ok(p.log().recovery_point());
    };
    for f in &target.files {
        if let Err(e) = f.sync_data() {
            tracing::error!(partition = %p.tp, error = %e, "fsync failed");
            return Err(format!("fsync of {} failed: {e}", p.tp));
        }
    }
    let mut log = p.log();
    log.mark_flushed(target.end_offset);
    Ok(log.recovery_point())
}
