//! `ServeConfig::frontend`: a built web frontend served on the same port
//! as the API, for `GET` requests outside `/api/`, as raw HTTP sees it
//! (no client normalises the paths).

use replica_http::server::{serve, ServeConfig};

use crate::common::http;

#[test]
fn the_frontend_is_served_next_to_the_api_and_nothing_outside_it() {
    let dir = std::env::temp_dir().join(format!("replica-http-frontend-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let site = dir.join("dist");
    std::fs::create_dir_all(site.join("assets")).unwrap();
    std::fs::write(
        site.join("index.html"),
        "<!doctype html><title>chat</title>",
    )
    .unwrap();
    std::fs::write(site.join("assets/index-3f2a.js"), "console.log(1)").unwrap();
    std::fs::write(dir.join("outside.txt"), "not served").unwrap();
    let server = serve(ServeConfig {
        frontend: Some(site.clone()),
        ..ServeConfig::default()
    })
    .expect("the server starts");
    let addr = server.addr();

    let (status, head, body) = http(addr, "GET", "/", &[], b"");
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, b"<!doctype html><title>chat</title>");
    assert!(
        head.contains("Content-Type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("Cache-Control: no-cache"), "{head}");

    let (status, head, body) = http(addr, "GET", "/assets/index-3f2a.js?v=1", &[], b"");
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, b"console.log(1)");
    assert!(head.contains("Content-Type: text/javascript"), "{head}");

    // Written after the start: served as it is now.
    std::fs::write(site.join("config.json"), r#"{"network":"local"}"#).unwrap();
    let (status, head, body) = http(addr, "GET", "/config.json", &[], b"");
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, br#"{"network":"local"}"#);
    assert!(head.contains("Content-Type: application/json"), "{head}");

    for path in [
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/assets/..%2F..%2Foutside.txt",
    ] {
        let (status, _, body) = http(addr, "GET", path, &[], b"");
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(!String::from_utf8_lossy(&body).contains("not served"));
    }
    let (status, _, body) = http(addr, "GET", "/missing.js", &[], b"");
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = http(addr, "POST", "/index.html", &[], b"x");
    assert_eq!(status, 405);

    // The API is still the API: CBOR status, and unknown API paths are 404.
    let (status, head, body) = http(addr, "GET", "/api/v2/status", &[], b"");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("application/cbor"), "{head}");
    assert!(!body.is_empty());
    let (status, _, _) = http(addr, "GET", "/api/v2/nothing", &[], b"");
    assert_eq!(status, 404);

    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_frontend_only_the_api_is_served() {
    let server = serve(ServeConfig::default()).expect("the server starts");
    let (status, _, body) = http(server.addr(), "GET", "/", &[], b"");
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    server.shutdown();
}

#[test]
fn a_missing_frontend_directory_is_refused_at_start() {
    let missing = std::env::temp_dir().join("replica-http-frontend-that-does-not-exist");
    let err = serve(ServeConfig {
        frontend: Some(missing.clone()),
        ..ServeConfig::default()
    })
    .err()
    .expect("refused");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}
