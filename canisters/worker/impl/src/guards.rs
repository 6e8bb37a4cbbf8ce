//! Who may call what. Worker methods are for canisters: the task manager
//! and controllers (assignments, jobs), the pipeline's driver (steps of a
//! job on its downstream peers) and the worker itself (its own steps).
//! Refusals are typed [`WorkerError::Unauthorized`] errors, not traps.

use candid::Principal;
use worker_api::WorkerError;

use crate::state::State;

/// The callers of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The task manager and controllers.
    Manager,
    /// The driver of this worker's pipeline (the worker holding stage 0,
    /// which sends every `forward`), when this worker is not the driver.
    Driver,
    /// The driver, the task manager and controllers.
    DriverOrManager,
    /// The worker itself.
    SelfOnly,
}

/// Who is calling.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub caller: Principal,
    pub me: Principal,
    pub is_controller: bool,
}

impl Caller {
    /// The caller of the running message.
    pub fn current() -> Caller {
        let caller = ic_cdk::api::msg_caller();
        Caller {
            caller,
            me: ic_cdk::api::canister_self(),
            is_controller: ic_cdk::api::is_controller(&caller),
        }
    }
}

pub fn authorize(state: &State, who: Caller, audience: Audience) -> Result<(), WorkerError> {
    let c = who.caller;
    let manager = who.is_controller || c == state.task_manager();
    let driver = c != who.me && state.assignment().and_then(|a| a.driver()) == Some(c);
    let ok = match audience {
        Audience::Manager => manager,
        Audience::Driver => driver,
        Audience::DriverOrManager => driver || manager,
        Audience::SelfOnly => c == who.me,
    };
    if ok {
        Ok(())
    } else {
        Err(WorkerError::Unauthorized { caller: c })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::assignment::Assignment;
    use crate::state::AssignmentCell;
    use ic_stable_structures::DefaultMemoryImpl;

    fn p(n: u8) -> Principal {
        Principal::from_slice(&[n, 7])
    }

    fn who(caller: Principal, is_controller: bool) -> Caller {
        Caller {
            caller,
            me: p(2),
            is_controller,
        }
    }

    #[test]
    fn each_audience_admits_its_callers_only() {
        let state = State::open(DefaultMemoryImpl::default(), p(1));
        assert!(authorize(&state, who(p(1), false), Audience::Manager).is_ok());
        assert!(authorize(&state, who(p(9), true), Audience::Manager).is_ok());
        assert_eq!(
            authorize(&state, who(p(3), false), Audience::Manager),
            Err(WorkerError::Unauthorized { caller: p(3) })
        );
        assert!(authorize(&state, who(p(2), false), Audience::SelfOnly).is_ok());
        assert!(authorize(&state, who(p(1), false), Audience::SelfOnly).is_err());
        assert!(authorize(&state, who(Principal::anonymous(), false), Audience::Driver).is_err());
        // Without an assignment there is no driver.
        assert!(authorize(&state, who(p(3), false), Audience::Driver).is_err());
        assert!(authorize(&state, who(p(1), false), Audience::DriverOrManager).is_ok());
    }

    #[test]
    fn only_the_pipelines_driver_may_send_steps() {
        // Two stages: on worker 4 (the driver) and on 2 (this worker).
        let manifest = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../models/tiny-llama/stages-2/manifest.json"),
        )
        .unwrap();
        let mut state = State::open(DefaultMemoryImpl::default(), p(1));
        let (a, _) = Assignment::check(
            worker_api::load_stages::LoadStagesArgs {
                model: "tiny-llama".into(),
                manifest_json: serde_bytes::ByteBuf::from(manifest),
                stages: vec![1],
                pipeline: vec![p(4), p(2)],
            },
            p(2),
        )
        .unwrap();
        state.assignment.set(AssignmentCell(Some(a)));
        assert!(authorize(&state, who(p(4), false), Audience::Driver).is_ok());
        // Not the task manager, a controller, itself or a stranger.
        for (caller, controller) in [(p(1), false), (p(9), true), (p(2), false), (p(5), false)] {
            assert_eq!(
                authorize(&state, who(caller, controller), Audience::Driver),
                Err(WorkerError::Unauthorized { caller })
            );
        }
        assert!(authorize(&state, who(p(1), false), Audience::DriverOrManager).is_ok());
        assert!(authorize(&state, who(p(5), false), Audience::DriverOrManager).is_err());
    }
}
