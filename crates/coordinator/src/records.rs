//! Records of `__consumer_offsets`, in Kafka's key and value formats, so that the topic reads
//! the same as Kafka's:
//!
//! | key version | key | value |
//! |---|---|---|
//! | 1 | `group, topic, partition` (OffsetCommitKey) | v3: `offset, leader epoch, metadata, commit time`; v1 when the commit names its expiry (OffsetCommit v2-v4 `retention_time_ms`): `offset, metadata, commit time, expire time` |
//! | 2 | `group` (GroupMetadataKey) | v3: protocol type, generation, protocol, leader, state time, members |
//!
//! A null value is a tombstone: the offset or the group is gone.

use bytes::{Buf, BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// When the offset expires, if its commit said (OffsetCommit v2-v4 `retention_time_ms`);
    /// otherwise it ages by `offsets.retention.minutes`.
    pub expire_timestamp_ms: Option<i64>,
}

impl OffsetValue {
    /// An offset committed at `now` (OffsetCommit or TxnOffsetCommit).
    pub fn committed(offset: i64, leader_epoch: i32, metadata: Option<&str>, now: i64) -> Self {
        Self {
            offset,
            leader_epoch,
            metadata: metadata.unwrap_or_default().to_string(),
            commit_timestamp_ms: now,
            expire_timestamp_ms: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<MemberValue>,
}

/// One record of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetValue>,
    },
    Group {
        group: String,
        value: Option<GroupValue>,
    },
}

impl GroupRecord {
    pub fn group(&self) -> &str {
        match self {
            GroupRecord::Offset { group, .. } | GroupRecord::Group { group, .. } => group,
        }
    }

    pub fn key(&self) -> Bytes {
        let mut b = BytesMut::new();
        match self {
            GroupRecord::Offset {
                group,
                topic,
                partition,
                ..
            } => {
                b.put_i16(1);
                put_str(&mut b, group);
                put_str(&mut b, topic);
                b.put_i32(*partition);
            }
            GroupRecord::Group { group, .. } => {
                b.put_i16(2);
                put_str(&mut b, group);
            }
        }
        b.freeze()
    }

    pub fn value(&self) -> Option<Bytes> {
        let mut b = BytesMut::new();
        match self {
            GroupRecord::Offset { value: Some(v), .. } => match v.expire_timestamp_ms {
                // As Kafka: value v1 is the one that carries an expiry (and no leader epoch).
                Some(expire) => {
                    b.put_i16(1);
                    b.put_i64(v.offset);
                    put_str(&mut b, &v.metadata);
                    b.put_i64(v.commit_timestamp_ms);
                    b.put_i64(expire);
                }
                None => {
                    b.put_i16(3);
                    b.put_i64(v.offset);
                    b.put_i32(v.leader_epoch);
                    put_str(&mut b, &v.metadata);
                    b.put_i64(v.commit_timestamp_ms);
                }
            },
            GroupRecord::Group { value: Some(v), .. } => {
                b.put_i16(3);
                put_str(&mut b, &v.protocol_type);
                b.put_i32(v.generation);
                put_opt_str(&mut b, v.protocol.as_deref());
                put_opt_str(&mut b, v.leader.as_deref());
                b.put_i64(v.state_timestamp_ms);
                b.put_i32(v.members.len() as i32);
                for m in &v.members {
                    put_str(&mut b, &m.member_id);
                    put_opt_str(&mut b, m.group_instance_id.as_deref());
                    put_str(&mut b, &m.client_id);
                    put_str(&mut b, &m.client_host);
                    b.put_i32(m.rebalance_timeout_ms);
                    b.put_i32(m.session_timeout_ms);
                    put_bytes(&mut b, &m.subscription);
                    put_bytes(&mut b, &m.assignment);
                }
            }
            _ => return None,
        }
        Some(b.freeze())
    }

    /// Decodes a record read back from the log. Versions Strand does not write (older offset
    /// values, for instance) are read too; anything malformed is an error, never a panic.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, String> {
        let mut k = key;
        let version = get_i16(&mut k)?;
        match version {
            0 | 1 => {
                let group = get_str(&mut k)?;
                let topic = get_str(&mut k)?;
                let partition = get_i32(&mut k)?;
                let value = value.map(decode_offset_value).transpose()?;
                Ok(GroupRecord::Offset {
                    group,
                    topic,
                    partition,
                    value,
                })
            }
            2 => {
                let group = get_str(&mut k)?;
                let value = value.map(decode_group_value).transpose()?;
                Ok(GroupRecord::Group { group, value })
            }
            v => Err(format!("unknown key version {v}")),
        }
    }
}

