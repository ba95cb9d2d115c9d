//! [`RetentionCatalog`] in DynamoDB: the `retention` index, runs, their
//! evidence, holds, and the transactions that mark and finish a deletion.
use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update};

use super::item::{
    deleted_pk, deleting_item, entries_page, get_n, get_opt_s, get_s, hold_item, n, recording_pk, s, start_key, Item,
    CLAIM_SK, POLICY_SK, RECORDING_SK, RETENTION_INDEX, RETENTION_PK, RUN_PK,
};
use super::{build_error, map_error, DynamoCatalog, Transacted};
use crate::ports::catalog::{
    CatalogError, DeletionRecord, DeletionRun, HoldChange, HoldChanged, Marked, RecordingCatalog, RetentionCatalog,
};
use crate::recording::{Deleting, RecordingEntry, RecordingId};

impl DynamoCatalog {
    /// Every item of partition `pk`, consistently read.
    async fn partition(&self, pk: AttributeValue) -> Result<Vec<Item>, CatalogError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", pk.clone())
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| map_error(e, &self.table))?;
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    async fn claim_until(&self, id: &RecordingId) -> Result<u64, CatalogError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(recording_pk(id), CLAIM_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        Ok(out.item.as_ref().and_then(|i| get_n(i, "until", "claim").ok()).unwrap_or(0))
    }
}

