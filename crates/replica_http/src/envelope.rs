//! Request envelopes: the CBOR body of `call`, `query` and `read_state`.
//!
//! An envelope is the map `{content, sender_pubkey?, sender_sig?,
//! sender_delegation?}` (interface specification, "Authentication"). The
//! `content` map is kept as a [`Value`] as well as parsed, because the
//! request id is the representation-independent hash of *every* field it
//! has, known or not. Parsing checks types and the specification's limits
//! (nonce at most 32 bytes, at most 1,000 paths of at most 127 labels, at
//! most 20 delegations of at most 1,000 targets); it does not check
//! signatures (see [`crate::auth`]).

use candid::Principal;

use crate::cbor::{self, Cbor, CborError};
use crate::hash::{hash_value, RequestId, Value};

/// At most this many delegations in `sender_delegation`.
pub const MAX_DELEGATIONS: usize = 20;
/// At most this many canisters in a delegation's `targets`.
pub const MAX_TARGETS: usize = 1000;
/// At most this many paths in a `read_state` request.
pub const MAX_PATHS: usize = 1000;
/// At most this many labels in one path.
pub const MAX_PATH_LABELS: usize = 127;
/// At most this many bytes of `nonce`.
pub const MAX_NONCE_BYTES: usize = 32;

/// Why a body is not a well-formed envelope (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the request body is not CBOR: {0}")]
    Cbor(#[from] CborError),
    #[error("{what}: expected {expected}, found {found}")]
    Type {
        what: String,
        expected: &'static str,
        found: String,
    },
    #[error("{0} is missing")]
    Missing(String),
    #[error("{what}: {found} exceeds the limit of {limit}")]
    TooMany {
        what: &'static str,
        found: usize,
        limit: usize,
    },
    #[error("request_type is {found:?}; this endpoint takes {expected:?}")]
    WrongRequestType {
        expected: &'static str,
        found: String,
    },
    #[error("{what} is not a principal: {len} bytes (at most 29)")]
    Principal { what: String, len: usize },
}

/// One of the three request types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `request_type = "call"`: an update call.
    Call(CanisterCall),
    /// `request_type = "query"`.
    Query(CanisterCall),
    /// `request_type = "read_state"`.
    ReadState { paths: Vec<Vec<Vec<u8>>> },
}

impl Request {
    /// The `request_type` text.
    pub fn request_type(&self) -> &'static str {
        match self {
            Request::Call(_) => "call",
            Request::Query(_) => "query",
            Request::ReadState { .. } => "read_state",
        }
    }
}

/// The fields of a call or query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanisterCall {
    pub canister_id: Principal,
    pub method_name: String,
    pub arg: Vec<u8>,
}

/// The `content` map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    pub sender: Principal,
    pub ingress_expiry: u64,
    pub nonce: Option<Vec<u8>>,
    pub request: Request,
}

/// One entry of `sender_delegation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedDelegation {
    /// The key delegated to (DER).
    pub pubkey: Vec<u8>,
    /// Nanoseconds since 1970-01-01.
    pub expiration: u64,
    /// `None`: any canister.
    pub targets: Option<Vec<Principal>>,
    /// The representation-independent hash of the `delegation` map, which
    /// `signature` signs (after the delegation domain separator).
    pub hash: [u8; 32],
    pub signature: Vec<u8>,
}

/// A parsed envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub content: Content,
    /// The hash of the whole `content` map.
    pub request_id: RequestId,
    pub sender_pubkey: Option<Vec<u8>>,
    pub sender_sig: Option<Vec<u8>>,
    pub sender_delegation: Vec<SignedDelegation>,
}

