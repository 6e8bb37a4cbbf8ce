//! Upgrades, stopped workers and many users at once, through the real
//! canisters.

use candid::{encode_one, Principal};
use integration_tests::{controller, principal, request, wasm, Env};
use local_replica::management::CanisterIdRecord;

use task_manager_api::{InitArgs, JobStatus, Quota, Sampling, WorkerState};

use crate::generation::{deployed, engine_output, sampled, MODEL};

/// A quota whose bucket does not refill (balances stay exact while time
/// passes).
const NO_REFILL: Quota = Quota {
    capacity: 10_000,
    refill_per_sec: 0,
};

/// Sends `stop_canister` as ingress and ticks until the canister stopped.
fn stop(env: &mut Env, canister: Principal) {
    let arg = encode_one(CanisterIdRecord {
        canister_id: canister,
    })
    .unwrap();
    let msg = env
        .ic
        .submit_update(
            Principal::management_canister(),
            controller(),
            "stop_canister",
            arg,
        )
        .unwrap();
    env.ic.await_ingress(msg).unwrap();
}

fn upgrade_worker(env: &mut Env, worker: Principal) {
    let arg = encode_one(None::<worker_api::InitArgs>).unwrap();
    env.ic
        .install_wasm(
            controller(),
            worker,
            local_replica::CanisterInstallMode::Upgrade(None),
            wasm("worker"),
            arg,
        )
        .unwrap();
    env.ic.run_until_idle().unwrap();
}

fn upgrade_task_manager(env: &mut Env) {
    let tm = env.task_manager;
    let arg = encode_one(None::<InitArgs>).unwrap();
    env.upgrade(tm, wasm("task_manager"), arg).unwrap();
}

/// Ticks until the job shows `tokens` generated tokens.
fn run_until_tokens(env: &mut Env, user: Principal, job: u64, tokens: u32) {
    for _ in 0..10_000 {
        let info = env.job(user, job).unwrap();
        assert_eq!(info.status, JobStatus::Running, "{info:?}");
        if info.generated_tokens >= tokens {
            return;
        }
        env.ic.tick();
    }
    panic!("job {job} made no progress");
}

#[test]
fn state_survives_upgrades_and_workers_reload_their_stages() {
    // No refill: time passes below, and the balance must show exactly
    // what the jobs were charged.
    let mut env = deployed(2, 1, Some(NO_REFILL));
    let tm = env.task_manager;
    let alice = principal(1);
    env.register(alice);
    let req = request(MODEL, "Once upon a time", 16, sampled(), 9);
    let expected = engine_output("tiny-llama/stages-1", &req);
    let first = env.generate(alice, &req).unwrap();
    let (done, _) = env.wait_job(alice, first);
    assert_eq!(done.tokens, expected.tokens);
    let profile = env.whoami(alice);
    let pipelines = env.pipelines();

    // The task manager, after jobs: users, buckets, pipelines and finished
    // jobs are as they were.
    upgrade_task_manager(&mut env);
    env.ic.run_until_idle().unwrap();
    assert_eq!(env.job(alice, first).unwrap(), done);
    assert_eq!(env.whoami(alice), profile);
    assert_eq!(env.pipelines(), pipelines);

    // Each worker: the stage is reloaded from stable memory after the
    // upgrade, the task manager told, and the pipeline serves again.
    for worker in pipelines[0].workers.clone() {
        upgrade_worker(&mut env, worker);
        let status: worker_api::status::WorkerStatus = env
            .ic
            .query_one(worker, controller(), "status", &())
            .unwrap();
        assert_eq!(status.state, worker_api::status::LoadState::Ready);
        assert!(status.load_instructions > 0);
    }
    assert!(env.pipelines()[0].healthy);
    let again = env.generate(alice, &req).unwrap();
    let (info, _) = env.wait_job(alice, again);
    assert_eq!(info.tokens, expected.tokens);

    // The task manager mid-job, stopped then upgraded: it waits on no
    // worker, so it stops at once; the running job goes on in its driver,
    // which delivers its end to the new code; the queued one survives the
    // upgrade and runs after it.
    let running = env.generate(alice, &req).unwrap();
    let queued = env.generate(alice, &req).unwrap();
    run_until_tokens(&mut env, alice, running, 2);
    assert_eq!(env.job(alice, queued).unwrap().status, JobStatus::Queued);
    stop(&mut env, tm);
    upgrade_task_manager(&mut env);
    env.ic.start_canister(controller(), tm).unwrap();
    for job in [running, queued] {
        let info = env.wait_job_as_time_passes(alice, job);
        assert_eq!(info.tokens, expected.tokens, "job {job}");
    }

    // Upgraded without stopping while a job runs: the job goes on and
    // reports to the new code.
    let live = env.generate(alice, &req).unwrap();
    run_until_tokens(&mut env, alice, live, 2);
    upgrade_task_manager(&mut env);
    let info = env.wait_job_as_time_passes(alice, live);
    assert_eq!(info.tokens, expected.tokens);

    // Each job was charged its prompt and its tokens, nothing more.
    let spent: u64 = [first, again, running, queued, live]
        .iter()
        .map(|&j| {
            let info = env.job(alice, j).unwrap();
            u64::from(info.prompt_tokens) + u64::from(info.generated_tokens)
        })
        .sum();
    let capacity = profile.quota.capacity;
    assert_eq!(env.whoami(alice).tokens_available, capacity - spent);
}

