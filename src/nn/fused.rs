//! Fused kernels for the policy's hot path, as a burn backend extension: the
//! flex backend gets one kernel per op, and flex under autodiff gets a
//! hand-written backward with the same Jacobian as burn's composition.
//!
//! * Masked log-softmax: burn composes it from `bool_not`, `mask_fill`,
//!   `max_dim`, `sub`, `exp`, `sum_dim`, `log`, `sub` (eight ops forward,
//!   each taped with its own backward). Fused: one pass forward, and
//!   `dx = g - softmax * sum(g)` on allowed actions (0 on masked ones) back.
//! * LeakyReLU under autodiff: burn falls back to `lower_elem`, `mul_scalar`,
//!   `mask_where` (three full-size passes forward, more backward). Fused:
//!   flex's one-pass kernel forward, `dx = g * (x < 0 ? slope : 1)` back.
//!
//! At GFlowNet sizes the op count matters as much as the arithmetic: every
//! sampling step and every learner evaluation runs these. Only flex (the
//! project's backend) is routed; a future GPU backend adds its own impl of
//! [`FusedPolicyOps`] (the extension panics on a backend it does not list).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::ops::{ActivationOps, BoolTensorOps, FloatTensorOps};
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{Autodiff, Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Bool, Bytes, Tensor};

/// Fused policy kernels (a burn backend extension, routed by `Dispatch`).
#[backend_extension(Flex, Autodiff)]
pub trait FusedPolicyOps: Backend {
    /// Row-wise log-softmax of `logits` `[n, k]` over the actions where
    /// `allowed` `[n, k]` is true; masked entries are `-inf`.
    fn masked_log_softmax(
        logits: FloatTensor<Self>,
        allowed: BoolTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `x` where `x >= 0`, `slope * x` elsewhere.
    fn fused_leaky_relu(x: FloatTensor<Self>, slope: f64) -> FloatTensor<Self>;
}

/// LeakyReLU with a one-kernel forward and backward (burn's autodiff path
/// records three ops).
///
/// ```
/// use burn::tensor::{Device, Tensor, TensorData};
/// let x = Tensor::<1>::from_data(TensorData::new(vec![-2.0f32, 0.0, 3.0], [3]), &Device::flex());
/// let y: Vec<f32> = ftb::policy::fused::leaky_relu(x, 0.01).into_data().try_to_vec().unwrap();
/// assert_eq!(y, vec![-0.02, 0.0, 3.0]);
/// ```
pub fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedPolicyOps>::fused_leaky_relu(
        x.into_dispatch(),
        slope,
    ))
}

/// Log-softmax over allowed actions (`[n, k]` logits and mask): masked
/// entries are `-inf`, and a row with no allowed action is all `-inf` with
/// zero gradient (callers never gather from such rows; see
/// [`super::mask_tensor`]).
///
/// ```
/// use burn::tensor::{Bool, Device, Tensor, TensorData};
/// let device = Device::flex();
/// let logits = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 3]), &device);
/// let allowed = Tensor::<2, Bool>::from_data(TensorData::new(vec![true, false, true], [1, 3]), &device);
/// let lp: Vec<f32> = ftb::policy::fused::masked_log_softmax(logits, allowed).into_data().try_to_vec().unwrap();
/// let z = (1f32.exp() + 3f32.exp()).ln();
/// assert!((lp[0] - (1.0 - z)).abs() < 1e-6 && lp[1] == f32::NEG_INFINITY);
/// assert!((lp[2] - (3.0 - z)).abs() < 1e-6);
/// ```
pub fn masked_log_softmax(logits: Tensor<2>, allowed: Tensor<2, Bool>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as FusedPolicyOps>::masked_log_softmax(
        logits.into_dispatch(),
        allowed.into_dispatch(),
    ))
}

/// burn's composition: the reference the fused kernel is tested against, and
/// what the kernels compute for dtypes other than f32.
pub fn masked_log_softmax_composed(logits: Tensor<2>, allowed: Tensor<2, Bool>) -> Tensor<2> {
    burn::tensor::activation::log_softmax(
        logits.mask_fill(allowed.bool_not(), f32::NEG_INFINITY),
        1,
    )
}

