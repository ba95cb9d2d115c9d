//! Streaming S3 I/O: ranged reads, and a multipart writer with a bounded
//! number of parts in flight, so memory never depends on the object's size.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::ops::Range;

use aws_lc_rs::digest::{digest, Context, SHA256};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, Tag, Tagging};
use aws_smithy_types::base64;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// The S3 API calls this module makes, as IAM actions. `s3:ListBucket` is
/// no call of its own: without it S3 answers a read of a missing key with
/// 403, which would be reported as `access_denied` instead of `not_found`.
pub const AWS_CALLS: &[&str] = &[
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

/// Smallest part S3 accepts, except for the last one.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// An object's bucket and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    /// Parses `s3://bucket/key`.
    pub fn parse(uri: &str) -> Option<Self> {
        let rest = uri.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        (!bucket.is_empty() && !key.is_empty()).then(|| Self { bucket: bucket.into(), key: key.into() })
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Why an S3 call failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum S3Error {
    #[error("{location} does not exist")]
    NotFound { location: String },
    #[error("access to {location} was denied ({detail}): the IAM role or bucket policy must allow it")]
    AccessDenied { location: String, detail: String },
    #[error("S3 failed for {location}: {detail}; retry later")]
    Unavailable { location: String, detail: String },
    #[error("S3 refused the request for {location}: {detail}")]
    Refused { location: String, detail: String },
    /// The object S3 holds is not what was written (size or checksum).
    #[error("{location} is not what was written ({detail}); it will be written again")]
    VerifyFailed { location: String, detail: String },
    /// The object changed since the event that named it.
    #[error("{location} changed since it was announced ({detail}); its newer version gets its own event")]
    Changed { location: String, detail: String },
}

impl S3Error {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::AccessDenied { .. } => "access_denied",
            Self::Unavailable { .. } => "s3_unavailable",
            Self::Refused { .. } => "s3_refused",
            Self::VerifyFailed { .. } => "vault_verify_failed",
            Self::Changed { .. } => "source_changed",
        }
    }

    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::VerifyFailed { .. })
    }
}

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
                "AccessDenied" | "Forbidden" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
                    S3Error::AccessDenied { location, detail }
                }
                "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout" => {
                    S3Error::Unavailable { location, detail }
                }
                "PreconditionFailed" => S3Error::Changed { location, detail },
                _ => S3Error::Refused { location, detail },
            }
        }
        _ => S3Error::Unavailable { location, detail: format!("{err}") },
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

    /// The SDK client.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The object's size in bytes.
    pub async fn size(&self, loc: &S3Location) -> Result<u64, S3Error> {
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

    /// A stream of the object's bytes, or of `range` (end exclusive).
    pub async fn read(&self, loc: &S3Location, range: Option<Range<u64>>) -> Result<ByteStream, S3Error> {
        self.read_version(loc, None, range).await
    }

    /// A stream of `version` of the object (the current one when `None`),
    /// or of `range` of it (end exclusive).
    pub async fn read_version(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, S3Error> {
        let mut req =
            self.client.get_object().bucket(&loc.bucket).key(&loc.key).set_version_id(version.map(str::to_string));
        if let Some(r) = range {
            if r.start >= r.end {
                return Ok(ByteStream::from_static(b""));
            }
            req = req.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        let out = req.send().await.map_err(|e| map_s3_error(e, &loc.to_string()))?;
        Ok(out.body)
    }

    /// Writes a new object, never replacing one (`If-None-Match: *`):
    /// evidence is written once. Returns the version, when versioned.
    pub async fn put_new(
        &self,
        loc: &S3Location,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Option<String>, S3Error> {
        let out = self
            .client
            .put_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .content_type(content_type)
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| map_s3_error(e, &loc.to_string()))?;
        Ok(out.version_id.filter(|v| v != "null"))
    }

    /// A blocking reader of the object (or `range`), for use on a blocking
    /// thread of the runtime `handle`.
    pub fn blocking_reader(
        &self,
        handle: &Handle,
        loc: &S3Location,
        range: Option<Range<u64>>,
    ) -> Result<impl io::Read + Send + 'static, S3Error> {
        let stream = handle.block_on(self.read(loc, range))?;
        Ok(blocking_read(stream, handle))
    }

    /// A blocking multipart writer to `loc`, for use on a blocking thread of
    /// the runtime `handle`.
    pub fn blocking_writer(&self, handle: &Handle, loc: &S3Location, options: WriteOptions) -> MultipartWriter {
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
        }
    }

    /// Reads an object the way an event named it: that version when one is
    /// given, else only while its ETag is still `etag`.
    pub async fn read_announced(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        etag: &str,
    ) -> Result<SourceObject, S3Error> {
        let mut req = self.client.get_object().bucket(&loc.bucket).key(&loc.key);
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
            body: out.body,
        })
    }

    /// Checks that S3 holds exactly `written` at `loc`: its size and the
    /// SHA-256 checksum computed while writing.
    pub async fn verify(&self, loc: &S3Location, written: &WrittenObject) -> Result<(), S3Error> {
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

    /// Deletes the object, or only `version` of it.
    pub async fn delete(&self, loc: &S3Location, version: Option<&str>) -> Result<(), S3Error> {
        let req = self.client.delete_object().bucket(&loc.bucket).key(&loc.key);
        gone_is_done(req.set_version_id(version.map(str::to_string)).send().await.map(drop), loc)
    }

    /// Deletes the object only while its ETag is `etag` (an unversioned
    /// bucket: a newer upload under the same key is never deleted).
    pub async fn delete_if_match(&self, loc: &S3Location, etag: &str) -> Result<(), S3Error> {
        let req = self.client.delete_object().bucket(&loc.bucket).key(&loc.key);
        gone_is_done(req.if_match(quoted(etag)).send().await.map(drop), loc)
    }

    /// The current ETag and version of the object, or `None` when it is gone.
    pub async fn current(&self, loc: &S3Location) -> Result<Option<(String, Option<String>)>, S3Error> {
        match self.client.head_object().bucket(&loc.bucket).key(&loc.key).send().await {
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

    /// Sets one tag on the object (or on `version` of it), keeping its
    /// other tags.
    pub async fn tag(&self, loc: &S3Location, version: Option<&str>, key: &str, value: &str) -> Result<(), S3Error> {
        let refused =
            |e: aws_sdk_s3::error::BuildError| S3Error::Refused { location: loc.to_string(), detail: e.to_string() };
        let existing = self
            .client
            .get_object_tagging()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| map_s3_error(e, &loc.to_string()))?;
        let mut tags: Vec<Tag> = existing.tag_set.into_iter().filter(|t| t.key() != key).collect();
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

/// Encodes an object key as S3 does in event notifications: `+` for a
/// space, `%XX` for every byte outside `A-Za-z0-9-_.~/`.
pub fn encode_event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes an object key as S3 encodes it in notifications: `+` is a space,
/// `%XX` a byte, and the bytes are UTF-8.
pub fn decode_event_key(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte =
                    hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or("a '%' not followed by two hex digits")?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "decodes to bytes that are not UTF-8".to_string())
}

/// The S3 `ObjectCreated:Put` notification S3 would send for an object:
/// what `callvault redrive` re-submits.
pub fn object_created_event(
    region: &str,
    bucket: &str,
    key: &str,
    etag: &str,
    version: Option<&str>,
    size: u64,
) -> serde_json::Value {
    let mut object = serde_json::json!({ "key": encode_event_key(key), "size": size, "eTag": etag.trim_matches('"') });
    if let Some(v) = version {
        object["versionId"] = serde_json::json!(v);
    }
    serde_json::json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": crate::recording::rfc3339(crate::recording::unix_now()),
        "eventName": "ObjectCreated:Put",
        "userIdentity": { "principalId": "callvault-redrive" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "callvault-redrive",
            "bucket": { "name": bucket, "ownerIdentity": { "principalId": "callvault" }, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": object
        }
    }]})
}

