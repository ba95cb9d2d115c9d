//! The catalog (DynamoDB): one item per recording, one per wrapping key, and a
//! short-lived claim per recording being encrypted.
//!
//! One table, partition key `pk` and sort key `sk` (both strings):
//! - a recording: `pk = "recording#<type>/<id>"`, `sk = "recording"`;
//! - its claim while a function encrypts it: same `pk`, `sk = "claim"`;
//! - a key's usage: `pk = "key"`, `sk = <key ARN>`, so that every key the
//!   catalog knows is one Query away ("what breaks if this key goes");
//! - an event already handled: `pk = "event#<source>/<id>"`, `sk = "event"`,
//!   with `expires_at` (Unix seconds, the table's TTL attribute), so that a
//!   duplicate delivery is recognised.
//!
//! A recording is written once, in one transaction with the usage of every
//! key that wraps it, so duplicate events can neither write it twice nor
//! count it twice.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

/// The DynamoDB API calls this module makes, as IAM actions. IAM has no
/// TransactWriteItems action: a transaction is authorised by its items'
/// actions (Put, Update and Delete here).
pub const AWS_CALLS: &[&str] =
    &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"];

const EVENT_SK: &str = "event";

const RECORDING_SK: &str = "recording";
const CLAIM_SK: &str = "claim";
const KEY_PK: &str = "key";

/// A recording's identity: its type and its id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordingId {
    pub recording_type: String,
    pub recording_id: String,
}

impl std::fmt::Display for RecordingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.recording_type, self.recording_id)
    }
}

impl RecordingId {
    fn pk(&self) -> AttributeValue {
        AttributeValue::S(format!("recording#{self}"))
    }
}

/// What the catalog holds about one encrypted recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingEntry {
    pub id: RecordingId,
    /// Key of the vault object (bucket is configuration).
    pub vault_key: String,
    /// Version of the vault object, when the vault bucket is versioned.
    pub vault_version: Option<String>,
    /// Every key that wraps the data key, primary first.
    pub wrapping_keys: Vec<String>,
    /// Keyring of the primary key (`aws-kms` or `aws-kms-rsa`).
    pub provider: String,
    /// The message id, hex.
    pub message_id: String,
    pub frame_length: u32,
    pub plaintext_size: u64,
    pub ciphertext_size: u64,
    /// The vault object's S3 SHA-256 checksum, as S3 reports it.
    pub checksum_sha256: String,
    pub content_type: String,
    /// RFC 3339, UTC.
    pub encrypted_at: String,
    /// ETag of the ingest object that was encrypted.
    pub source_etag: String,
    pub source_version: Option<String>,
}

/// What the catalog knows about one key: how much it protects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUsage {
    pub key_arn: String,
    pub recordings: u64,
    pub bytes: u64,
    /// RFC 3339, UTC: when its oldest and its newest recording were encrypted.
    pub first_used: String,
    pub last_used: String,
    /// The recording types it protects, sorted.
    pub recording_types: Vec<String>,
}

/// The outcome of [`Catalog::claim`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This caller may encrypt the recording; pass the token on.
    Acquired { token: String },
    /// Another invocation holds an unexpired claim.
    HeldElsewhere { source_etag: String, until: u64 },
}

/// The outcome of [`Catalog::record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Written, with the usage of every wrapping key.
    New,
    /// The recording was already in the catalog; nothing was written.
    AlreadyCatalogued(Box<RecordingEntry>),
}

/// The outcome of [`Catalog::claim_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventClaim {
    /// Handle it; `recorded` is what a failed earlier attempt recorded.
    First { recorded: Option<String> },
    /// Another invocation is handling it now.
    InProgress,
    /// It was handled.
    Done,
}

