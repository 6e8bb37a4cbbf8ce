//! The WebGPU forward pass for JavaScript (`wasm-bindgen --target web`;
//! `build.sh` builds `pkg/`). The chat UI runs it in a Web Worker
//! (`frontend/app/src/local/gpu.worker.ts`); the page fetches the chunks
//! (or takes them from its cache), checks them and hands them on in order.
//!
//! ```js
//! import init, { WebGpu, GpuModelLoader } from './pkg/gpu.js';
//! await init();
//! const gpu = await WebGpu.open();                       // throws without an adapter
//! const loader = new GpuModelLoader(manifestBytes);      // validated
//! loader.addTokenizerChunk(0, bytes);                    // in order
//! loader.addStageChunk(0, 0, bytes);                     // size + SHA-256 checked
//! const model = loader.finish(gpu);                      // every file checked, weights uploaded
//! const run = await model.generate(JSON.stringify([{ role: 'user', content: 'Hi' }]),
//!                                  32, 0, 1, undefined, (text, token) => true /* false: cancel */);
//! run.text; run.finishReason; // "eos", "max-new-tokens", "context-full", "stop-sequence", "cancelled"
//! ```
//!
//! Generation is asynchronous: each token waits for its logits to come
//! back from the GPU, so the worker's event loop runs between tokens (a
//! cancel message arrives there and the next callback returns `false`).
//!
//! Entropy as in `frontend/engine_web`: the engine's wasm32 `getrandom`
//! stream (tokenizer hash seeds) is reseeded from `crypto.getRandomValues`
//! before the first tokenizer is built, and a run without a seed draws its
//! sampling seed from it.

use std::cell::RefCell;
use std::rc::Rc;

use engine::{ChatMessage, FinishReason, SamplingParams};
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::context::Gpu;
use crate::error::{GpuError, Result};
use crate::generate::{Flow, GpuOutput};
use crate::loader::{ChatModel, ModelLoader};

impl From<GpuError> for JsValue {
    fn from(e: GpuError) -> JsValue {
        JsError::new(&e.to_string()).into()
    }
}

fn js_message(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

#[wasm_bindgen(inline_js = "export function randomBytes(n) { \
    const b = new Uint8Array(n); globalThis.crypto.getRandomValues(b); return b; }")]
extern "C" {
    #[wasm_bindgen(js_name = randomBytes, catch)]
    fn random_bytes(n: usize) -> std::result::Result<Vec<u8>, JsValue>;
}

fn random_seed() -> Result<[u8; 32]> {
    let bytes = random_bytes(32).map_err(|e| GpuError::Entropy(js_message(&e)))?;
    let found = bytes.len();
    bytes.try_into().map_err(|_| {
        GpuError::Entropy(format!("crypto.getRandomValues gave {found} bytes, not 32"))
    })
}

fn seed_or_random(seed: Option<Vec<u8>>) -> Result<[u8; 32]> {
    match seed {
        Some(bytes) => bytes
            .as_slice()
            .try_into()
            .map_err(|_| GpuError::SeedLength { found: bytes.len() }),
        None => random_seed(),
    }
}

/// Reseeds the engine's `getrandom` stream once, before the first tokenizer.
fn seed_hash_entropy() -> Result<()> {
    static SEEDED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if SEEDED.get().is_none() {
        engine::seed_entropy(&random_seed()?);
        let _ = SEEDED.set(());
    }
    Ok(())
}

fn parse_messages(json: &str) -> Result<Vec<ChatMessage>> {
    #[derive(serde::Deserialize)]
    struct Turn {
        role: String,
        content: String,
    }
    let turns: Vec<Turn> =
        serde_json::from_str(json).map_err(|e| GpuError::Messages(e.to_string()))?;
    Ok(turns
        .into_iter()
        .map(|t| ChatMessage::new(t.role, t.content))
        .collect())
}

/// The browser's WebGPU adapter and device.
#[wasm_bindgen]
pub struct WebGpu {
    gpu: Gpu,
}

