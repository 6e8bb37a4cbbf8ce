//! System canisters, run natively (in Rust, not wasm) the way the
//! management canister is: the cycles ledger (`um5iw-rqaaa-aaaaq-qaaba-cai`)
//! and the cycles minting canister (CMC, `rkp4c-7iaaa-aaaaa-aaaca-cai`), at
//! their mainnet ids, with their real candid interfaces (the methods listed
//! in [`cycles_ledger`] and [`cmc`]). They are what icp-cli needs to create
//! canisters on a network: `icp deploy` asks the CMC for the default subnets
//! and creates canisters through the cycles ledger, paid from the caller's
//! cycles account.
//!
//! They exist only when [`Config::system_canisters`](crate::Config) is set
//! (the served replica sets it): canister ids are then allocated around
//! theirs. Like a real local network, the anonymous principal starts with a
//! large cycles balance ([`SystemCanistersConfig::anonymous_cycles`]), so
//! that anyone can fund an identity (`icp cycles transfer --identity
//! anonymous`); [`LocalReplica::seed_cycles`] tops an account up directly.
//!
//! ```no_run
//! use candid::Principal;
//! use local_replica::{system, Config, LocalReplica, SystemCanistersConfig};
//! # fn main() -> Result<(), local_replica::Error> {
//! let mut ic = LocalReplica::with_config(Config {
//!     system_canisters: Some(SystemCanistersConfig::default()),
//!     ..Config::default()
//! })?;
//! let me = Principal::from_slice(&[7; 29]);
//! ic.seed_cycles(me, 10_000_000_000_000);
//! let balance: candid::Nat = ic.query_one(
//!     system::CYCLES_LEDGER_ID,
//!     me,
//!     "icrc1_balance_of",
//!     &system::cycles_ledger::Account { owner: me, subaccount: None },
//! )?;
//! # Ok(()) }
//! ```

pub mod cmc;
pub mod cycles_ledger;

use candid::Principal;

use crate::error::{ErrorCode, Reject};
use crate::management::Outcome;
use crate::messaging::Origin;
use crate::replica::LocalReplica;

/// The cycles ledger's mainnet id, `um5iw-rqaaa-aaaaq-qaaba-cai`.
pub const CYCLES_LEDGER_ID: Principal = Principal::from_slice(&[0, 0, 0, 0, 2, 16, 0, 2, 1, 1]);

/// The cycles minting canister's mainnet id, `rkp4c-7iaaa-aaaaa-aaaca-cai`.
pub const CMC_ID: Principal = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 4, 1, 1]);

/// What the system canisters start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemCanistersConfig {
    /// The cycles ledger balance of the anonymous principal in a new
    /// replica (a real local network's launcher pre-seeds it with
    /// `i128::MAX`, the default here too).
    pub anonymous_cycles: u128,
}

impl Default for SystemCanistersConfig {
    fn default() -> SystemCanistersConfig {
        SystemCanistersConfig {
            anonymous_cycles: i128::MAX as u128,
        }
    }
}

/// The state of the system canisters (what a checkpoint keeps).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SystemState {
    pub ledger: cycles_ledger::Ledger,
}

/// Whether a method of a system canister is a query or an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SystemMethod {
    Query,
    Update,
}

fn method_not_found(canister: Principal, method: &str, query: bool) -> Reject {
    Reject::canister(
        canister,
        ErrorCode::CanisterMethodNotFound,
        &format!(
            "Canister has no {} method '{method}'.",
            if query { "query" } else { "update" }
        ),
    )
}

impl LocalReplica {
    /// Whether `id` is a system canister of this replica.
    pub fn is_system_canister(&self, id: Principal) -> bool {
        self.system.is_some() && (id == CYCLES_LEDGER_ID || id == CMC_ID)
    }

    /// Checks that system canister `id` has `method` callable as asked
    /// (`query`: through a query call).
    pub(crate) fn system_method(
        &self,
        id: Principal,
        method: &str,
        query: bool,
    ) -> Result<SystemMethod, Reject> {
        let kind = if id == CYCLES_LEDGER_ID {
            cycles_ledger::method(method)
        } else {
            cmc::method(method)
        };
        match kind {
            Some(SystemMethod::Update) if query => Err(method_not_found(id, method, true)),
            Some(k) => Ok(k),
            None => Err(method_not_found(id, method, query)),
        }
    }

    /// Runs a call to system canister `receiver` in replicated mode
    /// (ingress or a canister's call, with `cycles` attached).
    pub(crate) fn system_call(
        &mut self,
        sender: Principal,
        receiver: Principal,
        method: &str,
        arg: &[u8],
        cycles: u128,
        origin: &Origin,
    ) -> Outcome {
        match self.system_method(receiver, method, false) {
            Err(r) => {
                return Outcome::Done {
                    result: Err(r),
                    consumed: 0,
                }
            }
            // A query called in replicated mode: answered the same way.
            Ok(SystemMethod::Query) => {
                return Outcome::Done {
                    result: self.system_query(receiver, method, arg),
                    consumed: 0,
                }
            }
            Ok(SystemMethod::Update) => {}
        }
        let from_canister = matches!(origin, Origin::Canister { .. });
        if receiver == CYCLES_LEDGER_ID {
            self.ledger_call(sender, method, arg, cycles, from_canister)
        } else {
            self.cmc_call(sender, method, arg, cycles)
        }
    }

    /// Runs a query of system canister `receiver`.
    pub(crate) fn system_query(
        &mut self,
        receiver: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<Vec<u8>, Reject> {
        self.system_method(receiver, method, true)?;
        if receiver == CYCLES_LEDGER_ID {
            self.ledger_query(method, arg)
        } else {
            self.cmc_query(method, arg)
        }
    }

    /// This replica's subnet: the self-authenticating id of its root key,
    /// as agents derive the root subnet's id.
    pub fn subnet_id(&self) -> Principal {
        Principal::self_authenticating(self.root_key())
    }

    /// Raises the cycles ledger balance of `owner`'s default account to at
    /// least `amount` (minting the difference); the balance after. Does
    /// nothing without system canisters (returns 0).
    pub fn seed_cycles(&mut self, owner: Principal, amount: u128) -> u128 {
        let Some(system) = self.system.as_mut() else {
            return 0;
        };
        let account = cycles_ledger::AccountKey::default_of(owner);
        let balance = system.ledger.balance(&account);
        if balance < amount {
            system.ledger.mint(account, amount - balance);
        }
        system.ledger.balance(&account)
    }

    /// The cycles ledger balance of `owner`'s default account (`None`
    /// without system canisters).
    pub fn ledger_balance(&self, owner: Principal) -> Option<u128> {
        let system = self.system.as_ref()?;
        Some(
            system
                .ledger
                .balance(&cycles_ledger::AccountKey::default_of(owner)),
        )
    }
}

#[cfg(test)]
mod tests;
