//! The twin of [`KeyUsageCatalog`].

use super::MemoryCatalog;
use crate::ports::catalog::{CatalogError, KeyUsage, KeyUsageCatalog};

impl KeyUsageCatalog for MemoryCatalog {
    async fn key_usage(&self, key_arn: &str) -> Result<Option<KeyUsage>, CatalogError> {
        self.faults.before("key_usage").await?;
        Ok(self.lock().usage.get(key_arn).map(Self::usage_of))
    }

    async fn key_usages(&self) -> Result<Vec<KeyUsage>, CatalogError> {
        self.faults.before("key_usages").await?;
        Ok(self.lock().usage.values().map(Self::usage_of).collect())
    }
}
