//! Re-keying one catalogued recording onto other keys: a new message (new
//! data key, new message id, every frame encrypted again), never a header
//! re-sealed in place (see `envelope`'s crate notes).
//!
//! The task, for one recording, holding the recording's claim:
//! 1. read the catalogued version whole, in one stream: its header is
//!    checked against the catalog and the request, its data key unwrapped
//!    (one KMS call), every frame authenticated as it is decrypted;
//! 2. encrypt that plaintext as a new message under the target keys (one
//!    KMS call per symmetric key; an RSA key wraps locally) into a new
//!    version of the same vault object, born `callvault-state=pending`,
//!    stored only if it decrypts to the plaintext of the old message (the
//!    same proof as ingest, `ingest::DecryptionProof`), then verified by
//!    S3's checksum;
//! 3. one conditional catalog transaction: the row replaced only while it
//!    names the old message, the usage moved from the keys it leaves to the
//!    keys it gains (sharded counters, so concurrent tasks rarely collide;
//!    a collision is retried here, then reported as transient);
//! 4. the new version tagged `catalogued`, the old one `superseded`: the
//!    vault's lifecycle rule removes superseded versions once they are
//!    noncurrent for the grace period (template.yaml, `SupersededGraceDays`),
//!    long enough for a playback that opened the old version to finish.
//!    Under Object Lock the old version stays until its retention ends.
//!
//! Every step can stop, fail or run twice:
//! - before the catalog transaction, the catalog still names the old
//!   version, which is untouched and playable; the new version is an
//!   orphan, still `pending`, and the rerun marks it superseded;
//! - after it, the catalog names the new version, verified before it was
//!   catalogued; the rerun finds the recording on its target keys (a no-op
//!   success) and finishes the tagging;
//! - two tasks for one recording: the claim lets one through; the other is
//!   `in_progress` (transient: the job retries it and finds it done).
//!
//! This function holds no delete permission on the vault (template.yaml):
//! nothing it does can destroy the only catalogued copy of a recording.

use std::io::{Read, Write};
use std::time::Duration;

use envelope::{EncryptingWriter, EncryptionContext, Limits, PendingMessage};
use tokio::runtime::Handle;

use crate::arn::KmsArn;
use crate::errors::{ErrorKind, OperationError};
use crate::flow::{self, require_context, FlowError};
use crate::ingest::{part_size_for, DecryptionProof, KeyCache, PlaintextDigester, CATALOGUED, PENDING, STATE_TAG};
use crate::keyring::{unwrap_data_key, UnwrapPolicy};
use crate::ports::catalog::{CatalogError, Claim, Moved, Recorded, RecordingCatalog};
use crate::ports::keys::{KeyError, KeyManagement};
use crate::ports::objects::{ObjectStore, S3Error, S3Location, Upload, WriteOptions};
use crate::recording::{MovedTo, RecordingEntry, RecordingId, RecordingKeys};
use crate::time::{rfc3339, unix_now};

/// The state of a vault version the catalog named before a re-key moved
/// the recording onto a new one: removed by the vault's lifecycle rule
/// after the grace period.
pub const SUPERSEDED: &str = "superseded";

/// The state of a vault version whose recording moved to another region's
/// deployment: removed by the vault's lifecycle rule after the grace period.
pub const MOVED: &str = "moved";

/// Bytes of the old message read from S3 at a time.
const READ_BUFFER: usize = 1 << 20;

/// How often a catalog transaction that collided is tried again here before
/// the task is reported as a temporary failure (for the job to retry).
pub const CONFLICT_RETRIES: u32 = 6;

/// What the re-key task is configured with.
#[derive(Clone, Debug)]
pub struct RekeySettings {
    pub org: String,
    pub vault_bucket: String,
    /// The function's region: the target primary key must be here.
    pub region: String,
    /// The keys each recording type is configured with (the default target).
    pub keys: RecordingKeys,
    pub frame_length: u32,
    pub write: WriteOptions,
    /// How long a task may hold a recording (past the function's timeout).
    pub claim_secs: u64,
    /// The vault's S3 Object Lock mode, if it has Object Lock: a new
    /// version keeps the recording's retain-until date and legal hold.
    pub vault_lock: Option<String>,
}

