//! The catalog as retention, legal hold and erasure use it.

use std::future::Future;

use super::CatalogError;
use crate::recording::{RecordingEntry, RecordingId};

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

/// The catalog as retention, legal hold and erasure use it: the recordings
/// due are one index read per type, never a scan.
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
