//! Canister signatures: how Internet Identity signs delegations.
//!
//! A canister-signature public key (OID 1.3.6.1.4.1.56387.1.2) holds
//! `|canister id| · canister id · seed`. A signature of message `m` is the
//! CBOR map `{certificate, tree}`: `tree` is a hash tree with
//! `/sig/<SHA-256(seed)>/<SHA-256(m)>` = `""`, and `certificate` is a
//! certificate, signed by the root key, whose
//! `/canister/<canister id>/certified_data` is the root hash of `tree`
//! (interface specification, "Canister signatures"). Certificates with a
//! subnet delegation are refused: this replica has one subnet, the root.

use candid::Principal;
use sha2::{Digest, Sha256};

use crate::cbor::{self, Cbor};
use crate::certification::BLS_DER_PREFIX;

/// Why a canister signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanisterSigError {
    #[error("the canister signature is not CBOR: {0}")]
    Cbor(#[from] cbor::CborError),
    #[error("the canister signature is malformed: {0}")]
    Malformed(&'static str),
    #[error("the certificate carries a subnet delegation; this replica has only the root subnet")]
    Delegated,
    #[error("the certificate's BLS signature does not verify with the root key")]
    BadCertificate,
    #[error("the certificate does not certify the signature tree as {0}'s certified data")]
    NotCertified(Principal),
    #[error("the signature tree does not sign this message for this seed")]
    NotSigned,
}

/// `(canister id, seed)` of a canister-signature key's bit string.
pub fn parse_key(key: &[u8]) -> Option<(Principal, Vec<u8>)> {
    let (&len, rest) = key.split_first()?;
    let len = len as usize;
    if len > 29 || rest.len() < len {
        return None;
    }
    Some((Principal::from_slice(&rest[..len]), rest[len..].to_vec()))
}

/// Verifies `signature` of `message` by `canister` with `seed`, against
/// the DER root key.
pub fn verify(
    message: &[u8],
    signature: &[u8],
    canister: Principal,
    seed: &[u8],
    root_key_der: &[u8],
) -> Result<(), CanisterSigError> {
    let sig = cbor::decode(signature)?;
    let Some(Cbor::Bytes(cert_bytes)) = sig.get("certificate").map(Cbor::untagged) else {
        return Err(CanisterSigError::Malformed("no certificate"));
    };
    let tree = sig
        .get("tree")
        .ok_or(CanisterSigError::Malformed("no tree"))?;
    let cert = cbor::decode(cert_bytes)?;
    if cert.get("delegation").is_some() {
        return Err(CanisterSigError::Delegated);
    }
    let cert_tree = cert
        .get("tree")
        .ok_or(CanisterSigError::Malformed("the certificate has no tree"))?;
    let Some(Cbor::Bytes(bls)) = cert.get("signature").map(Cbor::untagged) else {
        return Err(CanisterSigError::Malformed(
            "the certificate has no signature",
        ));
    };
    let root_key = root_key_der
        .strip_prefix(&BLS_DER_PREFIX[..])
        .ok_or(CanisterSigError::BadCertificate)?;
    let mut signed = b"\x0dic-state-root".to_vec();
    signed.extend_from_slice(&digest(cert_tree)?);
    ic_verify_bls_signature::verify_bls_signature(bls, &signed, root_key)
        .map_err(|_| CanisterSigError::BadCertificate)?;
    let certified = lookup(
        cert_tree,
        &[b"canister", canister.as_slice(), b"certified_data"],
    );
    if certified != Some(&digest(tree)?[..]) {
        return Err(CanisterSigError::NotCertified(canister));
    }
    let seed_hash = Sha256::digest(seed);
    let message_hash = Sha256::digest(message);
    match lookup(tree, &[b"sig", &seed_hash[..], &message_hash[..]]) {
        Some(b"") => Ok(()),
        _ => Err(CanisterSigError::NotSigned),
    }
}

fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The root hash of a CBOR hash tree (`[0]`, `[1, l, r]`, `[2, label, t]`,
/// `[3, value]`, `[4, hash]`).
pub fn digest(tree: &Cbor) -> Result<[u8; 32], CanisterSigError> {
    let bad = CanisterSigError::Malformed("not a hash tree");
    let Cbor::Array(items) = tree.untagged() else {
        return Err(bad);
    };
    let bytes = |i: usize| match items.get(i).map(Cbor::untagged) {
        Some(Cbor::Bytes(b)) => Ok(b.as_slice()),
        _ => Err(CanisterSigError::Malformed("not a hash tree")),
    };
    let sub = |i: usize| {
        items
            .get(i)
            .ok_or(CanisterSigError::Malformed("not a hash tree"))
            .and_then(digest)
    };
    match (items.first().map(Cbor::untagged), items.len()) {
        (Some(Cbor::Uint(0)), 1) => Ok(sha256_parts(&[b"\x11ic-hashtree-empty"])),
        (Some(Cbor::Uint(1)), 3) => {
            Ok(sha256_parts(&[b"\x10ic-hashtree-fork", &sub(1)?, &sub(2)?]))
        }
        (Some(Cbor::Uint(2)), 3) => Ok(sha256_parts(&[
            b"\x13ic-hashtree-labeled",
            bytes(1)?,
            &sub(2)?,
        ])),
        (Some(Cbor::Uint(3)), 2) => Ok(sha256_parts(&[b"\x10ic-hashtree-leaf", bytes(1)?])),
        (Some(Cbor::Uint(4)), 2) => bytes(1)?.try_into().map_err(|_| bad),
        _ => Err(bad),
    }
}

/// The leaf at `path`, if the tree reveals it.
fn lookup<'a>(tree: &'a Cbor, path: &[&[u8]]) -> Option<&'a [u8]> {
    let Cbor::Array(items) = tree.untagged() else {
        return None;
    };
    match path.split_first() {
        None => match (
            items.first().map(Cbor::untagged),
            items.get(1).map(Cbor::untagged),
        ) {
            (Some(Cbor::Uint(3)), Some(Cbor::Bytes(v))) => Some(v),
            _ => None,
        },
        Some((label, rest)) => lookup(find_label(tree, label)?, rest),
    }
}

