//! # playback
//!
//! The Lambda behind a Function URL (IAM auth, response streaming; CloudFront
//! in front for browsers) that supervisors' browsers and download tools
//! call: `GET`/`HEAD /recordings/<type>/<id>` with an optional `Range`,
//! `GET /recordings/<type>/<id>/info`, the player page at `/` with its
//! sign-in through the company's identity provider, and its list. Every
//! request but the page and the sign-in carries a verified identity (a
//! bearer token, or the session cookie a sign-in set) whose groups the
//! access policy lets reach the recording. The work itself is
//! [`vault::playback`]; this crate knows HTTP, identity and the
//! configuration.

//!
//! Where to look: [`dispatch`] routes each request ([`route`]) to its
//! module: the page ([`page`]), the sign-in and who is asking ([`auth`],
//! [`auth::signin`]), the audio with ranges and streaming ([`audio`]), the
//! JSON API ([`api`]); [`refusal`] answers every error in one shape,
//! [`response`] builds the rest, [`audit`] writes the line of each request,
//! and [`aws`] is the one AWS call this crate makes itself.

pub mod api;
pub mod audio;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod body;
pub mod config;
pub mod dispatch;
pub mod front;
pub mod page;
pub mod refusal;
pub mod response;
pub mod route;

pub use audit::{AuditLog, AuditRecord, StdoutAudit};
pub use body::PlaybackBody;
pub use config::Config;
pub use dispatch::Handler;

/// Every AWS call this function makes, as IAM actions: what its role in
/// template.yaml must grant, no more (`tests/tests/iam.rs`). Reads only.
pub const AWS_CALLS: &[&[&str]] = &[&[
    "dynamodb:GetItem",              // the recording's catalog row
    "dynamodb:Query",                // the player's list: the catalog's by-date index
    "s3:GetObject",                  // ranged reads of the header and frames
    "s3:GetObjectVersion",           // the catalogued version
    "kms:Decrypt",                   // one per message, then the cache
    "secretsmanager:GetSecretValue", // the OpenID Connect client secret, once at start
]];
