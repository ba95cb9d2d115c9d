//! Playback of catalogued recordings: the plaintext of a recording, or of a
//! byte range of it, read from the vault through only the frames that cover
//! it, each frame authenticated before any of its bytes is handed out.
//!
//! Opening a message costs one KMS call; the opened message (its derived
//! frame key, never the data key) is then kept in a [`MessageCache`] for a
//! bounded time, so that seeking through a recording costs one KMS Decrypt,
//! and revoking the key takes effect once the cache time has passed.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use envelope::{BodyLayout, EncryptionContext, FrameOpener, FrameSpan, Header, Limits, SpanBatches};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::errors::{ErrorKind, OperationError};
use crate::flow::require_context;
use crate::keyring::{unwrap_data_key, UnwrapPolicy};
use crate::ports::catalog::{BrowseQuery, CatalogError, RecordingBrowser, RecordingCatalog};
use crate::ports::keys::{GeneratedDataKey, KeyDescription, KeyError, KeyManagement};
use crate::ports::objects::{ObjectBody, ObjectStore, S3Error, S3Location};
use crate::recording::{encryption_context, RecordingEntry, RecordingId};

/// What playback needs to know.
#[derive(Clone, Debug)]
pub struct PlaybackSettings {
    /// The organisation every message's `org` context must name.
    pub org: String,
    pub vault_bucket: String,
    /// The function's region: keys elsewhere are refused as `wrong_region`.
    pub region: String,
    /// How long an opened message stays usable without asking KMS again.
    pub cache_ttl: Duration,
    /// How many opened messages are kept at most.
    pub cache_entries: usize,
    /// Most ciphertext read and decrypted as one batch while streaming.
    pub batch_bytes: u64,
}

/// Ciphertext read per batch when streaming: 16 frames of the default 64 KiB.
pub const DEFAULT_BATCH_BYTES: u64 = 1024 * 1024;

/// Least time a cached message must have left to be used: less is a miss
/// (at most half the cache time).
pub const MIN_CACHED_LIFETIME: Duration = Duration::from_secs(10);

/// How long a stream may use its key when the cache is off (TTL 0).
pub const MIN_STREAM_KEY_LIFETIME: Duration = Duration::from_secs(60);

/// Why a recording could not be played.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlaybackError {
    /// The catalog has no such recording.
    #[error("there is no recording {id}: check the recording type and id")]
    NotFound { id: String },
    /// The recording moved to another region's deployment.
    #[error("recording {id} moved to {region}: play it there (vault {vault_bucket}, catalog {catalog_table}, since {moved_at})")]
    Moved { id: String, region: String, vault_bucket: String, catalog_table: String, moved_at: String },
    /// KMS refused or failed: the key's state, access, region or KMS itself.
    #[error(transparent)]
    Key(KeyError),
    /// The vault object is not the message the catalog describes (tampered,
    /// swapped, truncated or missing).
    #[error("recording {id} failed its integrity check ({detail}); nothing of it was released: report it to the security team")]
    Integrity { id: String, detail: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    S3(S3Error),
    /// The cached message's vault version is no longer the object's current
    /// one (re-keyed, erased, deleted): open it again from the catalog.
    #[error("recording {id} changed in the vault since it was opened: it is opened again from the catalog")]
    Stale { id: String },
    /// A transfer outlived the data key's cache time: the key is asked for
    /// again, so that a revocation also stops long transfers.
    #[error("the transfer of {id} outlived its data key's cache time at byte {offset}: request the rest with Range: bytes={offset}-")]
    KeyExpired { id: String, offset: u64 },
}

impl OperationError for PlaybackError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Moved { .. } => "moved",
            Self::Key(e) => e.code(),
            Self::Integrity { .. } => "integrity",
            Self::Catalog(e) => e.code(),
            Self::S3(e) => e.code(),
            Self::KeyExpired { .. } => "key_cache_expired",
            Self::Stale { .. } => "stale",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Moved { .. } => ErrorKind::Moved,
            Self::Key(e) => e.kind(),
            Self::Integrity { .. } => ErrorKind::Integrity,
            Self::Catalog(e) => e.kind(),
            Self::S3(e) => e.kind(),
            // The player asks again with a Range, which asks KMS again.
            Self::KeyExpired { .. } => ErrorKind::Transient,
            Self::Stale { .. } => ErrorKind::Transient,
        }
    }

    fn key_arn(&self) -> Option<&str> {
        match self {
            Self::Key(e) => e.key_arn(),
            _ => None,
        }
    }
}

