//! The whole model on the GPU against the tract engine, on the committed
//! tiny-llama and on SmolLM2-135M when it has been prepared
//! (`scripts/prepare_smollm2.sh`; required when `ENGINE_REQUIRE_SMOLLM2=1`,
//! as in CI): prompts tokenized by the engine's tokenizer and chat template,
//! the same first 32 greedy tokens, logits at every step within a stated
//! tolerance (the largest difference is printed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use engine::sampling::argmax;
use engine::{ChatMessage, ModelDir, Pipeline, SamplingParams, Tokenizer};
use gpu::{block_on, generate, Flow, GpuError, GpuModel, ModelOptions, ModelWeights};
use serde::Deserialize;

use crate::{all_close, gpu};

const GREEDY_TOKENS: usize = 32;

/// Logit tolerance against tract (both f32; sums in a different order).
/// Logits of these models range over about ±20.
const LOGIT_ATOL: f32 = 1e-3;
const LOGIT_RTOL: f32 = 1e-4;

const OPTIONS: ModelOptions = ModelOptions {
    context: 256,
    // Smaller than the chat prompts, so that they run in several chunks.
    batch: 16,
};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

const SMOLLM2: &str = "smollm2-135m-instruct";

struct Model {
    dir: ModelDir,
    pipeline: Arc<Pipeline>,
    tokenizer: Arc<Tokenizer>,
    gpu: Mutex<GpuModel>,
}

fn load(path: &Path) -> Model {
    let dir = ModelDir::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let pipeline = Arc::new(dir.pipeline().unwrap());
    let tokenizer = Arc::new(dir.tokenizer().unwrap());
    let weights = ModelWeights::from_model_dir(&dir).unwrap();
    let model = GpuModel::new(gpu(), &weights, OPTIONS).unwrap();
    Model {
        dir,
        pipeline,
        tokenizer,
        gpu: Mutex::new(model),
    }
}

/// Each model directory is loaded once per test binary.
fn load_cached(path: &Path) -> &'static Model {
    static CELLS: OnceLock<Mutex<HashMap<PathBuf, &'static OnceLock<Model>>>> = OnceLock::new();
    let cell: &'static OnceLock<Model> = CELLS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(path.to_path_buf())
        .or_insert_with(|| Box::leak(Box::default()));
    cell.get_or_init(|| load(path))
}

fn tiny() -> &'static Model {
    load_cached(&models_dir().join("tiny-llama/stages-1"))
}

/// SmolLM2, or `None` (after a notice) when it has not been prepared and
/// `ENGINE_REQUIRE_SMOLLM2` is not `1`.
fn smollm2() -> Option<&'static Model> {
    let path = models_dir().join(SMOLLM2).join("stages-1");
    model_format::prepared::prepared(&path).then(|| load_cached(&path))
}

#[derive(Debug, Deserialize)]
struct Fixtures {
    model: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    kind: String,
    prompt: Option<String>,
    messages: Option<Vec<ChatMessage>>,
    add_generation_prompt: Option<bool>,
    input_ids: Vec<u32>,
    steps: Vec<FixtureStep>,
}

#[derive(Debug, Deserialize)]
struct FixtureStep {
    input_ids: Vec<u32>,
    logits: Option<Vec<f32>>,
}

