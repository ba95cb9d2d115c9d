//! # retention
//!
//! The Lambda an EventBridge schedule runs daily ([`vault::retention`]):
//! it stamps each recording's `retain_until` under the configured policy,
//! deletes the recordings whose time has come (never one under legal hold,
//! never one a re-key holds, never past Object Lock), keeps the catalog's
//! key usage true, and writes an evidence report per run. The operator
//! command invokes it for the rest (`callvault hold`, `callvault erase`),
//! so that only this function's role may delete recordings and write
//! their evidence.

pub mod config;
pub mod handler;

pub use config::Config;
pub use handler::{Handler, Request};

/// Every AWS call this function makes, as IAM actions: what its role in
/// template.yaml must grant, no more (`tests/tests/iam.rs`).
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
    "s3:BypassGovernanceRetention", // an erasure told to bypass governance-mode retention
    "s3:GetObjectRetention",        // Object Lock still protecting a version
    "s3:GetObjectLegalHold",
    "s3:PutObjectLegalHold", // legal holds on the versions
    "s3:PutObject",          // the evidence reports, never overwritten
]];
