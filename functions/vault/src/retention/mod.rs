//! Recordings leave on schedule, on request, never under a hold; the
//! catalog and its key usage stay true the whole way.
//!
//! A deletion (the daily run's, or one erasure) goes through three
//! boundaries, each one durable, so that a run stopped anywhere is finished
//! by the next with the same end state:
//! 1. **marked**: the row carries `deleting` with every version of its vault
//!    object, written conditionally (same message, no hold, not moved, no
//!    re-key holding its claim). From here the recording is going; a rerun
//!    resumes with the versions listed then;
//! 2. **versions deleted**: each listed version deleted for good (already
//!    gone is done);
//! 3. **catalog written**: one transaction removes the row, takes the
//!    recording off the usage of each key that counted it, and keeps the
//!    deletion's evidence record under its run. The row's absence is what
//!    makes a rerun a no-op, so the usage is never taken off twice.
//!
//! A run is open in the catalog from its start until its evidence report
//! (every deletion it finished: what, under which policy, when, how many
//! bytes) is written to the evidence bucket, never overwriting one: a run
//! that stopped before its report is reported by the next run once its
//! lease has passed.
//!
//! The run also stamps `retain_until` on rows that lack it or were
//! stamped under another policy (rows written before retention existed, or
//! a policy changed since), a page at a time across runs. The recordings
//! due are found through the catalog's `retention` index, never a scan.

use crate::errors::{ErrorKind, OperationError};
use crate::ports::catalog::{
    CatalogError, DeletionRecord, DeletionRun, Marked, RecordingCatalog, RecordingListing, RetentionCatalog,
};
use crate::ports::objects::{ObjectStore, S3Error, S3Location};
use crate::recording::{Deleting, LegalHold, RecordingEntry, RecordingId};
use crate::time::{parse_rfc3339, rfc3339};

mod report;
mod requests;

pub use crate::retention_policy::RetentionPolicy;

/// Why a deletion happens.
pub const RETENTION: &str = "retention";
/// A recording erased on request.
pub const ERASURE: &str = "erasure";

/// What retention, holds and erasure are configured with.
#[derive(Clone, Debug)]
pub struct RetentionSettings {
    pub vault_bucket: String,
    pub evidence_bucket: String,
    pub policy: RetentionPolicy,
    /// Whether the vault bucket has S3 Object Lock: legal holds are set
    /// on its versions too, and each version's retention is checked
    /// before a deletion is marked.
    pub object_lock: bool,
    /// Most recordings one run deletes, and most rows it stamps: the rest
    /// is the next run's (the function's timeout bounds a run).
    pub batch: usize,
    /// How long a run may be alive (past the function's timeout); after
    /// that another run writes its report.
    pub lease_secs: u64,
}

/// Why a retention call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    #[error("recording {id} is not in the catalog: check the type and id (`callvault keys` and the catalog list what is stored)")]
    NotFound { id: String },
    #[error("recording {id} is under legal hold (set by {by} at {at}: {reason}); release it first with `callvault hold release {id} --reason ...`")]
    LegalHold { id: String, by: String, at: String, reason: String },
    #[error("a version of recording {id} is under compliance-mode Object Lock until {until}: nobody can delete it before then, the root user included")]
    ComplianceRetention { id: String, until: String },
    #[error("a version of recording {id} is under governance-mode Object Lock until {until}; erase it anyway only if you may, with --bypass-governance-retention (the evidence records it)")]
    GovernanceRetention { id: String, until: String },
    #[error("recording {id} is being re-keyed (its claim is held until {until}); retry after the move")]
    Rekeying { id: String, until: String },
    #[error("recording {id} moved to {region}: erase it in that region's deployment")]
    Moved { id: String, region: String },
    #[error("recording {id} is being deleted by run {run}; run that request again (`--request-id {run}`), or the next retention run finishes it")]
    Deleting { id: String, run: String },
    #[error("recording {id} is not under a legal hold callvault placed (or it was released or replaced meanwhile): nothing to release; an S3 legal hold set outside callvault is left as it is")]
    NotHeld { id: String },
    #[error("request {request} is another erasure ({differs}): only its own requester resumes it, for the same recording and the same governance bypass; start a new erasure without --request-id")]
    RequestMismatch { request: String, differs: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("the vault: {0}")]
    Vault(S3Error),
    #[error("the evidence bucket: {0}")]
    Evidence(S3Error),
}

