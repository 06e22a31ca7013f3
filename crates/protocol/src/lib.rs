//! Strand's view of the Kafka wire protocol: everything the `kafka-protocol` crate does not do.
//!
//! The generated message codecs come from `kafka-protocol`; this crate adds, with no IO:
//!
//! * [`frame`]: the 4-byte size prefix, checked against a maximum before anything is allocated,
//!   and the request header, parsed so that an unknown API key or version can be answered (or the
//!   connection closed) the way Kafka does.
//! * [`api`]: the ApiVersions table. Strand advertises exactly the APIs it implements.
//! * [`batch`]: a zero-copy view of a record batch (magic 2) header: validation of what a producer
//!   sent (length, magic, CRC32C, record count) and the in-place patches the log makes (base
//!   offset, leader epoch, max timestamp, LogAppendTime).
//! * [`records`]: the records inside a batch, read one at a time through [`codec`]'s
//!   decompressing streams, with their framing and offset deltas checked.
//! * [`fetch`]: a Fetch response writer that leaves record data as separate chunks, so the broker
//!   can send file ranges straight from the page cache instead of copying them into the response.
//!
//! ```
//! use strand_protocol::frame::frame_len;
//! assert_eq!(frame_len([0, 0, 0, 12], 100).unwrap(), 12);
//! assert!(frame_len([0, 0, 1, 0], 100).is_err());
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod batch;
pub mod codec;
pub mod fetch;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod records;
#[doc(hidden)]
pub mod testing;

pub use kafka_protocol;
