//! Instructions as the IC counts them: the weight of each wasm operator,
//! the overhead of each System API call, stable memory and compilation
//! charges.
//!
//! The IC instruments every module (`dfinity/ic`
//! `rs/embedders/src/wasm_utils/instrumentation.rs` at
//! 002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe): each basic block decrements an
//! instruction counter by the summed cost of its operators
//! (`instruction_to_cost`), every function body starts with a cost of 1, and
//! bulk memory operations are charged their static cost plus one
//! instruction per byte. Here the same weights fill wasmtime's per-operator
//! fuel table ([`ic_operator_cost`]), so fuel consumed equals the IC's count:
//!
//! - the cost of a function entry (1) is wasmtime's own: it consumes one
//!   unit whenever a wasm function is entered, from wasm or from the host
//!   (calls to imported functions have no body, on the IC as here);
//! - `memory.copy`, `memory.fill` and `memory.init` cost 100 plus one per
//!   byte (wasmtime's variable cost, 1 per byte, is the IC's);
//! - wasmtime's table holds at most 255 per operator: `memory.grow`,
//!   `data.drop` and `elem.drop` (300 on the IC) count 255.
//!
//! System API overheads ([`system_api_charge`]) are the IC's
//! (`rs/embedders/src/wasmtime_embedder/system_api_complexity.rs` at
//! 023cfe84513a5b9db9a1a966336fa01cd9d06ae0, `overhead::new`, and the calls
//! added since, all 500, as on master), plus one instruction per byte copied
//! and 50 per byte sent out of the canister (`BYTE_TRANSMISSION_COST_FACTOR`
//! in `rs/embedders/src/wasmtime_embedder/linker.rs`). Stable memory reads
//! and writes cost 20 plus one per byte, and each 4 KiB page a message
//! dirties for the first time costs 1,000 more
//! (`rs/embedders/src/wasm_utils/system_api_replacements.rs` at
//! 0c3226cfc2aee4dab2ae34297ef637f6bc223418, `DEFAULT_DIRTY_PAGE_OVERHEAD`
//! in `rs/config/src/subnet_config.rs`). Installing a module costs 6,000
//! instructions per instruction of the instrumented module
//! ([`compilation_cost`], `DEFAULT_COST_TO_COMPILE_WASM_INSTRUCTION` in
//! `rs/config/src/embedders.rs`).

use wasmparser::{Operator, Parser, Payload};
use wasmtime::OperatorCost;

/// Instructions charged for the first write of a message to a 4 KiB page
/// of stable memory.
pub const DIRTY_PAGE_OVERHEAD: u64 = 1_000;
/// Instructions per byte a System API call sends out of the canister
/// (replies, rejects, call arguments).
pub const BYTE_TRANSMISSION_COST_FACTOR: u64 = 50;
/// Instructions charged per instruction of a module compiled at install.
pub const COST_TO_COMPILE_WASM_INSTRUCTION: u64 = 6_000;
/// A module already compiled (cached) counts 1/100 of its compilation cost
/// against the install's instruction limit; its cycles are charged in full
/// (`DESERIALIZATION_SPEED_UP_FACTOR` in the IC's execution environment).
pub const DESERIALIZATION_SPEED_UP_FACTOR: u64 = 100;
/// Fixed overhead of a stable memory read or write.
pub const STABLE_ACCESS_OVERHEAD: u64 = 20;
/// Fixed overhead of growing stable memory (`overhead_native::STABLE_GROW`).
pub const STABLE_GROW_OVERHEAD: u64 = 100;
/// Bytes of a canister's log (the first of the log's costs: a debug print
/// or trap message is stored there).
pub const CANISTER_LOG_BYTES: u64 = 4 * 1024;

