//! The alerts port: messages a person reads (a subject, a body) with
//! attributes that subscribers filter on (severity, event, key id).

use std::future::Future;

use crate::errors::{ErrorKind, OperationError};

/// Why an alert could not be published.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("the alert could not be published to {topic} ({detail})")]
pub struct AlertError {
    pub topic: String,
    pub detail: String,
    /// Whether a retry may help (throttling, SNS unavailable).
    pub retryable: bool,
}

impl OperationError for AlertError {
    fn code(&self) -> &'static str {
        if self.retryable {
            "sns_unavailable"
        } else {
            "sns_refused"
        }
    }

    fn kind(&self) -> ErrorKind {
        if self.retryable {
            ErrorKind::Transient
        } else {
            ErrorKind::Deployment
        }
    }
}

/// How urgent an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// Lower case, as in the `severity` message attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// An alert for the security team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Under 100 characters (SNS's limit for email subjects).
    pub subject: String,
    pub body: String,
    pub severity: Severity,
    /// The `event` message attribute.
    pub event: &'static str,
    pub key_arn: String,
    /// The `key_id` message attribute: the key's id (the ARN's last part).
    pub key_id: String,
}

/// Where alerts go.
pub trait Alerts: Send + Sync {
    /// Publishes `subject` and `body` with string message `attributes`;
    /// returns the message id.
    fn publish_message(
        &self,
        subject: &str,
        body: &str,
        attributes: &[(&str, &str)],
    ) -> impl Future<Output = Result<String, AlertError>> + Send;

    /// Publishes a key alert with its attributes (`severity`, `event`,
    /// `key_id`, `key_arn`).
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<String, AlertError>> + Send {
        async move {
            self.publish_message(
                &alert.subject,
                &alert.body,
                &[
                    ("severity", alert.severity.as_str()),
                    ("event", alert.event),
                    ("key_id", &alert.key_id),
                    ("key_arn", &alert.key_arn),
                ],
            )
            .await
        }
    }
}
