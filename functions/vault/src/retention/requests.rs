//! Requests: erase one recording now; set or release a legal hold.

use crate::ports::catalog::{
    DeletionRun, HoldChange, HoldChanged, RecordingCatalog, RecordingListing, RetentionCatalog,
};
use crate::ports::objects::{ObjectStore, S3Location};
use crate::recording::{LegalHold, RecordingEntry, RecordingId};
use crate::time::rfc3339;

use super::*;

impl<C, O, E> Retention<C, O, E>
where
    C: RecordingCatalog + RecordingListing + RetentionCatalog,
    O: ObjectStore,
    E: ObjectStore,
{
    /// Erases one recording now: all its versions, its row and its usage,
    /// with an evidence report. Refused under legal hold, under a
    /// compliance-mode retention, and under a governance-mode one unless
    /// the request bypasses it. A retry of the same request resumes it.
    pub async fn erase(&self, request: &EraseRequest, now: u64) -> Result<Erased, RetentionError> {
        let id = request.id.to_string();
        let open = self.catalog.open_runs().await?.into_iter().find(|r| r.run == request.request);
        let run = match open {
            // Resumed only by its own requester, as it was asked: evidence
            // never names one person for another's request.
            Some(run) => {
                let d = &run.details;
                let differs = [
                    (run.kind != ERASURE, "not an erasure"),
                    (d["recording"].as_str() != Some(id.as_str()), "another recording"),
                    (d["requested_by"].as_str() != Some(request.requested_by.as_str()), "another requester"),
                    (
                        d["bypass_governance_retention"].as_bool().unwrap_or(false) != request.bypass_governance,
                        "another governance bypass",
                    ),
                ];
                if let Some((_, why)) = differs.iter().find(|(yes, _)| *yes) {
                    return Err(RetentionError::RequestMismatch {
                        request: request.request.clone(),
                        differs: (*why).into(),
                    });
                }
                run
            }
            None => {
                let run = DeletionRun {
                    run: request.request.clone(),
                    kind: ERASURE.into(),
                    started_at: rfc3339(now),
                    lease_until: now + self.settings.lease_secs,
                    details: serde_json::json!({
                        "recording": id,
                        "reason": request.reason,
                        "requested_by": request.requested_by,
                        "bypass_governance_retention": request.bypass_governance,
                    }),
                };
                // Refusals before anything is written.
                match self.catalog.recording(&request.id).await? {
                    None => return Err(RetentionError::NotFound { id }),
                    Some(e) => {
                        if let Some(m) = &e.moved_to {
                            return Err(RetentionError::Moved { id, region: m.region.clone() });
                        }
                        if let Some(h) = &e.hold {
                            return Err(RetentionError::LegalHold {
                                id,
                                by: h.by.clone(),
                                at: h.at.clone(),
                                reason: h.reason.clone(),
                            });
                        }
                        if let Some(d) = &e.deleting {
                            if d.run != request.request {
                                return Err(RetentionError::Deleting { id, run: d.run.clone() });
                            }
                        }
                    }
                }
                self.catalog.open_run(&run).await?;
                run
            }
        };
        let found = self.catalog.recording(&request.id).await?;
        let outcome = match &found {
            Some(entry) => self.delete_one(entry, &run.run, ERASURE, request.bypass_governance, now).await?,
            None => Outcome::Gone,
        };
        let record = match outcome {
            Outcome::Deleted(record) => record,
            Outcome::Gone | Outcome::Changed => {
                // Finished by an earlier attempt of this request, or by another run.
                match self.catalog.run_deletions(&run.run).await?.into_iter().find(|d| d.id == request.id) {
                    Some(record) => record,
                    None => {
                        if let Some(entry) = self.catalog.recording(&request.id).await? {
                            if let Some(d) = entry.deleting {
                                return Err(RetentionError::Deleting { id, run: d.run });
                            }
                        }
                        self.catalog.close_run(&run.run).await?;
                        return Err(RetentionError::NotFound { id });
                    }
                }
            }
            Outcome::Held(h) => {
                self.catalog.close_run(&run.run).await?;
                return Err(RetentionError::LegalHold { id, by: h.by, at: h.at, reason: h.reason });
            }
            Outcome::Waiting(refusal) => {
                self.catalog.close_run(&run.run).await?;
                return Err(refusal);
            }
        };
        let report = self.report(&run, now).await?;
        Ok(Erased { record, report })
    }

    /// Sets a legal hold: in the catalog (who, why, when), then on every
    /// version in the vault when it has Object Lock. In the catalog first,
    /// so that a stop in between leaves the recording held.
    pub async fn hold(&self, id: &RecordingId, hold: LegalHold) -> Result<RecordingEntry, RetentionError> {
        self.holdable(id).await?;
        let entry = self.change_hold(id, &HoldChange::Set(hold)).await?;
        if self.settings.object_lock {
            self.hold_versions(&self.vault_loc(&entry), true).await?;
        }
        Ok(entry)
    }

    /// Releases the legal hold the catalog holds (never one set in S3 by
    /// someone else: `not_held`), recording who released it, why and when
    /// (`release`) beside the hold it released. S3's holds go first, the
    /// catalog's last, so that a stop in between leaves it held. A moved
    /// marker's hold is released too: it releases the versions left here
    /// (the copy in the other region keeps its own hold), so that the
    /// lifecycle can remove them.
    pub async fn release(&self, id: &RecordingId, release: LegalHold) -> Result<RecordingEntry, RetentionError> {
        let Some(entry) = self.catalog.recording(id).await? else {
            return Err(RetentionError::NotFound { id: id.to_string() });
        };
        let Some(held) = entry.hold.clone() else {
            return Err(RetentionError::NotHeld { id: id.to_string() });
        };
        let loc = self.vault_loc(&entry);
        if self.settings.object_lock {
            self.hold_versions(&loc, false).await?;
        }
        let released = self.change_hold(id, &HoldChange::Release { held, release }).await;
        if released.is_err() && self.settings.object_lock {
            // Refused after S3's holds went off (a hold replaced, a
            // deletion begun meanwhile): what the catalog still holds, S3
            // holds again.
            if self.catalog.recording(id).await?.is_some_and(|e| e.hold.is_some()) {
                self.hold_versions(&loc, true).await?;
            }
        }
        released
    }

    /// The row, unless it is gone or moved away.
    pub(super) async fn holdable(&self, id: &RecordingId) -> Result<RecordingEntry, RetentionError> {
        let Some(entry) = self.catalog.recording(id).await? else {
            return Err(RetentionError::NotFound { id: id.to_string() });
        };
        if let Some(m) = &entry.moved_to {
            return Err(RetentionError::Moved { id: id.to_string(), region: m.region.clone() });
        }
        Ok(entry)
    }

    pub(super) async fn change_hold(
        &self,
        id: &RecordingId,
        change: &HoldChange,
    ) -> Result<RecordingEntry, RetentionError> {
        match self.catalog.set_hold(id, change).await? {
            HoldChanged::Changed(entry) => Ok(*entry),
            HoldChanged::NotFound => Err(RetentionError::NotFound { id: id.to_string() }),
            HoldChanged::NotHeld(_) => Err(RetentionError::NotHeld { id: id.to_string() }),
            HoldChanged::Deleting(entry) => Err(RetentionError::Deleting {
                id: id.to_string(),
                run: entry.deleting.map(|d| d.run).unwrap_or_default(),
            }),
        }
    }

    pub(super) async fn hold_versions(&self, loc: &S3Location, on: bool) -> Result<(), RetentionError> {
        for v in self.vault.list_versions(loc).await.map_err(RetentionError::Vault)? {
            self.vault.set_legal_hold(loc, &v.version, on).await.map_err(RetentionError::Vault)?;
        }
        Ok(())
    }
}
