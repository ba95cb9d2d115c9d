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

/// The adapters of another region's deployment (a re-key that moves
/// recordings there): the same SDK settings, that region.
pub struct RegionalAdapters {
    config: aws_config::SdkConfig,
}

impl RegionalAdapters {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { config: config.clone() }
    }
}

impl crate::rekey::Destinations<S3Objects, DynamoCatalog> for RegionalAdapters {
    fn open(&self, destination: &crate::rekey::Destination) -> (S3Objects, DynamoCatalog) {
        let config = self.config.to_builder().region(aws_config::Region::new(destination.region.clone())).build();
        (S3Objects::from_config(&config), DynamoCatalog::from_config(&config, &destination.catalog_table))
    }
}
