use candid::Principal;
use ic_cdk::call::Call;
use ic_cdk::update;
use task_manager_api::job_progress::JobProgress;
use worker_api::forward::{ForwardArgs, ForwardOutput};
use worker_api::step::StepReport;
use worker_api::{StageData, WorkerError};

use crate::guards::{authorize, Audience, Caller};
use crate::model::job::StepPlan;
use crate::state::{mutate_state, State};

#[update]
async fn step(job: worker_api::step::Args) -> worker_api::step::Response {
    let who = Caller::current();
    let (plan, mut data, downstream) = mutate_state(|s| begin(s, who, job))?;
    // This message's instructions, then each peer's.
    let own = ic_cdk::api::performance_counter(0);
    let mut instructions = own;
    let mut max_message = own;
    for peer in downstream {
        let args = ForwardArgs {
            job,
            start_position: plan.start_position as u32,
            data,
        };
        let out = forward(peer, &args).await?;
        instructions += out.instructions;
        max_message = max_message.max(out.instructions);
        data = out.data;
    }
    let (report, progress, tm) = mutate_state(|s| {
        let State { runtime, jobs, .. } = s;
        let runtime = runtime.as_ref().ok_or(WorkerError::NotLoaded)?;
        let driver = jobs.get_mut(&job).ok_or(WorkerError::UnknownJob { job })?;
        let result = driver.end_step(runtime, &plan, data, instructions, max_message)?;
        let progress = JobProgress {
            job,
            text: driver.text().to_string(),
            generated_tokens: driver.generated().len() as u32,
            prompt_tokens: driver.prompt_tokens() as u32,
        };
        let report = match result.finished {
            Some(_) => StepReport::Finished,
            None => StepReport::Continue,
        };
        Ok::<_, WorkerError>((report, progress, s.task_manager()))
    })?;
    // Streaming: the task manager keeps the text so far (one-way; the
    // final text also comes back with run_job's reply).
    let _ = Call::unbounded_wait(tm, "job_progress")
        .with_arg(progress)
        .oneway();
    Ok(report)
}

/// Plans the step and runs the driver's own stages.
fn begin(
    state: &mut State,
    who: Caller,
    job: u64,
) -> Result<(StepPlan, StageData, Vec<Principal>), WorkerError> {
    authorize(state, who, Audience::SelfOnly)?;
    let State { runtime, jobs, .. } = state;
    let runtime = runtime.as_ref().ok_or(WorkerError::NotLoaded)?;
    let driver = jobs.get_mut(&job).ok_or(WorkerError::UnknownJob { job })?;
    let plan = driver.plan()?;
    let data = driver.begin_step(runtime, &plan)?;
    Ok((plan, data, runtime.assignment.downstream()))
}

async fn forward(peer: Principal, args: &ForwardArgs) -> Result<ForwardOutput, WorkerError> {
    let failed = |reason: String| WorkerError::PeerFailed { peer, reason };
    let reply = Call::unbounded_wait(peer, "forward")
        .with_arg(args)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let response: worker_api::forward::Response =
        reply.candid().map_err(|e| failed(e.to_string()))?;
    response.map_err(|e| failed(e.to_string()))
}
