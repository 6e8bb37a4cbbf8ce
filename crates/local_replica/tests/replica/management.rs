//! The management canister: install modes, upgrades with stable
//! structures, chunked install of a module over 2 MiB, controllers,
//! start/stop/delete, uninstall.

use candid::Principal;
use local_replica::management::{CanisterInstallMode, CanisterStatusType, UpgradeFlags};
use local_replica::{ErrorCode, RejectCode};
use sha2::{Digest, Sha256};

use crate::common::*;

#[test]
fn install_modes_are_checked() {
    let mut ic = replica();
    let id = counter(&mut ic);
    ic.update_one::<_, u64>(id, user(), "inc", &()).unwrap();
    assert_reject(
        ic.install_canister(
            user(),
            id,
            wasm("tc_counter"),
            candid::encode_one(None::<u64>).unwrap(),
        ),
        RejectCode::CanisterError,
        ErrorCode::CanisterNonEmpty,
        "not empty",
    );
    let empty = ic.create_canister(user()).unwrap();
    assert_reject(
        ic.upgrade_canister(user(), empty, wasm("tc_counter"), no_arg()),
        RejectCode::CanisterError,
        ErrorCode::CanisterWasmModuleNotFound,
        "no Wasm module",
    );
    // Reinstall wipes the heap and runs init again.
    ic.reinstall_canister(
        user(),
        id,
        wasm("tc_counter"),
        candid::encode_one(Some(10u64)).unwrap(),
    )
    .unwrap();
    assert_eq!(ic.query_one::<_, u64>(id, user(), "get", &()).unwrap(), 10);
    // Upgrade runs post_upgrade with its argument.
    ic.upgrade_canister(
        user(),
        id,
        wasm("tc_counter"),
        candid::encode_one(Some(20u64)).unwrap(),
    )
    .unwrap();
    assert_eq!(ic.query_one::<_, u64>(id, user(), "get", &()).unwrap(), 20);
    assert_eq!(
        ic.module_hash(id).unwrap(),
        <[u8; 32]>::from(Sha256::digest(wasm("tc_counter")))
    );
    // Only controllers may install.
    assert_reject(
        ic.reinstall_canister(other_user(), id, wasm("tc_counter"), no_arg()),
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidController,
        "Only controllers",
    );
}

#[test]
fn stable_structures_survive_upgrades_and_failed_upgrades_change_nothing() {
    let mut ic = replica();
    let id = install(&mut ic, "tc_stable", no_arg());
    for (k, v) in [(1u64, "one"), (2, "two"), (3, "three")] {
        let old: Option<String> = ic
            .update(id, user(), "put", (k, v.to_string()))
            .map(|(o,)| o)
            .unwrap();
        assert_eq!(old, None);
    }
    assert_eq!(
        ic.query::<_, (u64, u64, u64)>(id, user(), "counters", ())
            .unwrap(),
        (3, 3, 0)
    );
    let version = ic.canister_version(id).unwrap();

    ic.upgrade_canister(
        user(),
        id,
        wasm("tc_stable"),
        candid::encode_one(false).unwrap(),
    )
    .unwrap();
    assert_eq!(ic.canister_version(id).unwrap(), version + 1);
    assert_eq!(ic.query_one::<_, u64>(id, user(), "len", &()).unwrap(), 3);
    assert_eq!(
        ic.query_one::<_, Option<String>>(id, user(), "get", &2u64)
            .unwrap(),
        Some("two".to_string())
    );
    // pre_upgrade saved the heap counter; the unsaved one restarted.
    assert_eq!(
        ic.query::<_, (u64, u64, u64)>(id, user(), "counters", ())
            .unwrap(),
        (3, 0, 1)
    );

    // An upgrade whose post_upgrade traps leaves everything as it was,
    // including the heap of the old module and stable memory written by
    // pre_upgrade.
    ic.update(id, user(), "put", (4u64, "four".to_string()))
        .map(|(_,): (Option<String>,)| ())
        .unwrap();
    let stable_before = ic.stable_memory(id).unwrap().to_vec();
    assert_reject(
        ic.upgrade_canister(
            user(),
            id,
            wasm("tc_stable"),
            candid::encode_one(true).unwrap(),
        ),
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        "post_upgrade asked to trap",
    );
    assert_eq!(ic.stable_memory(id).unwrap(), stable_before.as_slice());
    assert_eq!(
        ic.query::<_, (u64, u64, u64)>(id, user(), "counters", ())
            .unwrap(),
        (4, 1, 1)
    );
    assert_eq!(ic.query_one::<_, u64>(id, user(), "len", &()).unwrap(), 4);

    // A pre_upgrade that writes stable memory and then traps changes
    // nothing either.
    ic.update_one::<_, ()>(id, user(), "trap_in_pre_upgrade", &true)
        .unwrap();
    ic.update(id, user(), "put", (9u64, "nine".to_string()))
        .map(|(_,): (Option<String>,)| ())
        .unwrap();
    let stable_before = ic.stable_memory(id).unwrap().to_vec();
    let version = ic.canister_version(id).unwrap();
    assert_reject(
        ic.upgrade_canister(
            user(),
            id,
            wasm("tc_stable"),
            candid::encode_one(false).unwrap(),
        ),
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        "pre_upgrade asked to trap",
    );
    assert_eq!(ic.stable_memory(id).unwrap(), stable_before.as_slice());
    assert_eq!(ic.canister_version(id).unwrap(), version);
    let counters: (u64, u64, u64) = ic.query(id, user(), "counters", ()).unwrap();
    assert_eq!(counters, (5, 2, 1));
    ic.update_one::<_, ()>(id, user(), "trap_in_pre_upgrade", &false)
        .unwrap();

    // skip_pre_upgrade: the heap counter is not saved this time.
    ic.update(id, user(), "put", (5u64, "five".to_string()))
        .map(|(_,): (Option<String>,)| ())
        .unwrap();
    ic.install_code(
        user(),
        id,
        CanisterInstallMode::Upgrade(Some(UpgradeFlags {
            skip_pre_upgrade: Some(true),
            wasm_memory_persistence: None,
        })),
        wasm("tc_stable"),
        candid::encode_one(false).unwrap(),
    )
    .unwrap();
    // The saved value is the one from the last pre_upgrade that succeeded
    // (3): the trapped one's write was rolled back.
    assert_eq!(
        ic.query::<_, (u64, u64, u64)>(id, user(), "counters", ())
            .unwrap(),
        (3, 0, 1)
    );
    assert_eq!(ic.query_one::<_, u64>(id, user(), "len", &()).unwrap(), 6);
}

