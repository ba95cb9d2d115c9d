//! SQS through the AWS SDK: the adapter of the [`DeadLetters`] port.

use crate::ports::dead_letters::{DeadLetterError, DeadLetters};

/// The SQS calls of this adapter, as IAM actions.
pub const AWS_CALLS: &[&str] = &["sqs:SendMessage"];

/// A dead-letter queue.
#[derive(Clone)]
pub struct DeadLetterQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl DeadLetterQueue {
    /// The queue at `queue_url` through a client built from `config`.
    pub fn from_config(config: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self { client: aws_sdk_sqs::Client::new(config), queue_url: queue_url.into() }
    }
}

impl DeadLetters for DeadLetterQueue {
    async fn send(&self, letter: &serde_json::Value) -> Result<(), DeadLetterError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(letter.to_string())
            .send()
            .await
            .map(drop)
            .map_err(|e| DeadLetterError { queue: self.queue_url.clone(), detail: e.to_string() })
    }
}
