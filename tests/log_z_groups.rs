//! Log Z per group (prompts, conditions): with one group the objectives are
//! bitwise what they were with a scalar log Z; with several, every group gets
//! its own DevGrad offset (its weights sum to zero on their own) and its own
//! learned table entry, whose optimum is that group's DevGrad offset.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use ftb::divergence::{Divergence, ResidualLoss, devgrad, partition::LogZMode};
use ftb::job::load;
use ftb::objective::surrogate;
use ftb::objective::trajectory_balance::ftb_loss;
use ftb::policy::LogZ;
use ftb::train::Learner;

const D: [f64; 9] = [0.3, -1.2, 2.0, 0.0, -0.5, 1.1, -2.4, 0.7, 0.2];
const GROUPS: [u32; 9] = [0, 0, 0, 1, 1, 1, 1, 2, 2];

fn leaf(v: &[f64], device: &Device) -> Tensor<1> {
    Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), device).require_grad()
}

fn values(t: Tensor<1>) -> Vec<f64> {
    t.into_data_as::<f64>().try_to_vec::<f64>().unwrap()
}

/// The loss value and the gradient with respect to the residuals `D~`.
fn loss_and_grad(
    member: &Divergence,
    mode: LogZMode,
    log_z: &LogZ,
    exact: Option<f64>,
    groups: Option<&[u32]>,
) -> (f64, Vec<f64>) {
    let device = Device::flex().autodiff();
    let d = leaf(&D, &device);
    let (s, _) = ftb_loss(member, d.clone(), mode, log_z, exact, groups, None).unwrap();
    let grads = s.loss.backward();
    (s.value, values(d.grad(&grads).unwrap()))
}

fn members() -> Vec<Divergence> {
    ["hellinger", "reverse-kl", "forward-kl", "alpha:2", "js"]
        .iter()
        .map(|m| m.parse().unwrap())
        .collect()
}

#[test]
fn one_group_is_bitwise_the_scalar_log_z() {
    let device = Device::flex().autodiff();
    let zeros = [0u32; 9];
    for member in members() {
        for mode in [LogZMode::Learned, LogZMode::DevGrad, LogZMode::Exact] {
            let scalar = LogZ::new(0.37, &device);
            let table = LogZ::per_group(1, 0.37, &device);
            let base = loss_and_grad(&member, mode, &scalar, Some(1.3), None);
            let explicit = loss_and_grad(&member, mode, &table, Some(1.3), Some(&zeros));
            assert_eq!(base.0.to_bits(), explicit.0.to_bits(), "{member} {mode}");
            let bits = |g: &[f64]| g.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&base.1), bits(&explicit.1), "{member} {mode}");
            // And both are the scalar formula the objectives used before groups:
            // the surrogate of D~ + log Z (learned), or with the exact / DevGrad offsets.
            let d = leaf(&D, &device);
            let offsets = match mode {
                LogZMode::Learned => None,
                LogZMode::Exact => Some(vec![1.3; D.len()]),
                // DevGrad reads the residuals as the f32 tensor holds them.
                LogZMode::DevGrad => Some(mode.offsets(&member, &values(d.clone()), None, 0.0)),
            };
            let residual = match mode {
                LogZMode::Learned => {
                    d.clone()
                        + Tensor::<1>::from_data(TensorData::new(vec![0.37f32], [1]), &device)
                            .expand([D.len()])
                }
                _ => d.clone(),
            };
            let s = surrogate(&member, residual, offsets.as_deref(), None).unwrap();
            let grads = s.loss.backward();
            assert_eq!(s.value.to_bits(), base.0.to_bits(), "{member} {mode}");
            assert_eq!(
                bits(&values(d.grad(&grads).unwrap())),
                bits(&base.1),
                "{member} {mode}"
            );
        }
    }
}

