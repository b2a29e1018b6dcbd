//! Would evaluating the separate P_F and P_B networks as one stacked forward
//! (batched matmuls over `[2, rows, width]`, one op per layer for both
//! networks) beat two ordinary forwards? This measures forward + backward of
//! both networks at the learner's shapes (2 x 256 hidden, LeakyReLU, input 16
//! as the 2-D H = 8 hypergrid; rows ~ batch x mean trajectory length).
//!
//! `cargo run --release --example stacked_heads` prints ms per pass, best of
//! 5 repeats, for each row count; BENCHMARKS.md records the result.

use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};
use ftb::policy::fused::leaky_relu;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SLOPE: f64 = 0.01;

fn separate(nets: &[Vec<Linear>; 2], x: &Tensor<2>) -> Tensor<1> {
    let run = |net: &Vec<Linear>| {
        let last = net.len() - 1;
        net.iter().enumerate().fold(x.clone(), |h, (i, l)| {
            let h = l.forward(h);
            if i < last { leaky_relu(h, SLOPE) } else { h }
        })
    };
    run(&nets[0]).sum() + run(&nets[1]).sum()
}

fn stacked(weights: &[Param<Tensor<3>>], biases: &[Param<Tensor<3>>], x: &Tensor<2>) -> Tensor<1> {
    let last = weights.len() - 1;
    let mut h: Tensor<3> = x.clone().unsqueeze_dim(0);
    for (i, (w, b)) in weights.iter().zip(biases).enumerate() {
        h = h.matmul(w.val()) + b.val();
        if i < last {
            h = leaky_relu(h, SLOPE);
        }
    }
    h.sum()
}

fn main() {
    let device = Device::flex().autodiff();
    let (input, hidden, output) = (16usize, 256usize, 3usize);
    let dims = [input, hidden, hidden, output];
    let net = || -> Vec<Linear> {
        dims.windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(&device))
            .collect()
    };
    let nets = [net(), net()];
    // The same parameters, stacked: weights [2, in, out], biases [2, 1, out].
    let weights: Vec<Param<Tensor<3>>> = (0..3)
        .map(|l| {
            let w = [0, 1].map(|k| nets[k][l].weight.val());
            Param::from_tensor(Tensor::stack::<3>(w.to_vec(), 0).detach())
        })
        .collect();
    let biases: Vec<Param<Tensor<3>>> = (0..3)
        .map(|l| {
            let b = [0, 1].map(|k| nets[k][l].bias.as_ref().expect("bias").val());
            Param::from_tensor(
                Tensor::stack::<2>(b.to_vec(), 0)
                    .unsqueeze_dim::<3>(1)
                    .detach(),
            )
        })
        .collect();
    println!(
        "{:>6}  {:>12}  {:>12}  {:>7}",
        "rows", "separate ms", "stacked ms", "ratio"
    );
    for rows in [200usize, 1600, 6400] {
        let x = Tensor::<2>::random([rows, input], Distribution::Default, &device);
        let reps = (60_000 / rows).max(10);
        let time = |f: &dyn Fn() -> Tensor<1>| {
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..reps {
                        let _ = f().backward();
                    }
                    t.elapsed().as_secs_f64() * 1e3 / reps as f64
                })
                .fold(f64::INFINITY, f64::min)
        };
        let a = time(&|| separate(&nets, &x));
        let b = time(&|| stacked(&weights, &biases, &x));
        println!("{rows:>6}  {a:>12.3}  {b:>12.3}  {:>7.3}", b / a);
    }
}
