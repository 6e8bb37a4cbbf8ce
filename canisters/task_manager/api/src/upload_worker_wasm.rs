//! `upload_worker_wasm` (update, controllers): the worker module that
//! `spawn_workers` installs, in pieces of at most 1 MiB (a module is larger
//! than one message). `offset` 0 starts a new module; each next piece
//! continues at the current size. The module may be gzip-compressed (it
//! starts `1f 8b 08`), as the IC accepts it; the first piece must start a
//! module, plain or compressed.

use candid::{CandidType, Deserialize};
use serde_bytes::ByteBuf;

use crate::{AdminError, WasmInfo};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadWorkerWasmArgs {
    /// Where this piece starts: 0, or the size uploaded so far.
    pub offset: u64,
    pub bytes: ByteBuf,
}

pub type Args = UploadWorkerWasmArgs;
worker_api::named_result!(UploadWorkerWasmResult, WasmInfo, AdminError);
pub type Response = UploadWorkerWasmResult;
