//! Choosing a partition for a record, as the Java client does.
//!
//! * A record with a partition goes there.
//! * A keyed record goes to `toPositive(murmur2(key)) % partitions`, bit for bit the Java
//!   client's hash, so Strand, Java and librdkafka's `murmur2_random` producers agree.
//! * A keyless record goes to a *sticky* partition that changes after `batch.size` bytes, so
//!   batches fill up (KIP-480/KIP-794), unless `partitioner.class` asks for round-robin.

use std::collections::HashMap;

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`.
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition the default partitioner picks for `key` among `partitions`.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    (to_positive(murmur2(key)) as i64 % partitions.max(1) as i64) as i32
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// murmur2 for keys, sticky for null keys.
    Default,
    /// Every record to the next partition in turn, keys ignored.
    RoundRobin,
}

impl Strategy {
    /// Reads `partitioner.class`: Kafka's class names or short names.
    pub fn parse(name: &str) -> Option<Self> {
        let n = name.to_ascii_lowercase();
        if n.is_empty()
            || n == "default"
            || n == "murmur2"
            || n == "murmur2_random"
            || n.ends_with("defaultpartitioner")
            || n == "sticky"
        {
            Some(Strategy::Default)
        } else if n.contains("roundrobin") || n == "round_robin" || n == "round-robin" {
            Some(Strategy::RoundRobin)
        } else {
            None
        }
    }
}

/// Partitioner state: sticky partitions and round-robin counters per topic. Plain data, no
/// clock: randomness comes from a small seeded generator.
pub struct Partitioner {
    strategy: Strategy,
    batch_bytes: usize,
    sticky: HashMap<String, (i32, usize)>,
    round_robin: HashMap<String, u32>,
    rng: u64,
}

impl Partitioner {
    pub fn new(strategy: Strategy, batch_bytes: usize, seed: u64) -> Self {
        Self {
            strategy,
            batch_bytes: batch_bytes.max(1),
            sticky: HashMap::new(),
            round_robin: HashMap::new(),
            rng: seed | 1,
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The partition for a record of `bytes` with `key` on a topic of `partitions`.
    pub fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        bytes: usize,
        partitions: usize,
    ) -> i32 {
        let n = partitions.max(1);
        match (self.strategy, key) {
            (Strategy::Default, Some(k)) => partition_for_key(k, n),
            (Strategy::RoundRobin, _) => {
                let c = self.round_robin.entry(topic.to_string()).or_insert(0);
                let p = (*c as usize % n) as i32;
                *c = c.wrapping_add(1);
                p
            }
            (Strategy::Default, None) => {
                let fresh = (self.next_random() % n as u64) as i32;
                let batch_bytes = self.batch_bytes;
                let entry = self.sticky.entry(topic.to_string()).or_insert((fresh, 0));
                if entry.1 >= batch_bytes || entry.0 as usize >= n {
                    // Switch to another partition (a different one when there is a choice).
                    let mut next = fresh;
                    if n > 1 && next == entry.0 {
                        next = (next + 1) % n as i32;
                    }
                    *entry = (next, 0);
                }
                entry.1 += bytes;
                entry.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Kafka's UtilsTest.testMurmur2 vectors.
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (input, want) in cases {
            assert_eq!(murmur2(input), *want, "{:?}", std::str::from_utf8(input));
        }
    }

    #[test]
    fn keyed_records_are_placed_as_java_places_them() {
        // toPositive(murmur2) % n, computed from the vectors above.
        assert_eq!(
            partition_for_key(b"21", 6),
            ((-973932308i32 & 0x7fffffff) % 6)
        );
        assert_eq!(partition_for_key(b"abc", 3), 479470107 % 3);
        let mut p = Partitioner::new(Strategy::Default, 100, 7);
        for _ in 0..10 {
            assert_eq!(
                p.partition("t", Some(b"foobar"), 10, 12),
                partition_for_key(b"foobar", 12)
            );
        }
    }

    #[test]
    fn null_keys_stick_until_a_batch_is_full() {
        let mut p = Partitioner::new(Strategy::Default, 100, 42);
        let first = p.partition("t", None, 40, 4);
        assert_eq!(p.partition("t", None, 40, 4), first);
        assert_eq!(p.partition("t", None, 40, 4), first); // 80 < 100 before this one
        let next = p.partition("t", None, 40, 4);
        assert_ne!(next, first);
    }

    #[test]
    fn round_robin_cycles() {
        let mut p = Partitioner::new(Strategy::RoundRobin, 100, 1);
        let got: Vec<i32> = (0..7).map(|_| p.partition("t", Some(b"k"), 1, 3)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(
            Strategy::parse("org.apache.kafka.clients.producer.RoundRobinPartitioner"),
            Some(Strategy::RoundRobin)
        );
    }
}
