//! Who may call what. Worker methods are for canisters: the task manager
//! and controllers (assignments, jobs), upstream pipeline peers (steps of
//! a job) and the worker itself (its own steps). Refusals are typed
//! [`WorkerError::Unauthorized`] errors, not traps.

use candid::Principal;
use worker_api::WorkerError;

use crate::state::State;

/// The callers of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The task manager and controllers.
    Manager,
    /// Upstream peers of the pipeline, the task manager, controllers.
    Peers,
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
    let ok = match audience {
        Audience::Manager => manager,
        Audience::Peers => {
            manager
                || c == who.me
                || state
                    .assignment()
                    .is_some_and(|a| a.upstream().contains(&c))
        }
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
    use ic_stable_structures::DefaultMemoryImpl;

    #[test]
    fn each_audience_admits_its_callers_only() {
        let p = |n: u8| Principal::from_slice(&[n, 7]);
        let state = State::open(DefaultMemoryImpl::default(), p(1));
        let who = |caller, is_controller| Caller {
            caller,
            me: p(2),
            is_controller,
        };
        assert!(authorize(&state, who(p(1), false), Audience::Manager).is_ok());
        assert!(authorize(&state, who(p(9), true), Audience::Manager).is_ok());
        assert_eq!(
            authorize(&state, who(p(3), false), Audience::Manager),
            Err(WorkerError::Unauthorized { caller: p(3) })
        );
        assert!(authorize(&state, who(p(2), false), Audience::Peers).is_ok());
        assert!(authorize(&state, who(p(3), false), Audience::Peers).is_err());
        assert!(authorize(&state, who(p(2), false), Audience::SelfOnly).is_ok());
        assert!(authorize(&state, who(p(1), false), Audience::SelfOnly).is_err());
        assert!(authorize(&state, who(Principal::anonymous(), false), Audience::Peers).is_err());
    }
}
