//! The decoder's hyper-parameters, read from a Hugging Face `config.json`
//! (or built from GGUF metadata), with the defaults Hugging Face's
//! `LlamaConfig` uses so that a sparse `config.json` means what it means there.

use serde::{Deserialize, Deserializer, Serialize};
use std::path::Path;

use super::LlmError;

/// The `architectures` this decoder implements (all Llama-shaped: RMSNorm,
/// RoPE, grouped-query attention, SwiGLU; Qwen2 adds a q/k/v bias).
pub const SUPPORTED_ARCHITECTURES: [&str; 3] =
    ["LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"];

/// Hyper-parameters of a Llama-family decoder (field names as in Hugging
/// Face's `config.json`, so the file deserialises directly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Model class names; must contain one of [`SUPPORTED_ARCHITECTURES`].
    #[serde(default = "default_architectures")]
    pub architectures: Vec<String>,
    /// Rows of the token embedding (and of the LM head).
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    /// Width of the residual stream.
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    #[serde(default = "d_intermediate")]
    pub intermediate_size: usize,
    /// Number of decoder blocks.
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    /// Query heads.
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); `None` in the file means
    /// "as many as query heads", as in Hugging Face.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; `None` means `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Epsilon inside RMSNorm's square root.
    #[serde(default = "d_eps")]
    pub rms_norm_eps: f64,
    /// RoPE base frequency.
    #[serde(default = "d_theta")]
    pub rope_theta: f64,
    /// Longest sequence the model was trained for (the KV cache refuses more).
    #[serde(default = "d_max_pos")]
    pub max_position_embeddings: usize,
    /// The LM head reuses the embedding matrix (no `lm_head.weight`).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// q/k/v projections carry a bias (Qwen2). `None`: per architecture
    /// (true for Qwen2, false otherwise), as the Hugging Face classes do.
    #[serde(default)]
    pub attention_bias: Option<bool>,
    /// MLP activation; only `silu` (SwiGLU) is implemented.
    #[serde(default = "d_act")]
    pub hidden_act: String,
    /// Beginning-of-sequence token.
    #[serde(default, deserialize_with = "one_or_many")]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token (the first one when the file lists several).
    #[serde(default, deserialize_with = "one_or_many")]
    pub eos_token_id: Option<u32>,
    /// RoPE scaling schemes are not implemented: must be absent or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<serde_json::Value>,
}

fn default_architectures() -> Vec<String> {
    vec!["LlamaForCausalLM".into()]
}
fn d_vocab() -> usize {
    32000
}
fn d_hidden() -> usize {
    4096
}
fn d_intermediate() -> usize {
    11008
}
fn d_layers() -> usize {
    32
}
fn d_heads() -> usize {
    32
}
fn d_eps() -> f64 {
    1e-6
}
fn d_theta() -> f64 {
    10000.0
}
fn d_max_pos() -> usize {
    2048
}
fn d_act() -> String {
    "silu".into()
}

/// `eos_token_id` is an integer or a list of integers in the wild.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(u32),
        Many(Vec<u32>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(x)) => Some(x),
        Some(OneOrMany::Many(v)) => v.first().copied(),
    })
}

impl LlamaConfig {
    /// A small Llama config for tests and synthetic tasks (all other fields at
    /// their Hugging Face defaults, untied head, no bias).
    pub fn tiny(
        vocab_size: usize,
        hidden_size: usize,
        intermediate_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        num_key_value_heads: usize,
    ) -> Self {
        Self {
            architectures: default_architectures(),
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads: Some(num_key_value_heads),
            head_dim: None,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            max_position_embeddings: 512,
            tie_word_embeddings: false,
            attention_bias: None,
            hidden_act: d_act(),
            bos_token_id: None,
            eos_token_id: None,
            rope_scaling: None,
        }
    }

    /// Reads and validates `config.json`; errors name the file.
    pub fn from_file(path: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read_to_string(path).map_err(|e| LlmError::io(path, e))?;
        let config: Self = serde_json::from_str(&text).map_err(|e| LlmError::Format {
            path: path.to_path_buf(),
            what: format!("not a valid config.json: {e}"),
        })?;
        config.validate().map_err(|what| LlmError::Format {
            path: path.to_path_buf(),
            what,
        })?;
        Ok(config)
    }

    /// The architecture this config names (the first supported one).
    pub fn architecture(&self) -> Option<&str> {
        self.architectures
            .iter()
            .map(String::as_str)
            .find(|a| SUPPORTED_ARCHITECTURES.contains(a))
    }

    /// Key/value heads (defaults to the query heads).
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Per-head width.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Whether q/k/v carry a bias (explicit, else true for Qwen2 only).
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias
            .unwrap_or(self.architecture() == Some("Qwen2ForCausalLM"))
    }

    /// Checks that the numbers describe a model this decoder can run; the
    /// message says which field is wrong and why.
    pub fn validate(&self) -> Result<(), String> {
        if self.architecture().is_none() {
            return Err(format!(
                "unsupported architecture {:?}; supported: {}",
                self.architectures,
                SUPPORTED_ARCHITECTURES.join(", ")
            ));
        }
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.kv_heads()),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) || self.head_dim() == 0 {
            return Err(format!(
                "head dimension {} must be even and positive (RoPE rotates pairs)",
                self.head_dim()
            ));
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return Err(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err(format!(
                "rms_norm_eps must be positive, got {}",
                self.rms_norm_eps
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(format!(
                "rope_theta must be positive, got {}",
                self.rope_theta
            ));
        }
        if self.hidden_act != "silu" {
            return Err(format!(
                "hidden_act {:?} is not supported (only \"silu\")",
                self.hidden_act
            ));
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err("rope_scaling is not supported (it must be absent or null)".into());
        }
        for (name, id) in [
            ("bos_token_id", self.bos_token_id),
            ("eos_token_id", self.eos_token_id),
        ] {
            if let Some(id) = id
                && id as usize >= self.vocab_size
            {
                return Err(format!(
                    "{name} {id} is outside the vocabulary ({})",
                    self.vocab_size
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_config_gets_hugging_face_defaults() {
        let c: LlamaConfig = serde_json::from_str(
            r#"{"architectures":["LlamaForCausalLM"],"hidden_size":64,"num_attention_heads":4,
                "eos_token_id":[2,7]}"#,
        )
        .unwrap();
        assert_eq!(c.vocab_size, 32000);
        assert_eq!(c.kv_heads(), 4);
        assert_eq!(c.head_dim(), 16);
        assert_eq!(c.eos_token_id, Some(2));
        assert!(!c.qkv_bias());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn qwen2_defaults_to_a_qkv_bias() {
        let mut c = LlamaConfig::tiny(10, 8, 16, 1, 2, 1);
        c.architectures = vec!["Qwen2ForCausalLM".into()];
        assert!(c.qkv_bias());
        c.attention_bias = Some(false);
        assert!(!c.qkv_bias());
    }

    #[test]
    fn unknown_architecture_lists_the_supported_ones() {
        let mut c = LlamaConfig::tiny(10, 8, 16, 1, 2, 1);
        c.architectures = vec!["GPT2LMHeadModel".into()];
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("GPT2LMHeadModel") && e.contains("Qwen2ForCausalLM"),
            "{e}"
        );
    }

    #[test]
    fn inconsistent_heads_are_refused() {
        let c = LlamaConfig::tiny(10, 8, 16, 1, 2, 3);
        assert!(c.validate().unwrap_err().contains("num_key_value_heads"));
        let c = LlamaConfig::tiny(10, 9, 16, 1, 2, 1);
        assert!(c.validate().unwrap_err().contains("multiple"));
    }
}
