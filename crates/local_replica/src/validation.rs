//! Module validation as the IC does it at install, and the small rewrite
//! the replica needs to run a module.
//!
//! [`validate`] follows `dfinity/ic` `rs/embedders/src/wasm_utils/validation.rs`
//! (`validate_wasm_binary`), with the limits of [`ModuleLimits`], and checks
//! in the IC's order:
//!
//! 1. the module size (uncompressed, `Limits::max_wasm_bytes`) and the size
//!    of the code section after its function count
//!    (`max_code_section_bytes`, 10 MiB);
//! 2. valid WebAssembly with the features the IC's wasmtime enables
//!    ([`IC_WASM_FEATURES`]): MVP, mutable globals, sign extension,
//!    saturating float-to-int, multi-value, bulk memory, reference types
//!    (`funcref` tables, `ref.func`, `ref.null`, `ref.is_null`), SIMD
//!    (`v128`, not relaxed SIMD). Refused: tail calls, typed function
//!    references, GC and `externref`, more than one memory, 64-bit memory,
//!    relaxed SIMD, threads, exceptions;
//! 3. constant expressions of one instruction (the IC's module parser
//!    refuses extended constant expressions), active data segments at an
//!    `i32.const` offset;
//! 4. at most one memory and one table; imports only of `ic0` functions
//!    that exist, with their exact type (no imported globals or tags);
//! 5. exports: names under `canister_` only for entry points
//!    (`canister_update|query|composite_query <name>`, `canister_init`,
//!    `canister_pre_upgrade`, `canister_post_upgrade`,
//!    `canister_inspect_message`, `canister_global_timer`,
//!    `canister_heartbeat`) of type `[] -> []`, a method exported once, at
//!    most `max_exported_methods` (1,000) methods whose names total at most
//!    `max_exported_name_bytes` (20,000);
//! 6. at most `max_globals` (1,000) globals, of type i32, i64, f32, f64 or
//!    v128; at most `max_functions` (50,000) functions (imports excluded);
//! 7. every function body: no `table.grow`, `table.set`, `table.fill`,
//!    `table.copy`, `table.init`; a weighted complexity of at most
//!    `max_function_complexity` ([`instruction_complexity`]) and at most
//!    `max_function_size` instructions (both 1,000,000);
//! 8. `icp:public <name>` / `icp:private <name>` custom sections only (other
//!    `icp:` names are refused), each name once, at most
//!    `max_custom_sections` (16) of them totalling at most
//!    `max_custom_sections_bytes` (1 MiB, contents plus names).
//!
//! Each refusal is its own [`InvalidModule`] variant, whose message says
//! what was found and what the IC allows.
//!
//! The rewrite ([`instrument`]) adds exports so that the host can reach the
//! module's state: the memory (`__lr_memory`), the function table
//! (`__lr_table`, for callbacks given to `ic0.call_new`), and every mutable
//! global (`__lr_global_<index>`, so a trapped message's globals can be
//! restored). The IC instruments modules the same way.

use std::collections::{BTreeMap, BTreeSet};

use wasmparser::{
    ConstExpr, DataKind, ElementItems, ElementKind, ExternalKind, FunctionBody, Operator, Parser,
    Payload, TableInit, TypeRef, ValType, Validator, WasmFeatures,
};

use crate::limits::ModuleLimits;
use crate::system_api::ic0_signature;

/// Export name of the module's memory after instrumentation.
pub(crate) const MEMORY_EXPORT: &str = "__lr_memory";
/// Export name of the module's table after instrumentation.
pub(crate) const TABLE_EXPORT: &str = "__lr_table";
/// Prefix of mutable globals' export names after instrumentation.
pub(crate) const GLOBAL_EXPORT_PREFIX: &str = "__lr_global_";

/// The WebAssembly features a canister module may use: those the IC's
/// wasmtime enables (`wasmtime_validation_config` in `dfinity/ic`
/// `rs/embedders/src/wasm_utils/validation.rs`: bulk memory, reference
/// types and SIMD on; function references, GC, memory64, multi-memory,
/// relaxed SIMD and tail calls off; threads off, as that file sets them at
/// 0134cff12884583e5a3116bd9e051e7c57732844 "for determinism", and
/// exceptions off).
///
/// `GC_TYPES` (`externref` and the other non-`funcref` reference types) is
/// off: this replica's wasmtime is built without GC support, so it could
/// not compile them. Extended constant expressions pass the validator, as
/// in the IC, and are then refused by [`validate`] like the IC's module
/// parser refuses them. The replica's engine (`shared_engine` in
/// `replica.rs`) disables every other feature, so the validator and the
/// compiler agree.
pub(crate) const IC_WASM_FEATURES: WasmFeatures = WasmFeatures::WASM2
    .union(WasmFeatures::EXTENDED_CONST)
    .difference(WasmFeatures::GC_TYPES);

/// Turns off, in a wasmtime configuration, every feature outside
/// [`IC_WASM_FEATURES`], so that the engine compiles exactly what the
/// validator lets through (`shared_engine` in `replica.rs` uses it).
pub(crate) fn configure_engine(config: &mut wasmtime::Config) {
    config.wasm_features(IC_WASM_FEATURES.complement(), false);
}

/// Proposals the IC does not enable, with the name a refusal gives them.
/// [`unsupported_feature`] tries each on top of [`IC_WASM_FEATURES`] to
/// name the one a refused module uses.
const REFUSED_PROPOSALS: [(WasmFeatures, &str); 12] = [
    (
        WasmFeatures::TAIL_CALL,
        "tail calls (`return_call`, `return_call_indirect`)",
    ),
    (
        WasmFeatures::FUNCTION_REFERENCES,
        "typed function references",
    ),
    (
        WasmFeatures::GC_TYPES,
        "reference types other than `funcref`",
    ),
    (WasmFeatures::RELAXED_SIMD, "relaxed SIMD"),
    (WasmFeatures::THREADS, "threads (shared memory, atomics)"),
    (WasmFeatures::EXCEPTIONS, "exception handling"),
    (
        WasmFeatures::LEGACY_EXCEPTIONS,
        "exception handling (legacy)",
    ),
    (WasmFeatures::WIDE_ARITHMETIC, "wide arithmetic"),
    (WasmFeatures::CUSTOM_PAGE_SIZES, "custom page sizes"),
    (
        WasmFeatures::GC
            .union(WasmFeatures::FUNCTION_REFERENCES)
            .union(WasmFeatures::GC_TYPES),
        "garbage collection (GC)",
    ),
    (WasmFeatures::STACK_SWITCHING, "stack switching"),
    (WasmFeatures::MEMORY64, "64-bit tables (memory64)"),
];

