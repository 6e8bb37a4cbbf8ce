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
