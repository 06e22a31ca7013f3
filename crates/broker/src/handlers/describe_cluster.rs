//! DescribeCluster: the cluster id, the controller and the brokers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};

use super::str;
use crate::broker::Broker;

/// `endpoint_type` 1: brokers; 2: controllers (only answered by controllers' own listeners).
const ENDPOINT_BROKERS: i8 = 1;

pub fn handle(
    broker: &Broker,
    req: DescribeClusterRequest,
    listener: &crate::listeners::Listener,
) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default()
        .with_endpoint_type(req.endpoint_type)
        .with_cluster_id(str(broker.cluster_id.clone()))
        .with_controller_id(broker.config.node_id.into());
    if req.endpoint_type != ENDPOINT_BROKERS && req.endpoint_type != 0 {
        return resp
            .with_error_code(ResponseError::MismatchedEndpointType.code())
            .with_error_message(Some(str("The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER")));
    }
    let image = broker.image();
    resp.brokers = image
        .brokers
        .values()
        .map(|b| {
            let (host, port) = broker.endpoint_of(b, listener);
            DescribeClusterBroker::default()
                .with_broker_id(b.node_id.into())
                .with_host(str(host))
                .with_port(port)
                .with_rack(b.rack.clone().map(str))
        })
        .collect();
    resp
}
