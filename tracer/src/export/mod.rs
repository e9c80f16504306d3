//! Renderers of a [`crate::report::Report`]: JSON (the PRODUCT.md §7 contract) and text.

pub mod json;
pub mod text;
