//! A Fetch response writer that keeps record data out of the encoded bytes.
//!
//! The response is produced as a list of [`Piece`]s: encoded protocol bytes, and the caller's
//! record handles (typically file ranges of log segments) where the records go. The broker
//! writes the bytes and sends the file ranges with `sendfile`, so record data is never copied
//! through user space and never decoded.
//!
//! Partition entries are encoded by the generated `kafka-protocol` code; only the place of the
//! records field inside them is worked out here (it is the last field before the tagged fields).
//! A test checks the result byte for byte against the generated encoder for every version.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ResponseHeader, TopicName};
use kafka_protocol::protocol::{Encodable, HeaderVersion};

use crate::frame::{EncodeError, FRAME_PREFIX_BYTES};

/// Something that stands for `len()` bytes of record data.
pub trait RecordData {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// No records: encoded as an empty record set (never null).
impl<R: RecordData> RecordData for Option<R> {
    fn len(&self) -> usize {
        self.as_ref().map_or(0, RecordData::len)
    }
}

impl RecordData for Bytes {
    fn len(&self) -> usize {
        Bytes::len(self)
    }
}

/// One piece of an encoded response, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<R> {
    Bytes(Bytes),
    Records(R),
}

/// One partition of a fetch response: everything but the records, and the records.
pub struct FetchPartition<R> {
    /// The `records` field of this is ignored.
    pub data: PartitionData,
    pub records: R,
}

pub struct FetchTopic<R> {
    pub name: TopicName,
    pub topic_id: uuid::Uuid,
    pub partitions: Vec<FetchPartition<R>>,
}

/// The top-level fields of a fetch response.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchHead {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub session_id: i32,
}

const FIRST_FLEXIBLE: i16 = 12;
const FIRST_WITH_TOPIC_ID: i16 = 13;

fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_array_len(buf: &mut BytesMut, version: i16, n: usize) {
    if version >= FIRST_FLEXIBLE {
        put_uvarint(buf, n as u32 + 1);
    } else {
        buf.put_i32(n as i32);
    }
}

/// Writes a whole response frame (size prefix, header, body) for Fetch `version` (4 to 18).
pub fn write_fetch_response<R: RecordData>(
    version: i16,
    correlation_id: i32,
    head: FetchHead,
    topics: Vec<FetchTopic<R>>,
) -> Result<Vec<Piece<R>>, EncodeError> {
    if !(4..=18).contains(&version) {
        return Err(EncodeError::new(format!(
            "fetch version {version} is not supported"
        )));
    }
    let flexible = version >= FIRST_FLEXIBLE;
    let mut pieces = Vec::new();
    let mut buf = BytesMut::with_capacity(256);
    let mut total = 0usize;
    // The size prefix is written last, when the total is known.
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = kafka_protocol::messages::FetchResponse::header_version(version);
    header
        .encode(&mut buf, header_version)
        .map_err(EncodeError::new)?;
    buf.put_i32(head.throttle_time_ms);
    if version >= 7 {
        buf.put_i16(head.error_code);
        buf.put_i32(head.session_id);
    }
    put_array_len(&mut buf, version, topics.len());
    for topic in topics {
        if version < FIRST_WITH_TOPIC_ID {
            let name = topic.name.as_bytes();
            if flexible {
                put_uvarint(&mut buf, name.len() as u32 + 1);
            } else {
                buf.put_i16(name.len() as i16);
            }
            buf.put_slice(name);
        } else {
            buf.put_slice(topic.topic_id.as_bytes());
        }
        put_array_len(&mut buf, version, topic.partitions.len());
        for p in topic.partitions {
            let (before, after) = split_partition(&p.data, version)?;
            buf.put_slice(&before);
            let len = p.records.len();
            if flexible {
                put_uvarint(&mut buf, len as u32 + 1);
            } else {
                buf.put_i32(len as i32);
            }
            if len > 0 {
                total += buf.len();
                pieces.push(Piece::Bytes(buf.split().freeze()));
                total += len;
                pieces.push(Piece::Records(p.records));
            }
            buf.put_slice(&after);
        }
        if flexible {
            buf.put_u8(0); // no tagged fields on the topic
        }
    }
    if flexible {
        buf.put_u8(0); // no tagged fields (node endpoints are only sent with leader changes)
    }
    total += buf.len();
    pieces.push(Piece::Bytes(buf.freeze()));
    let size = (total - FRAME_PREFIX_BYTES) as i32;
    if let Some(Piece::Bytes(first)) = pieces.first_mut() {
        let mut with_size = BytesMut::from(&first[..]);
        with_size[..4].copy_from_slice(&size.to_be_bytes());
        *first = with_size.freeze();
    }
    Ok(pieces)
}

