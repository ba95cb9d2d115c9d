//! A deployment of callvault on the in-memory twins: the ingest and vault
//! buckets (versioned, as template.yaml makes them), the catalog, KMS with
//! keys, and the services over them, for the protocol tests.

#![allow(dead_code)]

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use envelope::{Limits, PendingMessage};
use vault::ingest::{Announced, IngestSettings, RecordingEncryptor};
use vault::keyring::{self, UnwrapPolicy};
use vault::memory::{MemoryCatalog, MemoryKms, MemoryObjects};
use vault::playback::{PlaybackSettings, RecordingPlayer, DEFAULT_BATCH_BYTES};
use vault::ports::objects::{S3Location, WriteOptions};
use vault::recording::{RecordingEntry, RecordingId, RecordingKeys};
use vault::rekey::{RekeySettings, Rekeyer};

pub const REGION: &str = "us-east-1";
pub const ORG: &str = "acme";
pub const INGEST: &str = "ingest";
pub const VAULT: &str = "vault";
pub const EVIDENCE: &str = "evidence";

pub type Encryptor = RecordingEncryptor<Arc<MemoryKms>, MemoryObjects, MemoryCatalog>;
pub type Player = RecordingPlayer<Arc<MemoryKms>, MemoryObjects, MemoryCatalog>;
pub type Rekey = Rekeyer<Arc<MemoryKms>, MemoryObjects, MemoryCatalog>;
pub type Retention = vault::retention::Retention<MemoryCatalog, MemoryObjects, MemoryObjects>;

/// The twins, shared by every service built on them.
pub struct Rig {
    pub kms: Arc<MemoryKms>,
    pub objects: MemoryObjects,
    pub catalog: MemoryCatalog,
    pub key: String,
    pub keys: RecordingKeys,
    pub frame_length: u32,
    /// The retention policy new recordings are stamped with.
    pub retention: vault::retention::RetentionPolicy,
}

