//! S3 through the AWS SDK: the adapter of the [`ObjectStore`] port, whose
//! uploads are multipart writers with a bounded number of parts in flight,
//! so memory never depends on the object's size.

use std::collections::VecDeque;
use std::ops::Range;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, Tag, Tagging,
};
use tokio::runtime::Handle;

mod upload;

pub use upload::MultipartWriter;

use crate::ports::objects::{
    same_checksum, ObjectBody, ObjectLock, ObjectStore, S3Error, S3Location, SourceObject, StoredVersion, WriteOptions,
    WrittenObject,
};

/// The S3 API calls this module makes, as IAM actions. `s3:ListBucket` is
/// no call of its own: without it S3 answers a read of a missing key with
/// 403, which would be reported as `access_denied` instead of `not_found`.
pub const AWS_CALLS: &[&[&str]] = &[OBJECT_CALLS, VERSION_LISTING, OBJECT_LOCK_CALLS];

/// Object Lock: reading a version's retention and legal hold, setting a
/// legal hold, writing an object born with a retention date or a hold
/// (`PutObjectRetention`, `PutObjectLegalHold` on the write), and deleting
/// past a governance-mode retention.
pub const OBJECT_LOCK_CALLS: &[&str] = &[
    "s3:GetObjectRetention",
    "s3:GetObjectLegalHold",
    "s3:PutObjectLegalHold",
    "s3:PutObjectRetention",
    "s3:BypassGovernanceRetention",
];

/// The Object Lock headers of a write: (mode, retain-until date, legal hold).
fn lock_headers(
    lock: &ObjectLock,
) -> (Option<ObjectLockMode>, Option<aws_smithy_types::DateTime>, Option<ObjectLockLegalHoldStatus>) {
    let (mode, until) = match &lock.retention {
        Some((mode, until)) => (
            Some(ObjectLockMode::from(mode.as_str())),
            crate::time::parse_rfc3339(until).map(|s| aws_smithy_types::DateTime::from_secs(s as i64)),
        ),
        None => (None, None),
    };
    (mode, until, lock.legal_hold.then_some(ObjectLockLegalHoldStatus::On))
}

/// Whether S3 refused because the bucket has no Object Lock.
fn no_object_lock(e: &S3Error) -> bool {
    matches!(e, S3Error::Refused { detail, .. }
        if detail.contains("missing Object Lock") || detail.starts_with("ObjectLockConfigurationNotFound"))
}

/// The adapter's calls on objects: reading, writing, deleting and tagging
/// them (all but [`VERSION_LISTING`]).
pub const OBJECT_CALLS: &[&str] = &[
    "s3:ListBucket",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:GetObjectTagging",
    "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
];

/// Listing an object's versions (`list_versions`: a re-key's leftovers).
pub const VERSION_LISTING: &[&str] = &["s3:ListBucketVersions"];

/// Maps an SDK error to an [`S3Error`].
pub fn map_s3_error<E, R>(err: SdkError<E, R>, location: &str) -> S3Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let location = location.to_string();
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let detail = format!("{}: {}", e.code().unwrap_or("unknown"), e.message().unwrap_or(""));
            match e.code().unwrap_or_default() {
                "NoSuchKey" | "NoSuchBucket" | "NoSuchVersion" | "NotFound" => S3Error::NotFound { location },
                "AccessDenied" | "Forbidden" => S3Error::AccessDenied { location, detail },
                "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken" => {
                    S3Error::CredentialsRejected { location, detail }
                }
                "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout" => {
                    S3Error::Unavailable { location, detail }
                }
                "PreconditionFailed" => S3Error::Changed { location, detail },
                _ => S3Error::Refused { location, detail },
            }
        }
        other => match crate::aws::transport_failure(other) {
            Some(t) => {
                S3Error::Transport { code: t.code(), message: t.describe(&format!("S3 for {location}")), location }
            }
            None => S3Error::Unavailable {
                location,
                detail: format!("{}", aws_smithy_types::error::display::DisplayErrorContext(other)),
            },
        },
    }
}

