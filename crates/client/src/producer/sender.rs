//! The sender task: drains ready batches to partition leaders and handles the answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};

use super::accumulator::{Batch, BatchAck, TopicPartition};
use super::txn::TxnManager;
use super::Shared;
use crate::cluster::Lane;
use crate::error::{Error, Result};

pub(crate) async fn run(s: Arc<Shared>) {
    let in_flight: Arc<Mutex<HashMap<i32, usize>>> = Arc::default();
    let mut metadata_task: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let wake = s.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let now = Instant::now();
        let (ready, next_wake, mut expired, done) = {
            let mut acc = s.lock();
            let expired = acc.expire(now);
            let (ready, next) = acc.ready(now);
            (
                ready,
                next,
                expired,
                acc.is_closed() && acc.unfinished() == 0,
            )
        };
        if !expired.is_empty() {
            for b in &mut expired {
                let e = Error::Timeout(format!(
                    "{} records for {}-{} waited past delivery.timeout.ms",
                    b.record_count, b.tp.0, b.tp.1
                ));
                if let (Some(m), Some(_)) = (&s.txn, b.stamp) {
                    txn_lock(m).sequence_lost(&e);
                }
                b.fail(e);
            }
            let left = s.lock().unfinished();
            s.unfinished.send_replace(left);
            s.space.notify_waiters();
        }
        if done {
            break;
        }
        let ready = gate(&s, ready, now);
        let view = s.cluster.view();
        let mut by_leader: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
        let mut unknown: Vec<String> = Vec::new();
        for tp in ready {
            match view.leader(&tp.0, tp.1) {
                Some(l) => by_leader.entry(l).or_default().push(tp),
                None => unknown.push(tp.0.to_string()),
            }
        }
        let retry_soon_unknown = !unknown.is_empty();
        if unknown.is_empty() && s.cluster.is_stale() && !view.topics.is_empty() {
            // metadata.max.age.ms: look again, so new partitions and moved leaders are seen.
            unknown = view.topics.keys().cloned().collect();
        }
        if !unknown.is_empty() && metadata_task.as_ref().is_none_or(|t| t.is_finished()) {
            unknown.sort();
            unknown.dedup();
            let s2 = s.clone();
            metadata_task = Some(tokio::spawn(async move {
                s2.cluster.refresh_soon(&unknown).await;
                s2.wake.notify_one();
            }));
        }
        let mut retry_soon = retry_soon_unknown;
        // A request went out: look again at once, more may be ready for the same leader.
        let mut sent_any = false;
        for (leader, tps) in by_leader {
            {
                let mut f = in_flight.lock().unwrap_or_else(|p| p.into_inner());
                let n = f.entry(leader).or_insert(0);
                if *n >= s.cfg.max_in_flight {
                    continue;
                }
                *n += 1;
            }
            let mut batches = Vec::new();
            let mut bytes = 0usize;
            for tp in &tps {
                let Some(mut b) = s.lock().drain(tp, now) else {
                    continue;
                };
                if let Some(m) = &s.txn {
                    b.stamp = txn_lock(m).stamp(&b.tp, b.record_count, b.stamp);
                }
                match b.seal() {
                    Ok(data) => bytes += data.len(),
                    Err(e) => {
                        finish(&s, &mut b, Err(e));
                        continue;
                    }
                }
                batches.push(b);
                if bytes >= s.cfg.request_bytes_max {
                    retry_soon = true;
                    break;
                }
            }
            if batches.is_empty() {
                release(&in_flight, leader);
                continue;
            }
            sent_any = true;
            let s2 = s.clone();
            let f2 = in_flight.clone();
            tokio::spawn(async move {
                produce(&s2, leader, batches).await;
                release(&f2, leader);
                s2.wake.notify_one();
            });
        }
        if sent_any {
            tokio::task::yield_now().await;
            continue;
        }
        let sleep_until = match (next_wake, retry_soon) {
            (_, true) => Instant::now() + s.cluster.backoff().min(Duration::from_millis(50)),
            (Some(t), false) => t,
            (None, false) => Instant::now() + Duration::from_millis(500),
        };
        tokio::select! {
            _ = &mut wake => {}
            _ = tokio::time::sleep_until(sleep_until.into()) => {}
        }
    }
}

