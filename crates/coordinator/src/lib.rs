//! The coordinators, as pure state machines: the group coordinator and the transaction
//! coordinator, and the runtime that keeps each in the partitions of an internal topic.
//!
//! Requests and the current time go in; the records to append (to `__consumer_offsets`,
//! `__transaction_state`) and the replies to send come out ([`Outcome`]). Nothing here does IO
//! or reads a clock, so every rebalance, timeout and expiry is tested by calling methods with
//! a chosen `now`.
//!
//! * [`runtime`]: shards, writes that revert when their append fails, replies held until
//!   durable ([`ShardRuntime`]); [`journal`]: the revertible map the group coordinator uses.
//! * [`txn`]: the transaction coordinator (`__transaction_state`).
//! * [`records`]: `__consumer_offsets` keys and values in Kafka's formats.
//! * [`group`]: a group, its members and state.
//! * [`classic`]: JoinGroup / SyncGroup / Heartbeat / LeaveGroup and their timeouts.
//! * [`consumer`]: KIP-848 consumer groups: ConsumerGroupHeartbeat, server-side assignors.
//! * [`coordinator`]: the coordinator: offsets, group admin, replay, `tick`.
//!
//! Held requests: JoinGroup and SyncGroup often cannot be answered at once. The caller gives
//! each a [`RequestId`]; the answer arrives in some later [`Outcome::replies`] under that id.
//!
//! ```
//! use strand_coordinator::{GroupCoordinator, GroupConfig};
//! let mut c = GroupCoordinator::new(GroupConfig::default());
//! let out = c.tick(0);
//! assert!(out.records.is_empty() && out.replies.is_empty());
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod classic;
pub mod consumer;
pub mod coordinator;
pub mod group;
pub mod journal;
pub mod records;
pub mod runtime;
pub mod txn;
pub mod txn_offsets;

pub use classic::ClientInfo;
pub use consumer::TopicsView;
pub use coordinator::{GroupConfig, GroupCoordinator, Outcome, Reply};
pub use group::{GroupState, RequestId};
pub use records::GroupRecord;
pub use runtime::{
    BatchKind, CoordinatorRecord, Outcome as ShardOutcome, PartitionWriter, Replayed, Shard,
    ShardRuntime, WriteError,
};

/// The `__consumer_offsets` partition that holds `group`: Kafka's rule, the absolute value of
/// Java's `String.hashCode` modulo the partition count.
/// Also the rule for a transactional id's `__transaction_state` partition.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    // Kafka's Utils.abs: Integer.MIN_VALUE maps to 0.
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_java_string_hash_code() {
        // "hello".hashCode() == 99162322; "".hashCode() == 0; "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("my-group", 1), 0);
    }
}
