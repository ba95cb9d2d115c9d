//! [`RecordingCatalog`] in DynamoDB: a recording's row, its claim, and the
//! transactions that write, move and end them with the keys' usage.
use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::item::{get_n, get_opt_s, n, recording_pk, s, tags_due_key, usage_sk, Item, CLAIM_SK, KEY_PK, RECORDING_SK};
use super::{build_error, map_error, DynamoCatalog, Transacted};
use crate::ports::catalog::{random_usage_shard, CatalogError, Claim, Moved, Recorded, RecordingCatalog};
use crate::recording::{RecordingEntry, RecordingId};

impl RecordingCatalog for DynamoCatalog {
    async fn recording(&self, id: &RecordingId) -> Result<Option<RecordingEntry>, CatalogError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(recording_pk(id), RECORDING_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        out.item.as_ref().map(RecordingEntry::from_item).transpose()
    }

    async fn claim(
        &self,
        id: &RecordingId,
        source_etag: &str,
        request_id: &str,
        now: u64,
        lease_secs: u64,
    ) -> Result<Claim, CatalogError> {
        let mut token = [0u8; 16];
        aws_lc_rs::rand::fill(&mut token).map_err(|_| CatalogError::Refused { detail: "no randomness".into() })?;
        let token = hex::encode(token);
        let mut item = Self::key(recording_pk(id), CLAIM_SK);
        item.insert("token".into(), s(&token));
        item.insert("source_etag".into(), s(source_etag));
        item.insert("until".into(), n(now + lease_secs));
        item.insert("request_id".into(), s(request_id));
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #until < :now OR request_id = :rid")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":rid", s(request_id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(_) => Ok(Claim::Acquired { token }),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                let old = match se.err() {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                        c.item.clone().unwrap_or_default()
                    }
                    _ => Item::new(),
                };
                Ok(Claim::HeldElsewhere {
                    source_etag: get_opt_s(&old, "source_etag").unwrap_or_default(),
                    until: get_n(&old, "until", "claim").unwrap_or(0),
                })
            }
            Err(e) => Err(map_error(e, &self.table)),
        }
    }

    async fn release(&self, id: &RecordingId, token: &str) -> Result<(), CatalogError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(recording_pk(id), CLAIM_SK)))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => Ok(()),
            Err(e) => Err(map_error(e, &self.table)),
        }
    }

    async fn record(&self, entry: &RecordingEntry, token: &str, now: &str) -> Result<Recorded, CatalogError> {
        let mut items = vec![TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(entry.to_item()))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(build_error)?,
            )
            .build()];
        for arn in entry.counted_keys() {
            items.push(
                TransactWriteItem::builder()
                    .update(self.count_usage(arn, &entry.id.recording_type, 1, entry.plaintext_size, now)?)
                    .build(),
            );
        }
        items.push(self.end_claim(&entry.id, token)?);
        match self.transact(items).await? {
            Transacted::Committed => Ok(Recorded::New),
            // The row exists already.
            Transacted::ConditionFailed(0) => match self.recording(&entry.id).await? {
                Some(existing) => Ok(Recorded::AlreadyCatalogued(Box::new(existing))),
                None => Err(CatalogError::Unavailable { detail: "the recording vanished mid-transaction".into() }),
            },
            // The claim's end, the only other item with a condition.
            Transacted::ConditionFailed(_) => Err(CatalogError::ClaimLost { id: entry.id.to_string() }),
        }
    }

    async fn move_recording(
        &self,
        from: &RecordingEntry,
        to: &RecordingEntry,
        token: &str,
        now: &str,
    ) -> Result<Moved, CatalogError> {
        let mut items = vec![TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(to.to_item()))
                    // `hold` is a DynamoDB reserved word: always `#hold`.
                    // A hold set or released meanwhile is not overwritten.
                    .condition_expression(format!(
                        "message_id = :from AND attribute_not_exists(moved_to) AND attribute_not_exists(deleting) AND {}",
                        match &from.hold {
                            Some(_) => "#hold.#at = :hold_at",
                            None => "attribute_not_exists(#hold)",
                        }
                    ))
                    .set_expression_attribute_names(Some({
                        let mut names = HashMap::from([("#hold".to_string(), "hold".to_string())]);
                        if from.hold.is_some() {
                            names.insert("#at".to_string(), "at".to_string());
                        }
                        names
                    }))
                    .set_expression_attribute_values(Some({
                        let mut values = HashMap::from([(":from".to_string(), s(&from.message_id))]);
                        if let Some(h) = &from.hold {
                            values.insert(":hold_at".to_string(), s(&h.at));
                        }
                        values
                    }))
                    .build()
                    .map_err(build_error)?,
            )
            .build()];
        let (was, will) = (from.counted_keys(), to.counted_keys());
        for arn in was.iter().filter(|k| !will.contains(k)) {
            items.push(TransactWriteItem::builder().update(self.uncount_usage(arn, from.plaintext_size)?).build());
        }
        for arn in will.iter().filter(|k| !was.contains(k)) {
            items.push(
                TransactWriteItem::builder()
                    .update(self.count_usage(arn, &to.id.recording_type, 1, to.plaintext_size, now)?)
                    .build(),
            );
        }
        items.push(self.end_claim(&from.id, token)?);
        match self.transact(items).await? {
            Transacted::Committed => Ok(Moved::Moved),
            // The row is no longer the one the move read.
            Transacted::ConditionFailed(0) => Ok(Moved::RowChanged(self.recording(&from.id).await?.map(Box::new))),
            // The claim's end, the only other item with a condition.
            Transacted::ConditionFailed(_) => Err(CatalogError::ClaimLost { id: from.id.to_string() }),
        }
    }

    async fn tags_confirmed(&self, id: &RecordingId, message_id: &str) -> Result<(), CatalogError> {
        let condition = "message_id = :v AND (attribute_exists(tags_due) OR attribute_exists(tags_due_from))";
        self.remove_mark(id, "REMOVE tags_due, tags_due_from", condition, s(message_id)).await
    }

    async fn tags_swept(&self, id: &RecordingId, message_id: &str, since: &str) -> Result<(), CatalogError> {
        // Only `tags_due` is named (the sweep's role may touch no other
        // attribute); an empty `tags_due_from` left behind reads as no mark.
        self.remove_mark(id, "REMOVE tags_due", "tags_due = :v", s(tags_due_key(since, message_id))).await
    }
}

