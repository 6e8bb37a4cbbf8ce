//! The controllers' methods, as plain functions of the state and the
//! caller: `configure`, and the allow list (`allow`, `disallow`,
//! `allowed`).

use candid::Principal;

use crate::access::Caller;
use crate::state::State;
use crate::types::{AdminError, InitArgs};

pub(crate) fn configure(
    state: &mut State,
    caller: Caller,
    args: InitArgs,
) -> Result<(), AdminError> {
    caller.must_be_controller()?;
    state.configured.apply(args);
    Ok(())
}

pub(crate) fn allow(
    state: &mut State,
    caller: Caller,
    principal: Principal,
) -> Result<(), AdminError> {
    caller.must_be_controller()?;
    state.allow_list.allow(principal)
}

pub(crate) fn disallow(
    state: &mut State,
    caller: Caller,
    principal: Principal,
) -> Result<(), AdminError> {
    caller.must_be_controller()?;
    state.allow_list.disallow(&principal);
    Ok(())
}

pub(crate) fn allowed(state: &State, caller: Caller) -> Result<Vec<Principal>, AdminError> {
    caller.must_be_controller()?;
    Ok(state.allow_list.principals())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::fixtures::{controller, id, user};

    #[test]
    fn a_controller_manages_the_allow_list_and_the_example_spends_for_it() {
        let mut state = State::default();
        assert!(user(1).may_spend(&state.allow_list).is_err());
        allow(&mut state, controller(), id(1)).unwrap();
        allow(&mut state, controller(), id(2)).unwrap();
        assert_eq!(allowed(&state, controller()), Ok(vec![id(1), id(2)]));
        assert_eq!(user(1).may_spend(&state.allow_list), Ok(()));
        disallow(&mut state, controller(), id(1)).unwrap();
        assert_eq!(allowed(&state, controller()), Ok(vec![id(2)]));
        assert!(user(1).may_spend(&state.allow_list).is_err());
    }

    #[test]
    fn anyone_else_is_refused_and_changes_nothing() {
        let mut state = State::default();
        allow(&mut state, controller(), id(2)).unwrap();
        let before = state.clone();
        let refused = Err(AdminError::NotController { caller: id(2) });
        // Not even an allowed principal manages the list.
        assert_eq!(allow(&mut state, user(2), id(3)), refused);
        assert_eq!(disallow(&mut state, user(2), id(2)), refused);
        assert_eq!(
            allowed(&state, user(2)),
            Err(AdminError::NotController { caller: id(2) })
        );
        let args = InitArgs {
            task_manager: Some(id(7)),
            model: Some("m".into()),
        };
        assert_eq!(configure(&mut state, user(2), args.clone()), refused);
        assert_eq!(state, before);
        configure(&mut state, controller(), args).unwrap();
        assert_eq!(state.configured.task_manager, Some(id(7)));
    }
}
