//! `[policy]`: which network (MLP or a molecule graph network), its size,
//! and the backward policy, with the checks that name the key.

use super::{BackwardPolicy, PolicyKind};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// `[policy]` of a GFlowNet or continuous-sampler run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// `mlp` (every discrete environment) or `gnn` (the molecule graph
    /// networks of `env.kind = "fragment-mol"` and `"reaction-mol"`, cargo
    /// feature `chem`).
    #[serde(default)]
    pub kind: PolicyKind,
    /// Width of the hidden layers (MLP) or of the embeddings (GNN).
    pub hidden: usize,
    /// Hidden layers of the MLP.
    pub layers: usize,
    /// `gnn`: message-passing layers.
    #[serde(default = "default_gnn_layers")]
    pub gnn_layers: usize,
    /// `uniform`, `learned` or `shared`.
    pub backward: BackwardPolicy,
}

/// The `env.kind` values `policy.kind = "gnn"` has a network for.
pub const GNN_ENVS: [&str; 2] = ["fragment-mol", "reaction-mol"];

fn default_gnn_layers() -> usize {
    3
}

impl PolicyConfig {
    /// Checks the sizes, and that a graph network has an environment
    /// (`env_kind`) to read.
    pub fn validate(&self, env_kind: &str) -> Result<()> {
        if self.hidden == 0 {
            bail!("policy.hidden must be >= 1");
        }
        if self.kind == PolicyKind::Gnn {
            if !GNN_ENVS.contains(&env_kind) {
                bail!(
                    "policy.kind = \"gnn\" is a molecule graph network: valid env.kind values are {}; \
                     env.kind = `{}` trains with policy.kind = \"mlp\"",
                    GNN_ENVS.join(", "),
                    env_kind
                );
            }
            if !cfg!(feature = "chem") {
                bail!(
                    "policy.kind = \"gnn\" needs the cargo feature `chem` (build with --features chem)"
                );
            }
        }
        Ok(())
    }
}
