//! Frames: sealing and opening one frame (the layout of a framed body is
//! in `layout`).

use std::ops::Range;

use aws_lc_rs::aead::{Aad, Nonce, NONCE_LEN};

use crate::error::{DecryptError, EncryptError};
use crate::header::{Header, MESSAGE_ID_LEN, TAG_LEN};
use crate::key::MessageKeys;
use crate::layout::{BodyLayout, FrameSpan};

/// Marks the final frame in place of a sequence number.
pub const FINAL_FRAME_MARKER: u32 = 0xFFFF_FFFF;
/// The most frames a message can hold.
pub const MAX_FRAMES: u32 = 0xFFFF_FFFF;
/// Bytes a regular frame adds to its plaintext: sequence number, IV, tag.
pub const REGULAR_FRAME_OVERHEAD: u64 = 4 + NONCE_LEN as u64 + TAG_LEN as u64;
/// Bytes the final frame adds: marker, sequence number, IV, length, tag.
pub const FINAL_FRAME_OVERHEAD: u64 = 4 + 4 + NONCE_LEN as u64 + 4 + TAG_LEN as u64;

const REGULAR: &[u8] = b"AWSKMSEncryptionClient Frame";
const FINAL: &[u8] = b"AWSKMSEncryptionClient Final Frame";

pub(crate) fn frame_iv(sequence: u32) -> [u8; NONCE_LEN] {
    let mut iv = [0u8; NONCE_LEN];
    iv[8..].copy_from_slice(&sequence.to_be_bytes());
    iv
}

fn frame_aad(message_id: &[u8; MESSAGE_ID_LEN], is_final: bool, sequence: u32, len: u64) -> Vec<u8> {
    let content = if is_final { FINAL } else { REGULAR };
    let mut aad = Vec::with_capacity(MESSAGE_ID_LEN + content.len() + 12);
    aad.extend_from_slice(message_id);
    aad.extend_from_slice(content);
    aad.extend_from_slice(&sequence.to_be_bytes());
    aad.extend_from_slice(&len.to_be_bytes());
    aad
}

/// Seals frames of one message, in order.
pub(crate) struct FrameSealer {
    keys: MessageKeys,
    message_id: [u8; MESSAGE_ID_LEN],
    frame_length: u32,
    next_sequence: u32,
}

impl FrameSealer {
    pub(crate) fn new(keys: MessageKeys, message_id: [u8; MESSAGE_ID_LEN], frame_length: u32) -> Self {
        Self { keys, message_id, frame_length, next_sequence: 1 }
    }

    /// Appends one frame holding `plaintext` to `out`. A regular frame must
    /// hold exactly `frame_length` bytes; the final one at most that.
    pub(crate) fn seal(&mut self, plaintext: &[u8], is_final: bool, out: &mut Vec<u8>) -> Result<(), EncryptError> {
        let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(FRAME_PREFIX + plaintext.len() + TAG_LEN));
        buf.resize(FRAME_PREFIX, 0);
        buf.extend_from_slice(plaintext);
        let range = self.seal_in_place(&mut buf, is_final)?;
        out.extend_from_slice(&buf[range]);
        Ok(())
    }
}

/// What the reader of a frame knows about it in advance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Streaming: either kind may come next.
    Either,
    /// Ranged: the layout says which kind this frame is.
    Regular,
    Final,
}

/// Length of the final frame's prefix (marker, sequence number, IV, length),
/// which is also the room reserved before the plaintext of a frame sealed in
/// place.
pub const FINAL_FRAME_PREFIX_LEN: usize = FRAME_PREFIX;
pub(crate) const FRAME_PREFIX: usize = 4 + 4 + NONCE_LEN + 4;

