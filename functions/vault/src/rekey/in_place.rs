//! Re-keying a recording in its own vault: the old message read whole,
//! its plaintext encrypted again as a new message into a new version of the
//! same object, proven, catalogued, and the old version superseded.

use std::io::{Read, Write};

use envelope::{EncryptingWriter, Limits, PendingMessage};
use tokio::runtime::Handle;

use super::*;
use crate::recording::encryption_context;

impl<K: KeyManagement, O: ObjectStore, C: RecordingCatalog + RetentionCatalog> Rekeyer<K, O, C> {
    pub(super) async fn move_claimed(
        &self,
        entry: &RecordingEntry,
        keys: &[crate::keyring::WrappingKey],
        token: &str,
    ) -> Result<RekeyOutcome, RekeyError> {
        let id = &entry.id;
        let loc = self.location(entry);
        let old_version = entry.vault_version.clone();
        // Versions newer than the catalogued one are orphans of attempts
        // that stopped: only then is the object's version list read (step 4).
        let current = self.s3.head(&loc, None).await.map_err(RekeyError::S3)?.and_then(|(_, v)| v);
        // A row still marked: an earlier move's tags were never finished,
        // so the version before it may still be tagged catalogued.
        let leftovers = current != old_version || entry.tags_due.is_some();

        let (written, new_message_id) = self.write_new_message(entry, keys, &self.s3, &loc).await?;
        if written.version.is_none() || written.version == old_version {
            return Err(RekeyError::Unversioned { id: id.to_string() });
        }

        // 3. The catalog, only while it still names the old message.
        let now = rfc3339(unix_now());
        let moved = RecordingEntry {
            vault_version: written.version.clone(),
            wrapping_keys: keys.iter().map(|k| k.arn().to_string()).collect(),
            provider: keys[0].provider_id().to_string(),
            message_id: new_message_id,
            frame_length: self.settings.frame_length,
            ciphertext_size: written.size,
            checksum_sha256: written.checksum_sha256.clone(),
            rekeyed_at: Some(now.clone()),
            // Marked in the same write that names the new version, until its
            // tag is confirmed: a tag that never lands cannot leave the only
            // catalogued copy to the lifecycle rule for pending writes.
            tags_due: Some(TagsDue { since: Some(now.clone()), from_keys: Self::from_keys(entry) }),
            ..entry.clone()
        };
        match self.move_row(entry, &moved, token, &now).await {
            Ok(Moved::Moved) => {}
            Ok(Moved::RowChanged(found)) => {
                // Ours is an orphan: superseded at once (never catalogued).
                self.mark(&loc, written.version.as_deref(), SUPERSEDED).await;
                let now = found.map(|f| f.message_id).unwrap_or_else(|| "none: the row is gone".into());
                return Err(RekeyError::RowChanged { id: id.to_string(), now });
            }
            // The transaction may have committed all the same: look.
            Err(e) => match self.catalog.recording(id).await {
                Ok(Some(row)) if row.message_id == moved.message_id => {}
                _ => {
                    tracing::info!(
                        code = "vault_orphan_pending",
                        recording = %id,
                        version = written.version.as_deref().unwrap_or(""),
                        "the re-keyed version is not catalogued; it stays pending and the rerun marks it superseded"
                    );
                    return Err(e.into());
                }
            },
        }

        // 4. Tags: the new version out of the lifecycle rule's reach, the
        // old one (and any orphan of an earlier attempt) into it; then the
        // row's mark cleared.
        // A failure here is the job's to retry: the catalog names the new
        // version, but until it is tagged catalogued the lifecycle rule for
        // pending writes would reach it; the retry finds the recording on
        // its target and finishes the tags (`AlreadyOnTarget`). If every
        // retry fails, the row's mark keeps it in the tag sweep's index (and
        // its old keys selected by `rekey --from-key`, refused by `keys
        // retire`) until the sweep or a rerun finishes them.
        let tagged =
            if leftovers { self.tidy(&moved).await } else { self.retag(&loc, &moved, old_version.as_deref()).await };
        let superseded = match tagged {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(recording = %id, code = e.code(), error = %e, "re-keyed and catalogued; its tags are the retry's to finish");
                return Err(e);
            }
        };
        crate::object::clear_mark(&self.catalog, &moved).await;
        let proven = Self::provable(keys, &self.settings.region).into_iter().map(str::to_string).collect();
        Ok(RekeyOutcome::Rekeyed { entry: Box::new(moved), from: entry.wrapping_keys.clone(), superseded, proven })
    }

    /// Steps 1 and 2: the catalogued message read, authenticated and
    /// decrypted (one KMS call), and encrypted again under `keys` into a new
    /// version at `dst_loc` of `dst`, stored only if it decrypts to the same
    /// plaintext, then checked against S3's checksum. Returns what was
    /// written and the new message id.
    pub(super) async fn write_new_message(
        &self,
        entry: &RecordingEntry,
        keys: &[crate::keyring::WrappingKey],
        dst: &O,
        dst_loc: &S3Location,
    ) -> Result<(crate::ports::objects::WrittenObject, String), RekeyError> {
        let id = &entry.id;
        let handle = Handle::current();
        let (pending, header) = self.read_header(entry).await?;
        // Any catalogued key of the recording may unwrap it, a
        // disaster-recovery key elsewhere included (a re-key off a disabled
        // primary goes through its DR key).
        let policy = UnwrapPolicy {
            region: self.settings.region.clone(),
            allowed_keys: Some(entry.wrapping_keys.clone()),
            allowed_accounts: None,
            allow_other_regions: true,
        };
        let (data_key, _) = unwrap_data_key(&self.kms, &header, &policy).await.map_err(|e| match e {
            KeyError::Integrity { detail } | KeyError::NoUsableKey { detail } => RekeyError::integrity(id, detail),
            other => RekeyError::Key(other),
        })?;
        let plaintext = pending.decrypt(&data_key).map_err(|e| RekeyError::integrity(id, e.to_string()))?;
        drop(data_key);

        // The new message, under the same context, into a new version.
        let message =
            flow::begin_encryption(&self.kms, keys, header.encryption_context.clone(), self.settings.frame_length)
                .await
                .map_err(|e| RekeyError::from_flow(e, id))?;
        let new_header = message.encryptor.header().clone();
        let new_message_id = hex::encode(new_header.message_id);
        let mut writer = dst.upload(&handle, dst_loc, self.pending_write(entry));
        let (proof, plaintext_read) = DecryptionProof::new(message.check, message.encrypted_data_keys);
        writer.check_with(Box::new(proof));
        let encryptor = message.encryptor;
        let expected = entry.plaintext_size;
        let task_id = id.clone();
        let streamed = tokio::task::spawn_blocking(move || {
            let copied = copy_through(plaintext, &mut writer, encryptor, &task_id);
            match copied {
                Ok(digest) if digest.0 == expected => {
                    *plaintext_read.lock().map_err(|_| RekeyError::Io("poisoned".into()))? = Some(digest);
                    writer.finish().map_err(RekeyError::S3)
                }
                Ok((read, _)) => {
                    writer.abort();
                    Err(RekeyError::integrity(
                        &task_id,
                        format!("the old message holds {read} bytes of plaintext, the catalog says {expected}"),
                    ))
                }
                Err(e) => {
                    writer.abort();
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| RekeyError::Io(format!("the re-encryption task failed: {e}")))?;
        let written = streamed?;
        dst.verify(dst_loc, &written).await.map_err(RekeyError::S3)?;
        self.prove_with_kms(id, keys, &new_header).await?;
        Ok((written, new_message_id))
    }

    /// The proof KMS gives, before anything is catalogued: each symmetric
    /// target key of this region unwraps the data key written for it, and
    /// that data key commits to the new message. It proves the key is
    /// enabled, allowed to this role under the recording's context, and the
    /// one the message names (the decryption proof alone used the data key
    /// in memory). An RSA key (wrapped locally with its public key) and a key
    /// of another region (a move: that region's playback is what uses it)
    /// are not asked here; the job's report says so.
    pub(super) async fn prove_with_kms(
        &self,
        id: &RecordingId,
        keys: &[crate::keyring::WrappingKey],
        header: &envelope::Header,
    ) -> Result<(), RekeyError> {
        for key in Self::provable(keys, &self.settings.region) {
            let policy = UnwrapPolicy {
                region: self.settings.region.clone(),
                allowed_keys: Some(vec![key.to_string()]),
                allowed_accounts: None,
                allow_other_regions: false,
            };
            let refused =
                |detail: String| RekeyError::TargetKeyRefused { id: id.to_string(), key: key.to_string(), detail };
            let (data_key, _) = unwrap_data_key(&self.kms, header, &policy).await.map_err(|e| match e {
                e if e.is_retryable() => RekeyError::Key(e),
                e => refused(e.to_string()),
            })?;
            header
                .verify(&data_key)
                .map_err(|e| refused(format!("the data key KMS returned does not commit to the message: {e}")))?;
        }
        Ok(())
    }

    /// The target keys KMS is asked about: symmetric, in `region`.
    pub(super) fn provable<'a>(keys: &'a [crate::keyring::WrappingKey], region: &str) -> Vec<&'a str> {
        keys.iter()
            .filter(|k| matches!(k, crate::keyring::WrappingKey::Kms { .. }))
            .map(|k| k.arn())
            .filter(|arn| KmsArn::parse(arn).is_some_and(|a| a.region == region))
            .collect()
    }

    /// How a new vault version is written: born pending.
    pub(super) fn pending_write(&self, entry: &RecordingEntry) -> WriteOptions {
        let mut write = self.settings.write.clone();
        write.content_type = Some("application/octet-stream".into());
        write.tags = vec![(STATE_TAG.into(), PENDING.into())];
        write.part_size = part_size_for(entry.ciphertext_size + 64 * 1024, write.part_size);
        // This vault's Object Lock, on a move's copy in another region's
        // vault too: a locked recording keeps its date and hold wherever it
        // goes. A vault there without Object Lock refuses the write
        // (`destination_unlocked`).
        // A date already past (a held recording kept beyond it) is not
        // sent: S3 refuses a retain-until date in the past, and the legal
        // hold keeps the copy.
        if let Some(mode) = &self.settings.vault_lock {
            let ahead = |until: &String| crate::time::parse_rfc3339(until).is_some_and(|t| t > unix_now());
            if let Some(until) = entry.retain_until.as_ref().filter(|u| ahead(u)) {
                write.lock.retention = Some((mode.clone(), until.clone()));
            }
            write.lock.legal_hold = entry.hold.is_some();
        }
        write
    }

    /// The catalogued version's header, checked against the catalog (the
    /// message id) and the recording (`org`, type, id) before any KMS call;
    /// the rest of the message unread behind it.
    pub(super) async fn read_header(
        &self,
        entry: &RecordingEntry,
    ) -> Result<(PendingMessage<impl Read + Send + 'static>, envelope::Header), RekeyError> {
        let id = &entry.id;
        let loc = self.location(entry);
        let handle = Handle::current();
        let body = self.s3.read(&loc, entry.vault_version.as_deref(), None).await.map_err(|e| match e {
            S3Error::NotFound { location } => {
                RekeyError::integrity(id, format!("the catalog lists {location} but the vault has no such version"))
            }
            other => RekeyError::S3(other),
        })?;
        // Buffered: the message is read in frame-sized pieces, and each read
        // of the bridge to the async body is a trip through the runtime.
        let reader = std::io::BufReader::with_capacity(READ_BUFFER, body.into_blocking_read(&handle));
        let pending = tokio::task::spawn_blocking(move || PendingMessage::read_header(reader, &Limits::default()))
            .await
            .map_err(|e| RekeyError::Io(format!("reading the header failed: {e}")))?
            .map_err(|e| match e {
                // The stream broke: S3's error, or a transient read failure.
                envelope::DecryptError::Io(io) => match FlowError::from_io(io) {
                    FlowError::S3(e) => RekeyError::S3(e),
                    other => RekeyError::Io(other.to_string()),
                },
                other => RekeyError::integrity(id, format!("the vault object's header: {other}")),
            })?;
        let header = pending.header().clone();
        entry.check_header(&header).map_err(|e| RekeyError::integrity(id, e))?;
        let required = encryption_context(&self.settings.org, id);
        require_context(&header, &required).map_err(|e| RekeyError::from_flow(e, id))?;
        Ok((pending, header))
    }
}

/// The old message's plaintext (authenticated frame by frame as it is
/// read) through the new message into `writer`; returns the plaintext's
/// length and SHA-256.
fn copy_through<R: Read, W: Write>(
    mut plaintext: envelope::DecryptingReader<R>,
    writer: W,
    encryptor: envelope::MessageEncryptor,
    id: &RecordingId,
) -> Result<crate::object::PlaintextDigest, RekeyError> {
    let mut digest = PlaintextDigester::new();
    let io = |e: std::io::Error| match FlowError::from_io(e) {
        FlowError::S3(e) => RekeyError::S3(e),
        FlowError::Decrypt(e) if e.code() == "integrity" => RekeyError::integrity(id, e.to_string()),
        other => RekeyError::Io(other.to_string()),
    };
    let mut w = EncryptingWriter::new(writer, encryptor).map_err(io)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match plaintext.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        digest.update(&buf[..n]);
        w.write_all(&buf[..n]).map_err(io)?;
    }
    if !plaintext.is_complete() {
        return Err(RekeyError::integrity(id, "the old message ends before its final frame"));
    }
    w.finish().map_err(io)?;
    Ok(digest.finish())
}
