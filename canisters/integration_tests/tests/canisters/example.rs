//! Another canister using the suite over candid: the example caller
//! (`canisters/examples/caller`) asks with `generate_and_wait`, and starts
//! a job with `generate` then polls `job`. Installed without an argument it
//! says how to configure it, and works once configured.

use candid::{encode_args, encode_one, CandidType, Deserialize, Principal};
use integration_tests::{controller, principal, wasm, Env};
use task_manager_api::{
    ChatMessage, GenerateRequest, InitArgs as TmInitArgs, JobInfo, JobStatus, Prompt, Sampling,
};

use crate::generation::{deployed, engine_output, MODEL};

/// The example's install argument (`opt InitArgs`) and `configure`'s.
#[derive(CandidType, Default)]
struct InitArgs {
    task_manager: Option<Principal>,
    model: Option<String>,
}

#[derive(CandidType, Deserialize, Debug, PartialEq, Eq)]
enum TaskManagerSource {
    Configured,
    CanisterEnvironment,
    Build,
}

#[derive(CandidType, Deserialize, Debug, PartialEq, Eq)]
struct Config {
    task_manager: Principal,
    task_manager_source: TaskManagerSource,
    model: String,
}

/// What the engine answers to `question` as the example asks it.
fn expected_answer(dir: &str, question: &str, max_new_tokens: u32) -> String {
    engine_output(
        dir,
        &GenerateRequest {
            model: MODEL.into(),
            prompt: Prompt::Chat(vec![ChatMessage {
                role: "user".into(),
                content: question.into(),
            }]),
            max_new_tokens,
            sampling: Sampling::default(),
            stop_sequences: vec![],
            seed: Some(serde_bytes::ByteBuf::from(vec![0; 32])),
        },
    )
    .text
}

fn install_example(env: &mut Env, arg: Vec<u8>) -> Principal {
    let example = env.ic.create_canister(controller()).unwrap();
    env.ic
        .install_canister(controller(), example, wasm("example_caller"), arg)
        .unwrap();
    example
}

fn ask(env: &mut Env, example: Principal, question: &str) -> Result<String, String> {
    let (answer,): (Result<String, String>,) = env
        .ic
        .update(example, principal(42), "ask", (question.to_string(), 12u32))
        .unwrap();
    answer
}

fn config(env: &mut Env, example: Principal) -> Result<Config, String> {
    env.ic
        .query_one(example, principal(42), "config", &())
        .unwrap()
}

#[test]
fn another_canister_asks_over_candid() {
    let mut env = deployed(2, 1, None);
    let arg = encode_one(Some(InitArgs {
        task_manager: Some(env.task_manager),
        model: Some(MODEL.into()),
    }))
    .unwrap();
    let example = install_example(&mut env, arg);

    let question = "Hello there";
    let expected = expected_answer("tiny-llama/stages-1", question, 12);
    let user = principal(42);
    assert_eq!(ask(&mut env, example, question).unwrap(), expected);

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
    assert_eq!(info.text, expected);
    // The example is a user of its own: its bucket paid for both jobs.
    assert_eq!(info.owner, example);
}

