//! Generation through the real canisters: the task manager, workers
//! holding the bundled tiny model's stages, one token per message.

use std::sync::Arc;

use candid::Principal;
use integration_tests::{controller, principal, request, workspace, Env};
use local_replica::Error as ReplicaError;
use task_manager_api::{
    AdminError, ConfigUpdate, FinishReason, GenerateRequest, InitArgs, JobStatus, Prompt, Quota,
    Role, Sampling, UserError, WorkerState,
};

pub const MODEL: &str = "tiny-llama";

/// What the engine generates natively for the same request, on the runtime
/// the worker runs (the engine's own pass, for ONNX `f32` stages as for q8
/// ones): the same bits in wasm and natively, so the same tokens.
pub fn engine_output(dir: &str, req: &GenerateRequest) -> engine::Output {
    let model = engine::ModelDir::read(workspace().join("models").join(dir)).unwrap();
    let tokenizer = Arc::new(model.tokenizer().unwrap());
    // As the worker encodes user text: special-token strings stay plain.
    let ids = match &req.prompt {
        Prompt::Text(t) => tokenizer.encode_plain(t).unwrap(),
        Prompt::Chat(m) => {
            let m: Vec<engine::ChatMessage> = m
                .iter()
                .map(|m| engine::ChatMessage::new(m.role.as_str(), &m.content))
                .collect();
            tokenizer.encode_chat(&m, true).unwrap()
        }
    };
    let s = &req.sampling;
    let params = engine::SamplingParams {
        temperature: s.temperature.unwrap_or(0.0),
        top_k: s.top_k.unwrap_or(0) as usize,
        top_p: s.top_p.unwrap_or(1.0),
        repetition_penalty: s.repetition_penalty.unwrap_or(1.0),
        max_new_tokens: req.max_new_tokens as usize,
        stop_sequences: req.stop_sequences.clone(),
        seed: req.seed.as_ref().unwrap().as_slice().try_into().unwrap(),
    };
    let pipeline = model.pipeline_with(engine::Runtime::Engine).unwrap();
    engine::generate(Arc::new(pipeline), tokenizer, ids, params).unwrap()
}

pub fn sampled() -> Sampling {
    Sampling {
        temperature: Some(0.8),
        top_k: Some(50),
        top_p: Some(0.95),
        repetition_penalty: Some(1.1),
    }
}

/// A task manager with `stages`-stage tiny model deployed on `pipelines`
/// pipelines.
pub fn deployed(stages: u32, pipelines: u32, quota: Option<Quota>) -> Env {
    let mut env = Env::new(InitArgs {
        default_quota: quota,
        // Users start with a full bucket (the balances below count from it).
        config: Some(ConfigUpdate {
            new_user_tokens: Some(Quota::MAX_CAPACITY),
            ..Default::default()
        }),
    });
    env.add_workers((stages * pipelines) as usize);
    env.upload_model(&format!("tiny-llama/stages-{stages}"));
    let deployed = env.deploy(MODEL, pipelines);
    assert_eq!(deployed.len(), pipelines as usize);
    assert!(deployed.iter().all(|p| p.healthy), "{deployed:?}");
    env
}

#[test]
fn one_and_two_stage_deployments_stream_the_engines_tokens() {
    let req = request(MODEL, "Once upon a time", 24, sampled(), 5);
    let expected = engine_output("tiny-llama/stages-1", &req);
    let mut tokens = Vec::new();
    for stages in [1, 2] {
        let mut env = deployed(stages, 1, None);
        let alice = principal(1);
        let before = env.register(alice).tokens_available;
        let job = env.generate(alice, &req).unwrap();
        let (info, seen) = env.wait_job(alice, job);
        assert_eq!(
            info.status,
            JobStatus::Completed {
                finish_reason: match expected.finish_reason {
                    engine::FinishReason::Eos => FinishReason::Eos,
                    engine::FinishReason::MaxNewTokens => FinishReason::MaxNewTokens,
                    other => panic!("unexpected {other:?}"),
                }
            },
            "{stages} stages"
        );
        assert_eq!(info.text, expected.text, "{stages} stages");
        assert_eq!(info.tokens, expected.tokens, "{stages} stages");
        assert_eq!(info.generated_tokens as usize, expected.tokens.len());
        // Streaming: the text was seen growing, every view a prefix of the end.
        assert!(seen.len() >= 3, "{stages} stages: only saw {seen:?}");
        assert!(seen.iter().all(|t| info.text.starts_with(t.as_str())));
        // One message per token on the driver (plus the prefill).
        let instructions = info.instructions.unwrap();
        assert_eq!(instructions.prefill_messages, 1);
        assert_eq!(
            instructions.decode_messages as usize,
            expected.tokens.len() - 1
        );
        assert!(instructions.decode > 0 && instructions.max_message > 0);
        // The reservation was the prompt's bound plus `max_new_tokens`;
        // what the job used (its prompt and generated tokens) was kept,
        // the rest came back.
        let after = env.whoami(alice).tokens_available;
        assert_eq!(
            before - after,
            u64::from(info.prompt_tokens) + u64::from(info.generated_tokens)
        );
        assert_eq!(info.pipeline, Some(0));
        tokens.push(info.tokens);
    }
    assert_eq!(tokens[0], tokens[1]);
}

