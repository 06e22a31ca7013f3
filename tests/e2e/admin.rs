//! Topic and config administration.

use kafka_protocol::messages::*;
use strand_testkit::TestBroker;
use strand_tests::*;

#[tokio::test]
async fn create_topic_errors_match_kafka() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    assert_eq!(
        create_topic(&mut c, "a.b", 2, &[]).await?.topics[0].error_code,
        0
    );
    assert_eq!(
        create_topic(&mut c, "a.b", 2, &[]).await?.topics[0].error_code,
        36
    );
    assert_eq!(
        create_topic(&mut c, "a_b", 2, &[]).await?.topics[0].error_code,
        17
    );
    assert_eq!(
        create_topic(&mut c, "bad/name", 1, &[]).await?.topics[0].error_code,
        17
    );
    assert_eq!(
        create_topic(&mut c, "zero", 0, &[]).await?.topics[0].error_code,
        37
    );
    assert_eq!(
        create_topic(&mut c, "cfg", 1, &[("retention.ms", "soon")])
            .await?
            .topics[0]
            .error_code,
        40
    );
    assert_eq!(
        create_topic(&mut c, "cfg", 1, &[("no.such.config", "1")])
            .await?
            .topics[0]
            .error_code,
        40
    );
    let ok = create_topic(&mut c, "cfg", 1, &[("cleanup.policy", "compact")]).await?;
    let created = &ok.topics[0];
    assert_eq!(
        (
            created.error_code,
            created.num_partitions,
            created.replication_factor
        ),
        (0, 1, 1)
    );
    let configs = created.configs.as_ref().expect("v5+ returns configs");
    let policy = configs
        .iter()
        .find(|c| c.name.as_str() == "cleanup.policy")
        .expect("listed");
    assert_eq!(
        (policy.value.as_deref(), policy.config_source),
        (Some("compact"), 1)
    );
    Ok(())
}

#[tokio::test]
async fn metadata_auto_creates_only_when_allowed() -> anyhow::Result<()> {
    let ask = |t: &str, allow: bool| {
        MetadataRequest::default()
            .with_allow_auto_topic_creation(allow)
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(name(t)))]))
    };
    let broker = TestBroker::start(&[("num.partitions", "3")]).await?;
    let mut c = broker.client().await?;
    let r: MetadataResponse = c.send(ApiKey::Metadata, 12, &ask("auto", true)).await?;
    assert_eq!(
        (r.topics[0].error_code, r.topics[0].partitions.len()),
        (0, 3)
    );
    let r: MetadataResponse = c.send(ApiKey::Metadata, 12, &ask("manual", false)).await?;
    assert_eq!(r.topics[0].error_code, 3);
    let r: MetadataResponse = c
        .send(ApiKey::Metadata, 12, &ask("bad name!", true))
        .await?;
    assert_eq!(r.topics[0].error_code, 17);

    let off = TestBroker::start(&[("auto.create.topics.enable", "false")]).await?;
    let mut c = off.client().await?;
    let r: MetadataResponse = c.send(ApiKey::Metadata, 12, &ask("auto", true)).await?;
    assert_eq!(r.topics[0].error_code, 3);
    let all: MetadataResponse = c
        .send(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await?;
    assert!(all.topics.is_empty());
    Ok(())
}

