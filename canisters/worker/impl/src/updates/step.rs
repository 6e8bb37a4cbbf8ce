use candid::Principal;
use ic_cdk::call::Call;
use ic_cdk::update;
use model_format::ModelConfig;
use task_manager_api::job_progress::JobProgress;
use worker_api::forward::{ForwardArgs, ForwardOutput, ForwardResult};
use worker_api::protocol::REPORT_TIMEOUT_SECS;
use worker_api::step::StepReport;
use worker_api::{StageData, WorkerError};

use crate::guards::{authorize, Audience, Caller};
use crate::model::job::{forward_timeout, StepPlan};
use crate::model::runtime::check_peer_output;
use crate::state::{mutate_state, State};

#[update]
async fn step(job: worker_api::step::Args) -> worker_api::step::Response {
    step_impl(job).await.into()
}

async fn step_impl(job: u64) -> Result<StepReport, WorkerError> {
    let who = Caller::current();
    let Some(Begun {
        plan,
        mut data,
        downstream,
        config,
    }) = mutate_state(|s| begin(s, who, job))?
    else {
        // Cancelled since the driver looked.
        return Ok(StepReport::Finished);
    };
    // This message's instructions, then each peer's.
    let own = ic_cdk::api::performance_counter(0);
    let mut instructions = own;
    let mut max_message = own;
    let deadline = ic_cdk::api::msg_deadline().map(|d| d.get());
    for (i, &peer) in downstream.iter().enumerate() {
        let failed = |reason: String| WorkerError::PeerFailed { peer, reason };
        let timeout = forward_timeout(ic_cdk::api::time(), deadline)
            .ok_or_else(|| failed("no time left before the step's deadline".into()))?;
        let args = ForwardArgs {
            job,
            start_position: plan.start_position as u32,
            data,
        };
        let out = forward(peer, &args, timeout).await?;
        let holds_last_stage = i + 1 == downstream.len();
        check_peer_output(&config, plan.tokens.len(), holds_last_stage, &out).map_err(failed)?;
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
    // final text comes with job_finished).
    let _ = Call::bounded_wait(tm, "job_progress")
        .change_timeout(REPORT_TIMEOUT_SECS)
        .with_arg(progress)
        .oneway();
    Ok(report)
}

/// What a step runs after the driver's own stages.
struct Begun {
    plan: StepPlan,
    data: StageData,
    downstream: Vec<Principal>,
    config: ModelConfig,
}

/// Plans the step and runs the driver's own stages; `None` if the job has
/// ended (cancelled) meanwhile.
fn begin(state: &mut State, who: Caller, job: u64) -> Result<Option<Begun>, WorkerError> {
    authorize(state, who, Audience::SelfOnly)?;
    let State { runtime, jobs, .. } = state;
    let runtime = runtime.as_ref().ok_or(WorkerError::NotLoaded)?;
    let driver = jobs.get_mut(&job).ok_or(WorkerError::UnknownJob { job })?;
    if driver.finished().is_some() {
        return Ok(None);
    }
    let plan = driver.plan()?;
    let data = driver.begin_step(runtime, &plan)?;
    Ok(Some(Begun {
        plan,
        data,
        downstream: runtime.assignment.downstream(),
        config: runtime.manifest.config.clone(),
    }))
}

async fn forward(
    peer: Principal,
    args: &ForwardArgs,
    timeout_secs: u32,
) -> Result<ForwardOutput, WorkerError> {
    let failed = |reason: String| WorkerError::PeerFailed { peer, reason };
    let reply = Call::bounded_wait(peer, "forward")
        .change_timeout(timeout_secs)
        .with_arg(args)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let response: ForwardResult = reply.candid().map_err(|e| failed(e.to_string()))?;
    response.into_result().map_err(|e| failed(e.to_string()))
}
