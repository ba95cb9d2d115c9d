//! Frames: sealing and opening one frame, and the layout of a framed body,
//! which is what lets a byte range be decrypted from the frames that cover it.

use std::ops::Range;

use aws_lc_rs::aead::{Aad, Nonce, NONCE_LEN};

use crate::error::{DecryptError, EncryptError};
use crate::header::{Header, MESSAGE_ID_LEN, TAG_LEN};
use crate::key::MessageKeys;

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

fn frame_iv(sequence: u32) -> [u8; NONCE_LEN] {
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

/// The shape of a framed body, derived from the header and the message's total
/// length: how many regular frames, how long the final frame is, and so where
/// every plaintext byte lives in the ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLayout {
    /// Where the body starts (the header's length).
    pub header_len: u64,
    /// Plaintext bytes per regular frame.
    pub frame_length: u32,
    /// Number of regular frames before the final frame.
    pub regular_frames: u64,
    /// Plaintext bytes in the final frame.
    pub final_frame_len: u32,
}

/// The frames that cover a plaintext range, and where they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSpan {
    /// The requested plaintext range (end exclusive).
    pub plaintext: Range<u64>,
    /// Sequence numbers of the first and last covering frames (inclusive).
    pub first_sequence: u32,
    pub last_sequence: u32,
    /// The ciphertext bytes holding those frames (end exclusive), relative to
    /// the start of the message.
    pub ciphertext: Range<u64>,
    /// Offset of the first requested byte inside the first frame's plaintext.
    pub skip: u64,
}

impl FrameSpan {
    /// Number of plaintext bytes the span yields.
    pub fn len(&self) -> u64 {
        self.plaintext.end - self.plaintext.start
    }

    /// Whether the span yields nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BodyLayout {
    /// The layout of a message of `total_len` bytes whose header is `header`.
    /// Fails with `DecryptError::Length` when no framing gives that length.
    pub fn new(header: &Header, total_len: u64) -> Result<Self, DecryptError> {
        let header_len = header.len as u64;
        let regular = u64::from(header.frame_length) + REGULAR_FRAME_OVERHEAD;
        let body = total_len
            .checked_sub(header_len)
            .and_then(|b| b.checked_sub(FINAL_FRAME_OVERHEAD))
            .ok_or(DecryptError::Length)?;
        let regular_frames = body / regular;
        let final_frame_len = body % regular;
        if final_frame_len > u64::from(header.frame_length) || regular_frames >= u64::from(MAX_FRAMES) {
            return Err(DecryptError::Length);
        }
        Ok(Self {
            header_len,
            frame_length: header.frame_length,
            regular_frames,
            final_frame_len: final_frame_len as u32,
        })
    }

    /// Total plaintext length.
    pub fn plaintext_len(&self) -> u64 {
        self.regular_frames * u64::from(self.frame_length) + u64::from(self.final_frame_len)
    }

    /// Total number of frames, the final one included.
    pub fn frame_count(&self) -> u64 {
        self.regular_frames + 1
    }

    fn regular_size(&self) -> u64 {
        u64::from(self.frame_length) + REGULAR_FRAME_OVERHEAD
    }

    /// Ciphertext offset of the frame at 0-based `index`.
    pub fn frame_offset(&self, index: u64) -> u64 {
        self.header_len + index * self.regular_size()
    }

    /// Ciphertext offset of the final frame.
    pub fn final_frame_offset(&self) -> u64 {
        self.frame_offset(self.regular_frames)
    }

    /// Whether `prefix`, the first [`FINAL_FRAME_PREFIX_LEN`] bytes at
    /// [`BodyLayout::final_frame_offset`], is the prefix this layout expects:
    /// the final-frame marker, the last sequence number, its IV and the final
    /// frame's length. This checks framing only: authenticity needs the key.
    pub fn final_frame_matches(&self, prefix: &[u8]) -> bool {
        let Ok(prefix) = <&[u8; FRAME_PREFIX]>::try_from(prefix) else { return false };
        let Ok(sequence) = u32::try_from(self.frame_count()) else { return false };
        prefix[..4] == FINAL_FRAME_MARKER.to_be_bytes()
            && prefix[4..8] == sequence.to_be_bytes()
            && prefix[8..20] == frame_iv(sequence)
            && prefix[20..] == self.final_frame_len.to_be_bytes()
    }

    /// Ciphertext size of the frame at 0-based `index`.
    pub fn frame_size(&self, index: u64) -> u64 {
        if index < self.regular_frames {
            self.regular_size()
        } else {
            u64::from(self.final_frame_len) + FINAL_FRAME_OVERHEAD
        }
    }

