//! Reading a recording: its records back as [`Item`]s, held to the rules the writer follows
//! (one start record, before any kernel record; known tags; well-formed metadata). Every
//! failure is one line naming the file and the chunk's offset.

use std::{
    io::{BufReader, Read},
    path::Path,
};

use bytes::Bytes;

use super::{
    format::{Reader, Tail},
    meta::{Meta, TAG_EVENT, TAG_META},
};
use crate::symbolize::Symbols;

/// Read buffer: chunks are up to a few hundred KiB.
const BUFFER: usize = 1 << 20;

/// One record of a recording.
#[derive(Debug)]
pub enum Item {
    /// A kernel ring record, byte-for-byte.
    Event(Bytes),
    Meta(Meta),
}

/// The records of one recording, in order.
pub struct RecordingReader<R: Read> {
    name: String,
    inner: Reader<BufReader<R>>,
    started: bool,
}

/// Opens the recording at `path` for reading.
pub fn open(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| anyhow::anyhow!("open {}: {e}", path.display()))
}

impl<R: Read> RecordingReader<R> {
    /// Reads the header of `input`, named `name` in messages.
    pub fn new(name: &str, input: R) -> anyhow::Result<Self> {
        let inner = Reader::new(BufReader::with_capacity(BUFFER, input))
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        Ok(Self {
            name: name.to_string(),
            inner,
            started: false,
        })
    }

    /// The next record; `None` at the end (or at a cut-short last chunk, see
    /// [`Self::truncation`]). A corrupt chunk is an error: only a cut-short tail is tolerated.
    pub fn next_item(&mut self) -> anyhow::Result<Option<Item>> {
        let name = &self.name;
        let rec = match self.inner.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => return Ok(None),
            Err(e) => anyhow::bail!("{name}: {e}"),
        };
        let at = rec.chunk_offset;
        match rec.tag {
            TAG_EVENT => {
                if !self.started {
                    anyhow::bail!("{name}: event before the start record (chunk at offset {at})");
                }
                Ok(Some(Item::Event(rec.bytes)))
            }
            TAG_META => {
                let meta: Meta = serde_json::from_slice(&rec.bytes).map_err(|e| {
                    anyhow::anyhow!("{name}: bad metadata record in chunk at offset {at}: {e}")
                })?;
                if let Meta::Start { .. } = meta {
                    if self.started {
                        anyhow::bail!("{name}: second start record in chunk at offset {at}");
                    }
                    self.started = true;
                }
                Ok(Some(Item::Meta(meta)))
            }
            tag => anyhow::bail!("{name}: unknown record type {tag} in chunk at offset {at}"),
        }
    }

    /// The error for a file whose start record never came.
    pub fn nothing_readable(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "{}: no complete chunk (the recording holds nothing readable)",
            self.name
        )
    }

    /// A warning when the last chunk was cut short (kill -9, a full disk).
    pub fn truncation(&self) -> Option<String> {
        let Some(Tail::Truncated { offset, len }) = self.inner.tail else {
            return None;
        };
        Some(format!(
            "{}: truncated: the last chunk (offset {offset}, {len} bytes present) is incomplete; reporting up to offset {offset}",
            self.name
        ))
    }
}

/// The symbols stored at the end of a recording, so that reports built before a replay
/// reaches them symbolize as the final one does. Problems are left to the replay to report.
pub fn recorded_symbols(input: impl Read) -> Option<Symbols> {
    let mut reader = Reader::new(BufReader::with_capacity(BUFFER, input)).ok()?;
    let mut found = None;
    while let Ok(Some(rec)) = reader.next_record() {
        if rec.tag == TAG_META {
            if let Ok(Meta::Symbols { symbols }) = serde_json::from_slice(&rec.bytes) {
                found = Some(symbols);
            }
        }
    }
    found
}
