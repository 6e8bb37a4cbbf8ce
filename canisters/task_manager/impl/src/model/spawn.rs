//! The worker module that `spawn_workers` installs: kept in stable memory
//! in the pieces it was uploaded in (each at most 1 MiB, the size of one
//! chunk of the management canister's chunk store). The module may be
//! gzip-compressed, which the IC accepts (the 9.9 MB worker compresses to
//! 3.2 MB: fewer pieces to upload and to install).

use sha2::{Digest, Sha256};
use task_manager_api::{Error, WasmInfo};

use crate::state::State;

/// Largest piece of the module per upload (the chunk store's limit).
pub const MAX_PIECE: usize = 1024 * 1024;
/// Largest module (the IC's limit on an installed module).
pub const MAX_MODULE: u64 = 100 * 1024 * 1024;
/// Most workers one `spawn_workers` call creates.
pub const MAX_SPAWN: u32 = 16;

pub fn pieces(state: &State) -> Vec<Vec<u8>> {
    state.worker_wasm.iter().map(|e| e.value()).collect()
}

fn digest(pieces: &[Vec<u8>]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in pieces {
        h.update(p);
    }
    h.finalize().into()
}

pub fn module_hash(state: &State) -> [u8; 32] {
    digest(&pieces(state))
}

pub fn info(state: &State) -> WasmInfo {
    let pieces = pieces(state);
    WasmInfo {
        size: pieces.iter().map(|p| p.len() as u64).sum(),
        sha256: hex::encode(digest(&pieces)),
    }
}

/// Whether `bytes` start a wasm module, plain or gzip-compressed.
pub fn is_module(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm") || bytes.starts_with(&[0x1f, 0x8b, 0x08])
}

/// Adds a piece at `offset` (0 starts over).
pub fn upload(state: &mut State, offset: u64, bytes: Vec<u8>) -> Result<WasmInfo, Error> {
    let invalid = |reason: String| Err(Error::InvalidRequest { reason });
    if bytes.is_empty() || bytes.len() > MAX_PIECE {
        return invalid(format!(
            "a piece of the worker module has 1 to {MAX_PIECE} bytes, found {}",
            bytes.len()
        ));
    }
    let size: u64 = state
        .worker_wasm
        .iter()
        .map(|e| e.value().len() as u64)
        .sum();
    if offset == 0 {
        if !is_module(&bytes) {
            return invalid(format!(
                "a worker module starts with the wasm magic (00 61 73 6d) or, gzip-compressed, \
                 with 1f 8b 08; found {}",
                hex::encode(&bytes[..bytes.len().min(4)])
            ));
        }
        state.worker_wasm.clear_new();
    } else if offset != size {
        return invalid(format!(
            "the worker module has {size} bytes so far; a piece at offset {offset} does not continue it"
        ));
    }
    if offset + bytes.len() as u64 > MAX_MODULE {
        return invalid(format!("the worker module would exceed {MAX_MODULE} bytes"));
    }
    let index = state.worker_wasm.len() as u32;
    state.worker_wasm.insert(index, bytes);
    Ok(info(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_append_in_order_and_offset_zero_starts_over() {
        let mut state = State::in_memory();
        assert_eq!(info(&state).size, 0);
        let mut first = b"\0asm".to_vec();
        first.extend([1; 6]);
        upload(&mut state, 0, first.clone()).unwrap();
        assert!(matches!(
            upload(&mut state, 5, vec![2; 3]),
            Err(Error::InvalidRequest { .. })
        ));
        let i = upload(&mut state, 10, vec![2; 3]).unwrap();
        assert_eq!(i.size, 13);
        let mut whole = first;
        whole.extend([2; 3]);
        assert_eq!(i.sha256, hex::encode(Sha256::digest(&whole)));
        assert!(matches!(
            upload(&mut state, 13, vec![0; MAX_PIECE + 1]),
            Err(Error::InvalidRequest { .. })
        ));
        let gz = vec![0x1f, 0x8b, 0x08, 0];
        assert_eq!(upload(&mut state, 0, gz.clone()).unwrap().size, 4);
        assert_eq!(pieces(&state), vec![gz.clone()]);
        // Anything else is not a module, and the stored one stays.
        assert!(matches!(
            upload(&mut state, 0, vec![7; 4]),
            Err(Error::InvalidRequest { .. })
        ));
        assert_eq!(pieces(&state), vec![gz]);
    }
}