fn fixtures(model: &str) -> Fixtures {
    let path = models_dir().join(model).join("fixtures.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fixtures: Fixtures = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(fixtures.model, model);
    assert!(!fixtures.cases.is_empty());
    fixtures
}

/// The case's prompt through the engine's tokenizer (and chat template),
/// checked against the ids the fixtures recorded.
fn prompt_ids(tokenizer: &Tokenizer, case: &Case) -> Vec<u32> {
    let ids = match case.kind.as_str() {
        "plain" => tokenizer.encode(case.prompt.as_deref().unwrap()).unwrap(),
        "chat" => {
            let text = tokenizer
                .apply_chat_template(
                    case.messages.as_deref().unwrap(),
                    case.add_generation_prompt.unwrap_or(true),
                )
                .unwrap();
            tokenizer.encode(&text).unwrap()
        }
        other => panic!("{}: unknown kind {other}", case.name),
    };
    assert_eq!(ids, case.input_ids, "{}: tokenizer", case.name);
    ids
}

/// Greedy tokens and per-step logits from tract.
fn tract_greedy(pipeline: &Pipeline, prompt: &[u32], n: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
    let mut seq = pipeline.new_sequence();
    let mut logits = pipeline.prefill(&mut seq, prompt).unwrap();
    let (mut tokens, mut all) = (Vec::new(), Vec::new());
    for i in 0..n {
        let token = argmax(&logits);
        tokens.push(token);
        all.push(std::mem::take(&mut logits));
        if i + 1 < n {
            logits = pipeline.decode(&mut seq, token).unwrap();
        }
    }
    (tokens, all)
}

/// Greedy tokens and per-step logits from the GPU.
fn gpu_greedy(model: &mut GpuModel, prompt: &[u32], n: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
    model.reset();
    let mut logits = block_on(model.prefill(prompt)).unwrap();
    let (mut tokens, mut all) = (Vec::new(), Vec::new());
    for i in 0..n {
        let token = argmax(&logits);
        tokens.push(token);
        all.push(std::mem::take(&mut logits));
        if i + 1 < n {
            logits = block_on(model.decode(token)).unwrap();
        }
    }
    (tokens, all)
}

/// Every fixture prompt: the same 32 greedy tokens, logits close at every
/// step. Returns the largest logit difference.
fn matches_tract(name: &str, model: &Model) -> f32 {
    let mut gpu_model = model.gpu.lock().unwrap();
    let mut max_diff = 0.0f32;
    for case in &fixtures(name).cases {
        let prompt = prompt_ids(&model.tokenizer, case);
        let (want, want_logits) = tract_greedy(&model.pipeline, &prompt, GREEDY_TOKENS);
        let (got, got_logits) = gpu_greedy(&mut gpu_model, &prompt, GREEDY_TOKENS);
        for (step, (g, w)) in got_logits.iter().zip(&want_logits).enumerate() {
            let diff = all_close(
                &format!("{name} {} step {step} logits", case.name),
                g,
                w,
                LOGIT_ATOL,
                LOGIT_RTOL,
            );
            max_diff = max_diff.max(diff);
        }
        assert_eq!(got, want, "{name} {}: greedy tokens", case.name);
        eprintln!(
            "{name} {}: {} prompt tokens, {GREEDY_TOKENS} greedy tokens equal",
            case.name,
            prompt.len()
        );
    }
    eprintln!(
        "{name}: max abs logit diff GPU vs tract {max_diff:e} (tolerance {LOGIT_ATOL:e} + {LOGIT_RTOL:e} * |tract|)"
    );
    max_diff
}

#[test]
fn tiny_llama_matches_tract() {
    matches_tract("tiny-llama", tiny());
}

#[test]
fn smollm2_matches_tract() {
    if let Some(model) = smollm2() {
        matches_tract(SMOLLM2, model);
    }
}

/// The committed onnxruntime logits of the tiny model (prefill, then
/// one-token decodes) agree with the GPU too.
#[test]
fn tiny_llama_matches_onnxruntime_fixtures() {
    let model = tiny();
    let mut gpu_model = model.gpu.lock().unwrap();
    let mut max_diff = 0.0f32;
    for case in &fixtures("tiny-llama").cases {
        gpu_model.reset();
        for (k, step) in case.steps.iter().enumerate() {
            let got = block_on(gpu_model.forward(&step.input_ids, false)).unwrap();
            let want = step.logits.as_ref().expect("tiny fixtures carry logits");
            let diff = all_close(
                &format!("{} step {k}", case.name),
                got.last(),
                want,
                LOGIT_ATOL,
                LOGIT_RTOL,
            );
            max_diff = max_diff.max(diff);
        }
    }
    eprintln!("tiny-llama: max abs logit diff GPU vs onnxruntime {max_diff:e}");
}

/// The logits of every position of one call equal those of running the
/// tokens one by one, whatever the chunking.
#[test]
fn all_positions_match_token_by_token() {
    let model = tiny();
    let mut gpu_model = model.gpu.lock().unwrap();
    let tokens: Vec<u32> = (0..40).map(|i| (i * 37 + 11) % 512).collect();
    gpu_model.reset();
    let all = block_on(gpu_model.forward(&tokens, true)).unwrap();
    assert_eq!((all.rows, all.vocab), (tokens.len(), 512));
    assert_eq!(gpu_model.position(), tokens.len());
    gpu_model.reset();
    for (i, &t) in tokens.iter().enumerate() {
        let one = block_on(gpu_model.decode(t)).unwrap();
        all_close(
            &format!("position {i}"),
            &one,
            all.row(i).unwrap(),
            1e-4,
            1e-4,
        );
    }
}

/// The engine's token loop on GPU logits gives the engine's own output
/// (tokens and text); a callback can cancel.
#[test]
fn generate_matches_engine_generate_and_cancels() {
    let model = tiny();
    let mut gpu_model = model.gpu.lock().unwrap();
    let prompt = model
        .tokenizer
        .encode(
            &model
                .tokenizer
                .apply_chat_template(&[ChatMessage::user("Name three colors.")], true)
                .unwrap(),
        )
        .unwrap();
    let params = SamplingParams::greedy(GREEDY_TOKENS);
    let want = engine::generate(
        model.pipeline.clone(),
        model.tokenizer.clone(),
        prompt.clone(),
        params.clone(),
    )
    .unwrap();
    let mut streamed = String::new();
    let got = block_on(generate(
        &mut gpu_model,
        &model.tokenizer,
        &prompt,
        &params,
        |step| {
            streamed.push_str(&step.text_delta);
            Flow::Continue
        },
    ))
    .unwrap();
    assert_eq!(got.tokens, want.tokens);
    assert_eq!(got.text, want.text);
    assert_eq!(streamed, want.text);
    assert_eq!(got.finish_reason, Some(want.finish_reason));

    let mut steps = 0;
    let cancelled = block_on(generate(
        &mut gpu_model,
        &model.tokenizer,
        &prompt,
        &params,
        |_| {
            steps += 1;
            if steps == 3 {
                Flow::Cancel
            } else {
                Flow::Continue
            }
        },
    ))
    .unwrap();
    assert_eq!(cancelled.finish_reason, None);
    assert_eq!(cancelled.tokens, want.tokens[..3]);
}

#[test]
fn bad_input_is_refused_and_leaves_the_cache_alone() {
    let model = tiny();
    let mut gpu_model = model.gpu.lock().unwrap();
    gpu_model.reset();
    block_on(gpu_model.prefill(&[1, 2, 3])).unwrap();
    let err = block_on(gpu_model.forward(&[5, 512], false)).unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::TokenOutOfRange {
                id: 512,
                vocab: 512
            }
        ),
        "{err}"
    );
    let err = block_on(gpu_model.forward(&[], false)).unwrap_err();
    assert!(matches!(err, GpuError::EmptyInput), "{err}");
    let long = vec![7u32; OPTIONS.context - 2];
    let err = block_on(gpu_model.forward(&long, false)).unwrap_err();
    assert!(
        matches!(err, GpuError::ContextFull { needed, capacity } if needed == OPTIONS.context + 1 && capacity == OPTIONS.context),
        "{err}"
    );
    assert_eq!(gpu_model.position(), 3);
}

