//! Users, quotas and admin through the real task_manager wasm.

use candid::Principal;
use integration_tests::{controller, principal, Env};
use local_replica::{Error, ErrorCode};
use task_manager_api::{
    set_user_quota, AdminError, Config, InitArgs, Quota, UserError, UserProfile,
};

type Profile = Result<UserProfile, UserError>;
type AdminProfile = Result<UserProfile, AdminError>;
type Unit = Result<(), AdminError>;

fn quota(capacity: u64, refill_per_sec: u64) -> Quota {
    Quota {
        capacity,
        refill_per_sec,
    }
}

/// Ingress refused by `canister_inspect_message`, as the IC reports it
/// (IC0406).
fn assert_refused_at_inspect(result: Result<impl std::fmt::Debug, Error>) {
    match result {
        Err(Error::Rejected(reject)) => {
            assert_eq!(
                reject.error_code,
                Some(ErrorCode::CanisterRejectedMessage),
                "{reject}"
            )
        }
        other => panic!("expected a refusal by inspect_message, got {other:?}"),
    }
}

#[test]
fn register_whoami_and_quota_admin() {
    let mut env = Env::new(InitArgs {
        default_quota: Some(quota(100, 10)),
        config: None,
    });
    let tm = env.task_manager;
    let alice = principal(1);

    // The anonymous principal and unregistered callers are refused before
    // the method runs; queries answer with typed errors.
    assert_refused_at_inspect(env.ic.update_one::<_, Profile>(
        tm,
        Principal::anonymous(),
        "register",
        &(),
    ));
    let whoami: Profile = env.ic.query_one(tm, alice, "whoami", &()).unwrap();
    assert_eq!(whoami, Err(UserError::NotRegistered));

    let profile = env
        .ic
        .update_one::<_, Profile>(tm, alice, "register", &())
        .unwrap()
        .unwrap();
    assert_eq!(profile.quota, quota(100, 10));
    assert_eq!(profile.tokens_available, 100);
    let again = env
        .ic
        .update_one::<_, Profile>(tm, alice, "register", &())
        .unwrap()
        .unwrap();
    assert_eq!(again, profile, "register is idempotent");

    // Admin methods: controllers only (refused at inspect for others).
    assert_refused_at_inspect(env.ic.update_one::<_, Unit>(tm, alice, "set_paused", &true));
    assert_refused_at_inspect(env.ic.update_one::<_, Unit>(
        tm,
        alice,
        "set_default_quota",
        &quota(5, 1),
    ));
    let user: AdminProfile = env.ic.query_one(tm, alice, "user", &alice).unwrap();
    assert_eq!(user, Err(AdminError::NotController));

    let set: Unit = env
        .ic
        .update_one(
            tm,
            controller(),
            "set_user_quota",
            &set_user_quota::Args {
                user: alice,
                quota: Some(quota(1_000, 100)),
            },
        )
        .unwrap();
    set.unwrap();
    let bad: Unit = env
        .ic
        .update_one(tm, controller(), "set_default_quota", &quota(0, 0))
        .unwrap();
    assert!(
        matches!(bad, Err(AdminError::InvalidQuota { .. })),
        "{bad:?}"
    );
    let seen: AdminProfile = env.ic.query_one(tm, controller(), "user", &alice).unwrap();
    let seen = seen.unwrap();
    assert!(seen.quota_is_override);
    assert_eq!(seen.quota, quota(1_000, 100));

    // Bans take effect at inspect_message.
    let ban: Unit = env
        .ic
        .update_one(tm, controller(), "ban_user", &alice)
        .unwrap();
    ban.unwrap();
    assert_refused_at_inspect(env.ic.update_one::<_, Profile>(tm, alice, "register", &()));
    let whoami: Profile = env.ic.query_one(tm, alice, "whoami", &()).unwrap();
    assert_eq!(whoami, Err(UserError::Banned));
    let unban: Unit = env
        .ic
        .update_one(tm, controller(), "unban_user", &alice)
        .unwrap();
    unban.unwrap();
    let whoami: Profile = env.ic.query_one(tm, alice, "whoami", &()).unwrap();
    assert!(whoami.is_ok());
}

