//! The twin of [`DenialCounters`].

use super::MemoryCatalog;
use crate::ports::catalog::{CatalogError, DenialCounters, DenialWindow};

impl DenialCounters for MemoryCatalog {
    async fn count_denial(&self, window: &DenialWindow, _expires_at: u64) -> Result<u64, CatalogError> {
        self.faults.before("count_denial").await?;
        let count = {
            let mut state = self.lock();
            let count = state.denials.entry(window.clone()).or_insert(0);
            *count += 1;
            *count
        };
        self.faults.after("count_denial").await?;
        Ok(count)
    }

    async fn closed_denials(&self, before: u64, limit: usize) -> Result<Vec<(DenialWindow, u64)>, CatalogError> {
        self.faults.before("closed_denials").await?;
        let state = self.lock();
        Ok(state
            .denials
            .iter()
            .filter(|(w, _)| w.window_start < before)
            .take(limit)
            .map(|(w, c)| (w.clone(), *c))
            .collect())
    }

    async fn take_denials(&self, window: &DenialWindow) -> Result<Option<u64>, CatalogError> {
        self.faults.before("take_denials").await?;
        let taken = self.lock().denials.remove(window);
        self.faults.after("take_denials").await?;
        Ok(taken)
    }
}
