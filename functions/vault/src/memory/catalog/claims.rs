//! The twin of [`EventClaims`].

use super::{EventItem, MemoryCatalog};
use crate::ports::catalog::{CatalogError, EventClaim, EventClaims};

impl EventClaims for MemoryCatalog {
    async fn claim_event(
        &self,
        source: &str,
        id: &str,
        now: u64,
        lease_secs: u64,
        _expires_at: u64,
    ) -> Result<EventClaim, CatalogError> {
        self.faults.before("claim_event").await?;
        let answer = {
            let mut state = self.lock();
            let key = (source.to_string(), id.to_string());
            match state.events.get(&key) {
                Some(e) if e.done => EventClaim::Done,
                Some(e) if e.lease_until >= now => EventClaim::InProgress,
                found => {
                    let recorded = found.and_then(|e| e.recorded.clone());
                    state.events.insert(
                        key,
                        EventItem { done: false, lease_until: now + lease_secs, recorded: recorded.clone() },
                    );
                    EventClaim::First { recorded }
                }
            }
        };
        self.faults.after("claim_event").await?;
        Ok(answer)
    }

    async fn event_done(&self, source: &str, id: &str) -> Result<(), CatalogError> {
        self.faults.before("event_done").await?;
        {
            let mut state = self.lock();
            let item = state.events.entry((source.to_string(), id.to_string())).or_insert(EventItem {
                done: false,
                lease_until: 0,
                recorded: None,
            });
            item.done = true;
        }
        self.faults.after("event_done").await
    }

    async fn release_event(&self, source: &str, id: &str, recorded: Option<&str>) -> Result<(), CatalogError> {
        self.faults.before("release_event").await?;
        {
            let mut state = self.lock();
            let item = state.events.entry((source.to_string(), id.to_string())).or_insert(EventItem {
                done: false,
                lease_until: 0,
                recorded: None,
            });
            item.lease_until = 0;
            if let Some(r) = recorded {
                item.recorded = Some(r.to_string());
            }
        }
        self.faults.after("release_event").await
    }
}
