//! Instructions counted as the IC counts them: a handful of costs pinned
//! against the IC's tables (`dfinity/ic` `instrumentation.rs`,
//! `system_api_complexity.rs`, the linker's per-byte charges, stable
//! memory's dirty pages and the compilation charge).

use local_replica::costs::{compilation_cost, instrumented_instruction_count};
use local_replica::{ExecutionKind, LocalReplica};

use crate::common::*;

/// Installs a module written in the text format.
fn install_wat(ic: &mut LocalReplica, wat: &str) -> candid::Principal {
    let wasm = wat::parse_str(wat).expect("valid wat");
    let id = ic.create_canister(user()).expect("create");
    ic.install_canister(user(), id, wasm, Vec::new())
        .expect("install");
    id
}

fn instructions(ic: &LocalReplica, id: candid::Principal, method: &str) -> u64 {
    ic.last_execution(id, method)
        .unwrap_or_else(|| panic!("no execution of {method}"))
        .instructions
}

const PRELUDE: &str = r#"
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (import "ic0" "stable64_read" (func $sread (param i64 i64 i64)))
  (memory 2)
"#;

#[test]
fn operators_cost_their_ic_weight() {
    let mut ic = replica();
    let id = install_wat(
        &mut ic,
        &format!(
            r#"(module {PRELUDE}
              (func (export "canister_update arith")
                i32.const 7      ;; 1
                i32.const 3      ;; 1
                i32.div_s        ;; 10
                drop             ;; 1
                f64.const 2      ;; 1
                f64.sqrt         ;; 8
                drop             ;; 1
                call $reply)     ;; 5 + msg_reply 500
              (func $leaf (result i32) i32.const 1)   ;; entry 1 + 1
              (func (export "canister_update calls")
                call $leaf drop  ;; 5 + 2 + 1
                call $leaf drop  ;; 5 + 2 + 1
                call $reply)
              (func (export "canister_update fill")
                i32.const 0 i32.const 0 i32.const 1000
                memory.fill      ;; 3 + 100 + 1000 bytes
                call $reply))"#
        ),
    );
    ic.update_call(id, user(), "arith", Vec::new()).unwrap();
    // Function entry 1, the operators 23, `call` 5, `msg_reply` 500.
    assert_eq!(instructions(&ic, id, "arith"), 1 + 23 + 5 + 500);
    ic.update_call(id, user(), "calls", Vec::new()).unwrap();
    assert_eq!(instructions(&ic, id, "calls"), 1 + 2 * (5 + 2 + 1) + 505);
    ic.update_call(id, user(), "fill", Vec::new()).unwrap();
    assert_eq!(instructions(&ic, id, "fill"), 1 + 3 + 100 + 1_000 + 505);
}

#[test]
fn system_api_charges_bytes_sent_fifty_times() {
    let mut ic = replica();
    let id = install_wat(
        &mut ic,
        &format!(
            r#"(module {PRELUDE}
              (func (export "canister_update reply100")
                i32.const 0 i32.const 100
                call $append     ;; 2 + 5 + 500 + 50 * 100
                call $reply))"#
        ),
    );
    let reply = ic.update_call(id, user(), "reply100", Vec::new()).unwrap();
    assert_eq!(reply.len(), 100);
    assert_eq!(
        instructions(&ic, id, "reply100"),
        1 + 2 + 5 + 500 + 50 * 100 + 505
    );
}

#[test]
fn stable_writes_pay_per_byte_and_per_newly_dirtied_page() {
    let mut ic = replica();
    let id = install_wat(
        &mut ic,
        &format!(
            r#"(module {PRELUDE}
              (func (export "canister_update grow")
                i64.const 1 call $grow drop   ;; 1 + 5 + 100 + 1
                call $reply)
              (func (export "canister_update write_twice")
                ;; 8 KiB at offset 0: two pages dirtied once.
                i64.const 0 i64.const 0 i64.const 8192 call $swrite
                i64.const 0 i64.const 0 i64.const 8192 call $swrite
                call $reply)
              (func (export "canister_update read")
                i64.const 0 i64.const 0 i64.const 8192 call $sread
                call $reply))"#
        ),
    );
    ic.update_call(id, user(), "grow", Vec::new()).unwrap();
    assert_eq!(instructions(&ic, id, "grow"), 1 + (1 + 5 + 100 + 1) + 505);
    ic.update_call(id, user(), "write_twice", Vec::new())
        .unwrap();
    let write = 3 + 5 + 20 + 8_192;
    assert_eq!(
        instructions(&ic, id, "write_twice"),
        1 + 2 * write + 2 * 1_000 + 505
    );
    // A new message dirties the pages anew.
    ic.update_call(id, user(), "write_twice", Vec::new())
        .unwrap();
    assert_eq!(
        instructions(&ic, id, "write_twice"),
        1 + 2 * write + 2 * 1_000 + 505
    );
    // Reads pay per byte and dirty nothing.
    ic.update_call(id, user(), "read", Vec::new()).unwrap();
    assert_eq!(instructions(&ic, id, "read"), 1 + write + 505);
}

#[test]
fn installs_are_charged_for_compilation() {
    let mut ic = replica();
    let wat = format!(
        r#"(module {PRELUDE}
          (func (export "canister_update f") call $reply))"#
    );
    let wasm = wat::parse_str(&wat).unwrap();
    let first = install_wat(&mut ic, &wat);
    let compile = |ic: &LocalReplica, id| {
        ic.executions()
            .iter()
            .rev()
            .find(|r| r.canister == id && r.kind == ExecutionKind::Compile)
            .expect("a compilation record")
            .clone()
    };
    let full = compilation_cost(&wasm);
    assert_eq!(full, instrumented_instruction_count(&wasm) * 6_000);
    let record = compile(&ic, first);
    assert_eq!(record.instructions, full);
    // Charged in cycles at one cycle per instruction.
    assert_eq!(record.cycles, u128::from(full));
    // The same module again: compiled already, 1/100 counts against the
    // install's limit, the cycles are charged in full.
    let second = install_wat(&mut ic, &wat);
    let record = compile(&ic, second);
    assert_eq!(record.instructions, full / 100);
    assert_eq!(record.cycles, u128::from(full));
}
