//! Renderers of a [`crate::report::Report`]: JSON (the PRODUCT.md §7 contract), text, CSV,
//! folded stacks, pprof and SVG flame graphs, and the diff of two reports.

pub mod csv;
pub mod diff;
pub mod folded;
pub mod json;
pub mod pprof;
pub mod svg;
pub mod text;
