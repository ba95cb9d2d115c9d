//! The ports: every outside capability the domain uses, each a trait in
//! callvault's words and sized to a capability, with the domain types and
//! the error it speaks beside it. `crate::aws` implements them over the AWS
//! SDK; `crate::memory` (feature `memory`) has an in-memory twin of each.

pub mod alerts;
pub mod catalog;
pub mod dead_letters;
pub mod destinations;
pub mod keys;
pub mod objects;
