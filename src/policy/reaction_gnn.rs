//! A message-passing graph network policy for the reaction molecule
//! environment ([`crate::env::molecule::ReactionMolecules`], `env.kind =
//! "reaction-mol"`), selected by `policy.kind = "gnn"` (cargo feature `chem`).
//!
//! **Graph.** Unlike the fragment network ([`super::gnn`]), whose actions
//! name fragment-graph nodes, the reaction environment's actions name
//! templates and building blocks of the whole molecule, so this network
//! reads the *atom graph*: nodes are the heavy atoms of the state's
//! molecule, edges its bonds (both directions). Each state's SMILES is
//! parsed once and its graph cached (per SMILES, cleared past
//! [`CACHE_LIMIT`] entries); `s0` has no atoms.
//!
//! **Features.** Atom: one-hot element (C N O F P S Cl Br I B Si Se, other),
//! degree (0..5, clamped), formal charge (-1, 0, +1, other), aromatic flag,
//! total hydrogen count (0..4, clamped). Directed bond: one-hot order
//! (single, double, triple, aromatic, other). Graph: one-hot of the step
//! count `n` (`0..=max_reactions + 1`, as the MLP's features), the atom count
//! over 32, and the encoding of the state's beta when temperature-conditioned.
//!
//! **Layers** are the fragment network's ([`super::gnn::GnnLayer`]): residual
//! message passing with segment sums over the batch's one node matrix and
//! one edge list, then the mean readout ([`super::gnn::segment_mean`]) with
//! the graph features through an MLP gives the graph embedding `g` `[n, d]`.
//!
//! **Heads** (SynFlowNet-style factorisation), assembled into the
//! environment's flat layout `[first (B) ; uni (U) ; bi (K * B) ; stop]` and
//! normalised by the masked log-softmax ([`crate::nn::masked_log_softmax`]):
//! * each building block `b` has an embedding `e_b = W fp_b + c`, a learned
//!   linear map of its folded Morgan fingerprint (radius 2,
//!   [`crate::env::molecule::reaction::FP_BITS`] bits; the fingerprints are
//!   computed once), so the heads scale with the number of building blocks
//!   at `d` numbers per block;
//! * start with `b`: `<q(g), e_b> / sqrt(d)`;
//! * unimolecular template `u`, stop and `log F(s)`: an MLP of `g`;
//! * bimolecular template `k` with building block `b`: `<u_k(g), e_b> /
//!   sqrt(d)`, `u(g)` a linear map of `g` to `K` vectors of width `d` (one
//!   `[n K, d] x [d, B]` product for the whole block).
//!
//! **Backward policy.** `uniform`: no network. `learned` (and `shared`, the
//! same thing here: the network has one trunk) adds a backward head on `g`
//! of the same form (`[remove first ; uni (U)]` an MLP of `g`, bimolecular
//! `(k, b)` `<v_k(g), e_b> / sqrt(d)`), trained by the balance loss through
//! `g`. `max-likelihood` uses that head on `g` and `e_b` with their
//! gradients stopped, so its likelihood term trains only the backward head,
//! never the forward trunk (as the MLP's separate backward network).
//!
//! Every input is invariant to the atom order of the SMILES (tested: two
//! SMILES of one molecule get the same log-probabilities up to rounding).

use super::gnn::{GnnLayer, GnnShape, SLOPE, floats, ints, segment_mean};
use super::{BackwardPolicy, Logits, Policy, StatePolicy};
use crate::chem;
use crate::conditioning::Thermometer;
use crate::env::molecule::ReactionMolecules;
use crate::env::molecule::reaction::{CACHE_LIMIT, FP_BITS};
use crate::env::{Environment, StateBatch};
use crate::nn::mlp::Mlp;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};

/// Elements with a one-hot column of their own (then one for any other).
const ELEMENTS: [u8; 12] = [6, 7, 8, 9, 15, 16, 17, 35, 53, 5, 14, 34];
/// Width of an atom's features.
pub const ATOM_FEATURES: usize = ELEMENTS.len() + 1 + 6 + 4 + 1 + 5;
/// Width of a directed bond's features.
pub const BOND_FEATURES: usize = 5;

