//! What the task manager asks a worker to hold, checked against the
//! manifest.

use candid::{CandidType, Deserialize, Principal};
use model_format::Manifest;
use worker_api::load_stages::LoadStagesArgs;
use worker_api::WorkerError;

/// A checked assignment, as stored in stable memory.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub model: String,
    #[serde(with = "serde_bytes")]
    pub manifest_json: Vec<u8>,
    pub stages: Vec<u32>,
    pub pipeline: Vec<Principal>,
}

impl Assignment {
    /// Checks `args` for the worker `me`: the manifest parses, the stages
    /// are consecutive and exist, the pipeline names a worker per stage and
    /// `me` exactly at `stages`.
    pub fn check(
        args: LoadStagesArgs,
        me: Principal,
    ) -> Result<(Assignment, Manifest), WorkerError> {
        let invalid = |reason: String| WorkerError::InvalidAssignment { reason };
        let manifest = Manifest::from_json(&args.manifest_json)
            .map_err(|e| invalid(format!("manifest: {e}")))?;
        if manifest.name != args.model {
            return Err(invalid(format!(
                "the manifest is of model {:?}, the assignment names {:?}",
                manifest.name, args.model
            )));
        }
        let n = manifest.stages.len();
        if args.pipeline.len() != n {
            return Err(invalid(format!(
                "the model has {n} stages, the pipeline names {} workers",
                args.pipeline.len()
            )));
        }
        let Some(&first) = args.stages.first() else {
            return Err(invalid("no stages assigned".into()));
        };
        for (i, &stage) in args.stages.iter().enumerate() {
            if stage as usize >= n || stage != first + i as u32 {
                return Err(invalid(format!(
                    "stages must be consecutive indices below {n}, found {:?}",
                    args.stages
                )));
            }
        }
        for (s, worker) in args.pipeline.iter().enumerate() {
            let mine = args.stages.contains(&(s as u32));
            if mine != (*worker == me) {
                return Err(invalid(format!(
                    "pipeline stage {s} is held by {worker}, which does not match this worker's stages {:?}",
                    args.stages
                )));
            }
        }
        Ok((
            Assignment {
                model: args.model,
                manifest_json: args.manifest_json.into_vec(),
                stages: args.stages,
                pipeline: args.pipeline,
            },
            manifest,
        ))
    }

    /// Whether this worker runs stage 0 (and so drives jobs).
    pub fn is_driver(&self) -> bool {
        self.stages.first() == Some(&0)
    }

    /// The workers after this one, each once, in pipeline order.
    pub fn downstream(&self) -> Vec<Principal> {
        let last = self.stages.last().copied().unwrap_or(0) as usize;
        let mut out: Vec<Principal> = Vec::new();
        for worker in self.pipeline.iter().skip(last + 1) {
            if out.last() != Some(worker) {
                out.push(*worker);
            }
        }
        out
    }

    /// The pipeline's driver (the worker holding stage 0, which sends
    /// every `forward`), when it is another worker.
    pub fn driver(&self) -> Option<Principal> {
        if self.is_driver() {
            None
        } else {
            self.pipeline.first().copied()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_bytes::ByteBuf;

    fn p(n: u8) -> Principal {
        Principal::from_slice(&[n, 1, 2])
    }

    fn manifest() -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../models/tiny-llama/stages-2/manifest.json");
        std::fs::read(dir).unwrap()
    }

    fn args(stages: Vec<u32>, pipeline: Vec<Principal>) -> LoadStagesArgs {
        LoadStagesArgs {
            model: "tiny-llama".into(),
            manifest_json: ByteBuf::from(manifest()),
            stages,
            pipeline,
        }
    }

    #[test]
    fn accepts_a_consistent_assignment() {
        let (a, m) = Assignment::check(args(vec![0], vec![p(1), p(2)]), p(1)).unwrap();
        assert_eq!(m.stages.len(), 2);
        assert!(a.is_driver());
        assert_eq!(a.downstream(), vec![p(2)]);
        assert_eq!(a.driver(), None);
        let (b, _) = Assignment::check(args(vec![1], vec![p(1), p(2)]), p(2)).unwrap();
        assert!(!b.is_driver());
        assert_eq!(b.driver(), Some(p(1)));
        assert!(b.downstream().is_empty());
        let (c, _) = Assignment::check(args(vec![0, 1], vec![p(1), p(1)]), p(1)).unwrap();
        assert!(c.downstream().is_empty());
    }

    #[test]
    fn refuses_inconsistent_ones() {
        let bad = |a: LoadStagesArgs, me| match Assignment::check(a, me) {
            Err(WorkerError::InvalidAssignment { reason }) => reason,
            other => panic!("expected InvalidAssignment, got {other:?}"),
        };
        assert!(bad(args(vec![0], vec![p(1)]), p(1)).contains("2 stages"));
        assert!(bad(args(vec![], vec![p(1), p(2)]), p(1)).contains("no stages"));
        assert!(bad(args(vec![0, 2], vec![p(1), p(2)]), p(1)).contains("consecutive"));
        assert!(bad(args(vec![0], vec![p(1), p(2)]), p(2)).contains("does not match"));
        let mut wrong_name = args(vec![0], vec![p(1), p(2)]);
        wrong_name.model = "other".into();
        assert!(bad(wrong_name, p(1)).contains("names \"other\""));
        let mut garbage = args(vec![0], vec![p(1), p(2)]);
        garbage.manifest_json = ByteBuf::from(b"{".to_vec());
        assert!(bad(garbage, p(1)).contains("manifest"));
    }
}
