//! The fused masked log-softmax against burn's composition: values, gradients
//! (through autodiff, with an arbitrary upstream gradient), strided inputs
//! (a column slice of a wider output, as the policy trunk produces), and
//! rows with no allowed action.

use burn::tensor::{Bool, Device, Tensor, TensorData};
use ftb::policy::fused::{masked_log_softmax, masked_log_softmax_composed};
use proptest::prelude::*;

/// Logits `[n, k]`, a mask with at least one allowed action per row, and
/// upstream weights, all from one seed.
fn case(n: usize, k: usize, seed: u64) -> (Vec<f32>, Vec<bool>, Vec<f32>) {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f64 / (1u64 << 31) as f64) as f32
    };
    let logits: Vec<f32> = (0..n * k).map(|_| 20.0 * next() - 10.0).collect();
    let mut mask: Vec<bool> = (0..n * k).map(|_| next() < 0.6).collect();
    for r in 0..n {
        mask[r * k + (r % k)] = true;
    }
    let weights: Vec<f32> = (0..n * k).map(|_| 2.0 * next() - 1.0).collect();
    (logits, mask, weights)
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Values and the gradient of `sum(w * y)` over allowed entries, where `y` is
/// `f` of the logits (given as the `[.., offset..offset + k]` columns of a wider
/// tensor when `offset > 0`).
fn run(
    f: fn(Tensor<2>, Tensor<2, Bool>) -> Tensor<2>,
    (logits, mask, weights): &(Vec<f32>, Vec<bool>, Vec<f32>),
    n: usize,
    k: usize,
    offset: usize,
) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex().autodiff();
    let width = k + offset + 1;
    let mut wide = vec![0.5f32; n * width];
    for r in 0..n {
        wide[r * width + offset..r * width + offset + k]
            .copy_from_slice(&logits[r * k..(r + 1) * k]);
    }
    let x = Tensor::<2>::from_data(TensorData::new(wide, [n, width]), &device).require_grad();
    let m = Tensor::<2, Bool>::from_data(TensorData::new(mask.clone(), [n, k]), &device);
    let w = Tensor::<2>::from_data(TensorData::new(weights.clone(), [n, k]), &device);
    let y = f(x.clone().narrow(1, offset, k), m.clone());
    let loss = (y.clone().mask_fill(m.bool_not(), 0.0) * w).sum();
    let grads = loss.backward();
    let g = x.grad(&grads).expect("a gradient");
    let g = g.narrow(1, offset, k);
    (values(y.inner()), values(g))
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x.is_infinite() || y.is_infinite() {
            assert_eq!(x, y, "{what}[{i}]");
        } else {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn fused_equals_composition(n in 1usize..40, k in 1usize..20, offset in 0usize..3, seed in 0u64..1000) {
        let c = case(n, k, seed);
        let (y, g) = run(masked_log_softmax, &c, n, k, offset);
        let (y0, g0) = run(masked_log_softmax_composed, &c, n, k, offset);
        assert_close(&y, &y0, 1e-5, "value");
        assert_close(&g, &g0, 1e-5, "gradient");
        // Masked entries are -inf with zero gradient; each row's probabilities sum to 1.
        for r in 0..n {
            let mut total = 0.0f64;
            for j in 0..k {
                if c.1[r * k + j] {
                    total += (y[r * k + j] as f64).exp();
                } else {
                    prop_assert_eq!(y[r * k + j], f32::NEG_INFINITY);
                    prop_assert_eq!(g[r * k + j], 0.0);
                }
            }
            prop_assert!((total - 1.0).abs() < 1e-5);
        }
    }
}