impl PlaybackError {
    fn integrity(id: &RecordingId, detail: impl Into<String>) -> Self {
        Self::Integrity { id: id.to_string(), detail: detail.into() }
    }
}

/// What opening a recording cost, filled in also when it fails: for the
/// audit line and the KMS call metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenStats {
    /// KMS Decrypt calls made (one per encrypted data key tried).
    pub kms_calls: u32,
    /// Whether the message came from the cache.
    pub cache_hit: bool,
    /// Bytes read from S3 (the header, on a cache miss).
    pub s3_bytes: u64,
}

/// Counts the unwrap calls made through it.
struct CountingKms<'a, K> {
    inner: &'a K,
    calls: std::sync::atomic::AtomicU32,
}

impl<K: KeyManagement> KeyManagement for CountingKms<'_, K> {
    async fn describe_key(&self, key_id: &str) -> Result<KeyDescription, KeyError> {
        self.inner.describe_key(key_id).await
    }
    async fn generate_data_key(
        &self,
        key_arn: &str,
        context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KeyError> {
        self.inner.generate_data_key(key_arn, context).await
    }
    async fn wrap_data_key(
        &self,
        key_arn: &str,
        data_key: &envelope::DataKey,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, KeyError> {
        self.inner.wrap_data_key(key_arn, data_key, context).await
    }
    async fn unwrap_data_key(
        &self,
        key_arn: &str,
        ciphertext: &[u8],
        context: &EncryptionContext,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, String), KeyError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.unwrap_data_key(key_arn, ciphertext, context).await
    }
    async fn rsa_decrypt(
        &self,
        key_arn: &str,
        ciphertext: &[u8],
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, String), KeyError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.rsa_decrypt(key_arn, ciphertext).await
    }
    async fn public_key(&self, key_arn: &str) -> Result<Vec<u8>, KeyError> {
        self.inner.public_key(key_arn).await
    }
}

/// A message whose header has authenticated: what reading its frames needs.
/// Holds the derived frame key only; dropping the last reference frees it,
/// and aws-lc wipes key material when it frees it.
pub struct OpenMessage {
    opener: FrameOpener,
    /// When KMS unwrapped its data key: no frame is opened with it once the
    /// cache time has passed since, not even mid-stream.
    opened_at: Instant,
    layout: BodyLayout,
    id: RecordingId,
    key_arn: String,
    content_type: String,
    /// The catalog row it was opened from: a seek from the cache reads the
    /// catalog no more, and checks the vault's current version instead.
    entry: RecordingEntry,
}

/// Opened messages by recording (`<type>/<id>`), each for at most a fixed time.
pub struct MessageCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Arc<OpenMessage>, Instant)>>,
}

impl MessageCache {
    /// A cache of at most `capacity` messages, each kept for `ttl`. A zero
    /// `ttl` or `capacity` caches nothing.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<OpenMessage>, Instant)>> {
        // A panic while holding the lock leaves only whole entries behind.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached message, unless it has expired or has too little time
    /// left to carry a transfer (a stream that would abort at once: it is a
    /// miss, and the message is opened again). Every lookup drops the
    /// expired messages, so a warm container keeps no key past its time.
    fn get(&self, recording: &str) -> Option<Arc<OpenMessage>> {
        let mut entries = self.lock();
        entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
        let min_left = MIN_CACHED_LIFETIME.min(self.ttl / 2);
        entries
            .get(recording)
            .filter(|(_, at)| self.ttl.saturating_sub(at.elapsed()) >= min_left)
            .map(|(message, _)| message.clone())
    }

    /// Forgets a recording's message.
    fn remove(&self, recording: &str) {
        self.lock().remove(recording);
    }

