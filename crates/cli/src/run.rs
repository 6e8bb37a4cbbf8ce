//! `generate` and `chat`: stream tokens to the terminal.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use engine::{ChatMessage, Generation};

use crate::options::{ConversationArgs, LoadedModel, ModelArgs, SamplingArgs};

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) sampling: SamplingArgs,
    /// Plain text to continue.
    #[arg(long, conflicts_with = "chat")]
    pub(crate) prompt: Option<String>,
    /// A user message, formatted with the model's chat template.
    #[arg(long)]
    pub(crate) chat: Option<String>,
    /// System message for --chat.
    #[arg(long, requires = "chat")]
    pub(crate) system: Option<String>,
}

#[derive(Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) sampling: SamplingArgs,
    #[command(flatten)]
    pub(crate) conversation: ConversationArgs,
}

pub fn generate(args: GenerateArgs) -> Result<()> {
    let model = args.model.load()?;
    report_load(&model);
    let text = match (&args.prompt, &args.chat) {
        (Some(prompt), None) => prompt.clone(),
        (None, Some(message)) => {
            let mut messages: Vec<ChatMessage> =
                args.system.iter().map(ChatMessage::system).collect();
            messages.push(ChatMessage::user(message));
            model.tokenizer.apply_chat_template(&messages, true)?
        }
        _ => bail!("give --prompt TEXT or --chat MESSAGE"),
    };
    if args.prompt.is_some() {
        print!("{text}");
    }
    stream(&model, &text, &args.sampling)?;
    Ok(())
}

pub fn chat(args: ChatArgs) -> Result<()> {
    let model = args.model.load()?;
    report_load(&model);
    let mut history: Vec<ChatMessage> = args
        .conversation
        .system
        .iter()
        .map(ChatMessage::system)
        .collect();
    args.conversation.converse(|message| {
        history.push(ChatMessage::user(message));
        let prompt = model.tokenizer.apply_chat_template(&history, true)?;
        print!("assistant> ");
        let reply = stream(&model, &prompt, &args.sampling)?;
        history.push(ChatMessage::assistant(reply.trim()));
        Ok(())
    })
}

/// Generates from `text`, printing each piece of text as its token arrives.
/// Returns the generated text.
fn stream(model: &LoadedModel, text: &str, sampling: &SamplingArgs) -> Result<String> {
    let ids = model.tokenizer.encode(text)?;
    let mut generation = Generation::new(
        model.pipeline.clone(),
        model.tokenizer.clone(),
        ids.clone(),
        sampling.params()?,
    )?;
    let mut out = std::io::stdout();
    let started = Instant::now();
    let mut first_token_secs = 0.0;
    let reason = loop {
        let step = generation.step()?;
        if generation.tokens().len() == 1 {
            first_token_secs = started.elapsed().as_secs_f64();
        }
        out.write_all(step.text_delta.as_bytes())?;
        out.flush()?;
        if let Some(reason) = step.finished {
            break reason;
        }
    };
    println!();
    let total = started.elapsed().as_secs_f64();
    let decoded = generation.tokens().len().saturating_sub(1);
    eprintln!(
        "[{} prompt tokens in {:.2}s, {} tokens generated ({:?}), decode {:.1} tokens/s]",
        ids.len(),
        first_token_secs,
        generation.tokens().len(),
        reason,
        decoded as f64 / (total - first_token_secs).max(1e-9),
    );
    Ok(generation.text().to_string())
}

fn report_load(model: &LoadedModel) {
    let m = &model.model.manifest;
    eprintln!(
        "[{} ({}, {} layers, {} stage(s)) from {} loaded in {:.1}s]",
        m.name,
        m.architecture,
        m.config.num_layers,
        m.stages.len(),
        model.dir.display(),
        model.load_secs
    );
}