/// S3 objects through the AWS SDK.
#[derive(Clone)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
}

impl S3Objects {
    /// Wraps a client.
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }

    /// A client from `config`; path-style addressing, which the local AWS
    /// needs and real S3 accepts.
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(config).force_path_style(true).build();
        Self::new(aws_sdk_s3::Client::from_conf(conf))
    }
}

impl S3Objects {
    /// The SDK client: for benchmarks that compare with plain SDK calls,
    /// never for the domain, which knows only [`ObjectStore`].
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

impl ObjectStore for S3Objects {
    type Upload = MultipartWriter;

    async fn size(&self, loc: &S3Location) -> Result<u64, S3Error> {
        let out = self
            .client
            .head_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .send()
            .await
            .map_err(|e| map_s3_error(e, &loc.to_string()))?;
        Ok(out.content_length.unwrap_or(0).max(0) as u64)
    }

    async fn read(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        range: Option<Range<u64>>,
    ) -> Result<ObjectBody, S3Error> {
        let mut req =
            self.client.get_object().bucket(&loc.bucket).key(&loc.key).set_version_id(version.map(str::to_string));
        if let Some(r) = range {
            if r.start >= r.end {
                return Ok(ObjectBody::from_bytes(Vec::new()));
            }
            req = req.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        let out = req.send().await.map_err(|e| map_s3_error(e, &loc.to_string()))?;
        Ok(ObjectBody::new(out.body.into_async_read()))
    }

    async fn read_current(&self, loc: &S3Location, range: Range<u64>) -> Result<(ObjectBody, Option<String>), S3Error> {
        let out = self
            .client
            .get_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .range(format!("bytes={}-{}", range.start, range.end.saturating_sub(1)))
            .send()
            .await
            .map_err(|e| map_s3_error(e, &loc.to_string()))?;
        let version = out.version_id.filter(|v| v != "null");
        Ok((ObjectBody::new(out.body.into_async_read()), version))
    }

    async fn put_new(&self, loc: &S3Location, body: Vec<u8>, content_type: &str) -> Result<Option<String>, S3Error> {
        let out = self
            .client
            .put_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .content_type(content_type)
            .if_none_match("*")
            // A bucket with Object Lock (the evidence bucket) requires one.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| map_s3_error(e, &loc.to_string()))?;
        Ok(out.version_id.filter(|v| v != "null"))
    }

    fn upload(&self, handle: &Handle, loc: &S3Location, options: WriteOptions) -> MultipartWriter {
        MultipartWriter {
            client: self.client.clone(),
            handle: handle.clone(),
            loc: loc.clone(),
            options,
            buf: Vec::new(),
            upload_id: None,
            next_part: 1,
            in_flight: VecDeque::new(),
            done: Vec::new(),
            part_digests: Vec::new(),
            written: 0,
            failed: false,
            check: None,
        }
    }

    async fn read_announced(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        etag: &str,
    ) -> Result<SourceObject, S3Error> {
        // Where the uploader stored a full-object checksum, the SDK checks
        // the body against it as it streams: a read that does not match
        // fails, so nothing corrupted in transit is encrypted and kept.
        let mut req = self.client.get_object().bucket(&loc.bucket).key(&loc.key).checksum_mode(ChecksumMode::Enabled);
        req = match version {
            Some(v) => req.version_id(v),
            None if !etag.is_empty() => req.if_match(quoted(etag)),
            None => req,
        };
        let out = req.send().await.map_err(|e| map_s3_error(e, &loc.to_string()))?;
        let found = out.e_tag.as_deref().map(unquoted).unwrap_or_default().to_string();
        if !etag.is_empty() && found != unquoted(etag) {
            return Err(S3Error::Changed { location: loc.to_string(), detail: format!("ETag {found}, not {etag}") });
        }
        Ok(SourceObject {
            size: out.content_length.unwrap_or(0).max(0) as u64,
            content_type: out.content_type.filter(|c| !c.is_empty()),
            etag: found,
            version: out.version_id.filter(|v| v != "null"),
            body: ObjectBody::new(out.body.into_async_read()),
        })
    }

    async fn verify(&self, loc: &S3Location, written: &WrittenObject) -> Result<(), S3Error> {
        let out = self
            .client
            .head_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .set_version_id(written.version.clone())
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| map_s3_error(e, &loc.to_string()))?;
        let size = out.content_length.unwrap_or(-1);
        let failed = |detail: String| S3Error::VerifyFailed { location: loc.to_string(), detail };
        if size != written.size as i64 {
            return Err(failed(format!("{size} bytes, {} written", written.size)));
        }
        match out.checksum_sha256.as_deref() {
            Some(found) if same_checksum(found, &written.checksum_sha256) => Ok(()),
            Some(found) => Err(failed(format!("SHA-256 {found}, {} written", written.checksum_sha256))),
            None => Err(failed("S3 reports no SHA-256 checksum".into())),
        }
    }

