//! The catalog in DynamoDB: the adapter of the catalog ports
//! ([`RecordingCatalog`], [`KeyUsageCatalog`], [`EventClaims`],
//! [`DenialCounters`]), one table
//! laid out as `crate::ports::catalog` describes.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use crate::ports::catalog::{
    random_usage_shard, BrowseQuery, CatalogError, Claim, DeletionRecord, DeletionRun, DenialCounters, DenialWindow,
    EventClaim, EventClaims, HoldChange, HoldChanged, KeyUsage, KeyUsageCatalog, Marked, Moved, Recorded,
    RecordingBrowser, RecordingCatalog, RecordingListing, RetentionCatalog,
};
use crate::recording::{Deleting, LegalHold, MovedTo, RecordingEntry, RecordingId, ReleasedHold};

/// The DynamoDB API calls this module makes, as IAM actions. IAM has no
/// TransactWriteItems action: a transaction is authorised by its items'
/// actions (Put, Update and Delete here).
pub const AWS_CALLS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:ConditionCheckItem",
];

const EVENT_SK: &str = "event";

const RECORDING_SK: &str = "recording";
const CLAIM_SK: &str = "claim";
const KEY_PK: &str = "key";
/// Denied-call windows: one partition, sorted by when each window opened,
/// so the flush finds the closed ones with one Query.
const DENIED_PK: &str = "denied";
/// The catalog's sparse index of the rows that have a `retain_until`:
/// partition `recording_type`, sort `retain_until` (template.yaml).
pub const RETENTION_INDEX: &str = "retention";
/// The catalog's index of recordings by type and date: partition
/// `recording_type`, sort `encrypted_at` (template.yaml), for the player's list.
pub const BY_DATE_INDEX: &str = "by-date";
const RUN_PK: &str = "deletion-run";
const RETENTION_PK: &str = "retention";
const POLICY_SK: &str = "policy";

fn deleted_pk(run: &str) -> AttributeValue {
    AttributeValue::S(format!("deleted#{run}"))
}

fn map_error<E, R>(err: SdkError<E, R>, table: &str) -> CatalogError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let table = table.to_string();
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let detail = format!("{}: {}", e.code().unwrap_or("unknown"), e.message().unwrap_or(""));
            match e.code().unwrap_or_default() {
                "ResourceNotFoundException" => CatalogError::TableMissing { table },
                "AccessDeniedException" | "UnrecognizedClientException" => CatalogError::AccessDenied { table, detail },
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionInProgressException" => CatalogError::Unavailable { detail },
                // A single-item call on an item a transaction is writing.
                "TransactionConflictException" => CatalogError::Conflict { detail },
                _ => CatalogError::Refused { detail },
            }
        }
        _ => CatalogError::Unavailable { detail: format!("{err}") },
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

type Item = HashMap<String, AttributeValue>;

fn get_s(item: &Item, name: &str, what: &str) -> Result<String, CatalogError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(CatalogError::Malformed { item: what.into(), detail: format!("no string attribute {name}") }),
    }
}

fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// A list of strings (`L` of `S`).
fn get_strings(item: &Item, name: &str, what: &str) -> Result<Vec<String>, CatalogError> {
    let malformed = |detail: String| CatalogError::Malformed { item: what.into(), detail };
    match item.get(name) {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::S(s) => Ok(s.clone()),
                _ => Err(malformed(format!("an element of {name} is not a string"))),
            })
            .collect(),
        _ => Err(malformed(format!("no {name} list"))),
    }
}

fn get_n(item: &Item, name: &str, what: &str) -> Result<u64, CatalogError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| CatalogError::Malformed { item: what.into(), detail: format!("{name} is not a count: {v}") }),
        _ => Err(CatalogError::Malformed { item: what.into(), detail: format!("no number attribute {name}") }),
    }
}

fn recording_pk(id: &RecordingId) -> AttributeValue {
    AttributeValue::S(format!("recording#{id}"))
}