/// A blocking reader of a body, for use on a blocking thread of the
/// runtime `handle`.
pub fn blocking_read(body: ByteStream, handle: &Handle) -> impl io::Read + Send + 'static {
    tokio_util::io::SyncIoBridge::new_with_handle(body.into_async_read(), handle.clone())
}

/// An object being read as an event announced it.
pub struct SourceObject {
    pub size: u64,
    pub content_type: Option<String>,
    /// Without quotes.
    pub etag: String,
    pub version: Option<String>,
    pub body: ByteStream,
}

/// What a [`MultipartWriter`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenObject {
    pub size: u64,
    /// The version S3 gave the object, when the bucket is versioned.
    pub version: Option<String>,
    /// Base64 SHA-256 as S3 reports it: of the whole object for a single
    /// PUT, of the parts' digests then `-<parts>` for a multipart upload.
    pub checksum_sha256: String,
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

fn quoted(etag: &str) -> String {
    format!("\"{}\"", unquoted(etag))
}

fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}

/// S3 reports a multipart object's checksum as `<base64>-<parts>`; some
/// emulators leave the suffix off. The digests must match; the part counts
/// too when both are given.
fn same_checksum(found: &str, written: &str) -> bool {
    let split = |c: &str| match c.split_once('-') {
        Some((d, parts)) => (d.to_string(), Some(parts.to_string())),
        None => (c.to_string(), None),
    };
    let (fd, fp) = split(found);
    let (wd, wp) = split(written);
    fd == wd && (fp.is_none() || wp.is_none() || fp == wp)
}

