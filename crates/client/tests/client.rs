//! The client's parsers against what the official tools write: PEM
//! identities exported by icp-cli 1.5.0 and in dfx's formats, with the
//! principals those tools print (`tests/identities/`), and canister ids
//! from icp-cli and dfx state files laid out as those tools lay them out.

use std::path::{Path, PathBuf};

use candid::Principal;
use client::canister_ids::{find_project_root, parse_flag, CanisterIdError, Lookup};
use client::identity::{from_pem, from_pem_file, IdentityError, KeyKind};
use ic_agent::Identity;
use k256::pkcs8::{EncodePrivateKey, LineEnding};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/identities")
}

fn expected_principal(name: &str) -> Principal {
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.principal"))).unwrap();
    Principal::from_text(text.trim()).unwrap()
}

#[test]
fn tool_pems_give_the_principals_the_tools_print() {
    let cases = [
        ("icp-secp256k1", KeyKind::Secp256k1),
        ("icp-ed25519", KeyKind::Ed25519),
        ("icp-p256", KeyKind::P256),
        ("openssl-ed25519-pkcs8v1", KeyKind::Ed25519),
        ("openssl-secp256k1-sec1-params", KeyKind::Secp256k1),
        ("openssl-p256-sec1", KeyKind::P256),
        ("dfx-secp256k1-sec1-crlf", KeyKind::Secp256k1),
    ];
    for (name, kind) in cases {
        let id = from_pem_file(&fixtures().join(format!("{name}.pem"))).unwrap();
        assert_eq!(id.kind, kind, "{name}");
        assert_eq!(id.principal, expected_principal(name), "{name}");
        assert_eq!(id.identity.sender().unwrap(), id.principal, "{name}");
        // A self-authenticating principal: 28 bytes of SHA-224 and 0x02.
        assert_eq!(id.principal.as_slice().len(), 29);
        assert_eq!(id.principal.as_slice()[28], 2);
        // The identity signs with the key: the public key it presents is
        // the one the principal was derived from.
        let der = id.identity.public_key().unwrap();
        assert_eq!(Principal::self_authenticating(&der), id.principal, "{name}");
    }
}

#[test]
fn keys_made_by_the_crates_and_written_as_dfx_and_icp_do_round_trip() {
    let mut rng = rand::thread_rng();
    // dfx `identity new`: secp256k1, SEC1, CRLF.
    let k1 = k256::SecretKey::random(&mut rng);
    let dfx_pem = k1.to_sec1_pem(LineEnding::CRLF).unwrap();
    let icp_pem = k1.to_pkcs8_pem(LineEnding::LF).unwrap();
    let a = from_pem(&dfx_pem).unwrap();
    let b = from_pem(&icp_pem).unwrap();
    assert_eq!(a.kind, KeyKind::Secp256k1);
    assert_eq!(a.principal, b.principal);
    let spki = k256::pkcs8::EncodePublicKey::to_public_key_der(&k1.public_key()).unwrap();
    assert_eq!(a.principal, Principal::self_authenticating(spki.as_bytes()));
    // P-256 in both encodings.
    let p = p256::SecretKey::random(&mut rng);
    let sec1 = from_pem(&p.to_sec1_pem(LineEnding::LF).unwrap()).unwrap();
    let pkcs8 = from_pem(&p.to_pkcs8_pem(LineEnding::LF).unwrap()).unwrap();
    assert_eq!((sec1.kind, pkcs8.kind), (KeyKind::P256, KeyKind::P256));
    assert_eq!(sec1.principal, pkcs8.principal);
    let spki = p256::pkcs8::EncodePublicKey::to_public_key_der(&p.public_key()).unwrap();
    assert_eq!(
        sec1.principal,
        Principal::self_authenticating(spki.as_bytes())
    );
    // Different keys, different principals.
    assert_ne!(a.principal, sec1.principal);
}

