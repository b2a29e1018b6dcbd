//! A message-passing graph network policy for the fragment molecule
//! environment ([`crate::env::molecule::FragmentMolecules`], `env.kind =
//! "fragment-mol"`), selected by `policy.kind = "gnn"` (cargo feature `chem`).
//!
//! **Graph.** The network reads the *fragment graph* of a state
//! ([`FragmentMolecules::graphs`]), not its atoms: nodes are the placed
//! fragments, edges the bonds between them. The environment's actions are
//! defined on exactly these objects (start with fragment `f`; attach `f` at
//! attachment `k` of node `j`; choose the new node's attachment; make bond
//! `e` double; stop), so every head reads one node, one (node, attachment)
//! pair or one bond embedding directly, with no pooling of atoms back onto
//! attachment points; the graphs are small (at most `max_fragments` nodes,
//! against tens of atoms), and the fragment identity already carries the
//! chemistry the fragment library fixes. This is the design of the fragment
//! GFlowNet of Bengio et al. (2021) (recursionpharma/gflownet's
//! `FragMolBuildingEnvContext` also runs its graph transformer on the
//! fragment graph).
//!
//! **Features.** Node `v`: a learned embedding of its fragment id plus a
//! linear map of its attachment atoms in use (one-hot over the `S`
//! attachment slots) and of whether it still has to choose its own
//! attachment. Directed edge `u -> v` (each bond gives two): the attachment
//! index of `v` used by the bond (one-hot `S`), that of `u` (one-hot `S`, or a
//! pending flag) and the bond order (single / double). Graph: its size over
//! `max_fragments`, the pending flag, and whether it is empty (`s0`).
//!
//! **Layers.** `policy.gnn_layers` residual message-passing layers of width
//! `policy.hidden`: `m_uv = LeakyReLU(W [h_u ; e_uv])`, `a_v = sum_u m_uv`
//! (a segment sum: burn's `select_assign` with addition over the edge list's
//! target indices, on all graphs of the batch at once),
//! `h_v <- LayerNorm(h_v + MLP([h_v ; a_v]))`. Readout: the mean of the node
//! embeddings of each graph (again a segment sum, divided by the size; zero
//! for `s0`) with the graph features, through an MLP, gives the graph
//! embedding `g`. No tensor operation loops over graphs: the batch is one
//! node matrix `[total_nodes, hidden]`, one edge index list, and index
//! vectors built on the CPU.
//!
//! **Heads**, assembled into the environment's flat action layout and
//! normalised by the fused masked log-softmax ([`crate::nn::masked_log_softmax`],
//! masked entries `-inf`):
//! * start fragment `f` and stop: graph-level (an MLP of `g`, which also
//!   gives `log F(s)`);
//! * attach `f` at attachment `k` of node `j`: `Linear(LeakyReLU(A h_j + s_{f_j,k}
//!   + B g))`, `F` logits per (node, attachment), where `s_{f,k}` is a learned
//!   embedding of attachment `k` of fragment `f`;
//! * choose the new node's own attachment `c`: the same form on the newest
//!   node with `s_{f_new,c}`;
//! * make bond `e` double: `Linear(LeakyReLU(C (h_child + h_parent) + D (e_uv +
//!   e_vu)))`, symmetric in the two ends.
//!
//! Every input is invariant to the order in which a molecule's fragments
//! were placed (used attachments are sets; an edge's features name each
//! end's own attachment), so two build orders of one molecule get the same
//! graph embedding, stop logit and flow up to float rounding (tested).
//!
//! **Backward policy.** The fragment environment's state space is a tree
//! (one backward action, `P_B = 1`), so every `policy.backward` option is
//! the same distribution; the network reports a uniform `P_B` (exact here)
//! and refuses an environment with more than one backward action.
//!
//! **Temperature conditioning** ([`crate::conditioning`], built by
//! [`FragmentGnn::for_env_conditioned`]): the encoding of each state's beta
//! joins the graph features, so it enters the graph embedding `g` and,
//! through it, every head and `log F(s)`.

