//! Engine integration tests: the committed tiny model against its
//! onnxruntime fixtures, stage cuts against each other, bad input, and
//! SmolLM2-135M when it has been prepared (`scripts/prepare_smollm2.sh`).
//!
//! SmolLM2 tests print a notice and pass when the model is missing, unless
//! `ENGINE_REQUIRE_SMOLLM2=1` (CI), in which case they fail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use engine::{
    generate, ChatMessage, Error, FinishReason, Generation, HiddenStates, Manifest, ModelDir,
    Pipeline, SamplingParams, Stage, StageData, StageInput, StageOutput, Tokenizer,
};
use serde::Deserialize;

// ---------------------------------------------------------------- helpers

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn tiny_dir(stages: usize) -> PathBuf {
    models_dir().join(format!("tiny-llama/stages-{stages}"))
}

const SMOLLM2: &str = "smollm2-135m-instruct";

struct Model {
    dir: ModelDir,
    pipeline: Arc<Pipeline>,
    tokenizer: Arc<Tokenizer>,
}

fn load(path: &Path) -> Model {
    let dir = ModelDir::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let pipeline = Arc::new(
        dir.pipeline()
            .unwrap_or_else(|e| panic!("loading {}: {e}", path.display())),
    );
    let tokenizer = Arc::new(dir.tokenizer().unwrap());
    Model {
        dir,
        pipeline,
        tokenizer,
    }
}

/// Each model directory is loaded once per test binary (and kept); tests
/// loading different models do not wait for each other.
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

fn tiny(stages: usize) -> &'static Model {
    load_cached(&tiny_dir(stages))
}

/// SmolLM2 with `stages` stages, or `None` (after a notice) when it has not
/// been prepared and `ENGINE_REQUIRE_SMOLLM2` is not set.
fn smollm2(stages: usize) -> Option<&'static Model> {
    let path = models_dir().join(SMOLLM2).join(format!("stages-{stages}"));
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
    text: String,
    input_ids: Vec<u32>,
    steps: Vec<FixtureStep>,
    greedy_max_new_tokens: usize,
    greedy_ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
