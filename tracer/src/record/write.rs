//! Writing a recording: the [`Recorder`] a run feeds kernel records and [`Meta`] records.

use std::{
    fs::File,
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    format,
    meta::{Meta, TAG_EVENT, TAG_META},
};

/// Writes a recording during a run. Write failures (a full disk) stop the recording, not the
/// run: the error is kept and reported when the run ends.
pub struct Recorder {
    path: PathBuf,
    writer: Option<format::Writer<File>>,
    last_flush: Instant,
    /// The first write error, and the bytes of complete chunks before it.
    error: Option<(std::io::Error, u64)>,
    pub events: u64,
    /// Raw bytes of kernel records written.
    pub event_bytes: u64,
}

/// A chunk is closed at least this often, bounding what a crash loses.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

impl Recorder {
    /// Creates `path` (mode 0600, or empties tracer's own previous file; see
    /// [`crate::outfile`]) and writes the header.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = crate::outfile::create(path, crate::outfile::RECORDING_MODE)
            .map_err(|e| anyhow::anyhow!("recording: {e}"))?;
        let writer = format::Writer::new(file, tracer_common::ABI_VERSION)
            .map_err(|e| anyhow::anyhow!("write recording {}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Some(writer),
            last_flush: Instant::now(),
            error: None,
            events: 0,
            event_bytes: 0,
        })
    }

    fn fail(&mut self, e: std::io::Error) {
        let kept = self.writer.as_ref().map_or(0, |w| w.written);
        log::warn!(
            "recording {} stopped after {kept} bytes: {e}; what was written is readable",
            self.path.display()
        );
        self.writer = None;
        self.error = Some((e, kept));
    }

    /// A write failed: nothing more is written.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    fn write(&mut self, tag: u8, bytes: &[u8]) {
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        if let Err(e) = w.record(tag, bytes) {
            self.fail(e);
        }
    }

    /// Writes a kernel record.
    pub fn event(&mut self, bytes: &[u8]) {
        self.events += 1;
        self.event_bytes += bytes.len() as u64;
        self.write(TAG_EVENT, bytes);
    }

    pub fn meta(&mut self, meta: &Meta) {
        match serde_json::to_vec(meta) {
            Ok(bytes) => self.write(TAG_META, &bytes),
            Err(e) => self.fail(std::io::Error::other(e)),
        }
    }

    /// Closes the open chunk if it has waited long enough.
    pub fn tick(&mut self) {
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// Closes the open chunk now.
    pub fn flush(&mut self) {
        self.last_flush = Instant::now();
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        if let Err(e) = w.flush_chunk() {
            self.fail(e);
        }
    }

    /// Bytes in the file so far.
    pub fn file_bytes(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.written)
    }

    /// Writes the last chunk and syncs the file; returns its size, or the first write error.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        self.flush();
        if let Some((e, kept)) = self.error.take() {
            let path = self.path.display();
            anyhow::bail!(
                "write recording {path}: {e}; its first {kept} bytes are readable (tracer report {path}); free space or record elsewhere"
            );
        }
        let Some(w) = self.writer.take() else {
            return Ok(0);
        };
        let size = w.written;
        let mut file = w
            .finish()
            .map_err(|e| anyhow::anyhow!("write recording {}: {e}", self.path.display()))?;
        file.flush()?;
        file.sync_all()
            .map_err(|e| anyhow::anyhow!("sync recording {}: {e}", self.path.display()))?;
        Ok(size)
    }
}
