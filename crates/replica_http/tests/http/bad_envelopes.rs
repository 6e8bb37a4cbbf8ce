//! Requests the server must refuse, each with its exact status and proof
//! that nothing changed: the counter is where it was and the request left
//! no status behind.

use std::time::{Duration, SystemTime};

use candid::Principal;
use ic_agent::agent::RequestStatusResponse;
use ic_agent::identity::{DelegatedIdentity, Delegation, SignedDelegation};
use ic_agent::Identity;
use replica_http::auth::{DELEGATION_DOMAIN, REQUEST_DOMAIN};
use replica_http::cbor::{self, map, Cbor};
use replica_http::envelope;
use replica_http::hash::hash_value;

use crate::common::{ed25519, post, Env};
use crate::official_agent::replica_now;

fn call_path(canister: Principal) -> String {
    format!("/api/v2/canister/{canister}/call")
}

/// The counter did not move and `request_id` is unknown to the replica.
fn assert_unchanged(env: &Env, request_id: &ic_agent::RequestId) {
    assert_eq!(env.counter(), 0, "the counter moved");
    let (status, _) = env
        .rt
        .block_on(env.agent.request_status_raw(request_id, env.canister))
        .expect("request status");
    assert!(
        matches!(status, RequestStatusResponse::Unknown),
        "the refused request has a status: {status:?}"
    );
}

/// Replaces `key` of the envelope's top map (or of its content map).
fn with_field(envelope: &[u8], in_content: bool, key: &str, value: Cbor) -> Vec<u8> {
    let replace = |item: &Cbor| -> Cbor {
        let Cbor::Map(entries) = item.untagged() else {
            panic!("not a map")
        };
        Cbor::Map(
            entries
                .iter()
                .map(|(k, v)| {
                    if *k == Cbor::Text(key.into()) {
                        (k.clone(), value.clone())
                    } else {
                        (k.clone(), v.clone())
                    }
                })
                .collect(),
        )
    };
    let top = cbor::decode(envelope).expect("an envelope");
    let out = if in_content {
        let Cbor::Map(entries) = top.untagged() else {
            panic!("not a map")
        };
        Cbor::Map(
            entries
                .iter()
                .map(|(k, v)| {
                    if *k == Cbor::Text("content".into()) {
                        (k.clone(), replace(v))
                    } else {
                        (k.clone(), v.clone())
                    }
                })
                .collect(),
        )
    } else {
        replace(&top)
    };
    out.encode_self_described()
}

#[test]
fn malformed_cbor_is_400() {
    let env = Env::start();
    let cases: [(&[u8], &str); 4] = [
        (b"\xa1\x61", "CBOR ends early"),
        (b"\x1c", "reserved additional information"),
        (b"", "CBOR ends early"),
        // Valid CBOR (a text of 14 bytes), not an envelope.
        (b"not cbor at all", "expected a map, found a text string"),
    ];
    for (body, reason) in cases {
        let (code, text) = post(env.addr(), &call_path(env.canister), body);
        assert_eq!(code, 400, "{text}");
        assert!(text.contains(reason), "{text}");
    }
    // Well-formed CBOR that is not an envelope.
    let (code, text) = post(
        env.addr(),
        &call_path(env.canister),
        &map([("content", Cbor::Uint(1))]).encode(),
    );
    assert_eq!(code, 400, "{text}");
    assert_eq!(env.counter(), 0);
}

#[test]
fn wrong_signature_is_refused() {
    let env = Env::start();
    let signed = env.agent.update(&env.canister, "inc").sign().unwrap();
    let top = cbor::decode(&signed.signed_update).unwrap();
    let Some(Cbor::Bytes(mut sig)) = top.get("sender_sig").cloned() else {
        panic!("no sender_sig")
    };
    sig[10] ^= 0x40;
    let body = with_field(&signed.signed_update, false, "sender_sig", Cbor::Bytes(sig));
    let (code, text) = post(env.addr(), &call_path(env.canister), &body);
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("sender_sig: the signature does not verify"),
        "{text}"
    );
    assert_unchanged(&env, &signed.request_id);
    // The untouched envelope goes through: the tampering was the cause.
    let (code, text) = post(env.addr(), &call_path(env.canister), &signed.signed_update);
    assert_eq!(code, 202, "{text}");
}

#[test]
fn expired_request_is_refused() {
    let env = Env::start();
    let signed = env
        .agent
        .update(&env.canister, "inc")
        .expire_at(SystemTime::now() - Duration::from_secs(60))
        .sign()
        .unwrap();
    let (code, text) = post(env.addr(), &call_path(env.canister), &signed.signed_update);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("in the past"), "{text}");
    assert_unchanged(&env, &signed.request_id);
    // Too far in the future is refused as well.
    let signed = env
        .agent
        .update(&env.canister, "inc")
        .expire_after(Duration::from_secs(3600))
        .sign()
        .unwrap();
    let (code, text) = post(env.addr(), &call_path(env.canister), &signed.signed_update);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("more than 360 s after now"), "{text}");
    assert_unchanged(&env, &signed.request_id);
}

