//! Streaming and ranged decryption: `std::io::Read` adapters that release a
//! frame's plaintext only after the frame has authenticated.

use std::io::{self, Read};

use zeroize::Zeroizing;

use crate::error::{DecryptError, HeaderError};
use crate::frame::{Expect, FrameOpener};
use crate::header::{Header, Limits};
use crate::key::DataKey;
use crate::layout::{BodyLayout, FrameSpan};

/// A message whose header has been read but not yet authenticated: look at
/// its encrypted data keys, unwrap one, then call [`PendingMessage::decrypt`].
pub struct PendingMessage<R> {
    reader: R,
    header: Header,
}

impl<R: Read> PendingMessage<R> {
    /// Reads exactly the header from `reader` (never a byte of the body), with
    /// the allocation bounds of `limits`.
    pub fn read_header(mut reader: R, limits: &Limits) -> Result<Self, DecryptError> {
        let mut buf = Vec::with_capacity(1024);
        let mut needed = 64;
        loop {
            if needed > limits.max_header_len {
                return Err(HeaderError::HeaderTooLarge { limit: limits.max_header_len }.into());
            }
            let have = buf.len();
            buf.resize(needed, 0);
            let got = fill(&mut reader, &mut buf[have..]).map_err(DecryptError::Io)?;
            if have + got < needed {
                // The input ended: report the parser's view of what there is
                // (not a message, version 1, or a header cut short).
                buf.truncate(have + got);
                return Err(match Header::parse(&buf, limits) {
                    Err(h) => h.into(),
                    Ok(_) => DecryptError::Truncated,
                });
            }
            match Header::parse(&buf, limits) {
                // The first read (64 bytes) is shorter than any header (at
                // least 98 bytes) and later reads end exactly where the parser
                // stopped, so a parsed header ends exactly at the buffer's end
                // and no body byte has been consumed.
                Ok(header) if header.len == buf.len() => return Ok(Self { reader, header }),
                Ok(_) => return Err(HeaderError::Malformed("header shorter than the first read").into()),
                Err(HeaderError::Incomplete { needed: n, .. }) => needed = n,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Gives back the reader, positioned at the start of the body.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// The unauthenticated header: use it to choose a key, trust it only after
    /// `decrypt` succeeds.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Verifies the key commitment and the header tag with `data_key` and
    /// returns a reader of the plaintext.
    pub fn decrypt(self, data_key: &DataKey) -> Result<DecryptingReader<R>, DecryptError> {
        let opener = self.header.opener(data_key)?;
        Ok(DecryptingReader {
            inner: self.reader,
            header: self.header,
            opener,
            next_sequence: 1,
            frame: Zeroizing::new(Vec::new()),
            sealed: Vec::new(),
            pos: 0,
            state: State::Reading,
        })
    }
}

impl Header {
    /// Verifies `data_key` against this header (commitment, then tag) and
    /// returns the opener of its frames.
    pub fn opener(&self, data_key: &DataKey) -> Result<FrameOpener, DecryptError> {
        let keys = self.verified_keys(data_key)?;
        Ok(FrameOpener::new(keys, self))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Done,
    Failed,
}

/// Decrypts a whole message body as it is read. Holds one frame.
pub struct DecryptingReader<R> {
    inner: R,
    header: Header,
    opener: FrameOpener,
    next_sequence: u32,
    // Plaintext of the current frame, when the caller's buffer was too small
    // to take it whole.
    frame: Zeroizing<Vec<u8>>,
    // Ciphertext and tag of the frame being read.
    sealed: Vec<u8>,
    pos: usize,
    state: State,
}

impl<R: Read> DecryptingReader<R> {
    /// The authenticated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Whether the final frame has been read and authenticated.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Reads and authenticates the next frame, into `out` when it is given
    /// (and holds a whole frame), else into our own buffer. Returns the
    /// plaintext length written to `out`.
    fn next_frame(&mut self, out: Option<&mut [u8]>) -> Result<usize, DecryptError> {
        let sequence = self.next_sequence;
        let (opened, written, out) = match out {
            Some(out) => {
                let (opened, n) =
                    self.opener.read_frame_to(&mut self.inner, sequence, Expect::Either, &mut self.sealed, out)?;
                (opened, n, Some(out))
            }
            None => {
                let opened = self.opener.read_frame(&mut self.inner, sequence, Expect::Either, &mut self.frame)?;
                self.pos = 0;
                (opened, 0, None)
            }
        };
        if opened.is_final {
            // Refuse trailing bytes before releasing the final frame.
            if let Err(e) = self.expect_end() {
                self.frame.clear();
                if let Some(out) = out {
                    out[..written].fill(0);
                }
                return Err(e);
            }
            self.state = State::Done;
        } else {
            self.next_sequence =
                sequence.checked_add(1).ok_or(DecryptError::MalformedFrame { sequence, reason: "too many frames" })?;
        }
        Ok(written)
    }

    fn expect_end(&mut self) -> Result<(), DecryptError> {
        let mut probe = [0u8; 1];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(DecryptError::TrailingData),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DecryptError::Io(e)),
            }
        }
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.frame.len() {
                let n = out.len().min(self.frame.len() - self.pos);
                out[..n].copy_from_slice(&self.frame[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.state {
                State::Done => return Ok(0),
                State::Failed => {
                    return Err(io::Error::other("decryption failed earlier; the message cannot be read further"))
                }
                State::Reading => {}
            }
            if out.is_empty() {
                return Ok(0);
            }
            // A caller's buffer that holds a whole frame gets the plaintext
            // directly: one copy fewer.
            let direct = out.len() >= self.opener.frame_length();
            match self.next_frame(if direct { Some(&mut *out) } else { None }) {
                Ok(n) if direct && n > 0 => return Ok(n),
                Ok(_) => {}
                Err(e) => {
                    self.state = State::Failed;
                    return Err(e.into_io());
                }
            }
        }
    }
}

/// Decrypts the frames that cover a plaintext range and yields exactly the
/// bytes of that range. `inner` must be positioned at `span.ciphertext.start`
/// and needs to provide only `span.ciphertext`.
pub struct RangeReader<R> {
    inner: R,
    opener: FrameOpener,
    layout: BodyLayout,
    next_sequence: u32,
    last_sequence: u32,
    skip: usize,
    remaining: u64,
    frame: Zeroizing<Vec<u8>>,
    pos: usize,
    failed: bool,
}

impl<R: Read> RangeReader<R> {
    /// A reader of `span` (from [`BodyLayout::span`]) with `opener`.
    pub fn new(inner: R, opener: FrameOpener, layout: BodyLayout, span: &FrameSpan) -> Self {
        Self {
            inner,
            opener,
            layout,
            next_sequence: span.first_sequence,
            last_sequence: span.last_sequence,
            skip: span.skip as usize,
            remaining: span.len(),
            frame: Zeroizing::new(Vec::new()),
            pos: 0,
            failed: false,
        }
    }

    fn next_frame(&mut self) -> Result<(), DecryptError> {
        let sequence = self.next_sequence;
        let expect =
            if u64::from(sequence) - 1 == self.layout.regular_frames { Expect::Final } else { Expect::Regular };
        self.opener.read_frame(&mut self.inner, sequence, expect, &mut self.frame)?;
        self.pos = std::mem::take(&mut self.skip).min(self.frame.len());
        self.next_sequence = sequence.wrapping_add(1);
        Ok(())
    }
}

impl<R: Read> Read for RangeReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("decryption failed earlier; the range cannot be read further"));
        }
        loop {
            if self.remaining == 0 || out.is_empty() {
                return Ok(0);
            }
            if self.pos < self.frame.len() {
                let n = (out.len() as u64).min((self.frame.len() - self.pos) as u64).min(self.remaining) as usize;
                out[..n].copy_from_slice(&self.frame[self.pos..self.pos + n]);
                self.pos += n;
                self.remaining -= n as u64;
                return Ok(n);
            }
            if self.next_sequence > self.last_sequence {
                self.failed = true;
                return Err(DecryptError::Length.into_io());
            }
            if let Err(e) = self.next_frame() {
                self.failed = true;
                return Err(e.into_io());
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; how many bytes it read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
