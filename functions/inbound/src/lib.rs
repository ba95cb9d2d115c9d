//! # inbound: what reaches callvault from outside, before it is trusted
//!
//! Every parser of input an outsider can shape lives here, with no AWS SDK
//! (`vault` without its `aws` feature) and no async code, so the fuzz
//! targets in `fuzz/` build in about a minute:
//! - [`s3_event`]: S3 event notifications (encrypt-recording's trigger),
//!   S3's encoding of object keys in them, and the event `callvault redrive`
//!   re-submits;
//! - [`kms_event`]: KMS events as EventBridge delivers them (the key
//!   guardian's trigger);
//! - [`range`]: the HTTP `Range` header (playback);
//! - [`s3_batch`]: S3 Batch Operations' Lambda invocation, schema 2.0, and
//!   its response (the `rekey` function's trigger).

pub mod kms_event;
pub mod range;
pub mod s3_batch;
pub mod s3_event;
