//! The admin client: topics, configs, the cluster, consumer groups and their offsets,
//! partition offsets and records — what Kafka's `Admin` does, with plain result types.
//!
//! ```no_run
//! # async fn f() -> strand_client::Result<()> {
//! use strand_client::{Admin, Config, NewTopic};
//! let admin = Admin::new(Config::from([("bootstrap.servers", "127.0.0.1:9092")]))?;
//! admin.create_topic(NewTopic::new("orders", 3, -1).config("retention.ms", "86400000")).await?;
//! for t in admin.describe_topics(&["orders".to_string()]).await? {
//!     println!("{}: {} partitions", t.name, t.partitions.len());
//! }
//! # Ok(()) }
//! ```
//!
//! Layout (each file adds its methods to [`Admin`]):
//! * [`types`]: the public request and result structs.
//! * `topics`: create, delete, list and describe topics; add partitions.
//! * `configs`: describe and alter configs; describe the cluster.
//! * `groups`: list, describe and delete groups; read, alter and delete their offsets.
//! * `records`: list partition offsets; delete records.
//!
//! Every request is retried, with `retry.backoff.ms` between attempts and for at most
//! `request.timeout.ms` in all, when it fails in a way another attempt can fix: a broken
//! connection, or an error that says the metadata or the coordinator moved (`NOT_COORDINATOR`,
//! `COORDINATOR_LOAD_IN_PROGRESS`, `NOT_LEADER_OR_FOLLOWER`, ...). Each attempt re-finds the
//! coordinator or refreshes the metadata it needs, so it goes to where things are now.
//! Requests about many things (topics, partitions, groups) retry only the things that failed
//! that way; every other error is final and comes back with its Kafka code and context.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::protocol::StrBytes;

use crate::cluster::Cluster;
use crate::config::{ClientConfig, Config};
use crate::error::{Error, KafkaCode, Result};

mod configs;
mod groups;
mod quorum;
mod records;
mod topics;
mod transactions;
pub mod types;

pub use quorum::{QuorumInfo, QuorumReplica};
pub use transactions::{AbortSpec, ProducerState, TransactionDescription, TransactionListing};
pub use types::*;

