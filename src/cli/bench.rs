//! `ftb bench`: milliseconds per training iteration on standard scenarios,
//! with the time split, throughput, peak memory, and the learner's FLOP rate
//! against the machine's measured f32 matrix-multiply rate.
//!
//! Scenarios carry torchgfn's names. Every one runs with `run.exact = "never"`:
//! the bench times `Trainer::step` only, and listing the 1M states of
//! `hypergrid-large` (or building its DAG) first would dominate the memory figure.

use crate::gflownet::trainer::{AnyTrainer, Trainer, with_trainer};
use crate::job::{TrainConfig, load};
use crate::policy::{Policy, StatePolicy};
use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  ftb bench --scenario hypergrid-small --batch 16,128 --json\n  ftb bench --scenario all\n  ftb bench --set offpolicy.actors=1      learner with one actor thread sampling\n\npeak_rss_mb is the resident-set high-water mark of the scenario: the kernel's mark (VmHWM) is reset before each scenario (/proc/self/clear_refs), so it is the scenario's own peak over a baseline of rss_baseline_mb still held from before; rss_scope says `scenario`, or `process` where the reset is unavailable (then the figure is the whole process's peak so far)."
)]
pub struct Args {
    /// Scenarios to run, or `all`: hypergrid-small (2-D H=8), hypergrid-medium
    /// (4-D H=16), hypergrid-large (4-D H=32), bitseq (n=120 bits in k=8-bit
    /// words, 60 modes: the TB paper's setting), ising-6x6, ising-10x10
    /// (J=1, h=0, beta=1); with the cargo feature `chem` (on by default)
    /// also fragment-mol (at most 4 fragments; the MLP policy),
    /// fragment-mol-gnn (the same task with the graph network, hidden 64, 3
    /// message-passing layers), reaction-mol (at most 2 reactions,
    /// uniform P_B) and reaction-mol-gnn (the same with the atom-level graph
    /// network, hidden 64, 3 layers), QED reward, where traj/s is molecules sampled and
    /// trained on per second. The graph network has no learner GFLOP/s
    /// (its products depend on each batch's graphs).
    #[arg(long, value_delimiter = ',', default_values_t = ["hypergrid-small".to_string()])]
    scenario: Vec<String>,
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_values_t = [16usize, 32, 128, 512])]
    batch: Vec<usize>,
    /// Timed iterations per repeat.
    #[arg(long, default_value_t = 50)]
    iterations: u64,
    /// Repeats (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    /// Backend threads, one or several (`1,2`: every scenario and batch on
    /// each, then a 1 -> N scaling table); 0 (the default, as `run.threads`)
    /// is every core of the machine.
    #[arg(long, value_delimiter = ',', default_values_t = [0usize])]
    threads: Vec<usize>,
    /// Rounds over the thread counts, alternating their order (1,2 then
    /// 2,1 ...): on a shared machine the scaling table then gives each
    /// ratio's median over rounds with its min-max, not one noisy reading.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// A Python interpreter with PyTorch: its f32 product rate at the
    /// learner's shapes is measured next to ftb's own, with the same threads
    /// (`scripts/compare-peers.sh` prepares one).
    #[arg(long, value_name = "PYTHON")]
    gemm_reference: Option<PathBuf>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Config overrides for every scenario, e.g. `--set offpolicy.actors=1`
    /// (sampling on an actor thread while the learner trains).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// The scenario names, in the order `all` runs them.
const SCENARIOS: [&str; 6] = [
    "hypergrid-small",
    "hypergrid-medium",
    "hypergrid-large",
    "bitseq",
    "ising-6x6",
    "ising-10x10",
];

/// Molecule scenarios (cargo feature `chem`, on by default; `all` includes
/// them in such a build): QED reward (beta 8), the MLP policy except
/// fragment-mol-gnn (the graph network at the README's measured size:
/// hidden 64, 3 layers, so that it can be set against fragment-mol's MLP);
/// reaction-mol with a uniform `P_B`, and reaction-mol-gnn (its atom-level
/// graph network at the same size). Their environments cache masks and
/// parents per molecule, so the warm-up iterations fill caches that the
/// timed ones partly reuse.
const MOLECULE_SCENARIOS: [&str; 4] = [
    "fragment-mol",
    "fragment-mol-gnn",
    "reaction-mol",
    "reaction-mol-gnn",
];

