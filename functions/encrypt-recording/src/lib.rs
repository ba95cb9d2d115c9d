//! # encrypt-recording
//!
//! The Lambda behind S3 ObjectCreated events on the ingest bucket: each
//! recording becomes an AWS Encryption SDK message in the vault bucket, a
//! catalog row, and then its plaintext is deleted. The work itself is
//! [`vault::recording`]; this crate knows the event and the configuration.

pub mod config;
pub mod event;
pub mod handler;

pub use config::Config;
pub use handler::{Handler, HandlerError};
pub use vault::config::ConfigError;
