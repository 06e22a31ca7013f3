//! The Strand broker.
//!
//! Layout:
//!
//! * [`config`]: broker settings under Kafka's names, from file, environment and flags.
//! * [`server`]: the listener, bounded by `max.connections`, and clean shutdown.
//! * [`connection`]: one client connection; pipelined requests, ordered replies.
//! * `handlers`: one module per API; they translate to and from the wire.
//! * `errors`: the one place where internal errors become Kafka error codes.
//! * `coordinator_host`: runs coordinator shards (`strand-coordinator`) on internal-topic partitions.
//! * [`broker`]: shared state (metadata image, partitions) and the controller path:
//!   every metadata change is a record appended to the metadata log, then applied.
//! * [`partition`]: a partition this broker leads.
//! * `flusher`: group commit of fsyncs for `acks=all`.
//! * [`groups`]: the group coordinator's shards on `__consumer_offsets`.
//! * [`txns`]: the transaction coordinator's shards on `__transaction_state`, and its markers.
//! * `producer_ids`: producer ids, a block at a time from the metadata log.
//! * `sendfile`: file ranges to the socket without a user-space copy.
//!
//! ```no_run
//! # async fn run() {
//! use strand_broker::{BrokerConfig, Server};
//! let config = BrokerConfig::from_map(Default::default()).unwrap();
//! let server = Server::bind(config).await.unwrap();
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await.unwrap();
//! # }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod background;
pub mod broker;
pub mod config;
pub mod connection;
mod controller_client;
mod coordinator_host;
mod errors;
mod flusher;
pub mod groups;
mod handlers;
pub mod listeners;
pub mod meta_properties;
pub mod partition;
mod producer_ids;
mod sendfile;
pub mod server;
pub mod txns;

pub use broker::Broker;
pub use config::BrokerConfig;
pub use server::Server;
