//! Hugging Face layout: a folder with `config.json`, `model.safetensors`
//! (or shards listed in `model.safetensors.index.json`)
//! and (optionally) `tokenizer.json`. Reads F32/F16/BF16 tensors as f32;
//! writes F32 (or F16/BF16, to test the conversions) under the same names, so
//! a model saved here loads in `transformers` and back here unchanged.

use super::LlmError;
use super::config::LlamaConfig;
use super::model::{LlamaModel, WeightSource};
use super::tokenizer::Tokenizer;
use burn::tensor::Device;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A decoded tensor: shape and row-major f32 values.
pub type ShapedTensor = (Vec<usize>, Vec<f32>);

/// The tensors of one `.safetensors` file, decoded on demand.
pub struct SafetensorsWeights {
    path: PathBuf,
    bytes: Vec<u8>,
    /// name -> (dtype, shape, byte range in `bytes`).
    index: HashMap<String, (Dtype, Vec<usize>, std::ops::Range<usize>)>,
}

impl SafetensorsWeights {
    /// Reads and indexes the file; a truncated or corrupt file is an error
    /// naming it.
    pub fn open(path: &Path) -> Result<Self, LlmError> {
        let bytes = std::fs::read(path).map_err(|e| LlmError::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| LlmError::format(path, format!("not a valid safetensors file: {e}")))?;
        let base = bytes.as_ptr() as usize;
        let index = st
            .iter()
            .map(|(name, view)| {
                let start = view.data().as_ptr() as usize - base;
                let range = start..start + view.data().len();
                (
                    name.to_string(),
                    (view.dtype(), view.shape().to_vec(), range),
                )
            })
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            index,
        })
    }

    /// Tensor names in the file.
    pub fn names(&self) -> Vec<&str> {
        self.index.keys().map(String::as_str).collect()
    }

    /// A tensor as `(shape, f32 values)`, whatever its stored float type.
    pub fn tensor(&self, name: &str) -> Result<Option<ShapedTensor>, LlmError> {
        let Some((dtype, shape, range)) = self.index.get(name) else {
            return Ok(None);
        };
        let raw = &self.bytes[range.clone()];
        let values = match dtype {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(LlmError::format(
                    &self.path,
                    format!(
                        "tensor {name:?} has dtype {other:?}; only F32, F16 and BF16 are supported"
                    ),
                ));
            }
        };
        Ok(Some((shape.clone(), values)))
    }
}

