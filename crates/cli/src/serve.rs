//! `icllm replica serve`: the local replica behind the IC's HTTP interface,
//! for official clients (`icp`, dfx-style tools, `@icp-sdk/core`,
//! `ic-agent`).
//!
//! ```sh
//! icllm replica serve --port 4943 --state-dir .icllm/replica
//! ```
//!
//! It prints the URL and the root key (hex; what `icp`'s `root-key` and
//! agents' `fetchRootKey` need) and serves until the process is stopped
//! (Ctrl-C or SIGTERM). The state directory keeps the root and node keys
//! (the root key stays the same between runs), the compiled-module cache
//! and the replica's checkpoints (`replica/`, written every 30 seconds and
//! when the server stops), so the canisters are there again at the next
//! start with the same directory.
//!
//! With `--frontend DIR`, it also serves the files of `DIR` (a built web
//! frontend: `frontend/app/dist`) for `GET` requests outside `/api/`, on
//! the same port: the chat UI at the printed URL, calling the replica on
//! its own origin.
//!
//! The cycles ledger and the cycles minting canister exist (what `icp
//! deploy` creates canisters through): the anonymous principal starts with
//! a large cycles balance, and `--seed-cycles PRINCIPAL=AMOUNT` raises an
//! account to at least AMOUNT at every start.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use replica_http::server::{serve, ServeConfig};

/// `icllm replica …`
#[derive(Args, Debug)]
pub struct ReplicaArgs {
    #[command(subcommand)]
    command: ReplicaCommand,
}

#[derive(Subcommand, Debug)]
enum ReplicaCommand {
    /// Serve the IC's HTTP interface (status, call, query, read_state).
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// The port (0: any free port).
    #[arg(long, default_value_t = 4943)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Where keys, compiled modules and the replica's state are kept
    /// between runs (default: fresh keys and an empty replica each run).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// A directory of static files (the built chat UI, `frontend/app/dist`)
    /// served for `GET` requests outside `/api/` on the same port.
    #[arg(long, value_name = "DIR")]
    frontend: Option<PathBuf>,
    /// Raise PRINCIPAL's cycles ledger balance to at least AMOUNT at start
    /// (e.g. `--seed-cycles $(icp identity principal)=100T`), what `icp
    /// deploy` pays canisters with; repeatable. The anonymous principal
    /// always starts with a large balance, as on a local network, so `icp
    /// cycles transfer … --identity anonymous` works too.
    #[arg(long, value_name = "PRINCIPAL=AMOUNT", value_parser = parse_seed)]
    seed_cycles: Vec<(candid::Principal, u128)>,
}

/// `PRINCIPAL=AMOUNT`, the amount as `--cycles` takes it (`100T`, `2_000_000`).
fn parse_seed(text: &str) -> std::result::Result<(candid::Principal, u128), String> {
    let (principal, amount) = text
        .split_once('=')
        .ok_or_else(|| format!("expected PRINCIPAL=AMOUNT, found {text:?}"))?;
    let principal = candid::Principal::from_text(principal.trim())
        .map_err(|e| format!("{principal:?} is not a principal: {e}"))?;
    Ok((principal, crate::network::parse_cycles(amount.trim())?))
}

pub fn run(args: ReplicaArgs) -> Result<()> {
    match args.command {
        ReplicaCommand::Serve(args) => serve_forever(args),
    }
}

fn serve_forever(args: ServeArgs) -> Result<()> {
    // The served replica's defaults: the system canisters exist.
    let replica = local_replica::Config {
        cache_dir: args.state_dir.as_ref().map(|d| d.join("compiled")),
        ..ServeConfig::default().replica
    };
    for (owner, amount) in &args.seed_cycles {
        println!("seeding the cycles ledger: {owner} has at least {amount} cycles");
    }
    let server = serve(ServeConfig {
        bind: args.bind,
        port: args.port,
        state_dir: args.state_dir.clone(),
        replica,
        frontend: args.frontend.clone(),
        seed_cycles: args.seed_cycles.clone(),
        ..ServeConfig::default()
    })
    .with_context(|| format!("starting the replica on {}:{}", args.bind, args.port))?;
    let root_key: String = server
        .root_key_der()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("url: {}", server.url());
    println!("root key: {root_key}");
    if let Some(dir) = &args.state_dir {
        println!("state directory: {}", dir.display());
    }
    if let Some(dir) = &args.frontend {
        println!("frontend: {}/ (files of {})", server.url(), dir.display());
    }
    println!("serving until stopped (Ctrl-C)");
    // SIGINT or SIGTERM: stop, write the last checkpoint, exit.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("installing the signal handlers")?;
    let stopper = server.stopper();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            eprintln!("stopping: writing the replica's checkpoint");
            stopper.stop();
        }
    });
    server.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_seed;

    #[test]
    fn seeds_parse_as_principal_and_amount() {
        let (p, n) = parse_seed("2vxsx-fae=100T").unwrap();
        assert_eq!(p, candid::Principal::anonymous());
        assert_eq!(n, 100_000_000_000_000);
        assert!(parse_seed("2vxsx-fae")
            .unwrap_err()
            .contains("PRINCIPAL=AMOUNT"));
        assert!(parse_seed("nope=1T")
            .unwrap_err()
            .contains("not a principal"));
        assert!(parse_seed("2vxsx-fae=lots").is_err());
    }
}
