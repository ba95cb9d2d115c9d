//! The twin of the [`ObjectStore`] port: buckets, versioned or not, with
//! S3's answers: version ids, delete markers, `If-Match` and
//! `If-None-Match`, ranges (a start past the end is `InvalidRange`), tags,
//! SHA-256 checksums computed from what is stored (per part for a multipart
//! upload, as S3 reports them), and uploads that store nothing until they
//! are finished.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{digest, Context, SHA256};
use tokio::runtime::Handle;

mod upload;

pub use upload::MemoryUpload;

use super::Faults;
use crate::ports::objects::{
    same_checksum, ObjectBody, ObjectLock, ObjectStore, S3Error, S3Location, SourceObject, StoredVersion, WriteOptions,
    WrittenObject,
};

#[derive(Clone, Debug)]
struct Version {
    id: Option<String>,
    /// `None`: a delete marker.
    data: Option<Arc<Vec<u8>>>,
    etag: String,
    content_type: Option<String>,
    checksum: String,
    tags: Vec<(String, String)>,
    lock: ObjectLock,
}

#[derive(Default)]
struct Bucket {
    versioned: bool,
    /// S3 Object Lock: retention dates and legal holds are kept and
    /// enforced (against [`MemoryObjects::set_now`]'s clock).
    object_lock: bool,
    /// Oldest first; the last is the current one.
    objects: HashMap<String, Vec<Version>>,
}

#[derive(Default)]
struct State {
    buckets: HashMap<String, Bucket>,
    /// Uploads started and not yet finished or aborted.
    open_uploads: usize,
    /// Bytes to flip in the next stored upload (a store that keeps other
    /// bytes than it was sent).
    corrupt_next: bool,
    corrupt_next_part: Option<usize>,
}

/// An in-memory object store.
#[derive(Clone, Default)]
pub struct MemoryObjects {
    state: Arc<Mutex<State>>,
    counter: Arc<AtomicU64>,
    /// Planned faults, by operation: `read`, `read_current`, `read_announced`, `size`,
    /// `head`, `put_new`, `verify`, `delete`, `delete_if_match`, `list_versions`, `tags`, `tag`,
    /// `object_lock`, `set_legal_hold`, `delete_version`,
    /// and for uploads `upload_write` and `upload_finish`.
    pub faults: Arc<Faults<S3Error>>,
    /// The clock Object Lock is enforced against (Unix seconds; 0: the
    /// wall clock).
    now: Arc<AtomicU64>,
}

fn not_found(loc: &S3Location) -> S3Error {
    S3Error::NotFound { location: loc.to_string() }
}

/// The checksum S3 reports for `data` written in parts of `part_size`
/// (hex here; opaque to the domain).
fn checksum_of(data: &[u8], part_size: Option<usize>) -> String {
    match part_size {
        Some(size) if data.len() > size => {
            let mut whole = Context::new(&SHA256);
            let mut parts = 0;
            for chunk in data.chunks(size) {
                whole.update(digest(&SHA256, chunk).as_ref());
                parts += 1;
            }
            format!("{}-{parts}", hex::encode(whole.finish()))
        }
        _ => hex::encode(digest(&SHA256, data)),
    }
}

