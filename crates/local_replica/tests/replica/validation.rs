//! Module validation at install, rule by rule, as the IC's
//! (`dfinity/ic` `rs/embedders/src/wasm_utils/validation.rs`): each module
//! here breaks one rule and is refused with `CanisterInvalidWasm` and a
//! message naming the limit; modules at a limit install; SIMD installs and
//! runs; the limits are configurable.

use std::sync::OnceLock;

use candid::Principal;
use local_replica::{
    CanisterInstallMode, Config, Error, ErrorCode, Limits, LocalReplica, ModuleLimits, RejectCode,
};

use crate::common::{assert_reject, replica, replica_with, user};

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("{e}"))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Installs `wasm` in a new canister (through the chunk store when it does
/// not fit in one message).
fn install(ic: &mut LocalReplica, wasm: Vec<u8>) -> Result<Principal, Error> {
    let id = ic.create_canister(user())?;
    ic.install_wasm(user(), id, CanisterInstallMode::Install, wasm, Vec::new())?;
    Ok(id)
}

#[track_caller]
fn assert_invalid(ic: &mut LocalReplica, wasm: Vec<u8>, needle: &str) {
    assert_reject(
        install(ic, wasm),
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        needle,
    );
}

fn limits(module: ModuleLimits) -> Config {
    Config {
        limits: Limits {
            module,
            ..Limits::default()
        },
        ..Config::default()
    }
}

/// A module whose code section is 10 MiB + 1 byte after its function
/// count (16 functions of `nop`s), gzip-compressed (about 10 KiB); built
/// once.
fn code_over_10_mib() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        use wasm_encoder::{CodeSection, FunctionSection, Module, TypeSection};
        let (bytes, functions) = ((10u64 << 20) + 1, 16u64);
        // Per function: size prefix (3 bytes), no locals (1), end (1).
        let nops = bytes - 5 * functions;
        let mut types = TypeSection::new();
        types.ty().function([], []);
        let mut funcs = FunctionSection::new();
        let mut code = CodeSection::new();
        for i in 0..functions {
            let n = nops / functions + if i == 0 { nops % functions } else { 0 };
            let mut body = vec![0u8];
            body.resize(1 + n as usize, 0x01);
            body.push(0x0b);
            funcs.function(0);
            code.raw(&body);
        }
        let mut module = Module::new();
        module.section(&types).section(&funcs).section(&code);
        gzip(&module.finish())
    })
    .clone()
}

#[test]
fn code_section_over_10_mib_is_refused() {
    let mut ic = replica();
    assert_invalid(
        &mut ic,
        code_over_10_mib(),
        "the code section is 10485761 bytes; the IC allows at most 10485760 bytes (10 MiB)",
    );
}

#[test]
fn module_limits_are_configurable() {
    // A replica modelled on a newer IC (11 MiB of code) installs the module.
    let mut ic = replica_with(limits(ModuleLimits {
        max_code_section_bytes: 11 << 20,
        ..ModuleLimits::default()
    }));
    install(&mut ic, code_over_10_mib()).unwrap();
    // A lower limit refuses a module the default accepts.
    let mut ic = replica_with(limits(ModuleLimits {
        max_functions: 2,
        ..ModuleLimits::default()
    }));
    install(&mut ic, wat("(module (func) (func))")).unwrap();
    assert_invalid(
        &mut ic,
        wat("(module (func) (func) (func))"),
        "defines 3 functions (imports excluded); the IC allows at most 2 (`max_functions`)",
    );
}

#[test]
fn too_many_functions_are_refused() {
    let mut ic = replica();
    assert_invalid(
        &mut ic,
        wat(&format!("(module {})", "(func)".repeat(50_001))),
        "the module defines 50001 functions (imports excluded); the IC allows at most 50000",
    );
    // Imported functions do not count (50,000 functions pass the validator,
    // see the unit tests; compiling them here would take seconds).
    let mut ic = replica_with(limits(ModuleLimits {
        max_functions: 1,
        ..ModuleLimits::default()
    }));
    let imports = r#"(module (import "ic0" "msg_reply" (func))
        (import "ic0" "accept_message" (func)) (func))"#;
    install(&mut ic, wat(imports)).unwrap();
}

