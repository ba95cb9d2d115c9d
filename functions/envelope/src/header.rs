//! The message header: parsing with bounded allocation, serialization, and
//! its authentication.

use aws_lc_rs::aead::{Aad, Nonce, NONCE_LEN};
use aws_lc_rs::constant_time::verify_slices_are_equal;

use crate::context::EncryptionContext;
use crate::error::{DecryptError, EncryptError, HeaderError};
use crate::key::{DataKey, MessageKeys, KEY_LEN};
use crate::suite::{suite_name, COMMIT_KEY_UNSIGNED};

/// Message format version 2.
pub const VERSION: u8 = 0x02;
/// Message format version 1: a message, but not one callvault reads.
const VERSION_1: u8 = 0x01;
/// Content type "framed", the only one written or read.
pub const CONTENT_TYPE_FRAMED: u8 = 0x02;
/// Length of the header authentication tag.
pub const TAG_LEN: usize = 16;
/// Length of a message id.
pub const MESSAGE_ID_LEN: usize = 32;

/// One wrapped copy of the data key.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedDataKey {
    /// Who can unwrap it: `aws-kms`, `aws-kms-rsa`, ...
    pub provider_id: String,
    /// Provider-specific: for the KMS keyrings, the key ARN as UTF-8.
    pub provider_info: Vec<u8>,
    /// The wrapped data key.
    pub ciphertext: Vec<u8>,
}

impl EncryptedDataKey {
    /// Provider info as text (KMS key ARNs are), or `None`.
    pub fn provider_info_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.provider_info).ok()
    }
}

impl std::fmt::Debug for EncryptedDataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedDataKey")
            .field("provider_id", &self.provider_id)
            .field("provider_info", &String::from_utf8_lossy(&self.provider_info))
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Bounds applied while parsing, so a hostile header cannot make the parser
/// allocate without limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most encrypted data keys accepted.
    pub max_encrypted_data_keys: usize,
    /// Largest serialized encryption context accepted, in bytes.
    pub max_context_len: usize,
    /// Largest frame length accepted (one frame is held in memory).
    pub max_frame_length: u32,
    /// Largest header accepted, in bytes.
    pub max_header_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_encrypted_data_keys: 32,
            max_context_len: 16 * 1024,
            max_frame_length: 16 * 1024 * 1024,
            max_header_len: 256 * 1024,
        }
    }
}

/// A parsed version 2 header of suite 0x0478. Not yet authenticated: call
/// [`Header::verify`] with the data key before trusting any field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Algorithm suite id (always 0x0478 once parsed).
    pub suite_id: u16,
    /// Random per-message id; salt of the key derivation.
    pub message_id: [u8; MESSAGE_ID_LEN],
    /// The authenticated encryption context.
    pub encryption_context: EncryptionContext,
    /// Wrapped copies of the data key.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Plaintext bytes per regular frame.
    pub frame_length: u32,
    /// The key commitment (suite data).
    pub commitment: [u8; KEY_LEN],
    /// The header authentication tag.
    pub auth_tag: [u8; TAG_LEN],
    /// Serialized length, tag included: where the body starts.
    pub len: usize,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HeaderError> {
        let end = self.pos.checked_add(n).ok_or(HeaderError::Malformed("length overflow"))?;
        match self.buf.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(HeaderError::Incomplete { needed: end, available: self.buf.len() }),
        }
    }
    fn u8(&mut self) -> Result<u8, HeaderError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, HeaderError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, HeaderError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], HeaderError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn short_bytes(&mut self) -> Result<&'a [u8], HeaderError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

fn utf8(bytes: &[u8], what: &'static str) -> Result<String, HeaderError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| HeaderError::Malformed(what))
}

impl Header {
    /// Parses a header from the start of `buf`. On `HeaderError::Incomplete`,
    /// supply at least `needed` bytes and call again. Never panics; allocates
    /// at most what `limits` allow.
    pub fn parse(buf: &[u8], limits: &Limits) -> Result<Header, HeaderError> {
        let checked = |c: &Cursor<'_>| -> Result<(), HeaderError> {
            if c.pos > limits.max_header_len {
                Err(HeaderError::HeaderTooLarge { limit: limits.max_header_len })
            } else {
                Ok(())
            }
        };
        let mut c = Cursor { buf, pos: 0 };
        let version = c.u8()?;
        match version {
            VERSION => {}
            VERSION_1 => return Err(HeaderError::UnsupportedVersion(version)),
            _ => return Err(HeaderError::NotAMessage(version)),
        }
        let suite_id = c.u16()?;
        if suite_id != COMMIT_KEY_UNSIGNED {
            return Err(HeaderError::UnsupportedSuite { id: suite_id, name: suite_name(suite_id) });
        }
        let message_id = c.array::<MESSAGE_ID_LEN>()?;

        let aad_len = usize::from(c.u16()?);
        if aad_len > limits.max_context_len {
            return Err(HeaderError::ContextTooLarge { len: aad_len, limit: limits.max_context_len });
        }
        let encryption_context = parse_context(c.take(aad_len)?)?;

        let edk_count = usize::from(c.u16()?);
        if edk_count == 0 {
            return Err(HeaderError::Malformed("no encrypted data keys"));
        }
        if edk_count > limits.max_encrypted_data_keys {
            return Err(HeaderError::TooManyDataKeys { count: edk_count, limit: limits.max_encrypted_data_keys });
        }
        let mut encrypted_data_keys = Vec::with_capacity(edk_count);
        for _ in 0..edk_count {
            let provider_id = utf8(c.short_bytes()?, "provider id is not UTF-8")?;
            let provider_info = c.short_bytes()?.to_vec();
            let ciphertext = c.short_bytes()?.to_vec();
            checked(&c)?;
            encrypted_data_keys.push(EncryptedDataKey { provider_id, provider_info, ciphertext });
        }

