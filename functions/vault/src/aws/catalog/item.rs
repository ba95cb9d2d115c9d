//! The catalog's items: how a recording, a hold, a deletion and a key's
//! usage are written into DynamoDB attributes and read back, and the
//! table's layout.
//!
//! One table, partition key `pk` and sort key `sk` (both strings):
//! - a recording: `pk = "recording#<type>/<id>"`, `sk = "recording"`;
//! - its claim while a function encrypts or moves it: same `pk`,
//!   `sk = "claim"`;
//! - a key's usage: `pk = "key"`, `sk = "<key ARN>#<shard, 2 digits>"`,
//!   one counter per shard (`KEY_USAGE_SHARDS`) summed when read, so that
//!   every key the catalog knows is one Query away ("what breaks if this key
//!   goes") and concurrent transactions (a re-key job moving thousands of
//!   recordings off one key) rarely touch the same item. An item whose `sk`
//!   is the bare ARN (written before shards) is one more shard;
//! - an event already handled: `pk = "event#<source>/<id>"`, `sk = "event"`,
//!   with `expires_at` (Unix seconds, the table's TTL attribute), so that a
//!   duplicate delivery is recognised;
//! - a window of denied calls: `pk = "denied"`,
//!   `sk = "<window start, 12 digits>|<key ARN>|<call>|<principal>"`, with
//!   `count` and `expires_at`, so that the closed windows are one Query;
//! - a deletion run: `pk = "deletion-run"`, `sk = <run>`; a deletion's
//!   evidence: `pk = "deleted#<run>"`, `sk = "<type>/<id>"`; the retention
//!   policy the rows were last stamped with: `pk = "retention"`,
//!   `sk = "policy"`.
//!
//! Three global secondary indexes (template.yaml): [`RETENTION_INDEX`], sparse,
//! of the rows that have a `retain_until` (partition `recording_type`, sort
//! `retain_until`), so that the recordings due are one Query per type;
//! [`BY_DATE_INDEX`] (partition `recording_type`, sort `encrypted_at`), the
//! player's list; and [`TAGS_DUE_INDEX`], sparse, of the rows whose
//! version's `catalogued` tag is not yet confirmed (partition `tags_due`),
//! which the tag sweep reads whole with a Scan of the index alone.
//!
//! A recording is written once, in one transaction with the usage of every
//! key that wraps it, so duplicate events can neither write it twice nor
//! count it twice. A re-key replaces it in one transaction too, only while
//! it still names the message that was re-encrypted, moving its usage from
//! the old keys to the new.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::ports::catalog::CatalogError;
use crate::recording::{Deleting, LegalHold, MovedTo, RecordingEntry, RecordingId, ReleasedHold, TagsDue};

pub(super) const EVENT_SK: &str = "event";

pub(super) const RECORDING_SK: &str = "recording";
pub(super) const CLAIM_SK: &str = "claim";
pub(super) const KEY_PK: &str = "key";
/// Denied-call windows: one partition, sorted by when each window opened,
/// so the flush finds the closed ones with one Query.
pub(super) const DENIED_PK: &str = "denied";
/// The catalog's sparse index of the rows that have a `retain_until`:
/// partition `recording_type`, sort `retain_until` (template.yaml).
pub const RETENTION_INDEX: &str = "retention";
/// The catalog's index of recordings by type and date: partition
/// `recording_type`, sort `encrypted_at` (template.yaml), for the player's list.
pub const BY_DATE_INDEX: &str = "by-date";
/// The catalog's sparse index of the rows whose version's tags are not yet
/// confirmed: partition `tags_due` (when the catalog named the version),
/// present only on those rows (template.yaml), for the tag sweep.
pub const TAGS_DUE_INDEX: &str = "tags-due";
pub(super) const RUN_PK: &str = "deletion-run";
pub(super) const RETENTION_PK: &str = "retention";
pub(super) const POLICY_SK: &str = "policy";

pub(super) fn deleted_pk(run: &str) -> AttributeValue {
    AttributeValue::S(format!("deleted#{run}"))
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn get_s(item: &Item, name: &str, what: &str) -> Result<String, CatalogError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(CatalogError::Malformed { item: what.into(), detail: format!("no string attribute {name}") }),
    }
}

