//! The catalog ports: what callvault remembers. [`RecordingCatalog`]: one
//! entry per recording, written once with the usage of its keys, and a
//! short-lived claim per recording being encrypted; [`KeyUsageCatalog`]: how
//! much each key protects; [`EventClaims`]: which events were handled;
//! [`DenialCounters`]: denied calls per window, for the guardian's summaries.
//!
//! The AWS adapter keeps them in one DynamoDB table:
//!
//! One table, partition key `pk` and sort key `sk` (both strings):
//! - a recording: `pk = "recording#<type>/<id>"`, `sk = "recording"`;
//! - its claim while a function encrypts it: same `pk`, `sk = "claim"`;
//! - a key's usage: `pk = "key"`, `sk = "<key ARN>#<shard, 2 digits>"`,
//!   one counter per shard ([`KEY_USAGE_SHARDS`]) summed when read, so that
//!   every key the catalog knows is one Query away ("what breaks if this key
//!   goes") and concurrent transactions (a re-key job moving thousands of
//!   recordings off one key) rarely touch the same item. An item whose `sk`
//!   is the bare ARN (written before shards) is one more shard;
//! - an event already handled: `pk = "event#<source>/<id>"`, `sk = "event"`,
//!   with `expires_at` (Unix seconds, the table's TTL attribute), so that a
//!   duplicate delivery is recognised;
//! - a window of denied calls: `pk = "denied"`,
//!   `sk = "<window start, 12 digits>|<key ARN>|<call>|<principal>"`, with
//!   `count` and `expires_at`, so that the closed windows are one Query.
//!
//! A recording is written once, in one transaction with the usage of every
//! key that wraps it, so duplicate events can neither write it twice nor
//! count it twice. A re-key replaces it in one transaction too, only while
//! it still names the message that was re-encrypted, moving its usage from
//! the old keys to the new ([`RecordingCatalog::move_recording`]).

use std::future::Future;

use crate::errors::{ErrorKind, OperationError};
use crate::recording::{RecordingEntry, RecordingId};

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

/// The outcome of [`RecordingCatalog::claim`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This caller may encrypt the recording; pass the token on.
    Acquired { token: String },
    /// Another invocation holds an unexpired claim.
    HeldElsewhere { source_etag: String, until: u64 },
}

/// The outcome of [`RecordingCatalog::record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Written, with the usage of every wrapping key.
    New,
    /// The recording was already in the catalog; nothing was written.
    AlreadyCatalogued(Box<RecordingEntry>),
}

/// The outcome of [`RecordingCatalog::move_recording`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Moved {
    /// The row names the new message; the usage moved with it.
    Moved,
    /// The row no longer names the old message (another move, or it is
    /// gone): nothing was written. What the row holds now, if anything.
    RowChanged(Option<Box<RecordingEntry>>),
}

/// Counters per key: concurrent transactions pick one at random, so that
/// they rarely collide on one item (DynamoDB cancels a transaction that
/// touches an item another transaction is writing).
pub const KEY_USAGE_SHARDS: u8 = 32;

/// A random usage shard, `0..KEY_USAGE_SHARDS`.
pub fn random_usage_shard() -> u8 {
    let mut byte = [0u8; 1];
    // Without randomness every transaction takes shard 0: slower, never wrong.
    let _ = aws_lc_rs::rand::fill(&mut byte);
    byte[0] % KEY_USAGE_SHARDS
}

/// The outcome of [`EventClaims::claim_event`].
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
    /// A transaction touched an item another transaction was writing.
    #[error("the catalog transaction collided with another ({detail}); retry")]
    Conflict { detail: String },
}

impl OperationError for CatalogError {
    fn code(&self) -> &'static str {
        match self {
            Self::TableMissing { .. } => "catalog_missing",
            Self::AccessDenied { .. } => "access_denied",
            Self::Unavailable { .. } => "catalog_unavailable",
            Self::ClaimLost { .. } => "claim_lost",
            Self::Refused { .. } => "catalog_refused",
            Self::Malformed { .. } => "catalog_malformed",
            Self::Conflict { .. } => "catalog_conflict",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Unavailable { .. } | Self::ClaimLost { .. } | Self::Conflict { .. } => ErrorKind::Transient,
            _ => ErrorKind::Deployment,
        }
    }
}

/// Recordings, their claims, and the transaction that catalogues one.
pub trait RecordingCatalog: Send + Sync {
    /// The recording's entry, if it has been catalogued (strongly consistent).
    fn recording(&self, id: &RecordingId) -> impl Future<Output = Result<Option<RecordingEntry>, CatalogError>> + Send;