#[wasm_bindgen]
impl WebGpu {
    /// Opens the adapter and a device with the adapter's limits; fails
    /// (with the reason) when the browser gives none.
    pub async fn open() -> std::result::Result<WebGpu, JsValue> {
        Ok(WebGpu {
            gpu: Gpu::new().await?,
        })
    }

    /// "name (backend, device type)".
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.gpu.describe()
    }
}

/// A model arriving chunk by chunk (see [`ModelLoader`]).
#[wasm_bindgen]
pub struct GpuModelLoader {
    inner: Option<ModelLoader>,
}

fn spent() -> GpuError {
    GpuError::State("this loader already finished its model".into())
}

#[wasm_bindgen]
impl GpuModelLoader {
    /// Parses and validates `manifest.json`.
    #[wasm_bindgen(constructor)]
    pub fn new(manifest_json: &[u8]) -> std::result::Result<GpuModelLoader, JsValue> {
        Ok(GpuModelLoader {
            inner: Some(ModelLoader::new(manifest_json)?),
        })
    }

    fn loader(&mut self) -> Result<&mut ModelLoader> {
        self.inner.as_mut().ok_or_else(spent)
    }

    /// The model's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner
            .as_ref()
            .map(|l| l.manifest().name.clone())
            .unwrap_or_default()
    }

    /// How many pieces `tokenizer.json` comes in.
    #[wasm_bindgen(js_name = tokenizerChunks)]
    pub fn tokenizer_chunks(&self) -> usize {
        self.inner.as_ref().map_or(0, ModelLoader::tokenizer_chunks)
    }

    /// Adds the next piece of `tokenizer.json`.
    #[wasm_bindgen(js_name = addTokenizerChunk)]
    pub fn add_tokenizer_chunk(
        &mut self,
        index: usize,
        bytes: &[u8],
    ) -> std::result::Result<(), JsValue> {
        Ok(self.loader()?.add_tokenizer_chunk(index, bytes)?)
    }

    /// Adds the next chunk of a stage file (size and SHA-256 checked).
    #[wasm_bindgen(js_name = addStageChunk)]
    pub fn add_stage_chunk(
        &mut self,
        stage: usize,
        index: usize,
        bytes: &[u8],
    ) -> std::result::Result<(), JsValue> {
        Ok(self.loader()?.add_stage_chunk(stage, index, bytes)?)
    }

    /// Checks every file against the manifest, builds the tokenizer, reads
    /// the weights and uploads them to `gpu`; the loader is spent.
    /// `context`: positions of the KV cache (default: the model's, at most
    /// 2048).
    pub fn finish(
        &mut self,
        gpu: &WebGpu,
        context: Option<usize>,
    ) -> std::result::Result<GpuChatModel, JsValue> {
        let loader = self.inner.take().ok_or_else(spent)?;
        seed_hash_entropy()?;
        let checked = loader.finish()?;
        let model = ChatModel::new(&gpu.gpu, checked, context)?;
        Ok(GpuChatModel {
            name: model.manifest().name.clone(),
            slot: Rc::new(RefCell::new(Some(model))),
        })
    }
}

/// A model on the GPU, ready to chat; one generation at a time (the
/// model leaves its slot while it generates).
#[wasm_bindgen]
pub struct GpuChatModel {
    name: String,
    slot: Rc<RefCell<Option<ChatModel>>>,
}

/// Takes the model out of its slot; fails while a generation has it.
fn take(slot: &RefCell<Option<ChatModel>>) -> Result<ChatModel> {
    slot.try_borrow_mut()
        .ok()
        .and_then(|mut s| s.take())
        .ok_or_else(busy)
}

fn put_back(slot: &RefCell<Option<ChatModel>>, model: ChatModel) {
    if let Ok(mut s) = slot.try_borrow_mut() {
        *s = Some(model);
    }
}

