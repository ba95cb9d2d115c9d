//! The [`ObjectStore`] contract.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;

use crate::errors::OperationError;
use crate::ports::objects::{
    ObjectBody, ObjectStore, S3Error, S3Location, Upload, UploadCheck, WriteOptions, WrittenObject, MIN_PART_SIZE,
};

/// What the object contract needs beyond the port.
pub trait ObjectHarness: Sync {
    /// Multipart uploads started and neither completed nor aborted in `bucket`.
    fn open_uploads(&self, bucket: &str) -> impl Future<Output = usize> + Send;
    /// The tags of `version` of `loc` (the current one when `None`).
    fn tags(&self, loc: &S3Location, version: Option<&str>) -> impl Future<Output = Vec<(String, String)>> + Send;
    /// The next read (GET) of `loc` is denied, as S3 denies a call the
    /// role may not make.
    fn deny_next_read(&self, loc: &S3Location) -> impl Future<Output = ()> + Send;
}

async fn bytes(body: ObjectBody) -> Vec<u8> {
    let mut out = Vec::new();
    body.into_async_read().read_to_end(&mut out).await.expect("the body reads");
    out
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// An [`UploadCheck`] that keeps what it saw and refuses when told to.
struct Recorder {
    seen: Arc<Mutex<Vec<u8>>>,
    finished: Arc<Mutex<bool>>,
    refuse_part: bool,
    refuse_finish: bool,
}

impl UploadCheck for Recorder {
    fn part(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.seen.lock().expect("lock").extend_from_slice(bytes);
        if self.refuse_part {
            return Err("refused a part".into());
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        *self.finished.lock().expect("lock") = true;
        if self.refuse_finish {
            return Err("refused at the end".into());
        }
        Ok(())
    }
}

async fn upload<S: ObjectStore>(store: &S, loc: &S3Location, data: Vec<u8>) -> Result<WrittenObject, S3Error> {
    upload_checked(store, loc, data, None).await
}

async fn upload_checked<S: ObjectStore>(
    store: &S,
    loc: &S3Location,
    data: Vec<u8>,
    check: Option<Recorder>,
) -> Result<WrittenObject, S3Error> {
    let handle = tokio::runtime::Handle::current();
    let mut up = store.upload(&handle, loc, WriteOptions { part_size: MIN_PART_SIZE, ..WriteOptions::default() });
    if let Some(check) = check {
        up.check_with(Box::new(check));
    }
    tokio::task::spawn_blocking(move || {
        for chunk in data.chunks(1 << 20) {
            if let Err(e) = up.write_all(chunk) {
                // A refused part fails the write (the AWS writer sends parts
                // as they fill): the error is the store's.
                up.abort();
                let inner = e.into_inner().expect("a write error carries the store's error");
                return Err(*inner.downcast::<S3Error>().expect("an S3Error"));
            }
        }
        up.finish()
    })
    .await
    .expect("the upload task")
}

/// Runs the whole object contract in `versioned` and `unversioned`, two
/// empty buckets.
pub async fn object_store<S: ObjectStore, H: ObjectHarness>(
    store: &S,
    harness: &H,
    versioned: &str,
    unversioned: &str,
) {
    let at = |bucket: &str, key: &str| S3Location { bucket: bucket.into(), key: key.into() };

    // A small object is one PUT; ranges are served as S3 serves them.
    let small = at(versioned, "contract/small");
    let data = pattern(1000, 1);
    let written = upload(store, &small, data.clone()).await.expect("a single PUT");
    assert_eq!(written.size, 1000);
    let v1 = written.version.clone().expect("a versioned bucket gives a version id");
    store.verify(&small, &written).await.expect("what was written verifies");
    assert_eq!(bytes(store.read(&small, None, None).await.unwrap()).await, data);
    assert_eq!(bytes(store.read(&small, None, Some(10..20)).await.unwrap()).await, data[10..20]);
    assert_eq!(bytes(store.read(&small, None, Some(990..2000)).await.unwrap()).await, data[990..], "cut at the end");
    let past = store.read(&small, None, Some(1000..1010)).await.err().expect("a range past the end is refused");
    assert!(matches!(&past, S3Error::Refused { detail, .. } if detail.starts_with("InvalidRange")), "{past:?}");
    assert_eq!(store.size(&small).await.unwrap(), 1000);

    // A verify of what was not written fails, retryably.
    let wrong_size = WrittenObject { size: 999, ..written.clone() };
    let e = store.verify(&small, &wrong_size).await.unwrap_err();
    assert_eq!((e.code(), e.is_retryable()), ("vault_verify_failed", true), "{e}");
    let wrong_sum = WrittenObject { checksum_sha256: "AAAA".into(), ..written.clone() };
    assert_eq!(store.verify(&small, &wrong_sum).await.unwrap_err().code(), "vault_verify_failed");

    // A large object is a multipart upload whose checksum counts its parts;
    // each version stays readable by its id.
    let big = pattern(2 * MIN_PART_SIZE + 12_345, 2);
    let written2 = upload(store, &small, big.clone()).await.expect("a multipart upload");
    let v2 = written2.version.clone().expect("version");
    assert_ne!(v1, v2);
    assert!(written2.checksum_sha256.ends_with("-3"), "three parts: {}", written2.checksum_sha256);
    store.verify(&small, &written2).await.expect("the multipart object verifies");
    assert_eq!(bytes(store.read(&small, Some(&v1), None).await.unwrap()).await, data);
    assert_eq!(bytes(store.read(&small, Some(&v2), Some(0..5)).await.unwrap()).await, big[..5]);
    assert_eq!(bytes(store.read(&small, None, None).await.unwrap()).await.len(), big.len());

    // An aborted multipart upload leaves no object and no parts.
    let aborted = at(versioned, "contract/aborted");
    let handle = tokio::runtime::Handle::current();
    let mut up = store.upload(&handle, &aborted, WriteOptions { part_size: MIN_PART_SIZE, ..WriteOptions::default() });
    tokio::task::spawn_blocking(move || {
        up.write_all(&pattern(MIN_PART_SIZE + 1, 3)).expect("write");
        up.abort();
    })
    .await
    .unwrap();
    assert_eq!(harness.open_uploads(versioned).await, 0, "abort leaves no parts");
    assert_eq!(store.read(&aborted, None, None).await.err().map(|e| e.code()), Some("not_found"));

    // An upload's check sees every byte in order, and is asked before the
    // object is stored; a refusal, of a part or at the end, stores nothing.
    let checked = at(versioned, "contract/checked");
    for (len, refuse_part, refuse_finish) in [
        (1000, false, false),
        (2 * MIN_PART_SIZE + 7, false, false),
        (1000, false, true),
        (2 * MIN_PART_SIZE + 7, true, false),
        (2 * MIN_PART_SIZE + 7, false, true),
    ] {
        let data = pattern(len, 4);
        let (seen, finished) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(false)));
        let check = Recorder { seen: seen.clone(), finished: finished.clone(), refuse_part, refuse_finish };
        let out = upload_checked(store, &checked, data.clone(), Some(check)).await;
        let case = format!("{len} bytes, refusing a part {refuse_part}, at the end {refuse_finish}");
        if refuse_part || refuse_finish {
            let e = out.expect_err(&case);
            assert_eq!((e.code(), e.is_retryable()), ("ciphertext_check_failed", true), "{case}: {e}");
            assert_eq!(store.head(&checked, None).await.unwrap(), None, "{case}: nothing stored");
            assert_eq!(harness.open_uploads(versioned).await, 0, "{case}: no parts left");
        } else {
            let written = out.expect(&case);
            assert!(*seen.lock().unwrap() == data, "{case}: the check saw every byte, in order");
            assert!(*finished.lock().unwrap(), "{case}: asked before storing");
            assert_eq!(bytes(store.read(&checked, written.version.as_deref(), None).await.unwrap()).await, data);
            store.delete(&checked, written.version.as_deref()).await.unwrap();
        }
    }

    // Reading as an event announced it: the version, or the ETag.
    let (etag, version) = store.head(&small, None).await.unwrap().expect("current");
    assert_eq!(version.as_deref(), Some(v2.as_str()));
    let (etag1, version1) = store.head(&small, Some(&v1)).await.unwrap().expect("an older version");
    assert_eq!((!etag1.is_empty(), version1.as_deref()), (true, Some(v1.as_str())));
    assert_ne!(etag1, etag, "each version has its own ETag");
    let src = store.read_announced(&small, Some(&v1), "").await.unwrap();
    assert_eq!((src.version.as_deref(), src.size), (Some(v1.as_str()), 1000));
    assert_eq!(bytes(src.body).await, data);
    let src = store.read_announced(&small, None, &etag).await.unwrap();
    assert_eq!((src.etag.as_str(), src.size), (etag.as_str(), big.len() as u64));
    let changed = store.read_announced(&small, None, "0123456789abcdef0123456789abcdef").await.err().expect("changed");
    assert_eq!(changed.code(), "source_changed");

    // Tags: one key set, the others kept; by version too.
    store.tag(&small, None, "a", "1").await.unwrap();
    store.tag(&small, None, "b", "2").await.unwrap();
    store.tag(&small, None, "a", "3").await.unwrap();
    let mut tags = harness.tags(&small, None).await;
    tags.sort();
    assert_eq!(tags, [("a".to_string(), "3".to_string()), ("b".to_string(), "2".to_string())]);
    store.tag(&small, Some(&v1), "old", "yes").await.unwrap();
    assert_eq!(harness.tags(&small, Some(&v1)).await, [("old".to_string(), "yes".to_string())]);
    // One call with the tags just read: those kept, the key replaced.
    let current = store.tags(&small, Some(&v1)).await.unwrap();
    store.tag_with(&small, Some(&v1), &current, "old", "no").await.unwrap();
    store.tag_with(&small, Some(&v1), &[("old".to_string(), "no".to_string())], "state", "x").await.unwrap();
    let mut tags = harness.tags(&small, Some(&v1)).await;
    tags.sort();
    assert_eq!(tags, [("old".to_string(), "no".to_string()), ("state".to_string(), "x".to_string())]);

    // Deleting one version leaves the others; deleting what is gone is done.
    store.delete(&small, Some(&v1)).await.unwrap();
    assert_eq!(store.read(&small, Some(&v1), None).await.err().map(|e| e.code()), Some("not_found"));
    store.delete(&small, Some(&v1)).await.expect("already gone is done");
    assert_eq!(store.head(&small, Some(&v1)).await.unwrap(), None, "a deleted version heads as gone");
    // Deleting the object (no version) hides it; its versions remain.
    store.delete(&small, None).await.unwrap();
    assert_eq!(store.head(&small, None).await.unwrap(), None);
    assert_eq!(bytes(store.read(&small, Some(&v2), Some(0..5)).await.unwrap()).await, big[..5]);

    // Writes that never replace an object.
    let evidence = at(versioned, "contract/evidence.json");
    store.put_new(&evidence, b"{}".to_vec(), "application/json").await.expect("new");
    let again = store.put_new(&evidence, b"{\"x\":1}".to_vec(), "application/json").await.unwrap_err();
    assert_eq!(again.code(), "source_changed", "{again}");
    assert_eq!(bytes(store.read(&evidence, None, None).await.unwrap()).await, b"{}");

    // Unversioned: a delete only while the ETag is the one named.
    let plain = at(unversioned, "contract/plain");
    let w = upload(store, &plain, b"first".to_vec()).await.unwrap();
    assert_eq!(w.version, None, "no version ids without versioning");
    let (first_etag, _) = store.head(&plain, None).await.unwrap().unwrap();
    upload(store, &plain, b"second".to_vec()).await.unwrap();
    let refused = store.delete_if_match(&plain, &first_etag).await.unwrap_err();
    assert_eq!(refused.code(), "source_changed");
    assert_eq!(bytes(store.read(&plain, None, None).await.unwrap()).await, b"second", "the newer upload is kept");
    let (second_etag, _) = store.head(&plain, None).await.unwrap().unwrap();
    store.delete_if_match(&plain, &second_etag).await.unwrap();
    assert_eq!(store.head(&plain, None).await.unwrap(), None);
    store.delete_if_match(&plain, &second_etag).await.expect("already gone is done");

    // Not found and access denied, as the codes the services act on.
    let missing = at(versioned, "contract/missing");
    assert_eq!(store.read(&missing, None, None).await.err().map(|e| e.code()), Some("not_found"));
    assert_eq!(store.head(&missing, None).await.unwrap(), None);
    let no_bucket = at("callvault-contract-no-such-bucket", "x");
    assert_eq!(store.read(&no_bucket, None, None).await.err().map(|e| e.code()), Some("not_found"));
    harness.deny_next_read(&evidence).await;
    let denied = store.read(&evidence, None, None).await.err().expect("denied");
    assert_eq!((denied.code(), denied.is_retryable()), ("access_denied", false), "{denied}");
}
