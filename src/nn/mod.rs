//! The ground floor of the networks: layers and kernels that every model
//! (GFlowNet policies, graph networks, the LLM, chemistry's proxy) builds on,
//! and that import nothing else of the crate.
//!
//! * [`mlp`]: the multilayer perceptron, each layer one fused op;
//! * [`linear`], [`fused`]: the fused product + bias + activation and the
//!   masked log-softmax, forward and backward, on burn's flex backend;
//! * [`team`]: helper threads that spin between a step's small jobs;
//! * [`fused_adam`]: Adam as one pass over each parameter;
//! * [`store`]: a module's parameters as reproducible safetensors bytes and back;
//! * [`init_seeded`] / [`try_init_seeded`], [`masked_log_softmax`], [`mask_tensor`].

pub mod fused;
pub mod fused_adam;
pub mod linear;
pub mod mlp;
pub mod store;
pub mod team;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Bool, Device, Tensor, TensorData};

/// Seeds the backend's random number generator, runs `build` (parameter
/// initialisation) and draws every parameter while no other thread can draw
/// from it: burn's flex backend keeps one process-wide generator, and burn
/// initialises parameters lazily (at their first use), so two runs built at
/// the same time in one process (tests, experiments on threads) would
/// otherwise interleave their draws and lose run-to-run determinism.
pub fn init_seeded<M: Module>(device: &Device, seed: u64, build: impl FnOnce() -> M) -> M {
    match try_init_seeded(device, seed, || Ok::<M, std::convert::Infallible>(build())) {
        Ok(m) => m,
        Err(never) => match never {},
    }
}

/// [`init_seeded`] for a fallible `build`.
pub fn try_init_seeded<M: Module, E>(
    device: &Device,
    seed: u64,
    build: impl FnOnce() -> Result<M, E>,
) -> Result<M, E> {
    static BACKEND_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let module = build()?;
    draw_parameters(&module);
    Ok(module)
}

/// Initialises every lazily initialised float parameter now, in the
/// module's visiting order.
fn draw_parameters<M: Module>(module: &M) {
    struct Draw;
    impl ModuleVisitor for Draw {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Draw);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn values(m: &mlp::Mlp) -> Vec<f32> {
        struct Collect(Vec<f32>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0
                    .extend(param.val().into_data().try_to_vec::<f32>().expect("f32"));
            }
        }
        let mut c = Collect(Vec::new());
        m.visit(&mut c);
        c.0
    }

    /// A model built under a seed has that seed's parameters even while
    /// another thread reseeds the backend's generator and draws from it (burn
    /// draws lazily, at first use: before `init_seeded` drew them itself,
    /// concurrent runs in one process got each other's numbers).
    #[test]
    fn parameters_are_drawn_under_their_seed_while_other_threads_draw() {
        let device = Device::flex();
        let build = |seed| init_seeded(&device, seed, || mlp::Mlp::new(8, 16, 2, 3, &device));
        let reference = values(&build(7));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = values(&build(99));
                }
            });
            let differing = (0..50)
                .filter(|_| {
                    let m = build(7);
                    std::thread::sleep(std::time::Duration::from_micros(200));
                    values(&m) != reference
                })
                .count();
            stop.store(true, Ordering::Relaxed);
            assert_eq!(differing, 0, "models of seed 7 with other parameters");
        });
    }
}