fn txn_lock(m: &Mutex<TxnManager>) -> std::sync::MutexGuard<'_, TxnManager> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The ready partitions that may send now: an idempotent producer needs its producer id, a
/// transactional one needs each partition added to its transaction first; after a fatal or
/// abortable error, what is queued fails with it.
fn gate(s: &Arc<Shared>, ready: Vec<TopicPartition>, now: Instant) -> Vec<TopicPartition> {
    let Some(lock) = &s.txn else {
        return ready;
    };
    let mut m = txn_lock(lock);
    if let Some(e) = m.fatal_error().or(m.abortable_error()).cloned() {
        drop(m);
        for tp in &ready {
            loop {
                // The accumulator lock must be let go before `finish` takes it again.
                let drained = s.lock().drain(tp, now);
                let Some(mut b) = drained else { break };
                finish(s, &mut b, Err(e.clone()));
            }
        }
        return Vec::new();
    }
    if !m.can_send() {
        if !m.is_transactional() && !m.init_running {
            m.init_running = true;
            tokio::spawn(super::transactions::init_idempotent(s.clone()));
        }
        return Vec::new();
    }
    if !m.is_transactional() {
        return ready;
    }
    let need: Vec<TopicPartition> = ready.iter().filter(|tp| m.needs_add(tp)).cloned().collect();
    if need.is_empty() {
        return ready;
    }
    if !m.add_running {
        m.add_running = true;
        tokio::spawn(super::transactions::add_partitions_task(s.clone(), need));
    }
    ready.into_iter().filter(|tp| !m.needs_add(tp)).collect()
}

/// [`retry_or_fail`], noting a broken sequence if a stamped batch failed for good.
fn retry_or_lose(s: &Shared, batch: Batch, e: Error) {
    let stamped = batch.stamp.is_some();
    if !retry_or_fail(s, batch, e.clone()) && stamped {
        if let Some(m) = &s.txn {
            txn_lock(m).sequence_lost(&e);
        }
    }
}

fn release(in_flight: &Mutex<HashMap<i32, usize>>, leader: i32) {
    let mut f = in_flight.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = f.get_mut(&leader) {
        *n = n.saturating_sub(1);
    }
}

/// Completes a batch for good and releases its memory.
fn finish(s: &Shared, batch: &mut Batch, result: Result<BatchAck>) {
    match result {
        Ok(ack) => batch.succeed(ack),
        Err(e) => batch.fail(e),
    }
    let left = {
        let mut acc = s.lock();
        acc.finish(batch);
        acc.unfinished()
    };
    s.unfinished.send_replace(left);
    s.space.notify_waiters();
}

/// Retries `batch` if `e` allows and the budget is not spent, else fails it.
fn retry_or_fail(s: &Shared, batch: Batch, e: Error) -> bool {
    let within = batch.created.elapsed() < s.lock().delivery_timeout();
    if e.is_retriable() && batch.attempts < s.cfg.retries && within {
        tracing::debug!(topic = %batch.tp.0, partition = batch.tp.1, error = %e, attempt = batch.attempts + 1, "retrying batch");
        s.lock()
            .requeue(batch, Instant::now(), s.cfg.client.retry_backoff);
        true
    } else {
        let mut batch = batch;
        finish(s, &mut batch, Err(e));
        false
    }
}

