//! The browser API's engine side on tiny-llama, natively: the model built
//! from its chunks answers exactly as the engine on the model directory,
//! bad chunks are refused, seeds reproduce, cancel stops between tokens.

use std::sync::Arc;

use engine::{ChatMessage, ChunkMeta, Manifest, ModelDir, SamplingParams};
use engine_web::{parse_messages, seed_or_random, ModelLoader, Settings, WebError};

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/tiny-llama/stages-1"
);
const QUESTION: &str = "What is the capital of France?";

/// The model directory with its files re-cut into `chunk_size` pieces (the
/// committed manifest has one chunk per file), as the task manager would
/// serve a model uploaded with that chunk size.
struct Rechunked {
    manifest: Manifest,
    json: Vec<u8>,
    tokenizer: Vec<u8>,
    stages: Vec<Vec<u8>>,
}

fn rechunked(chunk_size: u64) -> Rechunked {
    let dir = ModelDir::read(MODEL).unwrap();
    let mut manifest = dir.manifest.clone();
    manifest.chunk_size = chunk_size;
    for (stage, bytes) in manifest.stages.iter_mut().zip(&dir.stage_files) {
        stage.chunks = bytes
            .chunks(chunk_size as usize)
            .enumerate()
            .map(|(i, c)| ChunkMeta {
                offset: i as u64 * chunk_size,
                size: c.len() as u64,
                sha256: model_format_sha(c),
            })
            .collect();
    }
    let json = manifest.to_json().unwrap();
    // The re-cut manifest is valid.
    assert_eq!(Manifest::from_json(&json).unwrap(), manifest);
    Rechunked {
        manifest,
        json,
        tokenizer: dir.tokenizer_json.clone(),
        stages: dir.stage_files.clone(),
    }
}

fn model_format_sha(bytes: &[u8]) -> String {
    engine::manifest::sha256_hex(bytes)
}

fn feed(model: &Rechunked) -> ModelLoader {
    let size = model.manifest.chunk_size as usize;
    let mut loader = ModelLoader::new(&model.json).unwrap();
    assert_eq!(
        loader.tokenizer_chunks(),
        model.tokenizer.len().div_ceil(size)
    );
    for (i, c) in model.tokenizer.chunks(size).enumerate() {
        loader.add_tokenizer_chunk(i, c).unwrap();
    }
    for (s, bytes) in model.stages.iter().enumerate() {
        for (i, c) in bytes.chunks(size).enumerate() {
            loader.add_stage_chunk(s, i, c).unwrap();
        }
    }
    loader
}

/// What the engine itself generates on the model directory.
fn native(messages: &[ChatMessage], params: SamplingParams) -> engine::Output {
    let dir = ModelDir::read(MODEL).unwrap();
    let tokenizer = Arc::new(dir.tokenizer().unwrap());
    let prompt = tokenizer.encode_chat(messages, true).unwrap();
    engine::generate(Arc::new(dir.pipeline().unwrap()), tokenizer, prompt, params).unwrap()
}

fn greedy(max_new_tokens: usize) -> Settings {
    Settings {
        max_new_tokens,
        temperature: 0.0,
        top_p: 1.0,
        seed: [0; 32],
    }
}

