//! Bad bytes from the network: Kafka's error codes where Kafka answers, a closed connection
//! where Kafka closes, and never an effect on other connections or on stored data.

use bytes::BufMut;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::records::Compression;
use strand_testkit::TestBroker;
use strand_tests::*;

#[tokio::test]
async fn api_versions_at_an_unknown_version_gets_unsupported_version_and_the_table(
) -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    // Encode as v3 but label it v99: the body is what a future client might send.
    let mut frame = bytes::BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(99)
        .with_correlation_id(7);
    header.encode(&mut frame, 2)?;
    ApiVersionsRequest::default().encode(&mut frame, 3)?;
    let mut out = bytes::BytesMut::new();
    out.put_i32(frame.len() as i32);
    out.extend_from_slice(&frame);
    c.write_raw(&out).await?;
    let mut resp = c.read_frame().await?;
    let header = ResponseHeader::decode(&mut resp, 0)?;
    assert_eq!(header.correlation_id, 7);
    let body = ApiVersionsResponse::decode(&mut resp, 0)?;
    assert_eq!(body.error_code, 35);
    assert!(body
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16));
    Ok(())
}

#[tokio::test]
async fn unknown_keys_and_versions_close_only_their_connection() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut bystander = broker.client().await?;
    let _: MetadataResponse = bystander
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await?;

    // An API key Kafka does not have.
    let mut c = broker.client().await?;
    c.write_raw(&[0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .await?;
    assert!(c.is_closed().await);

    // A known API at a version Strand does not serve.
    let mut c = broker.client().await?;
    c.send_only(ApiKey::Metadata, 13, &MetadataRequest::default())
        .await?; // fine
    let _ = c.read_frame().await?;
    let mut frame = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(0)
        .with_request_api_version(99)
        .with_correlation_id(1)
        .encode(&mut frame, 2)?;
    frame.extend_from_slice(&[0; 16]);
    let mut out = bytes::BytesMut::new();
    out.put_i32(frame.len() as i32);
    out.extend_from_slice(&frame);
    c.write_raw(&out).await?;
    assert!(c.is_closed().await);

    // An API Strand does not implement yet (DescribeAcls).
    let mut c = broker.client().await?;
    c.send_only(ApiKey::DescribeAcls, 3, &DescribeAclsRequest::default())
        .await?;
    assert!(c.is_closed().await);

    let r: MetadataResponse = bystander
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await?;
    assert_eq!(r.brokers.len(), 1);
    Ok(())
}

#[tokio::test]
async fn oversized_negative_and_garbage_frames_close_only_their_connection() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[("socket.request.max.bytes", "1048576")]).await?;
    let mut bystander = broker.client().await?;
    let cases: Vec<Vec<u8>> = vec![
        (2u32 << 20).to_be_bytes().to_vec(), // over socket.request.max.bytes, refused before reading
        (-5i32).to_be_bytes().to_vec(),      // negative size
        vec![0, 0, 0, 3, 1, 2, 3],           // too short for a header
        vec![0, 0, 0, 12, 0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0x7f, 0xff, 0xff], // Metadata v12 with a bad client id length
        [&[0u8, 0, 0, 40][..], &[0x5a; 40][..]].concat(),                   // noise
    ];
    for bytes in cases {
        let mut c = broker.client().await?;
        c.write_raw(&bytes).await?;
        assert!(c.is_closed().await, "connection survived {bytes:?}");
    }
    // A Metadata request whose topic array claims two billion entries.
    let mut c = broker.client().await?;
    let mut frame = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(3)
        .with_request_api_version(4)
        .with_correlation_id(1)
        .encode(&mut frame, 1)?;
    frame.put_i32(i32::MAX);
    let mut out = bytes::BytesMut::new();
    out.put_i32(frame.len() as i32);
    out.extend_from_slice(&frame);
    c.write_raw(&out).await?;
    assert!(c.is_closed().await);

    let r: MetadataResponse = bystander
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await?;
    assert_eq!(r.brokers.len(), 1);
    Ok(())
}

#[tokio::test]
async fn corrupt_batches_get_corrupt_message_and_append_nothing() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "t", 1, &[]).await?;
    let good = batch(0, 5, 1000, Compression::Lz4);
    let mut bad = good.to_vec();
    let n = bad.len();
    bad[n - 2] ^= 0x40;
    let r = produce(&mut c, "t", 0, 1, bad.into()).await?;
    assert_eq!(r.error_code, 2, "{r:?}");
    // A good batch followed by a truncated one: the whole request is refused.
    let mut two = good.to_vec();
    two.extend_from_slice(&good[..good.len() - 1]);
    let r = produce(&mut c, "t", 0, 1, two.into()).await?;
    assert_eq!(r.error_code, 2, "{r:?}");
    // Two whole batches: from v3, a partition gets exactly one.
    let mut two = good.to_vec();
    two.extend_from_slice(&good);
    let r = produce(&mut c, "t", 0, 1, two.into()).await?;
    assert_eq!(r.error_code, 87, "{r:?}");
    assert!(r
        .error_message
        .as_deref()
        .unwrap_or("")
        .contains("exactly one record batch"));
    // Too big for max.message.bytes.
    create_topic(&mut c, "small", 1, &[("max.message.bytes", "100")]).await?;
    let r = produce(&mut c, "small", 0, 1, batch(0, 20, 0, Compression::None)).await?;
    assert_eq!(r.error_code, 10, "{r:?}");
    // Unknown topic and partition.
    assert_eq!(
        produce(&mut c, "nope", 0, 1, good.clone())
            .await?
            .error_code,
        3
    );
    assert_eq!(
        produce(&mut c, "t", 7, 1, good.clone()).await?.error_code,
        3
    );
    // Invalid acks.
    assert_eq!(
        produce(&mut c, "t", 0, 2, good.clone()).await?.error_code,
        21
    );
    // Nothing was appended: the next good batch lands at offset 0.
    let r = produce(&mut c, "t", 0, 1, good).await?;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    Ok(())
}