/// A model cut in two stages gives the same weights as in one.
#[test]
fn stage_cuts_give_the_same_weights() {
    let one = ModelWeights::from_model_dir(&tiny().dir).unwrap();
    let two = ModelWeights::from_model_dir(
        &ModelDir::read(models_dir().join("tiny-llama/stages-2")).unwrap(),
    )
    .unwrap();
    assert_eq!(one.embed, two.embed);
    assert_eq!(one.norm, two.norm);
    assert_eq!(one.inv_freq, two.inv_freq);
    assert_eq!(one.layers.len(), two.layers.len());
    for (a, b) in one.layers.iter().zip(&two.layers) {
        assert_eq!((&a.q, &a.k, &a.v, &a.o), (&b.q, &b.k, &b.v, &b.o));
        assert_eq!((&a.gate, &a.up, &a.down), (&b.gate, &b.up, &b.down));
        assert_eq!((&a.input_norm, &a.post_norm), (&b.input_norm, &b.post_norm));
    }
}

#[test]
fn options_past_the_model_are_refused() {
    let weights = ModelWeights::from_model_dir(&tiny().dir).unwrap();
    let too_long = ModelOptions {
        context: 513,
        batch: 4,
    };
    let err = GpuModel::new(gpu(), &weights, too_long).unwrap_err();
    assert!(matches!(err, GpuError::Weights(_)), "{err}");
}
