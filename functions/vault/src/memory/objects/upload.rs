//! The twin of an upload: nothing stored until it is finished.

use crate::ports::objects::{
    ObjectLock, S3Error, S3Location, Upload, UploadCheck, WriteOptions, WrittenObject, MIN_PART_SIZE,
};
use std::io::{self, Write};

use super::*;

/// An upload into a [`MemoryObjects`]: nothing is stored until it is
/// finished; dropped or aborted, it leaves nothing.
pub struct MemoryUpload {
    pub(super) store: MemoryObjects,
    pub(super) loc: S3Location,
    pub(super) options: WriteOptions,
    pub(super) buf: Vec<u8>,
    pub(super) open: bool,
    pub(super) failed: bool,
    pub(super) check: Option<Box<dyn UploadCheck>>,
}

impl MemoryUpload {
    fn close(&mut self) {
        if std::mem::take(&mut self.open) {
            self.store.lock().open_uploads -= 1;
        }
    }

    fn part_size(&self) -> usize {
        self.options.part_size.max(MIN_PART_SIZE)
    }
}

impl Write for MemoryUpload {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier S3 upload failed"));
        }
        if let Err(e) = self.store.faults.before_sync("upload_write") {
            self.failed = true;
            let e = e.unwrap_or(S3Error::Unavailable { location: self.loc.to_string(), detail: "crashed".into() });
            return Err(io::Error::other(e));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Upload for MemoryUpload {
    fn finish(mut self) -> Result<WrittenObject, S3Error> {
        if self.failed {
            self.abort();
            return Err(S3Error::Refused { location: self.loc.to_string(), detail: "an earlier write failed".into() });
        }
        if let Err(e) = self.store.faults.before_sync("upload_finish") {
            self.abort();
            return Err(e.unwrap_or(S3Error::Unavailable { location: self.loc.to_string(), detail: "crashed".into() }));
        }
        let mut data = std::mem::take(&mut self.buf);
        let part_size = self.part_size();
        // A buffer corrupted in the writer before it is hashed: S3's checksum
        // would match it; only the upload's check can see it.
        if let Some(offset) = self.store.lock().corrupt_next_part.take() {
            if !data.is_empty() {
                let at = offset.min(data.len() - 1);
                data[at] ^= 0x01;
            }
        }
        if let Some(check) = &mut self.check {
            let checked = data.chunks(part_size).try_for_each(|part| check.part(part)).and_then(|()| check.finish());
            if let Err(detail) = checked {
                self.abort();
                return Err(S3Error::CheckFailed { location: self.loc.to_string(), detail });
            }
        }
        // The writer's own checksum of what it sent, as the AWS writer computes it.
        let checksum = checksum_of(&data, Some(part_size));
        let size = data.len() as u64;
        let mut stored = data;
        if std::mem::take(&mut self.store.lock().corrupt_next) {
            if let Some(b) = stored.last_mut() {
                *b ^= 1;
            }
        }
        let content_type = self.options.content_type.clone();
        let tags = self.options.tags.clone();
        let lock = self.options.lock.clone();
        // As S3 refuses a PUT with lock headers into a bucket without Object Lock.
        let locked = self.store.lock().buckets.get(&self.loc.bucket).is_some_and(|b| b.object_lock);
        if lock != ObjectLock::default() && !locked {
            self.abort();
            return Err(S3Error::Refused {
                location: self.loc.to_string(),
                detail: "InvalidRequest: Bucket is missing Object Lock Configuration".into(),
            });
        }
        let result = self.store.store(&self.loc, stored, content_type, Some(part_size), tags);
        self.close();
        let (_, version) = result?;
        if lock != ObjectLock::default() {
            self.store.edit_version(&self.loc, version.as_deref(), |v| v.lock = lock);
        }
        Ok(WrittenObject { size, version, checksum_sha256: checksum })
    }

    fn check_with(&mut self, check: Box<dyn UploadCheck>) {
        self.check = Some(check);
    }

    fn abort(&mut self) {
        self.buf = Vec::new();
        self.close();
    }
}

impl Drop for MemoryUpload {
    fn drop(&mut self) {
        // An abandoned upload stores nothing; its parts count as left
        // behind (for a lifecycle rule) only until it is dropped.
        self.close();
    }
}
