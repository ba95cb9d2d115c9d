//! # rotation-audit
//!
//! The Lambda an EventBridge schedule runs daily: every key that protects
//! recordings or is configured for new ones, judged against the rotation
//! policy ([`vault::audit`]); a JSON evidence report in the vault bucket
//! (never overwritten), per-key compliance metrics, and one SNS summary when
//! any key is not compliant.

pub mod config;
pub mod handler;

pub use config::Config;
pub use handler::{Handler, HandlerError};
