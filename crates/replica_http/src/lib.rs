//! The IC's HTTP interface (the interface specification's "HTTPS
//! interface") in front of a [`local_replica::LocalReplica`], so that
//! official clients (`ic-agent`, `@icp-sdk/core`, `icp`) talk to the local
//! replica exactly as they talk to a real one.
//!
//! Modules:
//! - `hash`: the representation-independent hash (request ids, query
//!   response signatures);
//! - `cbor`: a small CBOR reader and writer;
//! - `envelope`: request envelopes (`content`, `sender_pubkey`,
//!   `sender_sig`, `sender_delegation`) and their request ids;
//! - `auth`: signatures (Ed25519, ECDSA P-256 and secp256k1, canister
//!   signatures), delegation chains, ingress expiry;
//! - `canister_sig`: canister signatures (Internet Identity's keys);
//! - `certification`: the state tree, BLS12-381 certificates, node keys;
//! - `server`: the HTTP server ([`server::serve`]).

pub mod auth;
pub mod canister_sig;
pub mod cbor;
pub mod certification;
pub mod envelope;
pub mod hash;
pub mod server;
