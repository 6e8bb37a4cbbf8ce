//! The engine's own llama forward pass (`engine::llama`): weights read from
//! the committed tiny model's stages and from SmolLM2-135M's when it has
//! been prepared (`scripts/prepare_smollm2.sh`).
//!
//! SmolLM2 tests print a notice and pass when the model is missing, unless
//! `ENGINE_REQUIRE_SMOLLM2=1` (CI), in which case they fail.

use std::path::{Path, PathBuf};

use engine::llama::{LmHead, StageWeights, WeightsError};
use engine::{Error, Manifest, ModelDir};
use tract_onnx::prelude::Framework;

// ---------------------------------------------------------------- helpers

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn tiny_dir(stages: usize) -> PathBuf {
    models_dir().join(format!("tiny-llama/stages-{stages}"))
}

/// SmolLM2 with `stages` stages, or `None` (after a notice) when it has not
/// been prepared and `ENGINE_REQUIRE_SMOLLM2` is not set.
fn smollm2_dir(stages: usize) -> Option<PathBuf> {
    let path = models_dir()
        .join("smollm2-135m-instruct")
        .join(format!("stages-{stages}"));
    if path.join("manifest.json").exists() {
        return Some(path);
    }
    let required = std::env::var("ENGINE_REQUIRE_SMOLLM2").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "ENGINE_REQUIRE_SMOLLM2=1 but {} is missing: run scripts/prepare_smollm2.sh",
        path.display()
    );
    eprintln!(
        "notice: {} is missing, skipping (run scripts/prepare_smollm2.sh)",
        path.display()
    );
    None
}

