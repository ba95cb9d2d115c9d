//! Streaming encryption: a `std::io::Write` adapter that must be finished.

use std::io::{self, Write};

use zeroize::Zeroizing;

use crate::context::EncryptionContext;
use crate::error::EncryptError;
use crate::frame::{FrameSealer, FRAME_PREFIX};
use crate::header::{EncryptedDataKey, Header, Limits, MESSAGE_ID_LEN, TAG_LEN};
use crate::key::{DataKey, MessageKeys};
use crate::suite::COMMIT_KEY_UNSIGNED;

/// Default plaintext bytes per frame.
pub const DEFAULT_FRAME_LENGTH: u32 = 64 * 1024;

/// Everything a new message needs besides its plaintext.
pub struct MessageSpec<'a> {
    /// The plaintext data key (already wrapped into `encrypted_data_keys`).
    pub data_key: &'a DataKey,
    /// The encryption context to authenticate.
    pub encryption_context: EncryptionContext,
    /// Wrapped copies of `data_key`; at least one.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Plaintext bytes per frame.
    pub frame_length: u32,
}

/// The header of a new message and the sealer of its frames.
pub struct MessageEncryptor {
    header: Header,
    header_bytes: Vec<u8>,
    sealer: FrameSealer,
}

impl MessageEncryptor {
    /// Builds and authenticates the header of a new message with a random
    /// message id.
    pub fn new(spec: MessageSpec<'_>) -> Result<Self, EncryptError> {
        let limit = Limits::default().max_frame_length;
        if spec.frame_length == 0 || spec.frame_length > limit {
            return Err(EncryptError::FrameLength { len: spec.frame_length, limit });
        }
        spec.encryption_context.validate_for_encrypt()?;
        let mut message_id = [0u8; MESSAGE_ID_LEN];
        aws_lc_rs::rand::fill(&mut message_id).map_err(|_| EncryptError::Crypto)?;
        let keys = MessageKeys::derive(spec.data_key, &message_id);
        let mut header = Header {
            suite_id: COMMIT_KEY_UNSIGNED,
            message_id,
            encryption_context: spec.encryption_context,
            encrypted_data_keys: spec.encrypted_data_keys,
            frame_length: spec.frame_length,
            commitment: keys.commitment,
            auth_tag: [0; TAG_LEN],
            len: 0,
        };
        header.seal(&keys)?;
        let header_bytes = header.to_bytes()?;
        header.len = header_bytes.len();
        let sealer = FrameSealer::new(keys, message_id, spec.frame_length);
        Ok(Self { header, header_bytes, sealer })
    }

    /// The header as written.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The serialized header, the first bytes of the message.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// Appends a regular frame (exactly `frame_length` bytes of plaintext).
    pub fn seal_frame(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptError> {
        self.sealer.seal(plaintext, false, out)
    }

    /// Appends the final frame (at most `frame_length` bytes) and ends the
    /// message: the encryptor is consumed, so nothing can follow.
    pub fn seal_final(mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptError> {
        self.sealer.seal(plaintext, true, out)
    }
}

/// Encrypts everything written to it into `inner` as one message. Holds one
/// frame, sealed in place, whatever the message size.
///
/// Call [`EncryptingWriter::finish`]: a writer dropped unfinished leaves a
/// message without its final frame, which every decryptor refuses.
pub struct EncryptingWriter<W: Write> {
    inner: W,
    sealer: Option<FrameSealer>,
    header: Header,
    // FRAME_PREFIX reserved bytes, then up to one frame of plaintext (sealed
    // in place, then the tag). Zeroized on drop: it holds plaintext.
    frame: Zeroizing<Vec<u8>>,
    // A frame sealed straight from the caller's slice (ciphertext only).
    sealed: Vec<u8>,
    frame_length: usize,
    poisoned: bool,
}

impl<W: Write> EncryptingWriter<W> {
    /// Writes the header to `inner` and returns the writer.
    pub fn new(mut inner: W, encryptor: MessageEncryptor) -> io::Result<Self> {
        inner.write_all(encryptor.header_bytes())?;
        let frame_length = encryptor.header.frame_length as usize;
        let mut frame = Zeroizing::new(Vec::with_capacity(FRAME_PREFIX + frame_length + TAG_LEN));
        frame.resize(FRAME_PREFIX, 0);
        Ok(Self {
            inner,
            sealer: Some(encryptor.sealer),
            header: encryptor.header,
            frame,
            sealed: Vec::new(),
            frame_length,
            poisoned: false,
        })
    }

    /// The header of the message being written.
    pub fn header(&self) -> &Header {
        &self.header
    }

    fn buffered(&self) -> usize {
        self.frame.len() - FRAME_PREFIX
    }

    fn emit(&mut self, is_final: bool) -> io::Result<()> {
        let sealer = self.sealer.as_mut().ok_or_else(poisoned)?;
        let range = sealer
            .seal_in_place(&mut self.frame, is_final)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let written = self.inner.write_all(&self.frame[range]);
        self.frame.truncate(FRAME_PREFIX);
        written
    }

    fn emit_from(&mut self, plaintext: &[u8]) -> io::Result<()> {
        let sealer = self.sealer.as_mut().ok_or_else(poisoned)?;
        let range = sealer
            .seal_to(plaintext, false, &mut self.sealed)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.inner.write_all(&self.sealed[range])
    }

    /// Seals the final frame, flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.poisoned {
            return Err(poisoned());
        }
        self.emit(true)?;
        self.sealer = None;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

fn poisoned() -> io::Error {
    io::Error::other("the encrypting writer failed earlier and cannot continue")
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(poisoned());
        }
        let total = buf.len();
        // Whole frames handed over at once are sealed straight from `buf`.
        while self.buffered() == 0 && buf.len() >= self.frame_length {
            let (whole, rest) = buf.split_at(self.frame_length);
            if let Err(e) = self.emit_from(whole) {
                self.poisoned = true;
                return Err(e);
            }
            buf = rest;
        }
        while !buf.is_empty() {
            let take = (self.frame_length - self.buffered()).min(buf.len());
            self.frame.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            // A full frame is sealed at once. A plaintext that is a multiple
            // of the frame length so ends with an empty final frame: the
            // official Python SDK refuses a final frame as long as a frame.
            if self.buffered() == self.frame_length {
                if let Err(e) = self.emit(false) {
                    self.poisoned = true;
                    return Err(e);
                }
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
