//! The twin of [`RecordingBrowser`]: the `by-date` index, newest first.

use super::MemoryCatalog;
use crate::ports::catalog::{BrowseQuery, CatalogError, RecordingBrowser};
use crate::recording::RecordingEntry;

impl RecordingBrowser for MemoryCatalog {
    async fn browse(&self, query: &BrowseQuery) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        self.faults.before("browse").await?;
        // Newest first; the cursor is the last row's (encrypted_at, id).
        let position = |e: &RecordingEntry| format!("{}\u{0}{}", e.encrypted_at, e.id);
        let mut rows: Vec<RecordingEntry> = self
            .recordings()
            .into_iter()
            .filter(|e| e.id.recording_type == query.recording_type)
            .filter(|e| query.from.as_deref().is_none_or(|f| e.encrypted_at.as_str() >= f))
            .filter(|e| query.to.as_deref().is_none_or(|t| e.encrypted_at.as_str() <= t))
            .filter(|e| query.after.as_ref().is_none_or(|a| position(e) < *a))
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse(position(e)));
        let limit = query.limit.max(1);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(position) } else { None };
        Ok((rows, next))
    }
}