#[test]
fn unusable_pems_are_refused_with_the_reason() {
    let read = |name: &str| std::fs::read_to_string(fixtures().join(name)).unwrap();
    assert!(matches!(
        from_pem(&read("openssl-p256-encrypted.pem")),
        Err(IdentityError::Encrypted)
    ));
    let public_only = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
    match from_pem(public_only) {
        Err(IdentityError::NoPrivateKey { found }) => assert_eq!(found, ["PUBLIC KEY"]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        from_pem("not a pem"),
        Err(IdentityError::NoPrivateKey { .. }) | Err(IdentityError::Pem(_))
    ));
    // An EC key on a curve the IC does not take (secp384r1).
    let p384 = read("openssl-p384-sec1.pem");
    match from_pem(&p384) {
        Err(IdentityError::UnsupportedCurve { oid }) => assert_eq!(oid, "1.3.132.0.34"),
        other => panic!("{other:?}"),
    }
    // A truncated key.
    let good = read("icp-p256.pem");
    let body: Vec<&str> = good.lines().collect();
    let cut = format!(
        "{}\n{}\n{}\n",
        body[0],
        &body[1][..40],
        body[body.len() - 1]
    );
    assert!(matches!(
        from_pem(&cut),
        Err(IdentityError::Malformed { .. }) | Err(IdentityError::Pem(_))
    ));
    assert!(matches!(
        from_pem_file(&fixtures().join("absent.pem")),
        Err(IdentityError::Read { .. })
    ));
}