/// Which keys a recording moves onto.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The keys its type is configured with now.
    Configured,
    /// These keys, primary first (disaster-recovery keys after it).
    Keys(Vec<String>),
}

/// One recording to re-key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RekeyTask {
    pub id: RecordingId,
    pub target: Target,
    /// Only if it is (still) wrapped under this key; otherwise nothing to do.
    pub from_key: Option<String>,
    /// Who asks (the job's task id): a retry under the same id takes the
    /// claim of a holder that died over at once.
    pub request_id: String,
    /// Another region's deployment to move the recording into; `None`: it
    /// stays in this vault.
    pub destination: Option<Destination>,
    /// Copy the message as it is (its keys must be multi-Region, with
    /// replicas in the destination's region) instead of encrypting it again.
    pub copy_only: bool,
}

/// Another region's deployment: its region, vault bucket and catalog table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Destination {
    pub region: String,
    pub vault_bucket: String,
    pub catalog_table: String,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (vault {}, catalog {})", self.region, self.vault_bucket, self.catalog_table)
    }
}

/// Opens the object store and the catalog of a destination's region (the
/// Lambda: SDK clients for that region; the tests: twins).
pub trait Destinations<O, C>: Send + Sync {
    fn open(&self, destination: &Destination) -> (O, C);
}

/// How a task ended, when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RekeyOutcome {
    /// A new message under the target keys is catalogued; the old version
    /// is marked superseded.
    Rekeyed { entry: Box<RecordingEntry>, from: Vec<String>, superseded: usize },
    /// The recording was already on the target keys (a rerun, a retry, a
    /// duplicate): leftovers of an earlier attempt were tidied.
    AlreadyOnTarget { id: RecordingId, superseded: usize },
    /// It is not wrapped under the job's `from_key` (moved since the
    /// manifest was made): nothing to do.
    NotUnderKey { id: RecordingId, key: String },
    /// Catalogued in the destination's deployment; this region's row is a
    /// marker of where it went, and its version is tagged `moved`.
    MovedRegion { entry: Box<RecordingEntry>, to: Destination, copied: bool },
    /// It had already moved there (a rerun).
    AlreadyMoved { id: RecordingId, to: Destination },
}

impl RekeyOutcome {
    /// One line for the job's report.
    pub fn summary(&self) -> String {
        match self {
            Self::Rekeyed { entry, from, .. } => {
                format!("rekeyed {} from {} to {}", entry.id, from.join(","), entry.wrapping_keys.join(","))
            }
            Self::AlreadyOnTarget { id, .. } => format!("already_on_target {id}"),
            Self::NotUnderKey { id, key } => format!("not_under_key {id} is not wrapped under {key}"),
            Self::MovedRegion { entry, to, copied } => format!(
                "moved {} to {to} {} under {}",
                entry.id,
                if *copied { "copied" } else { "re-encrypted" },
                entry.wrapping_keys.join(",")
            ),
            Self::AlreadyMoved { id, to } => format!("already_moved {id} to {to}"),
        }
    }
}

/// Why a recording was not re-keyed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RekeyError {
    #[error("there is no recording {id} in the catalog: check the manifest")]
    NotFound { id: String },
    #[error("recording type {recording_type:?} has no configured keys and the job names none: pass the target keys")]
    NoTarget { recording_type: String },
    #[error("the target keys are not usable: {detail}")]
    BadTarget { detail: String },
    #[error("recording {id} has no vault version: re-keying needs a versioned vault (the new message is written beside the old one)")]
    Unversioned { id: String },
    #[error("recording {id} is being re-keyed or encrypted by another invocation; retry")]
    InProgress { id: String },
    #[error("recording {id} changed while it was re-keyed (now message {now}); retry, and the rerun starts from the new row")]
    RowChanged { id: String, now: String },
    #[error(
        "recording {id} failed its integrity check ({detail}); nothing was changed: report it to the security team"
    )]
    Integrity { id: String, detail: String },
    #[error("recording {id} moved to {to} already: re-key it there")]
    MovedAway { id: String, to: String },
    #[error("recording {id} is under {key}, not a multi-Region key: a copy cannot move it, re-key it onto a key of the destination region instead")]
    NotMultiRegion { id: String, key: String },
    #[error("the destination already holds another recording {id} ({detail}); it is left as it is: compare the two")]
    DestinationTaken { id: String, detail: String },
    #[error("this deployment cannot move recordings to other regions: {detail}")]
    NoDestinations { detail: String },
    #[error("recording {id} is being deleted ({reason}, run {run}): there is nothing left to move")]
    Deleting { id: String, reason: String, run: String },
    #[error(transparent)]
    Key(KeyError),
    #[error(transparent)]
    S3(S3Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{0}")]
    Io(String),
}

