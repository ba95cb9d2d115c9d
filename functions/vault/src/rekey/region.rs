//! Moving a recording into another region's deployment: the message
//! copied as it is (its keys multi-Region, with replicas there) or encrypted
//! again under that region's keys, catalogued there, then the row here
//! turned into a marker that names where it went.

use tokio::runtime::Handle;

use super::copy::CopyCheck;
use super::*;
use crate::ports::catalog::{HoldChange, HoldChanged, RetentionCatalog};

impl<K: KeyManagement, O: ObjectStore, C: RecordingCatalog + RetentionCatalog> Rekeyer<K, O, C> {
    /// Moves a recording into another region's deployment: its message
    /// copied as it is (multi-Region keys, `copy_only`) or encrypted again
    /// under keys of that region, catalogued there, and only then this
    /// region's row made a marker of where it went (its keys count it no
    /// more) and its version tagged `moved` for the lifecycle rule. A rerun
    /// after any step finishes the rest; a destination that already has
    /// the recording (from an earlier attempt) is used as it is.
    pub(super) async fn move_region(&self, task: &RekeyTask, dest: &Destination) -> Result<RekeyOutcome, RekeyError> {
        let id = &task.id;
        let Some(destinations) = self.destinations.clone() else {
            return Err(RekeyError::NoDestinations { detail: "no adapters for other regions are configured".into() });
        };
        if dest.region == self.settings.region || dest.vault_bucket == self.settings.vault_bucket {
            return Err(RekeyError::BadTarget {
                detail: format!("the destination {dest} is this deployment's region or vault"),
            });
        }
        let entry = self.catalog.recording(id).await?.ok_or_else(|| RekeyError::NotFound { id: id.to_string() })?;
        if let Some(outcome) = self.moved_already(&entry, dest).await? {
            return Ok(outcome);
        }
        if let Some(from) = &task.from_key {
            // A row still marked as re-keyed off `from` counts as under it.
            if !entry.is_under(from) && !entry.was_under(from) {
                return Ok(RekeyOutcome::NotUnderKey { id: id.clone(), key: from.clone() });
            }
        }
        if entry.vault_version.is_none() {
            return Err(RekeyError::Unversioned { id: id.to_string() });
        }
        let keys = if task.copy_only {
            if let Some(k) = entry.wrapping_keys.iter().find(|k| !KmsArn::parse(k).is_some_and(|a| a.is_multi_region()))
            {
                return Err(RekeyError::NotMultiRegion { id: id.to_string(), key: k.clone() });
            }
            // Each key's replica in the destination region must exist and be
            // enabled, or nothing there could play the copy.
            for replica in Self::replicas_in(&entry.wrapping_keys, &dest.region) {
                self.kms.describe_key(&replica).await.and_then(|d| d.require_enabled()).map_err(RekeyError::Key)?;
            }
            None
        } else {
            let target = match &task.target {
                Target::Keys(keys) if !keys.is_empty() => keys.clone(),
                _ => return Err(RekeyError::NoTarget { recording_type: id.recording_type.clone() }),
            };
            Some(self.keys.resolve(&self.kms, &target, &dest.region).await.map_err(RekeyError::Key)?)
        };
        let (token, entry) = self.claim(&entry, &task.request_id).await?;
        if entry.moved_to.is_some() {
            self.release(id, &token).await;
            return self.moved_already(&entry, dest).await?.ok_or_else(|| RekeyError::MovedAway {
                id: id.to_string(),
                to: entry.moved_to.as_ref().map(ToString::to_string).unwrap_or_default(),
            });
        }
        if let Some(d) = &entry.deleting {
            self.release(id, &token).await;
            return Err(RekeyError::Deleting { id: id.to_string(), reason: d.reason.clone(), run: d.run.clone() });
        }
        let (dst_objects, dst_catalog) = destinations.open(dest);
        let result =
            self.move_region_claimed(&entry, task, dest, keys.as_deref(), &dst_objects, &dst_catalog, &token).await;
        if result.is_err() {
            self.release(id, &token).await;
        }
        result
    }