use super::{BackwardPolicy, Logits, Policy, StatePolicy};
use crate::conditioning::Thermometer;
use crate::env::molecule::FragmentMolecules;
use crate::env::molecule::fragment::FragmentGraphs;
use crate::env::{Environment, StateBatch};
use crate::nn::fused::leaky_relu;
use crate::nn::mlp::Mlp;
use anyhow::{Result, bail};
use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use std::sync::Arc;

/// LeakyReLU slope of the heads (burn's default, as in [`Mlp`]).
pub(crate) const SLOPE: f64 = 0.01;

/// Sizes of a [`FragmentGnn`].
#[derive(Clone, Copy, Debug)]
pub struct GnnShape {
    /// Width of node, edge and graph embeddings (`policy.hidden`).
    pub hidden: usize,
    /// Message-passing layers (`policy.gnn_layers`).
    pub layers: usize,
}

/// One message-passing layer.
#[derive(Module, Debug)]
pub struct GnnLayer {
    /// `[h_u ; e_uv] -> m_uv` (LeakyReLU applied after).
    message: Mlp,
    /// `[h_v ; a_v] -> update` (one hidden layer).
    update: Mlp,
    norm: LayerNorm,
}

impl GnnLayer {
    /// A fresh layer of width `d` (edge embeddings of width `d` too).
    pub(crate) fn new(d: usize, device: &Device) -> Self {
        Self {
            message: Mlp::new(2 * d, d, 0, d, device),
            update: Mlp::new(2 * d, d, 1, d, device),
            norm: LayerNormConfig::new(d).init(device),
        }
    }

    /// One residual round over a batch of graphs: `h` `[T, d]` node
    /// embeddings; `edges` the directed edges' embeddings `[E, d]` with
    /// their source and target node indices (`None`: no edge in the batch).
    /// `m_uv = LeakyReLU(W [h_u ; e_uv])`, `a_v = sum_u m_uv` (a segment sum:
    /// `select_assign` with addition over the targets),
    /// `h_v <- LayerNorm(h_v + MLP([h_v ; a_v]))`.
    pub(crate) fn forward(
        &self,
        h: Tensor<2>,
        edges: Option<&(Tensor<2>, Tensor<1, Int>, Tensor<1, Int>)>,
        device: &Device,
    ) -> Tensor<2> {
        let [t, d] = h.dims();
        let agg = match edges {
            Some((e, src, dst)) => {
                let hs = h.clone().select(0, src.clone());
                let m = leaky_relu(
                    self.message.forward(Tensor::cat(vec![hs, e.clone()], 1)),
                    SLOPE,
                );
                Tensor::<2>::zeros([t, d], device).select_assign(
                    0,
                    dst.clone(),
                    m,
                    IndexingUpdateOp::Add,
                )
            }
            None => Tensor::<2>::zeros([t, d], device),
        };
        let u = self.update.forward(Tensor::cat(vec![h.clone(), agg], 1));
        self.norm.forward(h + u)
    }
}

/// The mean `[n, d]` of each graph's node embeddings (a segment sum over
/// `node_graph` times `inv_size` `[n, 1]`; zero for graphs without nodes,
/// and for all when `h` is `None`).
pub(crate) fn segment_mean(
    h: Option<&Tensor<2>>,
    node_graph: &Tensor<1, Int>,
    inv_size: &Tensor<2>,
    n: usize,
    d: usize,
    device: &Device,
) -> Tensor<2> {
    match h {
        Some(h) => {
            Tensor::<2>::zeros([n, d], device).select_assign(
                0,
                node_graph.clone(),
                h.clone(),
                IndexingUpdateOp::Add,
            ) * inv_size.clone()
        }
        None => Tensor::<2>::zeros([n, d], device),
    }
}

/// The graph network policy over fragment graphs (module docs).
#[derive(Module, Debug)]
pub struct FragmentGnn {
    /// `[F, d]` fragment embeddings.
    fragment_embedding: Param<Tensor<2>>,
    /// `[F * S, d]` attachment-point embeddings (`f * S + k`).
    stem_embedding: Param<Tensor<2>>,
    /// Node features (`S` used attachments, pending) `-> d`.
    node_in: Mlp,
    /// Directed edge features (`2 S + 3`) `-> d`.
    edge_in: Mlp,
    layers: Vec<GnnLayer>,
    /// `[mean of h ; graph features] -> g`.
    readout: Mlp,
    /// `g -> [start logits (F) ; stop ; log F(s)]`.
    graph_head: Mlp,
    attach_node: Mlp,
    attach_graph: Mlp,
    attach_out: Mlp,
    choose_node: Mlp,
    choose_graph: Mlp,
    choose_out: Mlp,
    double_node: Mlp,
    double_edge: Mlp,
    double_out: Mlp,
    #[module(skip)]
    env: Arc<FragmentMolecules>,
    #[module(skip)]
    hidden: usize,
    /// Temperature conditioning (`None`: unconditioned).
    #[module(skip)]
    temperature: Option<Thermometer>,
}

