//! The project's tract engine in the browser, for JavaScript
//! (`wasm-bindgen --target web`; `build.sh` builds `pkg/`).
//!
//! Built for `wasm32-unknown-unknown` with SIMD (`.cargo/config.toml`), it
//! is the app's CPU path when WebGPU is missing, run in a Web Worker
//! (`frontend/app/src/local/cpu.worker.ts`). From JavaScript:
//!
//! ```js
//! import init, { WebModelLoader } from './pkg/engine_web.js';
//! await init();
//! const loader = new WebModelLoader(manifestBytes);      // validated
//! loader.addTokenizerChunk(0, bytes);                     // in order
//! loader.addStageChunk(0, 0, bytes);                      // size + SHA-256 checked
//! const model = loader.finish();                          // every file checked, tract loads
//! const run = model.start(JSON.stringify([{ role: 'user', content: 'Hi' }]), 32, 0, 1, undefined);
//! let piece;
//! while ((piece = run.step()) !== undefined) { /* stream it; run.cancel() stops */ }
//! run.finishReason; // "eos", "max-new-tokens", "context-full", "cancelled"
//! ```
//!
//! A run is stepped a token at a time so that the worker can take a cancel
//! message between tokens; [`WebModel::generate`] runs to the end with a
//! callback instead (returning `false` from it cancels).
//!
//! Entropy: the engine's wasm32 `getrandom` backend serves a pseudo-random
//! stream from a fixed seed (see `crates/engine/src/wasm_entropy.rs`; it
//! only seeds the tokenizer's hash maps). Here that stream is reseeded from
//! `crypto.getRandomValues` before the first tokenizer is built, and a run
//! without a seed draws its 32-byte sampling seed from
//! `crypto.getRandomValues` directly. A given seed gives the same tokens as
//! the canisters and the native engine for the same logits.
//!
//! [`model`] holds the engine side in plain Rust (tested natively);
//! this module only adapts it to JavaScript.

pub mod error;
pub mod model;

use wasm_bindgen::prelude::*;

pub use error::{Result, WebError};
pub use model::{LoadedModel, ModelLoader, Run, Settings};

use engine::ChatMessage;

impl From<WebError> for JsValue {
    fn from(e: WebError) -> JsValue {
        JsError::new(&e.to_string()).into()
    }
}

/// A chat as JSON: `[{"role": "user", "content": "..."}]`.
pub fn parse_messages(json: &str) -> Result<Vec<ChatMessage>> {
    #[derive(serde::Deserialize)]
    struct Turn {
        role: String,
        content: String,
    }
    let turns: Vec<Turn> =
        serde_json::from_str(json).map_err(|e| WebError::Messages(e.to_string()))?;
    Ok(turns
        .into_iter()
        .map(|t| ChatMessage::new(t.role, t.content))
        .collect())
}

/// The sampling seed: the one given (32 bytes), or fresh random bytes.
pub fn seed_or_random(seed: Option<Vec<u8>>) -> Result<[u8; 32]> {
    match seed {
        Some(bytes) => bytes
            .as_slice()
            .try_into()
            .map_err(|_| WebError::SeedLength { found: bytes.len() }),
        None => random_seed(),
    }
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen(inline_js = "export function randomBytes(n) { \
    const b = new Uint8Array(n); globalThis.crypto.getRandomValues(b); return b; }")]
extern "C" {
    #[wasm_bindgen(js_name = randomBytes, catch)]
    fn random_bytes(n: usize) -> std::result::Result<Vec<u8>, JsValue>;
}

