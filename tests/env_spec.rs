//! `[env]` is one typed spec per kind (`EnvSpec`): a kind reads its own keys;
//! switching the kind drops the default kind's keys; another kind's key is an
//! error by `--set` and a warning in a file (older files, and the resolved
//! configs of older runs, hold every kind's keys in one table); a key of no
//! kind is an error that lists the kind's keys.

use ftb::env::EnvSpec;
use ftb::env::config::{BitSeqSpec, HypergridSpec};
use ftb::job::load;
use std::path::Path;
use std::process::Command;

fn sets(kv: &[&str]) -> Vec<String> {
    kv.iter().map(|s| s.to_string()).collect()
}

/// The flat `[env]` of the default config before typed specs (every kind's
/// keys, as configs/hypergrid.toml shipped them).
const FLAT: &str = "tests/data/config-flat-env.toml";

#[test]
fn each_kind_reads_its_own_keys_with_its_defaults() {
    assert_eq!(
        load(None, &[]).unwrap().env,
        EnvSpec::Hypergrid(HypergridSpec::default())
    );
    // Switching the kind starts from that kind's defaults: none of the
    // default hypergrid keys is carried over, silently.
    let cfg = load(None, &sets(&["env.kind=bitseq", "env.bits=12"])).unwrap();
    assert_eq!(
        cfg.env,
        EnvSpec::Bitseq(BitSeqSpec {
            bits: 12,
            ..BitSeqSpec::default()
        })
    );
    // The resolved config lists only the kind's keys, and reads back equal.
    let text = cfg.to_toml();
    assert!(
        text.contains("bits = 12") && !text.contains("height"),
        "{text}"
    );
    let back: ftb::job::TrainConfig = toml::from_str(&text).unwrap();
    assert_eq!(back.env, cfg.env);
    for spec in EnvSpec::every_kind() {
        let kind = spec.kind();
        if !ftb::job::kinds::lookup(kind).is_some() {
            continue; // a molecule kind in a build without `chem`
        }
        let cfg = load(None, &[format!("env.kind={kind}")]).unwrap();
        assert_eq!(cfg.env, spec, "{kind}");
    }
}

#[test]
fn another_kinds_key_by_set_is_refused_naming_both() {
    let msg = format!("{:#}", load(None, &sets(&["env.bits=12"])).unwrap_err());
    assert!(
        msg.contains("--set env.bits") && msg.contains("hypergrid") && msg.contains("bits"),
        "{msg}"
    );
    let msg = format!(
        "{:#}",
        load(None, &sets(&["env.kind=ising", "env.height=4"])).unwrap_err()
    );
    assert!(msg.contains("env.height") && msg.contains("ising"), "{msg}");
}

#[test]
fn a_key_of_no_kind_lists_the_kinds_keys() {
    let msg = format!("{:#}", load(None, &sets(&["env.heigth=4"])).unwrap_err());
    assert!(
        msg.contains("env.heigth")
            && msg.contains("unknown field `heigth`")
            && msg.contains("`height`"),
        "{msg}"
    );
}

#[test]
fn a_flat_config_of_every_kinds_keys_still_loads() {
    // The old default file: every kind's keys under [env]. It loads as the
    // same config as today's default, and with another kind set too.
    let old = load(Some(Path::new(FLAT)), &[]).unwrap();
    assert_eq!(old.to_toml(), load(None, &[]).unwrap().to_toml());
    let ising = load(Some(Path::new(FLAT)), &sets(&["env.kind=ising"])).unwrap();
    let EnvSpec::Ising(s) = &ising.env else {
        panic!("{:?}", ising.env)
    };
    // The file's ising values (side 3, coupling 1, field 0) are read.
    assert_eq!((s.side, s.coupling, s.field), (3, 1.0, 0.0));
    // The binary warns once, naming the ignored keys.
    let dir = std::env::temp_dir().join(format!("ftb-env-spec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_ftb"))
        .args(["train", "--quiet", "--config", FLAT, "--out"])
        .arg(&dir)
        .args(["--set", "env.height=4", "--set", "sampling.batch=16"])
        .args(["--set", "run.trajectories=32"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // (It also holds the replay keys under their old [offpolicy] names, each
    // read under its new name with a warning of its own.)
    assert!(
        err.contains("`offpolicy.replay` is now `replay.kind`"),
        "{err}"
    );
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("not read by")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("env.bits")
            && warnings[0].contains("env.side")
            && warnings[0].contains("not read by env.kind = \"hypergrid\""),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
