//! Folds constant address additions into the offsets of wasm loads: a
//! post-link pass for the worker canister, whose price is instructions.
//!
//! On the IC every executed wasm instruction is paid for. LLVM computes the
//! address of `*p.add(8)` as `local.get p; i32.const 8; i32.add` and loads
//! from there with offset 0, even though every wasm load carries a constant
//! offset immediate that would do the same addition for free. Binaryen's
//! `wasm-opt --low-memory-unused` folds such additions into plain loads and
//! stores, but not into the SIMD loads the int8 kernel lives on
//! (`v128.load8x8_s` and the other extending, splatting and zeroing loads).
//! In the kernel that is two instructions of every eight:
//!
//! ```text
//! local.get $w  i32.const 8  i32.add  v128.load8x8_s            (before)
//! local.get $w  v128.load8x8_s offset=8                         (after)
//! ```
//!
//! [`fold_load_offsets`] rewrites every load (scalar and SIMD) whose address
//! is `x + C`, computed by an `i32.const C` and an `i32.add` (or `i32.sub`
//! of `-C`) right before it, into a load of `x` at offset `offset + C`.
//!
//! **When this is sound.** `i32.add` wraps around 2³² while the offset
//! addition does not (an address past 2³² traps). The two differ only when
//! `x + C` wraps, and then the original load reads address `x + C - 2³²`,
//! which is below `C`. Like binaryen's `--low-memory-unused` (whose bound
//! this pass shares), it assumes that code never means to reach the low
//! [`LOW_MEMORY_BOUND`] bytes of memory through such a wrapped sum. Rust
//! code cannot: its pointer arithmetic stays within one allocation, which
//! never wraps the address space. A module for which the assumption failed
//! would trap rather than read the wrong memory.
//!
//! Modules with a 64-bit memory are returned unchanged.

use std::convert::Infallible;

use wasm_encoder::reencode::{Error as ReencodeError, Reencode};
use wasm_encoder::{CodeSection, Module, RawSection};
use wasmparser::{MemArg, Operator, Parser, Payload};

/// Largest `offset + C` folded, as binaryen's `PassOptions::LowMemoryBound`:
/// the low bytes of memory the pass assumes are never reached through a
/// wrapped address sum.
pub const LOW_MEMORY_BOUND: u64 = 1024;

/// Errors of [`fold_load_offsets`].
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    #[error("not a valid wasm module: {0}")]
    Parse(#[from] wasmparser::BinaryReaderError),
    #[error("could not re-encode the code section: {0}")]
    Encode(String),
}

/// A module after [`fold_load_offsets`].
#[derive(Debug, Clone)]
pub struct Folded {
    /// The rewritten module.
    pub module: Vec<u8>,
    /// Loads whose address addition was folded into their offset.
    pub folds: usize,
    /// Instructions removed (two per fold).
    pub removed: usize,
}

/// Folds `i32.const C; i32.add` (and `i32.const -C; i32.sub`) right before a
/// load into the load's offset, when `offset + C` stays below
/// [`LOW_MEMORY_BOUND`]. Every section but the code section is copied as is.
pub fn fold_load_offsets(wasm: &[u8]) -> Result<Folded, FoldError> {
    if has_memory64(wasm)? {
        return Ok(Folded {
            module: wasm.to_vec(),
            folds: 0,
            removed: 0,
        });
    }
    let mut module = Module::new();
    let mut folder = Folder { folds: 0 };
    let mut code = None;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match payload {
            Payload::Version { .. } | Payload::End(_) => {}
            Payload::CodeSectionStart { .. } => code = Some(CodeSection::new()),
            Payload::CodeSectionEntry(body) => {
                let section = code.get_or_insert_with(CodeSection::new);
                folder
                    .parse_function_body(section, body)
                    .map_err(|e| FoldError::Encode(e.to_string()))?;
            }
            other => {
                // The code section's entries are all read before the next
                // section starts: write it in its place.
                if let Some(section) = code.take() {
                    module.section(&section);
                }
                if let Some((id, range)) = other.as_section() {
                    module.section(&RawSection {
                        id,
                        data: &wasm[range],
                    });
                }
            }
        }
    }
    if let Some(section) = code.take() {
        module.section(&section);
    }
    Ok(Folded {
        module: module.finish(),
        folds: folder.folds,
        removed: 2 * folder.folds,
    })
}

fn has_memory64(wasm: &[u8]) -> Result<bool, FoldError> {
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::MemorySection(reader) => {
                for memory in reader {
                    if memory?.memory64 {
                        return Ok(true);
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if let wasmparser::TypeRef::Memory(m) = import?.ty {
                        if m.memory64 {
                            return Ok(true);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

struct Folder {
    folds: usize,
}

impl Reencode for Folder {
    type Error = Infallible;

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), ReencodeError<Infallible>> {
        let mut function = self.new_function_with_parsed_locals(&func)?;
        let mut reader = func.get_operators_reader()?;
        let mut ops: Vec<Operator<'_>> = Vec::new();
        while !reader.eof() {
            let op = reader.read()?;
            let op = match (load_memarg(&op), ops.as_slice()) {
                (Some(memarg), [.., Operator::I32Const { value }, add_or_sub]) => {
                    let c = match add_or_sub {
                        Operator::I32Add => i64::from(*value),
                        Operator::I32Sub => -i64::from(*value),
                        _ => -1,
                    };
                    let total = memarg.offset.saturating_add(c.max(0) as u64);
                    if c >= 0 && total < LOW_MEMORY_BOUND {
                        ops.truncate(ops.len() - 2);
                        self.folds += 1;
                        with_offset(op, total)
                    } else {
                        op
                    }
                }
                _ => op,
            };
            ops.push(op);
        }
        for op in ops {
            function.instruction(&self.instruction(op)?);
        }
        code.function(&function);
        Ok(())
    }
}

/// Applies `$m!(Variant)` to every load whose only operand is its address.
macro_rules! loads {
    ($m:ident) => {
        $m!(
            I32Load I64Load F32Load F64Load
            I32Load8S I32Load8U I32Load16S I32Load16U
            I64Load8S I64Load8U I64Load16S I64Load16U I64Load32S I64Load32U
            V128Load V128Load8x8S V128Load8x8U V128Load16x4S V128Load16x4U
            V128Load32x2S V128Load32x2U V128Load8Splat V128Load16Splat
            V128Load32Splat V128Load64Splat V128Load32Zero V128Load64Zero
        )
    };
}

/// The memory argument of a load whose only operand is its address.
fn load_memarg(op: &Operator<'_>) -> Option<MemArg> {
    macro_rules! arms {
        ($($v:ident)*) => {
            match op {
                $(Operator::$v { memarg } => Some(*memarg),)*
                _ => None,
            }
        };
    }
    loads!(arms)
}

/// `op` (a load, see [`load_memarg`]) with its offset set to `offset`.
fn with_offset(op: Operator<'_>, offset: u64) -> Operator<'_> {
    macro_rules! arms {
        ($($v:ident)*) => {
            match op {
                $(Operator::$v { memarg } => Operator::$v {
                    memarg: MemArg { offset, ..memarg },
                },)*
                other => other,
            }
        };
    }
    loads!(arms)
}
