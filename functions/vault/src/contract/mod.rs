//! The contract every adapter of a port must keep, written once and run
//! against the in-memory twin (`cargo test -p vault`) and the AWS adapter
//! on the local AWS (`tests/tests/contracts.rs`). A twin that were a bare
//! map would make every race test pass trivially; these suites pin down the
//! semantics the protocols rely on: versions, conditional writes,
//! all-or-nothing transactions with their reasons, multipart abort, and the
//! mapping of not-found and access-denied answers.
//!
//! Each suite takes the adapter and a harness: what the suite needs to see
//! or provoke that the port itself does not offer (open multipart uploads,
//! a denied call), done the twin's way or the local AWS's way.

pub mod alerts;
pub mod catalog;
pub mod dead_letters;
pub mod keys;
pub mod objects;