        let content_type = c.u8()?;
        if content_type != CONTENT_TYPE_FRAMED {
            return Err(HeaderError::UnsupportedContentType(content_type));
        }
        let frame_length = c.u32()?;
        if frame_length == 0 || frame_length > limits.max_frame_length {
            return Err(HeaderError::FrameLength { len: frame_length, limit: limits.max_frame_length });
        }
        let commitment = c.array::<KEY_LEN>()?;
        let auth_tag = c.array::<TAG_LEN>()?;
        checked(&c)?;
        Ok(Header {
            suite_id,
            message_id,
            encryption_context,
            encrypted_data_keys,
            frame_length,
            commitment,
            auth_tag,
            len: c.pos,
        })
    }

    /// Serializes everything but the authentication tag: the bytes the tag
    /// authenticates.
    pub fn serialize_body(&self) -> Result<Vec<u8>, EncryptError> {
        let aad = self.encryption_context.serialize()?;
        let mut out = Vec::with_capacity(128 + aad.len());
        out.push(VERSION);
        out.extend_from_slice(&self.suite_id.to_be_bytes());
        out.extend_from_slice(&self.message_id);
        // aad.len() <= u16::MAX is guaranteed by serialize().
        out.extend_from_slice(&(aad.len() as u16).to_be_bytes());
        out.extend_from_slice(&aad);
        let count = u16::try_from(self.encrypted_data_keys.len())
            .map_err(|_| EncryptError::DataKeys("more than 65535 encrypted data keys"))?;
        if count == 0 {
            return Err(EncryptError::DataKeys("a message needs at least one encrypted data key"));
        }
        out.extend_from_slice(&count.to_be_bytes());
        for edk in &self.encrypted_data_keys {
            for field in [edk.provider_id.as_bytes(), &edk.provider_info, &edk.ciphertext] {
                let len = u16::try_from(field.len())
                    .map_err(|_| EncryptError::DataKeys("a field is longer than 65535 bytes"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(field);
            }
        }
        out.push(CONTENT_TYPE_FRAMED);
        out.extend_from_slice(&self.frame_length.to_be_bytes());
        out.extend_from_slice(&self.commitment);
        Ok(out)
    }

    /// The complete serialized header, tag included.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncryptError> {
        let mut out = self.serialize_body()?;
        out.extend_from_slice(&self.auth_tag);
        Ok(out)
    }

    /// Checks that `data_key` commits to this message (constant time) and
    /// that the header authentication tag verifies. Only then are the
    /// header's fields, its context among them, authentic.
    pub fn verify(&self, data_key: &DataKey) -> Result<(), DecryptError> {
        self.verified_keys(data_key).map(|_| ())
    }

    pub(crate) fn verified_keys(&self, data_key: &DataKey) -> Result<MessageKeys, DecryptError> {
        let keys = MessageKeys::derive(data_key, &self.message_id);
        verify_slices_are_equal(&keys.commitment, &self.commitment).map_err(|_| DecryptError::Commitment)?;
        let body = self.serialize_body().map_err(|_| DecryptError::HeaderAuth)?;
        let mut tag = self.auth_tag;
        keys.aead.open_in_place(header_nonce(), Aad::from(&body), &mut tag).map_err(|_| DecryptError::HeaderAuth)?;
        Ok(keys)
    }

    /// Computes the authentication tag over this header with `keys`.
    pub(crate) fn seal(&mut self, keys: &MessageKeys) -> Result<(), EncryptError> {
        let body = self.serialize_body()?;
        let tag = keys
            .aead
            .seal_in_place_separate_tag(header_nonce(), Aad::from(&body), &mut [])
            .map_err(|_| EncryptError::Crypto)?;
        self.auth_tag.copy_from_slice(tag.as_ref());
        Ok(())
    }
}

fn header_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; NONCE_LEN])
}

fn parse_context(bytes: &[u8]) -> Result<EncryptionContext, HeaderError> {
    if bytes.is_empty() {
        return Ok(EncryptionContext::new());
    }
    let mut c = Cursor { buf: bytes, pos: 0 };
    let malformed = |e: HeaderError| match e {
        HeaderError::Incomplete { .. } => HeaderError::Malformed("encryption context overruns its length"),
        other => other,
    };
    let count = c.u16().map_err(malformed)?;
    if count == 0 {
        return Err(HeaderError::Malformed("encryption context with a zero pair count"));
    }
    let mut ctx = EncryptionContext::new();
    let mut previous: Option<String> = None;
    for _ in 0..count {
        let k = utf8(c.short_bytes().map_err(malformed)?, "encryption context key is not UTF-8")?;
        let v = utf8(c.short_bytes().map_err(malformed)?, "encryption context value is not UTF-8")?;
        if let Some(p) = &previous {
            if p.as_bytes() >= k.as_bytes() {
                return Err(HeaderError::Malformed("encryption context keys are not sorted and unique"));
            }
        }
        previous = Some(k.clone());
        ctx.insert(k, v);
    }
    if c.pos != bytes.len() {
        return Err(HeaderError::Malformed("bytes after the encryption context pairs"));
    }
    Ok(ctx)
}
