//! The worker's side of the protocol with the task manager, on the real
//! worker wasm with a test double as its task manager: `run_job` and
//! `load_stages` answer at once, the job or load goes on and its end is
//! reported (`job_finished`, `worker_ready`) by bounded-wait calls that are
//! retried while the task manager cannot answer; a peer that never answers
//! fails the job after the deadline; cancels that race `run_job` end the
//! job before any token; peers accept steps from their driver only and
//! drop caches nobody ends.
//!
//! The double ([`TASK_MANAGER`], WAT) logs every call it gets and answers
//! with what the test stubbed for the method (and argument); its `forward`
//! never answers, so it can also stand in for a silent peer.

use std::sync::Arc;
use std::time::Duration;

use candid::{decode_one, encode_one, CandidType, Principal};
use integration_tests::test_canisters::{module, proxy_arg, PROXY};
use integration_tests::{controller, model_chunks, model_file, replica_config, wasm, workspace};
use local_replica::{CanisterInstallMode, LocalReplica};
use serde_bytes::ByteBuf;
use task_manager_api::job_finished::{JobEnd, JobFinishedArgs};
use task_manager_api::worker_ready::WorkerReadyArgs;
use task_manager_api::CallbackResult;
use worker_api::forward::{ForwardArgs, ForwardResult};
use worker_api::load_stages::LoadStagesArgs;
use worker_api::protocol::{FORWARD_TIMEOUT_SECS, PEER_CACHE_TTL_SECS, REPORT_FIRST_RETRY_SECS};
use worker_api::run_job::{JobOutcome, RunJobArgs};
use worker_api::status::{LoadState, WorkerStatus};
use worker_api::{AckResult, FinishReason, InitArgs, Prompt, Sampling, StageData, WorkerError};

/// A task manager for one test: logs each call (method id, argument
/// size, time, argument) and answers with the last stub that matches the
/// method and the argument (or any argument); rejects when none does.
/// `forward` never answers (it keeps calling itself), as a silent peer.
///
/// `stub` takes raw bytes: method id (u32 LE), argument length (0 for
/// any), argument, reply length, reply. `log` answers the raw log.
const TASK_MANAGER: &str = r#"(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $reply_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reject" (func $reject (param i32 i32)))
  (import "ic0" "time" (func $time (result i64)))
  (import "ic0" "canister_self_size" (func $self_size (result i32)))
  (import "ic0" "canister_self_copy" (func $self_copy (param i32 i32 i32)))
  (import "ic0" "call_new"
    (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (memory 512)
  (data (i32.const 100) "again")
  (data (i32.const 120) "no stub for this call")
  (table 1 funcref)
  (elem (i32.const 0) $again)
  ;; Stubs from 64 KiB, the log from 16 MiB; their ends at 0 and 4.
  (global $stubs i32 (i32.const 0x10000))
  (global $logs i32 (i32.const 0x1000000))
  (func $init
    (if (i32.eqz (i32.load (i32.const 0)))
      (then
        (i32.store (i32.const 0) (global.get $stubs))
        (i32.store (i32.const 4) (global.get $logs)))))
  ;; Logs this call; where its argument is in the log.
  (func $log (param $id i32) (result i32)
    (local $n i32) (local $p i32)
    (call $init)
    (local.set $n (call $arg_size))
    (local.set $p (i32.load (i32.const 4)))
    (i32.store (local.get $p) (local.get $id))
    (i32.store offset=4 (local.get $p) (local.get $n))
    (i64.store offset=8 (local.get $p) (call $time))
    (call $arg_copy (i32.add (local.get $p) (i32.const 16)) (i32.const 0) (local.get $n))
    (i32.store (i32.const 4)
      (i32.add (local.get $p) (i32.add (i32.const 16) (local.get $n))))
    (i32.add (local.get $p) (i32.const 16)))
  (func $same (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ
          (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))
  (func $answer (param $id i32)
    (local $arg i32) (local $n i32) (local $q i32) (local $end i32)
    (local $alen i32) (local $found i32)
    (local.set $arg (call $log (local.get $id)))
    (local.set $n (call $arg_size))
    (local.set $q (global.get $stubs))
    (local.set $end (i32.load (i32.const 0)))
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
        (local.set $alen (i32.load offset=4 (local.get $q)))
        (if (i32.eq (i32.load (local.get $q)) (local.get $id))
          (then
            (if (i32.eqz (local.get $alen))
              (then (local.set $found (local.get $q)))
              (else
                (if (i32.eq (local.get $alen) (local.get $n))
                  (then
                    (if (call $same (i32.add (local.get $q) (i32.const 8))
                          (local.get $arg) (local.get $n))
                      (then (local.set $found (local.get $q))))))))))
        (local.set $q
          (i32.add (local.get $q)
            (i32.add (i32.const 12)
              (i32.add (local.get $alen)
                (i32.load (i32.add (local.get $q)
                  (i32.add (i32.const 8) (local.get $alen))))))))
        (br $scan)))
    (if (i32.eqz (local.get $found))
      (then (call $reject (i32.const 120) (i32.const 21)) (return)))
    (local.set $q
      (i32.add (local.get $found)
        (i32.add (i32.const 8) (i32.load offset=4 (local.get $found)))))
    (call $reply_append (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q)))
    (call $reply))
  ;; Calls `again` on itself, which does the same: never answers.
  (func $again (param $env i32)
    (local $n i32)
    (local.set $n (call $self_size))
    (call $self_copy (i32.const 16) (i32.const 0) (local.get $n))
    (call $call_new (i32.const 16) (local.get $n) (i32.const 100) (i32.const 5)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (drop (call $call_perform)))
  (func (export "canister_update stub")
    (local $n i32) (local $end i32)
    (call $init)
    (local.set $n (call $arg_size))
    (local.set $end (i32.load (i32.const 0)))
    (call $arg_copy (local.get $end) (i32.const 0) (local.get $n))
    (i32.store (i32.const 0) (i32.add (local.get $end) (local.get $n)))
    (call $reply))
  (func (export "canister_query log")
    (call $init)
    (call $reply_append (global.get $logs)
      (i32.sub (i32.load (i32.const 4)) (global.get $logs)))
    (call $reply))
  (func (export "canister_update model_chunk") (call $answer (i32.const 1)))
  (func (export "canister_update worker_ready") (call $answer (i32.const 2)))
  (func (export "canister_update job_progress") (call $answer (i32.const 3)))
  (func (export "canister_update job_finished") (call $answer (i32.const 4)))
  (func (export "canister_update end_job") (call $answer (i32.const 6)))
  (func (export "canister_update forward")
    (drop (call $log (i32.const 5)))
    (call $again (i32.const 0)))
  (func (export "canister_update again") (call $again (i32.const 0))))"#;

