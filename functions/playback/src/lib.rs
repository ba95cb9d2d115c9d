//! # playback
//!
//! The Lambda behind a Function URL (IAM auth, response streaming) that
//! supervisors' players and download tools call: `GET`/`HEAD
//! /recordings/<type>/<id>` with an optional `Range`, and
//! `GET /recordings/<type>/<id>/info`. The work itself is
//! [`vault::playback`]; this crate knows HTTP and the configuration.

pub mod audit;
pub mod body;
pub mod config;
pub mod handler;
pub use inbound::range;
pub mod route;

pub use audit::{AuditLog, AuditRecord, StdoutAudit};
pub use body::PlaybackBody;
pub use config::Config;
pub use handler::Handler;

/// Every AWS call this function makes, as IAM actions: what its role in
/// template.yaml must grant, no more (`tests/tests/iam.rs`). Reads only.
pub const AWS_CALLS: &[&[&str]] = &[&[
    "dynamodb:GetItem",    // the recording's catalog row
    "s3:GetObject",        // ranged reads of the header and frames
    "s3:GetObjectVersion", // the catalogued version
    "kms:Decrypt",         // one per message, then the cache
]];
