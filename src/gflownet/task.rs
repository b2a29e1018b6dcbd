//! A training task: the environment's dynamics and its reward as trait
//! objects, the enumeration used for exact evaluation when the space is small
//! enough (and `run.exact` allows it), and a mode rule that works without
//! enumeration. The trainer, sources and experiments see only this; each
//! discrete kind's constructor here is registered in [`super::kinds`].

#[cfg(feature = "chem")]
use crate::chem::MoleculeConfig;
use crate::conditioning::{BetaChoice, Temperature};
use crate::env::bitseq::{BitSeq, BitSeqReward};
use crate::env::config::{BitSeqSpec, HypergridSpec, IsingSpec, SetSpec, StringsSpec};
use crate::env::hypergrid::{Hypergrid, HypergridReward, RewardFamily};
use crate::env::ising::{Ising, IsingReward};
use crate::env::sequence::{SequenceGeneration, SequenceReward};
use crate::env::set::{SetGeneration, SetReward};
use crate::env::tokens::{TokenReward, TokenStrings};
use crate::env::{Enumerable, Environment, LogReward};
use crate::eval::ModeRule;
use crate::train::settings::ExactEval;
use anyhow::{Context, Result, bail};
use std::sync::Arc;

/// The listed state space of an enumerated task.
#[derive(Clone)]
pub struct Enumeration {
    /// The same environment as [`Task::env`], with its state listing.
    pub env: Arc<dyn Enumerable>,
    /// Enumeration indices of the states with maximal reward.
    pub modes: Vec<usize>,
}

#[derive(Clone)]
pub struct Task {
    /// The dynamics (every kind, however large).
    pub env: Arc<dyn Environment>,
    pub reward: Arc<dyn LogReward>,
    /// The state listing for exact evaluation; `None` when the space is too
    /// large or `run.exact = "never"`.
    pub enumeration: Option<Enumeration>,
    /// Recognises modes from a sampled object and its log-reward, for mode
    /// discovery without enumeration (`None`: the modes are not known in
    /// closed form, e.g. a frustrated Ising antiferromagnet).
    pub mode_rule: Option<ModeRule>,
    /// Grid shape `(rows, cols)` and the coordinates of every state, for heatmaps
    /// of 2-D environments.
    pub grid: Option<(usize, usize)>,
    /// Groups of trajectories with their own `log Z` (prompts, conditions;
    /// 1 for an unconditional task): the size of the learned `log Z` table.
    pub n_groups: usize,
    /// For tasks whose objects are molecules: what the trainer needs to
    /// report the molecule metrics (modes by similarity, top-k, ...).
    pub molecules: Option<crate::eval::molecules::MoleculeEval>,
    /// Temperature conditioning (`conditioning.beta`; `None`: every
    /// trajectory has beta 1). Set by the trainer from its config
    /// ([`Task::with_temperature`]): samplers draw each trajectory's beta
    /// from it, evaluation uses its `eval_beta`.
    pub temperature: Option<Arc<Temperature>>,
}

/// Whether to enumerate under `run.exact`, given the environment's own
/// verdict (`check`: its state count or why it cannot list them).
fn wants_enumeration<E: std::fmt::Display>(
    exact: ExactEval,
    check: std::result::Result<usize, E>,
) -> Result<bool> {
    Ok(match (exact, check) {
        (ExactEval::Never, _) => false,
        (_, Ok(_)) => true,
        (ExactEval::Auto, Err(_)) => false,
        (ExactEval::Always, Err(e)) => bail!(
            "run.exact = \"always\": {e}; set run.exact = \"auto\" or \"never\" to train \
             with sample-based metrics instead"
        ),
    })
}

