//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: the classic rebalance protocol, run by the
//! group coordinator state machine (`strand-coordinator`).

use std::net::SocketAddr;
use std::sync::Arc;

use kafka_protocol::messages::*;
use strand_coordinator::{ClientInfo, Reply as GroupReply};
use strand_protocol::frame::RequestFrame;

use super::respond;
use crate::broker::Broker;
use crate::connection::Reply;
use crate::groups;

fn storage_failed(frame: &RequestFrame, code: i16) -> Reply {
    match frame.api_key {
        ApiKey::JoinGroup => respond(
            frame,
            &JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1),
        ),
        _ => respond(frame, &SyncGroupResponse::default().with_error_code(code)),
    }
}

/// Joins and syncs wait for other members: the reply arrives when the coordinator gives it.
async fn held(
    broker: &Arc<Broker>,
    frame: &RequestFrame,
    call: impl FnOnce(
        &mut strand_coordinator::GroupCoordinator,
        strand_coordinator::RequestId,
        i64,
    ) -> strand_coordinator::Outcome,
) -> Reply {
    let (id, rx) = broker.groups.hold();
    if let Err(code) = groups::run(broker, |c, now| ((), call(c, id, now))).await {
        broker.groups.forget(id);
        return storage_failed(frame, code);
    }
    let frame = frame.clone();
    Reply::Later(Box::pin(async move {
        match rx.await {
            Ok(GroupReply::Join(mut r)) => {
                if frame.version() < 7 && r.protocol_name.is_none() {
                    r.protocol_name = Some(super::str(""));
                }
                respond(&frame, &r)
            }
            Ok(GroupReply::Sync(r)) => respond(&frame, &r),
            Err(_) => storage_failed(
                &frame,
                kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code(),
            ),
        }
    }))
}

pub async fn join(
    broker: &Arc<Broker>,
    frame: &RequestFrame,
    req: JoinGroupRequest,
    peer: SocketAddr,
) -> Reply {
    let client = ClientInfo {
        client_id: frame
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", peer.ip()),
    };
    let version = frame.version();
    held(broker, frame, move |c, id, now| {
        c.join(req, version, client, id, now)
    })
    .await
}

pub async fn sync(broker: &Arc<Broker>, frame: &RequestFrame, req: SyncGroupRequest) -> Reply {
    let version = frame.version();
    held(broker, frame, move |c, id, now| {
        c.sync(req, version, id, now)
    })
    .await
}

pub fn heartbeat(
    broker: &Broker,
    frame: &RequestFrame,
    req: HeartbeatRequest,
) -> HeartbeatResponse {
    broker
        .groups
        .lock()
        .heartbeat(&req, frame.version(), crate::broker::now_ms())
}

pub async fn leave(
    broker: &Broker,
    frame: &RequestFrame,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let version = frame.version();
    match groups::run(broker, |c, now| c.leave(&req, version, now)).await {
        Ok(r) => r,
        Err(code) => LeaveGroupResponse::default().with_error_code(code),
    }
}
