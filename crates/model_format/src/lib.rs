//! `manifest.json`: what a deployed model directory holds, and integrity checks.
//!
//! The format is specified in `docs/model-format.md`. [`Manifest::from_json`]
//! parses *and validates* a manifest: after it succeeds, stage indices and
//! layer ranges are contiguous and cover the model, every stage declares the
//! inputs and outputs of its layers, and chunks cover each stage file exactly.
//! [`Manifest::verify_chunk`] and [`Manifest::verify_stage`] check bytes
//! against the recorded sizes and SHA-256 hashes, which is what a canister
//! does when a chunk is uploaded or pulled.
//!
//! This crate has no inference dependencies, so that canisters that only
//! store and serve models (the task manager) can validate manifests without
//! linking tract; `engine` re-exports it as `engine::manifest`.
//!
//! ```no_run
//! # fn main() -> model_format::Result<()> {
//! let json = std::fs::read("models/tiny-llama/stages-1/manifest.json").unwrap_or_default();
//! let manifest = model_format::Manifest::from_json(&json)?;
//! println!("{} has {} stage(s)", manifest.name, manifest.stages.len());
//! # Ok(()) }
//! ```

mod error;
pub mod prepared;
pub use error::{FormatError, Result};

/// Limits of a generation request that the engine enforces and the
/// canisters check before a request is queued.
pub mod limits {
    /// Most stop sequences a request may carry.
    pub const MAX_STOP_SEQUENCES: usize = 16;
    /// Longest stop sequence, in bytes.
    pub const MAX_STOP_SEQUENCE_BYTES: usize = 256;
}

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::FormatError as Error;

/// The manifest `format_version` this engine reads.
pub const FORMAT_VERSION: u32 = 1;

/// Architectures (HF `model_type`) the engine can run.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

/// Upper bound of `chunk_size`: chunks must fit in one IC message.
pub const MAX_CHUNK_SIZE: u64 = 1 << 20;

/// Graph input carrying token ids (first stage only).
pub const INPUT_IDS: &str = "input_ids";
/// Graph input carrying the attention mask over past + new positions.
pub const ATTENTION_MASK: &str = "attention_mask";
/// Graph input carrying the absolute positions of the new tokens.
pub const POSITION_IDS: &str = "position_ids";
/// Hidden states entering a stage (every stage but the first).
pub const HIDDEN_STATES: &str = "hidden_states";
/// Hidden states leaving a stage (every stage but the last). ONNX value names
/// are unique within a graph, so a middle stage cannot name its output like
/// its input.
pub const HIDDEN_STATES_OUT: &str = "hidden_states_out";
/// Output of the last stage.
pub const LOGITS: &str = "logits";

/// Name of the past key (`kind = "key"`) or value (`"value"`) input of a layer.
pub fn past_name(layer: usize, kind: &str) -> String {
    format!("past_key_values.{layer}.{kind}")
}

/// Name of the present key or value output of a layer.
pub fn present_name(layer: usize, kind: &str) -> String {
    format!("present.{layer}.{kind}")
}

/// The parsed `manifest.json` of a deployed model directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub name: String,
    /// HF `model_type`; see [`SUPPORTED_ARCHITECTURES`].
    pub architecture: String,
    pub config: ModelConfig,
    pub tokenizer: FileMeta,
    pub special_tokens: SpecialTokens,
    /// Jinja chat template (HF semantics); `None` when the model has none.
    #[serde(default)]
    pub chat_template: Option<String>,
    pub chunk_size: u64,
    pub stages: Vec<StageMeta>,
}

/// Hyper-parameters of the decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub num_layers: usize,
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub tie_word_embeddings: bool,
}

/// A file of the model directory with its size and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

/// Special tokens the engine needs to know about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialTokens {
    pub bos: Option<SpecialToken>,
    /// Generation ends at any of these.
    #[serde(default)]
    pub eos: Vec<SpecialToken>,
    pub pad: Option<SpecialToken>,
}

