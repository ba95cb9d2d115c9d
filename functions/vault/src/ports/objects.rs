//! The object store port: the ingest and vault buckets, in callvault's
//! words: ranged reads of a version, the read of an upload as an event
//! announced it, a streamed upload that is finished or aborted, the check
//! that what is stored is what was written, tags, deletes of one version,
//! and writes that never replace an object.

use std::future::Future;
use std::io::{self, Write};
use std::ops::Range;
use std::pin::Pin;

use tokio::io::AsyncRead;
use tokio::runtime::Handle;

use crate::errors::{ErrorKind, OperationError};

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
    /// Nothing reached S3: no credentials were found (`credentials_missing`)
    /// or there was no connection (`endpoint_unreachable`).
    #[error("{message}")]
    Transport { location: String, code: &'static str, message: String },
    /// S3 did not accept the caller's credentials.
    #[error("S3 did not accept the credentials used for {location} ({detail}): they are expired or unknown: refresh them (aws sso login, or new access keys)")]
    CredentialsRejected { location: String, detail: String },
    /// The object S3 holds is not what was written (size or checksum).
    #[error("{location} is not what was written ({detail}); it will be written again")]
    VerifyFailed { location: String, detail: String },
    /// The object changed since the event that named it.
    #[error("{location} changed since it was announced ({detail}); its newer version gets its own event")]
    Changed { location: String, detail: String },
    /// The upload's [`UploadCheck`] refused what was about to be stored;
    /// nothing was stored.
    #[error("{location} was not stored: what was about to be written failed its check ({detail})")]
    CheckFailed { location: String, detail: String },
}

impl OperationError for S3Error {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::AccessDenied { .. } => "access_denied",
            Self::Unavailable { .. } => "s3_unavailable",
            Self::Refused { .. } => "s3_refused",
            Self::Transport { code, .. } => code,
            Self::CredentialsRejected { .. } => "credentials_rejected",
            Self::VerifyFailed { .. } => "vault_verify_failed",
            Self::Changed { .. } => "source_changed",
            Self::CheckFailed { .. } => "ciphertext_check_failed",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Transport { code, .. } if *code == "endpoint_unreachable" => ErrorKind::Transient,
            Self::AccessDenied { .. }
            | Self::Refused { .. }
            | Self::Transport { .. }
            | Self::CredentialsRejected { .. } => ErrorKind::Deployment,
            // A retry writes everything again (a new message, at ingest).
            Self::Unavailable { .. } | Self::VerifyFailed { .. } | Self::CheckFailed { .. } => ErrorKind::Transient,
            Self::Changed { .. } => ErrorKind::Conflict,
        }
    }
}

/// The bytes of an object (or of a range of it), streamed. A read that
/// fails mid-way carries its [`S3Error`] inside the `io::Error`.
pub struct ObjectBody(Pin<Box<dyn AsyncRead + Send>>);

impl ObjectBody {
    /// A body over any async reader.
    pub fn new(reader: impl AsyncRead + Send + 'static) -> Self {
        Self(Box::pin(reader))
    }

    /// A body of bytes in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self::new(io::Cursor::new(bytes))
    }

    /// The async reader.
    pub fn into_async_read(self) -> impl AsyncRead + Send + Unpin {
        self.0
    }

    /// A blocking reader, for use on a blocking thread of the runtime `handle`.
    pub fn into_blocking_read(self, handle: &Handle) -> impl io::Read + Send + 'static {
        tokio_util::io::SyncIoBridge::new_with_handle(self.0, handle.clone())
    }
}

