//! Uploading a model directory and the worker module to a task manager,
//! over any [`Transport`](crate::Transport).
//!
//! [`upload_model`] is resumable: it registers the manifest
//! (`create_model` returns the model as it is when the same manifest was
//! registered before), asks `missing_chunks` which chunks the registry
//! lacks and sends only those, with up to [`UploadOptions::parallel`]
//! `upload_chunk` calls in flight. A call that fails transiently (network,
//! timeout, overload) is retried with exponential backoff; the registry
//! stores a chunk once however often it arrives, so a retry whose first
//! attempt did land costs nothing but the bytes. Any other failure stops
//! the upload (what was stored stays: run it again to resume).
//!
//! [`upload_worker_wasm`] sends the module `spawn_workers` installs, in
//! pieces of 1 MiB, gzip-compressed when it is plain wasm.
//!
//! ```no_run
//! # fn main() -> Result<(), suite::SuiteError> {
//! # let transport: &dyn suite::Transport = todo!();
//! # let id = candid::Principal::anonymous();
//! let tm = suite::TaskManager::new(transport, id);
//! let options = suite::UploadOptions { parallel: 8, ..Default::default() };
//! suite::upload::upload_model(&tm, "models/tiny-llama/stages-1".as_ref(), &options, &|p| {
//!     eprintln!("{}/{} chunks", p.chunks_done, p.chunks_total)
//! })?;
//! # Ok(()) }
//! ```

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use task_manager_api::{AdminError, ModelInfo, WasmInfo};

use crate::task_manager::TaskManager;
use crate::{model_chunks, read_model_file, Progress, Result, SuiteError};

