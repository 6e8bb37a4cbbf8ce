use ic_cdk::update;
use task_manager_api::create_model::Args;
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::registry;
use crate::model::users::authorize_controller;
use crate::state::{mutate_state, State};

#[update]
fn create_model(
    args: task_manager_api::create_model::Args,
) -> task_manager_api::create_model::Response {
    mutate_state(|state| create_model_impl(state, &CanisterEnv, args))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn create_model_impl(
    state: &mut State,
    env: &impl Environment,
    args: Args,
) -> Result<task_manager_api::ModelInfo, Error> {
    authorize_controller(env)?;
    registry::create_model(state, args.manifest_json.into_vec(), env.now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{controller, user, TestEnv};
    use crate::model::registry::tests::tiny_file;
    use serde_bytes::ByteBuf;
    use task_manager_api::Error;

    fn args(bytes: Vec<u8>) -> Args {
        Args {
            manifest_json: ByteBuf::from(bytes),
        }
    }

    #[test]
    fn registers_a_real_manifest_once() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        let manifest = tiny_file("manifest.json");
        assert_eq!(
            create_model_impl(&mut state, env.as_caller(user(1)), args(manifest.clone())),
            Err(Error::NotController)
        );
        env.as_caller(controller());
        let info = create_model_impl(&mut state, &env, args(manifest.clone())).unwrap();
        assert_eq!(info.name, "tiny-llama");
        assert_eq!(info.stages, 2);
        assert_eq!(info.chunks_present, 0);
        assert!(info.chunks_total >= 3);
        // Idempotent.
        assert_eq!(
            create_model_impl(&mut state, &env, args(manifest.clone())).unwrap(),
            info
        );
        // The same name with another manifest is refused.
        let mut other: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        other["config"]["rms_norm_eps"] = serde_json::json!(1e-6);
        let other = serde_json::to_vec(&other).unwrap();
        assert_eq!(
            create_model_impl(&mut state, &env, args(other)),
            Err(Error::ModelExists {
                model: "tiny-llama".into()
            })
        );
        assert_eq!(state.models.len(), 1);
    }

    #[test]
    fn bad_manifests_are_refused_without_state_change() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        env.as_caller(controller());
        let manifest: serde_json::Value =
            serde_json::from_slice(&tiny_file("manifest.json")).unwrap();
        let mut cases = vec![
            b"not json".to_vec(),
            tiny_file("manifest.json")[..100].to_vec(),
        ];
        let mut unknown_arch = manifest.clone();
        unknown_arch["architecture"] = serde_json::json!("mamba");
        cases.push(serde_json::to_vec(&unknown_arch).unwrap());
        let mut bad_name = manifest.clone();
        bad_name["name"] = serde_json::json!("no spaces please");
        cases.push(serde_json::to_vec(&bad_name).unwrap());
        let mut bad_hash = manifest;
        bad_hash["stages"][0]["chunks"][0]["sha256"] = serde_json::json!("xyz");
        cases.push(serde_json::to_vec(&bad_hash).unwrap());
        for case in cases {
            let result = create_model_impl(&mut state, &env, args(case));
            assert!(
                matches!(result, Err(Error::InvalidManifest { .. })),
                "{result:?}"
            );
        }
        assert!(state.models.is_empty());
        assert_eq!(state.meta.get().next_model_id, 0);
    }
}