/// The CPU-side description of a batch: index vectors and features.
struct GraphBatch {
    n: usize,
    nodes: usize,
    bonds: usize,
    /// `[T]` fragment ids.
    node_fragment: Tensor<1, Int>,
    /// `[T, S + 1]` used attachments and pending.
    node_features: Tensor<2>,
    /// `[T]` graph of each node.
    node_graph: Tensor<1, Int>,
    /// `[T]` `graph * N + slot`: the node's row in the padded attach block.
    node_place: Tensor<1, Int>,
    /// `[T * S]` node of each (node, attachment) row.
    stem_node: Tensor<1, Int>,
    /// `[T * S]` `f * S + k` of each (node, attachment) row.
    stem_index: Tensor<1, Int>,
    /// `[2B]` directed edges: child -> parent for every bond, then parent -> child.
    edge_src: Tensor<1, Int>,
    edge_dst: Tensor<1, Int>,
    /// `[2B, 2S + 3]` directed edge features.
    edge_features: Tensor<2>,
    /// `[B]` bond ends and their place `graph * (N - 1) + e` in the double block.
    bond_child: Tensor<1, Int>,
    bond_parent: Tensor<1, Int>,
    bond_place: Tensor<1, Int>,
    /// `[n, 3 (+ bins)]` graph features (and the encoding of each state's
    /// beta when conditioned); `[n, 1]` 1 / max(size, 1).
    graph_features: Tensor<2>,
    inv_size: Tensor<2>,
    /// `[n]` index of each graph's newest node in `[0 ; h]` (0: none).
    last_node: Tensor<1, Int>,
    /// `[n * S]` `f_new * S + c` (0 for a graph without nodes).
    last_stem_index: Tensor<1, Int>,
}

pub(crate) fn ints(v: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = v.len();
    Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
}

pub(crate) fn floats(v: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(v, shape), device)
}

impl FragmentGnn {
    /// A freshly initialised network for `env`.
    pub fn new(env: &FragmentMolecules, shape: GnnShape, device: &Device) -> Self {
        Self::new_conditioned(env, shape, None, device)
    }

    /// A freshly initialised network for `env` whose graph features also
    /// hold the encoding of each state's beta (`None`: [`FragmentGnn::new`]).
    pub fn new_conditioned(
        env: &FragmentMolecules,
        shape: GnnShape,
        temperature: Option<Thermometer>,
        device: &Device,
    ) -> Self {
        let d = shape.hidden;
        let graph_inputs = 3 + temperature.map_or(0, |t| t.width());
        let f = env.library().len();
        let s = env.stem_slots();
        let emb = Initializer::Normal {
            mean: 0.0,
            std: 1.0,
        };
        let linear = |i: usize, o: usize| Mlp::new(i, d, 0, o, device);
        let layers = (0..shape.layers)
            .map(|_| GnnLayer::new(d, device))
            .collect();
        Self {
            fragment_embedding: emb.init([f, d], device),
            stem_embedding: emb.init([f * s, d], device),
            node_in: linear(s + 1, d),
            edge_in: linear(2 * s + 3, d),
            layers,
            readout: Mlp::new(d + graph_inputs, d, 1, d, device),
            graph_head: Mlp::new(d, d, 1, f + 2, device),
            attach_node: linear(d, d),
            attach_graph: linear(d, d),
            attach_out: linear(d, f),
            choose_node: linear(d, d),
            choose_graph: linear(d, d),
            choose_out: linear(d, 1),
            double_node: linear(d, d),
            double_edge: linear(d, d),
            double_out: linear(d, 1),
            env: Arc::new(env.clone()),
            hidden: d,
            temperature,
        }
    }

