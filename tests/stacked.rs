//! The stacked forward + backward networks equal the two networks run
//! separately: outputs, input gradients and every parameter's gradient.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use ftb::policy::flat_gradients;
use ftb::policy::mlp::Mlp;
use ftb::policy::stacked::StackedMlp;

fn close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

fn vals(t: Tensor<2>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

#[test]
fn stacked_networks_equal_separate_ones() {
    let device = Device::flex().autodiff();
    let (input, hidden, layers, out_a, out_b, rows) = (7, 32, 2, 5, 3, 11);
    let a = Mlp::new(input, hidden, layers, out_a, &device);
    let b = Mlp::new(input, hidden, layers, out_b, &device);
    let stacked = StackedMlp::stack(a.clone(), b.clone());
    assert_eq!(stacked.macs_per_row(), a.macs_per_row() + b.macs_per_row());
    let x = Tensor::<2>::random([rows, input], Distribution::Normal(0.0, 1.0), &device);
    let wa = Tensor::<2>::random([rows, out_a], Distribution::Normal(0.0, 1.0), &device);
    let wb = Tensor::<2>::random([rows, out_b], Distribution::Normal(0.0, 1.0), &device);

    // Separate networks.
    let xs = x.clone().require_grad();
    let (ya, yb) = (a.forward(xs.clone()), b.forward(xs.clone()));
    let grads = ((ya.clone() * wa.clone()).sum() + (yb.clone() * wb.clone()).sum()).backward();
    let gx = vals(xs.grad(&grads).unwrap());
    let ga = flat_gradients(&a, &GradientsParams::from_grads(grads, &a));
    let grads = ((a.forward(x.clone()) * wa.clone()).sum()
        + (b.forward(x.clone()) * wb.clone()).sum())
    .backward();
    let gb = flat_gradients(&b, &GradientsParams::from_grads(grads, &b));

    // Stacked.
    let xt = x.clone().require_grad();
    let [sa, sb] = stacked.forward(xt.clone());
    close(&vals(sa.clone().inner()), &vals(ya.inner()), "output a");
    close(&vals(sb.clone().inner()), &vals(yb.inner()), "output b");
    let grads = ((sa * wa.clone()).sum() + (sb * wb.clone()).sum()).backward();
    close(&vals(xt.grad(&grads).unwrap()), &gx, "input gradient");
    let gs = flat_gradients(&stacked, &GradientsParams::from_grads(grads, &stacked));

    // Rebuild the stacked layout from the separate gradients: all weights
    // [2, in, out] (last layer padded with zero columns), then all biases.
    let dims: Vec<usize> = std::iter::once(input)
        .chain(std::iter::repeat_n(hidden, layers))
        .collect();
    let width = out_a.max(out_b);
    let per_net = |g: &[f64], outputs: usize| {
        // Mlp visiting order: per layer, weight [in, out] then bias [out].
        let mut layers_out = Vec::new();
        let mut at = 0;
        for (l, &d_in) in dims.iter().enumerate() {
            let d_out = if l + 1 < dims.len() {
                dims[l + 1]
            } else {
                outputs
            };
            let w = g[at..at + d_in * d_out].to_vec();
            at += d_in * d_out;
            let bias = g[at..at + d_out].to_vec();
            at += d_out;
            layers_out.push((d_in, d_out, w, bias));
        }
        assert_eq!(at, g.len());
        layers_out
    };
    let (la, lb) = (per_net(&ga, out_a), per_net(&gb, out_b));
    let pad = |rows: usize, cols: usize, m: &[f64], to: usize| -> Vec<f64> {
        (0..rows)
            .flat_map(|r| (0..to).map(move |c| if c < cols { m[r * cols + c] } else { 0.0 }))
            .collect()
    };
    let mut expect = Vec::new();
    for l in 0..dims.len() {
        for (d_in, d_out, w, _) in [&la[l], &lb[l]] {
            let to = if l + 1 == dims.len() { width } else { *d_out };
            expect.extend(pad(*d_in, *d_out, w, to));
        }
    }
    for l in 0..dims.len() {
        for (_, d_out, _, bias) in [&la[l], &lb[l]] {
            let to = if l + 1 == dims.len() { width } else { *d_out };
            expect.extend(pad(1, *d_out, bias, to));
        }
    }
    close(&gs, &expect, "parameter gradients");

    // One network alone gives the same output as in the joint forward.
    let one = stacked.valid().forward_one(x.clone().inner(), 1);
    close(
        &vals(one),
        &vals(b.valid().forward(x.inner())),
        "forward_one",
    );
}
