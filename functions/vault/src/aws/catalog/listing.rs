//! [`RecordingListing`] in DynamoDB: a Scan of the recording rows, for
//! operator commands only.
use std::collections::HashMap;

use super::item::{get_s, s, RECORDING_SK};
use super::{map_error, DynamoCatalog};
use crate::ports::catalog::{CatalogError, RecordingListing};
use crate::recording::RecordingEntry;

impl RecordingListing for DynamoCatalog {
    async fn recordings_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        // The cursor is the key of the last item the scan read (any kind of
        // item: the limit counts them before the filter), as JSON.
        let start = match after {
            None => None,
            Some(cursor) => {
                let key: HashMap<String, String> = serde_json::from_str(&cursor)
                    .map_err(|e| CatalogError::Refused { detail: format!("not a cursor of this listing ({e})") })?;
                let (Some(pk), Some(sk)) = (key.get("pk"), key.get("sk")) else {
                    return Err(CatalogError::Refused { detail: "not a cursor of this listing".into() });
                };
                Some(Self::key(s(pk), sk))
            }
        };
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :recording")
            .expression_attribute_values(":recording", s(RECORDING_SK))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit.clamp(1, 10_000)).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        let page = out.items().iter().map(RecordingEntry::from_item).collect::<Result<Vec<_>, _>>()?;
        let next = match out.last_evaluated_key.as_ref() {
            Some(k) => {
                let (pk, sk) = (get_s(k, "pk", "the scan's last key")?, get_s(k, "sk", "the scan's last key")?);
                Some(serde_json::json!({ "pk": pk, "sk": sk }).to_string())
            }
            None => None,
        };
        Ok((page, next))
    }
}
