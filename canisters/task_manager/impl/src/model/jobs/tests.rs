use super::*;
use crate::env::test::user;
use crate::model::expiry::sweep;
use crate::model::registry::tests::{tiny_chunks, tiny_file};
use crate::model::users::{self, quota_of};
use crate::model::workers::{self, add_worker, deploy_model, load_finished};
use task_manager_api::{JobInstructions, Sampling, WorkerState};
use worker_api::FinishReason;

const NOW: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn worker(n: u8) -> Principal {
    Principal::from_slice(&[0x77, n])
}

/// The tiny two-stage model uploaded, `pipelines` pipelines deployed and
/// ready, users 1..=3 registered with full buckets.
fn served(pipelines: u32) -> State {
    let mut state = State::in_memory();
    registry::create_model(&mut state, tiny_file("manifest.json"), NOW).unwrap();
    for (chunk, bytes) in tiny_chunks() {
        registry::upload_chunk(&mut state, &chunk, bytes).unwrap();
    }
    for n in 0..(2 * pipelines) as u8 {
        add_worker(&mut state, worker(n), false, NOW).unwrap();
    }
    let deployment = deploy_model(&mut state, "tiny-llama", pipelines).unwrap();
    assert_eq!(deployment.loads.len(), 2 * pipelines as usize);
    assert!(deployment.pipelines.iter().all(|p| !p.healthy));
    for (w, args) in &deployment.loads {
        assert!(args.pipeline.contains(w));
        load_finished(&mut state, *w, Ok(()));
    }
    users::approve(&mut state, &[user(1), user(2), user(3)], NOW).unwrap();
    state
}

const PROMPT: &str = "Once upon a time";

fn req(max_new_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        model: "tiny-llama".into(),
        prompt: Prompt::Text(PROMPT.into()),
        max_new_tokens,
        sampling: Sampling::default(),
        stop_sequences: vec![],
        seed: None,
    }
}

/// What `req(n)` reserves.
fn reservation(n: u32) -> u64 {
    PROMPT.len() as u64 + SPECIAL_TOKENS_PER_PROMPT + u64::from(n)
}

fn available(state: &State, n: u8) -> u64 {
    let record = state.users.get(&user(n)).unwrap();
    record.bucket.available(&quota_of(state, &record), NOW)
}

fn outcome(tokens: usize) -> JobOutcome {
    JobOutcome {
        text: "x".repeat(tokens),
        tokens: vec![1; tokens],
        prompt_tokens: 4,
        finish_reason: FinishReason::Eos,
        instructions: JobInstructions::default(),
    }
}

/// A worker's state as the API shows it.
fn worker_state(state: &State, worker: Principal) -> Option<WorkerState> {
    state.workers.get(&worker).map(|w| (&w.state).into())
}

fn status(state: &State, job: u64) -> JobStatus {
    JobStatus::from(&state.jobs.get(&job).unwrap().status)
}

fn progress(job: u64, n: u32) -> JobProgress {
    JobProgress {
        job,
        text: "y".repeat(n as usize),
        generated_tokens: n,
        prompt_tokens: 4,
    }
}