/// The counter's module with a custom section that makes it `extra` bytes
/// larger.
fn padded_counter(extra: usize) -> Vec<u8> {
    let mut wasm = wasm("tc_counter");
    let section = wasm_encoder::CustomSection {
        name: "padding".into(),
        // Varied bytes, so that no two chunks are equal.
        data: (0..extra as u64)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>()
            .into(),
    };
    let mut module = wasm_encoder::Module::new();
    module.section(&section);
    // Without the 8-byte header, the encoded module is just the section.
    wasm.extend_from_slice(&module.finish()[8..]);
    wasm
}

#[test]
fn chunked_install_of_a_module_over_2_mib() {
    let mut ic = replica();
    let big = padded_counter(3 << 20);
    assert!(big.len() > 2 << 20);
    let id = ic.create_canister(user()).unwrap();
    // The plain install_code message is over the ingress limit.
    let r = rejected(ic.install_canister(
        user(),
        id,
        big.clone(),
        candid::encode_one(None::<u64>).unwrap(),
    ));
    assert!(r.message.contains("at most 2097152 bytes"), "{r}");
    // Chunks of at most 1 MiB each, then install_chunked_code.
    ic.install_chunked(
        user(),
        id,
        CanisterInstallMode::Install,
        &big,
        1 << 20,
        candid::encode_one(Some(5u64)).unwrap(),
    )
    .unwrap();
    assert_eq!(ic.update_one::<_, u64>(id, user(), "inc", &()).unwrap(), 6);
    assert_eq!(
        ic.module_hash(id).unwrap(),
        <[u8; 32]>::from(Sha256::digest(&big))
    );
    let stored: Vec<local_replica::management::ChunkHash> = ic
        .update_one(
            Principal::management_canister(),
            user(),
            "stored_chunks",
            &local_replica::management::CanisterIdRecord { canister_id: id },
        )
        .unwrap();
    assert_eq!(stored.len(), big.len().div_ceil(1 << 20));
    ic.update_one::<_, ()>(
        Principal::management_canister(),
        user(),
        "clear_chunk_store",
        &local_replica::management::CanisterIdRecord { canister_id: id },
    )
    .unwrap();
    // install_wasm picks the chunked path by itself and empties the store.
    ic.install_wasm(
        user(),
        id,
        CanisterInstallMode::Reinstall,
        big.clone(),
        candid::encode_one(Some(7u64)).unwrap(),
    )
    .unwrap();
    assert_eq!(ic.update_one::<_, u64>(id, user(), "inc", &()).unwrap(), 8);
    let stored: Vec<local_replica::management::ChunkHash> = ic
        .update_one(
            Principal::management_canister(),
            user(),
            "stored_chunks",
            &local_replica::management::CanisterIdRecord { canister_id: id },
        )
        .unwrap();
    assert!(stored.is_empty());
    // A chunk over 1 MiB is refused; a wrong module hash is refused.
    assert_reject(
        ic.upload_chunk(user(), id, vec![0; (1 << 20) + 1]),
        RejectCode::CanisterReject,
        ErrorCode::InvalidManagementPayload,
        "at most 1048576 bytes",
    );
    let h = ic.upload_chunk(user(), id, wasm("tc_counter")).unwrap();
    let args = local_replica::management::InstallChunkedCodeArgs {
        mode: CanisterInstallMode::Reinstall,
        target_canister: id,
        store_canister: None,
        chunk_hashes_list: vec![local_replica::management::ChunkHash { hash: h }],
        wasm_module_hash: vec![0; 32],
        arg: candid::encode_one(None::<u64>).unwrap(),
        sender_canister_version: None,
    };
    assert_reject(
        ic.update_one::<_, ()>(
            Principal::management_canister(),
            user(),
            "install_chunked_code",
            &args,
        ),
        RejectCode::CanisterReject,
        ErrorCode::InvalidManagementPayload,
        "expected the module hash",
    );
}

