//! Flags shared by the subcommands: which model, and how to sample.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use engine::{ModelDir, Pipeline, SamplingParams, Tokenizer};

/// Which model directory to use.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A deployed model directory (with manifest.json), or a model root that
    /// holds `stages-N` directories (then `--stages` picks one).
    #[arg(long, short, default_value = "models/smollm2-135m-instruct")]
    pub model: PathBuf,
    /// Use the model cut into this many stages (`<model>/stages-<N>`).
    #[arg(long)]
    pub stages: Option<usize>,
}

impl ModelArgs {
    /// The directory holding `manifest.json`.
    pub fn resolve(&self) -> Result<PathBuf> {
        resolve_model_dir(&self.model, self.stages)
    }

    /// Reads and verifies the model, loads its stages and tokenizer.
    pub fn load(&self) -> Result<LoadedModel> {
        let dir = self.resolve()?;
        let started = Instant::now();
        let model = ModelDir::read(&dir).with_context(|| format!("reading {}", dir.display()))?;
        let tokenizer = Arc::new(model.tokenizer()?);
        let pipeline = Arc::new(model.pipeline()?);
        Ok(LoadedModel {
            dir,
            model,
            tokenizer,
            pipeline,
            load_secs: started.elapsed().as_secs_f64(),
        })
    }
}

pub fn resolve_model_dir(model: &Path, stages: Option<usize>) -> Result<PathBuf> {
    match stages {
        Some(0) => bail!("--stages must be at least 1"),
        Some(n) => {
            let dir = model.join(format!("stages-{n}"));
            if !dir.join("manifest.json").is_file() {
                bail!(
                    "{} has no manifest.json: cut the model into {n} stages with \
                     scripts/cut_stages.py (scripts/prepare_smollm2.sh makes 1 and 2)",
                    dir.display()
                );
            }
            Ok(dir)
        }
        None if model.join("manifest.json").is_file() => Ok(model.to_path_buf()),
        None if model.join("stages-1").join("manifest.json").is_file() => {
            Ok(model.join("stages-1"))
        }
        None => bail!(
            "{} is not a model directory (no manifest.json, no stages-1/); \
             run scripts/prepare_smollm2.sh to make the default model",
            model.display()
        ),
    }
}

/// A model ready to run.
pub struct LoadedModel {
    pub dir: PathBuf,
    pub model: ModelDir,
    pub tokenizer: Arc<Tokenizer>,
    pub pipeline: Arc<Pipeline>,
    pub load_secs: f64,
}

/// Sampling flags.
#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling threshold in (0, 1].
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Penalise tokens already in the context (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Stop when the text contains this (repeatable).
    #[arg(long = "stop")]
    pub stop_sequences: Vec<String>,
    /// PRNG seed: a number, or 64 hex digits (the 32-byte seed).
    #[arg(long, default_value = "0")]
    pub seed: String,
}

impl SamplingArgs {
    pub fn params(&self) -> Result<SamplingParams> {
        let params = SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            repetition_penalty: self.repetition_penalty,
            max_new_tokens: self.max_new_tokens,
            stop_sequences: self.stop_sequences.clone(),
            seed: parse_seed(&self.seed)?,
        };
        params.validate()?;
        Ok(params)
    }
}

/// A conversation's flags (`chat`, `replica-chat`).
#[derive(Args, Debug, Clone)]
pub struct ConversationArgs {
    /// System message (default: the chat template's own).
    #[arg(long)]
    pub system: Option<String>,
    /// User turns to send in order instead of reading the terminal (repeatable).
    #[arg(long = "message")]
    pub messages: Vec<String>,
}

impl ConversationArgs {
    /// Calls `turn` with each user message: the `--message` flags in order,
    /// or else lines read from the terminal until an empty line or the end
    /// of input.
    pub fn converse(&self, mut turn: impl FnMut(String) -> Result<()>) -> Result<()> {
        if !self.messages.is_empty() {
            for message in &self.messages {
                println!("user> {message}");
                turn(message.clone())?;
            }
            return Ok(());
        }
        eprintln!("(empty line or Ctrl-D to quit)");
        let stdin = std::io::stdin();
        loop {
            print!("user> ");
            std::io::stdout().flush()?;
            let mut line = String::new();
            if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
                return Ok(());
            }
            turn(line.trim().to_string())?;
        }
    }
}

/// `42` → the little-endian u64 in the first 8 bytes; 64 hex digits → as is.
pub fn parse_seed(text: &str) -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    if text.len() == 64 {
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .with_context(|| format!("seed {text:?} is not 64 hex digits"))?;
        }
    } else {
        let n: u64 = text
            .parse()
            .with_context(|| format!("seed must be a number or 64 hex digits, found {text:?}"))?;
        seed[..8].copy_from_slice(&n.to_le_bytes());
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_from_numbers_and_hex() {
        let s = parse_seed("258").unwrap();
        assert_eq!(&s[..3], &[2, 1, 0]);
        assert!(s[8..].iter().all(|&b| b == 0));
        let hex = "ff".repeat(31) + "01";
        let s = parse_seed(&hex).unwrap();
        assert_eq!(s[0], 0xff);
        assert_eq!(s[31], 1);
        assert!(parse_seed("zz").is_err());
        assert!(parse_seed(&"g".repeat(64)).is_err());
    }

    #[test]
    fn model_dirs_resolve_or_explain() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/tiny-llama");
        let dir = resolve_model_dir(&models, Some(2)).unwrap();
        assert!(dir.ends_with("stages-2"));
        assert!(resolve_model_dir(&models, None)
            .unwrap()
            .ends_with("stages-1"));
        assert!(resolve_model_dir(&dir, None).unwrap().ends_with("stages-2"));
        let err = resolve_model_dir(&models, Some(99))
            .unwrap_err()
            .to_string();
        assert!(err.contains("stages-99"), "{err}");
        assert!(resolve_model_dir(&models, Some(0)).is_err());
        assert!(resolve_model_dir(&models.join("nope"), None).is_err());
    }
}