/// Why a catalog call failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogError {
    #[error("the catalog table {table} does not exist: check CATALOG_TABLE")]
    TableMissing { table: String },
    #[error("access to the catalog table {table} was denied ({detail}): the function's role must allow it")]
    AccessDenied { table: String, detail: String },
    #[error("the catalog is unavailable ({detail}); retry later")]
    Unavailable { detail: String },
    #[error("the claim on {id} was lost to another invocation while encrypting; retry")]
    ClaimLost { id: String },
    #[error("the catalog refused the request: {detail}")]
    Refused { detail: String },
    #[error("the catalog item {item} is malformed: {detail}")]
    Malformed { item: String, detail: String },
}

impl CatalogError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TableMissing { .. } => "catalog_missing",
            Self::AccessDenied { .. } => "access_denied",
            Self::Unavailable { .. } => "catalog_unavailable",
            Self::ClaimLost { .. } => "claim_lost",
            Self::Refused { .. } => "catalog_refused",
            Self::Malformed { .. } => "catalog_malformed",
        }
    }

    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::ClaimLost { .. })
    }
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

fn get_n(item: &Item, name: &str, what: &str) -> Result<u64, CatalogError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| CatalogError::Malformed { item: what.into(), detail: format!("{name} is not a count: {v}") }),
        _ => Err(CatalogError::Malformed { item: what.into(), detail: format!("no number attribute {name}") }),
    }
}

impl RecordingEntry {
    fn to_item(&self) -> Item {
        let mut item = Item::new();
        item.insert("pk".into(), self.id.pk());
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
        item
    }

