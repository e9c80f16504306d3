//! Arbitrary records in a well-formed file: metadata, event decoding, aggregation, reports.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracer::fuzz::check_records(data));
