//! DescribeLogDirs: each log dir with the size of every partition in it.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::str;
use crate::broker::Broker;

pub fn handle(broker: &Broker, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted = |topic: &str, partition: i32| match &req.topics {
        None => true,
        Some(ts) => ts
            .iter()
            .any(|t| t.topic.as_str() == topic && t.partitions.contains(&partition)),
    };
    let mut per_dir: BTreeMap<std::path::PathBuf, BTreeMap<String, Vec<DescribeLogDirsPartition>>> =
        broker
            .config
            .log_dirs
            .iter()
            .map(|d| (d.clone(), BTreeMap::new()))
            .collect();
    for p in broker.partitions() {
        if !wanted(&p.tp.topic, p.tp.partition) {
            continue;
        }
        let log = p.log();
        let Some(dir) = log.dir().parent().map(|d| d.to_owned()) else {
            continue;
        };
        let entry = DescribeLogDirsPartition::default()
            .with_partition_index(p.tp.partition)
            .with_partition_size(log.size_bytes() as i64)
            .with_offset_lag(0);
        per_dir
            .entry(dir)
            .or_default()
            .entry(p.tp.topic.clone())
            .or_default()
            .push(entry);
    }
    let results = per_dir
        .into_iter()
        .map(|(dir, topics)| {
            let (total, usable) = match rustix::fs::statvfs(&dir) {
                Ok(s) => (
                    (s.f_blocks * s.f_frsize) as i64,
                    (s.f_bavail * s.f_frsize) as i64,
                ),
                Err(_) => (-1, -1),
            };
            let path = std::fs::canonicalize(&dir).unwrap_or(dir);
            DescribeLogDirsResult::default()
                .with_log_dir(str(path.display().to_string()))
                .with_total_bytes(total)
                .with_usable_bytes(usable)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(name, mut partitions)| {
                            partitions.sort_by_key(|p| p.partition_index);
                            DescribeLogDirsTopic::default()
                                .with_name(TopicName(str(name)))
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}
