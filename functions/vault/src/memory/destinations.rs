//! The twin of the [`Destinations`] port: other regions' deployments, each
//! an in-memory vault and catalog.

use std::collections::HashMap;

use super::{MemoryCatalog, MemoryObjects};
use crate::ports::destinations::{Destination, Destinations};

/// Other regions' deployments on the twins, by region.
#[derive(Clone, Default)]
pub struct MemoryRegions(HashMap<String, (MemoryObjects, MemoryCatalog)>);

impl MemoryRegions {
    /// No other region yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `region`'s deployment: its vault and catalog.
    pub fn with(mut self, region: &str, objects: MemoryObjects, catalog: MemoryCatalog) -> Self {
        self.0.insert(region.to_string(), (objects, catalog));
        self
    }
}

impl Destinations<MemoryObjects, MemoryCatalog> for MemoryRegions {
    /// The region's deployment. A region the test did not set up is a bug
    /// in the test: it panics, naming the region.
    fn open(&self, destination: &Destination) -> (MemoryObjects, MemoryCatalog) {
        self.0.get(&destination.region).cloned().unwrap_or_else(|| panic!("no twin deployment in {destination}"))
    }
}