/// `n` bytes, with the size in MiB or KiB when it is a whole number of them.
fn fmt_bytes(n: &u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if *n >= MIB && n.is_multiple_of(MIB) {
        format!("{n} bytes ({} MiB)", n / MIB)
    } else if *n >= KIB && n.is_multiple_of(KIB) {
        format!("{n} bytes ({} KiB)", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// Why a module was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidModule {
    #[error("expected a WebAssembly module (magic bytes \\0asm), found {0}")]
    NotWasm(String),
    #[error("the module is {found} bytes; at most {limit} bytes are allowed")]
    TooLarge { found: u64, limit: u64 },
    #[error("invalid WebAssembly: {0}")]
    Invalid(String),
    #[error(
        "the code section is {found} bytes; the IC allows at most {} \
         (`max_code_section_bytes`)",
        fmt_bytes(.limit)
    )]
    CodeSectionTooLarge { found: u64, limit: u64 },
    #[error(
        "the module uses {feature}, which the IC does not enable (it accepts the \
         features of WebAssembly 2.0: bulk memory, `funcref` reference types, SIMD, \
         multi-value, sign extension, saturating conversions): {detail}"
    )]
    UnsupportedFeature { feature: String, detail: String },
    #[error(
        "{place} is a constant expression of {found}; the IC allows a single \
         constant instruction (no extended constant expressions)"
    )]
    ExtendedConstExpr { place: String, found: String },
    #[error(
        "active data segment {segment} has the offset expression {found}; the IC \
         requires a single `i32.const`"
    )]
    DataOffsetNotConst { segment: u32, found: String },
    #[error(
        "the module imports `{module}.{name}`; a canister may only import \
         functions of the System API (`ic0`)"
    )]
    ForeignImport { module: String, name: String },
    #[error(
        "the module imports the {kind} `{module}.{name}`; the IC does not allow \
         importing {kind}s (only `ic0` functions)"
    )]
    ImportedGlobalOrTag {
        kind: &'static str,
        module: String,
        name: String,
    },
    #[error("the module imports `ic0.{0}`, which is not a System API function")]
    UnknownIc0Function(String),
    #[error("the module imports `ic0.{name}` with type {found}; expected {expected}")]
    WrongIc0Signature {
        name: String,
        expected: String,
        found: String,
    },
    #[error("the module has {0} memories; at most one is allowed")]
    TooManyMemories(usize),
    #[error("the module has {0} tables; at most one is allowed")]
    TooManyTables(usize),
    #[error("the module's memory is 64-bit; expected a 32-bit memory")]
    Memory64,
    #[error("the module exports `{0}`, a reserved name that is not a canister entry point")]
    ReservedExport(String),
    #[error("the export `{name}` must have type [] -> []; found {found}")]
    WrongEntryPointType { name: String, found: String },
    #[error("the method `{0}` is exported more than once (as update, query or composite query)")]
    DuplicateMethod(String),
    #[error(
        "the module exports {found} methods (`canister_update|query|composite_query \
         <name>`); the IC allows at most {limit} (`max_exported_methods`)"
    )]
    TooManyExportedMethods { found: usize, limit: usize },
    #[error(
        "the names of the exported methods total {found} bytes; the IC allows at most \
         {limit} bytes (`max_exported_name_bytes`)"
    )]
    ExportedNamesTooLong { found: usize, limit: usize },
    #[error(
        "the module defines {found} globals; the IC allows at most {limit} \
         (`max_globals`)"
    )]
    TooManyGlobals { found: usize, limit: usize },
    #[error(
        "global {index} has type {found}; the IC allows globals of type i32, i64, f32, f64 or v128"
    )]
    UnsupportedGlobalType { index: u32, found: String },
    #[error(
        "the module defines {found} functions (imports excluded); the IC allows at \
         most {limit} (`max_functions`)"
    )]
    TooManyFunctions { found: usize, limit: usize },
    #[error(
        "function {index} uses `{instruction}`, an instruction the IC does not support \
         (of the table instructions only `table.get` and `table.size` are allowed)"
    )]
    UnsupportedInstruction {
        index: u32,
        instruction: &'static str,
    },
    #[error(
        "function {index} has a complexity of {found}; the IC allows at most {limit} \
         per function (`max_function_complexity`)"
    )]
    FunctionTooComplex { index: u32, found: u64, limit: u64 },
    #[error(
        "function {index} has {found} instructions; the IC allows at most {limit} per \
         function (`max_function_size`)"
    )]
    FunctionTooLarge {
        index: u32,
        found: usize,
        limit: usize,
    },
    #[error("custom section `{0}`: expected a name `icp:public <name>` or `icp:private <name>`")]
    BadCustomSection(String),
    #[error(
        "custom section `{0}`: expected a space and a name after the visibility \
         (`{0} <name>`)"
    )]
    CustomSectionWithoutName(String),
    #[error(
        "the custom section name `{0}` is used twice; each `icp:public`/`icp:private` \
         name must be unique"
    )]
    DuplicateCustomSection(String),
    #[error(
        "the module has {found} `icp:public`/`icp:private` custom sections; the IC \
         allows at most {limit} (`max_custom_sections`)"
    )]
    TooManyCustomSections { found: usize, limit: usize },
    #[error(
        "the `icp:public`/`icp:private` custom sections total {found} bytes (contents \
         and names); the IC allows at most {} (`max_custom_sections_bytes`)",
        fmt_bytes(.limit)
    )]
    CustomSectionsTooLarge { found: u64, limit: u64 },
}

/// The kind of an exported method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    Update,
    Query,
    CompositeQuery,
}

/// What the replica needs to know about a validated module.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModuleInfo {
    pub methods: BTreeMap<String, MethodKind>,
    pub has_init: bool,
    pub has_pre_upgrade: bool,
    pub has_post_upgrade: bool,
    pub has_inspect_message: bool,
    pub has_global_timer: bool,
    pub has_heartbeat: bool,
    /// Indices of the mutable globals (exported by the rewrite).
    pub mutable_globals: Vec<u32>,
    pub has_memory: bool,
    pub has_table: bool,
    /// `icp:public`/`icp:private` custom sections: name -> (public, bytes).
    pub custom_sections: BTreeMap<String, (bool, Vec<u8>)>,
}

fn fmt_func_type(params: &[ValType], results: &[ValType]) -> String {
    let f = |v: &[ValType]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("[{}] -> [{}]", f(params), f(results))
}

fn invalid(e: wasmparser::BinaryReaderError) -> InvalidModule {
    InvalidModule::Invalid(e.to_string())
}

/// Decompresses a gzip-compressed module (the IC accepts modules starting
/// with `1f 8b 08`), refusing more than `max_bytes` of output.
pub(crate) fn gunzip(gz: &[u8], max_bytes: u64) -> Result<Vec<u8>, InvalidModule> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(gz).take(max_bytes + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| InvalidModule::Invalid(format!("gzip: {e}")))?;
    if out.len() as u64 > max_bytes {
        return Err(InvalidModule::TooLarge {
            found: out.len() as u64,
            limit: max_bytes,
        });
    }
    Ok(out)
}

