//! The training core every task shares: a [`Policy`] and its learned
//! `log Z`, each with its own fused-Adam optimiser and learning rate, and the
//! one optimisation step (finite check, backward, clipping, policy step,
//! log Z step). Task adapters (the discrete trainer, the continuous trainer;
//! later LLM tuning and molecules) compute a loss and hand it here; nothing
//! about sampling or evaluation lives in this module.

use super::checkpoint::Checkpoint;
use crate::nn::fused_adam::FusedAdam;
use crate::objective::LossOutput;
use crate::policy::{LogZ, Policy, flat_gradients};
use anyhow::{Context, Result, bail};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, ModuleOptimizer, grad_clipping::GradientClippingConfig};
use burn::tensor::{Bytes, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// `[optim]`: the learner's Adam settings, read the same by every family.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Adam learning rate of the policy.
    pub lr: f64,
    /// Adam learning rate of the learned log Z.
    pub lr_log_z: f64,
    /// Per-parameter gradient-norm clipping (0 = off).
    pub clip_grad_norm: f64,
}

impl OptimConfig {
    pub fn validate(&self) -> Result<()> {
        for (k, v) in [("optim.lr", self.lr), ("optim.lr_log_z", self.lr_log_z)] {
            if !(v.is_finite() && v > 0.0) {
                bail!("{k} must be finite and positive, got {v}");
            }
        }
        if !(self.clip_grad_norm.is_finite() && self.clip_grad_norm >= 0.0) {
            bail!("optim.clip_grad_norm must be >= 0 (0 disables it)");
        }
        Ok(())
    }
}

/// A policy, its learned `log Z` and their optimisers.
pub struct Learner<P: Policy> {
    pub policy: P,
    pub log_z: LogZ,
    optim: OptimConfig,
    policy_opt: ModuleOptimizer,
    log_z_opt: ModuleOptimizer,
    /// Steps skipped for a non-finite loss or gradient: in total, and in a
    /// row up to the last step (0 after a good step).
    pub skipped_steps: u64,
    pub skipped_in_a_row: u64,
    /// Why the last step was skipped.
    pub last_skip_reason: Option<String>,
}

/// Seconds one [`Learner::step`] spent in backward and in the optimisers.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepTimes {
    pub backward: f64,
    pub optimiser: f64,
    /// The step was skipped (non-finite loss or gradient): nothing moved.
    pub skipped: bool,
}

impl<P: Policy> Learner<P> {
    /// A learner with fresh optimisers (per-parameter gradient-norm clipping
    /// at `optim.clip_grad_norm` when positive).
    pub fn new(policy: P, log_z: LogZ, optim: &OptimConfig) -> Self {
        let (policy_opt, log_z_opt) = fresh_optimisers(optim);
        Self {
            policy,
            log_z,
            optim: optim.clone(),
            policy_opt,
            log_z_opt,
            skipped_steps: 0,
            skipped_in_a_row: 0,
            last_skip_reason: None,
        }
    }

    /// Forgets the optimisers' moments (a run starts from fresh Adam state).
    pub fn reset_optimisers(&mut self) {
        (self.policy_opt, self.log_z_opt) = fresh_optimisers(&self.optim);
    }

    /// One optimisation step on `out`'s loss: back-propagates, steps the
    /// policy and, when `train_log_z`, the learned `log Z` with its own rate.
    /// A non-finite loss or gradient skips the step (nothing reaches the
    /// parameters or the optimiser moments): see [`Learner::skip`].
    pub fn step(&mut self, out: LossOutput, train_log_z: bool) -> Result<StepTimes> {
        if !out.value.is_finite() {
            return Ok(self.skip(format!("the loss is {}", out.value)));
        }
        if let Some(nll) = out.backward_nll.filter(|v| !v.is_finite()) {
            return Ok(self.skip(format!("the backward policy's NLL is {nll}")));
        }
        let t0 = Instant::now();
        let mut grads = out.loss.backward();
        let t1 = Instant::now();
        let gp = GradientsParams::from_module(&mut grads, &self.policy);
        let gz = train_log_z.then(|| GradientsParams::from_module(&mut grads, &self.log_z));
        if let Some(what) = first_non_finite(&self.policy, &gp, "policy").or_else(|| {
            gz.as_ref()
                .and_then(|g| first_non_finite(&self.log_z, g, "log Z"))
        }) {
            return Ok(self.skip(format!("the gradient of {what} is not finite")));
        }
        self.policy = self.policy_opt.step(self.optim.lr, self.policy.clone(), gp);
        if let Some(gz) = gz {
            self.log_z = self
                .log_z_opt
                .step(self.optim.lr_log_z, self.log_z.clone(), gz);
        }
        self.skipped_in_a_row = 0;
        Ok(StepTimes {
            backward: (t1 - t0).as_secs_f64(),
            optimiser: t1.elapsed().as_secs_f64(),
            skipped: false,
        })
    }