#[test]
fn a_worker_stopped_mid_job_fails_the_job_cleanly() {
    let mut env = deployed(2, 1, Some(NO_REFILL));
    let bob = principal(2);
    let full = env.register(bob).tokens_available;
    let req = request(MODEL, "Once upon a time", 40, Sampling::default(), 0);
    let expected = engine_output("tiny-llama/stages-1", &req);
    let workers = env.pipelines()[0].workers.clone();

    assert_eq!(full, env.whoami(bob).quota.capacity);
    for (stopped, role) in [(workers[1], "peer"), (workers[0], "driver")] {
        let before = env.whoami(bob).tokens_available;
        let job = env.generate(bob, &req).unwrap();
        run_until_tokens(&mut env, bob, job, 3);
        stop(&mut env, stopped);
        assert_eq!(
            env.ic
                .canister_status(controller(), stopped)
                .unwrap()
                .status,
            local_replica::management::CanisterStatusType::Stopped
        );
        // A stopped peer fails the driver's step at once; a stopped driver
        // sends nothing more, and the task manager's watchdog ends the job.
        let info = env.wait_job_as_time_passes(bob, job);
        let JobStatus::Failed { reason } = &info.status else {
            panic!("{role}: expected a failed job, got {info:?}");
        };
        assert!(
            reason.contains("stopp") || reason.contains("no report"),
            "{role}: {reason}"
        );
        // What was streamed (the prompt and the tokens) is charged, the
        // rest refunded; the worker marked failed, the pipeline unhealthy.
        let charged = u64::from(info.prompt_tokens) + u64::from(info.generated_tokens);
        assert!(info.generated_tokens >= 3, "{role}: {info:?}");
        assert_eq!(env.whoami(bob).tokens_available, before - charged, "{role}");
        let state = env
            .workers()
            .into_iter()
            .find(|w| w.worker == stopped)
            .unwrap()
            .state;
        assert!(
            matches!(state, WorkerState::Failed { .. }),
            "{role}: {state:?}"
        );
        assert!(!env.pipelines()[0].healthy);
        // A request now waits in the queue.
        let waiting = env.generate(bob, &req).unwrap();
        env.ic.run_until_idle().unwrap();
        assert_eq!(env.job(bob, waiting).unwrap().status, JobStatus::Queued);

        // Back in service: once started, the task manager's periodic health
        // check finds it ready again.
        env.ic.start_canister(controller(), stopped).unwrap();
        env.ic.run_until_idle().unwrap();
        assert!(
            !env.pipelines()[0].healthy,
            "{role}: healthy before a check"
        );
        env.ic.advance_time(std::time::Duration::from_secs(61));
        env.ic.tick(); // the due timer
        env.ic.run_until_idle().unwrap();
        assert!(env.pipelines()[0].healthy, "{role}");
        let (info, _) = env.wait_job(bob, waiting);
        assert_eq!(info.tokens, expected.tokens, "{role}");
        env.ic.advance_time(std::time::Duration::from_secs(3600));
    }
}

