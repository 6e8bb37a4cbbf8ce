//! Another canister using the suite over candid: the example caller
//! (`canisters/examples/caller`) asks with `generate_and_wait`, and starts
//! a job with `generate` then polls `job`.

use candid::encode_one;
use integration_tests::{controller, principal, wasm};
use task_manager_api::{ChatMessage, GenerateRequest, JobInfo, JobStatus, Prompt, Sampling};

use crate::generation::{deployed, engine_output, MODEL};

#[derive(candid::CandidType)]
struct InitArgs {
    task_manager: candid::Principal,
    model: String,
}

#[test]
fn another_canister_asks_over_candid() {
    let mut env = deployed(2, 1, None);
    let example = env.ic.create_canister(controller()).unwrap();
    let arg = encode_one(InitArgs {
        task_manager: env.task_manager,
        model: MODEL.into(),
    })
    .unwrap();
    env.ic
        .install_canister(controller(), example, wasm("example_caller"), arg)
        .unwrap();

    let question = "Hello there";
    let expected = engine_output(
        "tiny-llama/stages-1",
        &GenerateRequest {
            model: MODEL.into(),
            prompt: Prompt::Chat(vec![ChatMessage {
                role: "user".into(),
                content: question.into(),
            }]),
            max_new_tokens: 12,
            sampling: Sampling::default(),
            stop_sequences: vec![],
            seed: Some(serde_bytes::ByteBuf::from(vec![0; 32])),
        },
    );
    let user = principal(42);
    let (answer,): (Result<String, String>,) = env
        .ic
        .update(example, user, "ask", (question.to_string(), 12u32))
        .unwrap();
    assert_eq!(answer.unwrap(), expected.text);

    let (job,): (Result<u64, String>,) = env
        .ic
        .update(example, user, "start", (question.to_string(), 12u32))
        .unwrap();
    let job = job.unwrap();
    let info = loop {
        let (info,): (Result<JobInfo, String>,) =
            env.ic.update(example, user, "poll", (job,)).unwrap();
        let info = info.unwrap();
        if info.status.is_final() {
            break info;
        }
    };
    assert!(matches!(info.status, JobStatus::Completed { .. }));
    assert_eq!(info.text, expected.text);
    // The example is a user of its own: its bucket paid for both jobs.
    assert_eq!(info.owner, example);
}