fn decode_offset_value(mut v: &[u8]) -> Result<OffsetValue, String> {
    let version = get_i16(&mut v)?;
    let offset = get_i64(&mut v)?;
    let leader_epoch = if version >= 3 { get_i32(&mut v)? } else { -1 };
    let metadata = get_str(&mut v)?;
    let commit_timestamp_ms = get_i64(&mut v)?;
    let expire_timestamp_ms = if version == 1 {
        Some(get_i64(&mut v)?)
    } else {
        None
    };
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

fn decode_group_value(mut v: &[u8]) -> Result<GroupValue, String> {
    let version = get_i16(&mut v)?;
    let protocol_type = get_str(&mut v)?;
    let generation = get_i32(&mut v)?;
    let protocol = get_opt_str(&mut v)?;
    let leader = get_opt_str(&mut v)?;
    let state_timestamp_ms = if version >= 2 { get_i64(&mut v)? } else { -1 };
    let n = get_i32(&mut v)?;
    if n < 0 || n as usize > v.len() {
        return Err(format!("member count {n}"));
    }
    let mut members = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let member_id = get_str(&mut v)?;
        let group_instance_id = if version >= 3 {
            get_opt_str(&mut v)?
        } else {
            None
        };
        let client_id = get_str(&mut v)?;
        let client_host = get_str(&mut v)?;
        let rebalance_timeout_ms = if version >= 1 { get_i32(&mut v)? } else { 0 };
        let session_timeout_ms = get_i32(&mut v)?;
        let subscription = get_bytes(&mut v)?;
        let assignment = get_bytes(&mut v)?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp_ms,
        members,
    })
}

pub(crate) fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

pub(crate) fn put_opt_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(v.len() as i32);
    b.put_slice(v);
}

pub(crate) fn need(b: &[u8], n: usize) -> Result<(), String> {
    if b.len() < n {
        Err(format!(
            "record truncated: {n} bytes needed, {} left",
            b.len()
        ))
    } else {
        Ok(())
    }
}

pub(crate) fn get_i16(b: &mut &[u8]) -> Result<i16, String> {
    need(b, 2)?;
    Ok(b.get_i16())
}
pub(crate) fn get_i32(b: &mut &[u8]) -> Result<i32, String> {
    need(b, 4)?;
    Ok(b.get_i32())
}
pub(crate) fn get_i64(b: &mut &[u8]) -> Result<i64, String> {
    need(b, 8)?;
    Ok(b.get_i64())
}
pub(crate) fn get_opt_str(b: &mut &[u8]) -> Result<Option<String>, String> {
    let n = get_i16(b)?;
    if n < 0 {
        return Ok(None);
    }
    need(b, n as usize)?;
    let s = String::from_utf8(b[..n as usize].to_vec())
        .map_err(|_| "string is not UTF-8".to_string())?;
    b.advance(n as usize);
    Ok(Some(s))
}
pub(crate) fn get_str(b: &mut &[u8]) -> Result<String, String> {
    get_opt_str(b)?.ok_or_else(|| "null string".to_string())
}
fn get_bytes(b: &mut &[u8]) -> Result<Bytes, String> {
    let n = get_i32(b)?;
    if n < 0 {
        return Ok(Bytes::new());
    }
    need(b, n as usize)?;
    let v = Bytes::copy_from_slice(&b[..n as usize]);
    b.advance(n as usize);
    Ok(v)
}

impl crate::runtime::CoordinatorRecord for GroupRecord {
    fn key(&self) -> Bytes {
        GroupRecord::key(self)
    }
    fn value(&self) -> Option<Bytes> {
        GroupRecord::value(self)
    }
    fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, String> {
        GroupRecord::decode(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let records = [
            GroupRecord::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(OffsetValue {
                    offset: 42,
                    leader_epoch: 1,
                    metadata: "m".into(),
                    commit_timestamp_ms: 7,
                    expire_timestamp_ms: None,
                }),
            },
            GroupRecord::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: None,
            },
            GroupRecord::Group {
                group: "g".into(),
                value: Some(GroupValue {
                    protocol_type: "consumer".into(),
                    generation: 5,
                    protocol: Some("range".into()),
                    leader: Some("m1".into()),
                    state_timestamp_ms: 9,
                    members: vec![MemberValue {
                        member_id: "m1".into(),
                        group_instance_id: Some("i1".into()),
                        client_id: "c".into(),
                        client_host: "/127.0.0.1".into(),
                        rebalance_timeout_ms: 300_000,
                        session_timeout_ms: 45_000,
                        subscription: Bytes::from_static(b"sub"),
                        assignment: Bytes::from_static(b"asg"),
                    }],
                }),
            },
        ];
        for r in records {
            let key = r.key();
            let value = r.value();
            assert_eq!(GroupRecord::decode(&key, value.as_deref()).unwrap(), r);
            for n in 0..key.len() {
                assert!(GroupRecord::decode(&key[..n], value.as_deref()).is_err());
            }
            if let Some(v) = &value {
                for n in 0..v.len() {
                    assert!(GroupRecord::decode(&key, Some(&v[..n])).is_err());
                }
            }
        }
    }
}
