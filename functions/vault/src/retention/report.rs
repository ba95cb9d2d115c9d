//! The evidence: each run's report, written before the run is closed.

use crate::errors::OperationError;
use crate::ports::catalog::{DeletionRecord, DeletionRun, RecordingCatalog, RecordingListing, RetentionCatalog};
use crate::ports::objects::{ObjectStore, S3Error, S3Location};
use crate::time::rfc3339;

use super::*;

impl<C, O, E> Retention<C, O, E>
where
    C: RecordingCatalog + RecordingListing + RetentionCatalog,
    O: ObjectStore,
    E: ObjectStore,
{
    /// Writes the report of this run and of every other open run whose
    /// lease has passed, then closes them. An erasure that stopped is
    /// finished first (its recording is not due, so no retention run would
    /// reach it). A report already written (a run that stopped after
    /// writing it) is kept as it is.
    pub(super) async fn report_finished_runs(
        &self,
        this: &str,
        now: u64,
        failures: &mut std::collections::BTreeMap<String, u64>,
    ) -> Result<Vec<String>, RetentionError> {
        let mut written = Vec::new();
        for run in self.catalog.open_runs().await? {
            if run.run != this && run.lease_until > now {
                continue;
            }
            if run.kind == ERASURE {
                if let Some(id) = run.details["recording"].as_str().and_then(crate::recording::route) {
                    if let Some(entry) = self.catalog.recording(&id).await? {
                        if entry.deleting.as_ref().is_some_and(|d| d.run == run.run) {
                            let bypass = run.details["bypass_governance_retention"].as_bool().unwrap_or(false);
                            if let Err(e) = self.delete_one(&entry, &run.run, ERASURE, bypass, now).await {
                                // Left open: the next run tries again.
                                *failures.entry(e.code().to_string()).or_default() += 1;
                                continue;
                            }
                        }
                    }
                }
            }
            written.push(self.report(&run, now).await?);
        }
        Ok(written)
    }

    /// Writes one run's evidence report and closes the run.
    pub(super) async fn report(&self, run: &DeletionRun, now: u64) -> Result<String, RetentionError> {
        let deletions = self.catalog.run_deletions(&run.run).await?;
        let day = run.started_at.get(..10).unwrap_or("unknown");
        // Named by what it says: a rerun that reports the same deletions
        // finds its report written; a run reopened later (an erasure
        // retried under its request id) writes another, never over it.
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for d in &deletions {
            digest.update(d.id.to_string().as_bytes());
            digest.update(b"\n");
        }
        let digest = hex::encode(&digest.finish().as_ref()[..6]);
        let key = format!("{}/{day}/{}-{}-{digest}.json", run.kind, run.run, deletions.len());
        let report = serde_json::json!({
            "report": format!("callvault {} run", run.kind),
            "run": run.run,
            "kind": run.kind,
            "started_at": run.started_at,
            "reported_at": rfc3339(now),
            "details": run.details,
            "recordings_deleted": deletions.len(),
            "plaintext_bytes_deleted": deletions.iter().map(|d| d.plaintext_bytes).sum::<u64>(),
            "ciphertext_bytes_deleted": deletions.iter().map(|d| d.ciphertext_bytes).sum::<u64>(),
            "deletions": deletions.iter().map(DeletionRecord::to_json).collect::<Vec<_>>(),
        });
        let body = serde_json::to_vec_pretty(&report).unwrap_or_default();
        let loc = S3Location { bucket: self.settings.evidence_bucket.clone(), key: key.clone() };
        match self.evidence.put_new(&loc, body, "application/json").await {
            // Changed: a run that stopped after its report wrote it; never overwritten.
            Ok(_) | Err(S3Error::Changed { .. }) => {}
            Err(e) => return Err(RetentionError::Evidence(e)),
        }
        self.catalog.close_run(&run.run).await?;
        Ok(key)
    }
}
