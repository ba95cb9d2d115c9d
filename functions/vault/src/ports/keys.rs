//! The key ports: what callvault asks of KMS, in its own words.
//! [`KeyManagement`] wraps and unwraps data keys (every function that
//! encrypts or decrypts); [`KeyInspection`] reads what a key is and how it
//! rotates, and cancels a scheduled deletion (the key guardian, the audit).
//! Implementations map every failure to a [`KeyError`].

use std::future::Future;

use envelope::{DataKey, EncryptionContext};
use zeroize::Zeroizing;

use crate::errors::{ErrorKind, OperationError};

/// Why a data key could not be produced or unwrapped.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The KMS key is disabled.
    #[error(
        "KMS key {key} is disabled: ask the key's administrator to re-enable it (aws kms enable-key --key-id {key})"
    )]
    Disabled { key: String },
    /// The KMS key is scheduled for deletion.
    #[error("KMS key {key} is pending deletion: ask the key's administrator to cancel it now (aws kms cancel-key-deletion --key-id {key}, then aws kms enable-key --key-id {key}); once deleted, everything it protects is lost")]
    PendingDeletion { key: String },
    /// The key is in another state that refuses use (pending import, unavailable, ...).
    #[error("KMS key {key} cannot be used in state {state}: ask the key's administrator to restore it")]
    InvalidState { key: String, state: String },
    /// The caller may not use the key.
    #[error("access to KMS key {key} was denied ({detail}): the key policy or IAM role must allow this call with this encryption context")]
    AccessDenied { key: String, detail: String },
    /// No such key (or not visible from this account and region).
    #[error("KMS key {key} was not found: check the key ARN, the account and the region")]
    NotFound { key: String },
    /// The key is in a region other than the one required.
    #[error("KMS key {key} is in region {key_region}, not {expected}: use a key in {expected}, or configure it as an additional disaster-recovery key")]
    WrongRegion { key: String, key_region: String, expected: String },
    /// KMS throttled the request.
    #[error("KMS throttled the request for key {key}: retry later, or raise the KMS request quota")]
    Throttled { key: String },
    /// KMS could not be reached or failed on its side.
    #[error("KMS is unavailable for key {key} ({detail}): retry later")]
    Unavailable { key: String, detail: String },
    /// Nothing reached KMS: no credentials were found (`credentials_missing`)
    /// or there was no connection (`endpoint_unreachable`).
    #[error("{message}")]
    Transport { key: String, code: &'static str, message: String },
    /// KMS did not accept the caller's credentials: unknown, expired or
    /// badly signed.
    #[error("KMS did not accept the credentials used for key {key} ({detail}): they are expired or unknown: refresh them (aws sso login, or new access keys)")]
    CredentialsRejected { key: String, detail: String },
    /// The key cannot wrap data keys (wrong spec or usage).
    #[error("KMS key {key} cannot wrap data keys: {detail}")]
    Unsupported { key: String, detail: String },
    /// The wrapped key or its context does not match: tampered or swapped.
    #[error("integrity check failed: {detail}")]
    Integrity { detail: String },
    /// None of the message's encrypted data keys is one this caller may use.
    #[error("no encrypted data key of this message can be unwrapped here ({detail})")]
    NoUsableKey { detail: String },
}

impl OperationError for KeyError {
    fn code(&self) -> &'static str {
        match self {
            Self::Disabled { .. } => "key_disabled",
            Self::PendingDeletion { .. } => "key_pending_deletion",
            Self::InvalidState { .. } => "key_unavailable",
            Self::AccessDenied { .. } => "key_access_denied",
            Self::NotFound { .. } => "key_not_found",
            Self::WrongRegion { .. } => "wrong_region",
            Self::Throttled { .. } => "kms_throttled",
            Self::Unavailable { .. } => "kms_unavailable",
            Self::Transport { code, .. } => code,
            Self::CredentialsRejected { .. } => "credentials_rejected",
            Self::Unsupported { .. } => "key_unsupported",
            Self::Integrity { .. } => "integrity",
            Self::NoUsableKey { .. } => "key_not_found",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Throttled { .. } | Self::Unavailable { .. } => ErrorKind::Transient,
            Self::Transport { code, .. } if *code == "endpoint_unreachable" => ErrorKind::Transient,
            Self::Transport { .. } | Self::CredentialsRejected { .. } => ErrorKind::Deployment,
            Self::Integrity { .. } => ErrorKind::Integrity,
            _ => ErrorKind::KeyRefused,
        }
    }

    fn key_arn(&self) -> Option<&str> {
        match self {
            Self::Disabled { key }
            | Self::PendingDeletion { key }
            | Self::InvalidState { key, .. }
            | Self::AccessDenied { key, .. }
            | Self::NotFound { key }
            | Self::WrongRegion { key, .. }
            | Self::Throttled { key }
            | Self::Unavailable { key, .. }
            | Self::Transport { key, .. }
            | Self::CredentialsRejected { key, .. }
            | Self::Unsupported { key, .. } => Some(key),
            Self::Integrity { .. } | Self::NoUsableKey { .. } => None,
        }
    }
}