/// The config of a scenario: its environment, TB, and no enumeration.
fn scenario_config(name: &str) -> Result<TrainConfig> {
    use crate::env::EnvSpec;
    use crate::env::config::{BitSeqSpec, HypergridSpec, IsingSpec, MoleculeSpec};
    let mut cfg = load(None, &[])?;
    let hypergrid = |dim, height| {
        EnvSpec::Hypergrid(HypergridSpec {
            dim,
            height,
            ..HypergridSpec::default()
        })
    };
    let ising = |side| {
        EnvSpec::Ising(IsingSpec {
            side,
            coupling: 1.0,
            field: 0.0,
            beta: 1.0,
        })
    };
    // QED only (beta 8, the default).
    let molecules = |max_fragments, max_reactions| MoleculeSpec {
        molecule: crate::chem::MoleculeConfig {
            max_fragments,
            max_reactions,
            reward: vec!["qed".into()],
            ..crate::chem::MoleculeConfig::default()
        },
    };
    let default_molecule = crate::chem::MoleculeConfig::default();
    // At most 4 fragments; at most 2 reactions with a uniform P_B.
    let fragment_mol = || EnvSpec::FragmentMol(molecules(4, default_molecule.max_reactions));
    let reaction_mol = || EnvSpec::ReactionMol(molecules(default_molecule.max_fragments, 2));
    let gnn = matches!(name, "fragment-mol-gnn" | "reaction-mol-gnn");
    cfg.env = match name {
        "hypergrid-small" => hypergrid(2, 8),
        "hypergrid-medium" => hypergrid(4, 16),
        "hypergrid-large" => hypergrid(4, 32),
        // Malkin et al. (2022), bit sequences: n = 120, k = 8, |M| = 60.
        "bitseq" => EnvSpec::Bitseq(BitSeqSpec {
            bits: 120,
            word: 8,
            modes: 60,
            ..BitSeqSpec::default()
        }),
        "ising-6x6" => ising(6),
        "ising-10x10" => ising(10),
        "fragment-mol" | "fragment-mol-gnn" | "reaction-mol" | "reaction-mol-gnn"
            if !cfg!(feature = "chem") =>
        {
            bail!(
                "--scenario `{name}` needs the molecule environments: build with \
             `--features chem` (cargo run --release --features chem -- bench ...)"
            )
        }
        "fragment-mol" | "fragment-mol-gnn" => fragment_mol(),
        "reaction-mol" | "reaction-mol-gnn" => {
            cfg.policy.backward = crate::policy::BackwardPolicy::Uniform;
            reaction_mol()
        }
        _ => bail!(
            "--scenario `{name}`: unknown scenario; valid: {}, {}, all",
            SCENARIOS.join(", "),
            MOLECULE_SCENARIOS.join(", ")
        ),
    };
    if gnn {
        // The graph network at the README's measured size (hidden 64, 3
        // message-passing layers).
        cfg.policy.kind = crate::policy::PolicyKind::Gnn;
        cfg.policy.hidden = 64;
        cfg.policy.gnn_layers = 3;
    }
    cfg.objective.name = "tb".into();
    cfg.run.exact = crate::train::settings::ExactEval::Never;
    Ok(cfg)
}

/// `--scenario` with `all` expanded (in the order of [`SCENARIOS`]).
fn expand_scenarios(names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        if n == "all" {
            out.extend(SCENARIOS.iter().map(|s| s.to_string()));
            if cfg!(feature = "chem") {
                out.extend(MOLECULE_SCENARIOS.iter().map(|s| s.to_string()));
            }
        } else {
            out.push(n.clone());
        }
    }
    out
}