impl RecordingEntry {
    fn to_item(&self) -> Item {
        let mut item = Item::new();
        item.insert("pk".into(), recording_pk(&self.id));
        item.insert("sk".into(), s(RECORDING_SK));
        item.insert("recording_type".into(), s(&self.id.recording_type));
        item.insert("recording_id".into(), s(&self.id.recording_id));
        item.insert("vault_key".into(), s(&self.vault_key));
        if let Some(v) = &self.vault_version {
            item.insert("vault_version".into(), s(v));
        }
        item.insert("wrapping_keys".into(), AttributeValue::L(self.wrapping_keys.iter().map(s).collect()));
        item.insert("provider".into(), s(&self.provider));
        item.insert("message_id".into(), s(&self.message_id));
        item.insert("frame_length".into(), n(u64::from(self.frame_length)));
        item.insert("plaintext_size".into(), n(self.plaintext_size));
        item.insert("ciphertext_size".into(), n(self.ciphertext_size));
        item.insert("checksum_sha256".into(), s(&self.checksum_sha256));
        item.insert("content_type".into(), s(&self.content_type));
        item.insert("encrypted_at".into(), s(&self.encrypted_at));
        item.insert("source_etag".into(), s(&self.source_etag));
        if let Some(v) = &self.source_version {
            item.insert("source_version".into(), s(v));
        }
        if let Some(v) = &self.rekeyed_at {
            item.insert("rekeyed_at".into(), s(v));
        }
        if let Some(v) = &self.retain_until {
            item.insert("retain_until".into(), s(v));
        }
        if let Some(d) = self.retention_days {
            item.insert("retention_days".into(), n(u64::from(d)));
        }
        if let Some(h) = &self.hold {
            item.insert("hold".into(), hold_item(h));
        }
        if let Some(r) = &self.released_hold {
            item.insert("released_hold".into(), hold_item(&r.hold));
            item.insert("hold_release".into(), hold_item(&r.release));
        }
        if let Some(d) = &self.deleting {
            item.insert("deleting".into(), deleting_item(d));
        }
        if let Some(m) = &self.moved_to {
            item.insert(
                "moved_to".into(),
                AttributeValue::M(HashMap::from([
                    ("region".to_string(), s(&m.region)),
                    ("vault_bucket".to_string(), s(&m.vault_bucket)),
                    ("catalog_table".to_string(), s(&m.catalog_table)),
                    ("moved_at".to_string(), s(&m.moved_at)),
                ])),
            );
        }
        item
    }

    fn from_item(item: &Item) -> Result<Self, CatalogError> {
        let what = get_opt_s(item, "pk").unwrap_or_else(|| "recording".into());
        let keys = get_strings(item, "wrapping_keys", &what)?;
        Ok(Self {
            id: RecordingId {
                recording_type: get_s(item, "recording_type", &what)?,
                recording_id: get_s(item, "recording_id", &what)?,
            },
            vault_key: get_s(item, "vault_key", &what)?,
            vault_version: get_opt_s(item, "vault_version"),
            wrapping_keys: keys,
            provider: get_s(item, "provider", &what)?,
            message_id: get_s(item, "message_id", &what)?,
            frame_length: u32::try_from(get_n(item, "frame_length", &what)?)
                .map_err(|_| CatalogError::Malformed { item: what.clone(), detail: "frame_length too large".into() })?,
            plaintext_size: get_n(item, "plaintext_size", &what)?,
            ciphertext_size: get_n(item, "ciphertext_size", &what)?,
            checksum_sha256: get_s(item, "checksum_sha256", &what)?,
            content_type: get_s(item, "content_type", &what)?,
            encrypted_at: get_s(item, "encrypted_at", &what)?,
            source_etag: get_s(item, "source_etag", &what)?,
            source_version: get_opt_s(item, "source_version"),
            rekeyed_at: get_opt_s(item, "rekeyed_at"),
            moved_to: match item.get("moved_to") {
                Some(AttributeValue::M(m)) => Some(MovedTo {
                    region: get_s(m, "region", &what)?,
                    vault_bucket: get_s(m, "vault_bucket", &what)?,
                    catalog_table: get_s(m, "catalog_table", &what)?,
                    moved_at: get_s(m, "moved_at", &what)?,
                }),
                Some(_) => {
                    return Err(CatalogError::Malformed { item: what, detail: "moved_to is not a map".into() });
                }
                None => None,
            },
            retain_until: get_opt_s(item, "retain_until"),
            retention_days: match item.get("retention_days") {
                Some(_) => Some(u32::try_from(get_n(item, "retention_days", &what)?).map_err(|_| {
                    CatalogError::Malformed { item: what.clone(), detail: "retention_days too large".into() }
                })?),
                None => None,
            },
            hold: hold_of(item, "hold", &what)?,
            released_hold: match (hold_of(item, "released_hold", &what)?, hold_of(item, "hold_release", &what)?) {
                (Some(hold), Some(release)) => Some(ReleasedHold { hold, release }),
                _ => None,
            },
            deleting: match item.get("deleting") {
                Some(AttributeValue::M(m)) => Some(Deleting {
                    run: get_s(m, "run", &what)?,
                    reason: get_s(m, "reason", &what)?,
                    started_at: get_s(m, "started_at", &what)?,
                    versions: get_strings(m, "versions", &what)?,
                }),
                Some(_) => return Err(CatalogError::Malformed { item: what, detail: "deleting is not a map".into() }),
                None => None,
            },
        })
    }
}

