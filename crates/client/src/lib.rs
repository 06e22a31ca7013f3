//! `strand-client`: a native async Kafka client for Rust — producer, consumer and admin — that
//! speaks to any Kafka-protocol cluster (Strand or Apache Kafka), configured with Kafka's own
//! config names.
//!
//! Layout:
//! * [`config`]: string settings with Kafka's names; each client reads the keys it knows.
//! * [`error`]: typed errors carrying Kafka error codes with their names and context.
//! * `conn`, `cluster`: multiplexed connections (correlation ids, version negotiation) and the
//!   metadata cache with leaders per partition.
//! * [`producer`]: partitioner, accumulator, sender.
//! * [`consumer`]: fetcher, group membership (classic and KIP-848), offsets.
//! * [`admin`]: topics, configs, groups, offsets, records.
//!
//! This crate depends on `strand-protocol` and `kafka-protocol` only, never on server crates.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod admin;
mod cluster;
pub mod config;
mod conn;
pub mod consumer;
pub mod error;
pub mod producer;
mod types;

pub use admin::{
    AbortSpec, Admin, AlterConfigOp, AlterOpType, BrokerDescription, ClusterDescription,
    ConfigEntry, ConfigResource, GroupDescription, GroupListing, ListedOffset, MemberDescription,
    NewTopic, OffsetAndMetadata, OffsetSpec, ProducerState, QuorumInfo, QuorumReplica,
    ResourceKind, TransactionDescription, TransactionListing,
};
pub use cluster::{ClusterView, PartitionInfo, TopicInfo};
pub use config::Config;
pub use consumer::{Consumer, ConsumerRecord};
pub use error::{Error, KafkaCode, Result};
pub use producer::{
    Compression, ConsumerGroupMetadata, DeliveryFuture, Header, Producer, ProducerRecord,
    RecordMetadata,
};
pub use types::TopicPartition;
