//! GGUF (v2/v3): a reader, a writer and the block dequantisers for F32, F16,
//! BF16, Q8_0, Q4_0 and Q4_1, plus the mapping from llama.cpp's tensor names
//! to the Hugging Face ones [`LlamaModel::from_source`] asks for.
//!
//! # RoPE and the q/k permutation
//!
//! llama.cpp's `convert_hf_to_gguf.py` permutes the rows of `q_proj` and
//! `k_proj` per head so that its interleaved RoPE (rotating pairs `(2i, 2i+1)`)
//! computes what Hugging Face's rotate-half RoPE (pairs `(i, i + d/2)`)
//! computes on the original rows: GGUF row `h*d + 2i + j` holds Hugging Face
//! row `h*d + j*d/2 + i`. The loader undoes that permutation
//! ([`unpermute_rope_rows`]), so a GGUF model runs with the same rotate-half
//! RoPE as a safetensors one and its weights equal the Hugging Face ones.
//! The writer applies the permutation ([`permute_rope_rows`]) so that files
//! it writes are laid out as llama.cpp expects. The real-weights test checks
//! this against an independent numpy forward that uses the interleaved RoPE
//! on the raw GGUF rows (`scripts/gguf_reference.py`).
//!
//! Dimensions in GGUF are listed innermost first: a matrix with `ne = [in,
//! out]` is stored row-major as Hugging Face's `[out, in]`.

use super::LlmError;
use super::config::LlamaConfig;
use super::model::{LlamaModel, WeightSource};
use super::tokenizer::Tokenizer;
use burn::tensor::Device;
use half::{bf16, f16};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// Values per quantisation block (Q8_0, Q4_0, Q4_1).
pub const QK: usize = 32;

/// A metadata value (every GGUF value type; variants named after the type
/// they hold).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    /// Elements of one type (the type of an empty array is kept for writing).
    Array(u32, Vec<GgufValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl GgufValue {
    fn type_id(&self) -> u32 {
        match self {
            Self::U8(_) => 0,
            Self::I8(_) => 1,
            Self::U16(_) => 2,
            Self::I16(_) => 3,
            Self::U32(_) => 4,
            Self::I32(_) => 5,
            Self::F32(_) => 6,
            Self::Bool(_) => 7,
            Self::String(_) => 8,
            Self::Array(..) => 9,
            Self::U64(_) => 10,
            Self::I64(_) => 11,
            Self::F64(_) => 12,
        }
    }

    /// The value as an unsigned integer, when it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(x) => Some(x.into()),
            Self::U16(x) => Some(x.into()),
            Self::U32(x) => Some(x.into()),
            Self::U64(x) => Some(x),
            Self::I8(x) => u64::try_from(x).ok(),
            Self::I16(x) => u64::try_from(x).ok(),
            Self::I32(x) => u64::try_from(x).ok(),
            Self::I64(x) => u64::try_from(x).ok(),
            _ => None,
        }
    }

    /// The value as a float, when it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(x) => Some(x.into()),
            Self::F64(x) => Some(x),
            _ => self.as_u64().map(|x| x as f64),
        }
    }

    /// The string, when it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// An array of strings, when it is one.
    pub fn as_strings(&self) -> Option<Vec<String>> {
        match self {
            Self::Array(_, v) => v.iter().map(|x| x.as_str().map(str::to_string)).collect(),
            _ => None,
        }
    }
}

/// A dequantised tensor: dims (innermost first) and f32 values.
pub type GgufTensor = (Vec<u64>, Vec<f32>);

/// Tensor element types this module reads and writes (ggml type ids;
/// variants named as in ggml).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 8,
    BF16 = 30,
}

impl GgmlType {
    fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            30 => Self::BF16,
            _ => return None,
        })
    }

    /// `(values per block, bytes per block)`.
    fn block(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::BF16 => (1, 2),
            Self::Q4_0 => (QK, 18),
            Self::Q4_1 => (QK, 20),
            Self::Q8_0 => (QK, 34),
        }
    }

    /// Bytes of `n` values (`n` a multiple of the block size).
    pub fn bytes(self, n: usize) -> usize {
        let (k, b) = self.block();
        n / k * b
    }
}

/// Where a tensor lies in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// llama.cpp name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost first (`ne[0]` = input features of a matrix).
    pub dims: Vec<u64>,
    /// ggml type id (kept raw so an unsupported type is reported by name).
    pub type_id: u32,
    /// Byte offset from the start of the data section.
    pub offset: u64,
}

