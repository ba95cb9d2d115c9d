//! Which recordings a job moves.

use crate::ports::catalog::{CatalogError, RecordingListing};
use crate::recording::RecordingEntry;

/// Which recordings a job moves: those under `from_key` (when given) and of
/// one of `types` (when any are given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub from_key: Option<String>,
    pub types: Vec<String>,
}

impl Selection {
    /// Whether the job moves `entry`.
    pub fn matches(&self, entry: &RecordingEntry) -> bool {
        entry.moved_to.is_none()
            // A row moved off the key whose tags are still unfinished too:
            // its task finishes them.
            && self.from_key.as_ref().is_none_or(|k| entry.is_under(k) || entry.was_under(k))
            && (self.types.is_empty() || self.types.contains(&entry.id.recording_type))
    }
}

/// Calls `each` for every catalogued recording the selection matches, a
/// catalog page at a time (constant memory however many there are).
pub async fn select<L: RecordingListing>(
    listing: &L,
    selection: &Selection,
    mut each: impl FnMut(&RecordingEntry),
) -> Result<(), CatalogError> {
    let mut after = None;
    loop {
        let (page, next) = listing.recordings_page(after, 1000).await?;
        page.iter().filter(|e| selection.matches(e)).for_each(&mut each);
        match next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}