fn hold_of(item: &Item, name: &str, what: &str) -> Result<Option<LegalHold>, CatalogError> {
    match item.get(name) {
        Some(AttributeValue::M(m)) => Ok(Some(LegalHold {
            by: get_s(m, "by", what)?,
            reason: get_s(m, "reason", what)?,
            at: get_s(m, "at", what)?,
        })),
        Some(_) => Err(CatalogError::Malformed { item: what.into(), detail: format!("{name} is not a map") }),
        None => Ok(None),
    }
}

fn hold_item(h: &LegalHold) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("by".to_string(), s(&h.by)),
        ("reason".to_string(), s(&h.reason)),
        ("at".to_string(), s(&h.at)),
    ]))
}

fn deleting_item(d: &Deleting) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("run".to_string(), s(&d.run)),
        ("reason".to_string(), s(&d.reason)),
        ("started_at".to_string(), s(&d.started_at)),
        ("versions".to_string(), AttributeValue::L(d.versions.iter().map(s).collect())),
    ]))
}

/// One usage item: a shard's counts (signed: a move may take a recording
/// off another shard than the one that counted it in).
struct UsageShard {
    key_arn: String,
    recordings: i64,
    bytes: i64,
    first_used: Option<String>,
    last_used: Option<String>,
    recording_types: Vec<String>,
}

fn get_i(item: &Item, name: &str, what: &str) -> Result<i64, CatalogError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| CatalogError::Malformed { item: what.into(), detail: format!("{name} is not a count: {v}") }),
        None => Ok(0),
        _ => Err(CatalogError::Malformed { item: what.into(), detail: format!("{name} is not a number") }),
    }
}

impl UsageShard {
    fn from_item(item: &Item) -> Result<Self, CatalogError> {
        let sk = get_s(item, "sk", "key")?;
        // `<ARN>#<shard>`, or the bare ARN of an item written before shards.
        let key_arn = get_opt_s(item, "key_arn")
            .unwrap_or_else(|| sk.rsplit_once('#').map(|(arn, _)| arn.to_string()).unwrap_or(sk.clone()));
        Ok(Self {
            recordings: get_i(item, "recordings", &sk)?,
            bytes: get_i(item, "bytes", &sk)?,
            first_used: get_opt_s(item, "first_used"),
            last_used: get_opt_s(item, "last_used"),
            recording_types: match item.get("recording_types") {
                Some(AttributeValue::Ss(types)) => types.clone(),
                _ => Vec::new(),
            },
            key_arn,
        })
    }
}

/// Sums the shards of each key, keys in ARN order.
fn sum_shards(shards: Vec<UsageShard>) -> Vec<KeyUsage> {
    let mut keys: std::collections::BTreeMap<String, UsageShard> = Default::default();
    for shard in shards {
        match keys.get_mut(&shard.key_arn) {
            None => {
                keys.insert(shard.key_arn.clone(), shard);
            }
            Some(sum) => {
                sum.recordings += shard.recordings;
                sum.bytes += shard.bytes;
                sum.first_used = [sum.first_used.take(), shard.first_used].into_iter().flatten().min();
                sum.last_used = [sum.last_used.take(), shard.last_used].into_iter().flatten().max();
                sum.recording_types.extend(shard.recording_types);
            }
        }
    }
    keys.into_values()
        .map(|sum| {
            let mut types = sum.recording_types;
            types.sort();
            types.dedup();
            KeyUsage {
                key_arn: sum.key_arn,
                recordings: sum.recordings.max(0) as u64,
                bytes: sum.bytes.max(0) as u64,
                first_used: sum.first_used.unwrap_or_default(),
                last_used: sum.last_used.unwrap_or_default(),
                recording_types: types,
            }
        })
        .collect()
}

