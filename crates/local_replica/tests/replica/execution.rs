//! Execution in one canister: update/query semantics, rollback on trap,
//! System API rules, module validation, logs.

use candid::{CandidType, Deserialize, Principal};
use local_replica::{ErrorCode, LocalReplica, RejectCode};
use wasm_encoder::{
    CodeSection, ExportKind, ExportSection, Function, FunctionSection, ImportSection, Instruction,
    MemorySection, MemoryType, Module, TypeSection, ValType,
};

use crate::common::*;

#[derive(CandidType, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub caller: Principal,
    pub canister: Principal,
    pub time: u64,
    pub version: u64,
    pub replicated: bool,
    pub balance: u128,
    pub status: u32,
    pub self_is_controller: bool,
    pub caller_is_controller: bool,
    pub root_key_len: u64,
}

#[test]
fn counter_updates_persist_and_queries_are_discarded() {
    let mut ic = replica();
    let id = counter(&mut ic);
    assert_eq!(id.to_text(), "rwlgt-iiaaa-aaaaa-aaaaa-cai");
    let a: u64 = ic.update_one(id, user(), "inc", &()).unwrap();
    let b: u64 = ic.update_one(id, user(), "inc", &()).unwrap();
    assert_eq!((a, b), (1, 2));
    // A query's change is visible in its own reply only.
    let q: u64 = ic.query_one(id, user(), "inc_query", &()).unwrap();
    assert_eq!(q, 3);
    let got: u64 = ic.query_one(id, user(), "get", &()).unwrap();
    assert_eq!(got, 2);
    // A query method called as an update (replicated query) is discarded too.
    let q: u64 = ic.update_one(id, user(), "inc_query", &()).unwrap();
    assert_eq!(q, 3);
    assert_eq!(ic.query_one::<_, u64>(id, user(), "get", &()).unwrap(), 2);
    // An update method cannot be called as a query.
    assert_reject(
        ic.query_one::<_, u64>(id, user(), "inc", &()),
        RejectCode::CanisterError,
        ErrorCode::CanisterMethodNotFound,
        "no query method 'inc'",
    );
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "nope", &()),
        RejectCode::CanisterError,
        ErrorCode::CanisterMethodNotFound,
        "no update method 'nope'",
    );
    // The init argument is honoured.
    let id2 = install(
        &mut ic,
        "tc_counter",
        candid::encode_one(Some(41u64)).unwrap(),
    );
    assert_eq!(
        ic.update_one::<_, u64>(id2, user(), "inc", &()).unwrap(),
        42
    );
}

#[test]
fn trap_rolls_back_heap_stable_memory_and_growth() {
    let mut ic = replica();
    let id = counter(&mut ic);
    assert_eq!(
        ic.update_one::<_, i64>(id, user(), "stable_grow", &1u64)
            .unwrap(),
        0
    );
    ic.update::<_, ()>(id, user(), "stable_write", (0u64, b"clean".to_vec()))
        .unwrap();
    assert_eq!(ic.update_one::<_, u64>(id, user(), "inc", &()).unwrap(), 1);
    let heap_before = ic.heap_size(id).unwrap();
    let version_before = ic.canister_version(id).unwrap();

    // Increments, grows the heap by 8 MiB and stable memory by a page,
    // writes stable memory, then traps.
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "inc_then_trap", &()),
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        "deliberate trap after increment",
    );
    assert_eq!(ic.query_one::<_, u64>(id, user(), "get", &()).unwrap(), 1);
    let read: Vec<u8> = ic
        .query(id, user(), "stable_read", (0u64, 5u64))
        .map(|(v,)| v)
        .unwrap();
    assert_eq!(read, b"clean");
    assert_eq!(
        ic.query_one::<_, u64>(id, user(), "stable_size", &())
            .unwrap(),
        1
    );
    assert_eq!(ic.heap_size(id).unwrap(), heap_before);
    assert_eq!(ic.canister_version(id).unwrap(), version_before);
    // The canister keeps working after the rollback.
    assert_eq!(ic.update_one::<_, u64>(id, user(), "inc", &()).unwrap(), 2);

    // A Rust panic is a trap too.
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "inc_then_panic", &()),
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        "index out of bounds",
    );
    assert_eq!(ic.query_one::<_, u64>(id, user(), "get", &()).unwrap(), 2);
}

