//! [`EventClaims`] in DynamoDB: one item per event, expired by the table's
//! TTL.
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{get_opt_s, n, s, Item, EVENT_SK};
use super::{map_error, DynamoCatalog};
use crate::ports::catalog::{CatalogError, EventClaim, EventClaims};

impl DynamoCatalog {
    fn event_key(source: &str, id: &str) -> Item {
        Self::key(s(format!("event#{source}/{id}")), EVENT_SK)
    }

    async fn update_event(
        &self,
        source: &str,
        id: &str,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<(), CatalogError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::event_key(source, id)))
            .update_expression(expression);
        if expression.contains("#status") {
            req = req.expression_attribute_names("#status", "status");
        }
        for (k, v) in values {
            req = req.expression_attribute_values(*k, v.clone());
        }
        req.send().await.map(|_| ()).map_err(|e| map_error(e, &self.table))
    }
}

impl EventClaims for DynamoCatalog {
    async fn claim_event(
        &self,
        source: &str,
        id: &str,
        now: u64,
        lease_secs: u64,
        expires_at: u64,
    ) -> Result<EventClaim, CatalogError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::event_key(source, id)))
            .update_expression("SET #status = :pending, lease_until = :until, expires_at = :expires")
            .condition_expression("attribute_not_exists(pk) OR (#status = :pending AND lease_until < :now)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":until", n(now + lease_secs))
            .expression_attribute_values(":expires", n(expires_at))
            .expression_attribute_values(":now", n(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => {
                Ok(EventClaim::First { recorded: out.attributes.as_ref().and_then(|a| get_opt_s(a, "recorded")) })
            }
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::event_key(source, id)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| map_error(e, &self.table))?;
                Ok(match item.item.as_ref().and_then(|i| get_opt_s(i, "status")).as_deref() {
                    Some("done") => EventClaim::Done,
                    _ => EventClaim::InProgress,
                })
            }
            Err(e) => Err(map_error(e, &self.table)),
        }
    }

    async fn event_done(&self, source: &str, id: &str) -> Result<(), CatalogError> {
        self.update_event(source, id, "SET #status = :done REMOVE lease_until", &[(":done", s("done"))]).await
    }

    async fn release_event(&self, source: &str, id: &str, recorded: Option<&str>) -> Result<(), CatalogError> {
        match recorded {
            Some(r) => {
                self.update_event(
                    source,
                    id,
                    "SET lease_until = :zero, recorded = :r",
                    &[(":zero", n(0)), (":r", s(r))],
                )
                .await
            }
            None => self.update_event(source, id, "SET lease_until = :zero", &[(":zero", n(0))]).await,
        }
    }
}
