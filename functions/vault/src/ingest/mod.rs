//! Encrypting one recording from the ingest bucket into the vault: route by
//! type, wrap a data key, stream frames into the vault, verify, catalogue,
//! and only then delete the plaintext.
//!
//! Whatever fails, the plaintext stays where it was until the vault object is
//! complete, proven to decrypt, catalogued and tagged catalogued; a vault
//! object the catalog does not know is left tagged `callvault-state=pending`
//! for the vault's lifecycle rule (this function cannot delete it).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use envelope::{DecryptError, EncryptError, EncryptingWriter};
use tokio::runtime::Handle;

use crate::errors::{ErrorKind, OperationError};
use crate::flow::{self, FlowError};
use crate::keyring::KeyCache;
use crate::object::{
    part_size_for, DecryptionProof, PlaintextDigest, PlaintextDigester, CATALOGUED, PENDING, STATE_TAG,
};
use crate::ports::catalog::{CatalogError, Claim, Recorded, RecordingCatalog};
use crate::ports::keys::{KeyError, KeyManagement};
use crate::ports::objects::{ObjectStore, S3Error, S3Location, Upload, WriteOptions, WrittenObject};
use crate::recording::{encryption_context, route, RecordingEntry, RecordingId, RecordingKeys, TagsDue};
use crate::time::{rfc3339, unix_now};

/// The tag set on an ingest object that could not be encrypted.
pub const STATUS_TAG: &str = "callvault-status";
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// What the encryptor is configured with.
#[derive(Clone, Debug)]
pub struct IngestSettings {
    pub org: String,
    pub ingest_bucket: String,
    pub vault_bucket: String,
    pub keys: RecordingKeys,
    pub frame_length: u32,
    /// The function's region: primary keys must be here.
    pub region: String,
    pub write: WriteOptions,
    /// Each type's retention: every new row carries its `retain_until`.
    pub retention: crate::retention_policy::RetentionPolicy,
    /// The vault's S3 Object Lock mode (`GOVERNANCE`, `COMPLIANCE`), if it
    /// has Object Lock: each object is born locked until its `retain_until`.
    pub vault_lock: Option<String>,
}

/// An object as an S3 event announced it (key already URL-decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announced {
    pub bucket: String,
    pub key: String,
    /// Without quotes; empty when the event had none.
    pub etag: String,
    pub version: Option<String>,
}

impl Announced {
    /// Where it is.
    pub fn location(&self) -> S3Location {
        S3Location { bucket: self.bucket.clone(), key: self.key.clone() }
    }
}

/// How one recording ended, when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Encrypted, verified, catalogued; the plaintext is gone.
    Encrypted { entry: Box<RecordingEntry>, timings: Timings },
    /// Already catalogued from this very upload (a repeated event); the
    /// plaintext, if it was still there, is gone now.
    AlreadyDone { id: RecordingId },
    /// The ingest object changed since the event (an unversioned bucket and
    /// a newer upload): nothing done; the newer upload has its own event.
    Superseded { id: RecordingId },
}

/// Where the time went, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    pub kms: Duration,
    pub stream: Duration,
    pub total: Duration,
}

/// Why a recording was not encrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The event does not describe a usable object.
    #[error("bad event: {detail}")]
    BadEvent { detail: String },
    #[error("{key:?} is not <recording type>/<recording id>: put recordings under a type configured in RECORDING_KEYS ({known})")]
    BadKey { key: String, known: String },
    #[error("recording type {recording_type:?} is not configured in RECORDING_KEYS (configured: {known}); add it, then redrive")]
    UnknownType { recording_type: String, known: String },
    #[error("recording {id} is already in the vault from another upload (ETag {catalogued}, this one {uploaded}); the new plaintext is kept for an operator to compare and remove")]
    AlreadyExists { id: String, catalogued: String, uploaded: String },
    #[error("recording {id} is being encrypted by another invocation (from ETag {other}); retry")]
    InProgress { id: String, other: String },
    #[error("read {read} bytes of {location}, which announced {announced}; retry")]
    ShortRead { location: String, read: u64, announced: u64 },
    #[error("recording {id} is encrypted and catalogued but its plaintext could not be deleted ({source}); the function's role needs s3:DeleteObject and s3:DeleteObjectVersion on the ingest bucket, then redrive")]
    DeleteFailed { id: String, source: S3Error },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The message could not be written (its context or data keys).
    #[error(transparent)]
    Encrypt(#[from] EncryptError),
    /// A stream error that is the format's (as the encrypting writer reports it).
    #[error(transparent)]
    Format(#[from] DecryptError),
    /// The encryption task itself failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Each cause reaches an [`IngestError`] by one route: a key error is `Key`,
/// an S3 error `S3`, whether or not it came through a flow.
impl From<FlowError> for IngestError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Key(e) => Self::Key(e),
            FlowError::S3(e) => Self::S3(e),
            FlowError::Encrypt(e) => Self::Encrypt(e),
            FlowError::Io(e) => Self::Io(e),
            FlowError::Decrypt(e) => Self::Format(e),
            // Encrypting checks no context: this cannot happen here.
            other @ FlowError::ContextMismatch { .. } => Self::Io(std::io::Error::other(other.to_string())),
        }
    }
}