    fn insert(&self, recording: &str, message: Arc<OpenMessage>) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
        while entries.len() >= self.capacity {
            let Some(oldest) = entries.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone()) else { break };
            entries.remove(&oldest);
        }
        entries.insert(recording.to_string(), (message, Instant::now()));
    }

    /// How many messages are cached (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A catalogued recording ready to be read: its catalog entry and its
/// authenticated message.
pub struct OpenRecording {
    pub entry: RecordingEntry,
    message: Arc<OpenMessage>,
    /// From the cache, the catalog not read again: the frames are read from
    /// the object's current version, which must still be the catalogued one.
    from_cache: bool,
}

impl OpenRecording {
    /// Plaintext length.
    pub fn len(&self) -> u64 {
        self.message.layout.plaintext_len()
    }

    /// Whether the recording is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The content type from the (authenticated) encryption context.
    pub fn content_type(&self) -> &str {
        &self.message.content_type
    }

    /// The KMS key that unwrapped the data key.
    pub fn key_arn(&self) -> &str {
        &self.message.key_arn
    }

    /// The frames covering plaintext `range` (end exclusive, not empty),
    /// or every frame when `range` is `None`.
    pub fn span(&self, range: Option<Range<u64>>) -> Result<FrameSpan, PlaybackError> {
        match range {
            None => Ok(self.message.layout.whole()),
            Some(r) => self
                .message
                .layout
                .span(r)
                .map_err(|e| PlaybackError::integrity(&self.entry.id, format!("range outside the recording: {e}"))),
        }
    }
}

/// What `info` tells without decrypting anything.
#[derive(Clone, Debug)]
pub struct RecordingInfo {
    pub entry: RecordingEntry,
    /// The key ARNs the vault object's header names (unauthenticated: read
    /// without a key).
    pub header_keys: Vec<String>,
    pub frame_length: u32,
    pub suite_id: u16,
}

/// Plays recordings from the vault: generic over the ports it takes (keys,
/// objects, the recordings' catalog) and nothing else.
pub struct RecordingPlayer<K, O, C> {
    kms: K,
    s3: O,
    catalog: C,
    settings: PlaybackSettings,
    cache: MessageCache,
}

impl<K: KeyManagement, O: ObjectStore, C: RecordingCatalog> RecordingPlayer<K, O, C> {
    /// A player over these adapters.
    pub fn new(kms: K, s3: O, catalog: C, settings: PlaybackSettings) -> Self {
        let cache = MessageCache::new(settings.cache_ttl, settings.cache_entries);
        Self { kms, s3, catalog, settings, cache }
    }

    /// The cache of opened messages.
    pub fn cache(&self) -> &MessageCache {
        &self.cache
    }

    async fn entry(&self, id: &RecordingId) -> Result<RecordingEntry, PlaybackError> {
        let entry = self.catalog.recording(id).await?.ok_or_else(|| PlaybackError::NotFound { id: id.to_string() })?;
        if &entry.id != id {
            return Err(PlaybackError::integrity(id, format!("the catalog row is for {}", entry.id)));
        }
        if let Some(to) = &entry.moved_to {
            return Err(PlaybackError::Moved {
                id: id.to_string(),
                region: to.region.clone(),
                vault_bucket: to.vault_bucket.clone(),
                catalog_table: to.catalog_table.clone(),
                moved_at: to.moved_at.clone(),
            });
        }
        Ok(entry)
    }

    fn location(&self, entry: &RecordingEntry) -> S3Location {
        S3Location { bucket: self.settings.vault_bucket.clone(), key: entry.vault_key.clone() }
    }

    /// The catalog's entry and what the vault object's header says, with no
    /// KMS call: metadata a supervisor or auditor may see even when the key
    /// is disabled.
    pub async fn info(&self, id: &RecordingId) -> Result<RecordingInfo, PlaybackError> {
        let entry = self.entry(id).await?;
        let (header, _) = self.read_header(&entry).await?;
        Ok(RecordingInfo {
            header_keys: header
                .encrypted_data_keys
                .iter()
                .filter_map(|e| e.provider_info_str().map(str::to_string))
                .collect(),
            frame_length: header.frame_length,
            suite_id: header.suite_id,
            entry,
        })
    }