    /// `Some` when the row already says the recording moved: to `dest` (a
    /// rerun, its version's tag finished), or elsewhere (an error).
    pub(super) async fn moved_already(
        &self,
        entry: &RecordingEntry,
        dest: &Destination,
    ) -> Result<Option<RekeyOutcome>, RekeyError> {
        let Some(to) = &entry.moved_to else { return Ok(None) };
        if (to.region.as_str(), to.vault_bucket.as_str(), to.catalog_table.as_str())
            != (dest.region.as_str(), dest.vault_bucket.as_str(), dest.catalog_table.as_str())
        {
            return Err(RekeyError::MovedAway { id: entry.id.to_string(), to: to.to_string() });
        }
        self.tag_moved(entry).await?;
        Ok(Some(RekeyOutcome::AlreadyMoved { id: entry.id.clone(), to: dest.clone() }))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn move_region_claimed(
        &self,
        entry: &RecordingEntry,
        task: &RekeyTask,
        dest: &Destination,
        keys: Option<&[crate::keyring::WrappingKey]>,
        dst_objects: &O,
        dst_catalog: &C,
        token: &str,
    ) -> Result<RekeyOutcome, RekeyError> {
        let id = &entry.id;
        let dst_loc = S3Location { bucket: dest.vault_bucket.clone(), key: entry.vault_key.clone() };
        let now = rfc3339(unix_now());
        // 1. The destination may have it from an earlier attempt.
        let there = match dst_catalog.recording(id).await? {
            Some(row) => Self::same_recording(entry, row)?,
            None => {
                // 2. The message there, born pending.
                let row = match keys {
                    None => {
                        let written = self
                            .copy_message(entry, dst_objects, &dst_loc)
                            .await
                            .map_err(|e| Self::unlocked_there(e, entry, dest))?;
                        RecordingEntry {
                            vault_version: written.version.clone(),
                            // The same keys, named as the destination knows them: the
                            // replicas there (the header still names the originals;
                            // the MRK-aware unwrap takes either).
                            wrapping_keys: Self::replicas_in(&entry.wrapping_keys, &dest.region),
                            ciphertext_size: written.size,
                            checksum_sha256: written.checksum_sha256.clone(),
                            moved_to: None,
                            // Until the tag there is confirmed (below).
                            tags_due: Some(TagsDue { since: Some(now.clone()), from_keys: Vec::new() }),
                            ..entry.clone()
                        }
                    }
                    Some(keys) => {
                        let (written, message_id) = self
                            .write_new_message(entry, keys, dst_objects, &dst_loc)
                            .await
                            .map_err(|e| Self::unlocked_there(e, entry, dest))?;
                        RecordingEntry {
                            vault_version: written.version.clone(),
                            wrapping_keys: keys.iter().map(|k| k.arn().to_string()).collect(),
                            provider: keys[0].provider_id().to_string(),
                            message_id,
                            frame_length: self.settings.frame_length,
                            ciphertext_size: written.size,
                            checksum_sha256: written.checksum_sha256.clone(),
                            rekeyed_at: Some(now.clone()),
                            moved_to: None,
                            // Until the tag there is confirmed (below).
                            tags_due: Some(TagsDue { since: Some(now.clone()), from_keys: Vec::new() }),
                            ..entry.clone()
                        }
                    }
                };
                if row.vault_version.is_none() {
                    return Err(RekeyError::Unversioned { id: format!("{id} in {dest}") });
                }
                // 3. Catalogued there, with its keys' usage.
                self.record_there(&row, task, dst_catalog, &now).await?
            }
        };
        // The destination's version out of its lifecycle rule's reach, then
        // its row's mark cleared (a failure leaves it for that region's
        // tag sweep).
        let tags = dst_objects.tags(&dst_loc, there.vault_version.as_deref()).await.map_err(RekeyError::S3)?;
        if tags.iter().any(|(k, v)| k == STATE_TAG && v == PENDING) {
            dst_objects
                .tag_with(&dst_loc, there.vault_version.as_deref(), &tags, STATE_TAG, CATALOGUED)
                .await
                .map_err(RekeyError::S3)?;
        }
        crate::object::clear_mark(dst_catalog, &there).await;
        // 3b. What keeps the recording here keeps it there before this row
        // lets go of it: its legal hold and retention (an earlier attempt
        // may have written the row there before a hold was set here). The
        // marker below is written only while this row is still `entry`
        // (hold included), so the hold carried is the hold the marker drops.
        let there = self.carry_protection(entry, there, dst_objects, dst_catalog, &dst_loc).await?;
        // 4. This region's row: a marker of where it went.
        let marker = RecordingEntry {
            moved_to: Some(MovedTo {
                region: dest.region.clone(),
                vault_bucket: dest.vault_bucket.clone(),
                catalog_table: dest.catalog_table.clone(),
                moved_at: now.clone(),
            }),
            // Its retention moved with it: the copy there has it. The hold
            // too, and it stays here as well: the versions here keep their
            // S3 legal hold (this role may set one, never release it), and
            // `callvault hold release` on the marker releases them, so the
            // `moved-recordings` rule can remove them.
            retain_until: None,
            retention_days: None,
            hold: entry.hold.clone(),
            // A marker names no version to keep: its version is tagged moved.
            tags_due: None,
            ..entry.clone()
        };
        match self.move_row(entry, &marker, token, &now).await {
            Ok(Moved::Moved) => {}
            Ok(Moved::RowChanged(found)) => {
                let now = found.map(|f| f.message_id).unwrap_or_else(|| "none: the row is gone".into());
                return Err(RekeyError::RowChanged { id: id.to_string(), now });
            }
            Err(e) => match self.catalog.recording(id).await {
                Ok(Some(row)) if row.moved_to.is_some() => {}
                _ => return Err(e.into()),
            },
        }
        // 5. This region's version: for the lifecycle rule.
        self.tag_moved(entry).await?;
        Ok(RekeyOutcome::MovedRegion { entry: Box::new(there), to: dest.clone(), copied: keys.is_none() })
    }

    /// The destination's row `there` with the legal hold and retention of
    /// `entry`: a hold here is set there (in the catalog, and on the
    /// destination's version when this vault has Object Lock and that one
    /// has too); a retention date here is stamped there. A hold there that
    /// `entry` lacks is kept: a move never releases a hold. A row there that
    /// changed meanwhile fails the attempt (`row_changed`) for the retry to
    /// reconcile.
    pub(super) async fn carry_protection(
        &self,
        entry: &RecordingEntry,
        mut there: RecordingEntry,
        dst_objects: &O,
        dst_catalog: &C,
        dst_loc: &S3Location,
    ) -> Result<RecordingEntry, RekeyError> {
        let id = &entry.id;
        let changed = |what: &str| RekeyError::RowChanged {
            id: id.to_string(),
            now: format!("its row in the destination changed while its {what} was carried there"),
        };
        if let Some(hold) = entry.hold.as_ref().filter(|h| there.hold.as_ref() != Some(*h)) {
            match dst_catalog.set_hold(id, &HoldChange::Set(hold.clone())).await? {
                HoldChanged::Changed(row) => there = *row,
                _ => return Err(changed("legal hold")),
            }
        }
        if entry.hold.is_some() && self.settings.vault_lock.is_some() {
            if let Some(version) = there.vault_version.as_deref() {
                match dst_objects.set_legal_hold(dst_loc, version, true).await {
                    // That vault has no Object Lock: its catalog's hold is
                    // what keeps the recording there, as for all of its own.
                    Ok(()) | Err(S3Error::Refused { .. }) => {}
                    Err(e) => return Err(RekeyError::S3(e)),
                }
            }
        }
        if (&there.retain_until, there.retention_days) != (&entry.retain_until, entry.retention_days) {
            if !dst_catalog.stamp_retention(&there, entry.retain_until.as_deref(), entry.retention_days).await? {
                return Err(changed("retention"));
            }
            there.retain_until.clone_from(&entry.retain_until);
            there.retention_days = entry.retention_days;
        }
        Ok(there)
    }

    /// The ARNs of `keys` (multi-Region) in `region`: each key once.
    pub(super) fn replicas_in(keys: &[String], region: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(keys.len());
        for k in keys {
            let there = KmsArn::parse(k).map(|a| a.in_region(region)).unwrap_or_else(|| k.clone());
            if !out.iter().any(|o| crate::arn::same_key(o, &there)) {
                out.push(there);
            }
        }
        out
    }

    /// The destination's row is this recording (an earlier attempt put it
    /// there), or another one that must not be touched.
    pub(super) fn same_recording(entry: &RecordingEntry, row: RecordingEntry) -> Result<RecordingEntry, RekeyError> {
        if let Some(to) = &row.moved_to {
            // The recording moved away from there once: its marker is no
            // copy of it, and replacing a marker is not built.
            return Err(RekeyError::DestinationTaken {
                id: entry.id.to_string(),
                detail: format!("a marker of its earlier move from there to {to}; moving it back is not supported"),
            });
        }
        let same = row.plaintext_size == entry.plaintext_size
            && row.encrypted_at == entry.encrypted_at
            && row.source_etag == entry.source_etag;
        if same {
            Ok(row)
        } else {
            Err(RekeyError::DestinationTaken {
                id: entry.id.to_string(),
                detail: format!(
                    "encrypted {} from ETag {}, {} bytes",
                    row.encrypted_at, row.source_etag, row.plaintext_size
                ),
            })
        }
    }

    /// A write there that S3 refused because that vault has no Object Lock
    /// (and this recording is locked here): `destination_unlocked`.
    fn unlocked_there(e: RekeyError, entry: &RecordingEntry, dest: &Destination) -> RekeyError {
        match e {
            RekeyError::S3(S3Error::Refused { detail, .. }) if detail.contains("Object Lock") => {
                RekeyError::DestinationUnlocked { id: entry.id.to_string(), dest: dest.to_string() }
            }
            other => other,
        }
    }

    /// Catalogues `row` in the destination's catalog under a claim there.
    pub(super) async fn record_there(
        &self,
        row: &RecordingEntry,
        task: &RekeyTask,
        dst_catalog: &C,
        now: &str,
    ) -> Result<RecordingEntry, RekeyError> {
        let id = &row.id;
        let token =
            match dst_catalog.claim(id, &row.message_id, &task.request_id, unix_now(), self.settings.claim_secs).await?
            {
                Claim::Acquired { token } => token,
                Claim::HeldElsewhere { .. } => return Err(RekeyError::InProgress { id: id.to_string() }),
            };
        match dst_catalog.record(row, &token, now).await {
            Ok(Recorded::New) => Ok(row.clone()),
            Ok(Recorded::AlreadyCatalogued(existing)) => {
                let _ = dst_catalog.release(id, &token).await;
                Self::same_recording(row, *existing)
            }
            Err(e) => {
                let _ = dst_catalog.release(id, &token).await;
                match dst_catalog.recording(id).await {
                    Ok(Some(existing)) if existing.message_id == row.message_id => Ok(existing),
                    _ => Err(e.into()),
                }
            }
        }
    }

    /// Copies the catalogued version byte for byte to `dst_loc` of `dst`,
    /// born pending, stored only if it is the catalogued message whole (its
    /// header's message id, its size), then checked against S3's checksum.
    pub(super) async fn copy_message(
        &self,
        entry: &RecordingEntry,
        dst: &O,
        dst_loc: &S3Location,
    ) -> Result<crate::ports::objects::WrittenObject, RekeyError> {
        let handle = Handle::current();
        let body =
            self.s3.read(&self.location(entry), entry.vault_version.as_deref(), None).await.map_err(RekeyError::S3)?;
        let mut reader = body.into_blocking_read(&handle);
        let mut writer = dst.upload(&handle, dst_loc, self.pending_write(entry));
        let message_id = hex::decode(&entry.message_id).unwrap_or_default();
        writer.check_with(Box::new(CopyCheck::new(message_id, entry.ciphertext_size)));
        let written = tokio::task::spawn_blocking(move || match std::io::copy(&mut reader, &mut writer) {
            Ok(_) => writer.finish().map_err(RekeyError::S3),
            Err(e) => {
                writer.abort();
                Err(match FlowError::from_io(e) {
                    FlowError::S3(e) => RekeyError::S3(e),
                    other => RekeyError::Io(other.to_string()),
                })
            }
        })
        .await
        .map_err(|e| RekeyError::Io(format!("the copy failed: {e}")))??;
        dst.verify(dst_loc, &written).await.map_err(RekeyError::S3)?;
        Ok(written)
    }

    /// Tags this region's version of a recording that moved away `moved`
    /// (from catalogued or pending; already moved stays).
    /// A failure is the job's to retry (the rerun finds the marker and
    /// tags again): an untagged version here would never be removed.
    /// Every version of the object here that a rule would keep (`pending`
    /// or `catalogued`) tagged `moved`: the one the row named, and any an
    /// unfinished re-key left catalogued before it (a row still marked
    /// `tags_due`), so that nothing of a moved recording stays here for
    /// good.
    pub(super) async fn tag_moved(&self, entry: &RecordingEntry) -> Result<(), RekeyError> {
        self.retag_versions(&self.location(entry), |_, state| {
            matches!(state, Some(PENDING) | Some(CATALOGUED)).then_some(MOVED)
        })
        .await?;
        Ok(())
    }
}
