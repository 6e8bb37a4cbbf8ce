//! `ic0.data_certificate_*` in the query entry points, the configured root
//! key, and the accessors the HTTP layer certifies from (canister ids,
//! public metadata).

use local_replica::{Config, ErrorCode, RejectCode};

use crate::common::{assert_reject, replica, replica_with, user};

/// A canister whose methods answer with what the System API gives them:
/// `cert` (query) and `cert_composite` (composite query) reply with the
/// data certificate when one is present and nothing otherwise;
/// `present_in_update` replies with `data_certificate_present` as one
/// byte; `size_in_query` calls `data_certificate_size` unconditionally;
/// `root_key` (update) replies with the root key.
const WAT: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "data_certificate_present" (func $present (result i32)))
  (import "ic0" "data_certificate_size" (func $size (result i32)))
  (import "ic0" "data_certificate_copy" (func $copy (param i32 i32 i32)))
  (import "ic0" "root_key_size" (func $rk_size (result i32)))
  (import "ic0" "root_key_copy" (func $rk_copy (param i32 i32 i32)))
  (memory 1)
  (func $reply_certificate
    (if (call $present)
      (then
        (call $copy (i32.const 0) (i32.const 0) (call $size))
        (call $append (i32.const 0) (call $size))))
    (call $reply))
  (func (export "canister_query cert") (call $reply_certificate))
  (func (export "canister_composite_query cert_composite") (call $reply_certificate))
  (func (export "canister_update present_in_update")
    (i32.store8 (i32.const 0) (call $present))
    (call $append (i32.const 0) (i32.const 1))
    (call $reply))
  (func (export "canister_query size_in_query")
    (drop (call $size))
    (call $reply))
  (func (export "canister_update root_key")
    (call $rk_copy (i32.const 0) (i32.const 0) (call $rk_size))
    (call $append (i32.const 0) (call $rk_size))
    (call $reply))
  (@custom "icp:public candid:service" "service : {}")
  (@custom "icp:private build" "secret")
)
"#;

fn install(ic: &mut local_replica::LocalReplica) -> candid::Principal {
    let id = ic.create_canister(user()).expect("create");
    ic.install_canister(user(), id, wat::parse_str(WAT).expect("wat"), Vec::new())
        .expect("install");
    id
}

#[test]
fn a_query_answered_with_a_certificate_copies_it_byte_for_byte() {
    let mut ic = replica();
    let id = install(&mut ic);
    let certificate: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let got = ic
        .query_call_with_certificate(id, user(), "cert", Vec::new(), Some(certificate.clone()))
        .expect("query");
    assert_eq!(got, certificate);
    // Without one, `data_certificate_present` is 0.
    let got = ic
        .query_call(id, user(), "cert", Vec::new())
        .expect("query");
    assert!(
        got.is_empty(),
        "no certificate expected, got {} bytes",
        got.len()
    );
}

#[test]
fn composite_queries_and_updates_get_no_certificate() {
    let mut ic = replica();
    let id = install(&mut ic);
    let got = ic
        .query_call_with_certificate(id, user(), "cert_composite", Vec::new(), Some(vec![7; 64]))
        .expect("composite query");
    assert!(got.is_empty(), "a composite query got {} bytes", got.len());
    let got = ic
        .update_call(id, user(), "present_in_update", Vec::new())
        .expect("update");
    assert_eq!(got, vec![0]);
}

#[test]
fn data_certificate_size_without_a_certificate_traps() {
    let mut ic = replica();
    let id = install(&mut ic);
    assert_reject(
        ic.query_call(id, user(), "size_in_query", Vec::new()),
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        "no data certificate is present",
    );
    ic.query_call_with_certificate(id, user(), "size_in_query", Vec::new(), Some(vec![1]))
        .expect("with a certificate the size is available");
}

#[test]
fn canisters_see_the_configured_root_key() {
    let key: Vec<u8> = (0..133u8).collect();
    let mut ic = replica_with(Config {
        root_key: Some(key.clone()),
        ..Config::default()
    });
    let id = install(&mut ic);
    assert_eq!(ic.root_key(), key.as_slice());
    let got = ic
        .update_call(id, user(), "root_key", Vec::new())
        .expect("update");
    assert_eq!(got, key);
}

#[test]
fn public_metadata_lists_icp_public_sections_only() {
    let mut ic = replica();
    let empty = ic.create_canister(user()).expect("create");
    let id = install(&mut ic);
    assert_eq!(ic.canister_ids(), vec![empty, id]);
    assert_eq!(ic.public_metadata(empty), Some(vec![]));
    assert_eq!(
        ic.public_metadata(id),
        Some(vec![(
            "candid:service".to_string(),
            b"service : {}".to_vec()
        )])
    );
    assert_eq!(ic.public_metadata(candid::Principal::anonymous()), None);
}
