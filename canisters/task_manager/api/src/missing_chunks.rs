//! `missing_chunks` (query, controllers): the chunks of a model still to
//! upload, in upload order, a page at a time.

use candid::{CandidType, Deserialize};

use crate::{AdminError, ChunkRef};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MissingChunksArgs {
    pub model: String,
    /// How many missing chunks to skip.
    pub start: u64,
    /// At most [`crate::PageArgs::MAX_LENGTH`].
    pub length: u32,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MissingChunksPage {
    pub chunks: Vec<ChunkRef>,
    /// Chunks missing in all.
    pub total: u64,
}

pub type Args = MissingChunksArgs;
worker_api::named_result!(MissingChunksResult, MissingChunksPage, AdminError);
pub type Response = MissingChunksResult;