impl OperationError for RekeyError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::NoTarget { .. } => "no_target_keys",
            Self::BadTarget { .. } => "bad_target_keys",
            Self::Unversioned { .. } => "vault_unversioned",
            Self::InProgress { .. } => "in_progress",
            Self::RowChanged { .. } => "row_changed",
            Self::Integrity { .. } => "integrity",
            Self::MovedAway { .. } => "moved",
            Self::NotMultiRegion { .. } => "not_multi_region",
            Self::DestinationTaken { .. } => "destination_taken",
            Self::NoDestinations { .. } => "no_destinations",
            Self::Deleting { .. } => "deleting",
            Self::Key(e) => e.code(),
            Self::S3(e) => e.code(),
            Self::Catalog(e) => e.code(),
            Self::Io(_) => "io",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::NoTarget { .. } | Self::BadTarget { .. } => ErrorKind::BadRequest,
            Self::Unversioned { .. } => ErrorKind::Deployment,
            Self::InProgress { .. } | Self::RowChanged { .. } => ErrorKind::Transient,
            Self::Integrity { .. } => ErrorKind::Integrity,
            Self::MovedAway { .. } => ErrorKind::Moved,
            Self::NotMultiRegion { .. } => ErrorKind::BadRequest,
            Self::DestinationTaken { .. } => ErrorKind::Conflict,
            Self::NoDestinations { .. } => ErrorKind::Deployment,
            Self::Deleting { .. } => ErrorKind::Conflict,
            Self::Key(e) => e.kind(),
            Self::S3(e) => e.kind(),
            Self::Catalog(e) => e.kind(),
            // A stream that broke mid-way: read again.
            Self::Io(_) => ErrorKind::Transient,
        }
    }

    fn key_arn(&self) -> Option<&str> {
        match self {
            Self::Key(e) => e.key_arn(),
            _ => None,
        }
    }
}

impl RekeyError {
    fn from_flow(e: FlowError, id: &RecordingId) -> Self {
        match e {
            FlowError::Key(e) => Self::Key(e),
            FlowError::S3(e) => Self::S3(e),
            FlowError::Decrypt(e) if e.code() == "integrity" => {
                Self::Integrity { id: id.to_string(), detail: e.to_string() }
            }
            FlowError::ContextMismatch { .. } => Self::Integrity { id: id.to_string(), detail: e.to_string() },
            other => Self::Io(other.to_string()),
        }
    }

    fn integrity(id: &RecordingId, detail: impl Into<String>) -> Self {
        Self::Integrity { id: id.to_string(), detail: detail.into() }
    }
}

/// Re-keys recordings in the vault: generic over the ports it takes (keys,
/// objects, the recordings' catalog) and nothing else.
pub struct Rekeyer<K, O, C> {
    kms: K,
    s3: O,
    catalog: C,
    settings: RekeySettings,
    keys: KeyCache,
    destinations: Option<std::sync::Arc<dyn Destinations<O, C>>>,
}

impl<K: KeyManagement, O: ObjectStore, C: RecordingCatalog> Rekeyer<K, O, C> {
    /// A re-keyer over these adapters.
    pub fn new(kms: K, s3: O, catalog: C, settings: RekeySettings) -> Self {
        Self { kms, s3, catalog, settings, keys: KeyCache::default(), destinations: None }
    }

