//! Uploads into S3: one PUT when the object fits one part, else a
//! multipart upload with a bounded number of parts in flight.

use crate::ports::objects::{S3Error, S3Location, Upload, UploadCheck, WriteOptions, WrittenObject, MIN_PART_SIZE};
use aws_lc_rs::digest::{digest, Context, SHA256};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::base64;
use std::collections::VecDeque;
use std::io::{self, Write};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::*;

/// Writes one S3 object: a single PUT when it fits one part, else a multipart
/// upload. Call [`MultipartWriter::finish`]; on any failure call
/// [`MultipartWriter::abort`] so no upload is left dangling.
pub struct MultipartWriter {
    pub(super) client: aws_sdk_s3::Client,
    pub(super) handle: Handle,
    pub(super) loc: S3Location,
    pub(super) options: WriteOptions,
    pub(super) buf: Vec<u8>,
    pub(super) upload_id: Option<String>,
    pub(super) next_part: i32,
    pub(super) in_flight: VecDeque<JoinHandle<Result<CompletedPart, S3Error>>>,
    pub(super) done: Vec<CompletedPart>,
    // SHA-256 of each part, in order: the multipart checksum is their digest.
    pub(super) part_digests: Vec<[u8; 32]>,
    pub(super) written: u64,
    pub(super) failed: bool,
    pub(super) check: Option<Box<dyn UploadCheck>>,
}

impl MultipartWriter {
    fn part_size(&self) -> usize {
        self.options.part_size.max(MIN_PART_SIZE)
    }

    fn ensure_upload(&mut self) -> Result<String, S3Error> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let (lock_mode, lock_until, legal_hold) = lock_headers(&self.options.lock);
        let out = self
            .handle
            .block_on(
                self.client
                    .create_multipart_upload()
                    .bucket(&self.loc.bucket)
                    .key(&self.loc.key)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256)
                    .set_content_type(self.options.content_type.clone())
                    .set_tagging(self.options.tagging())
                    .set_object_lock_mode(lock_mode)
                    .set_object_lock_retain_until_date(lock_until)
                    .set_object_lock_legal_hold_status(legal_hold)
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

    /// Shows the check the bytes about to be hashed and sent.
    fn check_part(&mut self, body: &[u8]) -> Result<(), S3Error> {
        match &mut self.check {
            Some(check) => {
                check.part(body).map_err(|detail| S3Error::CheckFailed { location: self.loc.to_string(), detail })
            }
            None => Ok(()),
        }
    }

    fn check_finish(&mut self) -> Result<(), S3Error> {
        match &mut self.check {
            Some(check) => {
                check.finish().map_err(|detail| S3Error::CheckFailed { location: self.loc.to_string(), detail })
            }
            None => Ok(()),
        }
    }

    fn send_part(&mut self, body: Vec<u8>) -> Result<(), S3Error> {
        self.check_part(&body)?;
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

    fn complete(&mut self) -> Result<WrittenObject, S3Error> {
        if self.failed {
            return Err(S3Error::Refused { location: self.loc.to_string(), detail: "an earlier write failed".into() });
        }
        let rest = std::mem::take(&mut self.buf);
        if self.upload_id.is_none() {
            self.check_part(&rest)?;
            self.check_finish()?;
            let checksum = base64::encode(digest(&SHA256, &rest));
            let (lock_mode, lock_until, legal_hold) = lock_headers(&self.options.lock);
            let out = self
                .handle
                .block_on(
                    self.client
                        .put_object()
                        .bucket(&self.loc.bucket)
                        .key(&self.loc.key)
                        .set_content_type(self.options.content_type.clone())
                        .set_tagging(self.options.tagging())
                        .set_object_lock_mode(lock_mode)
                        .set_object_lock_retain_until_date(lock_until)
                        .set_object_lock_legal_hold_status(legal_hold)
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
        self.check_finish()?;
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
}

impl Upload for MultipartWriter {
    fn finish(mut self) -> Result<WrittenObject, S3Error> {
        let result = self.complete();
        if result.is_err() {
            self.abort();
        }
        result
    }

    fn check_with(&mut self, check: Box<dyn UploadCheck>) {
        self.check = Some(check);
    }

    /// Aborts the multipart upload, if one was started, so S3 keeps no parts.
    fn abort(&mut self) {
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
