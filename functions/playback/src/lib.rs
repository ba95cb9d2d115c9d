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
pub mod range;
pub mod route;

pub use audit::{AuditLog, AuditRecord, StdoutAudit};
pub use body::PlaybackBody;
pub use config::Config;
pub use handler::Handler;
