//! Every API the broker advertises answers at every version it advertises.

use kafka_protocol::messages::*;
use strand_protocol::api::{ApiTable, SUPPORTED};
use strand_testkit::{RawClient, TestBroker};
use strand_tests::*;

#[tokio::test]
async fn every_advertised_api_answers_at_every_advertised_version() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "vt", 1, &[]).await?;
    let id = topic_id(&mut c, "vt").await?;
    let mut partitions = 1;
    for (key, min, max) in ApiTable::default().entries() {
        for v in min..=max {
            let ctx = format!("{key:?} v{v}");
            check(&mut c, key, v, id, &mut partitions)
                .await
                .map_err(|e| anyhow::anyhow!("{ctx}: {e:#}"))?;
        }
    }
    Ok(())
}

async fn check(
    c: &mut RawClient,
    key: ApiKey,
    v: i16,
    id: uuid::Uuid,
    partitions: &mut i32,
) -> anyhow::Result<()> {
    match key {
        ApiKey::Produce => {
            let mut req = produce_request(
                "vt",
                0,
                1,
                batch(0, 3, 1_000, kafka_protocol::records::Compression::None),
            );
            if v >= 13 {
                req.topic_data[0].name = Default::default();
                req.topic_data[0].topic_id = id;
            }
            let r: ProduceResponse = c.send(key, v, &req).await?;
            let p = &r.responses[0].partition_responses[0];
            anyhow::ensure!(p.error_code == 0 && p.base_offset >= 0, "{p:?}");
        }
        ApiKey::Fetch => {
            let mut req = fetch_request("vt", 0, 0, 0, 1 << 20);
            if v >= 13 {
                req.topics[0].topic = Default::default();
                req.topics[0].topic_id = id;
            }
            let r: FetchResponse = c.send(key, v, &req).await?;
            let p = &r.responses[0].partitions[0];
            anyhow::ensure!(p.error_code == 0 && p.high_watermark > 0, "{p:?}");
            anyhow::ensure!(
                !decode_records(p.records.clone().unwrap_or_default()).is_empty(),
                "no records"
            );
        }
        ApiKey::ListOffsets => {
            let req = ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                    .with_name(name("vt"))
                    .with_partitions(vec![
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(-1),
                    ])]);
            let r: ListOffsetsResponse = c.send(key, v, &req).await?;
            let p = &r.topics[0].partitions[0];
            if v == 0 {
                // v0: a list, the log end first.
                let first = p.old_style_offsets.first().copied().unwrap_or(-1);
                anyhow::ensure!(p.error_code == 0 && first > 0, "{p:?}");
            } else {
                anyhow::ensure!(p.error_code == 0 && p.offset > 0, "{p:?}");
            }
        }
        ApiKey::Metadata => {
            // All topics: an empty list at v0, null from v1 on.
            let req = if v == 0 {
                MetadataRequest::default().with_topics(Some(vec![]))
            } else {
                MetadataRequest::default().with_topics(None)
            };
            let r: MetadataResponse = c.send(key, v, &req).await?;
            anyhow::ensure!(
                r.brokers.len() == 1
                    && r.topics
                        .iter()
                        .any(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "vt")),
                "{r:?}"
            );
        }
        ApiKey::ApiVersions => {
            let req = ApiVersionsRequest::default()
                .with_client_software_name(s("strand-tests"))
                .with_client_software_version(s("1"));
            let r: ApiVersionsResponse = c.send(key, v, &req).await?;
            anyhow::ensure!(
                r.error_code == 0 && r.api_keys.len() == SUPPORTED.len(),
                "{r:?}"
            );
        }
        ApiKey::CreateTopics | ApiKey::DeleteTopics => {
            let t = format!("ct-{}-{v}", key as i16);
            let req = CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![create_topics_request::CreatableTopic::default()
                    .with_name(name(&t))
                    .with_num_partitions(2)
                    .with_replication_factor(1)]);
            let cv = if key == ApiKey::CreateTopics { v } else { 7 };
            let r: CreateTopicsResponse = c.send(ApiKey::CreateTopics, cv, &req).await?;
            anyhow::ensure!(r.topics[0].error_code == 0, "{r:?}");
            if key == ApiKey::DeleteTopics {
                let req = if v >= 6 {
                    DeleteTopicsRequest::default()
                        .with_topics(vec![delete_topics_request::DeleteTopicState::default()
                            .with_name(Some(name(&t)))])
                } else {
                    DeleteTopicsRequest::default().with_topic_names(vec![name(&t)])
                };
                let r: DeleteTopicsResponse = c.send(key, v, &req).await?;
                anyhow::ensure!(r.responses[0].error_code == 0, "{r:?}");
            }
        }
        ApiKey::DescribeConfigs => {
            let req = DescribeConfigsRequest::default()
                .with_include_synonyms(v >= 1)
                .with_resources(vec![
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s("vt")),
                ]);
            let r: DescribeConfigsResponse = c.send(key, v, &req).await?;
            let retention = r.results[0]
                .configs
                .iter()
                .find(|c| c.name.as_str() == "retention.ms");
            anyhow::ensure!(r.results[0].error_code == 0 && retention.is_some(), "{r:?}");
            // v0 says whether a value is the default; later versions give its source.
            let default = retention.is_some_and(|c| c.is_default || c.config_source == 5);
            anyhow::ensure!(default, "{retention:?}");
        }
        ApiKey::AlterConfigs => {
            let req = AlterConfigsRequest::default().with_resources(vec![
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("vt"))
                    .with_configs(vec![alter_configs_request::AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("100000")))]),
            ]);
            let r: AlterConfigsResponse = c.send(key, v, &req).await?;
            anyhow::ensure!(r.responses[0].error_code == 0, "{r:?}");
        }
        ApiKey::IncrementalAlterConfigs => {
            let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("vt"))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(s("segment.ms"))
                            .with_config_operation(0)
                            .with_value(Some(s("3600000"))),
                    ]),
            ]);
            let r: IncrementalAlterConfigsResponse = c.send(key, v, &req).await?;
            anyhow::ensure!(r.responses[0].error_code == 0, "{r:?}");
        }
        ApiKey::DescribeLogDirs => {
            let r: DescribeLogDirsResponse = c
                .send(key, v, &DescribeLogDirsRequest::default().with_topics(None))
                .await?;
            anyhow::ensure!(
                r.results.len() == 1 && r.results[0].topics.iter().any(|t| t.name.as_str() == "vt"),
                "{r:?}"
            );
        }
        ApiKey::CreatePartitions => {
            *partitions += 1;
            let req = CreatePartitionsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    create_partitions_request::CreatePartitionsTopic::default()
                        .with_name(name("vt"))
                        .with_count(*partitions),
                ]);
            let r: CreatePartitionsResponse = c.send(key, v, &req).await?;
            anyhow::ensure!(r.results[0].error_code == 0, "{r:?}");
        }
        ApiKey::DescribeQuorum => {
            let req = DescribeQuorumRequest::default().with_topics(vec![
                describe_quorum_request::TopicData::default()
                    .with_topic_name(name("__cluster_metadata"))
                    .with_partitions(vec![
                        describe_quorum_request::PartitionData::default().with_partition_index(0)
                    ]),
            ]);
            let r: DescribeQuorumResponse = c.send(key, v, &req).await?;
            let p = &r.topics[0].partitions[0];
            anyhow::ensure!(
                p.error_code == 0
                    && p.leader_id.0 == 1
                    && p.high_watermark > 0
                    && p.current_voters.len() == 1
                    && (v < 2 || r.nodes.len() == 1),
                "{r:?}"
            );
        }
        ApiKey::DescribeCluster => {
            let r: DescribeClusterResponse = c
                .send(
                    key,
                    v,
                    &DescribeClusterRequest::default().with_endpoint_type(1),
                )
                .await?;
            anyhow::ensure!(
                r.error_code == 0 && r.brokers.len() == 1 && !r.cluster_id.is_empty(),
                "{r:?}"
            );
        }
        ApiKey::FindCoordinator => {
            let req = if v >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")])
            } else {
                FindCoordinatorRequest::default().with_key(s("g"))
            };
            let r: FindCoordinatorResponse = c.send(key, v, &req).await?;
            let (code, node) = if v >= 4 {
                (r.coordinators[0].error_code, r.coordinators[0].node_id.0)
            } else {
                (r.error_code, r.node_id.0)
            };
            anyhow::ensure!(code == 0 && node == 1, "{r:?}");
        }
        ApiKey::JoinGroup => {
            let (member, generation) = join_group(c, &format!("jg-{v}"), v).await?;
            anyhow::ensure!(!member.is_empty() && generation == 1);
        }
        ApiKey::SyncGroup => {
            let g = format!("sg-{v}");
            let (member, generation) = join_group(c, &g, 5).await?;
            let assignment = bytes::Bytes::from_static(b"mine");
            let req = SyncGroupRequest::default()
                .with_group_id(GroupId(s(&g)))
                .with_generation_id(generation)
                .with_member_id(s(&member))
                .with_protocol_type(Some(s("consumer")).filter(|_| v >= 5))
                .with_protocol_name(Some(s("range")).filter(|_| v >= 5))
                .with_assignments(vec![
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(s(&member))
                        .with_assignment(assignment.clone()),
                ]);
            let r: SyncGroupResponse = c.send(key, v, &req).await?;
            anyhow::ensure!(r.error_code == 0 && r.assignment == assignment, "{r:?}");
        }
        ApiKey::Heartbeat => {
            let g = format!("hb-{v}");
            let (member, generation) = join_group(c, &g, 5).await?;
            let req = HeartbeatRequest::default()
                .with_group_id(GroupId(s(&g)))
                .with_generation_id(generation)
                .with_member_id(s(&member));
            let r: HeartbeatResponse = c.send(key, v, &req).await?;
            anyhow::ensure!(r.error_code == 0, "{r:?}");
        }
        ApiKey::LeaveGroup => {
            let g = format!("lg-{v}");
            let (member, _) = join_group(c, &g, 5).await?;
            let req = if v >= 3 {
                LeaveGroupRequest::default()
                    .with_group_id(GroupId(s(&g)))
                    .with_members(vec![
                        leave_group_request::MemberIdentity::default().with_member_id(s(&member))
                    ])
            } else {
                LeaveGroupRequest::default()
                    .with_group_id(GroupId(s(&g)))
                    .with_member_id(s(&member))
            };
            let r: LeaveGroupResponse = c.send(key, v, &req).await?;
            anyhow::ensure!(
                r.error_code == 0 && r.members.iter().all(|m| m.error_code == 0),
                "{r:?}"
            );
        }
        ApiKey::OffsetCommit => {
            let r: OffsetCommitResponse = c
                .send(key, v, &commit_request("oc", "vt", 0, 7 + i64::from(v)))
                .await?;
            anyhow::ensure!(r.topics[0].partitions[0].error_code == 0, "{r:?}");
        }
        ApiKey::OffsetFetch => {
            c.send::<_, OffsetCommitResponse>(
                ApiKey::OffsetCommit,
                8,
                &commit_request("of", "vt", 0, 33),
            )
            .await?;
            let committed = if v >= 8 {
                let req = OffsetFetchRequest::default().with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(s("of")))
                        .with_topics(Some(vec![
                            offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(name("vt"))
                                .with_partition_indexes(vec![0]),
                        ])),
                ]);
                let r: OffsetFetchResponse = c.send(key, v, &req).await?;
                r.groups[0].topics[0].partitions[0].committed_offset
            } else {
                let req = OffsetFetchRequest::default()
                    .with_group_id(GroupId(s("of")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(name("vt"))
                            .with_partition_indexes(vec![0]),
                    ]));
                let r: OffsetFetchResponse = c.send(key, v, &req).await?;
                r.topics[0].partitions[0].committed_offset
            };
            anyhow::ensure!(committed == 33, "committed {committed}");
        }
        ApiKey::OffsetDelete => {
            c.send::<_, OffsetCommitResponse>(
                ApiKey::OffsetCommit,
                8,
                &commit_request("od", "vt", 0, 5),
            )
            .await?;
            let req = OffsetDeleteRequest::default()
                .with_group_id(GroupId(s("od")))
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(name("vt"))
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default()
                                .with_partition_index(0),
                        ]),
                ]);
            let r: OffsetDeleteResponse = c.send(key, v, &req).await?;
            anyhow::ensure!(
                r.error_code == 0 && r.topics[0].partitions[0].error_code == 0,
                "{r:?}"
            );
        }
        ApiKey::ListGroups => {
            let r: ListGroupsResponse = c.send(key, v, &ListGroupsRequest::default()).await?;
            anyhow::ensure!(
                r.error_code == 0 && r.groups.iter().any(|g| g.group_id.as_str() == "oc"),
                "{r:?}"
            );
        }
        ApiKey::DescribeGroups => {
            let g = format!("dg-{v}");
            join_group(c, &g, 5).await?;
            let r: DescribeGroupsResponse = c
                .send(
                    key,
                    v,
                    &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(&g))]),
                )
                .await?;
            let d = &r.groups[0];
            anyhow::ensure!(
                d.error_code == 0 && d.members.len() == 1 && d.protocol_type.as_str() == "consumer",
                "{r:?}"
            );
        }
        ApiKey::DeleteGroups => {
            let g = format!("del-{v}");
            c.send::<_, OffsetCommitResponse>(
                ApiKey::OffsetCommit,
                8,
                &commit_request(&g, "vt", 0, 1),
            )
            .await?;
            let r: DeleteGroupsResponse = c
                .send(
                    key,
                    v,
                    &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(&g))]),
                )
                .await?;
            anyhow::ensure!(r.results[0].error_code == 0, "{r:?}");
        }
        ApiKey::ConsumerGroupHeartbeat | ApiKey::ConsumerGroupDescribe => {
            let g = format!("cg-{}-{v}", key as i16);
            let hv = if key == ApiKey::ConsumerGroupHeartbeat {
                v
            } else {
                1
            };
            let member = if hv >= 1 {
                uuid::Uuid::new_v4().simple().to_string()
            } else {
                String::new()
            };
            let req = ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(s(&g)))
                .with_member_id(s(&member))
                .with_member_epoch(0)
                .with_rebalance_timeout_ms(10_000)
                .with_subscribed_topic_names(Some(vec![name("vt")]));
            let r: ConsumerGroupHeartbeatResponse =
                c.send(ApiKey::ConsumerGroupHeartbeat, hv, &req).await?;
            let parts: usize = r.assignment.as_ref().map_or(0, |a| {
                a.topic_partitions.iter().map(|t| t.partitions.len()).sum()
            });
            anyhow::ensure!(
                r.error_code == 0 && r.member_epoch > 0 && parts == *partitions as usize,
                "{r:?}"
            );
            if key == ApiKey::ConsumerGroupDescribe {
                let d: ConsumerGroupDescribeResponse = c
                    .send(
                        key,
                        v,
                        &ConsumerGroupDescribeRequest::default()
                            .with_group_ids(vec![GroupId(s(&g))]),
                    )
                    .await?;
                let grp = &d.groups[0];
                anyhow::ensure!(
                    grp.error_code == 0
                        && grp.members.len() == 1
                        && grp.group_state.as_str() == "Stable",
                    "{d:?}"
                );
            }
        }
        ApiKey::DeleteRecords => {
            // Produce three records to a fresh topic, then delete the first one.
            let t = format!("dr-{v}");
            create_topic(c, &t, 1, &[]).await?;
            produce(
                c,
                &t,
                0,
                1,
                batch(0, 3, 0, kafka_protocol::records::Compression::None),
            )
            .await?;
            let req = DeleteRecordsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                    .with_name(name(&t))
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(1),
                    ])]);
            let r: DeleteRecordsResponse = c.send(key, v, &req).await?;
            let p = &r.topics[0].partitions[0];
            anyhow::ensure!(p.error_code == 0 && p.low_watermark == 1, "{r:?}");
        }
        ApiKey::InitProducerId => {
            let r: InitProducerIdResponse = c
                .send(
                    key,
                    v,
                    &InitProducerIdRequest::default()
                        .with_transactional_id(None)
                        .with_transaction_timeout_ms(60_000),
                )
                .await?;
            anyhow::ensure!(r.error_code == 0 && r.producer_id.0 >= 0, "{r:?}");
            let (_, epoch) = txn_begin(c, &format!("vt-init-{v}")).await?;
            anyhow::ensure!(epoch == 0, "epoch {epoch}");
        }
        ApiKey::AddPartitionsToTxn => {
            let id = format!("vt-add-{v}");
            let (pid, epoch) = txn_begin(c, &id).await?;
            let topics = vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(name("vt"))
                    .with_partitions(vec![0]),
            ];
            let req = if v < 4 {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(s(&id)))
                    .with_v3_and_below_producer_id(ProducerId(pid))
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(topics)
            } else {
                // The brokers' form: check that the partition is in the transaction.
                txn_add(c, &id, pid, epoch).await?;
                AddPartitionsToTxnRequest::default().with_transactions(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_producer_id(ProducerId(pid))
                        .with_producer_epoch(epoch)
                        .with_verify_only(true)
                        .with_topics(topics),
                ])
            };
            let r: AddPartitionsToTxnResponse = c.send(key, v, &req).await?;
            let results = if v < 4 {
                &r.results_by_topic_v3_and_below
            } else {
                &r.results_by_transaction[0].topic_results
            };
            anyhow::ensure!(
                results[0].results_by_partition[0].partition_error_code == 0,
                "{r:?}"
            );
        }
        ApiKey::AddOffsetsToTxn => {
            let id = format!("vt-offsets-{v}");
            let (pid, epoch) = txn_begin(c, &id).await?;
            let r: AddOffsetsToTxnResponse = c
                .send(
                    key,
                    v,
                    &AddOffsetsToTxnRequest::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_producer_id(ProducerId(pid))
                        .with_producer_epoch(epoch)
                        .with_group_id(GroupId(s("vt-group"))),
                )
                .await?;
            anyhow::ensure!(r.error_code == 0, "{r:?}");
        }
        ApiKey::EndTxn => {
            let id = format!("vt-end-{v}");
            let (pid, epoch) = txn_begin(c, &id).await?;
            txn_add(c, &id, pid, epoch).await?;
            let r: EndTxnResponse = c
                .send(
                    key,
                    v,
                    &EndTxnRequest::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_producer_id(ProducerId(pid))
                        .with_producer_epoch(epoch)
                        .with_committed(true),
                )
                .await?;
            anyhow::ensure!(r.error_code == 0, "{r:?}");
            if v >= 5 {
                anyhow::ensure!(r.producer_epoch == epoch + 1, "no epoch bump: {r:?}");
            }
        }
        ApiKey::TxnOffsetCommit => {
            let id = format!("vt-txn-commit-{v}");
            let (pid, epoch) = txn_begin(c, &id).await?;
            let r: AddOffsetsToTxnResponse = c
                .send(
                    ApiKey::AddOffsetsToTxn,
                    3,
                    &AddOffsetsToTxnRequest::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_producer_id(ProducerId(pid))
                        .with_producer_epoch(epoch)
                        .with_group_id(GroupId(s("vt-group"))),
                )
                .await?;
            anyhow::ensure!(r.error_code == 0, "{r:?}");
            let req = TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s(&id)))
                .with_group_id(GroupId(s("vt-group")))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_generation_id(-1)
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(name("vt"))
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1),
                        ]),
                ]);
            let r: TxnOffsetCommitResponse = c.send(key, v, &req).await?;
            anyhow::ensure!(r.topics[0].partitions[0].error_code == 0, "{r:?}");
        }
        ApiKey::DescribeProducers => {
            let r: InitProducerIdResponse = c
                .send(
                    ApiKey::InitProducerId,
                    4,
                    &InitProducerIdRequest::default().with_transactional_id(None),
                )
                .await?;
            let pid = r.producer_id.0;
            let mut records =
                batch(0, 2, 1_000, kafka_protocol::records::Compression::None).to_vec();
            // Make it the producer's: producer id, epoch 0, sequence 0, CRC again.
            records[43..51].copy_from_slice(&pid.to_be_bytes());
            records[51..53].copy_from_slice(&0i16.to_be_bytes());
            records[53..57].copy_from_slice(&0i32.to_be_bytes());
            let crc = strand_protocol::batch::compute_crc(&records);
            records[17..21].copy_from_slice(&crc.to_be_bytes());
            let p = produce(c, "vt", 0, -1, records.into()).await?;
            anyhow::ensure!(p.error_code == 0, "{p:?}");
            let r: DescribeProducersResponse = c
                .send(
                    key,
                    v,
                    &DescribeProducersRequest::default().with_topics(vec![
                        describe_producers_request::TopicRequest::default()
                            .with_name(name("vt"))
                            .with_partition_indexes(vec![0]),
                    ]),
                )
                .await?;
            let part = &r.topics[0].partitions[0];
            anyhow::ensure!(
                part.error_code == 0
                    && part
                        .active_producers
                        .iter()
                        .any(|a| a.producer_id.0 == pid && a.last_sequence == 1),
                "{r:?}"
            );
        }
        ApiKey::DescribeTransactions => {
            let id = format!("vt-describe-{v}");
            txn_begin(c, &id).await?;
            let r: DescribeTransactionsResponse = c
                .send(
                    key,
                    v,
                    &DescribeTransactionsRequest::default()
                        .with_transactional_ids(vec![TransactionalId(s(&id))]),
                )
                .await?;
            let t = &r.transaction_states[0];
            anyhow::ensure!(
                t.error_code == 0 && t.transaction_state.as_str() == "Empty",
                "{r:?}"
            );
        }
        ApiKey::ListTransactions => {
            let r: ListTransactionsResponse = c
                .send(
                    key,
                    v,
                    &ListTransactionsRequest::default().with_duration_filter(-1),
                )
                .await?;
            anyhow::ensure!(
                r.error_code == 0 && !r.transaction_states.is_empty(),
                "{r:?}"
            );
        }
        ApiKey::WriteTxnMarkers => {
            let id = format!("vt-markers-{v}");
            let (pid, epoch) = txn_begin(c, &id).await?;
            let r: WriteTxnMarkersResponse = c
                .send(
                    key,
                    v,
                    &WriteTxnMarkersRequest::default().with_markers(vec![
                        write_txn_markers_request::WritableTxnMarker::default()
                            .with_producer_id(ProducerId(pid))
                            .with_producer_epoch(epoch)
                            .with_transaction_result(false)
                            .with_topics(vec![
                                write_txn_markers_request::WritableTxnMarkerTopic::default()
                                    .with_name(name("vt"))
                                    .with_partition_indexes(vec![0]),
                            ]),
                    ]),
                )
                .await?;
            anyhow::ensure!(
                r.markers[0].topics[0].partitions[0].error_code == 0,
                "{r:?}"
            );
        }
        other => anyhow::bail!("no check written for advertised API {other:?}"),
    }
    Ok(())
}

/// A transactional id registered with its coordinator: its producer id and epoch.
async fn txn_begin(c: &mut RawClient, id: &str) -> anyhow::Result<(i64, i16)> {
    let r: FindCoordinatorResponse = c
        .send(
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s(id)]),
        )
        .await?;
    anyhow::ensure!(r.coordinators[0].error_code == 0, "{r:?}");
    let r: InitProducerIdResponse = c
        .send(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s(id))))
                .with_transaction_timeout_ms(60_000),
        )
        .await?;
    anyhow::ensure!(r.error_code == 0, "{r:?}");
    Ok((r.producer_id.0, r.producer_epoch))
}

/// Adds `vt-0` to the transaction.
async fn txn_add(c: &mut RawClient, id: &str, pid: i64, epoch: i16) -> anyhow::Result<()> {
    let r: AddPartitionsToTxnResponse = c
        .send(
            ApiKey::AddPartitionsToTxn,
            3,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s(id)))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(name("vt"))
                        .with_partitions(vec![0]),
                ]),
        )
        .await?;
    anyhow::ensure!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == 0,
        "{r:?}"
    );
    Ok(())
}