#[test]
fn jobs_reserve_their_prompt_bound_and_settle_to_what_they_used() {
    let mut state = served(1);
    let full = available(&state, 1);
    let a = create_job(&mut state, user(1), NOW, req(10)).unwrap();
    let b = create_job(&mut state, user(1), NOW, req(10)).unwrap();
    assert_eq!(available(&state, 1), full - 2 * reservation(10));
    let starts = next_starts(&mut state, NOW);
    assert_eq!(
        starts,
        vec![Start {
            job: a,
            pipeline: 0,
            driver: worker(0)
        }]
    );
    assert!(
        next_starts(&mut state, NOW).is_empty(),
        "one pipeline, one job"
    );
    assert_eq!(status(&state, b), JobStatus::Queued);
    // Progress from the driver only, never backwards.
    assert_eq!(
        record_progress(&mut state, worker(1), progress(a, 3), NOW),
        Err(CallbackError::NotTheDriver { job: a })
    );
    assert_eq!(
        record_progress(&mut state, user(1), progress(a, 3), NOW),
        Err(CallbackError::NotAWorker { caller: user(1) })
    );
    for n in 1..=3 {
        record_progress(&mut state, worker(0), progress(a, n), NOW).unwrap();
    }
    record_progress(&mut state, worker(0), progress(a, 2), NOW).unwrap();
    assert_eq!(state.jobs.get(&a).unwrap().text, "yyy");
    // Polling from a token offset returns only what is new.
    let j = state.jobs.get(&a).unwrap();
    assert_eq!(job_info(a, &j, 2).text, "y");
    record_end(&mut state, worker(0), a, JobEnd::Done(outcome(4)), NOW).unwrap();
    let done = state.jobs.get(&a).unwrap();
    assert_eq!(
        JobStatus::from(&done.status),
        JobStatus::Completed {
            finish_reason: FinishReason::Eos
        }
    );
    assert_eq!(done.generated_tokens, 4);
    assert_eq!(done.prompt, None, "a finished job drops its prompt");
    // A client that saw 3 tokens stream gets the rest of the final text.
    assert_eq!(job_info(a, &done, 3).text, "x");
    assert_eq!(job_info(a, &done, 0).text, "xxxx");
    assert_eq!(job_info(a, &done, 4).text, "");
    // Charged: its 4 prompt tokens and 4 generated ones.
    assert_eq!(available(&state, 1), full - reservation(10) - 8);
    // Finishing twice changes nothing.
    assert_eq!(
        record_end(&mut state, worker(0), a, JobEnd::Done(outcome(9)), NOW),
        Err(CallbackError::JobNotRunning { job: a })
    );
    assert_eq!(available(&state, 1), full - reservation(10) - 8);
    assert_eq!(next_starts(&mut state, NOW)[0].job, b);
}

#[test]
fn reports_beyond_the_jobs_bounds_are_refused() {
    let mut state = served(1);
    let a = create_job(&mut state, user(1), NOW, req(3)).unwrap();
    next_starts(&mut state, NOW);
    let too_many = progress(a, 4);
    assert!(matches!(
        record_progress(&mut state, worker(0), too_many, NOW),
        Err(CallbackError::InvalidReport { .. })
    ));
    let mut big_prompt = progress(a, 1);
    big_prompt.prompt_tokens = 10_000;
    assert!(matches!(
        record_progress(&mut state, worker(0), big_prompt, NOW),
        Err(CallbackError::InvalidReport { .. })
    ));
    let mut long_text = progress(a, 1);
    long_text.text = "z".repeat(MAX_TEXT_BYTES_PER_TOKEN as usize + 1);
    assert!(matches!(
        record_progress(&mut state, worker(0), long_text, NOW),
        Err(CallbackError::InvalidReport { .. })
    ));
    assert_eq!(state.jobs.get(&a).unwrap().generated_tokens, 0);
}

#[test]
fn the_queue_is_fair_between_users() {
    // One pipeline: user 1 queued three jobs before user 2's one; they
    // take turns.
    let mut state = served(1);
    let hog: Vec<u64> = (0..3)
        .map(|_| create_job(&mut state, user(1), NOW, req(2)).unwrap())
        .collect();
    let other = create_job(&mut state, user(2), NOW, req(2)).unwrap();
    let mut order = Vec::new();
    while let Some(start) = next_starts(&mut state, NOW).first().cloned() {
        order.push(start.job);
        finish_job(&mut state, start.job, NOW, RunResult::Done(outcome(2)));
    }
    assert_eq!(order, vec![hog[0], other, hog[1], hog[2]]);

    // Two pipelines: one job of each user at once.
    let mut state = served(2);
    let hog: Vec<u64> = (0..3)
        .map(|_| create_job(&mut state, user(1), NOW, req(2)).unwrap())
        .collect();
    let other = create_job(&mut state, user(2), NOW, req(2)).unwrap();
    let started: Vec<u64> = next_starts(&mut state, NOW).iter().map(|s| s.job).collect();
    assert_eq!(started, vec![hog[0], other]);
}

