//! Tasks too large to enumerate (Ising 6x6, sets at the paper's |D| = 32,
//! N = 16): they build and train through `Trainer::run` with sample-based
//! metrics only, `run.exact` decides when to enumerate, and mode discovery
//! without enumeration agrees with the enumerated path.

use ftb::gflownet::task::Task;
use ftb::gflownet::trainer::{Summary, Trainer};
use ftb::job::{ExactEval, load};

/// A small, fast training config on top of `sets`.
fn config(sets: &[&str]) -> ftb::job::TrainConfig {
    let mut all: Vec<String> = [
        "policy.hidden=32",
        "sampling.batch=32",
        "run.trajectories=320",
        "run.eval_every=4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    all.extend(sets.iter().map(|s| s.to_string()));
    load(None, &all).unwrap()
}

/// The checks every run without enumeration must pass: no exact field is
/// filled in, and the sample metrics are consistent with the run.
fn assert_sample_only(s: &Summary, points: &[ftb::gflownet::trainer::EvalPoint], max_log_r: f64) {
    assert!(!s.exact);
    assert_eq!(s.l1_exact, None);
    assert!(s.metrics.is_none() && s.f_divergence.is_none() && s.log_z_true.is_none());
    assert_eq!(s.trajectories, 320);
    assert_eq!(points.len(), 3, "evaluations at 4, 8 and 10 iterations");
    let mut drawn = 0;
    for p in points {
        assert_eq!(p.l1_exact, None);
        assert!(p.samples.samples > 0);
        drawn += p.samples.samples;
        assert!(p.samples.mean_log_reward.is_finite());
        assert!(p.samples.mean_log_reward <= p.samples.max_log_reward);
        assert!(p.samples.max_log_reward <= p.samples.best_log_reward);
        assert!(p.samples.best_log_reward <= max_log_r + 1e-9);
    }
    // On-policy, no replay: every trained trajectory was drawn by the sampler.
    assert_eq!(drawn, 320);
    assert_eq!(s.samples, points.last().unwrap().samples);
    let distinct = s.samples.distinct_terminals;
    assert!(distinct > 0 && distinct <= 320, "{distinct}");
    // The summary serialises the missing exact values as null.
    let json = serde_json::to_value(s).unwrap();
    assert!(json["l1_exact"].is_null() && json["log_z_true"].is_null());
    assert!(json["samples"]["mean_log_reward"].as_f64().is_some());
}

#[test]
fn ising_6x6_trains_without_enumeration() {
    let cfg = config(&["env.kind=ising", "env.side=6"]);
    let mut trainer = Trainer::new(cfg).unwrap();
    assert!(!trainer.is_exact());
    assert!(trainer.exact_distribution().is_none() && trainer.target().is_none());
    let (s, points) = trainer.run(None, |_, _| {}).unwrap();
    // J = 1, h = 0, beta = 1 on the 6x6 torus: ln R <= 72 edges, two ground states.
    assert_sample_only(&s, &points, 72.0);
    assert_eq!(s.n_modes, Some(2));
    assert!(s.modes_found.unwrap() <= 2);
    // 2^36 configurations: hundreds of draws from a fresh policy are all distinct.
    assert!(s.samples.distinct_terminals > 300, "{:?}", s.samples);
}

#[test]
fn paper_sized_sets_train_without_enumeration() {
    let cfg = config(&["env.kind=set", "env.elements=32", "env.set_size=16"]);
    let ftb::env::EnvSpec::Set(set) = &cfg.env else {
        panic!("a set config")
    };
    let max = ftb::env::set::SetReward::random(32, set.reward_seed, set.reward_scale)
        .unwrap()
        .max_log_reward(16);
    let mut trainer = Trainer::new(cfg).unwrap();
    assert!(!trainer.is_exact());
    let (s, points) = trainer.run(None, |_, _| {}).unwrap();
    assert_sample_only(&s, &points, max);
    assert_eq!(s.n_modes, Some(1), "random values: one best subset");
    assert_eq!(
        s.modes_found,
        Some(0),
        "C(32,16) subsets: not found by chance"
    );
    assert_eq!(s.all_modes_at, None);
}

#[test]
fn exact_always_refuses_a_space_too_large_to_list() {
    for (sets, reason) in [
        (
            vec!["env.kind=ising", "env.side=6"],
            "too many to enumerate",
        ),
        (
            vec!["env.kind=set", "env.elements=32", "env.set_size=16"],
            "",
        ),
    ] {
        let mut sets = sets.clone();
        sets.push("run.exact=always");
        let err = Trainer::new(config(&sets)).err().expect("must be refused");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("run.exact = \"always\"") && msg.contains(reason),
            "{sets:?}: {msg}"
        );
    }
    // `auto` and `never` build the same task without listing it.
    for mode in [ExactEval::Auto, ExactEval::Never] {
        let cfg = config(&["env.kind=ising", "env.side=6"]);
        assert!(
            Task::from_config(&cfg.env, mode)
                .unwrap()
                .enumeration
                .is_none()
        );
    }
    // An unknown value is rejected when the config is read.
    let err = load(None, &["run.exact=sometimes".into()]).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("sometimes") && msg.contains("never"), "{msg}");
}

