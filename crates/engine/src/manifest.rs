//! `manifest.json`: the model format, from the `model_format` crate (which
//! has no inference dependencies), plus [`ModelDir`], which reads a whole
//! model directory on native targets and verifies every file.

pub use model_format::*;

#[cfg(not(target_arch = "wasm32"))]
pub use model_dir::ModelDir;

#[cfg(not(target_arch = "wasm32"))]
mod model_dir {
    use std::path::{Path, PathBuf};

    use super::Manifest;
    use crate::error::{Error, Result};
    use crate::pipeline::Pipeline;
    use crate::tokenizer::Tokenizer;

    /// A deployed model directory read from disk, every file verified.
    #[derive(Debug, Clone)]
    pub struct ModelDir {
        pub path: PathBuf,
        pub manifest: Manifest,
        /// Bytes of `tokenizer.json`.
        pub tokenizer_json: Vec<u8>,
        /// Bytes of each stage file, in stage order.
        pub stage_files: Vec<Vec<u8>>,
    }

    impl ModelDir {
        /// Reads `manifest.json`, the tokenizer and every stage file, checking
        /// sizes and hashes.
        pub fn read(path: impl AsRef<Path>) -> Result<Self> {
            let path = path.as_ref().to_path_buf();
            let manifest = Manifest::from_json(&read_file(&path.join("manifest.json"))?)?;
            let tokenizer_json = read_file(&path.join(&manifest.tokenizer.file))?;
            manifest.verify_tokenizer(&tokenizer_json)?;
            let mut stage_files = Vec::with_capacity(manifest.stages.len());
            for stage in &manifest.stages {
                let file = path.join(&stage.file);
                let bytes = match std::fs::read(&file) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(Error::MissingStageFile {
                            path: file.display().to_string(),
                        })
                    }
                    Err(e) => return Err(io_error(&file, &e)),
                };
                manifest.verify_stage(stage.index, &bytes)?;
                stage_files.push(bytes);
            }
            Ok(ModelDir {
                path,
                manifest,
                tokenizer_json,
                stage_files,
            })
        }

        /// The tokenizer of this model.
        pub fn tokenizer(&self) -> Result<Tokenizer> {
            Tokenizer::new(&self.manifest, &self.tokenizer_json)
        }

        /// Loads every stage, ONNX `f32` stages into tract.
        pub fn pipeline(&self) -> Result<Pipeline> {
            Pipeline::load(&self.manifest, &self.stage_files)
        }

        /// Loads every stage, ONNX `f32` stages on `runtime`.
        pub fn pipeline_with(&self, runtime: crate::Runtime) -> Result<Pipeline> {
            Pipeline::load_with(&self.manifest, &self.stage_files, runtime)
        }
    }

    fn read_file(path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| io_error(path, &e))
    }

    fn io_error(path: &Path, e: &std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}
