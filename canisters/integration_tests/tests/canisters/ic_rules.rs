//! The shipped modules as a real subnet takes them. Every other test here
//! runs in the local replica's default configuration, which holds the IC's
//! module limits, instruction weights, memory limits and fees; this one
//! states the module limits explicitly for each shipped canister.

use candid::{Encode, Principal};
use integration_tests::{controller, replica_config, wasm, CANISTERS};
use local_replica::{
    CanisterInstallMode, Config, Error, ErrorCode, FeeSchedule, Limits, LocalReplica, ModuleLimits,
};

const MIB: u64 = 1024 * 1024;

/// What `scripts/build_canisters.sh` allows: the IC's 10 MiB less a margin.
const SHIPPED_CODE_SECTION_LIMIT: u64 = 9 * MIB;

fn install(ic: &mut LocalReplica, name: &str, wasm: Vec<u8>) -> Result<Principal, Error> {
    let arg = match name {
        // A worker must be told its task manager; any principal serves here.
        "worker" => Encode!(&Some(worker_api::InitArgs {
            task_manager: Principal::management_canister(),
        })),
        _ => Encode!(&None::<()>),
    }
    .unwrap();
    let id = ic.create_canister(controller())?;
    ic.install_wasm(controller(), id, CanisterInstallMode::Install, wasm, arg)?;
    Ok(id)
}

/// The code section's size as the replica counts it (the same count the IC
/// compares with `MAX_CODE_SECTION_SIZE_IN_BYTES`), read from its refusal
/// under a 1-byte limit.
fn code_section_bytes(name: &str, wasm: Vec<u8>) -> u64 {
    let mut tiny = LocalReplica::with_config(Config {
        limits: Limits {
            module: ModuleLimits {
                max_code_section_bytes: 1,
                ..ModuleLimits::default()
            },
            ..Limits::default()
        },
        ..Config::default()
    })
    .unwrap();
    let Err(Error::Rejected(reject)) = install(&mut tiny, name, wasm) else {
        panic!("{name}: installed with a 1-byte code section limit");
    };
    assert_eq!(
        reject.error_code,
        Some(ErrorCode::CanisterInvalidWasm),
        "{reject}"
    );
    let found = reject
        .message
        .split("the code section is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok());
    found.unwrap_or_else(|| panic!("{name}: no code section size in: {reject}"))
}

#[test]
fn the_shipped_canisters_install_within_the_ics_module_limits() {
    // The replica of every canister test is the strict one: the IC's limits
    // (10 MiB of code section, 50,000 functions, ...) and fees.
    let config = replica_config();
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.limits.module.max_code_section_bytes, 10 * MIB);
    assert_eq!(config.fees, FeeSchedule::default());
    let mut ic = LocalReplica::with_config(config).unwrap();
    for name in CANISTERS {
        let module = wasm(name);
        let code = code_section_bytes(name, module.clone());
        assert!(
            code <= SHIPPED_CODE_SECTION_LIMIT,
            "{name}: code section {code} bytes, over {SHIPPED_CODE_SECTION_LIMIT}"
        );
        let id = install(&mut ic, name, module.clone())
            .unwrap_or_else(|e| panic!("{name} does not install under the IC's limits: {e}"));
        let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&module).into();
        assert_eq!(ic.module_hash(id), Some(hash), "{name}");
    }
}
