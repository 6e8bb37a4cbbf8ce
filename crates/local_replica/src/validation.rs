//! Module validation as the IC does it at install, and the small rewrite
//! the replica needs to run a module.
//!
//! Validation refuses: modules that are not valid WebAssembly, imports from
//! anything but `ic0` (or of `ic0` functions that do not exist or have the
//! wrong signature), more than one memory or table, 64-bit memories,
//! exports named `canister_*` that are not entry points, entry points with
//! a signature other than `() -> ()`, a method exported under two kinds,
//! and `icp:` custom sections that are not `icp:public`/`icp:private`.
//!
//! The rewrite ([`instrument`]) adds exports so that the host can reach the
//! module's state: the memory (`__lr_memory`), the function table
//! (`__lr_table`, for callbacks given to `ic0.call_new`), and every mutable
//! global (`__lr_global_<index>`, so a trapped message's globals can be
//! restored). The IC instruments modules the same way.

use std::collections::{BTreeMap, BTreeSet};

use wasmparser::{ExternalKind, Parser, Payload, TypeRef, ValType, Validator};

use crate::system_api::ic0_signature;

/// Export name of the module's memory after instrumentation.
pub(crate) const MEMORY_EXPORT: &str = "__lr_memory";
/// Export name of the module's table after instrumentation.
pub(crate) const TABLE_EXPORT: &str = "__lr_table";
/// Prefix of mutable globals' export names after instrumentation.
pub(crate) const GLOBAL_EXPORT_PREFIX: &str = "__lr_global_";

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
        "the module imports `{module}.{name}`; a canister may only import \
         functions of the System API (`ic0`)"
    )]
    ForeignImport { module: String, name: String },
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
    #[error("custom section `{0}`: expected a name `icp:public <name>` or `icp:private <name>`")]
    BadCustomSection(String),
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

/// Validates `wasm` as a canister module.
pub(crate) fn validate(wasm: &[u8], max_bytes: u64) -> Result<ModuleInfo, InvalidModule> {
    if wasm.len() as u64 > max_bytes {
        return Err(InvalidModule::TooLarge {
            found: wasm.len() as u64,
            limit: max_bytes,
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
    let mut validator = Validator::new();
    validator
        .validate_all(wasm)
        .map_err(|e| InvalidModule::Invalid(e.to_string()))?;

    let mut info = ModuleInfo::default();
    let mut types: Vec<(Vec<ValType>, Vec<ValType>)> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut memories = 0usize;
    let mut tables = 0usize;
    let mut global_index = 0u32;
    let mut exports: Vec<(String, u32)> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| InvalidModule::Invalid(e.to_string()))?;
        match payload {
            Payload::TypeSection(reader) => {
                for rec in reader.into_iter_err_on_gc_types() {
                    let ty = rec.map_err(|e| InvalidModule::Invalid(e.to_string()))?;
                    types.push((ty.params().to_vec(), ty.results().to_vec()));
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| InvalidModule::Invalid(e.to_string()))?;
                    if import.module != "ic0" {
                        return Err(InvalidModule::ForeignImport {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                        });
                    }
                    let TypeRef::Func(type_index) = import.ty else {
                        return Err(InvalidModule::ForeignImport {
                            module: import.module.to_string(),
                            name: format!("{} (not a function)", import.name),
                        });
                    };
                    let (params, results) = ic0_signature(import.name)
                        .ok_or_else(|| InvalidModule::UnknownIc0Function(import.name.into()))?;
                    let found = types.get(type_index as usize).cloned().unwrap_or_default();
                    if found.0 != params || found.1 != results {
                        return Err(InvalidModule::WrongIc0Signature {
                            name: import.name.to_string(),
                            expected: fmt_func_type(&params, &results),
                            found: fmt_func_type(&found.0, &found.1),
                        });
                    }
                    func_types.push(type_index);
                }
            }
            Payload::FunctionSection(reader) => {
                for f in reader {
                    func_types.push(f.map_err(|e| InvalidModule::Invalid(e.to_string()))?);
                }
            }
            Payload::TableSection(reader) => tables += reader.count() as usize,
            Payload::MemorySection(reader) => {
                for m in reader {
                    let m = m.map_err(|e| InvalidModule::Invalid(e.to_string()))?;
                    if m.memory64 {
                        return Err(InvalidModule::Memory64);
                    }
                    memories += 1;
                }
            }
            Payload::GlobalSection(reader) => {
                for g in reader {
                    let g = g.map_err(|e| InvalidModule::Invalid(e.to_string()))?;
                    if g.ty.mutable {
                        info.mutable_globals.push(global_index);
                    }
                    global_index += 1;
                }
            }
            Payload::ExportSection(reader) => {
                for e in reader {
                    let e = e.map_err(|e| InvalidModule::Invalid(e.to_string()))?;
                    if e.kind == ExternalKind::Func {
                        exports.push((e.name.to_string(), e.index));
                    } else if e.name.starts_with("canister_") {
                        return Err(InvalidModule::ReservedExport(e.name.to_string()));
                    }
                }
            }
            Payload::CustomSection(reader) => {
                let name = reader.name();
                if let Some(rest) = name.strip_prefix("icp:") {
                    let (public, section) = if let Some(n) = rest.strip_prefix("public ") {
                        (true, n)
                    } else if let Some(n) = rest.strip_prefix("private ") {
                        (false, n)
                    } else {
                        return Err(InvalidModule::BadCustomSection(name.to_string()));
                    };
                    info.custom_sections
                        .insert(section.to_string(), (public, reader.data().to_vec()));
                }
            }
            _ => {}
        }
    }
    if memories > 1 {
        return Err(InvalidModule::TooManyMemories(memories));
    }
    if tables > 1 {
        return Err(InvalidModule::TooManyTables(tables));
    }
    info.has_memory = memories == 1;
    info.has_table = tables == 1;

    let mut seen = BTreeSet::new();
    for (name, func) in exports {
        let Some(rest) = name.strip_prefix("canister_") else {
            continue;
        };
        let ty = func_types
            .get(func as usize)
            .and_then(|t| types.get(*t as usize))
            .cloned()
            .unwrap_or_default();
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
        info.methods.insert(method_name, kind);
    }
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

    fn module(text: &[u8]) -> Vec<u8> {
        text.to_vec()
    }

    #[test]
    fn refuses_non_wasm_and_gzip() {
        assert!(matches!(
            validate(b"hello", 100),
            Err(InvalidModule::NotWasm(_))
        ));
        let err = validate(&[0x1f, 0x8b, 8, 0], 100).unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
        assert!(gunzip(&[0x1f, 0x8b, 8, 0], 100).is_err());
        assert!(matches!(
            validate(&[0u8; 200], 100),
            Err(InvalidModule::TooLarge { found: 200, .. })
        ));
    }

    #[test]
    fn empty_module_is_valid_and_instrumented() {
        let wasm = module(b"\0asm\x01\0\0\0");
        let info = validate(&wasm, 1 << 20).unwrap();
        assert!(info.methods.is_empty());
        let out = instrument(&wasm, &info).unwrap();
        assert!(Validator::new().validate_all(&out).is_ok());
    }
}