    /// Claims the recording for `lease_secs` seconds from `now` (Unix
    /// seconds), unless another invocation holds an unexpired claim. A claim
    /// made under the same `request_id` is taken over (Lambda retries an
    /// event under its request id, so this is a retry of a holder that
    /// died); any other expires.
    fn claim(
        &self,
        id: &RecordingId,
        source_etag: &str,
        request_id: &str,
        now: u64,
        lease_secs: u64,
    ) -> impl Future<Output = Result<Claim, CatalogError>> + Send;

    /// Gives a claim up (after a failure), if it is still ours.
    fn release(&self, id: &RecordingId, token: &str) -> impl Future<Output = Result<(), CatalogError>> + Send;

    /// All or nothing: writes the recording (unless it exists:
    /// `AlreadyCatalogued`), adds it to the usage of each of its wrapping
    /// keys, and ends the claim `token` (`ClaimLost` when it is not ours).
    fn record(
        &self,
        entry: &RecordingEntry,
        token: &str,
        now: &str,
    ) -> impl Future<Output = Result<Recorded, CatalogError>> + Send;

    /// All or nothing: replaces the row of `from` with `to` only while the
    /// row still names `from`'s message and has not moved away
    /// (`RowChanged` otherwise), takes the recording off the usage of each
    /// key `from` counts and `to` does not, adds it to each key `to` counts
    /// and `from` did not ([`RecordingEntry::counted_keys`]: a `to` that
    /// moved to another region is counted by none), and ends the claim
    /// `token` (`ClaimLost` when it is not ours). Concurrent moves may
    /// collide (`Conflict`, retryable).
    fn move_recording(
        &self,
        from: &RecordingEntry,
        to: &RecordingEntry,
        token: &str,
        now: &str,
    ) -> impl Future<Output = Result<Moved, CatalogError>> + Send;
}

/// Every catalogued recording, a page at a time: what a re-key moves
/// (the recordings under a key or of a type). A full read of the
/// recordings, for operator commands, never for a request path.
pub trait RecordingListing: Send + Sync {
    /// Up to about `limit` recordings after the cursor `after` (`None`: from
    /// the start), and the cursor of the next page (`None`: the last).
    fn recordings_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<RecordingEntry>, Option<String>), CatalogError>> + Send;
}

/// What the player lists: one recording type's rows, newest first, between
/// two `encrypted_at` bounds (RFC 3339 strings, compared as strings, both
/// inclusive), a page at a time. An index read, never a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrowseQuery {
    pub recording_type: String,
    /// Lowest `encrypted_at` listed (`None`: from the first).
    pub from: Option<String>,
    /// Highest `encrypted_at` listed (`None`: to the last).
    pub to: Option<String>,
    /// The cursor a previous page returned.
    pub after: Option<String>,
    pub limit: usize,
}

/// A type's recordings by date, for the player's list.
pub trait RecordingBrowser: Send + Sync {
    /// Up to `limit` rows of the query, newest first, and the cursor of the
    /// next page (`None`: the last).
    fn browse(
        &self,
        query: &BrowseQuery,
    ) -> impl Future<Output = Result<(Vec<RecordingEntry>, Option<String>), CatalogError>> + Send;
}

/// How much each key protects.
pub trait KeyUsageCatalog: Send + Sync {
    /// The usage of one key, if the catalog knows it.
    fn key_usage(&self, key_arn: &str) -> impl Future<Output = Result<Option<KeyUsage>, CatalogError>> + Send;
    /// Every key the catalog knows, with its usage.
    fn key_usages(&self) -> impl Future<Output = Result<Vec<KeyUsage>, CatalogError>> + Send;
}

/// One window of denied calls: who was denied which call on which key,
/// in the window that opened at `window_start` (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DenialWindow {
    pub window_start: u64,
    pub key_arn: String,
    pub operation: String,
    pub principal: String,
}

/// Denied calls counted in the catalog, per key, principal and call, so
/// that every container of the guardian counts into the same window and a
/// flood of them makes one summary, not one alert each.
pub trait DenialCounters: Send + Sync {
    /// Counts one denied call in its window (forgotten after `expires_at`);
    /// returns the window's count with this one (1: the first).
    fn count_denial(
        &self,
        window: &DenialWindow,
        expires_at: u64,
    ) -> impl Future<Output = Result<u64, CatalogError>> + Send;