/// The IC's weight of each operator, as wasmtime fuel
/// (`instruction_to_cost` for a 32-bit memory).
#[allow(non_snake_case)]
pub fn ic_operator_cost() -> OperatorCost {
    // Everything not listed below costs 1, as on the IC.
    let mut c = OperatorCost::new();
    // wasmtime charges nothing for these; the IC charges 1.
    c.Nop = 1;
    c.Drop = 1;
    c.Unreachable = 1;
    c.Return = 1;
    // Block markers are free on both.
    c.Block = 0;
    c.Loop = 0;
    c.Else = 0;
    c.End = 0;

    // Integer division and remainder.
    for op in [
        &mut c.I32DivS,
        &mut c.I32DivU,
        &mut c.I32RemS,
        &mut c.I32RemU,
        &mut c.I64DivS,
        &mut c.I64DivU,
        &mut c.I64RemS,
        &mut c.I64RemU,
    ] {
        *op = 10;
    }
    // Floating point.
    for op in [
        &mut c.F32Add,
        &mut c.F32Sub,
        &mut c.F32Mul,
        &mut c.F32Ceil,
        &mut c.F32Floor,
        &mut c.F32Trunc,
        &mut c.F32Nearest,
        &mut c.F64Add,
        &mut c.F64Sub,
        &mut c.F64Mul,
        &mut c.F64Ceil,
        &mut c.F64Floor,
        &mut c.F64Trunc,
        &mut c.F64Nearest,
        &mut c.F32Copysign,
    ] {
        *op = 2;
    }
    c.F32Div = 3;
    c.F64Div = 5;
    c.F32Min = 18;
    c.F32Max = 18;
    c.F64Min = 18;
    c.F64Max = 18;
    c.F64Copysign = 3;
    c.F32Sqrt = 5;
    c.F64Sqrt = 8;
    for op in [
        &mut c.F32Eq,
        &mut c.F32Ne,
        &mut c.F32Lt,
        &mut c.F32Gt,
        &mut c.F32Le,
        &mut c.F32Ge,
        &mut c.F64Eq,
        &mut c.F64Ne,
        &mut c.F64Lt,
        &mut c.F64Gt,
        &mut c.F64Le,
        &mut c.F64Ge,
    ] {
        *op = 3;
    }
    for op in [
        &mut c.F32ConvertI32S,
        &mut c.F64ConvertI64S,
        &mut c.F32ConvertI64S,
        &mut c.F64ConvertI32S,
    ] {
        *op = 3;
    }
    for op in [
        &mut c.F64ConvertI32U,
        &mut c.F32ConvertI64U,
        &mut c.F32ConvertI32U,
        &mut c.F64ConvertI64U,
    ] {
        *op = 16;
    }
    for op in [
        &mut c.I64TruncSatF32S,
        &mut c.I64TruncSatF32U,
        &mut c.I64TruncSatF64S,
        &mut c.I64TruncSatF64U,
        &mut c.I32TruncSatF32S,
        &mut c.I32TruncSatF32U,
        &mut c.I32TruncSatF64S,
        &mut c.I32TruncSatF64U,
        &mut c.I32TruncF32S,
        &mut c.I32TruncF32U,
        &mut c.I32TruncF64S,
        &mut c.I32TruncF64U,
        &mut c.I64TruncF32S,
        &mut c.I64TruncF32U,
        &mut c.I64TruncF64S,
        &mut c.I64TruncF64U,
    ] {
        *op = 20;
    }
    // Globals, tables, memory.
    c.GlobalGet = 2;
    c.GlobalSet = 2;
    c.TableGet = 5;
    c.TableSet = 5;
    // 300 on the IC; the most wasmtime's table holds.
    c.MemoryGrow = u8::MAX;
    c.TableGrow = u8::MAX;
    c.DataDrop = u8::MAX;
    c.ElemDrop = u8::MAX;
    c.MemorySize = 20;
    c.TableSize = 100;
    for op in [
        &mut c.MemoryFill,
        &mut c.MemoryCopy,
        &mut c.MemoryInit,
        &mut c.TableFill,
        &mut c.TableCopy,
        &mut c.TableInit,
    ] {
        *op = 100;
    }
    // Calls (wasmtime charges the callee's entry when it is entered).
    c.Call = 5;
    c.CallIndirect = 10;
    c.ReturnCall = 3;
    c.ReturnCallIndirect = 60;
    // Branches.
    c.If = 2;
    c.Br = 2;
    c.BrIf = 2;
    c.BrTable = 2;
    // References.
    c.RefIsNull = 5;
    c.RefFunc = 130;

    // SIMD (loads, stores, constants, lanes and most lane-wise integer
    // operations cost 1).
    c.I8x16Shuffle = 3;
    for op in [
        &mut c.I8x16LtU,
        &mut c.I8x16GtU,
        &mut c.I16x8LtU,
        &mut c.I16x8GtU,
        &mut c.I32x4LtU,
        &mut c.I32x4GtU,
        &mut c.I8x16ShrU,
        &mut c.I16x8ExtAddPairwiseI8x16U,
        &mut c.I16x8Shl,
        &mut c.I16x8ShrS,
        &mut c.I16x8ShrU,
        &mut c.I16x8ExtMulHighI8x16S,
        &mut c.I16x8ExtMulHighI8x16U,
        &mut c.I32x4Shl,
        &mut c.I32x4ShrS,
        &mut c.I32x4ShrU,
        &mut c.I32x4Mul,
        &mut c.I32x4ExtMulLowI16x8S,
        &mut c.I32x4ExtMulHighI16x8S,
        &mut c.I32x4ExtMulLowI16x8U,
        &mut c.I32x4ExtMulHighI16x8U,
        &mut c.I64x2Shl,
        &mut c.I64x2ShrU,
        &mut c.I32x4TruncSatF32x4S,
        &mut c.I32x4TruncSatF64x2SZero,
    ] {
        *op = 2;
    }
    for op in [
        &mut c.I8x16Popcnt,
        &mut c.I8x16Shl,
        &mut c.I8x16ShrS,
        &mut c.I32x4ExtAddPairwiseI16x8U,
        &mut c.I64x2ShrS,
        &mut c.I32x4TruncSatF64x2UZero,
    ] {
        *op = 3;
    }
    c.I64x2Mul = 4;
    c.I32x4TruncSatF32x4U = 4;
    c.F32x4ConvertI32x4U = 4;
    for op in [
        &mut c.F32x4Ceil,
        &mut c.F32x4Floor,
        &mut c.F32x4Trunc,
        &mut c.F32x4Nearest,
        &mut c.F32x4Abs,
        &mut c.F32x4Neg,
        &mut c.F32x4Add,
        &mut c.F32x4Sub,
        &mut c.F32x4Mul,
        &mut c.F64x2Ceil,
        &mut c.F64x2Floor,
        &mut c.F64x2Trunc,
        &mut c.F64x2Nearest,
        &mut c.F64x2Abs,
        &mut c.F64x2Neg,
        &mut c.F64x2Add,
        &mut c.F64x2Sub,
        &mut c.F64x2Mul,
    ] {
        *op = 2;
    }
    c.F32x4Sqrt = 5;
    c.F32x4Div = 10;
    c.F32x4Min = 4;
    c.F32x4Max = 4;
    c.F64x2Sqrt = 14;
    c.F64x2Div = 12;
    c.F64x2Min = 4;
    c.F64x2Max = 5;
    c
}