impl RetentionCatalog for DynamoCatalog {
    async fn due(
        &self,
        recording_type: &str,
        until: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(RETENTION_INDEX)
            .key_condition_expression("recording_type = :t AND retain_until <= :u")
            .expression_attribute_values(":t", s(recording_type))
            .expression_attribute_values(":u", s(until))
            .set_exclusive_start_key(start_key(after)?)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(100))
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        entries_page(out.items(), out.last_evaluated_key.as_ref())
    }

    async fn stamp_retention(
        &self,
        entry: &RecordingEntry,
        retain_until: Option<&str>,
        retention_days: Option<u32>,
    ) -> Result<bool, CatalogError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(recording_pk(&entry.id), RECORDING_SK)))
            .condition_expression(
                "message_id = :m AND attribute_not_exists(moved_to) AND attribute_not_exists(deleting)",
            )
            .expression_attribute_values(":m", s(&entry.message_id));
        let req = match (retain_until, retention_days) {
            (Some(u), Some(d)) => req
                .update_expression("SET retain_until = :u, retention_days = :d")
                .expression_attribute_values(":u", s(u))
                .expression_attribute_values(":d", n(u64::from(d))),
            _ => req.update_expression("REMOVE retain_until, retention_days"),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(map_error(e, &self.table)),
        }
    }

    async fn stamped_policy(&self) -> Result<Option<(String, Option<String>)>, CatalogError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(s(RETENTION_PK), POLICY_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        Ok(match out.item {
            Some(item) => Some((get_s(&item, "policy", "retention policy")?, get_opt_s(&item, "cursor"))),
            None => None,
        })
    }

    async fn save_stamped_policy(&self, policy: &str, cursor: Option<&str>) -> Result<(), CatalogError> {
        let mut item = Self::key(s(RETENTION_PK), POLICY_SK);
        item.insert("policy".into(), s(policy));
        if let Some(c) = cursor {
            item.insert("cursor".into(), s(c));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        Ok(())
    }

    async fn mark_deleting(
        &self,
        entry: &RecordingEntry,
        deleting: &Deleting,
        now: u64,
    ) -> Result<Marked, CatalogError> {
        let items = vec![
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(Self::key(recording_pk(&entry.id), RECORDING_SK)))
                        .update_expression("SET deleting = :d")
                        // The date it was found due by, too: a restamp meanwhile wins.
                        .condition_expression(format!(
                            "message_id = :m AND attribute_not_exists(moved_to) AND attribute_not_exists(deleting) \
                             AND attribute_not_exists(#hold) AND {}",
                            match &entry.retain_until {
                                Some(_) => "retain_until = :until",
                                None => "attribute_not_exists(retain_until)",
                            }
                        ))
                        .expression_attribute_names("#hold", "hold")
                        .set_expression_attribute_values(Some({
                            let mut values = HashMap::from([
                                (":d".to_string(), deleting_item(deleting)),
                                (":m".to_string(), s(&entry.message_id)),
                            ]);
                            if let Some(u) = &entry.retain_until {
                                values.insert(":until".to_string(), s(u));
                            }
                            values
                        }))
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
            // No re-key holds the recording: it is deleted once the move ends.
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(Self::key(recording_pk(&entry.id), CLAIM_SK)))
                        .condition_expression("attribute_not_exists(pk) OR #until < :now")
                        .expression_attribute_names("#until", "until")
                        .expression_attribute_values(":now", n(now))
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
        ];
        match self.transact(items).await? {
            Transacted::Committed => Ok(Marked::Marked),
            // The row: held, or no longer the one found due.
            Transacted::ConditionFailed(0) => Ok(match self.recording(&entry.id).await? {
                Some(r)
                    if r.message_id == entry.message_id
                        && r.hold.is_some()
                        && r.deleting.is_none()
                        && r.retain_until == entry.retain_until =>
                {
                    Marked::Held
                }
                other => Marked::RowChanged(other.map(Box::new)),
            }),
            // The claim check: a re-key holds the recording.
            Transacted::ConditionFailed(_) => Ok(Marked::Claimed { until: self.claim_until(&entry.id).await? }),
        }
    }

    async fn finish_deletion(&self, entry: &RecordingEntry, record: &DeletionRecord) -> Result<bool, CatalogError> {
        let mut items = vec![TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(recording_pk(&entry.id), RECORDING_SK)))
                    .condition_expression("deleting.#run = :run")
                    .expression_attribute_names("#run", "run")
                    .expression_attribute_values(":run", s(&record.marked_by))
                    .build()
                    .map_err(build_error)?,
            )
            .build()];
        for arn in entry.counted_keys() {
            items.push(TransactWriteItem::builder().update(self.uncount_usage(arn, entry.plaintext_size)?).build());
        }
        let mut evidence = Self::key(deleted_pk(&record.run), &record.id.to_string());
        evidence.insert("record".into(), s(record.to_json().to_string()));
        items.push(
            TransactWriteItem::builder()
                .put(Put::builder().table_name(&self.table).set_item(Some(evidence)).build().map_err(build_error)?)
                .build(),
        );
        match self.transact(items).await? {
            Transacted::Committed => Ok(true),
            // The row's: the only item with a condition.
            Transacted::ConditionFailed(_) => match self.recording(&entry.id).await? {
                None => Ok(false),
                Some(_) => Err(CatalogError::Refused {
                    detail: format!("{} is not being deleted by run {}", entry.id, record.marked_by),
                }),
            },
        }
    }

    async fn open_run(&self, run: &DeletionRun) -> Result<(), CatalogError> {
        let mut item = Self::key(s(RUN_PK), &run.run);
        item.insert("kind".into(), s(&run.kind));
        item.insert("started_at".into(), s(&run.started_at));
        item.insert("lease_until".into(), n(run.lease_until));
        item.insert("details".into(), s(run.details.to_string()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        Ok(())
    }

    async fn open_runs(&self) -> Result<Vec<DeletionRun>, CatalogError> {
        self.partition(s(RUN_PK))
            .await?
            .iter()
            .map(|item| {
                let run = get_s(item, "sk", "deletion run")?;
                Ok(DeletionRun {
                    kind: get_s(item, "kind", &run)?,
                    started_at: get_s(item, "started_at", &run)?,
                    lease_until: get_n(item, "lease_until", &run)?,
                    details: serde_json::from_str(&get_s(item, "details", &run)?).unwrap_or_default(),
                    run,
                })
            })
            .collect()
    }

    async fn run_deletions(&self, run: &str) -> Result<Vec<DeletionRecord>, CatalogError> {
        self.partition(deleted_pk(run))
            .await?
            .iter()
            .map(|item| {
                let what = format!("deleted#{run}");
                let json = get_s(item, "record", &what)?;
                serde_json::from_str(&json)
                    .ok()
                    .as_ref()
                    .and_then(DeletionRecord::from_json)
                    .ok_or(CatalogError::Malformed { item: what, detail: "record is not a deletion record".into() })
            })
            .collect()
    }

    async fn close_run(&self, run: &str) -> Result<(), CatalogError> {
        for item in self.partition(deleted_pk(run)).await? {
            let sk = get_s(&item, "sk", "deletion record")?;
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(deleted_pk(run), &sk)))
                .send()
                .await
                .map_err(|e| map_error(e, &self.table))?;
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(s(RUN_PK), run)))
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        Ok(())
    }

    async fn set_hold(&self, id: &RecordingId, change: &HoldChange) -> Result<HoldChanged, CatalogError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(recording_pk(id), RECORDING_SK)))
            // `hold` is a DynamoDB reserved word.
            .expression_attribute_names("#hold", "hold")
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        let req = match change {
            HoldChange::Set(h) => req
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(deleting)")
                .update_expression("SET #hold = :h")
                .expression_attribute_values(":h", hold_item(h)),
            // Only the hold that was read: one set or released meanwhile stays.
            HoldChange::Release { held, release } => req
                .condition_expression("attribute_not_exists(deleting) AND #hold.#at = :at AND #hold.#by = :by")
                .expression_attribute_names("#at", "at")
                .expression_attribute_names("#by", "by")
                .expression_attribute_values(":at", s(&held.at))
                .expression_attribute_values(":by", s(&held.by))
                .update_expression("SET released_hold = :held, hold_release = :release REMOVE #hold")
                .expression_attribute_values(":held", hold_item(held))
                .expression_attribute_values(":release", hold_item(release)),
        };
        match req.send().await {
            Ok(out) => match out.attributes {
                Some(item) => Ok(HoldChanged::Changed(Box::new(RecordingEntry::from_item(&item)?))),
                None => Err(CatalogError::Unavailable { detail: "the update returned no row".into() }),
            },
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                Ok(match self.recording(id).await? {
                    None => HoldChanged::NotFound,
                    Some(row) if row.deleting.is_some() => HoldChanged::Deleting(Box::new(row)),
                    Some(row) => HoldChanged::NotHeld(Box::new(row)),
                })
            }
            Err(e) => Err(map_error(e, &self.table)),
        }
    }
}
