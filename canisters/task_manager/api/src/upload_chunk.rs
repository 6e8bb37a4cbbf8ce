//! `upload_chunk` (update, controllers): stores one chunk after checking its
//! size and SHA-256 against the manifest. Idempotent: a chunk already
//! stored is accepted again without change, so an interrupted upload
//! resumes from `missing_chunks`.

use candid::{CandidType, Deserialize};
use serde_bytes::ByteBuf;

use crate::{AdminError, ChunkRef};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadChunkArgs {
    pub chunk: ChunkRef,
    pub bytes: ByteBuf,
}

/// Progress after the upload.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadProgress {
    pub chunks_present: u64,
    pub chunks_total: u64,
}

pub type Args = UploadChunkArgs;
worker_api::named_result!(UploadChunkResult, UploadProgress, AdminError);
pub type Response = UploadChunkResult;