    /// Records a step that was not taken (a non-finite loss, gradient or
    /// residual): counted for the metrics and for `run.max_bad_steps`.
    pub fn skip(&mut self, reason: String) -> StepTimes {
        self.skipped_steps += 1;
        self.skipped_in_a_row += 1;
        self.last_skip_reason = Some(reason);
        StepTimes {
            skipped: true,
            ..StepTimes::default()
        }
    }

    /// The policy's gradient of `out`'s loss, flattened (no step): what the
    /// gradient-variance tools average over batches.
    pub fn policy_gradient(&self, out: LossOutput) -> Vec<f64> {
        flat_gradients(
            &self.policy,
            &GradientsParams::from_grads(out.loss.backward(), &self.policy),
        )
    }

    /// The current parameters as an inference snapshot.
    pub fn snapshot(&self) -> P::Snapshot {
        self.policy.snapshot()
    }
}

/// Checkpoint file names of the learner's state.
const POLICY_FILE: &str = "policy.safetensors";
const LOG_Z_FILE: &str = "log_z.safetensors";
const POLICY_OPT_FILE: &str = "policy_optimiser.bpk";
const LOG_Z_OPT_FILE: &str = "log_z_optimiser.bpk";
const IDS_FILE: &str = "param_ids.json";

impl<P: Policy> Learner<P> {
    /// The learner's checkpoint files: parameters (safetensors, readable by
    /// any safetensors tool), optimiser moments (burn's burnpack, keyed by
    /// parameter id) and the parameter ids by path, which tie the two
    /// together again in a fresh process.
    pub fn checkpoint_files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let ids = serde_json::json!({
            "policy": param_ids(&self.policy),
            "log_z": param_ids(&self.log_z),
        });
        Ok(vec![
            (POLICY_FILE.into(), safetensors_bytes(&self.policy)?),
            (LOG_Z_FILE.into(), safetensors_bytes(&self.log_z)?),
            (
                POLICY_OPT_FILE.into(),
                self.policy_opt
                    .into_bytes()
                    .map_err(|e| anyhow::anyhow!("cannot encode the optimiser state: {e:?}"))?
                    .to_vec(),
            ),
            (
                LOG_Z_OPT_FILE.into(),
                self.log_z_opt
                    .into_bytes()
                    .map_err(|e| anyhow::anyhow!("cannot encode the optimiser state: {e:?}"))?
                    .to_vec(),
            ),
            (IDS_FILE.into(), serde_json::to_vec_pretty(&ids)?),
        ])
    }

    /// Loads parameters and optimiser state from a checkpoint. The policy and
    /// log Z must already have the checkpoint's shapes (built from the same
    /// config); any tensor missing, left over or of another shape is an error
    /// naming the file.
    pub fn restore(&mut self, ckpt: &Checkpoint) -> Result<()> {
        let ids: BTreeMap<String, BTreeMap<String, u64>> =
            serde_json::from_slice(ckpt.file(IDS_FILE)?)
                .with_context(|| format!("{} is not valid", ckpt.path_of(IDS_FILE).display()))?;
        let group = |k: &str| {
            ids.get(k)
                .cloned()
                .with_context(|| format!("{} has no `{k}` entry", ckpt.path_of(IDS_FILE).display()))
        };
        self.policy = load_safetensors(self.policy.clone(), ckpt, POLICY_FILE, group("policy")?)?;
        self.log_z = load_safetensors(self.log_z.clone(), ckpt, LOG_Z_FILE, group("log_z")?)?;
        let opt = |name: &str, fresh: ModuleOptimizer| {
            fresh
                .from_bytes(Bytes::from_bytes_vec(ckpt.file(name)?.to_vec()))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{} is not a valid optimiser state: {e:?}",
                        ckpt.path_of(name).display()
                    )
                })
        };
        let (p, z) = fresh_optimisers(&self.optim);
        self.policy_opt = opt(POLICY_OPT_FILE, p)?;
        self.log_z_opt = opt(LOG_Z_OPT_FILE, z)?;
        Ok(())
    }
}