/// The weight of one instruction in a function's complexity, as the IC
/// counts it (`wasm_function_complexity` in `dfinity/ic`
/// `rs/embedders/src/wasm_utils/validation.rs`), or the name of an
/// instruction the IC refuses (`UnsupportedWasmInstruction`: `table.grow`,
/// `table.set`, `table.fill`, `table.copy`, `table.init`).
///
/// Control flow, calls and `memory.grow` weigh 50 (instrumentation adds
/// code after them); conversions, loads, divisions and some float
/// operations a few units; everything else 1.
pub(crate) fn instruction_complexity(op: &Operator<'_>) -> Result<u64, &'static str> {
    use Operator::*;
    Ok(match op {
        Block { .. }
        | Loop { .. }
        | If { .. }
        | Br { .. }
        | BrIf { .. }
        | BrTable { .. }
        | Call { .. }
        | CallIndirect { .. }
        | MemoryGrow { .. } => 50,
        TableGrow { .. } => return Err("table.grow"),
        TableSet { .. } => return Err("table.set"),
        TableFill { .. } => return Err("table.fill"),
        TableCopy { .. } => return Err("table.copy"),
        TableInit { .. } => return Err("table.init"),
        TableGet { .. } => 14,
        RefFunc { .. } => 8,
        RefIsNull => 6,
        I32TruncF32S | I32TruncF32U | I32TruncF64S | I32TruncF64U | I64ExtendI32S
        | I64ExtendI32U | I64TruncF32S | I64TruncF32U | I64TruncF64S | I64TruncF64U
        | F32ConvertI32S | F32ConvertI32U | F32ConvertI64S | F32ConvertI64U | F32DemoteF64
        | F64ConvertI32S | F64ConvertI32U | F64ConvertI64S | F64ConvertI64U => 5,
        F32Neg | F32Abs | F64Neg | F64Abs | MemoryCopy { .. } => 4,
        F32Copysign
        | F64Copysign
        | F64Eq
        | I32RemU
        | I32RemS
        | I64RemU
        | I64RemS
        | I32DivU
        | I32DivS
        | I64DivU
        | I64DivS
        | MemoryFill { .. }
        | I32Load { .. }
        | I64Load { .. }
        | F32Load { .. }
        | F64Load { .. }
        | I32Load8S { .. }
        | I32Load8U { .. }
        | I32Load16S { .. }
        | I32Load16U { .. }
        | I64Load8S { .. }
        | I64Load8U { .. }
        | I64Load16S { .. }
        | I64Load16U { .. }
        | I64Load32S { .. }
        | I64Load32U { .. }
        | I32TruncSatF32S
        | I32TruncSatF32U
        | I32TruncSatF64S
        | I32TruncSatF64U
        | I64TruncSatF32S
        | I64TruncSatF32U
        | I64TruncSatF64S
        | I64TruncSatF64U => 3,
        GlobalGet { .. }
        | I32Popcnt
        | I64Popcnt
        | Select
        | MemorySize { .. }
        | I32Store { .. }
        | I32Store16 { .. }
        | I32Store8 { .. }
        | I64Store { .. }
        | I64Store32 { .. }
        | I64Store16 { .. }
        | I64Store8 { .. }
        | F64Store { .. }
        | F32Store { .. }
        | I32Eqz
        | I32Eq
        | I32Ne
        | I32LtS
        | I32LtU
        | I32GtS
        | I32GtU
        | I32LeS
        | I32LeU
        | I32GeS
        | I32GeU
        | I64Eqz
        | I64Eq
        | I64Ne
        | I64LtS
        | I64LtU
        | I64GtS
        | I64GtU
        | I64LeS
        | I64LeU
        | I64GeS
        | I64GeU
        | F32Eq
        | F32Ne
        | F32Lt
        | F32Gt
        | F32Le
        | F32Ge
        | F64Ne
        | F64Lt
        | F64Gt
        | F64Le
        | F64Ge
        | F32Ceil
        | F64Ceil
        | F32Floor
        | F64Floor
        | F32Sqrt
        | F64Sqrt
        | F32Trunc
        | F64Trunc
        | I32ReinterpretF32
        | I64ReinterpretF64
        | F32ReinterpretI32
        | F64ReinterpretI64
        | I32WrapI64
        | I32Extend8S
        | I32Extend16S
        | I64Extend8S
        | I64Extend16S
        | I64Extend32S
        | F64PromoteF32 => 2,
        _ => 1,
    })
}

/// The instructions of a constant expression, without its final `end`.
fn const_ops<'a>(expr: &ConstExpr<'a>) -> Result<Vec<Operator<'a>>, InvalidModule> {
    let mut reader = expr.get_operators_reader();
    let mut ops = Vec::new();
    while !reader.eof() {
        ops.push(reader.read().map_err(invalid)?);
    }
    if matches!(ops.last(), Some(Operator::End)) {
        ops.pop();
    }
    Ok(ops)
}

fn fmt_ops(ops: &[Operator<'_>]) -> String {
    let listed: Vec<String> = ops.iter().map(|op| format!("{op:?}")).collect();
    match ops.len() {
        1 => format!("`{}`", listed[0]),
        n => format!("{n} instructions (`{}`)", listed.join("`, `")),
    }
}

/// Refuses a constant expression of more than one instruction (the IC's
/// module parser, `dfinity/ic` `rs/wasm_transform`, keeps only one).
fn single_const(expr: &ConstExpr<'_>, place: impl FnOnce() -> String) -> Result<(), InvalidModule> {
    let ops = const_ops(expr)?;
    if ops.len() == 1 {
        return Ok(());
    }
    Err(InvalidModule::ExtendedConstExpr {
        place: place(),
        found: fmt_ops(&ops),
    })
}

/// The size of the code section after its function count: the bytes of
/// the function bodies with their size prefixes, as wasmparser's
/// `CodeSectionStart { size }` gives it and the IC compares it with its
/// limit; 0 without a code section.
fn code_section_size(wasm: &[u8]) -> Result<u64, InvalidModule> {
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::CodeSectionStart { size, .. } = payload.map_err(invalid)? {
            return Ok(u64::from(size));
        }
    }
    Ok(0)
}

/// Validates `wasm` with the IC's features; for a module that is valid
/// only with more features, says which.
fn validate_features(wasm: &[u8]) -> Result<(), InvalidModule> {
    let Err(e) = Validator::new_with_features(IC_WASM_FEATURES).validate_all(wasm) else {
        return Ok(());
    };
    if Validator::new_with_features(WasmFeatures::all())
        .validate_all(wasm)
        .is_err()
    {
        return Err(invalid(e));
    }
    Err(unsupported_feature(wasm, e.message()))
}

