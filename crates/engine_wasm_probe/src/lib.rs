//! The engine compiled for `wasm32-unknown-unknown`, as a canister would
//! compile it, behind a tiny byte-level interface that a host (the tests,
//! under wasmtime) can drive.
//!
//! [`run`] is plain Rust and is what both sides execute: natively in the test
//! process, and inside the wasm module through the exported `probe_run`. Same
//! request ⇒ same tokens is then a statement about the engine on two targets,
//! not about two code paths.
//!
//! Request framing (all integers little-endian `u32`): a count `n`, then `n`
//! blobs, each a length and its bytes: `manifest.json`, `tokenizer.json`,
//! the [`Request`] as JSON, then every stage file in order. The response is
//! a [`Response`] as JSON.
//!
//! Exports of the wasm module: `memory`, `probe_alloc(len) -> ptr` and
//! `probe_run(ptr, len) -> (ptr << 32) | len`. It imports nothing.

use std::sync::Arc;

use engine::{generate, ChatMessage, Manifest, Pipeline, SamplingParams, Tokenizer};
use serde::{Deserialize, Serialize};

/// What to generate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Plain text to continue; ignored when `messages` is not empty.
    #[serde(default)]
    pub prompt: String,
    /// Chat messages, formatted with the model's template.
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    pub params: SamplingParams,
}

/// What came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Ok {
        prompt_ids: Vec<u32>,
        tokens: Vec<u32>,
        text: String,
        finish_reason: String,
    },
    Err(String),
}

/// Frames `blobs` as the module expects them.
pub fn encode_frames(blobs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(blobs.len() as u32).to_le_bytes());
    for blob in blobs {
        out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        out.extend_from_slice(blob);
    }
    out
}

/// Splits a framed buffer; `None` when it is malformed.
pub fn decode_frames(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let take_u32 = |bytes: &mut &[u8]| -> Option<usize> {
        let (head, rest) = bytes.split_first_chunk::<4>()?;
        *bytes = rest;
        usize::try_from(u32::from_le_bytes(*head)).ok()
    };
    let count = take_u32(&mut bytes)?;
    let mut blobs = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let len = take_u32(&mut bytes)?;
        if bytes.len() < len {
            return None;
        }
        let (blob, rest) = bytes.split_at(len);
        blobs.push(blob);
        bytes = rest;
    }
    bytes.is_empty().then_some(blobs)
}

/// Loads the model from the framed buffer and generates.
pub fn run(framed: &[u8]) -> Response {
    match try_run(framed) {
        Ok(response) => response,
        Err(message) => Response::Err(message),
    }
}

fn try_run(framed: &[u8]) -> Result<Response, String> {
    let blobs = decode_frames(framed).ok_or("malformed request frames")?;
    let [manifest, tokenizer, request, stages @ ..] = blobs.as_slice() else {
        return Err(format!("expected at least 3 blobs, found {}", blobs.len()));
    };
    let manifest = Manifest::from_json(manifest).map_err(|e| e.to_string())?;
    let request: Request = serde_json::from_slice(request).map_err(|e| e.to_string())?;
    for (index, stage) in stages.iter().enumerate() {
        manifest
            .verify_stage(index, stage)
            .map_err(|e| e.to_string())?;
    }
    let tokenizer = Arc::new(Tokenizer::new(&manifest, tokenizer).map_err(|e| e.to_string())?);
    let pipeline = Arc::new(Pipeline::load(&manifest, stages).map_err(|e| e.to_string())?);
    let text = if request.messages.is_empty() {
        request.prompt
    } else {
        tokenizer
            .apply_chat_template(&request.messages, true)
            .map_err(|e| e.to_string())?
    };
    let prompt_ids = tokenizer.encode(&text).map_err(|e| e.to_string())?;
    let output = generate(pipeline, tokenizer, prompt_ids.clone(), request.params)
        .map_err(|e| e.to_string())?;
    Ok(Response::Ok {
        prompt_ids,
        tokens: output.tokens,
        text: output.text,
        finish_reason: format!("{:?}", output.finish_reason),
    })
}

#[cfg(target_arch = "wasm32")]
mod exports {
    /// Hands the host a buffer of `len` bytes to write the request into.
    #[no_mangle]
    pub extern "C" fn probe_alloc(len: u32) -> *mut u8 {
        let mut buffer = vec![0u8; len as usize].into_boxed_slice();
        let ptr = buffer.as_mut_ptr();
        std::mem::forget(buffer);
        ptr
    }

    /// Runs the request at `ptr..ptr+len` (a buffer from `probe_alloc`,
    /// taken back here); returns where the JSON response lies.
    ///
    /// # Safety
    /// `ptr` and `len` must come from one `probe_alloc` call.
    #[no_mangle]
    pub unsafe extern "C" fn probe_run(ptr: *mut u8, len: u32) -> u64 {
        // SAFETY: the host passes back the buffer `probe_alloc` leaked.
        let request = unsafe { Vec::from_raw_parts(ptr, len as usize, len as usize) };
        let response = super::run(&request);
        drop(request);
        let json = serde_json::to_vec(&response).unwrap_or_else(|e| e.to_string().into_bytes());
        let json = json.into_boxed_slice();
        let out = ((json.as_ptr() as u64) << 32) | json.len() as u64;
        std::mem::forget(json);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_garbage() {
        let framed = encode_frames(&[b"ab", b"", b"xyz"]);
        assert_eq!(
            decode_frames(&framed).unwrap(),
            vec![&b"ab"[..], &b""[..], &b"xyz"[..]]
        );
        assert!(decode_frames(&framed[..framed.len() - 1]).is_none());
        let mut extra = framed.clone();
        extra.push(0);
        assert!(decode_frames(&extra).is_none());
        assert!(decode_frames(&[1, 0]).is_none());
        assert_eq!(
            run(&[0, 0, 0, 0]),
            Response::Err("expected at least 3 blobs, found 0".into())
        );
    }
}