/// The atom graph of one molecule (what the network reads of a state).
#[derive(Debug, Default)]
pub struct AtomGraph {
    /// Heavy atoms.
    pub atoms: usize,
    /// `[atoms, ATOM_FEATURES]` row-major.
    pub atom_features: Vec<f32>,
    /// Directed edges (both directions of every bond).
    pub src: Vec<u32>,
    pub dst: Vec<u32>,
    /// `[edges, BOND_FEATURES]` row-major.
    pub bond_features: Vec<f32>,
}

impl AtomGraph {
    /// The graph of a SMILES (an error if it does not parse or its
    /// hydrogen counts cannot be computed).
    pub fn of_smiles(smiles: &str) -> Result<Self> {
        let m = chem::parse(smiles)?;
        let atoms = m.atoms();
        let na = atoms.len();
        let mut f = vec![0.0f32; na * ATOM_FEATURES];
        for (i, a) in atoms.iter().enumerate() {
            let row = &mut f[i * ATOM_FEATURES..(i + 1) * ATOM_FEATURES];
            let z = a.atomic_number();
            let e = ELEMENTS
                .iter()
                .position(|&x| x == z)
                .unwrap_or(ELEMENTS.len());
            row[e] = 1.0;
            let mut o = ELEMENTS.len() + 1;
            row[o + a.degree().min(5)] = 1.0;
            o += 6;
            row[o + match a.formal_charge() {
                -1 => 0,
                0 => 1,
                1 => 2,
                _ => 3,
            }] = 1.0;
            o += 4;
            row[o] = f32::from(u8::from(a.is_aromatic()));
            o += 1;
            let h = a
                .total_hydrogens()
                .map_err(|e| anyhow::anyhow!("{smiles}: valence: {e:?}"))?;
            row[o + (h.clamp(0, 4) as usize)] = 1.0;
        }
        let bonds = m.bonds();
        let mut g = Self {
            atoms: na,
            atom_features: f,
            src: Vec::with_capacity(2 * bonds.len()),
            dst: Vec::with_capacity(2 * bonds.len()),
            bond_features: vec![0.0f32; 2 * bonds.len() * BOND_FEATURES],
        };
        for (i, b) in bonds.iter().enumerate() {
            let col = match b.order() {
                chem::BondOrder::Single => 0,
                chem::BondOrder::Double => 1,
                chem::BondOrder::Triple => 2,
                chem::BondOrder::Aromatic => 3,
                _ => 4,
            };
            let (u, v) = (b.begin().index() as u32, b.end().index() as u32);
            g.src.extend([u, v]);
            g.dst.extend([v, u]);
            g.bond_features[(2 * i) * BOND_FEATURES + col] = 1.0;
            g.bond_features[(2 * i + 1) * BOND_FEATURES + col] = 1.0;
        }
        Ok(g)
    }
}

/// The graph network policy over reaction states (module docs).
#[derive(Module, Debug)]
pub struct ReactionGnn {
    /// Atom features `-> d`.
    atom_in: Mlp,
    /// Bond features `-> d`.
    bond_in: Mlp,
    layers: Vec<GnnLayer>,
    /// `[mean of h ; graph features] -> g`.
    readout: Mlp,
    /// Building-block fingerprint `-> e_b` (linear).
    bb_in: Mlp,
    /// `g -> [uni (U) ; stop ; log F(s)]`.
    graph_head: Mlp,
    /// `g -> q(g)` `[d]` (first building block).
    first_query: Mlp,
    /// `g -> u(g)` `[K d]` (bimolecular templates).
    bi_query: Mlp,
    /// Learned `P_B`: `g -> [remove first ; uni (U)]` and `g -> v(g)` `[K d]`.
    back_head: Option<Mlp>,
    back_bi_query: Option<Mlp>,
    #[module(skip)]
    env: Arc<ReactionMolecules>,
    /// `[B, FP_BITS]` building-block fingerprints, row-major.
    #[module(skip)]
    bb_fp: Arc<Vec<f32>>,
    #[module(skip)]
    hidden: usize,
    #[module(skip)]
    backward: BackwardPolicy,
    #[module(skip)]
    temperature: Option<Thermometer>,
    #[module(skip)]
    graphs: Arc<Mutex<FxHashMap<Arc<str>, Arc<AtomGraph>>>>,
}

