//! Adam with one fused kernel per parameter tensor. burn's Adam updates each
//! parameter with about thirteen elementwise tensor ops (each a full pass
//! and an allocation); at GFlowNet sizes that was 10-15% of a training step.
//! This runs the same arithmetic, in the same order and precision, in one
//! pass that updates the moments and the parameter in place when it owns
//! them. The state is burn's [`AdamState`], and other dtypes than f32 fall
//! back to burn's [`Adam`], so the two are interchangeable (a test checks
//! they agree step by step).

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{
    AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::tensor::{Bytes, Device, Tensor};

/// The fused Adam update (a burn backend extension on flex; optimisers run
/// on the inner, non-autodiff tensors).
#[backend_extension(Flex)]
pub trait FusedAdamOps: Backend {
    /// One Adam step of `param` with `grad` and the moments `m`, `v`:
    /// returns the new parameter, `m` and `v`. `combined` is
    /// `sqrt(1 - b2^t) / (1 - b1^t)` and `eps` is `epsilon * sqrt(1 - b2^t)`.
    #[allow(clippy::too_many_arguments)]
    fn fused_adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        beta_1: f32,
        beta_2: f32,
        combined: f32,
        eps: f32,
        lr: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// A contiguous f32 tensor this code may write: the same buffer when it is
/// the only owner, otherwise a copy.
fn owned(t: FlexTensor) -> FlexTensor {
    if t.is_unique() && t.layout().is_contiguous() {
        return t;
    }
    let c = t.to_contiguous();
    let (s, e) = c.layout().contiguous_offsets().expect("contiguous");
    let data = c.storage::<f32>()[s..e].to_vec();
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(c.shape()),
        DType::F32,
    )
}

/// The elements of a contiguous tensor (its buffer may be larger).
fn elements_mut(t: &mut FlexTensor) -> &mut [f32] {
    let (s, e) = t.layout().contiguous_offsets().expect("contiguous");
    &mut t.storage_mut::<f32>()[s..e]
}

/// The parameter and moment buffers, shared by the pieces of one update
/// (each writes its own range).
#[derive(Clone, Copy)]
struct Ptrs(*mut f32, *mut f32, *mut f32);
unsafe impl Send for Ptrs {}
unsafe impl Sync for Ptrs {}

impl FusedAdamOps for Flex {
    fn fused_adam_step(
        param: FlexTensor,
        grad: FlexTensor,
        m: FlexTensor,
        v: FlexTensor,
        beta_1: f32,
        beta_2: f32,
        combined: f32,
        eps: f32,
        lr: f32,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut p, mut m, mut v) = (owned(param), owned(m), owned(v));
        let g = grad.to_contiguous();
        let (gs, ge) = g.layout().contiguous_offsets().expect("contiguous");
        let g = &g.storage::<f32>()[gs..ge];
        let (f1, f2) = (1.0 - beta_1, 1.0 - beta_2);
        let ps = elements_mut(&mut p);
        let ms = elements_mut(&mut m);
        let vs = elements_mut(&mut v);
        assert!(
            ps.len() == g.len() && ms.len() == g.len() && vs.len() == g.len(),
            "adam: parameter, gradient and moments differ in size"
        );
        // Pieces of at least 16K elements on the team (the result is the same
        // elementwise whatever the split).
        let len = g.len();
        let k = rayon::current_num_threads().min(len / (1 << 14)).max(1);
        let ptrs = Ptrs(ps.as_mut_ptr(), ms.as_mut_ptr(), vs.as_mut_ptr());
        super::team::run(k, rayon::current_num_threads(), &|piece| {
            #[allow(clippy::redundant_locals)]
            let ptrs = ptrs;
            let (a, b) = (len * piece / k, len * (piece + 1) / k);
            // SAFETY: elements a..b of p, m and v are this piece's alone.
            let (ps, ms, vs) = unsafe {
                (
                    std::slice::from_raw_parts_mut(ptrs.0.add(a), b - a),
                    std::slice::from_raw_parts_mut(ptrs.1.add(a), b - a),
                    std::slice::from_raw_parts_mut(ptrs.2.add(a), b - a),
                )
            };
            for (((p, m), v), &g) in ps
                .iter_mut()
                .zip(ms.iter_mut())
                .zip(vs.iter_mut())
                .zip(&g[a..b])
            {
                // The order of burn's ops: m b1 + g (1 - b1); v b2 + g^2 (1 - b2);
                // (m c) / (sqrt(v) + eps); p - u lr.
                *m = *m * beta_1 + g * f1;
                *v = *v * beta_2 + (g * g) * f2;
                let u = (*m * combined) / (v.sqrt() + eps);
                *p -= u * lr;
            }
        });
        (p, m, v)
    }
}

/// Adam (burn's defaults: beta 0.9 / 0.999, epsilon 1e-5, no weight decay,
/// no AMSGrad) with the fused update.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// For dtypes the kernel does not cover.
    fallback: burn::optim::Adam,
}

impl Default for FusedAdam {
    fn default() -> Self {
        let (beta_1, beta_2, epsilon) = (0.9, 0.999, 1e-5);
        Self {
            beta_1,
            beta_2,
            epsilon,
            fallback: AdamConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .build(),
        }
    }
}

impl FusedAdam {
    /// A module optimiser with optional gradient clipping, as
    /// `AdamConfig::new().with_grad_clipping(clip).init()` gives.
    ///
    /// ```
    /// use burn::optim::GradientsParams;
    /// use burn::tensor::{Device, Distribution, Tensor};
    /// let device = Device::flex().autodiff();
    /// let mlp = ftb::policy::mlp::Mlp::new(3, 8, 1, 2, &device);
    /// let mut optim = ftb::train::fused_adam::FusedAdam::init(None);
    /// let x = Tensor::<2>::random([4, 3], Distribution::Default, &device);
    /// let grads = GradientsParams::from_grads(mlp.forward(x).sum().backward(), &mlp);
    /// let mlp = optim.step(1e-3, mlp, grads);
    /// ```
    pub fn init(clip: Option<GradientClippingConfig>) -> ModuleOptimizer {
        let optim = ModuleOptimizer::from(Self::default());
        match clip {
            Some(c) => optim.with_grad_clipping(c.init()),
            None => optim,
        }
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if tensor.dtype() != DType::F32 || grad.dtype() != DType::F32 {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let (time, m, v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1,
                s.momentum.moment_2,
            ),
            None => (1, tensor.zeros_like(), tensor.zeros_like()),
        };
        let t = time as i32;
        let bias_correction2_sqrt = (1.0 - self.beta_2.powi(t)).sqrt();
        let combined = bias_correction2_sqrt / (1.0 - self.beta_1.powi(t));
        let (p, m, v) = <Dispatch as FusedAdamOps>::fused_adam_step(
            tensor.into_dispatch(),
            grad.into_dispatch(),
            m.into_dispatch(),
            v.into_dispatch(),
            self.beta_1,
            self.beta_2,
            combined,
            self.epsilon * bias_correction2_sqrt,
            lr as f32,
        );
        let momentum =
            AdaptiveMomentumState::new(time, Tensor::from_dispatch(m), Tensor::from_dispatch(v));
        (Tensor::from_dispatch(p), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}
