//! The JSON document of PRODUCT.md §7.

use std::io::Write;

use crate::report::Report;

/// Writes `report` as one pretty-printed JSON document followed by a newline.
pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}
