//! Workers and pipelines: who serves, the placement of a model's stages on
//! workers (`deploy_model`), taking it back (`undeploy_model`,
//! `remove_worker`), and the workers' health.

use candid::{CandidType, Deserialize, Principal};
use task_manager_api::{Error, PipelineInfo, WorkerInfo};
use worker_api::load_stages::LoadStagesArgs;

use crate::model::registry;
use crate::records::WorkerStateRecord;
use crate::state::State;

/// Most pipelines one `deploy_model` call places.
pub const MAX_PIPELINES_PER_DEPLOY: u32 = 64;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WorkerRecord {
    pub added_at_ns: u64,
    pub spawned: bool,
    pub state: WorkerStateRecord,
    pub pipeline: Option<u32>,
    pub stage: Option<u32>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PipelineRecord {
    pub model: String,
    pub workers: Vec<Principal>,
    pub job: Option<u64>,
    pub jobs_completed: u64,
}

impl PipelineRecord {
    /// The worker of stage 0, which drives its jobs.
    pub fn driver(&self) -> Option<Principal> {
        self.workers.first().copied()
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidRequest { reason }
}

pub fn worker_info(worker: Principal, r: &WorkerRecord) -> WorkerInfo {
    WorkerInfo {
        worker,
        state: (&r.state).into(),
        pipeline: r.pipeline,
        stage: r.stage,
        spawned: r.spawned,
        added_at_ns: r.added_at_ns,
    }
}

pub fn add_worker(
    state: &mut State,
    worker: Principal,
    spawned: bool,
    now: u64,
) -> Result<WorkerInfo, Error> {
    if worker == Principal::anonymous() || worker == Principal::management_canister() {
        return Err(invalid(format!("{worker} cannot be a worker")));
    }
    if state.workers.contains_key(&worker) {
        return Err(Error::WorkerExists { worker });
    }
    let record = WorkerRecord {
        added_at_ns: now,
        spawned,
        state: WorkerStateRecord::Idle,
        pipeline: None,
        stage: None,
    };
    state.workers.insert(worker, record.clone());
    Ok(worker_info(worker, &record))
}

/// Forgets a worker that serves no pipeline (the canister itself stays;
/// its controllers decide what becomes of it).
pub fn remove_worker(state: &mut State, worker: Principal) -> Result<WorkerInfo, Error> {
    let record = state
        .workers
        .get(&worker)
        .ok_or(Error::UnknownWorker { worker })?;
    if let Some(pipeline) = record.pipeline {
        return Err(Error::WorkerInUse { worker, pipeline });
    }
    state.workers.remove(&worker);
    Ok(worker_info(worker, &record))
}

pub fn pipeline_healthy(state: &State, p: &PipelineRecord) -> bool {
    p.workers.iter().all(|w| {
        state
            .workers
            .get(w)
            .is_some_and(|r| r.state == WorkerStateRecord::Ready)
    })
}

/// Whether a healthy pipeline serves `model`.
pub fn model_served(state: &State, model: &str) -> bool {
    state
        .pipelines
        .iter()
        .any(|e| e.value().model == model && pipeline_healthy(state, &e.value()))
}

pub fn pipeline_info(state: &State, id: u32, p: &PipelineRecord) -> PipelineInfo {
    PipelineInfo {
        id,
        model: p.model.clone(),
        workers: p.workers.clone(),
        healthy: pipeline_healthy(state, p),
        job: p.job,
        jobs_completed: p.jobs_completed,
    }
}

/// New pipelines, and the assignment each of their workers is to load.
#[derive(Debug)]
pub struct Deployment {
    pub pipelines: Vec<PipelineInfo>,
    pub loads: Vec<(Principal, LoadStagesArgs)>,
}

/// Places `pipelines` pipelines of `model` on idle workers.
pub fn deploy_model(state: &mut State, model: &str, pipelines: u32) -> Result<Deployment, Error> {
    let (record, manifest) = registry::manifest(state, model)?;
    let info = registry::model_info(state, model)?;
    if !info.complete() {
        return Err(Error::ModelIncomplete {
            model: model.to_string(),
            missing: info.chunks_total - info.chunks_present,
        });
    }
    if pipelines == 0 || pipelines > MAX_PIPELINES_PER_DEPLOY {
        return Err(invalid(format!(
            "pipelines must be 1 to {MAX_PIPELINES_PER_DEPLOY}, found {pipelines}"
        )));
    }
    let stages = manifest.stages.len() as u32;
    let needed = pipelines * stages;
    let idle: Vec<Principal> = state
        .workers
        .iter()
        .filter(|e| {
            e.value().pipeline.is_none()
                && !matches!(e.value().state, WorkerStateRecord::Failed { .. })
        })
        .map(|e| *e.key())
        .collect();
    if (idle.len() as u32) < needed {
        return Err(Error::NotEnoughWorkers {
            needed,
            idle: idle.len() as u32,
        });
    }
    let mut created = Vec::new();
    let mut loads = Vec::new();
    for chunk in idle.chunks(stages as usize).take(pipelines as usize) {
        let mut meta = state.job_meta.get().clone();
        let id = meta.next_pipeline_id;
        meta.next_pipeline_id += 1;
        state.job_meta.set(meta);
        let workers = chunk.to_vec();
        for (stage, worker) in workers.iter().enumerate() {
            if let Some(mut w) = state.workers.get(worker) {
                w.pipeline = Some(id);
                w.stage = Some(stage as u32);
                w.state = WorkerStateRecord::Loading;
                state.workers.insert(*worker, w);
            }
            loads.push((
                *worker,
                LoadStagesArgs {
                    model: model.to_string(),
                    manifest_json: serde_bytes::ByteBuf::from(record.manifest_json.clone()),
                    stages: vec![stage as u32],
                    pipeline: workers.clone(),
                },
            ));
        }
        let p = PipelineRecord {
            model: model.to_string(),
            workers,
            job: None,
            jobs_completed: 0,
        };
        created.push(pipeline_info(state, id, &p));
        state.pipelines.insert(id, p);
    }
    Ok(Deployment {
        pipelines: created,
        loads,
    })
}

/// What undeploying a model took back.
#[derive(Debug, PartialEq, Eq)]
pub struct Undeployment {
    pub pipelines: Vec<u32>,
    /// The workers now idle.
    pub workers: Vec<Principal>,
    /// Running jobs to end (the caller fails them and tells their drivers).
    pub running_jobs: Vec<(u64, Principal)>,
}

/// Removes every pipeline of `model`; their workers become idle. Running
/// jobs are returned for the caller to end.
pub fn undeploy_model(state: &mut State, model: &str) -> Result<Undeployment, Error> {
    let ids: Vec<u32> = state
        .pipelines
        .iter()
        .filter(|e| e.value().model == model)
        .map(|e| *e.key())
        .collect();
    if ids.is_empty() {
        return Err(Error::ModelNotDeployed {
            model: model.to_string(),
        });
    }
    let mut undeployment = Undeployment {
        pipelines: ids.clone(),
        workers: Vec::new(),
        running_jobs: Vec::new(),
    };
    for id in ids {
        let Some(p) = state.pipelines.remove(&id) else {
            continue;
        };
        if let (Some(job), Some(driver)) = (p.job, p.driver()) {
            undeployment.running_jobs.push((job, driver));
        }
        for worker in p.workers {
            if let Some(mut w) = state.workers.get(&worker) {
                w.pipeline = None;
                w.stage = None;
                w.state = WorkerStateRecord::Idle;
                state.workers.insert(worker, w);
                undeployment.workers.push(worker);
            }
        }
    }
    Ok(undeployment)
}

/// A worker's load ended.
pub fn load_finished(state: &mut State, worker: Principal, result: Result<(), String>) {
    if let Some(mut w) = state.workers.get(&worker) {
        if w.pipeline.is_none() {
            return;
        }
        w.state = match result {
            Ok(()) => WorkerStateRecord::Ready,
            Err(reason) => WorkerStateRecord::Failed { reason },
        };
        state.workers.insert(worker, w);
    }
}

/// Marks a worker failed: its pipeline takes no jobs until a health
/// check finds it ready again.
pub fn mark_failed(state: &mut State, worker: Principal, reason: String) {
    if let Some(mut w) = state.workers.get(&worker) {
        w.state = WorkerStateRecord::Failed { reason };
        state.workers.insert(worker, w);
    }
}

/// Failed workers that hold a stage (the health check asks them).
pub fn failed_in_pipelines(state: &State) -> Vec<Principal> {
    state
        .workers
        .iter()
        .filter(|e| {
            e.value().pipeline.is_some()
                && matches!(e.value().state, WorkerStateRecord::Failed { .. })
        })
        .map(|e| *e.key())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::registry::tests::{tiny_chunks, tiny_file};

    const NOW: u64 = 1_700_000_000_000_000_000;

    fn worker(n: u8) -> Principal {
        Principal::from_slice(&[0x77, n])
    }

    #[test]
    fn deploying_needs_a_complete_model_and_enough_idle_workers() {
        let mut state = State::in_memory();
        registry::create_model(&mut state, tiny_file("manifest.json"), NOW).unwrap();
        add_worker(&mut state, worker(0), false, NOW).unwrap();
        assert_eq!(
            add_worker(&mut state, worker(0), false, NOW),
            Err(Error::WorkerExists { worker: worker(0) })
        );
        assert!(matches!(
            deploy_model(&mut state, "tiny-llama", 1),
            Err(Error::ModelIncomplete { .. })
        ));
        for (chunk, bytes) in tiny_chunks() {
            registry::upload_chunk(&mut state, &chunk, bytes).unwrap();
        }
        assert!(matches!(
            deploy_model(&mut state, "tiny-llama", 1),
            Err(Error::NotEnoughWorkers { needed: 2, idle: 1 })
        ));
        assert!(state.pipelines.is_empty());
        assert!(matches!(
            deploy_model(&mut state, "nope", 1),
            Err(Error::UnknownModel { .. })
        ));
        // A deployed model cannot be deleted.
        add_worker(&mut state, worker(1), false, NOW).unwrap();
        deploy_model(&mut state, "tiny-llama", 1).unwrap();
        assert!(matches!(
            registry::delete_model(&mut state, "tiny-llama"),
            Err(Error::ModelInUse { .. })
        ));
    }

    #[test]
    fn undeploying_frees_the_workers_and_only_free_workers_can_be_removed() {
        let mut state = State::in_memory();
        registry::create_model(&mut state, tiny_file("manifest.json"), NOW).unwrap();
        for (chunk, bytes) in tiny_chunks() {
            registry::upload_chunk(&mut state, &chunk, bytes).unwrap();
        }
        for n in 0..3 {
            add_worker(&mut state, worker(n), false, NOW).unwrap();
        }
        deploy_model(&mut state, "tiny-llama", 1).unwrap();
        let busy = state.pipelines.get(&0).unwrap().workers[0];
        assert_eq!(
            remove_worker(&mut state, busy),
            Err(Error::WorkerInUse {
                worker: busy,
                pipeline: 0
            })
        );
        let mut p = state.pipelines.get(&0).unwrap();
        p.job = Some(7);
        state.pipelines.insert(0, p);
        let undone = undeploy_model(&mut state, "tiny-llama").unwrap();
        assert_eq!(undone.pipelines, vec![0]);
        assert_eq!(undone.running_jobs, vec![(7, busy)]);
        assert_eq!(undone.workers.len(), 2);
        assert!(state.pipelines.is_empty());
        assert!(state
            .workers
            .iter()
            .all(|e| e.value().pipeline.is_none() && e.value().state == WorkerStateRecord::Idle));
        assert!(matches!(
            undeploy_model(&mut state, "tiny-llama"),
            Err(Error::ModelNotDeployed { .. })
        ));
        // The model can go now, and so can the workers.
        registry::delete_model(&mut state, "tiny-llama").unwrap();
        remove_worker(&mut state, busy).unwrap();
        assert_eq!(
            remove_worker(&mut state, busy),
            Err(Error::UnknownWorker { worker: busy })
        );
        assert_eq!(state.workers.len(), 2);
    }
}
