//! Events handled once however often they are delivered.

use std::future::Future;

use super::CatalogError;

/// The outcome of [`EventClaims::claim_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventClaim {
    /// Handle it; `recorded` is what a failed earlier attempt recorded.
    First { recorded: Option<String> },
    /// Another invocation is handling it now.
    InProgress,
    /// It was handled.
    Done,
}

/// Events handled once however often they are delivered.
pub trait EventClaims: Send + Sync {
    /// Claims the event `source`/`id` for `lease_secs` from `now` (Unix
    /// seconds): the first delivery, or a retry after a holder's lease
    /// expired, gets [`EventClaim::First`] (with what an earlier attempt
    /// recorded); a delivery while another holds it, `InProgress`; after it
    /// was handled, `Done`. The claim is forgotten after `expires_at`.
    fn claim_event(
        &self,
        source: &str,
        id: &str,
        now: u64,
        lease_secs: u64,
        expires_at: u64,
    ) -> impl Future<Output = Result<EventClaim, CatalogError>> + Send;

    /// Marks the event handled: later deliveries are `Done`.
    fn event_done(&self, source: &str, id: &str) -> impl Future<Output = Result<(), CatalogError>> + Send;

    /// Releases the claim of an attempt that failed, so that its retry is
    /// `First` at once, keeping `recorded` (what the attempt already did,
    /// for the retry to report rather than redo).
    fn release_event(
        &self,
        source: &str,
        id: &str,
        recorded: Option<&str>,
    ) -> impl Future<Output = Result<(), CatalogError>> + Send;
}
