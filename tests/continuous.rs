//! Continuous samplers: transition log-densities against independent closed
//! forms, the Brownian bridge, target normalisation, the JSD metric, short
//! seeded training runs (GMM and diffusion) and the config.

use burn::module::Module;
use burn::tensor::Device;
use ftb::continuous::ContinuousTrainer;
use ftb::continuous::diffusion::Diffusion;
use ftb::continuous::metric::{Grid, jsd, jsd_floor};
use ftb::continuous::policy::{BackwardKind, GaussianPolicy, GaussianShape};
use ftb::continuous::sample::{sample_backward, sample_forward};
use ftb::continuous::target::{
    Banana, GaussianMixture, Target2d, log_quadrature, standard_normal, widen,
};
use ftb::job::TrainConfig;
use ftb::job::load;
use ftb::objective::surrogate::tensor_to_f64;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// `ln N(x; m, s^2)`, written out here independently of the library.
fn ln_normal(x: f64, m: f64, s: f64) -> f64 {
    -(x - m).powi(2) / (2.0 * s * s) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
}

fn config(sets: &[&str]) -> TrainConfig {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    load(None, &sets).expect("valid config")
}

/// A policy whose networks are trained a few steps with a large learning rate,
/// so drift, std and the backward correction are all non-trivial.
fn perturbed_trainer(backward: &str) -> ContinuousTrainer {
    let cfg = config(&[
        "env.kind=gmm",
        "continuous.steps=5",
        "continuous.sigma=1.5",
        &format!("continuous.backward={backward}"),
        "policy.hidden=16",
        "sampling.batch=32",
        "optim.lr=0.05",
        "continuous.eval_samples=100",
        "continuous.bins=10",
    ]);
    let mut t = ContinuousTrainer::new(cfg).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..5 {
        t.step(&mut rng).unwrap();
    }
    t
}

#[test]
fn transition_log_densities_match_closed_form() {
    let t = perturbed_trainer("learned");
    let policy = t.learner.policy.clone();
    let (steps, dt, sigma) = (policy.steps(), policy.dt(), policy.sigma());
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let traj = sample_forward(&policy.valid(), 6, 0.7, &Device::flex(), &mut rng).unwrap();
    let log_pf = tensor_to_f64(policy.log_pf(&traj, &t.device));
    let log_pb = tensor_to_f64(policy.log_pb(&traj, &t.device));
    let inference = policy.valid();
    let mut max_drift: f64 = 0.0;
    let mut max_shift: f64 = 0.0;
    for i in 0..traj.len() {
        let mut pf = 0.0;
        for s in 0..steps {
            let (x, y) = (traj.point(i, s), traj.point(i, s + 1));
            let m = inference.forward_moments(&[x], s, &Device::flex())[0];
            for d in 0..2 {
                pf += ln_normal(y[d], x[d] + m[d] * dt, m[2 + d].exp() * dt.sqrt());
                max_drift = max_drift.max(m[d].abs());
            }
        }
        let mut pb = 0.0;
        for k in 2..=steps {
            let (xk, prev) = (traj.point(i, k), traj.point(i, k - 1));
            let m = inference.backward_moments(&[xk], k, &Device::flex())[0];
            let f = (k as f64 - 1.0) / k as f64;
            let s = sigma * (dt * f).sqrt();
            for d in 0..2 {
                pb += ln_normal(prev[d], f * xk[d] + s * m[d], s * m[2 + d].exp());
                max_shift = max_shift.max(m[d].abs());
            }
        }
        assert!(
            (log_pf[i] - pf).abs() < 1e-4 * (1.0 + pf.abs()),
            "ln P_F: tensor {} vs closed form {pf}",
            log_pf[i]
        );
        assert!(
            (log_pb[i] - pb).abs() < 1e-4 * (1.0 + pb.abs()),
            "ln P_B: tensor {} vs closed form {pb}",
            log_pb[i]
        );
    }
    // The networks moved away from their zero initialisation: the check has teeth.
    assert!(
        max_drift > 1e-3 && max_shift > 1e-3,
        "{max_drift} {max_shift}"
    );
}

fn brownian(steps: usize, sigma: f64, backward: BackwardKind) -> GaussianPolicy {
    GaussianPolicy::new(
        GaussianShape {
            steps,
            sigma,
            log_std_range: 2.0,
            harmonics: 2,
            hidden: 8,
            layers: 1,
            backward,
        },
        &Device::flex(),
    )
}

