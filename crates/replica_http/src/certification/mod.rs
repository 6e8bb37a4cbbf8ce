//! The certified state tree and its certificates.
//!
//! What a real replica certifies, built from a [`LocalReplica`] and the
//! request statuses the HTTP layer keeps (interface specification, "The
//! system state tree"):
//!
//! ```text
//! /time                                         leb128 nanoseconds
//! /request_status/<id>/status                   received|processing|replied|rejected|done
//!                     /reply                    blob (replied)
//!                     /reject_code              leb128 (rejected)
//!                     /reject_message           text (rejected)
//!                     /error_code               text (rejected, when known)
//! /canister/<id>/certified_data                 blob
//!               /module_hash                    blob (when a module is installed)
//!               /controllers                    CBOR #6.55799([* bytes])
//!               /metadata/<name>                blob (`icp:public <name>` sections)
//! /subnet/<subnet_id>/public_key                DER root key
//!                    /type                      "application"
//!                    /canister_ranges           CBOR #6.55799([* [bytes bytes]])
//!                    /node/<node_id>/public_key DER Ed25519 key
//! /canister_ranges/<subnet_id>/<first id>       the same ranges, one shard
//! ```
//!
//! A certificate is the CBOR map `#6.55799({tree, signature})`: the tree
//! pruned to what was asked for (always with `/time`), and the BLS
//! signature of `domain_sep("ic-state-root") · root_hash` by the root key
//! ([`Keys`]). There is a single subnet, the root subnet, so certificates
//! carry no delegation.
//!
//! Query responses are signed by the node's Ed25519 key
//! ([`sign_query_response`]).
//!
//! ```no_run
//! # use replica_http::certification::*;
//! # let replica = local_replica::LocalReplica::new().unwrap();
//! let keys = Keys::load_or_create(None)?;
//! let state = CertifiedState::from_replica(&replica, Default::default());
//! let cert = certificate(&keys, &state, &[vec![b"subnet".to_vec()]])?;
//! # Ok::<(), CertificationError>(())
//! ```

use crate::cbor::write as cbor;
mod keys;
pub mod tree;

use std::collections::BTreeMap;
use std::path::PathBuf;

use candid::Principal;
use local_replica::LocalReplica;

use crate::hash::{hash_value, leb128, RequestId, Value};
pub use keys::{Keys, BLS_DER_PREFIX, ED25519_DER_PREFIX};
use tree::{LabeledTree, Path};

/// Why keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum CertificationError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is not a key this replica wrote: {reason}")]
    CorruptKey { path: PathBuf, reason: String },
    #[error("the operating system gave no randomness for a new key: {0}")]
    Randomness(String),
}

/// Where an update call stands, as `/request_status/<id>` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestStatus {
    Received,
    Processing,
    Replied(Vec<u8>),
    Rejected {
        reject_code: u64,
        reject_message: String,
        error_code: Option<String>,
    },
    /// Answered, and the answer forgotten.
    Done,
}

/// What the state tree shows of one canister.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanisterEntry {
    pub id: Principal,
    /// `None` for an empty canister (no module installed).
    pub module_hash: Option<[u8; 32]>,
    pub controllers: Vec<Principal>,
    pub certified_data: Vec<u8>,
    /// The module's `icp:public <name>` custom sections, by name.
    pub public_metadata: Vec<(String, Vec<u8>)>,
}

/// The state a certificate is cut from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedState {
    /// Nanoseconds since 1970-01-01.
    pub time: u64,
    pub requests: BTreeMap<RequestId, RequestStatus>,
    pub canisters: Vec<CanisterEntry>,
}

impl CertifiedState {
    /// The replica's time and canisters, with the request statuses the HTTP
    /// layer keeps.
    pub fn from_replica(
        replica: &LocalReplica,
        requests: BTreeMap<RequestId, RequestStatus>,
    ) -> CertifiedState {
        let canisters = replica
            .canister_ids()
            .into_iter()
            .map(|id| CanisterEntry {
                id,
                module_hash: replica.module_hash(id),
                controllers: replica.controllers(id).unwrap_or_default(),
                certified_data: replica.certified_data(id).unwrap_or_default(),
                public_metadata: replica.public_metadata(id).unwrap_or_default(),
            })
            .collect();
        CertifiedState {
            time: replica.time(),
            requests,
            canisters,
        }
    }