#[tokio::test]
async fn delete_topic_deletes_that_topic_only() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    for t in ["keep1", "gone", "keep2"] {
        create_topic(&mut c, t, 2, &[]).await?;
        produce(
            &mut c,
            t,
            0,
            1,
            batch(0, 3, 0, kafka_protocol::records::Compression::None),
        )
        .await?;
    }
    let r: DeleteTopicsResponse = c
        .send(
            ApiKey::DeleteTopics,
            4,
            &DeleteTopicsRequest::default().with_topic_names(vec![name("gone")]),
        )
        .await?;
    assert_eq!(r.responses[0].error_code, 0);
    let r: DeleteTopicsResponse = c
        .send(
            ApiKey::DeleteTopics,
            4,
            &DeleteTopicsRequest::default().with_topic_names(vec![name("gone")]),
        )
        .await?;
    assert_eq!(r.responses[0].error_code, 3);
    let all: MetadataResponse = c
        .send(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await?;
    let mut names: Vec<String> = all
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    names.sort();
    assert_eq!(names, ["keep1", "keep2"]);
    assert!(!broker.data_dir().join("gone-0").exists());
    assert_eq!(
        fetch(&mut c, "keep1", 0, 0, 0, 1 << 20)
            .await?
            .high_watermark,
        3
    );
    // Recreated under the same name, it starts empty.
    create_topic(&mut c, "gone", 1, &[]).await?;
    assert_eq!(
        fetch(&mut c, "gone", 0, 0, 0, 1 << 20)
            .await?
            .high_watermark,
        0
    );
    Ok(())
}

#[tokio::test]
async fn configs_describe_alter_incremental_and_broker_defaults() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[("log.retention.hours", "24")]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "cfg", 1, &[]).await?;
    let describe = |rtype: i8, rname: &str| {
        DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(rtype)
                    .with_resource_name(s(rname)),
            ])
    };
    let value = |r: &DescribeConfigsResponse, k: &str| {
        r.results[0]
            .configs
            .iter()
            .find(|c| c.name.as_str() == k)
            .map(|c| {
                (
                    c.value.as_deref().unwrap_or("").to_string(),
                    c.config_source,
                )
            })
    };
    let r: DescribeConfigsResponse = c
        .send(ApiKey::DescribeConfigs, 4, &describe(2, "cfg"))
        .await?;
    assert_eq!(
        value(&r, "retention.ms"),
        Some(("86400000".into(), 4)),
        "static broker config"
    );
    assert_eq!(
        value(&r, "segment.bytes"),
        Some(("1073741824".into(), 5)),
        "default"
    );

    let inc = |name: &str, op: i8, v: Option<&str>, rtype: i8, rname: &str| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(rtype)
                .with_resource_name(s(rname))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s(name))
                        .with_config_operation(op)
                        .with_value(v.map(s)),
                ]),
        ])
    };
    let r: IncrementalAlterConfigsResponse = c
        .send(
            ApiKey::IncrementalAlterConfigs,
            1,
            &inc("retention.ms", 0, Some("5000"), 2, "cfg"),
        )
        .await?;
    assert_eq!(r.responses[0].error_code, 0);
    let r: IncrementalAlterConfigsResponse = c
        .send(
            ApiKey::IncrementalAlterConfigs,
            1,
            &inc("retention.ms", 0, Some("x"), 2, "cfg"),
        )
        .await?;
    assert_eq!(r.responses[0].error_code, 40);
    let r: DescribeConfigsResponse = c
        .send(ApiKey::DescribeConfigs, 4, &describe(2, "cfg"))
        .await?;
    assert_eq!(value(&r, "retention.ms"), Some(("5000".into(), 1)));
    // A dynamic cluster-wide default applies to topics without their own setting.
    let r: IncrementalAlterConfigsResponse = c
        .send(
            ApiKey::IncrementalAlterConfigs,
            1,
            &inc("log.segment.bytes", 0, Some("4096"), 4, ""),
        )
        .await?;
    assert_eq!(r.responses[0].error_code, 0);
    let r: DescribeConfigsResponse = c
        .send(ApiKey::DescribeConfigs, 4, &describe(2, "cfg"))
        .await?;
    assert_eq!(value(&r, "segment.bytes"), Some(("4096".into(), 3)));
    assert_eq!(
        broker
            .broker
            .partition("cfg", 0)
            .expect("p")
            .log()
            .config()
            .segment_bytes,
        4096
    );
    // Static-only broker settings cannot change at run time.
    let r: IncrementalAlterConfigsResponse = c
        .send(
            ApiKey::IncrementalAlterConfigs,
            1,
            &inc("num.partitions", 0, Some("3"), 4, "1"),
        )
        .await?;
    assert_eq!(r.responses[0].error_code, 42);
    let r: DescribeConfigsResponse = c
        .send(ApiKey::DescribeConfigs, 4, &describe(4, "1"))
        .await?;
    assert_eq!(value(&r, "log.retention.ms"), Some(("86400000".into(), 4)));
    assert_eq!(value(&r, "num.partitions"), Some(("1".into(), 5)));
    // Legacy AlterConfigs replaces the whole set: retention.ms goes back to the broker's.
    let alter = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("cfg"))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(s("cleanup.policy"))
                .with_value(Some(s("compact")))]),
    ]);
    let r: AlterConfigsResponse = c.send(ApiKey::AlterConfigs, 2, &alter).await?;
    assert_eq!(r.responses[0].error_code, 0);
    let r: DescribeConfigsResponse = c
        .send(ApiKey::DescribeConfigs, 4, &describe(2, "cfg"))
        .await?;
    assert_eq!(value(&r, "retention.ms"), Some(("86400000".into(), 4)));
    assert_eq!(value(&r, "cleanup.policy"), Some(("compact".into(), 1)));
    // Unknown topic.
    let r: DescribeConfigsResponse = c
        .send(ApiKey::DescribeConfigs, 4, &describe(2, "nope"))
        .await?;
    assert_eq!(r.results[0].error_code, 3);
    Ok(())
}