/// The methods the double logs, by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    ModelChunk = 1,
    WorkerReady = 2,
    JobProgress = 3,
    JobFinished = 4,
    Forward = 5,
    EndJob = 6,
}

/// Rounds a test waits at most for something to happen.
const MAX_ROUNDS: usize = 2_000;

/// A replica with the double as task manager and workers serving it.
struct Rig {
    ic: LocalReplica,
    tm: Principal,
    workers: Vec<Principal>,
    cut: String,
}

fn bytes<T: CandidType>(value: &T) -> Vec<u8> {
    encode_one(value).expect("candid")
}

impl Rig {
    /// The double with every report answered `Ok` and the chunks of
    /// `models/tiny-llama/<cut>` served, and `workers` workers.
    fn new(cut: &str, workers: usize) -> Rig {
        let mut ic = LocalReplica::with_config(replica_config()).expect("a replica");
        let tm = ic.create_canister(controller()).unwrap();
        ic.install_canister(controller(), tm, module(TASK_MANAGER), Vec::new())
            .unwrap();
        let mut rig = Rig {
            ic,
            tm,
            workers: Vec::new(),
            cut: format!("tiny-llama/{cut}"),
        };
        let ok = bytes(&CallbackResult::Ok(()));
        for m in [
            Method::WorkerReady,
            Method::JobProgress,
            Method::JobFinished,
        ] {
            rig.stub(m, None, &ok);
        }
        rig.stub(Method::EndJob, None, &bytes(&()));
        for (chunk, data) in model_chunks(&rig.cut) {
            let reply = task_manager_api::model_chunk::Response::Ok(data);
            rig.stub(Method::ModelChunk, Some(&bytes(&chunk)), &bytes(&reply));
        }
        let worker_wasm = wasm("worker");
        let arg = bytes(&Some(InitArgs { task_manager: tm }));
        for _ in 0..workers {
            let id = rig.ic.create_canister(controller()).unwrap();
            rig.ic
                .install_wasm(
                    controller(),
                    id,
                    CanisterInstallMode::Install,
                    worker_wasm.clone(),
                    arg.clone(),
                )
                .unwrap();
            rig.workers.push(id);
        }
        rig
    }