    async fn delete(&self, loc: &S3Location, version: Option<&str>) -> Result<(), S3Error> {
        let req = self.client.delete_object().bucket(&loc.bucket).key(&loc.key);
        gone_is_done(req.set_version_id(version.map(str::to_string)).send().await.map(drop), loc)
    }

    async fn delete_if_match(&self, loc: &S3Location, etag: &str) -> Result<(), S3Error> {
        let req = self.client.delete_object().bucket(&loc.bucket).key(&loc.key);
        gone_is_done(req.if_match(quoted(etag)).send().await.map(drop), loc)
    }

    async fn head(&self, loc: &S3Location, version: Option<&str>) -> Result<Option<(String, Option<String>)>, S3Error> {
        let req = self.client.head_object().bucket(&loc.bucket).key(&loc.key);
        match req.set_version_id(version.map(str::to_string)).send().await {
            Ok(out) => Ok(Some((
                out.e_tag.as_deref().map(unquoted).unwrap_or_default().to_string(),
                out.version_id.filter(|v| v != "null"),
            ))),
            Err(e) => match map_s3_error(e, &loc.to_string()) {
                S3Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list_versions(&self, loc: &S3Location) -> Result<Vec<StoredVersion>, S3Error> {
        let mut found = Vec::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let out = self
                .client
                .list_object_versions()
                .bucket(&loc.bucket)
                .prefix(&loc.key)
                .set_key_marker(key_marker)
                .set_version_id_marker(version_marker)
                .send()
                .await
                .map_err(|e| map_s3_error(e, &loc.to_string()))?;
            // The prefix also lists longer keys: only this one's versions.
            for v in out.versions().iter().filter(|v| v.key() == Some(loc.key.as_str())) {
                found.push(StoredVersion {
                    version: v.version_id().unwrap_or("null").to_string(),
                    is_latest: v.is_latest().unwrap_or(false),
                    size: v.size().unwrap_or(0).max(0) as u64,
                });
            }
            if !out.is_truncated().unwrap_or(false) {
                return Ok(found);
            }
            key_marker = out.next_key_marker;
            version_marker = out.next_version_id_marker;
        }
    }

    async fn object_lock(&self, loc: &S3Location, version: &str) -> Result<ObjectLock, S3Error> {
        let mut lock = ObjectLock::default();
        let retention = self
            .client
            .get_object_retention()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .version_id(version)
            .send()
            .await
            .map_err(|e| map_s3_error(e, &loc.to_string()));
        match retention {
            Ok(out) => {
                if let Some(r) = out.retention {
                    if let (Some(mode), Some(until)) = (r.mode, r.retain_until_date) {
                        let secs = u64::try_from(until.secs()).unwrap_or(0);
                        lock.retention = Some((mode.as_str().to_string(), crate::time::rfc3339(secs)));
                    }
                }
            }
            // No retention on this version (its legal hold is still asked for).
            Err(e) if lock_unset(&e) => {}
            // No Object Lock on the bucket: neither can be set.
            Err(e) if no_object_lock(&e) => return Ok(lock),
            Err(e) => return Err(e),
        }
        let hold = self
            .client
            .get_object_legal_hold()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .version_id(version)
            .send()
            .await
            .map_err(|e| map_s3_error(e, &loc.to_string()));
        match hold {
            Ok(out) => {
                lock.legal_hold =
                    out.legal_hold.and_then(|h| h.status).is_some_and(|s| s == ObjectLockLegalHoldStatus::On)
            }
            Err(e) if lock_unset(&e) || no_object_lock(&e) => {}
            Err(e) => return Err(e),
        }
        Ok(lock)
    }

    async fn set_legal_hold(&self, loc: &S3Location, version: &str, on: bool) -> Result<(), S3Error> {
        let status = if on { ObjectLockLegalHoldStatus::On } else { ObjectLockLegalHoldStatus::Off };
        self.client
            .put_object_legal_hold()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .version_id(version)
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            // S3 requires a checksum (or Content-MD5) on this call.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| map_s3_error(e, &loc.to_string()))?;
        Ok(())
    }

    async fn delete_version(&self, loc: &S3Location, version: &str, bypass_governance: bool) -> Result<(), S3Error> {
        let req = self.client.delete_object().bucket(&loc.bucket).key(&loc.key).version_id(version);
        let req = if bypass_governance { req.bypass_governance_retention(true) } else { req };
        gone_is_done(req.send().await.map(drop), loc)
    }

    async fn tags(&self, loc: &S3Location, version: Option<&str>) -> Result<Vec<(String, String)>, S3Error> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| map_s3_error(e, &loc.to_string()))?;
        Ok(out.tag_set.into_iter().map(|t| (t.key, t.value)).collect())
    }

