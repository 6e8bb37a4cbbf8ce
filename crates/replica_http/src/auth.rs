//! Request authentication: who sent a request, and may they.
//!
//! A request is either anonymous (sender `0x04`, no key, no signature) or
//! signed: `sender` must be the self-authenticating id of `sender_pubkey`
//! (`SHA-224(der) · 0x02`), each delegation of `sender_delegation` must be
//! signed by the key before it (`\x1Aic-request-auth-delegation` · hash of
//! the delegation map) and unexpired, and `sender_sig` must sign
//! `\x0Aic-request` · request id with the last key of the chain. The
//! canisters a request may reach are the intersection of the delegations'
//! `targets`.
//!
//! Public keys are DER `SubjectPublicKeyInfo`s: Ed25519, ECDSA on P-256 or
//! secp256k1 (64-byte `r || s` signatures of the SHA-256 of the message),
//! and canister signatures (Internet Identity's keys, verified against the
//! root key, see [`crate::canister_sig`]). WebAuthn (COSE) keys are
//! recognised and refused as unsupported.

use std::time::Duration;

use candid::Principal;

use crate::canister_sig;
use crate::envelope::{Envelope, MAX_DELEGATIONS};

/// Domain separator of `sender_sig`.
pub const REQUEST_DOMAIN: &[u8] = b"\x0Aic-request";
/// Domain separator of delegation signatures.
pub const DELEGATION_DOMAIN: &[u8] = b"\x1Aic-request-auth-delegation";
/// How far in the future `ingress_expiry` may be: the IC's maximum
/// ingress time to live.
pub const MAX_INGRESS_TTL: Duration = Duration::from_secs(5 * 60);
/// Clock drift allowed on top of [`MAX_INGRESS_TTL`].
pub const PERMITTED_DRIFT: Duration = Duration::from_secs(60);

const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
const OID_COSE: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb8, 0x43, 0x01, 0x01];
const OID_CANISTER_SIG: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb8, 0x43, 0x01, 0x02];

/// Why a request is not authentic or not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the anonymous sender may not carry {0}")]
    AnonymousWithCredentials(&'static str),
    #[error("sender {0} is not anonymous: the request needs sender_pubkey and sender_sig")]
    MissingCredentials(Principal),
    #[error("sender {sender} is not the self-authenticating id of sender_pubkey ({derived})")]
    SenderMismatch {
        sender: Principal,
        derived: Principal,
    },
    #[error("{what}: {reason}")]
    BadPublicKey { what: String, reason: String },
    #[error("{what}: {scheme} keys are not supported by this replica")]
    UnsupportedKey { what: String, scheme: &'static str },
    #[error("{0}: the signature does not verify")]
    BadSignature(String),
    #[error("{what}: the canister signature does not verify: {reason}")]
    BadCanisterSignature { what: String, reason: String },
    #[error("delegation {index} expired at {expiration} ns; now is {now} ns")]
    DelegationExpired {
        index: usize,
        expiration: u64,
        now: u64,
    },
    #[error("delegation {0} delegates to a key that already appears in the chain")]
    DelegationCycle(usize),
    #[error("more than {MAX_DELEGATIONS} delegations")]
    TooManyDelegations,
    #[error("canister {0} is not among the delegation's targets")]
    NotATarget(Principal),
    #[error("ingress_expiry {expiry} ns is in the past (now {now} ns)")]
    Expired { expiry: u64, now: u64 },
    #[error("ingress_expiry {expiry} ns is more than {max_s} s after now ({now} ns)")]
    ExpiryTooFar { expiry: u64, now: u64, max_s: u64 },
}

/// A verified public key.
#[derive(Clone, Debug)]
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    Secp256k1(k256::ecdsa::VerifyingKey),
    /// A canister signature key, checked against `root_key_der`.
    Canister {
        canister: Principal,
        seed: Vec<u8>,
        root_key_der: Vec<u8>,
    },
}