    /// The layout of a body holding `plaintext_len` bytes in frames of
    /// `frame_length`, after a header of `header_len` bytes: what a catalog
    /// that kept those sizes knows before reading the header. `None` for a
    /// zero frame length or more frames than the format allows.
    pub fn for_plaintext(header_len: u64, frame_length: u32, plaintext_len: u64) -> Option<Self> {
        let f = u64::from(frame_length);
        let regular_frames = plaintext_len.checked_div(f)?;
        if regular_frames >= u64::from(MAX_FRAMES) {
            return None;
        }
        Some(Self { header_len, frame_length, regular_frames, final_frame_len: (plaintext_len % f) as u32 })
    }

    /// Bytes of the body (every frame, the final one included).
    pub fn body_len(&self) -> u64 {
        self.regular_frames * self.regular_size() + u64::from(self.final_frame_len) + FINAL_FRAME_OVERHEAD
    }

    /// Every frame of the body, the final one included (also when it is
    /// empty), so that reading it checks the message is complete.
    pub fn whole(&self) -> FrameSpan {
        let last = self.regular_frames;
        FrameSpan {
            plaintext: 0..self.plaintext_len(),
            first_sequence: 1,
            last_sequence: (last + 1) as u32,
            ciphertext: self.header_len..self.frame_offset(last) + self.frame_size(last),
            skip: 0,
        }
    }

    /// The frames covering plaintext bytes `range` (end exclusive). An empty
    /// range or one reaching past the plaintext is refused.
    pub fn span(&self, range: Range<u64>) -> Result<FrameSpan, DecryptError> {
        let len = self.plaintext_len();
        if range.start >= range.end || range.end > len {
            return Err(DecryptError::Range { start: range.start, end: range.end, len });
        }
        let f = u64::from(self.frame_length);
        // Bytes in the final frame belong to index regular_frames, even when
        // it is full.
        let index_of = |pos: u64| (pos / f).min(self.regular_frames);
        let first = index_of(range.start);
        let last = index_of(range.end - 1);
        Ok(FrameSpan {
            skip: range.start - first * f,
            plaintext: range,
            first_sequence: (first + 1) as u32,
            last_sequence: (last + 1) as u32,
            ciphertext: self.frame_offset(first)..self.frame_offset(last) + self.frame_size(last),
        })
    }

    /// Splits `span` into consecutive spans of whole frames, each at most
    /// `max_ciphertext` bytes of ciphertext (but at least one frame), so a
    /// long span can be fetched and opened a bounded batch at a time. The
    /// pieces' plaintext ranges partition the span's; only the first may
    /// start inside its first frame.
    pub fn batches(&self, span: &FrameSpan, max_ciphertext: u64) -> SpanBatches {
        SpanBatches { layout: *self, next_sequence: span.first_sequence, span: span.clone(), max_ciphertext }
    }
}

/// The pieces of a span: see [`BodyLayout::batches`].
#[derive(Clone, Debug)]
pub struct SpanBatches {
    layout: BodyLayout,
    span: FrameSpan,
    next_sequence: u32,
    max_ciphertext: u64,
}

impl Iterator for SpanBatches {
    type Item = FrameSpan;

    fn next(&mut self) -> Option<FrameSpan> {
        let (first, last) = (self.next_sequence, self.span.last_sequence);
        if first > last || first < self.span.first_sequence {
            return None;
        }
        let index = |sequence: u32| u64::from(sequence) - 1;
        let start = self.layout.frame_offset(index(first));
        let mut end_sequence = first;
        let mut end = start + self.layout.frame_size(index(first));
        while end_sequence < last {
            let size = self.layout.frame_size(index(end_sequence + 1));
            if end - start + size > self.max_ciphertext {
                break;
            }
            end_sequence += 1;
            end += size;
        }
        self.next_sequence = end_sequence.saturating_add(1);
        if end_sequence == u32::MAX {
            self.span.last_sequence = 0;
        }
        let f = u64::from(self.layout.frame_length);
        let from = if first == self.span.first_sequence { self.span.plaintext.start } else { index(first) * f };
        let to = if end_sequence == last { self.span.plaintext.end } else { (index(end_sequence) + 1) * f };
        Some(FrameSpan {
            plaintext: from..to,
            first_sequence: first,
            last_sequence: end_sequence,
            ciphertext: start..end,
            skip: from - index(first) * f,
        })
    }
}