/// How a [`MultipartWriter`] uploads.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Bytes per part (at least [`MIN_PART_SIZE`]).
    pub part_size: usize,
    /// Parts uploading at once; memory is about `part_size * (1 + max_in_flight)`.
    pub max_in_flight: usize,
    /// Content-Type of the object.
    pub content_type: Option<String>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self { part_size: 8 * 1024 * 1024, max_in_flight: 2, content_type: None }
    }
}

/// Writes one S3 object: a single PUT when it fits one part, else a multipart
/// upload. Call [`MultipartWriter::finish`]; on any failure call
/// [`MultipartWriter::abort`] so no upload is left dangling.
pub struct MultipartWriter {
    client: aws_sdk_s3::Client,
    handle: Handle,
    loc: S3Location,
    options: WriteOptions,
    buf: Vec<u8>,
    upload_id: Option<String>,
    next_part: i32,
    in_flight: VecDeque<JoinHandle<Result<CompletedPart, S3Error>>>,
    done: Vec<CompletedPart>,
    // SHA-256 of each part, in order: the multipart checksum is their digest.
    part_digests: Vec<[u8; 32]>,
    written: u64,
    failed: bool,
}

impl MultipartWriter {
    fn part_size(&self) -> usize {
        self.options.part_size.max(MIN_PART_SIZE)
    }