impl FrameSealer {
    /// Seals in place: `buf` holds [`FRAME_PREFIX`] reserved bytes then the
    /// plaintext. Returns the range of `buf` that is the sealed frame. Saves
    /// the copies of [`FrameSealer::seal`] on the streaming path.
    pub(crate) fn seal_in_place(&mut self, buf: &mut Vec<u8>, is_final: bool) -> Result<Range<usize>, EncryptError> {
        let len = buf
            .len()
            .checked_sub(FRAME_PREFIX)
            .ok_or(EncryptError::FrameLength { len: 0, limit: self.frame_length })?;
        let (prefix, start, nonce, aad) = self.next_frame(len, is_final)?;
        buf[..FRAME_PREFIX].copy_from_slice(&prefix);
        let tag = self
            .keys
            .aead
            .seal_in_place_separate_tag(nonce, Aad::from(&aad), &mut buf[FRAME_PREFIX..])
            .map_err(|_| EncryptError::Crypto)?;
        buf.extend_from_slice(tag.as_ref());
        self.advance();
        Ok(start..buf.len())
    }

    /// Seals `plaintext` out of place into `out` (resized to fit, so a
    /// reused buffer is not zero-filled again). Returns the range of `out`
    /// that is the sealed frame. Saves copying a whole frame of plaintext
    /// into a buffer first when the caller hands over a frame at once.
    pub(crate) fn seal_to(
        &mut self,
        plaintext: &[u8],
        is_final: bool,
        out: &mut Vec<u8>,
    ) -> Result<Range<usize>, EncryptError> {
        let len = plaintext.len();
        let (prefix, start, nonce, aad) = self.next_frame(len, is_final)?;
        out.resize(FRAME_PREFIX + len + TAG_LEN, 0);
        out[..FRAME_PREFIX].copy_from_slice(&prefix);
        let (ciphertext, tag) = out[FRAME_PREFIX..].split_at_mut(len);
        self.keys
            .aead
            .seal_out_of_place_scatter(nonce, Aad::from(&aad), plaintext, ciphertext, &[], tag)
            .map_err(|_| EncryptError::Crypto)?;
        self.advance();
        Ok(start..out.len())
    }

    /// Checks that a frame of `len` bytes may come next and returns its
    /// prefix (a regular frame's starts at `start`), nonce and AAD.
    fn next_frame(
        &self,
        len: usize,
        is_final: bool,
    ) -> Result<([u8; FRAME_PREFIX], usize, Nonce, Vec<u8>), EncryptError> {
        let fits = if is_final { len <= self.frame_length as usize } else { len == self.frame_length as usize };
        if !fits {
            return Err(EncryptError::FrameLength { len: len as u32, limit: self.frame_length });
        }
        let sequence = self.next_sequence;
        if sequence == 0 || (!is_final && sequence == MAX_FRAMES) {
            return Err(EncryptError::TooManyFrames);
        }
        let iv = frame_iv(sequence);
        let mut prefix = [0u8; FRAME_PREFIX];
        let start = if is_final {
            prefix[..4].copy_from_slice(&FINAL_FRAME_MARKER.to_be_bytes());
            prefix[4..8].copy_from_slice(&sequence.to_be_bytes());
            prefix[8..20].copy_from_slice(&iv);
            prefix[20..24].copy_from_slice(&(len as u32).to_be_bytes());
            0
        } else {
            prefix[8..12].copy_from_slice(&sequence.to_be_bytes());
            prefix[12..24].copy_from_slice(&iv);
            8
        };
        let aad = frame_aad(&self.message_id, is_final, sequence, len as u64);
        Ok((prefix, start, Nonce::assume_unique_for_key(iv), aad))
    }

    fn advance(&mut self) {
        self.next_sequence = self.next_sequence.wrapping_add(1);
    }
}

/// Opens frames of one message. Holds the derived key, never the data key.
pub struct FrameOpener {
    keys: MessageKeys,
    message_id: [u8; MESSAGE_ID_LEN],
    frame_length: u32,
}

/// One authenticated frame.
pub(crate) struct Opened {
    pub(crate) is_final: bool,
}

impl FrameOpener {
    pub(crate) fn new(keys: MessageKeys, header: &Header) -> Self {
        Self { keys, message_id: header.message_id, frame_length: header.frame_length }
    }

