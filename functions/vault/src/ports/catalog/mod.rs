//! The catalog ports: what callvault remembers, one trait per capability,
//! one file each (the DynamoDB adapter, `aws::catalog`, and the twin,
//! `memory::catalog`, are split the same way):
//! - [`RecordingCatalog`] (`recordings`): one entry per recording, written
//!   once with the usage of its keys, and a short-lived claim per recording
//!   being encrypted or moved;
//! - [`RecordingListing`] (`listing`): every recording, a page at a time,
//!   for operator commands;
//! - [`RecordingBrowser`] (`browse`): a type's recordings by date, for the
//!   player;
//! - [`KeyUsageCatalog`] (`usage`): how much each key protects;
//! - [`EventClaims`] (`claims`): which events were handled;
//! - [`DenialCounters`] (`denials`): denied calls per window, for the
//!   guardian's summaries;
//! - [`RetentionCatalog`] (`retention`): what is due, deletion runs and
//!   their evidence, legal holds.
//!
//! A recording is written once, in one transaction with the usage of every
//! key that wraps it, so duplicate events can neither write it twice nor
//! count it twice. A re-key replaces it in one transaction too, only while
//! it still names the message that was re-encrypted, moving its usage from
//! the old keys to the new ([`RecordingCatalog::move_recording`]). How the
//! AWS adapter lays this out in one table is written beside its item codec.

mod browse;
mod claims;
mod denials;
mod listing;
mod recordings;
mod retention;
mod usage;

pub use browse::{BrowseQuery, RecordingBrowser};
pub use claims::{EventClaim, EventClaims};
pub use denials::{DenialCounters, DenialWindow};
pub use listing::RecordingListing;
pub use recordings::{Claim, Moved, Recorded, RecordingCatalog};
pub use retention::{DeletionRecord, DeletionRun, HoldChange, HoldChanged, Marked, RetentionCatalog};
pub use usage::{random_usage_shard, KeyUsage, KeyUsageCatalog, KEY_USAGE_SHARDS};

use crate::errors::{ErrorKind, OperationError};

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