    async fn tag(&self, loc: &S3Location, version: Option<&str>, key: &str, value: &str) -> Result<(), S3Error> {
        let current = self.tags(loc, version).await?;
        self.tag_with(loc, version, &current, key, value).await
    }

    async fn tag_with(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        current: &[(String, String)],
        key: &str,
        value: &str,
    ) -> Result<(), S3Error> {
        let refused =
            |e: aws_sdk_s3::error::BuildError| S3Error::Refused { location: loc.to_string(), detail: e.to_string() };
        let mut tags = Vec::new();
        for (k, v) in current.iter().filter(|(k, _)| k != key) {
            tags.push(Tag::builder().key(k).value(v).build().map_err(refused)?);
        }
        tags.push(Tag::builder().key(key).value(value).build().map_err(refused)?);
        let tagging = Tagging::builder().set_tag_set(Some(tags)).build().map_err(refused)?;
        self.client
            .put_object_tagging()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .set_version_id(version.map(str::to_string))
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| map_s3_error(e, &loc.to_string()))?;
        Ok(())
    }
}

/// A delete of an object that is already gone has done its job.
fn gone_is_done<E, R>(result: Result<(), SdkError<E, R>>, loc: &S3Location) -> Result<(), S3Error>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match result.map_err(|e| map_s3_error(e, &loc.to_string())) {
        Err(S3Error::NotFound { .. }) => Ok(()),
        other => other,
    }
}

/// Whether S3 answered that the version has no such lock setting (no
/// retention, no legal hold).
fn lock_unset(e: &S3Error) -> bool {
    matches!(e, S3Error::NotFound { .. }) || is_code(e, "NoSuchObjectLockConfiguration")
}

/// Whether an error carries this S3 error code.
fn is_code(e: &S3Error, code: &str) -> bool {
    matches!(e, S3Error::Refused { detail, .. } | S3Error::AccessDenied { detail, .. } if detail.starts_with(code))
}

fn quoted(etag: &str) -> String {
    format!("\"{}\"", unquoted(etag))
}

fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}
