//! Re-keying: replace a message's encrypted data keys without touching its
//! body. The frames depend only on the data key and the message id, so only
//! the header (its data keys and its authentication tag) changes.

use crate::error::{DecryptError, EncryptError};
use crate::header::{EncryptedDataKey, Header};
use crate::key::DataKey;

/// Why a header could not be rewritten.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteError {
    /// The data key does not open the existing header.
    #[error(transparent)]
    Verify(#[from] DecryptError),
    /// The new header cannot be written.
    #[error(transparent)]
    Encode(#[from] EncryptError),
}

impl RewriteError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Verify(e) => e.code(),
            Self::Encode(e) => e.code(),
        }
    }
}

/// Returns `header` with `encrypted_data_keys` in place of its own and a new
/// authentication tag. The old header is verified with `data_key` first, so a
/// tampered header is never re-blessed. Serialize the result with
/// [`Header::to_bytes`] and append the original body unchanged.
pub fn rewrite_header(
    header: &Header,
    data_key: &DataKey,
    encrypted_data_keys: Vec<EncryptedDataKey>,
) -> Result<Header, RewriteError> {
    let keys = header.verified_keys(data_key)?;
    let mut new = header.clone();
    new.encrypted_data_keys = encrypted_data_keys;
    new.seal(&keys)?;
    new.len = new.serialize_body()?.len() + crate::header::TAG_LEN;
    Ok(new)
}
