//! Kafka's textual ids: a UUID as base64 with the URL alphabet and no padding (22 characters),
//! as Kafka prints cluster ids, directory ids and topic ids.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `bytes` in base64 (URL alphabet, no padding).
pub fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A UUID in Kafka's text form.
pub fn uuid_text(u: &uuid::Uuid) -> String {
    base64url(u.as_bytes())
}

/// The UUID a 22-character id stands for.
pub fn uuid_of(id: &str) -> Option<uuid::Uuid> {
    if id.len() != 22 {
        return None;
    }
    let mut bits: u128 = 0;
    for (i, c) in id.bytes().enumerate() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u128;
        // 22 characters carry 132 bits; the last one's low 4 are padding.
        bits = if i < 21 {
            (bits << 6) | v
        } else {
            (bits << 2) | (v >> 4)
        };
    }
    Some(uuid::Uuid::from_u128(bits))
}

/// A new random id (`kafka-storage random-uuid`).
pub fn random_uuid() -> String {
    uuid_text(&uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values_and_round_trips() {
        assert_eq!(base64url(b"Man"), "TWFu");
        assert_eq!(base64url(b"Ma"), "TWE");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(random_uuid().len(), 22);
        let u = uuid::Uuid::new_v4();
        assert_eq!(uuid_of(&uuid_text(&u)), Some(u));
        assert_eq!(uuid_of("short"), None);
    }
}
