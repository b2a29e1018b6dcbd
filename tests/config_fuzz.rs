//! The config loader under random `--set` overrides (keys real and made up,
//! values of every TOML type, edge numbers): it never panics, and every
//! error names a key. Loaded configs also build their environment (without
//! enumeration), which must fail the same way.

use ftb::gflownet::task::Task;
use ftb::job::kinds::{EnvKind, find};
use ftb::job::{ExactEval, load};
use proptest::prelude::*;

/// Every dotted key of the embedded default config.
fn real_keys() -> Vec<String> {
    let table: toml::Table = ftb::job::DEFAULT_CONFIG.parse().unwrap();
    let mut keys = Vec::new();
    for (section, v) in &table {
        if let toml::Value::Table(t) = v {
            keys.extend(t.keys().map(|k| format!("{section}.{k}")));
        }
        keys.push(section.clone());
    }
    keys
}

fn key() -> impl Strategy<Value = String> {
    let real = real_keys();
    prop_oneof![
        6 => proptest::sample::select(real),
        1 => "[a-z_]{1,8}(\\.[a-z_]{1,8}){0,2}",
        1 => "[a-z.= ]{0,6}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (0i64..40).prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        (-3.0f64..3.0).prop_map(|v| v.to_string()),
        proptest::sample::select(vec![
            "nan",
            "inf",
            "-inf",
            "1e400",
            "true",
            "false",
            "[]",
            "[1, 2]",
            "{a = 1}",
            "\"\"",
            "hypergrid",
            "bitseq",
            "set",
            "sequence",
            "tokens",
            "ising",
            "gmm",
            "banana",
            "diffusion",
            "ftb",
            "tb",
            "db",
            "subtb",
            "fm",
            "measure",
            "keyed",
            "shen",
            "alpha:0.5",
            "alpha:abc",
            "renyi:-1",
            "learned",
            "devgrad",
            "exact",
            "never",
            "always",
            "uniform",
            "shared",
            "drop",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,12}",
    ]
}

proptest! {
    // Seeded, so CI runs the same 10^4 cases every time.
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(2026),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_overrides_never_panic_and_errors_name_a_key(
        sets in proptest::collection::vec((key(), value()), 1..4)
    ) {
        let overrides: Vec<String> = sets.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // The key is what precedes the first `=`, its parts trimmed, as the
        // loader reads it.
        let keys: Vec<String> = overrides
            .iter()
            .map(|o| {
                let k = o.split_once('=').map_or(o.as_str(), |(k, _)| k);
                k.split('.').map(str::trim).collect::<Vec<_>>().join(".")
            })
            .collect();
        let names_a_key = |msg: &str| {
            // A key the user set, a config key the check is about (`section.key`),
            // or the malformed `--set` itself.
            keys.iter().any(|k| !k.is_empty() && msg.contains(k.as_str()))
                || real_keys().iter().any(|k| k.contains('.') && msg.contains(k.as_str()))
                || msg.contains("--set `")
        };
        match load(None, &overrides) {
            Err(e) => {
                let msg = format!("{e:#}");
                prop_assert!(names_a_key(&msg), "{overrides:?}: {msg}");
            }
            Ok(cfg) => {
                let built = match find(cfg.env.kind()).unwrap() {
                    EnvKind::Discrete(_) => Task::from_config(&cfg.env, ExactEval::Never).map(|_| ()),
                    EnvKind::Continuous(k) => (k.build)(&cfg.continuous).map(|_| ()),
                };
                if let Err(e) = built {
                    let msg = format!("{e:#}");
                    prop_assert!(names_a_key(&msg), "{overrides:?}: {msg}");
                }
            }
        }
    }
}
