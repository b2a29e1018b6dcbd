//! The ground floor of the networks: layers and kernels that every model
//! (GFlowNet policies, graph networks, the LLM, chemistry's proxy) builds on,
//! and that import nothing else of the crate.
//!
//! * [`mlp`]: the multilayer perceptron, each layer one fused op;
//! * [`linear`], [`fused`]: the fused product + bias + activation and the
//!   masked log-softmax, forward and backward, on burn's flex backend;
//! * [`team`]: helper threads that spin between a step's small jobs;
//! * [`fused_adam`]: Adam as one pass over each parameter;
//! * [`init_seeded`], [`masked_log_softmax`], [`mask_tensor`].

pub mod fused;
pub mod fused_adam;
pub mod linear;
pub mod mlp;
pub mod team;

use burn::tensor::{Bool, Device, Tensor, TensorData};

/// Seeds the backend's random number generator and runs `build` (parameter
/// initialisation) while no other thread can draw from it: burn's flex
/// backend keeps one process-wide generator, so two runs initialised at the
/// same time in one process (tests, experiments on threads) would otherwise
/// interleave their draws and lose run-to-run determinism.
pub fn init_seeded<T>(device: &Device, seed: u64, build: impl FnOnce() -> T) -> T {
    static BACKEND_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    build()
}

/// Log-softmax over allowed actions, masked entries `-inf`: one fused kernel
/// forward and backward ([`fused::masked_log_softmax`]). Rows with no allowed
/// action are all `-inf` (see [`mask_tensor`], which unmasks them anyway).
pub fn masked_log_softmax(logits: Tensor<2>, allowed: Tensor<2, Bool>) -> Tensor<2> {
    fused::masked_log_softmax(logits, allowed)
}

/// Builds a `[n, k]` mask tensor of allowed actions. Rows with no allowed
/// action (e.g. the backward mask of `s0`) are fully unmasked so the softmax
/// stays finite; no action is ever gathered from them.
pub fn mask_tensor(flags: &[bool], k: usize, device: &Device) -> Tensor<2, Bool> {
    let n = flags.len() / k;
    let mut fixed = flags.to_vec();
    for row in fixed.chunks_mut(k) {
        if !row.iter().any(|&b| b) {
            row.iter_mut().for_each(|b| *b = true);
        }
    }
    Tensor::<2, Bool>::from_data(TensorData::new(fixed, [n, k]), device)
}