fn usage_sk(key_arn: &str, shard: u8) -> String {
    format!("{key_arn}#{shard:02}")
}

/// The catalog in DynamoDB.
#[derive(Clone)]
pub struct DynamoCatalog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoCatalog {
    /// The catalog in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// A client from `config`.
    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(config), table)
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(pk: AttributeValue, sk: &str) -> Item {
        HashMap::from([("pk".to_string(), pk), ("sk".to_string(), s(sk))])
    }

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
        let build = |e: aws_sdk_dynamodb::error::BuildError| CatalogError::Refused { detail: e.to_string() };
        let mut items = vec![TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(entry.to_item()))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(build)?,
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
        let err = match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => return Ok(Recorded::New),
            Err(e) => e,
        };
        if let Some(reasons) = cancellation_reasons(&err) {
            let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
            if reasons.first() == Some(&"ConditionalCheckFailed") {
                return match self.recording(&entry.id).await? {
                    Some(existing) => Ok(Recorded::AlreadyCatalogued(Box::new(existing))),
                    None => Err(CatalogError::Unavailable { detail: "the recording vanished mid-transaction".into() }),
                };
            }
            if reasons.last() == Some(&"ConditionalCheckFailed") {
                return Err(CatalogError::ClaimLost { id: entry.id.to_string() });
            }
            return Err(cancelled(&reasons));
        }
        Err(map_error(err, &self.table))
    }

    async fn move_recording(
        &self,
        from: &RecordingEntry,
        to: &RecordingEntry,
        token: &str,
        now: &str,
    ) -> Result<Moved, CatalogError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| CatalogError::Refused { detail: e.to_string() };
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
                    .map_err(build)?,
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
        let err = match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => return Ok(Moved::Moved),
            Err(e) => e,
        };
        if let Some(reasons) = cancellation_reasons(&err) {
            let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
            if reasons.first() == Some(&"ConditionalCheckFailed") {
                return Ok(Moved::RowChanged(self.recording(&from.id).await?.map(Box::new)));
            }
            if reasons.last() == Some(&"ConditionalCheckFailed") {
                return Err(CatalogError::ClaimLost { id: from.id.to_string() });
            }
            return Err(cancelled(&reasons));
        }
        Err(map_error(err, &self.table))
    }
}

/// Why DynamoDB cancelled a transaction, item by item (`None`: the call
/// failed otherwise).
fn cancellation_reasons<R>(
    err: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<Vec<String>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err {
        SdkError::ServiceError(se) => match se.err() {
            TransactWriteItemsError::TransactionCanceledException(c) => {
                Some(c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_string()).collect())
            }
            _ => None,
        },
        _ => None,
    }
}

/// A cancelled transaction whose conditions held: a conflict, throttling,
/// or a refusal.
fn cancelled(reasons: &[&str]) -> CatalogError {
    let detail = format!("transaction cancelled: {reasons:?}");
    if reasons.contains(&"TransactionConflict") {
        CatalogError::Conflict { detail }
    } else if reasons.iter().any(|r| r.contains("Throughput") || *r == "ThrottlingError") {
        CatalogError::Unavailable { detail }
    } else {
        CatalogError::Refused { detail }
    }
}

impl DynamoCatalog {
    /// The end of a recording's claim, in a transaction: only while it is
    /// `token`'s.
    fn end_claim(&self, id: &RecordingId, token: &str) -> Result<TransactWriteItem, CatalogError> {
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
    fn count_usage(
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
    fn uncount_usage(&self, arn: &str, bytes: u64) -> Result<Update, CatalogError> {
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

    /// Every usage item whose sort key starts with `prefix` (all of them
    /// when empty), consistently read.
    async fn usage_items(&self, prefix: &str) -> Result<Vec<UsageShard>, CatalogError> {
        let mut shards = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(KEY_PK))
                .set_exclusive_start_key(start);
            query = if prefix.is_empty() {
                query.key_condition_expression("pk = :pk")
            } else {
                query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :arn)")
                    .expression_attribute_values(":arn", s(prefix))
            };
            let out = query.send().await.map_err(|e| map_error(e, &self.table))?;
            for item in out.items() {
                shards.push(UsageShard::from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(shards);
            }
        }
    }
}

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

impl KeyUsageCatalog for DynamoCatalog {
    async fn key_usage(&self, key_arn: &str) -> Result<Option<KeyUsage>, CatalogError> {
        // The key's own shards only: a longer ARN sharing the prefix is another key.
        let shards = self.usage_items(key_arn).await?.into_iter().filter(|u| u.key_arn == key_arn).collect();
        Ok(sum_shards(shards).pop())
    }

