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
//!    same proof as ingest, `object::DecryptionProof`), then verified by
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
//!
//! Where to look: this file holds the task, its outcome and errors, the
//! claim, the catalog transaction and the tagging every path shares;
//! [`in_place`] re-keys a recording in its own vault; [`region`] moves one
//! into another region's deployment; [`copy`] is the proof that a copied
//! message is the catalogued one; [`selection`] picks what a job moves;
//! [`sweep`] finishes the tags a task left undone after its catalog write.

mod copy;
mod in_place;
mod region;
mod selection;
mod sweep;

pub use crate::ports::destinations::{Destination, Destinations};
pub use selection::{select, Selection};
pub use sweep::{TagSweep, SWEEP_GRACE_SECS};

use std::time::Duration;

use crate::arn::KmsArn;
use crate::errors::{ErrorKind, OperationError};
use crate::flow::{self, require_context, FlowError};
use crate::keyring::KeyCache;
use crate::keyring::{unwrap_data_key, UnwrapPolicy};
use crate::object::{
    part_size_for, DecryptionProof, PlaintextDigester, CATALOGUED, MOVED, PENDING, STATE_TAG, SUPERSEDED,
};
use crate::ports::catalog::{CatalogError, Claim, Moved, Recorded, RecordingCatalog, RetentionCatalog};
use crate::ports::keys::{KeyError, KeyManagement};
use crate::ports::objects::{ObjectStore, S3Error, S3Location, Upload, WriteOptions};
use crate::recording::{MovedTo, RecordingEntry, RecordingId, RecordingKeys, TagsDue};
use crate::time::{rfc3339, unix_now};

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