    /// Reads the frame with sequence number `sequence` from `r`, authenticates
    /// it and leaves its plaintext in `buf` (replacing what it held). Nothing is left
    /// in `buf` when authentication fails.
    pub(crate) fn read_frame<R: std::io::Read + ?Sized>(
        &self,
        r: &mut R,
        sequence: u32,
        expect: Expect,
        buf: &mut Vec<u8>,
    ) -> Result<Opened, DecryptError> {
        let opened = self.read_sealed(r, sequence, expect, buf).and_then(|sealed| {
            let aad = frame_aad(&self.message_id, sealed.is_final, sequence, sealed.len as u64);
            let n = self
                .keys
                .aead
                .open_in_place(Nonce::assume_unique_for_key(frame_iv(sequence)), Aad::from(&aad), buf)
                .map_err(|_| DecryptError::FrameAuth { sequence })?
                .len();
            buf.truncate(n);
            Ok(Opened { is_final: sealed.is_final })
        });
        if opened.is_err() {
            buf.clear();
        }
        opened
    }

    /// Reads the frame with sequence number `sequence` from `r` into
    /// `sealed` (its ciphertext and tag), authenticates it and decrypts it
    /// straight into the start of `out`, which must hold at least a frame
    /// length: this saves copying the plaintext out of a buffer of our own.
    /// Returns the frame and its plaintext length; `out` is zeroed again
    /// when authentication fails.
    pub(crate) fn read_frame_to(
        &self,
        r: &mut (impl std::io::Read + ?Sized),
        sequence: u32,
        expect: Expect,
        sealed: &mut Vec<u8>,
        out: &mut [u8],
    ) -> Result<(Opened, usize), DecryptError> {
        let frame = self.read_sealed(r, sequence, expect, sealed)?;
        let len = frame.len as usize;
        let (ciphertext, tag) = sealed.split_at(len);
        let out = out.get_mut(..len).ok_or(DecryptError::MalformedFrame {
            sequence,
            reason: "frame longer than the room given for its plaintext",
        })?;
        let aad = frame_aad(&self.message_id, frame.is_final, sequence, len as u64);
        if self
            .keys
            .aead
            .open_separate_gather(
                Nonce::assume_unique_for_key(frame_iv(sequence)),
                Aad::from(&aad),
                ciphertext,
                tag,
                out,
            )
            .is_err()
        {
            out.fill(0);
            return Err(DecryptError::FrameAuth { sequence });
        }
        Ok((Opened { is_final: frame.is_final }, len))
    }

    /// The most plaintext one frame of this message holds.
    pub(crate) fn frame_length(&self) -> usize {
        self.frame_length as usize
    }

    /// Reads the frame with sequence number `sequence`, checks its prefix and
    /// leaves its ciphertext then its tag in `buf`, which is resized rather
    /// than cleared so that a reused buffer is not zero-filled every frame.
    fn read_sealed<R: std::io::Read + ?Sized>(
        &self,
        r: &mut R,
        sequence: u32,
        expect: Expect,
        buf: &mut Vec<u8>,
    ) -> Result<SealedFrame, DecryptError> {
        let frame = self.read_prefix(r, sequence, expect)?;
        buf.resize(frame.len as usize + TAG_LEN, 0);
        read_exact(r, buf)?;
        Ok(frame)
    }

