//! Re-reading a message as it is written, to prove it decrypts before the
//! plaintext it came from is deleted.

use aws_lc_rs::digest::{Context, SHA256};
use zeroize::Zeroizing;

use crate::error::{DecryptError, HeaderError};
use crate::frame::{Expect, FrameOpener, FINAL_FRAME_MARKER, FINAL_FRAME_OVERHEAD, REGULAR_FRAME_OVERHEAD};
use crate::header::{Header, Limits, TAG_LEN};
use crate::key::DataKey;

/// What a [`CiphertextCheck`] proved: the message decrypts, whole, to
/// `plaintext_len` bytes whose SHA-256 is `plaintext_sha256`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedMessage {
    /// The header as it was written (parsed from the written bytes).
    pub header: Header,
    pub plaintext_len: u64,
    pub plaintext_sha256: [u8; 32],
}

/// Reads a message from the bytes written, fed in order in pieces of any
/// size ([`update`](Self::update)): parses the header from those bytes (not
/// from the writer's state), authenticates it with the data key (commitment,
/// then header tag), opens every frame and digests the plaintext. Holds at
/// most one frame and the piece being fed.
pub struct CiphertextCheck {
    data_key: DataKey,
    limits: Limits,
    state: State,
    digest: Context,
    plaintext_len: u64,
}

enum State {
    Header(Vec<u8>),
    Body { header: Box<Header>, opener: FrameOpener, next_sequence: u32, pending: Vec<u8>, frame: Zeroizing<Vec<u8>> },
    Done(Box<Header>),
    Failed,
}

impl CiphertextCheck {
    /// A check of a message whose data key is `data_key`.
    pub fn new(data_key: DataKey, limits: Limits) -> Self {
        Self { data_key, limits, state: State::Header(Vec::new()), digest: Context::new(&SHA256), plaintext_len: 0 }
    }

    /// Feeds the next bytes of the message. An error is final: every later
    /// call fails too.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), DecryptError> {
        let result = self.step(bytes);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn step(&mut self, bytes: &[u8]) -> Result<(), DecryptError> {
        match &mut self.state {
            State::Failed => Err(DecryptError::Io(std::io::Error::other("the check failed earlier"))),
            State::Done(_) if bytes.is_empty() => Ok(()),
            State::Done(_) => Err(DecryptError::MalformedFrame { sequence: 0, reason: "bytes after the final frame" }),
            State::Header(buf) => {
                buf.extend_from_slice(bytes);
                let header = match Header::parse(buf, &self.limits) {
                    Ok(h) => h,
                    Err(HeaderError::Incomplete { .. }) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let opener = header.opener(&self.data_key)?;
                let pending = buf.split_off(header.len);
                self.state = State::Body {
                    header: Box::new(header),
                    opener,
                    next_sequence: 1,
                    pending: Vec::new(),
                    frame: Zeroizing::new(Vec::new()),
                };
                self.step(&pending)
            }
            State::Body { .. } => self.body(bytes),
        }
    }

    /// Opens every whole frame in `pending` + `bytes`, keeping the rest.
    fn body(&mut self, bytes: &[u8]) -> Result<(), DecryptError> {
        let State::Body { opener, next_sequence, pending, frame, .. } = &mut self.state else {
            unreachable!("called in the body state only")
        };
        // Frames wholly inside `bytes` are opened from it, without copying.
        let mut input: &[u8];
        let joined;
        if pending.is_empty() {
            input = bytes;
        } else {
            pending.extend_from_slice(bytes);
            joined = std::mem::take(pending);
            input = &joined;
        }
        let mut finished = false;
        while let Some(len) = whole_frame_len(input, opener.frame_length())? {
            let (this, rest) = input.split_at(len);
            let mut reader = this;
            let opened = opener.read_frame(&mut reader, *next_sequence, Expect::Either, frame)?;
            self.digest.update(frame);
            self.plaintext_len += frame.len() as u64;
            *next_sequence = next_sequence.checked_add(1).ok_or(DecryptError::Length)?;
            input = rest;
            if opened.is_final {
                finished = true;
                break;
            }
        }
        if finished {
            if !input.is_empty() {
                return Err(DecryptError::MalformedFrame {
                    sequence: *next_sequence,
                    reason: "bytes after the final frame",
                });
            }
            let State::Body { header, .. } = std::mem::replace(&mut self.state, State::Failed) else {
                unreachable!("in the body state")
            };
            self.state = State::Done(header);
        } else {
            pending.extend_from_slice(input);
        }
        Ok(())
    }

    /// Ends the check: the final frame must have been read, and nothing after it.
    pub fn finish(self) -> Result<CheckedMessage, DecryptError> {
        match self.state {
            State::Done(header) => Ok(CheckedMessage {
                header: *header,
                plaintext_len: self.plaintext_len,
                plaintext_sha256: self.digest.finish().as_ref().try_into().expect("SHA-256 is 32 bytes"),
            }),
            State::Failed => Err(DecryptError::Io(std::io::Error::other("the check failed earlier"))),
            State::Header(_) | State::Body { .. } => Err(DecryptError::Truncated),
        }
    }
}

/// The length of the frame at the start of `input` when all of it is there,
/// `None` when more bytes are needed.
fn whole_frame_len(input: &[u8], frame_length: usize) -> Result<Option<usize>, DecryptError> {
    if input.len() < 4 {
        return Ok(None);
    }
    if input[..4] != FINAL_FRAME_MARKER.to_be_bytes() {
        let len = frame_length + REGULAR_FRAME_OVERHEAD as usize;
        return Ok((input.len() >= len).then_some(len));
    }
    // Marker, sequence number, IV, then the content length.
    let prefix = FINAL_FRAME_OVERHEAD as usize - TAG_LEN;
    if input.len() < prefix {
        return Ok(None);
    }
    let content = u32::from_be_bytes(input[prefix - 4..prefix].try_into().expect("4 bytes")) as usize;
    if content > frame_length {
        return Err(DecryptError::MalformedFrame { sequence: 0, reason: "final frame longer than the frame length" });
    }
    let len = prefix + content + TAG_LEN;
    Ok((input.len() >= len).then_some(len))
}