impl OperationError for IngestError {
    fn code(&self) -> &'static str {
        match self {
            Self::BadEvent { .. } => "bad_event",
            Self::BadKey { .. } => "bad_key",
            Self::UnknownType { .. } => "unknown_type",
            Self::AlreadyExists { .. } => "already_exists",
            Self::InProgress { .. } => "in_progress",
            Self::ShortRead { .. } => "short_read",
            Self::DeleteFailed { .. } => "delete_failed",
            Self::Key(e) => e.code(),
            Self::S3(e) => e.code(),
            Self::Catalog(e) => e.code(),
            Self::Encrypt(e) => e.code(),
            Self::Format(e) => e.code(),
            Self::Io(_) => "io",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::BadEvent { .. } | Self::BadKey { .. } | Self::UnknownType { .. } => ErrorKind::BadRequest,
            Self::AlreadyExists { .. } => ErrorKind::Conflict,
            Self::InProgress { .. } | Self::ShortRead { .. } => ErrorKind::Transient,
            Self::DeleteFailed { source, .. } => source.kind(),
            Self::Key(e) => e.kind(),
            Self::S3(e) => e.kind(),
            Self::Catalog(e) => e.kind(),
            Self::Format(e) if e.code() == "integrity" => ErrorKind::Integrity,
            Self::Encrypt(_) | Self::Format(_) | Self::Io(_) => ErrorKind::BadRequest,
        }
    }

    fn key_arn(&self) -> Option<&str> {
        match self {
            Self::Key(e) => e.key_arn(),
            _ => None,
        }
    }
}

/// Encrypts recordings from the ingest bucket into the vault: generic over
/// the ports it takes (keys, objects, the recordings' catalog) and nothing else.
pub struct RecordingEncryptor<K, O, C> {
    kms: K,
    s3: O,
    catalog: C,
    settings: IngestSettings,
    keys: KeyCache,
}

impl<K: KeyManagement, O: ObjectStore, C: RecordingCatalog> RecordingEncryptor<K, O, C> {
    /// An encryptor over these adapters.
    pub fn new(kms: K, s3: O, catalog: C, settings: IngestSettings) -> Self {
        Self { kms, s3, catalog, settings, keys: KeyCache::default() }
    }

    /// The settings.
    pub fn settings(&self) -> &IngestSettings {
        &self.settings
    }

    /// The object store.
    pub fn objects(&self) -> &O {
        &self.s3
    }

    /// Encrypts the announced object. `claim_until` (Unix seconds) is how
    /// long this invocation may hold the recording: past the function's
    /// deadline, so that a live invocation never loses its claim. Lambda
    /// retries an event under the same `request_id`, so the retry of an
    /// invocation that died takes its claim over at once.
    pub async fn encrypt(&self, obj: &Announced, claim_until: u64, request_id: &str) -> Result<Outcome, IngestError> {
        let started = Instant::now();
        if obj.bucket != self.settings.ingest_bucket {
            return Err(IngestError::BadEvent {
                detail: format!("bucket {} is not the ingest bucket {}", obj.bucket, self.settings.ingest_bucket),
            });
        }
        let known = || self.settings.keys.types().collect::<Vec<_>>().join(", ");
        let id = route(&obj.key).ok_or_else(|| IngestError::BadKey { key: obj.key.clone(), known: known() })?;
        let key_ids = self
            .settings
            .keys
            .get(&id.recording_type)
            .ok_or_else(|| IngestError::UnknownType { recording_type: id.recording_type.clone(), known: known() })?;

        if let Some(entry) = self.catalog.recording(&id).await? {
            return self.already_catalogued(obj, id, &entry).await;
        }
        let now = unix_now();
        let lease = claim_until.saturating_sub(now).max(60);
        let token = match self.catalog.claim(&id, &obj.etag, request_id, now, lease).await? {
            Claim::Acquired { token } => token,
            // Another invocation is at it (a concurrent duplicate, or another
            // upload): retry later, when it has finished or its claim expired.
            Claim::HeldElsewhere { source_etag, .. } => {
                return Err(IngestError::InProgress { id: id.to_string(), other: source_etag });
            }
        };
        // The recording may have been catalogued between the first look and
        // the claim (the catalogue write ends the claim in the same
        // transaction, so this second look closes the window).
        match self.catalog.recording(&id).await {
            Ok(None) => {}
            Ok(Some(entry)) => {
                self.release(&id, &token).await;
                return self.already_catalogued(obj, id, &entry).await;
            }
            Err(e) => {
                self.release(&id, &token).await;
                return Err(e.into());
            }
        }
        let result = self.encrypt_claimed(obj, &id, key_ids, &token, started).await;
        if !matches!(result, Ok(Outcome::Encrypted { .. })) {
            self.release(&id, &token).await;
        }
        result
    }

