//! In-memory twins of every port, for tests of the protocols written
//! against them (feature `memory`, which `cargo test -p vault` turns on by
//! itself). Each twin keeps the semantics its contract suite
//! (`crate::contract`) pins down for the AWS adapter too: versions,
//! conditional writes, all-or-nothing transactions, not-found answers.
//!
//! Each twin can fail the next call of an operation with a chosen error
//! ([`Faults::fail_next`]), fail it after it took effect (a response lost
//! on the way back, [`Faults::fail_after_next`]), or stop the protocol
//! there the way a crash does ([`Faults::crash_next`],
//! [`Faults::crash_after_next`]): the call never returns, the test drops
//! the protocol's future with [`until_crash`], and no clean-up code runs.

mod alerts;
mod catalog;
mod dead_letters;
mod destinations;
mod keys;
mod metrics;
mod objects;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

pub use alerts::MemoryAlerts;
pub use catalog::MemoryCatalog;
pub use dead_letters::MemoryDeadLetters;
pub use destinations::MemoryRegions;
pub use keys::{CallCounts, MemoryKms};
pub use metrics::MemoryMetrics;
pub use objects::MemoryObjects;

/// What happens to one call of an operation.
#[derive(Clone, Debug)]
enum Fault<E> {
    /// Fail before it takes effect.
    Fail(E),
    /// Take effect, then fail (the answer is lost).
    FailAfter(E),
    /// Go through as planned (to reach a later call).
    Pass,
    /// Never return, before it takes effect.
    Crash,
    /// Take effect, then never return.
    CrashAfter,
    /// Wait, before it takes effect, until the test lets it go on.
    Pause(Arc<Notify>),
}

/// Planned faults of one twin, by operation name.
pub struct Faults<E> {
    plan: Mutex<HashMap<&'static str, VecDeque<Fault<E>>>>,
    calls: Mutex<HashMap<&'static str, usize>>,
    crashed: Arc<Notify>,
}

impl<E> Default for Faults<E> {
    fn default() -> Self {
        Self { plan: Mutex::default(), calls: Mutex::default(), crashed: Arc::new(Notify::new()) }
    }
}

impl<E: Clone> Faults<E> {
    fn push(&self, op: &'static str, fault: Fault<E>) {
        self.plan.lock().unwrap_or_else(|p| p.into_inner()).entry(op).or_default().push_back(fault);
    }

    /// The next `calls` calls of `op` go through: a fault planned after
    /// this one hits a later call.
    pub fn pass_next(&self, op: &'static str, calls: usize) {
        for _ in 0..calls {
            self.push(op, Fault::Pass);
        }
    }

    /// The next call of `op` fails with `error`, before it takes effect.
    pub fn fail_next(&self, op: &'static str, error: E) {
        self.push(op, Fault::Fail(error));
    }

    /// The next call of `op` takes effect, then fails with `error`.
    pub fn fail_after_next(&self, op: &'static str, error: E) {
        self.push(op, Fault::FailAfter(error));
    }

    /// The next call of `op` never returns, before it takes effect.
    pub fn crash_next(&self, op: &'static str) {
        self.push(op, Fault::Crash);
    }

    /// The next call of `op` takes effect, then never returns.
    pub fn crash_after_next(&self, op: &'static str) {
        self.push(op, Fault::CrashAfter);
    }

    /// The next call of `op` waits, before it takes effect, until the
    /// returned notify is notified (`notify_one`): a step that takes long
    /// (a lease runs out meanwhile, another invocation goes ahead).
    pub fn pause_next(&self, op: &'static str) -> Arc<Notify> {
        let go = Arc::new(Notify::new());
        self.push(op, Fault::Pause(go.clone()));
        go
    }

    /// Resolves once a planned crash has been reached.
    pub fn crashed(&self) -> impl Future<Output = ()> + Send + 'static {
        let notify = self.crashed.clone();
        async move { notify.notified().await }
    }

    /// Forgets every fault still planned for `op` (a failure that was to
    /// last "for ever" ends here).
    pub fn clear(&self, op: &'static str) {
        self.plan.lock().unwrap_or_else(|p| p.into_inner()).remove(op);
    }

    /// Calls of `op` so far.
    pub fn calls(&self, op: &str) -> usize {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).get(op).copied().unwrap_or(0)
    }

    fn take(&self, op: &'static str, after: bool) -> Option<Fault<E>> {
        let mut plan = self.plan.lock().unwrap_or_else(|p| p.into_inner());
        let queue = plan.get_mut(op)?;
        let is_after = matches!(queue.front()?, Fault::FailAfter(_) | Fault::CrashAfter);
        (is_after == after).then(|| queue.pop_front()).flatten()
    }

    /// At the start of a call of `op`: counts it, and fails or crashes it
    /// when so planned.
    pub async fn before(&self, op: &'static str) -> Result<(), E> {
        *self.calls.lock().unwrap_or_else(|p| p.into_inner()).entry(op).or_default() += 1;
        match self.take(op, false) {
            Some(Fault::Fail(e)) => Err(e),
            Some(Fault::Crash) => self.crash().await,
            Some(Fault::Pause(go)) => {
                go.notified().await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// At the end of a call of `op`, once it took effect.
    pub async fn after(&self, op: &'static str) -> Result<(), E> {
        match self.take(op, true) {
            Some(Fault::FailAfter(e)) => Err(e),
            Some(Fault::CrashAfter) => self.crash().await,
            _ => Ok(()),
        }
    }

    /// The synchronous form of [`Faults::before`], for the calls of a
    /// blocking upload: a planned crash is not possible there and fails
    /// the call with `crash_error` instead.
    pub fn before_sync(&self, op: &'static str) -> Result<(), Option<E>> {
        *self.calls.lock().unwrap_or_else(|p| p.into_inner()).entry(op).or_default() += 1;
        match self.take(op, false) {
            Some(Fault::Fail(e)) => Err(Some(e)),
            Some(Fault::Crash) => Err(None),
            _ => Ok(()),
        }
    }

    async fn crash(&self) -> Result<(), E> {
        self.crashed.notify_one();
        std::future::pending().await
    }
}

/// Runs `protocol` until it ends (`Some`) or reaches a planned crash
/// (`None`), then drops it there: no clean-up code of the protocol runs.
pub async fn until_crash<F: Future>(protocol: F, crashed: impl Future<Output = ()>) -> Option<F::Output> {
    tokio::select! {
        biased;
        _ = crashed => None,
        out = protocol => Some(out),
    }
}