#[test]
fn bridge_returns_to_origin_and_telescopes_to_the_marginal() {
    let (steps, sigma) = (8, 1.3);
    let policy = brownian(steps, sigma, BackwardKind::Fixed);
    let device = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let terminals: Vec<[f64; 2]> = (0..16)
        .map(|_| {
            [
                3.0 * standard_normal(&mut rng),
                3.0 * standard_normal(&mut rng),
            ]
        })
        .collect();
    let back = sample_backward(&policy, &terminals, &device, &mut rng).unwrap();
    let fwd = sample_forward(&policy, 16, 0.0, &device, &mut rng).unwrap();
    for (i, &x) in terminals.iter().enumerate() {
        assert_eq!(back.point(i, 0), [0.0, 0.0]);
        assert_eq!(back.point(i, steps), x);
        assert_eq!(fwd.point(i, 0), [0.0, 0.0]);
    }
    // Untrained policy = exact Brownian motion: pi_F(tau) = p(x_T) P_B(tau | x_T).
    for traj in [&back, &fwd] {
        let d = tensor_to_f64(policy.log_pf(traj, &device) - policy.log_pb(traj, &device));
        for (i, x) in traj.terminals().iter().enumerate() {
            let marginal = ln_normal(x[0], 0.0, sigma) + ln_normal(x[1], 0.0, sigma);
            assert!(
                (d[i] - marginal).abs() < 1e-3,
                "ln P_F - ln P_B = {} but ln N(x_T) = {marginal}",
                d[i]
            );
        }
    }
    // The bridge's mid-point given x_T has mean x_T k/T and variance sigma^2 k (T-k)/T^2.
    let x_t = [2.0, -1.0];
    let n = 4000;
    let many = sample_backward(&policy, &vec![x_t; n], &device, &mut rng).unwrap();
    let k = 3;
    let var = sigma * sigma * (k * (steps - k)) as f64 / (steps * steps) as f64;
    for (d, &end) in x_t.iter().enumerate() {
        let vals: Vec<f64> = (0..n).map(|i| many.point(i, k)[d]).collect();
        let mean = vals.iter().sum::<f64>() / n as f64;
        let v = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let want = end * k as f64 / steps as f64;
        assert!(
            (mean - want).abs() < 4.0 * (var / n as f64).sqrt(),
            "mean {mean} vs {want}"
        );
        assert!((v / var - 1.0).abs() < 0.1, "variance {v} vs {var}");
    }
}

#[test]
fn targets_are_normalised_and_match_hand_values() {
    let gmm = GaussianMixture::grid9(5.0, 1.0).unwrap();
    let banana = Banana::new(2.0, 0.25).unwrap();
    for t in [&gmm as &dyn Target2d, &banana] {
        let lz = log_quadrature(t, widen(t.bounds(), 1.5), 500);
        assert!(lz.abs() < 1e-3, "{}: ln integral = {lz}", t.name());
        assert_eq!(t.log_z(), 0.0);
    }
    let mut out = [0.0; 2];
    gmm.log_density(&[[0.0, 0.0], [5.0, -5.0]], &mut out);
    let two_pi = 2.0 * std::f64::consts::PI;
    let e = |d2: f64| (-d2 / 2.0f64).exp();
    // origin: 1 mode at distance 0, 4 at 5, 4 at 5 sqrt 2
    let origin = ((1.0 + 4.0 * e(25.0) + 4.0 * e(50.0)) / (9.0 * two_pi)).ln();
    // corner (5,-5): 1 at 0, 2 at 5, 1 at 5 sqrt 2, 2 at 10, 2 at sqrt 125, 1 at 10 sqrt 2
    let corner = ((1.0 + 2.0 * e(25.0) + e(50.0) + 2.0 * e(100.0) + 2.0 * e(125.0) + e(200.0))
        / (9.0 * two_pi))
        .ln();
    assert!((out[0] - origin).abs() < 1e-9, "{} vs {origin}", out[0]);
    assert!((out[1] - corner).abs() < 1e-9, "{} vs {corner}", out[1]);
    // banana at (1, 2): x2 mean 0.25 (1 - 4) = -0.75
    banana.log_density(&[[1.0, 2.0]], &mut out[..1]);
    let want =
        (-0.125 - 2f64.ln() - 0.5 * two_pi.ln()) + (-0.5 * 2.75f64.powi(2) - 0.5 * two_pi.ln());
    assert!((out[0] - want).abs() < 1e-9, "{} vs {want}", out[0]);
    // The diffusion's tilted target N(0, s_ref^2) * GMM has Z = mean_k N(m_k; 0, s_ref^2 + s^2) (per dim).
    let (s_ref, s) = (3.0, 1.0);
    let diff = Diffusion::new(Arc::new(gmm.clone()), s_ref, 10, 1.0).unwrap();
    let v = s_ref * s_ref + s * s;
    let z: f64 = gmm
        .means
        .iter()
        .map(|m| ln_normal(m[0], 0.0, v.sqrt()).exp() * ln_normal(m[1], 0.0, v.sqrt()).exp())
        .sum::<f64>()
        / 9.0;
    assert!(
        (diff.log_z() - z.ln()).abs() < 1e-4,
        "{} vs {}",
        diff.log_z(),
        z.ln()
    );
}

