//! `--state-dir`: the served replica's canisters, state and root key are
//! there again when a server starts on the same directory.

use replica_http::server::{serve, ServeConfig};

use crate::common::{agent_for, counter_wasm, create_and_install, ed25519};

fn count(
    rt: &tokio::runtime::Runtime,
    agent: &ic_agent::Agent,
    canister: candid::Principal,
    method: &str,
) -> u64 {
    let out = if method == "inc" {
        rt.block_on(agent.update(&canister, "inc").call_and_wait())
    } else {
        rt.block_on(agent.query(&canister, method).call())
    }
    .unwrap_or_else(|e| panic!("{method}: {e}"));
    u64::from_le_bytes(out.try_into().expect("8 bytes"))
}

#[test]
fn a_restarted_server_serves_the_same_canisters_under_the_same_root_key() {
    let dir = std::env::temp_dir().join(format!("replica-http-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = || ServeConfig {
        state_dir: Some(dir.clone()),
        ..ServeConfig::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let first = serve(config()).expect("the server starts");
    let root_key = first.root_key_der();
    let agent = rt.block_on(agent_for(&first, ed25519(1)));
    let canister = rt.block_on(create_and_install(&agent, &counter_wasm()));
    for want in 1..=3 {
        assert_eq!(count(&rt, &agent, canister, "inc"), want);
    }
    // Stopping writes the last checkpoint.
    first.shutdown();

    let second = serve(config()).expect("the server starts again");
    assert_eq!(second.root_key_der(), root_key, "the root key is kept");
    let agent = rt.block_on(agent_for(&second, ed25519(1)));
    assert_eq!(
        count(&rt, &agent, canister, "read"),
        3,
        "the heap came back"
    );
    assert_eq!(count(&rt, &agent, canister, "inc"), 4, "and goes on");
    // A new canister does not take the restored one's id.
    let other = rt.block_on(create_and_install(&agent, &counter_wasm()));
    assert_ne!(other, canister);
    assert_eq!(count(&rt, &agent, other, "read"), 0);
    second.shutdown();

    // A directory whose checkpoint was made under other keys is refused.
    std::fs::remove_dir_all(dir.join("keys")).expect("remove the keys");
    match serve(config()) {
        Err(replica_http::server::ServeError::KeyMismatch { .. }) => {}
        Err(e) => panic!("expected KeyMismatch, got {e}"),
        Ok(_) => panic!("a checkpoint under another root key was restored"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
