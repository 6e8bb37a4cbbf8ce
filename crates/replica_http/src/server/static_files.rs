//! Static files next to the HTTP interface: a built web frontend (the chat
//! UI) served from a directory, on the same origin as `/api/`.
//!
//! On the IC, frontends come from asset canisters through HTTP gateways;
//! here `icllm replica serve --frontend DIR` answers every `GET` outside
//! `/api/` from `DIR`, so the page and the agent's calls share an origin.
//!
//! ```text
//! GET /                    → DIR/index.html
//! GET /assets/app-1a2b.js  → DIR/assets/app-1a2b.js   (text/javascript)
//! GET /docs/               → DIR/docs/index.html
//! GET /../secret, /.env    → 404: no path leaves DIR, no dot-file is served
//! ```
//!
//! A path is percent-decoded once, split at `/`, and refused when a segment
//! is empty (but the last), starts with `.` (so `..` and hidden files), or
//! holds a backslash or NUL; the file found is canonicalised and must still
//! lie under the canonical root (a symbolic link out of it is refused).
//! Files are read on every request: a `config.json` written after the
//! server started is served as it is now.

use std::path::{Path, PathBuf};

/// The largest file served (the chat UI's bundle is well under it).
pub const MAX_STATIC_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// A file found under the root.
#[derive(Debug, PartialEq, Eq)]
pub struct StaticFile {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// `Cache-Control`: documents and `config.json` are revalidated every
    /// time; Vite's hashed assets may be kept.
    pub cache_control: &'static str,
}

/// Why no file is served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StaticError {
    #[error("{path} is not a file of the frontend")]
    NotFound { path: String },
    #[error("{path} is refused: {reason}")]
    Refused { path: String, reason: &'static str },
    #[error("{path} is {size} bytes; at most {MAX_STATIC_FILE_BYTES} are served")]
    TooLarge { path: String, size: u64 },
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
}

impl StaticError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            StaticError::NotFound { .. } => 404,
            StaticError::Refused { .. } => 400,
            StaticError::TooLarge { .. } | StaticError::Unreadable { .. } => 500,
        }
    }
}

/// A directory served as a website.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    root: PathBuf,
}