#[test]
fn jsd_limits_and_sampling_noise() {
    assert_eq!(jsd(&[0.2, 0.3, 0.5], &[0.2, 0.3, 0.5]), 0.0);
    assert!((jsd(&[0.5, 0.5, 0.0, 0.0], &[0.0, 0.0, 0.3, 0.7]) - 2f64.ln()).abs() < 1e-12);
    let gmm = GaussianMixture::grid9(5.0, 1.0).unwrap();
    let grid = Grid::new(gmm.bounds(), 100, 100);
    let mass = grid.target_mass(&gmm, 4);
    assert!((mass.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(mass[grid.nx * grid.ny] > 0.0 && mass[grid.nx * grid.ny] < 1e-3);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let exact = grid.histogram(&gmm.sample(20000, &mut rng).unwrap());
    let noise = jsd(&exact, &mass);
    // Points far outside the box land in the overflow cell.
    assert_eq!(grid.cell([1e6, 0.0]), grid.nx * grid.ny);
    let banana = Banana::new(2.0, 0.25).unwrap();
    let wrong = grid.histogram(&banana.sample(20000, &mut rng).unwrap());
    let off = jsd(&wrong, &mass);
    eprintln!("JSD of 20000 exact samples {noise:.4}, of banana samples {off:.4}");
    assert!(noise < 0.06, "sampling-noise JSD {noise}");
    // The floor estimated from the cell masses alone matches exact sampling.
    let floor = jsd_floor(&mass, 20000, &mut rng);
    assert!(
        (floor - noise).abs() < 0.1 * noise,
        "floor {floor} vs exact samples {noise}"
    );
    assert!(
        off > 5.0 * noise,
        "JSD to a wrong distribution {off} vs noise {noise}"
    );
}

fn train_and_compare(sets: &[&str]) -> (f64, f64) {
    let mut t = ContinuousTrainer::new(config(sets)).unwrap();
    let (summary, points) = t.run(None, |_, _| {}).unwrap();
    assert!(points.len() >= 2);
    assert!(summary.log_z.is_finite());
    (summary.jsd_initial, summary.jsd)
}

#[test]
fn gmm_training_reduces_jsd() {
    let (before, after) = train_and_compare(&[
        "env.kind=gmm",
        "continuous.steps=8",
        "continuous.sigma=2.0",
        "policy.hidden=64",
        "sampling.batch=64",
        "optim.lr=3e-3",
        "run.trajectories=51200",
        "run.eval_every=400",
        "continuous.bins=50",
        "continuous.eval_samples=20000",
        "run.seed=1",
    ]);
    // Measured: 0.366 -> 0.059 (seed 1), 0.365 -> 0.069 (seed 5).
    eprintln!("gmm JSD {before:.4} -> {after:.4}");
    assert!(after < 0.35 * before, "JSD {before} -> {after}");
}

#[test]
fn diffusion_training_reduces_jsd() {
    let (before, after) = train_and_compare(&[
        "env.kind=diffusion",
        "continuous.steps=8",
        "continuous.sigma=3.0",
        "policy.hidden=64",
        "sampling.batch=64",
        "optim.lr=3e-3",
        "run.trajectories=96000",
        "run.eval_every=500",
        "continuous.bins=50",
        "continuous.eval_samples=20000",
        "run.seed=2",
    ]);
    // Measured: 0.121 -> 0.045 (seeds 2-4 within 0.045 +/- 0.003).
    eprintln!("diffusion JSD {before:.4} -> {after:.4}");
    assert!(after < 0.5 * before, "JSD {before} -> {after}");
}

#[test]
fn config_kinds_and_errors_name_their_key() {
    let cfg = config(&["env.kind=gmm"]);
    assert_eq!(cfg.env.kind(), "gmm");
    let shipped = load(Some(std::path::Path::new("configs/gmm.toml")), &[]).unwrap();
    assert_eq!(shipped.env.kind(), "gmm");
    let err = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        format!("{:#}", load(None, &sets).unwrap_err())
    };
    let e = err(&["env.kind=gmm", "continuous.backward=uniform"]);
    assert!(e.contains("continuous.backward"), "{e}");
    let e = err(&["env.kind=gaussian"]);
    assert!(e.contains("env.kind") && e.contains("gmm"), "{e}");
    let e = err(&["env.kind=gmm", "continuous.sigma=-1"]);
    assert!(e.contains("continuous.sigma"), "{e}");
    let e = err(&["env.kind=gmm", "objective.name=db"]);
    assert!(e.contains("objective.name"), "{e}");
    let e = err(&["env.kind=banana", "continuous.bogus=1"]);
    assert!(e.contains("bogus"), "{e}");
}

#[test]
fn run_directory_gets_metrics_summary_and_plots() {
    let dir = std::env::temp_dir().join(format!("ftb-continuous-{}", std::process::id()));
    let mut rd = ftb::train::run_dir::RunDir::create(&dir).unwrap();
    let mut t = ContinuousTrainer::new(config(&[
        "env.kind=banana",
        "continuous.steps=4",
        "continuous.backward=learned",
        "objective.log_z=devgrad",
        "policy.hidden=16",
        "sampling.batch=16",
        "run.trajectories=160",
        "run.eval_every=5",
        "continuous.bins=30",
        "continuous.eval_samples=2000",
    ]))
    .unwrap();
    let (summary, points) = t.run(Some(&mut rd), |_, _| {}).unwrap();
    rd.write_summary(&summary).unwrap();
    t.write_plots(&rd, &summary, &points).unwrap();
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), points.len());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(s["jsd"].as_f64().unwrap().is_finite());
    assert_eq!(s["config"]["kind"], "banana");
    for f in ["distribution.png", "jsd.png", "log_z.png"] {
        assert!(dir.join(f).metadata().unwrap().len() > 1000, "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn loss_function_dispatches_and_refuses_non_finite_inputs() {
    use burn::tensor::{Tensor, TensorData};
    use ftb::continuous::trajectory_loss;
    use ftb::divergence::{Divergence, ResidualLoss, partition::LogZMode};
    use ftb::objective::Objective;
    use ftb::policy::LogZ;
    let device = Device::flex().autodiff();
    let t = |v: &[f64]| {
        Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device).require_grad()
    };
    let (pf, pb, r) = ([-1.0, 0.5, 2.0], [0.2, -0.3, 0.1], [0.4, -1.0, 0.0]);
    let log_z = LogZ::new(0.3, &device);
    let run =
        |o: &Objective, r: &[f64], z: Option<f64>| trajectory_loss(o, t(&pf), t(&pb), r, &log_z, z);
    let rkl = Divergence::reverse_kl();
    let tb = run(&Objective::Tb, &r, None).unwrap().value;
    let ftb_rkl = run(
        &Objective::FTb {
            member: rkl.clone(),
            log_z: LogZMode::Learned,
        },
        &r,
        None,
    )
    .unwrap()
    .value;
    assert!(
        (tb - 2.0 * ftb_rkl).abs() < 1e-6,
        "TB {tb} vs 2 x f-TB {ftb_rkl}"
    );
    let h: Divergence = "hellinger".parse().unwrap();
    let exact = run(
        &Objective::FTb {
            member: h.clone(),
            log_z: LogZMode::Exact,
        },
        &r,
        Some(-0.7),
    )
    .unwrap();
    let want: f64 = (0..3)
        .map(|i| h.loss(pf[i] - pb[i] - r[i] - 0.7))
        .sum::<f64>()
        / 3.0;
    assert!(
        (exact.value - want).abs() < 1e-6,
        "{} vs {want}",
        exact.value
    );
    assert_eq!(exact.log_z, Some(-0.7));
    let vg = run(&Objective::VarGrad, &r, None).unwrap();
    assert!(vg.value > 0.0 && vg.log_z.is_some());
    let err = |res: anyhow::Result<ftb::objective::LossOutput>| match res {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    };
    let e = err(run(&Objective::Tb, &[0.0, f64::NAN, 1.0], None));
    assert!(e.contains("not finite"), "{e}");
    let e = err(run(&Objective::Db { member: rkl }, &r, None));
    assert!(e.contains("objective.name"), "{e}");
}

#[test]
fn gradient_variance_scales_inversely_with_batch_size() {
    // Per-trajectory gradients are i.i.d. at fixed parameters, so the trace of
    // the covariance of the batch-mean gradient scales as 1 / B. The per-sample
    // gradients are heavy-tailed (one batch can dominate an estimate), so
    // compare medians over seeds; measured ratio 8 -> 64: about 7.9.
    let median_trace = |batch: usize| {
        let t = ContinuousTrainer::new(config(&[
            "env.kind=gmm",
            "continuous.steps=4",
            "continuous.sigma=3",
            "objective.divergence=reverse-kl",
            "policy.hidden=16",
            &format!("sampling.batch={batch}"),
        ]))
        .unwrap();
        let traces: Vec<f64> = (1..6)
            .map(|seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                ftb::train::gradient_variance::gradient_variance(&t, 100, 0, &mut rng)
                    .unwrap()
                    .trace
            })
            .collect();
        ftb::numerics::median(&traces)
    };
    let (small, large) = (median_trace(8), median_trace(64));
    let ratio = small / large;
    assert!(
        (3.0..24.0).contains(&ratio),
        "median trace {small} (B=8) / {large} (B=64) = {ratio}, expected about 8"
    );
}
