//! The catalog ports: what callvault remembers. [`RecordingCatalog`]: one
//! entry per recording, written once with the usage of its keys, and a
//! short-lived claim per recording being encrypted; [`KeyUsageCatalog`]: how
//! much each key protects; [`EventClaims`]: which events were handled;
//! [`DenialCounters`]: denied calls per window, for the guardian's summaries.
//!
//! The AWS adapter keeps them in one DynamoDB table:
//!
//! One table, partition key `pk` and sort key `sk` (both strings):
//! - a recording: `pk = "recording#<type>/<id>"`, `sk = "recording"`;
//! - its claim while a function encrypts it: same `pk`, `sk = "claim"`;
//! - a key's usage: `pk = "key"`, `sk = "<key ARN>#<shard, 2 digits>"`,
//!   one counter per shard ([`KEY_USAGE_SHARDS`]) summed when read, so that
//!   every key the catalog knows is one Query away ("what breaks if this key
//!   goes") and concurrent transactions (a re-key job moving thousands of
//!   recordings off one key) rarely touch the same item. An item whose `sk`
//!   is the bare ARN (written before shards) is one more shard;
//! - an event already handled: `pk = "event#<source>/<id>"`, `sk = "event"`,
//!   with `expires_at` (Unix seconds, the table's TTL attribute), so that a
//!   duplicate delivery is recognised;
//! - a window of denied calls: `pk = "denied"`,
//!   `sk = "<window start, 12 digits>|<key ARN>|<call>|<principal>"`, with
//!   `count` and `expires_at`, so that the closed windows are one Query.
//!
//! A recording is written once, in one transaction with the usage of every
//! key that wraps it, so duplicate events can neither write it twice nor
//! count it twice. A re-key replaces it in one transaction too, only while
//! it still names the message that was re-encrypted, moving its usage from
//! the old keys to the new ([`RecordingCatalog::move_recording`]).

use std::future::Future;

use crate::errors::{ErrorKind, OperationError};
use crate::recording::{RecordingEntry, RecordingId};

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

/// The outcome of [`RecordingCatalog::claim`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This caller may encrypt the recording; pass the token on.
    Acquired { token: String },
    /// Another invocation holds an unexpired claim.
    HeldElsewhere { source_etag: String, until: u64 },
}

/// The outcome of [`RecordingCatalog::record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Written, with the usage of every wrapping key.
    New,
    /// The recording was already in the catalog; nothing was written.
    AlreadyCatalogued(Box<RecordingEntry>),
}

/// The outcome of [`RecordingCatalog::move_recording`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Moved {
    /// The row names the new message; the usage moved with it.
    Moved,
    /// The row no longer names the old message (another move, or it is
    /// gone): nothing was written. What the row holds now, if anything.
    RowChanged(Option<Box<RecordingEntry>>),
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

/// The outcome of [`EventClaims::claim_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventClaim {
    /// Handle it; `recorded` is what a failed earlier attempt recorded.
    First { recorded: Option<String> },
    /// Another invocation is handling it now.
    InProgress,
    /// It was handled.
    Done,
}

/// Why a catalog call failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogError {
    #[error("the catalog table {table} does not exist: check CATALOG_TABLE")]
    TableMissing { table: String },
    #[error("access to the catalog table {table} was denied ({detail}): the function's role must allow it")]
    AccessDenied { table: String, detail: String },
    #[error("the catalog is unavailable ({detail}); retry later")]
    Unavailable { detail: String },
    #[error("the claim on {id} was lost to another invocation while encrypting; retry")]
    ClaimLost { id: String },
    #[error("the catalog refused the request: {detail}")]
    Refused { detail: String },
    #[error("the catalog item {item} is malformed: {detail}")]
    Malformed { item: String, detail: String },
    /// A transaction touched an item another transaction was writing.
    #[error("the catalog transaction collided with another ({detail}); retry")]
    Conflict { detail: String },
}

impl OperationError for CatalogError {
    fn code(&self) -> &'static str {
        match self {
            Self::TableMissing { .. } => "catalog_missing",
            Self::AccessDenied { .. } => "access_denied",
            Self::Unavailable { .. } => "catalog_unavailable",
            Self::ClaimLost { .. } => "claim_lost",
            Self::Refused { .. } => "catalog_refused",
            Self::Malformed { .. } => "catalog_malformed",
            Self::Conflict { .. } => "catalog_conflict",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Unavailable { .. } | Self::ClaimLost { .. } | Self::Conflict { .. } => ErrorKind::Transient,
            _ => ErrorKind::Deployment,
        }
    }
}

/// Recordings, their claims, and the transaction that catalogues one.
pub trait RecordingCatalog: Send + Sync {
    /// The recording's entry, if it has been catalogued (strongly consistent).
    fn recording(&self, id: &RecordingId) -> impl Future<Output = Result<Option<RecordingEntry>, CatalogError>> + Send;