    fn stub(&mut self, method: Method, arg: Option<&[u8]>, reply: &[u8]) {
        let arg = arg.unwrap_or_default();
        let mut raw = (method as u32).to_le_bytes().to_vec();
        raw.extend_from_slice(&(arg.len() as u32).to_le_bytes());
        raw.extend_from_slice(arg);
        raw.extend_from_slice(&(reply.len() as u32).to_le_bytes());
        raw.extend_from_slice(reply);
        self.ic
            .update_call(self.tm, controller(), "stub", raw)
            .unwrap();
    }

    /// The arguments of the calls of `method` the double got, in order.
    fn calls(&mut self, method: Method) -> Vec<Vec<u8>> {
        let log = self
            .ic
            .query_call(self.tm, controller(), "log", Vec::new())
            .unwrap();
        let word = |i: usize| u32::from_le_bytes(log[i..i + 4].try_into().unwrap()) as usize;
        let mut out = Vec::new();
        let mut p = 0;
        while p < log.len() {
            let (id, n) = (word(p), word(p + 4));
            if id == method as usize {
                out.push(log[p + 16..p + 16 + n].to_vec());
            }
            p += 16 + n;
        }
        out
    }

    fn finished(&mut self) -> Vec<JobFinishedArgs> {
        let calls = self.calls(Method::JobFinished);
        calls.iter().map(|a| decode_one(a).unwrap()).collect()
    }

    fn ready(&mut self) -> Vec<WorkerReadyArgs> {
        let calls = self.calls(Method::WorkerReady);
        calls.iter().map(|a| decode_one(a).unwrap()).collect()
    }

    fn status(&mut self, worker: Principal) -> WorkerStatus {
        self.ic
            .query_one(worker, controller(), "status", &())
            .unwrap()
    }

    /// Times the worker ran `step`.
    fn steps(&self, worker: Principal) -> usize {
        self.ic
            .executions()
            .iter()
            .filter(|e| e.canister == worker && e.method == "step")
            .count()
    }

    /// Ticks until `done` holds (panics after [`MAX_ROUNDS`]).
    fn until(&mut self, what: &str, mut done: impl FnMut(&mut Rig) -> bool) {
        for _ in 0..MAX_ROUNDS {
            if done(self) {
                return;
            }
            self.ic.tick();
        }
        let logs: Vec<String> = self
            .workers
            .iter()
            .flat_map(|w| self.ic.logs(*w))
            .map(|l| l.message.clone())
            .collect();
        panic!("{what}: not after {MAX_ROUNDS} rounds; worker logs: {logs:#?}");
    }

    fn manifest_json(&self) -> ByteBuf {
        ByteBuf::from(model_file(&self.cut, "manifest.json"))
    }

    /// Assigns worker `w` the stages `stages` of `pipeline`; the answer.
    fn load(&mut self, w: usize, stages: Vec<u32>, pipeline: Vec<Principal>) -> AckResult {
        let args = LoadStagesArgs {
            model: "tiny-llama".into(),
            manifest_json: self.manifest_json(),
            stages,
            pipeline,
        };
        self.ic
            .update_one(self.workers[w], controller(), "load_stages", &args)
            .unwrap()
    }

    /// Loads stage i on worker i (a pipeline of the rig's workers) and
    /// waits for every worker's `worker_ready`.
    fn deploy(&mut self) {
        let pipeline = self.workers.clone();
        for w in 0..pipeline.len() {
            assert_eq!(
                self.load(w, vec![w as u32], pipeline.clone()),
                AckResult::Ok(())
            );
        }
        let n = pipeline.len();
        self.until("every worker ready", |r| r.ready().len() == n);
        for ready in self.ready() {
            assert_eq!(ready.error, None);
        }
    }

    fn run_job(&mut self, args: &RunJobArgs) -> AckResult {
        let driver = self.workers[0];
        self.ic
            .update_one(driver, controller(), "run_job", args)
            .unwrap()
    }

    /// Waits for the report of `job`; every report so far.
    fn wait_finished(&mut self, job: u64) -> Vec<JobFinishedArgs> {
        self.until("job_finished", |r| {
            r.finished().iter().any(|f| f.job == job)
        });
        self.finished()
    }
}

fn job_args(job: u64, prompt: &str, max_new_tokens: u32) -> RunJobArgs {
    RunJobArgs {
        job,
        prompt: Prompt::Text(prompt.into()),
        sampling: Sampling {
            temperature: Some(0.8),
            top_k: Some(40),
            top_p: Some(0.95),
            repetition_penalty: None,
        },
        max_new_tokens,
        stop_sequences: vec![],
        seed: ByteBuf::from(vec![7; 32]),
    }
}

