//! Attacks on the suite, through the real canisters. Each test here would
//! have succeeded before the fix it names and is refused now. Calls come
//! from a *canister* (the WAT proxy of `integration_tests::test_canisters`)
//! wherever `inspect_message` would otherwise answer first: canisters
//! reach methods directly, so each method's own typed refusal is checked.

use candid::{encode_one, CandidType, Deserialize, Nat, Principal};
use integration_tests::test_canisters::{PROXY, SILENT};
use integration_tests::{controller, principal, request, Env};
use local_replica::Error as ReplicaError;
use serde_bytes::ByteBuf;
use task_manager_api::job_finished::{JobEnd, JobFinishedArgs};
use task_manager_api::job_progress::JobProgress;
use task_manager_api::worker_ready::WorkerReadyArgs;
use task_manager_api::{
    AdminError, CallbackError, ChunkRef, ConfigUpdate, InitArgs, JobStatus, ModelFile, PageArgs,
    Quota, RegistrationPolicy, Sampling, UserError, UserProfile,
};
use worker_api::WorkerError;

use crate::generation::{deployed, MODEL};

/// `method` of the task manager called by the proxy canister, decoded as
/// `Result<R, E>`.
fn from_proxy<A: CandidType, R, E>(
    env: &mut Env,
    proxy: Principal,
    method: &str,
    arg: &A,
) -> Result<R, E>
where
    R: CandidType + for<'de> Deserialize<'de>,
    E: CandidType + for<'de> Deserialize<'de>,
{
    let tm = env.task_manager;
    env.call_from_as(proxy, tm, method, arg)
        .unwrap_or_else(|e| panic!("{method} from a canister: {e}"))
}

#[test]
fn every_admin_method_refuses_a_canister_that_is_not_a_controller() {
    let mut env = Env::new(InitArgs::default());
    let proxy = env.install_test_canister(PROXY);
    let quota = Quota {
        capacity: 1,
        refill_per_sec: 1,
    };
    let chunk = ChunkRef {
        model: "m".into(),
        file: ModelFile::Tokenizer,
        index: 0,
    };
    let p = principal(1);
    let e = AdminError::NotController;
    macro_rules! refused {
        ($method:expr, $arg:expr, $ok:ty) => {
            let r: Result<$ok, AdminError> = from_proxy(&mut env, proxy, $method, &$arg);
            assert_eq!(r, Err(e.clone()), "{}", $method);
        };
    }
    refused!("set_default_quota", quota, ());
    refused!(
        "set_user_quota",
        task_manager_api::set_user_quota::SetUserQuotaArgs {
            user: p,
            quota: None
        },
        ()
    );
    refused!("set_paused", true, ());
    refused!(
        "set_config",
        ConfigUpdate::default(),
        task_manager_api::Config
    );
    refused!("approve_users", vec![proxy], u32);
    refused!("ban_user", p, ());
    refused!("unban_user", p, ());
    refused!(
        "create_model",
        task_manager_api::create_model::CreateModelArgs {
            manifest_json: ByteBuf::from(b"{}".to_vec())
        },
        task_manager_api::ModelInfo
    );
    refused!(
        "upload_chunk",
        task_manager_api::upload_chunk::UploadChunkArgs {
            chunk: chunk.clone(),
            bytes: ByteBuf::from(vec![1])
        },
        task_manager_api::upload_chunk::UploadProgress
    );
    refused!("delete_model", "m".to_string(), ());
    refused!("add_worker", proxy, task_manager_api::WorkerInfo);
    refused!("remove_worker", proxy, task_manager_api::WorkerInfo);
    refused!(
        "deploy_model",
        task_manager_api::deploy_model::DeployModelArgs {
            model: "m".into(),
            pipelines: 1
        },
        Vec<task_manager_api::PipelineInfo>
    );
    refused!("undeploy_model", "m".to_string(), Vec<u32>);
    refused!(
        "upload_worker_wasm",
        task_manager_api::upload_worker_wasm::UploadWorkerWasmArgs {
            offset: 0,
            bytes: ByteBuf::from(vec![0, 97, 115, 109])
        },
        task_manager_api::WasmInfo
    );
    refused!(
        "spawn_workers",
        task_manager_api::spawn_workers::SpawnWorkersArgs {
            count: 1,
            cycles_per_worker: Nat::from(1_000_000_000_000u64)
        },
        Vec<task_manager_api::WorkerInfo>
    );
    // Controllers' queries, called by a canister (as updates).
    refused!("config", (), task_manager_api::Config);
    refused!("user", p, UserProfile);
    refused!(
        "missing_chunks",
        task_manager_api::missing_chunks::MissingChunksArgs {
            model: "m".into(),
            start: 0,
            length: 1
        },
        task_manager_api::missing_chunks::MissingChunksPage
    );
    refused!(
        "workers",
        PageArgs::FIRST,
        task_manager_api::workers::WorkersPage
    );
    refused!(
        "pending_users",
        task_manager_api::pending_users::PendingUsersArgs {
            after: None,
            count: 1
        },
        Vec<Principal>
    );
}

