//! One stage of a decoder (a contiguous range of layers), on one of two
//! runtimes with the same API:
//!
//! * the engine's own llama forward pass ([`crate::llama`]): always for
//!   `q8` stages, and for ONNX `f32` stages loaded with [`Runtime::Engine`]
//!   (their weights read from the ONNX initializers). Its KV cache grows in
//!   place, and [`StageKv::reserve`] sizes it once for a whole sequence.
//!   The worker canister runs every stage this way.
//! * tract ([`Runtime::Tract`], the default of [`Stage::load`]): ONNX `f32`
//!   stages as the exported graph says, which concatenates the past and new
//!   keys/values, so each call allocates new `present.*` tensors. The
//!   command line and the browser's CPU path run on it.
//!
//! What follows describes the tract path.
//!
//! [`Stage::load`] parses the ONNX bytes, pins every input to batch 1 with two
//! symbolic lengths — `S` (new tokens) and `P` (positions already in the KV
//! cache); the attention mask spans `P + S` — and keeps tract's optimised,
//! runnable plan. The plan is built once: every call, prefill or decode, runs
//! the same plan with different values of `S` and `P`.
//!
//! [`Stage::run`] feeds exactly the inputs the stage declares: token ids
//! (first stage) or hidden states (the others), the attention mask (all ones)
//! and position ids it builds itself, and the past keys/values from
//! [`StageKv`], which it then replaces with the `present.*` outputs (a move,
//! not a copy). Inputs and outputs are plain data ([`HiddenStates`],
//! [`Logits`]) that a canister can send to the next stage's canister.
//!
//! ```no_run
//! # fn demo(stage: &engine::Stage) -> engine::Result<()> {
//! use engine::{StageData, StageInput, StageOutput};
//! let mut kv = stage.new_kv();
//! let out = stage.run(&mut kv, StageInput::tokens(vec![1, 2, 3], 0))?;
//! if let StageOutput::Logits(logits) = out {
//!     println!("{} logits for the last position", logits.last.len());
//! }
//! # Ok(()) }
//! ```

use serde::{Deserialize, Serialize};
use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::error::{Error, Result};
use crate::llama::{LlamaKv, LlamaLoader, LlamaStage, WeightFormat};
use crate::manifest::{
    parse_kv_name, ModelConfig, StageFormat, StageMeta, ATTENTION_MASK, HIDDEN_STATES,
    HIDDEN_STATES_OUT, INPUT_IDS, LOGITS, POSITION_IDS,
};

/// Hidden states between two stages: `seq_len × hidden_size` values, row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiddenStates {
    pub seq_len: usize,
    pub hidden_size: usize,
    pub values: Vec<f32>,
}

/// Logits produced by the last stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logits {
    pub vocab_size: usize,
    /// Logits of the last position (`vocab_size` values).
    pub last: Vec<f32>,
    /// Logits of every new position (`seq_len × vocab_size`), when asked for.
    pub all: Option<Vec<f32>>,
}

/// What enters a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StageData {
    /// Token ids, for the first stage.
    Tokens(Vec<u32>),
    /// Hidden states from the previous stage.
    Hidden(HiddenStates),
}

/// One call of a stage: the new positions `start_position..start_position+seq_len`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageInput {
    pub data: StageData,
    /// Absolute position of the first new token; must equal the number of
    /// positions in the stage's KV cache.
    pub start_position: usize,
    /// Last stage only: also return the logits of every position.
    pub all_logits: bool,
}

impl StageInput {
    /// Token ids starting at `start_position`.
    pub fn tokens(tokens: Vec<u32>, start_position: usize) -> Self {
        StageInput {
            data: StageData::Tokens(tokens),
            start_position,
            all_logits: false,
        }
    }

    /// Hidden states starting at `start_position`.
    pub fn hidden(hidden: HiddenStates, start_position: usize) -> Self {
        StageInput {
            data: StageData::Hidden(hidden),
            start_position,
            all_logits: false,
        }
    }

    /// Number of new positions.
    pub fn seq_len(&self) -> usize {
        match &self.data {
            StageData::Tokens(tokens) => tokens.len(),
            StageData::Hidden(hidden) => hidden.seq_len,
        }
    }
}

/// What leaves a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StageOutput {
    /// Hidden states for the next stage.
    Hidden(HiddenStates),
    /// Logits (last stage).
    Logits(Logits),
}

