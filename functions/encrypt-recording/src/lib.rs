//! # encrypt-recording
//!
//! The Lambda behind S3 ObjectCreated events on the ingest bucket: each
//! recording becomes an AWS Encryption SDK message in the vault bucket, a
//! catalog row, and then its plaintext is deleted. The work itself is
//! [`vault::ingest`]; this crate knows the event and the configuration.

pub mod config;
pub mod handler;

pub use config::Config;
pub use handler::{Handler, HandlerError};

/// Every AWS call this function makes, as IAM actions: what its role in
/// template.yaml must grant, no more (`tests/tests/iam.rs` checks both, and
/// that each call is one its adapters list). Never `kms:Decrypt`.
pub const AWS_CALLS: &[&[&str]] = &[
    // the S3 adapter's calls on objects (not the listing of versions, a
    // re-key's): the plaintext in the ingest bucket read, deleted once the
    // vault copy is verified, tagged when it fails for good; the vault copy
    // written (single or multipart), verified, tagged catalogued
    vault::aws::objects::OBJECT_CALLS,
    // a vault with Object Lock: each object born locked until its retain-until date
    &["s3:PutObjectRetention"],
    // the catalog: the claim, and the transaction that records the recording
    // and its keys' usage
    &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
    // wrapping: a data key from the primary, Encrypt for further keys, the
    // public key of an RSA key
    &["kms:DescribeKey", "kms:GenerateDataKey", "kms:Encrypt", "kms:GetPublicKey"],
    vault::aws::dead_letters::AWS_CALLS,
];
