//! icp-cli against the served replica, as a user runs it: `icp` 1.5.0 (the
//! npm package `@icp-sdk/icp-cli-linux-x64`, installed by `npm ci` in
//! `clients/node`) with the repository's `icp.yaml` and its `local-served`
//! environment, funds a fresh identity from the anonymous principal's cycles,
//! deploys the task manager (built by the project's own build step) and calls
//! it.
//!
//! The project is the repository's `icp.yaml` in a temporary directory with
//! mechanical changes: the network's URL is this server's (it listens on a
//! free port, not 4943), the build commands' relative paths (`scripts/…`,
//! `target/…`) point into the repository, and canisters built from a recipe
//! (the chat UI's assets canister) are left out: icp-cli fetches recipes
//! from their registry on GitHub when it loads the project, which this
//! machine cannot reach. Without the `icp`
//! binary the test says so and passes, unless `ICLLM_REQUIRE_ICP=1`
//! (scripts/test.sh sets it), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use replica_http::server::{serve, ServeConfig};

const NETWORK_URL: &str = "http://127.0.0.1:4943";
const ENVIRONMENT: &str = "local-served";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace exists")
}

/// The `icp` binary npm installed in `clients/node`.
fn icp_binary() -> Option<PathBuf> {
    let path = workspace().join("clients/node/node_modules/@icp-sdk/icp-cli-linux-x64/bin/icp");
    path.is_file().then_some(path)
}

struct Icp {
    bin: PathBuf,
    home: PathBuf,
    project: PathBuf,
}

impl Icp {
    fn output(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .current_dir(&self.project)
            .env("HOME", &self.home)
            .env("ICP_HOME", self.home.join("icp"))
            .env("DO_NOT_TRACK", "1")
            .env_remove("ICP_ENVIRONMENT")
            .env_remove("ICP_NETWORK")
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin.display()))
    }

    /// Runs `icp args…`, which must succeed; its standard output.
    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "icp {} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
            args.join(" "),
            out.status
        );
        stdout
    }
}

/// The repository's `icp.yaml`, pointed at `url` and runnable from another
/// directory.
fn project_manifest(url: &str) -> String {
    let ws = workspace();
    let original = std::fs::read_to_string(ws.join("icp.yaml")).expect("reading icp.yaml");
    let replacements = [
        (format!("url: {NETWORK_URL}"), format!("url: {url}")),
        (
            "- scripts/build_canisters.sh ".to_string(),
            format!("- {}/scripts/build_canisters.sh ", ws.display()),
        ),
        (
            "cp target/canisters/".to_string(),
            format!("cp {}/target/canisters/", ws.display()),
        ),
    ];
    let mut manifest = original.clone();
    for (from, to) in replacements {
        assert!(
            original.contains(&from),
            "icp.yaml no longer contains {from:?}: update this test with it"
        );
        manifest = manifest.replace(&from, &to);
    }
    without_recipe_canisters(&manifest)
}

