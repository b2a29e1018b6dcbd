//! Sequence-level objectives through the transformer: teacher-forced
//! log-probs equal the generator's, the listed responses carry all the
//! probability, Theorem A holds per prompt (the expected on-policy gradient
//! of sequence-level f-TB is the gradient of `D_f(pi_theta || p*)`, checked
//! against finite differences of the exact divergence), and the RL baselines
//! compute their documented formulas.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use ftb::divergence::Divergence;
use ftb::divergence::partition::LogZMode;
use ftb::eval::metrics::f_divergence;
use ftb::llm::exact::{all_responses, answer_metrics, response_log_distribution, target_log_probs};
use ftb::llm::objective::{
    SequenceBatch, SequenceObjective, group_mean_advantages, leave_one_out_advantages,
    response_log_probs, sequence_loss,
};
use ftb::llm::{GenerateConfig, LlamaConfig, LlamaModel, generate};
use ftb::objective::Objective;
use ftb::objective::surrogate::tensor_to_f64;
use ftb::policy::{LogZ, flat_gradients};
use ftb::sample::{Exploration, Provenance, Source};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCAB: u32 = 4;
const STOP: u32 = 3;
const MAX_LEN: usize = 3;

fn model(seed: u64, device: &Device) -> LlamaModel {
    LlamaModel::random(
        LlamaConfig::tiny(VOCAB as usize, 16, 24, 1, 2, 1),
        seed,
        device,
    )
    .unwrap()
}

/// A reward of the response: tokens `1` are good, length costs.
fn reward(y: &[u32]) -> f64 {
    y.iter().filter(|&&t| t == 1).count() as f64 - 0.3 * y.len() as f64
}

#[test]
fn listed_responses_carry_all_the_probability() {
    let ys = all_responses(VOCAB, STOP, MAX_LEN).unwrap();
    // 1 + 3 + 9 stopped strings and 27 of full length.
    assert_eq!(ys.len(), 1 + 3 + 9 + 27);
    let m = model(1, &Device::flex());
    for prompt in [vec![0u32], vec![2, 1, 0]] {
        let lp = response_log_distribution(&m, &prompt, &ys, 0, 16).unwrap();
        let total: f64 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
    }
}

#[test]
fn teacher_forced_log_probs_are_the_generators() {
    let m = model(2, &Device::flex());
    let prompts = vec![vec![0u32, 1], vec![2], vec![1, 1, 2, 0]];
    let cfg = GenerateConfig {
        max_new_tokens: MAX_LEN,
        stop_tokens: vec![STOP],
        ..GenerateConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let samples = generate(&m, &prompts, &cfg, &mut rng).unwrap();
    let responses: Vec<Vec<u32>> = samples.iter().map(|s| s.tokens.clone()).collect();
    let lp = response_log_probs(&m, &prompts, &responses, 0).unwrap();
    let per_token = tensor_to_f64(lp.per_token);
    let want: Vec<f64> = samples
        .iter()
        .flat_map(|s| s.raw_logprobs.iter().map(|&x| f64::from(x)))
        .collect();
    assert_eq!(per_token.len(), want.len());
    for (a, b) in per_token.iter().zip(&want) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    let seqs = tensor_to_f64(lp.per_sequence);
    for (i, s) in samples.iter().enumerate() {
        let sum: f64 = s.raw_logprobs.iter().map(|&x| f64::from(x)).sum();
        assert!((seqs[i] - sum).abs() < 1e-4);
    }
}

/// A random direction with one entry per float parameter, in visiting order.
fn direction(m: &LlamaModel, seed: u64) -> Vec<Vec<f32>> {
    struct Shapes(Vec<usize>);
    impl ModuleVisitor for Shapes {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.push(p.val().shape().num_elements());
        }
    }
    let mut s = Shapes(Vec::new());
    m.visit(&mut s);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    s.0.iter()
        .map(|&n| (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect()
}

/// `model + eps * v`.
fn shifted(m: &LlamaModel, v: &[Vec<f32>], eps: f32) -> LlamaModel {
    struct Shift<'a> {
        v: &'a [Vec<f32>],
        k: usize,
        eps: f32,
    }
    impl ModuleMapper for Shift<'_> {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let d = &self.v[self.k];
            self.k += 1;
            let eps = self.eps;
            p.map(|t| {
                let shape = t.shape();
                let device = t.device();
                let delta: Vec<f32> = d.iter().map(|x| x * eps).collect();
                t + Tensor::<D>::from_data(TensorData::new(delta, shape), &device)
            })
        }
    }
    m.clone().map(&mut Shift { v, k: 0, eps })
}

