//! The cycles ledger (`um5iw-rqaaa-aaaaq-qaaba-cai`): per-account cycles
//! balances (ICRC-1), deposits from canisters, withdrawals to canisters and
//! canister creation paid from a balance. Types as in `dfinity/cycles-ledger`
//! `cycles-ledger/cycles-ledger.did`; a fee of 100 million cycles per
//! transfer, withdrawal and creation, 12 decimals, as the real one.
//!
//! Served: `icrc1_balance_of`, `icrc1_decimals`, `icrc1_fee`,
//! `icrc1_metadata`, `icrc1_minting_account`, `icrc1_name`, `icrc1_symbol`,
//! `icrc1_supported_standards`, `icrc1_total_supply` (queries);
//! `icrc1_transfer`, `deposit`, `withdraw`, `create_canister` (updates).
//! Not served (their calls are refused as missing methods): ICRC-2
//! (approvals, `*_from`), ICRC-3 (blocks and certificates), `http_request`.
//! Blocks are numbered but not kept, and `created_at_time` is checked
//! against the ledger's time but not used to deduplicate.

use std::collections::BTreeMap;

use candid::{CandidType, Deserialize, Nat, Principal};

use super::SystemMethod;
use crate::error::{ErrorCode, Reject};
use crate::management::{CanisterSettings, Outcome};
use crate::replica::LocalReplica;