#[test]
fn without_an_argument_it_says_how_to_configure() {
    // A task manager with no workers: enough to see where the example's
    // calls go.
    let mut env = Env::new(TmInitArgs {
        default_quota: None,
    });
    // No argument at all, `()` (what icp-cli sends) and `(null)` (what dfx
    // sends for an `opt` init argument): each installs, and each method
    // says what is missing. The local replica sets no canister environment
    // variables and the shipped module has no build-time id.
    let mut examples = Vec::new();
    for arg in [
        Vec::new(),
        encode_args(()).unwrap(),
        encode_one(None::<InitArgs>).unwrap(),
    ] {
        let example = install_example(&mut env, arg);
        let e = config(&mut env, example).unwrap_err();
        assert!(
            e.starts_with(
                "no task manager configured: deploy with (opt record { task_manager = opt principal"
            ),
            "{e}"
        );
        let e = ask(&mut env, example, "Hello there").unwrap_err();
        assert!(e.starts_with("no task manager configured"), "{e}");
        let (started,): (Result<u64, String>,) = env
            .ic
            .update(example, principal(42), "start", ("Hi".to_string(), 4u32))
            .unwrap();
        assert!(started
            .unwrap_err()
            .starts_with("no task manager configured"));
        examples.push(example);
    }
    let example = examples[0];

    // Only a controller configures it.
    let tm = InitArgs {
        task_manager: Some(env.task_manager),
        model: None,
    };
    let refused = env
        .ic
        .update_one::<_, ()>(example, principal(42), "configure", &tm)
        .unwrap_err();
    assert!(
        refused.to_string().contains("only a controller"),
        "{refused}"
    );
    assert!(config(&mut env, example).is_err());

    // The task manager alone: the model is the default one, which this
    // task manager does not have (its answer, so the call reached it).
    env.ic
        .update_one::<_, ()>(example, controller(), "configure", &tm)
        .unwrap();
    assert_eq!(
        config(&mut env, example).unwrap(),
        Config {
            task_manager: env.task_manager,
            task_manager_source: TaskManagerSource::Configured,
            model: "smollm2-135m-instruct".into(),
        }
    );
    let e = ask(&mut env, example, "Hello there").unwrap_err();
    assert!(e.contains("\"smollm2-135m-instruct\""), "{e}");

    // The model too; an upgrade without an argument keeps both.
    let model = InitArgs {
        task_manager: None,
        model: Some(MODEL.into()),
    };
    env.ic
        .update_one::<_, ()>(example, controller(), "configure", &model)
        .unwrap();
    env.ic
        .upgrade_canister(controller(), example, wasm("example_caller"), Vec::new())
        .unwrap();
    let after = config(&mut env, example).unwrap();
    assert_eq!(after.task_manager, env.task_manager);
    assert_eq!(after.model, MODEL);
    let e = ask(&mut env, example, "Hello there").unwrap_err();
    assert!(e.contains("\"tiny-llama\""), "{e}");
}

#[test]
fn configured_after_install_it_answers() {
    let mut env = deployed(1, 1, None);
    let example = install_example(&mut env, Vec::new());
    let args = InitArgs {
        task_manager: Some(env.task_manager),
        model: Some(MODEL.into()),
    };
    env.ic
        .update_one::<_, ()>(example, controller(), "configure", &args)
        .unwrap();
    let question = "Hello there";
    assert_eq!(
        ask(&mut env, example, question).unwrap(),
        expected_answer("tiny-llama/stages-1", question, 12)
    );
}

/// What `icp deploy` does: it sets `PUBLIC_CANISTER_ID:task_manager` in the
/// example's settings and installs it with `()`.
#[test]
fn with_icp_cli_it_finds_the_task_manager_in_its_environment() {
    use local_replica::management::{
        CanisterSettings, EnvironmentVariable, ProvisionalCreateCanisterArgs,
    };
    let mut env = Env::new(TmInitArgs {
        default_quota: None,
    });
    let tm = env.suite.task_manager;
    let example = env
        .ic
        .create_canister_with(
            controller(),
            ProvisionalCreateCanisterArgs {
                settings: Some(CanisterSettings {
                    environment_variables: Some(vec![EnvironmentVariable {
                        name: "PUBLIC_CANISTER_ID:task_manager".into(),
                        value: tm.to_text(),
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .unwrap();
    env.ic
        .install_canister(
            controller(),
            example,
            wasm("example_caller"),
            encode_args(()).unwrap(),
        )
        .unwrap();
    assert_eq!(
        config(&mut env, example).unwrap(),
        Config {
            task_manager: tm,
            task_manager_source: TaskManagerSource::CanisterEnvironment,
            model: "smollm2-135m-instruct".into(),
        }
    );
}
