//! Certificates of the local replica checked by the verifiers official
//! clients use: `ic-certificate-verification` (signature with the DER root
//! key, time), `ic-cbor` (parsing), `ic-certification` (lookups, as
//! `ic-agent` does them), `ic-verify-bls-signature`, and
//! `ic-transport-types` for what `ic-agent` expects a node to sign.

use std::collections::BTreeMap;
use std::path::PathBuf;

use candid::Principal;
use ic_cbor::{parse_cbor, parse_cbor_principals_array, CborValue, CertificateToCbor};
use ic_certificate_verification::VerifyCertificate;
use ic_certification::{Certificate, LookupResult};
use local_replica::{canister_id, LocalReplica};
use replica_http::certification::{
    certificate, data_certificate, sign_query_response, CanisterEntry, CertificationError,
    CertifiedState, Keys, QueryOutcome, RequestStatus, ED25519_DER_PREFIX,
};
use sha2::{Digest, Sha256};

/// Five minutes, ic-agent's default allowance for a certificate's age.
const MAX_OFFSET_NS: u128 = 300_000_000_000;
const TIME: u64 = 1_735_689_600_000_000_000;

fn keys() -> Keys {
    Keys::load_or_create(None).expect("keys")
}

fn id(n: u8) -> [u8; 32] {
    [n; 32]
}

fn label(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn state() -> CertifiedState {
    let mut requests = BTreeMap::new();
    requests.insert(
        id(1),
        RequestStatus::Replied(b"DIDL\x00\x01\x7d\x2a".to_vec()),
    );
    requests.insert(
        id(2),
        RequestStatus::Rejected {
            reject_code: 4,
            reject_message: "the canister trapped".to_string(),
            error_code: Some("IC0503".to_string()),
        },
    );
    requests.insert(id(3), RequestStatus::Processing);
    requests.insert(id(5), RequestStatus::Done);
    CertifiedState {
        time: TIME,
        requests,
        canisters: vec![CanisterEntry {
            id: canister_id(0),
            module_hash: Some([9; 32]),
            controllers: vec![Principal::from_slice(&[0xaa; 29]), canister_id(0)],
            certified_data: vec![0x42; 32],
            public_metadata: vec![("candid:service".to_string(), b"service : {}".to_vec())],
        }],
    }
}

/// Parses and verifies a certificate as a client does: signature under the
/// DER root key, time within five minutes of `TIME`.
fn verified(cert: &[u8], keys: &Keys, effective: Principal) -> Certificate {
    let parsed = Certificate::from_cbor(cert).expect("certificate parses");
    parsed
        .verify(
            effective.as_slice(),
            &keys.root_key_der(),
            &(TIME as u128),
            &MAX_OFFSET_NS,
        )
        .expect("certificate verifies");
    assert!(parsed.delegation.is_none());
    parsed
}

fn found<'a>(cert: &'a Certificate, path: &[&[u8]]) -> &'a [u8] {
    match cert.tree.lookup_path(path) {
        LookupResult::Found(v) => v,
        other => panic!("expected a value at {path:?}, found {other:?}"),
    }
}

fn rs<'a>(request: &'a [u8; 32], field: &'a str) -> [&'a [u8]; 3] {
    [b"request_status", request, field.as_bytes()]
}

#[test]
fn request_status_certificates_verify_and_reveal_what_was_asked() {
    let keys = keys();
    let cert = certificate(
        &keys,
        &state(),
        &[
            vec![label("request_status"), id(1).to_vec()],
            vec![label("request_status"), id(2).to_vec()],
        ],
    )
    .expect("certificate");
    assert_eq!(&cert[..3], &[0xd9, 0xd9, 0xf7], "self-describe tag");
    let c = verified(&cert, &keys, canister_id(0));
    assert_eq!(found(&c, &[b"time"]), leb128(TIME));
    assert_eq!(found(&c, &rs(&id(1), "status")), b"replied");
    assert_eq!(found(&c, &rs(&id(1), "reply")), b"DIDL\x00\x01\x7d\x2a");
    assert_eq!(found(&c, &rs(&id(2), "status")), b"rejected");
    assert_eq!(found(&c, &rs(&id(2), "reject_code")), [4]);
    assert_eq!(
        found(&c, &rs(&id(2), "reject_message")),
        b"the canister trapped"
    );
    assert_eq!(found(&c, &rs(&id(2), "error_code")), b"IC0503");
    assert_eq!(
        c.tree.lookup_path(rs(&id(1), "reject_code")),
        LookupResult::Absent,
        "a replied request has no reject code"
    );
    // What was not asked for stays hidden.
    assert_eq!(
        c.tree.lookup_path(rs(&id(3), "status")),
        LookupResult::Unknown
    );
    assert!(!matches!(
        c.tree.lookup_path([
            b"canister".as_slice(),
            canister_id(0).as_slice(),
            b"certified_data"
        ]),
        LookupResult::Found(_)
    ));
    // The raw BLS check ic-agent makes, on the signed message.
    let mut msg = b"\x0dic-state-root".to_vec();
    msg.extend_from_slice(&c.tree.digest());
    ic_verify_bls_signature::verify_bls_signature(&c.signature, &msg, &keys.root_key_raw())
        .expect("BLS signature verifies");
    assert_eq!(c.signature.len(), 48);
}

