//! The Produce request body, encoded by hand so record batches travel as their own chunks:
//! the bytes built by the accumulator go to the socket without being copied into a request
//! buffer. A test checks the result against the generated encoder for every version.

use bytes::{BufMut, Bytes, BytesMut};

fn uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn string(buf: &mut BytesMut, s: &str, flexible: bool) {
    if flexible {
        uvarint(buf, s.len() as u64 + 1);
    } else {
        buf.put_i16(s.len() as i16);
    }
    buf.put_slice(s.as_bytes());
}

fn array_len(buf: &mut BytesMut, n: usize, flexible: bool) {
    if flexible {
        uvarint(buf, n as u64 + 1);
    } else {
        buf.put_i32(n as i32);
    }
}

/// Body chunks of a Produce request (v3–v12) carrying `topics` → `(partition, batch)`.
pub fn produce_body(
    version: i16,
    transactional_id: Option<&str>,
    acks: i16,
    timeout_ms: i32,
    topics: &[(&str, Vec<(i32, Bytes)>)],
) -> Vec<Bytes> {
    let flexible = version >= 9;
    let mut chunks = Vec::new();
    let mut buf = BytesMut::with_capacity(64);
    match transactional_id {
        Some(id) => string(&mut buf, id, flexible),
        None if flexible => uvarint(&mut buf, 0),
        None => buf.put_i16(-1),
    }
    buf.put_i16(acks);
    buf.put_i32(timeout_ms);
    array_len(&mut buf, topics.len(), flexible);
    for (name, partitions) in topics {
        string(&mut buf, name, flexible);
        array_len(&mut buf, partitions.len(), flexible);
        for (index, records) in partitions {
            buf.put_i32(*index);
            if flexible {
                uvarint(&mut buf, records.len() as u64 + 1);
            } else {
                buf.put_i32(records.len() as i32);
            }
            chunks.push(buf.split().freeze());
            chunks.push(records.clone());
            if flexible {
                uvarint(&mut buf, 0); // partition tagged fields
            }
        }
        if flexible {
            uvarint(&mut buf, 0); // topic tagged fields
        }
    }
    if flexible {
        uvarint(&mut buf, 0); // request tagged fields
    }
    chunks.push(buf.freeze());
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn matches_the_generated_encoder_at_every_version() {
        let a = Bytes::from_static(b"batch-one-bytes");
        let b = Bytes::from(vec![7u8; 300]);
        let topics = vec![
            ("orders", vec![(0, a.clone()), (3, b.clone())]),
            ("t2", vec![(1, a.clone())]),
        ];
        for (v, txn) in (3..=12).flat_map(|v| [(v, None), (v, Some("tx-1"))]) {
            let req = ProduceRequest::default()
                .with_transactional_id(txn.map(|t: &str| {
                    kafka_protocol::messages::TransactionalId(StrBytes::from_string(t.into()))
                }))
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(
                    topics
                        .iter()
                        .map(|(t, ps)| {
                            TopicProduceData::default()
                                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                                .with_partition_data(
                                    ps.iter()
                                        .map(|(p, r)| {
                                            PartitionProduceData::default()
                                                .with_index(*p)
                                                .with_records(Some(r.clone()))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let mut want = BytesMut::new();
            req.encode(&mut want, v).unwrap();
            let got: Vec<u8> = produce_body(v, txn, -1, 30_000, &topics).concat();
            assert_eq!(got, want.to_vec(), "v{v} {txn:?}");
        }
    }
}
