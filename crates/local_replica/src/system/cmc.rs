//! The cycles minting canister (`rkp4c-7iaaa-aaaaa-aaaca-cai`): which
//! subnets canisters are created on, and canister creation with the cycles
//! attached to the call. Types as in `dfinity/ic` `rs/nns/cmc/cmc.did`.
//!
//! Served: `get_default_subnets` (this replica's one subnet),
//! `get_subnet_types_to_subnets` (none: the one subnet is a default
//! subnet) and `create_canister` (from canisters, paid with the attached
//! cycles). Not served: everything about ICP (`notify_top_up`,
//! `notify_create_canister`, `notify_mint_cycles`,
//! `get_icp_xdr_conversion_rate`): this replica has no ICP ledger.

use candid::{CandidType, Deserialize, Nat, Principal};

use super::cycles_ledger::SubnetSelection;
use super::SystemMethod;
use crate::error::{ErrorCode, Reject};
use crate::management::{CanisterSettings, Outcome};
use crate::replica::LocalReplica;

/// `CreateCanisterArg`.
#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct CreateCanisterArg {
    pub settings: Option<CanisterSettings>,
    /// Deprecated in favour of `subnet_selection`.
    pub subnet_type: Option<String>,
    pub subnet_selection: Option<SubnetSelection>,
}

/// `CreateCanisterError`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CreateCanisterError {
    Refunded {
        refund_amount: Nat,
        create_error: String,
    },
}

/// `CreateCanisterResult`.
pub type CreateCanisterResult = Result<Principal, CreateCanisterError>;

/// `SubnetTypesToSubnetsResponse`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SubnetTypesToSubnetsResponse {
    pub data: Vec<(String, Vec<Principal>)>,
}

/// Whether the CMC has `method`, and its kind.
pub(crate) fn method(method: &str) -> Option<SystemMethod> {
    match method {
        "get_default_subnets" | "get_subnet_types_to_subnets" => Some(SystemMethod::Query),
        "create_canister" => Some(SystemMethod::Update),
        _ => None,
    }
}

fn trap(message: impl std::fmt::Display) -> Reject {
    Reject::canister(
        super::CMC_ID,
        ErrorCode::CanisterCalledTrap,
        &format!("Canister called `ic0.trap` with message: {message}"),
    )
}

fn encode<T: CandidType>(value: &T) -> Result<Vec<u8>, Reject> {
    candid::encode_one(value).map_err(|e| trap(format!("failed to encode the reply: {e}")))
}

impl LocalReplica {
    pub(crate) fn cmc_query(&mut self, method: &str, _arg: &[u8]) -> Result<Vec<u8>, Reject> {
        match method {
            "get_default_subnets" => encode(&vec![self.subnet_id()]),
            "get_subnet_types_to_subnets" => {
                encode(&SubnetTypesToSubnetsResponse { data: Vec::new() })
            }
            other => Err(trap(format!("no query method {other}"))),
        }
    }

    pub(crate) fn cmc_call(
        &mut self,
        sender: Principal,
        method: &str,
        arg: &[u8],
        cycles: u128,
    ) -> Outcome {
        match method {
            "create_canister" => {
                let args: CreateCanisterArg = match candid::decode_one(arg) {
                    Ok(a) => a,
                    Err(e) => {
                        return Outcome::Done {
                            result: Err(trap(format!("failed to decode the argument: {e}"))),
                            consumed: 0,
                        }
                    }
                };
                let selection = match (&args.subnet_selection, &args.subnet_type) {
                    (Some(s), _) => Some(s.clone()),
                    (None, Some(t)) => Some(SubnetSelection::Filter(
                        super::cycles_ledger::SubnetFilter {
                            subnet_type: Some(t.clone()),
                        },
                    )),
                    (None, None) => None,
                };
                let r: CreateCanisterResult = self
                    .cmc_create(sender, cycles, args.settings.as_ref(), selection.as_ref())
                    .map_err(|create_error| CreateCanisterError::Refunded {
                        refund_amount: cycles.into(),
                        create_error,
                    });
                let consumed = if r.is_ok() { cycles } else { 0 };
                Outcome::Done {
                    result: encode(&r),
                    consumed,
                }
            }
            other => Outcome::Done {
                result: Err(trap(format!("no update method {other}"))),
                consumed: 0,
            },
        }
    }

    /// Creates a canister with `cycles` (less the creation fee) on the
    /// subnet `selection` names, which must be this replica's: the CMC's
    /// `create_canister`. `caller` is the controller unless the settings
    /// name others.
    pub(crate) fn cmc_create(
        &mut self,
        caller: Principal,
        cycles: u128,
        settings: Option<&CanisterSettings>,
        selection: Option<&SubnetSelection>,
    ) -> Result<Principal, String> {
        let subnet = self.subnet_id();
        match selection {
            Some(SubnetSelection::Subnet { subnet: s }) if *s != subnet => {
                return Err(format!(
                    "Subnet {s} does not exist; this replica has one subnet, {subnet}"
                ))
            }
            Some(SubnetSelection::Filter(f))
                if f.subnet_type.as_deref().is_some_and(|t| t != "application") =>
            {
                return Err(format!(
                    "No subnet of type {:?}: this replica has one application subnet, {subnet}",
                    f.subnet_type.as_deref().unwrap_or_default()
                ))
            }
            _ => {}
        }
        let fee = self.fees.creation_fee();
        if cycles < fee {
            return Err(format!(
                "Creating a canister requires a fee of {fee} that is deducted from the canister's \
                 initial balance but only {cycles} cycles were received with the create_canister request."
            ));
        }
        let controllers = settings
            .and_then(|s| s.controllers.clone())
            .unwrap_or_else(|| vec![caller]);
        self.new_canister(None, controllers, cycles - fee, settings)
            .map_err(|r| r.message)
    }

    /// Adds `cycles` to canister `id` (the management canister's
    /// `deposit_cycles`, which the ledger's withdrawals call).
    pub(crate) fn deposit_to_canister(&mut self, id: Principal, cycles: u128) {
        if let Some(c) = self.canisters.get_mut(&id) {
            c.cycles = c.cycles.saturating_add(cycles);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_have_their_kinds() {
        assert_eq!(method("get_default_subnets"), Some(SystemMethod::Query));
        assert_eq!(method("create_canister"), Some(SystemMethod::Update));
        assert_eq!(method("notify_create_canister"), None);
    }

    #[test]
    fn create_canister_arg_decodes_the_real_encoding() {
        // What a canister sends: settings with controllers, the
        // deprecated subnet type absent.
        #[derive(CandidType)]
        struct Sent {
            settings: Option<CanisterSettings>,
            subnet_selection: Option<SubnetSelection>,
        }
        let me = Principal::from_slice(&[9; 10]);
        let bytes = candid::encode_one(Sent {
            settings: Some(CanisterSettings {
                controllers: Some(vec![me]),
                ..CanisterSettings::default()
            }),
            subnet_selection: None,
        })
        .unwrap();
        let arg: CreateCanisterArg = candid::decode_one(&bytes).unwrap();
        assert_eq!(arg.settings.unwrap().controllers, Some(vec![me]));
        assert!(arg.subnet_type.is_none());
    }
}