/// What a System API call costs on the IC, in instructions, for a call
/// that copies or sends `bytes` bytes (the canister log's share of
/// `debug_print` and `trap` included). `None` for names that are not
/// System API functions.
pub fn system_api_charge(name: &str, bytes: u64) -> Option<u64> {
    let per_byte = |overhead: u64| overhead.saturating_add(bytes);
    let sent = |overhead: u64| {
        overhead.saturating_add(bytes.saturating_mul(BYTE_TRANSMISSION_COST_FACTOR))
    };
    // A message stored in the canister log: twice its bytes (stored, and
    // the oldest record dropped) plus the transmission of those bytes.
    let logged = bytes.min(CANISTER_LOG_BYTES);
    let log_charge = 2 * logged + BYTE_TRANSMISSION_COST_FACTOR * logged;
    Some(match name {
        "msg_reply_data_append" | "msg_reject" | "call_data_append" => sent(500),
        "debug_print" => 100 + log_charge,
        "trap" => per_byte(500) + log_charge,
        "call_new" => per_byte(1_500),
        "call_perform" => 5_000,
        "performance_counter" => 200,
        "is_controller" => per_byte(1_000),
        "cost_http_request_v2" => 10_000,
        // Stable memory: implemented in wasm on the IC (not charged as a
        // host call); the dirty-page charge is added by the write.
        "stable_read" | "stable64_read" | "stable_write" | "stable64_write" => {
            per_byte(STABLE_ACCESS_OVERHEAD)
        }
        "stable_grow" | "stable64_grow" => STABLE_GROW_OVERHEAD,
        "stable_size" | "stable64_size" => 0,
        "msg_arg_data_copy"
        | "msg_caller_copy"
        | "msg_caller_info_data_copy"
        | "msg_caller_info_signer_copy"
        | "msg_method_name_copy"
        | "msg_reject_msg_copy"
        | "canister_self_copy"
        | "subnet_self_copy"
        | "root_key_copy"
        | "certified_data_set"
        | "data_certificate_copy"
        | "env_var_name_copy"
        | "env_var_value_copy"
        | "cost_sign_with_ecdsa"
        | "cost_sign_with_schnorr"
        | "cost_vetkd_derive_key" => per_byte(500),
        "msg_arg_data_size"
        | "msg_caller_size"
        | "msg_caller_info_data_size"
        | "msg_caller_info_signer_size"
        | "msg_reject_code"
        | "msg_reject_msg_size"
        | "msg_deadline"
        | "msg_reply"
        | "msg_cycles_available128"
        | "msg_cycles_refunded128"
        | "msg_cycles_accept128"
        | "cycles_burn128"
        | "msg_cycles_available"
        | "msg_cycles_refunded"
        | "msg_cycles_accept"
        | "canister_cycle_balance"
        | "canister_cycle_balance128"
        | "canister_liquid_cycle_balance128"
        | "call_cycles_add"
        | "call_cycles_add128"
        | "call_on_cleanup"
        | "call_with_best_effort_response"
        | "canister_self_size"
        | "canister_status"
        | "canister_version"
        | "subnet_self_size"
        | "subnet_self_node_count"
        | "msg_method_name_size"
        | "accept_message"
        | "root_key_size"
        | "data_certificate_present"
        | "data_certificate_size"
        | "time"
        | "global_timer_set"
        | "in_replicated_execution"
        | "cost_call"
        | "cost_create_canister"
        | "cost_http_request"
        | "env_var_count"
        | "env_var_name_size"
        | "env_var_name_exists"
        | "env_var_value_size" => 500,
        _ => return None,
    })
}