#[test]
fn other_statuses_and_absent_requests() {
    let keys = keys();
    let cert = certificate(
        &keys,
        &state(),
        &[
            vec![label("request_status"), id(3).to_vec()],
            vec![label("request_status"), id(4).to_vec()],
            vec![label("request_status"), id(5).to_vec()],
            vec![label("request_status"), id(9).to_vec()],
        ],
    )
    .expect("certificate");
    let c = verified(&cert, &keys, canister_id(0));
    assert_eq!(found(&c, &rs(&id(3), "status")), b"processing");
    assert_eq!(found(&c, &rs(&id(5), "status")), b"done");
    assert_eq!(
        c.tree.lookup_path(rs(&id(5), "reply")),
        LookupResult::Absent
    );
    // Between two known requests, and after the last one.
    assert_eq!(
        c.tree.lookup_path(rs(&id(4), "status")),
        LookupResult::Absent
    );
    assert_eq!(
        c.tree.lookup_path(rs(&id(9), "status")),
        LookupResult::Absent
    );

    // Asked alone, an absent request is proven absent by its neighbours,
    // whose content stays hidden: before the first, between two, after
    // the last.
    for absent in [0, 4, 9] {
        let cert = certificate(
            &keys,
            &state(),
            &[vec![label("request_status"), id(absent).to_vec()]],
        )
        .expect("certificate");
        let c = verified(&cert, &keys, canister_id(0));
        assert_eq!(
            c.tree.lookup_path(rs(&id(absent), "status")),
            LookupResult::Absent,
            "request {absent}"
        );
        for known in [1, 2, 3, 5] {
            assert!(
                !matches!(
                    c.tree.lookup_path(rs(&id(known), "status")),
                    LookupResult::Found(_)
                ),
                "request {known} revealed while proving {absent} absent"
            );
        }
    }

    // With no requests at all, absence is proven too.
    let empty = CertifiedState {
        requests: BTreeMap::new(),
        ..state()
    };
    let cert = certificate(
        &keys,
        &empty,
        &[vec![label("request_status"), id(1).to_vec()]],
    )
    .expect("certificate");
    let c = verified(&cert, &keys, canister_id(0));
    assert_eq!(
        c.tree.lookup_path(rs(&id(1), "status")),
        LookupResult::Absent
    );
}

#[test]
fn tampered_certificates_are_refused() {
    let keys = keys();
    let cert = certificate(
        &keys,
        &state(),
        &[vec![label("request_status"), id(1).to_vec()]],
    )
    .expect("certificate");
    let verify = |bytes: &[u8], root: &[u8]| {
        Certificate::from_cbor(bytes)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                c.verify(
                    canister_id(0).as_slice(),
                    root,
                    &(TIME as u128),
                    &MAX_OFFSET_NS,
                )
                .map_err(|e| e.to_string())
            })
    };
    verify(&cert, &keys.root_key_der()).expect("the untouched certificate verifies");

    // The reply changed in the tree.
    let reply = b"DIDL\x00\x01\x7d\x2a";
    let at = cert
        .windows(reply.len())
        .position(|w| w == reply)
        .expect("reply in the certificate");
    let mut tree_tampered = cert.clone();
    tree_tampered[at + reply.len() - 1] ^= 1;
    assert!(verify(&tree_tampered, &keys.root_key_der()).is_err());

    // The signature changed (its last byte).
    let mut sig_tampered = cert.clone();
    let last = sig_tampered.len() - 1;
    sig_tampered[last] ^= 1;
    assert!(verify(&sig_tampered, &keys.root_key_der()).is_err());

    // Another replica's root key.
    assert!(verify(&cert, &Keys::load_or_create(None).unwrap().root_key_der()).is_err());

    // A certificate far older than the verifier's clock.
    let c = Certificate::from_cbor(&cert).unwrap();
    let now = TIME as u128 + 2 * MAX_OFFSET_NS;
    assert!(c
        .verify(
            canister_id(0).as_slice(),
            &keys.root_key_der(),
            &now,
            &MAX_OFFSET_NS
        )
        .is_err());
}