    /// Lets tasks move recordings to other regions' deployments, opened
    /// through `destinations`.
    pub fn with_destinations(mut self, destinations: std::sync::Arc<dyn Destinations<O, C>>) -> Self {
        self.destinations = Some(destinations);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &RekeySettings {
        &self.settings
    }

    /// The catalog.
    pub fn catalog(&self) -> &C {
        &self.catalog
    }

    fn target_keys(&self, task: &RekeyTask) -> Result<Vec<String>, RekeyError> {
        let keys = match &task.target {
            Target::Keys(keys) => keys.clone(),
            Target::Configured => self
                .settings
                .keys
                .get(&task.id.recording_type)
                .map(<[String]>::to_vec)
                .ok_or_else(|| RekeyError::NoTarget { recording_type: task.id.recording_type.clone() })?,
        };
        if keys.is_empty() {
            return Err(RekeyError::NoTarget { recording_type: task.id.recording_type.clone() });
        }
        Ok(keys)
    }

    fn location(&self, entry: &RecordingEntry) -> S3Location {
        S3Location { bucket: self.settings.vault_bucket.clone(), key: entry.vault_key.clone() }
    }

    /// Runs one task. Safe to run again, after any failure or stop, and
    /// concurrently with itself, with ingest and with playback.
    pub async fn rekey(&self, task: &RekeyTask) -> Result<RekeyOutcome, RekeyError> {
        if let Some(destination) = &task.destination {
            return self.move_region(task, destination).await;
        }
        let id = &task.id;
        let target = self.target_keys(task)?;
        let entry = self.catalog.recording(id).await?.ok_or_else(|| RekeyError::NotFound { id: id.to_string() })?;
        if let Some(to) = &entry.moved_to {
            return Err(RekeyError::MovedAway { id: id.to_string(), to: to.to_string() });
        }
        if let Some(from) = &task.from_key {
            if !entry.is_under(from) && entry.wrapping_keys != target {
                return Ok(RekeyOutcome::NotUnderKey { id: id.clone(), key: from.clone() });
            }
        }
        // Checked before any claim: a key that is disabled or in another
        // region fails the task for good, with the key's own code.
        let keys = self.keys.resolve(&self.kms, &target, &self.settings.region).await.map_err(RekeyError::Key)?;
        if entry.vault_version.is_none() {
            return Err(RekeyError::Unversioned { id: id.to_string() });
        }
        let (token, entry) = self.claim(&entry, &task.request_id).await?;
        if let Some(to) = &entry.moved_to {
            self.release(id, &token).await;
            return Err(RekeyError::MovedAway { id: id.to_string(), to: to.to_string() });
        }
        if let Some(d) = &entry.deleting {
            self.release(id, &token).await;
            return Err(RekeyError::Deleting { id: id.to_string(), reason: d.reason.clone(), run: d.run.clone() });
        }
        if entry.wrapping_keys == target {
            let tidied = self.tidy(&entry).await;
            self.release(id, &token).await;
            return Ok(RekeyOutcome::AlreadyOnTarget { id: id.clone(), superseded: tidied? });
        }
        let result = self.move_claimed(&entry, &keys, &token).await;
        if result.is_err() {
            self.release(id, &token).await;
        }
        result
    }

    /// Moves a recording into another region's deployment: its message
    /// copied as it is (multi-Region keys, `copy_only`) or encrypted again
    /// under keys of that region, catalogued there, and only then this
    /// region's row made a marker of where it went (its keys count it no
    /// more) and its version tagged `moved` for the lifecycle rule. A rerun
    /// after any step finishes the rest; a destination that already has
    /// the recording (from an earlier attempt) is used as it is.
    async fn move_region(&self, task: &RekeyTask, dest: &Destination) -> Result<RekeyOutcome, RekeyError> {
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
            if !entry.is_under(from) {
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
    async fn moved_already(
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
    async fn move_region_claimed(
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
                        let written = self.copy_message(entry, dst_objects, &dst_loc).await?;
                        RecordingEntry {
                            vault_version: written.version.clone(),
                            // The same keys, named as the destination knows them: the
                            // replicas there (the header still names the originals;
                            // the MRK-aware unwrap takes either).
                            wrapping_keys: Self::replicas_in(&entry.wrapping_keys, &dest.region),
                            ciphertext_size: written.size,
                            checksum_sha256: written.checksum_sha256.clone(),
                            moved_to: None,
                            ..entry.clone()
                        }
                    }
                    Some(keys) => {
                        let (written, message_id) = self.write_new_message(entry, keys, dst_objects, &dst_loc).await?;
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
        // The destination's version out of its lifecycle rule's reach.
        let tags = dst_objects.tags(&dst_loc, there.vault_version.as_deref()).await.map_err(RekeyError::S3)?;
        if tags.iter().any(|(k, v)| k == STATE_TAG && v == PENDING) {
            dst_objects
                .tag(&dst_loc, there.vault_version.as_deref(), STATE_TAG, CATALOGUED)
                .await
                .map_err(RekeyError::S3)?;
        }
        // 4. This region's row: a marker of where it went.
        let marker = RecordingEntry {
            moved_to: Some(MovedTo {
                region: dest.region.clone(),
                vault_bucket: dest.vault_bucket.clone(),
                catalog_table: dest.catalog_table.clone(),
                moved_at: now.clone(),
            }),
            // Its retention and hold moved with it: the copy there has them.
            retain_until: None,
            retention_days: None,
            hold: None,
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

    /// The ARNs of `keys` (multi-Region) in `region`: each key once.
    fn replicas_in(keys: &[String], region: &str) -> Vec<String> {
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
    fn same_recording(entry: &RecordingEntry, row: RecordingEntry) -> Result<RecordingEntry, RekeyError> {
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

    /// Catalogues `row` in the destination's catalog under a claim there.
    async fn record_there(
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
    async fn copy_message(
        &self,
        entry: &RecordingEntry,
        dst: &O,
        dst_loc: &S3Location,
    ) -> Result<crate::ports::objects::WrittenObject, RekeyError> {
        let handle = Handle::current();
        let body =
            self.s3.read(&self.location(entry), entry.vault_version.as_deref(), None).await.map_err(RekeyError::S3)?;
        let mut reader = body.into_blocking_read(&handle);
        let mut writer = dst.upload(&handle, dst_loc, self.pending_write(entry, dst_loc));
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
    async fn tag_moved(&self, entry: &RecordingEntry) -> Result<(), RekeyError> {
        let loc = self.location(entry);
        let version = entry.vault_version.as_deref();
        let tags = self.s3.tags(&loc, version).await.map_err(RekeyError::S3)?;
        if matches!(state_of(&tags), Some(PENDING) | Some(CATALOGUED)) {
            self.s3.tag(&loc, version, STATE_TAG, MOVED).await.map_err(RekeyError::S3)?;
        }
        Ok(())
    }

    /// Claims the recording for this task and reads its row again (it may
    /// have changed between the first look and the claim): the claim's
    /// token and the row, or the claim given back and why not.
    async fn claim(&self, entry: &RecordingEntry, request_id: &str) -> Result<(String, RecordingEntry), RekeyError> {
        let id = &entry.id;
        let token =
            match self.catalog.claim(id, &entry.message_id, request_id, unix_now(), self.settings.claim_secs).await? {
                Claim::Acquired { token } => token,
                Claim::HeldElsewhere { .. } => return Err(RekeyError::InProgress { id: id.to_string() }),
            };
        match self.catalog.recording(id).await {
            Ok(Some(entry)) => Ok((token, entry)),
            Ok(None) => {
                self.release(id, &token).await;
                Err(RekeyError::NotFound { id: id.to_string() })
            }
            Err(e) => {
                self.release(id, &token).await;
                Err(e.into())
            }
        }
    }

    async fn release(&self, id: &RecordingId, token: &str) {
        if let Err(e) = self.catalog.release(id, token).await {
            tracing::warn!(recording = %id, code = e.code(), error = %e, "could not release the claim; it expires by itself");
        }
    }

    async fn move_claimed(
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
        let leftovers = current != old_version;

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
        // old one (and any orphan of an earlier attempt) into it.
        // A failure here is the job's to retry: the catalog names the new
        // version, but until it is tagged catalogued the lifecycle rule for
        // pending writes would reach it; the retry finds the recording on
        // its target and finishes the tags (`AlreadyOnTarget`).
        let tagged =
            if leftovers { self.tidy(&moved).await } else { self.retag(&loc, &moved, old_version.as_deref()).await };
        let superseded = match tagged {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(recording = %id, code = e.code(), error = %e, "re-keyed and catalogued; its tags are the retry's to finish");
                return Err(e);
            }
        };
        Ok(RekeyOutcome::Rekeyed { entry: Box::new(moved), from: entry.wrapping_keys.clone(), superseded })
    }

    /// Steps 1 and 2: the catalogued message read, authenticated and
    /// decrypted (one KMS call), and encrypted again under `keys` into a new
    /// version at `dst_loc` of `dst`, stored only if it decrypts to the same
    /// plaintext, then checked against S3's checksum. Returns what was
    /// written and the new message id.
    async fn write_new_message(
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
        let new_message_id = hex::encode(message.encryptor.header().message_id);
        let mut writer = dst.upload(&handle, dst_loc, self.pending_write(entry, dst_loc));
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
        Ok((written, new_message_id))
    }

    /// How a new vault version is written: born pending.
    fn pending_write(&self, entry: &RecordingEntry, dst_loc: &S3Location) -> WriteOptions {
        let mut write = self.settings.write.clone();
        write.content_type = Some("application/octet-stream".into());
        write.tags = vec![(STATE_TAG.into(), PENDING.into())];
        write.part_size = part_size_for(entry.ciphertext_size + 64 * 1024, write.part_size);
        // This vault's Object Lock: another region's vault may have none, or
        // another mode (there the copy is born without a lock date; see the
        // README's notes on moves).
        let here = dst_loc.bucket == self.settings.vault_bucket;
        if let (true, Some(mode)) = (here, &self.settings.vault_lock) {
            if let Some(until) = &entry.retain_until {
                write.lock.retention = Some((mode.clone(), until.clone()));
            }
            write.lock.legal_hold = entry.hold.is_some();
        }
        write
    }

    /// The catalogued version's header, checked against the catalog (the
    /// message id) and the recording (`org`, type, id) before any KMS call;
    /// the rest of the message unread behind it.
    async fn read_header(
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
        if hex::encode(header.message_id) != entry.message_id {
            return Err(RekeyError::integrity(id, "the vault object is another message than the catalogued one"));
        }
        let required: EncryptionContext = [
            ("org", self.settings.org.as_str()),
            ("recording_type", id.recording_type.as_str()),
            ("recording_id", id.recording_id.as_str()),
        ]
        .into_iter()
        .collect();
        require_context(&header, &required).map_err(|e| RekeyError::from_flow(e, id))?;
        Ok((pending, header))
    }

    /// The catalog transaction, tried again a few times when it collides
    /// with another (jittered, growing pauses).
    async fn move_row(
        &self,
        from: &RecordingEntry,
        to: &RecordingEntry,
        token: &str,
        now: &str,
    ) -> Result<Moved, CatalogError> {
        let mut attempt = 0;
        loop {
            match self.catalog.move_recording(from, to, token, now).await {
                Err(CatalogError::Conflict { .. }) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    let mut jitter = [0u8; 1];
                    let _ = aws_lc_rs::rand::fill(&mut jitter);
                    let pause = Duration::from_millis((10u64 << attempt.min(5)) + u64::from(jitter[0]) % 20);
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    /// With the catalog naming `entry`: its version tagged catalogued, and
    /// every other version of the object that is pending or catalogued (an
    /// orphan of an attempt that stopped, the version a move left) tagged
    /// superseded. Returns how many were superseded now.
    async fn tidy(&self, entry: &RecordingEntry) -> Result<usize, RekeyError> {
        let loc = self.location(entry);
        let mut superseded = 0;
        for v in self.s3.list_versions(&loc).await.map_err(RekeyError::S3)? {
            let tags = self.s3.tags(&loc, Some(&v.version)).await.map_err(RekeyError::S3)?;
            let state = state_of(&tags);
            if Some(v.version.as_str()) == entry.vault_version.as_deref() {
                if state == Some(PENDING) {
                    self.s3.tag(&loc, Some(&v.version), STATE_TAG, CATALOGUED).await.map_err(RekeyError::S3)?;
                }
            } else if matches!(state, Some(PENDING) | Some(CATALOGUED)) {
                self.s3.tag(&loc, Some(&v.version), STATE_TAG, SUPERSEDED).await.map_err(RekeyError::S3)?;
                superseded += 1;
            }
        }
        Ok(superseded)
    }

    /// The common case of [`Rekeyer::tidy`], with no leftovers: the new
    /// version catalogued, the one it replaced superseded (two calls, no
    /// listing).
    async fn retag(&self, loc: &S3Location, moved: &RecordingEntry, old: Option<&str>) -> Result<usize, RekeyError> {
        self.s3.tag(loc, moved.vault_version.as_deref(), STATE_TAG, CATALOGUED).await.map_err(RekeyError::S3)?;
        let state = self.s3.tags(loc, old).await.map_err(RekeyError::S3)?;
        match state_of(&state) {
            Some(PENDING) | Some(CATALOGUED) => {
                self.s3.tag(loc, old, STATE_TAG, SUPERSEDED).await.map_err(RekeyError::S3)?;
                Ok(1)
            }
            _ => Ok(0),
        }
    }

    async fn mark(&self, loc: &S3Location, version: Option<&str>, state: &str) {
        if let Err(e) = self.s3.tag(loc, version, STATE_TAG, state).await {
            tracing::warn!(location = %loc, code = e.code(), error = %e, "could not tag the version {state}; the rerun does");
        }
    }
}

/// The `callvault-state` of a version, from its tags.
fn state_of(tags: &[(String, String)]) -> Option<&str> {
    tags.iter().find(|(k, _)| k == STATE_TAG).map(|(_, v)| v.as_str())
}

/// The destination upload's check for a copied message: the bytes stored
/// begin with the catalogued message's header (its message id) and are as
/// many as the catalogued ciphertext.
struct CopyCheck {
    message_id: Vec<u8>,
    size: u64,
    seen: u64,
    head: Vec<u8>,
}

impl CopyCheck {
    fn new(message_id: Vec<u8>, size: u64) -> Self {
        Self { message_id, size, seen: 0, head: Vec::new() }
    }
}

impl crate::ports::objects::UploadCheck for CopyCheck {
    fn part(&mut self, bytes: &[u8]) -> Result<(), String> {
        let limit = Limits::default().max_header_len;
        if self.head.len() < limit {
            let take = bytes.len().min(limit - self.head.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.seen += bytes.len() as u64;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        let header = envelope::Header::parse(&self.head, &Limits::default())
            .map_err(|e| format!("the copy does not start with a message header: {e}"))?;
        if header.message_id.as_slice() != self.message_id.as_slice() {
            return Err("the copy is another message than the catalogued one".into());
        }
        if self.seen != self.size {
            return Err(format!("the copy holds {} bytes, the catalogued message {}", self.seen, self.size));
        }
        Ok(())
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
) -> Result<crate::ingest::PlaintextDigest, RekeyError> {
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

/// Which recordings a job moves: those under `from_key` (when given) and of
/// one of `types` (when any are given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub from_key: Option<String>,
    pub types: Vec<String>,
}

impl Selection {
    /// Whether the job moves `entry`.
    pub fn matches(&self, entry: &RecordingEntry) -> bool {
        entry.moved_to.is_none()
            && self.from_key.as_ref().is_none_or(|k| entry.is_under(k))
            && (self.types.is_empty() || self.types.contains(&entry.id.recording_type))
    }
}

/// Calls `each` for every catalogued recording the selection matches, a
/// catalog page at a time (constant memory however many there are).
pub async fn select<L: crate::ports::catalog::RecordingListing>(
    listing: &L,
    selection: &Selection,
    mut each: impl FnMut(&RecordingEntry),
) -> Result<(), CatalogError> {
    let mut after = None;
    loop {
        let (page, next) = listing.recordings_page(after, 1000).await?;
        page.iter().filter(|e| selection.matches(e)).for_each(&mut each);
        match next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}
