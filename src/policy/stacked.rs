//! Two MLPs of the same depth and width on the same input, evaluated as one:
//! each layer's weights are stacked `[2, in, out]`, so the forward network and
//! a separate learned backward network run as one batched matmul, one bias
//! add and one activation per layer instead of two of each (half the ops on
//! the autodiff tape). The networks stay independent: no parameter is shared,
//! and each one's gradient is exactly what it would be alone.
//!
//! The narrower output layer is padded with zero columns that are never read:
//! their gradient is zero, so Adam leaves them at zero.

use super::mlp::Mlp;
use burn::module::{Module, Param};
use burn::tensor::Tensor;

#[derive(Module, Debug)]
pub struct StackedMlp {
    /// Per layer, `[2, in, out]`.
    weights: Vec<Param<Tensor<3>>>,
    /// Per layer, `[2, 1, out]`.
    biases: Vec<Param<Tensor<3>>>,
    #[module(skip)]
    negative_slope: f64,
    /// Output widths of the two networks (before padding).
    #[module(skip)]
    outputs: [usize; 2],
    /// Multiply-adds per row of the two networks, padding excluded.
    #[module(skip)]
    macs: usize,
}

impl StackedMlp {
    /// Stacks two networks built by [`Mlp::new`] with the same input, hidden
    /// width and depth (their initial values are kept).
    pub fn stack(a: Mlp, b: Mlp) -> Self {
        let macs = a.macs_per_row() + b.macs_per_row();
        let negative_slope = a.negative_slope();
        let (la, lb) = (a.into_layers(), b.into_layers());
        assert_eq!(la.len(), lb.len(), "stacked networks need the same depth");
        let outputs = [la.last(), lb.last()].map(|l| l.expect("a layer").weight.dims()[1]);
        let width = outputs[0].max(outputs[1]);
        let last = la.len() - 1;
        let (mut weights, mut biases) = (Vec::new(), Vec::new());
        for (i, (x, y)) in la.into_iter().zip(lb).enumerate() {
            let pad = |w: Tensor<2>| {
                let [i, o] = w.dims();
                if o == width {
                    w
                } else {
                    let zeros = Tensor::<2>::zeros([i, width - o], &w.device());
                    Tensor::cat(vec![w, zeros], 1)
                }
            };
            let bias = |l: &burn::nn::Linear| {
                let b = l.bias.as_ref().expect("a bias").val();
                b.unsqueeze_dim::<2>(0)
            };
            let (wx, wy) = (x.weight.val(), y.weight.val());
            assert_eq!(
                wx.dims()[0],
                wy.dims()[0],
                "stacked networks need the same layer inputs"
            );
            let (bx, by) = (bias(&x), bias(&y));
            let (wx, wy, bx, by) = if i == last {
                (pad(wx), pad(wy), pad(bx), pad(by))
            } else {
                assert_eq!(
                    wx.dims(),
                    wy.dims(),
                    "stacked networks need the same widths"
                );
                (wx, wy, bx, by)
            };
            weights.push(Param::from_tensor(Tensor::stack(vec![wx, wy], 0).detach()));
            biases.push(Param::from_tensor(Tensor::stack(vec![bx, by], 0).detach()));
        }
        Self {
            weights,
            biases,
            negative_slope,
            outputs,
            macs,
        }
    }

    /// Both networks on the same rows: `[n, outputs[0]]` and `[n, outputs[1]]`.
    pub fn forward(&self, x: Tensor<2>) -> [Tensor<2>; 2] {
        let n = x.dims()[0];
        let last = self.weights.len() - 1;
        let mut h: Tensor<3> = x.unsqueeze_dim(0);
        for (i, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            h = h.matmul(w.val()) + b.val();
            if i < last {
                h = super::fused::leaky_relu(h, self.negative_slope);
            }
        }
        let width = h.dims()[2];
        [0, 1].map(|k| {
            h.clone()
                .narrow(0, k, 1)
                .reshape([n, width])
                .narrow(1, 0, self.outputs[k])
        })
    }

    /// One network alone (`k = 0` or `1`), e.g. the forward policy for sampling.
    pub fn forward_one(&self, x: Tensor<2>, k: usize) -> Tensor<2> {
        let last = self.weights.len() - 1;
        let mut h = x;
        for (i, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let [_, d_in, d_out] = w.dims();
            let w = w.val().narrow(0, k, 1).reshape([d_in, d_out]);
            let b = b.val().narrow(0, k, 1).reshape([1, d_out]);
            h = h.matmul(w) + b;
            if i < last {
                h = super::fused::leaky_relu(h, self.negative_slope);
            }
        }
        h.narrow(1, 0, self.outputs[k])
    }

    /// Multiply-adds per row of both networks (padding excluded).
    pub fn macs_per_row(&self) -> usize {
        self.macs
    }
}
