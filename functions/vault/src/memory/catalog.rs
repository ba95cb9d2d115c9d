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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use super::Faults;
use crate::ports::catalog::{
    random_usage_shard, BrowseQuery, CatalogError, Claim, DeletionRecord, DeletionRun, DenialCounters, DenialWindow,
    EventClaim, EventClaims, HoldChange, HoldChanged, KeyUsage, KeyUsageCatalog, Marked, Moved, Recorded,
    RecordingBrowser, RecordingCatalog, RecordingListing, RetentionCatalog, KEY_USAGE_SHARDS,
};
use crate::recording::{Deleting, RecordingEntry, RecordingId};

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
}

impl MemoryCatalog {
    fn count(state: &mut State, arn: &str, recording_type: &str, bytes: u64, now: &str) {
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

    fn record_now(&self, entry: &RecordingEntry, token: &str, now: &str) -> Result<Recorded, CatalogError> {
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

impl RecordingListing for MemoryCatalog {
    async fn recordings_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        self.faults.before("recordings_page").await?;
        let all = self.recordings();
        let page: Vec<RecordingEntry> = all
            .into_iter()
            .filter(|e| after.as_ref().is_none_or(|a| e.id.to_string() > *a))
            .take(limit.max(1) + 1)
            .collect();
        let more = page.len() > limit.max(1);
        let page: Vec<_> = page.into_iter().take(limit.max(1)).collect();
        let next = if more { page.last().map(|e| e.id.to_string()) } else { None };
        Ok((page, next))
    }
}

impl RecordingBrowser for MemoryCatalog {
    async fn browse(&self, query: &BrowseQuery) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        self.faults.before("browse").await?;
        // Newest first; the cursor is the last row's (encrypted_at, id).
        let position = |e: &RecordingEntry| format!("{}\u{0}{}", e.encrypted_at, e.id);
        let mut rows: Vec<RecordingEntry> = self
            .recordings()
            .into_iter()
            .filter(|e| e.id.recording_type == query.recording_type)
            .filter(|e| query.from.as_deref().is_none_or(|f| e.encrypted_at.as_str() >= f))
            .filter(|e| query.to.as_deref().is_none_or(|t| e.encrypted_at.as_str() <= t))
            .filter(|e| query.after.as_ref().is_none_or(|a| position(e) < *a))
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse(position(e)));
        let limit = query.limit.max(1);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(position) } else { None };
        Ok((rows, next))
    }
}

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

impl RetentionCatalog for MemoryCatalog {
    async fn due(
        &self,
        recording_type: &str,
        until: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordingEntry>, Option<String>), CatalogError> {
        self.faults.before("due").await?;
        let mut due: Vec<(String, RecordingEntry)> = self
            .lock()
            .recordings
            .values()
            .filter(|e| e.id.recording_type == recording_type)
            .filter(|e| e.retain_until.as_deref().is_some_and(|u| u <= until))
            .filter_map(|e| e.retain_until.as_ref().map(|u| (format!("{u}|{}", e.id), e.clone())))
            .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        let limit = limit.max(1);
        let next = (due.len() > limit).then(|| due[limit - 1].0.clone());
        Ok((due.into_iter().take(limit).map(|(_, e)| e).collect(), next))
    }

    async fn stamp_retention(
        &self,
        entry: &RecordingEntry,
        retain_until: Option<&str>,
        retention_days: Option<u32>,
    ) -> Result<bool, CatalogError> {
        self.faults.before("stamp_retention").await?;
        let done = {
            let mut state = self.lock();
            match state.recordings.get_mut(&entry.id) {
                Some(row) if row.message_id == entry.message_id && row.moved_to.is_none() && row.deleting.is_none() => {
                    row.retain_until = retain_until.map(str::to_string);
                    row.retention_days = retention_days;
                    true
                }
                _ => false,
            }
        };
        self.faults.after("stamp_retention").await?;
        Ok(done)
    }

    async fn stamped_policy(&self) -> Result<Option<(String, Option<String>)>, CatalogError> {
        self.faults.before("stamped_policy").await?;
        Ok(self.lock().stamped.clone())
    }

    async fn save_stamped_policy(&self, policy: &str, cursor: Option<&str>) -> Result<(), CatalogError> {
        self.faults.before("save_stamped_policy").await?;
        self.lock().stamped = Some((policy.to_string(), cursor.map(str::to_string)));
        self.faults.after("save_stamped_policy").await
    }