#[test]
fn theorem_a_through_the_transformer_per_prompt() {
    let device = Device::flex().autodiff();
    let theta = model(3, &device);
    let reference = model(4, &Device::flex());
    let ys = all_responses(VOCAB, STOP, MAX_LEN).unwrap();
    let rewards: Vec<f64> = ys.iter().map(|y| reward(y)).collect();
    let beta = 0.7;
    let v = direction(&theta, 9);
    let flat_v: Vec<f64> = v.iter().flatten().map(|&x| f64::from(x)).collect();
    for prompt in [vec![0u32, 2], vec![1u32]] {
        let log_ref = response_log_distribution(&reference, &prompt, &ys, 0, 64).unwrap();
        let (log_target, log_z_true) = target_log_probs(&log_ref, &rewards, beta);
        let target: Vec<f64> = log_target.iter().map(|l| l.exp()).collect();
        let log_pi =
            response_log_distribution(&theta.clone().valid(), &prompt, &ys, 0, 64).unwrap();
        let pi: Vec<f64> = log_pi.iter().map(|l| l.exp()).collect();
        for name in ["reverse-kl", "hellinger", "alpha:0.3", "forward-kl"] {
            let member: Divergence = name.parse().unwrap();
            let objective = SequenceObjective::Balance(Objective::FTb {
                member: member.clone(),
                log_z: LogZMode::Exact,
            });
            // E_{y ~ pi}[grad loss(y)]: each response's one-sample loss,
            // weighted by its exact probability, projected on v.
            let mut expected = 0.0;
            for (k, y) in ys.iter().enumerate() {
                let lp = response_log_probs(
                    &theta,
                    std::slice::from_ref(&prompt),
                    std::slice::from_ref(y),
                    0,
                )
                .unwrap();
                let batch = SequenceBatch {
                    log_ref: &log_ref[k..=k],
                    rewards: &rewards[k..=k],
                    groups: &[0],
                    behaviour_token_log_probs: &[],
                    provenance: &[],
                    current_version: 0,
                    max_len: MAX_LEN,
                    exact_log_z: Some(log_z_true),
                };
                let log_z = LogZ::new(0.0, &device);
                let out = sequence_loss(&objective, &lp, &batch, beta, &log_z).unwrap();
                let g = flat_gradients(
                    &theta,
                    &GradientsParams::from_grads(out.loss.backward(), &theta),
                );
                expected += pi[k] * g.iter().zip(&flat_v).map(|(a, b)| a * b).sum::<f64>();
            }
            // Central finite difference of the exact D_f(pi_theta || p*).
            let eps = 2e-3;
            let div = |e: f32| {
                let m = shifted(&theta.clone().valid(), &v, e);
                let lp = response_log_distribution(&m, &prompt, &ys, 0, 64).unwrap();
                let p: Vec<f64> = lp.iter().map(|l| l.exp()).collect();
                f_divergence(&member, &p, &target)
            };
            let numeric = (div(eps) - div(-eps)) / (2.0 * f64::from(eps));
            assert!(
                (expected - numeric).abs() < 2e-2 * numeric.abs().max(1e-2),
                "{name}, prompt {prompt:?}: expected on-policy gradient {expected} vs \
                 finite difference of D_f {numeric}"
            );
            assert!(
                numeric.abs() > 1e-3,
                "{name}: a flat direction tests nothing"
            );
        }
        // The exact metrics agree with the divergence of the reverse-KL member.
        let m = answer_metrics(&log_pi, &log_target);
        assert!(m.missing_mass.abs() < 1e-5);
        let rkl = f_divergence(&Divergence::reverse_kl(), &pi, &target);
        assert!(
            (m.kl - rkl).abs() < 1e-6 * rkl.max(1.0),
            "{} vs {rkl}",
            m.kl
        );
    }
}

