//! Privileged end-to-end tests: the real `tracer` binary loads the real eBPF programs and traces
//! workloads whose behaviour is known exactly (`tracer-workloads`), and the tests assert exact
//! numbers from its JSON report.
//!
//! They need root (CI and these machines run as root) and fail, never skip, without it. Run
//! them serially: `cargo test -p tracer --test e2e -- --test-threads=1`.

mod alerts;
mod allocators;
mod errors;
mod fds;
mod follow;
mod hardening;
mod harness;
mod heap;
mod host;
mod leaks;
mod live;
mod max_size;
mod metrics;
mod mmap;
mod oracle;
mod rank;
mod record;
mod redis;
mod ring;
mod teardown;
mod trends;
mod tui;
mod unwind;
