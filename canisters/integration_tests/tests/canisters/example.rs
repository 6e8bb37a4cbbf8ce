//! Another canister using the suite over candid: the example caller
//! (`canisters/examples/caller`) asks with `generate_and_wait`, and starts
//! a job with `generate` then polls `job`. Installed without an argument it
//! says how to configure it, and works once configured. It spends its own
//! bucket at the task manager only for its controllers and the principals
//! they allow, whether they send ingress or call it from a canister.

use candid::{decode_one, encode_args, encode_one, CandidType, Deserialize, Principal};
use integration_tests::{controller, principal, wasm, Env};
use local_replica::{Error, ErrorCode};
use task_manager_api::{
    ChatMessage, GenerateRequest, InitArgs as TmInitArgs, JobInfo, JobStatus, Prompt, Role,
    Sampling, UserError as TmUserError,
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

/// The example's `ExampleError`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
enum ExampleError {
    NotAllowed { caller: Principal },
    NotConfigured { message: String },
    TaskManagerRefused { method: String, error: TmUserError },
    CallFailed { method: String, message: String },
}

/// The example's `AdminError`.
#[derive(CandidType, Deserialize, Debug, PartialEq, Eq)]
enum AdminError {
    NotController { caller: Principal },
    AllowListFull { max: u32 },
    AnonymousPrincipal,
}

/// The model the task manager said it does not know.
fn unknown_model(e: ExampleError) -> String {
    match e {
        ExampleError::TaskManagerRefused {
            error: TmUserError::UnknownModel { model },
            ..
        } => model,
        other => panic!("expected the task manager's UnknownModel, got {other:?}"),
    }
}

/// The message of `NotConfigured`.
fn not_configured(e: ExampleError) -> String {
    match e {
        ExampleError::NotConfigured { message } => message,
        other => panic!("expected NotConfigured, got {other:?}"),
    }
}

/// What the engine answers to `question` as the example asks it.
fn expected_answer(dir: &str, question: &str, max_new_tokens: u32) -> String {
    engine_output(
        dir,
        &GenerateRequest {
            model: MODEL.into(),
            prompt: Prompt::Chat(vec![ChatMessage {
                role: Role::User,
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

/// `ask` as ingress from `sender`.
fn ask_as(
    env: &mut Env,
    example: Principal,
    sender: Principal,
    question: &str,
) -> Result<Result<String, ExampleError>, Error> {
    env.ic
        .update(example, sender, "ask", (question.to_string(), 12u32))
        .map(|(answer,)| answer)
}

/// `ask` from a controller.
fn ask(env: &mut Env, example: Principal, question: &str) -> Result<String, ExampleError> {
    ask_as(env, example, controller(), question).unwrap()
}

fn config(env: &mut Env, example: Principal) -> Result<Config, ExampleError> {
    env.ic
        .query_one(example, principal(42), "config", &())
        .unwrap()
}

/// `configure`, `allow` or `disallow` as ingress from a controller.
fn admin<A: CandidType>(env: &mut Env, example: Principal, method: &str, arg: &A) {
    let r: Result<(), AdminError> = env
        .ic
        .update_one(example, controller(), method, arg)
        .unwrap();
    r.unwrap_or_else(|e| panic!("{method}: {e:?}"));
}

/// Asserts that `inspect_message` refused an ingress message.
fn assert_refused_at_inspect(result: Result<impl std::fmt::Debug, Error>) {
    match result {
        Err(Error::Rejected(reject)) => assert_eq!(
            reject.error_code,
            Some(ErrorCode::CanisterRejectedMessage),
            "{reject}"
        ),
        other => panic!("expected a refusal by inspect_message, got {other:?}"),
    }
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
    assert_eq!(ask(&mut env, example, question).unwrap(), expected);

    // A principal a controller let in starts and polls as well.
    let user = principal(42);
    admin(&mut env, example, "allow", &user);
    let (job,): (Result<u64, ExampleError>,) = env
        .ic
        .update(example, user, "start", (question.to_string(), 12u32))
        .unwrap();
    let job = job.unwrap();
    let info = loop {
        let (info,): (Result<JobInfo, ExampleError>,) =
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
    let mut env = Env::new(TmInitArgs::default());
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
        let e = not_configured(config(&mut env, example).unwrap_err());
        assert!(
            e.starts_with(
                "no task manager configured: deploy with (opt record { task_manager = opt principal"
            ),
            "{e}"
        );
        let e = not_configured(ask(&mut env, example, "Hello there").unwrap_err());
        assert!(e.starts_with("no task manager configured"), "{e}");
        let (started,): (Result<u64, ExampleError>,) = env
            .ic
            .update(example, controller(), "start", ("Hi".to_string(), 4u32))
            .unwrap();
        let e = not_configured(started.unwrap_err());
        assert!(e.starts_with("no task manager configured"), "{e}");
        examples.push(example);
    }
    let example = examples[0];

    // Only a controller configures it: others are refused at
    // inspect_message (a canister's call gets `NotController`, see
    // `only_controllers_and_allowed_principals_make_it_spend`).
    let tm = InitArgs {
        task_manager: Some(env.task_manager),
        model: None,
    };
    assert_refused_at_inspect(env.ic.update_one::<_, Result<(), AdminError>>(
        example,
        principal(42),
        "configure",
        &tm,
    ));
    assert!(config(&mut env, example).is_err());

    // The task manager alone: the model is the default one, which this
    // task manager does not have (its answer, so the call reached it).
    admin(&mut env, example, "configure", &tm);
    assert_eq!(
        config(&mut env, example).unwrap(),
        Config {
            task_manager: env.task_manager,
            task_manager_source: TaskManagerSource::Configured,
            model: "smollm2-135m-instruct".into(),
        }
    );
    let e = ask(&mut env, example, "Hello there").unwrap_err();
    assert_eq!(unknown_model(e), "smollm2-135m-instruct");

    // The model too; an upgrade without an argument keeps both.
    let model = InitArgs {
        task_manager: None,
        model: Some(MODEL.into()),
    };
    admin(&mut env, example, "configure", &model);
    env.ic
        .upgrade_canister(controller(), example, wasm("example_caller"), Vec::new())
        .unwrap();
    let after = config(&mut env, example).unwrap();
    assert_eq!(after.task_manager, env.task_manager);
    assert_eq!(after.model, MODEL);
    let e = ask(&mut env, example, "Hello there").unwrap_err();
    assert_eq!(unknown_model(e), MODEL);
}

#[test]
fn configured_after_install_it_answers() {
    let mut env = deployed(1, 1, None);
    let example = install_example(&mut env, Vec::new());
    let args = InitArgs {
        task_manager: Some(env.task_manager),
        model: Some(MODEL.into()),
    };
    admin(&mut env, example, "configure", &args);
    let question = "Hello there";
    assert_eq!(
        ask(&mut env, example, question).unwrap(),
        expected_answer("tiny-llama/stages-1", question, 12)
    );
}

/// A canister that is not a controller of the example: the tests' WAT
/// proxy, which forwards any call. Its calls never pass the example's
/// `inspect_message`, so what it gets is the method's own answer.
fn install_relay(env: &mut Env) -> Principal {
    env.install_test_canister(integration_tests::test_canisters::PROXY)
}

/// `method` of the example called by the relay canister, and its answer.
fn relayed<A: candid::utils::ArgumentEncoder, R: CandidType + for<'de> Deserialize<'de>>(
    env: &mut Env,
    relay: Principal,
    example: Principal,
    method: &str,
    args: A,
) -> R {
    let bytes = env
        .call_from(relay, example, method, encode_args(args).unwrap())
        .unwrap_or_else(|e| panic!("{method} through the relay: {e}"));
    decode_one(&bytes).unwrap()
}

/// Tokens in the example's bucket at the task manager.
fn example_tokens(env: &mut Env, example: Principal) -> u64 {
    let tm = env.task_manager;
    let profile: task_manager_api::user::Response = env
        .ic
        .query_one(tm, controller(), "user", &example)
        .unwrap();
    profile.into_result().unwrap().tokens_available
}

#[test]
fn only_controllers_and_allowed_principals_make_it_spend() {
    let mut env = deployed(1, 1, None);
    let arg = encode_one(Some(InitArgs {
        task_manager: Some(env.task_manager),
        model: Some(MODEL.into()),
    }))
    .unwrap();
    let example = install_example(&mut env, arg);
    let question = "Hello there";
    let expected = expected_answer("tiny-llama/stages-1", question, 12);

    // A controller asks: the example registers and spends its bucket.
    assert_eq!(ask(&mut env, example, question).unwrap(), expected);
    let tokens = example_tokens(&mut env, example);

    // A canister that is neither a controller nor allowed gets the
    // method's own refusal, for every spending method and every admin one;
    // a principal's ingress is refused before the example pays for it.
    let relay = install_relay(&mut env);
    let alice = principal(42);
    let not_allowed = ExampleError::NotAllowed { caller: relay };
    let asked: Result<String, ExampleError> =
        relayed(&mut env, relay, example, "ask", (question, 12u32));
    assert_eq!(asked, Err(not_allowed.clone()));
    let started: Result<u64, ExampleError> =
        relayed(&mut env, relay, example, "start", (question, 12u32));
    assert_eq!(started, Err(not_allowed.clone()));
    let polled: Result<JobInfo, ExampleError> = relayed(&mut env, relay, example, "poll", (0u64,));
    assert_eq!(polled, Err(not_allowed));
    assert_refused_at_inspect(ask_as(&mut env, example, alice, question));
    assert_refused_at_inspect(env.ic.update::<_, (Result<u64, ExampleError>,)>(
        example,
        alice,
        "start",
        (question, 12u32),
    ));
    let not_controller = Err(AdminError::NotController { caller: relay });
    for method in ["allow", "disallow"] {
        let r: Result<(), AdminError> = relayed(&mut env, relay, example, method, (relay,));
        assert_eq!(r, not_controller, "{method}");
    }
    let r: Result<(), AdminError> = relayed(
        &mut env,
        relay,
        example,
        "configure",
        (InitArgs::default(),),
    );
    assert_eq!(r, not_controller);
    let listed: Result<Vec<Principal>, AdminError> =
        env.ic.query_one(example, alice, "allowed", &()).unwrap();
    assert_eq!(listed, Err(AdminError::NotController { caller: alice }));
    // Its bucket is untouched (time stands still in the local replica).
    assert_eq!(example_tokens(&mut env, example), tokens);

    // Once a controller allows them, both make it spend.
    admin(&mut env, example, "allow", &relay);
    admin(&mut env, example, "allow", &alice);
    let r: Result<(), AdminError> = env
        .ic
        .update_one(example, controller(), "allow", &Principal::anonymous())
        .unwrap();
    assert_eq!(r, Err(AdminError::AnonymousPrincipal));
    let asked: Result<String, ExampleError> =
        relayed(&mut env, relay, example, "ask", (question, 12u32));
    assert_eq!(asked.unwrap(), expected);
    let after_relay = example_tokens(&mut env, example);
    assert!(after_relay < tokens, "{after_relay} >= {tokens}");
    assert_eq!(
        ask_as(&mut env, example, alice, question).unwrap(),
        Ok(expected.clone())
    );
    assert!(example_tokens(&mut env, example) < after_relay);
    // Allowed to spend is not allowed to manage.
    let r: Result<(), AdminError> = relayed(&mut env, relay, example, "allow", (principal(43),));
    assert_eq!(r, not_controller);

    // The allow list survives an upgrade.
    let mut both = vec![relay, alice];
    both.sort();
    let listed: Result<Vec<Principal>, AdminError> = env
        .ic
        .query_one(example, controller(), "allowed", &())
        .unwrap();
    assert_eq!(listed, Ok(both.clone()));
    env.ic
        .upgrade_canister(controller(), example, wasm("example_caller"), Vec::new())
        .unwrap();
    let listed: Result<Vec<Principal>, AdminError> = env
        .ic
        .query_one(example, controller(), "allowed", &())
        .unwrap();
    assert_eq!(listed, Ok(both));
    let asked: Result<String, ExampleError> =
        relayed(&mut env, relay, example, "ask", (question, 12u32));
    assert_eq!(asked.unwrap(), expected);

    // Taken off the list, the relay is refused again, its ingress too.
    admin(&mut env, example, "disallow", &relay);
    admin(&mut env, example, "disallow", &alice);
    let tokens = example_tokens(&mut env, example);
    let asked: Result<String, ExampleError> =
        relayed(&mut env, relay, example, "ask", (question, 12u32));
    assert_eq!(asked, Err(ExampleError::NotAllowed { caller: relay }));
    assert_refused_at_inspect(ask_as(&mut env, example, alice, question));
    assert_eq!(example_tokens(&mut env, example), tokens);
}

/// What `icp deploy` does: it sets `PUBLIC_CANISTER_ID:task_manager` in the
/// example's settings and installs it with `()`.
#[test]
fn with_icp_cli_it_finds_the_task_manager_in_its_environment() {
    use local_replica::management::{
        CanisterSettings, EnvironmentVariable, ProvisionalCreateCanisterArgs,
    };
    let mut env = Env::new(TmInitArgs::default());
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
