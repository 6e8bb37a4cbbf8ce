//! Everything non-deterministic the canister reads, behind one trait so that
//! the plain-Rust logic can be tested natively with a fake.

use candid::Principal;

pub trait Environment {
    /// IC time, nanoseconds since the epoch.
    fn now(&self) -> u64;
    fn caller(&self) -> Principal;
    fn is_controller(&self, principal: &Principal) -> bool;
    /// This canister's id.
    fn canister_self(&self) -> Principal;
}

/// The real thing, inside a canister.
pub struct CanisterEnv;

impl Environment for CanisterEnv {
    fn now(&self) -> u64 {
        ic_cdk::api::time()
    }

    fn caller(&self) -> Principal {
        ic_cdk::api::msg_caller()
    }

    fn is_controller(&self, principal: &Principal) -> bool {
        ic_cdk::api::is_controller(principal)
    }

    fn canister_self(&self) -> Principal {
        ic_cdk::api::canister_self()
    }
}

#[cfg(test)]
pub mod test {
    use super::*;

    /// A settable environment for unit tests.
    pub struct TestEnv {
        pub now: u64,
        pub caller: Principal,
        pub controllers: Vec<Principal>,
    }

    impl Default for TestEnv {
        fn default() -> TestEnv {
            TestEnv::new()
        }
    }

    impl TestEnv {
        pub fn new() -> TestEnv {
            TestEnv {
                now: 1_700_000_000_000_000_000,
                caller: user(1),
                controllers: vec![controller()],
            }
        }

        pub fn as_caller(&mut self, caller: Principal) -> &mut TestEnv {
            self.caller = caller;
            self
        }
    }

    impl Environment for TestEnv {
        fn now(&self) -> u64 {
            self.now
        }

        fn caller(&self) -> Principal {
            self.caller
        }

        fn is_controller(&self, principal: &Principal) -> bool {
            self.controllers.contains(principal)
        }

        fn canister_self(&self) -> Principal {
            Principal::from_slice(&[0x7a, 0x5c])
        }
    }

    /// A self-authenticating-looking principal numbered `n`.
    pub fn user(n: u8) -> Principal {
        Principal::from_slice(&[n, 0xaa, 0xbb, 0xcc, 0x02])
    }

    pub fn controller() -> Principal {
        Principal::from_slice(&[0xc0, 0x01, 0x02])
    }
}