/// `manifest` without the items of its `canisters:` list that use a
/// `recipe:` (items start at `  - name:` and run to the next item or the
/// next top-level key).
fn without_recipe_canisters(manifest: &str) -> String {
    let mut out = Vec::new();
    let mut item: Vec<&str> = Vec::new();
    let flush = |item: &mut Vec<&str>, out: &mut Vec<String>| {
        if !item.iter().any(|l| l.trim_start().starts_with("recipe:")) {
            out.extend(item.iter().map(|l| l.to_string()));
        }
        item.clear();
    };
    let mut in_item = false;
    for line in manifest.lines() {
        let top_level = !line.is_empty() && !line.starts_with(' ') && !line.starts_with('#');
        if line.starts_with("  - name:") {
            flush(&mut item, &mut out);
            in_item = true;
        } else if top_level {
            flush(&mut item, &mut out);
            in_item = false;
        }
        if in_item {
            item.push(line);
        } else {
            out.push(line.to_string());
        }
    }
    flush(&mut item, &mut out);
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The number in `icp cycles balance`'s output (`Balance: 50_000_000_000_000
/// cycles`).
fn cycles_in(text: &str) -> u128 {
    let number = text
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no number in {text:?}"));
    number
        .replace('_', "")
        .parse()
        .unwrap_or_else(|e| panic!("{number:?} in {text:?}: {e}"))
}

#[test]
fn icp_deploy_and_call_the_task_manager() {
    let Some(bin) = icp_binary() else {
        let message = "icp-cli is missing: run `npm ci` in clients/node \
                       (@icp-sdk/icp-cli-linux-x64 in its devDependencies)";
        if std::env::var("ICLLM_REQUIRE_ICP").as_deref() == Ok("1") {
            panic!("{message} (ICLLM_REQUIRE_ICP=1)");
        }
        eprintln!("SKIPPED: {message}");
        return;
    };
    let root = std::env::temp_dir().join(format!("replica_http_icp_cli_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let project = root.join("project");
    let home = root.join("home");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&home).unwrap();

    let server = serve(ServeConfig::default()).expect("the server starts");
    std::fs::write(project.join("icp.yaml"), project_manifest(&server.url())).unwrap();
    let icp = Icp { bin, home, project };
    let env = ["-e", ENVIRONMENT];

    // A fresh identity has no cycles; the anonymous principal funds it, as
    // a local network's launcher does.
    icp.run(&["identity", "new", "dev", "--storage", "plaintext"]);
    icp.run(&["identity", "default", "dev"]);
    let me = icp.run(&["identity", "principal"]).trim().to_string();
    assert!(candid::Principal::from_text(&me).is_ok(), "{me:?}");
    let balance = icp.run(&["cycles", "balance", env[0], env[1]]);
    assert_eq!(cycles_in(&balance), 0, "{balance}");
    icp.run(&[
        "cycles",
        "transfer",
        "50t",
        &me,
        env[0],
        env[1],
        "--identity",
        "anonymous",
    ]);
    let balance = icp.run(&["cycles", "balance", env[0], env[1]]);
    assert_eq!(cycles_in(&balance), 50_000_000_000_000, "{balance}");

    // Deploy: the CMC's default subnet, the ledger's create_canister (the
    // default 2T from the identity's balance), install with the argument.
    let args = "(opt record { default_quota = opt record { capacity = 2000 : nat64; \
                refill_per_sec = 2 : nat64 } })";
    icp.run(&["deploy", "task_manager", env[0], env[1], "--args", args]);
    let balance = icp.run(&["cycles", "balance", env[0], env[1]]);
    let fee = 100_000_000;
    assert_eq!(
        cycles_in(&balance),
        48_000_000_000_000 - fee,
        "2T and the ledger's fee paid for the canister: {balance}"
    );
    let ids: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            icp.project
                .join(format!(".icp/data/mappings/{ENVIRONMENT}.ids.json")),
        )
        .expect("icp deploy records the canister id"),
    )
    .unwrap();
    let id = ids["task_manager"].as_str().expect("the task manager's id");
    assert!(candid::Principal::from_text(id).is_ok(), "{ids}");

    // `config` answers controllers only: the identity is the controller,
    // and the install argument is in force.
    let config = icp.run(&[
        "canister",
        "call",
        "task_manager",
        "config",
        "()",
        "--query",
        env[0],
        env[1],
    ]);
    assert!(config.contains("Ok"), "{config}");
    assert!(config.contains("capacity = 2_000"), "{config}");
    // An update through the served replica's synchronous call endpoint.
    let profile = icp.run(&[
        "canister",
        "call",
        "task_manager",
        "register",
        "()",
        env[0],
        env[1],
    ]);
    assert!(profile.contains("Ok"), "{profile}");
    assert!(profile.contains(&me), "{profile}");

    // A second deploy upgrades the same canister and pays nothing more.
    icp.run(&["deploy", "task_manager", env[0], env[1], "--args", args]);
    let again = icp.run(&["cycles", "balance", env[0], env[1]]);
    assert_eq!(cycles_in(&again), cycles_in(&balance), "{again}");
    let whoami = icp.run(&[
        "canister",
        "call",
        "task_manager",
        "whoami",
        "()",
        "--query",
        env[0],
        env[1],
    ]);
    assert!(
        whoami.contains(&me),
        "the user survived the upgrade: {whoami}"
    );

    // Top-up: the ledger's withdraw sends cycles from the balance to the
    // canister.
    icp.run(&[
        "canister",
        "top-up",
        "task_manager",
        "--amount",
        "1t",
        env[0],
        env[1],
    ]);
    let after = icp.run(&["cycles", "balance", env[0], env[1]]);
    assert_eq!(
        cycles_in(&after),
        cycles_in(&balance) - 1_000_000_000_000 - fee,
        "{after}"
    );

    server.shutdown();
    std::fs::remove_dir_all(&root).unwrap();
}
