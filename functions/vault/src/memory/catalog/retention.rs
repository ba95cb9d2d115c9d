//! The twin of [`RetentionCatalog`]: runs, holds, and deletions marked and
//! finished in all-or-nothing steps.

use super::MemoryCatalog;
use crate::ports::catalog::{
    CatalogError, DeletionRecord, DeletionRun, HoldChange, HoldChanged, Marked, RetentionCatalog,
};
use crate::recording::{Deleting, RecordingEntry, RecordingId};

impl RetentionCatalog for MemoryCatalog {
    async fn due(
        &self,
        recording_type: &str,
        until: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        self.faults.before("due").await?;
        let mut due: Vec<(String, RecordingEntry)> = self
            .lock()
            .recordings
            .values()
            .filter(|e| e.id.recording_type == recording_type)
            .filter(|e| e.retain_until.as_deref().is_some_and(|u| u <= until))
            .filter_map(|e| e.retain_until.as_ref().map(|u| (format!("{u}|{}", e.id), e.clone())))
            .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        let limit = limit.max(1);
        let next = (due.len() > limit).then(|| due[limit - 1].0.clone());
        Ok((due.into_iter().take(limit).map(|(_, e)| e).collect(), next))
    }

    async fn stamp_retention(
        &self,
        entry: &RecordingEntry,
        retain_until: Option<&str>,
        retention_days: Option<u32>,
    ) -> Result<bool, CatalogError> {
        self.faults.before("stamp_retention").await?;
        let done = {
            let mut state = self.lock();
            match state.recordings.get_mut(&entry.id) {
                Some(row) if row.message_id == entry.message_id && row.moved_to.is_none() && row.deleting.is_none() => {
                    row.retain_until = retain_until.map(str::to_string);
                    row.retention_days = retention_days;
                    true
                }
                _ => false,
            }
        };
        self.faults.after("stamp_retention").await?;
        Ok(done)
    }

    async fn stamped_policy(&self) -> Result<Option<(String, Option<String>)>, CatalogError> {
        self.faults.before("stamped_policy").await?;
        Ok(self.lock().stamped.clone())
    }

    async fn save_stamped_policy(&self, policy: &str, cursor: Option<&str>) -> Result<(), CatalogError> {
        self.faults.before("save_stamped_policy").await?;
        self.lock().stamped = Some((policy.to_string(), cursor.map(str::to_string)));
        self.faults.after("save_stamped_policy").await
    }

    async fn mark_deleting(
        &self,
        entry: &RecordingEntry,
        deleting: &Deleting,
        now: u64,
    ) -> Result<Marked, CatalogError> {
        self.faults.before("mark_deleting").await?;
        self.single_item(format!("recording#{}", entry.id))?;
        let answer = {
            let mut state = self.lock();
            let claim = state.claims.get(&entry.id).filter(|c| c.until >= now).map(|c| c.until);
            match state.recordings.get_mut(&entry.id) {
                Some(row)
                    if row.message_id == entry.message_id
                        && row.moved_to.is_none()
                        && row.deleting.is_none()
                        && row.retain_until == entry.retain_until =>
                {
                    if row.hold.is_some() {
                        Marked::Held
                    } else if let Some(until) = claim {
                        Marked::Claimed { until }
                    } else {
                        row.deleting = Some(deleting.clone());
                        Marked::Marked
                    }
                }
                other => Marked::RowChanged(other.map(|r| Box::new(r.clone()))),
            }
        };
        self.faults.after("mark_deleting").await?;
        Ok(answer)
    }

    async fn finish_deletion(&self, entry: &RecordingEntry, record: &DeletionRecord) -> Result<bool, CatalogError> {
        self.faults.before("finish_deletion").await?;
        let held = self.hold_items(&entry.id, &entry.counted_keys().iter().collect::<Vec<_>>()).await?;
        let answer = {
            let mut state = self.lock();
            match state.recordings.get(&entry.id) {
                Some(row) if row.deleting.as_ref().is_some_and(|d| d.run == record.marked_by) => {
                    let row = state.recordings.remove(&entry.id).expect("present");
                    for arn in row.counted_keys() {
                        if let Some((usage, _)) = state.usage.get_mut(arn) {
                            usage.recordings = usage.recordings.saturating_sub(1);
                            usage.bytes = usage.bytes.saturating_sub(row.plaintext_size);
                        }
                    }
                    state
                        .deletions
                        .entry(record.run.clone())
                        .or_default()
                        .insert(record.id.to_string(), record.clone());
                    Ok(true)
                }
                None => Ok(false),
                Some(_) => Err(CatalogError::Refused {
                    detail: format!("{} is not being deleted by run {}", entry.id, record.marked_by),
                }),
            }
        };
        self.release_items(held);
        let answer = answer?;
        self.faults.after("finish_deletion").await?;
        Ok(answer)
    }

    async fn open_run(&self, run: &DeletionRun) -> Result<(), CatalogError> {
        self.faults.before("open_run").await?;
        self.lock().runs.insert(run.run.clone(), run.clone());
        self.faults.after("open_run").await
    }

    async fn open_runs(&self) -> Result<Vec<DeletionRun>, CatalogError> {
        self.faults.before("open_runs").await?;
        Ok(self.lock().runs.values().cloned().collect())
    }

    async fn run_deletions(&self, run: &str) -> Result<Vec<DeletionRecord>, CatalogError> {
        self.faults.before("run_deletions").await?;
        Ok(self.lock().deletions.get(run).map(|d| d.values().cloned().collect()).unwrap_or_default())
    }

    async fn close_run(&self, run: &str) -> Result<(), CatalogError> {
        self.faults.before("close_run").await?;
        {
            let mut state = self.lock();
            state.runs.remove(run);
            state.deletions.remove(run);
        }
        self.faults.after("close_run").await
    }

    async fn set_hold(&self, id: &RecordingId, change: &HoldChange) -> Result<HoldChanged, CatalogError> {
        self.faults.before("set_hold").await?;
        self.single_item(format!("recording#{id}"))?;
        let answer = {
            let mut state = self.lock();
            match state.recordings.get_mut(id) {
                None => HoldChanged::NotFound,
                Some(row) if row.deleting.is_some() => HoldChanged::Deleting(Box::new(row.clone())),
                Some(row) => match change {
                    HoldChange::Set(hold) => {
                        row.hold = Some(hold.clone());
                        HoldChanged::Changed(Box::new(row.clone()))
                    }
                    HoldChange::Release { held, release } if row.hold.as_ref() == Some(held) => {
                        row.hold = None;
                        row.released_hold =
                            Some(crate::recording::ReleasedHold { hold: held.clone(), release: release.clone() });
                        HoldChanged::Changed(Box::new(row.clone()))
                    }
                    HoldChange::Release { .. } => HoldChanged::NotHeld(Box::new(row.clone())),
                },
            }
        };
        self.faults.after("set_hold").await?;
        Ok(answer)
    }
}