impl DynamoCatalog {
    /// Removes (`update`) a recording row's mark while `condition` (on the
    /// value `:v`) holds; when it does not (another message's row, no mark,
    /// no row) there is nothing of the caller's to clear: `Ok`.
    async fn remove_mark(
        &self,
        id: &RecordingId,
        update: &str,
        condition: &str,
        value: AttributeValue,
    ) -> Result<(), CatalogError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(recording_pk(id), RECORDING_SK)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":v", value)
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => Ok(()),
            Err(e) => Err(map_error(e, &self.table)),
        }
    }
}

impl DynamoCatalog {
    /// The end of a recording's claim, in a transaction: only while it is
    /// `token`'s.
    pub(super) fn end_claim(&self, id: &RecordingId, token: &str) -> Result<TransactWriteItem, CatalogError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(recording_pk(id), CLAIM_SK)))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(token))
            .build()
            .map_err(|e| CatalogError::Refused { detail: e.to_string() })?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Counts `recordings` recordings of `bytes` in a random shard of the
    /// key's usage.
    pub(super) fn count_usage(
        &self,
        arn: &str,
        recording_type: &str,
        recordings: u64,
        bytes: u64,
        now: &str,
    ) -> Result<Update, CatalogError> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(s(KEY_PK), &usage_sk(arn, random_usage_shard()))))
            .update_expression(
                "ADD recordings :count, #bytes :bytes, recording_types :types \
                 SET key_arn = :arn, first_used = if_not_exists(first_used, :now), last_used = :now",
            )
            .expression_attribute_names("#bytes", "bytes")
            .expression_attribute_values(":types", AttributeValue::Ss(vec![recording_type.to_string()]))
            .expression_attribute_values(":count", n(recordings))
            .expression_attribute_values(":bytes", n(bytes))
            .expression_attribute_values(":arn", s(arn))
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(|e| CatalogError::Refused { detail: e.to_string() })
    }

    /// Takes one recording of `bytes` off the key's usage, in a random
    /// shard (a shard may go below zero; the sum is what counts).
    pub(super) fn uncount_usage(&self, arn: &str, bytes: u64) -> Result<Update, CatalogError> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(s(KEY_PK), &usage_sk(arn, random_usage_shard()))))
            .update_expression("ADD recordings :minus, #bytes :bytes SET key_arn = :arn")
            .expression_attribute_names("#bytes", "bytes")
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .expression_attribute_values(":bytes", AttributeValue::N(format!("-{bytes}")))
            .expression_attribute_values(":arn", s(arn))
            .build()
            .map_err(|e| CatalogError::Refused { detail: e.to_string() })
    }
}
