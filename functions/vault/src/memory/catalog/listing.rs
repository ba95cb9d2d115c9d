//! The twin of [`RecordingListing`].

use super::MemoryCatalog;
use crate::ports::catalog::{CatalogError, RecordingListing};
use crate::recording::RecordingEntry;

impl RecordingListing for MemoryCatalog {
    async fn recordings_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        self.faults.before("recordings_page").await?;
        Ok(page_of(self.recordings(), after, limit))
    }

    async fn tags_due_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        self.faults.before("tags_due_page").await?;
        let marked = self.recordings().into_iter().filter(|e| e.tags_due.as_ref().is_some_and(|t| t.since.is_some()));
        Ok(page_of(marked, after, limit))
    }
}

/// Up to `limit` of `rows` (in id order) after the cursor `after` (an id),
/// and the cursor of the next page.
fn page_of(
    rows: impl IntoIterator<Item = RecordingEntry>,
    after: Option<String>,
    limit: usize,
) -> (Vec<RecordingEntry>, Option<String>) {
    let limit = limit.max(1);
    let mut page: Vec<RecordingEntry> =
        rows.into_iter().filter(|e| after.as_ref().is_none_or(|a| e.id.to_string() > *a)).take(limit + 1).collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next = if more { page.last().map(|e| e.id.to_string()) } else { None };
    (page, next)
}