impl FusedPolicyOps for Flex {
    fn masked_log_softmax(logits: FlexTensor, allowed: FlexTensor) -> FlexTensor {
        let shape = logits.shape();
        assert_eq!(
            shape.num_dims(),
            2,
            "masked_log_softmax: logits must be [n, k]"
        );
        assert_eq!(
            shape,
            allowed.shape(),
            "masked_log_softmax: mask shape differs from logits"
        );
        if logits.dtype() != DType::F32 {
            let masked =
                Flex::float_mask_fill(logits, Flex::bool_not(allowed), f32::NEG_INFINITY.into());
            return Flex::log_softmax(masked, 1);
        }
        let (n, k) = (shape[0], shape[1]);
        let mut out = vec![0.0f32; n * k];
        if k > 0 {
            let x = Rows::new(logits);
            let mask = allowed.to_contiguous();
            let (start, _) = mask.layout().contiguous_offsets().expect("contiguous mask");
            let m = &mask.storage::<u8>()[start..start + n * k];
            for (r, (o, mr)) in out.chunks_exact_mut(k).zip(m.chunks_exact(k)).enumerate() {
                log_softmax_row(x.row(r), mr, o);
            }
        }
        FlexTensor::new(
            Bytes::from_elems(out),
            Layout::contiguous(shape),
            DType::F32,
        )
    }

    fn fused_leaky_relu(x: FlexTensor, slope: f64) -> FlexTensor {
        Flex::leaky_relu(x, slope.into())
    }
}

/// LeakyReLU's gain at `z`: `slope` below zero, else 1, exactly. Written as
/// arithmetic on the comparison (no branch, no select on a loaded value) so
/// that the element loops vectorise: with `if z < 0.0 { slope } else { 1.0 }`
/// the compiler kept a scalar branch per element, and on random signs its
/// mispredictions made these loops a third of a batch-512 step (perf,
/// 2026-12-03).
#[inline(always)]
pub(crate) fn leaky_gain(z: f32, slope: f32) -> f32 {
    let negative = f32::from(u8::from(z < 0.0));
    negative * slope + (1.0 - negative)
}