#[test]
fn reports_from_a_canister_that_is_not_a_worker_are_refused() {
    let mut env = deployed(1, 1, None);
    let proxy = env.install_test_canister(PROXY);
    let alice = principal(1);
    env.register(alice);
    let job = env
        .generate(alice, &request(MODEL, "Hi", 2, Sampling::default(), 0))
        .unwrap();
    let refusal = CallbackError::NotAWorker { caller: proxy };
    let forged = JobProgress {
        job,
        text: "forged".into(),
        generated_tokens: 1,
        prompt_tokens: 1,
    };
    let r: Result<(), CallbackError> = from_proxy(&mut env, proxy, "job_progress", &forged);
    assert_eq!(r, Err(refusal.clone()));
    let end = JobFinishedArgs {
        job,
        end: JobEnd::Failed(WorkerError::NotLoaded),
    };
    let r: Result<(), CallbackError> = from_proxy(&mut env, proxy, "job_finished", &end);
    assert_eq!(r, Err(refusal.clone()));
    let ready = WorkerReadyArgs {
        model: MODEL.into(),
        stages: vec![0],
        error: Some("forged".into()),
    };
    let r: Result<(), CallbackError> = from_proxy(&mut env, proxy, "worker_ready", &ready);
    assert_eq!(r, Err(refusal));
    let (info, _) = env.wait_job(alice, job);
    assert!(
        matches!(info.status, JobStatus::Completed { .. }),
        "{info:?}"
    );
    assert_ne!(info.text, "forged");
    assert!(env.pipelines()[0].healthy);
}

#[test]
fn every_worker_method_refuses_a_canister_outside_its_pipeline() {
    let mut env = deployed(2, 1, None);
    let proxy = env.install_test_canister(PROXY);
    let workers = env.pipelines()[0].workers.clone();
    let refusal = WorkerError::Unauthorized { caller: proxy };
    for &w in &workers {
        let run = worker_api::run_job::RunJobArgs {
            job: 1,
            prompt: task_manager_api::Prompt::Text("Hi".into()),
            sampling: Sampling::default(),
            max_new_tokens: 1,
            stop_sequences: vec![],
            seed: ByteBuf::from(vec![0; 32]),
        };
        let r: Result<(), WorkerError> = env.call_from_as(proxy, w, "run_job", &run).unwrap();
        assert_eq!(r, Err(refusal.clone()), "run_job");
        let load = worker_api::load_stages::LoadStagesArgs {
            model: MODEL.into(),
            manifest_json: ByteBuf::from(b"{}".to_vec()),
            stages: vec![0],
            pipeline: vec![proxy],
        };
        let r: Result<(), WorkerError> = env.call_from_as(proxy, w, "load_stages", &load).unwrap();
        assert_eq!(r, Err(refusal.clone()), "load_stages");
        let r: Result<bool, WorkerError> = env.call_from_as(proxy, w, "load_step", &1u64).unwrap();
        assert_eq!(r, Err(refusal.clone()), "load_step");
        let fwd = worker_api::forward::ForwardArgs {
            job: 1,
            start_position: 0,
            data: worker_api::StageData::Hidden {
                seq_len: 1,
                hidden_size: 1,
                values: vec![0.0],
            },
        };
        let r: Result<worker_api::forward::ForwardOutput, WorkerError> =
            env.call_from_as(proxy, w, "forward", &fwd).unwrap();
        assert_eq!(r, Err(refusal.clone()), "forward");
        let r: Result<worker_api::step::StepReport, WorkerError> =
            env.call_from_as(proxy, w, "step", &1u64).unwrap();
        assert_eq!(r, Err(refusal.clone()), "step");
        let r: Result<(), WorkerError> = env.call_from_as(proxy, w, "cancel_job", &1u64).unwrap();
        assert_eq!(r, Err(refusal.clone()), "cancel_job");
    }
    assert!(env.pipelines()[0].healthy);
}

