//! Whole screens rendered with TestBackend, compared with insta snapshots.