/// Path of every float parameter (dotted field names) -> its id.
fn param_ids<M: Module>(module: &M) -> BTreeMap<String, u64> {
    struct Ids {
        path: Vec<String>,
        out: BTreeMap<String, u64>,
    }
    impl ModuleVisitor for Ids {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.out.insert(self.path.join("."), param.id.val());
        }
    }
    let mut v = Ids {
        path: Vec::new(),
        out: BTreeMap::new(),
    };
    module.visit(&mut v);
    v.out
}

/// Gives every float parameter the id recorded for its path, so optimiser
/// state saved under those ids applies to it again.
fn set_param_ids<M: Module>(module: M, ids: &BTreeMap<String, u64>) -> Result<M> {
    struct SetIds<'a> {
        path: Vec<String>,
        ids: &'a BTreeMap<String, u64>,
        missing: Vec<String>,
    }
    impl ModuleMapper for SetIds<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let path = self.path.join(".");
            let Some(&id) = self.ids.get(&path) else {
                self.missing.push(path);
                return param;
            };
            let (_, value, mapper) = param.consume();
            Param::from_mapped_value(ParamId::from(id), value, mapper)
        }
    }
    let mut m = SetIds {
        path: Vec::new(),
        ids,
        missing: Vec::new(),
    };
    let module = module.map(&mut m);
    if !m.missing.is_empty() {
        bail!("no saved parameter id for {}", m.missing.join(", "));
    }
    Ok(module)
}

fn safetensors_bytes<M: Module>(module: &M) -> Result<Vec<u8>> {
    crate::nn::store::to_safetensors(module, "ftb").map_err(anyhow::Error::msg)
}

fn load_safetensors<M: Module>(
    module: M,
    ckpt: &Checkpoint,
    name: &str,
    ids: BTreeMap<String, u64>,
) -> Result<M> {
    let path = ckpt.path_of(name);
    let module = crate::nn::store::from_safetensors(module, ckpt.file(name)?.to_vec())
        .map_err(|e| anyhow::anyhow!("{} does not fit this network: {e}", path.display()))?;
    set_param_ids(module, &ids).with_context(|| format!("{}", path.display()))
}

/// The first parameter (by path) whose gradient holds a NaN or infinity.
fn first_non_finite<M: Module>(module: &M, grads: &GradientsParams, what: &str) -> Option<String> {
    struct Check<'a> {
        grads: &'a GradientsParams,
        path: Vec<String>,
        bad: Option<String>,
    }
    impl ModuleVisitor for Check<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.bad.is_some() {
                return;
            }
            if let Some(g) = self.grads.get::<D>(param.id) {
                // A NaN or infinity anywhere makes the sum non-finite.
                let s = g.sum().into_data_as::<f64>().try_to_vec::<f64>();
                if !s.is_ok_and(|v| v.iter().all(|x| x.is_finite())) {
                    self.bad = Some(self.path.join("."));
                }
            }
        }
    }
    let mut c = Check {
        grads,
        path: Vec::new(),
        bad: None,
    };
    module.visit(&mut c);
    c.bad.map(|p| format!("{what} parameter `{p}`"))
}

fn fresh_optimisers(optim: &OptimConfig) -> (ModuleOptimizer, ModuleOptimizer) {
    let clip = (optim.clip_grad_norm > 0.0)
        .then_some(GradientClippingConfig::Norm(optim.clip_grad_norm as f32));
    (FusedAdam::init(clip.clone()), FusedAdam::init(clip))
}
