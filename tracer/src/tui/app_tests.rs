//! App transitions, without rendering.
