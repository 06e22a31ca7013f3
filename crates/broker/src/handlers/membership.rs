//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: the classic rebalance protocol, run by the
//! group coordinator state machine (`strand-coordinator`).

use std::net::SocketAddr;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use strand_coordinator::{ClientInfo, Reply as GroupReply};
use strand_protocol::frame::RequestFrame;

use super::respond;
use crate::broker::Broker;
use crate::connection::Reply;
use crate::groups;

fn storage_failed(frame: &RequestFrame, error: ResponseError) -> Reply {
    let code = error.code();
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
    group: &str,
    call: impl FnOnce(
        &mut strand_coordinator::GroupCoordinator,
        strand_coordinator::RequestId,
        i64,
    ) -> strand_coordinator::Outcome,
) -> Reply {
    let (id, rx) = broker.groups.hold();
    if let Err(e) = groups::write(broker, group, |c, now| ((), call(c, id, now))).await {
        broker.groups.forget(id);
        return storage_failed(frame, e);
    }
    let frame = frame.clone();
    Reply::Later(Box::pin(async move {
        match rx.await {
            Ok(Ok(GroupReply::Join(mut r))) => {
                if frame.version() < 7 && r.protocol_name.is_none() {
                    r.protocol_name = Some(super::str(""));
                }
                respond(&frame, &r)
            }
            Ok(Ok(GroupReply::Sync(r))) => respond(&frame, &r),
            Ok(Err(e)) => storage_failed(&frame, e),
            Err(_) => storage_failed(&frame, ResponseError::CoordinatorNotAvailable),
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
    let group = req.group_id.to_string();
    held(broker, frame, &group, move |c, id, now| {
        c.join(req, version, client, id, now)
    })
    .await
}

pub async fn sync(broker: &Arc<Broker>, frame: &RequestFrame, req: SyncGroupRequest) -> Reply {
    let version = frame.version();
    let group = req.group_id.to_string();
    held(broker, frame, &group, move |c, id, now| {
        c.sync(req, version, id, now)
    })
    .await
}

pub async fn heartbeat(
    broker: &Broker,
    frame: &RequestFrame,
    req: HeartbeatRequest,
) -> HeartbeatResponse {
    let version = frame.version();
    let written = groups::update(broker, req.group_id.as_str(), |c, now| {
        c.heartbeat(&req, version, now)
    })
    .await;
    written.unwrap_or_else(|e| HeartbeatResponse::default().with_error_code(e.code()))
}

pub async fn leave(
    broker: &Broker,
    frame: &RequestFrame,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let version = frame.version();
    match groups::write(broker, req.group_id.as_str(), |c, now| {
        c.leave(&req, version, now)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
    }
}