impl PublicKey {
    /// Parses a DER `SubjectPublicKeyInfo`; `what` names it in errors.
    /// Canister signature keys are refused (they need the root key: see
    /// [`PublicKey::from_der_with_root`]).
    pub fn from_der(der: &[u8], what: &str) -> Result<PublicKey, AuthError> {
        PublicKey::from_der_with_root(der, what, None)
    }

    /// Parses a DER `SubjectPublicKeyInfo`; canister signature keys verify
    /// against `root_key_der` (refused without one).
    pub fn from_der_with_root(
        der: &[u8],
        what: &str,
        root_key_der: Option<&[u8]>,
    ) -> Result<PublicKey, AuthError> {
        let bad = |reason: &str| AuthError::BadPublicKey {
            what: what.to_string(),
            reason: reason.to_string(),
        };
        let Spki {
            algorithm,
            curve,
            key,
        } = parse_spki(der).ok_or_else(|| bad("not a DER SubjectPublicKeyInfo"))?;
        match (algorithm, curve) {
            (OID_ED25519, None) => {
                let bytes: &[u8; 32] = key
                    .try_into()
                    .map_err(|_| bad("an Ed25519 key has 32 bytes"))?;
                ed25519_dalek::VerifyingKey::from_bytes(bytes)
                    .map(PublicKey::Ed25519)
                    .map_err(|_| bad("not a point of Ed25519"))
            }
            (OID_EC_PUBLIC_KEY, Some(OID_P256)) => p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                .map(PublicKey::P256)
                .map_err(|_| bad("not a point of P-256")),
            (OID_EC_PUBLIC_KEY, Some(OID_SECP256K1)) => {
                k256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                    .map(PublicKey::Secp256k1)
                    .map_err(|_| bad("not a point of secp256k1"))
            }
            (OID_CANISTER_SIG, None) => match (root_key_der, canister_sig::parse_key(key)) {
                (Some(root), Some((canister, seed))) => Ok(PublicKey::Canister {
                    canister,
                    seed,
                    root_key_der: root.to_vec(),
                }),
                (Some(_), None) => Err(bad("a canister signature key is |id| · id · seed")),
                (None, _) => Err(AuthError::UnsupportedKey {
                    what: what.to_string(),
                    scheme: "canister signature",
                }),
            },
            (OID_COSE, _) => Err(AuthError::UnsupportedKey {
                what: what.to_string(),
                scheme: "WebAuthn (COSE)",
            }),
            _ => Err(bad(
                "unknown algorithm (expected Ed25519, ECDSA P-256 or ECDSA secp256k1)",
            )),
        }
    }

    /// Verifies `signature` of `message`; `what` names it in errors.
    pub fn verify(&self, message: &[u8], signature: &[u8], what: &str) -> Result<(), AuthError> {
        let refused = || AuthError::BadSignature(what.to_string());
        match self {
            PublicKey::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| refused())?;
                key.verify_strict(message, &sig).map_err(|_| refused())
            }
            PublicKey::P256(key) => {
                use p256::ecdsa::signature::Verifier;
                let sig = p256::ecdsa::Signature::from_slice(signature).map_err(|_| refused())?;
                let sig = sig.normalize_s().unwrap_or(sig);
                key.verify(message, &sig).map_err(|_| refused())
            }
            PublicKey::Secp256k1(key) => {
                use k256::ecdsa::signature::Verifier;
                let sig = k256::ecdsa::Signature::from_slice(signature).map_err(|_| refused())?;
                let sig = sig.normalize_s().unwrap_or(sig);
                key.verify(message, &sig).map_err(|_| refused())
            }
            PublicKey::Canister {
                canister,
                seed,
                root_key_der,
            } => canister_sig::verify(message, signature, *canister, seed, root_key_der).map_err(
                |e| AuthError::BadCanisterSignature {
                    what: what.to_string(),
                    reason: e.to_string(),
                },
            ),
        }
    }
}

/// What authentication established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    pub sender: Principal,
    /// The canisters the delegations allow; `None`: any.
    pub targets: Option<Vec<Principal>>,
}

