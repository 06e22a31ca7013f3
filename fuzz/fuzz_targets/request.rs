#![no_main]
//! Size-prefixed requests: framing, header, body decoding, produce batch validation.
libfuzzer_sys::fuzz_target!(|data: &[u8]| strand_protocol::fuzzing::request(data));
