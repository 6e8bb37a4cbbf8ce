//! The folding pass on hand-written modules: what it folds, what it leaves,
//! and that the folded module computes what the original did (run under
//! wasmtime).

use wasm_fold::{fold_load_offsets, LOW_MEMORY_BOUND};
use wasmtime::{Engine, Instance, Module, Store, Trap};

/// Sums the loads of `$f` at `p`: a SIMD load at `p + 8` (const, add), a
/// SIMD load at `p + 64` (LLVM's `i32.sub` of -64), a scalar load at
/// `p + 2000` (past the bound: kept), and a load at `5 + p` whose constant
/// comes first (not the pattern: kept).
const MODULE: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "f") (param $p i32) (result i64)
    (i64.add
      (i64.add
        (i64x2.extract_lane 0
          (i32x4.dot_i16x8_s
            (v128.load8x8_s (i32.add (local.get $p) (i32.const 8)))
            (v128.load (i32.sub (local.get $p) (i32.const -64)))))
        (i64.load (i32.add (local.get $p) (i32.const 2000))))
      (i64.load8_u offset=3 (i32.add (i32.const 5) (local.get $p)))))
  (data (i32.const 0) "\01\02\03\04\05\06\07\08\09\0a\0b\0c\0d\0e\0f\10\11\12\13\14\15\16\17\18\19\1a\1b\1c\1d\1e\1f\20"))
"#;

fn run(wasm: &[u8], p: i32) -> wasmtime::Result<i64> {
    let engine = Engine::default();
    let module = Module::new(&engine, wasm)?;
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[])?;
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    // A pattern over the first 4 KiB, so that every offset reads something
    // different.
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7 + i / 256) as u8).collect();
    memory.write(&mut store, 0, &bytes)?;
    let f = instance.get_typed_func::<i32, i64>(&mut store, "f")?;
    f.call(&mut store, p)
}

#[test]
fn folds_constant_additions_before_loads_and_computes_the_same() {
    let wasm = wat::parse_str(MODULE).unwrap();
    let folded = fold_load_offsets(&wasm).unwrap();
    assert_eq!(folded.folds, 2, "the add and the sub before the SIMD loads");
    assert_eq!(folded.removed, 4);
    assert!(folded.module.len() < wasm.len());
    wasmparser::Validator::new()
        .validate_all(&folded.module)
        .unwrap();
    let text = wasmprinter(&folded.module);
    assert!(text.contains("v128.load8x8_s offset=8"), "{text}");
    assert!(text.contains("v128.load offset=64"), "{text}");
    assert!(text.contains("i32.const 2000"), "{text}");
    assert!(text.contains("i32.const 5"), "{text}");
    for p in [0, 1, 100, 1000] {
        assert_eq!(run(&wasm, p).unwrap(), run(&folded.module, p).unwrap());
    }
}

#[test]
fn a_wrapped_address_sum_traps_instead_of_reading_low_memory() {
    // p + 8 wraps to 4 in the original, which reads address 4; the folded
    // load's address is p + 8 without wrapping, past the memory: it traps.
    let wasm = wat::parse_str(
        r#"(module (memory 1)
             (func (export "f") (param $p i32) (result i64)
               (i64.load8_u (i32.add (local.get $p) (i32.const 8)))))"#,
    )
    .unwrap();
    let folded = fold_load_offsets(&wasm).unwrap();
    assert_eq!(folded.folds, 1);
    let engine = Engine::default();
    let call = |wasm: &[u8]| {
        let module = Module::new(&engine, wasm).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance
            .get_typed_func::<i32, i64>(&mut store, "f")
            .unwrap();
        f.call(&mut store, -4)
    };
    assert_eq!(call(&wasm).unwrap(), 0);
    let err = call(&folded.module).unwrap_err();
    assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::MemoryOutOfBounds));
}

#[test]
fn offsets_at_the_bound_and_memory64_modules_are_left_alone() {
    let at_bound = wat::parse_str(format!(
        r#"(module (memory 1)
             (func (param $p i32) (result i32)
               (i32.load offset=24 (i32.add (local.get $p) (i32.const {})))))"#,
        LOW_MEMORY_BOUND - 24
    ))
    .unwrap();
    assert_eq!(fold_load_offsets(&at_bound).unwrap().folds, 0);
    let below = wat::parse_str(format!(
        r#"(module (memory 1)
             (func (param $p i32) (result i32)
               (i32.load offset=24 (i32.add (local.get $p) (i32.const {})))))"#,
        LOW_MEMORY_BOUND - 25
    ))
    .unwrap();
    assert_eq!(fold_load_offsets(&below).unwrap().folds, 1);

    let memory64 = wat::parse_str(
        r#"(module (memory i64 1)
             (func (param $p i64) (result i32)
               (i32.load (i64.add (local.get $p) (i64.const 8)))))"#,
    )
    .unwrap();
    let folded = fold_load_offsets(&memory64).unwrap();
    assert_eq!(folded.folds, 0);
    assert_eq!(folded.module, memory64);
}

/// The module as text, for the assertions above (operators only).
fn wasmprinter(wasm: &[u8]) -> String {
    let mut out = String::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.unwrap() {
            let mut reader = body.get_operators_reader().unwrap();
            while !reader.eof() {
                let op = reader.read().unwrap();
                out.push_str(&describe(&op));
                out.push('\n');
            }
        }
    }
    out
}

fn describe(op: &wasmparser::Operator<'_>) -> String {
    use wasmparser::Operator::*;
    match op {
        V128Load8x8S { memarg } => format!("v128.load8x8_s offset={}", memarg.offset),
        V128Load { memarg } => format!("v128.load offset={}", memarg.offset),
        I32Const { value } => format!("i32.const {value}"),
        other => format!("{other:?}"),
    }
}