impl OperationError for RetentionError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::LegalHold { .. } => "legal_hold",
            Self::ComplianceRetention { .. } => "compliance_retention",
            Self::GovernanceRetention { .. } => "governance_retention",
            Self::Rekeying { .. } => "in_progress",
            Self::Moved { .. } => "moved",
            Self::Deleting { .. } => "deleting",
            Self::NotHeld { .. } => "not_held",
            Self::RequestMismatch { .. } => "request_mismatch",
            Self::Catalog(e) => e.code(),
            Self::Vault(e) | Self::Evidence(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::LegalHold { .. }
            | Self::ComplianceRetention { .. }
            | Self::GovernanceRetention { .. }
            | Self::NotHeld { .. }
            | Self::RequestMismatch { .. } => ErrorKind::Conflict,
            Self::Rekeying { .. } | Self::Deleting { .. } => ErrorKind::Transient,
            Self::Moved { .. } => ErrorKind::Moved,
            Self::Catalog(e) => e.kind(),
            Self::Vault(e) | Self::Evidence(e) => e.kind(),
        }
    }
}

/// What one retention run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub run: String,
    /// Rows given a new `retain_until` (policy stamping).
    pub stamped: u64,
    /// Whether the stamping pass is done (else the next run continues).
    pub stamping_done: bool,
    /// The deletions this run finished.
    pub deleted: Vec<DeletionRecord>,
    /// Due recordings kept because they are under legal hold.
    pub held: u64,
    /// Due recordings kept for now: a re-key holds them, or Object Lock
    /// still protects a version.
    pub waiting: u64,
    /// Failures by code (each recording stays for the next run).
    pub failures: std::collections::BTreeMap<String, u64>,
    /// Whether recordings were left due because the batch was full.
    pub backlog: bool,
    /// Evidence reports written (keys in the evidence bucket).
    pub reports: Vec<String>,
}

impl RunSummary {
    /// Bytes (plaintext) of the recordings deleted.
    pub fn bytes_deleted(&self) -> u64 {
        self.deleted.iter().map(|d| d.plaintext_bytes).sum()
    }
}

/// An erasure request: one recording, now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EraseRequest {
    pub id: RecordingId,
    /// The request's id: a retry under the same id resumes it.
    pub request: String,
    pub reason: String,
    /// Who asked: the principal AWS authenticated (the duty function's
    /// Function URL caller), never a name the request carries.
    pub requested_by: String,
    /// Delete past a governance-mode Object Lock retention.
    pub bypass_governance: bool,
}

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erased {
    pub record: DeletionRecord,
    /// The evidence report's key in the evidence bucket.
    pub report: String,
}

/// How one deletion went.
enum Outcome {
    Deleted(DeletionRecord),
    Held(LegalHold),
    Waiting(RetentionError),
    Gone,
    Changed,
}

/// Retention, legal holds and erasure over the catalog, the vault and the
/// evidence bucket.
pub struct Retention<C, O, E> {
    catalog: C,
    vault: O,
    evidence: E,
    settings: RetentionSettings,
}

