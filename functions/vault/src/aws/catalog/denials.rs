//! [`DenialCounters`] in DynamoDB: one item per window of denied calls.
use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{get_n, get_opt_s, n, s, DENIED_PK};
use super::{map_error, DynamoCatalog};
use crate::ports::catalog::{CatalogError, DenialCounters, DenialWindow};

fn denial_sk(w: &DenialWindow) -> String {
    // Zero-padded so that the sort key orders by the window's start.
    format!("{:012}|{}|{}|{}", w.window_start, w.key_arn, w.operation, w.principal)
}

impl DynamoCatalog {
    fn denial_key(w: &DenialWindow) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_string(), s(DENIED_PK)), ("sk".to_string(), s(denial_sk(w)))])
    }
}

impl DenialCounters for DynamoCatalog {
    async fn count_denial(&self, window: &DenialWindow, expires_at: u64) -> Result<u64, CatalogError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::denial_key(window)))
            .update_expression(
                "ADD #count :one SET window_start = :start, key_arn = :key, operation = :op, principal = :who, \
                 expires_at = :expires",
            )
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":start", n(window.window_start))
            .expression_attribute_values(":key", s(&window.key_arn))
            .expression_attribute_values(":op", s(&window.operation))
            .expression_attribute_values(":who", s(&window.principal))
            .expression_attribute_values(":expires", n(expires_at))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        let attrs = out.attributes.unwrap_or_default();
        get_n(&attrs, "count", "denial window")
    }

    async fn closed_denials(&self, before: u64, limit: usize) -> Result<Vec<(DenialWindow, u64)>, CatalogError> {
        let mut found = Vec::new();
        let mut start = None;
        while found.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk < :before")
                .expression_attribute_values(":pk", s(DENIED_PK))
                .expression_attribute_values(":before", s(format!("{before:012}")))
                .limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| map_error(e, &self.table))?;
            for item in out.items() {
                let window = DenialWindow {
                    window_start: get_n(item, "window_start", "denial window")?,
                    key_arn: get_opt_s(item, "key_arn").unwrap_or_default(),
                    operation: get_opt_s(item, "operation").unwrap_or_default(),
                    principal: get_opt_s(item, "principal").unwrap_or_default(),
                };
                found.push((window, get_n(item, "count", "denial window")?));
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(found)
    }

    async fn take_denials(&self, window: &DenialWindow) -> Result<Option<u64>, CatalogError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::denial_key(window)))
            .condition_expression("attribute_exists(pk)")
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => match out.attributes {
                Some(attrs) => Ok(Some(get_n(&attrs, "count", "denial window")?)),
                None => Ok(None),
            },
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => Ok(None),
            Err(e) => Err(map_error(e, &self.table)),
        }
    }
}