pub fn run(args: Args) -> Result<ExitCode> {
    let scenarios = expand_scenarios(&args.scenario);
    // Unknown names fail before anything is timed.
    for s in &scenarios {
        scenario_config(s)?;
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    // Each thread count runs in its own pool: the backend's parallel loops
    // and the fused layers' product split read the pool they run in.
    let pools = args
        .threads
        .iter()
        .map(|&requested| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(requested)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut timings = Vec::new();
    for round in 0..args.rounds {
        let mut order: Vec<&rayon::ThreadPool> = pools.iter().collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for pool in order {
            timings.extend(pool.install(|| run_on_pool(&args, &scenarios, round))?);
        }
    }
    if !args.json && (args.threads.len() > 1 || args.rounds > 1) {
        print_scaling(&timings, &args.threads_in_order(&pools));
    }
    Ok(ExitCode::SUCCESS)
}

impl Args {
    /// The thread counts of `pools`, in the order given on the command line.
    fn threads_in_order(&self, pools: &[rayon::ThreadPool]) -> Vec<usize> {
        let mut counts: Vec<usize> = pools.iter().map(|p| p.current_num_threads()).collect();
        counts.dedup();
        counts
    }
}

/// One timed run: scenario, batch, threads, round, median ms per iteration.
struct Timing {
    scenario: String,
    batch: usize,
    threads: usize,
    round: usize,
    ms_per_iter: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// ms/iter per thread count (median over rounds), and each count's speed-up
/// over the first: the median of the rounds' ratios, with their min-max when
/// there are several rounds.
fn print_scaling(timings: &[Timing], counts: &[usize]) {
    let first = counts[0];
    let rounds = timings.iter().map(|t| t.round + 1).max().unwrap_or(1);
    print!("\nscaling (median ms/iter) {:<4} {:>6}", "", "batch");
    for t in counts {
        print!(" {:>10}", format!("{t} thr"));
    }
    for t in &counts[1..] {
        print!(" {:>20}", format!("{first}->{t}"));
    }
    println!();
    let mut cases: Vec<(&str, usize)> = Vec::new();
    for t in timings {
        if !cases.contains(&(t.scenario.as_str(), t.batch)) {
            cases.push((t.scenario.as_str(), t.batch));
        }
    }
    for (scenario, batch) in cases {
        let at = |threads: usize, round: usize| {
            timings
                .iter()
                .find(|t| {
                    t.scenario == scenario
                        && t.batch == batch
                        && t.threads == threads
                        && t.round == round
                })
                .map(|t| t.ms_per_iter)
        };
        print!("{scenario:<29} {batch:>6}");
        for &t in counts {
            let ms: Vec<f64> = (0..rounds).filter_map(|r| at(t, r)).collect();
            let cell = if ms.is_empty() {
                "-".to_string()
            } else {
                format!("{:.2}", median(ms))
            };
            print!(" {cell:>10}");
        }
        for &t in &counts[1..] {
            let ratios: Vec<f64> = (0..rounds)
                .filter_map(|r| Some(at(first, r)? / at(t, r)?))
                .collect();
            let cell = match ratios.len() {
                0 => "-".to_string(),
                1 => format!("{:.2}x", ratios[0]),
                _ => {
                    let (lo, hi) = ratios.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| {
                        (lo.min(x), hi.max(x))
                    });
                    format!("{:.2}x [{lo:.2}-{hi:.2}]", median(ratios))
                }
            };
            print!(" {cell:>20}");
        }
        println!();
    }
}

/// Every scenario and batch size on the current rayon pool.
fn run_on_pool(args: &Args, scenarios: &[String], round: usize) -> Result<Vec<Timing>> {
    let mut timings = Vec::new();
    let threads = rayon::current_num_threads();
    let gemm = gemm_gflops();
    if !args.json {
        println!("f32 matrix multiply (512^3, flex, {threads} thread(s)): {gemm:.1} GFLOP/s");
        println!(
            "{:<18} {:>6} {:>10} {:>14} {:>12} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "scenario",
            "batch",
            "ms/iter",
            "spread",
            "traj/s",
            "learner",
            "%gemm",
            "sample",
            "loss",
            "backward",
            "optim"
        );
    }
    for scenario in scenarios {
        for &batch in &args.batch {
            let mut cfg = scenario_config(scenario)?;
            cfg.sampling.batch = batch;
            let cfg = cfg.with_overrides(&args.overrides)?;
            let scope = reset_peak_rss();
            let rss_baseline = rss_mb("VmRSS:");
            let mut trainer = AnyTrainer::new(cfg)?;
            let Steps {
                per_iter,
                split,
                rows,
                batch_rows,
            } = with_trainer!(&mut trainer, t => time_steps(t, args))?;
            let median = per_iter[per_iter.len() / 2];
            let total_iters = (args.iterations * args.repeats as u64) as f64;
            let split_ms = split.map(|s| s * 1e3 / total_iters);
            // The MLP's products are fixed per state; the graph network's
            // depend on each batch's graphs, so it has no FLOP count here.
            let mlp = match &trainer {
                AnyTrainer::Mlp(t) => Some(&t.learner.policy),
                #[cfg(feature = "chem")]
                AnyTrainer::Gnn(_) => None,
                #[cfg(feature = "chem")]
                AnyTrainer::ReactionGnn(_) => None,
            };
            // Learner FLOPs: forward and backward matmuls of every evaluated state.
            let learner_gflops = mlp.map(|p| {
                p.training_flops_per_row() as f64 * rows as f64
                    / (split[1] + split[2] + split[3])
                    / 1e9
            });
            // The same products in isolation, ftb's and (optionally) PyTorch's.
            let products = mlp.map(|p| {
                learner_products(
                    &p.layer_dims(),
                    (rows as f64 / total_iters).round() as usize,
                )
            });
            let products_gflops = products.as_deref().map(flex_products_gflops);
            let reference = match (&args.gemm_reference, &products) {
                (Some(python), Some(products)) => {
                    Some(torch_products_gflops(python, products, threads)?)
                }
                _ => None,
            };
            let row = serde_json::json!({
                "scenario": scenario,
                "batch": batch,
                "ms_per_iter": median,
                "ms_per_iter_min": per_iter[0],
                "ms_per_iter_max": per_iter[per_iter.len() - 1],
                "trajectories_per_s": batch as f64 * 1e3 / median,
                "peak_rss_mb": rss_mb("VmHWM:"),
                "rss_baseline_mb": rss_baseline,
                "rss_scope": scope,
                "gemm_gflops": gemm,
                "learner_gflops": learner_gflops,
                "learner_fraction_of_gemm": learner_gflops.map(|g| g / gemm),
                "rows_per_iter": batch_rows as f64 / total_iters,
                "states_evaluated_per_iter": rows as f64 / total_iters,
                "ms_sample": split_ms[0],
                "ms_loss": split_ms[1],
                "ms_backward": split_ms[2],
                "ms_optimiser": split_ms[3],
                "threads": threads,
                "products_gflops": products_gflops,
                "reference_products_gflops": reference,
                "products_fraction_of_reference": products_gflops.zip(reference).map(|(p, r)| p / r),
                "env": trainer.task().env.name(),
                "policy": trainer.cfg().policy.kind.to_string(),
                "repeats": args.repeats,
                "iterations": args.iterations,
                "round": round,
            });
            timings.push(Timing {
                scenario: scenario.clone(),
                batch,
                threads,
                round,
                ms_per_iter: median,
            });
            if args.json {
                println!("{row}");
            } else {
                println!(
                    "{:<18} {:>6} {:>10.2} {:>14} {:>12.0} {:>9} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                    scenario,
                    batch,
                    median,
                    format!("{:.2}-{:.2}", per_iter[0], per_iter[per_iter.len() - 1]),
                    batch as f64 * 1e3 / median,
                    learner_gflops.map_or("-".into(), |g| format!("{g:.1}")),
                    learner_gflops.map_or("-".into(), |g| format!("{:.0}%", 100.0 * g / gemm)),
                    split_ms[0],
                    split_ms[1],
                    split_ms[2],
                    split_ms[3]
                );
                let states = format!(
                    "{:.0} distinct states evaluated of {:.0} rows per iteration",
                    rows as f64 / total_iters,
                    batch_rows as f64 / total_iters
                );
                match (products_gflops, reference) {
                    (None, _) => println!("{:<18} {:>6}   {states}", "", ""),
                    (Some(products_gflops), Some(r)) => println!(
                        "{:<18} {:>6}   {states}; the learner's products alone: ftb {products_gflops:.1} GFLOP/s, PyTorch {r:.1} ({:.0}%)",
                        "",
                        "",
                        100.0 * products_gflops / r
                    ),
                    (Some(products_gflops), None) => println!(
                        "{:<18} {:>6}   {states}; the learner's products alone: ftb {products_gflops:.1} GFLOP/s",
                        "", ""
                    ),
                }
            }
        }
    }
    if !args.json {
        println!(
            "ms/iter: median over repeats (spread: min-max); learner GFLOP/s counts the forward and backward matmul FLOPs per evaluated (distinct) state (6 x MACs, less the first layer's input gradient) over loss + backward + optimiser time; process peak RSS {:.0} MB (per-scenario peaks: --json)",
            rss_mb("VmHWM:")
        );
    }
    Ok(timings)
}

/// What the timed iterations of one scenario measured.
struct Steps {
    /// ms per iteration of each repeat, sorted.
    per_iter: Vec<f64>,
    /// Seconds in sampling, forward + loss, backward, optimiser (all repeats).
    split: [f64; 4],
    /// Distinct states evaluated, and rows trained, over all repeats.
    rows: usize,
    batch_rows: usize,
}

/// Times `trainer`'s steps as `args` says (warm-up, then repeats of timed
/// iterations), with either network.
fn time_steps<P: Policy<Snapshot: StatePolicy> + StatePolicy>(
    trainer: &mut Trainer<P>,
    args: &Args,
) -> Result<Steps> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut it = 0;
    for _ in 0..args.warmup {
        trainer.step(it, &mut rng)?;
        it += 1;
    }
    let mut per_iter = Vec::new();
    let mut split = [0.0f64; 4];
    let (mut rows, mut batch_rows) = (0usize, 0usize);
    for _ in 0..args.repeats {
        let start = Instant::now();
        for _ in 0..args.iterations {
            let out = trainer.step(it, &mut rng)?;
            it += 1;
            rows += out.states_evaluated;
            batch_rows += out.rows;
            for (s, x) in split.iter_mut().zip(out.seconds) {
                *s += x;
            }
        }
        per_iter.push(start.elapsed().as_secs_f64() * 1e3 / args.iterations as f64);
    }
    per_iter.sort_by(|a, b| a.total_cmp(b));
    Ok(Steps {
        per_iter,
        split,
        rows,
        batch_rows,
    })
}

/// Sustained f32 matmul rate of the backend (best of several 512^3 products).
fn gemm_gflops() -> f64 {
    let device = Device::flex();
    let n = 512;
    let a = Tensor::<2>::ones([n, n], &device);
    let b = Tensor::<2>::ones([n, n], &device);
    let mut best = f64::INFINITY;
    for _ in 0..8 {
        let start = Instant::now();
        let c = a.clone().matmul(b.clone());
        let _: f32 = c.sum().into_scalar();
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}

/// One matrix product `[m, k] x [k, n]` of a training pass; a transposed
/// operand is a strided view, as autodiff hands it to the backend.
#[derive(Clone, Copy, Debug, serde::Serialize)]
struct Product {
    m: usize,
    k: usize,
    n: usize,
    lhs_transposed: bool,
    rhs_transposed: bool,
}

/// The products of one training pass over `rows` states, network by network:
/// per layer the forward `x W`, the weight gradient `x^T g`, and, except for
/// an input layer (the features need no gradient), the input gradient `g W^T`.
fn learner_products(networks: &[Vec<(usize, usize)>], rows: usize) -> Vec<Product> {
    let mut out = Vec::new();
    for layers in networks {
        for (i, &(inputs, outputs)) in layers.iter().enumerate() {
            let product = |m, k, n, lhs_transposed, rhs_transposed| Product {
                m,
                k,
                n,
                lhs_transposed,
                rhs_transposed,
            };
            out.push(product(rows, inputs, outputs, false, false));
            out.push(product(inputs, rows, outputs, true, false));
            if i > 0 {
                out.push(product(rows, outputs, inputs, false, true));
            }
        }
    }
    out
}

/// Best time of one product over 5 runs of at least 20 ms each, computed as
/// the policy's fused layers compute it ([`crate::nn::linear::product`]).
fn best_product_seconds(p: &Product) -> f64 {
    let operand = |len: usize| -> Vec<f32> { (0..len).map(|i| (i % 7) as f32 * 0.1).collect() };
    let (a, b) = (operand(p.m * p.k), operand(p.k * p.n));
    let run = |reps: usize| {
        let start = Instant::now();
        for _ in 0..reps {
            drop(std::hint::black_box(crate::nn::linear::product(
                (p.m, p.k, p.n),
                &a,
                p.lhs_transposed,
                &b,
                p.rhs_transposed,
            )));
        }
        start.elapsed().as_secs_f64()
    };
    let mut reps = 1;
    while run(reps) < 0.02 {
        reps *= 2;
    }
    (0..5)
        .map(|_| run(reps) / reps as f64)
        .fold(f64::INFINITY, f64::min)
}

/// ftb's rate over `products`: their FLOPs over the sum of their best times.
fn flex_products_gflops(products: &[Product]) -> f64 {
    let (flops, seconds) = products.iter().fold((0.0, 0.0), |(f, s), p| {
        (
            f + 2.0 * (p.m * p.k * p.n) as f64,
            s + best_product_seconds(p),
        )
    });
    flops / seconds / 1e9
}

/// PyTorch's rate over the same products, measured the same way by
/// `scripts/peers/torch_gemm.py` (embedded) in `python`.
fn torch_products_gflops(python: &PathBuf, products: &[Product], threads: usize) -> Result<f64> {
    const SCRIPT: &str = include_str!("../../scripts/peers/torch_gemm.py");
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("--gemm-reference {}: cannot start: {e}", python.display()))?;
    let request = serde_json::json!({ "threads": threads, "products": products });
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(request.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "--gemm-reference {}: the PyTorch product benchmark failed ({}): {}",
            python.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        anyhow::anyhow!(
            "--gemm-reference {}: unreadable reply ({e}): {}",
            python.display(),
            String::from_utf8_lossy(&out.stdout).trim()
        )
    })?;
    reply["gflops"].as_f64().ok_or_else(|| {
        anyhow::anyhow!(
            "--gemm-reference {}: no `gflops` in {reply}",
            python.display()
        )
    })
}