pub(super) fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// A list of strings (`L` of `S`).
pub(super) fn get_strings(item: &Item, name: &str, what: &str) -> Result<Vec<String>, CatalogError> {
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

pub(super) fn get_n(item: &Item, name: &str, what: &str) -> Result<u64, CatalogError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| CatalogError::Malformed { item: what.into(), detail: format!("{name} is not a count: {v}") }),
        _ => Err(CatalogError::Malformed { item: what.into(), detail: format!("no number attribute {name}") }),
    }
}

pub(super) fn recording_pk(id: &RecordingId) -> AttributeValue {
    AttributeValue::S(format!("recording#{id}"))
}

impl RecordingEntry {
    pub(super) fn to_item(&self) -> Item {
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
        // Two top-level attributes: `tags_due` is the sparse index's key,
        // `<since>#<message id>`, one value per row (no hot partition when
        // thousands of rows are marked in one second).
        if let Some(t) = &self.tags_due {
            if let Some(since) = &t.since {
                item.insert("tags_due".into(), s(tags_due_key(since, &self.message_id)));
            }
            item.insert("tags_due_from".into(), AttributeValue::L(t.from_keys.iter().map(s).collect()));
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

    pub(super) fn from_item(item: &Item) -> Result<Self, CatalogError> {
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
            tags_due: {
                let since = get_opt_s(item, "tags_due").map(|k| k.split_once('#').map_or(k.clone(), |(s, _)| s.into()));
                let from_keys = match item.get("tags_due_from") {
                    Some(_) => get_strings(item, "tags_due_from", &what)?,
                    None => Vec::new(),
                };
                (since.is_some() || !from_keys.is_empty()).then_some(TagsDue { since, from_keys })
            },
        })
    }
}

/// The `tags-due` index's key of a row marked at `since` for `message_id`.
pub(super) fn tags_due_key(since: &str, message_id: &str) -> String {
    format!("{since}#{message_id}")
}

pub(super) fn hold_of(item: &Item, name: &str, what: &str) -> Result<Option<LegalHold>, CatalogError> {
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

pub(super) fn hold_item(h: &LegalHold) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("by".to_string(), s(&h.by)),
        ("reason".to_string(), s(&h.reason)),
        ("at".to_string(), s(&h.at)),
    ]))
}

pub(super) fn deleting_item(d: &Deleting) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("run".to_string(), s(&d.run)),
        ("reason".to_string(), s(&d.reason)),
        ("started_at".to_string(), s(&d.started_at)),
        ("versions".to_string(), AttributeValue::L(d.versions.iter().map(s).collect())),
    ]))
}

/// One usage item: a shard's counts (signed: a move may take a recording
/// off another shard than the one that counted it in).
pub(super) struct UsageShard {
    pub(super) key_arn: String,
    pub(super) recordings: i64,
    pub(super) bytes: i64,
    pub(super) first_used: Option<String>,
    pub(super) last_used: Option<String>,
    pub(super) recording_types: Vec<String>,
}

pub(super) fn get_i(item: &Item, name: &str, what: &str) -> Result<i64, CatalogError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| CatalogError::Malformed { item: what.into(), detail: format!("{name} is not a count: {v}") }),
        None => Ok(0),
        _ => Err(CatalogError::Malformed { item: what.into(), detail: format!("{name} is not a number") }),
    }
}

impl UsageShard {
    pub(super) fn from_item(item: &Item) -> Result<Self, CatalogError> {
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

pub(super) fn usage_sk(key_arn: &str, shard: u8) -> String {
    format!("{key_arn}#{shard:02}")
}

/// A Query's LastEvaluatedKey as a cursor (JSON of its string attributes).
pub(super) fn cursor_of(key: Option<&Item>) -> Option<String> {
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
pub(super) fn entries_page(
    items: &[Item],
    last: Option<&Item>,
) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
    let page = items.iter().map(RecordingEntry::from_item).collect::<Result<Vec<_>, _>>()?;
    Ok((page, cursor_of(last)))
}

pub(super) fn start_key(cursor: Option<String>) -> Result<Option<Item>, CatalogError> {
    match cursor {
        None => Ok(None),
        Some(c) => {
            let map: HashMap<String, String> = serde_json::from_str(&c)
                .map_err(|e| CatalogError::Refused { detail: format!("not a cursor of this listing ({e})") })?;
            Ok(Some(map.into_iter().map(|(k, v)| (k, s(v))).collect()))
        }
    }
}
