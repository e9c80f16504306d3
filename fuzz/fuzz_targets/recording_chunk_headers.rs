//! Damage confined to the chunk headers of a well-formed recording: always corruption.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracer::fuzz::check_chunk_headers(data));
