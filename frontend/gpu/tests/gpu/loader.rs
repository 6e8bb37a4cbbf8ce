//! The browser's load path natively, on tiny-llama: the model assembled
//! from its chunks (re-cut small, as the task manager serves a model
//! uploaded with a small chunk size) chats exactly as the tract engine on
//! the model directory; bad, missing and out-of-order chunks are refused
//! with what went wrong.

use std::path::Path;
use std::sync::Arc;

use engine::{ChatMessage, ChunkMeta, Manifest, ModelDir, SamplingParams};
use gpu::{block_on, ChatModel, Flow, GpuError, ModelLoader};

use crate::gpu;

const QUESTION: &str = "What is the capital of France?";
const CHUNK_SIZE: u64 = 8192;

/// tiny-llama's files, the manifest re-cut into `chunk_size` pieces.
struct Rechunked {
    dir: ModelDir,
    manifest: Manifest,
    json: Vec<u8>,
}

fn rechunked(chunk_size: u64) -> Rechunked {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/tiny-llama/stages-1");
    let dir = ModelDir::read(&path).unwrap();
    let mut manifest = dir.manifest.clone();
    manifest.chunk_size = chunk_size;
    for (stage, bytes) in manifest.stages.iter_mut().zip(&dir.stage_files) {
        stage.chunks = bytes
            .chunks(chunk_size as usize)
            .enumerate()
            .map(|(i, c)| ChunkMeta {
                offset: i as u64 * chunk_size,
                size: c.len() as u64,
                sha256: engine::manifest::sha256_hex(c),
            })
            .collect();
    }
    let json = manifest.to_json().unwrap();
    assert_eq!(Manifest::from_json(&json).unwrap(), manifest);
    Rechunked {
        dir,
        manifest,
        json,
    }
}

impl Rechunked {
    fn stage_chunk(&self, stage: usize, index: usize) -> &[u8] {
        let c = &self.manifest.stages[stage].chunks[index];
        &self.dir.stage_files[stage][c.offset as usize..(c.offset + c.size) as usize]
    }

    fn tokenizer_pieces(&self) -> Vec<&[u8]> {
        self.dir
            .tokenizer_json
            .chunks(self.manifest.chunk_size as usize)
            .collect()
    }

    /// A loader with every piece added, in order.
    fn fed(&self) -> ModelLoader {
        let mut loader = ModelLoader::new(&self.json).unwrap();
        let pieces = self.tokenizer_pieces();
        assert_eq!(loader.tokenizer_chunks(), pieces.len());
        for (i, p) in pieces.iter().enumerate() {
            loader.add_tokenizer_chunk(i, p).unwrap();
        }
        for (s, stage) in self.manifest.stages.iter().enumerate() {
            for i in 0..stage.chunks.len() {
                loader
                    .add_stage_chunk(s, i, self.stage_chunk(s, i))
                    .unwrap();
            }
        }
        loader
    }
}

#[test]
fn a_model_from_its_chunks_chats_as_the_tract_engine() {
    let model = rechunked(CHUNK_SIZE);
    assert!(
        model.manifest.stages[0].chunks.len() > 1,
        "the stage comes in several chunks"
    );
    let mut chat = ChatModel::new(gpu(), model.fed().finish().unwrap(), None).unwrap();
    assert_eq!(chat.manifest().name, model.manifest.name);

    let messages = [ChatMessage::user(QUESTION)];
    let prompt = chat.encode(&messages).unwrap();
    let tokenizer = Arc::new(model.dir.tokenizer().unwrap());
    assert_eq!(prompt, tokenizer.encode_chat(&messages, true).unwrap());

    let params = SamplingParams::greedy(24);
    let want = engine::generate(
        Arc::new(model.dir.pipeline().unwrap()),
        tokenizer,
        prompt.clone(),
        params.clone(),
    )
    .unwrap();
    let mut streamed = String::new();
    let got = block_on(chat.generate(&prompt, &params, |step| {
        streamed.push_str(&step.text_delta);
        Flow::Continue
    }))
    .unwrap();
    assert_eq!(got.tokens, want.tokens);
    assert_eq!(got.text, want.text);
    assert_eq!(streamed, want.text);
    assert_eq!(got.finish_reason, Some(want.finish_reason));

    // Cancelled after two steps; the next generation starts afresh.
    let mut steps = 0;
    let cancelled = block_on(chat.generate(&prompt, &params, |_| {
        steps += 1;
        if steps == 2 {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    }))
    .unwrap();
    assert_eq!(cancelled.finish_reason, None);
    assert_eq!(cancelled.tokens, want.tokens[..2]);
    let again = block_on(chat.generate(&prompt, &params, |_| Flow::Continue)).unwrap();
    assert_eq!(again.tokens, want.tokens);
}

#[test]
fn bad_chunks_are_refused() {
    let model = rechunked(CHUNK_SIZE);
    let mut loader = ModelLoader::new(&model.json).unwrap();

    // A damaged chunk fails its SHA-256.
    let mut damaged = model.stage_chunk(0, 0).to_vec();
    damaged[100] ^= 1;
    let err = loader.add_stage_chunk(0, 0, &damaged).unwrap_err();
    assert!(
        matches!(err, GpuError::Engine(engine::Error::HashMismatch { .. })),
        "{err}"
    );
    // Out of order.
    let err = loader
        .add_stage_chunk(0, 1, model.stage_chunk(0, 1))
        .unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::Engine(engine::Error::ChunkOrder {
                expected: 0,
                found: 1,
                ..
            })
        ),
        "{err}"
    );
    // A stage the manifest does not have.
    let err = loader
        .add_stage_chunk(7, 0, model.stage_chunk(0, 0))
        .unwrap_err();
    assert!(matches!(err, GpuError::Engine(_)), "{err}");
    // A tokenizer piece of the wrong size, or past the end.
    let err = loader.add_tokenizer_chunk(0, b"{}").unwrap_err();
    assert!(
        matches!(err, GpuError::Engine(engine::Error::SizeMismatch { .. })),
        "{err}"
    );
    let pieces = model.tokenizer_pieces();
    let err = loader
        .add_tokenizer_chunk(pieces.len(), pieces[0])
        .unwrap_err();
    assert!(
        matches!(err, GpuError::Engine(engine::Error::ChunkOrder { .. })),
        "{err}"
    );

    // Finished with a chunk missing.
    let mut loader = ModelLoader::new(&model.json).unwrap();
    for (i, p) in pieces.iter().enumerate() {
        loader.add_tokenizer_chunk(i, p).unwrap();
    }
    loader
        .add_stage_chunk(0, 0, model.stage_chunk(0, 0))
        .unwrap();
    let err = loader.finish().unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::Engine(engine::Error::Incomplete { received: 1, .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("stage 0 is incomplete: 1 of "),
        "{err}"
    );

    // Without the tokenizer.
    let mut loader = ModelLoader::new(&model.json).unwrap();
    for i in 0..model.manifest.stages[0].chunks.len() {
        loader
            .add_stage_chunk(0, i, model.stage_chunk(0, i))
            .unwrap();
    }
    let err = loader.finish().unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::Engine(engine::Error::Incomplete { received: 0, .. })
        ),
        "{err}"
    );

    // Not a manifest.
    assert!(ModelLoader::new(b"{\"name\": 1}").is_err());
}