impl WeightSource for SafetensorsWeights {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Option<Vec<f32>>, LlmError> {
        match self.tensor(name)? {
            None => Ok(None),
            Some((found, v)) if found == shape => Ok(Some(v)),
            Some((found, _)) => Err(LlmError::Shape {
                path: self.path.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found,
            }),
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// Float type of a written file (variants named as safetensors' dtypes).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveDtype {
    F32,
    F16,
    BF16,
}

/// Writes `tensors` (name, shape, f32 values) to a safetensors file.
pub fn write_tensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    dtype: SaveDtype,
) -> Result<(), LlmError> {
    let encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape, v)| {
            let (dt, bytes): (Dtype, Vec<u8>) = match dtype {
                SaveDtype::F32 => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                SaveDtype::F16 => (
                    Dtype::F16,
                    v.iter()
                        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                        .collect(),
                ),
                SaveDtype::BF16 => (
                    Dtype::BF16,
                    v.iter()
                        .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                        .collect(),
                ),
            };
            (name.clone(), dt, shape.clone(), bytes)
        })
        .collect();
    let views = encoded
        .iter()
        .map(|(name, dt, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dt, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| LlmError::format(path, format!("cannot encode {name:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, None)
        .map_err(|e| LlmError::format(path, format!("cannot serialise: {e}")))?;
    std::fs::write(path, bytes).map_err(|e| LlmError::io(path, e))
}

/// Saves the model's weights in Hugging Face layout and names.
pub fn save_safetensors(model: &LlamaModel, path: &Path, dtype: SaveDtype) -> Result<(), LlmError> {
    write_tensors(path, &model.named_weights(), dtype)
}

/// Writes `config.json` and `model.safetensors` (F32) into `dir` (created).
pub fn save_hf_folder(model: &LlamaModel, dir: &Path) -> Result<(), LlmError> {
    std::fs::create_dir_all(dir).map_err(|e| LlmError::io(dir, e))?;
    let config_path = dir.join("config.json");
    let json = serde_json::to_string_pretty(&model.config)
        .map_err(|e| LlmError::format(&config_path, e.to_string()))?;
    std::fs::write(&config_path, json).map_err(|e| LlmError::io(&config_path, e))?;
    save_safetensors(model, &dir.join("model.safetensors"), SaveDtype::F32)
}

/// Writes a complete model folder that [`load_hf_folder`] (and
/// `ftb llm train --set model.path=DIR`) reads back: `config.json`,
/// `model.safetensors` and the tokenizer. Written into a temporary sibling
/// and renamed, so an interrupted write never leaves a half folder at `dir`.
pub fn save_model_folder(
    model: &LlamaModel,
    tokenizer: &Tokenizer,
    dir: &Path,
) -> Result<(), LlmError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let tmp = dir.with_file_name(format!(".{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| LlmError::io(&tmp, e))?;
    }
    save_hf_folder(model, &tmp)?;
    tokenizer.save_to_dir(&tmp)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| LlmError::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| LlmError::io(dir, e))
}

/// The weights of a Hugging Face folder: `model.safetensors`, or the shards
/// listed in `model.safetensors.index.json` (larger models).
pub struct HfWeights {
    /// The single file or the index (named in missing-tensor errors).
    path: PathBuf,
    files: Vec<SafetensorsWeights>,
    /// Tensor name -> index in `files` (shards only).
    map: HashMap<String, usize>,
}

impl HfWeights {
    /// Opens `dir/model.safetensors`, else the sharded layout.
    pub fn open_dir(dir: &Path) -> Result<Self, LlmError> {
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        if single.exists() || !index_path.exists() {
            return Ok(Self {
                files: vec![SafetensorsWeights::open(&single)?],
                path: single,
                map: HashMap::new(),
            });
        }
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: HashMap<String, String>,
        }
        let text =
            std::fs::read_to_string(&index_path).map_err(|e| LlmError::io(&index_path, e))?;
        let index: Index = serde_json::from_str(&text).map_err(|e| {
            LlmError::format(&index_path, format!("not a valid safetensors index: {e}"))
        })?;
        let mut shards: Vec<String> = index.weight_map.values().cloned().collect();
        shards.sort();
        shards.dedup();
        if let Some(bad) = shards.iter().find(|s| s.contains('/') || s.contains('\\')) {
            return Err(LlmError::format(
                &index_path,
                format!("shard {bad:?} is not a file name"),
            ));
        }
        let files = shards
            .iter()
            .map(|s| SafetensorsWeights::open(&dir.join(s)))
            .collect::<Result<Vec<_>, _>>()?;
        let map = index
            .weight_map
            .into_iter()
            .map(|(name, shard)| {
                let i = shards.binary_search(&shard).expect("listed shard");
                (name, i)
            })
            .collect();
        Ok(Self {
            path: index_path,
            files,
            map,
        })
    }
}

impl WeightSource for HfWeights {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Option<Vec<f32>>, LlmError> {
        let i = if self.map.is_empty() {
            0
        } else {
            match self.map.get(name) {
                Some(&i) => i,
                None => return Ok(None),
            }
        };
        match self.files[i].get(name, shape)? {
            Some(v) => Ok(Some(v)),
            None if self.map.is_empty() => Ok(None),
            None => Err(LlmError::format(
                self.files[i].path(),
                format!(
                    "tensor {name:?} is listed in {} but absent",
                    self.path.display()
                ),
            )),
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// Loads `config.json` + `model.safetensors` (or its shards) from a Hugging
/// Face folder.
pub fn load_hf_model(dir: &Path, device: &Device) -> Result<LlamaModel, LlmError> {
    let config = LlamaConfig::from_file(&dir.join("config.json"))?;
    let mut weights = HfWeights::open_dir(dir)?;
    LlamaModel::from_source(config, &mut weights, device)
}

/// Loads the model and its tokenizer (`tokenizer.json`, or the character
/// vocabulary of a folder written by `ftb llm pretrain`), checking that every
/// token id the tokenizer can produce has a row in the model.
pub fn load_hf_folder(dir: &Path, device: &Device) -> Result<(LlamaModel, Tokenizer), LlmError> {
    let model = load_hf_model(dir, device)?;
    let tokenizer = Tokenizer::from_dir(dir)?;
    tokenizer.check_vocab(model.vocab_size())?;
    Ok((model, tokenizer))
}
