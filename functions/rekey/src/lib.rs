//! # rekey
//!
//! The Lambda S3 Batch Operations invokes once per vault object of a
//! re-key job (invocation schema 2.0: the job's `userArguments` name the
//! target keys). Each task re-keys one recording ([`vault::rekey`]) and
//! answers `Succeeded`, `TemporaryFailure` (the job retries it) or
//! `PermanentFailure` with a stable code first in `resultString`, which the
//! job's completion report keeps. `callvault rekey --local` runs the same
//! [`Handler`] on the operator's machine.

pub mod config;
pub mod handler;

pub use config::Config;
pub use handler::Handler;

/// Every AWS call this function makes, as IAM actions: what its role in
/// template.yaml must grant, no more (`tests/tests/iam.rs`). Never a delete
/// on the vault: an old version is tagged superseded and the vault's
/// lifecycle rule removes it after the grace period.
pub const AWS_CALLS: &[&[&str]] = &[
    &[
        "s3:GetObject",               // the catalogued version (read whole, once)
        "s3:GetObjectVersion",        // the same, by version id
        "s3:PutObject",               // the new message, a new version
        "s3:AbortMultipartUpload",    // a new message that failed its proof
        "s3:ListBucketVersions",      // leftovers of an earlier attempt
        "s3:GetObjectVersionTagging", // their states
        "s3:PutObjectVersionTagging", // pending -> catalogued, catalogued/pending -> superseded
        "s3:PutObjectRetention",      // a vault with Object Lock: the new version keeps the lock date
        "s3:PutObjectLegalHold",      // and the legal hold (on only)
    ],
    // the catalog: the row, the claim, the move with its keys' usage
    &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
    // unwrapping the old data key (symmetric or RSA), wrapping the new one
    &["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:Encrypt", "kms:GetPublicKey"],
];

/// Every AWS call the tag sweep makes (the same binary as `TagSweep`, its
/// own role): the marked rows, each row now, the one tag transition
/// (pending -> catalogued), the mark cleared. No KMS, no object bytes, no
/// delete.
pub const SWEEP_AWS_CALLS: &[&[&str]] = &[
    &["s3:GetObjectVersionTagging", "s3:PutObjectVersionTagging"],
    &["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:UpdateItem"],
];
