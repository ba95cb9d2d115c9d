//! A type's recordings by date: the player's list.

use std::future::Future;

use super::CatalogError;
use crate::recording::RecordingEntry;

/// What the player lists: one recording type's rows, newest first, between
/// two `encrypted_at` bounds (RFC 3339 strings, compared as strings, both
/// inclusive), a page at a time. An index read, never a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrowseQuery {
    pub recording_type: String,
    /// Lowest `encrypted_at` listed (`None`: from the first).
    pub from: Option<String>,
    /// Highest `encrypted_at` listed (`None`: to the last).
    pub to: Option<String>,
    /// The cursor a previous page returned.
    pub after: Option<String>,
    pub limit: usize,
}

/// A type's recordings by date, for the player's list.
pub trait RecordingBrowser: Send + Sync {
    /// Up to `limit` rows of the query, newest first, and the cursor of the
    /// next page (`None`: the last).
    fn browse(
        &self,
        query: &BrowseQuery,
    ) -> impl Future<Output = Result<(Vec<RecordingEntry>, Option<String>), CatalogError>> + Send;
}