/// How a task ended, when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RekeyOutcome {
    /// A new message under the target keys is catalogued; the old version
    /// is marked superseded.
    /// `proven`: the target keys KMS unwrapped the new data key under
    /// before the catalog named the message (symmetric keys of this region).
    Rekeyed { entry: Box<RecordingEntry>, from: Vec<String>, superseded: usize, proven: Vec<String> },
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
            Self::Rekeyed { entry, from, proven, .. } => {
                let not_asked: Vec<&str> =
                    entry.wrapping_keys.iter().filter(|k| !proven.contains(k)).map(String::as_str).collect();
                let mut line =
                    format!("rekeyed {} from {} to {}", entry.id, from.join(","), entry.wrapping_keys.join(","));
                if !proven.is_empty() {
                    line.push_str(&format!("; KMS unwrapped it under {}", proven.join(",")));
                }
                if !not_asked.is_empty() {
                    line.push_str(&format!("; not asked of KMS (RSA or another region): {}", not_asked.join(",")));
                }
                line
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
    #[error("recording {id} is kept under this vault's Object Lock (its lock date or legal hold), and the vault of {dest} has no Object Lock: the copy there would lose them, so nothing moved. Enable Object Lock on that vault (`aws s3api put-object-lock-configuration`), then run the job again")]
    DestinationUnlocked { id: String, dest: String },
    #[error("this deployment cannot move recordings to other regions: {detail}")]
    NoDestinations { detail: String },
    #[error("recording {id} is being deleted ({reason}, run {run}): there is nothing left to move")]
    Deleting { id: String, reason: String, run: String },
    #[error("recording {id} was written under {key}, but KMS did not unwrap it there ({detail}); nothing was catalogued and the recording stays where it was: enable the key, or allow this role kms:Decrypt on it with the recording's context")]
    TargetKeyRefused { id: String, key: String, detail: String },
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
            Self::DestinationUnlocked { .. } => "destination_unlocked",
            Self::Deleting { .. } => "deleting",
            Self::TargetKeyRefused { .. } => "target_key_refused",
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
            Self::DestinationUnlocked { .. } => ErrorKind::Deployment,
            Self::Deleting { .. } => ErrorKind::Conflict,
            Self::TargetKeyRefused { .. } => ErrorKind::KeyRefused,
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

impl<K: KeyManagement, O: ObjectStore, C: RecordingCatalog + RetentionCatalog> Rekeyer<K, O, C> {
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
            // A row still marked as moved off `from` counts as under it:
            // the rerun finishes its tags.
            if !entry.is_under(from) && !entry.was_under(from) && entry.wrapping_keys != target {
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
            let superseded = tidied?;
            crate::object::clear_mark(&self.catalog, &entry).await;
            return Ok(RekeyOutcome::AlreadyOnTarget { id: id.clone(), superseded });
        }
        let result = self.move_claimed(&entry, &keys, &token).await;
        if result.is_err() {
            self.release(id, &token).await;
        }
        result
    }

    /// Claims the recording for this task and reads its row again (it may
    /// have changed between the first look and the claim): the claim's
    /// token and the row, or the claim given back and why not.
    pub(super) async fn claim(
        &self,
        entry: &RecordingEntry,
        request_id: &str,
    ) -> Result<(String, RecordingEntry), RekeyError> {
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

    pub(super) async fn release(&self, id: &RecordingId, token: &str) {
        if let Err(e) = self.catalog.release(id, token).await {
            tracing::warn!(recording = %id, code = e.code(), error = %e, "could not release the claim; it expires by itself");
        }
    }

    /// The catalog transaction, tried again a few times when it collides
    /// with another (jittered, growing pauses).
    pub(super) async fn move_row(
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
    pub(super) async fn tidy(&self, entry: &RecordingEntry) -> Result<usize, RekeyError> {
        let named = entry.vault_version.as_deref();
        let changed = self
            .retag_versions(&self.location(entry), |version, state| match state {
                Some(PENDING) if Some(version) == named => Some(CATALOGUED),
                Some(PENDING) | Some(CATALOGUED) if Some(version) != named => Some(SUPERSEDED),
                _ => None,
            })
            .await?;
        Ok(changed.iter().filter(|to| **to == SUPERSEDED).count())
    }

    /// Every version of the object at `loc`, its state read once, retagged
    /// as `to` says (`None`: left as it is); what each changed one became.
    pub(super) async fn retag_versions(
        &self,
        loc: &S3Location,
        to: impl Fn(&str, Option<&str>) -> Option<&'static str>,
    ) -> Result<Vec<&'static str>, RekeyError> {
        let mut changed = Vec::new();
        for v in self.s3.list_versions(loc).await.map_err(RekeyError::S3)? {
            let tags = self.s3.tags(loc, Some(&v.version)).await.map_err(RekeyError::S3)?;
            if let Some(state) = to(&v.version, state_of(&tags)) {
                self.s3.tag_with(loc, Some(&v.version), &tags, STATE_TAG, state).await.map_err(RekeyError::S3)?;
                changed.push(state);
            }
        }
        Ok(changed)
    }

    /// The common case of [`Rekeyer::tidy`], with no leftovers: the new
    /// version catalogued, the one it replaced superseded (two calls, no
    /// listing).
    pub(super) async fn retag(
        &self,
        loc: &S3Location,
        moved: &RecordingEntry,
        old: Option<&str>,
    ) -> Result<usize, RekeyError> {
        // The new version carries the tags it was born with, no read needed.
        self.s3
            .tag_with(loc, moved.vault_version.as_deref(), &born_pending(), STATE_TAG, CATALOGUED)
            .await
            .map_err(RekeyError::S3)?;
        let state = self.s3.tags(loc, old).await.map_err(RekeyError::S3)?;
        match state_of(&state) {
            Some(PENDING) | Some(CATALOGUED) => {
                self.s3.tag_with(loc, old, &state, STATE_TAG, SUPERSEDED).await.map_err(RekeyError::S3)?;
                Ok(1)
            }
            _ => Ok(0),
        }
    }

    /// The keys a move leaves (a mark's `from_keys`): the row's keys, and
    /// those of an earlier move whose tags are still unfinished.
    pub(super) fn from_keys(entry: &RecordingEntry) -> Vec<String> {
        let mut keys = entry.wrapping_keys.clone();
        for k in entry.tags_due.iter().flat_map(|t| t.from_keys.iter()) {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        keys
    }

    /// Tags a version this task has just written (born pending: no read).
    pub(super) async fn mark(&self, loc: &S3Location, version: Option<&str>, state: &str) {
        if let Err(e) = self.s3.tag_with(loc, version, &born_pending(), STATE_TAG, state).await {
            tracing::warn!(location = %loc, code = e.code(), error = %e, "could not tag the version {state}; the rerun does");
        }
    }
}

/// The tags of a version this function wrote: its state, pending.
fn born_pending() -> [(String, String); 1] {
    [(STATE_TAG.to_string(), PENDING.to_string())]
}

/// The `callvault-state` of a version, from its tags.
fn state_of(tags: &[(String, String)]) -> Option<&str> {
    tags.iter().find(|(k, _)| k == STATE_TAG).map(|(_, v)| v.as_str())
}
