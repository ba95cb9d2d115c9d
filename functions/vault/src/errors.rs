//! What every operation error answers, in one trait: a stable code, whether
//! a retry can help, the KMS key it is about, and what kind of failure it is
//! (which a Lambda turns into its answer: an HTTP status, a retry, a dead
//! letter). Each error type lives beside the port or service that raises it.

/// The kinds of failure a caller tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request or the event is not usable as it is (bad input).
    BadRequest,
    /// The thing asked for does not exist.
    NotFound,
    /// A KMS key refuses: its state, its policy, its region, its kind.
    KeyRefused,
    /// Ciphertext, catalog and request disagree: tampered, swapped,
    /// truncated, or the wrong key.
    Integrity,
    /// Something already there stands in the way (another upload of a
    /// catalogued recording).
    Conflict,
    /// Transient: the same call may succeed later.
    Transient,
    /// The thing asked for lives elsewhere now (a recording moved to
    /// another region's deployment): ask there.
    Moved,
    /// The deployment is wrong: permissions, a missing table, a malformed
    /// catalog item, a request AWS refuses.
    Deployment,
}

/// What every operation error of callvault answers.
pub trait OperationError: std::error::Error {
    /// Stable machine-readable code (`key_disabled`, `integrity`, ...).
    fn code(&self) -> &'static str;
    /// What kind of failure this is.
    fn kind(&self) -> ErrorKind;
    /// Whether the same call may succeed later without anyone changing
    /// anything.
    fn is_retryable(&self) -> bool {
        self.kind() == ErrorKind::Transient
    }
    /// The KMS key ARN the error is about, if any.
    fn key_arn(&self) -> Option<&str> {
        None
    }
}

/// A failed invocation as a Lambda reports it: the code and the message.
/// Every Lambda's handler error is this one type, so the mapping to the
/// runtime's `Diagnostic` is written once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Failure {
    pub code: String,
    pub message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }

    /// The failure for an operation error: its code and its message.
    pub fn of(e: &dyn OperationError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

#[cfg(feature = "lambda")]
impl From<Failure> for lambda_runtime::Diagnostic {
    fn from(e: Failure) -> Self {
        lambda_runtime::Diagnostic { error_type: e.code, error_message: e.message }
    }
}