struct FixtureStep {
    input_ids: Vec<u32>,
    top: Vec<(u32, f32)>,
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

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Logits of each fixture step: prefill, then one-token decodes.
fn step_logits(pipeline: &Pipeline, case: &Case) -> Vec<Vec<f32>> {
    let mut seq = pipeline.new_sequence();
    case.steps
        .iter()
        .enumerate()
        .map(|(k, step)| {
            if k == 0 {
                pipeline.prefill(&mut seq, &step.input_ids).unwrap()
            } else {
                assert_eq!(step.input_ids.len(), 1);
                pipeline.decode(&mut seq, step.input_ids[0]).unwrap()
            }
        })
        .collect()
}

fn greedy(model: &Model, prompt: &[u32], max_new_tokens: usize) -> engine::Output {
    generate(
        model.pipeline.clone(),
        model.tokenizer.clone(),
        prompt.to_vec(),
        SamplingParams::greedy(max_new_tokens),
    )
    .unwrap()
}

fn check_tokenizer(tokenizer: &Tokenizer, case: &Case) {
    match case.kind.as_str() {
        "plain" => {
            assert_eq!(case.prompt.as_deref(), Some(case.text.as_str()));
            assert_eq!(
                tokenizer.encode_plain(&case.text).unwrap(),
                case.input_ids,
                "{}: encode_plain",
                case.name
            );
        }
        "chat" => {
            let messages = case.messages.as_ref().unwrap();
            let text = tokenizer
                .apply_chat_template(messages, case.add_generation_prompt.unwrap_or(false))
                .unwrap();
            assert_eq!(text, case.text, "{}: chat template", case.name);
            // The canisters' encoding (contents as plain text) is the same
            // for these benign messages.
            let ids = tokenizer
                .encode_chat(messages, case.add_generation_prompt.unwrap_or(false))
                .unwrap();
            assert_eq!(ids, case.input_ids, "{}: encode_chat", case.name);
        }
        other => panic!("unknown fixture kind {other}"),
    }
    assert_eq!(
        tokenizer.encode(&case.text).unwrap(),
        case.input_ids,
        "{}: token ids",
        case.name
    );
}

/// A copy of a model directory under the test tmpdir, to damage.
fn copy_dir(from: &Path, name: &str) -> PathBuf {
    let to = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("engine-{name}"));
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

// ---------------------------------------------------------------- tiny model

#[test]
fn tiny_matches_onnxruntime_fixtures() {
    let model = tiny(1);
    for case in fixtures("tiny-llama").cases {
        check_tokenizer(&model.tokenizer, &case);
        assert_eq!(case.steps[0].input_ids, case.input_ids);
        for (k, (logits, step)) in step_logits(&model.pipeline, &case)
            .iter()
            .zip(&case.steps)
            .enumerate()
        {
            let expected = step
                .logits
                .as_ref()
                .expect("tiny fixtures carry full logits");
            let diff = max_abs_diff(logits, expected);
            assert!(diff <= 1e-4, "{} step {k}: max abs diff {diff}", case.name);
            let (top_id, _) = step.top[0];
            assert_eq!(
                engine::sampling::argmax(logits),
                top_id,
                "{} step {k}",
                case.name
            );
        }
        let output = greedy(model, &case.input_ids, case.greedy_max_new_tokens);
        assert_eq!(output.tokens, case.greedy_ids, "{}: greedy ids", case.name);
        let eos = model.tokenizer.is_eos(*case.greedy_ids.last().unwrap());
        let expected_reason = if eos {
            FinishReason::Eos
        } else {
            FinishReason::MaxNewTokens
        };
        assert_eq!(output.finish_reason, expected_reason, "{}", case.name);
        assert_eq!(
            output.text,
            model.tokenizer.decode(&output.tokens).unwrap(),
            "{}: streamed text",
            case.name
        );
    }
}

/// Numbers of stages of the cuts present under `model_dir` (`stages-N`).
fn stage_cuts(model_dir: &Path) -> Vec<usize> {
    (1..=8)
        .filter(|n| model_dir.join(format!("stages-{n}/manifest.json")).exists())
        .collect()
}

#[test]
fn tiny_stage_cuts_agree() {
    let cuts = stage_cuts(&models_dir().join("tiny-llama"));
    assert!(
        cuts.starts_with(&[1, 2]),
        "expected tiny-llama stages-1 and stages-2, found {cuts:?}"
    );
    let reference = tiny(1);
    for case in fixtures("tiny-llama").cases {
        let logits = step_logits(&reference.pipeline, &case);
        let tokens = greedy(reference, &case.input_ids, case.greedy_max_new_tokens).tokens;
        for &n in &cuts[1..] {
            let model = load_cached(&tiny_dir(n));
            assert_eq!(model.pipeline.stages().len(), n);
            for (k, (a, b)) in logits
                .iter()
                .zip(step_logits(&model.pipeline, &case))
                .enumerate()
            {
                let diff = max_abs_diff(a, &b);
                assert!(
                    diff <= 1e-5,
                    "{} step {k}, {n} stages: diff {diff}",
                    case.name
                );
            }
            let cut_tokens = greedy(model, &case.input_ids, case.greedy_max_new_tokens).tokens;
            assert_eq!(cut_tokens, tokens, "{}: {n} stages", case.name);
        }
    }
}

#[test]
fn tiny_stages_run_one_by_one_like_canisters() {
    // Stage by stage with plain data in between, as workers would do.
    let model = tiny(2);
    let reference = tiny(1);
    let prompt = reference.tokenizer.encode("Once upon a time").unwrap();
    let stages = model.pipeline.stages();
    let mut kvs: Vec<_> = stages.iter().map(Stage::new_kv).collect();
    let mut next = StageData::Tokens(prompt.clone());
    let mut position = 0;
    let mut tokens = vec![];
    for _ in 0..6 {
        let seq_len = match &next {
            StageData::Tokens(t) => t.len(),
            StageData::Hidden(h) => h.seq_len,
        };
        let mut data = next;
        let mut logits = None;
        for (stage, kv) in stages.iter().zip(kvs.iter_mut()) {
            // Round-trip through JSON: what crosses a canister boundary is plain data.
            let input = StageInput {
                data,
                start_position: position,
                all_logits: false,
            };
            let input: StageInput =
                serde_json::from_slice(&serde_json::to_vec(&input).unwrap()).unwrap();
            match stage.run(kv, input).unwrap() {
                StageOutput::Hidden(h) => {
                    assert_eq!((h.seq_len, h.hidden_size), (seq_len, 64));
                    data = StageData::Hidden(h);
                }
                StageOutput::Logits(l) => {
                    logits = Some(l.last);
                    data = StageData::Tokens(vec![]);
                }
            }
        }
        position += seq_len;
        assert!(kvs.iter().all(|kv| kv.positions() == position));
        let token = engine::sampling::argmax(&logits.unwrap());
        tokens.push(token);
        next = StageData::Tokens(vec![token]);
    }
    assert_eq!(tokens, greedy(reference, &prompt, 6).tokens);
}

#[test]
fn tiny_all_logits_are_causal() {
    let model = tiny(1);
    let prompt = model.tokenizer.encode("Hello, my name is").unwrap();
    let mut seq = model.pipeline.new_sequence();
    let all = model.pipeline.forward(&mut seq, &prompt, true).unwrap();
    let vocab = all.vocab_size;
    let rows = all.all.unwrap();
    assert_eq!(rows.len(), prompt.len() * vocab);
    assert_eq!(&rows[(prompt.len() - 1) * vocab..], &all.last[..]);
    for n in 1..=prompt.len() {
        let mut seq = model.pipeline.new_sequence();
        let last = model.pipeline.prefill(&mut seq, &prompt[..n]).unwrap();
        let diff = max_abs_diff(&rows[(n - 1) * vocab..n * vocab], &last);
        assert!(diff <= 1e-5, "row {n}: diff {diff}");
    }
    // Prefill in two pieces = prefill at once.
    let mut seq = model.pipeline.new_sequence();
    model.pipeline.prefill(&mut seq, &prompt[..2]).unwrap();
    let last = model.pipeline.prefill(&mut seq, &prompt[2..]).unwrap();
    assert!(max_abs_diff(&last, &all.last) <= 1e-5);
    assert_eq!(seq.position(), prompt.len());
    assert!(seq.kv_size_bytes() > 0);
}

#[test]
fn tiny_seeded_sampling_is_reproducible() {
    let model = tiny(1);
    let prompt = model.tokenizer.encode("Once upon a time").unwrap();
    let sample = |seed: u8| {
        let params = SamplingParams {
            temperature: 1.0,
            top_k: 50,
            top_p: 0.95,
            repetition_penalty: 1.1,
            max_new_tokens: 24,
            seed: [seed; 32],
            ..Default::default()
        };
        generate(
            model.pipeline.clone(),
            model.tokenizer.clone(),
            prompt.clone(),
            params,
        )
        .unwrap()
        .tokens
    };
    let a = sample(1);
    assert_eq!(a, sample(1));
    assert_ne!(a, sample(2));
    assert_ne!(a, greedy(model, &prompt, 24).tokens);
}

#[test]
fn tiny_step_api_streams_the_same_text() {
    let model = tiny(1);
    let prompt = model.tokenizer.encode("The capital of France is").unwrap();
    let whole = greedy(model, &prompt, 20);
    let mut generation = Generation::new(
        model.pipeline.clone(),
        model.tokenizer.clone(),
        prompt.clone(),
        SamplingParams::greedy(20),
    )
    .unwrap();
    let mut text = String::new();
    let mut tokens = vec![];
    let finish = loop {
        let step = generation.step().unwrap();
        text.push_str(&step.text_delta);
        tokens.push(step.token);
        assert_eq!(generation.position(), prompt.len() + tokens.len() - 1);
        if let Some(reason) = step.finished {
            break reason;
        }
    };
    assert_eq!(tokens, whole.tokens);
    assert_eq!(text, whole.text);
    assert_eq!(generation.text(), whole.text);
    assert_eq!(finish, whole.finish_reason);
    assert_eq!(generation.finished(), Some(finish));
    assert_eq!(generation.step(), Err(Error::Finished));
}

#[test]
fn tiny_stop_sequences_cut_the_text() {
    let model = tiny(1);
    let prompt = model.tokenizer.encode("Hello, my name is").unwrap();
    let whole = greedy(model, &prompt, 24);
    // Stop at the first occurrence of a piece of the greedy text.
    let text = &whole.text;
    let start = text
        .char_indices()
        .map(|(i, _)| i)
        .find(|&i| i >= text.len() / 2)
        .unwrap();
    let stop: String = text[start..].chars().take(3).collect();
    let cut = text.find(&stop).unwrap();
    let params = SamplingParams {
        stop_sequences: vec!["never appears \u{1F600}".into(), stop.clone()],
        ..SamplingParams::greedy(24)
    };
    let out = generate(
        model.pipeline.clone(),
        model.tokenizer.clone(),
        prompt,
        params,
    )
    .unwrap();
    assert_eq!(
        out.finish_reason,
        FinishReason::StopSequence,
        "stop {stop:?}"
    );
    assert_eq!(out.text, &text[..cut]);
    assert!(whole.tokens.starts_with(&out.tokens));
}

#[test]
fn tiny_context_limit() {
    let model = tiny(1);
    let max = model.pipeline.max_positions();
    let params = SamplingParams::greedy(8);
    let too_long = vec![300; max + 1];
    let err = Generation::new(
        model.pipeline.clone(),
        model.tokenizer.clone(),
        too_long.clone(),
        params.clone(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::PromptTooLong {
            tokens: max + 1,
            max
        }
    );
    let mut seq = model.pipeline.new_sequence();
    assert_eq!(
        model.pipeline.prefill(&mut seq, &too_long),
        Err(Error::PromptTooLong {
            tokens: max + 1,
            max
        })
    );
    assert_eq!(seq.position(), 0);

    // Three positions left: the generation ends when the context is full.
    let prompt = vec![300; max - 3];
    let out = generate(
        model.pipeline.clone(),
        model.tokenizer.clone(),
        prompt,
        SamplingParams::greedy(100),
    )
    .unwrap();
    if out.finish_reason == FinishReason::ContextFull {
        assert_eq!(out.tokens.len(), 4);
    } else {
        assert_eq!(out.finish_reason, FinishReason::Eos);
        assert!(out.tokens.len() <= 4);
    }
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_input_gives_typed_errors() {
    let model = tiny(1);
    let manifest = &model.dir.manifest;
    let stage_bytes = &model.dir.stage_files[0];

    // A flipped byte in a chunk.
    let chunk = &manifest.stages[0].chunks[0];
    let mut bytes =
        stage_bytes[chunk.offset as usize..(chunk.offset + chunk.size) as usize].to_vec();
    assert_eq!(manifest.verify_chunk(0, 0, &bytes), Ok(()));
    bytes[chunk.size as usize / 2] ^= 0x40;
    assert!(matches!(
        manifest.verify_chunk(0, 0, &bytes).map_err(Error::from),
        Err(Error::HashMismatch { ref expected, .. }) if *expected == chunk.sha256
    ));
    assert!(matches!(
        manifest.verify_chunk(0, 99, &bytes).map_err(Error::from),
        Err(Error::ChunkOutOfRange { chunk: 99, .. })
    ));

    // Truncated ONNX.
    let half = &stage_bytes[..stage_bytes.len() / 2];
    match Stage::load(&manifest.stages[0], &manifest.config, half) {
        Err(Error::InvalidOnnx(msg)) => assert!(!msg.is_empty()),
        other => panic!("expected InvalidOnnx, got {other:?}"),
    }
    assert!(matches!(
        Stage::load(
            &manifest.stages[0],
            &manifest.config,
            b"not an onnx file at all"
        ),
        Err(Error::InvalidOnnx(_))
    ));
    // A real graph that is not this stage (stage 1 of the 2-stage cut).
    let other = tiny(2);
    assert!(matches!(
        Stage::load(
            &manifest.stages[0],
            &manifest.config,
            &other.dir.stage_files[1]
        ),
        Err(Error::StageMismatch { stage: 0, .. })
    ));

    // max_new_tokens = 0 and other parameters out of range.
    let prompt = vec![300, 301];
    for params in [
        SamplingParams::greedy(0),
        SamplingParams {
            temperature: -1.0,
            ..Default::default()
        },
        SamplingParams {
            top_p: 0.0,
            ..Default::default()
        },
    ] {
        assert!(matches!(
            Generation::new(
                model.pipeline.clone(),
                model.tokenizer.clone(),
                prompt.clone(),
                params
            ),
            Err(Error::InvalidParams(_))
        ));
    }
    assert_eq!(
        Generation::new(
            model.pipeline.clone(),
            model.tokenizer.clone(),
            vec![],
            SamplingParams::greedy(1)
        )
        .unwrap_err(),
        Error::EmptyPrompt
    );
    assert_eq!(
        Generation::new(
            model.pipeline.clone(),
            model.tokenizer.clone(),
            vec![1, 512],
            SamplingParams::greedy(1)
        )
        .unwrap_err(),
        Error::TokenOutOfRange {
            token: 512,
            vocab_size: 512
        }
    );

    // Stage inputs that do not fit.
    let stage = &model.pipeline.stages()[0];
    let mut kv = stage.new_kv();
    assert_eq!(
        stage.run(&mut kv, StageInput::tokens(vec![5], 3)),
        Err(Error::PositionMismatch {
            expected: 0,
            found: 3
        })
    );
    assert!(matches!(
        stage.run(
            &mut kv,
            StageInput::hidden(
                HiddenStates {
                    seq_len: 1,
                    hidden_size: 64,
                    values: vec![0.0; 64]
                },
                0
            )
        ),
        Err(Error::ShapeMismatch { .. })
    ));
    let two = tiny(2);
    let mut kv = two.pipeline.stages()[1].new_kv();
    assert!(matches!(
        two.pipeline.stages()[1].run(
            &mut kv,
            StageInput::hidden(
                HiddenStates {
                    seq_len: 2,
                    hidden_size: 64,
                    values: vec![0.0; 64]
                },
                0
            )
        ),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(kv.positions(), 0);
}

#[test]
fn bad_model_dirs_give_typed_errors() {
    // Unknown architecture.
    let json = std::fs::read_to_string(tiny_dir(1).join("manifest.json")).unwrap();
    let edited = json.replacen("\"llama\"", "\"mamba\"", 1);
    assert_ne!(json, edited);
    match Manifest::from_json(edited.as_bytes()).map_err(Error::from) {
        Err(Error::UnknownArchitecture { found, supported }) => {
            assert_eq!(found, "mamba");
            assert_eq!(supported, &["llama"]);
        }
        other => panic!("expected UnknownArchitecture, got {other:?}"),
    }
    let dir = copy_dir(&tiny_dir(1), "unknown-arch");
    std::fs::write(dir.join("manifest.json"), &edited).unwrap();
    assert!(matches!(
        ModelDir::read(&dir),
        Err(Error::UnknownArchitecture { .. })
    ));

    // A stage file named by the manifest is missing.
    let dir = copy_dir(&tiny_dir(2), "missing-stage");
    std::fs::remove_file(dir.join("stage-1.onnx")).unwrap();
    match ModelDir::read(&dir) {
        Err(Error::MissingStageFile { path }) => assert!(path.ends_with("stage-1.onnx"), "{path}"),
        other => panic!("expected MissingStageFile, got {other:?}"),
    }

    // A corrupted stage file.
    let dir = copy_dir(&tiny_dir(1), "corrupted-stage");
    let path = dir.join("stage-0.onnx");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        ModelDir::read(&dir),
        Err(Error::HashMismatch { .. })
    ));

    // A truncated stage file.
    bytes.truncate(middle);
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        ModelDir::read(&dir),
        Err(Error::SizeMismatch { .. })
    ));

    // A broken tokenizer.json.
    let dir = copy_dir(&tiny_dir(1), "bad-tokenizer");
    std::fs::write(dir.join("tokenizer.json"), b"\xff").unwrap();
    assert!(matches!(
        ModelDir::read(&dir),
        Err(Error::SizeMismatch { .. })
    ));
    assert!(matches!(
        Tokenizer::new(&tiny(1).dir.manifest, b"\xff\xfe"),
        Err(Error::Tokenizer(_))
    ));
}

// ---------------------------------------------------------------- SmolLM2-135M

#[test]
fn smollm2_greedy_matches_fixtures() {
    let Some(model) = smollm2(1) else { return };
    for case in fixtures(SMOLLM2).cases {
        check_tokenizer(&model.tokenizer, &case);
        for (k, (logits, step)) in step_logits(&model.pipeline, &case)
            .iter()
            .zip(&case.steps)
            .enumerate()
        {
            let diff = step
                .top
                .iter()
                .map(|&(id, value)| (logits[id as usize] - value).abs())
                .fold(0.0, f32::max);
            assert!(
                diff <= 5e-4,
                "{} step {k}: top logits max abs diff {diff}",
                case.name
            );
        }
        let output = greedy(model, &case.input_ids, case.greedy_max_new_tokens);
        assert_eq!(output.tokens, case.greedy_ids, "{}: greedy ids", case.name);
    }
}

#[test]
fn smollm2_chat_knows_paris() {
    let Some(model) = smollm2(1) else { return };
    let messages = [ChatMessage::user("What is the capital of France?")];
    let text = model
        .tokenizer
        .apply_chat_template(&messages, true)
        .unwrap();
    let prompt = model.tokenizer.encode(&text).unwrap();
    let output = greedy(model, &prompt, 32);
    assert!(output.text.contains("Paris"), "reply: {:?}", output.text);
}

#[test]
fn smollm2_stage_cuts_agree() {
    // The 135M model cut into 1, 2 and 3 stages (scripts/prepare_smollm2.sh).
    let (Some(one), Some(_), Some(_)) = (smollm2(1), smollm2(2), smollm2(3)) else {
        return;
    };
    let cuts = stage_cuts(&models_dir().join(SMOLLM2));
    assert!(cuts.starts_with(&[1, 2, 3]), "found stage cuts {cuts:?}");
    for case in fixtures(SMOLLM2).cases {
        let reference = greedy(one, &case.input_ids, case.greedy_max_new_tokens);
        for &n in &cuts[1..] {
            let Some(model) = smollm2(n) else { return };
            assert_eq!(model.pipeline.stages().len(), n);
            let output = greedy(model, &case.input_ids, case.greedy_max_new_tokens);
            assert_eq!(output.tokens, reference.tokens, "{}: {n} stages", case.name);
        }
    }
}