/// The KV cache of one stage for one sequence. On tract: keys and values of
/// each of its layers, `[1, num_kv_heads, positions, head_dim]` each,
/// replaced by the `present.*` outputs at every call (new tensors each
/// time); on the engine's own forward pass: a [`LlamaKv`], appended in
/// place.
#[derive(Debug, Clone)]
pub struct StageKv(KvImpl);

#[derive(Debug, Clone)]
enum KvImpl {
    Tract(TractKv),
    Llama(LlamaKv),
}

#[derive(Debug, Clone)]
struct TractKv {
    /// `[key, value]` per layer of the stage, in layer order.
    layers: Vec<[TValue; 2]>,
    positions: usize,
}

impl TractKv {
    /// An empty cache (`positions = 0`) for `num_layers` layers.
    fn empty(num_layers: usize, num_kv_heads: usize, head_dim: usize) -> Result<Self> {
        let empty = Tensor::zero::<f32>(&[1, num_kv_heads, 0, head_dim])
            .map_err(Error::inference)?
            .into_tvalue();
        Ok(TractKv {
            layers: vec![[empty.clone(), empty]; num_layers],
            positions: 0,
        })
    }
}

impl StageKv {
    /// Number of positions held.
    pub fn positions(&self) -> usize {
        match &self.0 {
            KvImpl::Tract(kv) => kv.positions,
            KvImpl::Llama(kv) => kv.positions(),
        }
    }

    /// Number of layers held.
    pub fn num_layers(&self) -> usize {
        match &self.0 {
            KvImpl::Tract(kv) => kv.layers.len(),
            KvImpl::Llama(kv) => kv.num_layers(),
        }
    }

    /// Bytes of key/value data held.
    pub fn size_bytes(&self) -> usize {
        match &self.0 {
            KvImpl::Tract(kv) => kv
                .layers
                .iter()
                .flatten()
                .map(|t| t.len() * t.datum_type().size_of())
                .sum(),
            KvImpl::Llama(kv) => kv.size_bytes(),
        }
    }

    /// Reserves room for `positions` positions in all, at once: on the
    /// engine's pass, appending up to that many then never moves the cache
    /// (see [`LlamaKv::reserve`]). Nothing to do on tract, whose every call
    /// makes new tensors. [`Error::OutOfMemory`] if the heap cannot hold it.
    pub fn reserve(&mut self, positions: usize) -> Result<()> {
        match &mut self.0 {
            KvImpl::Tract(_) => Ok(()),
            KvImpl::Llama(kv) => kv.reserve(positions),
        }
    }

    /// Positions the cache holds room for without moving: on tract, exactly
    /// the positions held (the next call replaces every tensor).
    pub fn capacity(&self) -> usize {
        match &self.0 {
            KvImpl::Tract(kv) => kv.positions,
            KvImpl::Llama(kv) => kv.capacity(),
        }
    }

    /// Where the keys and values of each layer lie in memory (keys, values,
    /// in layer order): a diagnostic, to check that a cache is appended in
    /// place.
    pub fn buffer_addresses(&self) -> Vec<usize> {
        match &self.0 {
            KvImpl::Tract(kv) => kv
                .layers
                .iter()
                .flatten()
                .map(|t| f32_slice(t).map_or(0, |v| v.as_ptr() as usize))
                .collect(),
            KvImpl::Llama(kv) => kv.buffer_addresses(),
        }
    }

