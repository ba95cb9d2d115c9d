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
        let all = self.recordings();
        let page: Vec<RecordingEntry> = all
            .into_iter()
            .filter(|e| after.as_ref().is_none_or(|a| e.id.to_string() > *a))
            .take(limit.max(1) + 1)
            .collect();
        let more = page.len() > limit.max(1);
        let page: Vec<_> = page.into_iter().take(limit.max(1)).collect();
        let next = if more { page.last().map(|e| e.id.to_string()) } else { None };
        Ok((page, next))
    }

    async fn tags_due_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        self.faults.before("tags_due_page").await?;
        let marked: Vec<RecordingEntry> = self
            .recordings()
            .into_iter()
            .filter(|e| e.tags_due.as_ref().is_some_and(|t| t.since.is_some()))
            .filter(|e| after.as_ref().is_none_or(|a| e.id.to_string() > *a))
            .take(limit.max(1) + 1)
            .collect();
        let more = marked.len() > limit.max(1);
        let page: Vec<_> = marked.into_iter().take(limit.max(1)).collect();
        let next = if more { page.last().map(|e| e.id.to_string()) } else { None };
        Ok((page, next))
    }
}