/// A valid delegation chain from key A, but the request says it is from
/// someone else: the sender must be A's self-authenticating id.
#[test]
fn wrong_sender_for_a_delegation_is_refused() {
    let env = Env::start();
    let root = ed25519_dalek::SigningKey::from_bytes(&[40; 32]);
    let session = ed25519_dalek::SigningKey::from_bytes(&[41; 32]);
    let der = |k: &ed25519_dalek::SigningKey| {
        let mut d = hex::decode("302a300506032b6570032100").unwrap();
        d.extend_from_slice(k.verifying_key().as_bytes());
        d
    };
    let sign = |k: &ed25519_dalek::SigningKey, domain: &[u8], hash: [u8; 32]| {
        use ed25519_dalek::Signer;
        let mut msg = domain.to_vec();
        msg.extend_from_slice(&hash);
        Cbor::Bytes(k.sign(&msg).to_bytes().to_vec())
    };
    let delegation = map([
        ("pubkey", Cbor::Bytes(der(&session))),
        ("expiration", Cbor::Uint(replica_now() + 3_600_000_000_000)),
    ]);
    let d_hash = hash_value(&envelope::to_value(&delegation, "d").unwrap());
    let envelope_from = |sender: Principal| {
        let content = map([
            ("request_type", Cbor::Text("call".into())),
            ("sender", Cbor::Bytes(sender.as_slice().to_vec())),
            (
                "ingress_expiry",
                Cbor::Uint(replica_now() + 120_000_000_000),
            ),
            ("canister_id", Cbor::Bytes(env.canister.as_slice().to_vec())),
            ("method_name", Cbor::Text("inc".into())),
            ("arg", Cbor::Bytes(b"DIDL\x00\x00".to_vec())),
        ]);
        let request_id = hash_value(&envelope::to_value(&content, "c").unwrap());
        let body = map([
            ("content", content),
            ("sender_pubkey", Cbor::Bytes(der(&root))),
            (
                "sender_delegation",
                Cbor::Array(vec![map([
                    ("delegation", delegation.clone()),
                    ("signature", sign(&root, DELEGATION_DOMAIN, d_hash)),
                ])]),
            ),
            ("sender_sig", sign(&session, REQUEST_DOMAIN, request_id)),
        ])
        .encode_self_described();
        (body, ic_agent::RequestId::new(&request_id))
    };
    let someone_else = ed25519(42).sender().unwrap();
    let (body, request_id) = envelope_from(someone_else);
    let (code, text) = post(env.addr(), &call_path(env.canister), &body);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("is not the self-authenticating id"), "{text}");
    assert_unchanged(&env, &request_id);
    // The same chain for the right sender is accepted.
    let (body, _) = envelope_from(Principal::self_authenticating(der(&root)));
    let (code, text) = post(env.addr(), &call_path(env.canister), &body);
    assert_eq!(code, 202, "{text}");
}

#[test]
fn delegation_for_other_canisters_is_refused() {
    let env = Env::start();
    let root = ed25519(50);
    let session = ed25519(51);
    let elsewhere = local_replica::canister_id(77);
    let delegation = Delegation {
        pubkey: session.public_key().unwrap(),
        expiration: replica_now() + 3_600_000_000_000,
        targets: Some(vec![elsewhere]),
    };
    let signature = root
        .sign_delegation(&delegation)
        .unwrap()
        .signature
        .unwrap();
    let identity = DelegatedIdentity::new(
        root.public_key().unwrap(),
        Box::new(session),
        vec![SignedDelegation {
            delegation,
            signature,
        }],
    )
    .expect("a valid chain");
    let agent = env.agent(identity);
    let signed = agent.update(&env.canister, "inc").sign().unwrap();
    let (code, text) = post(env.addr(), &call_path(env.canister), &signed.signed_update);
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("is not among the delegation's targets"),
        "{text}"
    );
    assert_unchanged(&env, &signed.request_id);
    // Queries are held to the same targets.
    let signed = agent.query(&env.canister, "read").sign().unwrap();
    let (code, text) = post(
        env.addr(),
        &format!("/api/v2/canister/{}/query", env.canister),
        &signed.signed_query,
    );
    assert_eq!(code, 400, "{text}");
}