/// Encodes a partition entry with null records and splits it around the records field.
///
/// With null records the field is `-1` as an i32 (4 bytes, non-flexible) or `0` as an unsigned
/// varint (1 byte, flexible). Its end is found by encoding the entry once more without tagged
/// fields: that encoding ends with the records field, plus the one-byte empty tag count when
/// flexible.
fn split_partition(data: &PartitionData, version: i16) -> Result<(Bytes, Bytes), EncodeError> {
    let mut data = data.clone();
    data.records = None;
    let mut full = BytesMut::new();
    data.encode(&mut full, version).map_err(EncodeError::new)?;
    let (records_end, records_field) = if version >= FIRST_FLEXIBLE {
        let mut untagged = data.clone();
        untagged.diverging_epoch = Default::default();
        untagged.current_leader = Default::default();
        untagged.snapshot_id = Default::default();
        untagged.unknown_tagged_fields = Default::default();
        (
            untagged.compute_size(version).map_err(EncodeError::new)? - 1,
            1,
        )
    } else {
        (full.len(), 4)
    };
    let full = full.freeze();
    Ok((
        full.slice(..records_end - records_field),
        full.slice(records_end..),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch,
    };
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::StrBytes;

    fn partition(i: i32, records: &Bytes, version: i16) -> PartitionData {
        let mut p = PartitionData::default()
            .with_partition_index(i)
            .with_high_watermark(1000 + i as i64)
            .with_last_stable_offset(900)
            .with_log_start_offset(5)
            .with_aborted_transactions(Some(vec![AbortedTransaction::default()
                .with_producer_id(7.into())
                .with_first_offset(3)]))
            .with_records(Some(records.clone()));
        if version >= 11 {
            p.preferred_read_replica = (-1).into();
        }
        if version >= 12 && i == 1 {
            p.current_leader = LeaderIdAndEpoch::default()
                .with_leader_id(2.into())
                .with_leader_epoch(4);
        }
        p
    }

    #[test]
    fn matches_the_generated_encoder_for_every_version() {
        let sets = [
            Bytes::from_static(b"0123456789abcdef"),
            Bytes::new(),
            Bytes::from(vec![9u8; 300]),
        ];
        for version in 4..=18i16 {
            let topic_id = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);
            let name = TopicName(StrBytes::from_static_str("orders"));
            let expected = FetchResponse::default()
                .with_throttle_time_ms(3)
                .with_error_code(0)
                .with_session_id(0)
                .with_responses(vec![FetchableTopicResponse::default()
                    .with_topic(if version < 13 {
                        name.clone()
                    } else {
                        Default::default()
                    })
                    .with_topic_id(if version >= 13 {
                        topic_id
                    } else {
                        Default::default()
                    })
                    .with_partitions(
                        sets.iter()
                            .enumerate()
                            .map(|(i, r)| partition(i as i32, r, version))
                            .collect(),
                    )]);
            let framed = crate::frame::encode_response(
                kafka_protocol::messages::ApiKey::Fetch,
                version,
                77,
                &expected,
            )
            .unwrap();
            let topics = vec![FetchTopic {
                name,
                topic_id,
                partitions: sets
                    .iter()
                    .enumerate()
                    .map(|(i, r)| FetchPartition {
                        data: partition(i as i32, r, version),
                        records: r.clone(),
                    })
                    .collect(),
            }];
            let head = FetchHead {
                throttle_time_ms: 3,
                error_code: 0,
                session_id: 0,
            };
            let pieces = write_fetch_response(version, 77, head, topics).unwrap();
            let mut got = BytesMut::new();
            for p in pieces {
                match p {
                    Piece::Bytes(b) | Piece::Records(b) => got.put_slice(&b),
                }
            }
            assert_eq!(&got[..], &framed[..], "fetch v{version}");
        }
    }
}