impl MemoryObjects {
    /// A store without buckets.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str, versioned: bool) {
        self.lock().buckets.insert(name.to_string(), Bucket { versioned, ..Bucket::default() });
    }

    /// Creates a versioned bucket with S3 Object Lock.
    pub fn create_locked_bucket(&self, name: &str) {
        self.lock()
            .buckets
            .insert(name.to_string(), Bucket { versioned: true, object_lock: true, ..Bucket::default() });
    }

    /// Sets the clock Object Lock is enforced against (Unix seconds).
    pub fn set_now(&self, secs: u64) {
        self.now.store(secs, Ordering::Relaxed);
    }

    fn now(&self) -> u64 {
        match self.now.load(Ordering::Relaxed) {
            0 => crate::time::unix_now(),
            n => n,
        }
    }

    /// Puts an Object Lock retention on `version` of `loc` (as the bucket's
    /// owner would, or a default retention).
    pub fn set_retention(&self, loc: &S3Location, version: &str, mode: &str, until: &str) {
        self.edit_version(loc, Some(version), |v| v.lock.retention = Some((mode.to_string(), until.to_string())));
    }

    /// Stores `data` at `loc` as a new version (or in place, unversioned);
    /// returns its ETag and version: an upload from outside (a recorder).
    pub fn put(&self, loc: &S3Location, data: &[u8], content_type: Option<&str>) -> (String, Option<String>) {
        self.store(loc, data.to_vec(), content_type.map(str::to_string), None, vec![]).expect("the bucket exists")
    }

    /// The bytes of `version` of `loc` (the current one when `None`).
    pub fn get(&self, loc: &S3Location, version: Option<&str>) -> Option<Vec<u8>> {
        self.find(loc, version).ok().and_then(|v| v.data.map(|d| d.to_vec()))
    }

    /// Changes `version` of `loc` (the current one when `None`) in place.
    fn edit_version(&self, loc: &S3Location, version: Option<&str>, f: impl FnOnce(&mut Version)) {
        let mut state = self.lock();
        let Some(versions) = state.buckets.get_mut(&loc.bucket).and_then(|b| b.objects.get_mut(&loc.key)) else {
            return;
        };
        let found = match version {
            Some(v) => versions.iter_mut().find(|x| x.id.as_deref() == Some(v)),
            None => versions.last_mut(),
        };
        if let Some(v) = found {
            f(v);
        }
    }

    /// Replaces the bytes of `version` of `loc` in place, keeping its
    /// checksum: what tampering with stored ciphertext looks like.
    pub fn tamper(&self, loc: &S3Location, version: Option<&str>, f: impl FnOnce(&mut Vec<u8>)) {
        self.edit_version(loc, version, |v| {
            if let Some(data) = &mut v.data {
                let mut bytes = data.to_vec();
                f(&mut bytes);
                *data = Arc::new(bytes);
            }
        });
    }

    /// Recomputes the ETag of `version` of `loc` from its bytes (after
    /// [`MemoryObjects::tamper`], as a store that really changed them).
    pub fn refresh_etag(&self, loc: &S3Location, version: Option<&str>) {
        self.edit_version(loc, version, |v| {
            if let Some(data) = &v.data {
                v.etag = hex::encode(&digest(&SHA256, data).as_ref()[..16]);
            }
        });
    }

    /// The ids of every version of `loc`, oldest first, delete markers
    /// as `"(deleted)"`.
    pub fn versions(&self, loc: &S3Location) -> Vec<String> {
        let state = self.lock();
        let Some(versions) = state.buckets.get(&loc.bucket).and_then(|b| b.objects.get(&loc.key)) else {
            return Vec::new();
        };
        versions
            .iter()
            .map(|v| match &v.data {
                Some(_) => v.id.clone().unwrap_or_else(|| "null".into()),
                None => "(deleted)".into(),
            })
            .collect()
    }

    /// The keys in `bucket` whose current version is an object.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let state = self.lock();
        let mut keys: Vec<String> = state
            .buckets
            .get(bucket)
            .map(|b| {
                b.objects
                    .iter()
                    .filter(|(_, v)| v.last().is_some_and(|v| v.data.is_some()))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// Changes the tags of `version` of the object at `loc` (the current
    /// one: `None`) as PutObjectTagging would.
    fn set_tags(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        change: impl FnOnce(&mut Vec<(String, String)>),
    ) -> Result<(), S3Error> {
        let target = self.find(loc, version)?.id;
        let mut state = self.lock();
        let versions = state
            .buckets
            .get_mut(&loc.bucket)
            .and_then(|b| b.objects.get_mut(&loc.key))
            .ok_or_else(|| not_found(loc))?;
        let found =
            versions.iter_mut().rev().find(|v| v.data.is_some() && v.id == target).ok_or_else(|| not_found(loc))?;
        change(&mut found.tags);
        Ok(())
    }

    /// The tags of `version` of `loc` (the current one when `None`).
    pub fn tags_of(&self, loc: &S3Location, version: Option<&str>) -> Vec<(String, String)> {
        self.find(loc, version).map(|v| v.tags).unwrap_or_default()
    }

    /// Uploads started and neither finished nor aborted (parts S3 would
    /// keep until the lifecycle rule aborts them).
    pub fn open_uploads(&self) -> usize {
        self.lock().open_uploads
    }

    /// The next finished upload stores other bytes than it was sent (one
    /// flipped), as a store that corrupts data would.
    pub fn corrupt_next_upload(&self) {
        self.lock().corrupt_next = true;
    }

    /// Flips one bit of the next upload at `offset` (or its last byte) in
    /// the writer's buffer, before it is hashed and checked: an encryptor or
    /// buffer bug that S3's checksum cannot see.
    pub fn corrupt_next_upload_before_hashing(&self, offset: usize) {
        self.lock().corrupt_next_part = Some(offset);
    }

    fn find(&self, loc: &S3Location, version: Option<&str>) -> Result<Version, S3Error> {
        let state = self.lock();
        let bucket = state.buckets.get(&loc.bucket).ok_or_else(|| not_found(loc))?;
        let versions = bucket.objects.get(&loc.key).ok_or_else(|| not_found(loc))?;
        let found = match version {
            Some(v) => versions.iter().find(|x| x.id.as_deref() == Some(v)),
            None => versions.last(),
        };
        found.filter(|v| v.data.is_some()).cloned().ok_or_else(|| not_found(loc))
    }

    fn store(
        &self,
        loc: &S3Location,
        data: Vec<u8>,
        content_type: Option<String>,
        part_size: Option<usize>,
        tags: Vec<(String, String)>,
    ) -> Result<(String, Option<String>), S3Error> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let checksum = checksum_of(&data, part_size);
        let etag = hex::encode(&digest(&SHA256, &data).as_ref()[..16]);
        let mut state = self.lock();
        let bucket = state.buckets.get_mut(&loc.bucket).ok_or_else(|| not_found(loc))?;
        let id = bucket.versioned.then(|| format!("v{n:06}"));
        let version = Version {
            id: id.clone(),
            data: Some(Arc::new(data)),
            etag: etag.clone(),
            content_type,
            checksum,
            tags,
            lock: ObjectLock::default(),
        };
        let versions = bucket.objects.entry(loc.key.clone()).or_default();
        if !bucket.versioned {
            versions.clear();
        }
        versions.push(version);
        Ok((etag, id))
    }
}

