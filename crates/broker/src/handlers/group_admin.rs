//! ListGroups, DescribeGroups and DeleteGroups.

use kafka_protocol::messages::*;
use strand_protocol::frame::RequestFrame;

use crate::broker::Broker;
use crate::groups;

pub fn list(broker: &Broker, frame: &RequestFrame, req: ListGroupsRequest) -> ListGroupsResponse {
    broker.groups.lock().list_groups(&req, frame.version())
}

pub fn describe(
    broker: &Broker,
    frame: &RequestFrame,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    broker.groups.lock().describe_groups(&req, frame.version())
}

pub async fn delete(broker: &Broker, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    match groups::run(broker, |c, _now| c.delete_groups(&req)).await {
        Ok(r) => r,
        Err(code) => DeleteGroupsResponse::default().with_results(
            req.groups_names
                .iter()
                .map(|g| {
                    delete_groups_response::DeletableGroupResult::default()
                        .with_group_id(g.clone())
                        .with_error_code(code)
                })
                .collect(),
        ),
    }
}
