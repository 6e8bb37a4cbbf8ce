use ic_cdk::query;
use worker_api::status::{Response, WorkerStatus};

use crate::state::{read_state, State};

#[query]
fn status() -> worker_api::status::Response {
    read_state(status_impl)
}

pub(crate) fn status_impl(state: &State) -> Response {
    let assignment = state.assignment();
    let peer_jobs = state.runtime.as_ref().map_or(0, |r| r.peer_jobs.len());
    WorkerStatus {
        task_manager: state.task_manager(),
        model: assignment.map(|a| a.model.clone()),
        stages: assignment.map(|a| a.stages.clone()).unwrap_or_default(),
        pipeline: assignment.map(|a| a.pipeline.clone()).unwrap_or_default(),
        state: state.load_state.clone(),
        active_jobs: (state.jobs.len() + peer_jobs) as u32,
        pending_reports: state.outbox.len() as u32,
        load_instructions: state.load_report.load_instructions,
        load_messages: state.load_report.load_messages,
        load_max_message: state.load_report.load_max_message,
        stored_chunks: state.chunks.len(),
    }
}
