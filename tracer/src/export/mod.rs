//! Renderers of a [`crate::report::Report`]: JSON (the PRODUCT.md §7 contract), text, CSV,
//! folded stacks, pprof and SVG flame graphs, and the diff of two reports.

pub mod csv;
pub mod diff;
pub mod folded;
pub mod interval;
pub mod json;
pub mod pprof;
pub mod svg;
pub mod text;

/// Output format of a live run's report (the offline commands have their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}