    /// A network for `env` as trained by `ftb` (checks what the network
    /// needs: a tree-shaped state space, `P_B = 1`).
    pub fn for_env(
        env: &FragmentMolecules,
        shape: GnnShape,
        backward: BackwardPolicy,
        device: &Device,
    ) -> Result<Self> {
        Self::for_env_conditioned(env, shape, backward, None, device)
    }

    /// [`FragmentGnn::for_env`], temperature-conditioned when `temperature`
    /// is given.
    pub fn for_env_conditioned(
        env: &FragmentMolecules,
        shape: GnnShape,
        backward: BackwardPolicy,
        temperature: Option<Thermometer>,
        device: &Device,
    ) -> Result<Self> {
        if env.n_backward_actions() != 1 {
            bail!(
                "policy.kind = \"gnn\" needs a tree-shaped state space (one backward action); \
                 {} has {} (policy.backward = {backward} is not implemented for it)",
                env.name(),
                env.n_backward_actions()
            );
        }
        if shape.hidden == 0 {
            bail!("policy.hidden must be >= 1");
        }
        Ok(Self::new_conditioned(env, shape, temperature, device))
    }

    /// The environment the network reads.
    pub fn env(&self) -> &FragmentMolecules {
        &self.env
    }

    fn check_env(&self, env: &dyn Environment) {
        assert!(
            env.name() == self.env.name() && env.n_actions() == self.env.n_actions(),
            "the GNN policy was built for {} ({} actions), asked about {} ({} actions)",
            self.env.name(),
            self.env.n_actions(),
            env.name(),
            env.n_actions()
        );
    }

    fn batch(&self, graphs: &FragmentGraphs, betas: &[f64], device: &Device) -> GraphBatch {
        let env = &self.env;
        let lib = env.library();
        let (s, nmax) = (env.stem_slots(), env.max_fragments());
        let (n, t, b) = (graphs.n_graphs(), graphs.n_nodes(), graphs.bonds.len());
        let mut node_features = vec![0.0f32; t * (s + 1)];
        for v in 0..t {
            let row = &mut node_features[v * (s + 1)..(v + 1) * (s + 1)];
            for (k, x) in row.iter_mut().enumerate().take(s) {
                *x = f32::from(u8::from(graphs.node_used[v] & (1 << k) != 0));
            }
            row[s] = f32::from(u8::from(graphs.node_pending[v]));
        }
        let stem_node: Vec<i64> = (0..t * s).map(|r| (r / s) as i64).collect();
        let stem_index: Vec<i64> = (0..t * s)
            .map(|r| (graphs.node_fragment[r / s] * s + r % s) as i64)
            .collect();
        let w = 2 * s + 3;
        let mut edge_features = vec![0.0f32; 2 * b * w];
        let (mut src, mut dst) = (Vec::with_capacity(2 * b), Vec::with_capacity(2 * b));
        for (i, bond) in graphs.bonds.iter().enumerate() {
            // child -> parent: the target's (parent's) attachment, then the source's.
            let up = &mut edge_features[i * w..(i + 1) * w];
            up[bond.parent_stem] = 1.0;
            match bond.child_stem {
                Some(c) => up[s + c] = 1.0,
                None => up[2 * s] = 1.0,
            }
            up[2 * s + usize::from(bond.order)] = 1.0;
            let down = &mut edge_features[(b + i) * w..(b + i + 1) * w];
            match bond.child_stem {
                Some(c) => down[c] = 1.0,
                None => down[2 * s] = 1.0,
            }
            down[s + bond.parent_stem] = 1.0;
            down[2 * s + usize::from(bond.order)] = 1.0;
        }
        for bond in &graphs.bonds {
            src.push(bond.child as i64);
            dst.push(bond.parent as i64);
        }
        for bond in &graphs.bonds {
            src.push(bond.parent as i64);
            dst.push(bond.child as i64);
        }
        let gw = 3 + self.temperature.map_or(0, |t| t.width());
        let mut graph_features = vec![0.0f32; n * gw];
        let mut inv_size = vec![1.0f32; n];
        let mut last_node = vec![0i64; n];
        let mut last_stem_index = vec![0i64; n * s];
        for g in 0..n {
            let nodes = graphs.nodes_of(g);
            let size = nodes.len();
            let row = &mut graph_features[g * gw..(g + 1) * gw];
            row[0] = size as f32 / nmax as f32;
            row[1] = f32::from(u8::from(graphs.pending[g]));
            row[2] = f32::from(u8::from(size == 0));
            if let Some(t) = self.temperature {
                t.encode_into(super::row_beta(betas, n, g), &mut row[3..]);
            }
            if size > 0 {
                inv_size[g] = 1.0 / size as f32;
                let last = nodes.end - 1;
                last_node[g] = last as i64 + 1;
                let f = graphs.node_fragment[last];
                debug_assert!(lib.fragments[f].stems.len() <= s);
                for c in 0..s {
                    last_stem_index[g * s + c] = (f * s + c) as i64;
                }
            }
        }
        let node_place = (0..t)
            .map(|v| (graphs.node_graph[v] * nmax + graphs.node_slot[v]) as i64)
            .collect();
        let bond_place = graphs
            .bonds
            .iter()
            .map(|bd| (bd.graph * (nmax - 1) + bd.slot) as i64)
            .collect();
        GraphBatch {
            n,
            nodes: t,
            bonds: b,
            node_fragment: ints(
                graphs.node_fragment.iter().map(|&f| f as i64).collect(),
                device,
            ),
            node_features: floats(node_features, [t, s + 1], device),
            node_graph: ints(
                graphs.node_graph.iter().map(|&g| g as i64).collect(),
                device,
            ),
            node_place: ints(node_place, device),
            stem_node: ints(stem_node, device),
            stem_index: ints(stem_index, device),
            edge_src: ints(src, device),
            edge_dst: ints(dst, device),
            edge_features: floats(edge_features, [2 * b, w], device),
            bond_child: ints(
                graphs.bonds.iter().map(|bd| bd.child as i64).collect(),
                device,
            ),
            bond_parent: ints(
                graphs.bonds.iter().map(|bd| bd.parent as i64).collect(),
                device,
            ),
            bond_place: ints(bond_place, device),
            graph_features: floats(graph_features, [n, gw], device),
            inv_size: floats(inv_size, [n, 1], device),
            last_node: ints(last_node, device),
            last_stem_index: ints(last_stem_index, device),
        }
    }

