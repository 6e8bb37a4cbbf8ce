//! Int8 weights in the canisters: a model quantised to q8 stages
//! (`engine::llama::quantize_model_dir`, what `icllm quantize` runs) and
//! served by the real worker gives, token for token, what the native engine
//! gives for the same directory, as the `f32` model does (both on the
//! engine's own forward pass, natively as in the worker). The tiny model is
//! quantised by the test into a temporary directory; SmolLM2's q8 stage is
//! in `smollm2.rs`.

use std::path::{Path, PathBuf};

use integration_tests::{principal, request, workspace, Env};
use task_manager_api::{InitArgs, JobStatus};

use crate::generation::{engine_output, sampled, MODEL};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("icllm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Uploads and deploys the model directory `dir` (one worker per stage),
/// generates `req` as a user and checks the job against the engine's
/// output for `dir`; the tokens.
fn serve_as_the_engine_does(dir: &Path, req: &task_manager_api::GenerateRequest) -> Vec<u32> {
    let dir = dir.to_str().expect("a UTF-8 path");
    let manifest = engine::ModelDir::read(dir).expect("the model").manifest;
    let expected = engine_output(dir, req);
    let mut env = Env::new(InitArgs::default());
    env.add_workers(manifest.stages.len());
    env.upload_model(dir);
    let pipelines = env.deploy(&req.model, 1);
    assert_eq!(pipelines[0].workers.len(), manifest.stages.len());
    let user = principal(1);
    env.register(user);
    let job = env.generate(user, req).unwrap();
    let (info, _) = env.wait_job(user, job);
    assert!(
        matches!(info.status, JobStatus::Completed { .. }),
        "{dir}: {info:?}"
    );
    assert_eq!(info.tokens, expected.tokens, "{dir}");
    assert_eq!(info.text, expected.text, "{dir}");
    let i = info.instructions.expect("instructions");
    eprintln!(
        "{dir}: {} tokens, {} instructions per generated token",
        info.tokens.len(),
        i.decode
            .checked_div(u64::from(i.decode_messages))
            .unwrap_or(0)
    );
    info.tokens
}

#[test]
fn tiny_llama_in_int8_and_f32_gives_the_engines_tokens_in_the_canisters() {
    let tmp = TempDir::new("tiny-q8");
    let models = workspace().join("models/tiny-llama");
    let req = request(MODEL, "Once upon a time", 24, sampled(), 5);

    let f32 = serve_as_the_engine_does(&models.join("stages-1"), &req);
    let mut int8 = Vec::new();
    for stages in [1, 2] {
        let dir = tmp.0.join(format!("q8-{stages}"));
        let done =
            engine::llama::quantize_model_dir(&models.join(format!("stages-{stages}")), &dir)
                .unwrap();
        assert!(done
            .manifest
            .stages
            .iter()
            .all(|s| s.format == engine::StageFormat::Q8));
        int8.push(serve_as_the_engine_does(&dir, &req));
    }
    // One stage or two, the int8 model makes the same tokens.
    assert_eq!(int8[0], int8[1]);
    let same = f32.iter().zip(&int8[0]).take_while(|(a, b)| a == b).count();
    eprintln!(
        "tiny-llama: int8 agrees with f32 on the first {same} of {} sampled tokens",
        f32.len()
    );
}