#[test]
fn chat_prompts_and_stop_sequences_match_the_engine() {
    let mut env = deployed(2, 1, None);
    let bob = principal(2);
    env.register(bob);
    let mut req = request(MODEL, "", 20, Sampling::default(), 0);
    req.prompt = Prompt::Chat(vec![task_manager_api::ChatMessage {
        role: Role::User,
        content: "Hello there".into(),
    }]);
    let expected = engine_output("tiny-llama/stages-1", &req);
    let job = env.generate(bob, &req).unwrap();
    let (info, _) = env.wait_job(bob, job);
    assert_eq!(info.tokens, expected.tokens);
    assert_eq!(info.text, expected.text);

    // A stop sequence taken from the middle of the greedy text.
    let plain = request(MODEL, "Once upon a time", 24, Sampling::default(), 0);
    let full = engine_output("tiny-llama/stages-1", &plain);
    let chars: Vec<char> = full.text.chars().collect();
    assert!(chars.len() > 8, "{:?}", full.text);
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 3].iter().collect();
    let mut stopped = plain.clone();
    stopped.stop_sequences = vec![stop.clone()];
    let expected = engine_output("tiny-llama/stages-1", &stopped);
    assert_eq!(expected.finish_reason, engine::FinishReason::StopSequence);
    let job = env.generate(bob, &stopped).unwrap();
    let (info, _) = env.wait_job(bob, job);
    assert_eq!(
        info.status,
        JobStatus::Completed {
            finish_reason: FinishReason::StopSequence
        }
    );
    assert_eq!(info.text, expected.text);
    assert!(!info.text.contains(&stop));
}

#[test]
fn the_rate_limit_exhausts_and_refills_with_time() {
    let mut env = deployed(
        1,
        1,
        Some(Quota {
            capacity: 100,
            refill_per_sec: 2,
        }),
    );
    let carol = principal(3);
    env.register(carol);
    // Greedy and long enough that the tiny model does not stop early. It
    // reserves its prompt's bound (16 bytes and 2 special tokens) and its
    // 30 new tokens.
    let prompt = "Once upon a time";
    let reserved = prompt.len() as u64 + 2 + 30;
    let req = request(MODEL, prompt, 30, Sampling::default(), 0);
    let job = env.generate(carol, &req).unwrap();
    assert_eq!(env.whoami(carol).tokens_available, 100 - reserved);
    let big = request(MODEL, "Hi", 60, Sampling::default(), 0);
    let refused = env.generate(carol, &big);
    let Err(UserError::RateLimited {
        retry_after_secs,
        requested,
        available,
    }) = refused
    else {
        panic!("expected RateLimited, got {refused:?}");
    };
    assert_eq!(
        (requested, available, retry_after_secs),
        (64, 100 - reserved, 6)
    );
    let (info, _) = env.wait_job(carol, job);
    let used = u64::from(info.prompt_tokens) + u64::from(info.generated_tokens);
    assert!(used < reserved);
    assert_eq!(env.whoami(carol).tokens_available, 100 - used);
    env.ic.advance_time(std::time::Duration::from_secs(5));
    assert_eq!(env.whoami(carol).tokens_available, (110 - used).min(100));
    let job = env.generate(carol, &big).unwrap();
    env.wait_job(carol, job);
}

/// What a refused request's error must look like.
type Expected = fn(&UserError) -> bool;