    /// Forgets every position from `positions` on (no-op if it holds
    /// fewer): undoes a call whose sequence failed in a later stage.
    pub fn truncate(&mut self, positions: usize) -> Result<()> {
        match &mut self.0 {
            KvImpl::Tract(kv) => {
                if positions < kv.positions {
                    for value in kv.layers.iter_mut().flatten() {
                        let kept = value
                            .slice(2, 0, positions)
                            .map_err(Error::inference)?
                            .into_tvalue();
                        *value = kept;
                    }
                    kv.positions = positions;
                }
            }
            KvImpl::Llama(kv) => kv.truncate(positions),
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputSlot {
    InputIds,
    AttentionMask,
    PositionIds,
    Hidden,
    /// `(layer within the stage, 0 = key | 1 = value)`
    Past(usize, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputSlot {
    Logits,
    Hidden,
    Present(usize, usize),
}

/// Which runtime runs an ONNX `f32` stage. A `q8` stage has one runtime,
/// the engine's own pass, whatever is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Runtime {
    /// tract's optimised plan of the ONNX graph (the command line, the
    /// browser's CPU path). Each call makes new KV tensors.
    #[default]
    Tract,
    /// The engine's own llama forward pass ([`crate::llama`]), `f32`
    /// weights read from the stage's ONNX initializers: the KV cache is
    /// appended in place (the worker canister).
    Engine,
}

/// A loaded stage: tract's optimised plan, or the engine's own llama
/// forward pass (see [`Runtime`]).
#[derive(Debug, Clone)]
pub struct Stage {
    meta: StageMeta,
    imp: StageImpl,
}

#[derive(Debug, Clone)]
enum StageImpl {
    Tract(Box<TractStage>),
    Llama(Arc<LlamaStage>),
}

/// tract's optimised plan plus what is needed to feed it.
#[derive(Debug, Clone)]
struct TractStage {
    meta: StageMeta,
    hidden_size: usize,
    vocab_size: usize,
    num_kv_heads: usize,
    head_dim: usize,
    plan: Arc<TypedSimplePlan>,
    /// `new_kv` hands out clones (the empty tensors are shared).
    empty_kv: TractKv,
    /// Model inputs, in the plan's order.
    inputs: Vec<InputSlot>,
    /// Model outputs, in the plan's order.
    outputs: Vec<OutputSlot>,
}

impl Stage {
    /// Loads a stage from its file bytes, an ONNX `f32` stage on tract:
    /// [`Stage::load_with`] and [`Runtime::Tract`].
    pub fn load(meta: &StageMeta, config: &ModelConfig, bytes: &[u8]) -> Result<Self> {
        Self::load_with(meta, config, bytes, Runtime::Tract)
    }

    /// Loads a stage from its file bytes, an ONNX `f32` stage on `runtime`:
    /// all of [`StageLoader`]'s phases in one go.
    ///
    /// On tract, malformed or truncated ONNX gives [`Error::InvalidOnnx`]
    /// and a graph whose inputs/outputs differ from the manifest
    /// [`Error::StageMismatch`]; on the engine's pass, weights that cannot
    /// be read (malformed protobuf, a missing tensor, a wrong shape) give
    /// [`Error::Weights`], as does a malformed q8 file.
    pub fn load_with(
        meta: &StageMeta,
        config: &ModelConfig,
        bytes: &[u8],
        runtime: Runtime,
    ) -> Result<Self> {
        let mut loader = StageLoader::new_with(meta, config, bytes, runtime)?;
        while !loader.advance()? {}
        loader.into_stage()
    }

    /// A stage on the engine's own forward pass.
    pub fn from_llama(stage: LlamaStage) -> Self {
        Stage {
            meta: stage.meta().clone(),
            imp: StageImpl::Llama(Arc::new(stage)),
        }
    }

    /// The manifest entry of this stage.
    pub fn meta(&self) -> &StageMeta {
        &self.meta
    }

    /// The format of the stage's weights as loaded: `f32` on tract or on
    /// the engine's pass, or 8-bit.
    pub fn format(&self) -> StageFormat {
        match &self.imp {
            StageImpl::Tract(_) => StageFormat::OnnxF32,
            StageImpl::Llama(l) => match l.format() {
                WeightFormat::F32 => StageFormat::OnnxF32,
                WeightFormat::Q8 => StageFormat::Q8,
            },
        }
    }

    /// The runtime the stage runs on.
    pub fn runtime(&self) -> Runtime {
        match &self.imp {
            StageImpl::Tract(_) => Runtime::Tract,
            StageImpl::Llama(_) => Runtime::Engine,
        }
    }

    /// An empty KV cache for one sequence through this stage.
    pub fn new_kv(&self) -> StageKv {
        match &self.imp {
            StageImpl::Tract(t) => StageKv(KvImpl::Tract(t.empty_kv.clone())),
            StageImpl::Llama(l) => StageKv(KvImpl::Llama(l.new_kv())),
        }
    }

    /// Runs the new positions of `input` through the stage, appending their
    /// keys/values to `kv`. On error `kv` is left as it was.
    pub fn run(&self, kv: &mut StageKv, input: StageInput) -> Result<StageOutput> {
        match (&self.imp, &mut kv.0) {
            (StageImpl::Tract(t), KvImpl::Tract(kv)) => t.run(kv, input),
            (StageImpl::Llama(l), KvImpl::Llama(kv)) => l.run(kv, input),
            _ => Err(Error::ShapeMismatch {
                what: format!("KV cache for stage {}", self.meta.index),
                expected: format!("a cache of this stage's kind ({:?})", self.format()),
                found: "a cache of another kind".into(),
            }),
        }
    }
}

impl TractStage {
    fn run(&self, kv: &mut TractKv, input: StageInput) -> Result<StageOutput> {
        let seq_len = input.seq_len();
        self.check_input(kv, &input)?;
        let past = kv.positions;
        let total = past + seq_len;

        let mut values: TVec<TValue> = TVec::with_capacity(self.inputs.len());
        for slot in &self.inputs {
            let value = match slot {
                InputSlot::InputIds => {
                    let StageData::Tokens(tokens) = &input.data else {
                        return Err(self.wrong_data("token ids"));
                    };
                    let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
                    tensor(&[1, seq_len], &ids)?
                }
                InputSlot::Hidden => {
                    let StageData::Hidden(hidden) = &input.data else {
                        return Err(self.wrong_data("hidden states"));
                    };
                    tensor(&[1, seq_len, self.hidden_size], &hidden.values)?
                }
                InputSlot::AttentionMask => tensor(&[1, total], &vec![1i64; total])?,
                InputSlot::PositionIds => {
                    let positions: Vec<i64> = (past..total).map(|p| p as i64).collect();
                    tensor(&[1, seq_len], &positions)?
                }
                InputSlot::Past(layer, kind) => kv
                    .layers
                    .get(*layer)
                    .map(|kv| kv[*kind].clone())
                    .ok_or_else(|| self.kv_mismatch(kv.layers.len()))?,
            };
            values.push(value);
        }

        let results = self.plan.run(values).map_err(Error::inference)?;

        let mut layers = kv.layers.clone();
        let mut output = None;
        for (slot, value) in self.outputs.iter().zip(results) {
            match slot {
                OutputSlot::Present(layer, kind) => {
                    let expected = [1, self.num_kv_heads, total, self.head_dim];
                    check_shape(
                        &format!("stage {} present", self.meta.index),
                        &expected,
                        &value,
                    )?;
                    if let Some(entry) = layers.get_mut(*layer) {
                        entry[*kind] = value;
                    }
                }
                OutputSlot::Hidden => {
                    let expected = [1, seq_len, self.hidden_size];
                    check_shape("hidden_states_out output", &expected, &value)?;
                    output = Some(StageOutput::Hidden(HiddenStates {
                        seq_len,
                        hidden_size: self.hidden_size,
                        values: f32_slice(&value)?.to_vec(),
                    }));
                }
                OutputSlot::Logits => {
                    let expected = [1, seq_len, self.vocab_size];
                    check_shape("logits output", &expected, &value)?;
                    let all = f32_slice(&value)?;
                    let last = all[(seq_len - 1) * self.vocab_size..].to_vec();
                    output = Some(StageOutput::Logits(Logits {
                        vocab_size: self.vocab_size,
                        last,
                        all: input.all_logits.then(|| all.to_vec()),
                    }));
                }
            }
        }
        let output = output.ok_or_else(|| Error::StageMismatch {
            stage: self.meta.index,
            message: "the plan produced neither hidden_states_out nor logits".into(),
        })?;
        kv.layers = layers;
        kv.positions = total;
        Ok(output)
    }

    fn check_input(&self, kv: &TractKv, input: &StageInput) -> Result<()> {
        if kv.layers.len() != self.meta.num_layers() {
            return Err(self.kv_mismatch(kv.layers.len()));
        }
        if input.start_position != kv.positions {
            return Err(Error::PositionMismatch {
                expected: kv.positions,
                found: input.start_position,
            });
        }
        check_stage_data(
            &input.data,
            self.meta.index,
            self.hidden_size,
            self.vocab_size,
        )
    }

    fn wrong_data(&self, expected: &str) -> Error {
        Error::ShapeMismatch {
            what: format!("input of stage {}", self.meta.index),
            expected: expected.into(),
            found: if self.meta.is_first() {
                "hidden states".into()
            } else {
                "token ids".into()
            },
        }
    }

    fn kv_mismatch(&self, found: usize) -> Error {
        Error::ShapeMismatch {
            what: format!("KV cache for stage {}", self.meta.index),
            expected: format!("{} layers", self.meta.num_layers()),
            found: format!("{found} layers"),
        }
    }
}

/// Packs every constant matmul operand once, at load time.
///
/// tract's optimiser packs weights ahead of time, except a constant that
/// another node also reads and that exceeds its 4 MiB const-folding budget:
/// with tied embeddings the `lm_head` weight is the token embedding, also
/// read by the embedding `Gather`, and tract would repack it (113 MB for
/// SmolLM2) on every call — two thirds of a decode step. Folding the pack
/// costs one packed copy of such weights in memory.
/// What [`StageLoader::advance`] does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPhase {
    /// Into tract's typed model (shapes and types inferred).
    Type,
    /// Declutter: simplify the graph.
    Declutter,
    /// Codegen: map to optimised operators.
    Optimize,
    /// Pack the constant weights of matrix products once, here.
    PackWeights,
    /// Build the runnable plan.
    Plan,
    /// The engine's pass: the `f32` weights read from the ONNX file into
    /// the kernels' layout (matrices transposed to `[out, in]`, each freed
    /// from its ONNX layout as it is converted).
    ConvertWeights,
    /// Nothing left: [`StageLoader::into_stage`].
    Done,
}

enum Building {
    /// A stage for the engine's pass (q8, or ONNX `f32` weights).
    Llama(Box<LlamaLoader>),
    Inference(InferenceModel),
    Typed(TypedModel),
    Plan(Arc<TypedSimplePlan>),
    Taken,
}

/// A stage being loaded, one phase at a time: a canister spreads the
/// phases over several messages, each under the instruction limit (the
/// model stays in heap between them). [`Stage::load`] runs them all.
///
/// ```no_run
/// # fn demo(meta: &engine::StageMeta, config: &engine::ModelConfig, bytes: &[u8]) -> engine::Result<()> {
/// let mut loader = engine::StageLoader::new(meta, config, bytes)?; // parse
/// while !loader.advance()? {} // one phase per call
/// let stage = loader.into_stage()?;
/// # Ok(()) }
/// ```
pub struct StageLoader {
    meta: StageMeta,
    config: ModelConfig,
    inputs: Vec<InputSlot>,
    outputs: Vec<OutputSlot>,
    model: Building,
    next: LoadPhase,
}

impl std::fmt::Debug for StageLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageLoader")
            .field("stage", &self.meta.index)
            .field("next", &self.next)
            .finish()
    }
}

impl StageLoader {
    /// The first phase, an ONNX `f32` stage on tract:
    /// [`StageLoader::new_with`] and [`Runtime::Tract`].
    pub fn new(meta: &StageMeta, config: &ModelConfig, bytes: &[u8]) -> Result<Self> {
        Self::new_with(meta, config, bytes, Runtime::Tract)
    }

