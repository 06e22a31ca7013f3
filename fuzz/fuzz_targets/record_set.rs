#![no_main]
//! Record sets as producers send them: batch validation.
libfuzzer_sys::fuzz_target!(|data: &[u8]| strand_protocol::fuzzing::record_set(data));
