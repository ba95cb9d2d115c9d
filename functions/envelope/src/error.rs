//! Errors, one enum per operation. Each variant has a stable machine-readable
//! code (see `code()`), and messages say what happened and what to do.

use std::io;

/// Why a message header could not be parsed or accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The input ended inside the header. `needed` is the smallest total
    /// number of header bytes that could make progress.
    #[error(
        "the message ends inside its header ({available} of at least {needed} bytes): the ciphertext is truncated"
    )]
    Incomplete { needed: usize, available: usize },
    /// Not an ESDK message at all: its first byte is no format version.
    #[error("this is not an AWS Encryption SDK message (its first byte is {0:#04x}, where a message starts with its format version, 0x02): check that the input is a vault object or the output of an AWS Encryption SDK")]
    NotAMessage(u8),
    /// An ESDK message of format version 1.
    #[error("this is an AWS Encryption SDK message of format version 1 (0x01), which callvault does not read: decrypt it with the AWS Encryption SDK, or re-encrypt it with a current one (format version 2)")]
    UnsupportedVersion(u8),
    /// A suite this implementation does not decrypt (signed suites included).
    #[error("unsupported algorithm suite {id:#06x} ({name}): only 0x0478 AES_256_GCM_HKDF_SHA512_COMMIT_KEY (committing, unsigned) is supported")]
    UnsupportedSuite { id: u16, name: &'static str },
    /// Non-framed content or an unknown content type.
    #[error("unsupported content type {0:#04x}: only framed messages (0x02) are supported")]
    UnsupportedContentType(u8),
    /// More encrypted data keys than the configured limit.
    #[error("the header lists {count} encrypted data keys, more than the limit of {limit}")]
    TooManyDataKeys { count: usize, limit: usize },
    /// The encryption context is larger than the configured limit.
    #[error("the encryption context is {len} bytes, more than the limit of {limit}")]
    ContextTooLarge { len: usize, limit: usize },
    /// The frame length is zero or larger than the configured limit.
    #[error("frame length {len} is outside 1..={limit}: a frame must fit in memory")]
    FrameLength { len: u32, limit: u32 },
    /// The header is larger than the configured limit.
    #[error("the header is longer than the limit of {limit} bytes")]
    HeaderTooLarge { limit: usize },
    /// A structural error: a field that cannot hold what it holds.
    #[error("malformed header: {0}")]
    Malformed(&'static str),
}

impl HeaderError {
    /// Stable code: `not_a_message` for input that is no ESDK message at
    /// all, `integrity` for damaged or truncated input, `unsupported`
    /// for a well-formed message this implementation does not handle,
    /// `limit_exceeded` for a message beyond the configured bounds.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Incomplete { .. } | Self::Malformed(_) => "integrity",
            Self::NotAMessage(_) => "not_a_message",
            Self::UnsupportedVersion(_) | Self::UnsupportedSuite { .. } | Self::UnsupportedContentType(_) => {
                "unsupported"
            }
            Self::TooManyDataKeys { .. }
            | Self::ContextTooLarge { .. }
            | Self::FrameLength { .. }
            | Self::HeaderTooLarge { .. } => "limit_exceeded",
        }
    }
}

/// Why an encryption context or an encrypted data key list cannot be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncryptError {
    /// A context key uses the prefix reserved for the SDK.
    #[error("encryption context key {0:?} uses the reserved prefix `aws-crypto-`")]
    ReservedContextKey(String),
    /// A context that does not fit the header's 16-bit length fields.
    #[error("the encryption context does not fit in a message header: {0}")]
    ContextTooLarge(&'static str),
    /// No encrypted data key, or one whose fields do not fit.
    #[error("invalid encrypted data keys: {0}")]
    DataKeys(&'static str),
    /// Frame length zero or beyond the limit.
    #[error("frame length {len} is outside 1..={limit}")]
    FrameLength { len: u32, limit: u32 },
    /// The message already holds 2^32 - 1 frames.
    #[error("the message would need more than 2^32 - 1 frames: use a larger frame length")]
    TooManyFrames,
    /// The crypto library refused an operation (it does not on valid input).
    #[error("the cryptographic library failed")]
    Crypto,
}

impl EncryptError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Crypto => "internal",
            _ => "invalid_input",
        }
    }
}

/// Why a message could not be decrypted. Every variant but `Io` and `Header`'s
/// limits means the message is not authentic or not complete: nothing from the
/// frame that failed is released.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The header could not be parsed or is not supported.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The data key does not commit to this message (wrong key, or tampered).
    #[error("the data key does not match the message's key commitment: wrong key or tampered header")]
    Commitment,
    /// The header authentication tag does not verify.
    #[error("the header authentication tag does not verify: the header was modified")]
    HeaderAuth,
    /// A frame's tag does not verify.
    #[error("frame {sequence} does not authenticate: the ciphertext was modified")]
    FrameAuth { sequence: u32 },
    /// Frames out of order, duplicated or with a wrong IV.
    #[error("frame {found} found where frame {expected} was expected: frames were reordered, duplicated or removed")]
    Sequence { expected: u32, found: u32 },
    /// A frame whose fields are impossible.
    #[error("malformed frame {sequence}: {reason}")]
    MalformedFrame { sequence: u32, reason: &'static str },
    /// The input ended before the final frame.
    #[error("the message is truncated: it ends before its final frame")]
    Truncated,
    /// Bytes follow the final frame.
    #[error("unexpected bytes after the final frame")]
    TrailingData,
    /// The message's total length does not match any framing of its body.
    #[error("the message length does not match its framing: truncated or extended")]
    Length,
    /// A requested plaintext range outside the message.
    #[error("range {start}..{end} is outside the plaintext of {len} bytes")]
    Range { start: u64, end: u64, len: u64 },
    /// Reading the ciphertext failed.
    #[error("reading the ciphertext failed: {0}")]
    Io(#[source] io::Error),
}

impl DecryptError {
    /// Stable code: `integrity` for anything that means the ciphertext is not
    /// what was written, `range_not_satisfiable`, `io`, or the header's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Header(h) => h.code(),
            Self::Range { .. } => "range_not_satisfiable",
            Self::Io(_) => "io",
            _ => "integrity",
        }
    }

    /// Turns an I/O error from a reader into a `DecryptError`, unwrapping one
    /// that carries a `DecryptError` (as the readers of this crate produce).
    pub fn from_io(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return Self::Truncated;
        }
        if e.get_ref().is_none() {
            return Self::Io(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|inner| inner.downcast::<DecryptError>()) {
            Some(Ok(ours)) => *ours,
            Some(Err(other)) => Self::Io(io::Error::new(kind, other)),
            None => Self::Io(io::Error::from(kind)),
        }
    }

    pub(crate) fn into_io(self) -> io::Error {
        match self {
            Self::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