/// The analytic gradient of `sum_j w_j y_j`: `w_i - p_i * sum_j w_j` on allowed entries.
#[test]
fn gradient_matches_the_closed_form() {
    let (n, k) = (3, 5);
    let c = case(n, k, 7);
    let (y, g) = run(masked_log_softmax, &c, n, k, 0);
    for r in 0..n {
        let allowed = |j: usize| c.1[r * k + j];
        let wsum: f32 = (0..k).filter(|&j| allowed(j)).map(|j| c.2[r * k + j]).sum();
        for j in (0..k).filter(|&j| allowed(j)) {
            let expect = c.2[r * k + j] - y[r * k + j].exp() * wsum;
            assert!((g[r * k + j] - expect).abs() < 1e-5, "row {r} col {j}");
        }
    }
}

/// Without autodiff (the sampler's device) the fused kernel gives the same values.
#[test]
fn inner_device_values_match() {
    let device = Device::flex();
    let (n, k) = (17, 9);
    let (logits, mask, _) = case(n, k, 3);
    let x = Tensor::<2>::from_data(TensorData::new(logits, [n, k]), &device);
    let m = Tensor::<2, Bool>::from_data(TensorData::new(mask, [n, k]), &device);
    let y = values(masked_log_softmax(x.clone(), m.clone()));
    let y0 = values(masked_log_softmax_composed(x, m));
    assert_close(&y, &y0, 1e-6, "value");
}

/// A row with no allowed action is all `-inf` with zero gradient, never NaN
/// (burn's composition gives NaN there).
#[test]
fn all_masked_row_is_minus_infinity_not_nan() {
    let device = Device::flex().autodiff();
    let x = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]),
        &device,
    )
    .require_grad();
    let m = Tensor::<2, Bool>::from_data(
        TensorData::new(vec![false, false, true, true], [2, 2]),
        &device,
    );
    let y = masked_log_softmax(x.clone(), m.clone());
    let v = values(y.clone().inner());
    assert!(v[..2].iter().all(|&a| a == f32::NEG_INFINITY));
    assert!((v[2] - (3.0 - (3f32.exp() + 4f32.exp()).ln())).abs() < 1e-6);
    let loss = y.mask_fill(m.bool_not(), 0.0).sum();
    let g = values(x.grad(&loss.backward()).unwrap());
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    assert_eq!(&g[..2], &[0.0, 0.0]);
}

/// Large logits (1e30 apart) stay finite on allowed entries.
#[test]
fn extreme_logits_stay_finite() {
    let device = Device::flex();
    let x = Tensor::<2>::from_data(TensorData::new(vec![1e30f32, -1e30, 0.0], [1, 3]), &device);
    let m = Tensor::<2, Bool>::from_data(TensorData::new(vec![true, true, true], [1, 3]), &device);
    let v = values(masked_log_softmax(x, m));
    assert_eq!(v[0], 0.0);
    assert!((v[1] / -2e30 - 1.0).abs() < 1e-6, "{}", v[1]);
    assert!((v[2] / -1e30 - 1.0).abs() < 1e-6, "{}", v[2]);
}

/// Fused LeakyReLU against burn's composition: values and gradients, on a
/// column slice (strided) and with exact zeros in the input.
#[test]
fn leaky_relu_equals_composition() {
    use ftb::policy::fused::leaky_relu;
    let device = Device::flex().autodiff();
    for (seed, slope) in [(1u64, 0.01), (2, 0.2), (3, 0.0)] {
        let (n, k) = (23, 11);
        let (mut xs, _, w) = case(n, k + 2, seed);
        xs[5] = 0.0;
        xs[17] = -0.0;
        let run = |f: &dyn Fn(Tensor<2>) -> Tensor<2>| {
            let x = Tensor::<2>::from_data(TensorData::new(xs.clone(), [n, k + 2]), &device)
                .require_grad();
            let wt = Tensor::<2>::from_data(TensorData::new(w[..n * k].to_vec(), [n, k]), &device);
            let y = f(x.clone().narrow(1, 1, k));
            let g = x.grad(&(y.clone() * wt).sum().backward()).unwrap();
            (values(y.inner()), values(g.narrow(1, 1, k)))
        };
        let (y, g) = run(&|x| leaky_relu(x, slope));
        let (y0, g0) = run(&|x| burn::tensor::activation::leaky_relu(x, slope));
        assert_eq!(y, y0, "values, slope {slope}");
        assert_eq!(g, g0, "gradients, slope {slope}");
    }
}

