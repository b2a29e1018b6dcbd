//! LoRA adapters on disk in PEFT's format, so adapters trained here load in
//! Hugging Face PEFT (and back): `adapter_config.json` plus
//! `adapter_model.safetensors` with tensors named
//! `base_model.model.model.layers.{i}.{self_attn|mlp}.{proj}.lora_{A|B}.weight`,
//! `lora_A` of shape `[r, in]` and `lora_B` of shape `[out, r]`.

use super::LlmError;
use super::model::{LlamaModel, LoraConfig, Projection};
use super::safetensors_io::{SafetensorsWeights, SaveDtype, write_tensors};
use burn::module::Param;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The fields of PEFT's `adapter_config.json` this crate writes and reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    /// Always `"LORA"`.
    pub peft_type: String,
    /// `"CAUSAL_LM"`.
    #[serde(default)]
    pub task_type: Option<String>,
    /// Rank.
    pub r: usize,
    /// Scale numerator (`alpha / r`).
    pub lora_alpha: f64,
    /// Adapted projection names.
    pub target_modules: Vec<String>,
    /// Not used here (0 when written).
    #[serde(default)]
    pub lora_dropout: f64,
    /// Only `"none"` is supported.
    #[serde(default = "none")]
    pub bias: String,
    /// Must be false (weights are `[out, in]` as in `nn.Linear`).
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// Rank-stabilised scaling (`alpha / sqrt(r)`) is not supported.
    #[serde(default)]
    pub use_rslora: bool,
    /// Where the base model came from (informational).
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    /// PEFT writes it; true for a saved adapter.
    #[serde(default)]
    pub inference_mode: bool,
}

fn none() -> String {
    "none".into()
}

/// Each adapted projection: `(PEFT module path, projection)`.
fn adapted(model: &LlamaModel) -> Vec<(String, &Projection)> {
    let mut out = Vec::new();
    for (i, l) in model.layers.iter().enumerate() {
        for (name, p) in l.projections() {
            if p.lora.is_some() {
                out.push((format!("base_model.model.model.layers.{i}.{name}"), p));
            }
        }
    }
    out
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data")
}

/// Writes the model's adapters to `dir` (created) as `adapter_config.json`
/// and `adapter_model.safetensors` (F32). Errors if it has none.
pub fn save_peft_adapter(
    model: &LlamaModel,
    dir: &Path,
    base_model_name_or_path: Option<&str>,
) -> Result<(), LlmError> {
    let adapters = adapted(model);
    let Some((_, first)) = adapters.first() else {
        return Err(LlmError::Invalid(
            "the model has no LoRA adapters to save".into(),
        ));
    };
    let first = first.lora.as_ref().expect("adapted");
    let r = first.a.dims()[1];
    let scale = first.scale;
    let mut targets: Vec<String> = Vec::new();
    let mut tensors = Vec::new();
    for (path, p) in &adapters {
        let l = p.lora.as_ref().expect("adapted");
        let [inp, rank] = l.a.dims();
        let [_, out] = l.b.dims();
        if rank != r || l.scale != scale {
            return Err(LlmError::Invalid(format!(
                "{path}: adapters of different ranks or scales cannot share one adapter_config.json"
            )));
        }
        let short = path
            .rsplit('.')
            .next()
            .expect("a projection name")
            .to_string();
        if !targets.contains(&short) {
            targets.push(short);
        }
        // PEFT layout: lora_A [r, in], lora_B [out, r].
        tensors.push((
            format!("{path}.lora_A.weight"),
            vec![r, inp],
            host(l.a.val().transpose()),
        ));
        tensors.push((
            format!("{path}.lora_B.weight"),
            vec![out, r],
            host(l.b.val().transpose()),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| LlmError::io(dir, e))?;
    let config = AdapterConfig {
        peft_type: "LORA".into(),
        task_type: Some("CAUSAL_LM".into()),
        r,
        lora_alpha: scale * r as f64,
        target_modules: targets,
        lora_dropout: 0.0,
        bias: none(),
        fan_in_fan_out: false,
        use_rslora: false,
        base_model_name_or_path: base_model_name_or_path.map(str::to_string),
        inference_mode: true,
    };
    let config_path = dir.join("adapter_config.json");
    let json = serde_json::to_string_pretty(&config)
        .map_err(|e| LlmError::format(&config_path, e.to_string()))?;
    std::fs::write(&config_path, json).map_err(|e| LlmError::io(&config_path, e))?;
    write_tensors(
        &dir.join("adapter_model.safetensors"),
        &tensors,
        SaveDtype::F32,
    )
}

/// Attaches the PEFT adapter in `dir` to `model` (which must have none):
/// base weights frozen, adapter factors from the file. Every adapted
/// projection must be in the file with the configured rank.
pub fn load_peft_adapter(model: LlamaModel, dir: &Path) -> Result<LlamaModel, LlmError> {
    let config_path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| LlmError::io(&config_path, e))?;
    let config: AdapterConfig = serde_json::from_str(&text).map_err(|e| {
        LlmError::format(
            &config_path,
            format!("not a valid adapter_config.json: {e}"),
        )
    })?;
    let refuse = |what: String| Err(LlmError::format(&config_path, what));
    if config.peft_type != "LORA" {
        return refuse(format!("peft_type {:?} is not LORA", config.peft_type));
    }
    if config.fan_in_fan_out || config.use_rslora || config.bias != "none" {
        return refuse(
            "fan_in_fan_out, use_rslora and bias other than \"none\" are not supported".into(),
        );
    }
    let lora = LoraConfig {
        rank: config.r,
        alpha: config.lora_alpha,
        target_modules: config.target_modules.clone(),
        seed: 0,
    };
    let mut model = model
        .with_lora(&lora)
        .map_err(|e| LlmError::format(&config_path, e.to_string()))?;
    let weights_path = dir.join("adapter_model.safetensors");
    let mut file = SafetensorsWeights::open(&weights_path)?;
    let device = model.device();
    let r = config.r;
    let paths: Vec<String> = adapted(&model).into_iter().map(|(p, _)| p).collect();
    let mut projs: Vec<&mut Projection> = Vec::new();
    for l in &mut model.layers {
        for (_, p) in l.projections_mut() {
            if p.lora.is_some() {
                projs.push(p);
            }
        }
    }
    for (path, p) in paths.iter().zip(projs) {
        let [inp, out] = p.dims();
        let mut get = |name: String, shape: [usize; 2]| -> Result<Tensor<2>, LlmError> {
            use super::model::WeightSource;
            let v = file
                .get(&name, &shape)?
                .ok_or_else(|| LlmError::MissingTensor {
                    path: weights_path.clone(),
                    name: name.clone(),
                })?;
            Ok(Tensor::<2>::from_data(TensorData::new(v, shape), &device).transpose())
        };
        let a = get(format!("{path}.lora_A.weight"), [r, inp])?;
        let b = get(format!("{path}.lora_B.weight"), [out, r])?;
        let l = p.lora.as_mut().expect("attached");
        l.a = Param::from_tensor(a);
        l.b = Param::from_tensor(b);
    }
    Ok(model)
}
