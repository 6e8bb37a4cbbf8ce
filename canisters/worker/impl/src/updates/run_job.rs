use ic_cdk::update;
use task_manager_api::job_finished::JobEnd;
use worker_api::protocol::{MAX_OUTBOX, MAX_RUNNING_JOBS};
use worker_api::run_job::Args;
use worker_api::WorkerError;

use crate::guards::{authorize, Audience, Caller};
use crate::model::job::DriverJob;
use crate::model::outbox::ReportKey;
use crate::state::{mutate_state, State};
use crate::tasks::{jobs, reports};

#[update]
fn run_job(args: worker_api::run_job::Args) -> worker_api::run_job::Response {
    let who = Caller::current();
    let now = ic_cdk::api::time();
    let accepted = mutate_state(|s| accept_job(s, who, &args, now));
    let result = accepted.map(|accepted| match accepted {
        Accepted::Run { run } => jobs::start(args.job, run),
        Accepted::CancelledEarly => reports::schedule(),
    });
    result.into()
}

/// What `run_job` did with an acceptable job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// Registered as run `run`: its steps start from a timer.
    Run { run: u64 },
    /// Cancelled before it came: ended at once (reported).
    CancelledEarly,
}

/// Checks the request and sets the job up (tokenized, nothing run), or
/// ends it at once if its cancel came first.
pub(crate) fn accept_job(
    state: &mut State,
    who: Caller,
    args: &Args,
    now: u64,
) -> Result<Accepted, WorkerError> {
    authorize(state, who, Audience::Manager)?;
    let runtime = state.runtime.as_ref().ok_or(WorkerError::NotLoaded)?;
    if state.jobs.contains_key(&args.job) || state.outbox.contains(ReportKey::Job(args.job)) {
        return Err(WorkerError::JobExists { job: args.job });
    }
    // Every accepted job has room for its report (and one for a load's).
    if state.jobs.len() >= MAX_RUNNING_JOBS
        || state.jobs.len() + state.outbox.len() + 2 > MAX_OUTBOX
    {
        return Err(WorkerError::TooManyJobs {
            max: MAX_RUNNING_JOBS as u32,
        });
    }
    let mut job = DriverJob::new(runtime, args)?;
    if state.early_cancels.take(args.job, now) {
        job.cancelled = true;
        let end = match job.outcome() {
            Some(outcome) => JobEnd::Done(outcome),
            None => JobEnd::Failed(WorkerError::StepFailed {
                reason: "cancelled".into(),
            }),
        };
        state.report_job_end(args.job, end, now);
        return Ok(Accepted::CancelledEarly);
    }
    job.run = state.next_run;
    state.next_run += 1;
    state.jobs.insert(args.job, job);
    Ok(Accepted::Run {
        run: state.next_run - 1,
    })
}

#[cfg(test)]
mod tests {
    use candid::Principal;
    use ic_stable_structures::DefaultMemoryImpl;
    use serde_bytes::ByteBuf;
    use task_manager_api::job_finished::JobFinishedArgs;
    use worker_api::protocol::CANCEL_MEMORY_SECS;
    use worker_api::{FinishReason, Prompt, Sampling};

    use super::*;
    use crate::model::test_support::{runtimes, worker};
    use crate::state::AssignmentCell;
    use crate::tasks::jobs::finish_job;
    use crate::updates::cancel_job::cancel_job_impl;

    const S: u64 = 1_000_000_000;

    fn tm() -> Principal {
        Principal::from_slice(&[42])
    }

    fn from_tm() -> Caller {
        Caller {
            caller: tm(),
            me: worker(0),
            is_controller: false,
        }
    }

    /// A driver of the one-stage tiny model.
    fn driver() -> State {
        let mut state = State::open(DefaultMemoryImpl::default(), tm());
        let runtime = runtimes("stages-1").remove(0);
        state
            .assignment
            .set(AssignmentCell(Some(runtime.assignment.clone())));
        state.runtime = Some(runtime);
        state
    }

    fn args(job: u64) -> Args {
        Args {
            job,
            prompt: Prompt::Text("Once upon a time".into()),
            sampling: Sampling::default(),
            max_new_tokens: 8,
            stop_sequences: vec![],
            seed: ByteBuf::from(vec![1; 32]),
        }
    }

    /// The reports the outbox holds, decoded.
    fn reports(state: &State) -> Vec<JobFinishedArgs> {
        state
            .outbox
            .pending()
            .map(|p| candid::decode_one(&p.arg).unwrap())
            .collect()
    }

    fn assert_cancelled_without_tokens(end: &JobEnd) {
        let JobEnd::Done(outcome) = end else {
            panic!("expected a cancelled outcome, got {end:?}");
        };
        assert_eq!(outcome.finish_reason, FinishReason::Cancelled);
        assert!(outcome.tokens.is_empty() && outcome.text.is_empty());
        assert_eq!(outcome.instructions.prefill_tokens, 0);
        assert!(outcome.prompt_tokens > 0);
    }