/// Values and gradients (input, weight, bias) of `sum(u * f(x, W, b))`.
fn linear_case(
    f: &dyn Fn(Tensor<2>, Tensor<2>, Tensor<1>) -> Tensor<2>,
    (n, i, o): (usize, usize, usize),
    seed: u64,
) -> [Vec<f32>; 5] {
    let device = Device::flex().autodiff();
    let (data, _, _) = case(1, n * i + i * o + n * o + o, seed);
    let mut rest = &data[..];
    let mut take = |len: usize| {
        let (head, tail) = rest.split_at(len);
        rest = tail;
        head.to_vec()
    };
    let t2 = |v: Vec<f32>, r: usize, c: usize| {
        Tensor::<2>::from_data(TensorData::new(v, [r, c]), &device)
    };
    let x = t2(take(n * i), n, i).require_grad();
    let w = (t2(take(i * o), i, o) * 0.02).detach().require_grad();
    let u = t2(take(n * o), n, o);
    let b = Tensor::<1>::from_data(TensorData::new(take(o), [o]), &device).require_grad();
    // `+ v` hands the layer an upstream gradient it shares with `v`'s: the
    // layer must not scale it in place (`v`'s gradient stays `u`).
    let v = Tensor::<2>::zeros([n, o], &device).require_grad();
    let y = f(x.clone(), w.clone(), b.clone());
    let grads = ((y.clone() + v.clone()) * u).sum().backward();
    let g2 = |t: &Tensor<2>| values(t.grad(&grads).expect("a gradient"));
    [
        values(y.inner()),
        g2(&x),
        g2(&w),
        b.grad(&grads)
            .expect("a gradient")
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        g2(&v),
    ]
}

/// The fused linear layer against burn's `matmul + bias (+ LeakyReLU)`:
/// values and all three gradients, on 1 and 2 threads, with shapes large
/// enough that the products are split (by rows, by rows of `dW`, and by
/// columns of `dW` when the layer has fewer inputs than outputs), odd row
/// counts, and the non-positive slope that takes burn's path.
#[test]
fn fused_linear_equals_composition() {
    use ftb::policy::linear::linear;
    let composed = |slope: Option<f64>| {
        move |x: Tensor<2>, w: Tensor<2>, b: Tensor<1>| {
            let y = x.matmul(w) + b.unsqueeze::<2>();
            match slope {
                Some(s) => burn::tensor::activation::leaky_relu(y, s),
                None => y,
            }
        }
    };
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            for (k, &shape) in [
                (7, 5, 3),
                (301, 64, 128),
                (601, 16, 300),
                (1, 256, 4),
                (0, 8, 8),
            ]
            .iter()
            .enumerate()
            {
                for slope in [None, Some(0.01), Some(0.0)] {
                    let fused = linear_case(&|x, w, b| linear(x, w, b, slope), shape, k as u64);
                    let reference = linear_case(&composed(slope), shape, k as u64);
                    for (what, (a, r)) in ["values", "dx", "dW", "db", "dv"]
                        .iter()
                        .zip(fused.iter().zip(&reference))
                    {
                        // dW and db sum over up to 601 rows in another
                        // order: f32 rounding is ~1e-4 there, a layout error ~1.
                        let tol = if what.starts_with("dW") || what.starts_with("db") {
                            1e-3
                        } else {
                            2e-5
                        };
                        assert_close(
                            a,
                            r,
                            tol,
                            &format!("{what}, {shape:?}, slope {slope:?}, {threads} threads"),
                        );
                    }
                }
            }
        });
    }
}
