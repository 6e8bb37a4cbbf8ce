//! `model_chunk` (query, anyone): one stored chunk of a model's file.

use crate::ChunkRef;

pub type Args = ChunkRef;
pub type Response = crate::results::BytesResult;