/// What a key is, as far as wrapping data keys goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT: wraps through KMS.
    Symmetric,
    /// RSA_2048/3072/4096, ENCRYPT_DECRYPT: wraps locally with the public key.
    Rsa,
    /// Anything else (signing keys, HMAC keys, ...), with its spec and usage.
    Other(String),
}

/// A key's lifecycle state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    Other(String),
}

/// What DescribeKey says about a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDescription {
    /// The full key ARN (aliases resolved).
    pub arn: String,
    pub kind: KeyKind,
    pub state: KeyState,
}

impl KeyDescription {
    /// `Ok` when the key is Enabled, else the error its state calls for.
    pub fn require_enabled(&self) -> Result<(), KeyError> {
        let key = self.arn.clone();
        match &self.state {
            KeyState::Enabled => Ok(()),
            KeyState::Disabled => Err(KeyError::Disabled { key }),
            KeyState::PendingDeletion => Err(KeyError::PendingDeletion { key }),
            KeyState::Other(state) => Err(KeyError::InvalidState { key, state: state.clone() }),
        }
    }
}

/// A data key fresh from KMS: plaintext and its wrapped copy.
pub struct GeneratedDataKey {
    pub data_key: DataKey,
    pub ciphertext: Vec<u8>,
    /// The key ARN KMS reports having used.
    pub key_arn: String,
}