    fn from_item(item: &Item) -> Result<Self, CatalogError> {
        let what = get_opt_s(item, "pk").unwrap_or_else(|| "recording".into());
        let keys = match item.get("wrapping_keys") {
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| match v {
                    AttributeValue::S(s) => Ok(s.clone()),
                    _ => Err(CatalogError::Malformed {
                        item: what.clone(),
                        detail: "a wrapping key is not a string".into(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(CatalogError::Malformed { item: what, detail: "no wrapping_keys list".into() }),
        };
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
        })
    }
}

impl KeyUsage {
    fn from_item(item: &Item) -> Result<Self, CatalogError> {
        let what = get_opt_s(item, "sk").unwrap_or_else(|| "key".into());
        Ok(Self {
            key_arn: get_s(item, "sk", &what)?,
            recordings: get_n(item, "recordings", &what)?,
            bytes: get_n(item, "bytes", &what)?,
            first_used: get_s(item, "first_used", &what)?,
            last_used: get_s(item, "last_used", &what)?,
            recording_types: match item.get("recording_types") {
                Some(AttributeValue::Ss(types)) => {
                    let mut types = types.clone();
                    types.sort();
                    types
                }
                _ => Vec::new(),
            },
        })
    }
}

/// The catalog in DynamoDB.
#[derive(Clone)]
pub struct Catalog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Catalog {
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

    /// The recording's entry, if it has been catalogued (strongly consistent).
    pub async fn recording(&self, id: &RecordingId) -> Result<Option<RecordingEntry>, CatalogError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id.pk(), RECORDING_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        out.item.as_ref().map(RecordingEntry::from_item).transpose()
    }

    /// Claims the recording for `lease_secs` seconds from `now` (Unix
    /// seconds), unless another invocation holds an unexpired claim. A claim
    /// made under the same `request_id` is taken over (Lambda retries an
    /// event under its request id, so this is a retry of a holder that
    /// died); any other expires.
    pub async fn claim(
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
        let mut item = Self::key(id.pk(), CLAIM_SK);
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

    /// Gives a claim up (after a failure), if it is still ours.
    pub async fn release(&self, id: &RecordingId, token: &str) -> Result<(), CatalogError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id.pk(), CLAIM_SK)))
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

    /// In one transaction: writes the recording (unless it exists), adds it
    /// to the usage of each of its wrapping keys, and ends the claim `token`.
    pub async fn record(&self, entry: &RecordingEntry, token: &str, now: &str) -> Result<Recorded, CatalogError> {
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
        for arn in &entry.wrapping_keys {
            items.push(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(Self::key(s(KEY_PK), arn)))
                            .update_expression(
                                "ADD recordings :one, #bytes :bytes, recording_types :types \
                                 SET first_used = if_not_exists(first_used, :now), last_used = :now",
                            )
                            .expression_attribute_names("#bytes", "bytes")
                            .expression_attribute_values(
                                ":types",
                                AttributeValue::Ss(vec![entry.id.recording_type.clone()]),
                            )
                            .expression_attribute_values(":one", n(1))
                            .expression_attribute_values(":bytes", n(entry.plaintext_size))
                            .expression_attribute_values(":now", s(now))
                            .build()
                            .map_err(build)?,
                    )
                    .build(),
            );
        }
        items.push(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(Self::key(entry.id.pk(), CLAIM_SK)))
                        .condition_expression("#token = :token")
                        .expression_attribute_names("#token", "token")
                        .expression_attribute_values(":token", s(token))
                        .build()
                        .map_err(build)?,
                )
                .build(),
        );
        let out = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let err = match out {
            Ok(_) => return Ok(Recorded::New),
            Err(e) => e,
        };
        if let SdkError::ServiceError(se) = &err {
            if let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) =
                se.err()
            {
                let reasons: Vec<&str> =
                    c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
                if reasons.first() == Some(&"ConditionalCheckFailed") {
                    return match self.recording(&entry.id).await? {
                        Some(existing) => Ok(Recorded::AlreadyCatalogued(Box::new(existing))),
                        None => Err(CatalogError::Unavailable { detail: "the recording vanished mid-transaction".into() }),
                    };
                }
                if reasons.last() == Some(&"ConditionalCheckFailed") {
                    return Err(CatalogError::ClaimLost { id: entry.id.to_string() });
                }
                if reasons.iter().any(|r| *r == "TransactionConflict" || r.contains("Throughput") || *r == "ThrottlingError") {
                    return Err(CatalogError::Unavailable { detail: format!("transaction cancelled: {reasons:?}") });
                }
                return Err(CatalogError::Refused { detail: format!("transaction cancelled: {reasons:?}") });
            }
        }
        Err(map_error(err, &self.table))
    }

    /// The usage of one key, if the catalog knows it.
    pub async fn key_usage(&self, key_arn: &str) -> Result<Option<KeyUsage>, CatalogError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(s(KEY_PK), key_arn)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_error(e, &self.table))?;
        out.item.as_ref().map(KeyUsage::from_item).transpose()
    }

    fn event_key(source: &str, id: &str) -> Item {
        Self::key(s(format!("event#{source}/{id}")), EVENT_SK)
    }

    /// Claims the event `source`/`id` for `lease_secs` from `now` (Unix
    /// seconds), so that a duplicate delivery is recognised: the first
    /// delivery, or a retry after a holder's lease expired, gets
    /// [`EventClaim::First`] (with what an earlier attempt recorded); a
    /// delivery while another holds it, `InProgress`; after it was handled,
    /// `Done`. The item expires (DynamoDB TTL `expires_at`) at `expires_at`.
    pub async fn claim_event(
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

    /// Marks the event handled: later deliveries are `Done`.
    pub async fn event_done(&self, source: &str, id: &str) -> Result<(), CatalogError> {
        self.update_event(source, id, "SET #status = :done REMOVE lease_until", &[(":done", s("done"))]).await
    }

    /// Releases the claim of an attempt that failed, so that its retry is
    /// `First` at once, keeping `recorded` (what the attempt already did,
    /// for the retry to report rather than redo).
    pub async fn release_event(&self, source: &str, id: &str, recorded: Option<&str>) -> Result<(), CatalogError> {
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

    /// Every key the catalog knows, with its usage.
    pub async fn key_usages(&self) -> Result<Vec<KeyUsage>, CatalogError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(KEY_PK))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| map_error(e, &self.table))?;
            for item in out.items() {
                keys.push(KeyUsage::from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(keys);
            }
        }
    }
}
