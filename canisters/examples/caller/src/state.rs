//! The example's state, and how it is kept across upgrades.
//!
//! `pre_upgrade` writes it to stable memory as one candid value of a
//! versioned storage type, [`Stored`]; `post_upgrade` reads it back. The
//! storage types are not the API types: the candid interface can change
//! without breaking what older modules saved. The state is small and
//! bounded (the allow list holds at most
//! [`MAX_ALLOWED`](crate::access::MAX_ALLOWED) principals), so encoding it
//! in `pre_upgrade` cannot run out of instructions.

use std::cell::RefCell;

use candid::{CandidType, Deserialize, Principal};

use crate::access::AllowList;
use crate::config::Configured;

/// What the example knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub configured: Configured,
    pub allow_list: AllowList,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::default();
}

pub(crate) fn read_state<R>(f: impl FnOnce(&State) -> R) -> R {
    STATE.with_borrow(f)
}

pub(crate) fn mutate_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with_borrow_mut(f)
}

/// What stable memory holds between `pre_upgrade` and `post_upgrade`.
#[derive(CandidType, Deserialize, Debug)]
enum Stored {
    V1(StoredV1),
}

/// The configuration and the allow list.
#[derive(CandidType, Deserialize, Debug)]
struct StoredV1 {
    task_manager: Option<Principal>,
    model: Option<String>,
    allowed: Vec<Principal>,
}

/// What modules from before the allow list saved: the configuration
/// alone, as a bare record.
#[derive(CandidType, Deserialize, Debug)]
struct StoredV0 {
    task_manager: Option<Principal>,
    model: Option<String>,
}

impl State {
    /// The bytes `pre_upgrade` writes at the start of stable memory.
    pub fn encode(&self) -> Vec<u8> {
        candid::encode_one(Stored::V1(StoredV1 {
            task_manager: self.configured.task_manager,
            model: self.configured.model.clone(),
            allowed: self.allow_list.principals(),
        }))
        .expect("encoding the example's state")
    }

    /// The state in stable memory (`bytes`: all of it; what follows the
    /// value is ignored): empty from a fresh canister or a module that
    /// saved nothing, a [`Stored`] value, or an older module's bare
    /// configuration.
    pub fn decode(bytes: &[u8]) -> Result<State, String> {
        if bytes.is_empty() {
            return Ok(State::default());
        }
        let stored = decode_first::<Stored>(bytes).or_else(|current| {
            decode_first::<StoredV0>(bytes)
                .map(|v0| {
                    Stored::V1(StoredV1 {
                        task_manager: v0.task_manager,
                        model: v0.model,
                        allowed: Vec::new(),
                    })
                })
                .map_err(|_| current)
        })?;
        let Stored::V1(v1) = stored;
        Ok(State {
            configured: Configured {
                task_manager: v1.task_manager,
                model: v1.model,
            },
            allow_list: AllowList::from_stored(v1.allowed),
        })
    }
}

/// The first candid value in `bytes`, as `ic_cdk::storage::stable_restore`
/// reads it (stable memory is longer than the value).
fn decode_first<T: for<'de> Deserialize<'de> + CandidType>(bytes: &[u8]) -> Result<T, String> {
    let mut de = candid::de::IDLDeserialize::new(bytes).map_err(|e| e.to_string())?;
    de.get_value::<T>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Principal {
        Principal::from_slice(&[n; 10])
    }

    /// Stable memory is whole pages: the value, then zeros (or what a
    /// longer earlier value left).
    fn in_a_page(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes.resize(64 * 1024, 0);
        bytes
    }

    #[test]
    fn the_state_survives_an_upgrade() {
        let mut state = State::default();
        state.configured.task_manager = Some(id(1));
        state.configured.model = Some("tiny-llama".into());
        state.allow_list.allow(id(2)).unwrap();
        state.allow_list.allow(id(3)).unwrap();
        assert_eq!(State::decode(&in_a_page(state.encode())), Ok(state));
    }

    #[test]
    fn nothing_saved_is_the_default_state() {
        assert_eq!(State::decode(&[]), Ok(State::default()));
    }

    #[test]
    fn an_older_modules_configuration_is_read_with_an_empty_allow_list() {
        let v0 = candid::encode_args((StoredV0 {
            task_manager: Some(id(1)),
            model: None,
        },))
        .unwrap();
        let state = State::decode(&in_a_page(v0)).unwrap();
        assert_eq!(state.configured.task_manager, Some(id(1)));
        assert_eq!(state.configured.model, None);
        assert!(state.allow_list.is_empty());
    }

    #[test]
    fn unreadable_bytes_are_an_error_not_an_empty_state() {
        assert!(State::decode(&in_a_page(b"DIDL\x00\x01\x71\x00".to_vec())).is_err());
        assert!(State::decode(b"not candid").is_err());
    }
}