/// The CPU-side description of a batch.
struct Batch {
    n: usize,
    atoms: usize,
    atom_features: Tensor<2>,
    atom_graph: Tensor<1, Int>,
    edges: Option<(Tensor<2>, Tensor<1, Int>, Tensor<1, Int>)>,
    graph_features: Tensor<2>,
    inv_size: Tensor<2>,
}

impl ReactionGnn {
    /// A network for `env` as trained by `ftb` (every `policy.backward`
    /// option; see the module docs), temperature-conditioned when
    /// `temperature` is given.
    pub fn for_env_conditioned(
        env: &ReactionMolecules,
        shape: GnnShape,
        backward: BackwardPolicy,
        temperature: Option<Thermometer>,
        device: &Device,
    ) -> Result<Self> {
        if shape.hidden == 0 {
            bail!("policy.hidden must be >= 1");
        }
        let lib = env.library();
        let nb = lib.n_bb();
        let mut bb_fp = vec![0.0f32; nb * FP_BITS];
        for (b, s) in lib.building_blocks.iter().enumerate() {
            let fp = chem::parse(s)
                .and_then(|m| chem::fingerprint::morgan_bits(&m, 2, FP_BITS))
                .with_context(|| format!("fingerprint of building block {s}"))?;
            for bit in fp.on_bits() {
                bb_fp[b * FP_BITS + bit as usize] = 1.0;
            }
        }
        let d = shape.hidden;
        let (nu, nk) = (lib.uni.len(), lib.bi.len());
        let graph_inputs = env.max_reactions() + 3 + temperature.map_or(0, |t| t.width());
        let linear = |i: usize, o: usize| Mlp::new(i, d, 0, o, device);
        let atom_in = linear(ATOM_FEATURES, d);
        let bond_in = linear(BOND_FEATURES, d);
        let layers = (0..shape.layers)
            .map(|_| GnnLayer::new(d, device))
            .collect();
        let readout = Mlp::new(d + graph_inputs, d, 1, d, device);
        let bb_in = linear(FP_BITS, d);
        let graph_head = Mlp::new(d, d, 1, nu + 2, device);
        let first_query = linear(d, d);
        let bi_query = linear(d, nk.max(1) * d);
        let learned = backward != BackwardPolicy::Uniform;
        let back_head = learned.then(|| Mlp::new(d, d, 1, 1 + nu, device));
        let back_bi_query = learned.then(|| linear(d, nk.max(1) * d));
        Ok(Self {
            atom_in,
            bond_in,
            layers,
            readout,
            bb_in,
            graph_head,
            first_query,
            bi_query,
            back_head,
            back_bi_query,
            env: Arc::new(env.clone()),
            bb_fp: Arc::new(bb_fp),
            hidden: d,
            backward,
            temperature,
            graphs: Arc::default(),
        })
    }

    /// [`ReactionGnn::for_env_conditioned`] without conditioning.
    pub fn for_env(
        env: &ReactionMolecules,
        shape: GnnShape,
        backward: BackwardPolicy,
        device: &Device,
    ) -> Result<Self> {
        Self::for_env_conditioned(env, shape, backward, None, device)
    }

    /// The environment the network reads.
    pub fn env(&self) -> &ReactionMolecules {
        &self.env
    }

    fn check_env(&self, env: &dyn Environment) {
        assert!(
            env.name() == self.env.name() && env.n_actions() == self.env.n_actions(),
            "the reaction GNN policy was built for {} ({} actions), asked about {} ({} actions)",
            self.env.name(),
            self.env.n_actions(),
            env.name(),
            env.n_actions()
        );
    }

