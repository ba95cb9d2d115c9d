//! The twin of the catalog ports: conditional claims that expire, a
//! recording written once in an all-or-nothing transaction with its keys'
//! usage and the end of its claim (cancelled, like DynamoDB's, with the
//! reason of the condition that failed), a move that replaces it only while
//! it names the old message, and event claims.
//!
//! The local AWS never reports a transaction conflict; this twin can
//! ([`MemoryCatalog::contend`]): a transaction then holds its items for a
//! while before it commits, and another transaction touching any of them
//! meanwhile is cancelled with `Conflict`, as DynamoDB cancels it. The
//! usage items are the sharded ones the DynamoDB adapter writes, so a test
//! sees how often concurrent moves would collide.

//!
//! One file per port, as the port and the DynamoDB adapter are split; the
//! state they share, and the contention, are here.

mod browse;
mod claims;
mod denials;
mod listing;
mod recordings;
mod retention;
mod usage;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use super::Faults;
use crate::ports::catalog::{
    random_usage_shard, CatalogError, DeletionRecord, DeletionRun, DenialWindow, KeyUsage, KEY_USAGE_SHARDS,
};
use crate::recording::{RecordingEntry, RecordingId};

#[derive(Clone, Debug)]
struct ClaimItem {
    token: String,
    source_etag: String,
    until: u64,
    request_id: String,
}

#[derive(Clone, Debug)]
struct EventItem {
    done: bool,
    lease_until: u64,
    recorded: Option<String>,
}

#[derive(Default)]
struct State {
    recordings: HashMap<RecordingId, RecordingEntry>,
    claims: HashMap<RecordingId, ClaimItem>,
    usage: BTreeMap<String, (KeyUsage, BTreeSet<String>)>,
    events: HashMap<(String, String), EventItem>,
    denials: BTreeMap<DenialWindow, u64>,
    tokens: u64,
    runs: BTreeMap<String, DeletionRun>,
    /// Evidence of finished deletions, per run, by recording.
    deletions: BTreeMap<String, BTreeMap<String, DeletionRecord>>,
    stamped: Option<(String, Option<String>)>,
    /// Items of the transactions in flight (under [`MemoryCatalog::contend`]).
    in_flight: BTreeSet<String>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Contention {
    hold: std::time::Duration,
    /// Usage shards per key: the adapter's [`KEY_USAGE_SHARDS`], or fewer
    /// to show what one counter per key would do.
    shards: u8,
}

/// An in-memory catalog.
#[derive(Clone, Default)]
pub struct MemoryCatalog {
    state: Arc<Mutex<State>>,
    /// Planned faults, by operation: `recording`, `claim`, `release`,
    /// `record`, `move_recording`, `recordings_page`, `key_usage`, `key_usages`, `claim_event`, `event_done`,
    /// `release_event`, `count_denial`, `closed_denials`, `take_denials`, `due`, `stamp_retention`,
    /// `stamped_policy`, `save_stamped_policy`, `mark_deleting`, `finish_deletion`, `open_run`,
    /// `open_runs`, `run_deletions`, `close_run`, `set_hold`.
    pub faults: Arc<Faults<CatalogError>>,
    contention: Arc<Mutex<Option<Contention>>>,
    conflicts: Arc<std::sync::atomic::AtomicU64>,
}

impl MemoryCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every catalogued recording.
    pub fn recordings(&self) -> Vec<RecordingEntry> {
        let mut all: Vec<_> = self.lock().recordings.values().cloned().collect();
        all.sort_by_key(|e| e.id.to_string());
        all
    }

    /// Every key's usage, now.
    pub fn key_usages_now(&self) -> Vec<KeyUsage> {
        self.lock().usage.values().map(Self::usage_of).collect()
    }

    /// From now on each transaction holds its items for `hold` before it
    /// commits, and one that touches an item another holds is cancelled
    /// (`Conflict`); key usage is spread over `shards` items per key.
    pub fn contend(&self, hold: std::time::Duration, shards: u8) {
        *self.contention.lock().unwrap_or_else(|p| p.into_inner()) = Some(Contention { hold, shards: shards.max(1) });
    }

    /// Transactions cancelled by a conflict so far.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Under contention: claims the transaction's items (the recording and
    /// one usage shard per key) for its hold, or fails with `Conflict`.
    async fn hold_items(&self, id: &RecordingId, keys: &[&String]) -> Result<Option<Vec<String>>, CatalogError> {
        let Some(contention) = *self.contention.lock().unwrap_or_else(|p| p.into_inner()) else { return Ok(None) };
        // The recording's row and its claim (both in every transaction).
        let mut items = vec![format!("recording#{id}"), format!("claim#{id}")];
        for key in keys {
            let shard = if contention.shards >= KEY_USAGE_SHARDS {
                random_usage_shard()
            } else {
                random_usage_shard() % contention.shards
            };
            items.push(format!("key#{key}#{shard:02}"));
        }
        {
            let mut state = self.lock();
            if items.iter().any(|i| state.in_flight.contains(i)) {
                self.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(CatalogError::Conflict { detail: "TransactionConflict".into() });
            }
            state.in_flight.extend(items.iter().cloned());
        }
        tokio::time::sleep(contention.hold).await;
        Ok(Some(items))
    }

    fn release_items(&self, items: Option<Vec<String>>) {
        if let Some(items) = items {
            let mut state = self.lock();
            for i in items {
                state.in_flight.remove(&i);
            }
        }
    }

    /// Under contention, a single-item call on an item a transaction holds
    /// is cancelled, as DynamoDB cancels it (`TransactionConflictException`).
    fn single_item(&self, item: String) -> Result<(), CatalogError> {
        if self.contention.lock().unwrap_or_else(|p| p.into_inner()).is_some() && self.lock().in_flight.contains(&item)
        {
            self.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(CatalogError::Conflict { detail: "TransactionConflictException".into() });
        }
        Ok(())
    }

    /// Changes a row in place (a test's way to write what an older
    /// version of callvault wrote, or to set up a state).
    pub fn edit(&self, id: &RecordingId, f: impl FnOnce(&mut RecordingEntry)) {
        if let Some(e) = self.lock().recordings.get_mut(id) {
            f(e);
        }
    }

    /// Removes a row (a test's way to stand for a deletion done elsewhere).
    pub fn remove(&self, id: &RecordingId) {
        self.lock().recordings.remove(id);
    }

    /// Whether the recording is claimed now.
    pub fn is_claimed(&self, id: &RecordingId) -> bool {
        self.lock().claims.contains_key(id)
    }

    /// Adds usage to a key as if `recordings` recordings of `recording_type`
    /// were catalogued under it.
    pub fn add_usage(&self, key_arn: &str, recording_type: &str, recordings: u64, bytes: u64) {
        let mut state = self.lock();
        let (usage, types) = state.usage.entry(key_arn.to_string()).or_insert_with(|| {
            (
                KeyUsage {
                    key_arn: key_arn.to_string(),
                    recordings: 0,
                    bytes: 0,
                    first_used: "2026-01-01T00:00:00Z".into(),
                    last_used: String::new(),
                    recording_types: vec![],
                },
                BTreeSet::new(),
            )
        });
        usage.recordings += recordings;
        usage.bytes += bytes;
        usage.last_used = "2026-11-24T08:00:00Z".into();
        types.insert(recording_type.to_string());
    }

    fn usage_of(entry: &(KeyUsage, BTreeSet<String>)) -> KeyUsage {
        KeyUsage { recording_types: entry.1.iter().cloned().collect(), ..entry.0.clone() }
    }
}