/// One special token: its id and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialToken {
    pub id: u32,
    pub text: String,
}

/// How a stage file stores its stage (`format` in a stage's entry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StageFormat {
    /// An ONNX graph with `f32` weights, run on tract. The default: a stage
    /// entry without `format` is one.
    #[default]
    #[serde(rename = "onnx-f32")]
    OnnxF32,
    /// The engine's own llama stage file with 8-bit weights (per block of
    /// 32 values, one `f32` scale each), written by `icllm quantize`.
    #[serde(rename = "q8")]
    Q8,
}

impl StageFormat {
    /// Whether this is the default, [`StageFormat::OnnxF32`].
    pub fn is_onnx_f32(&self) -> bool {
        *self == StageFormat::OnnxF32
    }
}

/// One stage: a contiguous range of decoder layers in its own file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageMeta {
    pub index: usize,
    pub file: String,
    /// How `file` stores the stage; absent (and not written) for ONNX `f32`,
    /// so manifests written before it existed keep their meaning and bytes.
    #[serde(default, skip_serializing_if = "StageFormat::is_onnx_f32")]
    pub format: StageFormat,
    pub layer_start: usize,
    pub layer_end: usize,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub size: u64,
    pub sha256: String,
    pub chunks: Vec<ChunkMeta>,
}

/// One chunk of a stage file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMeta {
    pub offset: u64,
    pub size: u64,
    pub sha256: String,
}

impl StageMeta {
    /// Whether this stage embeds tokens (takes `input_ids`).
    pub fn is_first(&self) -> bool {
        self.index == 0
    }

    /// Whether this stage produces logits.
    pub fn is_last(&self) -> bool {
        self.outputs.iter().any(|o| o == LOGITS)
    }

    /// Number of decoder layers in this stage.
    pub fn num_layers(&self) -> usize {
        self.layer_end.saturating_sub(self.layer_start)
    }
}

