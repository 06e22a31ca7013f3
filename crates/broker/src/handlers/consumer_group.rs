//! ConsumerGroupHeartbeat and ConsumerGroupDescribe: KIP-848 consumer groups, assigned by
//! the broker (`strand_coordinator::consumer`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use strand_coordinator::{ClientInfo, TopicsView};
use strand_protocol::frame::RequestFrame;

use crate::broker::Broker;
use crate::groups::{self, ensure_offsets_topic};

pub async fn heartbeat(
    broker: &Broker,
    frame: &RequestFrame,
    req: ConsumerGroupHeartbeatRequest,
    peer: SocketAddr,
) -> ConsumerGroupHeartbeatResponse {
    // Members commit offsets next: make sure there is somewhere to put them.
    if let Err(e) = ensure_offsets_topic(broker).await {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::CoordinatorNotAvailable.code())
            .with_error_message(Some(super::str(e.message)));
    }
    let image = broker.image();
    let topics: TopicsView = image
        .topics
        .values()
        .map(|t| (t.name.clone(), (t.id, t.partitions.len() as i32)))
        .collect();
    let client = ClientInfo {
        client_id: frame
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", peer.ip()),
    };
    let group = req.group_id.to_string();
    // KIP-848 membership is kept in memory only: a heartbeat writes no record.
    let written = groups::update(broker, &group, |c, now| {
        c.consumer_heartbeat(&req, client, &topics, now)
    })
    .await;
    written.unwrap_or_else(|e| ConsumerGroupHeartbeatResponse::default().with_error_code(e.code()))
}

pub async fn describe(
    broker: &Broker,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let image = broker.image();
    let names: BTreeMap<uuid::Uuid, String> = image
        .topics
        .values()
        .map(|t| (t.id, t.name.clone()))
        .collect();
    let mut described = Vec::with_capacity(req.group_ids.len());
    for id in &req.group_ids {
        let one = req.clone().with_group_ids(vec![id.clone()]);
        match groups::read(broker, id.as_str(), |c| c.consumer_describe(&one, &names)).await {
            Ok(r) => described.extend(r.groups),
            Err(e) => described.push(
                consumer_group_describe_response::DescribedGroup::default()
                    .with_group_id(id.clone())
                    .with_error_code(e.code()),
            ),
        }
    }
    ConsumerGroupDescribeResponse::default().with_groups(described)
}