/// `ic-agent` asks a canister's read_state for `/subnet` to learn the node
/// keys and ranges; without a delegation it takes the self-authenticating
/// principal of the root key as the subnet id.
#[test]
fn subnet_paths_give_what_ic_agent_reads() {
    let keys = keys();
    assert_eq!(
        keys.subnet_id(),
        Principal::self_authenticating(keys.root_key_der())
    );
    assert_eq!(
        keys.node_id(),
        Principal::self_authenticating(keys.node_public_key_der())
    );
    let subnet = keys.subnet_id();
    let cert = certificate(
        &keys,
        &state(),
        &[
            vec![label("subnet")],
            vec![label("canister_ranges"), subnet.as_slice().to_vec()],
        ],
    )
    .expect("certificate");
    let c = verified(&cert, &keys, canister_id(0));
    let s = subnet.as_slice();
    assert_eq!(
        found(&c, &[b"subnet", s, b"public_key"]),
        keys.root_key_der()
    );
    assert_eq!(found(&c, &[b"subnet", s, b"type"]), b"application");
    assert_eq!(
        found(
            &c,
            &[
                b"subnet",
                s,
                b"node",
                keys.node_id().as_slice(),
                b"public_key"
            ]
        ),
        keys.node_public_key_der()
    );
    // Node keys the way ic-agent lists them.
    let ic_certification::SubtreeLookupResult::Found(nodes) =
        c.tree.lookup_subtree([b"subnet".as_slice(), s, b"node"])
    else {
        panic!("no node subtree")
    };
    let paths = nodes.list_paths();
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0][0].as_bytes(), keys.node_id().as_slice());
    assert_eq!(paths[0][1].as_bytes(), b"public_key");

    // Both layouts of the canister ranges cover the replica's ids.
    let flat = parse_cbor_principals_array(found(&c, &[b"subnet", s, b"canister_ranges"]))
        .expect("ranges parse");
    let ic_certification::SubtreeLookupResult::Found(shards) =
        c.tree.lookup_subtree([b"canister_ranges".as_slice(), s])
    else {
        panic!("no /canister_ranges/<subnet> subtree")
    };
    let mut sharded = Vec::new();
    for p in shards.list_paths() {
        assert_eq!(p.len(), 1, "one level of shards");
        let shard = match shards.lookup_path([p[0].as_bytes()]) {
            LookupResult::Found(v) => v,
            other => panic!("shard {other:?}"),
        };
        let ranges = parse_cbor_principals_array(shard).expect("shard parses");
        assert_eq!(
            ranges[0].0.as_slice(),
            p[0].as_bytes(),
            "shard labelled by its first id"
        );
        sharded.extend(ranges);
    }
    assert_eq!(flat, sharded);
    for n in [0, 1, 1000, u64::MAX] {
        let c = canister_id(n);
        assert!(
            flat.iter().any(|(lo, hi)| *lo <= c && c <= *hi),
            "{c} in {flat:?}"
        );
    }
    assert!(!flat
        .iter()
        .any(|(lo, hi)| *lo <= Principal::anonymous() && Principal::anonymous() <= *hi));
}

#[test]
fn canister_paths_certify_module_controllers_and_public_metadata() {
    let keys = keys();
    let st = state();
    let c0 = canister_id(0);
    let cert = certificate(
        &keys,
        &st,
        &[vec![label("canister"), c0.as_slice().to_vec()]],
    )
    .expect("certificate");
    let c = verified(&cert, &keys, c0);
    let p = c0.as_slice();
    assert_eq!(found(&c, &[b"canister", p, b"module_hash"]), [9; 32]);
    assert_eq!(found(&c, &[b"canister", p, b"certified_data"]), [0x42; 32]);
    assert_eq!(
        found(&c, &[b"canister", p, b"metadata", b"candid:service"]),
        b"service : {}"
    );
    let controllers = found(&c, &[b"canister", p, b"controllers"]);
    assert_eq!(&controllers[..3], &[0xd9, 0xd9, 0xf7], "tagged CBOR");
    let CborValue::Array(items) = parse_cbor(controllers).expect("controllers parse") else {
        panic!("controllers are not an array")
    };
    let parsed: Vec<Principal> = items
        .iter()
        .map(|i| match i {
            CborValue::ByteString(b) => Principal::from_slice(b),
            other => panic!("controller {other:?}"),
        })
        .collect();
    assert_eq!(parsed, st.canisters[0].controllers);
    // A canister that does not exist is proven absent.
    let cert = certificate(
        &keys,
        &st,
        &[vec![
            label("canister"),
            canister_id(1).as_slice().to_vec(),
            label("module_hash"),
        ]],
    )
    .unwrap();
    let c = verified(&cert, &keys, c0);
    assert_eq!(
        c.tree.lookup_path([
            b"canister".as_slice(),
            canister_id(1).as_slice(),
            b"module_hash"
        ]),
        LookupResult::Absent
    );
}