    /// Reads and parses the header the catalog's sizes say the vault object
    /// starts with. Returns it and the bytes read.
    async fn read_header(&self, entry: &RecordingEntry) -> Result<(Header, u64), PlaybackError> {
        let id = &entry.id;
        let limits = Limits::default();
        let header_len = BodyLayout::for_plaintext(0, entry.frame_length, entry.plaintext_size)
            .and_then(|body| entry.ciphertext_size.checked_sub(body.body_len()))
            .filter(|&len| len > 0 && len <= limits.max_header_len as u64)
            .ok_or_else(|| PlaybackError::integrity(id, "the catalog's sizes describe no valid message"))?;
        let body = self.read(entry, 0..header_len).await?;
        let mut bytes = vec![0u8; header_len as usize];
        read_exact(body.into_async_read(), &mut bytes, id).await?;
        let header = Header::parse(&bytes, &limits)
            .map_err(|e| PlaybackError::integrity(id, format!("the vault object's header is malformed: {e}")))?;
        if header.len as u64 != header_len {
            return Err(PlaybackError::integrity(id, "the vault object's header is not the catalogued size"));
        }
        entry.check_header(&header).map_err(|e| PlaybackError::integrity(id, e))?;
        Ok((header, header_len))
    }

    async fn read(&self, entry: &RecordingEntry, range: Range<u64>) -> Result<ObjectBody, PlaybackError> {
        let loc = self.location(entry);
        self.s3.read(&loc, entry.vault_version.as_deref(), Some(range)).await.map_err(|e| match e {
            S3Error::NotFound { location } => PlaybackError::integrity(
                &entry.id,
                format!("the catalog lists {location} but the vault has no such object or version"),
            ),
            S3Error::Refused { detail, .. } if detail.starts_with("InvalidRange") => {
                PlaybackError::integrity(&entry.id, "the vault object is shorter than catalogued")
            }
            other => PlaybackError::S3(other),
        })
    }

    /// Opens a recording: the catalog entry, then the cached message, or the
    /// header read from the vault, its context checked against the request
    /// and the catalog, its data key unwrapped by KMS and the header
    /// authenticated with it.
    pub async fn open(&self, id: &RecordingId, stats: &mut OpenStats) -> Result<OpenRecording, PlaybackError> {
        if let Some(message) = self.cache.get(&id.to_string()) {
            stats.cache_hit = true;
            if &message.id != id {
                return Err(PlaybackError::integrity(id, format!("its message belongs to {}", message.id)));
            }
            return Ok(OpenRecording { entry: message.entry.clone(), message, from_cache: true });
        }
        let entry = self.entry(id).await?;
        let (header, s3_bytes) = self.read_header(&entry).await?;
        stats.s3_bytes += s3_bytes;
        let required = encryption_context(&self.settings.org, id);
        require_context(&header, &required).map_err(|e| PlaybackError::integrity(id, e.to_string()))?;
        let policy = UnwrapPolicy {
            region: self.settings.region.clone(),
            allowed_keys: Some(entry.wrapping_keys.clone()),
            allowed_accounts: None,
            allow_other_regions: false,
        };
        let kms = CountingKms { inner: &self.kms, calls: Default::default() };
        let unwrapped = unwrap_data_key(&kms, &header, &policy).await;
        stats.kms_calls += kms.calls.into_inner();
        let (data_key, key_arn) = unwrapped.map_err(|e| match e {
            KeyError::Integrity { detail } => PlaybackError::integrity(id, detail),
            // The header names none of the keys the catalog says wrap it.
            KeyError::NoUsableKey { detail } => PlaybackError::integrity(id, detail),
            other => PlaybackError::Key(other),
        })?;
        let opened_at = Instant::now();
        let opener = header
            .opener(&data_key)
            .map_err(|e| PlaybackError::integrity(id, format!("the header did not authenticate: {e}")))?;
        drop(data_key);
        let layout = BodyLayout::new(&header, entry.ciphertext_size)
            .ok()
            .filter(|l| l.plaintext_len() == entry.plaintext_size)
            .ok_or_else(|| PlaybackError::integrity(id, "the catalogued sizes do not match the header"))?;
        let content_type = header
            .encryption_context
            .get("content_type")
            .filter(|c| !c.is_empty())
            .unwrap_or("application/octet-stream")
            .to_string();
        let message = Arc::new(OpenMessage {
            opener,
            opened_at,
            layout,
            id: id.clone(),
            key_arn,
            content_type,
            entry: entry.clone(),
        });
        self.cache.insert(&id.to_string(), message.clone());
        Ok(OpenRecording { entry, message, from_cache: false })
    }