/// What the engine generates natively for `args`, on the worker's runtime
/// (the engine's own pass).
fn engine_tokens(args: &RunJobArgs) -> Vec<u32> {
    let model = engine::ModelDir::read(workspace().join("models/tiny-llama/stages-1")).unwrap();
    let tokenizer = Arc::new(model.tokenizer().unwrap());
    let Prompt::Text(text) = &args.prompt else {
        panic!("text prompts only")
    };
    let ids = tokenizer.encode_plain(text).unwrap();
    let s = &args.sampling;
    let params = engine::SamplingParams {
        temperature: s.temperature.unwrap_or(0.0),
        top_k: s.top_k.unwrap_or(0) as usize,
        top_p: s.top_p.unwrap_or(1.0),
        repetition_penalty: s.repetition_penalty.unwrap_or(1.0),
        max_new_tokens: args.max_new_tokens as usize,
        stop_sequences: vec![],
        seed: args.seed.as_slice().try_into().unwrap(),
    };
    let pipeline = Arc::new(model.pipeline_with(engine::Runtime::Engine).unwrap());
    engine::generate(pipeline, tokenizer, ids, params)
        .unwrap()
        .tokens
}

fn outcome(end: &JobEnd) -> &JobOutcome {
    match end {
        JobEnd::Done(outcome) => outcome,
        JobEnd::Failed(e) => panic!("the job failed: {e}"),
    }
}

fn assert_cancelled_without_tokens(end: &JobEnd) {
    let o = outcome(end);
    assert_eq!(o.finish_reason, FinishReason::Cancelled);
    assert!(o.tokens.is_empty() && o.text.is_empty(), "{o:?}");
    assert_eq!(o.instructions.prefill_tokens, 0);
}

#[test]
fn run_job_answers_before_the_first_step_and_job_finished_reports_the_end() {
    let args = job_args(1, "Once upon a time", 10);
    let expected = engine_tokens(&args);
    for (cut, workers) in [("stages-1", 1), ("stages-2", 2)] {
        let mut rig = Rig::new(cut, workers);
        // load_stages answers before anything is pulled; worker_ready says
        // when the load is done.
        let pipeline = rig.workers.clone();
        assert_eq!(rig.load(0, vec![0], pipeline.clone()), AckResult::Ok(()));
        assert!(rig.calls(Method::ModelChunk).is_empty(), "{cut}");
        assert!(rig.ready().is_empty(), "{cut}");
        for w in 1..workers {
            assert_eq!(
                rig.load(w, vec![w as u32], pipeline.clone()),
                AckResult::Ok(())
            );
        }
        rig.until("worker_ready", |r| r.ready().len() == workers);
        let driver = rig.workers[0];
        assert_eq!(rig.status(driver).state, LoadState::Ready);

        // run_job answers before the job's first step.
        assert_eq!(rig.run_job(&args), AckResult::Ok(()), "{cut}");
        assert_eq!(
            rig.steps(driver),
            0,
            "{cut}: a step ran before run_job answered"
        );
        assert!(rig.calls(Method::JobProgress).is_empty());
        assert_eq!(
            rig.run_job(&args),
            AckResult::Err(WorkerError::JobExists { job: 1 }),
            "{cut}"
        );
        // The end comes by job_finished, once.
        let finished = rig.wait_finished(1);
        assert_eq!(finished.len(), 1, "{cut}");
        let o = outcome(&finished[0].end);
        assert_eq!(o.tokens, expected, "{cut}");
        assert_eq!(
            rig.steps(driver),
            expected.len(),
            "{cut}: one step per token"
        );
        assert_eq!(
            rig.calls(Method::JobProgress).len(),
            expected.len(),
            "{cut}"
        );
        // Nothing is left: the peer got end_job, the report was answered.
        rig.until("the caches dropped, the report answered", |r| {
            pipeline.iter().all(|&w| r.status(w).active_jobs == 0)
                && r.status(driver).pending_reports == 0
        });
    }
}

