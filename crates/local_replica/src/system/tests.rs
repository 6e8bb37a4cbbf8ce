//! The system canisters through the replica's ingress and query paths, as
//! clients reach them.

use candid::{Nat, Principal};

use super::cycles_ledger::{
    Account, CmcCreateCanisterArgs, CreateCanisterArgs, CreateCanisterError, CreateCanisterSuccess,
    DepositArgs, SubnetSelection, TransferArgs, TransferError, WithdrawArgs, WithdrawError, FEE,
};
use super::*;
use crate::error::{Error, RejectCode};
use crate::management::CanisterSettings;
use crate::{Config, FeeSchedule};

const T: u128 = 1_000_000_000_000;

fn replica() -> LocalReplica {
    LocalReplica::with_config(Config {
        system_canisters: Some(SystemCanistersConfig::default()),
        ..Config::default()
    })
    .unwrap()
}

fn user(n: u8) -> Principal {
    Principal::from_slice(&[n; 29])
}

fn account(owner: Principal) -> Account {
    Account {
        owner,
        subaccount: None,
    }
}

fn balance(ic: &mut LocalReplica, owner: Principal) -> u128 {
    let n: Nat = ic
        .query_one(CYCLES_LEDGER_ID, owner, "icrc1_balance_of", &account(owner))
        .unwrap();
    u128::try_from(n.0).unwrap()
}

fn transfer(to: Principal, amount: u128) -> TransferArgs {
    TransferArgs {
        from_subaccount: None,
        to: account(to),
        amount: amount.into(),
        fee: None,
        memo: None,
        created_at_time: None,
    }
}

fn create(amount: u128, creation_args: Option<CmcCreateCanisterArgs>) -> CreateCanisterArgs {
    CreateCanisterArgs {
        from_subaccount: None,
        created_at_time: None,
        amount: amount.into(),
        creation_args,
    }
}

fn rejected(e: Error) -> crate::Reject {
    match e {
        Error::Rejected(r) => r,
        other => panic!("expected a reject, found {other:?}"),
    }
}

#[test]
fn ids_are_the_mainnet_ones() {
    assert_eq!(CYCLES_LEDGER_ID.to_text(), "um5iw-rqaaa-aaaaq-qaaba-cai");
    assert_eq!(CMC_ID.to_text(), "rkp4c-7iaaa-aaaaa-aaaca-cai");
}

#[test]
fn anonymous_starts_funded_and_funds_others() {
    let mut ic = replica();
    let anon = Principal::anonymous();
    let me = user(1);
    assert_eq!(balance(&mut ic, anon), i128::MAX as u128);
    assert_eq!(balance(&mut ic, me), 0);
    let r: Result<Nat, TransferError> = ic
        .update_one(
            CYCLES_LEDGER_ID,
            anon,
            "icrc1_transfer",
            &transfer(me, 100 * T),
        )
        .unwrap();
    assert_eq!(r, Ok(Nat::from(1u8)), "block 0 is the anonymous mint");
    assert_eq!(balance(&mut ic, me), 100 * T);
    assert_eq!(balance(&mut ic, anon), i128::MAX as u128 - 100 * T - FEE);
    let supply: Nat = ic
        .query_one(CYCLES_LEDGER_ID, me, "icrc1_total_supply", &())
        .unwrap();
    assert_eq!(supply, Nat::from(i128::MAX as u128 - FEE));
    let fee: Nat = ic
        .query_one(CYCLES_LEDGER_ID, me, "icrc1_fee", &())
        .unwrap();
    assert_eq!(fee, Nat::from(FEE));
    let decimals: u8 = ic
        .query_one(CYCLES_LEDGER_ID, me, "icrc1_decimals", &())
        .unwrap();
    assert_eq!(decimals, 12);
}

#[test]
fn transfers_check_fee_and_funds() {
    let mut ic = replica();
    let (me, you) = (user(1), user(2));
    ic.seed_cycles(me, T);
    let mut args = transfer(you, 10);
    args.fee = Some(Nat::from(1u8));
    let r: Result<Nat, TransferError> = ic
        .update_one(CYCLES_LEDGER_ID, me, "icrc1_transfer", &args)
        .unwrap();
    assert_eq!(
        r,
        Err(TransferError::BadFee {
            expected_fee: FEE.into()
        })
    );
    let r: Result<Nat, TransferError> = ic
        .update_one(CYCLES_LEDGER_ID, me, "icrc1_transfer", &transfer(you, T))
        .unwrap();
    assert_eq!(
        r,
        Err(TransferError::InsufficientFunds { balance: T.into() })
    );
    let mut args = transfer(you, 10);
    args.created_at_time = Some(ic.time() + 3_600_000_000_000);
    let r: Result<Nat, TransferError> = ic
        .update_one(CYCLES_LEDGER_ID, me, "icrc1_transfer", &args)
        .unwrap();
    assert_eq!(
        r,
        Err(TransferError::CreatedInFuture {
            ledger_time: ic.time()
        })
    );
    assert_eq!(balance(&mut ic, me), T, "refused transfers cost nothing");
}

