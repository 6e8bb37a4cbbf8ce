//! Which task manager and model the example uses: what was configured,
//! else what the tools gave it (see the crate docs for the order).

use candid::Principal;

use crate::types::{InitArgs, TaskManagerSource};

/// The model asked when none is given.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// The canister environment variable icp-cli sets to the task manager's id.
pub const TASK_MANAGER_ENV_VAR: &str = "PUBLIC_CANISTER_ID:task_manager";

/// What was given explicitly (install or upgrade argument, `configure`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Configured {
    pub task_manager: Option<Principal>,
    pub model: Option<String>,
}

impl Configured {
    /// Each field given replaces the configured one; a field left out
    /// keeps it.
    pub fn apply(&mut self, args: InitArgs) {
        if let Some(tm) = args.task_manager {
            self.task_manager = Some(tm);
        }
        if let Some(model) = args.model {
            self.model = Some(model);
        }
    }
}

/// The message while no task manager is known.
pub fn no_task_manager() -> String {
    "no task manager configured: deploy with (opt record { task_manager = opt principal \"…\" }) \
     or as a dependency of task_manager, or call configure (controllers)"
        .to_string()
}

/// The task manager to call, in the order the crate docs give, from what
/// was configured, the canister environment variable's value and the
/// build-time id.
pub(crate) fn resolve(
    configured: Option<Principal>,
    env_var: Option<String>,
    build: Option<&str>,
) -> Result<(Principal, TaskManagerSource), String> {
    if let Some(tm) = configured {
        return Ok((tm, TaskManagerSource::Configured));
    }
    if let Some(text) = env_var {
        return Principal::from_text(text.trim())
            .map(|tm| (tm, TaskManagerSource::CanisterEnvironment))
            .map_err(|e| {
                format!("the canister environment variable {TASK_MANAGER_ENV_VAR} = {text:?} is not a principal: {e}")
            });
    }
    if let Some(text) = build {
        return Principal::from_text(text.trim())
            .map(|tm| (tm, TaskManagerSource::Build))
            .map_err(|e| {
                format!("CANISTER_ID_TASK_MANAGER = {text:?} at build time is not a principal: {e}")
            });
    }
    Err(no_task_manager())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Principal {
        Principal::from_slice(&[n; 10])
    }

    #[test]
    fn explicit_then_environment_then_build() {
        let env = Some(id(2).to_text());
        let build = id(3).to_text();
        assert_eq!(
            resolve(Some(id(1)), env.clone(), Some(&build)),
            Ok((id(1), TaskManagerSource::Configured))
        );
        assert_eq!(
            resolve(None, env, Some(&build)),
            Ok((id(2), TaskManagerSource::CanisterEnvironment))
        );
        assert_eq!(
            resolve(None, None, Some(&build)),
            Ok((id(3), TaskManagerSource::Build))
        );
        assert_eq!(resolve(None, None, None), Err(no_task_manager()));
    }

    #[test]
    fn a_bad_id_is_reported_not_skipped() {
        let e = resolve(None, Some("not-a-principal".into()), Some(&id(3).to_text())).unwrap_err();
        assert!(e.contains(TASK_MANAGER_ENV_VAR), "{e}");
        let e = resolve(None, None, Some("nope")).unwrap_err();
        assert!(e.contains("CANISTER_ID_TASK_MANAGER"), "{e}");
    }

    #[test]
    fn given_fields_replace_and_missing_ones_keep() {
        let mut c = Configured::default();
        c.apply(InitArgs {
            task_manager: Some(id(1)),
            model: None,
        });
        c.apply(InitArgs {
            task_manager: None,
            model: Some("tiny-llama".into()),
        });
        assert_eq!(c.task_manager, Some(id(1)));
        assert_eq!(c.model.as_deref(), Some("tiny-llama"));
    }
}