    /// The atom graph of a SMILES, cached.
    fn graph(&self, smiles: &str) -> Arc<AtomGraph> {
        if let Some(g) = self.graphs.lock().expect("graph cache").get(smiles) {
            return g.clone();
        }
        let g = Arc::new(
            AtomGraph::of_smiles(smiles)
                .unwrap_or_else(|e| panic!("state molecule {smiles}: {e:#}")),
        );
        let mut m = self.graphs.lock().expect("graph cache");
        if m.len() >= CACHE_LIMIT {
            m.clear();
        }
        m.insert(Arc::from(smiles), g.clone());
        g
    }

    fn batch(&self, states: &StateBatch, betas: &[f64], device: &Device) -> Batch {
        let n = states.len();
        let mr = self.env.max_reactions();
        let gw = mr + 3 + self.temperature.map_or(0, |t| t.width());
        let mut graph_features = vec![0.0f32; n * gw];
        let mut inv_size = vec![1.0f32; n];
        let (mut feats, mut bond_feats) = (Vec::new(), Vec::new());
        let (mut src, mut dst, mut atom_graph) = (Vec::new(), Vec::new(), Vec::new());
        let mut offset = 0usize;
        for (i, row) in states.rows().enumerate() {
            let (steps, smiles) = ReactionMolecules::decode(row);
            let gf = &mut graph_features[i * gw..(i + 1) * gw];
            gf[steps.min(mr + 1)] = 1.0;
            if let Some(t) = self.temperature {
                t.encode_into(super::row_beta(betas, n, i), &mut gf[mr + 3..]);
            }
            if steps == 0 {
                continue;
            }
            let g = self.graph(&smiles);
            gf[mr + 2] = g.atoms as f32 / 32.0;
            if g.atoms > 0 {
                inv_size[i] = 1.0 / g.atoms as f32;
            }
            feats.extend_from_slice(&g.atom_features);
            bond_feats.extend_from_slice(&g.bond_features);
            src.extend(g.src.iter().map(|&u| (u as usize + offset) as i64));
            dst.extend(g.dst.iter().map(|&v| (v as usize + offset) as i64));
            atom_graph.extend(std::iter::repeat_n(i as i64, g.atoms));
            offset += g.atoms;
        }
        let e = src.len();
        Batch {
            n,
            atoms: offset,
            atom_features: floats(feats, [offset, ATOM_FEATURES], device),
            atom_graph: ints(atom_graph, device),
            edges: (e > 0).then(|| {
                (
                    floats(bond_feats, [e, BOND_FEATURES], device),
                    ints(src, device),
                    ints(dst, device),
                )
            }),
            graph_features: floats(graph_features, [n, gw], device),
            inv_size: floats(inv_size, [n, 1], device),
        }
    }