/// Administers a cluster. Cheap to clone; clones share connections and metadata.
#[derive(Clone)]
pub struct Admin {
    cluster: Arc<Cluster>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("bootstrap_servers", &self.cluster.cfg.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

/// Error codes worth another attempt once the metadata is refreshed or the coordinator found
/// again. Others Kafka calls retriable (`UNKNOWN_TOPIC_OR_PARTITION`, `REQUEST_TIMED_OUT`)
/// are final here: an admin request about a topic that is not there should say so at once,
/// and a CreateTopics that timed out may still have created the topic.
const RETRIED_CODES: [KafkaCode; 9] = [
    KafkaCode::LEADER_NOT_AVAILABLE,
    KafkaCode::NOT_LEADER_OR_FOLLOWER,
    KafkaCode::COORDINATOR_LOAD_IN_PROGRESS,
    KafkaCode::COORDINATOR_NOT_AVAILABLE,
    KafkaCode::NOT_COORDINATOR,
    KafkaCode(41), // NOT_CONTROLLER
    KafkaCode(74), // FENCED_LEADER_EPOCH
    KafkaCode(76), // UNKNOWN_LEADER_EPOCH
    KafkaCode(88), // UNSTABLE_OFFSET_COMMIT
];

/// Whether another attempt of the same request may succeed.
fn should_retry(e: &Error) -> bool {
    match e {
        Error::Transport { .. } | Error::Timeout(_) => true,
        Error::Kafka { code, .. } => RETRIED_CODES.contains(code),
        _ => false,
    }
}

/// `Ok(())` for code 0; else the error, its context followed by the broker's message if any.
fn check_msg(
    code: i16,
    message: Option<&StrBytes>,
    context: impl FnOnce() -> String,
) -> Result<()> {
    crate::error::check(code, || {
        match message.map(|m| m.trim()).filter(|m| !m.is_empty()) {
            Some(m) => format!("{}: {m}", context()),
            None => context(),
        }
    })
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

impl Admin {
    /// An admin client for the cluster at `bootstrap.servers`. Connects on first use.
    ///
    /// Reads `client.id`, `request.timeout.ms` (default 30000), `retry.backoff.ms`,
    /// `metadata.max.age.ms` and the connection settings every client reads.
    pub fn new(config: Config) -> Result<Admin> {
        let cfg = ClientConfig::from_config(&config, 30_000)?;
        Ok(Admin {
            cluster: Cluster::new(cfg),
        })
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.cluster.cfg.request_timeout
    }

    /// `request.timeout.ms` for the `timeout_ms` field of requests that have one.
    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.cluster.cfg.request_timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// Runs `attempt` until it succeeds, fails in a way retrying cannot fix, or
    /// `request.timeout.ms` has passed.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = self.deadline();
        let backoff = self.cluster.backoff();
        loop {
            match attempt().await {
                Err(e) if should_retry(&e) && Instant::now() + backoff < deadline => {
                    tracing::debug!(error = %e, "admin request failed; retrying");
                    tokio::time::sleep(backoff).await;
                }
                r => return r,
            }
        }
    }

    /// Runs `round` for a request about many keys (topics, partitions, groups) until every
    /// key has an answer that retrying cannot change, or `request.timeout.ms` has passed.
    ///
    /// `round` is asked about the keys still pending and answers each; keys it leaves out
    /// are a protocol error. A key whose answer is retriable is asked again in the next
    /// round; when time runs out it keeps that last answer. If the round as a whole fails,
    /// all pending keys are retried, or, when that cannot help, the whole call fails.
    async fn per_key<K, V, F, Fut>(
        &self,
        keys: impl IntoIterator<Item = K>,
        mut round: F,
    ) -> Result<BTreeMap<K, Result<V>>>
    where
        K: Ord + Clone + Display,
        F: FnMut(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<(K, Result<V>)>>>,
    {
        let deadline = self.deadline();
        let backoff = self.cluster.backoff();
        let mut pending: BTreeMap<K, Option<Error>> = keys.into_iter().map(|k| (k, None)).collect();
        let mut done: BTreeMap<K, Result<V>> = BTreeMap::new();
        while !pending.is_empty() {
            let asked: Vec<K> = pending.keys().cloned().collect();
            let mut round_failed = None;
            match round(asked).await {
                Ok(answers) => {
                    let mut answered = std::collections::BTreeSet::new();
                    for (k, r) in answers {
                        if !pending.contains_key(&k) || !answered.insert(k.clone()) {
                            continue;
                        }
                        match r {
                            Err(e) if should_retry(&e) => {
                                pending.insert(k, Some(e));
                            }
                            r => {
                                pending.remove(&k);
                                done.insert(k, r);
                            }
                        }
                    }
                    let missing: Vec<K> = pending
                        .keys()
                        .filter(|k| !answered.contains(*k))
                        .cloned()
                        .collect();
                    for k in missing {
                        pending.remove(&k);
                        let e = Error::protocol(format!("the broker did not answer for {k}"));
                        done.insert(k, Err(e));
                    }
                }
                Err(e) if should_retry(&e) => round_failed = Some(e),
                Err(e) => return Err(e),
            }
            if pending.is_empty() {
                break;
            }
            if Instant::now() + backoff >= deadline {
                // The cluster did not answer at all: the call fails. Otherwise each key
                // keeps the last (retriable) error it got.
                if let Some(e) = round_failed {
                    return Err(e);
                }
                for (k, last) in std::mem::take(&mut pending) {
                    let e = last.unwrap_or_else(|| Error::Timeout("no answer".into()));
                    done.insert(k, Err(e));
                }
                break;
            }
            if let Some(e) = &round_failed {
                tracing::debug!(error = %e, "admin request failed; retrying");
            }
            tokio::time::sleep(backoff).await;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn admin(timeout_ms: u64) -> Admin {
        Admin::new(Config::from([
            ("bootstrap.servers", "127.0.0.1:1".to_string()),
            ("request.timeout.ms", timeout_ms.to_string()),
            ("retry.backoff.ms", "1".to_string()),
        ]))
        .unwrap()
    }

    #[test]
    fn only_errors_another_attempt_can_fix_are_retried() {
        assert!(should_retry(&Error::kafka(16, "group g")));
        assert!(should_retry(&Error::kafka(6, "topic t partition 0")));
        assert!(should_retry(&Error::Transport {
            addr: "a:1".into(),
            message: "reset".into()
        }));
        assert!(!should_retry(&Error::kafka(3, "topic t")));
        assert!(!should_retry(&Error::kafka(36, "topic t")));
        assert!(!should_retry(&Error::protocol("bad bytes")));
    }

    #[test]
    fn broker_messages_join_the_context() {
        let e = check_msg(36, Some(&s("Topic 't' already exists.")), || {
            "topic t".into()
        });
        assert_eq!(
            e.unwrap_err().to_string(),
            "TOPIC_ALREADY_EXISTS (36): topic t: Topic 't' already exists."
        );
        let e = check_msg(3, Some(&s("")), || "topic t".into()).unwrap_err();
        assert_eq!(e.to_string(), "UNKNOWN_TOPIC_OR_PARTITION (3): topic t");
        assert!(check_msg(0, None, || unreachable!()).is_ok());
    }

    #[tokio::test]
    async fn per_key_retries_only_what_failed_retriably() {
        let a = admin(60_000);
        let rounds = AtomicUsize::new(0);
        let asked = std::sync::Mutex::new(Vec::new());
        let out = a
            .per_key(
                ["a", "b", "c", "d"].map(String::from),
                |keys: Vec<String>| {
                    let n = rounds.fetch_add(1, Ordering::Relaxed);
                    asked.lock().unwrap().push(keys.clone());
                    async move {
                        Ok(keys
                            .into_iter()
                            .filter(|k| k != "d") // never answered
                            .map(|k| {
                                let r = match (k.as_str(), n) {
                                    ("a", _) => Ok(1),
                                    ("b", 0) => Err(Error::kafka(16, "group b")),
                                    ("b", _) => Ok(2),
                                    _ => Err(Error::kafka(69, "group c")),
                                };
                                (k, r)
                            })
                            .collect())
                    }
                },
            )
            .await
            .unwrap();
        assert_eq!(rounds.load(Ordering::Relaxed), 2);
        assert_eq!(asked.lock().unwrap()[1], vec!["b".to_string()]);
        assert_eq!(out["a"].as_ref().unwrap(), &1);
        assert_eq!(out["b"].as_ref().unwrap(), &2);
        assert_eq!(out["c"].as_ref().unwrap_err().code(), Some(KafkaCode(69)));
        assert!(matches!(out["d"], Err(Error::Protocol(_))));
    }

    #[tokio::test]
    async fn per_key_gives_up_at_the_deadline_with_the_last_error() {
        let a = admin(30);
        let out = a
            .per_key([1, 2], |keys: Vec<i32>| async move {
                Ok(keys
                    .into_iter()
                    .map(|k| (k, Err::<(), _>(Error::kafka(6, format!("partition {k}")))))
                    .collect())
            })
            .await
            .unwrap();
        assert_eq!(out[&1].as_ref().unwrap_err().code(), Some(KafkaCode(6)));
        // A round that fails as a whole in a final way fails the call.
        let e = a
            .per_key([1], |_keys: Vec<i32>| async {
                Err::<Vec<(i32, Result<()>)>, _>(Error::Unsupported("X".into()))
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)));
    }
}