#[test]
fn rloo_and_dr_grpo_compute_their_formulas() {
    // Leave-one-out and group-mean advantages, by hand.
    let x = [1.0, 2.0, 6.0, 10.0, 4.0];
    let g = [0u32, 0, 0, 1, 1];
    let loo = leave_one_out_advantages(&x, &g).unwrap();
    let want = [1.0 - 4.0, 2.0 - 3.5, 6.0 - 1.5, 10.0 - 4.0, 4.0 - 10.0];
    for (a, b) in loo.iter().zip(want) {
        assert!((a - b).abs() < 1e-12);
    }
    let gm = group_mean_advantages(&x, &g);
    let want = [-2.0, -1.0, 3.0, 3.0, -3.0];
    for (a, b) in gm.iter().zip(want) {
        assert!((a - b).abs() < 1e-12);
    }
    assert!(leave_one_out_advantages(&[1.0, 2.0], &[0, 1]).is_err());

    let device = Device::flex().autodiff();
    let m = model(5, &device);
    let prompts = vec![vec![0u32], vec![0], vec![1, 2], vec![1, 2]];
    let responses = vec![
        vec![1u32, STOP],
        vec![2, 2, 1],
        vec![STOP],
        vec![1, 1, STOP],
    ];
    let lp = response_log_probs(&m, &prompts, &responses, 0).unwrap();
    let log_pi = tensor_to_f64(lp.per_sequence.clone());
    let per_token = tensor_to_f64(lp.per_token.clone());
    let rewards: Vec<f64> = responses.iter().map(|y| reward(y)).collect();
    let log_ref = vec![-2.0, -3.0, -1.0, -2.5];
    let groups = [0u32, 0, 1, 1];
    let beta = 0.5;
    // Behaviour log-probs a little off the model's (a stale actor: version
    // 0 against the model's 1).
    let stale = [Provenance {
        policy_version: 0,
        source: Source::Actor(0),
        exploration: Exploration::default(),
        behaviour_log_prob: 0.0,
    }; 4];
    let behaviour: Vec<f64> = per_token
        .iter()
        .enumerate()
        .map(|(i, l)| l + 0.1 * (i as f64 - 3.0))
        .collect();
    let batch = SequenceBatch {
        log_ref: &log_ref,
        rewards: &rewards,
        groups: &groups,
        behaviour_token_log_probs: &behaviour,
        provenance: &stale,
        current_version: 1,
        max_len: MAX_LEN,
        exact_log_z: None,
    };
    let log_z = LogZ::new(0.0, &device);

    // RLOO: -mean_i A_i ln pi_i with A from the KL-shaped reward.
    let shaped: Vec<f64> = (0..4)
        .map(|i| rewards[i] - beta * (log_pi[i] - log_ref[i]))
        .collect();
    let a = leave_one_out_advantages(&shaped, &groups).unwrap();
    let want: f64 = -(0..4).map(|i| a[i] * log_pi[i]).sum::<f64>() / 4.0;
    let out = sequence_loss(&SequenceObjective::Rloo, &lp, &batch, beta, &log_z).unwrap();
    assert!((out.value - want).abs() < 1e-9, "{} vs {want}", out.value);
    // Its gradient is -mean_i A_i grad ln pi_i: the loss is linear in ln pi.
    let g_loss = flat_gradients(&m, &GradientsParams::from_grads(out.loss.backward(), &m));
    let lp2 = response_log_probs(&m, &prompts, &responses, 0).unwrap();
    let weights: Vec<f64> = a.iter().map(|ai| -ai / 4.0).collect();
    let manual =
        (lp2.per_sequence * Tensor::<1>::from_data(TensorData::new(weights, [4]), &device)).sum();
    let g_manual = flat_gradients(&m, &GradientsParams::from_grads(manual.backward(), &m));
    for (x, y) in g_loss.iter().zip(&g_manual) {
        assert!((x - y).abs() < 1e-5 * (1.0 + y.abs()));
    }

    // Dr. GRPO: token-level PPO-clip with group-mean advantages, summed and
    // divided by n * max_len.
    let clip = 0.2;
    let adv = group_mean_advantages(&rewards, &groups);
    let mut want = 0.0;
    for (k, &o) in lp.owner.iter().enumerate() {
        let rho = (per_token[k] - behaviour[k]).exp();
        want += (rho * adv[o]).min(rho.clamp(1.0 - clip, 1.0 + clip) * adv[o]);
    }
    let want = -want / (4.0 * MAX_LEN as f64);
    let lp3 = response_log_probs(&m, &prompts, &responses, 0).unwrap();
    let out = sequence_loss(
        &SequenceObjective::DrGrpo { clip },
        &lp3,
        &batch,
        beta,
        &log_z,
    )
    .unwrap();
    assert!((out.value - want).abs() < 1e-6, "{} vs {want}", out.value);

    // The same responses, generated on-policy by this very model (version
    // 1): the provenance says the cached log-probs are current, so the ratio
    // is exactly 1 and the (deliberately wrong) cached ones are not read.
    let current = [Provenance {
        policy_version: 1,
        source: Source::OnPolicy,
        ..stale[0]
    }; 4];
    let batch = SequenceBatch {
        provenance: &current,
        ..batch
    };
    let want: f64 = -lp.owner.iter().map(|&o| adv[o]).sum::<f64>() / (4.0 * MAX_LEN as f64);
    let lp4 = response_log_probs(&m, &prompts, &responses, 0).unwrap();
    let out = sequence_loss(
        &SequenceObjective::DrGrpo { clip },
        &lp4,
        &batch,
        beta,
        &log_z,
    )
    .unwrap();
    assert!((out.value - want).abs() < 1e-6, "{} vs {want}", out.value);
}