    /// The graph embeddings `[n, hidden]` of a batch of states; `betas` as
    /// in [`StatePolicy`] (`&[]` when unconditioned).
    pub fn graph_embedding(
        &self,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Tensor<2> {
        let x = self.batch(states, betas, device);
        self.embed(&x, device)
    }

    fn embed(&self, x: &Batch, device: &Device) -> Tensor<2> {
        let d = self.hidden;
        let h = (x.atoms > 0).then(|| {
            let mut h = self.atom_in.forward(x.atom_features.clone());
            let edges = x
                .edges
                .as_ref()
                .map(|(f, s, t)| (self.bond_in.forward(f.clone()), s.clone(), t.clone()));
            for layer in &self.layers {
                h = layer.forward(h, edges.as_ref(), device);
            }
            h
        });
        let pooled = segment_mean(h.as_ref(), &x.atom_graph, &x.inv_size, x.n, d, device);
        crate::nn::fused::leaky_relu(
            self.readout
                .forward(Tensor::cat(vec![pooled, x.graph_features.clone()], 1)),
            SLOPE,
        )
    }

    /// `[B, d]` building-block embeddings.
    fn bb_embeddings(&self, device: &Device) -> Tensor<2> {
        let nb = self.env.library().n_bb();
        let fp = Tensor::<2>::from_data(
            TensorData::new(self.bb_fp.as_ref().clone(), [nb, FP_BITS]),
            device,
        );
        self.bb_in.forward(fp)
    }

    /// `<query_k(g), e_b> / sqrt(d)` for `k < K`: `[n, K * B]` (`k * B + b`).
    fn pair_logits(&self, query: Tensor<2>, e: &Tensor<2>, k: usize) -> Tensor<2> {
        let n = query.dims()[0];
        let [nb, d] = e.dims();
        let q = query.narrow(1, 0, k * d).reshape([n * k, d]);
        (q.matmul(e.clone().transpose()) / (d as f64).sqrt()).reshape([n, k * nb])
    }

    /// Forward logits `[n, n_actions]` (masked entries arbitrary), `log F(s)`
    /// `[n]` and the graph and building-block embeddings (for `P_B`).
    fn forward_parts(
        &self,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> (Tensor<2>, Tensor<1>, Tensor<2>, Tensor<2>) {
        let lib = self.env.library();
        let (nu, nk) = (lib.uni.len(), lib.bi.len());
        let d = self.hidden;
        let x = self.batch(states, betas, device);
        let n = x.n;
        let g = self.embed(&x, device);
        let e = self.bb_embeddings(device);
        let gh = self.graph_head.forward(g.clone());
        let uni = gh.clone().narrow(1, 0, nu);
        let stop = gh.clone().narrow(1, nu, 1);
        let log_flow = gh.narrow(1, nu + 1, 1).reshape([n]);
        let first = self
            .first_query
            .forward(g.clone())
            .matmul(e.clone().transpose())
            / (d as f64).sqrt();
        let mut parts = vec![first, uni];
        if nk > 0 {
            parts.push(self.pair_logits(self.bi_query.forward(g.clone()), &e, nk));
        }
        parts.push(stop);
        let logits = Tensor::cat(parts, 1);
        debug_assert_eq!(logits.dims(), [n, self.env.n_actions()]);
        (logits, log_flow, g, e)
    }

    /// Backward logits `[n, n_backward_actions]` from the graph and
    /// building-block embeddings (`None` for a uniform `P_B`).
    fn backward_scores(&self, g: Tensor<2>, e: Tensor<2>) -> Option<Tensor<2>> {
        let (head, bi) = (self.back_head.as_ref()?, self.back_bi_query.as_ref()?);
        let (g, e) = if self.backward == BackwardPolicy::MaxLikelihood {
            (g.detach(), e.detach())
        } else {
            (g, e)
        };
        let nk = self.env.library().bi.len();
        let mut parts = vec![head.forward(g.clone())];
        if nk > 0 {
            parts.push(self.pair_logits(bi.forward(g), &e, nk));
        }
        Some(Tensor::cat(parts, 1))
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        super::flat_parameters(self).len()
    }
}

impl Policy for ReactionGnn {
    type Snapshot = ReactionGnn;

    fn snapshot(&self) -> Self::Snapshot {
        self.valid()
    }
}

impl StatePolicy for ReactionGnn {
    fn forward_logits(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Tensor<2> {
        self.check_env(env);
        self.forward_parts(states, betas, device).0
    }

    fn backward_logits(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Option<Tensor<2>> {
        self.check_env(env);
        if self.backward == BackwardPolicy::Uniform {
            return None;
        }
        let x = self.batch(states, betas, device);
        let g = self.embed(&x, device);
        self.backward_scores(g, self.bb_embeddings(device))
    }

    fn logits(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Logits {
        self.check_env(env);
        let (forward, log_flow, g, e) = self.forward_parts(states, betas, device);
        Logits {
            forward,
            log_flow,
            backward: self.backward_scores(g, e),
        }
    }

    fn backward_policy(&self) -> BackwardPolicy {
        self.backward
    }

    fn temperature(&self) -> Option<Thermometer> {
        self.temperature
    }
}