impl ObjectStore for MemoryObjects {
    type Upload = MemoryUpload;

    async fn read(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        range: Option<Range<u64>>,
    ) -> Result<ObjectBody, S3Error> {
        self.faults.before("read").await?;
        let found = self.find(loc, version)?;
        let data = found.data.unwrap_or_default();
        let bytes = match range {
            None => data.to_vec(),
            Some(r) if r.start >= r.end => Vec::new(),
            Some(r) if r.start >= data.len() as u64 => {
                return Err(S3Error::Refused {
                    location: loc.to_string(),
                    detail: format!("InvalidRange: bytes {}- of {} bytes", r.start, data.len()),
                })
            }
            Some(r) => data[r.start as usize..(r.end as usize).min(data.len())].to_vec(),
        };
        self.faults.after("read").await?;
        Ok(ObjectBody::from_bytes(bytes))
    }

    async fn read_current(&self, loc: &S3Location, range: Range<u64>) -> Result<(ObjectBody, Option<String>), S3Error> {
        self.faults.before("read_current").await?;
        let found = self.find(loc, None)?;
        let data = found.data.unwrap_or_default();
        if range.start >= data.len() as u64 {
            return Err(S3Error::Refused {
                location: loc.to_string(),
                detail: format!("InvalidRange: bytes {}- of {} bytes", range.start, data.len()),
            });
        }
        let bytes = data[range.start as usize..(range.end as usize).min(data.len())].to_vec();
        Ok((ObjectBody::from_bytes(bytes), found.id))
    }