#[test]
fn globals_are_limited_in_number_and_type() {
    let mut ic = replica();
    let globals = |n: usize| {
        wat(&format!(
            "(module {})",
            "(global i32 (i32.const 1))".repeat(n)
        ))
    };
    install(&mut ic, globals(1_000)).unwrap();
    assert_invalid(
        &mut ic,
        globals(1_001),
        "the module defines 1001 globals; the IC allows at most 1000 (`max_globals`)",
    );
    assert_invalid(
        &mut ic,
        wat("(module (global funcref (ref.null func)))"),
        "global 0 has type funcref; the IC allows globals of type i32, i64, f32, f64 or v128",
    );
    assert_invalid(
        &mut ic,
        wat(r#"(module (import "ic0" "g" (global i32)))"#),
        "imports the global `ic0.g`; the IC does not allow importing globals",
    );
}

#[test]
fn exported_methods_are_limited_in_number_and_name_length() {
    let mut ic = replica();
    let methods = |names: Vec<String>| {
        let exports: String = names
            .iter()
            .map(|n| format!(r#"(export "canister_update {n}" (func 0))"#))
            .collect();
        wat(&format!("(module (func) {exports})"))
    };
    let numbered = |n: usize| (0..n).map(|i| format!("m{i}")).collect::<Vec<_>>();
    install(&mut ic, methods(numbered(1_000))).unwrap();
    assert_invalid(
        &mut ic,
        methods(numbered(1_001)),
        "the module exports 1001 methods (`canister_update|query|composite_query <name>`); \
         the IC allows at most 1000 (`max_exported_methods`)",
    );
    let long = |total: usize| vec!["a".repeat(total / 2), "b".repeat(total - total / 2)];
    install(&mut ic, methods(long(20_000))).unwrap();
    assert_invalid(
        &mut ic,
        methods(long(20_001)),
        "the names of the exported methods total 20001 bytes; the IC allows at most \
         20000 bytes (`max_exported_name_bytes`)",
    );
}

/// An empty module with the given custom sections (name, size).
fn with_custom(sections: &[(&str, usize)]) -> Vec<u8> {
    let mut module = wasm_encoder::Module::new();
    for (name, size) in sections {
        module.section(&wasm_encoder::CustomSection {
            name: (*name).into(),
            data: vec![b'x'; *size].into(),
        });
    }
    module.finish()
}

#[test]
fn custom_sections_are_limited() {
    let mut ic = replica();
    let names: Vec<String> = (0..17).map(|i| format!("icp:private s{i}")).collect();
    let sections = |n: usize| {
        with_custom(
            &names[..n]
                .iter()
                .map(|s| (s.as_str(), 10))
                .collect::<Vec<_>>(),
        )
    };
    install(&mut ic, sections(16)).unwrap();
    assert_invalid(
        &mut ic,
        sections(17),
        "the module has 17 `icp:public`/`icp:private` custom sections; the IC allows at \
         most 16 (`max_custom_sections`)",
    );
    // Contents plus the name after `icp:public `: 1 MiB exactly installs.
    install(&mut ic, with_custom(&[("icp:public big", (1 << 20) - 3)])).unwrap();
    assert_invalid(
        &mut ic,
        with_custom(&[("icp:public big", (1 << 20) - 2)]),
        "custom sections total 1048577 bytes (contents and names); the IC allows at most \
         1048576 bytes (1 MiB) (`max_custom_sections_bytes`)",
    );
    assert_invalid(
        &mut ic,
        with_custom(&[("icp:public x", 1), ("icp:private x", 1)]),
        "the custom section name `x` is used twice",
    );
    assert_invalid(
        &mut ic,
        with_custom(&[("icp:public", 1)]),
        "custom section `icp:public`: expected a space and a name after the visibility",
    );
}

#[test]
fn complex_or_large_functions_are_refused() {
    let mut ic = replica();
    let function = |body: String| wat(&format!("(module (func {body}))"));
    // 999,999 `nop`s and `end`: a million instructions of weight 1.
    install(&mut ic, function("nop ".repeat(999_999))).unwrap();
    assert_invalid(
        &mut ic,
        function("nop ".repeat(1_000_000)),
        "function 0 has a complexity of 1000001; the IC allows at most 1000000 per \
         function (`max_function_complexity`)",
    );
    // Blocks weigh 50: 20,000 of them are 40,001 instructions but a
    // complexity of 1,020,001.
    assert_invalid(
        &mut ic,
        function("block end ".repeat(20_000)),
        "function 0 has a complexity of 1020001",
    );
    // With the IC's limits a function is too complex before it is too
    // large (every instruction weighs at least 1); a lower size limit
    // shows the size check.
    let mut ic = replica_with(limits(ModuleLimits {
        max_function_size: 1_000,
        ..ModuleLimits::default()
    }));
    assert_invalid(
        &mut ic,
        function("nop ".repeat(1_000)),
        "function 0 has 1001 instructions; the IC allows at most 1000 per function \
         (`max_function_size`)",
    );
}

#[test]
fn proposals_the_ic_does_not_enable_are_refused() {
    let mut ic = replica();
    for (module, needle) in [
        (
            "(module (func return_call 0))",
            "uses tail calls (`return_call`, `return_call_indirect`), which the IC does not enable",
        ),
        (
            "(module (type (func)) (table 1 funcref) \
             (func i32.const 0 return_call_indirect (type 0)))",
            "uses tail calls",
        ),
        (
            "(module (type $t (func)) (elem declare func 0) \
             (func (type $t) ref.func 0 call_ref $t))",
            "uses typed function references",
        ),
        (
            "(module (type $s (struct (field i32))) (func i32.const 1 struct.new $s drop))",
            "uses garbage collection (GC)",
        ),
        (
            "(module (func (param v128 v128) (result v128) \
             local.get 0 local.get 1 i8x16.relaxed_swizzle))",
            "uses relaxed SIMD",
        ),
        (
            "(module (memory 1 1 shared) (func i32.const 0 i32.atomic.load drop))",
            "uses threads",
        ),
        (
            "(module (memory 1) (memory 1))",
            "the module has 2 memories; at most one is allowed",
        ),
        (
            "(module (memory i64 1))",
            "the module's memory is 64-bit; expected a 32-bit memory",
        ),
    ] {
        assert_invalid(&mut ic, wat(module), needle);
    }
}

#[test]
fn table_mutation_instructions_are_refused() {
    let mut ic = replica();
    for (body, instruction) in [
        ("ref.null func i32.const 1 table.grow 0 drop", "table.grow"),
        ("i32.const 0 ref.null func table.set 0", "table.set"),
        (
            "i32.const 0 ref.null func i32.const 1 table.fill 0",
            "table.fill",
        ),
        (
            "i32.const 0 i32.const 0 i32.const 0 table.copy",
            "table.copy",
        ),
        (
            "i32.const 0 i32.const 0 i32.const 0 table.init 0",
            "table.init",
        ),
    ] {
        let module = format!("(module (table 1 funcref) (elem func 0) (func {body}))");
        assert_invalid(
            &mut ic,
            wat(&module),
            &format!("function 0 uses `{instruction}`, an instruction the IC does not support"),
        );
    }
    // table.get and table.size, reference types as the MVP has them and bulk
    // memory are allowed.
    install(
        &mut ic,
        wat(
            "(module (memory 1) (table 2 funcref) (elem (i32.const 0) func 0) (data \"abc\") \
             (func (export \"canister_update f\") \
               i32.const 0 table.get 0 ref.is_null drop table.size 0 drop \
               ref.func 0 drop \
               i32.const 0 i32.const 0 i32.const 3 memory.init 0 data.drop 0 \
               i32.const 8 i32.const 0 i32.const 3 memory.copy \
               i32.const 0 i32.const 0 i32.const 3 memory.fill))",
        ),
    )
    .unwrap();
}

#[test]
fn data_segment_offsets_must_be_one_i32_const() {
    let mut ic = replica();
    assert_invalid(
        &mut ic,
        wat("(module (memory 1) (data (offset i32.const 1 i32.const 2 i32.add) \"x\"))"),
        "active data segment 0 has the offset expression 3 instructions",
    );
    // A `global.get` offset needs an imported global, refused first (the IC
    // checks imports before data segments).
    assert_invalid(
        &mut ic,
        wat(r#"(module (import "ic0" "g" (global i32)) (memory 1) (data (global.get 0) "x"))"#),
        "imports the global `ic0.g`",
    );
    assert_invalid(
        &mut ic,
        wat("(module (global i32 (i32.add (i32.const 1) (i32.const 2))))"),
        "the initial value of global 0 is a constant expression of 3 instructions",
    );
    install(
        &mut ic,
        wat("(module (memory 1) (data (i32.const 8) \"x\") (data \"passive\"))"),
    )
    .unwrap();
}

#[test]
fn simd_modules_install_and_run() {
    let mut ic = replica();
    let id = install(
        &mut ic,
        wat(r#"(module
            (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
            (import "ic0" "msg_reply" (func $reply))
            (memory 1)
            (global $g (mut v128) (v128.const i32x4 1 2 3 4))
            (func (export "canister_update add")
              (global.set $g (i32x4.add (global.get $g) (v128.const i32x4 10 20 30 40)))
              (v128.store (i32.const 0) (global.get $g))
              (call $append (i32.const 0) (i32.const 16))
              (call $reply)))"#),
    )
    .unwrap();
    let lanes = |bytes: Vec<u8>| {
        bytes
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect::<Vec<_>>()
    };
    let reply = ic.update_call(id, user(), "add", Vec::new()).unwrap();
    assert_eq!(lanes(reply), [11, 22, 33, 44]);
    // The v128 global is committed like any other.
    let reply = ic.update_call(id, user(), "add", Vec::new()).unwrap();
    assert_eq!(lanes(reply), [21, 42, 63, 84]);
}
