//! The [`DeadLetters`] contract.

use std::future::Future;

use crate::errors::OperationError;
use crate::ports::dead_letters::DeadLetters;

/// What the dead-letter contract needs beyond the port.
pub trait DeadLetterHarness: Sync {
    /// The letters the queue holds, in order.
    fn received(&self) -> impl Future<Output = Vec<serde_json::Value>> + Send;
    /// The next send fails.
    fn fail_next(&self) -> impl Future<Output = ()> + Send;
}

/// Runs the dead-letter contract on an empty queue.
pub async fn dead_letters<D: DeadLetters, H: DeadLetterHarness>(queue: &D, harness: &H) {
    let letter = serde_json::json!({ "code": "unknown_type", "key": "voicemail/ü 1", "event": { "Records": [] } });
    queue.send(&letter).await.expect("sent");
    assert_eq!(harness.received().await, [letter]);
    harness.fail_next().await;
    let e = queue.send(&serde_json::json!({})).await.unwrap_err();
    // The invocation fails, so that Lambda keeps the event: never lost.
    assert_eq!((e.code(), e.is_retryable()), ("dead_letter_failed", true), "{e}");
}