#[test]
fn reply_rules_reject_and_no_reply() {
    let mut ic = replica();
    let id = counter(&mut ic);
    // A second msg_reply traps, and the whole message is rolled back.
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "reply_twice", &()),
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        "already replied",
    );
    assert_eq!(ic.query_one::<_, u64>(id, user(), "get", &()).unwrap(), 0);
    assert_reject(
        ic.update_one::<_, ()>(id, user(), "reject", &"not today".to_string()),
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        "not today",
    );
    assert_reject(
        ic.update_one::<_, ()>(id, user(), "no_reply", &()),
        RejectCode::CanisterError,
        ErrorCode::CanisterDidNotReply,
        "did not reply",
    );
    // msg_method_name is only available in inspect_message.
    assert_reject(
        ic.update_one::<_, String>(id, user(), "method_name_in_update", &()),
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        "\"ic0.msg_method_name_size\" cannot be executed in update mode",
    );
    // Replies are limited to 2 MiB.
    let ok: Vec<u8> = ic.query_one(id, user(), "blob", &(1u64 << 20)).unwrap();
    assert_eq!(ok.len(), 1 << 20);
    assert_reject(
        ic.query_one::<_, Vec<u8>>(id, user(), "blob", &(3u64 << 20)),
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        "cannot be larger than 2097152",
    );
}

#[test]
fn canister_sees_its_environment() {
    let mut ic = replica();
    let id = counter(&mut ic);
    let q: Env = ic.query_one(id, other_user(), "env", &()).unwrap();
    assert_eq!(q.caller, other_user());
    assert_eq!(q.canister, id);
    assert_eq!(q.time, ic.time());
    assert!(!q.replicated);
    assert_eq!(q.status, 1);
    assert!(!q.caller_is_controller);
    assert!(!q.self_is_controller);
    assert_eq!(q.root_key_len, 0);
    assert_reject(
        ic.query_one::<_, u64>(id, user(), "root_key_in_query", &()),
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        "\"ic0.root_key_size\" cannot be executed in non replicated query mode",
    );
    assert_eq!(q.balance, ic.cycle_balance(id).unwrap());

    ic.advance_time(std::time::Duration::from_secs(60));
    let u: Env = ic.update_one(id, user(), "env_update", &()).unwrap();
    assert!(u.replicated);
    assert!(u.caller_is_controller);
    assert_eq!(u.root_key_len as usize, ic.root_key().len());
    assert_eq!(u.root_key_len, 133);
    assert_eq!(u.time, q.time + 60_000_000_000);
    // The version counts the install and each successful update.
    assert_eq!(u.version, q.version);
    assert_eq!(ic.canister_version(id).unwrap(), q.version + 1);

    ic.update_one::<_, ()>(id, user(), "set_certified", &vec![7u8; 32])
        .unwrap();
    assert_eq!(ic.certified_data(id).unwrap(), vec![7u8; 32]);
    assert_reject(
        ic.update_one::<_, ()>(id, user(), "set_certified", &vec![7u8; 33]),
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        "at most 32 bytes",
    );
}

#[test]
fn debug_print_and_traps_are_logged() {
    let mut ic = replica();
    let id = counter(&mut ic);
    ic.update_one::<_, ()>(id, user(), "print", &"hello from the canister".to_string())
        .unwrap();
    let _ = ic.update_one::<_, u64>(id, user(), "inc_then_trap", &());
    let logs: Vec<String> = ic.logs(id).iter().map(|l| l.message.clone()).collect();
    assert!(
        logs.contains(&"hello from the canister".to_string()),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("[TRAP]") && l.contains("deliberate trap")),
        "{logs:?}"
    );
}

#[test]
fn inspect_message_filters_ingress_only() {
    let mut ic = replica();
    let id = counter(&mut ic);
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "forbidden", &()),
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        "rejected the message",
    );
    // Inter-canister calls are not inspected.
    let caller = install(&mut ic, "tc_caller", no_arg());
    let out: crate::messaging::Outcome = ic
        .update(
            caller,
            user(),
            "call_raw",
            (id, "forbidden".to_string(), no_arg(), 0u128),
        )
        .map(|(o,)| o)
        .unwrap();
    assert!(
        matches!(out, crate::messaging::Outcome::Reply(_)),
        "{out:?}"
    );
}

// --- hand-made modules ----------------------------------------------------

/// A module with the given `(module, name, params, results)` imports and
/// exported `() -> ()` functions with the given bodies.
pub fn raw_module(
    imports: &[(&str, &str, &[ValType], &[ValType])],
    exports: &[(&str, Vec<Instruction<'static>>)],
) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], []);
    let mut import_section = ImportSection::new();
    for (i, (module, name, params, results)) in imports.iter().enumerate() {
        types
            .ty()
            .function(params.iter().copied(), results.iter().copied());
        import_section.import(
            module,
            name,
            wasm_encoder::EntityType::Function(i as u32 + 1),
        );
    }
    let mut functions = FunctionSection::new();
    let mut export_section = ExportSection::new();
    let mut code = CodeSection::new();
    for (i, (name, body)) in exports.iter().enumerate() {
        functions.function(0);
        let index = imports.len() as u32 + i as u32;
        export_section.export(name, ExportKind::Func, index);
        let mut f = Function::new([]);
        for ins in body {
            f.instruction(ins);
        }
        f.instruction(&Instruction::End);
        code.function(&f);
    }
    let mut memory = MemorySection::new();
    memory.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut module = Module::new();
    module.section(&types);
    if !imports.is_empty() {
        module.section(&import_section);
    }
    module.section(&functions);
    module.section(&memory);
    module.section(&export_section);
    module.section(&code);
    module.finish()
}