/// Backward of LeakyReLU from its input: `g` where `x >= 0` (or NaN, as in
/// burn's composition), `slope * g` where `x < 0`.
fn leaky_relu_backward(x: FlexTensor, grad: FlexTensor, slope: f64) -> FlexTensor {
    let shape = x.shape();
    let (x, g) = (x.to_contiguous(), grad.to_contiguous());
    let (xs, _) = x.layout().contiguous_offsets().expect("contiguous");
    let (gs, _) = g.layout().contiguous_offsets().expect("contiguous");
    let n = shape.num_elements();
    let xv = &x.storage::<f32>()[xs..xs + n];
    let gv = &g.storage::<f32>()[gs..gs + n];
    let slope = slope as f32;
    let out: Vec<f32> = xv
        .iter()
        .zip(gv)
        .map(|(&x, &g)| g * leaky_gain(x, slope))
        .collect();
    FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// One row: `o = x - max - ln(sum exp(x - max))` over allowed entries.
#[inline]
fn log_softmax_row(x: &[f32], allowed: &[u8], o: &mut [f32]) {
    let max = x
        .iter()
        .zip(allowed)
        .filter(|(_, a)| **a != 0)
        .fold(f32::NEG_INFINITY, |m, (&v, _)| m.max(v));
    if max == f32::NEG_INFINITY {
        o.fill(f32::NEG_INFINITY);
        return;
    }
    let sum: f32 = x
        .iter()
        .zip(allowed)
        .filter(|(_, a)| **a != 0)
        .map(|(&v, _)| (v - max).exp())
        .sum();
    let shift = max + sum.ln();
    for ((o, &v), &a) in o.iter_mut().zip(x).zip(allowed) {
        *o = if a != 0 { v - shift } else { f32::NEG_INFINITY };
    }
}

/// A 2-D f32 tensor whose rows are each contiguous, with where row 0 starts
/// and the distance between rows. A column slice (e.g. the forward logits
/// within the trunk's output) is used in place; other layouts are copied once.
struct Rows {
    tensor: FlexTensor,
    start: usize,
    stride: usize,
    k: usize,
}

impl Rows {
    fn new(t: FlexTensor) -> Self {
        let k = t.shape()[1];
        let tensor = match t.layout().as_2d_strides() {
            Some((_, _, s0, 1)) if s0 >= k as isize => t,
            _ => t.to_contiguous(),
        };
        let (_, _, s0, _) = tensor.layout().as_2d_strides().expect("a 2-D tensor");
        Rows {
            start: tensor.layout().start_offset(),
            stride: s0.max(k as isize) as usize,
            k,
            tensor,
        }
    }

    #[inline]
    fn row(&self, r: usize) -> &[f32] {
        let s = self.start + r * self.stride;
        &self.tensor.storage::<f32>()[s..s + self.k]
    }
}

/// Backward of the fused op from its output `y` (the log-probabilities):
/// `dx = g - exp(y) * sum(g)` on allowed entries, 0 on masked ones (`y = -inf`).
fn masked_log_softmax_backward(y: FlexTensor, grad: FlexTensor) -> FlexTensor {
    let shape = y.shape();
    let (n, k) = (shape[0], shape[1]);
    let y = Rows::new(y);
    let g = Rows::new(grad);
    let mut out = vec![0.0f32; n * k];
    if k > 0 {
        for (r, o) in out.chunks_exact_mut(k).enumerate() {
            let (yr, gr) = (y.row(r), g.row(r));
            let total: f32 = gr.iter().sum();
            for ((o, &yv), &gv) in o.iter_mut().zip(yr).zip(gr) {
                *o = if yv == f32::NEG_INFINITY {
                    0.0
                } else {
                    gv - yv.exp() * total
                };
            }
        }
    }
    FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(shape),
        DType::F32,
    )
}

impl<C: CheckpointStrategy> FusedPolicyOps for Autodiff<Flex, C> {
    fn masked_log_softmax(
        logits: FloatTensor<Self>,
        allowed: BoolTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct MaskedLogSoftmax;

        impl Backward<Flex, 1> for MaskedLogSoftmax {
            /// The forward output (the log-probabilities), all the backward needs.
            type State = FlexTensor;

            fn backward(
                self,
                ops: Ops<FlexTensor, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let Ops {
                    parents,
                    node,
                    state,
                } = ops;
                unary::<Flex, _>(parents, node, grads, |grad| {
                    masked_log_softmax_backward(state, grad)
                });
            }
        }

        if logits.dtype() != DType::F32 {
            let masked =
                Self::float_mask_fill(logits, Self::bool_not(allowed), f32::NEG_INFINITY.into());
            return Self::log_softmax(masked, 1);
        }
        let (primitive, node) = logits.into_parts();
        match MaskedLogSoftmax
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = Flex::masked_log_softmax(primitive, allowed);
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::masked_log_softmax(primitive, allowed)),
        }
    }

    fn fused_leaky_relu(x: FloatTensor<Self>, slope: f64) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LeakyRelu;

        impl Backward<Flex, 1> for LeakyRelu {
            /// The input and the slope.
            type State = (FlexTensor, f64);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let Ops {
                    parents,
                    node,
                    state: (x, slope),
                } = ops;
                unary::<Flex, _>(parents, node, grads, |grad| {
                    leaky_relu_backward(x, grad, slope)
                });
            }
        }

        if x.dtype() != DType::F32 {
            return Self::leaky_relu(x, slope.into());
        }
        let (primitive, node) = x.into_parts();
        match LeakyRelu.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = Flex::leaky_relu(primitive.clone(), slope.into());
                prep.finish((primitive, slope), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::leaky_relu(primitive, slope.into())),
        }
    }
}