    /// Reads and checks the prefix of the frame with sequence number
    /// `sequence`: marker, sequence number, IV and (final frame) length.
    fn read_prefix<R: std::io::Read + ?Sized>(
        &self,
        r: &mut R,
        sequence: u32,
        expect: Expect,
    ) -> Result<SealedFrame, DecryptError> {
        let mut word = [0u8; 4];
        read_exact(r, &mut word)?;
        let first = u32::from_be_bytes(word);
        let is_final = first == FINAL_FRAME_MARKER;
        match (expect, is_final) {
            (Expect::Regular, true) => {
                return Err(DecryptError::MalformedFrame { sequence, reason: "final frame before the end of the body" })
            }
            (Expect::Final, false) => {
                return Err(DecryptError::MalformedFrame {
                    sequence,
                    reason: "regular frame where the final frame belongs",
                })
            }
            _ => {}
        }
        let found = if is_final {
            read_exact(r, &mut word)?;
            u32::from_be_bytes(word)
        } else {
            first
        };
        if found != sequence {
            return Err(DecryptError::Sequence { expected: sequence, found });
        }
        let mut iv = [0u8; NONCE_LEN];
        read_exact(r, &mut iv)?;
        if iv != frame_iv(sequence) {
            return Err(DecryptError::MalformedFrame { sequence, reason: "IV does not match the sequence number" });
        }
        let len = if is_final {
            read_exact(r, &mut word)?;
            let len = u32::from_be_bytes(word);
            if len > self.frame_length {
                return Err(DecryptError::MalformedFrame {
                    sequence,
                    reason: "final frame longer than the frame length",
                });
            }
            len
        } else {
            self.frame_length
        };
        Ok(SealedFrame { is_final, len })
    }

    /// Authenticates and decrypts, in place, frames already in memory:
    /// `frames` holds exactly the ciphertext of `span` (from
    /// [`BodyLayout::span`] of this message). Yields each frame's whole
    /// plaintext, in order, as a slice of `frames`, once it has
    /// authenticated; the requested range starts `span.skip` bytes into the
    /// first. After an error the iterator yields nothing more.
    pub fn open_in_place<'a>(
        &'a self,
        layout: &BodyLayout,
        span: &FrameSpan,
        frames: &'a mut [u8],
    ) -> FramesInPlace<'a> {
        FramesInPlace {
            opener: self,
            regular_frames: layout.regular_frames,
            rest: frames,
            next_sequence: span.first_sequence,
            last_sequence: span.last_sequence,
            done: false,
        }
    }

    fn open_one<'a>(
        &self,
        sequence: u32,
        expect: Expect,
        rest: &mut &'a mut [u8],
    ) -> Result<&'a mut [u8], DecryptError> {
        let mut reader: &[u8] = rest;
        let frame = self.read_prefix(&mut reader, sequence, expect)?;
        let prefix_len = rest.len() - reader.len();
        let sealed_len = frame.len as usize + TAG_LEN;
        if reader.len() < sealed_len {
            return Err(DecryptError::Truncated);
        }
        let (this, next) = std::mem::take(rest).split_at_mut(prefix_len + sealed_len);
        *rest = next;
        let aad = frame_aad(&self.message_id, frame.is_final, sequence, u64::from(frame.len));
        let nonce = Nonce::assume_unique_for_key(frame_iv(sequence));
        let sealed = &mut this[prefix_len..];
        if self.keys.aead.open_in_place(nonce, Aad::from(&aad), sealed).is_err() {
            // Leave nothing of an unauthenticated frame behind.
            sealed.fill(0);
            return Err(DecryptError::FrameAuth { sequence });
        }
        Ok(&mut sealed[..frame.len as usize])
    }
}

/// Frames decrypted in place: see [`FrameOpener::open_in_place`].
pub struct FramesInPlace<'a> {
    opener: &'a FrameOpener,
    regular_frames: u64,
    rest: &'a mut [u8],
    next_sequence: u32,
    last_sequence: u32,
    done: bool,
}

impl<'a> Iterator for FramesInPlace<'a> {
    type Item = Result<&'a mut [u8], DecryptError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let sequence = self.next_sequence;
        let is_last = sequence >= self.last_sequence;
        let expect = if u64::from(sequence) > self.regular_frames { Expect::Final } else { Expect::Regular };
        let opened = self.opener.open_one(sequence, expect, &mut self.rest);
        self.next_sequence = sequence.wrapping_add(1);
        self.done = is_last || opened.is_err();
        match opened {
            Ok(_) if is_last && !self.rest.is_empty() => Some(Err(DecryptError::TrailingData)),
            other => Some(other),
        }
    }
}

/// A frame read and checked but not yet authenticated.
struct SealedFrame {
    is_final: bool,
    len: u32,
}

fn read_exact<R: std::io::Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<(), DecryptError> {
    r.read_exact(buf).map_err(DecryptError::from_io)
}