    /// The first phase. ONNX on tract: parses the bytes, checks the graph's
    /// inputs and outputs against `meta` and pins the input shapes. ONNX
    /// on the engine's pass: reads the `f32` weights from the initializers.
    /// q8: reads the whole stage (a copy of `bytes`;
    /// [`StageLoader::from_vec_with`] keeps them).
    pub fn new_with(
        meta: &StageMeta,
        config: &ModelConfig,
        bytes: &[u8],
        runtime: Runtime,
    ) -> Result<Self> {
        match (meta.format, runtime) {
            (StageFormat::Q8, _) => Self::from_vec_with(meta, config, bytes.to_vec(), runtime),
            (StageFormat::OnnxF32, Runtime::Tract) => Self::new_onnx(meta, config, bytes),
            (StageFormat::OnnxF32, Runtime::Engine) => Ok(Self::llama(
                meta,
                config,
                LlamaLoader::from_onnx(meta, config, bytes)?,
            )),
        }
    }

    /// [`StageLoader::from_vec_with`] and [`Runtime::Tract`].
    pub fn from_vec(meta: &StageMeta, config: &ModelConfig, bytes: Vec<u8>) -> Result<Self> {
        Self::from_vec_with(meta, config, bytes, Runtime::Tract)
    }

    /// Like [`StageLoader::new_with`], taking the bytes: a q8 stage keeps
    /// them as its weights (no copy), so loading needs no more memory than
    /// the file; an ONNX stage on the engine's pass frees them once its
    /// weights are read (the peak is the file and its `f32` weights).
    pub fn from_vec_with(
        meta: &StageMeta,
        config: &ModelConfig,
        bytes: Vec<u8>,
        runtime: Runtime,
    ) -> Result<Self> {
        match (meta.format, runtime) {
            (StageFormat::OnnxF32, Runtime::Tract) => Self::new_onnx(meta, config, &bytes),
            (StageFormat::OnnxF32, Runtime::Engine) | (StageFormat::Q8, _) => Ok(Self::llama(
                meta,
                config,
                LlamaLoader::new(meta, config, bytes)?,
            )),
        }
    }