/// An object being read as an event announced it.
pub struct SourceObject {
    pub size: u64,
    pub content_type: Option<String>,
    /// Without quotes.
    pub etag: String,
    pub version: Option<String>,
    pub body: ObjectBody,
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

/// How a [`MultipartWriter`] uploads.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Bytes per part (at least [`MIN_PART_SIZE`]).
    pub part_size: usize,
    /// Parts uploading at once; memory is about `part_size * (1 + max_in_flight)`.
    pub max_in_flight: usize,
    /// Content-Type of the object.
    pub content_type: Option<String>,
    /// Tags the object is born with (key, value).
    pub tags: Vec<(String, String)>,
    /// Object Lock the object is born with (a vault with Object Lock: its
    /// recording's retain-until date, and its legal hold).
    pub lock: ObjectLock,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            part_size: 8 * 1024 * 1024,
            max_in_flight: 2,
            content_type: None,
            tags: Vec::new(),
            lock: ObjectLock::default(),
        }
    }
}

impl WriteOptions {
    /// The tags as S3's `x-amz-tagging` header writes them (URL query form).
    pub fn tagging(&self) -> Option<String> {
        if self.tags.is_empty() {
            return None;
        }
        let enc = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        Some(self.tags.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&"))
    }
}

/// One object being written, streamed through [`Write`]. Call
/// [`Upload::finish`]; on any failure call [`Upload::abort`], so that no
/// part is left behind. An upload dropped unfinished is abandoned (its
/// parts aborted, or left to the bucket's lifecycle rule after a crash).
pub trait Upload: Write + Send + 'static {
    /// Stores what was written as one object; returns its size, version and
    /// checksum. A failure aborts the upload.
    fn finish(self) -> Result<WrittenObject, S3Error>;
    /// Abandons the object: nothing of it stays.
    fn abort(&mut self);
    /// Shows every byte to `check` exactly as it is about to be hashed and
    /// sent, and asks it before the object is stored: a refusal aborts the
    /// upload ([`S3Error::CheckFailed`]). Set before the first write.
    fn check_with(&mut self, check: Box<dyn UploadCheck>);
}

/// Sees an upload's bytes at the last moment our code holds them (the
/// buffer that is hashed for S3's checksum and sent), so what it proves is
/// what S3 is asked to keep; S3's checksum covers the rest of the way.
pub trait UploadCheck: Send + 'static {
    /// The next bytes of the object, in order, before they are hashed and
    /// sent. An error aborts the upload.
    fn part(&mut self, bytes: &[u8]) -> Result<(), String>;
    /// After the last byte, before the object is stored. An error aborts
    /// the upload.
    fn finish(&mut self) -> Result<(), String>;
}

/// One stored version of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVersion {
    /// Its id (`"null"` in a bucket that was never versioned).
    pub version: String,
    /// Whether it is the current version.
    pub is_latest: bool,
    pub size: u64,
}

/// S3 Object Lock on one version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectLock {
    /// `GOVERNANCE` or `COMPLIANCE`, with the date (RFC 3339) it holds
    /// until; `None` when the version has no retention.
    pub retention: Option<(String, String)>,
    /// Whether a legal hold is on.
    pub legal_hold: bool,
}

/// What callvault does with objects.
pub trait ObjectStore: Send + Sync {
    /// A streamed upload, written from a blocking thread of `handle`.
    type Upload: Upload;

    /// A stream of `version` of the object (the current one when `None`), or
    /// of `range` of it (end exclusive). A range past the end is refused
    /// (`Refused`, detail starting `InvalidRange`).
    fn read(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        range: Option<Range<u64>>,
    ) -> impl Future<Output = Result<ObjectBody, S3Error>> + Send;

    /// `range` (end exclusive, not empty) of the object's current version,
    /// and that version's id: a reader that knows which version it wants
    /// learns from the same request whether the object changed since.
    fn read_current(
        &self,
        loc: &S3Location,
        range: Range<u64>,
    ) -> impl Future<Output = Result<(ObjectBody, Option<String>), S3Error>> + Send;

    /// Reads an object the way an event named it: that version when one is
    /// given, else only while its ETag is still `etag` (`Changed` otherwise).
    fn read_announced(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        etag: &str,
    ) -> impl Future<Output = Result<SourceObject, S3Error>> + Send;

    /// The object's size in bytes.
    fn size(&self, loc: &S3Location) -> impl Future<Output = Result<u64, S3Error>> + Send;