/// A parsed GGUF file held in memory.
#[derive(Clone)]
pub struct GgufFile {
    path: PathBuf,
    /// Format version (2 or 3).
    pub version: u32,
    /// Key/value metadata in file order.
    pub metadata: Vec<(String, GgufValue)>,
    /// Tensor descriptors in file order.
    pub tensors: Vec<TensorInfo>,
    data_offset: usize,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_entries", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// A bounds-checked little-endian cursor: running past the end is an error
/// ("truncated"), never a panic.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "truncated: needed {n} bytes at offset {} but the file has {}",
                    self.pos,
                    self.bytes.len()
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn len(&mut self, what: &str) -> Result<usize, String> {
        let n = self.u64()?;
        let remaining = self.bytes.len() - self.pos;
        if n > remaining as u64 {
            return Err(format!(
                "{what} length {n} at offset {} exceeds the {remaining} bytes left (corrupt or truncated)",
                self.pos - 8
            ));
        }
        Ok(n as usize)
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.len("string")?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| format!("string at offset {} is not UTF-8", self.pos - n))
    }
    fn value(&mut self, type_id: u32, depth: usize) -> Result<GgufValue, String> {
        Ok(match type_id {
            0 => GgufValue::U8(self.array::<1>()?[0]),
            1 => GgufValue::I8(self.array::<1>()?[0] as i8),
            2 => GgufValue::U16(u16::from_le_bytes(self.array()?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array()?)),
            4 => GgufValue::U32(self.u32()?),
            5 => GgufValue::I32(i32::from_le_bytes(self.array()?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array()?)),
            7 => match self.array::<1>()?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(format!("bool value {b} at offset {}", self.pos - 1)),
            },
            8 => GgufValue::String(self.string()?),
            9 => {
                if depth > 4 {
                    return Err("arrays nested too deeply".into());
                }
                let inner = self.u32()?;
                let n = self.len("array")?;
                let mut v = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    v.push(self.value(inner, depth + 1)?);
                }
                GgufValue::Array(inner, v)
            }
            10 => GgufValue::U64(self.u64()?),
            11 => GgufValue::I64(i64::from_le_bytes(self.array()?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array()?)),
            t => {
                return Err(format!(
                    "unknown metadata value type {t} at offset {}",
                    self.pos - 4
                ));
            }
        })
    }
}

impl GgufFile {
    /// Reads and parses a GGUF file (header, metadata, tensor infos); tensor
    /// data is checked to lie inside the file. Errors name the file.
    pub fn open(path: &Path) -> Result<Self, LlmError> {
        let bytes = std::fs::read(path).map_err(|e| LlmError::io(path, e))?;
        Self::parse(path, bytes).map_err(|what| LlmError::format(path, what))
    }

    fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self, String> {
        let mut c = Cursor {
            bytes: &bytes,
            pos: 0,
        };
        if c.take(4)
            .map_err(|_| "not a GGUF file (shorter than its magic)".to_string())?
            != MAGIC
        {
            return Err("not a GGUF file (bad magic)".into());
        }
        let version = c.u32()?;
        if !(2..=3).contains(&version) {
            return Err(format!(
                "GGUF version {version} is not supported (only 2 and 3)"
            ));
        }
        let n_tensors = c.u64()?;
        let n_kv = c.u64()?;
        if n_tensors > bytes.len() as u64 || n_kv > bytes.len() as u64 {
            return Err(format!(
                "corrupt header: {n_tensors} tensors, {n_kv} metadata entries"
            ));
        }
        let mut metadata = Vec::with_capacity(n_kv as usize);
        for _ in 0..n_kv {
            let key = c.string()?;
            let t = c.u32()?;
            let v = c
                .value(t, 0)
                .map_err(|e| format!("metadata {key:?}: {e}"))?;
            metadata.push((key, v));
        }
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = c.string()?;
            let n_dims = c.u32()?;
            if n_dims > 4 {
                return Err(format!(
                    "tensor {name:?} has {n_dims} dimensions (at most 4)"
                ));
            }
            let dims = (0..n_dims)
                .map(|_| c.u64())
                .collect::<Result<Vec<_>, _>>()?;
            let type_id = c.u32()?;
            let offset = c.u64()?;
            tensors.push(TensorInfo {
                name,
                dims,
                type_id,
                offset,
            });
        }
        let alignment = metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .map(|(_, v)| v.as_u64().ok_or("general.alignment is not an integer"))
            .transpose()?
            .unwrap_or(DEFAULT_ALIGNMENT);
        if alignment == 0 || !alignment.is_power_of_two() {
            return Err(format!(
                "general.alignment {alignment} is not a power of two"
            ));
        }
        let data_offset = (c.pos as u64).div_ceil(alignment) * alignment;
        let file = Self {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            data_offset: data_offset as usize,
            bytes,
        };
        for t in &file.tensors {
            file.tensor_bytes(t)?;
        }
        Ok(file)
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A tensor descriptor by name.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tensor_bytes(&self, t: &TensorInfo) -> Result<(GgmlType, usize, &[u8]), String> {
        let ty = GgmlType::from_id(t.type_id).ok_or_else(|| {
            format!(
                "tensor {:?} has ggml type {}; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1",
                t.name, t.type_id
            )
        })?;
        let n = t
            .dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= self.bytes.len() as u64 * 2)
            .ok_or_else(|| format!("tensor {:?} has absurd dimensions {:?}", t.name, t.dims))?
            as usize;
        let (k, _) = ty.block();
        if t.dims
            .first()
            .is_some_and(|&d| !(d as usize).is_multiple_of(k))
        {
            return Err(format!(
                "tensor {:?}: rows of {} values are not whole {k}-value blocks",
                t.name, t.dims[0]
            ));
        }
        let start = self.data_offset as u64;
        let len = ty.bytes(n) as u64;
        let end = start
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(len))
            .filter(|&e| e <= self.bytes.len() as u64)
            .ok_or_else(|| {
                format!(
                    "tensor {:?} (offset {}, {len} bytes) runs past the end of the file ({} bytes): truncated",
                    t.name,
                    t.offset,
                    self.bytes.len()
                )
            })?;
        let start = end - len;
        Ok((ty, n, &self.bytes[start as usize..end as usize]))
    }

    /// A tensor dequantised to f32 with its dims (innermost first); `None`
    /// when absent.
    pub fn tensor_f32(&self, name: &str) -> Result<Option<GgufTensor>, LlmError> {
        let Some(t) = self.info(name) else {
            return Ok(None);
        };
        let (ty, n, raw) = self
            .tensor_bytes(t)
            .map_err(|what| LlmError::format(&self.path, what))?;
        Ok(Some((t.dims.clone(), dequantize(ty, raw, n))))
    }

    fn require_u64(&self, key: &str) -> Result<u64, LlmError> {
        self.get(key).and_then(GgufValue::as_u64).ok_or_else(|| {
            LlmError::format(
                &self.path,
                format!("metadata key {key:?} is missing or not an integer"),
            )
        })
    }

    /// The decoder config from `llama.*` metadata (vocabulary size from the
    /// tokenizer or the embedding's shape; tied when `output.weight` is absent).
    pub fn llama_config(&self) -> Result<LlamaConfig, LlmError> {
        let arch = self
            .get("general.architecture")
            .and_then(GgufValue::as_str)
            .unwrap_or("<missing>");
        if arch != "llama" {
            return Err(LlmError::format(
                &self.path,
                format!(
                    "unsupported GGUF architecture {arch:?}; supported: \"llama\" (Llama, Mistral, SmolLM)"
                ),
            ));
        }
        let key = |k: &str| format!("llama.{k}");
        let heads = self.require_u64(&key("attention.head_count"))? as usize;
        let kv_heads = match self.get(&key("attention.head_count_kv")) {
            Some(v) => v.as_u64().ok_or_else(|| {
                LlmError::format(
                    &self.path,
                    "llama.attention.head_count_kv is not an integer",
                )
            })? as usize,
            None => heads,
        };
        let hidden = self.require_u64(&key("embedding_length"))? as usize;
        let vocab = match self.get("tokenizer.ggml.tokens") {
            Some(GgufValue::Array(_, v)) => v.len(),
            _ => match self.info("token_embd.weight") {
                Some(t) if t.dims.len() == 2 => t.dims[1] as usize,
                _ => {
                    return Err(LlmError::MissingTensor {
                        path: self.path.clone(),
                        name: "token_embd.weight".into(),
                    });
                }
            },
        };
        let f = |k: &str, default: f64| -> Result<f64, LlmError> {
            match self.get(k) {
                None => Ok(default),
                Some(v) => v.as_f64().ok_or_else(|| {
                    LlmError::format(&self.path, format!("metadata key {k:?} is not a number"))
                }),
            }
        };
        let id = |k: &str| self.get(k).and_then(GgufValue::as_u64).map(|x| x as u32);
        let mut config = LlamaConfig::tiny(
            vocab,
            hidden,
            self.require_u64(&key("feed_forward_length"))? as usize,
            self.require_u64(&key("block_count"))? as usize,
            heads,
            kv_heads,
        );
        config.rms_norm_eps = f(&key("attention.layer_norm_rms_epsilon"), 1e-5)?;
        config.rope_theta = f(&key("rope.freq_base"), 10000.0)?;
        config.max_position_embeddings = self
            .get(&key("context_length"))
            .and_then(GgufValue::as_u64)
            .unwrap_or(2048) as usize;
        config.tie_word_embeddings = self.info("output.weight").is_none();
        config.bos_token_id = id("tokenizer.ggml.bos_token_id");
        config.eos_token_id = id("tokenizer.ggml.eos_token_id");
        if let Some(rd) = self
            .get(&key("rope.dimension_count"))
            .and_then(GgufValue::as_u64)
            && rd as usize != config.head_dim()
        {
            return Err(LlmError::format(
                &self.path,
                format!(
                    "partial RoPE (llama.rope.dimension_count {rd} < head dim {}) is not supported",
                    config.head_dim()
                ),
            ));
        }
        config
            .validate()
            .map_err(|what| LlmError::format(&self.path, what))?;
        Ok(config)
    }

    /// The tokenizer in the metadata (`tokenizer.ggml.model = "gpt2"`, a
    /// byte-level BPE); `None` when the file has no tokenizer.
    pub fn tokenizer(&self) -> Result<Option<Tokenizer>, LlmError> {
        let Some(model) = self.get("tokenizer.ggml.model") else {
            return Ok(None);
        };
        let model = model.as_str().unwrap_or("<not a string>");
        if model != "gpt2" {
            return Err(LlmError::format(
                &self.path,
                format!(
                    "tokenizer.ggml.model {model:?} is not supported (only \"gpt2\" byte-level BPE)"
                ),
            ));
        }
        let strings = |k: &str| {
            self.get(k).and_then(GgufValue::as_strings).ok_or_else(|| {
                LlmError::format(
                    &self.path,
                    format!("{k} is missing or not an array of strings"),
                )
            })
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let types: Option<Vec<i32>> = match self.get("tokenizer.ggml.token_type") {
            Some(GgufValue::Array(_, v)) => Some(
                v.iter()
                    .map(|x| match x {
                        GgufValue::I32(t) => *t,
                        other => other.as_u64().unwrap_or(1) as i32,
                    })
                    .collect(),
            ),
            _ => None,
        };
        let id = |k: &str| self.get(k).and_then(GgufValue::as_u64).map(|x| x as u32);
        let add_bos = matches!(
            self.get("tokenizer.ggml.add_bos_token"),
            Some(GgufValue::Bool(true))
        );
        let bos = id("tokenizer.ggml.bos_token_id");
        Tokenizer::byte_level_bpe(
            &self.path,
            &tokens,
            &merges,
            types.as_deref(),
            self.get("tokenizer.ggml.pre").and_then(GgufValue::as_str),
            if add_bos { bos } else { None },
            id("tokenizer.ggml.eos_token_id"),
        )
        .map(Some)
    }
}

