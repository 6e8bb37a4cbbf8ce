//! The IC's HTTP interface (the interface specification's "HTTPS
//! interface") in front of a [`local_replica::LocalReplica`], so that
//! official clients (`ic-agent`, `@icp-sdk/core`, `icp`) talk to the local
//! replica exactly as they talk to a real one.
//!
//! Modules:
//! - `hash`: the representation-independent hash (request ids, query
//!   response signatures);
//! - `certification`: the state tree, BLS12-381 certificates, node keys.

pub mod certification;
pub mod hash;