async fn produce(s: &Arc<Shared>, leader: i32, batches: Vec<Batch>) {
    let conn = match s.cluster.conn(leader, Lane::Data).await {
        Ok(c) => c,
        Err(e) => {
            let topics: Vec<String> = batches.iter().map(|b| b.tp.0.to_string()).collect();
            for b in batches {
                retry_or_lose(s, b, e.clone());
            }
            s.cluster.refresh_soon(&topics).await;
            return;
        }
    };
    let mut by_topic: Vec<(&str, Vec<(i32, bytes::Bytes)>)> = Vec::new();
    for b in &batches {
        let records = match &b.payload {
            super::accumulator::Payload::Sealed(bytes) => bytes.clone(),
            super::accumulator::Payload::Open(_) => continue,
        };
        match by_topic.iter_mut().find(|(t, _)| *t == &*b.tp.0) {
            Some((_, ps)) => ps.push((b.tp.1, records)),
            None => by_topic.push((&*b.tp.0, vec![(b.tp.1, records)])),
        }
    }
    let timeout_ms = s
        .cfg
        .client
        .request_timeout
        .as_millis()
        .min(i32::MAX as u128) as i32;
    let sent = conn.version_for::<ProduceRequest>().and_then(|v| {
        let body = super::wire::produce_body(
            v,
            s.cfg.transactional_id.as_deref(),
            s.cfg.acks,
            timeout_ms,
            &by_topic,
        );
        conn.submit_chunks(ApiKey::Produce, v, body, s.cfg.acks != 0)
            .map(|p| (v, p))
    });
    drop(by_topic);
    let (version, pending) = match sent {
        Ok(x) => x,
        Err(e) => {
            for b in batches {
                retry_or_lose(s, b, e.clone());
            }
            return;
        }
    };
    let Some(pending) = pending else {
        // acks=0: written is all we learn.
        for mut b in batches {
            finish(
                s,
                &mut b,
                Ok(BatchAck {
                    base_offset: -1,
                    log_append_time: -1,
                }),
            );
        }
        return;
    };
    let resp: ProduceResponse = match conn
        .reply(ApiKey::Produce, version, pending, conn.request_timeout())
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let topics: Vec<String> = batches.iter().map(|b| b.tp.0.to_string()).collect();
            for b in batches {
                retry_or_lose(s, b, e.clone());
            }
            s.cluster.refresh_soon(&topics).await;
            return;
        }
    };
    let mut stale_metadata: Vec<String> = Vec::new();
    for mut b in batches {
        let answer = resp
            .responses
            .iter()
            .filter(|t| *t.name.0 == *b.tp.0)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == b.tp.1);
        let Some(p) = answer else {
            let e = Error::protocol(format!(
                "no answer for {}-{} in the produce response",
                b.tp.0, b.tp.1
            ));
            finish(s, &mut b, Err(e));
            continue;
        };
        // DUPLICATE_SEQUENCE_NUMBER: the broker had it already (older brokers say so).
        if p.error_code == 0 || p.error_code == 46 {
            if let (Some(m), Some(stamp)) = (&s.txn, b.stamp) {
                txn_lock(m).acknowledged(&b.tp, &stamp, b.record_count);
            }
            finish(
                s,
                &mut b,
                Ok(BatchAck {
                    base_offset: p.base_offset,
                    log_append_time: p.log_append_time_ms,
                }),
            );
            continue;
        }
        let mut context = format!("topic {} partition {}", b.tp.0, b.tp.1);
        if let Some(m) = &p.error_message {
            context.push_str(&format!(": {m}"));
        }
        let e = if p.record_errors.is_empty() {
            Error::kafka(p.error_code, context)
        } else {
            Error::RecordsRefused {
                code: crate::error::KafkaCode(p.error_code),
                context,
                records: p
                    .record_errors
                    .iter()
                    .map(|r| {
                        let reason = r.batch_index_error_message.as_deref().unwrap_or("");
                        (r.batch_index, reason.to_string())
                    })
                    .collect(),
            }
        };
        if matches!(p.error_code, 3 | 5 | 6 | 100) {
            stale_metadata.push(b.tp.0.to_string());
        }
        if let (Some(m), Some(stamp)) = (&s.txn, b.stamp) {
            match p.error_code {
                // OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID: behind an earlier batch
                // still on its way, it is retried; at the head, the sequence is broken.
                45 | 59 => {
                    let head = txn_lock(m).is_head(&b.tp, &stamp);
                    if !head && b.created.elapsed() < s.lock().delivery_timeout() {
                        s.lock()
                            .requeue(b, Instant::now(), s.cfg.client.retry_backoff);
                    } else {
                        txn_lock(m).sequence_lost(&e);
                        finish(s, &mut b, Err(e));
                    }
                    continue;
                }
                // INVALID_PRODUCER_EPOCH, PRODUCER_FENCED
                47 | 90 => {
                    txn_lock(m).fenced(e.clone());
                    finish(s, &mut b, Err(e));
                    continue;
                }
                // INVALID_TXN_STATE, INVALID_PRODUCER_ID_MAPPING, TRANSACTION_ABORTABLE
                48 | 49 | 120 => {
                    txn_lock(m).abortable(e.clone());
                    finish(s, &mut b, Err(e));
                    continue;
                }
                _ => {}
            }
        }
        retry_or_lose(s, b, e);
    }
    if !stale_metadata.is_empty() {
        stale_metadata.sort();
        stale_metadata.dedup();
        s.cluster.refresh_soon(&stale_metadata).await;
    }
}
