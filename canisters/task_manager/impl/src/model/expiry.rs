//! The watchdog: what ends by time. Running jobs whose driver went
//! silent fail; queued jobs that no healthy pipeline can take time out;
//! finished jobs expire. Each pass does a bounded amount of work, so the
//! periodic timer never runs out of instructions however much piled up.

use candid::Principal;

use crate::model::jobs::{delete_finished, driver_of, fail_queued, finish_job, RunResult};
use crate::model::workers::model_served;
use crate::state::{FinishedKey, State};

/// Most jobs one pass ends or deletes, of each kind.
pub const MAX_PER_PASS: usize = 500;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// What a pass did; `stalled` are (job, driver) pairs whose drivers the
/// caller tells to stop.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub stalled: Vec<(u64, Principal)>,
    pub timed_out: Vec<u64>,
    pub expired: u64,
}

/// One pass at `now`.
pub fn sweep(state: &mut State, now: u64) -> Sweep {
    let config = state.config().clone();
    let mut out = Sweep::default();

    // Running jobs whose driver has not been heard from in time.
    let stall = config.job_stall_timeout_secs.saturating_mul(NANOS_PER_SEC);
    let silent: Vec<(u64, Option<Principal>)> = state
        .running
        .iter()
        .filter_map(|e| {
            let id = *e.key();
            let j = state.jobs.get(&id)?;
            let heard = j.heard_at_ns.or(j.started_at_ns).unwrap_or(j.created_at_ns);
            (now.saturating_sub(heard) > stall).then(|| (id, driver_of(state, &j)))
        })
        .take(MAX_PER_PASS)
        .collect();
    for (id, driver) in silent {
        finish_job(
            state,
            id,
            now,
            RunResult::Stalled(format!(
                "the driver sent no report for {} s",
                config.job_stall_timeout_secs
            )),
        );
        if let Some(d) = driver {
            out.stalled.push((id, d));
        }
    }

    // Queued jobs, oldest first, that waited too long for a model that no
    // healthy pipeline serves.
    let wait = config.queue_timeout_secs.saturating_mul(NANOS_PER_SEC);
    let mut stale = Vec::new();
    for e in state.queue.iter() {
        let id = *e.key();
        let Some(j) = state.jobs.get(&id) else {
            continue;
        };
        if now.saturating_sub(j.created_at_ns) <= wait || stale.len() >= MAX_PER_PASS {
            // Ids grow with time: the rest are younger.
            break;
        }
        if !model_served(state, &j.model) {
            stale.push(id);
        }
    }
    for id in stale {
        fail_queued(
            state,
            id,
            now,
            format!(
                "no healthy pipeline served the model for {} s",
                config.queue_timeout_secs
            ),
        );
        out.timed_out.push(id);
    }

    // Finished jobs past their retention.
    let keep = config
        .finished_job_retention_secs
        .saturating_mul(NANOS_PER_SEC);
    let cutoff = now.saturating_sub(keep);
    let old: Vec<u64> = state
        .finished
        .range(
            ..FinishedKey {
                finished_at_ns: cutoff,
                job: 0,
            },
        )
        .take(MAX_PER_PASS)
        .map(|e| e.key().job)
        .collect();
    for id in old {
        delete_finished(state, id);
        out.expired += 1;
    }
    out
}