#[test]
fn each_user_has_a_cap_on_jobs_queued_or_running() {
    let mut state = served(1);
    state.update_config(|c| c.max_jobs_per_user = 2);
    let a = create_job(&mut state, user(1), NOW, req(2)).unwrap();
    create_job(&mut state, user(1), NOW, req(2)).unwrap();
    assert_eq!(
        create_job(&mut state, user(1), NOW, req(2)),
        Err(Error::TooManyJobs { active: 2, max: 2 })
    );
    create_job(&mut state, user(2), NOW, req(2)).unwrap();
    next_starts(&mut state, NOW);
    finish_job(&mut state, a, NOW, RunResult::Done(outcome(2)));
    create_job(&mut state, user(1), NOW, req(2)).unwrap();
}

#[test]
fn failures_refund_what_was_not_streamed_and_mark_the_worker_at_fault() {
    let mut state = served(1);
    let full = available(&state, 1);
    let job = create_job(&mut state, user(1), NOW, req(10)).unwrap();
    next_starts(&mut state, NOW);
    finish_job(
        &mut state,
        job,
        NOW,
        RunResult::Refused(WorkerError::PeerFailed {
            peer: worker(1),
            reason: "Canister is stopped".into(),
        }),
    );
    assert!(matches!(status(&state, job), JobStatus::Failed { .. }));
    assert_eq!(available(&state, 1), full);
    assert!(matches!(
        worker_state(&state, worker(1)),
        Some(WorkerState::Failed { .. })
    ));
    assert_eq!(worker_state(&state, worker(0)), Some(WorkerState::Ready));
    // No healthy pipeline: new jobs wait.
    let next = create_job(&mut state, user(1), NOW, req(10)).unwrap();
    assert!(next_starts(&mut state, NOW).is_empty());
    load_finished(&mut state, worker(1), Ok(()));
    assert_eq!(next_starts(&mut state, NOW)[0].job, next);
    // Three tokens streamed, then the driver's call fails: those three
    // and the prompt are charged, the rest refunded; the driver is at
    // fault.
    record_progress(&mut state, worker(0), progress(next, 3), NOW).unwrap();
    finish_job(
        &mut state,
        next,
        NOW,
        RunResult::CallFailed("trapped".into()),
    );
    assert_eq!(available(&state, 1), full - 4 - 3);
    assert!(matches!(
        worker_state(&state, worker(0)),
        Some(WorkerState::Failed { .. })
    ));
}

#[test]
fn cancel_refunds_queued_jobs_and_flags_running_ones() {
    let mut state = served(1);
    let full = available(&state, 2);
    let running = create_job(&mut state, user(2), NOW, req(10)).unwrap();
    let queued = create_job(&mut state, user(2), NOW, req(10)).unwrap();
    next_starts(&mut state, NOW);
    assert_eq!(
        cancel(&mut state, queued, user(3), false, NOW).unwrap_err(),
        Error::UnknownJob { job: queued }
    );
    let (info, driver) = cancel(&mut state, queued, user(2), false, NOW).unwrap();
    assert_eq!((info.status, driver), (JobStatus::Cancelled, None));
    assert!(state.queue.is_empty());
    assert_eq!(available(&state, 2), full - reservation(10));
    let (_, driver) = cancel(&mut state, running, user(2), false, NOW).unwrap();
    assert_eq!(driver, Some(worker(0)));
    assert!(state.jobs.get(&running).unwrap().cancel_requested);
    // A job cancelled before its driver had it (during raw_rand) never
    // gets there.
    assert_eq!(run_args(&state, running, vec![0; 32]), None);
    finish_job(&mut state, running, NOW, RunResult::CancelledEarly);
    assert_eq!(available(&state, 2), full);
    assert_eq!(
        cancel(&mut state, queued, user(2), false, NOW).unwrap_err(),
        Error::JobFinished { job: queued }
    );
}

