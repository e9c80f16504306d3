//! Arbitrary bytes as a recording file: header, chunk framing, checksums, decompression.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracer::fuzz::check_file(data));