    async fn mark_deleting(
        &self,
        entry: &RecordingEntry,
        deleting: &Deleting,
        now: u64,
    ) -> Result<Marked, CatalogError> {
        self.faults.before("mark_deleting").await?;
        self.single_item(format!("recording#{}", entry.id))?;
        let answer = {
            let mut state = self.lock();
            let claim = state.claims.get(&entry.id).filter(|c| c.until >= now).map(|c| c.until);
            match state.recordings.get_mut(&entry.id) {
                Some(row)
                    if row.message_id == entry.message_id
                        && row.moved_to.is_none()
                        && row.deleting.is_none()
                        && row.retain_until == entry.retain_until =>
                {
                    if row.hold.is_some() {
                        Marked::Held
                    } else if let Some(until) = claim {
                        Marked::Claimed { until }
                    } else {
                        row.deleting = Some(deleting.clone());
                        Marked::Marked
                    }
                }
                other => Marked::RowChanged(other.map(|r| Box::new(r.clone()))),
            }
        };
        self.faults.after("mark_deleting").await?;
        Ok(answer)
    }

    async fn finish_deletion(&self, entry: &RecordingEntry, record: &DeletionRecord) -> Result<bool, CatalogError> {
        self.faults.before("finish_deletion").await?;
        let held = self.hold_items(&entry.id, &entry.counted_keys().iter().collect::<Vec<_>>()).await?;
        let answer = {
            let mut state = self.lock();
            match state.recordings.get(&entry.id) {
                Some(row) if row.deleting.as_ref().is_some_and(|d| d.run == record.marked_by) => {
                    let row = state.recordings.remove(&entry.id).expect("present");
                    for arn in row.counted_keys() {
                        if let Some((usage, _)) = state.usage.get_mut(arn) {
                            usage.recordings = usage.recordings.saturating_sub(1);
                            usage.bytes = usage.bytes.saturating_sub(row.plaintext_size);
                        }
                    }
                    state
                        .deletions
                        .entry(record.run.clone())
                        .or_default()
                        .insert(record.id.to_string(), record.clone());
                    Ok(true)
                }
                None => Ok(false),
                Some(_) => Err(CatalogError::Refused {
                    detail: format!("{} is not being deleted by run {}", entry.id, record.marked_by),
                }),
            }
        };
        self.release_items(held);
        let answer = answer?;
        self.faults.after("finish_deletion").await?;
        Ok(answer)
    }

    async fn open_run(&self, run: &DeletionRun) -> Result<(), CatalogError> {
        self.faults.before("open_run").await?;
        self.lock().runs.insert(run.run.clone(), run.clone());
        self.faults.after("open_run").await
    }

    async fn open_runs(&self) -> Result<Vec<DeletionRun>, CatalogError> {
        self.faults.before("open_runs").await?;
        Ok(self.lock().runs.values().cloned().collect())
    }

    async fn run_deletions(&self, run: &str) -> Result<Vec<DeletionRecord>, CatalogError> {
        self.faults.before("run_deletions").await?;
        Ok(self.lock().deletions.get(run).map(|d| d.values().cloned().collect()).unwrap_or_default())
    }

    async fn close_run(&self, run: &str) -> Result<(), CatalogError> {
        self.faults.before("close_run").await?;
        {
            let mut state = self.lock();
            state.runs.remove(run);
            state.deletions.remove(run);
        }
        self.faults.after("close_run").await
    }

    async fn set_hold(&self, id: &RecordingId, change: &HoldChange) -> Result<HoldChanged, CatalogError> {
        self.faults.before("set_hold").await?;
        self.single_item(format!("recording#{id}"))?;
        let answer = {
            let mut state = self.lock();
            match state.recordings.get_mut(id) {
                None => HoldChanged::NotFound,
                Some(row) if row.deleting.is_some() => HoldChanged::Deleting(Box::new(row.clone())),
                Some(row) => match change {
                    HoldChange::Set(hold) => {
                        row.hold = Some(hold.clone());
                        HoldChanged::Changed(Box::new(row.clone()))
                    }
                    HoldChange::Release { held, release } if row.hold.as_ref() == Some(held) => {
                        row.hold = None;
                        row.released_hold =
                            Some(crate::recording::ReleasedHold { hold: held.clone(), release: release.clone() });
                        HoldChanged::Changed(Box::new(row.clone()))
                    }
                    HoldChange::Release { .. } => HoldChanged::NotHeld(Box::new(row.clone())),
                },
            }
        };
        self.faults.after("set_hold").await?;
        Ok(answer)
    }
}