/// Why a module that is valid WebAssembly with every proposal on is not
/// valid with [`IC_WASM_FEATURES`]: more than one memory, a 64-bit memory,
/// or one of [`REFUSED_PROPOSALS`].
fn unsupported_feature(wasm: &[u8], detail: &str) -> InvalidModule {
    let mut memories = 0usize;
    let mut memory64 = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ImportSection(reader)) => {
                for import in reader.into_imports().flatten() {
                    if let TypeRef::Memory(m) = import.ty {
                        memories += 1;
                        memory64 |= m.memory64;
                    }
                }
            }
            Ok(Payload::MemorySection(reader)) => {
                for m in reader.into_iter().flatten() {
                    memories += 1;
                    memory64 |= m.memory64;
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if memories > 1 {
        return InvalidModule::TooManyMemories(memories);
    }
    if memory64 {
        return InvalidModule::Memory64;
    }
    let feature = REFUSED_PROPOSALS
        .iter()
        .find(|(proposal, _)| {
            Validator::new_with_features(IC_WASM_FEATURES.union(*proposal))
                .validate_all(wasm)
                .is_ok()
        })
        .map_or("proposals beyond WebAssembly 2.0", |(_, name)| name);
    InvalidModule::UnsupportedFeature {
        feature: feature.to_string(),
        detail: detail.to_string(),
    }
}

/// The parts of a module that [`validate`] checks after the WebAssembly
/// validator accepted it.
#[derive(Default)]
struct Sections<'a> {
    types: Vec<(Vec<ValType>, Vec<ValType>)>,
    imports: Vec<wasmparser::Import<'a>>,
    /// The type index of every function, imported ones first.
    func_types: Vec<u32>,
    imported_funcs: u32,
    defined_funcs: usize,
    memories: usize,
    tables: usize,
    globals: Vec<wasmparser::GlobalType>,
    exports: Vec<wasmparser::Export<'a>>,
    /// Active data segments (index, offset instruction).
    data_offsets: Vec<(u32, Operator<'a>)>,
    bodies: Vec<FunctionBody<'a>>,
    custom_sections: Vec<(&'a str, &'a [u8])>,
}

impl<'a> Sections<'a> {
    /// Reads the module, refusing constant expressions of more than one
    /// instruction as the IC's module parser does.
    fn parse(wasm: &'a [u8]) -> Result<Sections<'a>, InvalidModule> {
        let mut s = Sections::default();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(invalid)? {
                Payload::TypeSection(reader) => {
                    for ty in reader.into_iter_err_on_gc_types() {
                        let ty = ty.map_err(invalid)?;
                        s.types.push((ty.params().to_vec(), ty.results().to_vec()));
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import.map_err(invalid)?;
                        match import.ty {
                            TypeRef::Func(ty) | TypeRef::FuncExact(ty) => {
                                s.func_types.push(ty);
                                s.imported_funcs += 1;
                            }
                            TypeRef::Memory(_) => s.memories += 1,
                            TypeRef::Table(_) => s.tables += 1,
                            TypeRef::Global(_) | TypeRef::Tag(_) => {}
                        }
                        s.imports.push(import);
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        s.func_types.push(ty.map_err(invalid)?);
                        s.defined_funcs += 1;
                    }
                }
                Payload::TableSection(reader) => {
                    for table in reader {
                        if let TableInit::Expr(expr) = table.map_err(invalid)?.init {
                            let index = s.tables;
                            single_const(&expr, || format!("the initial value of table {index}"))?;
                        }
                        s.tables += 1;
                    }
                }
                Payload::MemorySection(reader) => s.memories += reader.count() as usize,
                Payload::GlobalSection(reader) => {
                    for global in reader {
                        let global = global.map_err(invalid)?;
                        let index = s.globals.len();
                        single_const(&global.init_expr, || {
                            format!("the initial value of global {index}")
                        })?;
                        s.globals.push(global.ty);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        s.exports.push(export.map_err(invalid)?);
                    }
                }
                Payload::ElementSection(reader) => {
                    for (index, element) in reader.into_iter().enumerate() {
                        let element = element.map_err(invalid)?;
                        if let ElementKind::Active { offset_expr, .. } = &element.kind {
                            single_const(offset_expr, || {
                                format!("the offset of element segment {index}")
                            })?;
                        }
                        if let ElementItems::Expressions(_, items) = element.items {
                            for item in items {
                                single_const(&item.map_err(invalid)?, || {
                                    format!("an item of element segment {index}")
                                })?;
                            }
                        }
                    }
                }
                Payload::DataSection(reader) => {
                    for (segment, data) in (0u32..).zip(reader) {
                        let DataKind::Active { offset_expr, .. } = data.map_err(invalid)?.kind
                        else {
                            continue;
                        };
                        let mut ops = const_ops(&offset_expr)?;
                        if ops.len() != 1 {
                            return Err(InvalidModule::DataOffsetNotConst {
                                segment,
                                found: fmt_ops(&ops),
                            });
                        }
                        s.data_offsets.push((segment, ops.remove(0)));
                    }
                }
                Payload::CodeSectionEntry(body) => s.bodies.push(body),
                Payload::CustomSection(reader) => {
                    s.custom_sections.push((reader.name(), reader.data()));
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// The type of function `index` (imports first).
    fn func_type(&self, index: u32) -> (Vec<ValType>, Vec<ValType>) {
        self.func_types
            .get(index as usize)
            .and_then(|t| self.types.get(*t as usize))
            .cloned()
            .unwrap_or_default()
    }

    fn check_imports(&self) -> Result<(), InvalidModule> {
        for import in &self.imports {
            let kind = match import.ty {
                TypeRef::Global(_) => Some("global"),
                TypeRef::Tag(_) => Some("tag"),
                _ => None,
            };
            if let Some(kind) = kind {
                return Err(InvalidModule::ImportedGlobalOrTag {
                    kind,
                    module: import.module.to_string(),
                    name: import.name.to_string(),
                });
            }
            if import.module != "ic0" {
                return Err(InvalidModule::ForeignImport {
                    module: import.module.to_string(),
                    name: import.name.to_string(),
                });
            }
            let (TypeRef::Func(type_index) | TypeRef::FuncExact(type_index)) = import.ty else {
                return Err(InvalidModule::ForeignImport {
                    module: import.module.to_string(),
                    name: format!("{} (not a function)", import.name),
                });
            };
            let (params, results) = ic0_signature(import.name)
                .ok_or_else(|| InvalidModule::UnknownIc0Function(import.name.into()))?;
            let found = self
                .types
                .get(type_index as usize)
                .cloned()
                .unwrap_or_default();
            if found.0 != params || found.1 != results {
                return Err(InvalidModule::WrongIc0Signature {
                    name: import.name.to_string(),
                    expected: fmt_func_type(&params, &results),
                    found: fmt_func_type(&found.0, &found.1),
                });
            }
        }
        Ok(())
    }

    fn check_exports(
        &self,
        limits: &ModuleLimits,
        info: &mut ModuleInfo,
    ) -> Result<(), InvalidModule> {
        let mut seen = BTreeSet::new();
        let mut name_bytes = 0usize;
        for export in &self.exports {
            let Some(rest) = export.name.strip_prefix("canister_") else {
                continue;
            };
            let name = export.name.to_string();
            if export.kind != ExternalKind::Func {
                return Err(InvalidModule::ReservedExport(name));
            }
            let ty = self.func_type(export.index);
            if !ty.0.is_empty() || !ty.1.is_empty() {
                return Err(InvalidModule::WrongEntryPointType {
                    found: fmt_func_type(&ty.0, &ty.1),
                    name,
                });
            }
            let method = |prefix: &str| rest.strip_prefix(prefix).map(str::to_string);
            let (method_name, kind) = if let Some(m) = method("update ") {
                (m, MethodKind::Update)
            } else if let Some(m) = method("query ") {
                (m, MethodKind::Query)
            } else if let Some(m) = method("composite_query ") {
                (m, MethodKind::CompositeQuery)
            } else {
                match rest {
                    "init" => info.has_init = true,
                    "pre_upgrade" => info.has_pre_upgrade = true,
                    "post_upgrade" => info.has_post_upgrade = true,
                    "inspect_message" => info.has_inspect_message = true,
                    "global_timer" => info.has_global_timer = true,
                    "heartbeat" => info.has_heartbeat = true,
                    _ => return Err(InvalidModule::ReservedExport(name)),
                }
                continue;
            };
            if !seen.insert(method_name.clone()) {
                return Err(InvalidModule::DuplicateMethod(method_name));
            }
            name_bytes += method_name.len();
            info.methods.insert(method_name, kind);
        }
        if info.methods.len() > limits.max_exported_methods {
            return Err(InvalidModule::TooManyExportedMethods {
                found: info.methods.len(),
                limit: limits.max_exported_methods,
            });
        }
        if name_bytes > limits.max_exported_name_bytes {
            return Err(InvalidModule::ExportedNamesTooLong {
                found: name_bytes,
                limit: limits.max_exported_name_bytes,
            });
        }
        Ok(())
    }

    fn check_globals(
        &self,
        limits: &ModuleLimits,
        info: &mut ModuleInfo,
    ) -> Result<(), InvalidModule> {
        if self.globals.len() > limits.max_globals {
            return Err(InvalidModule::TooManyGlobals {
                found: self.globals.len(),
                limit: limits.max_globals,
            });
        }
        for (index, global) in (0u32..).zip(&self.globals) {
            match global.content_type {
                ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64 | ValType::V128 => {}
                other => {
                    return Err(InvalidModule::UnsupportedGlobalType {
                        index,
                        found: other.to_string(),
                    })
                }
            }
            if global.mutable {
                info.mutable_globals.push(index);
            }
        }
        Ok(())
    }

    /// Every function body: no refused instruction, complexity, then size
    /// (the IC's order).
    fn check_code(&self, limits: &ModuleLimits) -> Result<(), InvalidModule> {
        for (index, body) in (self.imported_funcs..).zip(&self.bodies) {
            let mut reader = body.get_operators_reader().map_err(invalid)?;
            let mut size = 0usize;
            let mut complexity = 0u64;
            while !reader.eof() {
                let op = reader.read().map_err(invalid)?;
                let weight = instruction_complexity(&op).map_err(|instruction| {
                    InvalidModule::UnsupportedInstruction { index, instruction }
                })?;
                complexity = complexity.saturating_add(weight);
                size += 1;
            }
            if complexity > limits.max_function_complexity {
                return Err(InvalidModule::FunctionTooComplex {
                    index,
                    found: complexity,
                    limit: limits.max_function_complexity,
                });
            }
            if size > limits.max_function_size {
                return Err(InvalidModule::FunctionTooLarge {
                    index,
                    found: size,
                    limit: limits.max_function_size,
                });
            }
        }
        Ok(())
    }

    /// `icp:` custom sections, in the IC's order: the name, uniqueness, the
    /// running total size, the count.
    fn check_custom_sections(
        &self,
        limits: &ModuleLimits,
        info: &mut ModuleInfo,
    ) -> Result<(), InvalidModule> {
        let icp_name = |section: &'a str| {
            section
                .strip_prefix("icp:public ")
                .map(|name| (true, name))
                .or_else(|| {
                    section
                        .strip_prefix("icp:private ")
                        .map(|name| (false, name))
                })
        };
        // The totals over every well-named section, for the messages.
        let (count, bytes) = self
            .custom_sections
            .iter()
            .filter_map(|(section, data)| {
                icp_name(section).map(|(_, name)| name.len() + data.len())
            })
            .fold((0usize, 0u64), |(n, b), size| (n + 1, b + size as u64));
        let mut total = 0u64;
        for (section, data) in &self.custom_sections {
            if !section.starts_with("icp:") {
                continue;
            }
            let Some((public, name)) = icp_name(section) else {
                if *section == "icp:public" || *section == "icp:private" {
                    return Err(InvalidModule::CustomSectionWithoutName(section.to_string()));
                }
                return Err(InvalidModule::BadCustomSection(section.to_string()));
            };
            if info.custom_sections.contains_key(name) {
                return Err(InvalidModule::DuplicateCustomSection(name.to_string()));
            }
            total += (name.len() + data.len()) as u64;
            if total > limits.max_custom_sections_bytes {
                return Err(InvalidModule::CustomSectionsTooLarge {
                    found: bytes,
                    limit: limits.max_custom_sections_bytes,
                });
            }
            info.custom_sections
                .insert(name.to_string(), (public, data.to_vec()));
            if info.custom_sections.len() > limits.max_custom_sections {
                return Err(InvalidModule::TooManyCustomSections {
                    found: count,
                    limit: limits.max_custom_sections,
                });
            }
        }
        Ok(())
    }
}

/// Validates `wasm` (uncompressed) as a canister module, as the IC does at
/// install; see the module documentation for the checks and their order.
pub(crate) fn validate(
    wasm: &[u8],
    max_wasm_bytes: u64,
    limits: &ModuleLimits,
) -> Result<ModuleInfo, InvalidModule> {
    if wasm.len() as u64 > max_wasm_bytes {
        return Err(InvalidModule::TooLarge {
            found: wasm.len() as u64,
            limit: max_wasm_bytes,
        });
    }
    if !wasm.starts_with(b"\0asm") {
        let head: Vec<String> = wasm.iter().take(4).map(|b| format!("{b:02x}")).collect();
        let what = if wasm.starts_with(&[0x1f, 0x8b]) {
            "a gzip stream that did not decompress to a module".to_string()
        } else {
            format!("bytes [{}]", head.join(" "))
        };
        return Err(InvalidModule::NotWasm(what));
    }
    let code_bytes = code_section_size(wasm)?;
    if code_bytes > limits.max_code_section_bytes {
        return Err(InvalidModule::CodeSectionTooLarge {
            found: code_bytes,
            limit: limits.max_code_section_bytes,
        });
    }
    validate_features(wasm)?;
    let sections = Sections::parse(wasm)?;
    if sections.memories > 1 {
        return Err(InvalidModule::TooManyMemories(sections.memories));
    }
    if sections.tables > 1 {
        return Err(InvalidModule::TooManyTables(sections.tables));
    }
    let mut info = ModuleInfo {
        has_memory: sections.memories == 1,
        has_table: sections.tables == 1,
        ..ModuleInfo::default()
    };
    sections.check_imports()?;
    sections.check_exports(limits, &mut info)?;
    for (segment, offset) in &sections.data_offsets {
        if !matches!(offset, Operator::I32Const { .. }) {
            return Err(InvalidModule::DataOffsetNotConst {
                segment: *segment,
                found: fmt_ops(std::slice::from_ref(offset)),
            });
        }
    }
    sections.check_globals(limits, &mut info)?;
    if sections.defined_funcs > limits.max_functions {
        return Err(InvalidModule::TooManyFunctions {
            found: sections.defined_funcs,
            limit: limits.max_functions,
        });
    }
    sections.check_code(limits)?;
    sections.check_custom_sections(limits, &mut info)?;
    Ok(info)
}

/// Rewrites the export section so that the memory, the table and every
/// mutable global are exported under the replica's names. Every other
/// section is copied byte for byte.
pub(crate) fn instrument(wasm: &[u8], info: &ModuleInfo) -> Result<Vec<u8>, InvalidModule> {
    let mut out = wasm_encoder::Module::new();
    let mut exports_written = false;
    let build_exports = |existing: Option<wasmparser::ExportSectionReader<'_>>| {
        let mut section = wasm_encoder::ExportSection::new();
        if let Some(reader) = existing {
            for e in reader {
                let e = e.map_err(|e| InvalidModule::Invalid(e.to_string()))?;
                let kind = match e.kind {
                    ExternalKind::Func => wasm_encoder::ExportKind::Func,
                    ExternalKind::Table => wasm_encoder::ExportKind::Table,
                    ExternalKind::Memory => wasm_encoder::ExportKind::Memory,
                    ExternalKind::Global => wasm_encoder::ExportKind::Global,
                    ExternalKind::Tag => wasm_encoder::ExportKind::Tag,
                    other => {
                        return Err(InvalidModule::Invalid(format!(
                            "unsupported export kind {other:?}"
                        )))
                    }
                };
                section.export(e.name, kind, e.index);
            }
        }
        if info.has_memory {
            section.export(MEMORY_EXPORT, wasm_encoder::ExportKind::Memory, 0);
        }
        if info.has_table {
            section.export(TABLE_EXPORT, wasm_encoder::ExportKind::Table, 0);
        }
        for g in &info.mutable_globals {
            section.export(
                &format!("{GLOBAL_EXPORT_PREFIX}{g}"),
                wasm_encoder::ExportKind::Global,
                *g,
            );
        }
        Ok(section)
    };
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| InvalidModule::Invalid(e.to_string()))?;
        if let Payload::ExportSection(reader) = payload {
            out.section(&build_exports(Some(reader))?);
            exports_written = true;
            continue;
        }
        let Some((id, range)) = payload.as_section() else {
            continue;
        };
        // Sections that come after the export section in a module.
        if !exports_written && matches!(id, 8..=12) {
            out.section(&build_exports(None)?);
            exports_written = true;
        }
        out.section(&wasm_encoder::RawSection {
            id,
            data: &wasm[range],
        });
    }
    if !exports_written {
        out.section(&build_exports(None)?);
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn check(wasm: &[u8]) -> Result<ModuleInfo, InvalidModule> {
        validate(wasm, 100 << 20, &ModuleLimits::default())
    }

    fn check_with(wasm: &[u8], limits: ModuleLimits) -> Result<ModuleInfo, InvalidModule> {
        validate(wasm, 100 << 20, &limits)
    }

    /// A module whose code section is `bytes` long after its count:
    /// `functions` bodies of `nop`s (at least 16 KiB and at most 1.9 MiB
    /// each, so every size prefix is three bytes).
    fn code_section_of(bytes: u64, functions: u32) -> Vec<u8> {
        use wasm_encoder::{CodeSection, FunctionSection, Module, TypeSection};
        // Per function: size (3 bytes) + no locals (1) + end (1); the
        // function count before them is not part of the size.
        let nops = bytes - 5 * u64::from(functions);
        let each = nops / u64::from(functions);
        let mut types = TypeSection::new();
        types.ty().function([], []);
        let mut funcs = FunctionSection::new();
        let mut code = CodeSection::new();
        for i in 0..functions {
            let n = if i == 0 {
                each + nops % u64::from(functions)
            } else {
                each
            };
            let mut body = vec![0u8];
            body.resize(1 + n as usize, 0x01);
            body.push(0x0b);
            funcs.function(0);
            code.raw(&body);
        }
        let mut module = Module::new();
        module.section(&types).section(&funcs).section(&code);
        let wasm = module.finish();
        assert_eq!(code_section_size(&wasm).unwrap(), bytes);
        wasm
    }

    fn functions(n: usize) -> Vec<u8> {
        wat(&format!("(module {})", "(func)".repeat(n)))
    }

    fn body(instructions: &str) -> Vec<u8> {
        wat(&format!(
            "(module (memory 1) (table 1 funcref) (func {instructions}))"
        ))
    }

    #[test]
    fn refuses_non_wasm_and_gzip() {
        let limits = ModuleLimits::default();
        assert!(matches!(
            validate(b"hello", 100, &limits),
            Err(InvalidModule::NotWasm(_))
        ));
        let err = validate(&[0x1f, 0x8b, 8, 0], 100, &limits).unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
        assert!(gunzip(&[0x1f, 0x8b, 8, 0], 100).is_err());
        assert!(matches!(
            validate(&[0u8; 200], 100, &limits),
            Err(InvalidModule::TooLarge { found: 200, .. })
        ));
    }

    #[test]
    fn empty_module_is_valid_and_instrumented() {
        let wasm = b"\0asm\x01\0\0\0".to_vec();
        let info = check(&wasm).unwrap();
        assert!(info.methods.is_empty());
        let out = instrument(&wasm, &info).unwrap();
        assert!(Validator::new().validate_all(&out).is_ok());
    }

    #[test]
    fn code_section_of_10_mib_is_accepted_one_byte_more_is_not() {
        check(&code_section_of(10 << 20, 16)).unwrap();
        let err = check(&code_section_of((10 << 20) + 1, 16)).unwrap_err();
        assert_eq!(
            err,
            InvalidModule::CodeSectionTooLarge {
                found: (10 << 20) + 1,
                limit: 10 << 20
            }
        );
        assert_eq!(
            err.to_string(),
            "the code section is 10485761 bytes; the IC allows at most 10485760 bytes \
             (10 MiB) (`max_code_section_bytes`)"
        );
    }

    #[test]
    fn function_and_global_counts() {
        check(&functions(50_000)).unwrap();
        assert_eq!(
            check(&functions(50_001)).unwrap_err(),
            InvalidModule::TooManyFunctions {
                found: 50_001,
                limit: 50_000
            }
        );
        // Imported functions do not count.
        let limits = ModuleLimits {
            max_functions: 1,
            ..ModuleLimits::default()
        };
        let imports = wat(
            r#"(module (import "ic0" "msg_reply" (func)) (import "ic0" "accept_message" (func)) (func))"#,
        );
        check_with(&imports, limits).unwrap();

        let globals = |n: usize| {
            wat(&format!(
                "(module {})",
                "(global i64 (i64.const 7))".repeat(n)
            ))
        };
        check(&globals(1_000)).unwrap();
        assert_eq!(
            check(&globals(1_001)).unwrap_err(),
            InvalidModule::TooManyGlobals {
                found: 1_001,
                limit: 1_000
            }
        );
        let v128 =
            wat("(module (global (mut v128) (v128.const i64x2 1 2)) (global f32 (f32.const 1)))");
        assert_eq!(check(&v128).unwrap().mutable_globals, vec![0]);
        let funcref = wat("(module (global funcref (ref.null func)))");
        assert_eq!(
            check(&funcref).unwrap_err(),
            InvalidModule::UnsupportedGlobalType {
                index: 0,
                found: "funcref".into()
            }
        );
    }

    #[test]
    fn exported_methods_count_and_name_bytes() {
        let methods = |names: &[String]| {
            let exports: String = names
                .iter()
                .map(|n| format!(r#"(export "canister_query {n}" (func 0))"#))
                .collect();
            wat(&format!("(module (func) {exports})"))
        };
        let numbered = |n: usize| (0..n).map(|i| format!("m{i}")).collect::<Vec<_>>();
        check(&methods(&numbered(1_000))).unwrap();
        assert_eq!(
            check(&methods(&numbered(1_001))).unwrap_err(),
            InvalidModule::TooManyExportedMethods {
                found: 1_001,
                limit: 1_000
            }
        );
        // Only `<name>` counts, not the `canister_query ` prefix.
        let long = |total: usize| vec!["a".repeat(total / 2), "b".repeat(total - total / 2)];
        check(&methods(&long(20_000))).unwrap();
        assert_eq!(
            check(&methods(&long(20_001))).unwrap_err(),
            InvalidModule::ExportedNamesTooLong {
                found: 20_001,
                limit: 20_000
            }
        );
        // Other exports do not count.
        let limits = ModuleLimits {
            max_exported_methods: 0,
            ..ModuleLimits::default()
        };
        let other =
            wat(r#"(module (func) (export "canister_init" (func 0)) (export "helper" (func 0)))"#);
        check_with(&other, limits).unwrap();
    }

    /// A module with the given custom sections.
    fn with_custom(sections: &[(&str, usize)]) -> Vec<u8> {
        let mut module = wasm_encoder::Module::new();
        for (name, size) in sections {
            module.section(&wasm_encoder::CustomSection {
                name: (*name).into(),
                data: vec![7u8; *size].into(),
            });
        }
        module.finish()
    }

    #[test]
    fn custom_sections() {
        let info = check(&with_custom(&[
            ("icp:public candid:service", 3),
            ("icp:private  spaced", 1),
            ("icp:public ", 0),
            ("other", 10),
        ]))
        .unwrap();
        assert_eq!(info.custom_sections["candid:service"], (true, vec![7; 3]));
        assert_eq!(info.custom_sections[" spaced"], (false, vec![7]));
        assert!(info.custom_sections.contains_key(""));

        let names: Vec<String> = (0..17).map(|i| format!("icp:public s{i}")).collect();
        let sections = |n: usize| {
            names[..n]
                .iter()
                .map(|s| (s.as_str(), 1))
                .collect::<Vec<_>>()
        };
        check(&with_custom(&sections(16))).unwrap();
        assert_eq!(
            check(&with_custom(&sections(17))).unwrap_err(),
            InvalidModule::TooManyCustomSections {
                found: 17,
                limit: 16
            }
        );
        // Contents plus the name after `icp:public `: 1 MiB exactly is fine.
        check(&with_custom(&[("icp:public ab", (1 << 20) - 2)])).unwrap();
        assert_eq!(
            check(&with_custom(&[("icp:public ab", (1 << 20) - 1)])).unwrap_err(),
            InvalidModule::CustomSectionsTooLarge {
                found: (1 << 20) + 1,
                limit: 1 << 20
            }
        );
        assert_eq!(
            check(&with_custom(&[("icp:public x", 1), ("icp:private x", 1)])).unwrap_err(),
            InvalidModule::DuplicateCustomSection("x".into())
        );
        for bare in ["icp:public", "icp:private"] {
            assert_eq!(
                check(&with_custom(&[(bare, 1)])).unwrap_err(),
                InvalidModule::CustomSectionWithoutName(bare.into())
            );
        }
        assert_eq!(
            check(&with_custom(&[("icp:protected x", 1)])).unwrap_err(),
            InvalidModule::BadCustomSection("icp:protected x".into())
        );
    }

    #[test]
    fn complexity_weights_follow_the_ic() {
        let first =
            |ops: &[Operator<'_>]| ops.iter().map(instruction_complexity).collect::<Vec<_>>();
        use Operator::*;
        let mem = wasmparser::MemArg {
            align: 0,
            max_align: 0,
            offset: 0,
            memory: 0,
        };
        assert_eq!(
            first(&[
                MemoryGrow { mem: 0 },
                TableGet { table: 0 },
                RefIsNull,
                F64ConvertI64U,
                F32Abs,
                MemoryCopy {
                    dst_mem: 0,
                    src_mem: 0
                },
                I64DivS,
                I64Load32U { memarg: mem },
                I64TruncSatF64U,
                GlobalGet { global_index: 0 },
                I64Store8 { memarg: mem },
                F64PromoteF32,
                F64Eq,
                F32Eq,
                I32Add,
                V128Load { memarg: mem },
                End,
            ]),
            vec![
                Ok(50),
                Ok(14),
                Ok(6),
                Ok(5),
                Ok(4),
                Ok(4),
                Ok(3),
                Ok(3),
                Ok(3),
                Ok(2),
                Ok(2),
                Ok(2),
                Ok(3),
                Ok(2),
                Ok(1),
                Ok(1),
                Ok(1),
            ]
        );
        assert_eq!(
            first(&[
                TableGrow { table: 0 },
                TableSet { table: 0 },
                TableFill { table: 0 },
                TableCopy {
                    dst_table: 0,
                    src_table: 0
                },
                TableInit {
                    elem_index: 0,
                    table: 0
                },
            ]),
            vec![
                Err("table.grow"),
                Err("table.set"),
                Err("table.fill"),
                Err("table.copy"),
                Err("table.init")
            ]
        );
    }

    #[test]
    fn function_complexity_and_size() {
        // 999,999 nops and `end`: 1,000,000 instructions of weight 1.
        check(&body(&"nop ".repeat(999_999))).unwrap();
        assert_eq!(
            check(&body(&"nop ".repeat(1_000_000))).unwrap_err(),
            InvalidModule::FunctionTooComplex {
                index: 0,
                found: 1_000_001,
                limit: 1_000_000
            }
        );
        // 20,000 `block end` pairs: 40,001 instructions, complexity 1,020,001.
        assert_eq!(
            check(&body(&"block end ".repeat(20_000))).unwrap_err(),
            InvalidModule::FunctionTooComplex {
                index: 0,
                found: 1_020_001,
                limit: 1_000_000
            }
        );
        // Every instruction weighs at least 1, so with the IC's limits a
        // function is too complex before it is too large; a lower size
        // limit shows the size check.
        let limits = ModuleLimits {
            max_function_size: 10,
            ..ModuleLimits::default()
        };
        check_with(&body(&"nop ".repeat(9)), limits.clone()).unwrap();
        assert_eq!(
            check_with(&body(&"nop ".repeat(10)), limits).unwrap_err(),
            InvalidModule::FunctionTooLarge {
                index: 0,
                found: 11,
                limit: 10
            }
        );
        // The index counts imported functions first.
        let imported = wat(
            r#"(module (import "ic0" "msg_reply" (func)) (table 1 funcref) (func)
                (func ref.null func i32.const 1 table.grow 0 drop))"#,
        );
        assert_eq!(
            check(&imported).unwrap_err(),
            InvalidModule::UnsupportedInstruction {
                index: 2,
                instruction: "table.grow"
            }
        );
    }

    /// Modules valid with some proposal the IC does not enable, and what
    /// the refusal names.
    fn refused_feature_modules() -> Vec<(&'static str, Vec<u8>, InvalidModule)> {
        let feature = |name: &str| name.to_string();
        let unsupported = |f: &str| InvalidModule::UnsupportedFeature {
            feature: feature(f),
            detail: String::new(),
        };
        vec![
            (
                "return_call",
                wat("(module (func return_call 0))"),
                unsupported("tail calls (`return_call`, `return_call_indirect`)"),
            ),
            (
                "return_call_indirect",
                wat("(module (type (func)) (table 1 funcref) (func i32.const 0 return_call_indirect (type 0)))"),
                unsupported("tail calls (`return_call`, `return_call_indirect`)"),
            ),
            (
                "call_ref",
                wat("(module (type $t (func)) (elem declare func 0) (func (type $t) ref.func 0 call_ref $t))"),
                unsupported("typed function references"),
            ),
            (
                "struct.new",
                wat("(module (type $s (struct (field i32))) (func i32.const 1 struct.new $s drop))"),
                unsupported("garbage collection (GC)"),
            ),
            (
                "externref",
                wat("(module (table 1 externref))"),
                unsupported("reference types other than `funcref`"),
            ),
            (
                "relaxed simd",
                wat("(module (func (param v128 v128) (result v128) local.get 0 local.get 1 i8x16.relaxed_swizzle))"),
                unsupported("relaxed SIMD"),
            ),
            (
                "threads",
                wat("(module (memory 1 1 shared) (func i32.const 0 i32.atomic.load drop))"),
                unsupported("threads (shared memory, atomics)"),
            ),
            (
                "exceptions",
                wat("(module (tag) (func throw 0))"),
                unsupported("exception handling"),
            ),
            (
                "imported tag",
                wat(r#"(module (import "ic0" "t" (tag)))"#),
                unsupported("exception handling"),
            ),
            (
                "multi-memory",
                wat("(module (memory 1) (memory 1))"),
                InvalidModule::TooManyMemories(2),
            ),
            ("memory64", wat("(module (memory i64 1))"), InvalidModule::Memory64),
            (
                "table64",
                wat("(module (table i64 1 funcref))"),
                unsupported("64-bit tables (memory64)"),
            ),
        ]
    }

    #[test]
    fn proposals_the_ic_does_not_enable_are_refused() {
        for (what, wasm, expected) in refused_feature_modules() {
            Validator::new_with_features(WasmFeatures::all())
                .validate_all(&wasm)
                .unwrap_or_else(|e| panic!("{what} is not valid with every feature: {e}"));
            let err = check(&wasm).unwrap_err();
            match (&err, &expected) {
                (
                    InvalidModule::UnsupportedFeature { feature, detail },
                    InvalidModule::UnsupportedFeature { feature: f, .. },
                ) => {
                    assert_eq!(feature, f, "{what}: {err}");
                    assert!(!detail.is_empty(), "{what}: {err}");
                }
                _ => assert_eq!(err, expected, "{what}"),
            }
        }
    }

    /// The replica's engine refuses what the validator refuses, and
    /// compiles SIMD: `configure_engine` is what `shared_engine` uses.
    #[test]
    fn the_engine_enables_the_same_features() {
        let mut config = wasmtime::Config::new();
        configure_engine(&mut config);
        let engine = wasmtime::Engine::new(&config).unwrap();
        for (what, wasm, _) in refused_feature_modules() {
            assert!(
                wasmtime::Module::validate(&engine, &wasm).is_err(),
                "the engine accepts {what}"
            );
        }
        let simd = wat("(module (func (param v128 v128) (result v128) \
             local.get 0 local.get 1 i32x4.add))");
        check(&simd).unwrap();
        wasmtime::Module::validate(&engine, &simd).unwrap();
    }

    #[test]
    fn constant_expressions_are_one_instruction() {
        let data = wat("(module (memory 1) (data (offset i32.const 1 i32.const 2 i32.add) \"x\"))");
        let err = check(&data).unwrap_err();
        assert!(
            matches!(err, InvalidModule::DataOffsetNotConst { segment: 0, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("3 instructions"), "{err}");
        // `global.get` needs an imported global, which is refused first (as
        // in the IC, which checks imports before data segments).
        let get =
            wat(r#"(module (import "ic0" "g" (global i32)) (memory 1) (data (global.get 0) "x"))"#);
        assert_eq!(
            check(&get).unwrap_err(),
            InvalidModule::ImportedGlobalOrTag {
                kind: "global",
                module: "ic0".into(),
                name: "g".into()
            }
        );
        let global = wat("(module (global i32 (i32.add (i32.const 1) (i32.const 2))))");
        assert!(matches!(
            check(&global).unwrap_err(),
            InvalidModule::ExtendedConstExpr { .. }
        ));
        let elem = wat("(module (table 2 funcref) (func) (elem (offset i32.const 0 i32.const 1 i32.add) func 0))");
        assert!(matches!(
            check(&elem).unwrap_err(),
            InvalidModule::ExtendedConstExpr { .. }
        ));
        check(&wat(
            "(module (memory 1) (data (i32.const 8) \"x\") (data \"passive\"))",
        ))
        .unwrap();
    }
}