#[test]
fn seeding_tops_up_to_the_amount() {
    let mut ic = replica();
    let me = user(3);
    assert_eq!(ic.seed_cycles(me, 5 * T), 5 * T);
    assert_eq!(ic.seed_cycles(me, 2 * T), 5 * T, "never lowers a balance");
    assert_eq!(ic.seed_cycles(me, 7 * T), 7 * T);
    assert_eq!(ic.ledger_balance(me), Some(7 * T));
}

#[test]
fn create_canister_debits_the_caller_who_controls_the_canister() {
    let mut ic = replica();
    let me = user(4);
    ic.seed_cycles(me, 10 * T);
    let subnets: Vec<Principal> = ic
        .query_one(CMC_ID, me, "get_default_subnets", &())
        .unwrap();
    assert_eq!(subnets, vec![ic.subnet_id()]);
    let args = create(
        2 * T,
        Some(CmcCreateCanisterArgs {
            settings: Some(CanisterSettings {
                freezing_threshold: Some(Nat::from(1_000u32)),
                ..CanisterSettings::default()
            }),
            subnet_selection: Some(SubnetSelection::Subnet { subnet: subnets[0] }),
        }),
    );
    let r: Result<CreateCanisterSuccess, CreateCanisterError> = ic
        .update_one(CYCLES_LEDGER_ID, me, "create_canister", &args)
        .unwrap();
    let ok = r.unwrap();
    let id = ok.canister_id;
    assert_eq!(ic.controllers(id), Some(vec![me]));
    let creation_fee = FeeSchedule::default().creation_fee();
    assert_eq!(ic.cycle_balance(id), Some(2 * T - creation_fee));
    assert_eq!(balance(&mut ic, me), 8 * T - FEE);
    // The new canister is the caller's: it can install and query its status.
    let status = ic.canister_status(me, id).unwrap();
    assert_eq!(status.settings.freezing_threshold, Nat::from(1_000u32));

    // Too little: refused before anything is taken.
    let r: Result<CreateCanisterSuccess, CreateCanisterError> = ic
        .update_one(
            CYCLES_LEDGER_ID,
            me,
            "create_canister",
            &create(9 * T, None),
        )
        .unwrap();
    assert_eq!(
        r,
        Err(CreateCanisterError::InsufficientFunds {
            balance: (8 * T - FEE).into()
        })
    );
    // Another subnet: the fee is charged, the amount stays.
    let args = create(
        T,
        Some(CmcCreateCanisterArgs {
            settings: None,
            subnet_selection: Some(SubnetSelection::Subnet { subnet: user(9) }),
        }),
    );
    let r: Result<CreateCanisterSuccess, CreateCanisterError> = ic
        .update_one(CYCLES_LEDGER_ID, me, "create_canister", &args)
        .unwrap();
    match r {
        Err(CreateCanisterError::FailedToCreate {
            fee_block: Some(_),
            refund_block: None,
            error,
        }) => assert!(error.contains("does not exist"), "{error}"),
        other => panic!("expected FailedToCreate, found {other:?}"),
    }
    assert_eq!(balance(&mut ic, me), 8 * T - 2 * FEE);
}

