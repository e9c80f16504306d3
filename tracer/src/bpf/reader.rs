//! Ring buffer → raw records. Moves bytes only: decoding is `crate::decode`.
//!
//! The kernel programs wake userspace only when the ring is a quarter full, so the reader also
//! polls on a short timer; together they bound latency and keep wakeups off the target's path.

use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

pub struct Reader {
    ring: AsyncFd<RawRing>,
    poll: Duration,
}

/// Wrapper so `AsyncFd` can own the ring.
pub struct RawRing(pub RingBuf<MapData>);

impl std::os::fd::AsRawFd for RawRing {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

impl Reader {
    pub fn new(ring: RingBuf<MapData>, poll: Duration) -> std::io::Result<Self> {
        // SAFETY: the ring's fd is owned by `RawRing`, which the `AsyncFd` owns in turn, so the
        // fd stays open for as long as it is registered.
        let ring = unsafe {
            AsyncFd::register_with_interest(RawRing(ring), tokio::io::Interest::READABLE)
        }
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self { ring, poll })
    }

    /// Waits until the kernel signals data or the poll period passes.
    pub async fn wait(&mut self) {
        tokio::select! {
            guard = self.ring.readable_mut() => {
                if let Ok(mut g) = guard {
                    g.clear_ready();
                }
            }
            _ = tokio::time::sleep(self.poll) => {}
        }
    }

    /// Hands every record now in the ring to `f`; returns how many there were.
    pub fn drain(&mut self, f: impl FnMut(&[u8])) -> u64 {
        self.drain_max(u64::MAX, f)
    }

    /// Hands at most `max` records to `f` (a target producing faster than we consume must not
    /// keep the caller from its timers); returns how many there were.
    pub fn drain_max(&mut self, max: u64, mut f: impl FnMut(&[u8])) -> u64 {
        let ring = &mut self.ring.get_mut().0;
        let mut n = 0;
        while n < max {
            let Some(item) = ring.next() else { break };
            f(&item);
            n += 1;
        }
        n
    }
}