/// Parses an envelope from a request body.
pub fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
    let top = cbor::decode(body)?;
    let top = top.untagged();
    if !matches!(top, Cbor::Map(_)) {
        return Err(type_error("the envelope", "a map", top));
    }
    let content_item = top
        .get("content")
        .ok_or_else(|| EnvelopeError::Missing("content".into()))?;
    let content_value = to_value(content_item, "content")?;
    let request_id = hash_value(&content_value);
    let content = parse_content(content_item)?;
    let sender_pubkey = optional_bytes(top, "sender_pubkey")?;
    let sender_sig = optional_bytes(top, "sender_sig")?;
    let sender_delegation = match top.get("sender_delegation").map(Cbor::untagged) {
        None | Some(Cbor::Null) => Vec::new(),
        Some(Cbor::Array(items)) => {
            if items.len() > MAX_DELEGATIONS {
                return Err(EnvelopeError::TooMany {
                    what: "sender_delegation",
                    found: items.len(),
                    limit: MAX_DELEGATIONS,
                });
            }
            items
                .iter()
                .enumerate()
                .map(|(i, d)| parse_delegation(d, i))
                .collect::<Result<_, _>>()?
        }
        Some(other) => return Err(type_error("sender_delegation", "an array", other)),
    };
    Ok(Envelope {
        content,
        request_id,
        sender_pubkey,
        sender_sig,
        sender_delegation,
    })
}

fn parse_content(item: &Cbor) -> Result<Content, EnvelopeError> {
    let request_type = text(item, "content.request_type")?;
    let sender = principal(required(item, "sender", "content")?, "content.sender")?;
    let ingress_expiry = nat(
        required(item, "ingress_expiry", "content")?,
        "content.ingress_expiry",
    )?;
    let nonce = optional_bytes(item, "nonce")?;
    if let Some(n) = &nonce {
        if n.len() > MAX_NONCE_BYTES {
            return Err(EnvelopeError::TooMany {
                what: "content.nonce bytes",
                found: n.len(),
                limit: MAX_NONCE_BYTES,
            });
        }
    }
    let request = match request_type.as_str() {
        "call" | "query" => {
            let call = CanisterCall {
                canister_id: principal(
                    required(item, "canister_id", "content")?,
                    "content.canister_id",
                )?,
                method_name: text(item, "content.method_name")?,
                arg: bytes(required(item, "arg", "content")?, "content.arg")?,
            };
            if request_type == "call" {
                Request::Call(call)
            } else {
                Request::Query(call)
            }
        }
        "read_state" => {
            let paths = match required(item, "paths", "content")?.untagged() {
                Cbor::Array(paths) => paths,
                other => return Err(type_error("content.paths", "an array", other)),
            };
            if paths.len() > MAX_PATHS {
                return Err(EnvelopeError::TooMany {
                    what: "content.paths",
                    found: paths.len(),
                    limit: MAX_PATHS,
                });
            }
            let paths = paths
                .iter()
                .map(|path| match path.untagged() {
                    Cbor::Array(labels) if labels.len() > MAX_PATH_LABELS => {
                        Err(EnvelopeError::TooMany {
                            what: "labels in a path",
                            found: labels.len(),
                            limit: MAX_PATH_LABELS,
                        })
                    }
                    Cbor::Array(labels) => labels
                        .iter()
                        .map(|l| bytes(l, "a path label"))
                        .collect::<Result<Vec<_>, _>>(),
                    other => Err(type_error("a path", "an array", other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Request::ReadState { paths }
        }
        other => {
            return Err(EnvelopeError::Type {
                what: "content.request_type".into(),
                expected: "\"call\", \"query\" or \"read_state\"",
                found: format!("{other:?}"),
            })
        }
    };
    Ok(Content {
        sender,
        ingress_expiry,
        nonce,
        request,
    })
}

fn parse_delegation(item: &Cbor, index: usize) -> Result<SignedDelegation, EnvelopeError> {
    let what = format!("sender_delegation[{index}]");
    let delegation = required(item, "delegation", &what)?;
    let hash = hash_value(&to_value(delegation, &what)?);
    let pubkey = bytes(required(delegation, "pubkey", &what)?, "delegation.pubkey")?;
    let expiration = nat(
        required(delegation, "expiration", &what)?,
        "delegation.expiration",
    )?;
    let targets = match delegation.get("targets").map(Cbor::untagged) {
        None => None,
        Some(Cbor::Array(ts)) => {
            if ts.len() > MAX_TARGETS {
                return Err(EnvelopeError::TooMany {
                    what: "delegation.targets",
                    found: ts.len(),
                    limit: MAX_TARGETS,
                });
            }
            Some(
                ts.iter()
                    .map(|t| principal(t, "a delegation target"))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        }
        Some(other) => return Err(type_error("delegation.targets", "an array", other)),
    };
    let signature = bytes(required(item, "signature", &what)?, "delegation signature")?;
    Ok(SignedDelegation {
        pubkey,
        expiration,
        targets,
        hash,
        signature,
    })
}

/// The hashable form of a CBOR item: the self-describe tag is dropped,
/// every map key must be text.
pub fn to_value(item: &Cbor, what: &str) -> Result<Value, EnvelopeError> {
    Ok(match item {
        Cbor::Tag(cbor::SELF_DESCRIBE_TAG, inner) => to_value(inner, what)?,
        Cbor::Uint(n) => Value::Nat(*n),
        Cbor::Bytes(b) => Value::Bytes(b.clone()),
        Cbor::Text(t) => Value::Text(t.clone()),
        Cbor::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| to_value(i, what))
                .collect::<Result<_, _>>()?,
        ),
        Cbor::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| match k.untagged() {
                    Cbor::Text(key) => Ok((key.clone(), to_value(v, what)?)),
                    other => Err(type_error(&format!("a key in {what}"), "text", other)),
                })
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(type_error(
                what,
                "blobs, texts, naturals, arrays and maps",
                other,
            ))
        }
    })
}

fn type_error(what: &str, expected: &'static str, found: &Cbor) -> EnvelopeError {
    EnvelopeError::Type {
        what: what.to_string(),
        expected,
        found: found.kind().to_string(),
    }
}

fn required<'a>(map: &'a Cbor, key: &str, within: &str) -> Result<&'a Cbor, EnvelopeError> {
    map.get(key)
        .ok_or_else(|| EnvelopeError::Missing(format!("{within}.{key}")))
}

