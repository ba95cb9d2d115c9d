//! # key-guardian
//!
//! The Lambda behind EventBridge rules for KMS: CloudTrail API calls that
//! disable, schedule for deletion, re-enable or reconfigure a key, denied
//! cryptographic calls, and KMS's own deletion and rotation events. For a key
//! that protects recordings (the catalog) or is configured for new ones
//! (`RECORDING_KEYS`), it publishes an alert a person can act on, counts
//! metrics, and, when `PROTECT_KEYS_IN_USE=true`, turns a scheduled deletion
//! into a disabled key. A 5-minute schedule sends the summaries of denied
//! calls, counted per `DENIAL_WINDOW_SECONDS` window. The domain is
//! [`vault::guardian`].

pub mod config;
pub mod handler;

pub use config::Config;
pub use handler::{Handler, HandlerError};

/// Every AWS call this function makes, as IAM actions: what its role in
/// template.yaml must grant, no more (`tests/tests/iam.rs`).
/// `kms:CancelKeyDeletion` only when `PROTECT_KEYS_IN_USE=true`, and the
/// template grants it only then.
pub const AWS_CALLS: &[&[&str]] = &[&[
    "dynamodb:GetItem",    // the key's usage; an event claim already taken
    "dynamodb:UpdateItem", // event claims: one alert per event id; denied-call counters
    "dynamodb:Query",      // the closed denied-call windows (the scheduled flush)
    "dynamodb:DeleteItem", // a window cleared once summarised
    "kms:DescribeKey",
    "kms:ListAliases",
    "kms:CancelKeyDeletion",
    "sns:Publish",
]];