    /// Node embeddings `[T, d]` after message passing (`None` for a batch
    /// without nodes) and graph embeddings `[n, d]`.
    fn embed(&self, x: &GraphBatch, device: &Device) -> (Option<Tensor<2>>, Tensor<2>) {
        let d = self.hidden;
        let h = (x.nodes > 0).then(|| {
            let mut h: Tensor<2> = self
                .fragment_embedding
                .val()
                .select(0, x.node_fragment.clone())
                + self.node_in.forward(x.node_features.clone());
            let edges = (x.bonds > 0).then(|| {
                (
                    self.edge_in.forward(x.edge_features.clone()),
                    x.edge_src.clone(),
                    x.edge_dst.clone(),
                )
            });
            for layer in &self.layers {
                h = layer.forward(h, edges.as_ref(), device);
            }
            h
        });
        let pooled = segment_mean(h.as_ref(), &x.node_graph, &x.inv_size, x.n, d, device);
        let g = leaky_relu(
            self.readout
                .forward(Tensor::cat(vec![pooled, x.graph_features.clone()], 1)),
            SLOPE,
        );
        (h, g)
    }

    /// The graph embeddings `[n, hidden]` of a batch of states (the input of
    /// the graph-level heads: start, stop, flow); `betas` as in
    /// [`StatePolicy`] (`&[]` when unconditioned).
    pub fn graph_embedding(
        &self,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Tensor<2> {
        let x = self.batch(&self.env.graphs(states), betas, device);
        self.embed(&x, device).1
    }

    /// Unnormalised logits `[n, n_actions]` in the environment's layout
    /// (masked entries hold arbitrary values) and `log F(s)` `[n]`; `betas`
    /// as in [`StatePolicy`] (`&[]` when unconditioned).
    pub fn scores(
        &self,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> (Tensor<2>, Tensor<1>) {
        let env = &self.env;
        let (f, s, nmax) = (env.library().len(), env.stem_slots(), env.max_fragments());
        let x = self.batch(&env.graphs(states), betas, device);
        let n = x.n;
        let d = self.hidden;
        let (h, g) = self.embed(&x, device);
        let gh = self.graph_head.forward(g.clone());
        let start = gh.clone().narrow(1, 0, f);
        let stop = gh.clone().narrow(1, f, 1);
        let log_flow = gh.narrow(1, f + 1, 1).reshape([n]);
        let stems = self.stem_embedding.val();
        let attach = match &h {
            Some(h) => {
                let node_part = self.attach_node.forward(h.clone());
                let graph_part = self.attach_graph.forward(g.clone());
                let z = node_part.select(0, x.stem_node.clone())
                    + stems.clone().select(0, x.stem_index.clone())
                    + graph_part
                        .select(0, x.node_graph.clone())
                        .select(0, x.stem_node.clone());
                let a = self
                    .attach_out
                    .forward(leaky_relu(z, SLOPE))
                    .reshape([x.nodes, s * f]);
                Tensor::<2>::zeros([n * nmax, s * f], device)
                    .select_assign(0, x.node_place.clone(), a, IndexingUpdateOp::Add)
                    .reshape([n, nmax * s * f])
            }
            None => Tensor::<2>::zeros([n, nmax * s * f], device),
        };
        let choose = {
            let h_ext = match &h {
                Some(h) => Tensor::cat(vec![Tensor::<2>::zeros([1, d], device), h.clone()], 0),
                None => Tensor::<2>::zeros([1, d], device),
            };
            let last = h_ext.select(0, x.last_node.clone());
            let rep: Vec<i64> = (0..n * s).map(|r| (r / s) as i64).collect();
            let rep = ints(rep, device);
            let z = self.choose_node.forward(last).select(0, rep.clone())
                + stems.select(0, x.last_stem_index.clone())
                + self.choose_graph.forward(g).select(0, rep);
            self.choose_out
                .forward(leaky_relu(z, SLOPE))
                .reshape([n, s])
        };
        let mut parts = vec![start, attach, choose];
        if nmax > 1 {
            parts.push(match (&h, x.bonds) {
                (Some(h), b) if b > 0 => {
                    let ends = h.clone().select(0, x.bond_child.clone())
                        + h.clone().select(0, x.bond_parent.clone());
                    let e = self.edge_in.forward(x.edge_features.clone());
                    let both = e.clone().narrow(0, 0, b) + e.narrow(0, b, b);
                    let z = self.double_node.forward(ends) + self.double_edge.forward(both);
                    let v = self.double_out.forward(leaky_relu(z, SLOPE));
                    Tensor::<2>::zeros([n * (nmax - 1), 1], device)
                        .select_assign(0, x.bond_place.clone(), v, IndexingUpdateOp::Add)
                        .reshape([n, nmax - 1])
                }
                _ => Tensor::<2>::zeros([n, nmax - 1], device),
            });
        }
        parts.push(stop);
        let logits = Tensor::cat(parts, 1);
        debug_assert_eq!(logits.dims(), [n, env.n_actions()]);
        (logits, log_flow)
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        super::flat_parameters(self).len()
    }
}

impl Policy for FragmentGnn {
    type Snapshot = FragmentGnn;

    fn snapshot(&self) -> Self::Snapshot {
        self.valid()
    }
}

impl StatePolicy for FragmentGnn {
    fn forward_logits(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Tensor<2> {
        self.check_env(env);
        self.scores(states, betas, device).0
    }

    /// `P_B = 1` (a tree): uniform, no network.
    fn backward_logits(
        &self,
        env: &dyn Environment,
        _states: &StateBatch,
        _betas: &[f64],
        _device: &Device,
    ) -> Option<Tensor<2>> {
        self.check_env(env);
        None
    }

    fn logits(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Logits {
        self.check_env(env);
        let (forward, log_flow) = self.scores(states, betas, device);
        Logits {
            forward,
            log_flow,
            backward: None,
        }
    }

    fn backward_policy(&self) -> BackwardPolicy {
        BackwardPolicy::Uniform
    }

    fn temperature(&self) -> Option<Thermometer> {
        self.temperature
    }
}
