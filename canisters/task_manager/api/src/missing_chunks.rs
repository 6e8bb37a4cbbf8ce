//! `missing_chunks` (query, controllers): the chunks of a model still to
//! upload, in upload order.

use crate::{ChunkRef, Error};

/// The model's name.
pub type Args = String;
pub type Response = Result<Vec<ChunkRef>, Error>;
