//! The tag sweep: finishes the tags of catalogued versions whose
//! `catalogued` tag was never confirmed (the row's `tags_due` mark), so that
//! no lifecycle rule can reach a version the catalog names, whatever failed.
//!
//! Every catalog write that names a new vault version (ingest, a re-key, a
//! move into this region) marks the row in the same write; the writer tags
//! the version `catalogued` and then clears the mark. When the tagging
//! fails past every retry (S3 throttling, a job cancelled, a function that
//! died), the mark stays, and the row is in a sparse index of marked rows.
//! Once a day the sweep reads that index (never the recordings), and for
//! each mark older than [`SWEEP_GRACE_SECS`] (younger ones belong to a
//! writer still at work) makes the one tag transition its role allows,
//! `pending` to `catalogued`, on the version the row names, then takes the
//! row out of its index. The version a re-key replaced stays tagged
//! `catalogued` (the sweep may not supersede anything): the mark keeps the
//! keys the re-key left (`from_keys`), so a rerun of `rekey --from-key`
//! still selects the row, and its task supersedes that version and clears
//! the mark.

use super::*;
use crate::ports::catalog::RecordingListing;

/// How old a mark must be before the sweep touches its row: past the
/// claim of any writer still at work (a re-key task holds a recording for
/// at most 960 s by default, ingest for its 15-minute timeout).
pub const SWEEP_GRACE_SECS: u64 = 3600;

/// What one sweep found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagSweep {
    /// Marked rows older than the grace period.
    pub due: usize,
    /// Versions the sweep tagged `catalogued` now.
    pub finished: Vec<String>,
    /// Marks cleared whose version was already tagged (a writer that
    /// stopped between its tag and its mark), or whose row is a marker.
    pub cleared: usize,
    /// Younger marks left to their writers.
    pub young: usize,
    /// Rows the sweep could not finish, with the code why: they stay
    /// marked, and tomorrow's sweep finds them again.
    pub failed: Vec<(String, String)>,
}

impl<K: KeyManagement, O: ObjectStore, C: RecordingCatalog + RetentionCatalog + RecordingListing> Rekeyer<K, O, C> {
    /// Sweeps every marked row once, at `now` (Unix seconds).
    pub async fn sweep_tags(&self, now: u64) -> Result<TagSweep, CatalogError> {
        let cutoff = rfc3339(now.saturating_sub(SWEEP_GRACE_SECS));
        let mut report = TagSweep::default();
        let mut after = None;
        loop {
            let (page, next) = self.catalog.tags_due_page(after, 100).await?;
            for listed in page {
                let Some(since) = listed.tags_due.as_ref().and_then(|t| t.since.as_ref()) else { continue };
                // RFC 3339 in UTC, one format: ordered as text.
                if *since > cutoff {
                    report.young += 1;
                    continue;
                }
                report.due += 1;
                match self.sweep_one(&listed.id).await {
                    Ok(Swept::Finished(version)) => report.finished.push(format!("{} {version}", listed.id)),
                    Ok(Swept::Cleared) => report.cleared += 1,
                    Ok(Swept::Gone) => {}
                    Err((code, detail)) => {
                        tracing::error!(recording = %listed.id, code, detail, "the tag sweep could not finish this recording's tags; it stays marked");
                        report.failed.push((listed.id.to_string(), code.to_string()));
                    }
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => return Ok(report),
            }
        }
    }

    async fn sweep_one(&self, id: &RecordingId) -> Result<Swept, (&'static str, String)> {
        let catalog = |e: CatalogError| (e.code(), e.to_string());
        // The index lags the table: the row as it is now.
        let Some(row) = self.catalog.recording(id).await.map_err(catalog)? else { return Ok(Swept::Gone) };
        let Some(since) = row.tags_due.as_ref().and_then(|t| t.since.clone()) else { return Ok(Swept::Gone) };
        if row.moved_to.is_some() {
            // A marker: its version is tagged moved, on purpose.
            self.catalog.tags_swept(id, &row.message_id, &since).await.map_err(catalog)?;
            return Ok(Swept::Cleared);
        }
        if row.deleting.is_some() {
            return Err(("deleting", "a deletion is under way; its run finishes it".into()));
        }
        let loc = self.location(&row);
        let version = row.vault_version.as_deref();
        let s3 = |e: S3Error| (e.code(), e.to_string());
        let tags = match self.s3.tags(&loc, version).await {
            Ok(tags) => tags,
            Err(S3Error::NotFound { location }) => {
                return Err((
                    "catalogued_version_missing",
                    format!("the catalog names {location} version {}, which the vault no longer has: restore it from a backup or point-in-time recovery, and report it to the security team", version.unwrap_or("")),
                ))
            }
            Err(e) => return Err(s3(e)),
        };
        let finished = match state_of(&tags) {
            Some(PENDING) => {
                self.s3.tag_with(&loc, version, &tags, STATE_TAG, CATALOGUED).await.map_err(s3)?;
                true
            }
            Some(CATALOGUED) | None => false,
            Some(other) => {
                return Err((
                    "catalogued_version_misstated",
                    format!("the version the catalog names is tagged {STATE_TAG}={other}; the sweep may only tag pending versions catalogued: tag it {CATALOGUED} by hand"),
                ))
            }
        };
        self.catalog.tags_swept(id, &row.message_id, &since).await.map_err(catalog)?;
        Ok(if finished { Swept::Finished(version.unwrap_or("").to_string()) } else { Swept::Cleared })
    }
}

enum Swept {
    /// Tagged catalogued now (the version).
    Finished(String),
    /// Only the mark cleared.
    Cleared,
    /// The row is gone or no longer marked.
    Gone,
}
