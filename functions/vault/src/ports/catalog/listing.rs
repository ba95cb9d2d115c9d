//! Every catalogued recording, a page at a time.

use std::future::Future;

use super::CatalogError;
use crate::recording::RecordingEntry;

/// Every catalogued recording, a page at a time: what a re-key moves
/// (the recordings under a key or of a type). A full read of the
/// recordings, for operator commands, never for a request path.
pub trait RecordingListing: Send + Sync {
    /// Up to about `limit` recordings after the cursor `after` (`None`: from
    /// the start), and the cursor of the next page (`None`: the last).
    fn recordings_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<RecordingEntry>, Option<String>), CatalogError>> + Send;

    /// The rows whose tags are not yet confirmed ([`TagsDue`](crate::recording::TagsDue)),
    /// a page at a time, from a sparse index that holds only them (never a
    /// scan of the recordings): what the tag sweep finishes and what `keys
    /// retire` waits for. Eventually consistent: read a row again before
    /// acting on it.
    fn tags_due_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<RecordingEntry>, Option<String>), CatalogError>> + Send;
}
