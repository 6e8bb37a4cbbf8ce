//! SmolLM2-135M-Instruct served by the real canisters: uploaded to the task
//! manager, pulled and loaded by a worker, one token per message; the text
//! equals the engine's for the same seed. Both the default int8 stage
//! (`q8-1`) and the `f32` ONNX stage (`stages-1`), each on the engine's own
//! forward pass in the worker as in the native reference.
//!
//! Like the engine's SmolLM2 tests, these print a notice and pass when the
//! model has not been prepared (`scripts/prepare_smollm2.sh`), unless
//! `ENGINE_REQUIRE_SMOLLM2=1` (CI).

use integration_tests::{principal, workspace, Env};
use task_manager_api::{
    ChatMessage, FinishReason, GenerateRequest, InitArgs, JobStatus, Prompt, Sampling,
};

use crate::generation::engine_output;

pub const SMOLLM2: &str = "smollm2-135m-instruct";

/// `models/smollm2-135m-instruct/<cut>` (`stages-1`, `q8-1`), or `None`
/// after a notice.
pub fn smollm2_dir(cut: &str) -> Option<String> {
    let dir = format!("{SMOLLM2}/{cut}");
    model_format::prepared::prepared(&workspace().join("models").join(&dir)).then_some(dir)
}

#[test]
fn smollm2_f32_answers_through_the_canisters_as_the_engine_does() {
    let Some(dir) = smollm2_dir("stages-1") else {
        return;
    };
    answers_as_the_engine_does(&dir);
}

#[test]
fn smollm2_int8_answers_through_the_canisters_as_the_engine_does() {
    let Some(dir) = smollm2_dir("q8-1") else {
        return;
    };
    answers_as_the_engine_does(&dir);
}

/// Deploys `models/<dir>` on one worker and asks the France question
/// (`replica-bench`'s).
fn answers_as_the_engine_does(dir: &str) {
    let mut env = Env::new(InitArgs::default());
    env.add_workers(1);
    env.upload_model(dir);
    let pipelines = env.deploy(SMOLLM2, 1);
    assert!(pipelines[0].healthy, "{pipelines:?}");
    let worker = pipelines[0].workers[0];
    let status: worker_api::status::WorkerStatus = env
        .ic
        .query_one(worker, integration_tests::controller(), "status", &())
        .unwrap();
    eprintln!(
        "{dir} stage load: {} instructions in {} messages, at most {} in one",
        status.load_instructions, status.load_messages, status.load_max_message
    );
    assert!(status.load_max_message < 40_000_000_000);

    let user = principal(1);
    env.register(user);
    let request = GenerateRequest {
        model: SMOLLM2.into(),
        prompt: Prompt::Chat(vec![ChatMessage {
            role: task_manager_api::Role::User,
            // The int8 model answers the bare question in French (its first
            // token is a near tie in f32); asked for a sentence, both say Paris.
            content: "What is the capital of France? Answer in one sentence.".into(),
        }]),
        max_new_tokens: 12,
        sampling: Sampling::default(),
        stop_sequences: vec![],
        seed: Some(serde_bytes::ByteBuf::from(vec![0; 32])),
    };
    let expected = engine_output(dir, &request);
    let job = env.generate(user, &request).unwrap();
    let (info, seen) = env.wait_job(user, job);
    assert!(
        matches!(
            info.status,
            JobStatus::Completed {
                finish_reason: FinishReason::MaxNewTokens | FinishReason::Eos
            }
        ),
        "{info:?}"
    );
    assert_eq!(info.tokens, expected.tokens);
    assert_eq!(info.text, expected.text);
    assert!(info.text.contains("Paris"), "{:?}", info.text);
    assert!(seen.len() >= 3, "streamed: {seen:?}");
    let i = info.instructions.unwrap();
    eprintln!(
        "{dir} in the replica: prompt {} tokens in {} message(s), {} instructions; {} decode messages, {} instructions; max per message {}",
        info.prompt_tokens, i.prefill_messages, i.prefill, i.decode_messages, i.decode, i.max_message
    );
    assert!(i.max_message < 40_000_000_000);
}
