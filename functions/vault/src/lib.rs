//! # vault: callvault's domain services
//!
//! Key wrapping for the `envelope` format over KMS (the `aws-kms` and
//! `aws-kms-rsa` keyrings), written against the narrow [`kms::KeyManagement`]
//! port with an AWS SDK adapter ([`kms::AwsKms`]) and an in-memory one
//! ([`memory::MemoryKms`]); streaming S3 I/O ([`s3`]); and the encrypt and
//! decrypt flows ([`flow`]) that the Lambdas and the CLI share; the catalog
//! ([`catalog`]) and the encryption of recordings from the ingest bucket
//! ([`recording`]).

pub mod alerts;
pub mod arn;
pub mod audit;
pub mod catalog;
pub mod config;
pub mod error;
pub mod flow;
pub mod guardian;
pub mod keyring;
pub mod kms;
pub mod memory;
pub mod metrics;
pub mod playback;
pub mod recording;
pub mod s3;

pub use error::KeyError;