    /// The ETag and version id of `version` of the object (the current one
    /// when `None`), or `None` when it is gone.
    fn head(
        &self,
        loc: &S3Location,
        version: Option<&str>,
    ) -> impl Future<Output = Result<Option<(String, Option<String>)>, S3Error>> + Send;

    /// Writes a new object, never replacing one (`If-None-Match: *`;
    /// `Changed` when one exists). Returns the version, when versioned.
    fn put_new(
        &self,
        loc: &S3Location,
        body: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<Option<String>, S3Error>> + Send;

    /// Starts a streamed upload to `loc`.
    fn upload(&self, handle: &Handle, loc: &S3Location, options: WriteOptions) -> Self::Upload;

    /// Checks that the store holds exactly `written` at `loc`: its size and
    /// its SHA-256 checksum as the writer computed it (`VerifyFailed`).
    fn verify(&self, loc: &S3Location, written: &WrittenObject) -> impl Future<Output = Result<(), S3Error>> + Send;

    /// Deletes the object, or only `version` of it. Already gone is done.
    fn delete(&self, loc: &S3Location, version: Option<&str>) -> impl Future<Output = Result<(), S3Error>> + Send;

    /// Deletes the object only while its ETag is `etag` (`Changed`
    /// otherwise). Already gone is done.
    fn delete_if_match(&self, loc: &S3Location, etag: &str) -> impl Future<Output = Result<(), S3Error>> + Send;

    /// The versions of the object that hold data (delete markers left
    /// out), newest first.
    fn list_versions(&self, loc: &S3Location) -> impl Future<Output = Result<Vec<StoredVersion>, S3Error>> + Send;

    /// The tags of the object (or of `version` of it).
    fn tags(
        &self,
        loc: &S3Location,
        version: Option<&str>,
    ) -> impl Future<Output = Result<Vec<(String, String)>, S3Error>> + Send;

    /// The Object Lock retention and legal hold of `version` (none in a
    /// bucket without Object Lock).
    fn object_lock(&self, loc: &S3Location, version: &str) -> impl Future<Output = Result<ObjectLock, S3Error>> + Send;

    /// Turns the legal hold of `version` on or off (`Refused` in a bucket
    /// without Object Lock).
    fn set_legal_hold(
        &self,
        loc: &S3Location,
        version: &str,
        on: bool,
    ) -> impl Future<Output = Result<(), S3Error>> + Send;

    /// Deletes `version` for good, past a governance-mode retention when
    /// `bypass_governance` (the caller must be allowed to). Already gone is
    /// done; a version Object Lock protects is `AccessDenied`.
    fn delete_version(
        &self,
        loc: &S3Location,
        version: &str,
        bypass_governance: bool,
    ) -> impl Future<Output = Result<(), S3Error>> + Send;

    /// Sets one tag on the object (or on `version` of it), keeping its
    /// others: reads them first (two calls).
    fn tag(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), S3Error>> + Send;

    /// Sets one tag, keeping the others of `current`, the tags the caller
    /// has just read ([`ObjectStore::tags`]): one call. S3 replaces the
    /// whole tag set, so a tag set meanwhile by someone else is lost; the
    /// vault's versions carry only callvault's own state tag.
    fn tag_with(
        &self,
        loc: &S3Location,
        version: Option<&str>,
        current: &[(String, String)],
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), S3Error>> + Send;
}

/// S3 reports a multipart object's checksum as `<base64>-<parts>`; some
/// emulators leave the suffix off. The digests must match; the part counts
/// too when both are given.
pub fn same_checksum(found: &str, written: &str) -> bool {
    let split = |c: &str| match c.split_once('-') {
        Some((d, parts)) => (d.to_string(), Some(parts.to_string())),
        None => (c.to_string(), None),
    };
    let (fd, fp) = split(found);
    let (wd, wp) = split(written);
    fd == wd && (fp.is_none() || wp.is_none() || fp == wp)
}