impl Authorized {
    /// Refuses a request to `canister` that the delegations do not allow.
    pub fn check_target(&self, canister: Principal) -> Result<(), AuthError> {
        match &self.targets {
            Some(targets) if !targets.contains(&canister) => Err(AuthError::NotATarget(canister)),
            _ => Ok(()),
        }
    }
}

/// Checks `ingress_expiry` against `now_ns`: not past, and at most
/// [`MAX_INGRESS_TTL`] + [`PERMITTED_DRIFT`] ahead.
pub fn check_expiry(ingress_expiry: u64, now_ns: u64) -> Result<(), AuthError> {
    let max = MAX_INGRESS_TTL + PERMITTED_DRIFT;
    if ingress_expiry < now_ns {
        return Err(AuthError::Expired {
            expiry: ingress_expiry,
            now: now_ns,
        });
    }
    if ingress_expiry - now_ns > max.as_nanos() as u64 {
        return Err(AuthError::ExpiryTooFar {
            expiry: ingress_expiry,
            now: now_ns,
            max_s: max.as_secs(),
        });
    }
    Ok(())
}

/// Authenticates `envelope` at time `now_ns` (signatures and delegations;
/// the caller checks `ingress_expiry` with [`check_expiry`]). Canister
/// signatures are refused: see [`authenticate_with_root_key`].
pub fn authenticate(envelope: &Envelope, now_ns: u64) -> Result<Authorized, AuthError> {
    authenticate_with_root_key(envelope, now_ns, None)
}

/// [`authenticate`], with canister signatures verified against the DER
/// root key.
pub fn authenticate_with_root_key(
    envelope: &Envelope,
    now_ns: u64,
    root_key_der: Option<&[u8]>,
) -> Result<Authorized, AuthError> {
    let sender = envelope.content.sender;
    if sender == Principal::anonymous() {
        if envelope.sender_pubkey.is_some() {
            return Err(AuthError::AnonymousWithCredentials("sender_pubkey"));
        }
        if envelope.sender_sig.is_some() {
            return Err(AuthError::AnonymousWithCredentials("sender_sig"));
        }
        if !envelope.sender_delegation.is_empty() {
            return Err(AuthError::AnonymousWithCredentials("sender_delegation"));
        }
        return Ok(Authorized {
            sender,
            targets: None,
        });
    }
    let (Some(pubkey), Some(sig)) = (&envelope.sender_pubkey, &envelope.sender_sig) else {
        return Err(AuthError::MissingCredentials(sender));
    };
    let derived = Principal::self_authenticating(pubkey);
    if derived != sender {
        return Err(AuthError::SenderMismatch { sender, derived });
    }
    if envelope.sender_delegation.len() > MAX_DELEGATIONS {
        return Err(AuthError::TooManyDelegations);
    }
    let mut key = PublicKey::from_der_with_root(pubkey, "sender_pubkey", root_key_der)?;
    let mut seen: Vec<&[u8]> = vec![pubkey];
    let mut targets: Option<Vec<Principal>> = None;
    for (index, d) in envelope.sender_delegation.iter().enumerate() {
        let what = format!("sender_delegation[{index}]");
        let mut message = DELEGATION_DOMAIN.to_vec();
        message.extend_from_slice(&d.hash);
        key.verify(&message, &d.signature, &what)?;
        if d.expiration < now_ns {
            return Err(AuthError::DelegationExpired {
                index,
                expiration: d.expiration,
                now: now_ns,
            });
        }
        if seen.contains(&d.pubkey.as_slice()) {
            return Err(AuthError::DelegationCycle(index));
        }
        seen.push(&d.pubkey);
        if let Some(ts) = &d.targets {
            targets = Some(match targets {
                None => ts.clone(),
                Some(before) => before.into_iter().filter(|t| ts.contains(t)).collect(),
            });
        }
        key = PublicKey::from_der_with_root(&d.pubkey, &format!("{what}.pubkey"), root_key_der)?;
    }
    let mut message = REQUEST_DOMAIN.to_vec();
    message.extend_from_slice(&envelope.request_id);
    key.verify(&message, sig, "sender_sig")?;
    Ok(Authorized { sender, targets })
}

