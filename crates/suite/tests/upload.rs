//! The parallel, resumable uploader against an in-process task manager
//! registry (the [`Transport`] trait implemented over a map of chunks)
//! that fails calls transiently on a fixed schedule: before storing the
//! chunk (the request was lost) or after (the reply was lost).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use candid::{decode_one, encode_one, Principal};
use model_format::{ChunkMeta, Manifest};
use suite::upload::{upload_model, upload_worker_wasm};
use suite::{CallError, Progress, SuiteError, TaskManager, Transport, UploadOptions};
use task_manager_api::create_model::CreateModelArgs;
use task_manager_api::missing_chunks::{MissingChunksArgs, MissingChunksPage};
use task_manager_api::upload_chunk::{UploadChunkArgs, UploadProgress};
use task_manager_api::upload_worker_wasm::UploadWorkerWasmArgs;
use task_manager_api::{AdminError, ChunkRef, ModelFile, ModelInfo, WasmInfo};

type Key = (ModelFile, u32);

/// When the fake fails a call, whatever the order the threads' calls
/// arrive in: the first attempt at a chunk whose index is a multiple of
/// `before` fails before the chunk is stored (the request was lost); the
/// first attempt at one whose index is 3 more than a multiple of `after`
/// fails after (the reply was lost); with `always`, every call fails;
/// the `after_at`-th call (counted over all) fails after (0: never).
#[derive(Clone, Copy, Default)]
struct Faults {
    before: u32,
    after: u32,
    always: bool,
    after_at: u64,
}

impl Faults {
    fn fails_before(&self, index: u32, attempt: u32) -> bool {
        self.always || (attempt == 1 && self.before > 0 && index.is_multiple_of(self.before))
    }

    fn fails_after(&self, index: u32, attempt: u32, n: u64) -> bool {
        (attempt == 1 && self.after > 0 && index % self.after == 3) || n == self.after_at
    }
}

#[derive(Default)]
struct Registry {
    manifest: Option<Manifest>,
    chunks: BTreeMap<Key, Vec<u8>>,
    /// How often each chunk was stored (a chunk present is not stored
    /// again).
    stored: BTreeMap<Key, u32>,
    /// `upload_chunk` calls per chunk that reached the registry.
    calls: BTreeMap<Key, u32>,
    /// `upload_chunk` calls per chunk, failed ones included.
    attempts: BTreeMap<Key, u32>,
    worker_wasm: Vec<u8>,
}

struct FakeTaskManager {
    registry: Mutex<Registry>,
    faults: Faults,
    upload_calls: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// How long an upload call takes (so that calls overlap).
    latency: Duration,
}

impl FakeTaskManager {
    fn new(faults: Faults) -> FakeTaskManager {
        FakeTaskManager {
            registry: Mutex::new(Registry::default()),
            faults,
            upload_calls: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            latency: Duration::from_millis(3),
        }
    }

    fn counts(manifest: &Manifest) -> Vec<Key> {
        let mut keys: Vec<Key> = (0..manifest.tokenizer.size.div_ceil(manifest.chunk_size))
            .map(|i| (ModelFile::Tokenizer, i as u32))
            .collect();
        for s in &manifest.stages {
            keys.extend((0..s.chunks.len()).map(|i| (ModelFile::Stage(s.index as u32), i as u32)));
        }
        keys
    }

    fn info(r: &Registry) -> ModelInfo {
        let m = r.manifest.as_ref().expect("a model");
        ModelInfo {
            name: m.name.clone(),
            architecture: m.architecture.clone(),
            num_layers: m.config.num_layers as u32,
            stages: m.stages.len() as u32,
            total_bytes: 0,
            chunks_total: Self::counts(m).len() as u64,
            chunks_present: r.chunks.len() as u64,
            created_at_ns: 0,
        }
    }