/// Instructions the IC adds around one function body when it instruments
/// it (`injections` and `inject_metering` in `instrumentation.rs`): a
/// counter decrement (4 instructions) at the start of every basic block
/// that costs something, 6 more (the out-of-instructions check) at every
/// function and loop entry, 3 before each bulk memory operation and 3
/// around each `memory.grow`.
fn injected_instructions(ops: &[Operator<'_>], weights: &OperatorCost) -> u64 {
    const DECREMENT: u64 = 4;
    const CHECK: u64 = 6;
    const DYNAMIC: u64 = 3;
    const GROW: u64 = 3;
    // The function's entry block is re-entrant: always decremented and
    // checked. Every other block is decremented only if it costs something.
    let mut injected = DECREMENT + CHECK;
    let mut block_costs = false;
    let mut block_reentrant = true;
    for op in ops {
        block_costs |= weights.cost(op) > 0;
        let ends_block = match op {
            Operator::Loop { .. } => {
                injected += DECREMENT + CHECK;
                true
            }
            Operator::If { .. }
            | Operator::Else
            | Operator::Br { .. }
            | Operator::BrIf { .. }
            | Operator::BrTable { .. }
            | Operator::End
            | Operator::Return
            | Operator::Unreachable
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. } => true,
            Operator::MemoryFill { .. }
            | Operator::MemoryCopy { .. }
            | Operator::MemoryInit { .. }
            | Operator::TableFill { .. }
            | Operator::TableCopy { .. }
            | Operator::TableInit { .. } => {
                injected += DYNAMIC;
                false
            }
            Operator::MemoryGrow { .. } => {
                injected += GROW;
                false
            }
            _ => false,
        };
        if ends_block {
            if !block_reentrant && block_costs {
                injected += DECREMENT;
            }
            block_costs = false;
            block_reentrant = matches!(op, Operator::Loop { .. });
        }
    }
    injected
}

/// Functions the IC adds to every module: the counter decrement used by
/// bulk memory operations (20 instructions) and the clean-page counter of
/// Wasm-native stable memory (49).
const HELPER_FUNCTION_INSTRUCTIONS: u64 = 20 + 49;
/// Globals the IC adds: the instruction counter and the two stable memory
/// page counters; each global counts 2 (its initializer and `end`).
const INJECTED_GLOBALS: u64 = 3;

/// Instructions in the Wasm-native body that replaces an imported stable
/// memory function (counted from `system_api_replacements.rs`).
fn stable_replacement_instructions(name: &str) -> u64 {
    match name {
        "stable_size" => 11,
        "stable64_size" => 1,
        "stable_grow" => 25,
        "stable64_grow" => 22,
        "stable_read" | "stable64_read" => 95,
        "stable_write" | "stable64_write" => 100,
        _ => 0,
    }
}

