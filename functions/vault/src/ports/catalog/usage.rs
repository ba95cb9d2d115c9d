//! How much each key protects, counted in shards.

use std::future::Future;

use super::CatalogError;

/// What the catalog knows about one key: how much it protects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUsage {
    pub key_arn: String,
    pub recordings: u64,
    pub bytes: u64,
    /// RFC 3339, UTC: when its oldest and its newest recording were encrypted.
    pub first_used: String,
    pub last_used: String,
    /// The recording types it protects, sorted.
    pub recording_types: Vec<String>,
}

/// Counters per key: concurrent transactions pick one at random, so that
/// they rarely collide on one item (DynamoDB cancels a transaction that
/// touches an item another transaction is writing).
pub const KEY_USAGE_SHARDS: u8 = 32;

/// A random usage shard, `0..KEY_USAGE_SHARDS`.
pub fn random_usage_shard() -> u8 {
    let mut byte = [0u8; 1];
    // Without randomness every transaction takes shard 0: slower, never wrong.
    let _ = aws_lc_rs::rand::fill(&mut byte);
    byte[0] % KEY_USAGE_SHARDS
}

/// How much each key protects.
pub trait KeyUsageCatalog: Send + Sync {
    /// The usage of one key, if the catalog knows it.
    fn key_usage(&self, key_arn: &str) -> impl Future<Output = Result<Option<KeyUsage>, CatalogError>> + Send;
    /// Every key the catalog knows, with its usage.
    fn key_usages(&self) -> impl Future<Output = Result<Vec<KeyUsage>, CatalogError>> + Send;
}