impl Rig {
    /// Buckets, a catalog and one symmetric key for type `calls`.
    pub fn new() -> Self {
        let kms = Arc::new(MemoryKms::new());
        let key = kms.create_symmetric(REGION);
        Self::with_keys(kms, key.clone(), &format!(r#"{{"calls": ["{key}"]}}"#))
    }

    /// The same with `RECORDING_KEYS` as given (`key` is the main key).
    pub fn with_keys(kms: Arc<MemoryKms>, key: String, recording_keys: &str) -> Self {
        let objects = MemoryObjects::new();
        objects.create_bucket(INGEST, true);
        objects.create_bucket(VAULT, true);
        let keys = RecordingKeys::parse(recording_keys, REGION).expect("RECORDING_KEYS");
        objects.create_locked_bucket(EVIDENCE);
        Self {
            kms,
            objects,
            catalog: MemoryCatalog::new(),
            key,
            keys,
            frame_length: 4096,
            retention: Default::default(),
        }
    }

    /// A fresh encryptor (a new container: empty key cache).
    pub fn encryptor(&self) -> Encryptor {
        let settings = IngestSettings {
            org: ORG.into(),
            ingest_bucket: INGEST.into(),
            vault_bucket: VAULT.into(),
            keys: self.keys.clone(),
            frame_length: self.frame_length,
            region: REGION.into(),
            write: WriteOptions::default(),
            retention: self.retention.clone(),
            vault_lock: None,
        };
        RecordingEncryptor::new(self.kms.clone(), self.objects.clone(), self.catalog.clone(), settings)
    }

    /// A fresh re-keyer (a new container), holding a recording for
    /// `claim_secs` at most.
    pub fn rekeyer(&self, claim_secs: u64) -> Rekey {
        self.rekeyer_locked(claim_secs, None)
    }

    /// The same over a vault with Object Lock in `mode`.
    pub fn rekeyer_locked(&self, claim_secs: u64, mode: Option<&str>) -> Rekey {
        let settings = RekeySettings {
            org: ORG.into(),
            vault_bucket: VAULT.into(),
            region: REGION.into(),
            keys: self.keys.clone(),
            frame_length: self.frame_length,
            write: WriteOptions::default(),
            claim_secs,
            vault_lock: mode.map(str::to_string),
        };
        Rekeyer::new(self.kms.clone(), self.objects.clone(), self.catalog.clone(), settings)
    }

    /// Retention, holds and erasure over the twins, deleting at most
    /// `batch` recordings a run.
    pub fn retention_service(&self, batch: usize, object_lock: bool) -> Retention {
        let settings = vault::retention::RetentionSettings {
            vault_bucket: VAULT.into(),
            evidence_bucket: EVIDENCE.into(),
            policy: self.retention.clone(),
            object_lock,
            batch,
            lease_secs: 960,
        };
        vault::retention::Retention::new(self.catalog.clone(), self.objects.clone(), self.objects.clone(), settings)
    }

    /// A player whose cache keeps an opened message for `ttl`.
    pub fn player(&self, ttl: Duration) -> Player {
        let settings = PlaybackSettings {
            org: ORG.into(),
            vault_bucket: VAULT.into(),
            region: REGION.into(),
            cache_ttl: ttl,
            cache_entries: 16,
            batch_bytes: DEFAULT_BATCH_BYTES,
        };
        RecordingPlayer::new(self.kms.clone(), self.objects.clone(), self.catalog.clone(), settings)
    }

    /// Uploads a recording to the ingest bucket, as a recorder does; returns
    /// what its event announces.
    pub fn upload(&self, key: &str, data: &[u8]) -> Announced {
        let (etag, version) = self.objects.put(&ingest(key), data, Some("audio/wav"));
        Announced { bucket: INGEST.into(), key: key.into(), etag, version }
    }

    /// The plaintext still in the ingest bucket.
    pub fn plaintext(&self, key: &str) -> Option<Vec<u8>> {
        self.objects.get(&ingest(key), None)
    }

    /// The vault object's versions (delete markers excluded).
    pub fn vault_versions(&self, key: &str) -> Vec<String> {
        self.objects.versions(&vault(key)).into_iter().filter(|v| v != "(deleted)").collect()
    }

    /// Each vault version's `callvault-state` tag, oldest first: `pending`
    /// versions are the lifecycle rule's to remove, `catalogued` ones stay.
    pub fn states(&self, key: &str) -> Vec<String> {
        self.vault_versions(key)
            .iter()
            .map(|v| {
                let tags = self.objects.tags_of(&vault(key), Some(v));
                tags.into_iter().find(|(k, _)| k == "callvault-state").map(|(_, v)| v).unwrap_or_default()
            })
            .collect()
    }

    /// The catalog's entry.
    pub fn entry(&self, key: &str) -> Option<RecordingEntry> {
        let id = vault::recording::route(key).expect("type/id");
        self.catalog.recordings().into_iter().find(|e| e.id == id)
    }

    /// Decrypts the catalogued vault version with KMS, as any reader of the
    /// vault would, checking the context names the recording.
    pub async fn decrypt(&self, key: &str) -> Vec<u8> {
        let entry = self.entry(key).expect("catalogued");
        let bytes = self.objects.get(&vault(key), entry.vault_version.as_deref()).expect("the catalogued version");
        let pending = PendingMessage::read_header(&bytes[..], &Limits::default()).expect("a header");
        let id = RecordingId { recording_type: entry.id.recording_type.clone(), recording_id: entry.id.recording_id };
        let ctx = &pending.header().encryption_context;
        assert_eq!(
            (ctx.get("org"), ctx.get("recording_type"), ctx.get("recording_id")),
            (Some(ORG), Some(id.recording_type.as_str()), Some(id.recording_id.as_str()))
        );
        let policy = UnwrapPolicy {
            region: REGION.into(),
            allowed_keys: None,
            allowed_accounts: None,
            allow_other_regions: true,
        };
        let (data_key, _) = keyring::unwrap_data_key(&*self.kms, pending.header(), &policy).await.expect("unwrap");
        let mut out = Vec::new();
        pending.decrypt(&data_key).expect("authentic").read_to_end(&mut out).expect("every frame authenticates");
        out
    }

    /// How many recordings the catalog says `key_arn` protects.
    pub fn usage(&self, key_arn: &str) -> u64 {
        let all = self.catalog.key_usages_now();
        all.iter().find(|u| u.key_arn == key_arn).map_or(0, |u| u.recordings)
    }
}

pub fn ingest(key: &str) -> S3Location {
    S3Location { bucket: INGEST.into(), key: key.into() }
}

pub fn vault(key: &str) -> S3Location {
    S3Location { bucket: VAULT.into(), key: key.into() }
}

/// Deterministic bytes.
pub fn sample(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed as usize * 13) % 251) as u8).collect()
}

/// A re-key of `id` onto the key `to` alone, asked as `request`.
pub fn rekey_task(id: RecordingId, to: &str, request: &str) -> vault::rekey::RekeyTask {
    vault::rekey::RekeyTask {
        id,
        target: vault::rekey::Target::Keys(vec![to.to_string()]),
        from_key: None,
        request_id: request.into(),
        destination: None,
        copy_only: false,
    }
}

/// A claim deadline 15 minutes ahead.
pub fn claim_until() -> u64 {
    vault::time::unix_now() + 900
}
