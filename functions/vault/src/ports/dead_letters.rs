//! The dead-letter port: where work that no retry can fix is kept for an
//! operator (and `callvault redrive`), so that nothing is silently dropped.

use std::future::Future;

use crate::errors::{ErrorKind, OperationError};

/// Why a dead letter could not be sent.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("the dead-letter queue {queue} refused the message ({detail})")]
pub struct DeadLetterError {
    pub queue: String,
    pub detail: String,
}

impl OperationError for DeadLetterError {
    fn code(&self) -> &'static str {
        "dead_letter_failed"
    }

    fn kind(&self) -> ErrorKind {
        // The invocation fails so that Lambda retries it: never lost.
        ErrorKind::Transient
    }
}

/// A queue of dead letters.
pub trait DeadLetters: Send + Sync {
    /// Sends one dead letter (a JSON document an operator reads).
    fn send(&self, letter: &serde_json::Value) -> impl Future<Output = Result<(), DeadLetterError>> + Send;
}
