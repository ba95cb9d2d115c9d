//! The layout of a framed body: where every plaintext byte lives in the
//! ciphertext, which is what lets a byte range be decrypted from the frames
//! that cover it, and the batches a ranged read fetches.

use std::ops::Range;

use crate::error::DecryptError;
use crate::frame::{
    frame_iv, FINAL_FRAME_MARKER, FINAL_FRAME_OVERHEAD, FRAME_PREFIX, MAX_FRAMES, REGULAR_FRAME_OVERHEAD,
};
use crate::header::Header;

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
