//! The recording file format: a versioned header, then framed, checksummed, compressed chunks,
//! each holding a run of framed records.
//!
//! ```text
//! header  = MAGIC (8 bytes) | version u32 LE | abi u32 LE            (16 bytes)
//! chunk   = payload_len u32 | raw_len u32 | crc32 u32 | head_crc u32 | payload
//!           (crc32 of the payload; head_crc: crc32 of the 12 bytes before it)
//! payload = ZSTD(records);  record = tag u8 | len u32 | bytes
//! ```
//! Versions 1 and 2 compressed the payload with DEFLATE (level 1); version 3 uses zstd (level
//! 1), which makes churn's recordings about half the size and reads back faster.
//! Chunks are written whole, so a file cut short (kill -9, full disk) is readable up to its last
//! complete chunk. The chunk header has a checksum of its own, so a damaged length is told from
//! a file cut short: a length whose header checksum fails is corruption, never "truncated".
//! Version 1 files (chunk headers of 12 bytes, no head_crc) are still read. The reader never panics: every failure is a [`FormatError`] with the byte
//! offset where it was found. This module knows nothing of what the records mean.

use std::io::{Read, Write};

use bytes::Bytes;

use thiserror::Error;

/// First bytes of every recording.
pub const MAGIC: [u8; 8] = *b"\x89TRACER\n";
/// Version of the layout below and of the record meanings in `record::Meta`.
pub const VERSION: u32 = 3;
/// zstd's level for chunks: its fastest regular level (higher ones gain under 1 % on
/// allocation records and cost several times the time).
const ZSTD_LEVEL: i32 = 1;
/// The oldest version still read.
pub const OLDEST_VERSION: u32 = 1;
pub const HEADER_LEN: u64 = 16;
/// Bytes of a chunk header in files of `version`.
pub const fn chunk_header_len(version: u32) -> u64 {
    if version >= 2 {
        16
    } else {
        12
    }
}
/// Largest chunk, compressed or not, the reader accepts (the writer stays far below).
pub const MAX_CHUNK: u32 = 64 << 20;
/// The writer closes a chunk once this many uncompressed bytes are buffered.
pub const CHUNK_TARGET: usize = 256 << 10;
const RECORD_HEADER_LEN: usize = 5;

#[derive(Debug, Error)]
pub enum FormatError {
    #[error("not a tracer recording (bad magic at offset 0)")]
    NotRecording,
    #[error("truncated header: {0} of 16 bytes")]
    TruncatedHeader(u64),
    #[error("recording format version {found} at offset 8 is not supported (this tracer reads versions {OLDEST_VERSION} to {VERSION}){hint}")]
    Version { found: u32, hint: &'static str },
    #[error("recorded with kernel ABI {found} (offset 12), this tracer understands ABI {want}")]
    Abi { found: u32, want: u32 },
    #[error("corrupt chunk at offset {offset}: {what}")]
    Corrupt { offset: u64, what: String },
    #[error("read error at offset {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

/// Writes the header, then chunks.
pub struct Writer<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// Bytes written to `out` so far.
    pub written: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W, abi: u32) -> std::io::Result<Self> {
        let mut head = Vec::with_capacity(HEADER_LEN as usize);
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&abi.to_le_bytes());
        out.write_all(&head)?;
        Ok(Self {
            out,
            buf: Vec::with_capacity(CHUNK_TARGET + 4096),
            written: HEADER_LEN,
        })
    }

    /// Appends one record to the open chunk; closes the chunk when it is full.
    pub fn record(&mut self, tag: u8, bytes: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(bytes.len())
            .ok()
            .filter(|l| *l < MAX_CHUNK / 2)
            .ok_or_else(|| std::io::Error::other("record too large"))?;
        self.buf.push(tag);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK_TARGET {
            self.flush_chunk()?;
        }
        Ok(())
    }

    /// Bytes buffered and not yet in a chunk.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Compresses and writes what is buffered as one chunk.
    pub fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let payload = zstd::bulk::compress(&self.buf, ZSTD_LEVEL)?;
        let too_big = || std::io::Error::other("chunk too large");
        let plen = u32::try_from(payload.len()).map_err(|_| too_big())?;
        let rlen = u32::try_from(self.buf.len()).map_err(|_| too_big())?;
        let mut chunk = Vec::with_capacity(payload.len() + chunk_header_len(VERSION) as usize);
        chunk.extend_from_slice(&plen.to_le_bytes());
        chunk.extend_from_slice(&rlen.to_le_bytes());
        chunk.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        let head_crc = crc32fast::hash(&chunk);
        chunk.extend_from_slice(&head_crc.to_le_bytes());
        chunk.extend_from_slice(&payload);
        // One write per chunk: a crash leaves at most one partial chunk at the end.
        self.out.write_all(&chunk)?;
        self.out.flush()?;
        self.written += chunk.len() as u64;
        self.buf.clear();
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.flush_chunk()?;
        Ok(self.out)
    }
}

