//! The Ising environment: conformance, hand-computed energies, the exact
//! target against brute force over all spin configurations, the ground
//! states as modes, a short training run, and configuration errors.

use ftb::env::conformance::{check, check_enumerable};
use ftb::env::ising::{DOWN, Ising, IsingError, IsingReward, MAX_SIDE, UNASSIGNED, UP};
use ftb::env::{Enumerable, Environment, LogReward, StateBatch};
use ftb::eval::exact::{terminating_distribution, uniform_forward_probs};
use ftb::eval::target_distribution;
use ftb::gflownet::task::Task;
use ftb::gflownet::trainer::Trainer;
use ftb::job::load;
use ftb::numerics::logsumexp;
use std::process::Command;

fn ising(side: usize, j: f64, h: f64, beta: f64) -> (Ising, IsingReward) {
    let env = Ising::new(side).unwrap();
    let reward = IsingReward::new(&env, j, h, beta).unwrap();
    reward.check_env(&env).unwrap();
    (env, reward)
}

/// `(r + c)` even: +1, odd: -1.
fn checkerboard(side: usize) -> Vec<i64> {
    (0..side * side)
        .map(|i| {
            if (i / side + i % side).is_multiple_of(2) {
                UP
            } else {
                DOWN
            }
        })
        .collect()
}

fn flipped(side: usize, site: usize) -> Vec<i64> {
    let mut row = vec![UP; side * side];
    row[site] = DOWN;
    row
}

/// The energy computed independently of the library, for `L >= 3` (where
/// the right and down neighbours of every site give each torus edge once).
fn brute_energy(side: usize, row: &[i64], j: f64, h: f64) -> f64 {
    assert!(side >= 3);
    let mut pairs = 0i64;
    for r in 0..side {
        for c in 0..side {
            let x = row[r * side + c];
            pairs += x * row[r * side + (c + 1) % side];
            pairs += x * row[((r + 1) % side) * side + c];
        }
    }
    -j * pairs as f64 - h * row.iter().sum::<i64>() as f64
}

