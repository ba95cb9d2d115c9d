//! A deployment of the rekey function on the in-memory twins: recordings
//! encrypted by the real ingest, the handler over the same twins.

#![allow(dead_code)]

use std::sync::Arc;

use inbound::s3_batch::BatchTask;
use rekey::Handler;
use serde_json::Value;
use vault::ingest::{Announced, IngestSettings, RecordingEncryptor};
use vault::memory::{MemoryCatalog, MemoryKms, MemoryObjects};
use vault::ports::objects::{S3Location, WriteOptions};
use vault::recording::{RecordingId, RecordingKeys};
use vault::rekey::{RekeySettings, Rekeyer};

pub type TwinHandler = Handler<Arc<MemoryKms>, MemoryObjects, MemoryCatalog>;

pub const REGION: &str = "us-east-1";
pub const VAULT: &str = "callvault-local-vault";

pub struct Deployed {
    pub kms: Arc<MemoryKms>,
    pub objects: MemoryObjects,
    pub catalog: MemoryCatalog,
    pub a: String,
    pub b: String,
    pub keys: RecordingKeys,
    pub handler: TwinHandler,
}

/// Recordings `calls/r-<n>` under key A; the handler over the same twins.
pub async fn deployed(recordings: usize) -> Deployed {
    let kms = Arc::new(MemoryKms::new());
    let (a, b) = (kms.create_symmetric(REGION), kms.create_symmetric(REGION));
    let objects = MemoryObjects::new();
    objects.create_bucket("ingest", true);
    objects.create_bucket(VAULT, true);
    let catalog = MemoryCatalog::new();
    let keys = RecordingKeys::parse(&format!(r#"{{"calls": ["{a}"]}}"#), REGION).unwrap();
    let encryptor = RecordingEncryptor::new(
        kms.clone(),
        objects.clone(),
        catalog.clone(),
        IngestSettings {
            org: "acme".into(),
            ingest_bucket: "ingest".into(),
            vault_bucket: VAULT.into(),
            keys: keys.clone(),
            frame_length: 4096,
            region: REGION.into(),
            write: WriteOptions::default(),
            retention: Default::default(),
            vault_lock: None,
        },
    );
    for n in 0..recordings {
        let key = format!("calls/r-{n}");
        let loc = S3Location { bucket: "ingest".into(), key: key.clone() };
        let (etag, version) = objects.put(&loc, &vec![n as u8; 10_000 + n], Some("audio/wav"));
        let obj = Announced { bucket: "ingest".into(), key, etag, version };
        encryptor.encrypt(&obj, vault::time::unix_now() + 900, "ingest").await.unwrap();
    }
    let handler = handler_over(&kms, &objects, &catalog, &keys, 900);
    Deployed { kms, objects, catalog, a, b, keys, handler }
}

pub fn task(n: usize) -> BatchTask {
    BatchTask { task_id: format!("task-{n}"), bucket: VAULT.into(), key: format!("calls/r-{n}"), version: None }
}

/// A handler (a new container) over the twins, holding a recording for
/// `claim_secs` at most.
pub fn handler_over(
    kms: &Arc<MemoryKms>,
    objects: &MemoryObjects,
    catalog: &MemoryCatalog,
    keys: &RecordingKeys,
    claim_secs: u64,
) -> TwinHandler {
    Handler::new(Rekeyer::new(
        kms.clone(),
        objects.clone(),
        catalog.clone(),
        RekeySettings {
            org: "acme".into(),
            vault_bucket: VAULT.into(),
            region: REGION.into(),
            keys: keys.clone(),
            frame_length: 4096,
            write: WriteOptions::default(),
            claim_secs,
            vault_lock: None,
        },
    ))
}

impl Deployed {
    /// Another container of the function.
    pub fn handler(&self, claim_secs: u64) -> TwinHandler {
        handler_over(&self.kms, &self.objects, &self.catalog, &self.keys, claim_secs)
    }

    /// The catalog's row of `calls/r-<n>`.
    pub fn entry(&self, n: usize) -> vault::recording::RecordingEntry {
        let id = RecordingId { recording_type: "calls".into(), recording_id: format!("r-{n}") };
        self.catalog.recordings().into_iter().find(|e| e.id == id).expect("catalogued")
    }

    /// The recording's keys.
    pub fn keys_of(&self, n: usize) -> Vec<String> {
        self.entry(n).wrapping_keys
    }

    /// Recordings each key protects, as the catalog counts them.
    pub fn usage(&self, key: &str) -> u64 {
        self.catalog.key_usages_now().iter().find(|u| u.key_arn == key).map_or(0, |u| u.recordings)
    }
}

/// The first task's result code and string.
pub fn result(answer: &Value) -> (&str, &str) {
    let r = &answer["results"][0];
    (r["resultCode"].as_str().unwrap(), r["resultString"].as_str().unwrap())
}