#[test]
fn features_that_need_the_exact_target_say_so() {
    for (extra, key) in [
        (
            vec!["objective.log_z=exact", "objective.name=ftb"],
            "objective.log_z",
        ),
        (vec!["run.empirical_samples=100"], "run.empirical_samples"),
    ] {
        let mut sets = vec!["env.kind=ising", "env.side=6"];
        sets.extend(extra);
        let msg = format!("{:#}", Trainer::new(config(&sets)).err().unwrap());
        assert!(
            msg.contains(key) && msg.contains("run.exact") && msg.contains("ising-l6"),
            "{msg}"
        );
    }
}

/// Small enumerable tasks: the mode rule (used without enumeration) marks
/// exactly the enumerated modes, and knows how many there are.
#[test]
fn mode_rules_agree_with_the_enumerated_modes() {
    let cases: &[&[&str]] = &[
        &["env.kind=hypergrid", "env.height=8"],
        &["env.kind=hypergrid", "env.height=8", "env.dim=3"],
        &["env.kind=hypergrid", "env.height=8", "env.r2=0.0"],
        &["env.kind=hypergrid", "env.height=8", "env.reward=sparse"],
        &["env.kind=hypergrid", "env.height=3"],
        &["env.kind=bitseq"],
        &["env.kind=set"],
        &["env.kind=sequence", "env.length=3"],
        &["env.kind=ising"],
        &["env.kind=ising", "env.field=0.1"],
        &["env.kind=ising", "env.field=-0.1", "env.beta=0.5"],
        &["env.kind=ising", "env.coupling=0.0"],
        &["env.kind=ising", "env.coupling=0.0", "env.field=1.0"],
        &["env.kind=ising", "env.side=2", "env.coupling=-1.0"],
        &["env.kind=ising", "env.beta=-1.0", "env.side=2"],
    ];
    for sets in cases {
        let cfg = config(sets);
        let task = Task::from_config(&cfg.env, ExactEval::Always).unwrap();
        let e = task.enumeration.as_ref().unwrap();
        let rule = task.mode_rule.as_ref().expect("a closed-form rule");
        let all = e.env.all_states();
        let mut log_r = vec![0.0; all.len()];
        let mut marked = Vec::new();
        for i in 0..all.len() {
            if e.env.is_terminal(&all, i) {
                let one = all.select(&[i]);
                task.reward.log_reward(&one, &mut log_r[i..i + 1]);
                if rule.is_mode(all.row(i), log_r[i]) {
                    marked.push(i);
                }
            }
        }
        let mut modes = e.modes.clone();
        modes.sort_unstable();
        assert!(!modes.is_empty(), "{sets:?}");
        assert_eq!(marked, modes, "{sets:?}");
        assert_eq!(rule.count(), Some(modes.len()), "{sets:?}");
    }
    // A frustrated antiferromagnet (odd side) has no closed-form ground states.
    let cfg = config(&["env.kind=ising", "env.coupling=-1.0"]);
    assert!(
        Task::from_config(&cfg.env, ExactEval::Never)
            .unwrap()
            .mode_rule
            .is_none()
    );
}

#[test]
fn tied_set_values_count_every_best_subset() {
    let r = ftb::env::set::SetReward::new(vec![2.0, 1.0, 1.0, 1.0, 0.0]).unwrap();
    assert_eq!(r.mode_count(2), Some(3), "{{2, one of three 1s}}");
    assert_eq!(r.mode_count(4), Some(1));
    assert_eq!(r.mode_count(1), Some(1));
}

/// The same seeded run with and without enumeration trains identically and
/// finds the same modes at the same trajectory counts.
#[test]
fn modes_found_without_enumeration_match_the_enumerated_path() {
    let cases: &[&[&str]] = &[
        &["env.kind=hypergrid", "env.height=8"],
        &["env.kind=ising", "env.side=2"],
        &["env.kind=set", "env.elements=6", "env.set_size=2"],
        &["env.kind=bitseq", "env.bits=6", "env.word=2", "env.modes=8"],
    ];
    for sets in cases {
        let run = |exact: &str| {
            let mut s: Vec<&str> = sets.to_vec();
            s.extend(["run.trajectories=640", "run.seed=3", exact]);
            let mut t = Trainer::new(config(&s)).unwrap();
            t.run(None, |_, _| {}).unwrap()
        };
        let (a, pa) = run("run.exact=auto");
        let (b, pb) = run("run.exact=never");
        assert!(a.exact && !b.exact, "{sets:?}");
        assert!(
            a.modes_found.unwrap() > 0,
            "{sets:?}: the comparison needs some modes found"
        );
        assert_eq!(a.modes_found, b.modes_found, "{sets:?}");
        assert_eq!(a.n_modes, b.n_modes, "{sets:?}");
        assert_eq!(a.mode_history, b.mode_history, "{sets:?}");
        assert_eq!(a.all_modes_at, b.all_modes_at, "{sets:?}");
        assert_eq!(a.samples, b.samples, "{sets:?}");
        for (p, q) in pa.iter().zip(&pb) {
            assert_eq!(
                (p.loss.to_bits(), p.modes_found),
                (q.loss.to_bits(), q.modes_found),
                "{sets:?}"
            );
        }
    }
}
