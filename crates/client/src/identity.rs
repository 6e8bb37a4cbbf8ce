//! Identities from PEM files, as `dfx identity export` and `icp identity
//! export` write them.
//!
//! * dfx (`dfx identity new`): secp256k1 as SEC1 (`EC PRIVATE KEY`, CRLF
//!   line ends); keys imported into dfx may carry an `EC PARAMETERS` block
//!   first (`openssl ecparam -genkey`); old dfx identities are Ed25519 in
//!   PKCS#8.
//! * icp-cli: PKCS#8 (`PRIVATE KEY`) for secp256k1, P-256 and Ed25519
//!   (v2, with the public key).
//!
//! The key type is read from the file (the PKCS#8 algorithm, the SEC1 or
//! `EC PARAMETERS` curve), never guessed from which parser succeeds.
//! Password-protected PEMs (`ENCRYPTED PRIVATE KEY`) are refused with a
//! hint: both tools' `identity export` print the decrypted key.
//!
//! ```no_run
//! let pem = std::fs::read_to_string("me.pem").unwrap();
//! let id = client::identity::from_pem(&pem).unwrap();
//! println!("{} ({})", id.principal, id.kind);
//! ```

use std::sync::Arc;

use candid::Principal;
use ic_agent::identity::{BasicIdentity, Prime256v1Identity, Secp256k1Identity};
use ic_agent::Identity;
use pkcs8::der::asn1::ObjectIdentifier;
use pkcs8::der::Decode;

/// id-ecPublicKey (RFC 5480): an elliptic-curve key, its curve a parameter.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// Ed25519 (RFC 8410).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// secp256k1 (SEC 2).
const SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");
/// prime256v1, a.k.a. P-256 or secp256r1 (RFC 5480).
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// The signature scheme of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    Secp256k1,
    P256,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyKind::Ed25519 => "Ed25519",
            KeyKind::Secp256k1 => "ECDSA secp256k1",
            KeyKind::P256 => "ECDSA P-256",
        })
    }
}

/// Why a PEM file gave no identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("not a PEM file: {0}")]
    Pem(#[from] pem::PemError),
    #[error(
        "the PEM holds no private key (found: {}); expected `PRIVATE KEY` (PKCS#8, as `icp \
         identity export` writes) or `EC PRIVATE KEY` (SEC1, as dfx writes)",
        if found.is_empty() { "nothing".to_string() } else { found.join(", ") }
    )]
    NoPrivateKey { found: Vec<String> },
    #[error(
        "the key is password-protected (`ENCRYPTED PRIVATE KEY`): export it decrypted with \
         `icp identity export NAME > key.pem` or `dfx identity export NAME > key.pem`"
    )]
    Encrypted,
    #[error("malformed {label}: {reason}")]
    Malformed { label: String, reason: String },
    #[error(
        "unsupported key algorithm {oid}: expected Ed25519 (1.3.101.112) or an elliptic-curve \
         key (1.2.840.10045.2.1)"
    )]
    UnsupportedAlgorithm { oid: String },
    #[error(
        "unsupported curve {oid}: expected secp256k1 (1.3.132.0.10) or P-256 \
         (1.2.840.10045.3.1.7)"
    )]
    UnsupportedCurve { oid: String },
    #[error(
        "the SEC1 key names no curve, no `EC PARAMETERS` block precedes it, and its public key \
         is neither on secp256k1 nor on P-256"
    )]
    NoCurve,
    #[error("the key's principal: {0}")]
    Principal(String),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// An identity read from a PEM file.
#[derive(Clone)]
pub struct PemIdentity {
    pub kind: KeyKind,
    pub principal: Principal,
    pub identity: Arc<dyn Identity>,
}

impl std::fmt::Debug for PemIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemIdentity")
            .field("kind", &self.kind)
            .field("principal", &self.principal.to_text())
            .finish_non_exhaustive()
    }
}

/// Reads the PEM file at `path`.
pub fn from_pem_file(path: &std::path::Path) -> Result<PemIdentity, IdentityError> {
    let text = std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
        path: path.display().to_string(),
        source,
    })?;
    from_pem(&text)
}

/// The identity of the first private key in `text`.
pub fn from_pem(text: &str) -> Result<PemIdentity, IdentityError> {
    let blocks = pem::parse_many(text)?;
    let mut params_curve = None;
    let mut found = Vec::new();
    for block in &blocks {
        match block.tag() {
            "EC PARAMETERS" => {
                let oid = ObjectIdentifier::from_der(block.contents()).map_err(|e| {
                    IdentityError::Malformed {
                        label: "EC PARAMETERS".into(),
                        reason: e.to_string(),
                    }
                })?;
                params_curve = Some(oid);
            }
            "EC PRIVATE KEY" => return sec1_key(block.contents(), params_curve),
            "PRIVATE KEY" => return pkcs8_key(block),
            "ENCRYPTED PRIVATE KEY" => return Err(IdentityError::Encrypted),
            other => found.push(other.to_string()),
        }
    }
    Err(IdentityError::NoPrivateKey { found })
}