#[test]
fn bad_requests_change_nothing() {
    let mut state = served(1);
    let full = available(&state, 1);
    let mut long = req(4);
    long.prompt = Prompt::Text("x".repeat(MAX_PROMPT_BYTES as usize + 1));
    // The tiny model's context is 512: a 500-byte prompt with 100 new
    // tokens cannot be bounded inside it.
    let mut over_context = req(100);
    over_context.prompt = Prompt::Text("x".repeat(500));
    let mut seed = req(4);
    seed.seed = Some(serde_bytes::ByteBuf::from(vec![1; 31]));
    let mut unknown = req(4);
    unknown.model = "nope".into();
    let mut stops = req(4);
    stops.stop_sequences = vec![String::new()];
    for (request, expected) in [
        (long, "PromptTooLong"),
        (over_context, "PromptTooLong"),
        (req(0), "InvalidRequest"),
        (req(513), "InvalidRequest"),
        (seed, "InvalidRequest"),
        (unknown, "UnknownModel"),
        (stops, "InvalidRequest"),
    ] {
        let e = create_job(&mut state, user(1), NOW, request).unwrap_err();
        assert!(format!("{e:?}").starts_with(expected), "{e:?}");
    }
    assert_eq!(
        create_job(&mut state, user(9), NOW, req(4)).unwrap_err(),
        Error::NotRegistered
    );
    state.update_config(|c| c.paused = true);
    assert_eq!(
        create_job(&mut state, user(1), NOW, req(4)).unwrap_err(),
        Error::Paused
    );
    assert!(state.jobs.is_empty() && state.queue.is_empty());
    assert_eq!(available(&state, 1), full);
}

#[test]
fn a_long_prompt_pays_for_its_tokens() {
    // Before, a prompt of any length with max_new_tokens = 1 reserved 1
    // token.
    let mut state = served(1);
    let full = available(&state, 1);
    let mut long = req(1);
    long.prompt = Prompt::Text("x".repeat(400));
    create_job(&mut state, user(1), NOW, long).unwrap();
    assert_eq!(
        available(&state, 1),
        full - 400 - SPECIAL_TOKENS_PER_PROMPT - 1
    );
}

#[test]
fn silent_drivers_time_out_and_their_pipeline_is_marked_unhealthy() {
    let mut state = served(1);
    // No refill: the bucket shows exactly what was charged.
    state.update_config(|c| c.default_quota.refill_per_sec = 0);
    let full = available(&state, 1);
    let job = create_job(&mut state, user(1), NOW, req(10)).unwrap();
    next_starts(&mut state, NOW);
    let stall = state.config().job_stall_timeout_secs * SEC;
    assert_eq!(sweep(&mut state, NOW + stall), Default::default());
    // A report resets the clock.
    record_progress(&mut state, worker(0), progress(job, 1), NOW + stall).unwrap();
    assert!(sweep(&mut state, NOW + 2 * stall).stalled.is_empty());
    let swept = sweep(&mut state, NOW + 2 * stall + 1);
    assert_eq!(swept.stalled, vec![(job, worker(0))]);
    assert!(matches!(status(&state, job), JobStatus::Failed { .. }));
    assert!(state.running.is_empty());
    assert_eq!(state.pipelines.get(&0).unwrap().job, None);
    assert!(!pipeline_healthy(&state, &state.pipelines.get(&0).unwrap()));
    // One token was streamed: it and the prompt are charged.
    assert_eq!(available(&state, 1), full - 4 - 1);
}

#[test]
fn queued_jobs_time_out_when_no_healthy_pipeline_serves_their_model() {
    let mut state = served(1);
    let full = available(&state, 1);
    let job = create_job(&mut state, user(1), NOW, req(10)).unwrap();
    let wait = state.config().queue_timeout_secs * SEC;
    // Served: a queued job waits as long as it takes.
    let busy = create_job(&mut state, user(2), NOW, req(10)).unwrap();
    assert!(sweep(&mut state, NOW + wait + 1).timed_out.is_empty());
    workers::mark_failed(&mut state, worker(1), "gone".into());
    let swept = sweep(&mut state, NOW + wait + 1);
    assert_eq!(swept.timed_out, vec![job, busy]);
    assert!(matches!(status(&state, job), JobStatus::Failed { .. }));
    assert_eq!(available(&state, 1), full);
    assert!(state.queue.is_empty());
}