#[test]
fn withdraw_sends_cycles_to_canisters_only() {
    let mut ic = replica();
    let me = user(5);
    ic.seed_cycles(me, 10 * T);
    let target = ic.create_canister(me).unwrap();
    let before = ic.cycle_balance(target).unwrap();
    let args = WithdrawArgs {
        amount: T.into(),
        from_subaccount: None,
        to: target,
        created_at_time: None,
    };
    let r: Result<Nat, WithdrawError> = ic
        .update_one(CYCLES_LEDGER_ID, me, "withdraw", &args)
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(ic.cycle_balance(target), Some(before + T));
    assert_eq!(balance(&mut ic, me), 9 * T - FEE);

    let to_user = WithdrawArgs {
        to: me,
        ..args.clone()
    };
    let r: Result<Nat, WithdrawError> = ic
        .update_one(CYCLES_LEDGER_ID, me, "withdraw", &to_user)
        .unwrap();
    assert_eq!(r, Err(WithdrawError::InvalidReceiver { receiver: me }));
    let missing = crate::canister_id(1_000);
    let r: Result<Nat, WithdrawError> = ic
        .update_one(
            CYCLES_LEDGER_ID,
            me,
            "withdraw",
            &WithdrawArgs {
                to: missing,
                ..args
            },
        )
        .unwrap();
    assert!(
        matches!(
            r,
            Err(WithdrawError::FailedToWithdraw {
                fee_block: Some(_),
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(balance(&mut ic, me), 9 * T - 2 * FEE);
}

#[test]
fn deposits_need_cycles_from_a_canister() {
    let mut ic = replica();
    let me = user(6);
    let e = ic
        .update_one::<_, Nat>(
            CYCLES_LEDGER_ID,
            me,
            "deposit",
            &DepositArgs {
                to: account(me),
                memo: None,
            },
        )
        .unwrap_err();
    let r = rejected(e);
    assert_eq!(r.code, RejectCode::CanisterError);
    assert!(r.message.contains("deposit amount is insufficient"), "{r}");
}

#[test]
fn unknown_methods_and_queries_of_updates_are_refused() {
    let mut ic = replica();
    let me = user(7);
    let r = rejected(
        ic.update_one::<_, Nat>(CYCLES_LEDGER_ID, me, "icrc2_approve", &())
            .unwrap_err(),
    );
    assert_eq!(r.error_code, Some(ErrorCode::CanisterMethodNotFound));
    let r = rejected(
        ic.query_one::<_, Nat>(CYCLES_LEDGER_ID, me, "create_canister", &())
            .unwrap_err(),
    );
    assert!(
        r.message.contains("no query method 'create_canister'"),
        "{r}"
    );
    let r = rejected(
        ic.update_one::<_, Nat>(CMC_ID, me, "notify_create_canister", &())
            .unwrap_err(),
    );
    assert_eq!(r.error_code, Some(ErrorCode::CanisterMethodNotFound));
}

#[test]
fn new_canisters_skip_the_system_ids() {
    let mut ic = replica();
    let me = user(8);
    let ids: Vec<Principal> = (0..6).map(|_| ic.create_canister(me).unwrap()).collect();
    assert!(!ids.contains(&CMC_ID));
    assert_eq!(ids[4], crate::canister_id(5), "index 4 is the CMC's");
    let e = ic
        .create_canister_with(
            me,
            crate::management::ProvisionalCreateCanisterArgs {
                specified_id: Some(CYCLES_LEDGER_ID),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(rejected(e).message.contains("already exists"));
}

#[test]
fn without_the_config_there_are_none() {
    let mut ic = LocalReplica::new().unwrap();
    let me = user(9);
    assert!(!ic.is_system_canister(CYCLES_LEDGER_ID));
    let r = rejected(
        ic.query_one::<_, Nat>(CYCLES_LEDGER_ID, me, "icrc1_balance_of", &account(me))
            .unwrap_err(),
    );
    assert_eq!(r.error_code, Some(ErrorCode::CanisterNotFound));
    assert_eq!(ic.seed_cycles(me, T), 0);
    assert_eq!(ic.ledger_balance(me), None);
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "local_replica_system_{name}_{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn balances_survive_a_checkpoint() {
    let dir = temp_dir("checkpoint");
    let mut ic = replica();
    let me = user(10);
    ic.seed_cycles(me, 3 * T);
    let r: Result<Nat, TransferError> = ic
        .update_one(
            CYCLES_LEDGER_ID,
            me,
            "icrc1_transfer",
            &transfer(user(11), T),
        )
        .unwrap();
    let block = r.unwrap();
    ic.checkpoint(&dir).unwrap();
    let mut back = LocalReplica::restore(
        &dir,
        Config {
            system_canisters: Some(SystemCanistersConfig::default()),
            ..Config::default()
        },
    )
    .unwrap();
    assert_eq!(back.system, ic.system);
    assert_eq!(balance(&mut back, me), 2 * T - FEE);
    assert_eq!(balance(&mut back, user(11)), T);
    let r: Result<Nat, TransferError> = back
        .update_one(
            CYCLES_LEDGER_ID,
            me,
            "icrc1_transfer",
            &transfer(user(11), 1),
        )
        .unwrap();
    let next = u128::try_from(block.0).unwrap() + 1;
    assert_eq!(r, Ok(Nat::from(next)), "block numbers go on");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint of format version 1 (before the system canisters) is
/// still read; the system canisters then start as the config says.
#[test]
fn version_1_checkpoints_are_read() {
    use crate::checkpoint::store::sha256;
    let dir = temp_dir("v1");
    let mut ic = LocalReplica::new().unwrap();
    let me = user(12);
    let id = ic.create_canister(me).unwrap();
    ic.checkpoint(&dir).unwrap();
    // Rewrite the manifest as version 1 wrote it: no system canisters
    // after the manifest (version 2 writes `None`, one zero byte).
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "bin"))
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header = 8 + 4 + 8;
    let payload = &bytes[header..bytes.len() - 32];
    assert_eq!(payload.last(), Some(&0), "None is one zero byte");
    let payload = &payload[..payload.len() - 1];
    let mut v1 = bytes[..8].to_vec();
    v1.extend_from_slice(&1u32.to_le_bytes());
    v1.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    v1.extend_from_slice(payload);
    let digest = sha256(&v1);
    v1.extend_from_slice(&digest);
    std::fs::write(&path, &v1).unwrap();

    let mut back = LocalReplica::restore(
        &dir,
        Config {
            system_canisters: Some(SystemCanistersConfig::default()),
            ..Config::default()
        },
    )
    .unwrap();
    assert_eq!(back.controllers(id), Some(vec![me]));
    assert_eq!(
        balance(&mut back, Principal::anonymous()),
        i128::MAX as u128
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