fn find_label<'a>(tree: &'a Cbor, label: &[u8]) -> Option<&'a Cbor> {
    let Cbor::Array(items) = tree.untagged() else {
        return None;
    };
    match items.first().map(Cbor::untagged) {
        Some(Cbor::Uint(1)) => {
            find_label(items.get(1)?, label).or_else(|| find_label(items.get(2)?, label))
        }
        Some(Cbor::Uint(2)) => match items.get(1).map(Cbor::untagged) {
            Some(Cbor::Bytes(l)) if l == label => items.get(2),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::auth::{self, AuthError, DELEGATION_DOMAIN, REQUEST_DOMAIN};
    use crate::cbor::map;
    use crate::certification::{certificate, CanisterEntry, CertifiedState, Keys};
    use crate::envelope;
    use crate::hash::hash_value;

    const NOW: u64 = 1_800_000_000_000_000_000;
    const OID: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb8, 0x43, 0x01, 0x02];

    fn labeled(label: &[u8], t: Cbor) -> Cbor {
        Cbor::Array(vec![Cbor::Uint(2), Cbor::Bytes(label.to_vec()), t])
    }

    /// DER of the canister signature key `(canister, seed)`.
    fn key_der(canister: Principal, seed: &[u8]) -> Vec<u8> {
        let mut bits = vec![0, canister.as_slice().len() as u8];
        bits.extend_from_slice(canister.as_slice());
        bits.extend_from_slice(seed);
        let mut algorithm = vec![0x30, OID.len() as u8 + 2, 0x06, OID.len() as u8];
        algorithm.extend_from_slice(&OID);
        let mut inner = algorithm;
        inner.push(0x03);
        inner.push(bits.len() as u8);
        inner.extend_from_slice(&bits);
        let mut der = vec![0x30, inner.len() as u8];
        der.extend_from_slice(&inner);
        der
    }

    /// What a canister (Internet Identity) makes: the signature tree as its
    /// certified data, and a certificate of it.
    fn sign(keys: &Keys, canister: Principal, seed: &[u8], message: &[u8]) -> Vec<u8> {
        let tree = labeled(
            b"sig",
            labeled(
                &Sha256::digest(seed),
                labeled(
                    &Sha256::digest(message),
                    Cbor::Array(vec![Cbor::Uint(3), Cbor::Bytes(Vec::new())]),
                ),
            ),
        );
        let state = CertifiedState {
            time: NOW,
            requests: BTreeMap::new(),
            canisters: vec![CanisterEntry {
                id: canister,
                module_hash: None,
                controllers: Vec::new(),
                certified_data: digest(&tree).unwrap().to_vec(),
                public_metadata: Vec::new(),
            }],
        };
        let path = vec![
            b"canister".to_vec(),
            canister.as_slice().to_vec(),
            b"certified_data".to_vec(),
        ];
        let cert = certificate(keys, &state, &[path]).unwrap();
        map([("certificate", Cbor::Bytes(cert)), ("tree", tree)]).encode_self_described()
    }

    #[test]
    fn verifies_what_the_canister_certified_and_nothing_else() {
        let keys = Keys::load_or_create(None).unwrap();
        let ii = local_replica::canister_id(7);
        let seed = b"anchor 10000";
        let sig = sign(&keys, ii, seed, b"message");
        let root = keys.root_key_der();
        assert_eq!(verify(b"message", &sig, ii, seed, &root), Ok(()));
        assert_eq!(
            verify(b"other message", &sig, ii, seed, &root),
            Err(CanisterSigError::NotSigned)
        );
        assert_eq!(
            verify(b"message", &sig, ii, b"another seed", &root),
            Err(CanisterSigError::NotSigned)
        );
        let other = local_replica::canister_id(8);
        assert_eq!(
            verify(b"message", &sig, other, seed, &root),
            Err(CanisterSigError::NotCertified(other))
        );
        let stranger = Keys::load_or_create(None).unwrap().root_key_der();
        assert_eq!(
            verify(b"message", &sig, ii, seed, &stranger),
            Err(CanisterSigError::BadCertificate)
        );
        assert!(verify(b"message", &sig[..sig.len() - 1], ii, seed, &root).is_err());
    }

    /// Internet Identity's shape: the user's key is a canister signature
    /// key, which delegates to the browser's session key.
    #[test]
    fn internet_identity_delegations_authenticate() {
        use ed25519_dalek::Signer;
        let keys = Keys::load_or_create(None).unwrap();
        let ii = local_replica::canister_id(7);
        let seed = b"anchor 10000 for https://app.example";
        let user_key = key_der(ii, seed);
        let session = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let mut session_der = hex::decode("302a300506032b6570032100").unwrap();
        session_der.extend_from_slice(session.verifying_key().as_bytes());

        let delegation = map([
            ("pubkey", Cbor::Bytes(session_der)),
            ("expiration", Cbor::Uint(NOW + 3_600_000_000_000)),
        ]);
        let mut delegation_msg = DELEGATION_DOMAIN.to_vec();
        delegation_msg
            .extend_from_slice(&hash_value(&envelope::to_value(&delegation, "d").unwrap()));
        let delegation_sig = sign(&keys, ii, seed, &delegation_msg);

        let sender = Principal::self_authenticating(&user_key);
        let content = map([
            ("request_type", Cbor::Text("call".into())),
            ("sender", Cbor::Bytes(sender.as_slice().to_vec())),
            ("ingress_expiry", Cbor::Uint(NOW + 60_000_000_000)),
            (
                "canister_id",
                Cbor::Bytes(local_replica::canister_id(1).as_slice().to_vec()),
            ),
            ("method_name", Cbor::Text("inc".into())),
            ("arg", Cbor::Bytes(b"DIDL\x00\x00".to_vec())),
        ]);
        let mut request_msg = REQUEST_DOMAIN.to_vec();
        request_msg.extend_from_slice(&hash_value(&envelope::to_value(&content, "c").unwrap()));
        let body = map([
            ("content", content),
            ("sender_pubkey", Cbor::Bytes(user_key)),
            (
                "sender_delegation",
                Cbor::Array(vec![map([
                    ("delegation", delegation),
                    ("signature", Cbor::Bytes(delegation_sig)),
                ])]),
            ),
            (
                "sender_sig",
                Cbor::Bytes(session.sign(&request_msg).to_bytes().to_vec()),
            ),
        ])
        .encode_self_described();
        let env = envelope::parse(&body).unwrap();
        let root = keys.root_key_der();
        let who = auth::authenticate_with_root_key(&env, NOW, Some(&root)).unwrap();
        assert_eq!(who.sender, sender);
        // Without the root key, canister signatures are not accepted.
        assert!(matches!(
            auth::authenticate(&env, NOW),
            Err(AuthError::UnsupportedKey { .. })
        ));
        // With another root key, the delegation's signature fails.
        let stranger = Keys::load_or_create(None).unwrap().root_key_der();
        assert!(matches!(
            auth::authenticate_with_root_key(&env, NOW, Some(&stranger)),
            Err(AuthError::BadCanisterSignature { .. })
        ));
    }
}