/// The `hypergrid` task.
pub(super) fn hypergrid(cfg: &HypergridSpec, exact: ExactEval) -> Result<Task> {
    let env = Hypergrid::new(cfg.dim, cfg.height).context("env.dim / env.height")?;
    let family: RewardFamily = cfg.reward.parse().context("env.reward")?;
    let family = match family {
        RewardFamily::Original { .. } => RewardFamily::Original {
            r0: cfg.r0,
            r1: cfg.r1,
            r2: cfg.r2,
        },
        RewardFamily::Sparse { .. } => RewardFamily::Sparse {
            r0: cfg.r0,
            r2: cfg.r2,
        },
    };
    let reward = HypergridReward::new(&env, family).context("env.r0 / env.r1 / env.r2")?;
    let enumeration =
        wants_enumeration(exact, env.check_enumerable())?.then(|| reward.mode_states(&env));
    let count = reward.mode_count();
    let rule_reward = reward.clone();
    let rule = ModeRule::predicate(move |row, _| rule_reward.is_mode(row), count);
    Ok(Task::assemble(
        env,
        reward,
        enumeration,
        Some(rule),
        (cfg.dim == 2).then_some((cfg.height, cfg.height)),
    ))
}

/// The `bitseq` task.
pub(super) fn bitseq(cfg: &BitSeqSpec, exact: ExactEval) -> Result<Task> {
    let env = BitSeq::new(cfg.bits, cfg.word).context("env.bits / env.word")?;
    let reward = BitSeqReward::random_modes(cfg.bits, cfg.modes, cfg.reward_seed)
        .and_then(|r| r.with_beta(cfg.beta))
        .context("env.modes / env.beta")?;
    let enumeration =
        wants_enumeration(exact, env.check_enumerable())?.then(|| reward.mode_indices(&env));
    let count = Some(reward.n_modes());
    let rule_reward = reward.clone();
    let rule = ModeRule::predicate(
        move |row, _| rule_reward.min_distance_of_row(row) == 0,
        count,
    );
    Ok(Task::assemble(env, reward, enumeration, Some(rule), None))
}

/// The `set` task.
pub(super) fn set(cfg: &SetSpec, exact: ExactEval) -> Result<Task> {
    let env =
        SetGeneration::new(cfg.elements, cfg.set_size).context("env.elements / env.set_size")?;
    let reward = SetReward::random(cfg.elements, cfg.reward_seed, cfg.reward_scale)
        .context("env.reward_scale")?;
    let rule = ModeRule::max_log_reward(
        reward.max_log_reward(cfg.set_size),
        reward.mode_count(cfg.set_size),
    );
    let enumerate = wants_enumeration(exact, env.check_enumerable())?;
    Ok(Task::with_best_states(env, reward, enumerate, Some(rule)))
}

/// The `sequence` task.
pub(super) fn sequence(cfg: &StringsSpec, exact: ExactEval) -> Result<Task> {
    let env = SequenceGeneration::new(cfg.vocab, cfg.length).context("env.vocab / env.length")?;
    let reward = SequenceReward::random(cfg.vocab, cfg.length, cfg.reward_seed, cfg.reward_scale)
        .context("env.reward_scale")?;
    let rule = ModeRule::max_log_reward(reward.max_log_reward(), reward.mode_count());
    let enumerate = wants_enumeration(exact, env.check_enumerable())?;
    Ok(Task::with_best_states(env, reward, enumerate, Some(rule)))
}

/// The `tokens` task: variable-length strings (ragged states).
pub(super) fn tokens(cfg: &StringsSpec, exact: ExactEval) -> Result<Task> {
    let env = TokenStrings::new(cfg.vocab, cfg.length).context("env.vocab / env.length")?;
    let reward = TokenReward::random(cfg.vocab, cfg.length, cfg.reward_seed, cfg.reward_scale)
        .context("env.reward_scale")?;
    let rule = ModeRule::max_log_reward(reward.max_log_reward(), reward.mode_count());
    let enumerate = wants_enumeration(exact, env.check_enumerable())?;
    Ok(Task::with_best_states(env, reward, enumerate, Some(rule)))
}

/// The `ising` task.
pub(super) fn ising(cfg: &IsingSpec, exact: ExactEval) -> Result<Task> {
    let env = Ising::new(cfg.side).context("env.side")?;
    let reward = IsingReward::new(&env, cfg.coupling, cfg.field, cfg.beta)
        .context("env.coupling / env.field / env.beta")?;
    // Ferromagnets (and even-side antiferromagnets at h = 0) have
    // closed-form ground states; for J > 0, h = 0 the two aligned ones.
    let rule = reward
        .ground_states()
        .map(|(max, count)| ModeRule::max_log_reward(max, count));
    let enumerate = wants_enumeration(exact, env.check_enumerable()).context("env.side")?;
    Ok(Task::with_best_states(env, reward, enumerate, rule))
}