    fn upload(&self, args: UploadChunkArgs) -> Result<Vec<u8>, CallError> {
        let n = self.upload_calls.fetch_add(1, Ordering::SeqCst) + 1;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.latency);
        let key = (args.chunk.file, args.chunk.index);
        let attempt = {
            let mut r = self.registry.lock().unwrap();
            let a = r.attempts.entry(key).or_default();
            *a += 1;
            *a
        };
        let result = (|| {
            if self.faults.fails_before(key.1, attempt) {
                return Err(CallError::transient(format!("call {n}: connection reset")));
            }
            let mut r = self.registry.lock().unwrap();
            *r.calls.entry(key).or_default() += 1;
            let m = r.manifest.clone().expect("create_model first");
            let reply: Result<UploadProgress, AdminError> = match args.chunk.file {
                ModelFile::Stage(s) => m
                    .verify_chunk(s as usize, args.chunk.index as usize, &args.bytes)
                    .map_err(|e| AdminError::ChunkMismatch {
                        reason: e.to_string(),
                    }),
                ModelFile::Tokenizer => Ok(()),
            }
            .map(|()| {
                if let std::collections::btree_map::Entry::Vacant(e) = r.chunks.entry(key) {
                    e.insert(args.bytes.to_vec());
                    *r.stored.entry(key).or_default() += 1;
                }
                let info = Self::info(&r);
                UploadProgress {
                    chunks_present: info.chunks_present,
                    chunks_total: info.chunks_total,
                }
            });
            if self.faults.fails_after(key.1, attempt, n) {
                return Err(CallError::transient(format!(
                    "call {n}: timed out awaiting the reply"
                )));
            }
            Ok(encode_one(reply).unwrap())
        })();
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

impl Transport for FakeTaskManager {
    fn update(&self, _: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
        match method {
            "create_model" => {
                let args: CreateModelArgs = decode_one(&arg).unwrap();
                let m = Manifest::from_json(&args.manifest_json).unwrap();
                let mut r = self.registry.lock().unwrap();
                if r.manifest.is_none() {
                    r.manifest = Some(m);
                }
                Ok(encode_one(Ok::<_, AdminError>(Self::info(&r))).unwrap())
            }
            "upload_chunk" => self.upload(decode_one(&arg).unwrap()),
            "upload_worker_wasm" => {
                let n = self.upload_calls.fetch_add(1, Ordering::SeqCst) + 1;
                if self.faults.always {
                    return Err(CallError::transient("connection reset"));
                }
                let args: UploadWorkerWasmArgs = decode_one(&arg).unwrap();
                let mut r = self.registry.lock().unwrap();
                let reply = if args.offset == 0 {
                    r.worker_wasm = args.bytes.to_vec();
                    Ok(())
                } else if args.offset == r.worker_wasm.len() as u64 {
                    r.worker_wasm.extend_from_slice(&args.bytes);
                    Ok(())
                } else {
                    Err(AdminError::InvalidRequest {
                        reason: format!("offset {} does not continue the module", args.offset),
                    })
                }
                .map(|()| WasmInfo {
                    size: r.worker_wasm.len() as u64,
                    sha256: sha256_hex(&r.worker_wasm),
                });
                if n == self.faults.after_at {
                    return Err(CallError::transient("reply lost"));
                }
                Ok(encode_one(reply).unwrap())
            }
            other => Err(CallError::rejected(format!("no update {other}"))),
        }
    }

    fn query(&self, _: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
        assert_eq!(method, "missing_chunks");
        let args: MissingChunksArgs = decode_one(&arg).unwrap();
        let r = self.registry.lock().unwrap();
        let m = r.manifest.as_ref().unwrap();
        let missing: Vec<ChunkRef> = Self::counts(m)
            .into_iter()
            .filter(|k| !r.chunks.contains_key(k))
            .map(|(file, index)| ChunkRef {
                model: args.model.clone(),
                file,
                index,
            })
            .collect();
        let page = MissingChunksPage {
            total: missing.len() as u64,
            // Small pages, so that paging is exercised.
            chunks: missing
                .into_iter()
                .skip(args.start as usize)
                .take(args.length.min(7) as usize)
                .collect(),
        };
        Ok(encode_one(Ok::<_, AdminError>(page)).unwrap())
    }

    fn caller(&self) -> Principal {
        Principal::anonymous()
    }