#[test]
fn a_stopped_task_manager_gets_job_finished_once_it_runs_again() {
    let args = job_args(2, "Once upon a time", 6);
    let expected = engine_tokens(&args);
    let mut rig = Rig::new("stages-1", 1);
    rig.deploy();
    let driver = rig.workers[0];
    assert_eq!(rig.run_job(&args), AckResult::Ok(()));
    let tm = rig.tm;
    rig.ic.stop_canister(controller(), tm).unwrap();
    // The job runs to its end; its report cannot be delivered.
    rig.until("the job ended", |r| r.status(driver).active_jobs == 0);
    for _ in 0..20 {
        rig.ic.tick();
    }
    assert_eq!(rig.status(driver).pending_reports, 1);
    rig.ic.start_canister(controller(), tm).unwrap();
    assert!(rig.finished().is_empty(), "delivered while stopped");
    // The next try, after the retry delay, reaches it.
    rig.ic
        .advance_time(Duration::from_secs(REPORT_FIRST_RETRY_SECS));
    let finished = rig.wait_finished(2);
    assert_eq!(finished.len(), 1);
    assert_eq!(outcome(&finished[0].end).tokens, expected);
    rig.until("the report answered", |r| {
        r.status(driver).pending_reports == 0
    });
    // And only once.
    rig.ic.advance_time(Duration::from_secs(3_600));
    for _ in 0..20 {
        rig.ic.tick();
    }
    assert_eq!(rig.finished().len(), 1);
}

#[test]
fn a_peer_that_never_answers_fails_the_job_after_the_deadline() {
    // Stage 1 is "held" by the double, whose forward never answers.
    let mut rig = Rig::new("stages-2", 1);
    let (driver, silent) = (rig.workers[0], rig.tm);
    assert_eq!(
        rig.load(0, vec![0], vec![driver, silent]),
        AckResult::Ok(())
    );
    rig.until("worker_ready", |r| r.ready().len() == 1);
    assert_eq!(
        rig.run_job(&job_args(3, "Once upon a time", 4)),
        AckResult::Ok(())
    );
    rig.until("the forward", |r| r.calls(Method::Forward).len() == 1);
    for _ in 0..50 {
        rig.ic.tick();
    }
    assert!(rig.finished().is_empty(), "no answer, no deadline yet");
    // Past the forward's deadline (before the step's own).
    rig.ic
        .advance_time(Duration::from_secs(u64::from(FORWARD_TIMEOUT_SECS) + 1));
    let finished = rig.wait_finished(3);
    assert_eq!(finished.len(), 1);
    match &finished[0].end {
        JobEnd::Failed(WorkerError::PeerFailed { peer, .. }) => assert_eq!(*peer, silent),
        other => panic!("expected PeerFailed, got {other:?}"),
    }
    // The driver dropped the job and told the peer.
    assert_eq!(rig.status(driver).active_jobs, 0);
    rig.until("end_job", |r| !r.calls(Method::EndJob).is_empty());
}

#[test]
fn a_cancel_that_comes_before_run_job_ends_the_job_at_once() {
    let mut rig = Rig::new("stages-1", 1);
    rig.deploy();
    let driver = rig.workers[0];
    let cancelled: AckResult = rig
        .ic
        .update_one(driver, controller(), "cancel_job", &4u64)
        .unwrap();
    assert_eq!(cancelled, AckResult::Ok(()));
    assert_eq!(
        rig.run_job(&job_args(4, "Once upon a time", 8)),
        AckResult::Ok(())
    );
    let finished = rig.wait_finished(4);
    assert_eq!(finished.len(), 1);
    assert_cancelled_without_tokens(&finished[0].end);
    assert_eq!(rig.steps(driver), 0, "nothing ran");
}

#[test]
fn a_cancel_right_after_acceptance_stops_the_job_before_any_token() {
    let mut rig = Rig::new("stages-1", 1);
    rig.deploy();
    let driver = rig.workers[0];
    // Both in the same round, before the job's first step.
    let run = rig
        .ic
        .submit_update(
            driver,
            controller(),
            "run_job",
            bytes(&job_args(5, "Once upon a time", 8)),
        )
        .unwrap();
    let cancel = rig
        .ic
        .submit_update(driver, controller(), "cancel_job", bytes(&5u64))
        .unwrap();
    let run: AckResult = decode_one(&rig.ic.await_ingress(run).unwrap()).unwrap();
    let cancel: AckResult = decode_one(&rig.ic.await_ingress(cancel).unwrap()).unwrap();
    assert_eq!((run, cancel), (AckResult::Ok(()), AckResult::Ok(())));
    let finished = rig.wait_finished(5);
    assert_cancelled_without_tokens(&finished[0].end);
    assert_eq!(rig.steps(driver), 0);
    assert!(rig.calls(Method::JobProgress).is_empty());
}

