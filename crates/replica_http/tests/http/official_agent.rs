//! What `ic-agent` does against the server: status and root key, canister
//! creation and installation through the management canister, update calls
//! with their certificates verified, queries with their node signatures
//! verified, read_state, every signature scheme, delegations.

use std::time::Duration;

use candid::Principal;
use ic_agent::agent::{RejectCode, RequestStatusResponse};
use ic_agent::identity::{
    DelegatedIdentity, Delegation, Prime256v1Identity, Secp256k1Identity, SignedDelegation,
};
use ic_agent::{AgentError, Identity};
use replica_http::cbor::{self, Cbor};
use replica_http::server::{serve, ServeConfig};
use sha2::{Digest, Sha256};

use crate::common::{agent_for, counter_wasm, create_and_install, ed25519, http, post, Env};

fn inc(env: &Env, agent: &ic_agent::Agent) -> Result<u64, AgentError> {
    let out = env
        .rt
        .block_on(agent.update(&env.canister, "inc").call_and_wait())?;
    Ok(u64::from_le_bytes(out.try_into().expect("8 bytes")))
}

#[test]
fn status_serves_the_root_key() {
    let env = Env::start();
    let status = env.rt.block_on(env.agent.status()).expect("status");
    assert_eq!(status.root_key, Some(env.server.root_key_der()));
    assert_eq!(status.replica_health_status.as_deref(), Some("healthy"));
    // The DER BLS12-381 G2 key the IC uses: 37 bytes of prefix, 96 of key.
    assert_eq!(env.server.root_key_der().len(), 133);

    let (code, head, body) = http(env.addr(), "GET", "/api/v2/status", &[], &[]);
    assert_eq!(code, 200);
    assert!(head.contains("application/cbor"), "{head}");
    assert_eq!(&body[..3], [0xd9, 0xd9, 0xf7], "self-described CBOR");
    let item = cbor::decode(&body).expect("CBOR");
    assert_eq!(
        item.get("root_key"),
        Some(&Cbor::Bytes(env.server.root_key_der()))
    );
}

#[test]
fn updates_are_certified_and_queries_signed() {
    let env = Env::start();
    assert_eq!(env.counter(), 0);
    // call_and_wait verifies the certificate against the fetched root key.
    assert_eq!(inc(&env, &env.agent).unwrap(), 1);
    assert_eq!(inc(&env, &env.agent).unwrap(), 2);
    // The agent verifies query signatures by default.
    assert_eq!(env.counter(), 2);
    let present = env
        .rt
        .block_on(env.agent.query(&env.canister, "has_certificate").call())
        .expect("has_certificate");
    assert_eq!(present, [1], "a query sees ic0.data_certificate");
}

#[test]
fn read_state_gives_module_hash_and_controllers() {
    let env = Env::start();
    let hash = env
        .rt
        .block_on(env.agent.read_state_canister_module_hash(env.canister))
        .expect("module_hash");
    assert_eq!(hash, Sha256::digest(counter_wasm()).to_vec());
    let controllers = env
        .rt
        .block_on(env.agent.read_state_canister_controllers(env.canister))
        .expect("controllers");
    assert_eq!(controllers, vec![env.agent.get_principal().unwrap()]);
}

#[test]
fn every_signature_scheme_is_accepted() {
    let env = Env::start();
    let k = Secp256k1Identity::from_private_key(k256::SecretKey::from_slice(&[7; 32]).unwrap());
    let p = Prime256v1Identity::from_private_key(p256::SecretKey::from_slice(&[8; 32]).unwrap());
    let agents = [
        env.agent(k),
        env.agent(p),
        env.agent(ic_agent::identity::AnonymousIdentity),
    ];
    for (i, agent) in agents.iter().enumerate() {
        assert_eq!(inc(&env, agent).unwrap(), i as u64 + 1);
        let out = env
            .rt
            .block_on(agent.query(&env.canister, "read").call())
            .expect("read");
        assert_eq!(out, (i as u64 + 1).to_le_bytes());
    }
}

/// A delegation as the official auth clients make it: a long-lived key
/// delegates to a P-256 session key, for some canisters only.
#[test]
fn delegations_as_auth_clients_make_them() {
    let env = Env::start();
    let root = ed25519(20);
    let session =
        Prime256v1Identity::from_private_key(p256::SecretKey::from_slice(&[21; 32]).unwrap());
    let delegation = Delegation {
        pubkey: session.public_key().unwrap(),
        expiration: replica_now() + 3_600_000_000_000,
        targets: Some(vec![env.canister]),
    };
    let signature = root.sign_delegation(&delegation).unwrap();
    let identity = DelegatedIdentity::new(
        root.public_key().unwrap(),
        Box::new(session),
        vec![SignedDelegation {
            delegation,
            signature: signature.signature.unwrap(),
        }],
    )
    .expect("a valid chain");
    assert_eq!(
        identity.sender().unwrap(),
        Principal::self_authenticating(root.public_key().unwrap())
    );
    let agent = env.agent(identity);
    assert_eq!(inc(&env, &agent).unwrap(), 1);
    let out = env
        .rt
        .block_on(agent.query(&env.canister, "read").call())
        .expect("read");
    assert_eq!(out, 1u64.to_le_bytes());
}