/// The fee of a transfer, withdrawal or creation (`config::FEE`).
pub const FEE: u128 = 100_000_000;
/// `icrc1_decimals`: balances are in cycles, shown in trillions.
pub const DECIMALS: u8 = 12;
pub const TOKEN_NAME: &str = "Trillion Cycles";
pub const TOKEN_SYMBOL: &str = "TCYCLES";
/// The longest memo accepted, in bytes.
pub const MAX_MEMO_LENGTH: usize = 32;
/// How far in the future a `created_at_time` may be, and how long a
/// transaction stays valid (ICRC-1's window and drift).
const PERMITTED_DRIFT_NS: u64 = 60_000_000_000;
const TRANSACTION_WINDOW_NS: u64 = 24 * 3600 * 1_000_000_000;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub owner: Principal,
    pub subaccount: Option<serde_bytes::ByteBuf>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct TransferArgs {
    pub from_subaccount: Option<serde_bytes::ByteBuf>,
    pub to: Account,
    pub amount: Nat,
    pub fee: Option<Nat>,
    pub memo: Option<serde_bytes::ByteBuf>,
    pub created_at_time: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    BadFee { expected_fee: Nat },
    BadBurn { min_burn_amount: Nat },
    InsufficientFunds { balance: Nat },
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    Duplicate { duplicate_of: Nat },
    TemporarilyUnavailable,
    GenericError { message: String, error_code: Nat },
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct DepositArgs {
    pub to: Account,
    pub memo: Option<serde_bytes::ByteBuf>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DepositResult {
    pub balance: Nat,
    pub block_index: Nat,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum RejectionCode {
    NoError,
    CanisterError,
    SysTransient,
    DestinationInvalid,
    Unknown,
    SysFatal,
    CanisterReject,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct WithdrawArgs {
    pub amount: Nat,
    pub from_subaccount: Option<serde_bytes::ByteBuf>,
    pub to: Principal,
    pub created_at_time: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum WithdrawError {
    GenericError {
        message: String,
        error_code: Nat,
    },
    TemporarilyUnavailable,
    FailedToWithdraw {
        fee_block: Option<Nat>,
        rejection_code: RejectionCode,
        rejection_reason: String,
    },
    Duplicate {
        duplicate_of: Nat,
    },
    BadFee {
        expected_fee: Nat,
    },
    InvalidReceiver {
        receiver: Principal,
    },
    CreatedInFuture {
        ledger_time: u64,
    },
    TooOld,
    InsufficientFunds {
        balance: Nat,
    },
}

/// `SubnetFilter`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SubnetFilter {
    pub subnet_type: Option<String>,
}

/// `SubnetSelection`: the same type at the CMC.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum SubnetSelection {
    Subnet { subnet: Principal },
    Filter(SubnetFilter),
}

/// `CmcCreateCanisterArgs`. Its settings are read as the management
/// canister's (a superset of the ledger's record: icp-cli sends those).
#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct CmcCreateCanisterArgs {
    pub settings: Option<CanisterSettings>,
    pub subnet_selection: Option<SubnetSelection>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct CreateCanisterArgs {
    pub from_subaccount: Option<serde_bytes::ByteBuf>,
    pub created_at_time: Option<u64>,
    pub amount: Nat,
    pub creation_args: Option<CmcCreateCanisterArgs>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CreateCanisterSuccess {
    pub block_id: Nat,
    pub canister_id: Principal,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CreateCanisterError {
    InsufficientFunds {
        balance: Nat,
    },
    TooOld,
    CreatedInFuture {
        ledger_time: u64,
    },
    TemporarilyUnavailable,
    Duplicate {
        duplicate_of: Nat,
        canister_id: Option<Principal>,
    },
    FailedToCreate {
        fee_block: Option<Nat>,
        refund_block: Option<Nat>,
        error: String,
    },
    GenericError {
        message: String,
        error_code: Nat,
    },
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum MetadataValue {
    Nat(Nat),
    Int(candid::Int),
    Text(String),
    Blob(serde_bytes::ByteBuf),
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SupportedStandard {
    pub url: String,
    pub name: String,
}

/// An account as the ledger keys it: the owner and a 32-byte subaccount
/// (all zeros for the default account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AccountKey {
    pub owner: Principal,
    pub subaccount: [u8; 32],
}

impl AccountKey {
    pub fn default_of(owner: Principal) -> AccountKey {
        AccountKey {
            owner,
            subaccount: [0; 32],
        }
    }

    /// The key of `owner` and an optional subaccount, which must have 32
    /// bytes.
    pub fn new(owner: Principal, subaccount: Option<&[u8]>) -> Result<AccountKey, String> {
        let subaccount = match subaccount {
            None => [0; 32],
            Some(s) => s.try_into().map_err(|_| {
                format!("expected a subaccount of 32 bytes, found {} bytes", s.len())
            })?,
        };
        Ok(AccountKey { owner, subaccount })
    }
}

/// Balances and the block count: the ledger's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ledger {
    pub balances: BTreeMap<AccountKey, u128>,
    /// Blocks recorded so far (the next block's index).
    pub blocks: u64,
    pub total_supply: u128,
}

impl Ledger {
    pub fn balance(&self, account: &AccountKey) -> u128 {
        self.balances.get(account).copied().unwrap_or(0)
    }

    fn block(&mut self) -> u64 {
        self.blocks += 1;
        self.blocks - 1
    }

    /// Credits `amount` new cycles; the block.
    pub fn mint(&mut self, account: AccountKey, amount: u128) -> u64 {
        let balance = self.balance(&account).saturating_add(amount);
        self.balances.insert(account, balance);
        self.total_supply = self.total_supply.saturating_add(amount);
        self.block()
    }

    /// Takes `amount` out of `account` (cycles leaving the ledger, or
    /// fees); the block, or the balance when it is too small.
    pub fn burn(&mut self, account: AccountKey, amount: u128) -> Result<u64, u128> {
        let balance = self.balance(&account);
        if balance < amount {
            return Err(balance);
        }
        if balance == amount {
            self.balances.remove(&account);
        } else {
            self.balances.insert(account, balance - amount);
        }
        self.total_supply -= amount;
        Ok(self.block())
    }

    /// ICRC-1 transfer of `amount` plus the fee (burnt) from `from` to
    /// `to`; the block.
    pub fn transfer(
        &mut self,
        from: AccountKey,
        to: AccountKey,
        amount: u128,
    ) -> Result<u64, TransferError> {
        let balance = self.balance(&from);
        if balance < amount.saturating_add(FEE) {
            return Err(TransferError::InsufficientFunds {
                balance: balance.into(),
            });
        }
        self.balances.insert(from, balance - amount - FEE);
        let to_balance = self.balance(&to) + amount;
        self.balances.insert(to, to_balance);
        self.total_supply -= FEE;
        self.balances.retain(|_, b| *b > 0);
        Ok(self.block())
    }
}

/// Whether the ledger has `method`, and its kind.
pub(crate) fn method(method: &str) -> Option<SystemMethod> {
    match method {
        "icrc1_balance_of"
        | "icrc1_decimals"
        | "icrc1_fee"
        | "icrc1_metadata"
        | "icrc1_minting_account"
        | "icrc1_name"
        | "icrc1_symbol"
        | "icrc1_supported_standards"
        | "icrc1_total_supply" => Some(SystemMethod::Query),
        "icrc1_transfer" | "deposit" | "withdraw" | "create_canister" => Some(SystemMethod::Update),
        _ => None,
    }
}

/// A trap of the ledger (as its canister traps on bad input): reject code 5.
fn trap(message: impl std::fmt::Display) -> Reject {
    Reject::canister(
        super::CYCLES_LEDGER_ID,
        ErrorCode::CanisterCalledTrap,
        &format!("Canister called `ic0.trap` with message: {message}"),
    )
}

fn decode<T: CandidType + for<'de> Deserialize<'de>>(arg: &[u8]) -> Result<T, Reject> {
    candid::decode_one(arg).map_err(|e| trap(format!("failed to decode the argument: {e}")))
}

fn encode<T: CandidType>(value: &T) -> Result<Vec<u8>, Reject> {
    candid::encode_one(value).map_err(|e| trap(format!("failed to encode the reply: {e}")))
}

fn amount_u128(n: &Nat) -> Option<u128> {
    u128::try_from(n.0.clone()).ok()
}

fn key(owner: Principal, subaccount: &Option<serde_bytes::ByteBuf>) -> Result<AccountKey, Reject> {
    AccountKey::new(owner, subaccount.as_ref().map(|s| s.as_slice())).map_err(trap)
}

fn check_memo(memo: &Option<serde_bytes::ByteBuf>) -> Result<(), Reject> {
    match memo {
        Some(m) if m.len() > MAX_MEMO_LENGTH => Err(trap(format!(
            "memo length exceeds the maximum of {MAX_MEMO_LENGTH} bytes"
        ))),
        _ => Ok(()),
    }
}

/// `created_at_time` against the ledger's time `now`: too old or in the
/// future.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TimeCheck {
    TooOld,
    InFuture,
}

pub(crate) fn check_time(created_at_time: Option<u64>, now: u64) -> Result<(), TimeCheck> {
    let Some(t) = created_at_time else {
        return Ok(());
    };
    if t > now.saturating_add(PERMITTED_DRIFT_NS) {
        return Err(TimeCheck::InFuture);
    }
    if t.saturating_add(TRANSACTION_WINDOW_NS + PERMITTED_DRIFT_NS) < now {
        return Err(TimeCheck::TooOld);
    }
    Ok(())
}

/// Whether `p` is a canister id (opaque: its last byte is 1), the only
/// receivers of withdrawals.
fn is_opaque(p: &Principal) -> bool {
    p.as_slice().last() == Some(&1)
}

impl LocalReplica {
    fn ledger(&mut self) -> &mut Ledger {
        &mut self.system.get_or_insert_with(Default::default).ledger
    }

    pub(crate) fn ledger_query(&mut self, method: &str, arg: &[u8]) -> Result<Vec<u8>, Reject> {
        match method {
            "icrc1_balance_of" => {
                let account: Account = decode(arg)?;
                let k = key(account.owner, &account.subaccount)?;
                encode(&Nat::from(self.ledger().balance(&k)))
            }
            "icrc1_decimals" => encode(&DECIMALS),
            "icrc1_fee" => encode(&Nat::from(FEE)),
            "icrc1_name" => encode(&TOKEN_NAME),
            "icrc1_symbol" => encode(&TOKEN_SYMBOL),
            "icrc1_minting_account" => encode(&None::<Account>),
            "icrc1_total_supply" => encode(&Nat::from(self.ledger().total_supply)),
            "icrc1_metadata" => encode(&vec![
                (
                    "icrc1:decimals".to_string(),
                    MetadataValue::Nat(Nat::from(DECIMALS)),
                ),
                (
                    "icrc1:name".to_string(),
                    MetadataValue::Text(TOKEN_NAME.into()),
                ),
                (
                    "icrc1:symbol".to_string(),
                    MetadataValue::Text(TOKEN_SYMBOL.into()),
                ),
                ("icrc1:fee".to_string(), MetadataValue::Nat(Nat::from(FEE))),
            ]),
            "icrc1_supported_standards" => encode(&vec![SupportedStandard {
                name: "ICRC-1".into(),
                url: "https://github.com/dfinity/ICRC-1/blob/main/standards/ICRC-1/README.md"
                    .into(),
            }]),
            other => Err(trap(format!("no query method {other}"))),
        }
    }

    pub(crate) fn ledger_call(
        &mut self,
        sender: Principal,
        method: &str,
        arg: &[u8],
        cycles: u128,
        from_canister: bool,
    ) -> Outcome {
        let now = self.time();
        let mut consumed = 0;
        let result = match method {
            "icrc1_transfer" => decode::<TransferArgs>(arg).and_then(|args| {
                check_memo(&args.memo)?;
                let from = key(sender, &args.from_subaccount)?;
                let to = key(args.to.owner, &args.to.subaccount)?;
                let r = self.ledger_transfer(from, to, &args, now);
                encode(&r)
            }),
            "deposit" => decode::<DepositArgs>(arg).and_then(|args| {
                check_memo(&args.memo)?;
                let to = key(args.to.owner, &args.to.subaccount)?;
                if !from_canister || cycles <= FEE {
                    return Err(trap("deposit amount is insufficient"));
                }
                let block = self.ledger().mint(to, cycles);
                consumed = cycles;
                encode(&DepositResult {
                    balance: self.ledger().balance(&to).into(),
                    block_index: block.into(),
                })
            }),
            "withdraw" => decode::<WithdrawArgs>(arg).and_then(|args| {
                let from = key(sender, &args.from_subaccount)?;
                let r = self.ledger_withdraw(from, &args, now);
                encode(&r)
            }),
            "create_canister" => decode::<CreateCanisterArgs>(arg).and_then(|args| {
                let from = key(sender, &args.from_subaccount)?;
                let r = self.ledger_create_canister(sender, from, args, now);
                encode(&r)
            }),
            other => Err(trap(format!("no update method {other}"))),
        };
        Outcome::Done { result, consumed }
    }

    fn ledger_transfer(
        &mut self,
        from: AccountKey,
        to: AccountKey,
        args: &TransferArgs,
        now: u64,
    ) -> Result<Nat, TransferError> {
        if let Some(fee) = &args.fee {
            if amount_u128(fee) != Some(FEE) {
                return Err(TransferError::BadFee {
                    expected_fee: FEE.into(),
                });
            }
        }
        let balance = self.ledger().balance(&from);
        let Some(amount) = amount_u128(&args.amount) else {
            return Err(TransferError::InsufficientFunds {
                balance: balance.into(),
            });
        };
        match check_time(args.created_at_time, now) {
            Err(TimeCheck::InFuture) => {
                return Err(TransferError::CreatedInFuture { ledger_time: now })
            }
            Err(TimeCheck::TooOld) => return Err(TransferError::TooOld),
            Ok(()) => {}
        }
        self.ledger().transfer(from, to, amount).map(Nat::from)
    }

    fn ledger_withdraw(
        &mut self,
        from: AccountKey,
        args: &WithdrawArgs,
        now: u64,
    ) -> Result<Nat, WithdrawError> {
        let balance = self.ledger().balance(&from);
        let Some(amount) = amount_u128(&args.amount) else {
            return Err(WithdrawError::InsufficientFunds {
                balance: balance.into(),
            });
        };
        if !is_opaque(&args.to) {
            return Err(WithdrawError::InvalidReceiver { receiver: args.to });
        }
        match check_time(args.created_at_time, now) {
            Err(TimeCheck::InFuture) => {
                return Err(WithdrawError::CreatedInFuture { ledger_time: now })
            }
            Err(TimeCheck::TooOld) => return Err(WithdrawError::TooOld),
            Ok(()) => {}
        }
        if balance < amount.saturating_add(FEE) {
            return Err(WithdrawError::InsufficientFunds {
                balance: balance.into(),
            });
        }
        // `deposit_cycles` to the receiver: only an existing canister
        // takes them; otherwise the fee is charged, as the ledger does
        // when the management canister rejects the deposit.
        if !self.canister_exists(args.to) {
            let fee_block = self.ledger().burn(from, FEE).ok();
            return Err(WithdrawError::FailedToWithdraw {
                fee_block: fee_block.map(Nat::from),
                rejection_code: RejectionCode::DestinationInvalid,
                rejection_reason: format!("Canister {} not found", args.to),
            });
        }
        let block = self.ledger().burn(from, amount + FEE).map_err(|balance| {
            WithdrawError::InsufficientFunds {
                balance: balance.into(),
            }
        })?;
        self.deposit_to_canister(args.to, amount);
        Ok(block.into())
    }

    fn ledger_create_canister(
        &mut self,
        caller: Principal,
        from: AccountKey,
        args: CreateCanisterArgs,
        now: u64,
    ) -> Result<CreateCanisterSuccess, CreateCanisterError> {
        let balance = self.ledger().balance(&from);
        let Some(amount) = amount_u128(&args.amount) else {
            return Err(CreateCanisterError::InsufficientFunds {
                balance: balance.into(),
            });
        };
        match check_time(args.created_at_time, now) {
            Err(TimeCheck::InFuture) => {
                return Err(CreateCanisterError::CreatedInFuture { ledger_time: now })
            }
            Err(TimeCheck::TooOld) => return Err(CreateCanisterError::TooOld),
            Ok(()) => {}
        }
        if balance < amount.saturating_add(FEE) {
            return Err(CreateCanisterError::InsufficientFunds {
                balance: balance.into(),
            });
        }
        let creation = args.creation_args.unwrap_or_default();
        // The CMC's create_canister with `amount` attached: the caller is
        // the controller unless the settings name others.
        match self.cmc_create(
            caller,
            amount,
            creation.settings.as_ref(),
            creation.subnet_selection.as_ref(),
        ) {
            Ok(canister_id) => {
                let block = self.ledger().burn(from, amount + FEE).map_err(|balance| {
                    CreateCanisterError::InsufficientFunds {
                        balance: balance.into(),
                    }
                })?;
                Ok(CreateCanisterSuccess {
                    block_id: block.into(),
                    canister_id,
                })
            }
            Err(error) => {
                let fee_block = self.ledger().burn(from, FEE).ok();
                Err(CreateCanisterError::FailedToCreate {
                    fee_block: fee_block.map(Nat::from),
                    refund_block: None,
                    error,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(n: u8) -> AccountKey {
        AccountKey::default_of(Principal::from_slice(&[n; 29]))
    }

    #[test]
    fn transfers_move_the_amount_and_burn_the_fee() {
        let mut l = Ledger::default();
        assert_eq!(l.mint(acct(1), 1_000_000_000), 0);
        assert_eq!(l.transfer(acct(1), acct(2), 400_000_000), Ok(1));
        assert_eq!(l.balance(&acct(1)), 500_000_000);
        assert_eq!(l.balance(&acct(2)), 400_000_000);
        assert_eq!(l.total_supply, 900_000_000);
        // The fee counts: 400M + 100M is all that is left.
        assert_eq!(l.transfer(acct(1), acct(2), 400_000_000), Ok(2));
        assert_eq!(l.balance(&acct(1)), 0);
        assert!(
            !l.balances.contains_key(&acct(1)),
            "empty accounts are dropped"
        );
        assert_eq!(
            l.transfer(acct(1), acct(2), 1),
            Err(TransferError::InsufficientFunds {
                balance: Nat::from(0u8)
            })
        );
        assert_eq!(l.blocks, 3, "a refused transfer records no block");
    }

    #[test]
    fn burns_refuse_more_than_the_balance() {
        let mut l = Ledger::default();
        l.mint(acct(3), 10);
        assert_eq!(l.burn(acct(3), 11), Err(10));
        assert_eq!(l.burn(acct(3), 10), Ok(1));
        assert_eq!(l.total_supply, 0);
    }

    #[test]
    fn subaccounts_have_32_bytes() {
        let owner = Principal::from_slice(&[4; 29]);
        assert_eq!(
            AccountKey::new(owner, None),
            Ok(AccountKey::default_of(owner))
        );
        assert_eq!(
            AccountKey::new(owner, Some(&[0; 32])),
            Ok(AccountKey::default_of(owner))
        );
        let err = AccountKey::new(owner, Some(&[1; 5])).unwrap_err();
        assert!(err.contains("32 bytes, found 5"), "{err}");
    }

    #[test]
    fn created_at_time_is_checked_against_the_window() {
        let now = 1_000 * TRANSACTION_WINDOW_NS;
        assert_eq!(check_time(None, now), Ok(()));
        assert_eq!(check_time(Some(now), now), Ok(()));
        assert_eq!(
            check_time(Some(now + 2 * PERMITTED_DRIFT_NS), now),
            Err(TimeCheck::InFuture)
        );
        assert_eq!(
            check_time(Some(now - 2 * TRANSACTION_WINDOW_NS), now),
            Err(TimeCheck::TooOld)
        );
    }

    #[test]
    fn methods_have_their_kinds() {
        assert_eq!(method("icrc1_balance_of"), Some(SystemMethod::Query));
        assert_eq!(method("create_canister"), Some(SystemMethod::Update));
        assert_eq!(method("icrc2_approve"), None);
    }
}