impl Manifest {
    /// Parses and validates `manifest.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| Error::ManifestJson(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Serialises the manifest (pretty-printed JSON).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::ManifestJson(e.to_string()))
    }

    /// The stage with this index.
    pub fn stage(&self, stage: usize) -> Result<&StageMeta> {
        self.stages.get(stage).ok_or(Error::StageOutOfRange {
            stage,
            stages: self.stages.len(),
        })
    }

    /// Checks one uploaded/pulled chunk of a stage file: size and SHA-256.
    pub fn verify_chunk(&self, stage: usize, chunk_index: usize, bytes: &[u8]) -> Result<()> {
        let meta = self.stage(stage)?;
        let chunk = meta.chunks.get(chunk_index).ok_or(Error::ChunkOutOfRange {
            stage,
            chunk: chunk_index,
            chunks: meta.chunks.len(),
        })?;
        let what = format!("stage {stage} chunk {chunk_index}");
        check_size(&what, chunk.size, bytes)?;
        check_sha256(&what, &chunk.sha256, bytes)
    }

    /// Checks a whole stage file: size and SHA-256.
    pub fn verify_stage(&self, stage: usize, bytes: &[u8]) -> Result<()> {
        let meta = self.stage(stage)?;
        let what = format!("stage {stage} ({})", meta.file);
        check_size(&what, meta.size, bytes)?;
        check_sha256(&what, &meta.sha256, bytes)
    }

    /// Checks the tokenizer file: size and SHA-256.
    pub fn verify_tokenizer(&self, bytes: &[u8]) -> Result<()> {
        let what = format!("tokenizer ({})", self.tokenizer.file);
        check_size(&what, self.tokenizer.size, bytes)?;
        check_sha256(&what, &self.tokenizer.sha256, bytes)
    }

    /// Ids at which generation stops.
    pub fn eos_ids(&self) -> Vec<u32> {
        self.special_tokens.eos.iter().map(|t| t.id).collect()
    }

    fn validate(&self) -> Result<()> {
        if self.format_version != FORMAT_VERSION {
            return Err(Error::UnsupportedFormatVersion {
                expected: FORMAT_VERSION,
                found: self.format_version,
            });
        }
        if !SUPPORTED_ARCHITECTURES.contains(&self.architecture.as_str()) {
            return Err(Error::UnknownArchitecture {
                found: self.architecture.clone(),
                supported: SUPPORTED_ARCHITECTURES,
            });
        }
        self.validate_config()?;
        validate_file_name("tokenizer file", &self.tokenizer.file)?;
        validate_hash("tokenizer sha256", &self.tokenizer.sha256)?;
        let special = &self.special_tokens;
        for token in special.bos.iter().chain(&special.eos).chain(&special.pad) {
            if token.id as usize >= self.config.vocab_size {
                return Err(invalid(format!(
                    "special token {:?} has id {}, expected < vocab_size {}",
                    token.text, token.id, self.config.vocab_size
                )));
            }
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(invalid(format!(
                "chunk_size must be in 1..={MAX_CHUNK_SIZE}, found {}",
                self.chunk_size
            )));
        }
        if self.stages.is_empty() {
            return Err(invalid("expected at least one stage, found none".into()));
        }
        let mut next_layer = 0;
        for (position, stage) in self.stages.iter().enumerate() {
            if stage.index != position {
                return Err(invalid(format!(
                    "stage at position {position} has index {}, expected {position}",
                    stage.index
                )));
            }
            if stage.layer_start != next_layer || stage.layer_end <= stage.layer_start {
                return Err(invalid(format!(
                    "stage {position} covers layers [{}, {}), expected a non-empty range starting at {next_layer}",
                    stage.layer_start, stage.layer_end
                )));
            }
            next_layer = stage.layer_end;
            let last = position + 1 == self.stages.len();
            self.validate_stage_io(stage, last)?;
            self.validate_chunks(stage)?;
        }
        if next_layer != self.config.num_layers {
            return Err(invalid(format!(
                "stages cover layers [0, {next_layer}), expected [0, {})",
                self.config.num_layers
            )));
        }
        Ok(())
    }

    fn validate_config(&self) -> Result<()> {
        let c = &self.config;
        let dims = [
            ("num_layers", c.num_layers),
            ("hidden_size", c.hidden_size),
            ("num_attention_heads", c.num_attention_heads),
            ("num_kv_heads", c.num_kv_heads),
            ("head_dim", c.head_dim),
            ("intermediate_size", c.intermediate_size),
            ("vocab_size", c.vocab_size),
            ("max_position_embeddings", c.max_position_embeddings),
        ];
        for (name, value) in dims {
            if value == 0 {
                return Err(invalid(format!("config.{name} must be > 0, found 0")));
            }
        }
        if !c.num_attention_heads.is_multiple_of(c.num_kv_heads) {
            return Err(invalid(format!(
                "config.num_attention_heads ({}) must be a multiple of num_kv_heads ({})",
                c.num_attention_heads, c.num_kv_heads
            )));
        }
        if c.vocab_size > u32::MAX as usize {
            return Err(invalid(format!(
                "config.vocab_size must fit in u32, found {}",
                c.vocab_size
            )));
        }
        Ok(())
    }

    fn validate_stage_io(&self, stage: &StageMeta, last: bool) -> Result<()> {
        let i = stage.index;
        validate_file_name(&format!("stage {i} file"), &stage.file)?;
        let has_input = |name: &str| stage.inputs.iter().any(|n| n == name);
        let has_output = |name: &str| stage.outputs.iter().any(|n| n == name);
        let (entry, not_entry) = if stage.is_first() {
            (INPUT_IDS, HIDDEN_STATES)
        } else {
            (HIDDEN_STATES, INPUT_IDS)
        };
        if !has_input(entry) || has_input(not_entry) {
            return Err(invalid(format!(
                "stage {i} must take {entry:?} and not {not_entry:?}, found inputs {:?}",
                stage.inputs
            )));
        }
        let (exit, not_exit) = if last {
            (LOGITS, HIDDEN_STATES_OUT)
        } else {
            (HIDDEN_STATES_OUT, LOGITS)
        };
        if !has_output(exit) || has_output(not_exit) {
            return Err(invalid(format!(
                "stage {i} must output {exit:?} and not {not_exit:?}, found outputs {:?}",
                stage.outputs
            )));
        }
        let layers = stage.layer_start..stage.layer_end;
        for layer in layers.clone() {
            for kind in ["key", "value"] {
                let past = past_name(layer, kind);
                let present = present_name(layer, kind);
                if !has_input(&past) || !has_output(&present) {
                    return Err(invalid(format!(
                        "stage {i} must take {past:?} and output {present:?}"
                    )));
                }
            }
        }
        let known_input = |name: &str| {
            matches!(
                name,
                INPUT_IDS | HIDDEN_STATES | ATTENTION_MASK | POSITION_IDS
            ) || parse_kv_name(name, "past_key_values").is_some_and(|(l, _)| layers.contains(&l))
        };
        let known_output = |name: &str| {
            matches!(name, LOGITS | HIDDEN_STATES_OUT)
                || parse_kv_name(name, "present").is_some_and(|(l, _)| layers.contains(&l))
        };
        for (what, names, known) in [
            (
                "input",
                &stage.inputs,
                &known_input as &dyn Fn(&str) -> bool,
            ),
            ("output", &stage.outputs, &known_output),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            for name in names {
                if !seen.insert(name) {
                    return Err(invalid(format!("stage {i} lists {what} {name:?} twice")));
                }
                if !known(name) {
                    return Err(invalid(format!(
                        "stage {i} (layers {layers:?}) has unexpected {what} {name:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    fn validate_chunks(&self, stage: &StageMeta) -> Result<()> {
        let i = stage.index;
        validate_hash(&format!("stage {i} sha256"), &stage.sha256)?;
        if stage.size == 0 {
            return Err(invalid(format!(
                "stage {i} has size 0, expected an ONNX file"
            )));
        }
        let mut offset = 0u64;
        let count = stage.chunks.len();
        for (k, chunk) in stage.chunks.iter().enumerate() {
            validate_hash(&format!("stage {i} chunk {k} sha256"), &chunk.sha256)?;
            if chunk.offset != offset {
                return Err(invalid(format!(
                    "stage {i} chunk {k} starts at {}, expected {offset}",
                    chunk.offset
                )));
            }
            let last = k + 1 == count;
            let size_ok = if last {
                chunk.size > 0 && chunk.size <= self.chunk_size
            } else {
                chunk.size == self.chunk_size
            };
            if !size_ok {
                return Err(invalid(format!(
                    "stage {i} chunk {k} has size {}, expected {} (chunk_size {})",
                    chunk.size,
                    if last { "1..=chunk_size" } else { "chunk_size" },
                    self.chunk_size
                )));
            }
            offset += chunk.size;
        }
        if offset != stage.size {
            return Err(invalid(format!(
                "stage {i} chunks cover {offset} bytes, expected the file size {}",
                stage.size
            )));
        }
        Ok(())
    }
}

/// Parses `<prefix>.<layer>.key|value` into `(layer, is_value)`.
pub fn parse_kv_name(name: &str, prefix: &str) -> Option<(usize, bool)> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('.')?;
    let (layer, kind) = rest.split_once('.')?;
    let layer = layer.parse().ok()?;
    match kind {
        "key" => Some((layer, false)),
        "value" => Some((layer, true)),
        _ => None,
    }
}

fn invalid(message: String) -> Error {
    Error::InvalidManifest(message)
}

/// File names are plain names inside the model directory.
fn validate_file_name(what: &str, name: &str) -> Result<()> {
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if plain {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} must be a plain file name, found {name:?}"
        )))
    }
}

