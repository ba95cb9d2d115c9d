//! The AWS adapters: the only place an AWS SDK (`aws-sdk-*`, `aws-smithy-*`) name
//! appears. One module per port, named as the port is (`keys`: KMS,
//! `objects`: S3, `catalog`: DynamoDB, `alerts`: SNS, `dead_letters`: SQS), each with its SDK error mapping and the
//! list of IAM actions its calls need (`AWS_CALLS`), which
//! `tests/tests/iam.rs` checks against its code and against template.yaml.

pub mod alerts;
pub mod catalog;
pub mod dead_letters;
pub mod keys;
pub mod objects;

pub use alerts::AlertTopic;
pub use catalog::DynamoCatalog;
pub use dead_letters::DeadLetterQueue;
pub use keys::AwsKms;
pub use objects::S3Objects;

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

impl crate::ports::destinations::Destinations<S3Objects, DynamoCatalog> for RegionalAdapters {
    fn open(&self, destination: &crate::ports::destinations::Destination) -> (S3Objects, DynamoCatalog) {
        let config = self.config.to_builder().region(aws_config::Region::new(destination.region.clone())).build();
        (S3Objects::from_config(&config), DynamoCatalog::from_config(&config, &destination.catalog_table))
    }
}