#[test]
fn fifty_users_on_two_pipelines_all_complete_with_correct_refunds() {
    let quota = Quota {
        capacity: 100,
        refill_per_sec: 1,
    };
    let mut env = deployed(1, 2, Some(quota));
    let tm = env.task_manager;
    let users: Vec<Principal> = (0..50).map(|i| principal(100 + i)).collect();
    for &u in &users {
        env.register(u);
    }
    let mut messages = Vec::new();
    for (i, &u) in users.iter().enumerate() {
        let req = request(
            MODEL,
            "Once upon a time",
            6 + (i as u32 % 5),
            sampled(),
            i as u8,
        );
        let arg = encode_one(&req).unwrap();
        messages.push((
            u,
            req,
            env.ic.submit_update(tm, u, "generate", arg).unwrap(),
        ));
    }
    let mut jobs = Vec::new();
    for (u, req, msg) in messages {
        let reply = env.ic.await_ingress(msg).unwrap();
        let job: Result<u64, task_manager_api::UserError> = candid::decode_one(&reply).unwrap();
        jobs.push((u, req, job.unwrap()));
    }
    env.ic.run_until_idle().unwrap();
    for (i, (u, req, job)) in jobs.iter().enumerate() {
        let info = env.job(*u, *job).unwrap();
        assert!(
            matches!(info.status, JobStatus::Completed { .. }),
            "{info:?}"
        );
        if i % 10 == 0 {
            let expected = engine_output("tiny-llama/stages-1", req);
            assert_eq!(info.tokens, expected.tokens, "user {i}");
        }
        // No time passed: the bucket is down by exactly what was used.
        let available = env.whoami(*u).tokens_available;
        assert_eq!(
            available,
            quota.capacity - u64::from(info.prompt_tokens) - u64::from(info.generated_tokens),
            "user {i}"
        );
    }
    let pipelines = env.pipelines();
    assert_eq!(pipelines.iter().map(|p| p.jobs_completed).sum::<u64>(), 50);
    assert!(
        pipelines.iter().all(|p| p.jobs_completed >= 10),
        "{pipelines:?}"
    );
}

#[test]
fn the_task_manager_spawns_workers_from_the_module_it_stores() {
    use serde_bytes::ByteBuf;
    use task_manager_api::spawn_workers::SpawnWorkersArgs;
    use task_manager_api::upload_worker_wasm::UploadWorkerWasmArgs;
    use task_manager_api::{AdminError, WasmInfo, WorkerInfo};

    let mut env = Env::new(InitArgs::default());
    let tm = env.task_manager;
    let spawn = SpawnWorkersArgs {
        count: 2,
        cycles_per_worker: candid::Nat::from(2_000_000_000_000u64),
    };
    let r: Result<Vec<WorkerInfo>, AdminError> =
        env.call(tm, controller(), "spawn_workers", &spawn).unwrap();
    assert_eq!(r, Err(AdminError::NoWorkerWasm));

    // The module gzip-compressed, as `scripts/upload_worker.sh` sends it:
    // the IC (and the local replica) installs compressed modules.
    let module = {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&wasm("worker")).unwrap();
        gz.finish().unwrap()
    };
    assert!(module.len() < wasm("worker").len() / 2, "{}", module.len());
    let mut info = None;
    for (i, piece) in module.chunks(1024 * 1024).enumerate() {
        let args = UploadWorkerWasmArgs {
            offset: (i * 1024 * 1024) as u64,
            bytes: ByteBuf::from(piece),
        };
        let r: Result<WasmInfo, AdminError> = env
            .call(tm, controller(), "upload_worker_wasm", &args)
            .unwrap();
        info = Some(r.unwrap());
    }
    assert_eq!(info.unwrap().size, module.len() as u64);
    // Not a controller: refused before the method runs.
    let r: Result<Result<Vec<WorkerInfo>, AdminError>, _> =
        env.call(tm, principal(3), "spawn_workers", &spawn);
    assert!(r.is_err());

    let spawned: Result<Vec<WorkerInfo>, AdminError> =
        env.call(tm, controller(), "spawn_workers", &spawn).unwrap();
    let spawned = spawned.unwrap();
    assert_eq!(spawned.len(), 2);
    for w in &spawned {
        assert!(w.spawned);
        let controllers = env.ic.controllers(w.worker).unwrap();
        assert!(controllers.contains(&tm) && controllers.contains(&controller()));
        let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&module).into();
        assert_eq!(env.ic.module_hash(w.worker), Some(hash));
    }
    env.upload_model("tiny-llama/stages-2");
    env.deploy(MODEL, 1);
    let alice = principal(1);
    env.register(alice);
    let req = request(MODEL, "Once upon a time", 10, sampled(), 4);
    let job = env.generate(alice, &req).unwrap();
    let (info, _) = env.wait_job(alice, job);
    assert_eq!(
        info.tokens,
        engine_output("tiny-llama/stages-1", &req).tokens
    );
}

