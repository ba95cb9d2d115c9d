//! Streaming S3 I/O: ranged reads, and a multipart writer with a bounded
//! number of parts in flight, so memory never depends on the object's size.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::ops::Range;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// The S3 API calls this module makes, as IAM actions.
pub const AWS_CALLS: &[&str] = &["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"];

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
}

impl S3Error {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::AccessDenied { .. } => "access_denied",
            Self::Unavailable { .. } => "s3_unavailable",
            Self::Refused { .. } => "s3_refused",
        }
    }

    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
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
                "NoSuchKey" | "NoSuchBucket" | "NotFound" => S3Error::NotFound { location },
                "AccessDenied" | "Forbidden" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
                    S3Error::AccessDenied { location, detail }
                }
                "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout" => {
                    S3Error::Unavailable { location, detail }
                }
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
        let mut req = self.client.get_object().bucket(&loc.bucket).key(&loc.key);
        if let Some(r) = range {
            if r.start >= r.end {
                return Ok(ByteStream::from_static(b""));
            }
            req = req.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        let out = req.send().await.map_err(|e| map_s3_error(e, &loc.to_string()))?;
        Ok(out.body)
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
        Ok(tokio_util::io::SyncIoBridge::new_with_handle(stream.into_async_read(), handle.clone()))
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
            written: 0,
            failed: false,
        }
    }
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
        let client = self.client.clone();
        let loc = self.loc.clone();
        self.in_flight.push_back(self.handle.spawn(async move {
            let out = client
                .upload_part()
                .bucket(&loc.bucket)
                .key(&loc.key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| map_s3_error(e, &loc.to_string()))?;
            Ok(CompletedPart::builder().set_e_tag(out.e_tag).part_number(number).build())
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

    /// Uploads what remains and completes the object; returns its size.
    pub fn finish(mut self) -> Result<u64, S3Error> {
        let result = self.complete();
        if result.is_err() {
            self.abort();
        }
        result
    }

    fn complete(&mut self) -> Result<u64, S3Error> {
        if self.failed {
            return Err(S3Error::Refused { location: self.loc.to_string(), detail: "an earlier write failed".into() });
        }
        let rest = std::mem::take(&mut self.buf);
        if self.upload_id.is_none() {
            self.handle
                .block_on(
                    self.client
                        .put_object()
                        .bucket(&self.loc.bucket)
                        .key(&self.loc.key)
                        .set_content_type(self.options.content_type.clone())
                        .body(ByteStream::from(rest))
                        .send(),
                )
                .map_err(|e| map_s3_error(e, &self.loc.to_string()))?;
            return Ok(self.written);
        }
        if !rest.is_empty() {
            self.send_part(rest)?;
        }
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        let parts = std::mem::take(&mut self.done);
        let upload_id = self.upload_id.clone().unwrap_or_default();
        self.handle
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
        Ok(self.written)
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