/// The parts of a DER SubjectPublicKeyInfo.
struct Spki<'a> {
    /// The algorithm's object identifier (contents octets).
    algorithm: &'a [u8],
    /// The curve's object identifier, for ECDSA keys.
    curve: Option<&'a [u8]>,
    /// The key bytes of the bit string.
    key: &'a [u8],
}

fn parse_spki(der: &[u8]) -> Option<Spki<'_>> {
    let (spki, rest) = tlv(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (algorithm, rest) = tlv(spki, 0x30)?;
    let (bits, tail) = tlv(rest, 0x03)?;
    if !tail.is_empty() {
        return None;
    }
    let (oid, params) = tlv(algorithm, 0x06)?;
    let curve = if params.is_empty() {
        None
    } else {
        let (curve, tail) = tlv(params, 0x06)?;
        if !tail.is_empty() {
            return None;
        }
        Some(curve)
    };
    // A bit string starts with its count of unused bits: 0 for keys.
    let (&unused, key) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    Some(Spki {
        algorithm: oid,
        curve,
        key,
    })
}

/// One DER element of tag `tag`: `(contents, rest)`.
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 2 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| acc << 8 | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbor::{map, Cbor};
    use crate::envelope;
    use crate::hash::hash_value;

    const NOW: u64 = 1_800_000_000_000_000_000;

    /// A signer made with the real crates.
    enum Signer {
        Ed(ed25519_dalek::SigningKey),
        P256(p256::ecdsa::SigningKey),
        K256(k256::ecdsa::SigningKey),
    }

    impl Signer {
        fn all(seed: u8) -> Vec<Signer> {
            vec![
                Signer::Ed(ed25519_dalek::SigningKey::from_bytes(&[seed; 32])),
                Signer::P256(p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap()),
                Signer::K256(k256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap()),
            ]
        }

        fn der(&self) -> Vec<u8> {
            match self {
                Signer::Ed(k) => {
                    let mut der = hex::decode("302a300506032b6570032100").unwrap();
                    der.extend_from_slice(k.verifying_key().as_bytes());
                    der
                }
                Signer::P256(k) => {
                    let mut der =
                        hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200")
                            .unwrap();
                    der.extend_from_slice(k.verifying_key().to_encoded_point(false).as_bytes());
                    der
                }
                Signer::K256(k) => {
                    let mut der =
                        hex::decode("3056301006072a8648ce3d020106052b8104000a034200").unwrap();
                    der.extend_from_slice(k.verifying_key().to_encoded_point(false).as_bytes());
                    der
                }
            }
        }

        fn sign(&self, message: &[u8]) -> Vec<u8> {
            match self {
                Signer::Ed(k) => {
                    use ed25519_dalek::Signer as _;
                    k.sign(message).to_bytes().to_vec()
                }
                Signer::P256(k) => {
                    use p256::ecdsa::signature::Signer as _;
                    let s: p256::ecdsa::Signature = k.sign(message);
                    s.to_bytes().to_vec()
                }
                Signer::K256(k) => {
                    use k256::ecdsa::signature::Signer as _;
                    let s: k256::ecdsa::Signature = k.sign(message);
                    s.to_bytes().to_vec()
                }
            }
        }

        fn principal(&self) -> Principal {
            Principal::self_authenticating(self.der())
        }
    }

    fn content(sender: Principal, canister: Principal) -> Cbor {
        map([
            ("request_type", Cbor::Text("call".into())),
            ("sender", Cbor::Bytes(sender.as_slice().to_vec())),
            ("ingress_expiry", Cbor::Uint(NOW + 60_000_000_000)),
            ("canister_id", Cbor::Bytes(canister.as_slice().to_vec())),
            ("method_name", Cbor::Text("inc".into())),
            ("arg", Cbor::Bytes(b"DIDL\x00\x00".to_vec())),
        ])
    }

    fn request_id(content: &Cbor) -> [u8; 32] {
        hash_value(&envelope::to_value(content, "content").unwrap())
    }

    fn signed(signer: &Signer, canister: Principal) -> Vec<u8> {
        let c = content(signer.principal(), canister);
        let mut msg = REQUEST_DOMAIN.to_vec();
        msg.extend_from_slice(&request_id(&c));
        map([
            ("content", c),
            ("sender_pubkey", Cbor::Bytes(signer.der())),
            ("sender_sig", Cbor::Bytes(signer.sign(&msg))),
        ])
        .encode_self_described()
    }

    fn canister() -> Principal {
        Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    }

    fn check(body: &[u8]) -> Result<Authorized, AuthError> {
        authenticate(&envelope::parse(body).unwrap(), NOW)
    }

    #[test]
    fn each_scheme_verifies_and_refuses_tampering() {
        for signer in Signer::all(7) {
            let body = signed(&signer, canister());
            let ok = check(&body).unwrap();
            assert_eq!(ok.sender, signer.principal());
            assert_eq!(ok.targets, None);
            // Flip a bit of the signature (the last byte of the body).
            let mut bad = body.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(matches!(check(&bad), Err(AuthError::BadSignature(_))));
            // The same signature over another request: arg changed.
            let env = envelope::parse(&body).unwrap();
            let mut other = env.clone();
            other.request_id[0] ^= 1;
            assert!(matches!(
                authenticate(&other, NOW),
                Err(AuthError::BadSignature(_))
            ));
        }
    }

    #[test]
    fn sender_must_match_the_key() {
        let [a, b, ..] = &Signer::all(1)[..] else {
            unreachable!()
        };
        let c = content(b.principal(), canister());
        let mut msg = REQUEST_DOMAIN.to_vec();
        msg.extend_from_slice(&request_id(&c));
        let body = map([
            ("content", c),
            ("sender_pubkey", Cbor::Bytes(a.der())),
            ("sender_sig", Cbor::Bytes(a.sign(&msg))),
        ])
        .encode();
        assert!(matches!(
            check(&body),
            Err(AuthError::SenderMismatch { .. })
        ));
    }

    #[test]
    fn anonymous_carries_no_credentials() {
        let c = content(Principal::anonymous(), canister());
        let ok = map([("content", c.clone())]).encode();
        assert_eq!(check(&ok).unwrap().sender, Principal::anonymous());
        let with_key = map([("content", c), ("sender_pubkey", Cbor::Bytes(vec![1]))]).encode();
        assert!(matches!(
            check(&with_key),
            Err(AuthError::AnonymousWithCredentials(_))
        ));
    }

    fn delegation(
        from: &Signer,
        to: &Signer,
        expiration: u64,
        targets: Option<&[Principal]>,
    ) -> Cbor {
        let mut fields = vec![
            ("pubkey", Cbor::Bytes(to.der())),
            ("expiration", Cbor::Uint(expiration)),
        ];
        if let Some(ts) = targets {
            fields.push((
                "targets",
                Cbor::Array(
                    ts.iter()
                        .map(|t| Cbor::Bytes(t.as_slice().to_vec()))
                        .collect(),
                ),
            ));
        }
        let d = map(fields);
        let mut msg = DELEGATION_DOMAIN.to_vec();
        msg.extend_from_slice(&hash_value(&envelope::to_value(&d, "d").unwrap()));
        map([
            ("delegation", d),
            ("signature", Cbor::Bytes(from.sign(&msg))),
        ])
    }

    fn delegated(root: &Signer, chain: Vec<Cbor>, last: &Signer, canister: Principal) -> Vec<u8> {
        let c = content(root.principal(), canister);
        let mut msg = REQUEST_DOMAIN.to_vec();
        msg.extend_from_slice(&request_id(&c));
        map([
            ("content", c),
            ("sender_pubkey", Cbor::Bytes(root.der())),
            ("sender_delegation", Cbor::Array(chain)),
            ("sender_sig", Cbor::Bytes(last.sign(&msg))),
        ])
        .encode()
    }

    #[test]
    fn delegation_chains() {
        let root = Signer::Ed(ed25519_dalek::SigningKey::from_bytes(&[1; 32]));
        let mid = Signer::P256(p256::ecdsa::SigningKey::from_slice(&[2; 32]).unwrap());
        let session = Signer::K256(k256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap());
        let later = NOW + 1_000_000_000;
        let other = Principal::from_slice(&[9; 10]);

        // A two-step chain, targets narrowed to `canister`.
        let chain = vec![
            delegation(&root, &mid, later, Some(&[canister(), other])),
            delegation(&mid, &session, later, Some(&[canister()])),
        ];
        let ok = check(&delegated(&root, chain, &session, canister())).unwrap();
        assert_eq!(ok.sender, root.principal());
        assert_eq!(ok.targets, Some(vec![canister()]));
        assert_eq!(ok.check_target(canister()), Ok(()));
        assert_eq!(ok.check_target(other), Err(AuthError::NotATarget(other)));

        // Signed by the wrong key at the end.
        let chain = vec![delegation(&root, &session, later, None)];
        assert!(matches!(
            check(&delegated(&root, chain, &mid, canister())),
            Err(AuthError::BadSignature(_))
        ));
        // A delegation signed by a key that is not the one before it.
        let chain = vec![delegation(&mid, &session, later, None)];
        assert!(matches!(
            check(&delegated(&root, chain, &session, canister())),
            Err(AuthError::BadSignature(_))
        ));
        // Expired.
        let chain = vec![delegation(&root, &session, NOW - 1, None)];
        assert!(matches!(
            check(&delegated(&root, chain, &session, canister())),
            Err(AuthError::DelegationExpired { index: 0, .. })
        ));
        // A cycle back to the sender's key.
        let chain = vec![
            delegation(&root, &session, later, None),
            delegation(&session, &root, later, None),
        ];
        assert!(matches!(
            check(&delegated(&root, chain, &root, canister())),
            Err(AuthError::DelegationCycle(1))
        ));
    }

    #[test]
    fn expiry_window() {
        assert_eq!(check_expiry(NOW, NOW), Ok(()));
        assert_eq!(check_expiry(NOW + 360_000_000_000, NOW), Ok(()));
        assert!(matches!(
            check_expiry(NOW - 1, NOW),
            Err(AuthError::Expired { .. })
        ));
        assert!(matches!(
            check_expiry(NOW + 360_000_000_001, NOW),
            Err(AuthError::ExpiryTooFar { .. })
        ));
    }

    #[test]
    fn recognises_unsupported_and_malformed_keys() {
        // SEQUENCE { SEQUENCE { OID canister-sig }, BIT STRING { 14 bytes } }
        let mut canister_sig_key = vec![0x30, 0x1f, 0x30, 0x0c, 0x06, 0x0a];
        canister_sig_key.extend_from_slice(OID_CANISTER_SIG);
        canister_sig_key.extend_from_slice(&[0x03, 0x0f, 0x00]);
        canister_sig_key
            .extend_from_slice(&[0x0a, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x61, 0x62, 0x63, 0x64]);
        assert_eq!(canister_sig_key.len(), 0x1f + 2);
        assert!(matches!(
            PublicKey::from_der(&canister_sig_key, "k"),
            Err(AuthError::UnsupportedKey { .. })
        ));
        for bad in [&[][..], &[0x30, 0x05, 0x30], &[0x30, 0x00]] {
            assert!(matches!(
                PublicKey::from_der(bad, "k"),
                Err(AuthError::BadPublicKey { .. })
            ));
        }
        let signer = Signer::Ed(ed25519_dalek::SigningKey::from_bytes(&[5; 32]));
        let mut der = signer.der();
        der.push(0);
        assert!(PublicKey::from_der(&der, "k").is_err());
    }
}