    async fn release(&self, id: &RecordingId, token: &str) {
        if let Err(e) = self.catalog.release(id, token).await {
            tracing::warn!(recording = %id, code = e.code(), error = %e, "could not release the claim; it expires by itself");
        }
    }

    async fn already_catalogued(
        &self,
        obj: &Announced,
        id: RecordingId,
        entry: &RecordingEntry,
    ) -> Result<Outcome, IngestError> {
        if entry.source_etag != obj.etag {
            return Err(IngestError::AlreadyExists {
                id: id.to_string(),
                catalogued: entry.source_etag.clone(),
                uploaded: obj.etag.clone(),
            });
        }
        // A repeated event, or the retry of one that stopped between the
        // catalog and the delete: finish the delete of what was encrypted,
        // and only that (an event may name another version with the same
        // ETag: that version is no copy of ours to delete).
        if obj.version.is_some() && obj.version != entry.source_version {
            tracing::warn!(
                code = "plaintext_kept",
                recording = %id,
                version = obj.version.as_deref().unwrap_or(""),
                encrypted_version = entry.source_version.as_deref().unwrap_or(""),
                "the event names another version of the ingest object than the one encrypted; it is kept for an operator"
            );
            return Ok(Outcome::AlreadyDone { id });
        }
        self.mark_catalogued(entry).await?;
        self.delete_plaintext(obj, &id).await?;
        Ok(Outcome::AlreadyDone { id })
    }

    async fn encrypt_claimed(
        &self,
        obj: &Announced,
        id: &RecordingId,
        key_ids: &[String],
        token: &str,
        started: Instant,
    ) -> Result<Outcome, IngestError> {
        let kms_started = Instant::now();
        let keys = self.keys.resolve(&self.kms, key_ids, &self.settings.region).await?;
        let source = match self.s3.read_announced(&obj.location(), obj.version.as_deref(), &obj.etag).await {
            Ok(source) => source,
            Err(S3Error::Changed { .. }) => return Ok(Outcome::Superseded { id: id.clone() }),
            Err(e) => return Err(e.into()),
        };
        let content_type = source.content_type.clone().unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string());
        let mut context = encryption_context(&self.settings.org, id);
        context.insert("content_type", content_type.as_str());
        let message = flow::begin_encryption(&self.kms, &keys, context, self.settings.frame_length).await?;
        let encryptor = message.encryptor;
        let kms = kms_started.elapsed();
        let message_id = hex::encode(encryptor.header().message_id);

