//! SNS through the AWS SDK: the adapter of the [`Alerts`] port.

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;

use crate::ports::alerts::{AlertError, Alerts};

/// The SNS API calls this module makes, as IAM actions.
pub const AWS_CALLS: &[&str] = &["sns:Publish"];

/// An SNS topic.
#[derive(Clone)]
pub struct AlertTopic {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl AlertTopic {
    /// The topic `topic_arn` through a client built from `config`.
    pub fn from_config(config: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        Self { client: aws_sdk_sns::Client::new(config), topic_arn: topic_arn.into() }
    }

    /// The topic's ARN.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }
}

impl Alerts for AlertTopic {
    async fn publish_message(
        &self,
        subject: &str,
        body: &str,
        attributes: &[(&str, &str)],
    ) -> Result<String, AlertError> {
        let attr = |v: &str| MessageAttributeValue::builder().data_type("String").string_value(v).build();
        let mut req = self.client.publish().topic_arn(&self.topic_arn).subject(subject).message(body);
        for &(name, value) in attributes {
            let value = attr(value).map_err(|e| AlertError {
                topic: self.topic_arn.clone(),
                detail: e.to_string(),
                retryable: false,
            })?;
            req = req.message_attributes(name, value);
        }
        match req.send().await {
            Ok(out) => Ok(out.message_id.unwrap_or_default()),
            Err(e) => {
                let (detail, retryable) = match &e {
                    SdkError::ServiceError(se) => {
                        let code = se.err().code().unwrap_or("unknown").to_string();
                        let retryable = matches!(
                            code.as_str(),
                            "Throttled"
                                | "ThrottlingException"
                                | "InternalError"
                                | "ServiceUnavailable"
                                | "KMSThrottling"
                        );
                        (format!("{code}: {}", se.err().message().unwrap_or("")), retryable)
                    }
                    other => (other.to_string(), true),
                };
                Err(AlertError { topic: self.topic_arn.clone(), detail, retryable })
            }
        }
    }
}