pub fn replica_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn inspect_message_refusal_is_a_non_replicated_rejection() {
    let env = Env::start();
    let err = env
        .rt
        .block_on(env.agent.update(&env.canister, "refused").call_and_wait())
        .expect_err("inspect_message refuses");
    match err {
        AgentError::UncertifiedReject { reject, .. } => {
            assert_eq!(reject.reject_code, RejectCode::CanisterReject);
            assert_eq!(reject.error_code.as_deref(), Some("IC0406"));
        }
        other => panic!("expected an uncertified reject, got {other}"),
    }
    // The asynchronous endpoint: 200 with the rejection, no status field.
    let signed = env
        .agent
        .update(&env.canister, "refused")
        .sign()
        .expect("sign");
    let (code, _, raw) = http(
        env.addr(),
        "POST",
        &format!("/api/v2/canister/{}/call", env.canister),
        &[],
        &signed.signed_update,
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&raw));
    let item = cbor::decode(&raw).expect("CBOR");
    assert_eq!(item.get("reject_code"), Some(&Cbor::Uint(4)));
    assert_eq!(item.get("status"), None);
    assert_eq!(env.counter(), 0);
}

#[test]
fn traps_and_rejects_reach_the_agent() {
    let env = Env::start();
    let err = env
        .rt
        .block_on(env.agent.update(&env.canister, "boom").call_and_wait())
        .expect_err("boom traps");
    match err {
        AgentError::CertifiedReject { reject, .. } => {
            assert_eq!(reject.reject_code, RejectCode::CanisterError);
            assert!(
                reject.reject_message.contains("boom!"),
                "{}",
                reject.reject_message
            );
        }
        other => panic!("expected a certified reject, got {other}"),
    }
    let err = env
        .rt
        .block_on(env.agent.query(&env.canister, "no").call())
        .expect_err("no rejects");
    match err {
        AgentError::UncertifiedReject { reject, .. } => {
            assert_eq!(reject.reject_code, RejectCode::CanisterReject);
            assert_eq!(reject.reject_message, "no thanks");
        }
        other => panic!("expected a signed query reject, got {other}"),
    }
}

/// With no time to wait, the synchronous endpoint answers 202 and the
/// agent polls read_state for the certified status.
#[test]
fn calls_that_outlast_the_sync_timeout_are_polled() {
    let server = serve(ServeConfig {
        sync_call_timeout: Duration::ZERO,
        ..ServeConfig::default()
    })
    .expect("server");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let agent = rt.block_on(agent_for(&server, ed25519(30)));
    let canister = rt.block_on(create_and_install(&agent, &counter_wasm()));
    let out = rt
        .block_on(agent.update(&canister, "inc").call_and_wait())
        .expect("inc");
    assert_eq!(out, 1u64.to_le_bytes());
    server.shutdown();
}

#[test]
fn request_status_is_readable_by_its_sender_only() {
    let env = Env::start();
    let signed = env.agent.update(&env.canister, "inc").sign().expect("sign");
    let (code, body) = post(
        env.addr(),
        &format!("/api/v2/canister/{}/call", env.canister),
        &signed.signed_update,
    );
    assert_eq!(code, 202, "{body}");
    let status = loop {
        let (status, _) = env
            .rt
            .block_on(
                env.agent
                    .request_status_raw(&signed.request_id, env.canister),
            )
            .expect("request status");
        if !matches!(
            status,
            RequestStatusResponse::Processing | RequestStatusResponse::Received
        ) {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    match status {
        RequestStatusResponse::Replied(reply) => assert_eq!(reply.arg, 1u64.to_le_bytes()),
        other => panic!("expected a reply, got {other:?}"),
    }
    let stranger = env.agent(ed25519(99));
    match env
        .rt
        .block_on(stranger.request_status_raw(&signed.request_id, env.canister))
    {
        Err(AgentError::HttpError(payload)) => assert_eq!(payload.status, 403),
        other => panic!("expected 403, got {other:?}"),
    }
}

#[test]
fn cors_preflight() {
    let env = Env::start();
    let (code, head, _) = http(
        env.addr(),
        "OPTIONS",
        &format!("/api/v3/canister/{}/query", env.canister),
        &[
            ("Origin", "http://localhost:5173"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        &[],
    );
    assert_eq!(code, 204);
    let head = head.to_ascii_lowercase();
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(
        head.contains("access-control-allow-headers: content-type"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-methods: get, post, options"),
        "{head}"
    );
}