    fn pause(&self, _: Duration) {}
}

fn sha256_hex(bytes: &[u8]) -> String {
    model_format::sha256_hex(bytes)
}

/// tiny-llama re-cut into 4 KiB chunks: 4 tokenizer and 111 stage chunks.
fn small_chunk_model(name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/tiny-llama/stages-1");
    let dir = std::env::temp_dir().join(format!("suite-upload-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = Manifest::from_json(&std::fs::read(src.join("manifest.json")).unwrap()).unwrap();
    m.chunk_size = 4096;
    for stage in &mut m.stages {
        let bytes = std::fs::read(src.join(&stage.file)).unwrap();
        stage.chunks = bytes
            .chunks(4096)
            .enumerate()
            .map(|(i, c)| ChunkMeta {
                offset: i as u64 * 4096,
                size: c.len() as u64,
                sha256: sha256_hex(c),
            })
            .collect();
        std::fs::write(dir.join(&stage.file), bytes).unwrap();
    }
    std::fs::copy(src.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    std::fs::write(dir.join("manifest.json"), m.to_json().unwrap()).unwrap();
    dir
}

fn fast_retries(parallel: usize) -> UploadOptions {
    UploadOptions {
        parallel,
        attempts: 6,
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
    }
}

#[test]
fn parallel_upload_retries_transient_failures_and_stores_every_chunk_once() {
    let dir = small_chunk_model("retries");
    let fake = FakeTaskManager::new(Faults {
        before: 5,
        after: 7,
        ..Faults::default()
    });
    let tm = TaskManager::new(&fake, Principal::anonymous());
    let seen = Mutex::new(Vec::<Progress>::new());
    let report = upload_model(&tm, &dir, &fast_retries(8), &|p| {
        seen.lock().unwrap().push(p)
    })
    .unwrap();

    let r = fake.registry.lock().unwrap();
    let expected = FakeTaskManager::counts(r.manifest.as_ref().unwrap());
    assert_eq!(expected.len(), 115);
    // Every chunk is there, with the file's bytes, stored exactly once.
    let manifest = r.manifest.as_ref().unwrap();
    let stage = std::fs::read(dir.join("stage-0.onnx")).unwrap();
    for key in &expected {
        assert_eq!(r.stored.get(key), Some(&1), "{key:?}");
        if let (ModelFile::Stage(0), i) = key {
            let c = &manifest.stages[0].chunks[*i as usize];
            assert_eq!(
                r.chunks[key],
                stage[c.offset as usize..(c.offset + c.size) as usize]
            );
        }
    }
    let tokenizer: Vec<u8> = (0..4)
        .flat_map(|i| r.chunks[&(ModelFile::Tokenizer, i)].clone())
        .collect();
    assert_eq!(
        tokenizer,
        std::fs::read(dir.join("tokenizer.json")).unwrap()
    );
    // Failures happened and were retried: calls that reached the registry
    // twice are the lost replies.
    // Each failed attempt was retried once: requests lost at chunks 0, 5,
    // …; replies lost at chunks 3, 10, … (but where the request was lost
    // first). A lost reply means the chunk reached the registry twice.
    let lost_requests = expected.iter().filter(|k| k.1 % 5 == 0).count();
    let lost_replies: BTreeSet<Key> = expected
        .iter()
        .filter(|k| k.1 % 7 == 3 && k.1 % 5 != 0)
        .copied()
        .collect();
    assert_eq!((lost_requests, lost_replies.len()), (24, 14));
    assert_eq!(report.retries, 24 + 14, "{report:?}");
    let twice: BTreeSet<Key> = r
        .calls
        .iter()
        .filter(|(_, &n)| n == 2)
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(twice, lost_replies);
    assert!(r.calls.values().all(|&n| n <= 2));
    assert_eq!(report.uploaded, 115);
    assert_eq!(report.skipped, 0);
    assert_eq!(report.info.chunks_present, 115);
    // Several calls were in flight at once.
    assert!(fake.max_in_flight.load(Ordering::SeqCst) > 1);
    assert!(fake.max_in_flight.load(Ordering::SeqCst) <= 8);
    // Progress counted up to every chunk and every byte.
    let seen = seen.lock().unwrap();
    let last = seen.last().unwrap();
    assert_eq!(last.chunks_done, 115);
    assert_eq!(last.bytes_done, last.bytes_total);
    assert!(seen.windows(2).all(|w| w[0].chunks_done < w[1].chunks_done));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn upload_resumes_with_what_is_missing() {
    let dir = small_chunk_model("resume");
    let fake = FakeTaskManager::new(Faults::default());
    // A previous upload stored a third of the chunks (every third one).
    {
        let tm = TaskManager::new(&fake, Principal::anonymous());
        tm.create_model(std::fs::read(dir.join("manifest.json")).unwrap())
            .unwrap();
        for (k, (chunk, bytes)) in suite::model_chunks(&dir).unwrap().into_iter().enumerate() {
            if k % 3 == 0 {
                tm.upload_chunk(chunk, bytes).unwrap();
            }
        }
    }
    let before: BTreeSet<Key> = fake
        .registry
        .lock()
        .unwrap()
        .chunks
        .keys()
        .copied()
        .collect();
    assert_eq!(before.len(), 39);
    fake.registry.lock().unwrap().calls.clear();

    let tm = TaskManager::new(&fake, Principal::anonymous());
    let report = upload_model(&tm, &dir, &fast_retries(4), &|_| {}).unwrap();
    assert_eq!((report.skipped, report.uploaded), (39, 76));
    let r = fake.registry.lock().unwrap();
    assert_eq!(r.chunks.len(), 115);
    // Nothing already present was sent again.
    for key in r.calls.keys() {
        assert!(!before.contains(key), "{key:?} was present and sent again");
    }
    assert_eq!(r.calls.len(), 76);
    drop(r);

    // Once complete, another run sends nothing.
    let again = upload_model(&tm, &dir, &fast_retries(4), &|_| {}).unwrap();
    assert_eq!((again.skipped, again.uploaded, again.bytes), (115, 0, 0));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn upload_stops_at_the_first_permanent_failure_and_gives_up_after_its_attempts() {
    let dir = small_chunk_model("permanent");
    // A stage byte differs from the manifest: the registry refuses it.
    let stage = dir.join("stage-0.onnx");
    let mut bytes = std::fs::read(&stage).unwrap();
    bytes[5000] ^= 1;
    std::fs::write(&stage, bytes).unwrap();
    let fake = FakeTaskManager::new(Faults::default());
    let tm = TaskManager::new(&fake, Principal::anonymous());
    let err = upload_model(&tm, &dir, &fast_retries(4), &|_| {}).unwrap_err();
    match &err {
        SuiteError::Upload { chunk, source } => {
            assert_eq!(chunk, "Stage(0) 1");
            assert!(
                matches!(
                    **source,
                    SuiteError::Admin(AdminError::ChunkMismatch { .. })
                ),
                "{source}"
            );
        }
        other => panic!("{other}"),
    }
    // Refused once, not retried.
    assert_eq!(
        fake.registry.lock().unwrap().calls[&(ModelFile::Stage(0), 1)],
        1
    );

    // Every call fails transiently: each chunk is tried `attempts` times.
    let dir2 = small_chunk_model("down");
    let fake = FakeTaskManager::new(Faults {
        always: true,
        ..Faults::default()
    });
    let tm = TaskManager::new(&fake, Principal::anonymous());
    let err = upload_model(&tm, &dir2, &fast_retries(1), &|_| {}).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(fake.upload_calls.load(Ordering::SeqCst), 6);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(dir2).unwrap();
}

#[test]
fn worker_module_is_compressed_sent_in_pieces_and_checked() {
    // 2.5 MiB of wasm that gzip cannot shrink below one piece.
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    let mut x: u32 = 1;
    while module.len() < 5 << 19 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        module.extend_from_slice(&x.to_le_bytes());
    }
    let fake = FakeTaskManager::new(Faults::default());
    let tm = TaskManager::new(&fake, Principal::anonymous());
    let mut pieces = Vec::new();
    let info = upload_worker_wasm(&tm, &module, &fast_retries(1), &mut |sent, total| {
        pieces.push((sent, total))
    })
    .unwrap();
    let held = fake.registry.lock().unwrap().worker_wasm.clone();
    assert!(held.starts_with(&[0x1f, 0x8b, 0x08]), "not gzip");
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&held[..]), &mut plain).unwrap();
    assert_eq!(plain, module);
    assert_eq!(info.sha256, sha256_hex(&held));
    assert_eq!(pieces.len(), held.len().div_ceil(1 << 20));
    assert_eq!(pieces.last().unwrap().0, held.len() as u64);

    // A lost reply makes the retried piece out of place: the upload starts
    // over and still ends with the module.
    let fake = FakeTaskManager::new(Faults {
        after_at: 2,
        ..Faults::default()
    });
    let tm = TaskManager::new(&fake, Principal::anonymous());
    let info = upload_worker_wasm(&tm, &module, &fast_retries(1), &mut |_, _| {}).unwrap();
    assert_eq!(fake.registry.lock().unwrap().worker_wasm, held);
    assert_eq!(info.sha256, sha256_hex(&held));
}
