//! Refuses ingress the method would refuse anyway, before the example pays
//! for it: the spending methods from principals that are neither
//! controllers nor allowed, the admin methods from non-controllers, unknown
//! methods, and any argument larger than its method can take (the IC
//! accepts 2 MiB for every method, and the canister pays for what it
//! accepts). Each method checks its caller again: a canister's call never
//! passes here.

use ic_cdk::inspect_message;

use crate::access::{AllowList, Caller};
use crate::state::read_state;

#[inspect_message]
fn inspect_message() {
    let method = ic_cdk::api::msg_method_name();
    let arg_bytes = ic0::msg_arg_data_size() as u64;
    let caller = Caller::current();
    if read_state(|s| accepts(&s.allow_list, caller, &method, arg_bytes)) {
        ic_cdk::api::accept_message();
    }
}

/// Who may send each update method (and each query sent as an update) as
/// ingress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Audience {
    Controllers,
    /// Controllers and allowed principals: those the example spends for.
    Spenders,
}

fn audience(method: &str) -> Option<Audience> {
    Some(match method {
        "configure" | "allow" | "disallow" | "allowed" => Audience::Controllers,
        "ask" | "start" | "poll" | "config" => Audience::Spenders,
        _ => return None,
    })
}

/// The longest question worth sending: the task manager takes prompts of
/// at most 64 KiB (`MAX_PROMPT_BYTES` in its `model::jobs`).
pub const MAX_QUESTION_BYTES: u64 = 64 * 1024;

/// Candid framing around what a method's limit counts: the header, type
/// table and length prefixes, and the small fields (a `nat32`, a `nat64`,
/// a principal, a model name).
const FRAMING_BYTES: u64 = 2 * 1024;

/// The largest candid argument each method takes as ingress, in bytes.
fn max_arg_bytes(method: &str) -> u64 {
    match method {
        "ask" | "start" => MAX_QUESTION_BYTES + FRAMING_BYTES,
        _ => FRAMING_BYTES,
    }
}

fn accepts(allow_list: &AllowList, caller: Caller, method: &str, arg_bytes: u64) -> bool {
    if arg_bytes > max_arg_bytes(method) {
        return false;
    }
    match audience(method) {
        None => false,
        Some(Audience::Controllers) => caller.must_be_controller().is_ok(),
        Some(Audience::Spenders) => caller.may_spend(allow_list).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::fixtures::{controller, id, user};
    use crate::types::InitArgs;
    use candid::Principal;

    const SPENDING: [&str; 4] = ["ask", "start", "poll", "config"];
    const ADMIN: [&str; 4] = ["configure", "allow", "disallow", "allowed"];

    #[test]
    fn refuses_what_the_method_would_refuse() {
        let mut list = AllowList::default();
        for method in SPENDING {
            assert!(!accepts(&list, user(1), method, 0), "{method}");
            assert!(accepts(&list, controller(), method, 0), "{method}");
        }
        for method in ADMIN {
            assert!(!accepts(&list, user(1), method, 0), "{method}");
            assert!(accepts(&list, controller(), method, 0), "{method}");
        }
        list.allow(id(1)).unwrap();
        for method in SPENDING {
            assert!(accepts(&list, user(1), method, 0), "{method}");
            assert!(!accepts(&list, user(2), method, 0), "{method}");
        }
        for method in ADMIN {
            assert!(!accepts(&list, user(1), method, 0), "{method}");
        }
        let anonymous = Caller {
            principal: Principal::anonymous(),
            is_controller: false,
        };
        assert!(!accepts(&list, anonymous, "ask", 0));
        assert!(!accepts(&list, controller(), "no_such_method", 0));
    }

    #[test]
    fn an_argument_over_its_methods_cap_is_refused_whoever_sends_it() {
        let mut list = AllowList::default();
        list.allow(id(1)).unwrap();
        for caller in [user(1), controller()] {
            let ask = max_arg_bytes("ask");
            assert!(accepts(&list, caller, "ask", ask));
            assert!(!accepts(&list, caller, "ask", ask + 1));
            assert!(!accepts(&list, caller, "start", 2 * 1024 * 1024));
            assert!(accepts(&list, caller, "poll", FRAMING_BYTES));
            assert!(!accepts(&list, caller, "poll", FRAMING_BYTES + 1));
        }
        assert!(!accepts(&list, controller(), "allow", FRAMING_BYTES + 1));
    }

    #[test]
    fn the_largest_valid_arguments_fit_their_caps() {
        let question = "x".repeat(MAX_QUESTION_BYTES as usize);
        let ask = candid::encode_args((question, u32::MAX)).unwrap();
        assert!(ask.len() as u64 <= max_arg_bytes("ask"), "{}", ask.len());
        let configure = candid::encode_one(InitArgs {
            task_manager: Some(Principal::from_slice(&[7; 29])),
            // The task manager's longest model name is 64 bytes.
            model: Some("m".repeat(256)),
        })
        .unwrap();
        assert!(configure.len() as u64 <= max_arg_bytes("configure"));
        let allow = candid::encode_one(Principal::from_slice(&[7; 29])).unwrap();
        assert!(allow.len() as u64 <= max_arg_bytes("allow"));
        let poll = candid::encode_one(u64::MAX).unwrap();
        assert!(poll.len() as u64 <= max_arg_bytes("poll"));
    }
}