#[test]
fn model_from_chunks_answers_as_the_engine_does() {
    let model = rechunked(4096);
    assert!(model.manifest.stages[0].chunks.len() > 100);
    let loaded = feed(&model).finish().unwrap();
    assert_eq!(loaded.manifest().name, "tiny-llama");
    let messages =
        parse_messages(&format!(r#"[{{"role":"user","content":"{QUESTION}"}}]"#)).unwrap();
    let mut run = loaded.start(&messages, &greedy(24)).unwrap();
    let mut pieces = Vec::new();
    engine_web::model::run_to_end(&mut run, |t| {
        pieces.push(t.to_string());
        true
    })
    .unwrap();
    let expected = native(&[ChatMessage::user(QUESTION)], SamplingParams::greedy(24));
    assert_eq!(run.tokens(), expected.tokens.as_slice());
    assert_eq!(run.text(), expected.text);
    assert_eq!(
        pieces.concat(),
        expected.text,
        "the streamed pieces make the text"
    );
    assert_eq!(
        pieces.len(),
        expected.tokens.len(),
        "one callback per token"
    );
    let reason = match expected.finish_reason {
        engine::FinishReason::Eos => "eos",
        engine::FinishReason::MaxNewTokens => "max-new-tokens",
        other => panic!("unexpected finish {other:?}"),
    };
    assert_eq!(run.finish_reason(), Some(reason));
    assert!(run.prompt_tokens() > 10);
    assert_eq!(
        run.step().unwrap(),
        None,
        "a finished run gives nothing more"
    );
}

#[test]
fn corrupt_or_misplaced_chunks_are_refused() {
    let model = rechunked(65536);
    let size = 65536;
    let mut loader = ModelLoader::new(&model.json).unwrap();
    let first = &model.stages[0][..size];
    let mut corrupt = first.to_vec();
    corrupt[100] ^= 1;
    match loader.add_stage_chunk(0, 0, &corrupt) {
        Err(WebError::Engine(engine::Error::HashMismatch { what, .. })) => {
            assert_eq!(what, "stage 0 chunk 0")
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    match loader.add_stage_chunk(0, 0, &first[..size - 1]) {
        Err(WebError::Engine(engine::Error::SizeMismatch {
            expected, found, ..
        })) => {
            assert_eq!((expected, found), (size as u64, size as u64 - 1))
        }
        other => panic!("expected a size mismatch, got {other:?}"),
    }
    // A valid chunk in the wrong place.
    let second = &model.stages[0][size..2 * size];
    assert_eq!(
        loader.add_stage_chunk(0, 1, second),
        Err(WebError::Engine(engine::Error::ChunkOrder {
            file: "stage 0".into(),
            expected: 0,
            found: 1
        }))
    );
    assert!(matches!(
        loader.add_stage_chunk(1, 0, first),
        Err(WebError::Engine(engine::Error::StageOutOfRange {
            stage: 1,
            stages: 1
        }))
    ));
    // Refusals changed nothing: the right chunk still goes in.
    loader.add_stage_chunk(0, 0, first).unwrap();
    assert_eq!(
        loader.add_tokenizer_chunk(0, &model.tokenizer[1..]),
        Err(WebError::Engine(engine::Error::SizeMismatch {
            what: "tokenizer chunk 0".into(),
            expected: model.tokenizer.len() as u64,
            found: model.tokenizer.len() as u64 - 1,
        }))
    );
    assert_eq!(
        loader.add_tokenizer_chunk(1, &model.tokenizer),
        Err(WebError::Engine(engine::Error::ChunkOrder {
            file: "tokenizer".into(),
            expected: 0,
            found: 1
        }))
    );
    loader.add_tokenizer_chunk(0, &model.tokenizer).unwrap();
    assert_eq!(
        loader.add_tokenizer_chunk(1, b"x"),
        Err(WebError::Engine(engine::Error::TokenizerChunkOutOfRange {
            chunk: 1,
            chunks: 1
        }))
    );
    // Not every chunk arrived.
    let chunks = model.manifest.stages[0].chunks.len();
    assert_eq!(
        loader.finish().unwrap_err(),
        WebError::Engine(engine::Error::Incomplete {
            file: "stage 0".into(),
            received: 1,
            expected: chunks
        })
    );
}

#[test]
fn a_tokenizer_other_than_the_manifests_is_refused() {
    let mut model = rechunked(1 << 20);
    // Same size, other bytes: the whole file's SHA-256 catches it.
    let at = model.tokenizer.len() / 2;
    model.tokenizer[at] = if model.tokenizer[at] == b' ' {
        b'\t'
    } else {
        b' '
    };
    match feed(&model).finish() {
        Err(WebError::Engine(engine::Error::HashMismatch { what, .. })) => {
            assert_eq!(what, "tokenizer (tokenizer.json)")
        }
        other => panic!("expected a hash mismatch, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_seed_reproduces_the_engines_sampled_tokens() {
    let model = feed(&rechunked(1 << 20)).finish().unwrap();
    let settings = Settings {
        max_new_tokens: 32,
        temperature: 0.9,
        top_p: 0.95,
        seed: [7; 32],
    };
    let messages = [ChatMessage::user("Tell me a story.")];
    let run = |s: &Settings| {
        let mut run = model.start(&messages, s).unwrap();
        engine_web::model::run_to_end(&mut run, |_| true).unwrap();
        run.tokens().to_vec()
    };
    let first = run(&settings);
    assert_eq!(run(&settings), first, "the same seed, the same tokens");
    let expected = native(
        &messages,
        SamplingParams {
            temperature: 0.9,
            top_p: 0.95,
            max_new_tokens: 32,
            seed: [7; 32],
            ..SamplingParams::default()
        },
    );
    assert_eq!(
        first, expected.tokens,
        "as the engine samples with that seed"
    );
    assert_eq!(seed_or_random(Some(vec![7; 32])).unwrap(), [7; 32]);
    assert_eq!(
        seed_or_random(Some(vec![7; 31])),
        Err(WebError::SeedLength { found: 31 })
    );
    assert_eq!(seed_or_random(None).unwrap().len(), 32);
}

#[test]
fn cancel_stops_between_tokens() {
    let model = feed(&rechunked(1 << 20)).finish().unwrap();
    let messages = [ChatMessage::user("k")];
    let mut run = model.start(&messages, &greedy(100)).unwrap();
    let mut seen = 0;
    engine_web::model::run_to_end(&mut run, |_| {
        seen += 1;
        seen < 3
    })
    .unwrap();
    assert_eq!(seen, 3);
    assert_eq!(run.generated_tokens(), 3);
    assert_eq!(run.finish_reason(), Some("cancelled"));
    assert!(run.is_done());
    assert_eq!(run.step().unwrap(), None);
    // The text so far is the engine's first three tokens' text.
    let expected = native(&messages, SamplingParams::greedy(3));
    assert_eq!(run.tokens(), expected.tokens.as_slice());
}

#[test]
fn bad_requests_are_refused_in_words() {
    let model = feed(&rechunked(1 << 20)).finish().unwrap();
    let e = parse_messages(r#"[{"role":"user"}]"#).unwrap_err();
    assert!(matches!(e, WebError::Messages(_)), "{e}");
    assert!(e.to_string().contains("missing field `content`"), "{e}");
    let e = model
        .start(
            &[ChatMessage::user("hi")],
            &Settings {
                top_p: 0.0,
                ..greedy(4)
            },
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid sampling parameters: top_p must be in (0, 1], found 0"
    );
    assert!(ModelLoader::new(b"{}").is_err());
}