fn ftb_bin(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ftb"))
        .args(args)
        .output()
        .expect("run ftb");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------- conformance

#[test]
fn conformance_3x3_enumerable() {
    let (env, reward) = ising(3, 1.0, 0.2, 0.7);
    let rep = check(&env, &reward, 11, 200).unwrap_or_else(|e| panic!("3x3: {e}"));
    assert_eq!(rep.max_length, 9);
    assert!((rep.mean_length - 9.0).abs() < 1e-12, "exactly N steps");
    assert_eq!(rep.max_backward_length, 9);
    assert!(rep.distinct_states > 1000, "{}", rep.distinct_states);
    check_enumerable(&env).unwrap();
    let (env, reward) = ising(2, -1.0, 0.5, 1.0);
    check(&env, &reward, 12, 100).unwrap_or_else(|e| panic!("2x2: {e}"));
    check_enumerable(&env).unwrap();
}

#[test]
fn conformance_large_lattices_without_enumeration() {
    for (side, n) in [(6, 32), (10, 12)] {
        let (env, reward) = ising(side, 1.0, -0.3, 0.5);
        let rep = check(&env, &reward, side as u64, n).unwrap_or_else(|e| panic!("L={side}: {e}"));
        assert_eq!(rep.max_length, side * side);
        assert!((rep.mean_length - (side * side) as f64).abs() < 1e-12);
        assert_eq!(rep.max_backward_length, side * side);
        let err = env.check_enumerable().unwrap_err();
        assert!(matches!(err, IsingError::NotEnumerable { .. }));
        assert!(err.to_string().contains("too many to enumerate"), "{err}");
    }
}

// ---------------------------------------------------------------- energies

#[test]
fn energies_match_hand_computed_values() {
    let (j, h, beta) = (1.5, 0.5, 2.0);
    // (side, configuration, sum_<ij> x_i x_j, sum_i x_i), counted by hand.
    let cases: Vec<(usize, Vec<i64>, i64, i64)> = vec![
        (3, vec![UP; 9], 18, 9),
        (3, vec![DOWN; 9], 18, -9),
        // Odd side: each row and column has 2 broken bonds and 1 (wrapping) aligned one.
        (3, checkerboard(3), -6, 1),
        (3, flipped(3, 4), 10, 7),
        // A corner flip breaks 4 bonds too, two of them wrapping.
        (3, flipped(3, 0), 10, 7),
        (4, vec![UP; 16], 32, 16),
        (4, checkerboard(4), -32, 0),
        (4, flipped(4, 5), 24, 14),
        (4, flipped(4, 15), 24, 14),
        // Row 0 down: its 4 bonds to row 1 and 4 (wrapping) to row 3 break.
        (
            4,
            (0..16).map(|i| if i < 4 { DOWN } else { UP }).collect(),
            16,
            8,
        ),
        // Partial state: unassigned sites are spin 0 (only the bond 0-1 counts).
        (3, vec![UP, UP, 0, 0, 0, 0, 0, 0, DOWN], 1, 1),
    ];
    for (side, row, pairs, total) in cases {
        let (env, reward) = ising(side, j, h, beta);
        assert_eq!(reward.spin_sums(&row), (pairs, total), "L={side} {row:?}");
        let e = -j * pairs as f64 - h * total as f64;
        assert_eq!(reward.energy(&row), e, "L={side} {row:?}");
        if side >= 3 {
            assert_eq!(brute_energy(side, &row, j, h), e);
        }
        let mut lr = [f64::NAN];
        reward.log_reward(&StateBatch::new(row.clone(), env.state_width()), &mut lr);
        assert_eq!(lr[0], -beta * e);
    }
    // Concrete numbers: 3x3 all up, E = -1.5 * 18 - 0.5 * 9 = -31.5, ln R = 63.
    let (_, reward) = ising(3, j, h, beta);
    assert_eq!(reward.energy(&[UP; 9]), -31.5);
    assert_eq!(reward.log_reward_of(&[UP; 9]), 63.0);
    assert_eq!(reward.energy(&checkerboard(3)), 8.5);
}

#[test]
fn edge_counts_and_the_2x2_torus() {
    for (side, edges) in [(2, 4), (3, 18), (4, 32), (10, 200)] {
        let env = Ising::new(side).unwrap();
        assert_eq!(env.n_edges(), edges, "L={side}");
        let e = env.edges();
        assert!(e.iter().all(|&[a, b]| a < b), "pairs are ordered");
        assert!(e.windows(2).all(|w| w[0] < w[1]), "no pair twice");
    }
    // 2x2: the 4-cycle 0-1-3-2, each pair once (not the doubled multigraph).
    assert_eq!(
        Ising::new(2).unwrap().edges(),
        [[0, 1], [0, 2], [1, 3], [2, 3]]
    );
    let (_, reward) = ising(2, 1.0, 0.0, 1.0);
    assert_eq!(reward.spin_sums(&[UP; 4]), (4, 4));
    assert_eq!(reward.spin_sums(&checkerboard(2)), (-4, 0));
    assert_eq!(reward.spin_sums(&[UP, DOWN, UP, UP]), (0, 2));
}

// ---------------------------------------------------------------- exact target

#[test]
fn target_matches_brute_force_over_all_spin_configurations() {
    let (j, h, beta) = (0.8, 0.3, 0.6);
    let (env, reward) = ising(3, j, h, beta);
    let (log_p, log_z) = target_distribution(&env, &reward);
    assert_eq!(log_p.len(), 19_683);
    let total: f64 = log_p.iter().map(|l| l.exp()).sum();
    assert!((total - 1.0).abs() < 1e-12, "sum {total}");
    let mut configs = StateBatch::zeros(0, 9);
    for m in 0u32..512 {
        let row: Vec<i64> = (0..9)
            .map(|i| if m >> i & 1 == 1 { DOWN } else { UP })
            .collect();
        configs.push_row(&row);
    }
    let lr: Vec<f64> = (0..512)
        .map(|i| -beta * brute_energy(3, configs.row(i), j, h))
        .collect();
    let brute = logsumexp(lr.iter().copied());
    assert!((log_z - brute).abs() < 1e-9, "{log_z} vs {brute}");
    let mut mass = 0.0;
    for (i, &l) in lr.iter().enumerate() {
        let k = env.state_index(&configs, i);
        assert_eq!(env.all_states().row(k), configs.row(i));
        assert!((log_p[k] - (l - brute)).abs() < 1e-9);
        mass += log_p[k].exp();
    }
    assert!(
        (mass - 1.0).abs() < 1e-12,
        "all mass on full configurations"
    );
}

#[test]
fn uniform_policy_is_uniform_over_configurations() {
    let env = Ising::new(3).unwrap();
    let p_t = terminating_distribution(&env, &uniform_forward_probs(&env));
    let total: f64 = p_t.iter().sum();
    assert!((total - 1.0).abs() < 1e-12, "sum {total}");
    let all = env.all_states();
    let mut n_terminal = 0;
    for (i, &p) in p_t.iter().enumerate() {
        if env.is_terminal(&all, i) {
            n_terminal += 1;
            // Every step picks the sign of a site with probability 1/2.
            assert!((p - 1.0 / 512.0).abs() < 1e-14, "{p}");
        } else {
            assert_eq!(p, 0.0);
        }
    }
    assert_eq!(n_terminal, 512);
}

// ---------------------------------------------------------------- enumeration

#[test]
fn enumeration_layers_and_ranking() {
    let env = Ising::new(2).unwrap();
    let all = env.all_states();
    assert_eq!(env.check_enumerable().unwrap(), 81);
    assert_eq!(all.len(), 81);
    let k: Vec<usize> = (0..81).map(|i| env.n_assigned(all.row(i))).collect();
    assert!(k.windows(2).all(|w| w[0] <= w[1]), "sorted by layer");
    // C(4, k) 2^k states with k assigned sites.
    for (layer, want) in [1, 8, 24, 32, 16].into_iter().enumerate() {
        assert_eq!(k.iter().filter(|&&x| x == layer).count(), want);
    }
    for i in 0..81 {
        assert_eq!(env.state_index(&all, i), i);
    }
    let env = Ising::new(3).unwrap();
    assert_eq!(env.check_enumerable().unwrap(), 19_683);
    let probe = StateBatch::new(vec![0, UP, DOWN, 0, 0, DOWN, UP, 0, 0], 9);
    let all = env.all_states();
    assert_eq!(all.row(env.state_index(&probe, 0)), probe.row(0));
    assert_eq!(all.row(0), [UNASSIGNED; 9]);
    let big = Ising::new(4).unwrap();
    let err = big.check_enumerable().unwrap_err().to_string();
    assert!(err.contains("3^16") && err.contains("4x4"), "{err}");
    assert!(std::panic::catch_unwind(|| big.all_states()).is_err());
}

// ---------------------------------------------------------------- dynamics

#[test]
fn masks_steps_and_encoding() {
    let env = Ising::new(2).unwrap();
    assert_eq!(
        (env.state_width(), env.n_actions(), env.n_backward_actions()),
        (4, 9, 4)
    );
    assert_eq!((env.feature_dim(), env.max_trajectory_length()), (12, 4));
    assert_eq!(env.exit_action(), 8);
    let mut s = StateBatch::new(vec![0, 0, 0, 0, 0, UP, 0, DOWN, UP, DOWN, DOWN, UP], 4);
    let mut fm = vec![false; 3 * 9];
    env.forward_mask(&s, &mut fm);
    let t = true;
    let f = false;
    assert_eq!(
        fm,
        [
            t, t, t, t, t, t, t, t, f, // s0: any site, either sign, no exit
            t, f, t, f, t, f, t, f, f, // sites 1, 3 set
            f, f, f, f, f, f, f, f, t, // full: exit only
        ]
    );
    let mut bm = vec![false; 12];
    env.backward_mask(&s, &mut bm);
    assert_eq!(bm, [f, f, f, f, f, t, f, t, t, t, t, t]);
    assert!(env.is_initial(&s, 0) && !env.is_initial(&s, 1));
    assert_eq!(env.forward_action_of(&s, 1, 1), 1);
    assert_eq!(env.forward_action_of(&s, 1, 3), 4 + 3);
    assert_eq!(env.backward_action_of(&s, 0, 6), 2);
    env.step(&mut s, &[Some(2), Some(4), None]);
    assert_eq!(s.data, [0, 0, UP, 0, DOWN, UP, 0, DOWN, UP, DOWN, DOWN, UP]);
    env.backward_step(&mut s, &[None, Some(1), Some(0)]);
    assert_eq!(s.data, [0, 0, UP, 0, DOWN, 0, 0, DOWN, 0, DOWN, DOWN, UP]);
    let mut feats = vec![f32::NAN; 3 * 12];
    env.encode(&s, &mut feats);
    let hot: Vec<usize> = (0..36).filter(|&k| feats[k] == 1.0).collect();
    assert_eq!(
        hot,
        [
            0,
            3,
            7,
            9,
            12 + 2,
            12 + 3,
            12 + 6,
            12 + 11,
            24,
            24 + 5,
            24 + 8,
            24 + 10
        ]
    );
    assert_eq!(feats.iter().filter(|&&v| v == 0.0).count(), 36 - 12);
}

#[test]
#[should_panic(expected = "already assigned")]
fn setting_an_assigned_site_panics() {
    let env = Ising::new(2).unwrap();
    let mut s = StateBatch::new(vec![0, UP, 0, 0], 4);
    env.step(&mut s, &[Some(4 + 1)]);
}

#[test]
#[should_panic(expected = "exit")]
fn stepping_exit_panics() {
    let env = Ising::new(2).unwrap();
    let mut s = StateBatch::new(vec![UP; 4], 4);
    env.step(&mut s, &[Some(8)]);
}

#[test]
#[should_panic(expected = "not -1/0/+1")]
fn rows_with_other_values_are_not_states() {
    let env = Ising::new(2).unwrap();
    let mut m = vec![false; 9];
    env.forward_mask(&StateBatch::new(vec![0, 2, 0, 0], 4), &mut m);
}

// ---------------------------------------------------------------- task, training, config

#[test]
fn ground_states_are_the_modes() {
    let cfg = load(None, &["env.kind=ising".into()]).unwrap();
    assert_eq!(
        {
            let ftb::env::EnvSpec::Ising(s) = &cfg.env else {
                panic!("an ising config")
            };
            (s.side, s.coupling, s.field)
        },
        (3, 1.0, 0.0)
    );
    let task = Task::from_config(&cfg.env, cfg.run.exact).unwrap();
    let e = task.enumeration.as_ref().unwrap();
    let all = e.env.all_states();
    let mut modes: Vec<Vec<i64>> = e.modes.iter().map(|&k| all.row(k).to_vec()).collect();
    modes.sort();
    assert_eq!(modes, [vec![DOWN; 9], vec![UP; 9]]);
    // A positive field breaks the symmetry: only all-up is left.
    let cfg = load(None, &["env.kind=ising".into(), "env.field=0.1".into()]).unwrap();
    let task = Task::from_config(&cfg.env, cfg.run.exact).unwrap();
    let modes = &task.enumeration.as_ref().unwrap().modes;
    assert_eq!(modes.len(), 1);
    assert_eq!(all.row(modes[0]), [UP; 9]);
}

/// 1000 iterations of the default objective (Hellinger f-TB, learned log Z
/// and P_B) on 3x3 at `beta = 0.4`, a target spread over many
/// configurations (at `beta = 1` almost all mass sits on the two ground
/// states). About 5 s in release.
#[test]
fn short_training_reduces_the_exact_l1() {
    let sets: Vec<String> = [
        "env.kind=ising",
        "env.beta=0.4",
        "policy.hidden=64",
        "sampling.batch=32",
        "run.trajectories=32000",
        "run.eval_every=1000",
        "optim.lr=0.003",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut trainer = Trainer::new(load(None, &sets).unwrap()).unwrap();
    let before = ftb::eval::metrics::l1_sum(
        &trainer.exact_distribution().unwrap(),
        trainer.target().unwrap(),
    );
    let (s, _) = trainer.run(None, |_, _| {}).unwrap();
    eprintln!(
        "ising 3x3: exact L1 {before:.3} -> {:.4}, modes {}/{}",
        s.l1_exact.unwrap(),
        s.modes_found.unwrap(),
        s.n_modes.unwrap()
    );
    assert!(
        s.l1_exact.unwrap() < before / 2.0,
        "{} from {before}",
        s.l1_exact.unwrap()
    );
}

#[test]
fn invalid_ising_keys_are_named() {
    for (set, key) in [
        ("env.side=1", "env.side"),
        ("env.side=0", "env.side"),
        ("env.coupling=nan", "env.coupling"),
        ("env.field=inf", "env.field"),
        ("env.beta=-inf", "env.beta"),
    ] {
        let err = load(None, &["env.kind=ising".into(), set.into()]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(key), "{set}: {msg}");
        let (code, stderr) = ftb_bin(&["train", "--set", "env.kind=ising", "--set", set]);
        assert_ne!(code, 0, "{set} must be rejected");
        assert!(stderr.contains(key), "{set}: {stderr}");
    }
    // Too large to enumerate: built without enumeration by default, refused
    // when exact evaluation is required, naming the keys.
    let cfg = load(None, &["env.kind=ising".into(), "env.side=4".into()]).unwrap();
    assert!(
        Task::from_config(&cfg.env, cfg.run.exact)
            .unwrap()
            .enumeration
            .is_none()
    );
    let msg = format!(
        "{:#}",
        Task::from_config(&cfg.env, ftb::job::ExactEval::Always)
            .err()
            .unwrap()
    );
    assert!(
        msg.contains("env.side") && msg.contains("run.exact") && msg.contains("too many"),
        "{msg}"
    );
    // Another kind does not read them: by --set that is an error naming the
    // key and the kind (a file's stray key is dropped with a warning).
    let msg = format!("{:#}", load(None, &["env.side=1".into()]).unwrap_err());
    assert!(
        msg.contains("env.side") && msg.contains("hypergrid"),
        "{msg}"
    );
}

#[test]
fn constructor_errors() {
    assert_eq!(Ising::new(1).unwrap_err(), IsingError::SideTooSmall(1));
    assert_eq!(Ising::new(0).unwrap_err(), IsingError::SideTooSmall(0));
    assert_eq!(
        Ising::new(MAX_SIDE + 1).unwrap_err(),
        IsingError::TooLarge(MAX_SIDE + 1)
    );
    assert!(
        Ising::new(1)
            .unwrap_err()
            .to_string()
            .contains("at least 2")
    );
    let env = Ising::new(3).unwrap();
    for (j, h, beta) in [
        (f64::NAN, 0.0, 1.0),
        (1.0, f64::INFINITY, 1.0),
        (1.0, 0.0, f64::NEG_INFINITY),
        (1e300, 0.0, 1e300),
    ] {
        assert!(
            matches!(
                IsingReward::new(&env, j, h, beta),
                Err(IsingError::InvalidReward(_))
            ),
            "J={j} h={h} beta={beta}"
        );
    }
    assert!(IsingReward::new(&env, -1.0, 0.0, -2.0).is_ok());
    let r = IsingReward::new(&env, 1.0, 0.0, 1.0).unwrap();
    assert_eq!(
        r.check_env(&Ising::new(4).unwrap()),
        Err(IsingError::RewardMismatch {
            expected: 3,
            got: 4
        })
    );
}
