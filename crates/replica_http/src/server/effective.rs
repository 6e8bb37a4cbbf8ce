//! The effective canister id of a call or query (interface specification,
//! "Effective canister id").
//!
//! For a canister other than the management canister it is the canister
//! itself. For the management canister (`aaaaa-aa`) it is read from the
//! argument: `canister_id` (or `target_canister` for
//! `install_chunked_code`); canister creation and `list_canisters` may use
//! any id.

use candid::{CandidType, Deserialize, Principal};

/// Why the effective canister id in the URL is not the right one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectiveIdError {
    #[error(
        "the URL's effective canister id {url} does not match {expected}, which the request is for"
    )]
    Mismatch { url: Principal, expected: Principal },
    #[error(
        "a call to the management canister's {method} needs an argument with a canister_id \
         field (the effective canister id)"
    )]
    NoCanisterId { method: String },
}

#[derive(CandidType, Deserialize)]
struct WithCanisterId {
    canister_id: Principal,
}

#[derive(CandidType, Deserialize)]
struct WithTargetCanister {
    target_canister: Principal,
}

/// Checks that `url_id` is the effective canister id of a request for
/// `method` of `canister` with `arg`; `update` is false for queries.
pub fn check(
    url_id: Principal,
    canister: Principal,
    method: &str,
    arg: &[u8],
    update: bool,
) -> Result<(), EffectiveIdError> {
    let expected = if canister != Principal::management_canister() {
        canister
    } else {
        let any = if update {
            matches!(
                method,
                "create_canister" | "provisional_create_canister_with_cycles"
            )
        } else {
            method == "list_canisters"
        };
        if any {
            return Ok(());
        }
        let from_arg = if update && method == "install_chunked_code" {
            candid::decode_one::<WithTargetCanister>(arg)
                .ok()
                .map(|a| a.target_canister)
        } else {
            None
        };
        match from_arg.or_else(|| {
            candid::decode_one::<WithCanisterId>(arg)
                .ok()
                .map(|a| a.canister_id)
        }) {
            Some(id) => id,
            None => {
                return Err(EffectiveIdError::NoCanisterId {
                    method: method.to_string(),
                })
            }
        }
    };
    if url_id == expected {
        Ok(())
    } else {
        Err(EffectiveIdError::Mismatch {
            url: url_id,
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Principal {
        Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, n, 1, 1])
    }

    #[test]
    fn ordinary_canisters_are_their_own_effective_id() {
        assert_eq!(check(id(1), id(1), "inc", b"DIDL\0\0", true), Ok(()));
        assert!(matches!(
            check(id(2), id(1), "inc", b"DIDL\0\0", false),
            Err(EffectiveIdError::Mismatch { .. })
        ));
    }

    #[test]
    fn management_calls_name_their_canister() {
        let mgmt = Principal::management_canister();
        let arg = candid::encode_one(WithCanisterId { canister_id: id(3) }).unwrap();
        assert_eq!(check(id(3), mgmt, "install_code", &arg, true), Ok(()));
        assert!(check(id(4), mgmt, "install_code", &arg, true).is_err());
        assert_eq!(check(id(3), mgmt, "canister_status", &arg, true), Ok(()));
        let chunked = candid::encode_one(WithTargetCanister {
            target_canister: id(5),
        })
        .unwrap();
        assert_eq!(
            check(id(5), mgmt, "install_chunked_code", &chunked, true),
            Ok(())
        );
        assert!(matches!(
            check(id(5), mgmt, "start_canister", b"DIDL\0\0", true),
            Err(EffectiveIdError::NoCanisterId { .. })
        ));
        assert_eq!(
            check(
                id(9),
                mgmt,
                "provisional_create_canister_with_cycles",
                b"",
                true
            ),
            Ok(())
        );
        assert_eq!(check(id(9), mgmt, "list_canisters", b"", false), Ok(()));
        assert!(check(id(9), mgmt, "list_canisters", b"", true).is_err());
    }
}