        let vault = S3Location { bucket: self.settings.vault_bucket.clone(), key: obj.key.clone() };
        let stream_started = Instant::now();
        let handle = Handle::current();
        let reader = source.body.into_blocking_read(&handle);
        let encrypted_at = rfc3339(unix_now());
        let (retain_until, retention_days) = self.settings.retention.stamp(&id.recording_type, &encrypted_at);
        let mut write = self.settings.write.clone();
        write.content_type = Some("application/octet-stream".into());
        if let (Some(mode), Some(until)) = (&self.settings.vault_lock, &retain_until) {
            write.lock.retention = Some((mode.clone(), until.clone()));
        }
        // Born pending: until the catalog names it, the vault's lifecycle
        // rule may remove it (this function cannot delete vault objects).
        write.tags = vec![(STATE_TAG.into(), PENDING.into())];
        let frames = source.size / u64::from(self.settings.frame_length) + 1;
        let ciphertext_estimate = source.size + frames * envelope::FINAL_FRAME_OVERHEAD + 64 * 1024;
        write.part_size = part_size_for(ciphertext_estimate, write.part_size);
        let mut writer = self.s3.upload(&handle, &vault, write);
        // Nothing is stored unless it decrypts to what was read (object::DecryptionProof).
        let (proof, plaintext_read) = DecryptionProof::new(message.check, message.encrypted_data_keys);
        writer.check_with(Box::new(proof));
        let announced = source.size;
        let location = obj.location().to_string();
        let streamed = tokio::task::spawn_blocking(move || -> Result<(WrittenObject, u64), IngestError> {
            let copied = stream(reader, &mut writer, encryptor);
            match copied {
                Ok((read, digest)) if read == announced => {
                    *plaintext_read.lock().map_err(|_| IngestError::Io(std::io::Error::other("poisoned")))? =
                        Some((read, digest));
                    Ok((writer.finish()?, read))
                }
                Ok((read, _)) => {
                    writer.abort();
                    Err(IngestError::ShortRead { location, read, announced })
                }
                Err(e) => {
                    writer.abort();
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| IngestError::Io(std::io::Error::other(format!("encryption task failed: {e}"))))?;
        let (written, plaintext_size) = streamed?;
        let stream = stream_started.elapsed();

        if let Err(e) = self.s3.verify(&vault, &written).await {
            self.leave_uncatalogued(&vault, &written, id);
            return Err(e.into());
        }
        let entry = RecordingEntry {
            id: id.clone(),
            vault_key: vault.key.clone(),
            vault_version: written.version.clone(),
            wrapping_keys: keys.iter().map(|k| k.arn().to_string()).collect(),
            provider: keys[0].provider_id().to_string(),
            message_id,
            frame_length: self.settings.frame_length,
            plaintext_size,
            ciphertext_size: written.size,
            checksum_sha256: written.checksum_sha256.clone(),
            content_type,
            encrypted_at: encrypted_at.clone(),
            source_etag: obj.etag.clone(),
            source_version: obj.version.clone(),
            rekeyed_at: None,
            moved_to: None,
            retention_days,
            retain_until,
            hold: None,
            released_hold: None,
            deleting: None,
            // Until its tag is confirmed `catalogued` (just below), the tag
            // sweep's index holds it: nothing can leave it `pending`.
            tags_due: Some(TagsDue { since: Some(encrypted_at), from_keys: Vec::new() }),
        };
        match self.catalog.record(&entry, token, &entry.encrypted_at).await {
            Ok(Recorded::New) => {}
            Ok(Recorded::AlreadyCatalogued(existing)) => {
                // Only possible if our claim had lapsed: the catalogued copy
                // wins; ours stays pending (a versioned vault keeps both apart).
                if existing.vault_version != written.version {
                    self.leave_uncatalogued(&vault, &written, id);
                }
                return self.already_catalogued(obj, id.clone(), &existing).await;
            }
            // The transaction may have committed all the same (a timeout
            // after DynamoDB applied it): look before leaving ours pending.
            Err(e) => match self.catalog.recording(id).await {
                Ok(Some(existing)) if existing.message_id == entry.message_id => {}
                Ok(Some(existing)) => {
                    if existing.vault_version != written.version {
                        self.leave_uncatalogued(&vault, &written, id);
                    }
                    return self.already_catalogued(obj, id.clone(), &existing).await;
                }
                Ok(None) => {
                    self.leave_uncatalogued(&vault, &written, id);
                    return Err(e.into());
                }
                Err(_) => {
                    tracing::error!(
                        code = "vault_orphan",
                        recording = %id,
                        location = %vault,
                        version = written.version.as_deref().unwrap_or(""),
                        "the catalog cannot say whether it recorded this vault object; it stays pending, and a \
                         retry either finds it catalogued (and retags it) or writes another version, leaving this \
                         one to the vault's lifecycle rule"
                    );
                    return Err(e.into());
                }
            },
        }
        self.mark_catalogued(&entry).await?;
        self.delete_plaintext(obj, id).await?;
        Ok(Outcome::Encrypted { entry: Box::new(entry), timings: Timings { kms, stream, total: started.elapsed() } })
    }

    /// A vault object the catalog does not know (a failed verify, a lost
    /// race) is left as it was born, tagged pending: the vault's lifecycle
    /// rule removes it. This function has no permission to delete it.
    fn leave_uncatalogued(&self, vault: &S3Location, written: &WrittenObject, id: &RecordingId) {
        tracing::info!(
            code = "vault_orphan_pending",
            recording = %id,
            location = %vault,
            version = written.version.as_deref().unwrap_or(""),
            "a vault object the catalog does not know is left tagged {STATE_TAG}={PENDING}; the vault's lifecycle \
             rule removes it"
        );
    }

    /// Takes a catalogued vault version out of the lifecycle rule's reach
    /// (pending -> catalogued), before its plaintext may be deleted, and
    /// then clears the row's mark. An object with no state (written before
    /// states existed) is left alone.
    async fn mark_catalogued(&self, entry: &RecordingEntry) -> Result<(), IngestError> {
        let vault = S3Location { bucket: self.settings.vault_bucket.clone(), key: entry.vault_key.clone() };
        let version = entry.vault_version.as_deref();
        let tags = self.s3.tags(&vault, version).await?;
        match tags.iter().find(|(k, _)| k == STATE_TAG).map(|(_, v)| v.as_str()) {
            Some(PENDING) => self.s3.tag_with(&vault, version, &tags, STATE_TAG, CATALOGUED).await?,
            Some(_) => {}
            None => tracing::warn!(
                code = "vault_object_untagged",
                location = %vault,
                version = version.unwrap_or(""),
                "a catalogued vault object without {STATE_TAG} (written before vault states): tag it {CATALOGUED} \
                 (docs/operations.md, \"Upgrading an older deployment\")"
            ),
        }
        crate::object::clear_mark(&self.catalog, entry).await;
        Ok(())
    }

    async fn delete_plaintext(&self, obj: &Announced, id: &RecordingId) -> Result<(), IngestError> {
        let loc = obj.location();
        let deleted = match &obj.version {
            // Only while that version is still the upload that was read.
            Some(v) => match self.s3.head(&loc, Some(v)).await {
                Ok(Some((etag, _))) if etag == obj.etag => self.s3.delete(&loc, Some(v)).await,
                Ok(Some((etag, _))) => {
                    tracing::warn!(code = "plaintext_kept", recording = %id, version = v, etag, expected = obj.etag, "the named version of the ingest object is not the upload that was encrypted; it is kept for an operator");
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
            None => match self.s3.head(&loc, None).await {
                Ok(Some((etag, _))) if etag == obj.etag => match self.s3.delete_if_match(&loc, &obj.etag).await {
                    Err(S3Error::Changed { .. }) => {
                        tracing::warn!(recording = %id, "the ingest object was replaced meanwhile; the new upload is kept");
                        Ok(())
                    }
                    other => other,
                },
                Ok(Some((etag, _))) => {
                    tracing::warn!(recording = %id, etag, "the ingest object was replaced meanwhile; the new upload is kept");
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
        };
        deleted.map_err(|source| IngestError::DeleteFailed { id: id.to_string(), source })
    }

    /// Tags the ingest object with why it was not encrypted.
    pub async fn tag_failure(&self, obj: &Announced, code: &str) -> Result<(), S3Error> {
        self.s3.tag(&obj.location(), obj.version.as_deref(), STATUS_TAG, code).await
    }
}

/// Plaintext from `reader` through a message into `writer`; returns the
/// plaintext's length and SHA-256, as read.
fn stream<R: Read, W: Write>(
    mut reader: R,
    writer: W,
    encryptor: envelope::MessageEncryptor,
) -> Result<PlaintextDigest, IngestError> {
    let mut digest = PlaintextDigester::new();
    let io = |e: std::io::Error| IngestError::from(FlowError::from_io(e));
    let mut w = EncryptingWriter::new(writer, encryptor).map_err(io)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(IngestError::S3(S3Error::Unavailable {
                    location: "the ingest object".into(),
                    detail: format!("reading failed: {e}"),
                }))
            }
        };
        digest.update(&buf[..n]);
        w.write_all(&buf[..n]).map_err(io)?;
    }
    w.finish().map_err(io)?;
    Ok(digest.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_only_when_s3_would_run_out_of_them() {
        let eight = 8 * 1024 * 1024;
        assert_eq!(part_size_for(0, eight), eight);
        assert_eq!(part_size_for(70 << 30, eight), eight);
        let huge = 200u64 << 30;
        let part = part_size_for(huge, eight) as u64;
        assert!(part > eight as u64 && part % (1 << 20) == 0);
        assert!(huge.div_ceil(part) <= 9_000);
    }
}