impl StaticFiles {
    /// Serves `root`, which must be a directory.
    pub fn new(root: &Path) -> std::io::Result<StaticFiles> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(StaticFiles { root })
    }

    /// The canonical directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file for the request path `path` (without the query).
    pub fn get(&self, path: &str) -> Result<StaticFile, StaticError> {
        let relative = relative_path(path)?;
        let mut file = self.root.join(&relative);
        if file.is_dir() {
            file.push("index.html");
        }
        let not_found = || StaticError::NotFound {
            path: path.to_string(),
        };
        // Symbolic links are followed only while they stay under the root.
        let file = file.canonicalize().map_err(|_| not_found())?;
        if !file.starts_with(&self.root) {
            return Err(StaticError::Refused {
                path: path.to_string(),
                reason: "it leads out of the frontend's directory",
            });
        }
        let meta = std::fs::metadata(&file).map_err(|_| not_found())?;
        if !meta.is_file() {
            return Err(not_found());
        }
        if meta.len() > MAX_STATIC_FILE_BYTES {
            return Err(StaticError::TooLarge {
                path: path.to_string(),
                size: meta.len(),
            });
        }
        let body = std::fs::read(&file).map_err(|e| StaticError::Unreadable {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let under_assets = file
            .strip_prefix(&self.root)
            .is_ok_and(|p| p.starts_with("assets"));
        let cache_control = if under_assets {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        Ok(StaticFile {
            body,
            content_type: content_type(name),
            cache_control,
        })
    }
}

/// The checked relative path of a request path: percent-decoded, no
/// segment that is empty (but a trailing one), starts with `.`, or holds
/// `\` or NUL.
fn relative_path(path: &str) -> Result<PathBuf, StaticError> {
    let refused = |reason| StaticError::Refused {
        path: path.to_string(),
        reason,
    };
    let decoded = percent_decode(path).ok_or_else(|| refused("malformed percent-encoding"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| refused("the path is not UTF-8"))?;
    let Some(rest) = decoded.strip_prefix('/') else {
        return Err(refused("the path does not start with /"));
    };
    let mut relative = PathBuf::new();
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            if i == last {
                break; // a trailing slash: the directory's index
            }
            return Err(refused("an empty path segment"));
        }
        if segment.starts_with('.') {
            return Err(refused("a segment starting with a dot"));
        }
        if segment.contains(['\\', '\0']) {
            return Err(refused("a backslash or NUL in the path"));
        }
        relative.push(segment);
    }
    Ok(relative)
}

/// `%XX` decoded (once); `None` when a `%` is not followed by two hex
/// digits.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The `Content-Type` of a file, by its extension.
pub fn content_type(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("replica-http-static-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// `site/` with an index, an asset, a sub-directory with its index and
    /// a dot-file, next to `secret.txt` outside it.
    fn site(name: &str) -> (TempDir, StaticFiles) {
        let tmp = TempDir::new(name);
        let site = tmp.0.join("site");
        std::fs::create_dir_all(site.join("assets")).unwrap();
        std::fs::create_dir_all(site.join("docs")).unwrap();
        std::fs::write(site.join("index.html"), "<!doctype html>home").unwrap();
        std::fs::write(site.join("assets/app-1a2b.js"), "export {}").unwrap();
        std::fs::write(site.join("assets/engine.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(site.join("docs/index.html"), "docs").unwrap();
        std::fs::write(site.join("a b.txt"), "spaced").unwrap();
        std::fs::write(site.join(".env"), "KEY=1").unwrap();
        std::fs::write(tmp.0.join("secret.txt"), "secret").unwrap();
        let files = StaticFiles::new(&site).unwrap();
        (tmp, files)
    }

    #[test]
    fn serves_files_with_their_content_types() {
        let (_tmp, files) = site("types");
        let index = files.get("/").unwrap();
        assert_eq!(index.body, b"<!doctype html>home");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert_eq!(index.cache_control, "no-cache");
        assert_eq!(files.get("/index.html").unwrap(), index);
        let js = files.get("/assets/app-1a2b.js").unwrap();
        assert_eq!(js.body, b"export {}");
        assert_eq!(js.content_type, "text/javascript; charset=utf-8");
        assert_eq!(js.cache_control, "public, max-age=31536000, immutable");
        assert_eq!(
            files.get("/assets/engine.wasm").unwrap().content_type,
            "application/wasm"
        );
        assert_eq!(files.get("/docs/").unwrap().body, b"docs");
        assert_eq!(files.get("/docs").unwrap().body, b"docs");
        assert_eq!(files.get("/a%20b.txt").unwrap().body, b"spaced");
    }

    #[test]
    fn nothing_outside_the_root_or_hidden_is_served() {
        let (_tmp, files) = site("traversal");
        for path in [
            "/../secret.txt",
            "/assets/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2Fsecret.txt",
            "/assets/..%2f..%2fsecret.txt",
            "/.env",
            "/%2eenv",
            "//etc/passwd",
            "/..\\secret.txt",
            "/%5c..%5csecret.txt",
            "/index.html%00.js",
            "/%zz",
            "relative",
        ] {
            let err = files.get(path).expect_err(path);
            assert!(matches!(err, StaticError::Refused { .. }), "{path}: {err}");
            assert_eq!(err.status(), 400, "{path}");
        }
        let missing = files.get("/nope.js").unwrap_err();
        assert_eq!(missing.status(), 404);
        assert_eq!(
            missing.to_string(),
            "/nope.js is not a file of the frontend"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_out_of_the_root_is_refused() {
        let (tmp, files) = site("symlink");
        std::os::unix::fs::symlink(tmp.0.join("secret.txt"), files.root().join("link.txt"))
            .unwrap();
        let err = files.get("/link.txt").unwrap_err();
        assert!(matches!(err, StaticError::Refused { .. }), "{err}");
        std::os::unix::fs::symlink(
            files.root().join("index.html"),
            files.root().join("in.html"),
        )
        .unwrap();
        assert_eq!(files.get("/in.html").unwrap().body, b"<!doctype html>home");
    }

    #[test]
    fn a_root_that_is_not_a_directory_is_refused() {
        let (_tmp, files) = site("root");
        assert!(StaticFiles::new(&files.root().join("index.html")).is_err());
        assert!(StaticFiles::new(&files.root().join("missing")).is_err());
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("x.JSON"), "application/json");
        assert_eq!(content_type("x.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x.svg"), "image/svg+xml");
        assert_eq!(content_type("x.onnx"), "application/octet-stream");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
