//! Named listeners: each serves clients and advertises its own endpoint.

use kafka_protocol::messages::*;
use strand_testkit::{RawClient, TestBroker};
use strand_tests::*;

#[tokio::test]
async fn each_listener_advertises_its_own_endpoint() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0",
        ),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
        ),
        ("inter.broker.listener.name", "INTERNAL"),
        ("advertised.listeners", "PLAINTEXT://localhost:0"),
    ])
    .await?;
    let config = &broker.broker.config;
    let by_name = |n: &str| {
        config
            .listeners
            .iter()
            .find(|l| l.name == n)
            .unwrap()
            .clone()
    };
    let (external, internal) = (by_name("PLAINTEXT"), by_name("INTERNAL"));
    assert_ne!(external.bind.port(), internal.bind.port());
    // The broker's registered (inter-broker) endpoint is INTERNAL's.
    assert_eq!(broker.addr, internal.bind);
    for (listener, host, port) in [
        (&external, "localhost", external.bind.port()),
        (&internal, "127.0.0.1", internal.bind.port()),
    ] {
        let mut c = RawClient::connect(listener.bind).await?;
        let md: MetadataResponse = c
            .send(ApiKey::Metadata, 12, &MetadataRequest::default())
            .await?;
        let me = &md.brokers[0];
        assert_eq!(
            (me.host.as_str(), me.port),
            (host, i32::from(port)),
            "{}",
            listener.name
        );
        let req = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![s("g")]);
        let fc: FindCoordinatorResponse = c.send(ApiKey::FindCoordinator, 4, &req).await?;
        let co = &fc.coordinators[0];
        assert_eq!(
            (co.host.as_str(), co.port),
            (host, i32::from(port)),
            "{fc:?}"
        );
    }
    Ok(())
}