#[test]
fn controllers_status_stop_start_delete_uninstall() {
    let mut ic = replica();
    let id = counter(&mut ic);
    let status = ic.canister_status(user(), id).unwrap();
    assert_eq!(status.status, CanisterStatusType::Running);
    assert_eq!(status.settings.controllers, vec![user()]);
    assert_eq!(
        status.module_hash.unwrap(),
        Sha256::digest(wasm("tc_counter")).to_vec()
    );
    assert_reject(
        ic.canister_status(other_user(), id),
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidController,
        "Only controllers",
    );
    ic.set_controllers(user(), id, vec![user(), other_user()])
        .unwrap();
    assert_eq!(
        ic.canister_status(other_user(), id)
            .unwrap()
            .settings
            .controllers
            .len(),
        2
    );

    // Deleting a running canister is refused; a stopped one refuses calls.
    assert_reject(
        ic.delete_canister(user(), id),
        RejectCode::CanisterError,
        ErrorCode::CanisterNotStopped,
        "must be stopped",
    );
    ic.stop_canister(user(), id).unwrap();
    assert_eq!(
        ic.canister_status(user(), id).unwrap().status,
        CanisterStatusType::Stopped
    );
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "inc", &()),
        RejectCode::CanisterError,
        ErrorCode::CanisterStopped,
        "stopped",
    );
    ic.start_canister(user(), id).unwrap();
    assert_eq!(ic.update_one::<_, u64>(id, user(), "inc", &()).unwrap(), 1);

    // Uninstall empties the canister.
    ic.update_one::<_, i64>(id, user(), "stable_grow", &1u64)
        .unwrap();
    ic.uninstall_code(user(), id).unwrap();
    assert_eq!(ic.module_hash(id), None);
    assert_eq!(ic.stable_memory(id).unwrap().len(), 0);
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "inc", &()),
        RejectCode::CanisterError,
        ErrorCode::CanisterWasmModuleNotFound,
        "no Wasm module",
    );
    ic.stop_canister(user(), id).unwrap();
    ic.delete_canister(user(), id).unwrap();
    assert!(!ic.canister_exists(id));
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "inc", &()),
        RejectCode::DestinationInvalid,
        ErrorCode::CanisterNotFound,
        "not found",
    );
}

