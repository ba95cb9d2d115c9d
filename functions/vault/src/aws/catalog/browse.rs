//! [`RecordingBrowser`] in DynamoDB: a Query of the `by-date` index.
use super::item::{entries_page, s, start_key, BY_DATE_INDEX};
use super::{map_error, DynamoCatalog};
use crate::ports::catalog::{BrowseQuery, CatalogError, RecordingBrowser};
use crate::recording::RecordingEntry;

impl RecordingBrowser for DynamoCatalog {
    async fn browse(&self, query: &BrowseQuery) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        // Both bounds always set: "" sorts before every date, "~" after.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_DATE_INDEX)
            .key_condition_expression("recording_type = :t AND encrypted_at BETWEEN :from AND :to")
            .expression_attribute_values(":t", s(&query.recording_type))
            .expression_attribute_values(":from", s(query.from.as_deref().unwrap_or("0")))
            .expression_attribute_values(":to", s(query.to.as_deref().unwrap_or("~")))
            .scan_index_forward(false)
            .set_exclusive_start_key(start_key(query.after.clone())?)
            .limit(i32::try_from(query.limit.clamp(1, 1000)).unwrap_or(100))
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        entries_page(out.items(), out.last_evaluated_key.as_ref())
    }
}