/// Decodes `n` values of type `ty` from `raw`.
pub fn dequantize(ty: GgmlType, raw: &[u8], n: usize) -> Vec<f32> {
    let h = |b: &[u8]| f16::from_le_bytes([b[0], b[1]]).to_f32();
    let mut out = Vec::with_capacity(n);
    match ty {
        GgmlType::F32 => out.extend(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        GgmlType::F16 => out.extend(raw.chunks_exact(2).map(h)),
        GgmlType::BF16 => out.extend(
            raw.chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        GgmlType::Q8_0 => {
            for b in raw.chunks_exact(34) {
                let d = h(b);
                out.extend(b[2..].iter().map(|&q| q as i8 as f32 * d));
            }
        }
        GgmlType::Q4_0 => {
            for b in raw.chunks_exact(18) {
                let d = h(b);
                let qs = &b[2..];
                out.extend(qs.iter().map(|&q| ((q & 0xF) as f32 - 8.0) * d));
                out.extend(qs.iter().map(|&q| ((q >> 4) as f32 - 8.0) * d));
            }
        }
        GgmlType::Q4_1 => {
            for b in raw.chunks_exact(20) {
                let (d, m) = (h(b), h(&b[2..]));
                let qs = &b[4..];
                out.extend(qs.iter().map(|&q| (q & 0xF) as f32 * d + m));
                out.extend(qs.iter().map(|&q| (q >> 4) as f32 * d + m));
            }
        }
    }
    out
}

/// Encodes `values` (a multiple of the block size for quantised types) the
/// way llama.cpp's reference quantisers do.
pub fn quantize(ty: GgmlType, values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ty.bytes(values.len()));
    match ty {
        GgmlType::F32 => out.extend(values.iter().flat_map(|x| x.to_le_bytes())),
        GgmlType::F16 => out.extend(values.iter().flat_map(|&x| f16::from_f32(x).to_le_bytes())),
        GgmlType::BF16 => out.extend(values.iter().flat_map(|&x| bf16::from_f32(x).to_le_bytes())),
        GgmlType::Q8_0 => {
            for b in values.chunks_exact(QK) {
                let amax = b.iter().fold(0f32, |a, x| a.max(x.abs()));
                let d = amax / 127.0;
                let id = if d > 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(b.iter().map(|&x| (x * id).round() as i8 as u8));
            }
        }
        GgmlType::Q4_0 => {
            for b in values.chunks_exact(QK) {
                // The value of largest magnitude maps to -8.
                let max = b
                    .iter()
                    .fold(0f32, |m, &x| if x.abs() > m.abs() { x } else { m });
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let q = |x: f32| ((x * id + 8.5) as i32).clamp(0, 15) as u8;
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend((0..QK / 2).map(|j| q(b[j]) | (q(b[j + QK / 2]) << 4)));
            }
        }
        GgmlType::Q4_1 => {
            for b in values.chunks_exact(QK) {
                let min = b.iter().copied().fold(f32::INFINITY, f32::min);
                let max = b.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let q = |x: f32| (((x - min) * id + 0.5) as i32).clamp(0, 15) as u8;
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(f16::from_f32(min).to_le_bytes());
                out.extend((0..QK / 2).map(|j| q(b[j]) | (q(b[j + QK / 2]) << 4)));
            }
        }
    }
    out
}

/// Hugging Face row order -> llama.cpp's (what `convert_hf_to_gguf.py`
/// does to q/k): within each head of `d` rows, row `j*d/2 + i` moves to
/// `2i + j`. `w` is `[n_heads * d, cols]` row-major.
pub fn permute_rope_rows(w: &[f32], n_heads: usize, cols: usize) -> Vec<f32> {
    rope_rows(w, n_heads, cols, true)
}

/// The inverse of [`permute_rope_rows`] (llama.cpp order -> Hugging Face).
pub fn unpermute_rope_rows(w: &[f32], n_heads: usize, cols: usize) -> Vec<f32> {
    rope_rows(w, n_heads, cols, false)
}

fn rope_rows(w: &[f32], n_heads: usize, cols: usize, to_gguf: bool) -> Vec<f32> {
    let rows = w.len() / cols;
    let d = rows / n_heads;
    let half = d / 2;
    let mut out = vec![0f32; w.len()];
    for h in 0..n_heads {
        for i in 0..half {
            for j in 0..2 {
                let hf = h * d + j * half + i;
                let gg = h * d + 2 * i + j;
                let (src, dst) = if to_gguf { (hf, gg) } else { (gg, hf) };
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// The llama.cpp name of a Hugging Face weight name.
pub fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (i, rest) = rest.split_once('.')?;
    let (module, suffix) = rest.rsplit_once('.')?;
    let short = match module {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        _ => return None,
    };
    Some(format!("blk.{i}.{short}.{suffix}"))
}

/// Serves Hugging Face names from a GGUF file: renames, checks shapes
/// (reversed GGUF dims), dequantises and un-permutes q/k rows.
pub struct GgufWeights<'a> {
    file: &'a GgufFile,
    n_heads: usize,
    n_kv_heads: usize,
}

impl<'a> GgufWeights<'a> {
    /// A source over `file` for a model with these head counts.
    pub fn new(file: &'a GgufFile, config: &LlamaConfig) -> Self {
        Self {
            file,
            n_heads: config.num_attention_heads,
            n_kv_heads: config.kv_heads(),
        }
    }
}

impl WeightSource for GgufWeights<'_> {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Option<Vec<f32>>, LlmError> {
        let Some(gname) = gguf_name(name) else {
            return Ok(None);
        };
        let Some((dims, v)) = self.file.tensor_f32(&gname)? else {
            return Ok(None);
        };
        let found: Vec<usize> = dims.iter().rev().map(|&d| d as usize).collect();
        if found != shape {
            return Err(LlmError::Shape {
                path: self.file.path.clone(),
                name: gname,
                expected: shape.iter().rev().copied().collect(),
                found: dims.iter().map(|&d| d as usize).collect(),
            });
        }
        let cols = shape.last().copied().unwrap_or(1);
        Ok(Some(
            if shape.len() == 2 && name.ends_with("q_proj.weight") {
                unpermute_rope_rows(&v, self.n_heads, cols)
            } else if shape.len() == 2 && name.ends_with("k_proj.weight") {
                unpermute_rope_rows(&v, self.n_kv_heads, cols)
            } else {
                v
            },
        ))
    }

    fn path(&self) -> &Path {
        &self.file.path
    }
}

/// Loads a llama-architecture GGUF: the model, and its tokenizer when the
/// metadata has one (checked against the vocabulary size).
pub fn load_gguf(
    path: &Path,
    device: &Device,
) -> Result<(LlamaModel, Option<Tokenizer>), LlmError> {
    let file = GgufFile::open(path)?;
    let config = file.llama_config()?;
    let tokenizer = file.tokenizer()?;
    if let Some(t) = &tokenizer {
        t.check_vocab(config.vocab_size)?;
    }
    let model = LlamaModel::from_source(
        config.clone(),
        &mut GgufWeights::new(&file, &config),
        device,
    )?;
    Ok((model, tokenizer))
}

/// Builds a GGUF file in memory: metadata, then tensors quantised on write.
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata entry.
    pub fn meta(&mut self, key: &str, value: GgufValue) -> &mut Self {
        self.metadata.push((key.to_string(), value));
        self
    }

    /// Adds a tensor (`dims` innermost first) encoded as `ty`.
    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType, values: &[f32]) -> &mut Self {
        self.tensors
            .push((name.to_string(), dims.to_vec(), ty, quantize(ty, values)));
        self
    }

    /// The file's bytes (GGUF v3).
    pub fn to_bytes(&self) -> Vec<u8> {
        let align = self
            .metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| v.as_u64())
            .unwrap_or(DEFAULT_ALIGNMENT) as usize;
        let mut b = Vec::new();
        b.extend(MAGIC);
        b.extend(3u32.to_le_bytes());
        b.extend((self.tensors.len() as u64).to_le_bytes());
        b.extend((self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            write_str(&mut b, k);
            b.extend(v.type_id().to_le_bytes());
            write_value(&mut b, v);
        }
        let mut offset = 0usize;
        let mut offsets = Vec::new();
        for (name, dims, ty, data) in &self.tensors {
            write_str(&mut b, name);
            b.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                b.extend(d.to_le_bytes());
            }
            b.extend((*ty as u32).to_le_bytes());
            b.extend((offset as u64).to_le_bytes());
            offsets.push(offset);
            offset = (offset + data.len()).div_ceil(align) * align;
        }
        let start = b.len().div_ceil(align) * align;
        b.resize(start, 0);
        for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
            b.resize(start + off, 0);
            b.extend(data);
        }
        b
    }

    /// Writes the file.
    pub fn write(&self, path: &Path) -> Result<(), LlmError> {
        std::fs::write(path, self.to_bytes()).map_err(|e| LlmError::io(path, e))
    }
}