/// One record read back, with the offset of the chunk that held it. Its bytes are a view of
/// the decompressed chunk, shared with the chunk's other records, not a copy.
#[derive(Debug)]
pub struct Record {
    pub tag: u8,
    pub bytes: Bytes,
    pub chunk_offset: u64,
}

/// How reading ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Tail {
    /// The file ends after a complete chunk.
    Clean,
    /// The file ends inside a chunk starting at this offset (the rest was never written).
    Truncated { offset: u64, len: u64 },
}

/// Reads a recording chunk by chunk.
pub struct Reader<R: Read> {
    input: R,
    offset: u64,
    records: std::vec::IntoIter<Record>,
    /// Set once the input is exhausted.
    pub tail: Option<Tail>,
    /// The ABI of the kernel records.
    pub abi: u32,
    /// The format version of the file.
    pub version: u32,
}

/// Reads as much of `buf` as the input holds; returns the count (short only at end of input).
fn read_full<R: Read>(input: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

impl<R: Read> Reader<R> {
    /// Checks the header.
    pub fn new(mut input: R) -> Result<Self, FormatError> {
        let mut head = [0u8; HEADER_LEN as usize];
        let n = read_full(&mut input, &mut head)
            .map_err(|source| FormatError::Io { offset: 0, source })?;
        if n < MAGIC.len() {
            if head[..n] == MAGIC[..n] && n > 0 {
                return Err(FormatError::TruncatedHeader(n as u64));
            }
            return Err(FormatError::NotRecording);
        }
        if head[..8] != MAGIC {
            return Err(FormatError::NotRecording);
        }
        if n < head.len() {
            return Err(FormatError::TruncatedHeader(n as u64));
        }
        let version = u32_at(&head, 8);
        if !(OLDEST_VERSION..=VERSION).contains(&version) {
            return Err(FormatError::Version {
                found: version,
                hint: if version > VERSION {
                    ": it was written by a newer tracer"
                } else {
                    ""
                },
            });
        }
        let abi = u32_at(&head, 12);
        if abi != tracer_common::ABI_VERSION {
            return Err(FormatError::Abi {
                found: abi,
                want: tracer_common::ABI_VERSION,
            });
        }
        Ok(Self {
            input,
            offset: HEADER_LEN,
            records: Vec::new().into_iter(),
            tail: None,
            abi,
            version,
        })
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, `Ok(None)` at the end (see [`Reader::tail`] for how it ended).
    pub fn next_record(&mut self) -> Result<Option<Record>, FormatError> {
        loop {
            if let Some(r) = self.records.next() {
                return Ok(Some(r));
            }
            if self.tail.is_some() {
                return Ok(None);
            }
            self.read_chunk()?;
        }
    }

    fn read_chunk(&mut self) -> Result<(), FormatError> {
        let at = self.offset;
        let io = |source| FormatError::Io { offset: at, source };
        let corrupt = |what: String| FormatError::Corrupt { offset: at, what };
        let head_len = chunk_header_len(self.version);
        let mut head_buf = [0u8; 16];
        let head = &mut head_buf[..head_len as usize];
        let n = read_full(&mut self.input, head).map_err(io)?;
        if n == 0 {
            self.tail = Some(Tail::Clean);
            return Ok(());
        }
        if n < head.len() {
            self.tail = Some(Tail::Truncated {
                offset: at,
                len: n as u64,
            });
            return Ok(());
        }
        let (plen, rlen, crc) = (u32_at(head, 0), u32_at(head, 4), u32_at(head, 8));
        if head_len > 12 && crc32fast::hash(&head[..12]) != u32_at(head, 12) {
            return Err(corrupt(
                "chunk header checksum mismatch (its length cannot be trusted)".into(),
            ));
        }
        if plen == 0 || plen > MAX_CHUNK || rlen == 0 || rlen > MAX_CHUNK {
            return Err(corrupt(format!(
                "implausible chunk sizes ({plen} compressed, {rlen} raw)"
            )));
        }
        let mut payload = vec![0u8; plen as usize];
        let n = read_full(&mut self.input, &mut payload).map_err(io)?;
        if n < payload.len() {
            self.tail = Some(Tail::Truncated {
                offset: at,
                len: head_len + n as u64,
            });
            return Ok(());
        }
        if crc32fast::hash(&payload) != crc {
            return Err(corrupt("checksum mismatch".into()));
        }
        let raw = if self.version >= 3 {
            zstd::bulk::decompress(&payload, rlen as usize)
                .map_err(|e| corrupt(format!("cannot decompress: {e}")))?
        } else {
            miniz_oxide::inflate::decompress_to_vec_with_limit(&payload, rlen as usize)
                .map_err(|e| corrupt(format!("cannot decompress: {:?}", e.status)))?
        };
        if raw.len() != rlen as usize {
            return Err(corrupt(format!(
                "decompressed to {} bytes, header says {rlen}",
                raw.len()
            )));
        }
        let raw = Bytes::from(raw);
        let mut records = Vec::new();
        let mut pos = 0usize;
        while pos < raw.len() {
            if raw.len() - pos < RECORD_HEADER_LEN {
                return Err(corrupt(format!(
                    "record header cut at byte {pos} of the chunk"
                )));
            }
            let tag = raw[pos];
            let len = u32_at(&raw, pos + 1) as usize;
            let start = pos + RECORD_HEADER_LEN;
            let end = start.saturating_add(len);
            if end > raw.len() {
                return Err(corrupt(format!(
                    "record at byte {pos} of the chunk overruns it ({len} bytes)"
                )));
            }
            records.push(Record {
                tag,
                bytes: raw.slice(start..end),
                chunk_offset: at,
            });
            pos = start + len;
        }
        self.offset = at + head_len + u64::from(plen);
        self.records = records.into_iter();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(records: usize, chunk_every: usize) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), tracer_common::ABI_VERSION).expect("header");
        for i in 0..records {
            let body: Vec<u8> = (0..(i % 40) as u8).collect();
            w.record((i % 3) as u8, &body).expect("record");
            if i % chunk_every == chunk_every - 1 {
                w.flush_chunk().expect("chunk");
            }
        }
        w.finish().expect("finish")
    }

    fn read_all(bytes: &[u8]) -> Result<(Vec<Record>, Tail), FormatError> {
        let mut r = Reader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push(rec);
        }
        let tail = r.tail.take().unwrap_or(Tail::Clean);
        Ok((out, tail))
    }

    #[test]
    fn round_trip() {
        let file = sample(100, 7);
        let (recs, tail) = read_all(&file).expect("reads");
        assert_eq!(tail, Tail::Clean);
        assert_eq!(recs.len(), 100);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.tag, (i % 3) as u8);
            assert_eq!(r.bytes.len(), i % 40);
        }
    }

    #[test]
    fn truncation_at_every_byte_keeps_complete_chunks() {
        let file = sample(60, 5);
        let full = read_all(&file).expect("reads").0.len();
        for cut in 0..file.len() {
            match read_all(&file[..cut]) {
                Ok((recs, tail)) => {
                    assert!(recs.len() <= full);
                    assert_eq!(recs.len() % 5, 0, "whole chunks only (cut {cut})");
                    if cut < file.len() && cut > HEADER_LEN as usize {
                        assert!(matches!(tail, Tail::Truncated { .. }) || recs.len() % 5 == 0);
                    }
                }
                Err(e) => {
                    assert!(cut < HEADER_LEN as usize, "cut {cut}: {e}");
                    assert!(!e.to_string().contains('\n'));
                }
            }
        }
    }

    #[test]
    fn bit_flips_never_panic_and_payload_flips_are_caught() {
        let file = sample(40, 8);
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..4000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let bit = (seed % (file.len() as u64 * 8)) as usize;
            let mut bad = file.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            // Every byte is covered by a magic, a version, an ABI or a checksum: no flip passes,
            // not even as an apparent truncation.
            match read_all(&bad) {
                Ok((recs, tail)) => {
                    panic!("flip of bit {bit} passed: {} records, {tail:?}", recs.len())
                }
                Err(e) => assert!(!e.to_string().contains('\n')),
            }
        }
    }

    /// A file as version 1 (12-byte chunk headers) or 2 (16 bytes) wrote it, DEFLATE chunks.
    fn deflate_file(version: u32, records: &[(u8, &[u8])]) -> Vec<u8> {
        let mut file = Vec::new();
        file.extend_from_slice(&MAGIC);
        file.extend_from_slice(&version.to_le_bytes());
        file.extend_from_slice(&tracer_common::ABI_VERSION.to_le_bytes());
        for (tag, bytes) in records {
            let mut raw = vec![*tag];
            raw.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            raw.extend_from_slice(bytes);
            let payload = miniz_oxide::deflate::compress_to_vec(&raw, 1);
            file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            file.extend_from_slice(&(raw.len() as u32).to_le_bytes());
            let start = file.len();
            file.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            if version >= 2 {
                let head_crc = crc32fast::hash(&file[start - 8..]);
                file.extend_from_slice(&head_crc.to_le_bytes());
            }
            file.extend_from_slice(&payload);
        }
        file
    }

    #[test]
    fn version_1_and_2_files_stay_readable() {
        for version in [1, 2] {
            let file = deflate_file(version, &[(1, b"first"), (2, b"second")]);
            let (recs, tail) = read_all(&file).expect("reads");
            assert_eq!(tail, Tail::Clean);
            let got: Vec<(u8, &[u8])> = recs.iter().map(|r| (r.tag, &r.bytes[..])).collect();
            assert_eq!(got, vec![(1, &b"first"[..]), (2, &b"second"[..])]);
            let (recs, tail) = read_all(&file[..file.len() - 3]).expect("reads");
            assert_eq!(recs.len(), 1);
            assert!(matches!(tail, Tail::Truncated { .. }));
        }
    }

    #[test]
    fn chunks_are_zstd_and_a_deflate_chunk_in_a_version_3_file_is_corruption() {
        let file = sample(30, 10);
        assert_eq!(u32_at(&file, 8), 3);
        let first = HEADER_LEN as usize + 16;
        assert_eq!(
            file[first..first + 4],
            [0x28, 0xb5, 0x2f, 0xfd],
            "zstd frame magic"
        );
        let mut v3 = deflate_file(2, &[(1, b"first")]);
        v3[8..12].copy_from_slice(&3u32.to_le_bytes());
        let err = read_all(&v3).expect_err("deflate is not zstd");
        assert!(err.to_string().contains("cannot decompress"), "{err}");
    }

    #[test]
    fn a_damaged_chunk_length_is_corruption_not_truncation() {
        let file = sample(30, 10);
        let first_chunk = HEADER_LEN as usize;
        for byte in 0..4 {
            let mut bad = file.clone();
            bad[first_chunk + byte] ^= 0x10;
            let e = read_all(&bad).expect_err("corrupt");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("offset {first_chunk}")) && msg.contains("header checksum"),
                "{msg}"
            );
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed: u64 = 7;
        let mut file = sample(10, 3);
        for round in 0..2000 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let at = HEADER_LEN as usize + (seed >> 33) as usize % (file.len() - 16);
            file[at] = (seed >> 24) as u8;
            if round % 100 == 0 {
                file = sample(10, 3);
            }
            let _ = read_all(&file);
        }
    }

    #[test]
    fn bad_headers_are_named() {
        let file = sample(3, 1);
        assert!(matches!(
            read_all(b"hello world, not a recording"),
            Err(FormatError::NotRecording)
        ));
        assert!(matches!(read_all(b""), Err(FormatError::NotRecording)));
        let mut newer = file.clone();
        newer[8] = 9;
        newer[9..12].fill(0);
        let e = read_all(&newer).expect_err("rejected");
        assert!(e.to_string().contains("version 9"), "{e}");
        assert!(e.to_string().contains("newer"), "{e}");
        let mut flipped = file.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        let e = read_all(&flipped).expect_err("rejected");
        assert!(e.to_string().contains("checksum"), "{e}");
        assert!(e.to_string().contains("offset"), "{e}");
    }

    /// Writer throughput on a real recording's records (release build):
    /// `TRACER_BENCH_RECORDING=FILE cargo test --release -p tracer --lib -- --ignored --nocapture writer_throughput`
    #[test]
    #[ignore = "benchmark; needs TRACER_BENCH_RECORDING"]
    fn writer_throughput() {
        let path = std::env::var("TRACER_BENCH_RECORDING").expect("TRACER_BENCH_RECORDING");
        let bytes = std::fs::read(&path).expect("read recording");
        let (recs, _) = read_all(&bytes).expect("reads");
        let raw: usize = recs.iter().map(|r| r.bytes.len() + RECORD_HEADER_LEN).sum();
        let start = std::time::Instant::now();
        let mut w = Writer::new(Vec::new(), tracer_common::ABI_VERSION).expect("header");
        for r in &recs {
            w.record(r.tag, &r.bytes).expect("record");
        }
        let out = w.finish().expect("finish");
        let secs = start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        let back = read_all(&out).expect("reads back").0.len();
        let read_secs = start.elapsed().as_secs_f64();
        assert_eq!(back, recs.len());
        let line = format!(
            "{} records, {raw} raw bytes -> {} bytes ({:.2} bytes/record); write {:.2} M records/s ({:.0} MB/s raw); read {:.2} M records/s",
            recs.len(),
            out.len(),
            out.len() as f64 / recs.len() as f64,
            recs.len() as f64 / secs / 1e6,
            raw as f64 / secs / 1e6,
            recs.len() as f64 / read_secs / 1e6
        );
        std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes()).expect("stderr");
    }
}
