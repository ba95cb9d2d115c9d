//! The vault object's life, shared by every service that writes or
//! deletes one: its states and how they change, the size of its parts, and
//! the proof that what is stored decrypts to what was read.
//!
//! Each version of a vault object carries the tag [`STATE_TAG`]:
//! - [`PENDING`]: born so (encrypt-recording, a re-key's new version, a
//!   region move's copy); the catalog does not name it yet. The vault's
//!   lifecycle rule `uncatalogued-writes` expires it, so a write that
//!   stopped half-way leaves nothing behind for ever.
//! - [`CATALOGUED`]: the catalog names it; no lifecycle rule touches it.
//!   Tagged only after the catalog transaction that names it committed
//!   (template.yaml allows this one way only: nothing re-tags a version
//!   `pending`).
//! - [`SUPERSEDED`]: a re-key catalogued a newer version of the recording;
//!   removed by the lifecycle once noncurrent for `SupersededGraceDays`, so
//!   a playback that opened it can finish.
//! - [`MOVED`]: a region move catalogued the recording in another region's
//!   deployment; removed the same way.
//!
//! A version is written only while its recording's claim is held
//! (`ports::catalog::RecordingCatalog::claim`), and the claim ends in the
//! catalog transaction itself, so two writers never catalogue one
//! recording twice.

mod proof;

pub use proof::{DecryptionProof, PlaintextDigest, PlaintextDigester};

/// The tag that says where a vault version stands.
pub const STATE_TAG: &str = "callvault-state";
/// Written, not yet catalogued.
pub const PENDING: &str = "pending";
/// The version the catalog names.
pub const CATALOGUED: &str = "catalogued";
/// The state of a vault version the catalog named before a re-key moved
/// the recording onto a new one: removed by the vault's lifecycle rule
/// after the grace period.
pub const SUPERSEDED: &str = "superseded";

/// The state of a vault version whose recording moved to another region's
/// deployment: removed by the vault's lifecycle rule after the grace period.
pub const MOVED: &str = "moved";

/// After a writer tagged `entry`'s version `catalogued`: the row's
/// `tags_due` mark cleared (none: nothing to do). A failure is logged and
/// left to the tag sweep, which finds the tag done and takes the row out of
/// its index.
pub async fn clear_mark<C: crate::ports::catalog::RecordingCatalog>(
    catalog: &C,
    entry: &crate::recording::RecordingEntry,
) {
    if entry.tags_due.is_none() {
        return;
    }
    if let Err(e) = catalog.tags_confirmed(&entry.id, &entry.message_id).await {
        use crate::errors::OperationError;
        tracing::warn!(recording = %entry.id, code = e.code(), error = %e, "tagged catalogued; the catalog's mark stays for the tag sweep");
    }
}

/// The part size for an object of `size` bytes: `preferred`, or larger
/// when that many parts would pass S3's 10,000 (with room for the format's
/// overhead), in whole MiB.
pub fn part_size_for(size: u64, preferred: usize) -> usize {
    const MIB: u64 = 1024 * 1024;
    let needed = (size / 9_000).div_ceil(MIB) * MIB;
    preferred.max(needed as usize)
}