/// A canister that does not exist: the replica refuses the call before
/// it enters its state, as the IC does (a non-replicated rejection,
/// DESTINATION_INVALID); an id outside the subnet is a 400.
#[test]
fn unknown_canister_is_refused() {
    let env = Env::start();
    let missing = local_replica::canister_id(4242);
    let signed = env.agent.update(&missing, "inc").sign().unwrap();
    for (path, sync) in [
        (format!("/api/v2/canister/{missing}/call"), false),
        (format!("/api/v4/canister/{missing}/call"), true),
    ] {
        let (code, head, raw) =
            crate::common::http(env.addr(), "POST", &path, &[], &signed.signed_update);
        assert_eq!(code, 200, "{head}");
        let item = cbor::decode(&raw).expect("CBOR");
        assert_eq!(item.get("reject_code"), Some(&Cbor::Uint(3)), "{item:?}");
        assert_eq!(
            item.get("status"),
            sync.then(|| Cbor::Text("non_replicated_rejection".into()))
                .as_ref()
        );
    }
    assert_unchanged(&env, &signed.request_id);
    // Not a canister id of this subnet at all.
    let outside = Principal::from_slice(&[1, 2, 3]);
    let (code, text) = post(
        env.addr(),
        &format!("/api/v2/canister/{outside}/call"),
        &signed.signed_update,
    );
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("not in this subnet's canister range"),
        "{text}"
    );
}

#[test]
fn oversized_body_is_413() {
    let env = Env::start();
    let body = vec![0u8; replica_http::server::MAX_BODY_BYTES + 1];
    let (code, text) = post(env.addr(), &call_path(env.canister), &body);
    assert_eq!(code, 413, "{text}");
    // A well-formed call whose argument is over the 2 MiB ingress limit.
    let signed = env
        .agent
        .update(&env.canister, "inc")
        .with_arg(vec![7u8; 3 * 1024 * 1024])
        .sign()
        .unwrap();
    let (code, text) = post(env.addr(), &call_path(env.canister), &signed.signed_update);
    assert_eq!(code, 413, "{text}");
    assert_unchanged(&env, &signed.request_id);
}

#[test]
fn wrong_effective_canister_id_is_400() {
    let env = Env::start();
    let signed = env.agent.update(&env.canister, "inc").sign().unwrap();
    let other = local_replica::canister_id(5);
    let (code, text) = post(env.addr(), &call_path(other), &signed.signed_update);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("does not match"), "{text}");
    assert_unchanged(&env, &signed.request_id);
}

#[test]
fn read_state_refuses_paths_the_spec_does_not_allow() {
    let env = Env::start();
    let paths = [
        vec![
            b"canister".to_vec(),
            env.canister.as_slice().to_vec(),
            b"certified_data".to_vec(),
        ],
        vec![b"nonsense".to_vec()],
        vec![
            b"canister".to_vec(),
            local_replica::canister_id(9).as_slice().to_vec(),
            b"module_hash".to_vec(),
        ],
    ];
    for path in paths {
        let content = map([
            ("request_type", Cbor::Text("read_state".into())),
            ("sender", Cbor::Bytes(vec![4])),
            ("ingress_expiry", Cbor::Uint(replica_now() + 60_000_000_000)),
            (
                "paths",
                Cbor::Array(vec![Cbor::Array(
                    path.iter().map(|l| Cbor::Bytes(l.clone())).collect(),
                )]),
            ),
        ]);
        let (code, text) = post(
            env.addr(),
            &format!("/api/v3/canister/{}/read_state", env.canister),
            &map([("content", content)]).encode_self_described(),
        );
        assert_eq!(code, 400, "{path:?}: {text}");
    }
}

/// An announced length far beyond the limit is refused from the head
/// alone: nothing is read or allocated, and the server goes on serving.
#[test]
fn absurd_content_length_is_413_and_costs_nothing() {
    let env = Env::start();
    for length in ["1000000000000000", "18446744073709551615"] {
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n",
            call_path(env.canister)
        );
        let (code, text) = crate::common::raw(env.addr(), head.as_bytes());
        assert_eq!(code, 413, "{text}");
    }
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        call_path(env.canister)
    );
    assert_eq!(crate::common::raw(env.addr(), head.as_bytes()).0, 400);
    // A head over 64 KiB.
    let head = format!(
        "GET /api/v2/status HTTP/1.1\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    assert_eq!(crate::common::raw(env.addr(), head.as_bytes()).0, 431);
    // Still serving.
    assert_eq!(env.counter(), 0);
}

/// Chunked bodies and `Expect: 100-continue`, as curl and some clients
/// send them; a chunked body over the limit is refused.
#[test]
fn chunked_bodies_are_read_within_the_limit() {
    let env = Env::start();
    let signed = env.agent.update(&env.canister, "inc").sign().unwrap();
    let body = &signed.signed_update;
    let (first, second) = body.split_at(body.len() / 2);
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        call_path(env.canister)
    )
    .into_bytes();
    for chunk in [first, second] {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (code, text) = crate::common::raw(env.addr(), &request);
    // "100 Continue" first, then the answer to the call.
    assert_eq!(code, 100, "{text}");
    assert!(text.contains("HTTP/1.1 202 Accepted"), "{text}");

    let too_big = replica_http::server::MAX_BODY_BYTES + 1;
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{too_big:x}\r\n",
        call_path(env.canister)
    )
    .into_bytes();
    request.extend_from_slice(&[0u8; 1024]);
    let (code, text) = crate::common::raw(env.addr(), &request);
    assert_eq!(code, 413, "{text}");
}