/// A project directory with icp-cli and dfx state, as those tools write it.
fn project(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("client-ids-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let write = |path: &str, text: &str| {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("icp.yaml", "canisters: []\n");
    // icp-cli 1.5.0 (`icp canister link`, `icp deploy`): the local
    // environment (managed network) in cache/, connected ones in data/.
    write(
        ".icp/cache/mappings/local.ids.json",
        "{\n  \"task_manager\": \"bkyz2-fmaaa-aaaaa-qaaaq-cai\"\n}",
    );
    write(
        ".icp/data/mappings/staging.ids.json",
        "{\n  \"task_manager\": \"be2us-64aaa-aaaaa-qaabq-cai\"\n}",
    );
    // dfx: per network under .dfx/, persistent networks at the root.
    write(
        ".dfx/playground/canister_ids.json",
        r#"{ "task_manager": { "playground": "br5f7-7uaaa-aaaaa-qaaca-cai" } }"#,
    );
    write(
        "canister_ids.json",
        r#"{ "task_manager": { "ic": "rrkah-fqaaa-aaaaa-aaaaq-cai" }, "example_caller": { "ic": "ryjl3-tyaaa-aaaaa-aaaba-cai" } }"#,
    );
    std::fs::create_dir_all(root.join("crates/deep")).unwrap();
    root
}

fn lookup(root: &Path, envs: &[&str]) -> Lookup {
    Lookup {
        explicit: Default::default(),
        project: find_project_root(&root.join("crates/deep")),
        environments: envs.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn canister_ids_come_from_flags_icp_and_dfx_state() {
    let root = project("resolve");
    assert_eq!(
        find_project_root(&root.join("crates/deep")),
        Some(root.clone())
    );
    let id = |t: &str| Principal::from_text(t).unwrap();
    assert_eq!(
        lookup(&root, &["local"]).resolve("task_manager").unwrap(),
        id("bkyz2-fmaaa-aaaaa-qaaaq-cai")
    );
    assert_eq!(
        lookup(&root, &["staging"]).resolve("task_manager").unwrap(),
        id("be2us-64aaa-aaaaa-qaabq-cai")
    );
    assert_eq!(
        lookup(&root, &["playground"])
            .resolve("task_manager")
            .unwrap(),
        id("br5f7-7uaaa-aaaaa-qaaca-cai")
    );
    assert_eq!(
        lookup(&root, &["ic"]).resolve("example_caller").unwrap(),
        id("ryjl3-tyaaa-aaaaa-aaaba-cai")
    );
    // icp-cli's state wins over dfx's for the same environment.
    std::fs::write(
        root.join(".icp/data/mappings/ic.ids.json"),
        r#"{"task_manager": "qoctq-giaaa-aaaaa-aaaea-cai"}"#,
    )
    .unwrap();
    assert_eq!(
        lookup(&root, &["ic"]).resolve("task_manager").unwrap(),
        id("qoctq-giaaa-aaaaa-aaaea-cai")
    );
    // The flag wins over every file.
    let mut l = lookup(&root, &["local"]);
    let (name, flag) = parse_flag("task_manager=ryjl3-tyaaa-aaaaa-aaaba-cai").unwrap();
    l.explicit.insert(name, flag);
    assert_eq!(l.resolve("task_manager").unwrap(), flag);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_missing_id_names_what_was_tried() {
    let root = project("missing");
    let err = lookup(&root, &["staging"]).resolve("worker").unwrap_err();
    let text = err.to_string();
    match &err {
        CanisterIdError::NotFound { name, tried } => {
            assert_eq!(name, "worker");
            assert_eq!(tried.len(), 4, "{tried:?}");
        }
        other => panic!("{other}"),
    }
    for part in [
        ".icp/cache/mappings/staging.ids.json",
        ".icp/data/mappings/staging.ids.json",
        ".dfx/staging/canister_ids.json",
        "canister_ids.json [worker][staging]",
        "--canister worker=<id>",
    ] {
        assert!(text.contains(part), "{part} missing from: {text}");
    }
    // No project, no environment: only the flag was tried.
    let bare = Lookup::default()
        .resolve("task_manager")
        .unwrap_err()
        .to_string();
    assert!(bare.contains("no state files"), "{bare}");
    // A broken file is an error of its own, not "not found".
    std::fs::write(
        root.join(".icp/data/mappings/staging.ids.json"),
        "{ not json",
    )
    .unwrap();
    let broken = lookup(&root, &["staging"])
        .resolve("task_manager")
        .unwrap_err();
    assert!(
        matches!(broken, CanisterIdError::BadFile { .. }),
        "{broken}"
    );
    std::fs::write(
        root.join(".icp/data/mappings/staging.ids.json"),
        r#"{"task_manager": "not-a-principal"}"#,
    )
    .unwrap();
    let bad = lookup(&root, &["staging"])
        .resolve("task_manager")
        .unwrap_err()
        .to_string();
    assert!(bad.contains("not-a-principal"), "{bad}");
    for flag in [
        "task_manager",
        "=bkyz2-fmaaa-aaaaa-qaaaq-cai",
        "task_manager=xyz",
    ] {
        assert!(parse_flag(flag).is_err(), "{flag}");
    }
    std::fs::remove_dir_all(root).unwrap();
}

/// The whole path a user takes, over HTTP with ic-agent against the served
/// local replica: the task manager installed through the management
/// canister, the worker module uploaded and a worker spawned, the tiny
/// model uploaded in parallel, deployed, and a chat streamed by polling
/// `job` with `from_token`.
#[test]
fn upload_deploy_and_chat_through_the_served_replica() {
    use client::{AgentTransport, Network};
    use std::time::Duration;
    use suite::{TaskManager, Transport, UploadOptions};
    use task_manager_api::{
        ChatMessage, ConfigUpdate, GenerateRequest, InitArgs, JobStatus, Prompt, Quota, Role,
        Sampling,
    };

    let task_manager_wasm = suite::shipped::wasm("task_manager");
    let worker_wasm = suite::shipped::wasm("worker");
    let server = replica_http::server::serve(replica_http::server::ServeConfig::default())
        .expect("the server starts");
    let network: Network = server.url().parse().unwrap();
    let admin = from_pem_file(&fixtures().join("icp-ed25519.pem")).unwrap();
    let t = AgentTransport::connect(&network, Some(&admin)).unwrap();
    assert_eq!(t.caller(), admin.principal);

    // The task manager, created with cycles for its workers and installed
    // through the management canister.
    let quota = Quota {
        capacity: 100_000,
        refill_per_sec: 100,
    };
    let init = InitArgs {
        default_quota: Some(quota),
        config: Some(ConfigUpdate {
            new_user_tokens: Some(quota.capacity),
            ..Default::default()
        }),
    };
    let canister_id = t
        .create_and_install(
            &task_manager_wasm,
            candid::encode_one(Some(init)).unwrap(),
            100_000_000_000_000,
        )
        .expect("the task manager installs");
    let tm = TaskManager::new(&t, canister_id);
    let wasm_info = suite::upload::upload_worker_wasm(
        &tm,
        &worker_wasm,
        &UploadOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(wasm_info.size > 1 << 20, "{wasm_info:?}");
    let workers = tm.spawn_workers(1, 2_000_000_000_000).unwrap();
    assert_eq!(workers.len(), 1);

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/tiny-llama/stages-1");
    let options = UploadOptions {
        parallel: 4,
        ..Default::default()
    };
    let report = suite::upload::upload_model(&tm, &dir, &options, &|_| {}).unwrap();
    assert_eq!(report.uploaded, report.info.chunks_total);
    assert_eq!(report.info.chunks_present, report.info.chunks_total);
    let again = suite::upload::upload_model(&tm, &dir, &options, &|_| {}).unwrap();
    assert_eq!((again.uploaded, again.skipped), (0, report.uploaded));

    tm.deploy_model("tiny-llama", 1).unwrap();
    let pipelines = tm
        .wait_deployed(
            "tiny-llama",
            Duration::from_millis(200),
            Duration::from_secs(600),
        )
        .unwrap();
    assert_eq!(pipelines[0].workers, [workers[0].worker]);

    // A user (another identity) registers and chats.
    let user = from_pem_file(&fixtures().join("icp-secp256k1.pem")).unwrap();
    let ut = AgentTransport::connect(&network, Some(&user)).unwrap();
    let utm = TaskManager::new(&ut, canister_id);
    assert_eq!(utm.register().unwrap().principal, user.principal);
    let request = GenerateRequest {
        model: "tiny-llama".into(),
        prompt: Prompt::Chat(vec![ChatMessage {
            role: Role::User,
            content: "What is the capital of France?".into(),
        }]),
        max_new_tokens: 12,
        sampling: Sampling::default(),
        stop_sequences: vec![],
        seed: Some(serde_bytes::ByteBuf::from(vec![0; 32])),
    };
    let job = utm.generate(&request).unwrap();
    let mut pieces = Vec::new();
    let info = utm
        .stream_job(job, Duration::from_millis(50), &mut |text| {
            pieces.push(text.to_string())
        })
        .unwrap();
    assert!(
        matches!(info.status, JobStatus::Completed { .. }),
        "{:?}",
        info.status
    );
    assert!(info.generated_tokens > 0);
    assert!(!info.text.is_empty());
    // The pieces polled with `from_token` make up the whole text, and the
    // job as stored agrees.
    assert_eq!(pieces.concat(), info.text);
    let stored = utm.job(job, None).unwrap();
    assert_eq!(stored.text, info.text);
    assert_eq!(stored.tokens, info.tokens);
    assert_eq!(info.tokens.len(), info.generated_tokens as usize);
    assert_eq!(stored.owner, user.principal);
    let mine = utm.my_jobs(None, 10).unwrap();
    assert_eq!(mine.iter().map(|j| j.id).collect::<Vec<_>>(), [job]);
    // The admin's upload rights are not the user's.
    let refused = suite::upload::upload_model(&utm, &dir, &options, &|_| {}).unwrap_err();
    assert!(!refused.is_transient(), "{refused}");

    // The official JavaScript agent, as a browser or a Node service uses
    // it: its own identity registers, generates and polls `job`, with the
    // root key fetched and query signatures verified; greedy, so the same
    // answer.
    let answer = node_chat(
        &server.url(),
        canister_id,
        "tiny-llama",
        "What is the capital of France?",
        request.max_new_tokens,
    );
    assert_eq!(answer, info.text, "@icp-sdk/core got another answer");
    server.shutdown();
}

/// `clients/node/chat.mjs` (`@icp-sdk/core`, bindings generated from the
/// checked-in .did): its answer, streamed by polling `job`.
fn node_chat(url: &str, canister: Principal, model: &str, question: &str, tokens: u32) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/node");
    assert!(
        dir.join("node_modules/@icp-sdk/core").is_dir() && dir.join("bindings").is_dir(),
        "the JavaScript client is not set up: run `npm ci && npm run bindings` in {} \
         (scripts/test.sh does)",
        dir.display()
    );
    let out = std::process::Command::new("node")
        .arg("chat.mjs")
        .args([
            url,
            &canister.to_text(),
            model,
            question,
            &tokens.to_string(),
        ])
        .current_dir(&dir)
        .output()
        .expect("running node (Node.js 20 or later)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node chat.mjs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ANSWER "))
        .unwrap_or_else(|| panic!("no ANSWER line in:\n{stdout}"));
    serde_json::from_str(line).expect("the answer as a JSON string")
}
