//! The encrypt and decrypt flows shared by the Lambdas and the CLI: key
//! resolution, data key wrapping and unwrapping, context checks. The byte
//! streaming itself is `envelope`'s.

use envelope::{
    CiphertextCheck, DataKey, DecryptError, EncryptError, EncryptedDataKey, EncryptionContext, Header, Limits,
    MessageEncryptor, MessageSpec,
};

use crate::errors::{ErrorKind, OperationError};
use crate::keyring::{self, UnwrapPolicy, WrappingKey};
use crate::ports::keys::{KeyError, KeyManagement};
use crate::ports::objects::S3Error;

/// Why a flow failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    #[error(transparent)]
    Encrypt(#[from] EncryptError),
    #[error(transparent)]
    S3(#[from] S3Error),
    /// A required context pair is missing or different.
    #[error("the message's encryption context has {}, not {key}={expected:?}: this is not the message you asked for", match found { Some(v) => format!("{key}={v:?}"), None => format!("no {key}") })]
    ContextMismatch { key: String, expected: String, found: Option<String> },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl OperationError for FlowError {
    fn code(&self) -> &'static str {
        match self {
            Self::Key(e) => e.code(),
            Self::Decrypt(e) => e.code(),
            Self::Encrypt(e) => e.code(),
            Self::S3(e) => e.code(),
            Self::ContextMismatch { .. } => "context_mismatch",
            Self::Io(_) => "io",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Key(e) => e.kind(),
            Self::S3(e) => e.kind(),
            // A vault object that is no message at all was replaced or damaged.
            Self::Decrypt(e) if matches!(e.code(), "integrity" | "not_a_message") => ErrorKind::Integrity,
            Self::ContextMismatch { .. } => ErrorKind::Integrity,
            Self::Decrypt(_) | Self::Encrypt(_) | Self::Io(_) => ErrorKind::BadRequest,
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            Self::Key(e) => e.is_retryable(),
            Self::S3(e) => e.is_retryable(),
            _ => false,
        }
    }

    fn key_arn(&self) -> Option<&str> {
        match self {
            Self::Key(e) => e.key_arn(),
            _ => None,
        }
    }
}

impl FlowError {
    /// Unwraps an I/O error carrying a flow, format or S3 error.
    pub fn from_io(e: std::io::Error) -> Self {
        let carries = |e: &std::io::Error| e.get_ref().map(|i| i.is::<S3Error>()).unwrap_or(false);
        if carries(&e) {
            if let Some(Ok(s3)) = e.into_inner().map(|i| i.downcast::<S3Error>()) {
                return Self::S3(*s3);
            }
            return Self::Io(std::io::Error::other("S3 error"));
        }
        match DecryptError::from_io(e) {
            DecryptError::Io(io) => Self::Io(io),
            other => Self::Decrypt(other),
        }
    }
}

/// A new message, ready to be written.
pub struct NewMessage {
    /// Seals the header and the frames.
    pub encryptor: MessageEncryptor,
    /// Re-reads what is written with the data key, from the written bytes,
    /// never from the encryptor's state: feed it exactly what is stored.
    pub check: CiphertextCheck,
    /// The wrapped data keys as the keyring made them, for the configured
    /// keys in order: the written header must carry exactly these.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
}

/// Starts a new message: a data key wrapped under `keys` and the header.
/// The plaintext data key lives only inside the encryptor and the check
/// (both wipe it when dropped).
pub async fn begin_encryption<K: KeyManagement>(
    kms: &K,
    keys: &[WrappingKey],
    context: EncryptionContext,
    frame_length: u32,
) -> Result<NewMessage, FlowError> {
    context.validate_for_encrypt()?;
    let (data_key, encrypted_data_keys) = keyring::new_data_key(kms, keys, &context).await?;
    let encryptor = MessageEncryptor::new(MessageSpec {
        data_key: &data_key,
        encryption_context: context,
        encrypted_data_keys: encrypted_data_keys.clone(),
        frame_length,
    })?;
    Ok(NewMessage { encryptor, check: CiphertextCheck::new(data_key, Limits::default()), encrypted_data_keys })
}

/// Checks that every pair of `required` is in the header's context.
pub fn require_context(header: &Header, required: &EncryptionContext) -> Result<(), FlowError> {
    for (k, v) in required.iter() {
        let found = header.encryption_context.get(k);
        if found != Some(v) {
            return Err(FlowError::ContextMismatch {
                key: k.to_string(),
                expected: v.to_string(),
                found: found.map(str::to_string),
            });
        }
    }
    Ok(())
}

/// Unwraps and verifies the data key of a message whose header is `header`:
/// the required context is checked first (no KMS call for the wrong message),
/// then the key is unwrapped and the header authenticated with it. Returns
/// the data key and the ARN of the key that unwrapped it.
pub async fn open_message<K: KeyManagement>(
    kms: &K,
    header: &Header,
    policy: &UnwrapPolicy,
    required: &EncryptionContext,
) -> Result<(DataKey, String), FlowError> {
    require_context(header, required)?;
    let (data_key, arn) = keyring::unwrap_data_key(kms, header, policy).await?;
    header.verify(&data_key)?;
    Ok((data_key, arn))
}