#[test]
fn devgrad_weights_sum_to_zero_in_every_group() {
    let device = Device::flex().autodiff();
    let log_z = LogZ::new(0.0, &device);
    for member in members() {
        let (_, grouped) = loss_and_grad(&member, LogZMode::DevGrad, &log_z, None, Some(&GROUPS));
        let (_, pooled) = loss_and_grad(&member, LogZMode::DevGrad, &log_z, None, None);
        let per_group = |g: &[f64]| {
            let mut sums = [0.0f64; 3];
            let mut abs = [0.0f64; 3];
            for (i, &x) in g.iter().enumerate() {
                sums[GROUPS[i] as usize] += x;
                abs[GROUPS[i] as usize] += x.abs();
            }
            (sums, abs)
        };
        let (sums, abs) = per_group(&grouped);
        for k in 0..3 {
            assert!(abs[k] > 1e-3, "{member}: group {k} has no gradient");
            assert!(
                sums[k].abs() < 1e-6 * abs[k].max(1.0),
                "{member}: group {k} sums to {}",
                sums[k]
            );
        }
        // One pooled offset balances the batch, not each group: the check can fail.
        let (pooled_sums, _) = per_group(&pooled);
        assert!(pooled_sums.iter().sum::<f64>().abs() < 1e-6);
        assert!(
            pooled_sums.iter().any(|s| s.abs() > 1e-3),
            "{member}: pooled DevGrad balanced every group by chance"
        );
        // The gradient is L'(D~ + C_g) / b with the f64 per-group offsets.
        let ids: Vec<u64> = GROUPS.iter().map(|&g| g as u64).collect();
        let batch = devgrad::devgrad(&member, &D, Some(&ids));
        for (i, g) in grouped.iter().enumerate() {
            let want = member.dloss(D[i] + batch.offset_of(i)) / D.len() as f64;
            assert!(
                (g - want).abs() < 1e-5 * want.abs().max(1.0),
                "{member} sample {i}"
            );
        }
    }
}

#[test]
fn learned_table_entries_train_to_each_groups_offset() {
    let cfg = load(None, &["optim.lr_log_z=0.01".into()]).unwrap();
    let device = Device::flex().autodiff();
    for member in members() {
        let ids: Vec<u64> = GROUPS.iter().map(|&g| g as u64).collect();
        let want = devgrad::devgrad(&member, &D, Some(&ids));
        // A policy-free learner: the log Z table is the only parameter.
        let log_z = LogZ::per_group(3, 0.0, &device);
        let learner = train_log_z(&member, &D, &GROUPS, log_z, &cfg, 6000);
        let got = learner.log_z.values();
        // Groups are numbered in order of first appearance, as DevGrad's offsets.
        for (k, (g, w)) in got.iter().zip(&want.offsets).enumerate() {
            assert!(
                (g - w).abs() < 2e-3,
                "{member}: group {k} learned {g} vs DevGrad offset {w}"
            );
        }
        assert!(
            (want.offsets[0] - want.offsets[1]).abs() > 0.1,
            "{member}: the groups' offsets should differ for the test to mean anything"
        );
    }
}