#[test]
fn bad_requests_are_refused_with_typed_errors_and_no_state_change() {
    let mut env = deployed(1, 1, None);
    let dave = principal(4);
    let tm = env.task_manager;
    // Not registered, or anonymous: refused at inspect_message (ingress)
    // before it costs cycles.
    for who in [dave, Principal::anonymous()] {
        let r: Result<Result<u64, UserError>, _> = env.call(
            tm,
            who,
            "generate",
            &request(MODEL, "Hi", 4, Sampling::default(), 0),
        );
        assert!(matches!(r, Err(ReplicaError::Rejected(_))), "{r:?}");
    }
    let before = env.register(dave).tokens_available;

    let cases: Vec<(GenerateRequest, Expected)> = vec![
        (
            request("no-such-model", "Hi", 4, Sampling::default(), 0),
            |e| matches!(e, UserError::UnknownModel { .. }),
        ),
        (
            request(MODEL, &"x".repeat(70_000), 4, Sampling::default(), 0),
            |e| matches!(e, UserError::PromptTooLong { bytes: 70_000, .. }),
        ),
        (request(MODEL, "Hi", 0, Sampling::default(), 0), |e| {
            matches!(e, UserError::InvalidRequest { .. })
        }),
        (request(MODEL, "Hi", 100_000, Sampling::default(), 0), |e| {
            matches!(e, UserError::InvalidRequest { .. })
        }),
        (
            request(
                MODEL,
                "Hi",
                4,
                Sampling {
                    top_p: Some(2.0),
                    ..Default::default()
                },
                0,
            ),
            |e| matches!(e, UserError::InvalidRequest { .. }),
        ),
        (request(MODEL, "", 4, Sampling::default(), 0), |e| {
            matches!(e, UserError::InvalidRequest { .. })
        }),
    ];
    for (req, expected) in cases {
        let r = env.generate(dave, &req);
        assert!(matches!(&r, Err(e) if expected(e)), "{r:?}");
    }
    assert_eq!(
        env.whoami(dave).tokens_available,
        before,
        "a refused request reserved tokens"
    );
    // No job was created: the next id is still 0.
    assert_eq!(env.job(dave, 0), Err(UserError::UnknownJob { job: 0 }));

    // Too many tokens for the context (the bytes are within the limit):
    // refused before it is queued, since its bound does not fit (before,
    // the driver found out after the job had started).
    let long = request(MODEL, &"word ".repeat(600), 4, Sampling::default(), 0);
    let r = env.generate(dave, &long);
    assert!(
        matches!(r, Err(UserError::PromptTooLong { bytes: 3000, .. })),
        "{r:?}"
    );
    assert_eq!(env.whoami(dave).tokens_available, before);

    // Someone else's job does not exist for you; cancelling a finished one
    // is refused.
    let job = env
        .generate(dave, &request(MODEL, "Hi", 2, Sampling::default(), 0))
        .unwrap();
    env.wait_job(dave, job);
    assert_eq!(
        env.job(principal(9), job),
        Err(UserError::UnknownJob { job })
    );
    let cancelled: Result<task_manager_api::JobInfo, UserError> =
        env.call(tm, dave, "cancel", &job).unwrap();
    assert_eq!(cancelled, Err(UserError::JobFinished { job }));
    assert!(env.pipelines()[0].healthy);
}

#[test]
fn unauthorized_calls_are_refused() {
    let mut env = deployed(2, 1, None);
    let tm = env.task_manager;
    let eve = principal(5);
    env.register(eve);
    let workers = env.pipelines()[0].workers.clone();
    // Admin methods from a user: refused at inspect_message.
    let r: Result<Result<task_manager_api::WorkerInfo, AdminError>, _> =
        env.call(tm, eve, "add_worker", &principal(77));
    assert!(matches!(r, Err(ReplicaError::Rejected(_))), "{r:?}");
    let r: Result<Result<Vec<task_manager_api::PipelineInfo>, AdminError>, _> = env.call(
        tm,
        eve,
        "deploy_model",
        &task_manager_api::deploy_model::DeployModelArgs {
            model: MODEL.into(),
            pipelines: 1,
        },
    );
    assert!(matches!(r, Err(ReplicaError::Rejected(_))), "{r:?}");
    // Worker methods from users, even registered ones: refused.
    for worker in &workers {
        for method in [
            "run_job",
            "load_stages",
            "forward",
            "step",
            "cancel_job",
            "end_job",
        ] {
            let r = env
                .ic
                .update_call(*worker, eve, method, candid::encode_one(0u64).unwrap());
            assert!(
                matches!(r, Err(ReplicaError::Rejected(_))),
                "{method}: {r:?}"
            );
        }
    }
    // A controller reaching a worker directly still gets a typed refusal
    // for methods that are the worker's own.
    let r: Result<Result<worker_api::step::StepReport, worker_api::WorkerError>, _> =
        env.call(workers[0], controller(), "step", &0u64);
    assert!(
        matches!(r, Ok(Err(worker_api::WorkerError::Unauthorized { .. }))),
        "{r:?}"
    );
    // Progress reports come from workers only (as ingress, refused).
    let job = env
        .generate(eve, &request(MODEL, "Hi", 3, Sampling::default(), 0))
        .unwrap();
    env.wait_job(eve, job);
    let forged = task_manager_api::job_progress::JobProgress {
        job,
        text: "forged".into(),
        generated_tokens: 99,
        prompt_tokens: 1,
    };
    let r: Result<Result<(), task_manager_api::CallbackError>, _> =
        env.call(tm, controller(), "job_progress", &forged);
    assert!(matches!(r, Err(ReplicaError::Rejected(_))), "{r:?}");
    assert_ne!(env.job(eve, job).unwrap().text, "forged");
    assert!(env.workers().iter().all(|w| w.state == WorkerState::Ready));
}
