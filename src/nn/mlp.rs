//! A multilayer perceptron with LeakyReLU activations (the standard GFlowNet
//! policy body: 2 x 256 hidden units in Malkin et al. and torchgfn).

use burn::module::Module;
use burn::nn::{Initializer, LeakyRelu, LeakyReluConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    activation: LeakyRelu,
}

impl Mlp {
    /// `input -> hidden (x n_hidden) -> output`.
    pub fn new(
        input: usize,
        hidden: usize,
        n_hidden: usize,
        output: usize,
        device: &Device,
    ) -> Self {
        let mut dims = vec![input];
        dims.extend(std::iter::repeat_n(hidden, n_hidden));
        dims.push(output);
        let layers = dims
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        Self {
            layers,
            activation: LeakyReluConfig::new().init(),
        }
    }

    /// Replaces the output layer by a zero one, so the network starts as the
    /// constant 0 (e.g. a Gaussian policy that starts as its reference process)
    /// while its gradients stay non-zero.
    pub fn zero_output(mut self) -> Self {
        let last = self.layers.pop().expect("an output layer");
        let [i, o] = last.weight.dims();
        let device = last.weight.val().device();
        self.layers.push(
            LinearConfig::new(i, o)
                .with_initializer(Initializer::Zeros)
                .init(&device),
        );
        self
    }

    /// Every layer is one fused op ([`super::linear::linear`]: product,
    /// bias and activation, on every thread of the rayon pool).
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let slope = (i < last).then_some(self.activation.negative_slope);
            match &layer.bias {
                Some(bias) => super::linear::linear(h, layer.weight.val(), bias.val(), slope),
                None => {
                    let h = layer.forward(h);
                    match slope {
                        Some(s) => super::fused::leaky_relu(h, s),
                        None => h,
                    }
                }
            }
        })
    }

    /// FLOPs per input row of one training pass: forward (2 x MACs), weight
    /// gradients (2 x MACs), and input gradients of every layer but the first
    /// (the features need none), for the benchmarks' FLOP rate.
    pub fn training_flops_per_row(&self) -> usize {
        let first = self.layers.first().map_or(0, |l| {
            let [i, o] = l.weight.dims();
            i * o
        });
        6 * self.macs_per_row() - 2 * first
    }

    /// `(inputs, outputs)` of every linear layer, input side first: the
    /// shapes of the learner's matrix products (for benchmarks).
    pub fn layer_dims(&self) -> Vec<(usize, usize)> {
        self.layers
            .iter()
            .map(|l| {
                let [i, o] = l.weight.dims();
                (i, o)
            })
            .collect()
    }

    /// Multiply-adds per input row (for FLOP accounting in benchmarks).
    pub fn macs_per_row(&self) -> usize {
        self.layers
            .iter()
            .map(|l| {
                let [i, o] = l.weight.dims();
                i * o
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flop_accounting_counts_every_matmul_of_a_training_pass() {
        let mlp = Mlp::new(16, 256, 2, 4, &Device::flex());
        let macs = 16 * 256 + 256 * 256 + 256 * 4;
        assert_eq!(mlp.macs_per_row(), macs);
        // Forward, weight gradients, and input gradients except the first layer's.
        assert_eq!(
            mlp.training_flops_per_row(),
            2 * macs + 2 * macs + 2 * (macs - 16 * 256)
        );
    }
}