    /// Windows that opened before `before` (Unix seconds), oldest first, at
    /// most `limit`, with their counts.
    fn closed_denials(
        &self,
        before: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(DenialWindow, u64)>, CatalogError>> + Send;

    /// Removes a window's counter: its count when this call removed it,
    /// `None` when it was already gone.
    fn take_denials(&self, window: &DenialWindow) -> impl Future<Output = Result<Option<u64>, CatalogError>> + Send;
}

/// Events handled once however often they are delivered.
pub trait EventClaims: Send + Sync {
    /// Claims the event `source`/`id` for `lease_secs` from `now` (Unix
    /// seconds): the first delivery, or a retry after a holder's lease
    /// expired, gets [`EventClaim::First`] (with what an earlier attempt
    /// recorded); a delivery while another holds it, `InProgress`; after it
    /// was handled, `Done`. The claim is forgotten after `expires_at`.
    fn claim_event(
        &self,
        source: &str,
        id: &str,
        now: u64,
        lease_secs: u64,
        expires_at: u64,
    ) -> impl Future<Output = Result<EventClaim, CatalogError>> + Send;

    /// Marks the event handled: later deliveries are `Done`.
    fn event_done(&self, source: &str, id: &str) -> impl Future<Output = Result<(), CatalogError>> + Send;

    /// Releases the claim of an attempt that failed, so that its retry is
    /// `First` at once, keeping `recorded` (what the attempt already did,
    /// for the retry to report rather than redo).
    fn release_event(
        &self,
        source: &str,
        id: &str,
        recorded: Option<&str>,
    ) -> impl Future<Output = Result<(), CatalogError>> + Send;
}

/// The outcome of [`RetentionCatalog::mark_deleting`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marked {
    /// The row now carries the deletion: delete its versions, then
    /// [`RetentionCatalog::finish_deletion`].
    Marked,
    /// The recording is under legal hold: nothing was written.
    Held,
    /// A re-key holds the recording's claim until `until` (Unix seconds):
    /// it is deleted once the move ends.
    Claimed { until: u64 },
    /// The row no longer names that message, moved away, or is gone.
    RowChanged(Option<Box<RecordingEntry>>),
}

/// A change to a recording's legal hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldChange {
    /// Hold it (replacing any hold it has).
    Set(crate::recording::LegalHold),
    /// Release `held` (only while it is the row's hold), recording who
    /// released it, why and when (`release`).
    Release { held: crate::recording::LegalHold, release: crate::recording::LegalHold },
}

/// The outcome of [`RetentionCatalog::set_hold`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldChanged {
    /// The row now carries the change.
    Changed(Box<RecordingEntry>),
    /// A release whose hold is not the row's (released or replaced meanwhile).
    NotHeld(Box<RecordingEntry>),
    /// No such recording.
    NotFound,
    /// The recording is being deleted: too late for a hold.
    Deleting(Box<RecordingEntry>),
}

/// One deletion, as the evidence records it. Kept in the catalog with
/// the deletion itself (the same transaction), so that the run's report
/// lists it even when the run stops before it writes the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletionRecord {
    pub id: RecordingId,
    /// The run or erasure request that finished the deletion (whose report
    /// lists it).
    pub run: String,
    /// The run that marked it (another, when a run resumed a deletion).
    pub marked_by: String,
    /// `retention` or `erasure`.
    pub reason: String,
    /// The retention policy it fell under (days), and the date it was due.
    pub retention_days: Option<u32>,
    pub retain_until: Option<String>,
    /// The vault object and the versions deleted.
    pub vault_key: String,
    pub versions: Vec<String>,
    /// Bytes of the recording (plaintext) and of what left the vault.
    pub plaintext_bytes: u64,
    pub ciphertext_bytes: u64,
    pub wrapping_keys: Vec<String>,
    pub encrypted_at: String,
    /// RFC 3339, UTC.
    pub deleted_at: String,
}

impl DeletionRecord {
    /// As JSON (the report's entry, and how the catalog keeps it).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "recording_type": self.id.recording_type,
            "recording_id": self.id.recording_id,
            "run": self.run,
            "marked_by": self.marked_by,
            "reason": self.reason,
            "retention_days": self.retention_days,
            "retain_until": self.retain_until,
            "vault_key": self.vault_key,
            "versions": self.versions,
            "plaintext_bytes": self.plaintext_bytes,
            "ciphertext_bytes": self.ciphertext_bytes,
            "wrapping_keys": self.wrapping_keys,
            "encrypted_at": self.encrypted_at,
            "deleted_at": self.deleted_at,
        })
    }

    /// From [`DeletionRecord::to_json`]'s JSON.
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let list = |k: &str| -> Option<Vec<String>> {
            v.get(k)?.as_array()?.iter().map(|x| x.as_str().map(str::to_string)).collect()
        };
        Some(Self {
            id: RecordingId { recording_type: s("recording_type")?, recording_id: s("recording_id")? },
            marked_by: s("marked_by").or_else(|| s("run"))?,
            run: s("run")?,
            reason: s("reason")?,
            retention_days: v.get("retention_days").and_then(|x| x.as_u64()).and_then(|d| u32::try_from(d).ok()),
            retain_until: s("retain_until"),
            vault_key: s("vault_key")?,
            versions: list("versions")?,
            plaintext_bytes: v.get("plaintext_bytes")?.as_u64()?,
            ciphertext_bytes: v.get("ciphertext_bytes")?.as_u64()?,
            wrapping_keys: list("wrapping_keys")?,
            encrypted_at: s("encrypted_at")?,
            deleted_at: s("deleted_at")?,
        })
    }
}

