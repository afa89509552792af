//! The dev sealer: produces blocks on one node, either as soon as transactions are
//! pending (automine, optionally with a heartbeat block when idle) or every `block_time`
//! seconds. It drives the same
//! [`Chain::produce_block`] that a consensus engine drives.

use std::{
    sync::Arc,
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use parking_lot::{Condvar, Mutex};

use crate::chain::Chain;

/// When the dev sealer makes blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealMode {
    /// A block as soon as transactions are pending, taking all that arrived meanwhile.
    Automine,
    /// A block every interval, empty or not.
    Interval(Duration),
    /// Automine, plus an empty block whenever none was made for the interval, so that
    /// subnet epochs (counted in blocks) pass on an idle chain.
    AutomineHeartbeat(Duration),
}

/// Handle to wake the sealer when transactions arrive.
#[derive(Clone, Default)]
pub struct SealerHandle {
    wake: Arc<(Mutex<bool>, Condvar)>,
}

impl SealerHandle {
    /// Signals that the pool changed.
    pub fn notify(&self) {
        let (flag, condvar) = &*self.wake;
        *flag.lock() = true;
        condvar.notify_one();
    }

    fn wait(&self, timeout: Duration) {
        let (flag, condvar) = &*self.wake;
        let mut woken = flag.lock();
        if !*woken {
            condvar.wait_for(&mut woken, timeout);
        }
        *woken = false;
    }
}

/// Seconds since the Unix epoch (block timestamps; never used inside execution).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Starts the dev sealer on its own thread.
pub fn spawn_dev_sealer(chain: Arc<Chain>, mode: SealMode) -> SealerHandle {
    let handle = SealerHandle::default();
    let waker = handle.clone();
    thread::Builder::new()
        .name("dev-sealer".into())
        .spawn(move || run(chain, mode, waker))
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!("cannot start the dev sealer: {e}"));
    handle
}

fn run(chain: Arc<Chain>, mode: SealMode, waker: SealerHandle) {
    match mode {
        SealMode::Automine | SealMode::AutomineHeartbeat(_) => {
            let heartbeat = match mode {
                SealMode::AutomineHeartbeat(every) => Some(every),
                _ => None,
            };
            let mut last_block = std::time::Instant::now();
            loop {
                // Keep producing while anything is executable, then sleep until woken.
                while chain.has_pending() {
                    match produce_guarded(&chain, false) {
                        Ok(Some(_)) => last_block = std::time::Instant::now(),
                        Ok(None) => break,
                        Err(e) => {
                            tracing::error!("block production failed: {e}");
                            thread::sleep(Duration::from_millis(200));
                            break;
                        }
                    }
                }
                let Some(every) = heartbeat else {
                    waker.wait(Duration::from_millis(500));
                    continue;
                };
                let left = every.saturating_sub(last_block.elapsed());
                if left.is_zero() {
                    if let Err(e) = produce_guarded(&chain, true) {
                        tracing::error!("block production failed: {e}");
                    }
                    last_block = std::time::Instant::now();
                } else {
                    waker.wait(left);
                }
            }
        }
        SealMode::Interval(every) => loop {
            thread::sleep(every);
            if let Err(e) = produce_guarded(&chain, true) {
                tracing::error!("block production failed: {e}");
            }
        },
    }
}

/// Produces a block; a panic inside (a bug) is reported as an error instead of ending
/// the sealer thread, so the node keeps serving and retries.
fn produce_guarded(chain: &Chain, allow_empty: bool) -> Result<Option<()>, String> {
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        chain.produce_block(unix_now(), allow_empty)
    }));
    match attempt {
        Ok(Ok(block)) => Ok(block.map(|_| ())),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(format!(
                "block production panicked (a bug; retrying): {what}"
            ))
        }
    }
}