#[test]
fn a_spawned_canister_whose_install_fails_is_recorded_and_can_be_removed() {
    use serde_bytes::ByteBuf;
    use task_manager_api::spawn_workers::SpawnWorkersArgs;
    use task_manager_api::upload_worker_wasm::UploadWorkerWasmArgs;
    use task_manager_api::{AdminError, WasmInfo, WorkerInfo};

    let mut env = Env::new(InitArgs::default());
    let tm = env.task_manager;
    // The wasm magic and version, then bytes that are no section: the
    // upload takes it, the management canister refuses to install it.
    let mut broken = b"\0asm\x01\0\0\0".to_vec();
    broken.extend_from_slice(&[0xff; 56]);
    let args = UploadWorkerWasmArgs {
        offset: 0,
        bytes: ByteBuf::from(broken),
    };
    let r: Result<WasmInfo, AdminError> = env
        .call(tm, controller(), "upload_worker_wasm", &args)
        .unwrap();
    r.unwrap();
    let spawn = SpawnWorkersArgs {
        count: 3,
        cycles_per_worker: candid::Nat::from(2_000_000_000_000u64),
    };
    let r: Result<Vec<WorkerInfo>, AdminError> =
        env.call(tm, controller(), "spawn_workers", &spawn).unwrap();
    let Err(AdminError::ManagementCallFailed { reason }) = r else {
        panic!("{r:?}");
    };
    assert!(reason.starts_with("install_chunked_code"), "{reason}");
    // The first canister was created, holds cycles and no code: it is
    // recorded as a failed worker, and no second one was created.
    let workers = env.workers();
    assert_eq!(workers.len(), 1, "{workers:?}");
    let w = &workers[0];
    assert!(w.spawned);
    assert!(
        matches!(&w.state, WorkerState::Failed { reason } if reason.starts_with("spawned but not installed")),
        "{w:?}"
    );
    assert_eq!(env.ic.module_hash(w.worker), None);
    assert!(env.ic.controllers(w.worker).unwrap().contains(&tm));
    // A failed worker holds no stage: a controller forgets it.
    let removed: Result<WorkerInfo, AdminError> = env
        .call(tm, controller(), "remove_worker", &w.worker)
        .unwrap();
    assert_eq!(removed.unwrap().worker, w.worker);
    assert!(env.workers().is_empty());
}

#[test]
fn a_running_job_is_cancelled_and_a_seedless_one_draws_from_raw_rand() {
    let mut env = deployed(2, 1, None);
    let tm = env.task_manager;
    let carol = principal(3);
    let full = env.register(carol).tokens_available;
    let req = request(MODEL, "Once upon a time", 60, Sampling::default(), 0);
    let running = env.generate(carol, &req).unwrap();
    let queued = env.generate(carol, &req).unwrap();
    run_until_tokens(&mut env, carol, running, 3);
    for job in [queued, running] {
        let r: Result<task_manager_api::JobInfo, task_manager_api::UserError> =
            env.call(tm, carol, "cancel", &job).unwrap();
        r.unwrap();
    }
    assert_eq!(env.job(carol, queued).unwrap().status, JobStatus::Cancelled);
    let (info, _) = env.wait_job(carol, running);
    assert_eq!(
        info.status,
        JobStatus::Completed {
            finish_reason: task_manager_api::FinishReason::Cancelled
        }
    );
    assert!(
        info.generated_tokens >= 3 && info.generated_tokens < 60,
        "{info:?}"
    );
    assert_eq!(
        env.whoami(carol).tokens_available,
        full - u64::from(info.prompt_tokens) - u64::from(info.generated_tokens)
    );

    // Without a seed the task manager takes one from raw_rand: the job
    // records the management canister's answer, and the driver sampled
    // with it (the engine, seeded so, gives the same tokens).
    let mut seedless = request(MODEL, "Once upon a time", 8, sampled(), 0);
    seedless.seed = None;
    let job = env.generate(carol, &seedless).unwrap();
    let (info, _) = env.wait_job(carol, job);
    assert!(
        matches!(info.status, JobStatus::Completed { .. }),
        "{info:?}"
    );
    let seed = info.seed.clone().expect("the job records its seed");
    let answers: Vec<&Vec<u8>> = env
        .ic
        .raw_rand_answers()
        .iter()
        .filter(|(who, _)| *who == tm)
        .map(|(_, bytes)| bytes)
        .collect();
    assert_eq!(answers.last().copied(), Some(&seed.to_vec()));
    seedless.seed = Some(seed);
    assert_eq!(
        info.tokens,
        engine_output("tiny-llama/stages-1", &seedless).tokens
    );
}
