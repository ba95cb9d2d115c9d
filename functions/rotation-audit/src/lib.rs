//! # rotation-audit
//!
//! The Lambda an EventBridge schedule runs daily: every key that protects
//! recordings or is configured for new ones, judged against the rotation
//! policy ([`vault::audit`]); a JSON evidence report in the evidence bucket
//! (never overwritten), per-key compliance metrics, and one SNS summary when
//! any key is not compliant.

pub mod config;
pub mod handler;

pub use config::Config;
pub use handler::{Handler, HandlerError};

/// Every AWS call this function makes, as IAM actions: what its role in
/// template.yaml must grant, no more (`tests/tests/iam.rs`).
pub const AWS_CALLS: &[&[&str]] = &[&[
    "dynamodb:Query", // the keys that protect recordings
    "kms:DescribeKey",
    "kms:GetKeyRotationStatus",
    "kms:ListKeyRotations",
    "kms:GenerateDataKey", // the usability test, under the org's context
    "kms:GetPublicKey",    // the usability test of an RSA key
    "s3:PutObject",        // the evidence report, never overwritten
    "sns:Publish",         // the summary when a key is not compliant
]];