/// The instructions of a module as the IC instruments it, and what its
/// compilation costs: [`COST_TO_COMPILE_WASM_INSTRUCTION`] per instruction.
/// The module must be valid.
pub fn compilation_cost(wasm: &[u8]) -> u64 {
    instrumented_instruction_count(wasm).saturating_mul(COST_TO_COMPILE_WASM_INSTRUCTION)
}

/// Instructions in the instrumented module: every operator of every body,
/// what instrumentation injects, the functions it adds and 2 per global.
pub fn instrumented_instruction_count(wasm: &[u8]) -> u64 {
    let weights = ic_operator_cost();
    let mut count = HELPER_FUNCTION_INSTRUCTIONS + 2 * INJECTED_GLOBALS;
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(payload) = payload else {
            break;
        };
        match payload {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports().flatten() {
                    if import.module == "ic0" {
                        count += stable_replacement_instructions(import.name);
                    }
                }
            }
            Payload::GlobalSection(reader) => count += 2 * u64::from(reader.count()),
            Payload::CodeSectionEntry(body) => {
                let Ok(reader) = body.get_operators_reader() else {
                    continue;
                };
                let ops: Vec<Operator<'_>> = reader.into_iter().flatten().collect();
                count += ops.len() as u64 + injected_instructions(&ops, &weights);
            }
            _ => {}
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(op: Operator<'_>) -> i64 {
        ic_operator_cost().cost(&op)
    }

    #[test]
    fn weights_follow_the_ic_table() {
        assert_eq!(cost(Operator::I32Add), 1);
        assert_eq!(cost(Operator::I64DivU), 10);
        assert_eq!(cost(Operator::F64Sqrt), 8);
        assert_eq!(cost(Operator::F32Min), 18);
        assert_eq!(cost(Operator::GlobalGet { global_index: 0 }), 2);
        assert_eq!(
            cost(Operator::Block {
                blockty: wasmparser::BlockType::Empty
            }),
            0
        );
        assert_eq!(cost(Operator::Nop), 1);
        assert_eq!(cost(Operator::Drop), 1);
        assert_eq!(
            cost(Operator::If {
                blockty: wasmparser::BlockType::Empty
            }),
            2
        );
        assert_eq!(
            cost(Operator::MemoryCopy {
                dst_mem: 0,
                src_mem: 0
            }),
            100
        );
        assert_eq!(cost(Operator::RefFunc { function_index: 0 }), 130);
        assert_eq!(cost(Operator::I32TruncSatF32S), 20);
        assert_eq!(cost(Operator::F32x4Div), 10);
        assert_eq!(cost(Operator::I64x2Mul), 4);
        assert_eq!(cost(Operator::I32x4DotI16x8S), 1);
        assert_eq!(cost(Operator::Call { function_index: 0 }), 5);
        assert_eq!(
            cost(Operator::CallIndirect {
                type_index: 0,
                table_index: 0
            }),
            10
        );
    }

    #[test]
    fn system_api_charges_follow_the_ic() {
        assert_eq!(system_api_charge("msg_reply", 0), Some(500));
        assert_eq!(system_api_charge("msg_reply_data_append", 10), Some(1_000));
        assert_eq!(system_api_charge("call_data_append", 2), Some(600));
        assert_eq!(system_api_charge("msg_arg_data_copy", 100), Some(600));
        assert_eq!(system_api_charge("call_new", 10), Some(1_510));
        assert_eq!(system_api_charge("call_perform", 0), Some(5_000));
        assert_eq!(system_api_charge("stable64_write", 4096), Some(4_116));
        assert_eq!(system_api_charge("debug_print", 10), Some(100 + 20 + 500));
        assert_eq!(system_api_charge("no_such_call", 0), None);
    }

    #[test]
    fn compilation_counts_instrumented_instructions() {
        // (module (func (result i32) i32.const 1))
        let wasm = [
            0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 10, 6, 1, 4, 0, 65, 1,
            11,
        ];
        // 2 operators (i32.const, end) + 10 injected at entry + helpers
        // + injected globals.
        let expected = 2 + 10 + HELPER_FUNCTION_INSTRUCTIONS + 2 * INJECTED_GLOBALS;
        assert_eq!(instrumented_instruction_count(&wasm), expected);
        assert_eq!(compilation_cost(&wasm), expected * 6_000);
    }
}
