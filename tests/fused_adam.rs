//! The fused Adam update agrees with burn's Adam step by step (same state
//! type, same arithmetic order), with and without gradient clipping.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use ftb::policy::mlp::Mlp;
use ftb::train::fused_adam::FusedAdam;

fn parameters<M: Module>(m: &M) -> Vec<f64> {
    struct Collect(Vec<f64>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(
                param
                    .val()
                    .into_data()
                    .convert::<f64>()
                    .try_to_vec::<f64>()
                    .unwrap(),
            );
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

fn agree(clip: Option<GradientClippingConfig>) {
    let device = Device::flex().autodiff();
    let mut a = Mlp::new(6, 32, 2, 4, &device);
    let mut b = a.clone();
    let mut burn_adam = AdamConfig::new().with_grad_clipping(clip.clone()).init();
    let mut fused = FusedAdam::init(clip);
    let x = Tensor::<2>::random([9, 6], Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<2>::random([9, 4], Distribution::Normal(0.0, 1.0), &device);
    let start = parameters(&a);
    for step in 0..6 {
        let ga =
            GradientsParams::from_grads((a.forward(x.clone()) * w.clone()).sum().backward(), &a);
        let gb =
            GradientsParams::from_grads((b.forward(x.clone()) * w.clone()).sum().backward(), &b);
        let lr = if step < 3 { 1e-2 } else { 3e-3 };
        a = burn_adam.step(lr, a, ga);
        b = fused.step(lr, b, gb);
        let (pa, pb) = (parameters(&a), parameters(&b));
        for (i, (u, v)) in pa.iter().zip(&pb).enumerate() {
            assert!(
                (u - v).abs() <= 1e-6 * (1.0 + u.abs()),
                "step {step}, parameter {i}: {u} vs {v}"
            );
        }
    }
    // The parameters did move (the comparison is not between two no-ops).
    let moved = parameters(&a)
        .iter()
        .zip(&start)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f64::max);
    assert!(moved > 1e-3, "largest change {moved}");
}

#[test]
fn fused_adam_agrees_with_burn_adam() {
    agree(None);
}

#[test]
fn fused_adam_agrees_with_burn_adam_under_clipping() {
    agree(Some(GradientClippingConfig::Norm(0.05)));
}
