//! The twin of [`RecordingCatalog`]: claims that expire, a recording written
//! once with its keys' usage, a move only while the row names the old message.

use std::collections::BTreeSet;

use super::{ClaimItem, MemoryCatalog, State};
use crate::ports::catalog::{CatalogError, Claim, KeyUsage, Moved, Recorded, RecordingCatalog};
use crate::recording::{RecordingEntry, RecordingId};

impl RecordingCatalog for MemoryCatalog {
    async fn recording(&self, id: &RecordingId) -> Result<Option<RecordingEntry>, CatalogError> {
        self.faults.before("recording").await?;
        Ok(self.lock().recordings.get(id).cloned())
    }

    async fn claim(
        &self,
        id: &RecordingId,
        source_etag: &str,
        request_id: &str,
        now: u64,
        lease_secs: u64,
    ) -> Result<Claim, CatalogError> {
        self.faults.before("claim").await?;
        self.single_item(format!("claim#{id}"))?;
        let answer = {
            let mut state = self.lock();
            match state.claims.get(id) {
                Some(c) if c.until >= now && c.request_id != request_id => {
                    Claim::HeldElsewhere { source_etag: c.source_etag.clone(), until: c.until }
                }
                _ => {
                    state.tokens += 1;
                    let token = format!("token-{}", state.tokens);
                    let item = ClaimItem {
                        token: token.clone(),
                        source_etag: source_etag.to_string(),
                        until: now + lease_secs,
                        request_id: request_id.to_string(),
                    };
                    state.claims.insert(id.clone(), item);
                    Claim::Acquired { token }
                }
            }
        };
        self.faults.after("claim").await?;
        Ok(answer)
    }

    async fn release(&self, id: &RecordingId, token: &str) -> Result<(), CatalogError> {
        self.faults.before("release").await?;
        self.single_item(format!("claim#{id}"))?;
        {
            let mut state = self.lock();
            if state.claims.get(id).is_some_and(|c| c.token == token) {
                state.claims.remove(id);
            }
        }
        self.faults.after("release").await
    }

    async fn record(&self, entry: &RecordingEntry, token: &str, now: &str) -> Result<Recorded, CatalogError> {
        self.faults.before("record").await?;
        let held = self.hold_items(&entry.id, &entry.counted_keys().iter().collect::<Vec<_>>()).await?;
        let answer = self.record_now(entry, token, now);
        self.release_items(held);
        let answer = answer?;
        self.faults.after("record").await?;
        Ok(answer)
    }

    async fn move_recording(
        &self,
        from: &RecordingEntry,
        to: &RecordingEntry,
        token: &str,
        now: &str,
    ) -> Result<Moved, CatalogError> {
        self.faults.before("move_recording").await?;
        let (was, will) = (from.counted_keys(), to.counted_keys());
        let leaving: Vec<&String> = was.iter().filter(|k| !will.contains(k)).collect();
        let gaining: Vec<&String> = will.iter().filter(|k| !was.contains(k)).collect();
        let touched: Vec<&String> = leaving.iter().chain(gaining.iter()).copied().collect();
        let held = self.hold_items(&from.id, &touched).await?;
        let answer = {
            let mut state = self.lock();
            match state.recordings.get(&from.id) {
                Some(row)
                    if row.message_id == from.message_id
                        && row.moved_to.is_none()
                        && row.deleting.is_none()
                        && row.hold == from.hold =>
                {
                    if state.claims.get(&from.id).is_none_or(|c| c.token != token) {
                        Err(CatalogError::ClaimLost { id: from.id.to_string() })
                    } else {
                        state.recordings.insert(to.id.clone(), to.clone());
                        for arn in &leaving {
                            if let Some((usage, _)) = state.usage.get_mut(*arn) {
                                usage.recordings = usage.recordings.saturating_sub(1);
                                usage.bytes = usage.bytes.saturating_sub(from.plaintext_size);
                            }
                        }
                        for arn in &gaining {
                            Self::count(&mut state, arn, &to.id.recording_type, to.plaintext_size, now);
                        }
                        state.claims.remove(&from.id);
                        Ok(Moved::Moved)
                    }
                }
                other => Ok(Moved::RowChanged(other.cloned().map(Box::new))),
            }
        };
        self.release_items(held);
        let answer = answer?;
        self.faults.after("move_recording").await?;
        Ok(answer)
    }

    async fn tags_confirmed(&self, id: &RecordingId, message_id: &str) -> Result<(), CatalogError> {
        self.faults.before("tags_confirmed").await?;
        self.single_item(format!("recording#{id}"))?;
        if let Some(row) = self.lock().recordings.get_mut(id) {
            if row.message_id == message_id {
                row.tags_due = None;
            }
        }
        self.faults.after("tags_confirmed").await
    }

    async fn tags_swept(&self, id: &RecordingId, message_id: &str, since: &str) -> Result<(), CatalogError> {
        self.faults.before("tags_swept").await?;
        self.single_item(format!("recording#{id}"))?;
        if let Some(row) = self.lock().recordings.get_mut(id) {
            let ours = row.message_id == message_id
                && row.tags_due.as_ref().is_some_and(|t| t.since.as_deref() == Some(since));
            if ours {
                match row.tags_due.as_mut() {
                    Some(t) if !t.from_keys.is_empty() => t.since = None,
                    _ => row.tags_due = None,
                }
            }
        }
        self.faults.after("tags_swept").await
    }
}

impl MemoryCatalog {
    pub(super) fn count(state: &mut State, arn: &str, recording_type: &str, bytes: u64, now: &str) {
        let (usage, types) = state.usage.entry(arn.to_string()).or_insert_with(|| {
            (
                KeyUsage {
                    key_arn: arn.to_string(),
                    recordings: 0,
                    bytes: 0,
                    first_used: now.to_string(),
                    last_used: now.to_string(),
                    recording_types: vec![],
                },
                BTreeSet::new(),
            )
        });
        usage.recordings += 1;
        usage.bytes += bytes;
        usage.last_used = now.to_string();
        types.insert(recording_type.to_string());
    }

    pub(super) fn record_now(&self, entry: &RecordingEntry, token: &str, now: &str) -> Result<Recorded, CatalogError> {
        let answer = {
            let mut state = self.lock();
            // The conditions first, as DynamoDB checks every item before
            // writing any: the recording must be new, the claim ours.
            if let Some(existing) = state.recordings.get(&entry.id) {
                Recorded::AlreadyCatalogued(Box::new(existing.clone()))
            } else if state.claims.get(&entry.id).is_none_or(|c| c.token != token) {
                return Err(CatalogError::ClaimLost { id: entry.id.to_string() });
            } else {
                state.recordings.insert(entry.id.clone(), entry.clone());
                for arn in entry.counted_keys() {
                    Self::count(&mut state, arn, &entry.id.recording_type, entry.plaintext_size, now);
                }
                state.claims.remove(&entry.id);
                Recorded::New
            }
        };
        Ok(answer)
    }
}
