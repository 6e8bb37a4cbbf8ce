//! Upload throughput of a model directory, in one run: the embedded local
//! replica against the same replica served over HTTP (`icllm replica
//! serve`'s server, in process) with `ic-agent`, one call in flight and
//! several. Each upload goes to a fresh task manager, so every chunk is
//! sent, hashed and stored in stable memory.
//!
//! ```sh
//! scripts/build_canisters.sh task_manager
//! cargo run -p client --example upload_throughput -- models/smollm2-135m-instruct/stages-1 [parallel]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use client::{AgentTransport, Network};
use local_replica::LocalReplica;
use suite::{LocalTransport, TaskManager, UploadOptions};
use task_manager_api::{ConfigUpdate, InitArgs};

fn init() -> Vec<u8> {
    candid::encode_one(Some(InitArgs {
        default_quota: None,
        config: Some(ConfigUpdate::default()),
    }))
    .expect("encodes")
}

/// One line: what was sent, how long it took, MiB/s.
fn print_figure(label: &str, report: &suite::upload::UploadReport, secs: f64) {
    let mib = report.bytes as f64 / (1024.0 * 1024.0);
    println!(
        "{label:<26} {:>4} chunks {mib:>7.1} MiB in {secs:>6.1} s: {:>5.1} MiB/s",
        report.uploaded,
        mib / secs
    );
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .context("usage: upload_throughput MODEL_DIR [PARALLEL]")?,
    );
    let parallel: usize = args.next().map_or(Ok(8), |p| p.parse())?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let wasm_path = target.join("canisters/task_manager.wasm");
    let wasm = std::fs::read(&wasm_path).with_context(|| {
        format!(
            "reading {} (scripts/build_canisters.sh task_manager)",
            wasm_path.display()
        )
    })?;

    // Embedded: the suite's own path (one call at a time).
    let mut ic = LocalReplica::new()?;
    let controller = suite::controller();
    let id = ic.create_canister(controller)?;
    ic.install_wasm(
        controller,
        id,
        local_replica::CanisterInstallMode::Install,
        wasm.clone(),
        init(),
    )?;
    let transport = LocalTransport::new(&mut ic, controller);
    let tm = TaskManager::new(&transport, id);
    let start = Instant::now();
    let report = suite::upload::upload_model(
        &tm,
        &dir,
        &UploadOptions {
            parallel: 1,
            ..Default::default()
        },
        &|_| {},
    )?;
    print_figure("embedded replica", &report, start.elapsed().as_secs_f64());

    // Served over HTTP, through ic-agent (certified update calls).
    for calls in [1, parallel] {
        let server = replica_http::server::serve(Default::default())?;
        let network: Network = server.url().parse()?;
        let identity =
            client::identity::from_pem(include_str!("../tests/identities/icp-ed25519.pem"))?;
        let t = AgentTransport::connect(&network, Some(&identity))?;
        let id = t.create_and_install(&wasm, init(), 10_000_000_000_000)?;
        let tm = TaskManager::new(&t, id);
        let options = UploadOptions {
            parallel: calls,
            ..Default::default()
        };
        let start = Instant::now();
        let report = suite::upload::upload_model(&tm, &dir, &options, &|_| {})?;
        let label = format!("HTTP, {calls} call(s) in flight");
        print_figure(&label, &report, start.elapsed().as_secs_f64());
        server.shutdown();
    }
    Ok(())
}