/// A unique, empty directory under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "replica_http-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn keys_persist_in_the_state_directory() {
    let dir = temp_dir("keys");
    let first = Keys::load_or_create(Some(&dir)).expect("first start");
    let again = Keys::load_or_create(Some(&dir)).expect("restart");
    assert_eq!(first.root_key_der(), again.root_key_der());
    assert_eq!(first.node_public_key_der(), again.node_public_key_der());
    assert_eq!(first.subnet_id(), again.subnet_id());
    // A restarted replica signs what the first one's key verifies.
    let cert = certificate(&again, &state(), &[]).unwrap();
    verified(&cert, &first, canister_id(0));

    let other_dir = temp_dir("other");
    let other = Keys::load_or_create(Some(&other_dir)).expect("other dir");
    std::fs::remove_dir_all(&other_dir).ok();
    assert_ne!(other.root_key_der(), first.root_key_der());
    assert_ne!(other.node_public_key_der(), first.node_public_key_der());
    assert_eq!(first.root_key_der().len(), 133);
    assert_eq!(first.node_public_key_der().len(), 44);

    #[cfg(unix)]
    for entry in std::fs::read_dir(dir.join("keys")).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", entry.path().display());
    }

    // A damaged key file is refused, not replaced.
    let bls = std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("bls"))
        .expect("a BLS key file");
    std::fs::write(&bls, [0xff; 32]).unwrap();
    match Keys::load_or_create(Some(&dir)) {
        Err(CertificationError::CorruptKey { path, .. }) => assert_eq!(path, bls),
        other => panic!("expected a corrupt key, found {other:?}"),
    }
    std::fs::write(&bls, [1; 5]).unwrap();
    assert!(matches!(
        Keys::load_or_create(Some(&dir)),
        Err(CertificationError::CorruptKey { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

/// The signature verifies with Ed25519 over what `ic-agent` builds from the
/// response (`QueryResponse::signable`), with the key the state tree gives.
#[test]
fn query_signatures_verify_over_the_agents_signable() {
    use ic_transport_types::{QueryResponse, RejectCode, RejectResponse, ReplyResponse};
    let keys = keys();
    let request = [7u8; 32];
    let ts = 1_700_000_000_123_456_789;
    let key = keys.node_public_key_der();
    assert_eq!(&key[..12], ED25519_DER_PREFIX);
    let vk = ed25519_dalek::VerifyingKey::from_bytes(key[12..].try_into().unwrap()).unwrap();
    let cases = [
        (
            QueryOutcome::Replied(b"DIDL\x00\x00".to_vec()),
            QueryResponse::Replied {
                reply: ReplyResponse {
                    arg: b"DIDL\x00\x00".to_vec(),
                },
                signatures: vec![],
            },
        ),
        (
            QueryOutcome::Rejected {
                reject_code: 3,
                reject_message: "no such method".to_string(),
                error_code: Some("IC0536".to_string()),
            },
            QueryResponse::Rejected {
                reject: RejectResponse {
                    reject_code: RejectCode::DestinationInvalid,
                    reject_message: "no such method".to_string(),
                    error_code: Some("IC0536".to_string()),
                },
                signatures: vec![],
            },
        ),
        (
            QueryOutcome::Rejected {
                reject_code: 5,
                reject_message: "trap".to_string(),
                error_code: None,
            },
            QueryResponse::Rejected {
                reject: RejectResponse {
                    reject_code: RejectCode::CanisterError,
                    reject_message: "trap".to_string(),
                    error_code: None,
                },
                signatures: vec![],
            },
        ),
    ];
    for (outcome, agent_view) in cases {
        let sig = sign_query_response(&keys, request, ts, &outcome);
        assert_eq!(sig.identity, keys.node_id());
        assert_eq!(sig.timestamp, ts);
        let signable = agent_view.signable(ic_transport_types::RequestId::new(&request), ts);
        let signature = ed25519_dalek::Signature::from_slice(&sig.signature).unwrap();
        vk.verify_strict(&signable, &signature)
            .unwrap_or_else(|e| panic!("{outcome:?}: {e}"));
        // Another request id or timestamp is another message.
        let other = agent_view.signable(ic_transport_types::RequestId::new(&[8; 32]), ts);
        assert!(vk.verify_strict(&other, &signature).is_err());
        let later = agent_view.signable(ic_transport_types::RequestId::new(&request), ts + 1);
        assert!(vk.verify_strict(&later, &signature).is_err());
    }
}

/// A canister sets its certified data in an update; a query answered with
/// `data_certificate` gets, through `ic0.data_certificate_copy`, a
/// certificate that verifies and holds that data.
#[test]
fn data_certificates_reach_canisters_and_verify() {
    const WAT: &str = r#"
    (module
      (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
      (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
      (import "ic0" "msg_reply" (func $reply))
      (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
      (import "ic0" "certified_data_set" (func $set (param i32 i32)))
      (import "ic0" "data_certificate_present" (func $present (result i32)))
      (import "ic0" "data_certificate_size" (func $size (result i32)))
      (import "ic0" "data_certificate_copy" (func $copy (param i32 i32 i32)))
      (memory 1)
      (func (export "canister_update set")
        (call $arg_copy (i32.const 0) (i32.const 0) (call $arg_size))
        (call $set (i32.const 0) (call $arg_size))
        (call $reply))
      (func (export "canister_query certificate")
        (if (call $present)
          (then
            (call $copy (i32.const 0) (i32.const 0) (call $size))
            (call $append (i32.const 0) (call $size))))
        (call $reply))
      (@custom "icp:public candid:service" "service : {}")
      (@custom "icp:private build" "secret")
    )"#;
    let keys = keys();
    let mut ic = LocalReplica::with_config(local_replica::Config {
        root_key: Some(keys.root_key_der()),
        ..Default::default()
    })
    .expect("replica");
    let user = Principal::from_slice(&[0xaa; 29]);
    let canister = ic.create_canister(user).expect("create");
    let wasm = wat::parse_str(WAT).expect("wat");
    ic.install_canister(user, canister, wasm.clone(), Vec::new())
        .expect("install");
    let data: Vec<u8> = Sha256::digest(b"the state of the canister").to_vec();
    ic.update_call(canister, user, "set", data.clone())
        .expect("set");

    let state = CertifiedState::from_replica(&ic, BTreeMap::new());
    let entry = state
        .canisters
        .iter()
        .find(|c| c.id == canister)
        .expect("canister in the state");
    assert_eq!(entry.module_hash, Some(Sha256::digest(&wasm).into()));
    assert_eq!(entry.controllers, vec![user]);
    assert_eq!(
        entry.public_metadata,
        vec![("candid:service".to_string(), b"service : {}".to_vec())],
        "icp:private sections are not certified publicly"
    );
    let cert = data_certificate(&keys, &state, canister).expect("data certificate");
    let got = ic
        .query_call_with_certificate(
            canister,
            user,
            "certificate",
            Vec::new(),
            Some(cert.clone()),
        )
        .expect("query");
    assert_eq!(
        got, cert,
        "the canister copied the certificate it was given"
    );

    // What the canister got verifies with the root key it sees, at the
    // replica's time, and holds its certified data.
    assert_eq!(ic.root_key(), keys.root_key_der().as_slice());
    let parsed = Certificate::from_cbor(&got).expect("parses");
    parsed
        .verify(
            canister.as_slice(),
            ic.root_key(),
            &(ic.time() as u128),
            &MAX_OFFSET_NS,
        )
        .expect("verifies");
    let p = canister.as_slice();
    assert_eq!(found(&parsed, &[b"canister", p, b"certified_data"]), data);
    assert_eq!(found(&parsed, &[b"time"]), leb128(ic.time()));
    // Only the certified data and the time are revealed.
    assert_eq!(
        parsed
            .tree
            .lookup_path([b"canister".as_slice(), p, b"module_hash"]),
        LookupResult::Unknown
    );
    assert!(!matches!(
        parsed.tree.lookup_path([b"subnet".as_slice()]),
        LookupResult::Found(_)
    ));
}

fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}
