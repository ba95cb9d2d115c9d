//! [`RecordingListing`] in DynamoDB: a Scan of the recording rows, for
//! operator commands only.
use std::collections::HashMap;

use super::item::{get_s, s, Item, RECORDING_SK, TAGS_DUE_INDEX};
use super::{map_error, DynamoCatalog};
use crate::errors::OperationError;
use crate::ports::catalog::{CatalogError, RecordingListing};
use crate::recording::RecordingEntry;

impl RecordingListing for DynamoCatalog {
    async fn recordings_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        let out = self
            .scan_page(after, limit.clamp(1, 10_000))?
            .filter_expression("sk = :recording")
            .expression_attribute_values(":recording", s(RECORDING_SK))
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        let page = out.items().iter().map(RecordingEntry::from_item).collect::<Result<Vec<_>, _>>()?;
        Ok((page, cursor(out.last_evaluated_key.as_ref())?))
    }

    async fn tags_due_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        // A Scan of the sparse index reads only the marked rows.
        let out = self
            .scan_page(after, limit.clamp(1, 1000))?
            .index_name(TAGS_DUE_INDEX)
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        // A row that does not read as a recording is logged and passed
        // over: one bad item must not stop the sweep of every other.
        let page = out
            .items()
            .iter()
            .filter_map(|item| match RecordingEntry::from_item(item) {
                Ok(entry) => Some(entry),
                Err(e) => {
                    tracing::error!(code = e.code(), error = %e, "a row of the tags-due index is not a recording; passed over");
                    None
                }
            })
            .collect();
        Ok((page, cursor(out.last_evaluated_key.as_ref())?))
    }
}

impl DynamoCatalog {
    /// A Scan of the table from the cursor `after`, reading at most `limit`
    /// items.
    fn scan_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder, CatalogError> {
        Ok(self
            .client
            .scan()
            .table_name(&self.table)
            .set_exclusive_start_key(start_key(after)?)
            .limit(i32::try_from(limit).unwrap_or(1000)))
    }
}

/// A page's cursor: the key of the last item read (any kind of item: a
/// Scan's limit counts them before its filter; an index's key included), as
/// JSON of its string attributes.
fn cursor(last: Option<&Item>) -> Result<Option<String>, CatalogError> {
    let Some(k) = last else { return Ok(None) };
    let mut key = serde_json::Map::new();
    for (name, _) in k.iter() {
        key.insert(name.clone(), serde_json::Value::String(get_s(k, name, "the scan's last key")?));
    }
    Ok(Some(serde_json::Value::Object(key).to_string()))
}

/// The key a cursor names (`None`: from the start).
fn start_key(after: Option<String>) -> Result<Option<Item>, CatalogError> {
    let Some(cursor) = after else { return Ok(None) };
    let key: HashMap<String, String> = serde_json::from_str(&cursor)
        .map_err(|e| CatalogError::Refused { detail: format!("not a cursor of this listing ({e})") })?;
    if !key.contains_key("pk") || !key.contains_key("sk") {
        return Err(CatalogError::Refused { detail: "not a cursor of this listing".into() });
    }
    Ok(Some(key.into_iter().map(|(k, v)| (k, s(&v))).collect()))
}
