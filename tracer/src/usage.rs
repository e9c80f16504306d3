//! [`UsageError`]: a command line that cannot work, whatever the machine. `main` turns it into
//! exit code 1 (other failures are 2); any command may return one.

use thiserror::Error;

/// A command line that cannot work, whatever the machine: exit code 1.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A [`UsageError`] as an `anyhow::Error`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}
