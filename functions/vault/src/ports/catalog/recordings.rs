//! Recordings, their claims, and the transactions that catalogue and move one.

use std::future::Future;

use super::CatalogError;
use crate::recording::{RecordingEntry, RecordingId};

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

    /// Clears the row's [`TagsDue`](crate::recording::TagsDue) mark once its
    /// version is confirmed tagged `catalogued`, only while the row still
    /// names `message_id` (a later write's own mark stays). A row with no
    /// mark, or naming another message, or gone: nothing to do, `Ok`.
    fn tags_confirmed(
        &self,
        id: &RecordingId,
        message_id: &str,
    ) -> impl Future<Output = Result<(), CatalogError>> + Send;

    /// The tag sweep's part: takes the row out of the sweep's index (its
    /// version is tagged now), only while its mark is still the one set at
    /// `since` for `message_id`. The mark's `from_keys` stay, so that a
    /// re-key off those keys still selects the row and supersedes the
    /// version it replaced; a mark without them goes whole. Nothing to do
    /// is `Ok`.
    fn tags_swept(
        &self,
        id: &RecordingId,
        message_id: &str,
        since: &str,
    ) -> impl Future<Output = Result<(), CatalogError>> + Send;
}