    /// Starts reading `span` of an opened recording: one ranged GET of the
    /// frames that cover it, opened a batch at a time.
    ///
    /// From the cache, the range is read from the object's current version:
    /// the same one GET tells whether that is still the catalogued version.
    /// When it is not (a re-key wrote a new one, the recording was erased),
    /// the message is forgotten and this answers `Stale`: open it again.
    /// (A recording moved to another region keeps its version here, tagged
    /// `moved`: it plays from the cache for at most the cache time.)
    pub async fn frames(&self, open: &OpenRecording, span: &FrameSpan) -> Result<FrameStream, PlaybackError> {
        let catalogued = open.entry.vault_version.as_deref();
        let body = if open.from_cache && catalogued.is_some() && !span.ciphertext.is_empty() {
            let stale = || {
                self.cache.remove(&open.entry.id.to_string());
                PlaybackError::Stale { id: open.entry.id.to_string() }
            };
            match self.s3.read_current(&self.location(&open.entry), span.ciphertext.clone()).await {
                Ok((body, version)) if version.as_deref() == catalogued => body,
                // Without s3:ListBucket, S3 answers a key with no version
                // left (an erasure) AccessDenied, not NoSuchKey: both mean
                // "ask the catalog", and a real refusal shows up there too.
                Ok(_) | Err(S3Error::NotFound { .. } | S3Error::AccessDenied { .. }) => return Err(stale()),
                Err(S3Error::Refused { detail, .. }) if detail.starts_with("InvalidRange") => return Err(stale()),
                Err(other) => return Err(PlaybackError::S3(other)),
            }
        } else {
            self.read(&open.entry, span.ciphertext.clone()).await?
        };
        Ok(FrameStream {
            reader: Box::new(body.into_async_read()),
            batches: open.message.layout.batches(span, self.settings.batch_bytes),
            message: open.message.clone(),
            key_expires: open.message.opened_at
                + if self.settings.cache_ttl.is_zero() { MIN_STREAM_KEY_LIFETIME } else { self.settings.cache_ttl },
            s3_bytes: 0,
        })
    }
}

impl<K: KeyManagement, O: ObjectStore, C: RecordingCatalog + RecordingBrowser> RecordingPlayer<K, O, C> {
    /// A page of a type's recordings, newest first (the player's list).
    pub async fn browse(&self, query: &BrowseQuery) -> Result<(Vec<RecordingEntry>, Option<String>), PlaybackError> {
        Ok(self.catalog.browse(query).await?)
    }
}

/// The frames of a span, read from S3 and authenticated a batch at a time.
pub struct FrameStream {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    batches: SpanBatches,
    message: Arc<OpenMessage>,
    /// No frame is opened after this: a revoked key stops a long transfer too.
    key_expires: Instant,
    s3_bytes: u64,
}

impl FrameStream {
    /// Bytes read from S3 so far.
    pub fn s3_bytes(&self) -> u64 {
        self.s3_bytes
    }

    /// The plaintext of the next batch, as slices of one buffer in order,
    /// or `None` after the last. A batch is released only when every frame
    /// in it has authenticated; a frame that fails is wiped.
    pub async fn next_batch(&mut self) -> Option<Result<Vec<Bytes>, PlaybackError>> {
        let batch = self.batches.next()?;
        if Instant::now() >= self.key_expires {
            return Some(Err(PlaybackError::KeyExpired {
                id: self.message.id.to_string(),
                offset: batch.plaintext.start,
            }));
        }
        Some(self.open_batch(batch).await)
    }