/// A head conditioned on group features shares strength across groups: with
/// each group's residuals shifted by `1 + 2 c_g`, its DevGrad offset is
/// linear in the feature `c_g`, a linear head trained on five groups learns
/// their offsets and predicts the sixth, held-out group's, which a table
/// cannot.
#[test]
fn conditioned_head_learns_offsets_and_predicts_an_unseen_group() {
    let cfg = load(None, &["optim.lr_log_z=0.01".into()]).unwrap();
    let device = Device::flex().autodiff();
    let base = [0.3, -1.2, 2.0];
    let c = |g: usize| g as f64 / 5.0;
    let trained = [0usize, 1, 2, 4, 5];
    let held_out = 3usize;
    let mut d = Vec::new();
    let mut groups = Vec::new();
    for (k, &g) in trained.iter().enumerate() {
        for b in base {
            d.push(b - (1.0 + 2.0 * c(g)));
            groups.push(k as u32);
        }
    }
    // The head knows the trained groups' features, in group-id order.
    let features: Vec<Vec<f32>> = trained.iter().map(|&g| vec![c(g) as f32]).collect();
    for member in members() {
        let ids: Vec<u64> = groups.iter().map(|&g| g as u64).collect();
        let want = devgrad::devgrad(&member, &d, Some(&ids));
        let unseen: Vec<f64> = base.iter().map(|b| b - (1.0 + 2.0 * c(held_out))).collect();
        let want_unseen = devgrad::offset(&member, &unseen);
        let log_z = LogZ::conditioned(&features, 0, 0, &device).unwrap();
        assert_eq!(log_z.n_groups(), 5);
        // A linear head converges more slowly than a table (its slope and
        // intercept are coupled), whatever its random start.
        let learner = train_log_z(&member, &d, &groups, log_z, &cfg, 20_000);
        for (k, (g, w)) in learner.log_z.values().iter().zip(&want.offsets).enumerate() {
            assert!(
                (g - w).abs() < 5e-3,
                "{member}: group {k} learned {g} vs {w}"
            );
        }
        let x = Tensor::<2>::from_data(TensorData::new(vec![c(held_out) as f32], [1, 1]), &device);
        let predicted = values(learner.log_z.for_features(x).unwrap())[0];
        assert!(
            (predicted - want_unseen).abs() < 1e-2,
            "{member}: unseen group predicted {predicted} vs its offset {want_unseen}"
        );
        // The prediction is not just any trained group's value.
        assert!(want.offsets.iter().all(|w| (w - want_unseen).abs() > 0.2));
    }
}

#[test]
fn group_ids_outside_the_table_are_refused() {
    let device = Device::flex().autodiff();
    let member: Divergence = "hellinger".parse().unwrap();
    let d = leaf(&D, &device);
    let two = LogZ::per_group(2, 0.0, &device);
    let e = ftb_loss(
        &member,
        d.clone(),
        LogZMode::Learned,
        &two,
        None,
        Some(&GROUPS),
        None,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("group id 2"), "{e}");
    let e = ftb_loss(
        &member,
        d.clone(),
        LogZMode::Learned,
        &two,
        None,
        None,
        None,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("no group ids"), "{e}");
    let e = ftb_loss(
        &member,
        d,
        LogZMode::Exact,
        &two,
        Some(0.0),
        Some(&GROUPS),
        None,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("several groups"), "{e}");
}

/// Trains only `log_z` (`steps` Adam steps at `optim.lr_log_z`) on the learned
/// f-TB loss of fixed residuals `d` in `groups`.
fn train_log_z(
    member: &Divergence,
    d: &[f64],
    groups: &[u32],
    log_z: LogZ,
    cfg: &ftb::job::TrainConfig,
    steps: usize,
) -> Learner<Holder> {
    let device = Device::flex().autodiff();
    let mut learner = Learner::new(Holder::new(&device), log_z, &cfg.optim);
    for _ in 0..steps {
        let dt = Tensor::<1>::from_data(TensorData::new(d.to_vec(), [d.len()]), &device);
        let (s, _) = ftb_loss(
            member,
            dt,
            LogZMode::Learned,
            &learner.log_z,
            None,
            Some(groups),
            None,
        )
        .unwrap();
        let out = ftb::objective::LossOutput {
            loss: s.loss + learner.policy.zero(),
            value: s.value,
            log_z: None,
            log_pi_f: Vec::new(),
            states_evaluated: 0,
            backward_nll: None,
        };
        learner.step(out, true).unwrap();
    }
    learner
}

/// A parameter-holding stand-in policy, so the learner's log Z step can be
/// exercised on its own (its one parameter gets a zero gradient).
#[derive(Module, Debug)]
struct Holder {
    w: burn::module::Param<Tensor<1>>,
}

impl Holder {
    fn new(device: &Device) -> Self {
        Self {
            w: burn::module::Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![0.0f32], [1]),
                device,
            )),
        }
    }

    fn zero(&self) -> Tensor<1> {
        self.w.val().mul_scalar(0.0).sum()
    }
}

impl ftb::policy::Policy for Holder {
    type Snapshot = Holder;
    fn snapshot(&self) -> Holder {
        self.valid()
    }
}