/// Resets the kernel's resident-set high-water mark (VmHWM) to the current
/// RSS, so the next reading is this scenario's peak rather than the largest
/// scenario's so far. Returns what the mark covers: `scenario`, or `process`
/// where the reset is not available (non-Linux, restricted /proc).
fn reset_peak_rss() -> &'static str {
    match std::fs::write("/proc/self/clear_refs", "5") {
        Ok(()) => "scenario",
        Err(_) => "process",
    }
}

/// A /proc/self/status memory line (`VmHWM:` peak, `VmRSS:` current) in MB
/// (0 where unavailable).
fn rss_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(key)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::mlp::Mlp;

    #[test]
    fn learner_products_count_every_flop_of_a_training_pass() {
        let device = Device::flex();
        let nets = [
            Mlp::new(16, 256, 2, 3, &device),
            Mlp::new(16, 256, 2, 2, &device),
        ];
        let dims: Vec<_> = nets.iter().map(Mlp::layer_dims).collect();
        let rows = 37;
        let products = learner_products(&dims, rows);
        let flops: usize = products.iter().map(|p| 2 * p.m * p.k * p.n).sum();
        let expected: usize = nets.iter().map(Mlp::training_flops_per_row).sum::<usize>() * rows;
        assert_eq!(flops, expected);
        // Forward and weight gradient of 3 layers, input gradient of 2, per network.
        assert_eq!(products.len(), 2 * (3 + 3 + 2));
        assert!(
            products.iter().any(|p| p.lhs_transposed) && products.iter().any(|p| p.rhs_transposed)
        );
    }
}