    /// The whole state tree.
    pub fn labeled_tree(&self, keys: &Keys) -> LabeledTree {
        let mut t = LabeledTree::empty();
        t.insert(&[b"time"], leb128(self.time));
        // Empty subtrees still show their label (absence below them is
        // then proven by `Empty`).
        if let LabeledTree::SubTree(top) = &mut t {
            top.insert(b"request_status".to_vec(), LabeledTree::empty());
            top.insert(b"canister".to_vec(), LabeledTree::empty());
        }
        for (id, status) in &self.requests {
            let mut put = |field: &str, value: Vec<u8>| {
                t.insert(&[b"request_status", id.as_slice(), field.as_bytes()], value)
            };
            match status {
                RequestStatus::Received => put("status", b"received".to_vec()),
                RequestStatus::Processing => put("status", b"processing".to_vec()),
                RequestStatus::Replied(reply) => {
                    put("status", b"replied".to_vec());
                    put("reply", reply.clone());
                }
                RequestStatus::Rejected {
                    reject_code,
                    reject_message,
                    error_code,
                } => {
                    put("status", b"rejected".to_vec());
                    put("reject_code", leb128(*reject_code));
                    put("reject_message", reject_message.as_bytes().to_vec());
                    if let Some(code) = error_code {
                        put("error_code", code.as_bytes().to_vec());
                    }
                }
                RequestStatus::Done => put("status", b"done".to_vec()),
            }
        }
        for c in &self.canisters {
            let id = c.id.as_slice();
            t.insert(
                &[b"canister", id, b"certified_data"],
                c.certified_data.clone(),
            );
            if let Some(hash) = c.module_hash {
                t.insert(&[b"canister", id, b"module_hash"], hash.to_vec());
            }
            t.insert(
                &[b"canister", id, b"controllers"],
                cbor::tagged_blob_array(c.controllers.iter().map(|p| p.as_slice())),
            );
            for (name, content) in &c.public_metadata {
                t.insert(
                    &[b"canister", id, b"metadata", name.as_bytes()],
                    content.clone(),
                );
            }
        }
        let subnet = keys.subnet_id();
        let subnet = subnet.as_slice();
        let (first, last) = canister_range();
        let ranges = cbor::tagged_ranges(&[(first.as_slice(), last.as_slice())]);
        t.insert(&[b"subnet", subnet, b"public_key"], keys.root_key_der());
        t.insert(&[b"subnet", subnet, b"type"], b"application".to_vec());
        t.insert(&[b"subnet", subnet, b"canister_ranges"], ranges.clone());
        let node = keys.node_id();
        t.insert(
            &[b"subnet", subnet, b"node", node.as_slice(), b"public_key"],
            keys.node_public_key_der(),
        );
        t.insert(&[b"canister_ranges", subnet, first.as_slice()], ranges);
        t
    }
}

/// The one canister range of this replica's subnet: every id
/// [`local_replica::canister_id`] makes (index 0 to `u64::MAX`).
pub fn canister_range() -> (Principal, Principal) {
    (
        local_replica::canister_id(0),
        local_replica::canister_id(u64::MAX),
    )
}

/// The CBOR certificate `#6.55799({tree, signature})` of `state`: the state
/// tree pruned to `paths` and `/time`, signed with the root key.
///
/// Paths that lead nowhere are proven absent; what a path reaches is
/// revealed whole.
pub fn certificate(
    keys: &Keys,
    state: &CertifiedState,
    paths: &[Vec<Vec<u8>>],
) -> Result<Vec<u8>, CertificationError> {
    let full = state.labeled_tree(keys).hash_tree();
    let mut wanted: Vec<Path> = paths.to_vec();
    wanted.push(vec![b"time".to_vec()]);
    let tree = full.prune(&wanted);
    let mut message = b"\x0dic-state-root".to_vec();
    message.extend_from_slice(&tree.digest());
    let signature = keys.bls_sign(&message);
    let mut out = Vec::new();
    cbor::tag(&mut out, cbor::SELF_DESCRIBE_TAG);
    cbor::map(&mut out, 2);
    cbor::text(&mut out, "tree");
    tree.encode_cbor(&mut out);
    cbor::text(&mut out, "signature");
    cbor::bytes(&mut out, &signature);
    Ok(out)
}

/// The certificate `ic0.data_certificate_copy` gives `canister` in a
/// query: `/time` and `/canister/<id>/certified_data`.
pub fn data_certificate(
    keys: &Keys,
    state: &CertifiedState,
    canister: Principal,
) -> Result<Vec<u8>, CertificationError> {
    certificate(
        keys,
        state,
        &[vec![
            b"canister".to_vec(),
            canister.as_slice().to_vec(),
            b"certified_data".to_vec(),
        ]],
    )
}

/// How a query ended, as its signed response says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryOutcome {
    Replied(Vec<u8>),
    Rejected {
        reject_code: u64,
        reject_message: String,
        error_code: Option<String>,
    },
}

/// One node's signature of a query response (the `signatures` field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSignature {
    pub timestamp: u64,
    /// Ed25519, 64 bytes.
    pub signature: Vec<u8>,
    pub identity: Principal,
}

/// The map whose representation-independent hash a node signs for a query
/// response: the response's fields plus `request_id` and `timestamp`
/// (`reply` is the map `{arg}`).
pub fn query_response_signable(
    request_id: RequestId,
    timestamp: u64,
    outcome: &QueryOutcome,
) -> Vec<u8> {
    let mut fields = vec![
        ("request_id".to_string(), Value::Bytes(request_id.to_vec())),
        ("timestamp".to_string(), Value::Nat(timestamp)),
    ];
    match outcome {
        QueryOutcome::Replied(arg) => {
            fields.push(("status".to_string(), Value::Text("replied".into())));
            fields.push((
                "reply".to_string(),
                Value::Map(vec![("arg".to_string(), Value::Bytes(arg.clone()))]),
            ));
        }
        QueryOutcome::Rejected {
            reject_code,
            reject_message,
            error_code,
        } => {
            fields.push(("status".to_string(), Value::Text("rejected".into())));
            fields.push(("reject_code".to_string(), Value::Nat(*reject_code)));
            fields.push((
                "reject_message".to_string(),
                Value::Text(reject_message.clone()),
            ));
            if let Some(code) = error_code {
                fields.push(("error_code".to_string(), Value::Text(code.clone())));
            }
        }
    }
    let mut message = b"\x0bic-response".to_vec();
    message.extend_from_slice(&hash_value(&Value::Map(fields)));
    message
}

/// The node's Ed25519 signature of a query response: of
/// `domain_sep("ic-response") · hash_of_map(response, request_id, timestamp)`.
pub fn sign_query_response(
    keys: &Keys,
    request_id: RequestId,
    timestamp: u64,
    outcome: &QueryOutcome,
) -> NodeSignature {
    let message = query_response_signable(request_id, timestamp, outcome);
    NodeSignature {
        timestamp,
        signature: keys.node_sign(&message).to_vec(),
        identity: keys.node_id(),
    }
}
