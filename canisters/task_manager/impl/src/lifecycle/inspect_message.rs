//! Refuses ingress that would be refused anyway, before it costs cycles:
//! admin methods from non-controllers, and user methods from the
//! anonymous principal, unregistered or banned callers.

use candid::Principal;
use ic_cdk::inspect_message;

use crate::env::{CanisterEnv, Environment};
use crate::model::users::authorized_user;
use crate::state::{read_state, State};

#[inspect_message]
fn inspect_message() {
    let method = ic_cdk::api::msg_method_name();
    if read_state(|state| accepts(state, &CanisterEnv, &method)) {
        ic_cdk::api::accept_message();
    }
}

/// Who may send each update method as ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    Controllers,
    /// Anyone but the anonymous principal and banned users.
    Registering,
    /// Registered users who are not banned.
    Users,
}

fn audience(method: &str) -> Option<Audience> {
    Some(match method {
        "set_default_quota" | "set_user_quota" | "ban_user" | "unban_user" | "set_paused"
        | "create_model" | "upload_chunk" | "delete_model" | "add_worker" | "deploy_model"
        | "upload_worker_wasm" | "spawn_workers" => Audience::Controllers,
        "register" => Audience::Registering,
        "generate" | "generate_and_wait" | "cancel" | "job" => Audience::Users,
        // Queries sent as updates: served to the same callers.
        "whoami" => Audience::Users,
        "user" | "missing_chunks" | "workers" => Audience::Controllers,
        // Public queries; as updates (certified answers) for users.
        "models" | "model_manifest" | "model_chunk" | "pipelines" => Audience::Users,
        "config" => Audience::Users,
        _ => return None,
    })
}

pub(crate) fn accepts(state: &State, env: &impl Environment, method: &str) -> bool {
    let caller = env.caller();
    if env.is_controller(&caller) {
        return audience(method).is_some();
    }
    match audience(method) {
        None | Some(Audience::Controllers) => false,
        Some(Audience::Registering) => {
            caller != Principal::anonymous()
                && state.users.get(&caller).is_none_or(|record| !record.banned)
        }
        Some(Audience::Users) => authorized_user(state, caller).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{controller, user, TestEnv};
    use crate::updates::ban_user::set_banned;
    use crate::updates::register::register_impl;

    #[test]
    fn refuses_what_the_method_would_refuse() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        let anonymous = Principal::anonymous();

        assert!(!accepts(&state, env.as_caller(anonymous), "register"));
        assert!(accepts(&state, env.as_caller(user(1)), "register"));
        assert!(!accepts(&state, &env, "whoami"), "unregistered");
        register_impl(&mut state, &env).unwrap();
        assert!(accepts(&state, &env, "whoami"));
        assert!(!accepts(&state, &env, "set_paused"));
        assert!(!accepts(&state, &env, "no_such_method"));

        env.as_caller(controller());
        assert!(accepts(&state, &env, "set_paused"));
        assert!(!accepts(&state, &env, "no_such_method"));
        set_banned(&mut state, &env, user(1), true).unwrap();
        env.as_caller(user(1));
        assert!(!accepts(&state, &env, "register"));
        assert!(!accepts(&state, &env, "whoami"));
    }
}
