//! `model_chunk` (query, anyone): one stored chunk of a model's file.

use serde_bytes::ByteBuf;

use crate::{ChunkRef, Error};

pub type Args = ChunkRef;
pub type Response = Result<ByteBuf, Error>;
