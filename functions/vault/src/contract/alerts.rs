//! The [`Alerts`] contract.

use std::future::Future;

use crate::errors::OperationError;
use crate::ports::alerts::Alerts;

/// What the alerts contract needs beyond the port.
pub trait AlertHarness: Sync {
    /// What the topic received: (subject, body, severity attribute), in order.
    fn received(&self) -> impl Future<Output = Vec<(String, String, Option<String>)>> + Send;
    /// The next publish is refused for lack of permission.
    fn deny_next(&self) -> impl Future<Output = ()> + Send;
    /// The next publish is throttled.
    fn throttle_next(&self) -> impl Future<Output = ()> + Send;
}

/// Runs the alerts contract on a topic nothing else publishes to.
pub async fn alerts<A: Alerts, H: AlertHarness>(topic: &A, harness: &H) {
    let id =
        topic.publish_message("[WARNING] contract", "body ü", &[("severity", "warning"), ("event", "Contract")]).await;
    assert!(!id.expect("published").is_empty(), "a message id");
    let received = harness.received().await;
    assert_eq!(received, [("[WARNING] contract".to_string(), "body ü".to_string(), Some("warning".to_string()))]);

    harness.deny_next().await;
    let e = topic.publish_message("s", "b", &[]).await.unwrap_err();
    assert_eq!((e.code(), e.is_retryable()), ("sns_refused", false), "{e}");
    harness.throttle_next().await;
    let e = topic.publish_message("s", "b", &[]).await.unwrap_err();
    assert_eq!((e.code(), e.is_retryable()), ("sns_unavailable", true), "{e}");
}
