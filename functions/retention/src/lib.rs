//! # retention
//!
//! The Lambda an EventBridge schedule runs daily ([`vault::retention`]):
//! it stamps each recording's `retain_until` under the configured policy,
//! deletes the recordings whose time has come (never one under legal hold,
//! never one a re-key holds, never past Object Lock), keeps the catalog's
//! key usage true, and writes an evidence report per run. The same binary
//! serves each operator's duty as a function of its own behind an
//! IAM-authenticated Function URL (`RETENTION_DUTY`: `callvault hold`,
//! `callvault erase`, `callvault erase --bypass-governance-retention`), so
//! that these functions' roles alone may delete recordings and write their
//! evidence, and IAM keeps the duties apart.

pub mod config;
pub mod handler;

pub use config::{Config, Duty};
pub use handler::{Handler, Request};

/// Every AWS call this function makes, as IAM actions: what its role in
/// template.yaml must grant, no more (`tests/tests/iam.rs`).
/// The scheduled run's; each duty's function has its own list below.
pub const AWS_CALLS: &[&[&str]] = &[&[
    "dynamodb:GetItem",             // a recording, the stamped policy
    "dynamodb:PutItem",             // runs, the stamped policy, evidence records
    "dynamodb:UpdateItem",          // stamps, marks, holds, usage
    "dynamodb:DeleteItem",          // a deleted recording's row, closed runs
    "dynamodb:ConditionCheckItem",  // no re-key holds the recording
    "dynamodb:Query",               // the retention index, runs, evidence records
    "dynamodb:Scan",                // the stamping pass (rows written before a policy)
    "s3:ListBucketVersions",        // every version of a recording
    "s3:DeleteObjectVersion",       // each version, for good
    "s3:BypassGovernanceRetention", // finishing an erasure past governance retention it was asked for
    "s3:GetObjectRetention",        // Object Lock still protecting a version
    "s3:GetObjectLegalHold",
    "s3:PutObject", // the evidence reports, never overwritten
]];

/// The calls of the `hold` duty's function: a row's hold, and S3's legal
/// hold on each of its versions. Nothing that deletes.
pub const HOLD_AWS_CALLS: &[&[&str]] = &[&[
    "dynamodb:GetItem",      // the row
    "dynamodb:UpdateItem",   // its hold, set or released (conditional)
    "s3:ListBucketVersions", // the recording's versions
    "s3:PutObjectLegalHold", // S3's legal hold on each, on or off
]];

/// The calls of the `erase` duty's function: one recording's versions, row
/// and usage, with its erasure evidence. Never past an Object Lock date.
pub const ERASE_AWS_CALLS: &[&[&str]] = &[&[
    "dynamodb:GetItem",            // the row, a re-key's claim
    "dynamodb:PutItem",            // the erasure's run, its evidence record
    "dynamodb:UpdateItem",         // the deletion mark, the key's usage
    "dynamodb:DeleteItem",         // the row, the closed run
    "dynamodb:ConditionCheckItem", // no re-key holds the recording
    "dynamodb:Query",              // open runs, their evidence records
    "s3:ListBucketVersions",       // every version of the recording
    "s3:GetObjectRetention",       // Object Lock still protecting a version
    "s3:GetObjectLegalHold",
    "s3:DeleteObjectVersion", // each version, for good
    "s3:PutObject",           // the erasure's evidence report
]];

/// The calls of the `erase-past-governance` duty's function: the erase
/// duty's, and deleting past a governance-mode retention.
pub const ERASE_PAST_GOVERNANCE_AWS_CALLS: &[&[&str]] = &[ERASE_AWS_CALLS[0], &["s3:BypassGovernanceRetention"]];