#[tokio::test]
async fn create_partitions_grows_a_topic() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "grow", 1, &[]).await?;
    let req = |n: i32| {
        CreatePartitionsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(name("grow"))
                    .with_count(n),
            ])
    };
    let r: CreatePartitionsResponse = c.send(ApiKey::CreatePartitions, 3, &req(4)).await?;
    assert_eq!(r.results[0].error_code, 0);
    let r: CreatePartitionsResponse = c.send(ApiKey::CreatePartitions, 3, &req(2)).await?;
    assert_eq!(r.results[0].error_code, 37);
    let r = produce(
        &mut c,
        "grow",
        3,
        1,
        batch(0, 1, 0, kafka_protocol::records::Compression::None),
    )
    .await?;
    assert_eq!(r.error_code, 0);
    Ok(())
}

#[tokio::test]
async fn unset_broker_configs_are_described_as_null() -> anyhow::Result<()> {
    let describe = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("1")),
        ]);
    let find = |r: &DescribeConfigsResponse, k: &str| {
        r.results[0]
            .configs
            .iter()
            .find(|c| c.name.as_str() == k)
            .cloned()
            .unwrap_or_else(|| panic!("{k} not described"))
    };
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    let r: DescribeConfigsResponse = c.send(ApiKey::DescribeConfigs, 4, &describe).await?;
    assert_eq!(r.results[0].error_code, 0);
    let adv = find(&r, "advertised.listeners");
    assert_eq!(
        (adv.value.as_deref(), adv.config_source),
        (None, 5),
        "null, as Kafka"
    );
    assert!(adv.synonyms.iter().all(|s| s.value.is_none()), "{adv:?}");
    assert_eq!(find(&r, "num.partitions").value.as_deref(), Some("1"));
    drop(c);

    // Once set, it has its value.
    let broker = TestBroker::start(&[("advertised.listeners", "PLAINTEXT://localhost:9")]).await?;
    let mut c = broker.client().await?;
    let r: DescribeConfigsResponse = c.send(ApiKey::DescribeConfigs, 4, &describe).await?;
    let adv = find(&r, "advertised.listeners");
    assert_eq!(
        (adv.value.as_deref(), adv.config_source),
        (Some("PLAINTEXT://localhost:9"), 4)
    );
    Ok(())
}
