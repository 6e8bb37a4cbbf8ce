//! Measures what instruction counting costs: the same compute-heavy wasm
//! loop run (1) as a canister update in the local replica, where wasmtime
//! fuel counts every instruction, and (2) in plain wasmtime without fuel.
//! Prints instructions, wall time and instructions per second; asserts
//! nothing.
//!
//! `cargo run --release -p local_replica --example overhead [iterations]`

use std::time::Instant;

use candid::Principal;
use local_replica::LocalReplica;
use wasm_encoder::{
    BlockType, CodeSection, ExportKind, ExportSection, Function, FunctionSection, ImportSection,
    Instruction, Module, TypeSection, ValType,
};

/// Heap used by the memory-bound loop (64 MiB).
const HEAP_PAGES: u64 = 1024;

/// The loop: `x = x * 6364136223846793005 + (i | 1); x ^= x >> 29` for
/// `iterations` steps, the same as the counter test canister's `burn`.
/// With `memory`, each step also loads and stores a 64-bit word at a
/// scattered address of a 64 MiB heap (`heap[a] += x`).
fn loop_body(f: &mut Function, iterations: i64, x: u32, i: u32, memory: bool) {
    let mut ins = vec![
        Instruction::I64Const(1),
        Instruction::LocalSet(x),
        Instruction::Block(BlockType::Empty),
        Instruction::Loop(BlockType::Empty),
        Instruction::LocalGet(i),
        Instruction::I64Const(iterations),
        Instruction::I64GeU,
        Instruction::BrIf(1),
        Instruction::LocalGet(x),
        Instruction::I64Const(6364136223846793005),
        Instruction::I64Mul,
        Instruction::LocalGet(i),
        Instruction::I64Const(1),
        Instruction::I64Or,
        Instruction::I64Add,
        Instruction::LocalTee(x),
        Instruction::LocalGet(x),
        Instruction::I64Const(29),
        Instruction::I64ShrU,
        Instruction::I64Xor,
        Instruction::LocalSet(x),
    ];
    if memory {
        let mem = wasm_encoder::MemArg {
            offset: 0,
            align: 3,
            memory_index: 0,
        };
        // address = (x as i32) & (64 MiB - 8)
        let address = [
            Instruction::LocalGet(x),
            Instruction::I32WrapI64,
            Instruction::I32Const(((HEAP_PAGES << 16) - 8) as i32),
            Instruction::I32And,
        ];
        ins.extend(address.iter().cloned());
        ins.extend(address.iter().cloned());
        ins.extend([
            Instruction::I64Load(mem),
            Instruction::LocalGet(x),
            Instruction::I64Add,
            Instruction::I64Store(mem),
        ]);
    }
    ins.extend([
        Instruction::LocalGet(i),
        Instruction::I64Const(1),
        Instruction::I64Add,
        Instruction::LocalSet(i),
        Instruction::Br(0),
        Instruction::End,
        Instruction::End,
    ]);
    for ins in &ins {
        f.instruction(ins);
    }
}

/// A module exporting `burn`: the loop, then `ic0.msg_reply` if `canister`.
fn module(iterations: i64, canister: bool, memory: bool) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], []);
    types.ty().function([], [ValType::I64]);
    let mut imports = ImportSection::new();
    if canister {
        imports.import("ic0", "msg_reply", wasm_encoder::EntityType::Function(0));
    }
    let mut functions = FunctionSection::new();
    functions.function(if canister { 0 } else { 1 });
    let mut exports = ExportSection::new();
    let index = if canister { 1 } else { 0 };
    exports.export(
        if canister {
            "canister_update burn"
        } else {
            "burn"
        },
        ExportKind::Func,
        index,
    );
    let mut f = Function::new([(2, ValType::I64)]);
    loop_body(&mut f, iterations, 0, 1, memory);
    if canister {
        f.instruction(&Instruction::Call(0));
    } else {
        f.instruction(&Instruction::LocalGet(0));
    }
    f.instruction(&Instruction::End);
    let mut code = CodeSection::new();
    code.function(&f);
    let mut m = Module::new();
    m.section(&types);
    if canister {
        m.section(&imports);
    }
    m.section(&functions);
    if memory {
        let mut memories = wasm_encoder::MemorySection::new();
        memories.memory(wasm_encoder::MemoryType {
            minimum: HEAP_PAGES,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        m.section(&memories);
    }
    m.section(&exports);
    m.section(&code);
    m.finish()
}

fn measure(iterations: i64, memory: bool) -> Result<(), Box<dyn std::error::Error>> {
    let label = if memory {
        "memory-bound"
    } else {
        "register-only"
    };
    // (1) In the replica, with fuel.
    let mut ic = LocalReplica::new()?;
    let user = Principal::from_slice(&[1; 29]);
    let id = ic.create_canister(user)?;
    ic.install_canister(user, id, module(iterations, true, memory), Vec::new())?;
    ic.update_call(id, user, "burn", Vec::new())?;
    let r = ic
        .last_execution(id, "burn")
        .ok_or("no execution recorded")?
        .clone();
    let fuel_secs = r.wall.as_secs_f64();
    println!(
        "{label}, replica (fuel):   {iterations} iterations, {} instructions, {:.3} s, {:.0} M instructions/s",
        r.instructions,
        fuel_secs,
        r.instructions as f64 / fuel_secs / 1e6
    );

    // (2) Plain wasmtime, no fuel.
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, module(iterations, false, memory))?;
    let mut store = wasmtime::Store::new(&engine, ());
    let instance = wasmtime::Instance::new(&mut store, &module, &[])?;
    let burn = instance.get_typed_func::<(), i64>(&mut store, "burn")?;
    let start = Instant::now();
    let x = burn.call(&mut store, ())?;
    let plain_secs = start.elapsed().as_secs_f64();
    println!(
        "{label}, wasmtime (plain): {iterations} iterations, {plain_secs:.3} s, {:.0} M instructions/s at the same count (result {x:#x})",
        r.instructions as f64 / plain_secs / 1e6
    );
    println!(
        "{label}: the replica with fuel takes {:.2}x the plain wall time",
        fuel_secs / plain_secs
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: i64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000_000);
    measure(iterations, false)?;
    measure(iterations, true)?;
    Ok(())
}