fn install_raw(
    ic: &mut LocalReplica,
    wasm: Vec<u8>,
) -> (Principal, Result<(), local_replica::Error>) {
    let id = ic.create_canister(user()).unwrap();
    let r = ic.install_canister(user(), id, wasm, Vec::new());
    (id, r)
}

#[test]
fn validation_refuses_bad_modules() {
    let mut ic = replica();
    let (_, r) = install_raw(&mut ic, raw_module(&[("env", "foo", &[], &[])], &[]));
    assert_reject(
        r,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        "imports `env.foo`",
    );
    let (_, r) = install_raw(
        &mut ic,
        raw_module(&[("ic0", "no_such_function", &[], &[])], &[]),
    );
    assert_reject(
        r,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        "not a System API function",
    );
    let (_, r) = install_raw(
        &mut ic,
        raw_module(&[("ic0", "msg_reply", &[ValType::I32], &[])], &[]),
    );
    assert_reject(
        r,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        "expected [] -> []",
    );
    let (_, r) = install_raw(&mut ic, raw_module(&[], &[("canister_something", vec![])]));
    assert_reject(
        r,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        "reserved name",
    );
    let (_, r) = install_raw(
        &mut ic,
        raw_module(
            &[],
            &[("canister_update a", vec![]), ("canister_query a", vec![])],
        ),
    );
    assert_reject(
        r,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        "more than once",
    );
    let (_, r) = install_raw(&mut ic, b"not wasm".to_vec());
    assert_reject(
        r,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        "expected a WebAssembly module",
    );
    // A valid minimal module installs.
    let (_, r) = install_raw(&mut ic, raw_module(&[], &[("canister_update a", vec![])]));
    r.unwrap();
}

#[test]
fn system_api_availability_and_bounds_are_enforced() {
    let mut ic = replica();
    // msg_reply in canister_init is not available.
    let (id, r) = install_raw(
        &mut ic,
        raw_module(
            &[("ic0", "msg_reply", &[], &[])],
            &[("canister_init", vec![Instruction::Call(0)])],
        ),
    );
    assert_reject(
        r,
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        "\"ic0.msg_reply\" cannot be executed in init mode",
    );
    assert_eq!(
        ic.module_hash(id),
        None,
        "a failed install leaves the canister empty"
    );
    // debug_print of a range outside the heap traps.
    let (id, r) = install_raw(
        &mut ic,
        raw_module(
            &[("ic0", "debug_print", &[ValType::I32, ValType::I32], &[])],
            &[(
                "canister_update p",
                vec![
                    Instruction::I32Const(65_530),
                    Instruction::I32Const(100),
                    Instruction::Call(0),
                ],
            )],
        ),
    );
    r.unwrap();
    assert_reject(
        ic.update_call(id, user(), "p", Vec::new()),
        RejectCode::CanisterError,
        ErrorCode::CanisterTrapped,
        "heap out of bounds",
    );
    // A wasm trap (unreachable) is a CanisterTrapped error.
    let (id, r) = install_raw(
        &mut ic,
        raw_module(
            &[],
            &[("canister_update u", vec![Instruction::Unreachable])],
        ),
    );
    r.unwrap();
    assert_reject(
        ic.update_call(id, user(), "u", Vec::new()),
        RejectCode::CanisterError,
        ErrorCode::CanisterTrapped,
        "unreachable",
    );
}

/// With `history_limit` (what a served replica sets), the replica keeps the
/// newest execution records and log lines, not every one ever made.
#[test]
fn history_limit_keeps_the_newest_records_and_logs() {
    let limit = 4;
    let mut ic = replica_with(local_replica::Config {
        history_limit: Some(limit),
        ..Default::default()
    });
    let id = counter(&mut ic);
    for i in 0..20 {
        ic.update_one::<_, ()>(id, user(), "print", &format!("line {i}"))
            .unwrap();
        assert!(
            ic.executions().len() <= 2 * limit,
            "{}",
            ic.executions().len()
        );
        assert!(ic.logs(id).len() <= 2 * limit, "{}", ic.logs(id).len());
    }
    let logs: Vec<String> = ic.logs(id).iter().map(|l| l.message.clone()).collect();
    assert!(logs.len() >= limit, "{logs:?}");
    assert_eq!(logs.last().map(String::as_str), Some("line 19"));
    let last = ic.executions().last().unwrap();
    assert_eq!((last.canister, last.method.as_str()), (id, "print"));
    // Without a limit, everything is kept.
    let mut all = replica();
    let id = counter(&mut all);
    for i in 0..20 {
        all.update_one::<_, ()>(id, user(), "print", &format!("line {i}"))
            .unwrap();
    }
    assert_eq!(all.logs(id).len(), 20);
}
