//! Denied calls counted per window.

use std::future::Future;

use super::CatalogError;

/// One window of denied calls: who was denied which call on which key,
/// in the window that opened at `window_start` (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DenialWindow {
    pub window_start: u64,
    pub key_arn: String,
    pub operation: String,
    pub principal: String,
}

/// Denied calls counted in the catalog, per key, principal and call, so
/// that every container of the guardian counts into the same window and a
/// flood of them makes one summary, not one alert each.
pub trait DenialCounters: Send + Sync {
    /// Counts one denied call in its window (forgotten after `expires_at`);
    /// returns the window's count with this one (1: the first).
    fn count_denial(
        &self,
        window: &DenialWindow,
        expires_at: u64,
    ) -> impl Future<Output = Result<u64, CatalogError>> + Send;

    /// Windows that opened before `before` (Unix seconds), oldest first, at
    /// most `limit`, with their counts.
    fn closed_denials(
        &self,
        before: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(DenialWindow, u64)>, CatalogError>> + Send;

    /// Removes a window's counter: its count when this call removed it,
    /// `None` when it was already gone.
    fn take_denials(&self, window: &DenialWindow) -> impl Future<Output = Result<Option<u64>, CatalogError>> + Send;
}