fn write_str(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

fn write_value(b: &mut Vec<u8>, v: &GgufValue) {
    match v {
        GgufValue::U8(x) => b.push(*x),
        GgufValue::I8(x) => b.push(*x as u8),
        GgufValue::U16(x) => b.extend(x.to_le_bytes()),
        GgufValue::I16(x) => b.extend(x.to_le_bytes()),
        GgufValue::U32(x) => b.extend(x.to_le_bytes()),
        GgufValue::I32(x) => b.extend(x.to_le_bytes()),
        GgufValue::F32(x) => b.extend(x.to_le_bytes()),
        GgufValue::Bool(x) => b.push(u8::from(*x)),
        GgufValue::String(s) => write_str(b, s),
        GgufValue::Array(t, items) => {
            b.extend(t.to_le_bytes());
            b.extend((items.len() as u64).to_le_bytes());
            for item in items {
                write_value(b, item);
            }
        }
        GgufValue::U64(x) => b.extend(x.to_le_bytes()),
        GgufValue::I64(x) => b.extend(x.to_le_bytes()),
        GgufValue::F64(x) => b.extend(x.to_le_bytes()),
    }
}

/// A GGUF writer holding `model` in llama.cpp layout (names, q/k rows
/// permuted, `llama.*` metadata); `ty(name)` picks each tensor's encoding
/// (norms are usually F32). Add tokenizer metadata before writing if needed.
pub fn llama_gguf_writer(model: &LlamaModel, ty: impl Fn(&str) -> GgmlType) -> GgufWriter {
    let c = &model.config;
    let mut w = GgufWriter::new();
    let u32v = |x: usize| GgufValue::U32(x as u32);
    w.meta("general.architecture", GgufValue::String("llama".into()))
        .meta("llama.context_length", u32v(c.max_position_embeddings))
        .meta("llama.embedding_length", u32v(c.hidden_size))
        .meta("llama.block_count", u32v(c.num_hidden_layers))
        .meta("llama.feed_forward_length", u32v(c.intermediate_size))
        .meta("llama.attention.head_count", u32v(c.num_attention_heads))
        .meta("llama.attention.head_count_kv", u32v(c.kv_heads()))
        .meta(
            "llama.attention.layer_norm_rms_epsilon",
            GgufValue::F32(c.rms_norm_eps as f32),
        )
        .meta("llama.rope.freq_base", GgufValue::F32(c.rope_theta as f32))
        .meta("llama.rope.dimension_count", u32v(c.head_dim()));
    for (name, shape, v) in model.named_weights() {
        let gname = gguf_name(&name).expect("every Llama weight has a GGUF name");
        let cols = *shape.last().expect("a non-scalar weight");
        let v = if name.ends_with("q_proj.weight") {
            permute_rope_rows(&v, c.num_attention_heads, cols)
        } else if name.ends_with("k_proj.weight") {
            permute_rope_rows(&v, c.kv_heads(), cols)
        } else {
            v
        };
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        w.tensor(&gname, &dims, ty(&gname), &v);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        // A deterministic spread of magnitudes and signs.
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 2001) as f32 / 1000.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn block_quantisers_round_trip_within_their_error_bounds() {
        let v = values(32 * 8, 7);
        for (ty, per_block_bound) in [
            // Q8_0: half a step of amax/127 (+ f16 rounding of the scale).
            (
                GgmlType::Q8_0,
                (|amax: f32, _range: f32| amax / 127.0 * 0.5 + amax * 2e-3) as fn(f32, f32) -> f32,
            ),
            // Q4_0: half a step of amax/8, the top value clamps at 7 steps: one step.
            (GgmlType::Q4_0, |amax: f32, _range: f32| {
                amax / 8.0 + amax * 2e-3
            }),
            // Q4_1: half a step of (max-min)/15.
            (GgmlType::Q4_1, |amax: f32, range: f32| {
                range / 15.0 * 0.5 + amax * 2e-3
            }),
        ] {
            let back = dequantize(ty, &quantize(ty, &v), v.len());
            for (b, blk) in v.chunks(32).zip(back.chunks(32)) {
                let amax = b.iter().fold(0f32, |a, x| a.max(x.abs()));
                let range = b.iter().copied().fold(f32::MIN, f32::max)
                    - b.iter().copied().fold(f32::MAX, f32::min);
                let bound = per_block_bound(amax, range);
                for (x, y) in b.iter().zip(blk) {
                    assert!((x - y).abs() <= bound, "{ty:?}: {x} -> {y} (bound {bound})");
                }
            }
        }
    }

    #[test]
    fn q4_nibble_layout_low_nibbles_are_the_first_half() {
        // d = 1 (f16 0x3C00), qs[j] = j | (15 - j) << 4.
        let mut block = vec![0x00, 0x3C];
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let v = dequantize(GgmlType::Q4_0, &block, 32);
        assert_eq!(v[0], -8.0);
        assert_eq!(v[15], 7.0);
        assert_eq!(v[16], 7.0);
        assert_eq!(v[31], -8.0);
    }

    #[test]
    fn rope_permutation_matches_interleaved_rope() {
        // Rotate-half RoPE on Hugging Face rows equals interleaved RoPE on
        // the permuted rows, read back through the inverse permutation.
        let d = 8;
        let x: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin()).collect();
        let (pos, theta) = (5.0f64, 10000.0f64);
        let ang = |i: usize| pos * theta.powf(-((2 * i) as f64) / d as f64);
        let mut hf = vec![0f32; d];
        for i in 0..d / 2 {
            let (s, c) = ang(i).sin_cos();
            let (a, b) = (x[i] as f64, x[i + d / 2] as f64);
            hf[i] = (a * c - b * s) as f32;
            hf[i + d / 2] = (b * c + a * s) as f32;
        }
        let g = permute_rope_rows(&x, 1, 1);
        let mut gi = vec![0f32; d];
        for i in 0..d / 2 {
            let (s, c) = ang(i).sin_cos();
            let (a, b) = (g[2 * i] as f64, g[2 * i + 1] as f64);
            gi[2 * i] = (a * c - b * s) as f32;
            gi[2 * i + 1] = (b * c + a * s) as f32;
        }
        let back = unpermute_rope_rows(&gi, 1, 1);
        for (a, b) in hf.iter().zip(&back) {
            assert!((a - b).abs() < 1e-6);
        }
        assert_eq!(unpermute_rope_rows(&g, 1, 1), x);
    }

    #[test]
    fn metadata_of_every_type_round_trips() {
        let mut w = GgufWriter::new();
        let all = vec![
            ("a.u8", GgufValue::U8(200)),
            ("a.i8", GgufValue::I8(-3)),
            ("a.u16", GgufValue::U16(60000)),
            ("a.i16", GgufValue::I16(-30000)),
            ("a.u32", GgufValue::U32(4_000_000_000)),
            ("a.i32", GgufValue::I32(-2_000_000_000)),
            ("a.f32", GgufValue::F32(1.5)),
            ("a.bool", GgufValue::Bool(true)),
            ("a.str", GgufValue::String("héllo".into())),
            ("a.u64", GgufValue::U64(1 << 40)),
            ("a.i64", GgufValue::I64(-(1 << 40))),
            ("a.f64", GgufValue::F64(-2.25)),
            (
                "a.arr",
                GgufValue::Array(
                    8,
                    vec![
                        GgufValue::String("x".into()),
                        GgufValue::String("yz".into()),
                    ],
                ),
            ),
            ("a.empty", GgufValue::Array(5, vec![])),
            ("general.alignment", GgufValue::U32(64)),
        ];
        for (k, v) in &all {
            w.meta(k, v.clone());
        }
        w.tensor("t", &[32, 2], GgmlType::Q8_0, &values(64, 1));
        let f = GgufFile::parse(Path::new("mem.gguf"), w.to_bytes()).unwrap();
        assert_eq!(f.version, 3);
        assert_eq!(f.data_offset % 64, 0);
        for (k, v) in &all {
            assert_eq!(f.get(k), Some(v), "{k}");
        }
        let (dims, t) = f.tensor_f32("t").unwrap().unwrap();
        assert_eq!(dims, vec![32, 2]);
        assert_eq!(t.len(), 64);
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors_not_panics() {
        let mut w = GgufWriter::new();
        w.meta("general.architecture", GgufValue::String("llama".into()));
        w.tensor("t", &[32, 4], GgmlType::Q4_1, &values(128, 3));
        let bytes = w.to_bytes();
        // Every truncation point fails cleanly.
        for n in 0..bytes.len() {
            let r = GgufFile::parse(Path::new("x.gguf"), bytes[..n].to_vec());
            assert!(r.is_err(), "truncated at {n} parsed");
        }
        // Flipping bytes of the header never panics.
        for i in 0..bytes.len().min(200) {
            let mut b = bytes.clone();
            b[i] ^= 0xFF;
            let _ = GgufFile::parse(Path::new("x.gguf"), b);
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(
            GgufFile::parse(Path::new("x.gguf"), bad)
                .unwrap_err()
                .contains("magic")
        );
    }
}