fn malformed(label: &str, e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Malformed {
        label: label.into(),
        reason: e.to_string(),
    }
}

fn finish(kind: KeyKind, identity: Arc<dyn Identity>) -> Result<PemIdentity, IdentityError> {
    let principal = identity.sender().map_err(IdentityError::Principal)?;
    Ok(PemIdentity {
        kind,
        principal,
        identity,
    })
}

fn ec_identity(curve: ObjectIdentifier, key: &[u8]) -> Result<PemIdentity, IdentityError> {
    if curve == SECP256K1 {
        let key = k256::SecretKey::from_slice(key).map_err(|e| malformed("secp256k1 key", e))?;
        finish(
            KeyKind::Secp256k1,
            Arc::new(Secp256k1Identity::from_private_key(key)),
        )
    } else if curve == PRIME256V1 {
        let key = p256::SecretKey::from_slice(key).map_err(|e| malformed("P-256 key", e))?;
        finish(
            KeyKind::P256,
            Arc::new(Prime256v1Identity::from_private_key(key)),
        )
    } else {
        Err(IdentityError::UnsupportedCurve {
            oid: curve.to_string(),
        })
    }
}

/// SEC1 (`EC PRIVATE KEY`, RFC 5915): the curve is in the key's parameters
/// or in the `EC PARAMETERS` block before it. dfx writes neither (its keys
/// are what `k256`'s `to_sec1_pem` makes): then the public key in the file
/// says which curve the private key is on, and without one it is dfx's
/// secp256k1.
fn sec1_key(der: &[u8], params: Option<ObjectIdentifier>) -> Result<PemIdentity, IdentityError> {
    let key = sec1::EcPrivateKey::from_der(der).map_err(|e| malformed("EC PRIVATE KEY", e))?;
    let curve = match key.parameters.and_then(|p| p.named_curve()).or(params) {
        Some(curve) => curve,
        None => match key.public_key {
            Some(public) => curve_of(key.private_key, public).ok_or(IdentityError::NoCurve)?,
            None => SECP256K1,
        },
    };
    ec_identity(curve, key.private_key)
}

/// The curve on which `private` has the public key `public` (SEC1 point).
fn curve_of(private: &[u8], public: &[u8]) -> Option<ObjectIdentifier> {
    let on_k256 = k256::SecretKey::from_slice(private)
        .ok()
        .map(|k| k.public_key());
    if on_k256.is_some() && on_k256 == k256::PublicKey::from_sec1_bytes(public).ok() {
        return Some(SECP256K1);
    }
    let on_p256 = p256::SecretKey::from_slice(private)
        .ok()
        .map(|k| k.public_key());
    if on_p256.is_some() && on_p256 == p256::PublicKey::from_sec1_bytes(public).ok() {
        return Some(PRIME256V1);
    }
    None
}

/// PKCS#8 (`PRIVATE KEY`, RFC 5208/5958): the algorithm says which key.
fn pkcs8_key(block: &pem::Pem) -> Result<PemIdentity, IdentityError> {
    let info = match pkcs8::PrivateKeyInfo::from_der(block.contents()) {
        Ok(info) => info,
        // dfx's oldest Ed25519 keys are not valid PKCS#8 v2; ic-agent reads
        // them (and only Ed25519 keys were written so).
        Err(e) => {
            return BasicIdentity::from_pem(pem::encode(block))
                .map_err(|_| malformed("PRIVATE KEY", e))
                .and_then(|id| finish(KeyKind::Ed25519, Arc::new(id)));
        }
    };
    let oid = info.algorithm.oid;
    if oid == ED25519 {
        let id = BasicIdentity::from_pem(pem::encode(block))
            .map_err(|e| malformed("Ed25519 PRIVATE KEY", e))?;
        finish(KeyKind::Ed25519, Arc::new(id))
    } else if oid == EC_PUBLIC_KEY {
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|e| malformed("PRIVATE KEY's curve", e))?;
        let key = sec1::EcPrivateKey::from_der(info.private_key)
            .map_err(|e| malformed("PRIVATE KEY's EC key", e))?;
        ec_identity(curve, key.private_key)
    } else {
        Err(IdentityError::UnsupportedAlgorithm {
            oid: oid.to_string(),
        })
    }
}
