use ic_cdk::call::Call;
use ic_cdk::update;
use task_manager_api::{Error, JobStatus};

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::state::mutate_state;
use crate::updates::generate::generate_impl;

/// Queues the job like `generate`, then waits: each round it reads the job
/// by calling itself, until the job has ended.
#[update]
async fn generate_and_wait(
    request: task_manager_api::generate_and_wait::Args,
) -> task_manager_api::generate_and_wait::Response {
    let job = mutate_state(|state| generate_impl(state, &CanisterEnv, request))?;
    dispatch::schedule();
    let me = CanisterEnv.canister_self();
    loop {
        let read = Call::unbounded_wait(me, "job").with_arg(job).await;
        let Ok(reply) = read else {
            // The canister is stopping: the job goes on, the wait does not.
            return Err(Error::WaitInterrupted { job });
        };
        let info = reply
            .candid::<task_manager_api::job::Response>()
            .map_err(|_| Error::WaitInterrupted { job })??;
        match &info.status {
            JobStatus::Failed { reason } => {
                return Err(Error::JobFailed {
                    job,
                    reason: reason.clone(),
                })
            }
            status if status.is_final() => return Ok(info),
            _ => {}
        }
    }
}