    async fn read_announced(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        etag: &str,
    ) -> Result<SourceObject, S3Error> {
        self.faults.before("read_announced").await?;
        let found = self.find(loc, version)?;
        if !etag.is_empty() && found.etag != etag.trim_matches('"') {
            return Err(S3Error::Changed {
                location: loc.to_string(),
                detail: format!("ETag {}, not {etag}", found.etag),
            });
        }
        let data = found.data.unwrap_or_default();
        Ok(SourceObject {
            size: data.len() as u64,
            content_type: found.content_type.clone(),
            etag: found.etag.clone(),
            version: found.id.clone(),
            body: ObjectBody::from_bytes(data.to_vec()),
        })
    }

    async fn size(&self, loc: &S3Location) -> Result<u64, S3Error> {
        self.faults.before("size").await?;
        Ok(self.find(loc, None)?.data.map_or(0, |d| d.len() as u64))
    }

    async fn head(&self, loc: &S3Location, version: Option<&str>) -> Result<Option<(String, Option<String>)>, S3Error> {
        self.faults.before("head").await?;
        match self.find(loc, version) {
            Ok(v) => Ok(Some((v.etag, v.id))),
            Err(S3Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_new(&self, loc: &S3Location, body: Vec<u8>, content_type: &str) -> Result<Option<String>, S3Error> {
        self.faults.before("put_new").await?;
        if self.find(loc, None).is_ok() {
            return Err(S3Error::Changed {
                location: loc.to_string(),
                detail: "PreconditionFailed: the object exists".into(),
            });
        }
        let (_, version) = self.store(loc, body, Some(content_type.to_string()), None, vec![])?;
        self.faults.after("put_new").await?;
        Ok(version)
    }

    fn upload(&self, _handle: &Handle, loc: &S3Location, options: WriteOptions) -> MemoryUpload {
        self.lock().open_uploads += 1;
        MemoryUpload {
            store: self.clone(),
            loc: loc.clone(),
            options,
            buf: Vec::new(),
            open: true,
            failed: false,
            check: None,
        }
    }

    async fn verify(&self, loc: &S3Location, written: &WrittenObject) -> Result<(), S3Error> {
        self.faults.before("verify").await?;
        let found = self.find(loc, written.version.as_deref())?;
        let size = found.data.as_ref().map_or(0, |d| d.len() as u64);
        let failed = |detail: String| S3Error::VerifyFailed { location: loc.to_string(), detail };
        if size != written.size {
            return Err(failed(format!("{size} bytes, {} written", written.size)));
        }
        if !same_checksum(&found.checksum, &written.checksum_sha256) {
            return Err(failed(format!("SHA-256 {}, {} written", found.checksum, written.checksum_sha256)));
        }
        Ok(())
    }

    async fn delete(&self, loc: &S3Location, version: Option<&str>) -> Result<(), S3Error> {
        self.faults.before("delete").await?;
        {
            let mut state = self.lock();
            let bucket = state.buckets.get_mut(&loc.bucket).ok_or_else(|| not_found(loc))?;
            let versioned = bucket.versioned;
            if let Some(versions) = bucket.objects.get_mut(&loc.key) {
                match version {
                    Some(v) => versions.retain(|x| x.id.as_deref() != Some(v)),
                    None if versioned => versions.push(Version {
                        id: Some(format!("v{:06}", self.counter.fetch_add(1, Ordering::Relaxed))),
                        data: None,
                        etag: String::new(),
                        content_type: None,
                        checksum: String::new(),
                        tags: vec![],
                        lock: ObjectLock::default(),
                    }),
                    None => versions.clear(),
                }
                if versions.is_empty() {
                    bucket.objects.remove(&loc.key);
                }
            }
        }
        self.faults.after("delete").await
    }

    async fn delete_if_match(&self, loc: &S3Location, etag: &str) -> Result<(), S3Error> {
        self.faults.before("delete_if_match").await?;
        match self.find(loc, None) {
            Err(S3Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
            Ok(v) if v.etag != etag.trim_matches('"') => {
                return Err(S3Error::Changed {
                    location: loc.to_string(),
                    detail: "PreconditionFailed: the ETag does not match".into(),
                })
            }
            Ok(_) => {}
        }
        {
            let mut state = self.lock();
            if let Some(bucket) = state.buckets.get_mut(&loc.bucket) {
                bucket.objects.remove(&loc.key);
            }
        }
        self.faults.after("delete_if_match").await
    }

    async fn list_versions(&self, loc: &S3Location) -> Result<Vec<StoredVersion>, S3Error> {
        self.faults.before("list_versions").await?;
        let state = self.lock();
        let bucket = state.buckets.get(&loc.bucket).ok_or_else(|| not_found(loc))?;
        let Some(versions) = bucket.objects.get(&loc.key) else { return Ok(Vec::new()) };
        let latest = versions.len().saturating_sub(1);
        Ok(versions
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(i, v)| {
                v.data.as_ref().map(|d| StoredVersion {
                    version: v.id.clone().unwrap_or_else(|| "null".into()),
                    is_latest: i == latest,
                    size: d.len() as u64,
                })
            })
            .collect())
    }

    async fn tags(&self, loc: &S3Location, version: Option<&str>) -> Result<Vec<(String, String)>, S3Error> {
        self.faults.before("tags").await?;
        Ok(self.find(loc, version)?.tags)
    }

    async fn object_lock(&self, loc: &S3Location, version: &str) -> Result<ObjectLock, S3Error> {
        self.faults.before("object_lock").await?;
        if !self.lock().buckets.get(&loc.bucket).ok_or_else(|| not_found(loc))?.object_lock {
            return Ok(ObjectLock::default());
        }
        Ok(self.find(loc, Some(version))?.lock)
    }

    async fn set_legal_hold(&self, loc: &S3Location, version: &str, on: bool) -> Result<(), S3Error> {
        self.faults.before("set_legal_hold").await?;
        if !self.lock().buckets.get(&loc.bucket).ok_or_else(|| not_found(loc))?.object_lock {
            return Err(S3Error::Refused {
                location: loc.to_string(),
                detail: "InvalidRequest: Bucket is missing Object Lock Configuration".into(),
            });
        }
        self.find(loc, Some(version))?;
        self.edit_version(loc, Some(version), |v| v.lock.legal_hold = on);
        self.faults.after("set_legal_hold").await
    }

    async fn delete_version(&self, loc: &S3Location, version: &str, bypass_governance: bool) -> Result<(), S3Error> {
        self.faults.before("delete_version").await?;
        let now = self.now();
        {
            let mut state = self.lock();
            let bucket = state.buckets.get_mut(&loc.bucket).ok_or_else(|| not_found(loc))?;
            let locked = bucket.object_lock;
            if let Some(versions) = bucket.objects.get_mut(&loc.key) {
                if let Some(v) = versions.iter().find(|x| x.id.as_deref() == Some(version)) {
                    let protected = locked
                        && (v.lock.legal_hold
                            || v.lock.retention.as_ref().is_some_and(|(mode, until)| {
                                crate::time::parse_rfc3339(until).is_none_or(|u| u > now)
                                    && (mode == "COMPLIANCE" || !bypass_governance)
                            }));
                    if protected {
                        return Err(S3Error::AccessDenied {
                            location: loc.to_string(),
                            detail: format!("AccessDenied: version {version} is WORM protected and cannot be deleted"),
                        });
                    }
                }
                versions.retain(|x| x.id.as_deref() != Some(version));
                if versions.is_empty() {
                    bucket.objects.remove(&loc.key);
                }
            }
        }
        self.faults.after("delete_version").await
    }

    async fn tag(&self, loc: &S3Location, version: Option<&str>, key: &str, value: &str) -> Result<(), S3Error> {
        self.faults.before("tag").await?;
        self.set_tags(loc, version, |tags| {
            tags.retain(|(k, _)| k != key);
            tags.push((key.to_string(), value.to_string()));
        })
    }

    async fn tag_with(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        current: &[(String, String)],
        key: &str,
        value: &str,
    ) -> Result<(), S3Error> {
        // The same S3 call as `tag` (PutObjectTagging): planned faults hit both.
        self.faults.before("tag").await?;
        self.set_tags(loc, version, |tags| {
            *tags = current.iter().filter(|(k, _)| k != key).cloned().collect();
            tags.push((key.to_string(), value.to_string()));
        })
    }
}