    #[test]
    fn a_cancel_before_run_job_ends_the_job_at_once() {
        let mut state = driver();
        cancel_job_impl(&mut state, from_tm(), 9, 0).unwrap();
        assert_eq!(
            accept_job(&mut state, from_tm(), &args(9), S),
            Ok(Accepted::CancelledEarly)
        );
        assert!(state.jobs.is_empty(), "nothing runs");
        let sent = reports(&state);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].job, 9);
        assert_cancelled_without_tokens(&sent[0].end);
        // Its report is pending: the same id again is refused.
        assert_eq!(
            accept_job(&mut state, from_tm(), &args(9), S),
            Err(WorkerError::JobExists { job: 9 })
        );
        // A cancel is remembered for a while only.
        cancel_job_impl(&mut state, from_tm(), 10, 0).unwrap();
        let later = CANCEL_MEMORY_SECS * S;
        assert!(matches!(
            accept_job(&mut state, from_tm(), &args(10), later),
            Ok(Accepted::Run { .. })
        ));
    }

    #[test]
    fn a_cancel_between_acceptance_and_the_first_step_stops_it_before_any_token() {
        let mut state = driver();
        let Ok(Accepted::Run { run }) = accept_job(&mut state, from_tm(), &args(3), 0) else {
            panic!("not accepted")
        };
        cancel_job_impl(&mut state, from_tm(), 3, S).unwrap();
        assert!(state.jobs[&3].plan().is_err(), "no step runs");
        let (peers, dropped) = finish_job(&mut state, 3, run, Ok(()), 2 * S).unwrap();
        assert!(peers.is_empty() && dropped.is_none());
        let sent = reports(&state);
        assert_eq!(sent.len(), 1);
        assert_cancelled_without_tokens(&sent[0].end);
        // A cancel after the end does nothing (and is not remembered).
        cancel_job_impl(&mut state, from_tm(), 3, 3 * S).unwrap();
        assert!(state.early_cancels.is_empty());
    }

    #[test]
    fn every_accepted_job_is_reported_exactly_once() {
        let mut state = driver();
        let Ok(Accepted::Run { run }) = accept_job(&mut state, from_tm(), &args(1), 0) else {
            panic!("not accepted")
        };
        let failure = WorkerError::PeerFailed {
            peer: worker(1),
            reason: "no answer".into(),
        };
        assert!(finish_job(&mut state, 1, run + 1, Err(failure.clone()), S).is_none());
        assert!(finish_job(&mut state, 1, run, Err(failure.clone()), S).is_some());
        assert!(finish_job(&mut state, 1, run, Ok(()), S).is_none(), "once");
        let sent = reports(&state);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].end, JobEnd::Failed(failure));

        // Jobs a new assignment (or an upgrade) ends are reported too, and
        // their loops, when they come back, report nothing more.
        let Ok(Accepted::Run { run }) = accept_job(&mut state, from_tm(), &args(2), S) else {
            panic!("not accepted")
        };
        let upgraded = WorkerError::StepFailed {
            reason: "upgraded".into(),
        };
        assert!(state.fail_running_jobs(&upgraded, S).is_empty());
        assert!(finish_job(&mut state, 2, run, Ok(()), S).is_none());
        let sent = reports(&state);
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1].end, JobEnd::Failed(upgraded));
    }

    #[test]
    fn run_job_is_for_the_task_manager_and_bounded() {
        let mut state = driver();
        let stranger = Caller {
            caller: worker(5),
            ..from_tm()
        };
        assert_eq!(
            accept_job(&mut state, stranger, &args(1), 0),
            Err(WorkerError::Unauthorized { caller: worker(5) })
        );
        assert_eq!(
            cancel_job_impl(&mut state, stranger, 1, 0),
            Err(WorkerError::Unauthorized { caller: worker(5) })
        );
        for job in 0..MAX_RUNNING_JOBS as u64 {
            accept_job(&mut state, from_tm(), &args(job), 0).unwrap();
        }
        assert_eq!(
            accept_job(&mut state, from_tm(), &args(99), 0),
            Err(WorkerError::TooManyJobs {
                max: MAX_RUNNING_JOBS as u32
            })
        );
        assert_eq!(
            accept_job(&mut state, from_tm(), &args(0), 0),
            Err(WorkerError::JobExists { job: 0 })
        );
        // Not loaded: refused.
        state.runtime = None;
        assert_eq!(
            accept_job(&mut state, from_tm(), &args(100), 0),
            Err(WorkerError::NotLoaded)
        );
    }
}