/// `forward` of `worker` called by `proxy`.
fn forward_from(rig: &mut Rig, proxy: Principal, worker: Principal, job: u64) -> ForwardResult {
    let args = ForwardArgs {
        job,
        start_position: 0,
        data: StageData::Hidden {
            seq_len: 1,
            hidden_size: 64,
            values: vec![0.25; 64],
        },
    };
    let arg = proxy_arg(worker, "forward", &bytes(&args));
    let reply = rig
        .ic
        .update_call(proxy, controller(), "proxy", arg)
        .unwrap();
    decode_one(&reply).unwrap()
}

#[test]
fn a_peer_takes_steps_from_its_driver_only_and_drops_caches_nobody_ends() {
    let mut rig = Rig::new("stages-2", 1);
    let peer = rig.workers[0];
    let install_proxy = |rig: &mut Rig| {
        let id = rig.ic.create_canister(controller()).unwrap();
        rig.ic
            .install_canister(controller(), id, module(PROXY), Vec::new())
            .unwrap();
        id
    };
    // The proxy is the pipeline's driver; another canister is not.
    let (driver, stranger) = (install_proxy(&mut rig), install_proxy(&mut rig));
    assert_eq!(rig.load(0, vec![1], vec![driver, peer]), AckResult::Ok(()));
    rig.until("worker_ready", |r| r.ready().len() == 1);

    assert_eq!(
        forward_from(&mut rig, stranger, peer, 1),
        ForwardResult::Err(WorkerError::Unauthorized { caller: stranger })
    );
    let from_controller: ForwardResult = rig
        .ic
        .update_one(
            peer,
            controller(),
            "forward",
            &ForwardArgs {
                job: 1,
                start_position: 0,
                data: StageData::Logits { values: vec![] },
            },
        )
        .unwrap();
    assert_eq!(
        from_controller,
        ForwardResult::Err(WorkerError::Unauthorized {
            caller: controller()
        })
    );
    assert_eq!(rig.status(peer).active_jobs, 0);

    // The driver's step: logits of the last stage, caches kept.
    match forward_from(&mut rig, driver, peer, 1) {
        ForwardResult::Ok(out) => {
            assert!(matches!(out.data, StageData::Logits { ref values } if values.len() == 512));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rig.status(peer).active_jobs, 1);
    // No end_job ever comes: the caches go after the TTL, by a timer.
    rig.ic
        .advance_time(Duration::from_secs(PEER_CACHE_TTL_SECS - 10));
    for _ in 0..5 {
        rig.ic.tick();
    }
    assert_eq!(rig.status(peer).active_jobs, 1);
    rig.ic.advance_time(Duration::from_secs(10));
    rig.until("the caches expired", |r| r.status(peer).active_jobs == 0);
}

#[test]
fn a_job_running_while_its_worker_is_stopped_and_upgraded_is_reported_failed() {
    let long = job_args(6, "Once upon a time", 40);
    assert!(
        engine_tokens(&long).len() > 10,
        "the job must outlast a few steps"
    );
    let mut rig = Rig::new("stages-1", 1);
    rig.deploy();
    let driver = rig.workers[0];
    assert_eq!(rig.run_job(&long), AckResult::Ok(()));
    rig.until("a few steps", |r| r.steps(driver) >= 3);
    // Stopping: the driver's next step is refused, the job ends failed;
    // its report waits in stable memory through the upgrade.
    rig.ic.stop_canister(controller(), driver).unwrap();
    rig.ic
        .install_wasm(
            controller(),
            driver,
            CanisterInstallMode::Upgrade(None),
            wasm("worker"),
            bytes(&None::<InitArgs>),
        )
        .unwrap();
    rig.ic.start_canister(controller(), driver).unwrap();
    let finished = rig.wait_finished(6);
    assert_eq!(finished.len(), 1);
    assert!(
        matches!(
            &finished[0].end,
            JobEnd::Failed(WorkerError::StepFailed { .. })
        ),
        "{:?}",
        finished[0].end
    );
    // The stages are loaded again and the task manager told.
    rig.until("ready again", |r| r.ready().len() == 2);
    assert_eq!(rig.status(driver).state, LoadState::Ready);
    let short = job_args(7, "Once upon a time", 3);
    assert_eq!(rig.run_job(&short), AckResult::Ok(()));
    let finished = rig.wait_finished(7);
    assert_eq!(outcome(&finished[1].end).tokens, engine_tokens(&short));
}
