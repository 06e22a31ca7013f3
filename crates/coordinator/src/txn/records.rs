//! Records of `__transaction_state`, in Kafka's formats (`TransactionLogKey` v0,
//! `TransactionLogValue` v0), so that the topic reads the same as Kafka's:
//!
//! | part | layout |
//! |---|---|
//! | key | `version i16 = 0, transactional id (string)` |
//! | value | `version i16 = 0, producer id i64, producer epoch i16, timeout ms i32, state i8, partitions (nullable array of topic string + partition i32 array), last update ms i64, start ms i64` |
//!
//! A null value is a tombstone: the transactional id expired. Value v1 (flexible, Kafka's
//! `transaction.version` 1) is read too.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::records::{get_i16, get_i32, get_i64, get_str, need, put_str};

/// A transaction's state, with Kafka's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Kafka's name, as ListTransactions and DescribeTransactions give it.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }

    pub fn is_complete(self) -> bool {
        matches!(self, TxnState::CompleteCommit | TxnState::CompleteAbort)
    }
}

/// The partitions of a transaction, by topic.
pub type TxnPartitions = BTreeMap<String, BTreeSet<i32>>;

/// What `__transaction_state` holds for one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: TxnPartitions,
    pub last_update_ms: i64,
    /// When the current transaction started, -1 if none has.
    pub start_ms: i64,
}

/// One record of `__transaction_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub transactional_id: String,
    /// `None`: a tombstone.
    pub value: Option<TxnValue>,
}

impl TxnRecord {
    pub fn key(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(0);
        put_str(&mut b, &self.transactional_id);
        b.freeze()
    }

    pub fn value(&self) -> Option<Bytes> {
        let v = self.value.as_ref()?;
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i64(v.producer_id);
        b.put_i16(v.producer_epoch);
        b.put_i32(v.timeout_ms);
        b.put_i8(v.state.id());
        if v.state == TxnState::Empty {
            b.put_i32(-1);
        } else {
            b.put_i32(v.partitions.len() as i32);
            for (topic, parts) in &v.partitions {
                put_str(&mut b, topic);
                b.put_i32(parts.len() as i32);
                for p in parts {
                    b.put_i32(*p);
                }
            }
        }
        b.put_i64(v.last_update_ms);
        b.put_i64(v.start_ms);
        Some(b.freeze())
    }

    /// Reads a record back; malformed bytes are an error, never a panic.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, String> {
        let mut k = key;
        match get_i16(&mut k)? {
            0 => {}
            v => return Err(format!("unknown transaction key version {v}")),
        }
        let transactional_id = get_str(&mut k)?;
        let value = value.map(decode_value).transpose()?;
        Ok(Self {
            transactional_id,
            value,
        })
    }
}

fn get_i8(b: &mut &[u8]) -> Result<i8, String> {
    need(b, 1)?;
    Ok(b.get_i8())
}

/// An unsigned varint (flexible versions).
fn get_uvarint(b: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for i in 0..10 {
        need(b, 1)?;
        let byte = b.get_u8();
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

/// A compact length (`n + 1`, 0 for null), checked against what is left.
fn get_compact_len(b: &mut &[u8], unit: usize) -> Result<Option<usize>, String> {
    let n = get_uvarint(b)?;
    if n == 0 {
        return Ok(None);
    }
    let n = usize::try_from(n - 1).map_err(|_| "length overflow".to_string())?;
    if n.saturating_mul(unit) > b.len() {
        return Err(format!("length {n} beyond the record"));
    }
    Ok(Some(n))
}

fn decode_value(mut v: &[u8]) -> Result<TxnValue, String> {
    let version = get_i16(&mut v)?;
    if !(0..=1).contains(&version) {
        return Err(format!("unknown transaction value version {version}"));
    }
    let flexible = version >= 1;
    let producer_id = get_i64(&mut v)?;
    let producer_epoch = get_i16(&mut v)?;
    let timeout_ms = get_i32(&mut v)?;
    let state_id = get_i8(&mut v)?;
    let state = TxnState::from_id(state_id).ok_or_else(|| format!("unknown state {state_id}"))?;
    let mut partitions = TxnPartitions::new();
    let topics = if flexible {
        get_compact_len(&mut v, 1)?
    } else {
        let n = get_i32(&mut v)?;
        if n > 0 && n as usize > v.len() {
            return Err(format!("topic count {n}"));
        }
        usize::try_from(n).ok()
    };
    for _ in 0..topics.unwrap_or(0) {
        let topic = if flexible {
            let n = get_compact_len(&mut v, 1)?.ok_or("null topic")?;
            let s = String::from_utf8(v[..n].to_vec()).map_err(|_| "topic is not UTF-8")?;
            v.advance(n);
            s
        } else {
            get_str(&mut v)?
        };
        let count = if flexible {
            get_compact_len(&mut v, 4)?.unwrap_or(0)
        } else {
            let n = get_i32(&mut v)?;
            if n < 0 || n as usize * 4 > v.len() {
                return Err(format!("partition count {n}"));
            }
            n as usize
        };
        let set = partitions.entry(topic).or_default();
        for _ in 0..count {
            set.insert(get_i32(&mut v)?);
        }
        if flexible {
            skip_tagged_fields(&mut v)?;
        }
    }
    if state == TxnState::Empty {
        partitions.clear();
    }
    let last_update_ms = get_i64(&mut v)?;
    let start_ms = get_i64(&mut v)?;
    Ok(TxnValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
    })
}

fn skip_tagged_fields(v: &mut &[u8]) -> Result<(), String> {
    let n = get_uvarint(v)?;
    for _ in 0..n {
        get_uvarint(v)?;
        let size = usize::try_from(get_uvarint(v)?).map_err(|_| "tag size overflow")?;
        need(v, size)?;
        v.advance(size);
    }
    Ok(())
}

impl crate::runtime::CoordinatorRecord for TxnRecord {
    fn key(&self) -> Bytes {
        TxnRecord::key(self)
    }
    fn value(&self) -> Option<Bytes> {
        TxnRecord::value(self)
    }
    fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, String> {
        TxnRecord::decode(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_refuse_garbage() {
        let r = TxnRecord {
            transactional_id: "tx-1".into(),
            value: Some(TxnValue {
                producer_id: 4000,
                producer_epoch: 3,
                timeout_ms: 60_000,
                state: TxnState::Ongoing,
                partitions: TxnPartitions::from([
                    ("orders".to_string(), BTreeSet::from([0, 2])),
                    ("__consumer_offsets".to_string(), BTreeSet::from([17])),
                ]),
                last_update_ms: 1_000,
                start_ms: 900,
            }),
        };
        let key = r.key();
        let value = r.value().unwrap();
        assert_eq!(&key[..], b"\x00\x00\x00\x04tx-1");
        assert_eq!(TxnRecord::decode(&key, Some(&value)).unwrap(), r);
        for n in 0..value.len() {
            assert!(TxnRecord::decode(&key, Some(&value[..n])).is_err(), "{n}");
        }
        let tombstone = TxnRecord::decode(&key, None).unwrap();
        assert!(tombstone.value.is_none());
    }
}
