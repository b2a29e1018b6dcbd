//! The continuous sampler kinds `env.kind` accepts, in one table
//! ([`CONTINUOUS_KINDS`]): each kind's name, description, the `[continuous]`
//! keys it reads and the constructor of its problem.

use super::config::ContinuousConfig;
use super::problem::Problem;
use anyhow::Result;

/// One registered continuous sampler.
#[derive(Debug)]
pub struct ContinuousKind {
    /// The `env.kind` value.
    pub name: &'static str,
    /// One line for help and error messages.
    pub description: &'static str,
    /// The config keys the kind reads (besides `env.kind`).
    pub keys: &'static [&'static str],
    /// Builds the problem from the `[continuous]` settings.
    pub build: fn(&ContinuousConfig) -> Result<Problem>,
}

/// Every continuous sampler.
pub static CONTINUOUS_KINDS: &[ContinuousKind] = &[
    ContinuousKind {
        name: "gmm",
        build: Problem::gmm,
        description: "2-D mixture of nine Gaussians on a grid",
        keys: &[
            "continuous.gmm_spacing",
            "continuous.gmm_std",
            "continuous.*",
        ],
    },
    ContinuousKind {
        name: "banana",
        build: Problem::banana,
        description: "2-D banana-shaped target",
        keys: &[
            "continuous.banana_scale",
            "continuous.banana_curvature",
            "continuous.*",
        ],
    },
    ContinuousKind {
        name: "diffusion",
        build: Problem::diffusion,
        description: "Brownian prior path measure tilted by a gmm or banana reward",
        keys: &[
            "continuous.reward",
            "continuous.sigma",
            "continuous.steps",
            "continuous.beta",
            "continuous.*",
        ],
    },
];

/// The continuous samplers' names, comma-separated.
pub fn names() -> String {
    CONTINUOUS_KINDS
        .iter()
        .map(|k| k.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The registered continuous sampler called `name`.
pub fn lookup(name: &str) -> Option<&'static ContinuousKind> {
    CONTINUOUS_KINDS.iter().find(|k| k.name == name)
}

/// The registered sampler called `name`, or an error listing them.
pub fn find(name: &str) -> Result<&'static ContinuousKind> {
    lookup(name).ok_or_else(|| {
        anyhow::anyhow!(
            "env.kind = `{name}` is not a continuous sampler (continuous samplers: {}; \
             discrete environments train with the GFlowNet trainer)",
            names()
        )
    })
}