/// How an upload proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOptions {
    /// `upload_chunk` calls in flight at once (at least 1).
    pub parallel: usize,
    /// Attempts per call, the first included, before a transient failure
    /// stops the upload (at least 1).
    pub attempts: u32,
    /// The wait before the first retry; it doubles with each retry.
    pub backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for UploadOptions {
    fn default() -> UploadOptions {
        UploadOptions {
            parallel: 8,
            attempts: 8,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl UploadOptions {
    /// The wait after the `attempt`-th failure (1-based).
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Runs `call` until it succeeds, fails other than transiently, or has
/// been tried `options.attempts` times; returns its result and the number
/// of retries made.
pub fn with_retries<T>(
    options: &UploadOptions,
    mut call: impl FnMut() -> Result<T>,
) -> (Result<T>, u32) {
    let attempts = options.attempts.max(1);
    let mut attempt = 1;
    loop {
        match call() {
            Err(e) if e.is_transient() && attempt < attempts => {
                std::thread::sleep(options.backoff_after(attempt));
                attempt += 1;
            }
            other => return (other, attempt - 1),
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReport {
    /// The model as the registry holds it afterwards.
    pub info: ModelInfo,
    /// Chunks the registry held before (skipped).
    pub skipped: u64,
    /// Chunks sent (each counted once, retries aside).
    pub uploaded: u64,
    /// Bytes of the chunks sent.
    pub bytes: u64,
    /// Calls that failed transiently and were made again.
    pub retries: u64,
}

/// Registers the model of `dir` and uploads every chunk the registry
/// lacks, `options.parallel` calls at a time, calling `progress` after
/// each chunk (from the uploading threads).
pub fn upload_model(
    tm: &TaskManager<'_>,
    dir: &Path,
    options: &UploadOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<UploadReport> {
    let manifest_json = read_model_file(dir, "manifest.json")?;
    let (info, retries) = with_retries(options, || tm.create_model(manifest_json.clone()));
    let info = info?;
    let mut total_retries = u64::from(retries);
    let (missing, retries) = with_retries(options, || tm.missing_chunks(&info.name));
    let missing = missing?;
    total_retries += u64::from(retries);
    let chunks: Vec<_> = model_chunks(dir)?
        .into_iter()
        .filter(|(c, _)| missing.contains(c))
        .collect();
    if chunks.len() != missing.len() {
        return Err(SuiteError::Model(format!(
            "the registry lacks {} chunk(s) of {}, of which {} are in {}: is it the same model?",
            missing.len(),
            info.name,
            chunks.len(),
            dir.display()
        )));
    }
    let skipped = info.chunks_total - missing.len() as u64;
    let state = Mutex::new(Progress {
        chunks_done: skipped,
        chunks_total: info.chunks_total,
        bytes_done: 0,
        bytes_total: chunks.iter().map(|(_, b)| b.len() as u64).sum(),
    });
    progress(*state.lock().unwrap_or_else(|p| p.into_inner()));

    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let retries = AtomicUsize::new(0);
    let first_error: Mutex<Option<SuiteError>> = Mutex::new(None);
    let threads = options.parallel.clamp(1, chunks.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((chunk, bytes)) = chunks.get(i) else {
                        return;
                    };
                    let (result, n) =
                        with_retries(options, || tm.upload_chunk(chunk.clone(), bytes.clone()));
                    retries.fetch_add(n as usize, Ordering::Relaxed);
                    match result {
                        Ok(_) => {
                            let mut p = state.lock().unwrap_or_else(|p| p.into_inner());
                            p.chunks_done += 1;
                            p.bytes_done += bytes.len() as u64;
                            progress(*p);
                        }
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                            if first.is_none() {
                                *first = Some(SuiteError::Upload {
                                    chunk: format!("{:?} {}", chunk.file, chunk.index),
                                    source: Box::new(e),
                                });
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    total_retries += retries.into_inner() as u64;
    let (left, retries) = with_retries(options, || tm.missing_chunks(&info.name));
    let left = left?;
    total_retries += u64::from(retries);
    if !left.is_empty() {
        return Err(SuiteError::Model(format!(
            "every chunk of {} was sent, yet the registry still lacks {} (the first: {:?})",
            info.name,
            left.len(),
            left[0]
        )));
    }
    let p = state.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(UploadReport {
        info: ModelInfo {
            chunks_present: info.chunks_total,
            ..info
        },
        skipped,
        uploaded: chunks.len() as u64,
        bytes: p.bytes_done,
        retries: total_retries,
    })
}

/// The most bytes one `upload_worker_wasm` piece carries.
pub const WORKER_WASM_PIECE: usize = 1024 * 1024;

/// `module` as it is sent: gzip-compressed when it is plain wasm (the IC
/// installs compressed modules; fewer pieces to send and to install).
pub fn compress_module(module: &[u8]) -> Result<Vec<u8>> {
    if !module.starts_with(b"\0asm") {
        return Ok(module.to_vec());
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(module)
        .and_then(|()| gz.finish())
        .map_err(|source| SuiteError::Io {
            what: "compressing the worker module".into(),
            source,
        })
}

/// Uploads the worker module (compressed when plain) in pieces of 1 MiB,
/// each retried on transient failures, and checks that the task manager
/// holds exactly its bytes. Calls `progress(sent, total)` after each piece.
///
/// A piece whose first attempt landed although its answer was lost is
/// refused when sent again (it no longer continues the module); the
/// upload then starts over once from offset 0.
pub fn upload_worker_wasm(
    tm: &TaskManager<'_>,
    module: &[u8],
    options: &UploadOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<WasmInfo> {
    let bytes = compress_module(module)?;
    if bytes.is_empty() {
        return Err(SuiteError::Model("the worker module is empty".into()));
    }
    match send_pieces(tm, &bytes, options, progress) {
        Err((SuiteError::Admin(AdminError::InvalidRequest { .. }), true)) => {
            send_pieces(tm, &bytes, options, progress).map_err(|(e, _)| e)
        }
        other => other.map_err(|(e, _)| e),
    }
}

/// Sends every piece from offset 0; an error comes with whether a call
/// was retried before it.
fn send_pieces(
    tm: &TaskManager<'_>,
    bytes: &[u8],
    options: &UploadOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> std::result::Result<WasmInfo, (SuiteError, bool)> {
    let total = bytes.len() as u64;
    let mut retried = false;
    let mut offset = 0u64;
    let mut info = None;
    for piece in bytes.chunks(WORKER_WASM_PIECE) {
        let (result, n) = with_retries(options, || {
            tm.upload_worker_wasm(offset, ByteBuf::from(piece))
        });
        retried |= n > 0;
        info = Some(result.map_err(|e| (e, retried))?);
        offset += piece.len() as u64;
        progress(offset, total);
    }
    let want = hex_sha256(bytes);
    match info {
        Some(i) if i.sha256 == want && i.size == total => Ok(i),
        Some(i) => Err((
            SuiteError::Model(format!(
                "the task manager holds a worker module of {} bytes with SHA-256 {}; \
                 {total} bytes with SHA-256 {want} were sent",
                i.size, i.sha256
            )),
            retried,
        )),
        None => Err((
            SuiteError::Model("the worker module is empty".into()),
            retried,
        )),
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