#[test]
fn users_and_config_survive_upgrades() {
    let mut env = Env::new(InitArgs::default());
    let tm = env.task_manager;
    for n in 1..=20 {
        env.ic
            .update_one::<_, Profile>(tm, principal(n), "register", &())
            .unwrap()
            .unwrap();
    }
    let paused: Unit = env
        .ic
        .update_one(tm, controller(), "set_paused", &true)
        .unwrap();
    paused.unwrap();
    let before: Profile = env.ic.query_one(tm, principal(7), "whoami", &()).unwrap();

    let wasm = integration_tests::wasm("task_manager");
    let arg = candid::encode_one(Some(InitArgs {
        default_quota: Some(quota(42, 1)),
        config: None,
    }))
    .unwrap();
    env.upgrade(tm, wasm.clone(), arg).unwrap();

    let after: Profile = env.ic.query_one(tm, principal(7), "whoami", &()).unwrap();
    let (before, after) = (before.unwrap(), after.unwrap());
    assert_eq!(after.registered_at_ns, before.registered_at_ns);
    assert_eq!(
        after.quota,
        quota(42, 1),
        "the upgrade argument sets the default"
    );
    let config: Result<Config, AdminError> =
        env.ic.query_one(tm, controller(), "config", &()).unwrap();
    assert!(config.unwrap().paused);

    // A bad upgrade argument aborts the upgrade and changes nothing.
    let bad = candid::encode_one(Some(InitArgs {
        default_quota: Some(quota(0, 0)),
        config: None,
    }))
    .unwrap();
    assert!(env.upgrade(tm, wasm, bad).is_err());
    let config: Result<Config, AdminError> =
        env.ic.query_one(tm, controller(), "config", &()).unwrap();
    assert_eq!(config.unwrap().default_quota, quota(42, 1));
    for n in 1..=20 {
        let p: Profile = env.ic.query_one(tm, principal(n), "whoami", &()).unwrap();
        assert!(p.is_ok(), "user {n} lost in the upgrade");
    }
}

#[test]
fn the_shipped_module_carries_its_candid_interface() {
    for (canister, did) in [
        (
            "task_manager",
            "canisters/task_manager/api/task_manager.did",
        ),
        ("worker", "canisters/worker/api/worker.did"),
        (
            "example_caller",
            "canisters/examples/caller/example_caller.did",
        ),
    ] {
        let wasm = integration_tests::wasm(canister);
        let did = std::fs::read_to_string(integration_tests::workspace().join(did)).unwrap();
        let name = b"icp:public candid:service";
        let at = wasm
            .windows(name.len())
            .position(|w| w == name)
            .unwrap_or_else(|| panic!("{canister}: no icp:public candid:service section"));
        let payload = &wasm[at + name.len()..];
        assert!(
            payload.starts_with(did.as_bytes()),
            "{canister}: the embedded interface is not the checked-in .did"
        );
    }
}

#[test]
fn oversized_arguments_are_refused_before_the_task_manager_pays_for_them() {
    use integration_tests::request;
    use task_manager_api::{GenerateRequest, Sampling};

    let mut env = Env::new(InitArgs::default());
    let tm = env.task_manager;
    let mallory = principal(9);
    let balance = |env: &Env| env.ic.cycle_balance(tm).unwrap();

    // `register` takes no argument; the IC accepts 2 MiB for any method,
    // and candid ignores what follows, so this padding used to be inducted
    // (about 2,000 cycles per byte, paid by the task manager) and served.
    let padding = candid::encode_one(serde_bytes::ByteBuf::from(vec![0u8; 1_900_000])).unwrap();
    let before = balance(&env);
    assert_refused_at_inspect(env.ic.update_call(tm, mallory, "register", padding));
    assert_eq!(balance(&env), before, "the refused message cost cycles");
    let whoami: Profile = env.ic.query_one(tm, mallory, "whoami", &()).unwrap();
    assert_eq!(whoami, Err(UserError::NotRegistered));

    // A registered user's `generate` with a megabyte of prompt is refused
    // before the method runs, and so is the same padding on `cancel`.
    let tokens = env.register(mallory).tokens_available;
    let huge: GenerateRequest = request(
        "no-such-model",
        &"x".repeat(1 << 20),
        4,
        Sampling::default(),
        0,
    );
    let before = balance(&env);
    assert_refused_at_inspect(
        env.ic
            .update_one::<_, Result<u64, UserError>>(tm, mallory, "generate", &huge),
    );
    let padded_cancel =
        candid::encode_args((7u64, serde_bytes::ByteBuf::from(vec![0u8; 100_000]))).unwrap();
    assert_refused_at_inspect(env.ic.update_call(tm, mallory, "cancel", padded_cancel));
    assert_eq!(balance(&env), before);
    let profile: Profile = env.ic.query_one(tm, mallory, "whoami", &()).unwrap();
    assert_eq!(profile.unwrap().tokens_available, tokens);

    // The largest prompt a request may carry still reaches the method,
    // which answers with its own typed error.
    let largest = request(
        "no-such-model",
        &"x".repeat(64 * 1024),
        4,
        Sampling::default(),
        0,
    );
    let r: Result<u64, UserError> = env
        .ic
        .update_one(tm, mallory, "generate", &largest)
        .unwrap();
    assert!(matches!(r, Err(UserError::UnknownModel { .. })), "{r:?}");
}