/// The fragment environment of an `env.kind = "fragment-mol"` config (what
/// its task holds; a graph policy keeps its own copy to read states with).
#[cfg(feature = "chem")]
pub fn fragment_env(m: &MoleculeConfig) -> Result<crate::env::molecule::FragmentMolecules> {
    use crate::env::molecule::{FragmentLibrary, FragmentMolecules};
    let lib = FragmentLibrary::load(&m.fragments).context("env.molecule.fragments")?;
    FragmentMolecules::new(lib, m.max_fragments).context("env.molecule.max_fragments")
}

/// The `fragment-mol` task (cargo feature `chem`): fragment-built molecules
/// under a QED / SA / Lipinski / similarity reward; not enumerable.
#[cfg(feature = "chem")]
pub(super) fn fragment_mol(m: &MoleculeConfig, exact: ExactEval) -> Result<Task> {
    fragment_task(m, exact, fragment_env(m)?)
}

/// The `fragment-mol` task on an environment already built from `m` (a
/// graph policy reads states through the same one).
#[cfg(feature = "chem")]
pub fn fragment_task(
    m: &MoleculeConfig,
    exact: ExactEval,
    env: crate::env::molecule::FragmentMolecules,
) -> Result<Task> {
    use crate::env::molecule::{FragmentMolecules, FragmentReward};
    molecule_task(
        m,
        exact,
        env,
        FragmentReward::new,
        |env: &FragmentMolecules, row| env.smiles(row).ok(),
    )
}

/// The reaction environment of an `env.kind = "reaction-mol"` config (what
/// its task holds; a graph policy keeps its own copy to read states with).
#[cfg(feature = "chem")]
pub fn reaction_env(m: &MoleculeConfig) -> Result<crate::env::molecule::ReactionMolecules> {
    use crate::env::molecule::{ReactionLibrary, ReactionMolecules};
    let lib = ReactionLibrary::load(&m.templates_file, &m.building_blocks_file)
        .context("env.molecule.templates_file / env.molecule.building_blocks_file")?;
    ReactionMolecules::new(lib, m.max_reactions).context("env.molecule.max_reactions")
}

/// The `reaction-mol` task (cargo feature `chem`): molecules built from
/// building blocks by reaction templates (SynFlowNet-style), under the same
/// rewards as `fragment-mol`; not enumerable.
#[cfg(feature = "chem")]
pub(super) fn reaction_mol(m: &MoleculeConfig, exact: ExactEval) -> Result<Task> {
    reaction_task(m, exact, reaction_env(m)?)
}

/// The `reaction-mol` task on an environment already built from `m` (a
/// graph policy reads states through the same one).
#[cfg(feature = "chem")]
pub fn reaction_task(
    m: &MoleculeConfig,
    exact: ExactEval,
    env: crate::env::molecule::ReactionMolecules,
) -> Result<Task> {
    use crate::env::molecule::{ReactionMolecules, ReactionReward};
    molecule_task(
        m,
        exact,
        env,
        ReactionReward::new,
        |env: &ReactionMolecules, row| env.smiles(row).ok(),
    )
}