/// The KMS operations callvault needs. Implementations map every failure to a
/// [`KeyError`].
pub trait KeyManagement: Send + Sync {
    /// DescribeKey.
    fn describe_key(&self, key_id: &str) -> impl Future<Output = Result<KeyDescription, KeyError>> + Send;
    /// GenerateDataKey (32 bytes) bound to `context`.
    fn generate_data_key(
        &self,
        key_arn: &str,
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<GeneratedDataKey, KeyError>> + Send;
    /// Encrypt an existing data key under a symmetric key, bound to `context`.
    fn wrap_data_key(
        &self,
        key_arn: &str,
        data_key: &DataKey,
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<Vec<u8>, KeyError>> + Send;
    /// Decrypt with a symmetric key and `context`; returns the plaintext and
    /// the key ARN KMS reports.
    fn unwrap_data_key(
        &self,
        key_arn: &str,
        ciphertext: &[u8],
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<(Zeroizing<Vec<u8>>, String), KeyError>> + Send;
    /// Decrypt with an RSA key (RSAES_OAEP_SHA_256, no context); returns the
    /// plaintext and the key ARN KMS reports.
    fn rsa_decrypt(
        &self,
        key_arn: &str,
        ciphertext: &[u8],
    ) -> impl Future<Output = Result<(Zeroizing<Vec<u8>>, String), KeyError>> + Send;
    /// GetPublicKey: DER SubjectPublicKeyInfo.
    fn public_key(&self, key_arn: &str) -> impl Future<Output = Result<Vec<u8>, KeyError>> + Send;
}

/// What the key guardian reports about a key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyFacts {
    /// `None` when KMS no longer knows the key (deleted).
    pub state: Option<KeyState>,
    /// When a key pending deletion will be deleted (Unix seconds).
    pub deletion_date: Option<i64>,
    pub aliases: Vec<String>,
    /// Key spec, e.g. `SYMMETRIC_DEFAULT`.
    pub spec: Option<String>,
    /// Why DescribeKey failed, when it did (the state is then unknown).
    pub error: Option<String>,
}

/// What KMS says about a key's lifecycle and rotation, for the audit: a
/// call that fails leaves its facts unset and says why in `errors`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotationFacts {
    pub key_arn: String,
    /// `None` when DescribeKey failed (see `errors`).
    pub state: Option<KeyState>,
    pub spec: Option<String>,
    pub origin: Option<String>,
    /// Unix seconds.
    pub created: Option<i64>,
    pub multi_region: Option<bool>,
    /// For a multi-Region replica, its primary key's ARN.
    pub multi_region_primary: Option<String>,
    /// `ENCRYPT_DECRYPT`, `SIGN_VERIFY`, ...
    pub key_usage: Option<String>,
    /// KMS answered that it does not know the key (deleted).
    pub missing: bool,
    /// Symmetric keys only.
    pub rotation_enabled: Option<bool>,
    pub rotation_period_days: Option<i64>,
    /// Unix seconds.
    pub next_rotation: Option<i64>,
    /// Unix seconds, and `AUTOMATIC` or `ON_DEMAND`.
    pub last_rotation: Option<i64>,
    pub last_rotation_type: Option<String>,
    /// Facts that could not be read, with why.
    pub errors: Vec<String>,
}

impl RotationFacts {
    /// Whether KMS can rotate the key's material: symmetric and generated by
    /// KMS (not imported, not in a custom key store). Before DescribeKey has
    /// answered, unknown.
    pub fn kms_rotates(&self) -> bool {
        kms_rotates(self.spec.as_deref(), self.origin.as_deref())
    }
}

/// Whether KMS rotates a key of `spec` and `origin` (as DescribeKey names
/// them): symmetric, with material KMS generated.
pub fn kms_rotates(spec: Option<&str>, origin: Option<&str>) -> bool {
    spec == Some("SYMMETRIC_DEFAULT") && origin.is_none_or(|o| o == "AWS_KMS")
}

/// What the key guardian and the audit read about keys, and the one thing
/// the guardian may do to a key.
pub trait KeyInspection: Send + Sync {
    /// DescribeKey and ListAliases. A key KMS does not know has no state
    /// (`KeyFacts::default()`); any other failure is an error.
    fn key_facts(&self, key_arn: &str) -> impl Future<Output = Result<KeyFacts, KeyError>> + Send;
    /// DescribeKey, GetKeyRotationStatus and ListKeyRotations (every page),
    /// the last two only for a key KMS rotates. Never fails: a fact that
    /// cannot be read is left unset and its reason recorded.
    fn rotation_facts(&self, key_arn: &str) -> impl Future<Output = RotationFacts> + Send;
    /// CancelKeyDeletion: the key leaves PendingDeletion and stays Disabled.
    fn cancel_key_deletion(&self, key_arn: &str) -> impl Future<Output = Result<(), KeyError>> + Send;
}

/// A shared key adapter is one too.
impl<T: KeyManagement + ?Sized> KeyManagement for std::sync::Arc<T> {
    fn describe_key(&self, key_id: &str) -> impl Future<Output = Result<KeyDescription, KeyError>> + Send {
        (**self).describe_key(key_id)
    }
    fn generate_data_key(
        &self,
        key_arn: &str,
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<GeneratedDataKey, KeyError>> + Send {
        (**self).generate_data_key(key_arn, context)
    }
    fn wrap_data_key(
        &self,
        key_arn: &str,
        data_key: &DataKey,
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<Vec<u8>, KeyError>> + Send {
        (**self).wrap_data_key(key_arn, data_key, context)
    }
    fn unwrap_data_key(
        &self,
        key_arn: &str,
        ciphertext: &[u8],
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<(Zeroizing<Vec<u8>>, String), KeyError>> + Send {
        (**self).unwrap_data_key(key_arn, ciphertext, context)
    }
    fn rsa_decrypt(
        &self,
        key_arn: &str,
        ciphertext: &[u8],
    ) -> impl Future<Output = Result<(Zeroizing<Vec<u8>>, String), KeyError>> + Send {
        (**self).rsa_decrypt(key_arn, ciphertext)
    }
    fn public_key(&self, key_arn: &str) -> impl Future<Output = Result<Vec<u8>, KeyError>> + Send {
        (**self).public_key(key_arn)
    }
}

/// A shared key adapter is one too.
impl<T: KeyInspection + ?Sized> KeyInspection for std::sync::Arc<T> {
    fn key_facts(&self, key_arn: &str) -> impl Future<Output = Result<KeyFacts, KeyError>> + Send {
        (**self).key_facts(key_arn)
    }
    fn rotation_facts(&self, key_arn: &str) -> impl Future<Output = RotationFacts> + Send {
        (**self).rotation_facts(key_arn)
    }
    fn cancel_key_deletion(&self, key_arn: &str) -> impl Future<Output = Result<(), KeyError>> + Send {
        (**self).cancel_key_deletion(key_arn)
    }
}
