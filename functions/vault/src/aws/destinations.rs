//! Another region's S3 and DynamoDB: the adapter of the [`Destinations`]
//! port, the same SDK settings in the destination's region.

use super::{DynamoCatalog, S3Objects};
use crate::ports::destinations::{Destination, Destinations};

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

impl Destinations<S3Objects, DynamoCatalog> for RegionalAdapters {
    fn open(&self, destination: &Destination) -> (S3Objects, DynamoCatalog) {
        let config = self.config.to_builder().region(aws_config::Region::new(destination.region.clone())).build();
        (S3Objects::from_config(&config), DynamoCatalog::from_config(&config, &destination.catalog_table))
    }
}
