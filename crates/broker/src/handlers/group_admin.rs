//! ListGroups, DescribeGroups and DeleteGroups, across the shards of the group coordinator.

use kafka_protocol::messages::*;
use strand_protocol::frame::RequestFrame;

use crate::broker::Broker;
use crate::groups;

pub async fn list(
    broker: &Broker,
    frame: &RequestFrame,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let version = frame.version();
    match groups::read_all(broker, |c| c.list_groups(&req, version)).await {
        Ok(shards) => {
            let mut listed: Vec<_> = shards.into_iter().flat_map(|r| r.groups).collect();
            listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            ListGroupsResponse::default().with_groups(listed)
        }
        Err(e) => ListGroupsResponse::default().with_error_code(e.code()),
    }
}

pub async fn describe(
    broker: &Broker,
    frame: &RequestFrame,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let version = frame.version();
    let mut described = Vec::with_capacity(req.groups.len());
    for id in &req.groups {
        let one = req.clone().with_groups(vec![id.clone()]);
        let got = groups::read(broker, id.as_str(), |c| c.describe_groups(&one, version)).await;
        match got {
            Ok(r) => described.extend(r.groups),
            Err(e) => described.push(
                describe_groups_response::DescribedGroup::default()
                    .with_group_id(id.clone())
                    .with_error_code(e.code()),
            ),
        }
    }
    DescribeGroupsResponse::default().with_groups(described)
}

pub async fn delete(broker: &Broker, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in &req.groups_names {
        let one = req.clone().with_groups_names(vec![id.clone()]);
        match groups::write(broker, id.as_str(), |c, _now| c.delete_groups(&one)).await {
            Ok(r) => results.extend(r.results),
            Err(e) => results.push(
                delete_groups_response::DeletableGroupResult::default()
                    .with_group_id(id.clone())
                    .with_error_code(e.code()),
            ),
        }
    }
    DeleteGroupsResponse::default().with_results(results)
}