#[test]
fn finished_jobs_expire_by_age_and_by_count_per_user() {
    let mut state = served(1);
    state.update_config(|c| c.max_finished_jobs_per_user = 2);
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = create_job(&mut state, user(1), NOW + i, req(2)).unwrap();
        next_starts(&mut state, NOW + i);
        finish_job(&mut state, id, NOW + i, RunResult::Done(outcome(1)));
        ids.push(id);
    }
    // The oldest went when the third ended.
    assert!(state.jobs.get(&ids[0]).is_none());
    let mine: Vec<u64> = my_jobs(&state, user(1), None, 10)
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(mine, vec![ids[2], ids[1]]);
    assert_eq!(
        my_jobs(&state, user(1), Some(ids[2]), 10)
            .iter()
            .map(|j| j.id)
            .collect::<Vec<_>>(),
        vec![ids[1]]
    );
    assert!(my_jobs(&state, user(2), None, 10).is_empty());
    let keep = state.config().finished_job_retention_secs * SEC;
    assert_eq!(sweep(&mut state, NOW + 1 + keep).expired, 0);
    assert_eq!(sweep(&mut state, NOW + 2 + keep).expired, 1);
    assert_eq!(sweep(&mut state, NOW + 3 + keep).expired, 1);
    assert!(state.jobs.is_empty());
    assert!(state.finished.is_empty() && state.user_jobs.is_empty());
}

#[test]
fn an_upgrade_keeps_running_jobs_and_touches_only_them() {
    let mut state = served(1);
    let job = create_job(&mut state, user(1), NOW, req(10)).unwrap();
    create_job(&mut state, user(2), NOW, req(10)).unwrap();
    next_starts(&mut state, NOW);
    let later = NOW + 3600 * SEC;
    assert_eq!(after_upgrade(&mut state, later), 1);
    let j = state.jobs.get(&job).unwrap();
    assert_eq!(JobStatus::from(&j.status), JobStatus::Running);
    assert_eq!(j.heard_at_ns, Some(later));
    // Its driver still reports to the new code.
    record_end(&mut state, worker(0), job, JobEnd::Done(outcome(2)), later).unwrap();
}

#[test]
fn a_finished_job_is_stored_in_a_few_hundred_bytes() {
    use ic_stable_structures::Storable;
    let mut state = served(1);
    let job = create_job(&mut state, user(1), NOW, req(8)).unwrap();
    next_starts(&mut state, NOW);
    finish_job(&mut state, job, NOW, RunResult::Done(outcome(8)));
    let record = state.jobs.get(&job).unwrap();
    let bytes = record.to_bytes().len()
        + 8 // the key
        + UserJobKey { owner: user(1), job }.to_bytes().len()
        + 1
        + FinishedKey {
            finished_at_ns: NOW,
            job,
        }
        .to_bytes()
        .len()
        + 1;
    println!("a finished job with 8 tokens: {bytes} bytes of records and keys");
    // The prompt is gone; what stays is the text, its tokens and counters.
    assert!(bytes < 1_024, "{bytes}");
}

#[test]
fn a_driver_that_cannot_take_a_job_now_sends_it_back_to_the_queue() {
    let mut state = served(1);
    let full = available(&state, 1);
    let job = create_job(&mut state, user(1), NOW, req(10)).unwrap();
    next_starts(&mut state, NOW);
    finish_job(
        &mut state,
        job,
        NOW,
        RunResult::Requeue(WorkerError::TooManyJobs { max: 16 }),
    );
    assert_eq!(status(&state, job), JobStatus::Queued);
    assert!(state.running.is_empty());
    assert_eq!(state.pipelines.get(&0).unwrap().job, None);
    // Still reserved; it starts again.
    assert_eq!(available(&state, 1), full - reservation(10));
    assert_eq!(next_starts(&mut state, NOW)[0].job, job);
}