#[wasm_bindgen]
impl GpuChatModel {
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Generates from a chat (JSON `[{role, content}]`), encoded as the
    /// worker canister encodes it; `seed` (32 bytes) or random. Calls
    /// `onStep(text, token)` after every token (`text` may be empty);
    /// `false` from it cancels. Resolves to a [`GpuRun`].
    pub fn generate(
        &self,
        messages_json: &str,
        max_new_tokens: usize,
        temperature: f32,
        top_p: f32,
        seed: Option<Vec<u8>>,
        on_step: Function,
    ) -> std::result::Result<Promise, JsValue> {
        let messages = parse_messages(messages_json)?;
        let prompt = {
            let slot = self.slot.try_borrow().map_err(|_| busy())?;
            slot.as_ref().ok_or_else(busy)?.encode(&messages)?
        };
        self.run(prompt, max_new_tokens, temperature, top_p, seed, on_step)
    }

    /// As [`GpuChatModel::generate`], from prompt token ids (benchmarks).
    #[wasm_bindgen(js_name = generateTokens)]
    pub fn generate_tokens(
        &self,
        prompt: Vec<u32>,
        max_new_tokens: usize,
        temperature: f32,
        top_p: f32,
        seed: Option<Vec<u8>>,
        on_step: Function,
    ) -> std::result::Result<Promise, JsValue> {
        self.run(prompt, max_new_tokens, temperature, top_p, seed, on_step)
    }

    fn run(
        &self,
        prompt: Vec<u32>,
        max_new_tokens: usize,
        temperature: f32,
        top_p: f32,
        seed: Option<Vec<u8>>,
        on_step: Function,
    ) -> std::result::Result<Promise, JsValue> {
        let params = SamplingParams {
            temperature,
            top_p,
            max_new_tokens,
            seed: seed_or_random(seed)?,
            ..SamplingParams::default()
        };
        let slot = Rc::clone(&self.slot);
        Ok(future_to_promise(async move {
            let mut model = take(&slot)?;
            let mut failure = None;
            let output = model
                .generate(&prompt, &params, |step| {
                    let text = JsValue::from_str(&step.text_delta);
                    match on_step.call2(&JsValue::UNDEFINED, &text, &JsValue::from(step.token)) {
                        Ok(v) if v.as_bool() == Some(false) => Flow::Cancel,
                        Ok(_) => Flow::Continue,
                        Err(e) => {
                            failure = Some(js_message(&e));
                            Flow::Cancel
                        }
                    }
                })
                .await;
            put_back(&slot, model);
            let output = output?;
            if let Some(message) = failure {
                return Err(GpuError::Callback(message).into());
            }
            Ok(GpuRun {
                prompt_tokens: prompt.len(),
                output,
            }
            .into())
        }))
    }
}

fn busy() -> GpuError {
    GpuError::State("a generation is already running on this model".into())
}

/// What a generation produced.
#[wasm_bindgen]
pub struct GpuRun {
    prompt_tokens: usize,
    output: GpuOutput,
}

#[wasm_bindgen]
impl GpuRun {
    #[wasm_bindgen(getter)]
    pub fn text(&self) -> String {
        self.output.text.clone()
    }

    /// The generated token ids (an end-of-sequence token included).
    #[wasm_bindgen(getter)]
    pub fn tokens(&self) -> Vec<u32> {
        self.output.tokens.clone()
    }

    #[wasm_bindgen(getter, js_name = promptTokens)]
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }

    #[wasm_bindgen(getter, js_name = generatedTokens)]
    pub fn generated_tokens(&self) -> usize {
        self.output.tokens.len()
    }

    /// "eos", "max-new-tokens", "context-full", "stop-sequence" or
    /// "cancelled" (the names of the CPU path, `frontend/engine_web`).
    #[wasm_bindgen(getter, js_name = finishReason)]
    pub fn finish_reason(&self) -> String {
        match self.output.finish_reason {
            Some(FinishReason::Eos) => "eos",
            Some(FinishReason::MaxNewTokens) => "max-new-tokens",
            Some(FinishReason::ContextFull) => "context-full",
            Some(FinishReason::StopSequence) => "stop-sequence",
            None => "cancelled",
        }
        .to_string()
    }
}