fn validate_hash(what: &str, hash: &str) -> Result<()> {
    let ok = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} must be 64 lowercase hex digits, found {hash:?}"
        )))
    }
}

fn check_size(what: &str, expected: u64, bytes: &[u8]) -> Result<()> {
    let found = bytes.len() as u64;
    if found == expected {
        Ok(())
    } else {
        Err(Error::SizeMismatch {
            what: what.to_string(),
            expected,
            found,
        })
    }
}

fn check_sha256(what: &str, expected: &str, bytes: &[u8]) -> Result<()> {
    let found = sha256_hex(bytes);
    if found == expected {
        Ok(())
    } else {
        Err(Error::HashMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            found,
        })
    }
}

/// The chunks of a file, `chunk_size` bytes each but the last (none for an
/// empty file): what a stage entry's `chunks` records.
pub fn chunk_file(bytes: &[u8], chunk_size: u64) -> Vec<ChunkMeta> {
    let size = usize::try_from(chunk_size.max(1)).unwrap_or(usize::MAX);
    let mut offset = 0u64;
    bytes
        .chunks(size)
        .map(|chunk| {
            let meta = ChunkMeta {
                offset,
                size: chunk.len() as u64,
                sha256: sha256_hex(chunk),
            };
            offset += chunk.len() as u64;
            meta
        })
        .collect()
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(index: usize, file_size: u64, chunk_size: u64) -> Vec<ChunkMeta> {
        let mut chunks = vec![];
        let mut offset = 0;
        while offset < file_size {
            let size = chunk_size.min(file_size - offset);
            chunks.push(ChunkMeta {
                offset,
                size,
                sha256: sha256_hex(&vec![index as u8; size as usize]),
            });
            offset += size;
        }
        chunks
    }

    fn stage(index: usize, layers: std::ops::Range<usize>, last: bool, size: u64) -> StageMeta {
        let mut inputs = vec![
            if index == 0 { INPUT_IDS } else { HIDDEN_STATES }.to_string(),
            ATTENTION_MASK.to_string(),
            POSITION_IDS.to_string(),
        ];
        let mut outputs = vec![if last { LOGITS } else { HIDDEN_STATES_OUT }.to_string()];
        for l in layers.clone() {
            for kind in ["key", "value"] {
                inputs.push(past_name(l, kind));
                outputs.push(present_name(l, kind));
            }
        }
        StageMeta {
            index,
            file: format!("stage-{index}.onnx"),
            format: StageFormat::OnnxF32,
            layer_start: layers.start,
            layer_end: layers.end,
            inputs,
            outputs,
            size,
            sha256: sha256_hex(&vec![index as u8; size as usize]),
            chunks: chunked(index, size, 8),
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            format_version: 1,
            name: "test".into(),
            architecture: "llama".into(),
            config: ModelConfig {
                num_layers: 3,
                hidden_size: 8,
                num_attention_heads: 2,
                num_kv_heads: 1,
                head_dim: 4,
                intermediate_size: 16,
                vocab_size: 10,
                max_position_embeddings: 32,
                rope_theta: 10000.0,
                rms_norm_eps: 1e-5,
                tie_word_embeddings: true,
            },
            tokenizer: FileMeta {
                file: "tokenizer.json".into(),
                size: 3,
                sha256: sha256_hex(b"abc"),
            },
            special_tokens: SpecialTokens {
                bos: None,
                eos: vec![SpecialToken {
                    id: 2,
                    text: "</s>".into(),
                }],
                pad: None,
            },
            chat_template: None,
            chunk_size: 8,
            stages: vec![stage(0, 0..1, false, 20), stage(1, 1..3, true, 8)],
        }
    }

    fn check(m: &Manifest) -> Result<Manifest> {
        Manifest::from_json(&m.to_json()?)
    }

    fn assert_invalid(m: Manifest, needle: &str) {
        match check(&m) {
            Err(Error::InvalidManifest(msg)) => {
                assert!(msg.contains(needle), "{msg:?} does not mention {needle:?}")
            }
            other => panic!("expected InvalidManifest({needle}), got {other:?}"),
        }
    }

    #[test]
    fn valid_manifest_round_trips() {
        let m = manifest();
        assert_eq!(check(&m).unwrap(), m);
        assert!(m.stages[1].is_last() && !m.stages[0].is_last());
        assert_eq!(m.eos_ids(), vec![2]);
    }

    #[test]
    fn chunk_file_covers_the_file_and_passes_verification() {
        let bytes: Vec<u8> = (0..20u8).collect();
        let chunks = chunk_file(&bytes, 8);
        assert_eq!(
            chunks
                .iter()
                .map(|c| (c.offset, c.size))
                .collect::<Vec<_>>(),
            vec![(0, 8), (8, 8), (16, 4)]
        );
        assert_eq!(chunks[2].sha256, sha256_hex(&bytes[16..]));
        assert!(chunk_file(&[], 8).is_empty());
        let mut m = manifest();
        m.stages[0].chunks = chunks;
        m.stages[0].sha256 = sha256_hex(&bytes);
        let m = check(&m).unwrap();
        m.verify_stage(0, &bytes).unwrap();
        m.verify_chunk(0, 1, &bytes[8..16]).unwrap();
    }

    #[test]
    fn stage_format_defaults_to_onnx_and_q8_round_trips() {
        // A manifest without `format` (every manifest written before it)
        // reads as ONNX f32 and is written back without the field.
        let m = manifest();
        let json = String::from_utf8(m.to_json().unwrap()).unwrap();
        assert!(!json.contains("\"format\""), "{json}");
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(value["stages"][0].get("format").is_none());
        assert_eq!(check(&m).unwrap().stages[0].format, StageFormat::OnnxF32);

        let mut q8 = manifest();
        q8.stages[1].format = StageFormat::Q8;
        let json = String::from_utf8(q8.to_json().unwrap()).unwrap();
        assert!(json.contains("\"format\": \"q8\""), "{json}");
        assert_eq!(check(&q8).unwrap(), q8);

        // Explicit "onnx-f32" reads too; an unknown format is an error.
        value["stages"][0]["format"] = "onnx-f32".into();
        let explicit = Manifest::from_json(value.to_string().as_bytes()).unwrap();
        assert_eq!(explicit, m);
        value["stages"][0]["format"] = "q4".into();
        assert!(matches!(
            Manifest::from_json(value.to_string().as_bytes()),
            Err(Error::ManifestJson(msg)) if msg.contains("q4")
        ));
    }

    #[test]
    fn rejects_bad_json_version_and_architecture() {
        assert!(matches!(
            Manifest::from_json(b"{not json"),
            Err(Error::ManifestJson(_))
        ));
        let mut m = manifest();
        m.format_version = 2;
        assert_eq!(
            check(&m),
            Err(Error::UnsupportedFormatVersion {
                expected: 1,
                found: 2
            })
        );
        let mut m = manifest();
        m.architecture = "gpt2".into();
        assert!(
            matches!(check(&m), Err(Error::UnknownArchitecture { found, .. }) if found == "gpt2")
        );
    }

    #[test]
    fn rejects_inconsistent_stages() {
        let mut m = manifest();
        m.stages[1].index = 2;
        assert_invalid(m, "has index 2");

        let mut m = manifest();
        m.stages[1] = stage(1, 2..3, true, 8);
        assert_invalid(m, "starting at 1");

        let mut m = manifest();
        m.config.num_layers = 4;
        assert_invalid(m, "expected [0, 4)");

        let mut m = manifest();
        m.stages[1].outputs[0] = HIDDEN_STATES_OUT.into();
        assert_invalid(m, "must output \"logits\"");

        let mut m = manifest();
        m.stages[0].inputs[0] = HIDDEN_STATES.into();
        assert_invalid(m, "must take \"input_ids\"");

        let mut m = manifest();
        m.stages[1]
            .inputs
            .retain(|n| n != "past_key_values.2.value");
        assert_invalid(m, "past_key_values.2.value");

        let mut m = manifest();
        m.stages[0].inputs.push("past_key_values.2.key".into());
        assert_invalid(m, "unexpected input \"past_key_values.2.key\"");

        let mut m = manifest();
        m.stages[0].inputs.push(ATTENTION_MASK.into());
        assert_invalid(m, "lists input \"attention_mask\" twice");

        let mut m = manifest();
        m.stages[0].inputs.push("token_type_ids".into());
        assert_invalid(m, "unexpected input \"token_type_ids\"");

        let mut m = manifest();
        m.stages[0].file = "../etc/passwd".into();
        assert_invalid(m, "plain file name");

        let mut m = manifest();
        m.special_tokens.eos[0].id = 10;
        assert_invalid(m, "vocab_size 10");
    }

    #[test]
    fn rejects_bad_chunks() {
        let mut m = manifest();
        m.chunk_size = MAX_CHUNK_SIZE + 1;
        assert_invalid(m, "chunk_size must be in");

        let mut m = manifest();
        m.stages[0].chunks[1].offset = 9;
        assert_invalid(m, "starts at 9, expected 8");

        let mut m = manifest();
        m.stages[0].chunks.pop();
        assert_invalid(m, "cover 16 bytes, expected the file size 20");

        let mut m = manifest();
        m.stages[0].chunks[0].size = 4;
        m.stages[0].chunks[1].offset = 4;
        assert_invalid(m, "chunk 0 has size 4");

        let mut m = manifest();
        m.stages[0].sha256 = m.stages[0].sha256.to_uppercase();
        assert_invalid(m, "lowercase hex");
    }

    #[test]
    fn verifies_chunks_and_stages() {
        let m = manifest();
        assert_eq!(m.verify_chunk(0, 1, &[0; 8]), Ok(()));
        assert_eq!(m.verify_chunk(0, 2, &[0; 4]), Ok(()));
        assert_eq!(m.verify_stage(1, &[1; 8]), Ok(()));
        assert_eq!(m.verify_tokenizer(b"abc"), Ok(()));
        assert_eq!(
            m.verify_chunk(0, 3, &[0; 8]),
            Err(Error::ChunkOutOfRange {
                stage: 0,
                chunk: 3,
                chunks: 3
            })
        );
        assert_eq!(
            m.verify_chunk(2, 0, &[0; 8]),
            Err(Error::StageOutOfRange {
                stage: 2,
                stages: 2
            })
        );
        assert!(matches!(
            m.verify_chunk(0, 2, &[0; 5]),
            Err(Error::SizeMismatch {
                expected: 4,
                found: 5,
                ..
            })
        ));
        let mut flipped = [0u8; 8];
        flipped[3] ^= 1;
        match m.verify_chunk(0, 0, &flipped) {
            Err(Error::HashMismatch {
                what,
                expected,
                found,
            }) => {
                assert_eq!(what, "stage 0 chunk 0");
                assert_eq!(expected, m.stages[0].chunks[0].sha256);
                assert_eq!(found, sha256_hex(&flipped));
            }
            other => panic!("expected HashMismatch, got {other:?}"),
        }
        assert!(matches!(
            m.verify_stage(0, &[0; 20][..19]),
            Err(Error::SizeMismatch { .. })
        ));
    }

    #[test]
    fn parses_kv_names() {
        assert_eq!(
            parse_kv_name("past_key_values.12.key", "past_key_values"),
            Some((12, false))
        );
        assert_eq!(parse_kv_name("present.3.value", "present"), Some((3, true)));
        assert_eq!(parse_kv_name("present.x.value", "present"), None);
        assert_eq!(parse_kv_name("present.3.query", "present"), None);
    }
}
