//! Cluster metadata as a log of records.
//!
//! Every change to topics, partitions, brokers and configs is a [`MetadataRecord`]. The
//! [`controller`] checks a request against the current [`MetadataImage`] and answers with the
//! records that carry it out; the [`Quorum`] commits them (durable in the [`store`], applied
//! by the [`state_machine`]) and publishes the next image. State never changes any other way,
//! so a restart (or, with clustering, a new controller) rebuilds exactly the same image by
//! replay.
//!
//! * [`record`]: the records.
//! * [`image`]: the immutable image and `apply`.
//! * [`store`]: the log store: entries with their terms, the vote, snapshots, on disk.
//! * [`state_machine`]: committed entries applied to the image.
//! * [`quorum`]: propose, commit, publish; [`LocalQuorum`] is a quorum of one voter.
//! * [`controller`]: request checks that return records; [`request`]: the requests as data
//!   and the controller's decision on each.
//! * [`config`]: topic config definitions, validation and resolution.
//!
//! ```
//! use strand_metadata::{controller, MetadataImage, MetadataRecord};
//! let image = MetadataImage::empty().apply(0, &MetadataRecord::RegisterBroker {
//!     node_id: 1, host: "127.0.0.1".into(), port: 9092, rack: None });
//! let cfg = controller::ControllerConfig { num_partitions: 3, default_replication_factor: 1 };
//! let req = controller::NewTopic { name: "orders".into(), num_partitions: -1, replication_factor: -1, ..Default::default() };
//! let record = controller::create_topic(&image, &req, &cfg).unwrap();
//! let image = image.apply(1, &record);
//! assert_eq!(image.topic("orders").unwrap().partitions.len(), 3);
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod config;
pub mod controller;
pub mod image;
pub mod quorum;
pub mod record;
pub mod request;
pub mod state_machine;
pub mod store;

pub use image::{BrokerImage, MetadataImage, TopicImage};
pub use quorum::{
    Committed, LocalQuorum, Quorum, QuorumDescription, QuorumError, ReplicaDescription,
};
pub use record::{ConfigResource, MetadataRecord, PartitionRecord};
pub use request::{ControllerReply, ControllerRequest};
