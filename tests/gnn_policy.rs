//! The fragment graph network policy (`policy.kind = "gnn"`, cargo feature
//! `chem`): masked log-probabilities normalised over the mask, invariance to
//! the order a molecule's fragments were placed in, a batched forward equal
//! to per-graph forwards, and the gradient of the message passing (segment
//! sums) against finite differences.
//! Run: `cargo test --release --features chem --test gnn_policy`.
#![cfg(feature = "chem")]

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use ftb::env::molecule::fragment::Action::{self, *};
use ftb::env::molecule::{FragmentLibrary, FragmentMolecules};
use ftb::env::{Environment, StateBatch};
use ftb::policy::gnn::{FragmentGnn, GnnShape};
use ftb::policy::{StatePolicy, flat_gradients};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn env(n: usize) -> FragmentMolecules {
    FragmentMolecules::new(FragmentLibrary::frags_72(), n).unwrap()
}

/// burn-flex's RNG is process-global: seeding and building under one lock
/// gives every test its own initial weights whatever runs alongside.
fn build(env: &FragmentMolecules, shape: GnnShape, device: &Device, seed: u64) -> FragmentGnn {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    FragmentGnn::new(env, shape, device)
}

fn shape() -> GnnShape {
    GnnShape {
        hidden: 16,
        layers: 2,
    }
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Every state visited by `n` seeded uniform rollouts (s0, pending and
/// complete states, up to `max_fragments` fragments).
fn visited_states(env: &FragmentMolecules, n: usize, seed: u64) -> StateBatch {
    crate::common::visited_states(env, n, seed, StateBatch::empty(0))
}

fn row_of(env: &FragmentMolecules, actions: &[Action]) -> Vec<i64> {
    actions
        .iter()
        .map(|&a| env.action_index(a) as i64)
        .collect()
}

#[test]
fn log_probs_are_normalised_over_the_mask_and_minus_infinity_outside() {
    let env = env(4);
    let device = Device::flex();
    let policy = build(&env, shape(), &device, 1);
    let states = visited_states(&env, 20, 1);
    let (n, na) = (states.len(), env.n_actions());
    assert!(n > 60, "{n} states");
    let mut mask = vec![false; n * na];
    env.forward_mask(&states, &mut mask);
    let lp = to_vec(policy.log_pf(&env, &states, &[], &mask, &device));
    let mut kinds = [0usize; 3]; // s0, pending, complete
    for i in 0..n {
        let row = &lp[i * na..(i + 1) * na];
        let m = &mask[i * na..(i + 1) * na];
        let mut total = 0.0f64;
        for a in 0..na {
            if m[a] {
                assert!(row[a].is_finite(), "state {i} action {a}: {}", row[a]);
                total += f64::from(row[a]).exp();
            } else {
                assert_eq!(row[a], f32::NEG_INFINITY, "state {i} action {a} is masked");
            }
        }
        assert!((total - 1.0).abs() < 1e-4, "state {i}: sum {total}");
        let d = env.decode(states.row(i));
        kinds[if d.nodes.is_empty() {
            0
        } else if d.pending() {
            1
        } else {
            2
        }] += 1;
    }
    assert!(kinds.iter().all(|&k| k > 0), "state kinds {kinds:?}");
    // The same through evaluate_states (the loss's path), with a flow per state.
    let mut bmask = vec![false; n * env.n_backward_actions()];
    env.backward_mask(&states, &mut bmask);
    let out = policy.evaluate_states(&env, &states, &[], &mask, &bmask, &device);
    assert_eq!(to_vec(out.log_pf), lp);
    assert!(out.log_pb.is_none(), "P_B = 1: uniform");
    assert_eq!(out.log_flow.dims(), [n]);
    assert!(to_vec(out.log_flow).iter().all(|x| x.is_finite()));
}

#[test]
fn a_batched_forward_equals_per_graph_forwards() {
    let env = env(4);
    let device = Device::flex();
    let policy = build(&env, shape(), &device, 2);
    let states = visited_states(&env, 8, 2);
    let (n, na) = (states.len(), env.n_actions());
    let mut mask = vec![false; n * na];
    env.forward_mask(&states, &mut mask);
    let (logits, flow) = policy.scores(&states, &[], &device);
    let (logits, flow) = (to_vec(logits), to_vec(flow));
    for i in 0..n {
        let one = StateBatch::ragged([states.row(i)]);
        let (l1, f1) = policy.scores(&one, &[], &device);
        let (l1, f1) = (to_vec(l1), to_vec(f1));
        assert!((flow[i] - f1[0]).abs() < 1e-4, "state {i}: flow");
        for a in (0..na).filter(|&a| mask[i * na + a]) {
            let (b, s) = (logits[i * na + a], l1[a]);
            assert!(
                (b - s).abs() < 1e-4 * (1.0 + s.abs()),
                "state {i} ({:?}) action {a} ({:?}): batched {b}, alone {s}",
                states.row(i),
                env.action(a)
            );
        }
    }
}

#[test]
fn build_orders_of_one_molecule_get_one_embedding_and_stop_logit() {
    let env = env(4);
    let lib = env.library();
    let find = |s: &str| lib.fragments.iter().position(|f| f.smiles == s).unwrap();
    // Piperidine (attachment atoms 0, 1, 3), methane, ethylene (0, 1).
    let (x, y, z) = (find("C1CCNCC1"), find("C"), find("C=C"));
    let attach = |node, stem, fragment| Attach {
        node,
        stem,
        fragment,
    };
    let orders = [
        // x first; y at its atom 0, z (through z's atom 1) at its N.
        vec![
            Start(x),
            attach(0, 0, y),
            ChooseStem(0),
            attach(0, 2, z),
            ChooseStem(1),
        ],
        // z first, then x on it, then y on x.
        vec![
            Start(z),
            attach(0, 1, x),
            ChooseStem(2),
            attach(1, 0, y),
            ChooseStem(0),
        ],
        // y first, then x, then z on x.
        vec![
            Start(y),
            attach(0, 0, x),
            ChooseStem(0),
            attach(1, 2, z),
            ChooseStem(1),
        ],
    ];
    // A different molecule: z on x's atom 1 instead of its N.
    let other = vec![
        Start(x),
        attach(0, 0, y),
        ChooseStem(0),
        attach(0, 1, z),
        ChooseStem(1),
    ];
    let rows: Vec<Vec<i64>> = orders
        .iter()
        .chain([&other])
        .map(|o| row_of(&env, o))
        .collect();
    let smiles: Vec<String> = rows.iter().map(|r| env.smiles(r).unwrap()).collect();
    assert_eq!(smiles[0], smiles[1]);
    assert_eq!(smiles[0], smiles[2]);
    assert_ne!(smiles[0], smiles[3]);
    let states = StateBatch::ragged(rows.iter().map(|r| r.as_slice()));
    let device = Device::flex();
    for seed in 0..3 {
        let policy = build(&env, shape(), &device, seed);
        let g = to_vec(policy.graph_embedding(&states, &[], &device));
        let d = g.len() / 4;
        let (logits, flow) = policy.scores(&states, &[], &device);
        let (logits, flow) = (to_vec(logits), to_vec(flow));
        let na = env.n_actions();
        let stop = |i: usize| logits[i * na + env.exit_action()];
        let dist = |i: usize, j: usize| {
            (0..d)
                .map(|k| (g[i * d + k] - g[j * d + k]).abs())
                .fold(0.0f32, f32::max)
        };
        for i in 1..3 {
            assert!(dist(0, i) < 1e-5, "seed {seed}: order {i}: {}", dist(0, i));
            assert!((stop(0) - stop(i)).abs() < 1e-5, "seed {seed}: stop logit");
            assert!((flow[0] - flow[i]).abs() < 1e-5, "seed {seed}: log F");
        }
        // Not a constant: the other molecule's embedding differs.
        assert!(dist(0, 3) > 1e-3, "seed {seed}: {}", dist(0, 3));
    }
}

/// Float parameter sizes, in visiting order.
fn parameter_sizes<M: Module>(m: &M) -> Vec<usize> {
    struct Sizes(Vec<usize>);
    impl ModuleVisitor for Sizes {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.push(p.val().shape().num_elements());
        }
    }
    let mut s = Sizes(Vec::new());
    m.visit(&mut s);
    s.0
}

/// `model + eps * v` (`v` per parameter, in visiting order).
fn shifted(m: &FragmentGnn, v: &[Vec<f32>], eps: f32) -> FragmentGnn {
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

/// The gradient of a loss through the whole network, and through the
/// message-passing layers alone (whose parameters reach the loss only
/// through the segment sums), matches central finite differences along
/// random directions, on a tiny batch of graphs (1 to 3 fragments, a
/// pending state among them).
#[test]
fn message_passing_gradients_match_finite_differences() {
    let env = env(3);
    let lib = env.library();
    let find = |s: &str| lib.fragments.iter().position(|f| f.smiles == s).unwrap();
    let (x, y, z) = (find("C1CCNCC1"), find("C"), find("C=C"));
    let rows = [
        row_of(&env, &[Start(x)]),
        row_of(
            &env,
            &[
                Start(x),
                Attach {
                    node: 0,
                    stem: 2,
                    fragment: z,
                },
            ],
        ),
        row_of(
            &env,
            &[
                Start(z),
                Attach {
                    node: 0,
                    stem: 0,
                    fragment: x,
                },
                ChooseStem(1),
                Attach {
                    node: 1,
                    stem: 2,
                    fragment: y,
                },
                ChooseStem(0),
            ],
        ),
    ];
    let states = StateBatch::ragged(rows.iter().map(|r| r.as_slice()));
    let (n, na) = (states.len(), env.n_actions());
    let mut mask = vec![false; n * na];
    env.forward_mask(&states, &mut mask);
    let device = Device::flex().autodiff();
    let policy = build(
        &env,
        GnnShape {
            hidden: 8,
            layers: 2,
        },
        &device,
        5,
    );
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // Fixed weights on a few allowed log-probabilities per state (a loss of
    // small magnitude: f32 finite differences stay accurate), plus the flows.
    let mut weights = vec![0.0f32; n * na];
    for i in 0..n {
        let allowed: Vec<usize> = (0..na).filter(|&a| mask[i * na + a]).collect();
        for _ in 0..4 {
            let a = allowed[rng.random_range(0..allowed.len())];
            weights[i * na + a] = rng.random_range(-1.0f32..1.0);
        }
    }
    let loss = |p: &FragmentGnn| -> Tensor<1> {
        let out = p.evaluate_states(&env, &states, &[], &mask, &[true; 3], &device);
        let w = Tensor::<2>::from_data(TensorData::new(weights.clone(), [n, na]), &device);
        let lp = out.log_pf.mask_fill(w.clone().equal_elem(0.0), 0.0);
        (lp * w).sum() + out.log_flow.sum() * 0.5
    };
    let value = |p: &FragmentGnn| -> f64 {
        let l: f32 = loss(p).into_scalar();
        f64::from(l)
    };
    let grads = GradientsParams::from_grads(loss(&policy).backward(), &policy);
    let g = flat_gradients(&policy, &grads);
    let sizes = parameter_sizes(&policy);
    // The message-passing layers' parameters, by their module paths.
    let names = parameter_names(&policy);
    assert_eq!(names.len(), sizes.len());
    let in_layers: Vec<bool> = names.iter().map(|n| n.starts_with("layers.")).collect();
    assert!(in_layers.iter().any(|&b| b), "{names:?}");
    for (label, only_layers) in [("all parameters", false), ("message passing", true)] {
        for trial in 0..3 {
            let v: Vec<Vec<f32>> = sizes
                .iter()
                .zip(&in_layers)
                .map(|(&s, &l)| {
                    (0..s)
                        .map(|_| {
                            if only_layers && !l {
                                0.0
                            } else {
                                rng.random_range(-1.0f32..1.0)
                            }
                        })
                        .collect()
                })
                .collect();
            let flat_v: Vec<f64> = v.iter().flatten().map(|&x| f64::from(x)).collect();
            let analytic: f64 = g.iter().zip(&flat_v).map(|(a, b)| a * b).sum();
            let eps = 1e-3f32;
            let numeric = (value(&shifted(&policy, &v, eps)) - value(&shifted(&policy, &v, -eps)))
                / (2.0 * f64::from(eps));
            assert!(
                (analytic - numeric).abs() <= 0.01 * analytic.abs() + 2e-3,
                "{label}, trial {trial}: analytic {analytic}, finite differences {numeric}"
            );
            assert!(
                analytic.abs() > 1e-3,
                "{label}: a zero gradient checks nothing"
            );
        }
    }
}

/// Float parameter paths (`layers.0.message...`), in visiting order.
fn parameter_names<M: Module>(m: &M) -> Vec<String> {
    struct Names {
        path: Vec<String>,
        out: Vec<String>,
    }
    impl ModuleVisitor for Names {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, _p: &Param<Tensor<D>>) {
            self.out.push(self.path.join("."));
        }
    }
    let mut v = Names {
        path: Vec::new(),
        out: Vec::new(),
    };
    m.visit(&mut v);
    v.out
}
