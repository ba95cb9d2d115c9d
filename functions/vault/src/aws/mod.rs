//! The AWS adapters: the only place an AWS SDK (`aws-sdk-*`, `aws-smithy-*`) name
//! appears. One module per port, named as the port is (`keys`: KMS,
//! `objects`: S3, `catalog`: DynamoDB, `alerts`: SNS, `dead_letters`: SQS, `destinations`: another region's S3 and DynamoDB), each with its SDK error mapping and the
//! list of IAM actions its calls need (`AWS_CALLS`), which
//! `tests/tests/iam.rs` checks against its code and against template.yaml.

pub mod alerts;
pub mod catalog;
pub mod dead_letters;
pub mod destinations;
pub mod keys;
pub mod objects;

pub use alerts::AlertTopic;
pub use catalog::DynamoCatalog;
pub use dead_letters::DeadLetterQueue;
pub use destinations::RegionalAdapters;
pub use keys::AwsKms;
pub use objects::S3Objects;
