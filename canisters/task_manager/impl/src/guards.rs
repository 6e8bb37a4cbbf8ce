//! Guards that run before a method decodes its argument.
//!
//! `inspect_message` caps the argument of each method for ingress; calls
//! from other canisters do not pass through it, so every endpoint also
//! names the cap that fits it here. An argument over its cap is rejected
//! (`CanisterReject`, the guard's message) before it is decoded.

use crate::lifecycle::inspect_message::{FRAMING_BYTES, GENERATE_ARG_BYTES};
use crate::model::spawn::MAX_PIECE;
use model_format::MAX_CHUNK_SIZE;

fn at_most(max: u64) -> Result<(), String> {
    let size = arg_size();
    if size > max {
        return Err(format!(
            "the argument is {size} bytes; this method takes at most {max}"
        ));
    }
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn arg_size() -> u64 {
    ic0::msg_arg_data_size() as u64
}

#[cfg(not(target_arch = "wasm32"))]
fn arg_size() -> u64 {
    0
}

/// Methods that take a name, an id, a principal, a small record or
/// nothing.
pub fn small_arg() -> Result<(), String> {
    at_most(FRAMING_BYTES)
}

/// `approve_users`: up to [`crate::model::users::MAX_APPROVALS_PER_CALL`]
/// principals.
pub fn approvals_arg() -> Result<(), String> {
    at_most(APPROVALS_ARG_BYTES)
}

/// The largest `approve_users` argument: each principal at most 29 bytes
/// and its length.
pub const APPROVALS_ARG_BYTES: u64 =
    crate::model::users::MAX_APPROVALS_PER_CALL as u64 * 30 + FRAMING_BYTES;

/// `generate` and `generate_and_wait`.
pub fn generate_arg() -> Result<(), String> {
    at_most(GENERATE_ARG_BYTES)
}

/// `upload_chunk`.
pub fn chunk_arg() -> Result<(), String> {
    at_most(MAX_CHUNK_SIZE + FRAMING_BYTES)
}

/// `upload_worker_wasm`.
pub fn wasm_piece_arg() -> Result<(), String> {
    at_most(MAX_PIECE as u64 + FRAMING_BYTES)
}

/// A driver's report: its text grows with the job (bounded by the
/// context and [`crate::model::jobs::MAX_TEXT_BYTES_PER_TOKEN`]).
pub fn report_arg() -> Result<(), String> {
    at_most(1024 * 1024)
}