    /// A loader on the engine's pass: done, or the weights to convert.
    fn llama(meta: &StageMeta, config: &ModelConfig, loader: LlamaLoader) -> Self {
        StageLoader {
            meta: meta.clone(),
            config: config.clone(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            next: if loader.is_ready() {
                LoadPhase::Done
            } else {
                LoadPhase::ConvertWeights
            },
            model: Building::Llama(Box::new(loader)),
        }
    }

    fn new_onnx(meta: &StageMeta, config: &ModelConfig, onnx_bytes: &[u8]) -> Result<Self> {
        let invalid = |e: TractError| Error::InvalidOnnx(format!("{e:#}"));
        let mismatch = |message: String| Error::StageMismatch {
            stage: meta.index,
            message,
        };
        let onnx = tract_onnx::onnx();
        let mut proto = onnx
            .proto_model_for_read(&mut &onnx_bytes[..])
            .map_err(invalid)?;
        if let Some(graph) = proto.graph.as_mut() {
            scalarize_range_inputs(graph);
        }
        let mut model = onnx.model_for_proto_model(&proto).map_err(invalid)?;
        drop(proto);

        let input_names: Vec<String> = model
            .input_outlets()
            .map_err(invalid)?
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        let output_names: Vec<String> = model
            .output_outlets()
            .map_err(invalid)?
            .iter()
            .map(|o| {
                model
                    .outlet_label(*o)
                    .map_or_else(|| model.node(o.node).name.clone(), str::to_string)
            })
            .collect();
        same_names("inputs", &input_names, &meta.inputs).map_err(mismatch)?;
        same_names("outputs", &output_names, &meta.outputs).map_err(mismatch)?;

        let inputs = input_names
            .iter()
            .map(|n| input_slot(n, meta).ok_or_else(|| mismatch(format!("unexpected input {n:?}"))))
            .collect::<Result<Vec<_>>>()?;
        let outputs = output_names
            .iter()
            .map(|n| {
                output_slot(n, meta).ok_or_else(|| mismatch(format!("unexpected output {n:?}")))
            })
            .collect::<Result<Vec<_>>>()?;

        let s = model.symbols.sym("S").to_dim();
        let p = model.symbols.sym("P").to_dim();
        let total = p.clone() + s.clone();
        let one = 1.to_dim();
        for (ix, slot) in inputs.iter().enumerate() {
            let fact = match slot {
                InputSlot::InputIds | InputSlot::PositionIds => {
                    InferenceFact::dt_shape(i64::datum_type(), tvec![one.clone(), s.clone()])
                }
                InputSlot::AttentionMask => {
                    InferenceFact::dt_shape(i64::datum_type(), tvec![one.clone(), total.clone()])
                }
                InputSlot::Hidden => InferenceFact::dt_shape(
                    f32::datum_type(),
                    tvec![one.clone(), s.clone(), config.hidden_size.to_dim()],
                ),
                InputSlot::Past(..) => InferenceFact::dt_shape(
                    f32::datum_type(),
                    tvec![
                        one.clone(),
                        config.num_kv_heads.to_dim(),
                        p.clone(),
                        config.head_dim.to_dim()
                    ],
                ),
            };
            model.set_input_fact(ix, fact).map_err(invalid)?;
        }
        // Output shapes follow from the inputs; the file's own symbolic
        // output dims (e.g. `total_sequence_length`) would only clash.
        for ix in 0..outputs.len() {
            model
                .set_output_fact(ix, InferenceFact::default())
                .map_err(invalid)?;
        }
        Ok(StageLoader {
            meta: meta.clone(),
            config: config.clone(),
            inputs,
            outputs,
            model: Building::Inference(model),
            next: LoadPhase::Type,
        })
    }

    /// The phase the next [`advance`](Self::advance) runs.
    pub fn next_phase(&self) -> LoadPhase {
        self.next
    }

    /// Runs the next phase; `true` once the stage is ready. After an error
    /// the loader is spent.
    pub fn advance(&mut self) -> Result<bool> {
        let invalid = |e: TractError| Error::InvalidOnnx(format!("{e:#}"));
        let model = std::mem::replace(&mut self.model, Building::Taken);
        let spent = || Error::Inference("the stage loader was used after an error".into());
        self.model = match (self.next, model) {
            (LoadPhase::Type, Building::Inference(m)) => {
                Building::Typed(m.into_typed().map_err(invalid)?)
            }
            (LoadPhase::Declutter, Building::Typed(m)) => {
                Building::Typed(m.into_decluttered().map_err(invalid)?)
            }
            (LoadPhase::Optimize, Building::Typed(mut m)) => {
                m.optimize().map_err(invalid)?;
                Building::Typed(m)
            }
            (LoadPhase::PackWeights, Building::Typed(m)) => {
                Building::Typed(fold_weight_packing(m).map_err(invalid)?)
            }
            (LoadPhase::Plan, Building::Typed(m)) => {
                Building::Plan(m.into_runnable().map_err(invalid)?)
            }
            (LoadPhase::ConvertWeights, Building::Llama(mut loader)) => {
                loader.advance()?;
                Building::Llama(loader)
            }
            (LoadPhase::Done, m @ (Building::Plan(_) | Building::Llama(_))) => m,
            _ => return Err(spent()),
        };
        self.next = match self.next {
            LoadPhase::Type => LoadPhase::Declutter,
            LoadPhase::Declutter => LoadPhase::Optimize,
            LoadPhase::Optimize => LoadPhase::PackWeights,
            LoadPhase::PackWeights => LoadPhase::Plan,
            LoadPhase::Plan | LoadPhase::ConvertWeights | LoadPhase::Done => LoadPhase::Done,
        };
        Ok(self.next == LoadPhase::Done)
    }

    /// The loaded stage, once every phase has run.
    pub fn into_stage(self) -> Result<Stage> {
        let plan = match self.model {
            Building::Plan(plan) => plan,
            Building::Llama(loader) => return Ok(Stage::from_llama(loader.into_stage()?)),
            _ => {
                return Err(Error::Inference(format!(
                    "stage {} is not loaded yet (next phase {:?})",
                    self.meta.index, self.next
                )))
            }
        };
        let config = &self.config;
        let empty_kv =
            TractKv::empty(self.meta.num_layers(), config.num_kv_heads, config.head_dim)?;
        Ok(Stage {
            meta: self.meta.clone(),
            imp: StageImpl::Tract(Box::new(TractStage {
                empty_kv,
                hidden_size: config.hidden_size,
                vocab_size: config.vocab_size,
                num_kv_heads: config.num_kv_heads,
                head_dim: config.head_dim,
                plan,
                inputs: self.inputs,
                outputs: self.outputs,
                meta: self.meta,
            })),
        })
    }
}

fn fold_weight_packing(mut model: TypedModel) -> TractResult<TypedModel> {
    use tract_onnx::tract_core::ops::konst::Const;
    use tract_onnx::tract_core::ops::matmul::pack::OptMatMulPack;

    let mut patch = TypedModelPatch::default();
    let mut folded = 0;
    for node in model.nodes() {
        if !node.op_is::<OptMatMulPack>() {
            continue;
        }
        let facts = model.node_input_facts(node.id)?;
        let Some(inputs) = facts
            .iter()
            .map(|f| f.konst.clone().map(IntoTValue::into_tvalue))
            .collect::<Option<TVec<TValue>>>()
        else {
            continue;
        };
        let Some(outputs) = node.op.eval_out_of_plan(inputs)? else {
            continue;
        };
        for (ix, output) in outputs.into_iter().enumerate() {
            let outlet = OutletId::new(node.id, ix);
            let exotic_fact = model.outlet_fact(outlet)?.exotic_fact.clone();
            let konst = Const::new_with_opt_exotic_fact(output.into_arc_tensor(), exotic_fact)?;
            let wire = patch.wire_node(format!("{}.prepacked.{ix}", node.name), konst, &[])?[0];
            patch.shunt_outside(&model, outlet, wire)?;
        }
        folded += 1;
    }
    if folded > 0 {
        patch.apply(&mut model)?;
        model.compact()?;
    }
    Ok(model)
}

/// ONNX `Range` takes scalars, but some exporters (including
/// `scripts/build_llama_onnx.py` at the time of writing) feed it 1-element
/// tensors, which onnxruntime accepts and tract refuses. Each `Range` input
/// is reshaped to a scalar first: a no-op on conforming graphs, folded away
/// by tract's optimiser.
fn scalarize_range_inputs(graph: &mut pb::GraphProto) {
    const SCALAR_SHAPE: &str = "engine/scalar_shape";
    const INT64: i32 = 7;
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut patched = false;
    for (i, mut node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        let standard = node.domain.is_empty() || node.domain == "ai.onnx";
        if node.op_type == "Range" && standard {
            for (k, input) in node.input.iter_mut().enumerate() {
                let scalar = format!("engine/range_{i}_input_{k}");
                nodes.push(pb::NodeProto {
                    name: scalar.clone(),
                    op_type: "Reshape".into(),
                    input: vec![input.clone(), SCALAR_SHAPE.into()],
                    output: vec![scalar.clone()],
                    ..Default::default()
                });
                *input = scalar;
            }
            patched = true;
        }
        nodes.push(node);
    }
    graph.node = nodes;
    if patched {
        graph.initializer.push(pb::TensorProto {
            name: SCALAR_SHAPE.into(),
            data_type: INT64,
            dims: vec![0],
            ..Default::default()
        });
    }
}

fn same_names(
    what: &str,
    graph: &[String],
    manifest: &[String],
) -> std::result::Result<(), String> {
    let mut a = graph.to_vec();
    let mut b = manifest.to_vec();
    a.sort();
    b.sort();
    if a == b {
        Ok(())
    } else {
        Err(format!(
            "the manifest lists {what} {manifest:?}, the ONNX graph has {graph:?}"
        ))
    }
}

fn input_slot(name: &str, meta: &StageMeta) -> Option<InputSlot> {
    Some(match name {
        INPUT_IDS => InputSlot::InputIds,
        ATTENTION_MASK => InputSlot::AttentionMask,
        POSITION_IDS => InputSlot::PositionIds,
        HIDDEN_STATES => InputSlot::Hidden,
        other => {
            let (layer, value) = parse_kv_name(other, "past_key_values")?;
            InputSlot::Past(local_layer(layer, meta)?, usize::from(value))
        }
    })
}

fn output_slot(name: &str, meta: &StageMeta) -> Option<OutputSlot> {
    Some(match name {
        LOGITS => OutputSlot::Logits,
        HIDDEN_STATES_OUT => OutputSlot::Hidden,
        other => {
            let (layer, value) = parse_kv_name(other, "present")?;
            OutputSlot::Present(local_layer(layer, meta)?, usize::from(value))
        }
    })
}

fn local_layer(layer: usize, meta: &StageMeta) -> Option<usize> {
    (meta.layer_start..meta.layer_end)
        .contains(&layer)
        .then(|| layer - meta.layer_start)
}

fn tensor<T: Datum + Copy>(shape: &[usize], data: &[T]) -> Result<TValue> {
    Tensor::from_shape(shape, data)
        .map(IntoTValue::into_tvalue)
        .map_err(Error::inference)
}

fn f32_slice(value: &TValue) -> Result<&[f32]> {
    value
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>())
        .map_err(Error::inference)
}

fn check_shape(what: &str, expected: &[usize], value: &TValue) -> Result<()> {
    if value.shape() == expected && value.datum_type() == f32::datum_type() {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what: what.into(),
            expected: format!("f32 {expected:?}"),
            found: format!("{:?} {:?}", value.datum_type(), value.shape()),
        })
    }
}

/// The checks every stage implementation makes of its input data: token ids
/// present and inside the vocabulary, hidden states non-empty, `hidden`
/// wide and as long as they say.
pub(crate) fn check_stage_data(
    data: &StageData,
    stage_index: usize,
    hidden: usize,
    vocab: usize,
) -> Result<()> {
    match data {
        StageData::Tokens(tokens) => {
            if tokens.is_empty() {
                return Err(Error::EmptyPrompt);
            }
            if let Some(&token) = tokens.iter().find(|&&t| t as usize >= vocab) {
                return Err(Error::TokenOutOfRange {
                    token,
                    vocab_size: vocab,
                });
            }
        }
        StageData::Hidden(h) => {
            if h.seq_len == 0
                || h.hidden_size != hidden
                || h.values.len() != h.seq_len * h.hidden_size
            {
                return Err(Error::ShapeMismatch {
                    what: format!("hidden states for stage {stage_index}"),
                    expected: format!("seq_len >= 1 × hidden_size {hidden}"),
                    found: format!(
                        "seq_len {} × hidden_size {} with {} values",
                        h.seq_len,
                        h.hidden_size,
                        h.values.len()
                    ),
                });
            }
        }
    }
    Ok(())
}
