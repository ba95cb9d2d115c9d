//! Key errors: everything KMS or a key's configuration can refuse, each with a
//! stable code, whether a retry can help, and a message that says what to do.

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

impl KeyError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Disabled { .. } => "key_disabled",
            Self::PendingDeletion { .. } => "key_pending_deletion",
            Self::InvalidState { .. } => "key_unavailable",
            Self::AccessDenied { .. } => "key_access_denied",
            Self::NotFound { .. } => "key_not_found",
            Self::WrongRegion { .. } => "wrong_region",
            Self::Throttled { .. } => "kms_throttled",
            Self::Unavailable { .. } => "kms_unavailable",
            Self::Unsupported { .. } => "key_unsupported",
            Self::Integrity { .. } => "integrity",
            Self::NoUsableKey { .. } => "key_not_found",
        }
    }

    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Unavailable { .. })
    }

    /// The key ARN the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Disabled { key }
            | Self::PendingDeletion { key }
            | Self::InvalidState { key, .. }
            | Self::AccessDenied { key, .. }
            | Self::NotFound { key }
            | Self::WrongRegion { key, .. }
            | Self::Throttled { key }
            | Self::Unavailable { key, .. }
            | Self::Unsupported { key, .. } => Some(key),
            Self::Integrity { .. } | Self::NoUsableKey { .. } => None,
        }
    }
}