/// Tempering (SPEC §2.4) through the transformer: `L(beta D~) / beta`. At
/// beta = 1 it is the balance objective itself; for reverse KL with DevGrad
/// its value is `beta` times the untempered one and so is its gradient (the
/// loss is quadratic); for another member it differs, yet at the target
/// (residuals constant within each prompt) loss and gradient vanish.
#[test]
fn tempered_balance_objectives_keep_the_zero_set() {
    let device = Device::flex().autodiff();
    let m = model(9, &device);
    let prompts = vec![vec![0u32], vec![0], vec![0], vec![1, 2], vec![1, 2]];
    let responses = vec![
        vec![1u32, STOP],
        vec![2, 2, 1],
        vec![STOP],
        vec![STOP],
        vec![1, 1, STOP],
    ];
    let groups = [0u32, 0, 0, 1, 1];
    let rewards: Vec<f64> = responses.iter().map(|y| reward(y)).collect();
    let log_ref = vec![-2.0, -3.0, -1.0, -2.5, -0.7];
    let log_z = LogZ::per_group(2, 0.0, &device);
    let grad_of = |obj: &SequenceObjective, log_ref: &[f64], beta: f64| {
        let lp = response_log_probs(&m, &prompts, &responses, 0).unwrap();
        let batch = SequenceBatch {
            log_ref,
            rewards: &rewards,
            groups: &groups,
            behaviour_token_log_probs: &[],
            max_len: MAX_LEN,
            exact_log_z: None,
            provenance: &[],
            current_version: 0,
        };
        let out = sequence_loss(obj, &lp, &batch, beta, &log_z).unwrap();
        let g = flat_gradients(&m, &GradientsParams::from_grads(out.loss.backward(), &m));
        (out.value, g)
    };
    let devgrad = |member: Divergence| Objective::FTb {
        member,
        log_z: LogZMode::DevGrad,
    };
    let close = |a: &[f64], b: &[f64], scale: f64| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - scale * y).abs() < 1e-5 * (1.0 + (scale * y).abs()))
    };
    // beta = 1: identical.
    let rkl = devgrad(Divergence::reverse_kl());
    let (v0, g0) = grad_of(&SequenceObjective::Balance(rkl.clone()), &log_ref, 1.0);
    let (v1, g1) = grad_of(&SequenceObjective::Tempered(rkl.clone()), &log_ref, 1.0);
    assert!((v0 - v1).abs() < 1e-12 && close(&g1, &g0, 1.0));
    // Reverse KL: tempered = beta x untempered, on the same residuals D~.
    let beta = 0.25;
    let (vb, gb) = grad_of(&SequenceObjective::Balance(rkl.clone()), &log_ref, beta);
    let (vt, gt) = grad_of(&SequenceObjective::Tempered(rkl), &log_ref, beta);
    assert!(vb > 1e-3, "a residual spread to test on");
    assert!(
        (vt - beta * vb).abs() < 1e-9 * (1.0 + vb),
        "{vt} vs {beta} * {vb}"
    );
    assert!(close(&gt, &gb, beta));
    // Hellinger: not a rescaling ...
    let hel = devgrad(Divergence::alpha(0.5).unwrap());
    let (_, gh) = grad_of(&SequenceObjective::Balance(hel.clone()), &log_ref, beta);
    let (_, ght) = grad_of(&SequenceObjective::Tempered(hel.clone()), &log_ref, beta);
    assert!(!close(&ght, &gh, beta));
    // ... but zero at the target: choose ln pi_ref so that D~ is a constant
    // per prompt (c_g), i.e. pi_theta = p* on these responses.
    let lp = response_log_probs(&m, &prompts, &responses, 0).unwrap();
    let log_pi = tensor_to_f64(lp.per_sequence);
    let at_target: Vec<f64> = (0..5)
        .map(|i| log_pi[i] - rewards[i] / beta - [0.3, -1.1][groups[i] as usize])
        .collect();
    let (v, g) = grad_of(&SequenceObjective::Tempered(hel), &at_target, beta);
    assert!(v.abs() < 1e-9, "{v}");
    assert!(g.iter().all(|x| x.abs() < 1e-6), "{:?}", &g[..4]);
}
