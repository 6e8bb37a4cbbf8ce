//! Canisters written for the tests, in WAT (no build step):
//!
//! - [`PROXY`]: forwards one call to any canister and answers with the
//!   reply's bytes (or rejects with the reject's message). It lets a test
//!   call the suite from a *canister*, past `inspect_message`, which only
//!   sees ingress.
//! - [`SILENT`]: accepts every update and never answers: each message
//!   keeps its call context open by calling the canister again and again.
//!   A worker that never answers, its `status` included (called by the
//!   task manager's health check).
//!
//! The proxy's argument is raw bytes: the callee's principal (its length
//! in one byte, then the bytes), the method's name (likewise), then the
//! call's argument as is (candid, usually).

use candid::Principal;

pub const PROXY: &str = r#"(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "call_new"
    (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_data_append" (func $call_append (param i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (import "ic0" "msg_reply_data_append" (func $reply_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reject" (func $reject (param i32 i32)))
  (import "ic0" "msg_reject_msg_size" (func $rej_size (result i32)))
  (import "ic0" "msg_reject_msg_copy" (func $rej_copy (param i32 i32 i32)))
  (memory 40)
  (table 2 funcref)
  (elem (i32.const 0) $on_reply $on_reject)
  (func $on_reply (param $env i32)
    (local $n i32)
    (local.set $n (call $arg_size))
    (call $arg_copy (i32.const 0) (i32.const 0) (local.get $n))
    (call $reply_append (i32.const 0) (local.get $n))
    (call $reply))
  (func $on_reject (param $env i32)
    (local $n i32)
    (local.set $n (call $rej_size))
    (call $rej_copy (i32.const 0) (i32.const 0) (local.get $n))
    (call $reject (i32.const 0) (local.get $n)))
  (func (export "canister_update proxy")
    (local $n i32) (local $t i32) (local $m i32) (local $p i32)
    (local.set $n (call $arg_size))
    (call $arg_copy (i32.const 0) (i32.const 0) (local.get $n))
    (local.set $t (i32.load8_u (i32.const 0)))
    (local.set $m (i32.load8_u (i32.add (i32.const 1) (local.get $t))))
    (call $call_new
      (i32.const 1) (local.get $t)
      (i32.add (i32.const 2) (local.get $t)) (local.get $m)
      (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0))
    (local.set $p (i32.add (i32.add (i32.const 2) (local.get $t)) (local.get $m)))
    (call $call_append (local.get $p) (i32.sub (local.get $n) (local.get $p)))
    (drop (call $call_perform))))"#;

pub const SILENT: &str = r#"(module
  (import "ic0" "canister_self_size" (func $self_size (result i32)))
  (import "ic0" "canister_self_copy" (func $self_copy (param i32 i32 i32)))
  (import "ic0" "call_new"
    (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (memory 1)
  (data (i32.const 100) "again")
  (table 1 funcref)
  (elem (i32.const 0) $again)
  ;; Calls `again` on itself; the callback calls again, forever.
  (func $again (param $env i32)
    (local $n i32)
    (local.set $n (call $self_size))
    (call $self_copy (i32.const 0) (i32.const 0) (local.get $n))
    (call $call_new (i32.const 0) (local.get $n) (i32.const 100) (i32.const 5)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (drop (call $call_perform)))
  (func $hold (call $again (i32.const 0)))
  (func (export "canister_update run_job") (call $hold))
  (func (export "canister_update load_stages") (call $hold))
  (func (export "canister_update cancel_job") (call $hold))
  (func (export "canister_update again") (call $hold))
  (func (export "canister_update status") (call $hold)))"#;

/// A WAT module as wasm.
pub fn module(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("a test canister's WAT")
}

/// The proxy's argument for calling `method` of `callee` with `arg`.
pub fn proxy_arg(callee: Principal, method: &str, arg: &[u8]) -> Vec<u8> {
    let c = callee.as_slice();
    let mut out = Vec::with_capacity(2 + c.len() + method.len() + arg.len());
    out.push(c.len() as u8);
    out.extend_from_slice(c);
    out.push(method.len() as u8);
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(arg);
    out
}