    async fn open_batch(&mut self, batch: FrameSpan) -> Result<Vec<Bytes>, PlaybackError> {
        let message = &self.message;
        let mut buf = vec![0u8; (batch.ciphertext.end - batch.ciphertext.start) as usize];
        read_exact(&mut self.reader, &mut buf, &message.id).await?;
        self.s3_bytes += buf.len() as u64;
        let base = buf.as_ptr() as usize;
        let mut pieces = Vec::new();
        let (mut skip, mut left) = (batch.skip as usize, batch.len() as usize);
        for frame in message.opener.open_in_place(&message.layout, &batch, &mut buf) {
            let frame = frame.map_err(|e| PlaybackError::integrity(&message.id, e.to_string()))?;
            let start = frame.as_ptr() as usize - base + skip.min(frame.len());
            let take = (frame.len() - skip.min(frame.len())).min(left);
            skip -= skip.min(frame.len());
            left -= take;
            if take > 0 {
                pieces.push(start..start + take);
            }
        }
        let buf = Bytes::from(buf);
        Ok(pieces.into_iter().map(|r| buf.slice(r)).collect())
    }
}

async fn read_exact(mut reader: impl AsyncRead + Unpin, buf: &mut [u8], id: &RecordingId) -> Result<(), PlaybackError> {
    reader.read_exact(buf).await.map(|_| ()).map_err(|e| {
        let carried = e.get_ref().and_then(|inner| inner.downcast_ref::<S3Error>()).cloned();
        match (carried, e.kind()) {
            (Some(s3), _) => PlaybackError::S3(s3),
            (None, std::io::ErrorKind::UnexpectedEof) => {
                PlaybackError::integrity(id, "the vault object is shorter than catalogued")
            }
            (None, _) => PlaybackError::S3(S3Error::Unavailable {
                location: id.to_string(),
                detail: format!("reading the vault object failed: {e}"),
            }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> Arc<OpenMessage> {
        let key = envelope::DataKey::from_slice(&[7; 32]).unwrap();
        let encryptor = envelope::MessageEncryptor::new(envelope::MessageSpec {
            data_key: &key,
            encryption_context: EncryptionContext::new(),
            encrypted_data_keys: vec![envelope::EncryptedDataKey {
                provider_id: "raw".into(),
                provider_info: b"k".to_vec(),
                ciphertext: vec![1],
            }],
            frame_length: 16,
        })
        .unwrap();
        let mut w = envelope::EncryptingWriter::new(Vec::new(), encryptor).unwrap();
        std::io::Write::write_all(&mut w, b"hello").unwrap();
        let out = w.finish().unwrap();
        let header = Header::parse(&out, &Limits::default()).unwrap();
        Arc::new(OpenMessage {
            opener: header.opener(&key).unwrap(),
            opened_at: Instant::now(),
            layout: BodyLayout::new(&header, out.len() as u64).unwrap(),
            id: RecordingId { recording_type: "calls".into(), recording_id: id.into() },
            key_arn: "arn".into(),
            content_type: "audio/wav".into(),
            entry: RecordingEntry::default(),
        })
    }

    #[test]
    fn the_cache_forgets_a_message_once_its_time_is_up() {
        let cache = MessageCache::new(Duration::from_millis(50), 8);
        cache.insert("m1", message("a"));
        assert!(cache.get("m1").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("m1").is_none());
        assert!(cache.is_empty(), "an expired message is dropped, not kept");
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_and_evicts_the_oldest() {
        let cache = MessageCache::new(Duration::from_secs(60), 2);
        cache.insert("m1", message("a"));
        std::thread::sleep(Duration::from_millis(2));
        cache.insert("m2", message("b"));
        std::thread::sleep(Duration::from_millis(2));
        cache.insert("m3", message("c"));
        assert_eq!(cache.len(), 2);
        assert!(cache.get("m1").is_none());
        assert!(cache.get("m2").is_some() && cache.get("m3").is_some());
    }

    #[test]
    fn a_zero_time_or_capacity_caches_nothing() {
        for cache in [MessageCache::new(Duration::ZERO, 8), MessageCache::new(Duration::from_secs(60), 0)] {
            cache.insert("m1", message("a"));
            assert!(cache.get("m1").is_none());
        }
    }
}