    /// Claims the recording for `lease_secs` seconds from `now` (Unix
    /// seconds), unless another invocation holds an unexpired claim. A claim
    /// made under the same `request_id` is taken over (Lambda retries an
    /// event under its request id, so this is a retry of a holder that
    /// died); any other expires.
    fn claim(
        &self,
        id: &RecordingId,
        source_etag: &str,
        request_id: &str,
        now: u64,
        lease_secs: u64,
    ) -> impl Future<Output = Result<Claim, CatalogError>> + Send;

    /// Gives a claim up (after a failure), if it is still ours.
    fn release(&self, id: &RecordingId, token: &str) -> impl Future<Output = Result<(), CatalogError>> + Send;

    /// All or nothing: writes the recording (unless it exists:
    /// `AlreadyCatalogued`), adds it to the usage of each of its wrapping
    /// keys, and ends the claim `token` (`ClaimLost` when it is not ours).
    fn record(
        &self,
        entry: &RecordingEntry,
        token: &str,
        now: &str,
    ) -> impl Future<Output = Result<Recorded, CatalogError>> + Send;

    /// All or nothing: replaces the row of `from` with `to` only while the
    /// row still names `from`'s message and has not moved away
    /// (`RowChanged` otherwise), takes the recording off the usage of each
    /// key `from` counts and `to` does not, adds it to each key `to` counts
    /// and `from` did not ([`RecordingEntry::counted_keys`]: a `to` that
    /// moved to another region is counted by none), and ends the claim
    /// `token` (`ClaimLost` when it is not ours). Concurrent moves may
    /// collide (`Conflict`, retryable).
    fn move_recording(
        &self,
        from: &RecordingEntry,
        to: &RecordingEntry,
        token: &str,
        now: &str,
    ) -> impl Future<Output = Result<Moved, CatalogError>> + Send;
}

/// Every catalogued recording, a page at a time: what a re-key moves
/// (the recordings under a key or of a type). A full read of the
/// recordings, for operator commands, never for a request path.
pub trait RecordingListing: Send + Sync {
    /// Up to about `limit` recordings after the cursor `after` (`None`: from
    /// the start), and the cursor of the next page (`None`: the last).
    fn recordings_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<RecordingEntry>, Option<String>), CatalogError>> + Send;
}

/// How much each key protects.
pub trait KeyUsageCatalog: Send + Sync {
    /// The usage of one key, if the catalog knows it.
    fn key_usage(&self, key_arn: &str) -> impl Future<Output = Result<Option<KeyUsage>, CatalogError>> + Send;
    /// Every key the catalog knows, with its usage.
    fn key_usages(&self) -> impl Future<Output = Result<Vec<KeyUsage>, CatalogError>> + Send;
}

/// One window of denied calls: who was denied which call on which key,
/// in the window that opened at `window_start` (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DenialWindow {
    pub window_start: u64,
    pub key_arn: String,
    pub operation: String,
    pub principal: String,
}

/// Denied calls counted in the catalog, per key, principal and call, so
/// that every container of the guardian counts into the same window and a
/// flood of them makes one summary, not one alert each.
pub trait DenialCounters: Send + Sync {
    /// Counts one denied call in its window (forgotten after `expires_at`);
    /// returns the window's count with this one (1: the first).
    fn count_denial(
        &self,
        window: &DenialWindow,
        expires_at: u64,
    ) -> impl Future<Output = Result<u64, CatalogError>> + Send;

    /// Windows that opened before `before` (Unix seconds), oldest first, at
    /// most `limit`, with their counts.
    fn closed_denials(
        &self,
        before: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(DenialWindow, u64)>, CatalogError>> + Send;

    /// Removes a window's counter: its count when this call removed it,
    /// `None` when it was already gone.
    fn take_denials(&self, window: &DenialWindow) -> impl Future<Output = Result<Option<u64>, CatalogError>> + Send;
}

/// Events handled once however often they are delivered.
pub trait EventClaims: Send + Sync {
    /// Claims the event `source`/`id` for `lease_secs` from `now` (Unix
    /// seconds): the first delivery, or a retry after a holder's lease
    /// expired, gets [`EventClaim::First`] (with what an earlier attempt
    /// recorded); a delivery while another holds it, `InProgress`; after it
    /// was handled, `Done`. The claim is forgotten after `expires_at`.
    fn claim_event(
        &self,
        source: &str,
        id: &str,
        now: u64,
        lease_secs: u64,
        expires_at: u64,
    ) -> impl Future<Output = Result<EventClaim, CatalogError>> + Send;

    /// Marks the event handled: later deliveries are `Done`.
    fn event_done(&self, source: &str, id: &str) -> impl Future<Output = Result<(), CatalogError>> + Send;

    /// Releases the claim of an attempt that failed, so that its retry is
    /// `First` at once, keeping `recorded` (what the attempt already did,
    /// for the retry to report rather than redo).
    fn release_event(
        &self,
        source: &str,
        id: &str,
        recorded: Option<&str>,
    ) -> impl Future<Output = Result<(), CatalogError>> + Send;
}
