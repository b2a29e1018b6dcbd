//! The number of backend threads changes speed, never results: every split
//! of the fused layers' products and passes writes disjoint blocks (no
//! partial sums, `db` cut by columns) and Adam's update is elementwise, so a
//! run on one thread and on several gives bitwise the same parameters. This
//! is what lets `run.threads` default to every core without changing a run.

use ftb::gflownet::Trainer;
use ftb::job::load;

/// Parameters after a short hypergrid run (4-D, H = 16) inside a pool of
/// `threads`, with 256-unit layers and batch 512 so that the learner's
/// products (about 900 distinct states x 256 x 256), its element passes
/// and Adam's update are split.
fn parameters_after_training(threads: usize) -> Vec<f64> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let cfg = load(
            None,
            &[
                "env.dim=4".into(),
                "env.height=16".into(),
                "sampling.batch=512".into(),
                "policy.hidden=256".into(),
                "run.trajectories=1536".into(),
                "run.exact=\"never\"".into(),
                "run.eval_every=1000".into(),
            ],
        )
        .unwrap();
        let mut t = Trainer::new(cfg).unwrap();
        t.run(None, |_, _| {}).unwrap();
        ftb::policy::flat_parameters(&t.learner.policy)
    })
}

#[test]
fn one_and_two_threads_train_bitwise_the_same_parameters() {
    let one = parameters_after_training(1);
    let two = parameters_after_training(2);
    assert_eq!(one.len(), two.len());
    let differing = one
        .iter()
        .zip(&two)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(
        differing,
        0,
        "{differing} of {} parameters differ between 1 and 2 threads",
        one.len()
    );
    // The run moved the parameters (the comparison is not of two inits).
    let init = {
        let cfg = load(
            None,
            &[
                "env.dim=4".into(),
                "env.height=16".into(),
                "policy.hidden=256".into(),
                "run.exact=\"never\"".into(),
            ],
        )
        .unwrap();
        ftb::policy::flat_parameters(&Trainer::new(cfg).unwrap().learner.policy)
    };
    assert!(one.iter().zip(&init).any(|(a, b)| a != b));
}