impl<C, O, E> Retention<C, O, E>
where
    C: RecordingCatalog + RecordingListing + RetentionCatalog,
    O: ObjectStore,
    E: ObjectStore,
{
    pub fn new(catalog: C, vault: O, evidence: E, settings: RetentionSettings) -> Self {
        Self { catalog, vault, evidence, settings }
    }

    /// The settings.
    pub fn settings(&self) -> &RetentionSettings {
        &self.settings
    }

    fn vault_loc(&self, entry: &RecordingEntry) -> S3Location {
        S3Location { bucket: self.settings.vault_bucket.clone(), key: entry.vault_key.clone() }
    }

    /// The daily run at `now` (Unix seconds): stamps rows with the policy,
    /// deletes what is due (at most the batch), and reports every run that
    /// finished (this one, and any earlier one that stopped before its
    /// report).
    pub async fn run(&self, run: &str, now: u64) -> Result<RunSummary, RetentionError> {
        let mut summary = RunSummary { run: run.to_string(), ..RunSummary::default() };
        let details = serde_json::json!({ "policy_days": self.settings.policy.to_value() });
        self.catalog
            .open_run(&DeletionRun {
                run: run.to_string(),
                kind: RETENTION.into(),
                started_at: rfc3339(now),
                lease_until: now + self.settings.lease_secs,
                details,
            })
            .await?;
        self.stamp(&mut summary).await?;
        let due_until = rfc3339(now);
        // The batch bounds the deletions a run attempts; rows it only looks
        // at (held, waiting on a re-key or a lock, changed) cost a read, so
        // that held recordings at the front of the index never starve the
        // rest. Reading is bounded too, for the function's timeout.
        let mut budget = self.settings.batch;
        let mut reads = self.settings.batch.saturating_mul(20).max(100);
        'types: for (ty, _) in self.settings.policy.types() {
            let mut cursor = None;
            loop {
                let (page, next) = self.catalog.due(ty, &due_until, cursor, self.settings.batch.clamp(1, 1000)).await?;
                for entry in page {
                    if budget == 0 || reads == 0 {
                        summary.backlog = true;
                        break 'types;
                    }
                    reads -= 1;
                    match self.delete_one(&entry, run, RETENTION, false, now).await {
                        Ok(Outcome::Deleted(record)) => {
                            budget -= 1;
                            summary.deleted.push(record);
                        }
                        Ok(Outcome::Held(_)) => summary.held += 1,
                        Ok(Outcome::Waiting(_)) => summary.waiting += 1,
                        Ok(Outcome::Gone | Outcome::Changed) => {}
                        Err(e) => {
                            budget -= 1;
                            tracing::warn!(recording = %entry.id, code = e.code(), error = %e, "retention: not deleted this run");
                            *summary.failures.entry(e.code().to_string()).or_default() += 1;
                        }
                    }
                }
                cursor = next;
                if cursor.is_none() {
                    break;
                }
            }
        }
        summary.reports = self.report_finished_runs(run, now, &mut summary.failures).await?;
        Ok(summary)
    }

    /// Stamps `retain_until` on rows that lack it or carry another policy's,
    /// at most a batch of rows per run, remembering where it stopped.
    async fn stamp(&self, summary: &mut RunSummary) -> Result<(), RetentionError> {
        let policy = self.settings.policy.to_json();
        let mut cursor = match self.catalog.stamped_policy().await? {
            Some((stamped, None)) if stamped == policy => {
                summary.stamping_done = true;
                return Ok(());
            }
            Some((stamped, cursor)) if stamped == policy => cursor,
            _ => None,
        };
        let mut seen = 0usize;
        loop {
            let (page, next) = self.catalog.recordings_page(cursor.clone(), self.settings.batch.clamp(1, 500)).await?;
            for entry in &page {
                if entry.moved_to.is_some() || entry.deleting.is_some() {
                    continue;
                }
                let (until, days) = self.settings.policy.stamp(&entry.id.recording_type, &entry.encrypted_at);
                let until = until.as_deref();
                if entry.retain_until.as_deref() != until || entry.retention_days != days {
                    // The scan reads eventually consistent rows, and a re-key may
                    // replace one meanwhile: re-read and stamp again until it holds.
                    let mut row = entry.clone();
                    for _ in 0..3 {
                        if self.catalog.stamp_retention(&row, until, days).await? {
                            summary.stamped += 1;
                            break;
                        }
                        match self.catalog.recording(&row.id).await? {
                            Some(r) if r.moved_to.is_none() && r.deleting.is_none() => {
                                if r.retain_until.as_deref() == until && r.retention_days == days {
                                    break;
                                }
                                row = r;
                            }
                            _ => break,
                        }
                    }
                }
            }
            seen += page.len();
            cursor = next;
            self.catalog.save_stamped_policy(&policy, cursor.as_deref()).await?;
            if cursor.is_none() {
                summary.stamping_done = true;
                return Ok(());
            }
            if seen >= self.settings.batch.max(1) {
                return Ok(());
            }
        }
    }

    /// One deletion through its three boundaries, resuming one a run left
    /// marked. Erasures (`bypass` meaningful) refuse what retention skips.
    async fn delete_one(
        &self,
        found: &RecordingEntry,
        run: &str,
        reason: &str,
        bypass_governance: bool,
        now: u64,
    ) -> Result<Outcome, RetentionError> {
        // The index is eventually consistent: decide on the row itself.
        let Some(entry) = self.catalog.recording(&found.id).await? else { return Ok(Outcome::Gone) };
        let id = entry.id.to_string();
        if let Some(m) = &entry.moved_to {
            return Err(RetentionError::Moved { id, region: m.region.clone() });
        }
        let entry = match &entry.deleting {
            Some(_) => entry,
            None => {
                if reason == RETENTION {
                    // Deleted only under the policy configured now: a row the
                    // stamping pass has not reached yet (a policy changed) is
                    // stamped here first, and kept if it is not due under it.
                    let (until, days) = self.settings.policy.stamp(&entry.id.recording_type, &entry.encrypted_at);
                    let until = until.as_deref();
                    if entry.retain_until.as_deref() != until || entry.retention_days != days {
                        self.catalog.stamp_retention(&entry, until, days).await?;
                        return Ok(Outcome::Changed);
                    }
                    if until.and_then(parse_rfc3339).is_none_or(|due| due > now) {
                        return Ok(Outcome::Changed);
                    }
                }
                if let Some(h) = &entry.hold {
                    return Ok(Outcome::Held(h.clone()));
                }
                let loc = self.vault_loc(&entry);
                let versions: Vec<String> = self
                    .vault
                    .list_versions(&loc)
                    .await
                    .map_err(RetentionError::Vault)?
                    .into_iter()
                    .map(|v| v.version)
                    .collect();
                if self.settings.object_lock {
                    if let Some(refusal) = self.locked(&entry, &versions, bypass_governance, now).await? {
                        return Ok(Outcome::Waiting(refusal));
                    }
                }
                let deleting =
                    Deleting { run: run.to_string(), reason: reason.to_string(), versions, started_at: rfc3339(now) };
                match self.catalog.mark_deleting(&entry, &deleting, now).await? {
                    Marked::Marked => RecordingEntry { deleting: Some(deleting), ..entry },
                    Marked::Held => {
                        let again = self.catalog.recording(&entry.id).await?;
                        return Ok(match again.and_then(|e| e.hold) {
                            Some(h) => Outcome::Held(h),
                            None => Outcome::Changed,
                        });
                    }
                    Marked::Claimed { until } => {
                        return Ok(Outcome::Waiting(RetentionError::Rekeying { id, until: rfc3339(until) }))
                    }
                    Marked::RowChanged(_) => return Ok(Outcome::Changed),
                }
            }
        };
        let Some(deleting) = entry.deleting.clone() else { return Ok(Outcome::Changed) };
        let loc = self.vault_loc(&entry);
        for version in &deleting.versions {
            self.vault.delete_version(&loc, version, bypass_governance).await.map_err(RetentionError::Vault)?;
        }
        // The evidence goes to the run that finishes the deletion (its report
        // is still to be written), naming the run that marked it.
        let record = DeletionRecord {
            id: entry.id.clone(),
            run: run.to_string(),
            marked_by: deleting.run.clone(),
            reason: deleting.reason.clone(),
            retention_days: entry.retention_days,
            retain_until: entry.retain_until.clone(),
            vault_key: entry.vault_key.clone(),
            versions: deleting.versions.clone(),
            plaintext_bytes: entry.plaintext_size,
            ciphertext_bytes: entry.ciphertext_size,
            wrapping_keys: entry.wrapping_keys.clone(),
            encrypted_at: entry.encrypted_at.clone(),
            deleted_at: rfc3339(now),
        };
        if self.catalog.finish_deletion(&entry, &record).await? {
            Ok(Outcome::Deleted(record))
        } else {
            Ok(Outcome::Gone)
        }
    }

    /// Whether Object Lock still protects a version: the refusal, if so.
    async fn locked(
        &self,
        entry: &RecordingEntry,
        versions: &[String],
        bypass_governance: bool,
        now: u64,
    ) -> Result<Option<RetentionError>, RetentionError> {
        let loc = self.vault_loc(entry);
        let id = entry.id.to_string();
        for version in versions {
            let lock = self.vault.object_lock(&loc, version).await.map_err(RetentionError::Vault)?;
            if lock.legal_hold {
                return Ok(Some(RetentionError::LegalHold {
                    id,
                    by: "S3 Object Lock".into(),
                    at: "-".into(),
                    reason: format!("version {version} has a legal hold in the vault bucket"),
                }));
            }
            if let Some((mode, until)) = lock.retention {
                if parse_rfc3339(&until).is_none_or(|u| u > now) {
                    if mode.eq_ignore_ascii_case("COMPLIANCE") {
                        return Ok(Some(RetentionError::ComplianceRetention { id, until }));
                    }
                    if !bypass_governance {
                        return Ok(Some(RetentionError::GovernanceRetention { id, until }));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// Recounts every key's usage from the rows themselves (a full read: for
/// tests and audits, never a request path): key -> (recordings, bytes).
pub async fn recount<C: RecordingListing>(
    catalog: &C,
) -> Result<std::collections::BTreeMap<String, (u64, u64)>, CatalogError> {
    let mut counts = std::collections::BTreeMap::<String, (u64, u64)>::new();
    let mut cursor = None;
    loop {
        let (page, next) = catalog.recordings_page(cursor, 1000).await?;
        for e in &page {
            for k in e.counted_keys() {
                let c = counts.entry(k.clone()).or_default();
                c.0 += 1;
                c.1 += e.plaintext_size;
            }
        }
        cursor = next;
        if cursor.is_none() {
            return Ok(counts);
        }
    }
}