    async fn key_usages(&self) -> Result<Vec<KeyUsage>, CatalogError> {
        Ok(sum_shards(self.usage_items("").await?))
    }
}

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

/// A Query's LastEvaluatedKey as a cursor (JSON of its string attributes).
fn cursor_of(key: Option<&Item>) -> Option<String> {
    key.map(|k| {
        let map: HashMap<&str, &str> = k
            .iter()
            .filter_map(|(name, v)| match v {
                AttributeValue::S(s) => Some((name.as_str(), s.as_str())),
                _ => None,
            })
            .collect();
        serde_json::to_string(&map).unwrap_or_default()
    })
}

/// A Query's rows as recordings, and the cursor of the next page.
fn entries_page(items: &[Item], last: Option<&Item>) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
    let page = items.iter().map(RecordingEntry::from_item).collect::<Result<Vec<_>, _>>()?;
    Ok((page, cursor_of(last)))
}

fn start_key(cursor: Option<String>) -> Result<Option<Item>, CatalogError> {
    match cursor {
        None => Ok(None),
        Some(c) => {
            let map: HashMap<String, String> = serde_json::from_str(&c)
                .map_err(|e| CatalogError::Refused { detail: format!("not a cursor of this listing ({e})") })?;
            Ok(Some(map.into_iter().map(|(k, v)| (k, s(v))).collect()))
        }
    }
}

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
        let build = |e: aws_sdk_dynamodb::error::BuildError| CatalogError::Refused { detail: e.to_string() };
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
                        .map_err(build)?,
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
                        .map_err(build)?,
                )
                .build(),
        ];
        let err = match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => return Ok(Marked::Marked),
            Err(e) => e,
        };
        if let Some(reasons) = cancellation_reasons(&err) {
            let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
            if reasons.first() == Some(&"ConditionalCheckFailed") {
                let row = self.recording(&entry.id).await?;
                return Ok(match row {
                    Some(r)
                        if r.message_id == entry.message_id
                            && r.hold.is_some()
                            && r.deleting.is_none()
                            && r.retain_until == entry.retain_until =>
                    {
                        Marked::Held
                    }
                    other => Marked::RowChanged(other.map(Box::new)),
                });
            }
            if reasons.get(1) == Some(&"ConditionalCheckFailed") {
                return Ok(Marked::Claimed { until: self.claim_until(&entry.id).await? });
            }
            return Err(cancelled(&reasons));
        }
        Err(map_error(err, &self.table))
    }

    async fn finish_deletion(&self, entry: &RecordingEntry, record: &DeletionRecord) -> Result<bool, CatalogError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| CatalogError::Refused { detail: e.to_string() };
        let mut items = vec![TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(recording_pk(&entry.id), RECORDING_SK)))
                    .condition_expression("deleting.#run = :run")
                    .expression_attribute_names("#run", "run")
                    .expression_attribute_values(":run", s(&record.marked_by))
                    .build()
                    .map_err(build)?,
            )
            .build()];
        for arn in entry.counted_keys() {
            items.push(TransactWriteItem::builder().update(self.uncount_usage(arn, entry.plaintext_size)?).build());
        }
        let mut evidence = Self::key(deleted_pk(&record.run), &record.id.to_string());
        evidence.insert("record".into(), s(record.to_json().to_string()));
        items.push(
            TransactWriteItem::builder()
                .put(Put::builder().table_name(&self.table).set_item(Some(evidence)).build().map_err(build)?)
                .build(),
        );
        let err = match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => return Ok(true),
            Err(e) => e,
        };
        if let Some(reasons) = cancellation_reasons(&err) {
            let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
            if reasons.first() == Some(&"ConditionalCheckFailed") {
                return match self.recording(&entry.id).await? {
                    None => Ok(false),
                    Some(_) => Err(CatalogError::Refused {
                        detail: format!("{} is not being deleted by run {}", entry.id, record.marked_by),
                    }),
                };
            }
            return Err(cancelled(&reasons));
        }
        Err(map_error(err, &self.table))
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
