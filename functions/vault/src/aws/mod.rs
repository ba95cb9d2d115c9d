//! The AWS adapters: the only place an AWS SDK (`aws-sdk-*`, `aws-smithy-*`) name
//! appears. One module per service, each with its SDK error mapping and the
//! list of IAM actions its calls need (`AWS_CALLS`), which
//! `tests/tests/iam.rs` checks against its code and against template.yaml.

pub mod dynamodb;
pub mod kms;
pub mod s3;
pub mod sns;
pub mod sqs;

pub use dynamodb::DynamoCatalog;
pub use kms::AwsKms;
pub use s3::S3Objects;
pub use sns::AlertTopic;
pub use sqs::DeadLetterQueue;