fn bytes(item: &Cbor, what: &str) -> Result<Vec<u8>, EnvelopeError> {
    match item.untagged() {
        Cbor::Bytes(b) => Ok(b.clone()),
        other => Err(type_error(what, "a byte string", other)),
    }
}

fn optional_bytes(map: &Cbor, key: &str) -> Result<Option<Vec<u8>>, EnvelopeError> {
    match map.get(key).map(Cbor::untagged) {
        None | Some(Cbor::Null) => Ok(None),
        Some(item) => bytes(item, key).map(Some),
    }
}

fn text(map: &Cbor, what: &str) -> Result<String, EnvelopeError> {
    let key = what.rsplit('.').next().unwrap_or(what);
    match map.get(key).map(Cbor::untagged) {
        Some(Cbor::Text(t)) => Ok(t.clone()),
        Some(other) => Err(type_error(what, "a text string", other)),
        None => Err(EnvelopeError::Missing(what.to_string())),
    }
}

fn nat(item: &Cbor, what: &str) -> Result<u64, EnvelopeError> {
    match item.untagged() {
        Cbor::Uint(n) => Ok(*n),
        other => Err(type_error(what, "an unsigned integer of 64 bits", other)),
    }
}

fn principal(item: &Cbor, what: &str) -> Result<Principal, EnvelopeError> {
    let b = bytes(item, what)?;
    if b.len() > 29 {
        return Err(EnvelopeError::Principal {
            what: what.to_string(),
            len: b.len(),
        });
    }
    Ok(Principal::from_slice(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbor::map;

    fn spec_content() -> Cbor {
        map([
            ("request_type", Cbor::Text("call".into())),
            ("sender", Cbor::Bytes(vec![4])),
            ("ingress_expiry", Cbor::Uint(1_685_570_400_000_000_000)),
            ("canister_id", Cbor::Bytes(vec![0, 0, 0, 0, 0, 0, 4, 0xd2])),
            ("method_name", Cbor::Text("hello".into())),
            ("arg", Cbor::Bytes(b"DIDL\x00\xfd*".to_vec())),
        ])
    }

    #[test]
    fn spec_example_envelope_has_the_spec_request_id() {
        let body = map([("content", spec_content())]).encode_self_described();
        let env = parse(&body).unwrap();
        assert_eq!(
            hex::encode(env.request_id),
            "1d1091364d6bb8a6c16b203ee75467d59ead468f523eb058880ae8ec80e2b101"
        );
        assert_eq!(env.content.sender, Principal::anonymous());
        assert_eq!(
            env.content.request,
            Request::Call(CanisterCall {
                canister_id: Principal::from_slice(&[0, 0, 0, 0, 0, 0, 4, 0xd2]),
                method_name: "hello".into(),
                arg: b"DIDL\x00\xfd*".to_vec(),
            })
        );
    }

    #[test]
    fn unknown_content_fields_change_the_request_id() {
        let Cbor::Map(mut entries) = spec_content() else {
            unreachable!()
        };
        entries.push((Cbor::Text("future_field".into()), Cbor::Uint(1)));
        let body = map([("content", Cbor::Map(entries))]).encode();
        let env = parse(&body).unwrap();
        assert_ne!(
            hex::encode(env.request_id),
            "1d1091364d6bb8a6c16b203ee75467d59ead468f523eb058880ae8ec80e2b101"
        );
    }

    #[test]
    fn refuses_malformed_envelopes() {
        let with = |key: &str, value: Cbor| {
            let Cbor::Map(mut entries) = spec_content() else {
                unreachable!()
            };
            entries.retain(|(k, _)| *k != Cbor::Text(key.into()));
            entries.push((Cbor::Text(key.into()), value));
            map([("content", Cbor::Map(entries))]).encode()
        };
        let cases = [
            (vec![0xa1u8, 0x61], "truncated CBOR"),
            (Cbor::Array(vec![]).encode(), "not a map"),
            (map([]).encode(), "no content"),
            (with("arg", Cbor::Text("x".into())), "arg as text"),
            (with("sender", Cbor::Bytes(vec![1; 30])), "30-byte sender"),
            (with("nonce", Cbor::Bytes(vec![1; 33])), "33-byte nonce"),
            (with("request_type", Cbor::Text("dance".into())), "bad type"),
            (with("ingress_expiry", Cbor::Negative(1)), "negative expiry"),
            (with("arg", Cbor::Float(1.0)), "float arg"),
        ];
        for (body, what) in cases {
            assert!(parse(&body).is_err(), "{what} was accepted");
        }
    }

    #[test]
    fn read_state_paths_are_limited() {
        let content = |paths: Vec<Cbor>| {
            map([(
                "content",
                map([
                    ("request_type", Cbor::Text("read_state".into())),
                    ("sender", Cbor::Bytes(vec![4])),
                    ("ingress_expiry", Cbor::Uint(1)),
                    ("paths", Cbor::Array(paths)),
                ]),
            )])
            .encode()
        };
        let path = Cbor::Array(vec![Cbor::Bytes(b"time".to_vec())]);
        let env = parse(&content(vec![path.clone()])).unwrap();
        assert_eq!(
            env.content.request,
            Request::ReadState {
                paths: vec![vec![b"time".to_vec()]]
            }
        );
        assert!(matches!(
            parse(&content(vec![path; MAX_PATHS + 1])),
            Err(EnvelopeError::TooMany { .. })
        ));
        let long = Cbor::Array(vec![Cbor::Bytes(vec![]); MAX_PATH_LABELS + 1]);
        assert!(matches!(
            parse(&content(vec![long])),
            Err(EnvelopeError::TooMany { .. })
        ));
    }
}