#[test]
fn stop_waits_for_open_call_contexts() {
    let mut ic = replica();
    let counter = counter(&mut ic);
    let caller = install(&mut ic, "tc_caller", no_arg());
    // The caller has a call in flight when the stop request arrives.
    let call = ic
        .submit_update(
            caller,
            user(),
            "inc_remote",
            candid::encode_args((counter, 2u64)).unwrap(),
        )
        .unwrap();
    ic.tick();
    let stop = ic
        .submit_update(
            Principal::management_canister(),
            user(),
            "stop_canister",
            candid::encode_one(local_replica::management::CanisterIdRecord {
                canister_id: caller,
            })
            .unwrap(),
        )
        .unwrap();
    ic.tick();
    assert!(
        ic.ingress_result(stop).is_none(),
        "stop must wait for the open call"
    );
    let r: (Result<u64, String>,) = candid::decode_args(&ic.await_ingress(call).unwrap()).unwrap();
    assert_eq!(r.0, Ok(2));
    ic.await_ingress(stop).unwrap();
    assert_eq!(
        ic.canister_status(user(), caller).unwrap().status,
        CanisterStatusType::Stopped
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_compressed_modules_install_and_bombs_are_refused() {
    let mut ic = replica_with(local_replica::Config {
        limits: local_replica::Limits {
            max_wasm_bytes: 4 << 20,
            ..Default::default()
        },
        ..Default::default()
    });
    let gz = gzip(&wasm("tc_counter"));
    assert!(gz.len() < wasm("tc_counter").len());
    let id = ic.create_canister(user()).unwrap();
    ic.install_canister(
        user(),
        id,
        gz.clone(),
        candid::encode_one(Some(1u64)).unwrap(),
    )
    .unwrap();
    assert_eq!(ic.update_one::<_, u64>(id, user(), "inc", &()).unwrap(), 2);
    // The module hash is the hash of the module as installed.
    assert_eq!(
        ic.module_hash(id).unwrap(),
        <[u8; 32]>::from(Sha256::digest(&gz))
    );
    // 8 MiB of zeros compress to a few KiB but exceed the 4 MiB limit.
    let bomb = gzip(&vec![0u8; 8 << 20]);
    let other = ic.create_canister(user()).unwrap();
    assert_reject(
        ic.install_canister(user(), other, bomb, Vec::new()),
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        "at most 4194304 bytes",
    );
}

/// Environment variables (what icp-cli sets at deploy): settings the
/// canister reads with `ic0.env_var_*`; the IC's checks on them.
#[test]
fn environment_variables_are_settings_the_canister_reads() {
    use local_replica::management::{CanisterSettings, EnvironmentVariable};
    let mut ic = replica();
    // `value(name)`: replies with the value of the variable named by the
    // argument; `count`: replies with the number of variables (one byte).
    let wasm = wat::parse_str(
        r#"(module
          (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
          (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
          (import "ic0" "env_var_count" (func $count (result i32)))
          (import "ic0" "env_var_value_size" (func $vsize (param i32 i32) (result i32)))
          (import "ic0" "env_var_value_copy" (func $vcopy (param i32 i32 i32 i32 i32)))
          (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
          (import "ic0" "msg_reply" (func $reply))
          (memory 1)
          (func (export "canister_query value") (local $n i32) (local $v i32)
            (local.set $n (call $arg_size))
            (call $arg_copy (i32.const 0) (i32.const 0) (local.get $n))
            (local.set $v (call $vsize (i32.const 0) (local.get $n)))
            (call $vcopy (i32.const 0) (local.get $n) (i32.const 1024) (i32.const 0) (local.get $v))
            (call $append (i32.const 1024) (local.get $v))
            (call $reply))
          (func (export "canister_query count")
            (i32.store8 (i32.const 0) (call $count))
            (call $append (i32.const 0) (i32.const 1))
            (call $reply)))"#,
    )
    .unwrap();
    let var = |name: &str, value: &str| EnvironmentVariable {
        name: name.into(),
        value: value.into(),
    };
    let id = ic.create_canister(user()).unwrap();
    ic.install_canister(user(), id, wasm, Vec::new()).unwrap();
    assert_eq!(
        ic.query_call(id, user(), "count", Vec::new()).unwrap(),
        vec![0]
    );
    let settings = |vars: Vec<EnvironmentVariable>| CanisterSettings {
        environment_variables: Some(vars),
        ..Default::default()
    };
    ic.update_settings(user(), id, settings(vec![var("B", "two"), var("A", "one")]))
        .unwrap();
    assert_eq!(
        ic.query_call(id, user(), "count", Vec::new()).unwrap(),
        vec![2]
    );
    assert_eq!(
        ic.query_call(id, user(), "value", b"B".to_vec()).unwrap(),
        b"two"
    );
    assert_reject(
        ic.query_call(id, user(), "value", b"C".to_vec()),
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        "Environment variable C not found",
    );
    let status = ic.canister_status(user(), id).unwrap();
    assert_eq!(
        status.settings.environment_variables,
        vec![var("A", "one"), var("B", "two")]
    );
    // Refused: a name twice, too many, a value too long; nothing changes.
    for bad in [
        vec![var("A", "1"), var("A", "2")],
        (0..21).map(|i| var(&format!("V{i}"), "x")).collect(),
        vec![var("A", &"x".repeat(129))],
    ] {
        assert_reject(
            ic.update_settings(user(), id, settings(bad)),
            RejectCode::CanisterReject,
            ErrorCode::InvalidManagementPayload,
            "environment variable",
        );
    }
    assert_eq!(
        ic.query_call(id, user(), "count", Vec::new()).unwrap(),
        vec![2]
    );
}
