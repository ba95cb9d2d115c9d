//! Where a region move writes: another region's deployment, and the port
//! that opens its object store and catalog (the Lambda: SDK clients for that
//! region, `aws::RegionalAdapters`; the tests: twins).

/// Another region's deployment: its region, vault bucket and catalog table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Destination {
    pub region: String,
    pub vault_bucket: String,
    pub catalog_table: String,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (vault {}, catalog {})", self.region, self.vault_bucket, self.catalog_table)
    }
}

/// Opens the object store and the catalog of a destination's region (the
/// Lambda: SDK clients for that region; the tests: twins).
pub trait Destinations<O, C>: Send + Sync {
    fn open(&self, destination: &Destination) -> (O, C);
}
