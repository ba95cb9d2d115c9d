//! # vault: callvault's domain, by capability
//!
//! Where to look:
//! - [`ports`]: every outside capability the domain uses, a trait each in
//!   callvault's words (keys, objects, the catalog, alerts, dead letters),
//!   with its domain types and its error.
//! - [`ingest`], [`playback`], [`guardian`], [`audit`], [`rekey`], [`retention`]: the services, each
//!   generic over the ports it takes and nothing else.
//! - [`keyring`], [`flow`]: wrapping data keys for the `envelope` format
//!   (the `aws-kms` and `aws-kms-rsa` keyrings) and the encrypt and decrypt
//!   flows the services and the CLI share.
//! - [`recording`], [`time`], [`arn`]: the shared nouns and helpers.
//! - [`errors`]: what every operation error answers ([`errors::OperationError`]).
//! - [`config`], [`metrics`]: settings from the environment, EMF metrics.
//! - [`wipe`], [`bootstrap`]: the allocator every binary installs, so freed
//!   memory keeps no copy of a data key, and the start every Lambda shares.
//! - `aws` (feature `aws`, on by default): the adapters, the only place an
//!   AWS SDK name appears.
//! - `memory` and `contract` (feature `memory`): the in-memory twin of every
//!   port, and the contract suite each port's adapters must pass, twin and
//!   AWS alike.

pub mod arn;
pub mod audit;
#[cfg(feature = "aws")]
pub mod aws;
pub mod bootstrap;
pub mod config;
pub mod errors;
pub mod flow;
pub mod guardian;
#[cfg(feature = "https")]
pub mod https;
pub mod ingest;
pub mod keyring;
pub mod metrics;
pub mod object;
pub mod playback;
pub mod ports;
pub mod recording;
pub mod rekey;
pub mod retention;
pub mod retention_policy;
pub mod time;
pub mod wipe;

#[cfg(feature = "memory")]
pub mod contract;
#[cfg(feature = "memory")]
pub mod memory;

pub use errors::OperationError;
pub use ports::keys::KeyError;