/// A molecule task: the scorer of `env.molecule` made into the reward
/// (`reward`), the metric settings checked, the molecule metrics wired to the
/// environment's canonical SMILES (`smiles`).
#[cfg(feature = "chem")]
fn molecule_task<E, R>(
    m: &MoleculeConfig,
    exact: ExactEval,
    env: E,
    reward: impl FnOnce(&E, crate::chem::score::Scorer) -> R,
    smiles: fn(&E, &[i64]) -> Option<String>,
) -> Result<Task>
where
    E: Environment + Clone + Send + Sync + 'static,
    R: LogReward + 'static,
{
    let reward = reward(&env, crate::chem::score::Scorer::new(m, "env.molecule")?);
    let smiles_env = env.clone();
    let smiles: Arc<crate::eval::molecules::SmilesFn> =
        Arc::new(move |row: &[i64]| smiles(&smiles_env, row));
    use crate::eval::molecules::{MoleculeEval, MoleculeMetricsConfig};
    if exact == ExactEval::Always {
        bail!(
            "run.exact = \"always\": molecule spaces cannot be enumerated; set run.exact = \"auto\" \
             or \"never\" to train with sample-based metrics"
        );
    }
    let metrics = MoleculeMetricsConfig {
        mode_min_score: m.mode_min_score,
        mode_max_similarity: m.mode_max_similarity,
        top_k: m.top_k,
    };
    if !m.mode_min_score.is_finite() {
        bail!(
            "env.molecule.mode_min_score = {}: must be finite",
            m.mode_min_score
        );
    }
    if !(m.mode_max_similarity > 0.0 && m.mode_max_similarity <= 1.0) {
        bail!(
            "env.molecule.mode_max_similarity = {}: must be in (0, 1]",
            m.mode_max_similarity
        );
    }
    if m.top_k == 0 {
        bail!("env.molecule.top_k must be >= 1");
    }
    let molecules = MoleculeEval {
        smiles,
        fingerprint: Arc::new(|smiles: &str| crate::chem::metric_fingerprint(smiles).ok()),
        beta: m.beta,
        settings: metrics,
    };
    Ok(Task {
        env: Arc::new(env),
        reward: Arc::new(reward),
        enumeration: None,
        mode_rule: None,
        grid: None,
        n_groups: 1,
        molecules: Some(molecules),
        temperature: None,
    })
}

impl Task {
    fn assemble<E: Enumerable + 'static, R: LogReward + 'static>(
        env: E,
        reward: R,
        modes: Option<Vec<usize>>,
        mode_rule: Option<ModeRule>,
        grid: Option<(usize, usize)>,
    ) -> Self {
        let env: Arc<dyn Enumerable> = Arc::new(env);
        Self {
            env: env.clone(),
            reward: Arc::new(reward),
            enumeration: modes.map(|modes| Enumeration { env, modes }),
            mode_rule,
            grid,
            n_groups: 1,
            molecules: None,
            temperature: None,
        }
    }

    /// A task whose enumerated modes are its terminal states of maximal
    /// reward (to 1e-9), found from the exact target.
    fn with_best_states<E: Enumerable + 'static, R: LogReward + 'static>(
        env: E,
        reward: R,
        enumerate: bool,
        mode_rule: Option<ModeRule>,
    ) -> Self {
        let modes = enumerate.then(|| {
            let (log_p, _) = crate::eval::target_distribution(&env, &reward);
            let best = log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (0..log_p.len())
                .filter(|&i| log_p[i] >= best - 1e-9)
                .collect()
        });
        Self::assemble(env, reward, modes, mode_rule, None)
    }

    /// The task trained with temperature conditioning (`None`: without).
    pub fn with_temperature(mut self, temperature: Option<Temperature>) -> Self {
        self.temperature = temperature.map(Arc::new);
        self
    }

    /// How training samplers give each trajectory its beta: a fresh draw
    /// from `conditioning.beta`, or 1 without conditioning.
    pub fn training_betas(&self) -> BetaChoice {
        match &self.temperature {
            Some(t) => BetaChoice::Draw(Arc::new(t.distribution.clone())),
            None => BetaChoice::Unconditioned,
        }
    }

    /// The beta evaluation samples at (`conditioning.eval_beta`; 1 without
    /// conditioning).
    pub fn eval_beta(&self) -> f64 {
        self.temperature.as_ref().map_or(1.0, |t| t.eval_beta)
    }

    /// How evaluation samplers give each trajectory its beta.
    pub fn eval_betas(&self) -> BetaChoice {
        match &self.temperature {
            Some(t) => BetaChoice::Fixed(t.eval_beta),
            None => BetaChoice::Unconditioned,
        }
    }

    /// The environment as the dynamics-only trait object.
    pub fn dynamics(&self) -> &dyn Environment {
        self.env.as_ref()
    }

    /// The enumerated environment, or an error naming `run.exact` for
    /// `what` (a feature that needs every state listed).
    pub fn enumerated(&self, what: &str) -> Result<&Enumeration> {
        self.enumeration.as_ref().with_context(|| {
            format!(
                "{what} needs the state space enumerated: the environment ({}) is too large to \
                 list or run.exact = \"never\"",
                self.env.name()
            )
        })
    }
}
