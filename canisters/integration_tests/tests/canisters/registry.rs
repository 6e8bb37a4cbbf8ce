//! The model registry through the real task_manager wasm: upload the
//! bundled tiny model chunk by chunk, resume, read it back, refuse bad
//! chunks, keep it across an upgrade.

use integration_tests::{controller, model_chunks, model_file, principal, Env};
use serde_bytes::ByteBuf;
use task_manager_api::create_model::CreateModelArgs;
use task_manager_api::missing_chunks::{MissingChunksArgs, MissingChunksPage};
use task_manager_api::models::ModelsPage;
use task_manager_api::upload_chunk::{UploadChunkArgs, UploadProgress};
use task_manager_api::{AdminError, ChunkRef, InitArgs, ModelFile, ModelInfo, PageArgs, UserError};

const MODEL_DIR: &str = "tiny-llama/stages-2";

fn create(env: &mut Env, manifest: Vec<u8>) -> Result<ModelInfo, AdminError> {
    let tm = env.task_manager;
    env.ic
        .update_one(
            tm,
            controller(),
            "create_model",
            &CreateModelArgs {
                manifest_json: ByteBuf::from(manifest),
            },
        )
        .unwrap()
}

fn upload(env: &mut Env, chunk: &ChunkRef, bytes: &ByteBuf) -> Result<UploadProgress, AdminError> {
    let tm = env.task_manager;
    env.ic
        .update_one(
            tm,
            controller(),
            "upload_chunk",
            &UploadChunkArgs {
                chunk: chunk.clone(),
                bytes: bytes.clone(),
            },
        )
        .unwrap()
}

fn missing(env: &mut Env) -> Vec<ChunkRef> {
    let tm = env.task_manager;
    // Pages of 3, to page through.
    let mut all = Vec::new();
    loop {
        let args = MissingChunksArgs {
            model: "tiny-llama".into(),
            start: all.len() as u64,
            length: 3,
        };
        let r: Result<MissingChunksPage, AdminError> = env
            .ic
            .query_one(tm, controller(), "missing_chunks", &args)
            .unwrap();
        let page = r.unwrap();
        let n = page.chunks.len();
        all.extend(page.chunks);
        if n < 3 {
            assert_eq!(all.len() as u64, page.total);
            return all;
        }
    }
}

fn models(env: &mut Env) -> Vec<ModelInfo> {
    let tm = env.task_manager;
    let r: Result<ModelsPage, UserError> = env
        .ic
        .query_one(tm, principal(9), "models", &PageArgs::FIRST)
        .unwrap();
    r.unwrap().models
}

#[test]
fn upload_resume_read_back_and_survive_an_upgrade() {
    let mut env = Env::new(InitArgs::default());
    let tm = env.task_manager;
    let info = create(&mut env, model_file(MODEL_DIR, "manifest.json")).unwrap();
    assert_eq!((info.name.as_str(), info.stages), ("tiny-llama", 2));
    let chunks = model_chunks(MODEL_DIR);
    assert_eq!(info.chunks_total, chunks.len() as u64);

    // Half, then an upgrade, then the rest from missing_chunks.
    let half = chunks.len() / 2;
    for (chunk, bytes) in &chunks[..half] {
        upload(&mut env, chunk, bytes).unwrap();
    }
    let wasm = integration_tests::wasm("task_manager");
    let arg = candid::encode_one(None::<InitArgs>).unwrap();
    env.upgrade(tm, wasm, arg).unwrap();
    let todo = missing(&mut env);
    assert_eq!(todo.len(), chunks.len() - half);
    for chunk in todo {
        let (_, bytes) = chunks.iter().find(|(c, _)| *c == chunk).unwrap();
        upload(&mut env, &chunk, bytes).unwrap();
    }
    assert!(missing(&mut env).is_empty());
    assert!(models(&mut env)[0].complete());

    // Anyone reads the manifest and the chunks back, byte for byte.
    let manifest: Result<ByteBuf, UserError> = env
        .ic
        .query_one(tm, principal(9), "model_manifest", &"tiny-llama")
        .unwrap();
    assert_eq!(
        manifest.unwrap().into_vec(),
        model_file(MODEL_DIR, "manifest.json")
    );
    let mut stage0 = Vec::new();
    for (chunk, bytes) in &chunks {
        let got: Result<ByteBuf, UserError> = env
            .ic
            .query_one(tm, principal(9), "model_chunk", chunk)
            .unwrap();
        let got = got.unwrap();
        assert_eq!(&got, bytes);
        if chunk.file == ModelFile::Stage(0) {
            stage0.extend_from_slice(&got);
        }
    }
    assert_eq!(stage0, model_file(MODEL_DIR, "stage-0.onnx"));
}

#[test]
fn bad_uploads_are_refused_with_typed_errors_and_no_state_change() {
    let mut env = Env::new(InitArgs::default());
    let tm = env.task_manager;
    let manifest = model_file(MODEL_DIR, "manifest.json");
    assert!(matches!(
        create(&mut env, manifest[..manifest.len() / 2].to_vec()),
        Err(AdminError::InvalidManifest { .. })
    ));
    assert!(models(&mut env).is_empty());
    create(&mut env, manifest).unwrap();
    let chunks = model_chunks(MODEL_DIR);
    let (chunk, bytes) = chunks
        .iter()
        .find(|(c, _)| c.file == ModelFile::Stage(1))
        .unwrap();

    let mut corrupted = bytes.clone().into_vec();
    corrupted[0] ^= 0xff;
    let refused = upload(&mut env, chunk, &ByteBuf::from(corrupted));
    assert!(
        matches!(refused, Err(AdminError::ChunkMismatch { .. })),
        "{refused:?}"
    );
    let beyond = ChunkRef {
        index: 999,
        ..chunk.clone()
    };
    assert!(matches!(
        upload(&mut env, &beyond, bytes),
        Err(AdminError::UnknownChunk { index: 999, .. })
    ));
    let unknown = ChunkRef {
        model: "no-such-model".into(),
        ..chunk.clone()
    };
    assert_eq!(
        upload(&mut env, &unknown, bytes),
        Err(AdminError::UnknownModel {
            model: "no-such-model".into()
        })
    );
    assert_eq!(
        missing(&mut env).len(),
        chunks.len(),
        "a refused chunk was stored"
    );

    // Not a controller: refused before the method runs.
    let by_user = env.ic.update_one::<_, Result<UploadProgress, AdminError>>(
        tm,
        principal(1),
        "upload_chunk",
        &UploadChunkArgs {
            chunk: chunk.clone(),
            bytes: bytes.clone(),
        },
    );
    assert!(by_user.is_err(), "{by_user:?}");
    assert_eq!(missing(&mut env).len(), chunks.len());
}