    fn ensure_upload(&mut self) -> Result<String, S3Error> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let out = self
            .handle
            .block_on(
                self.client
                    .create_multipart_upload()
                    .bucket(&self.loc.bucket)
                    .key(&self.loc.key)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256)
                    .set_content_type(self.options.content_type.clone())
                    .send(),
            )
            .map_err(|e| map_s3_error(e, &self.loc.to_string()))?;
        let id = out.upload_id.ok_or_else(|| S3Error::Refused {
            location: self.loc.to_string(),
            detail: "no upload id returned".into(),
        })?;
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    fn send_part(&mut self, body: Vec<u8>) -> Result<(), S3Error> {
        let upload_id = self.ensure_upload()?;
        while self.in_flight.len() >= self.options.max_in_flight.max(1) {
            self.wait_oldest()?;
        }
        let number = self.next_part;
        self.next_part += 1;
        // S3 checks each part against its digest on arrival.
        let part_digest: [u8; 32] = digest(&SHA256, &body).as_ref().try_into().expect("SHA-256 is 32 bytes");
        self.part_digests.push(part_digest);
        let checksum = base64::encode(part_digest);
        let client = self.client.clone();
        let loc = self.loc.clone();
        self.in_flight.push_back(self.handle.spawn(async move {
            let out = client
                .upload_part()
                .bucket(&loc.bucket)
                .key(&loc.key)
                .upload_id(upload_id)
                .part_number(number)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(&checksum)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| map_s3_error(e, &loc.to_string()))?;
            Ok(CompletedPart::builder().set_e_tag(out.e_tag).part_number(number).checksum_sha256(checksum).build())
        }));
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<(), S3Error> {
        if let Some(task) = self.in_flight.pop_front() {
            let part = self.handle.block_on(task).map_err(|e| S3Error::Unavailable {
                location: self.loc.to_string(),
                detail: format!("upload task failed: {e}"),
            })??;
            self.done.push(part);
        }
        Ok(())
    }

    /// Uploads what remains and completes the object.
    pub fn finish(mut self) -> Result<WrittenObject, S3Error> {
        let result = self.complete();
        if result.is_err() {
            self.abort();
        }
        result
    }

    fn complete(&mut self) -> Result<WrittenObject, S3Error> {
        if self.failed {
            return Err(S3Error::Refused { location: self.loc.to_string(), detail: "an earlier write failed".into() });
        }
        let rest = std::mem::take(&mut self.buf);
        if self.upload_id.is_none() {
            let checksum = base64::encode(digest(&SHA256, &rest));
            let out = self
                .handle
                .block_on(
                    self.client
                        .put_object()
                        .bucket(&self.loc.bucket)
                        .key(&self.loc.key)
                        .set_content_type(self.options.content_type.clone())
                        .checksum_algorithm(ChecksumAlgorithm::Sha256)
                        .checksum_sha256(&checksum)
                        .body(ByteStream::from(rest))
                        .send(),
                )
                .map_err(|e| map_s3_error(e, &self.loc.to_string()))?;
            return Ok(WrittenObject { size: self.written, version: out.version_id, checksum_sha256: checksum });
        }
        if !rest.is_empty() {
            self.send_part(rest)?;
        }
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        let parts = std::mem::take(&mut self.done);
        let mut whole = Context::new(&SHA256);
        for d in &self.part_digests {
            whole.update(d);
        }
        let checksum = format!("{}-{}", base64::encode(whole.finish()), self.part_digests.len());
        let upload_id = self.upload_id.clone().unwrap_or_default();
        let out = self
            .handle
            .block_on(
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.loc.bucket)
                    .key(&self.loc.key)
                    .upload_id(upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send(),
            )
            .map_err(|e| map_s3_error(e, &self.loc.to_string()))?;
        self.upload_id = None;
        Ok(WrittenObject { size: self.written, version: out.version_id, checksum_sha256: checksum })
    }

    /// Abandons the object: aborts the multipart upload, if one was started,
    /// so S3 keeps no parts.
    pub fn abort(&mut self) {
        for task in self.in_flight.drain(..) {
            task.abort();
        }
        if let Some(upload_id) = self.upload_id.take() {
            let req = self
                .client
                .abort_multipart_upload()
                .bucket(&self.loc.bucket)
                .key(&self.loc.key)
                .upload_id(upload_id)
                .send();
            if let Err(e) = self.handle.block_on(req) {
                tracing::error!(location = %self.loc, error = %e, "could not abort the multipart upload");
            }
        }
    }
}

impl Write for MultipartWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier S3 upload failed"));
        }
        self.buf.extend_from_slice(data);
        self.written += data.len() as u64;
        while self.buf.len() >= self.part_size() {
            let rest = self.buf.split_off(self.part_size());
            let part = std::mem::replace(&mut self.buf, rest);
            if let Err(e) = self.send_part(part) {
                self.failed = true;
                return Err(io::Error::other(e));
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for MultipartWriter {
    fn drop(&mut self) {
        // finish() clears upload_id; anything left is an unfinished upload.
        // Spawned, not blocked on: a drop may happen on an async thread.
        if let Some(upload_id) = self.upload_id.take() {
            for task in self.in_flight.drain(..) {
                task.abort();
            }
            let req =
                self.client.abort_multipart_upload().bucket(&self.loc.bucket).key(&self.loc.key).upload_id(upload_id);
            self.handle.spawn(async move {
                if let Err(e) = req.send().await {
                    tracing::error!(error = %e, "could not abort an abandoned multipart upload");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_round_trip_through_s3_encoding() {
        for key in ["calls/a b+c 100% ünï.wav", "calls/a%2Fb?c=d&e#f", "plain/key-1.wav"] {
            assert_eq!(decode_event_key(&encode_event_key(key)).unwrap(), key);
        }
        assert_eq!(encode_event_key("calls/a b+c"), "calls/a+b%2Bc");
        assert_eq!(decode_event_key("calls%2Fx").unwrap(), "calls/x");
    }

    #[test]
    fn broken_event_keys_are_refused() {
        for bad in ["a%", "a%2", "a%zz", "a%C3"] {
            assert!(decode_event_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checksums_compare_with_or_without_the_part_count() {
        assert!(same_checksum("abc-3", "abc-3"));
        assert!(same_checksum("abc", "abc-3"));
        assert!(!same_checksum("abc-2", "abc-3"));
        assert!(!same_checksum("abd-3", "abc-3"));
    }
}