fn read_dir(path: &Path) -> ModelDir {
    ModelDir::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every float initializer of an ONNX file as tract's own protobuf decoder
/// reads it: name → (dims, little-endian bytes).
fn tract_initializers(bytes: &[u8]) -> Vec<(String, Vec<i64>, Vec<u8>)> {
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .unwrap();
    proto
        .graph
        .unwrap()
        .initializer
        .into_iter()
        .filter(|t| t.data_type == 1)
        .map(|t| {
            let raw = if t.raw_data.is_empty() {
                t.float_data.iter().flat_map(|f| f.to_le_bytes()).collect()
            } else {
                t.raw_data.to_vec()
            };
            (t.name, t.dims, raw)
        })
        .collect()
}

/// Reads every stage's weights and checks them against tract's decoding of
/// the same file: each tensor the stage needs, bit for bit, and nothing else.
fn check_weights_against_tract(dir: &ModelDir) {
    let config = &dir.manifest.config;
    for (meta, bytes) in dir.manifest.stages.iter().zip(&dir.stage_files) {
        let weights = StageWeights::from_onnx(bytes, config, meta).unwrap();
        assert_eq!(weights.layers.len(), meta.num_layers());
        assert_eq!(weights.layer_start, meta.layer_start);
        assert_eq!(
            weights.embed_tokens.is_some(),
            meta.is_first() || { meta.is_last() && config.tie_word_embeddings }
        );
        assert_eq!(weights.norm.is_some(), meta.is_last());
        assert_eq!(weights.lm_head.is_some(), meta.is_last());

        let reference = tract_initializers(bytes);
        let named = weights.named_tensors();
        // 9 tensors per layer, rotary frequencies, and the embedding/norm
        // where the stage has them.
        let expected_count = 9 * meta.num_layers()
            + 1
            + usize::from(weights.embed_tokens.is_some())
            + usize::from(weights.norm.is_some());
        assert_eq!(named.len(), expected_count, "stage {}", meta.index);
        for (name, tensor) in named {
            let (_, dims, raw) = reference
                .iter()
                .find(|(n, ..)| *n == name)
                .unwrap_or_else(|| panic!("tract does not see {name}"));
            let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
            assert_eq!(tensor.shape, dims, "{name}");
            let ours: Vec<u8> = tensor.data.iter().flat_map(|f| f.to_le_bytes()).collect();
            assert!(ours == *raw, "{name}: values differ from tract's decoding");
            assert!(tensor.data.iter().all(|v| v.is_finite()), "{name}");
            assert!(tensor.data.iter().any(|&v| v != 0.0), "{name} is all zeros");
        }
    }
}

fn stage_weights(dir: &ModelDir) -> Vec<StageWeights> {
    let config = &dir.manifest.config;
    dir.manifest
        .stages
        .iter()
        .zip(&dir.stage_files)
        .map(|(meta, bytes)| StageWeights::from_onnx(bytes, config, meta).unwrap())
        .collect()
}

/// The layers of a cut model are the same tensors as the whole model's.
fn check_cut_matches_whole(whole: &[StageWeights], cut: &[StageWeights]) {
    let whole = &whole[0];
    for stage in cut {
        for (i, layer) in stage.layers.iter().enumerate() {
            assert_eq!(
                *layer,
                whole.layers[stage.layer_start + i],
                "layer {}",
                stage.layer_start + i
            );
        }
        assert_eq!(stage.rope_inv_freq, whole.rope_inv_freq);
        if stage.norm.is_some() {
            assert_eq!(stage.norm, whole.norm);
            assert_eq!(stage.lm_head, whole.lm_head);
        }
        if stage.embed_tokens.is_some() {
            assert_eq!(stage.embed_tokens, whole.embed_tokens);
        }
    }
}

// ---------------------------------------------------------------- weights

#[test]
fn weights_of_tiny_stages_match_tract_and_each_other() {
    let whole = read_dir(&tiny_dir(1));
    let cut = read_dir(&tiny_dir(2));
    check_weights_against_tract(&whole);
    check_weights_against_tract(&cut);
    let whole = stage_weights(&whole);
    let cut = stage_weights(&cut);
    assert_eq!(whole[0].lm_head, Some(LmHead::Tied));
    check_cut_matches_whole(&whole, &cut);
}

#[test]
fn weights_of_smollm2_stages_match_tract_and_each_other() {
    let (Some(one), Some(three)) = (smollm2_dir(1), smollm2_dir(3)) else {
        return;
    };
    let three = read_dir(&three);
    check_weights_against_tract(&three);
    let cut = stage_weights(&three);
    drop(three);
    let whole = stage_weights(&read_dir(&one));
    let config = Manifest::from_json(&std::fs::read(one.join("manifest.json")).unwrap())
        .unwrap()
        .config;
    assert_eq!(whole[0].layers.len(), config.num_layers);
    assert_eq!(
        whole[0].num_values(),
        // SmolLM2-135M: 134.5 M parameters (tied head) plus 32 frequencies.
        config.vocab_size * config.hidden_size
            + config.num_layers
                * (2 * config.hidden_size
                    + config.hidden_size * config.num_attention_heads * config.head_dim * 2
                    + config.hidden_size * config.num_kv_heads * config.head_dim * 2
                    + 3 * config.hidden_size * config.intermediate_size)
            + config.hidden_size
            + config.head_dim / 2
    );
    check_cut_matches_whole(&whole, &cut);
}

#[test]
fn weights_errors_are_typed() {
    let dir = read_dir(&tiny_dir(2));
    let config = &dir.manifest.config;
    let (meta, bytes) = (&dir.manifest.stages[1], &dir.stage_files[1]);

    // A stage file that does not hold the layers the manifest says.
    let mut wrong_layers = meta.clone();
    wrong_layers.layer_start = 0;
    assert_eq!(
        StageWeights::from_onnx(bytes, config, &wrong_layers),
        Err(Error::Weights(WeightsError::MissingTensor {
            stage: 1,
            name: "model.layers.0.input_layernorm.weight".into()
        }))
    );

    // A config that disagrees with the tensors.
    let mut wider = config.clone();
    wider.intermediate_size += 1;
    match StageWeights::from_onnx(bytes, &wider, meta) {
        Err(Error::Weights(WeightsError::Shape {
            name,
            expected,
            found,
        })) => {
            assert_eq!(name, "model.layers.1.mlp.gate_proj.weight.T");
            assert_eq!(expected, vec![64, 129]);
            assert_eq!(found, vec![64, 128]);
        }
        other => panic!("expected a shape error, found {other:?}"),
    }

    // An untied model needs its own head.
    let mut untied = config.clone();
    untied.tie_word_embeddings = false;
    assert!(matches!(
        StageWeights::from_onnx(bytes, &untied, meta),
        Err(Error::Weights(WeightsError::MissingTensor { name, .. })) if name == "lm_head.weight.T"
    ));

    // Truncated bytes: an error, never a panic.
    for len in [0, 1, 100, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            matches!(
                StageWeights::from_onnx(&bytes[..len], config, meta),
                Err(Error::Weights(
                    WeightsError::Protobuf { .. } | WeightsError::MissingTensor { .. }
                ))
            ),
            "prefix of {len} bytes"
        );
    }
}