/// A run that deletes recordings (the daily retention run, or one
/// erasure), open from its start until its evidence report is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletionRun {
    pub run: String,
    /// `retention` or `erasure`.
    pub kind: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// Unix seconds: until then the run is alive; after, another run
    /// writes its report.
    pub lease_until: u64,
    /// Everything else the report says about the run (the policy, who
    /// asked and why), as JSON.
    pub details: serde_json::Value,
}

/// The catalog as retention, legal hold and erasure use it.
///
/// In DynamoDB: a sparse global secondary index `retention` (partition
/// `recording_type`, sort `retain_until`) holds the rows that have a
/// `retain_until`, so that the recordings due are one Query per type; a
/// run is `pk = "deletion-run"`, `sk = <run>`; a deletion's evidence is
/// `pk = "deleted#<run>"`, `sk = "<type>/<id>"`; the retention policy the
/// rows were last stamped with is `pk = "retention"`, `sk = "policy"`.
pub trait RetentionCatalog: Send + Sync {
    /// Recordings of `recording_type` whose `retain_until` is at or before
    /// `until` (RFC 3339), oldest first, about `limit` at a time after the
    /// cursor `after`; the next cursor (`None`: the last page). Eventually
    /// consistent: every step after it is conditional.
    fn due(
        &self,
        recording_type: &str,
        until: &str,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<RecordingEntry>, Option<String>), CatalogError>> + Send;

    /// Sets the row's `retain_until` and `retention_days` (removes them when
    /// `None`) while it still names `entry`'s message, has not moved and is
    /// not being deleted; `false` when it changed meanwhile.
    fn stamp_retention(
        &self,
        entry: &RecordingEntry,
        retain_until: Option<&str>,
        retention_days: Option<u32>,
    ) -> impl Future<Output = Result<bool, CatalogError>> + Send;

    /// The policy (JSON) the rows were last stamped with, and the cursor of
    /// a stamping pass not yet finished.
    fn stamped_policy(&self) -> impl Future<Output = Result<Option<(String, Option<String>)>, CatalogError>> + Send;

    /// Remembers the policy being stamped and how far the pass got.
    fn save_stamped_policy(
        &self,
        policy: &str,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<(), CatalogError>> + Send;

    /// Marks the row `deleting` (with the versions to delete) while it still
    /// names `entry`'s message, is not held, has not moved, is not already
    /// being deleted, and no re-key holds its claim at `now` (Unix seconds).
    fn mark_deleting(
        &self,
        entry: &RecordingEntry,
        deleting: &crate::recording::Deleting,
        now: u64,
    ) -> impl Future<Output = Result<Marked, CatalogError>> + Send;

    /// All or nothing: removes the row (only while it carries the deletion
    /// that `record.marked_by` marked), takes it off the usage of each key it
    /// counted, and keeps `record` as the evidence of `record.run`. `false`: the row was already gone
    /// (an earlier attempt finished it), nothing was written.
    fn finish_deletion(
        &self,
        entry: &RecordingEntry,
        record: &DeletionRecord,
    ) -> impl Future<Output = Result<bool, CatalogError>> + Send;

    /// Opens a run (or renews its lease).
    fn open_run(&self, run: &DeletionRun) -> impl Future<Output = Result<(), CatalogError>> + Send;

    /// Every open run.
    fn open_runs(&self) -> impl Future<Output = Result<Vec<DeletionRun>, CatalogError>> + Send;

    /// The deletions a run has finished, in the order of their ids.
    fn run_deletions(&self, run: &str) -> impl Future<Output = Result<Vec<DeletionRecord>, CatalogError>> + Send;

    /// Closes a run whose report is written: forgets it and its records.
    fn close_run(&self, run: &str) -> impl Future<Output = Result<(), CatalogError>> + Send;

    /// Sets or releases the recording's legal hold (a release keeps the
    /// hold it released and its own who, why and when in `released_hold`).
    fn set_hold(
        &self,
        id: &RecordingId,
        change: &HoldChange,
    ) -> impl Future<Output = Result<HoldChanged, CatalogError>> + Send;
}