#[test]
fn padded_arguments_from_canisters_are_refused_by_each_methods_guard() {
    let mut env = Env::new(InitArgs::default());
    let proxy = env.install_test_canister(PROXY);
    let tm = env.task_manager;
    // `register` takes nothing; 100 KB of padding after it used to be
    // accepted from a canister (inspect_message sees only ingress).
    let padded = candid::encode_args(((), ByteBuf::from(vec![0u8; 100_000]))).unwrap();
    let r = env.call_from(proxy, tm, "register", padded);
    match r {
        Err(ReplicaError::Rejected(reject)) => {
            assert!(reject.message.contains("at most"), "{reject}")
        }
        other => panic!("expected the guard's refusal, got {other:?}"),
    }
    // Without the padding the proxy registers.
    let ok: Result<UserProfile, UserError> = from_proxy(&mut env, proxy, "register", &());
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn throwaway_principals_get_a_small_bucket_a_capped_registration_and_a_job_cap() {
    let mut env = deployed(1, 1, None);
    let config: Result<task_manager_api::Config, AdminError> = env.admin(
        "set_config",
        &ConfigUpdate {
            registration: Some(RegistrationPolicy::Open { max_users: 3 }),
            new_user_tokens: Some(50),
            max_jobs_per_user: Some(2),
            ..Default::default()
        },
    );
    config.unwrap();
    // Before: every new principal got a full bucket (10,000 by default).
    for n in 1..=3 {
        assert_eq!(env.register(principal(n)).tokens_available, 50);
    }
    // Refused at inspect_message as ingress…
    let tm = env.task_manager;
    let r: Result<Result<UserProfile, UserError>, _> = env.call(tm, principal(4), "register", &());
    assert!(matches!(r, Err(ReplicaError::Rejected(_))), "{r:?}");
    // …and by the method itself from a canister.
    let proxy = env.install_test_canister(PROXY);
    let r: Result<UserProfile, UserError> = from_proxy(&mut env, proxy, "register", &());
    assert_eq!(r, Err(UserError::RegistrationClosed { max: 3 }));

    // Two jobs queued or running per user, no more (the third would have
    // been queued before).
    let req = request(MODEL, "Hi", 4, Sampling::default(), 0);
    env.generate(principal(1), &req).unwrap();
    env.generate(principal(1), &req).unwrap();
    assert_eq!(
        env.generate(principal(1), &req),
        Err(UserError::TooManyJobs { active: 2, max: 2 })
    );
}

#[test]
fn approval_and_allow_list_admit_only_whom_controllers_choose() {
    let mut env = deployed(1, 1, None);
    let proxy = env.install_test_canister(PROXY);
    let set = |env: &mut Env, policy| {
        let r: Result<task_manager_api::Config, AdminError> = env.admin(
            "set_config",
            &ConfigUpdate {
                registration: Some(policy),
                ..Default::default()
            },
        );
        r.unwrap();
    };
    set(&mut env, RegistrationPolicy::Approval);
    let r: Result<UserProfile, UserError> = from_proxy(&mut env, proxy, "register", &());
    assert_eq!(r, Err(UserError::ApprovalPending));
    let req = request(MODEL, "Hi", 4, Sampling::default(), 0);
    let r: Result<u64, UserError> = from_proxy(&mut env, proxy, "generate", &req);
    assert_eq!(r, Err(UserError::ApprovalPending));
    let pending: Result<Vec<Principal>, AdminError> = env.admin(
        "pending_users",
        &task_manager_api::pending_users::PendingUsersArgs {
            after: None,
            count: 10,
        },
    );
    assert_eq!(pending.unwrap(), vec![proxy]);
    let approved: Result<u32, AdminError> = env.admin("approve_users", &vec![proxy]);
    assert_eq!(approved, Ok(1));
    let r: Result<UserProfile, UserError> = from_proxy(&mut env, proxy, "register", &());
    let profile = r.unwrap();
    assert_eq!(profile.tokens_available, profile.quota.capacity);
    let r: Result<u64, UserError> = from_proxy(&mut env, proxy, "generate", &req);
    assert!(r.is_ok(), "{r:?}");

    set(&mut env, RegistrationPolicy::AllowList);
    let other = env.install_test_canister(PROXY);
    let r: Result<UserProfile, UserError> = from_proxy(&mut env, other, "register", &());
    assert_eq!(r, Err(UserError::NotAllowed));
    let approved: Result<u32, AdminError> = env.admin("approve_users", &vec![other]);
    assert_eq!(approved, Ok(1));
    let r: Result<UserProfile, UserError> = from_proxy(&mut env, other, "register", &());
    assert!(r.is_ok());
}

#[test]
fn prompt_tokens_are_reserved_and_a_prompt_beyond_the_context_is_refused() {
    let mut env = deployed(1, 1, None);
    let mallory = principal(6);
    let before = env.register(mallory).tokens_available;
    // A long prompt with max_new_tokens = 1 used to reserve 1 token.
    let long = request(MODEL, &"word ".repeat(80), 1, Sampling::default(), 0);
    let job = env.generate(mallory, &long).unwrap();
    assert_eq!(env.whoami(mallory).tokens_available, before - 400 - 2 - 1);
    let (info, _) = env.wait_job(mallory, job);
    // Settled to what it used.
    assert_eq!(
        env.whoami(mallory).tokens_available,
        before - u64::from(info.prompt_tokens) - u64::from(info.generated_tokens)
    );
    assert!(info.prompt_tokens > 1);
    // 30 KiB with one new token: beyond the tiny model's context of 512.
    let huge = request(MODEL, &"x".repeat(30 * 1024), 1, Sampling::default(), 0);
    let r = env.generate(mallory, &huge);
    assert!(matches!(r, Err(UserError::PromptTooLong { .. })), "{r:?}");
}

/// Reinstalls the first pipeline's driver as a canister that never
/// answers ([`SILENT`]); its id.
fn silence_driver(env: &mut Env) -> Principal {
    let driver = env.pipelines()[0].workers[0];
    env.ic
        .install_code(
            controller(),
            driver,
            local_replica::CanisterInstallMode::Reinstall,
            integration_tests::test_canisters::module(SILENT),
            Vec::new(),
        )
        .unwrap();
    driver
}

#[test]
fn a_driver_that_never_answers_fails_the_job_refunded_and_its_pipeline() {
    let mut env = deployed(1, 1, None);
    let alice = principal(1);
    let before = env.register(alice).tokens_available;
    silence_driver(&mut env);
    let job = env
        .generate(alice, &request(MODEL, "Hi", 4, Sampling::default(), 0))
        .unwrap();
    let info = env.wait_job_as_time_passes(alice, job);
    let JobStatus::Failed { reason } = &info.status else {
        panic!("{info:?}");
    };
    assert!(reason.contains("run_job"), "{reason}");
    assert_eq!(env.whoami(alice).tokens_available, before);
    assert!(!env.pipelines()[0].healthy);
}

#[test]
fn health_checks_never_overlap_while_a_failed_worker_keeps_one_waiting() {
    use task_manager_api::timing::{HEALTH_CHECK_INTERVAL_SECS, WORKER_CALL_TIMEOUT_SECS};
    let mut env = deployed(1, 1, None);
    let alice = principal(1);
    env.register(alice);
    let driver = silence_driver(&mut env);
    let job = env
        .generate(alice, &request(MODEL, "Hi", 4, Sampling::default(), 0))
        .unwrap();
    env.wait_job_as_time_passes(alice, job);
    assert!(!env.pipelines()[0].healthy);
    // Every `status` the health checks sent the failed driver, which
    // never answers them.
    let asked = |env: &Env| {
        env.ic
            .executions()
            .iter()
            .filter(|r| r.canister == driver && r.method == "status")
            .count()
    };
    let passes_before = asked(&env);
    let second = |env: &mut Env| {
        env.ic.advance_time(std::time::Duration::from_secs(1));
        env.ic.tick();
    };
    let mut waited = 0;
    while asked(&env) == passes_before {
        assert!(
            waited <= HEALTH_CHECK_INTERVAL_SECS,
            "no health check asked"
        );
        second(&mut env);
        waited += 1;
    }
    // While that call waits (until its deadline), the checks that fall
    // due skip: one a minute would otherwise pile calls on the worker.
    const { assert!(WORKER_CALL_TIMEOUT_SECS as u64 > HEALTH_CHECK_INTERVAL_SECS) };
    for _ in 0..WORKER_CALL_TIMEOUT_SECS - 5 {
        second(&mut env);
    }
    assert_eq!(asked(&env), passes_before + 1);
    // The deadline ends the wait; the next check asks again.
    for _ in 0..HEALTH_CHECK_INTERVAL_SECS + 10 {
        second(&mut env);
    }
    assert_eq!(asked(&env), passes_before + 2);
}

#[test]
fn a_driver_gone_silent_mid_job_is_timed_out_by_the_watchdog() {
    // No refill: the balance shows exactly what was charged while time
    // passes.
    let mut env = deployed(
        1,
        1,
        Some(Quota {
            capacity: 10_000,
            refill_per_sec: 0,
        }),
    );
    let driver = env.pipelines()[0].workers[0];
    let alice = principal(1);
    let before = env.register(alice).tokens_available;
    let req = request(MODEL, "Once upon a time", 60, Sampling::default(), 0);
    let job = env.generate(alice, &req).unwrap();
    for _ in 0..10_000 {
        if env.job(alice, job).unwrap().generated_tokens >= 2 {
            break;
        }
        env.ic.tick();
    }
    // The driver loses its code mid-job: no report will ever come.
    env.ic.uninstall_code(controller(), driver).unwrap();
    let info = env.wait_job_as_time_passes(alice, job);
    assert!(
        matches!(&info.status, JobStatus::Failed { reason } if reason.contains("no report")),
        "{info:?}"
    );
    // What it streamed is charged, the rest refunded.
    let streamed = u64::from(info.prompt_tokens) + u64::from(info.generated_tokens);
    assert!(info.generated_tokens >= 2);
    assert_eq!(env.whoami(alice).tokens_available, before - streamed);
    assert!(!env.pipelines()[0].healthy);
}

#[test]
fn post_upgrade_stays_flat_with_ten_thousand_finished_jobs() {
    const JOBS: u64 = 10_000;
    let mut env = deployed(1, 1, None);
    let tm = env.task_manager;
    let r: Result<task_manager_api::Config, AdminError> = env.admin(
        "set_config",
        &ConfigUpdate {
            max_jobs_per_user: Some(1_000),
            max_finished_jobs_per_user: Some(10_000),
            ..Default::default()
        },
    );
    r.unwrap();
    let upgrade_instructions = |env: &mut Env| {
        let wasm = integration_tests::wasm("task_manager");
        env.upgrade(tm, wasm, encode_one(None::<InitArgs>).unwrap())
            .unwrap();
        env.ic
            .executions()
            .iter()
            .rev()
            .find(|e| e.canister == tm && e.kind == local_replica::ExecutionKind::PostUpgrade)
            .unwrap()
            .instructions
    };
    let alice = principal(1);
    env.register(alice);
    // The worker is stopped: the first job fails (refunded) and marks the
    // pipeline unhealthy; the rest wait in the queue and are cancelled:
    // finished jobs without running the model.
    let worker = env.pipelines()[0].workers[0];
    env.ic.stop_canister(controller(), worker).unwrap();
    let first = env
        .generate(alice, &request(MODEL, "Hi", 1, Sampling::default(), 0))
        .unwrap();
    env.ic.run_until_idle().unwrap();
    assert!(matches!(
        env.job(alice, first).unwrap().status,
        JobStatus::Failed { .. }
    ));
    assert!(!env.pipelines()[0].healthy);
    let empty = upgrade_instructions(&mut env);
    let req = request(MODEL, "Hi", 1, Sampling::default(), 0);
    for _ in 0..JOBS {
        let job = env.generate(alice, &req).unwrap();
        let r: Result<task_manager_api::JobInfo, UserError> =
            env.call(tm, alice, "cancel", &job).unwrap();
        r.unwrap();
    }
    let full = upgrade_instructions(&mut env);
    println!("post_upgrade: {empty} instructions with no finished jobs, {full} with {JOBS}");
    // The finished jobs are all there (the oldest and the newest).
    assert_eq!(env.job(alice, 1).unwrap().status, JobStatus::Cancelled);
    assert_eq!(env.job(alice, JOBS).unwrap().status, JobStatus::Cancelled);
    assert!(
        full < empty + empty / 10,
        "post_upgrade grew with the finished jobs: {empty} → {full}"
    );
}