#[cfg(target_arch = "wasm32")]
fn random_seed() -> Result<[u8; 32]> {
    let bytes = random_bytes(32)
        .map_err(|e| WebError::Entropy(e.as_string().unwrap_or_else(|| format!("{e:?}"))))?;
    let found = bytes.len();
    bytes.try_into().map_err(|_| {
        WebError::Entropy(format!("crypto.getRandomValues gave {found} bytes, not 32"))
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn random_seed() -> Result<[u8; 32]> {
    let mut seed = [0; 32];
    getrandom::fill(&mut seed).map_err(|e| WebError::Entropy(e.to_string()))?;
    Ok(seed)
}

/// Reseeds the engine's `getrandom` stream (tokenizer hash seeds) from the
/// browser's entropy, once, before the first tokenizer is built.
fn seed_hash_entropy() -> Result<()> {
    static SEEDED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if SEEDED.get().is_none() {
        engine::seed_entropy(&random_seed()?);
        let _ = SEEDED.set(());
    }
    Ok(())
}

#[wasm_bindgen]
extern "C" {
    /// A JavaScript function `(text: string) => boolean | void`.
    pub type TokenCallback;
    #[wasm_bindgen(method, js_name = call, catch)]
    fn call(
        this: &TokenCallback,
        this_arg: &JsValue,
        text: &str,
    ) -> std::result::Result<JsValue, JsValue>;
}

/// A model arriving chunk by chunk (see [`ModelLoader`]).
#[wasm_bindgen]
pub struct WebModelLoader {
    inner: Option<ModelLoader>,
}

fn finished_loader() -> WebError {
    WebError::State("this loader already finished its model".into())
}

#[wasm_bindgen]
impl WebModelLoader {
    /// Parses and validates `manifest.json`.
    #[wasm_bindgen(constructor)]
    pub fn new(manifest_json: &[u8]) -> Result<WebModelLoader> {
        Ok(WebModelLoader {
            inner: Some(ModelLoader::new(manifest_json)?),
        })
    }

    fn loader(&mut self) -> Result<&mut ModelLoader> {
        self.inner.as_mut().ok_or_else(finished_loader)
    }

    /// The model's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner
            .as_ref()
            .map(|l| l.manifest().name.clone())
            .unwrap_or_default()
    }

    /// How many pieces `tokenizer.json` is served in.
    #[wasm_bindgen(js_name = tokenizerChunks)]
    pub fn tokenizer_chunks(&self) -> usize {
        self.inner.as_ref().map_or(0, ModelLoader::tokenizer_chunks)
    }

    /// Adds the next piece of `tokenizer.json`.
    #[wasm_bindgen(js_name = addTokenizerChunk)]
    pub fn add_tokenizer_chunk(&mut self, index: usize, bytes: &[u8]) -> Result<()> {
        self.loader()?.add_tokenizer_chunk(index, bytes)
    }

    /// Adds the next chunk of a stage file (size and SHA-256 checked).
    #[wasm_bindgen(js_name = addStageChunk)]
    pub fn add_stage_chunk(&mut self, stage: usize, index: usize, bytes: &[u8]) -> Result<()> {
        self.loader()?.add_stage_chunk(stage, index, bytes)
    }

    /// Checks every file against the manifest and loads the model into
    /// tract; the loader is spent.
    pub fn finish(&mut self) -> Result<WebModel> {
        let loader = self.inner.take().ok_or_else(finished_loader)?;
        seed_hash_entropy()?;
        Ok(WebModel {
            inner: loader.finish()?,
        })
    }
}

/// A loaded model.
#[wasm_bindgen]
pub struct WebModel {
    inner: LoadedModel,
}

#[wasm_bindgen]
impl WebModel {
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.manifest().name.clone()
    }

    /// Starts a generation from a chat (JSON `[{role, content}]`), encoded
    /// as the worker canister encodes it; `seed` (32 bytes) or random.
    pub fn start(
        &self,
        messages_json: &str,
        max_new_tokens: usize,
        temperature: f32,
        top_p: f32,
        seed: Option<Vec<u8>>,
    ) -> Result<WebRun> {
        let messages = parse_messages(messages_json)?;
        let settings = Settings {
            max_new_tokens,
            temperature,
            top_p,
            seed: seed_or_random(seed)?,
        };
        Ok(WebRun {
            inner: self.inner.start(&messages, &settings)?,
        })
    }

    /// Starts a generation from prompt token ids (the benchmark's fixtures).
    #[wasm_bindgen(js_name = startTokens)]
    pub fn start_tokens(
        &self,
        prompt: Vec<u32>,
        max_new_tokens: usize,
        temperature: f32,
        top_p: f32,
        seed: Option<Vec<u8>>,
    ) -> Result<WebRun> {
        let settings = Settings {
            max_new_tokens,
            temperature,
            top_p,
            seed: seed_or_random(seed)?,
        };
        Ok(WebRun {
            inner: self.inner.start_tokens(prompt, &settings)?,
        })
    }

    /// Generates to the end, calling `on_token(text)` with each token's
    /// text; `false` from it cancels before the next token.
    pub fn generate(
        &self,
        messages_json: &str,
        max_new_tokens: usize,
        temperature: f32,
        top_p: f32,
        seed: Option<Vec<u8>>,
        on_token: &TokenCallback,
    ) -> std::result::Result<WebRun, JsValue> {
        let mut run = self.start(messages_json, max_new_tokens, temperature, top_p, seed)?;
        while let Some(text) = run.inner.step()? {
            if on_token.call(&JsValue::UNDEFINED, &text)?.as_bool() == Some(false) {
                run.inner.cancel();
            }
        }
        Ok(run)
    }
}

/// One generation, a token per [`WebRun::step`].
#[wasm_bindgen]
pub struct WebRun {
    inner: Run,
}

#[wasm_bindgen]
impl WebRun {
    /// The next token's text (possibly empty), or `undefined` once the run
    /// has ended. The first step runs the whole prompt.
    pub fn step(&mut self) -> Result<Option<String>> {
        self.inner.step()
    }

    /// Ends the run before its next token.
    pub fn cancel(&mut self) {
        self.inner.cancel();
    }

    #[wasm_bindgen(getter)]
    pub fn done(&self) -> bool {
        self.inner.is_done()
    }

    /// "eos", "max-new-tokens", "context-full", "stop-sequence",
    /// "cancelled", or `undefined` while running.
    #[wasm_bindgen(getter, js_name = finishReason)]
    pub fn finish_reason(&self) -> Option<String> {
        self.inner.finish_reason().map(str::to_string)
    }

    #[wasm_bindgen(getter)]
    pub fn text(&self) -> String {
        self.inner.text().to_string()
    }

    #[wasm_bindgen(getter, js_name = promptTokens)]
    pub fn prompt_tokens(&self) -> usize {
        self.inner.prompt_tokens()
    }

    #[wasm_bindgen(getter, js_name = generatedTokens)]
    pub fn generated_tokens(&self) -> usize {
        self.inner.generated_tokens()
    }

    /// The generated token ids.
    #[wasm_bindgen(getter)]
    pub fn tokens(&self) -> Vec<u32> {
        self.inner.tokens().to_vec()
    }
}
