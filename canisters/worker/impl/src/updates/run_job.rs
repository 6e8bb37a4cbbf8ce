use ic_cdk::call::Call;
use ic_cdk::update;
use worker_api::run_job::Args;
use worker_api::step::StepReport;
use worker_api::WorkerError;

use crate::guards::{authorize, Audience, Caller};
use crate::model::job::DriverJob;
use crate::state::{mutate_state, read_state, State};

#[update]
async fn run_job(args: worker_api::run_job::Args) -> worker_api::run_job::Response {
    let who = Caller::current();
    let job = args.job;
    mutate_state(|s| start_job(s, who, &args))?;
    // Drops the job (and its peers' caches) however this ends.
    let _guard = JobGuard { job };
    loop {
        let cancelled = read_state(|s| s.jobs.get(&job).map(|j| j.cancelled));
        match cancelled {
            None => return Err(WorkerError::UnknownJob { job }),
            Some(true) => break,
            Some(false) => {}
        }
        // One message per step: the worker calls itself.
        let reply = Call::unbounded_wait(who.me, "step")
            .with_arg(job)
            .await
            .map_err(|e| WorkerError::StepFailed {
                reason: e.to_string(),
            })?;
        let report: worker_api::step::Response =
            reply.candid().map_err(|e| WorkerError::StepFailed {
                reason: e.to_string(),
            })?;
        if report? == StepReport::Finished {
            break;
        }
    }
    read_state(|s| s.jobs.get(&job).and_then(DriverJob::outcome))
        .ok_or(WorkerError::UnknownJob { job })
}

/// Checks the request and sets the job up (tokenized, nothing run).
pub(crate) fn start_job(state: &mut State, who: Caller, args: &Args) -> Result<(), WorkerError> {
    authorize(state, who, Audience::Manager)?;
    let runtime = state.runtime.as_ref().ok_or(WorkerError::NotLoaded)?;
    if state.jobs.contains_key(&args.job) {
        return Err(WorkerError::JobExists { job: args.job });
    }
    let job = DriverJob::new(runtime, args)?;
    state.jobs.insert(args.job, job);
    Ok(())
}

struct JobGuard {
    job: u64,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let peers = mutate_state(|s| {
            s.jobs.remove(&self.job);
            s.runtime
                .as_ref()
                .map(|r| r.assignment.downstream())
                .unwrap_or_default()
        });
        // No calls while a trap is being cleaned up.
        if !ic_cdk::futures::is_recovering_from_trap() {
            for peer in peers {
                // Best effort: a peer that misses it drops the caches on its
                // next assignment.
                let _ = Call::unbounded_wait(peer, "end_job")
                    .with_arg(self.job)
                    .oneway();
            }
        }
    }
}
