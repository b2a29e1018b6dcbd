//! Fragment-based molecule generation: a molecule is a tree of fragments
//! from a fixed library, joined by single (or, where both atoms allow it,
//! double) bonds between attachment atoms.
//!
//! **Library.** Each fragment is a SMILES and a list of attachment atoms
//! (0-based indices in the SMILES; each must carry a hydrogen, which a bond
//! there replaces). The default is the 72-fragment library of Bengio et al.
//! (2021) (`assets/molecules/frags_72.tsv`, MIT, from recursionpharma/gflownet);
//! [`FragmentLibrary::from_file`] reads a user file in the same format: one
//! fragment per line, the SMILES, whitespace, then comma-separated attachment
//! atoms (none given: every atom with a hydrogen). Any bad line is an error
//! naming the file and line; no partial library is returned.
//!
//! **Actions** (`F` fragments, at most `N` fragments per molecule, `S` the
//! most attachment atoms of any fragment):
//!
//! * `f < F`, from `s0` only: start with fragment `f`;
//! * `F + (j * S + k) * F + f`: attach fragment `f` at attachment atom `k`
//!   of fragment `j` (free, `j` already placed, fewer than `N` placed); the
//!   new fragment's own attachment atom is chosen by the next action;
//! * `F + N S F + c`: the newest fragment bonds through its attachment atom
//!   `c` (the only actions allowed right after an attach);
//! * `F + N S F + S + e`: make bond `e` (the bond of fragment `e + 1` to its
//!   parent) double, if it is single and both its atoms have a second
//!   hydrogen and are not aromatic;
//! * the last: stop, allowed once a fragment is placed and no attachment
//!   atom is pending.
//!
//! **States** are the actions taken so far (ragged rows, as token strings),
//! and the single backward action undoes the last one: the state space is a
//! tree and `P_B = 1`. A molecule reachable by several build orders is
//! therefore several terminal states (each sampled in proportion to its
//! reward), as in a sequence model; [`Environment::object_key`] identifies
//! them by canonical SMILES, so replay buffers and counts treat them as one
//! object.
//!
//! Every terminal state is a valid, sanitised molecule: attachment atoms
//! carry a hydrogen, each is used once, and double bonds need a second
//! hydrogen on both (tested on thousands of rollouts, `tests/env_molecule.rs`).

use crate::chem::{self, JoinBond, Molecule, score::Scorer};
use crate::env::{Environment, LogReward, StateBatch, row_key, rows};
use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use std::path::Path;
use std::sync::Arc;

/// The default library's text.
const FRAGS_72: &str = include_str!("../../../assets/molecules/frags_72.tsv");

/// One library fragment.
#[derive(Clone, Debug, PartialEq)]
pub struct Fragment {
    pub smiles: String,
    /// Heavy atoms (in SMILES order).
    pub n_atoms: usize,
    /// Attachment atoms (indices into the fragment's atoms).
    pub stems: Vec<usize>,
    /// Per attachment atom: whether it can take a double bond (two
    /// hydrogens, not aromatic).
    pub double_ok: Vec<bool>,
}

/// A fixed fragment library.
#[derive(Clone, Debug, PartialEq)]
pub struct FragmentLibrary {
    /// Where it came from (`frags_72` or a path), for names and errors.
    pub origin: String,
    pub fragments: Vec<Fragment>,
}

impl FragmentLibrary {
    /// Attachment atoms per fragment at most (they index a `u64` mask).
    pub const MAX_STEMS: usize = 16;

    /// The 72 fragments of Bengio et al. (2021).
    pub fn frags_72() -> Self {
        Self::parse(FRAGS_72, "frags_72").expect("the shipped library is valid")
    }

    /// `frags_72` or a library file.
    pub fn load(name_or_path: &str) -> Result<Self> {
        if name_or_path == "frags_72" {
            Ok(Self::frags_72())
        } else {
            Self::from_file(Path::new(name_or_path))
        }
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read fragment library {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses library text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut fragments = Vec::new();
        for l in chem::data_lines(text) {
            let at = |msg: String| anyhow::anyhow!("{origin}:{}: {msg}", l.line);
            if l.fields.len() > 2 {
                return Err(at(format!(
                    "expected `SMILES [attachment atoms]`, got {} fields",
                    l.fields.len()
                )));
            }
            let smiles = l.fields[0].clone();
            let m = chem::parse(&smiles).map_err(|e| at(format!("{e:#}")))?;
            let atoms = m.atoms();
            let hydrogens: Vec<i32> = atoms
                .iter()
                .map(|a| a.total_hydrogens())
                .collect::<Result<_, _>>()
                .map_err(|e| at(format!("valence: {e:?}")))?;
            let stems: Vec<usize> = match l.fields.get(1) {
                None => (0..atoms.len()).filter(|&a| hydrogens[a] > 0).collect(),
                Some(list) => list
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse::<usize>()
                            .map_err(|_| at(format!("attachment atom `{s}` is not an atom index")))
                    })
                    .collect::<Result<_>>()?,
            };
            for (i, &a) in stems.iter().enumerate() {
                if a >= atoms.len() {
                    return Err(at(format!(
                        "attachment atom {a} out of range: `{smiles}` has {} heavy atoms",
                        atoms.len()
                    )));
                }
                if stems[..i].contains(&a) {
                    return Err(at(format!("attachment atom {a} listed twice")));
                }
                if hydrogens[a] == 0 {
                    return Err(at(format!(
                        "attachment atom {a} of `{smiles}` has no hydrogen for the bond to replace"
                    )));
                }
            }
            if stems.len() > Self::MAX_STEMS {
                return Err(at(format!(
                    "{} attachment atoms; at most {}",
                    stems.len(),
                    Self::MAX_STEMS
                )));
            }
            let double_ok = stems
                .iter()
                .map(|&a| hydrogens[a] >= 2 && !atoms[a].is_aromatic())
                .collect();
            fragments.push(Fragment {
                smiles,
                n_atoms: atoms.len(),
                stems,
                double_ok,
            });
        }
        if fragments.is_empty() {
            bail!("{origin}: no fragment (one `SMILES [attachment atoms]` per line)");
        }
        Ok(Self {
            origin: origin.to_string(),
            fragments,
        })
    }

    pub fn len(&self) -> usize {
        self.fragments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fragments.is_empty()
    }

    /// The most attachment atoms of any fragment.
    pub fn max_stems(&self) -> usize {
        self.fragments
            .iter()
            .map(|f| f.stems.len())
            .max()
            .unwrap_or(0)
    }
}

/// One placed fragment of a decoded state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub fragment: usize,
    /// `(parent node, its attachment index, this node's attachment index
    /// (None while pending), bond order)`; `None` for the first fragment.
    pub link: Option<(usize, usize, Option<usize>, u8)>,
    /// Attachment indices in use (bit `k`).
    pub used: u64,
}

/// A state decoded from its actions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub nodes: Vec<Node>,
}

impl Decoded {
    /// Whether the newest fragment still has to choose its attachment atom.
    pub fn pending(&self) -> bool {
        matches!(
            self.nodes.last().and_then(|n| n.link),
            Some((_, _, None, _))
        )
    }
}

/// One bond of a fragment graph: the bond of a placed fragment (`child`) to
/// the fragment it was attached to (`parent`), as node indices into the
/// batch's node list ([`FragmentGraphs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraphBond {
    pub child: usize,
    pub parent: usize,
    /// The parent's attachment index the bond uses.
    pub parent_stem: usize,
    /// The child's attachment index (`None` while it is pending).
    pub child_stem: Option<usize>,
    /// 1 or 2.
    pub order: u8,
    /// Which graph of the batch.
    pub graph: usize,
    /// The bond's index within its molecule (the child's slot minus 1): the
    /// `e` of the action "make bond `e` double".
    pub slot: usize,
}

/// The fragment graphs of a batch of states, batched for a graph network
/// ([`FragmentMolecules::graphs`]): every graph's nodes in one list, graph
/// by graph and in placement order (so a node's slot `j` is its index in
/// the actions that name it), and every bond in one list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FragmentGraphs {
    /// Per node: its library fragment.
    pub node_fragment: Vec<usize>,
    /// Per node: its graph (row of the state batch).
    pub node_graph: Vec<usize>,
    /// Per node: its slot `j` within its molecule.
    pub node_slot: Vec<usize>,
    /// Per node: the attachment indices in use (bit `k`).
    pub node_used: Vec<u64>,
    /// Per node: whether it still has to choose its own attachment atom.
    pub node_pending: Vec<bool>,
    /// Per graph: its first node in the node list (`node_start[g]..node_start[g + 1]`;
    /// one more entry than graphs).
    pub node_start: Vec<usize>,
    /// Per graph: whether its newest fragment has an attachment atom pending.
    pub pending: Vec<bool>,
    pub bonds: Vec<GraphBond>,
}

impl FragmentGraphs {
    pub fn n_graphs(&self) -> usize {
        self.pending.len()
    }

    pub fn n_nodes(&self) -> usize {
        self.node_fragment.len()
    }

    /// The nodes of graph `g` (a range into the node lists).
    pub fn nodes_of(&self, g: usize) -> std::ops::Range<usize> {
        self.node_start[g]..self.node_start[g + 1]
    }
}

/// An action, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Start(usize),
    Attach {
        node: usize,
        stem: usize,
        fragment: usize,
    },
    ChooseStem(usize),
    Double(usize),
    Stop,
}

/// The fragment environment.
#[derive(Clone, Debug)]
pub struct FragmentMolecules {
    lib: Arc<FragmentLibrary>,
    max_fragments: usize,
    /// `S`: attachment slots per placed fragment.
    stems: usize,
}

impl FragmentMolecules {
    /// Molecules of 1 to `max_fragments` fragments of `lib`.
    pub fn new(lib: FragmentLibrary, max_fragments: usize) -> Result<Self> {
        if !(1..=64).contains(&max_fragments) {
            bail!("max_fragments = {max_fragments}: must be 1 to 64");
        }
        let stems = lib.max_stems().max(1);
        Ok(Self {
            lib: Arc::new(lib),
            max_fragments,
            stems,
        })
    }

    pub fn library(&self) -> &FragmentLibrary {
        &self.lib
    }

    pub fn max_fragments(&self) -> usize {
        self.max_fragments
    }

    fn n_frag(&self) -> usize {
        self.lib.len()
    }

    fn attach_base(&self) -> usize {
        self.n_frag()
    }

    fn choose_base(&self) -> usize {
        self.n_frag() + self.max_fragments * self.stems * self.n_frag()
    }

    fn double_base(&self) -> usize {
        self.choose_base() + self.stems
    }

    /// The action with index `a`.
    pub fn action(&self, a: usize) -> Action {
        let f = self.n_frag();
        if a < f {
            Action::Start(a)
        } else if a < self.choose_base() {
            let r = a - self.attach_base();
            let (slot, fragment) = (r / f, r % f);
            Action::Attach {
                node: slot / self.stems,
                stem: slot % self.stems,
                fragment,
            }
        } else if a < self.double_base() {
            Action::ChooseStem(a - self.choose_base())
        } else if a < self.exit_action() {
            Action::Double(a - self.double_base())
        } else {
            assert_eq!(a, self.exit_action(), "action {a} out of range");
            Action::Stop
        }
    }

    /// The index of an action.
    pub fn action_index(&self, action: Action) -> usize {
        match action {
            Action::Start(f) => f,
            Action::Attach {
                node,
                stem,
                fragment,
            } => self.attach_base() + (node * self.stems + stem) * self.n_frag() + fragment,
            Action::ChooseStem(c) => self.choose_base() + c,
            Action::Double(e) => self.double_base() + e,
            Action::Stop => self.exit_action(),
        }
    }

    /// Replays a state's actions, checking each is allowed (a row that is
    /// not a valid state panics, naming it).
    pub fn decode(&self, row: &[i64]) -> Decoded {
        let mut d = Decoded::default();
        for (t, &a) in row.iter().enumerate() {
            let ok = usize::try_from(a)
                .ok()
                .filter(|&a| a < self.exit_action())
                .is_some_and(|a| self.allowed(&d, a));
            assert!(
                ok,
                "state {row:?}: action {a} at position {t} is not allowed"
            );
            self.apply(&mut d, a as usize);
        }
        d
    }

    fn allowed(&self, d: &Decoded, a: usize) -> bool {
        let frags = &self.lib.fragments;
        match self.action(a) {
            Action::Start(_) => d.nodes.is_empty(),
            _ if d.nodes.is_empty() => false,
            Action::ChooseStem(c) => {
                d.pending() && c < frags[d.nodes.last().expect("placed").fragment].stems.len()
            }
            _ if d.pending() => false,
            Action::Stop => true,
            Action::Attach {
                node,
                stem,
                fragment,
            } => {
                d.nodes.len() < self.max_fragments
                    && node < d.nodes.len()
                    && stem < frags[d.nodes[node].fragment].stems.len()
                    && d.nodes[node].used & (1 << stem) == 0
                    && !frags[fragment].stems.is_empty()
            }
            Action::Double(e) => match d.nodes.get(e + 1).and_then(|n| n.link) {
                Some((p, k, Some(c), 1)) => {
                    frags[d.nodes[p].fragment].double_ok[k]
                        && frags[d.nodes[e + 1].fragment].double_ok[c]
                }
                _ => false,
            },
        }
    }

    fn apply(&self, d: &mut Decoded, a: usize) {
        match self.action(a) {
            Action::Start(f) => d.nodes.push(Node {
                fragment: f,
                link: None,
                used: 0,
            }),
            Action::Attach {
                node,
                stem,
                fragment,
            } => {
                d.nodes[node].used |= 1 << stem;
                d.nodes.push(Node {
                    fragment,
                    link: Some((node, stem, None, 1)),
                    used: 0,
                });
            }
            Action::ChooseStem(c) => {
                let n = d.nodes.last_mut().expect("placed");
                n.used |= 1 << c;
                if let Some((p, k, _, o)) = n.link {
                    n.link = Some((p, k, Some(c), o));
                }
            }
            Action::Double(e) => {
                if let Some((p, k, c, _)) = d.nodes[e + 1].link {
                    d.nodes[e + 1].link = Some((p, k, c, 2));
                }
            }
            Action::Stop => unreachable!("stop is not stepped"),
        }
    }

    /// Attachment slots per placed fragment (`S`: the most attachment atoms
    /// of any library fragment).
    pub fn stem_slots(&self) -> usize {
        self.stems
    }

    /// The fragment graphs of a batch of states (decoded from their action
    /// sequences): nodes are placed fragments, bonds join a fragment to the
    /// one it was attached to. What a graph network reads
    /// ([`crate::policy::gnn::FragmentGnn`]).
    pub fn graphs(&self, states: &StateBatch) -> FragmentGraphs {
        self.check_layout(states);
        let mut g = FragmentGraphs {
            node_start: vec![0],
            ..FragmentGraphs::default()
        };
        for (b, row) in states.rows().enumerate() {
            let d = self.decode(row);
            let first = g.node_fragment.len();
            let pending = d.pending();
            for (j, n) in d.nodes.iter().enumerate() {
                g.node_fragment.push(n.fragment);
                g.node_graph.push(b);
                g.node_slot.push(j);
                g.node_used.push(n.used);
                g.node_pending.push(pending && j + 1 == d.nodes.len());
                if let Some((p, k, c, order)) = n.link {
                    g.bonds.push(GraphBond {
                        child: first + j,
                        parent: first + p,
                        parent_stem: k,
                        child_stem: c,
                        order,
                        graph: b,
                        slot: j - 1,
                    });
                }
            }
            g.node_start.push(g.node_fragment.len());
            g.pending.push(pending);
        }
        g
    }

    /// The molecule of a state (joined and sanitised); `None` for `s0`.
    pub fn molecule(&self, row: &[i64]) -> Result<Option<Molecule>> {
        let d = self.decode(row);
        if d.nodes.is_empty() {
            return Ok(None);
        }
        if d.pending() {
            bail!("state {row:?}: the newest fragment has not chosen its attachment atom");
        }
        let frags = &self.lib.fragments;
        let mut offset = Vec::with_capacity(d.nodes.len());
        let mut total = 0;
        for n in &d.nodes {
            offset.push(total);
            total += frags[n.fragment].n_atoms;
        }
        let smiles: Vec<&str> = d
            .nodes
            .iter()
            .map(|n| frags[n.fragment].smiles.as_str())
            .collect();
        let bonds: Vec<JoinBond> = d
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let (p, k, c, order) = n.link?;
                let c = c.expect("not pending");
                Some(JoinBond {
                    a: offset[p] + frags[d.nodes[p].fragment].stems[k],
                    b: offset[i] + frags[n.fragment].stems[c],
                    order,
                })
            })
            .collect();
        chem::join(&smiles, &bonds)
            .with_context(|| format!("state {row:?}"))
            .map(Some)
    }

    /// The canonical SMILES of a terminal state.
    pub fn smiles(&self, row: &[i64]) -> Result<String> {
        let m = self
            .molecule(row)?
            .with_context(|| "s0 holds no molecule".to_string())?;
        chem::canonical_smiles(&m)
    }

    fn check_layout(&self, states: &StateBatch) {
        assert!(
            states.is_ragged(),
            "fragment molecules are ragged rows (state_width 0), got rows of width {}",
            states.width
        );
    }
}

impl Environment for FragmentMolecules {
    fn name(&self) -> String {
        format!(
            "fragment-mol-{}-n{}",
            if self.lib.origin == "frags_72" {
                "frags_72".to_string()
            } else {
                format!("{}f", self.lib.len())
            },
            self.max_fragments
        )
    }

    fn state_width(&self) -> usize {
        0
    }

    fn n_actions(&self) -> usize {
        self.double_base() + (self.max_fragments - 1) + 1
    }

    fn n_backward_actions(&self) -> usize {
        1
    }

    /// Per fragment slot `j < N`: a one-hot of its fragment (`F`), of its
    /// parent slot (`N`), its attachment atoms in use (`S`); per bond: double
    /// (`N - 1`); then whether an attachment atom is pending and the number
    /// of fragments over `N`.
    fn feature_dim(&self) -> usize {
        let n = self.max_fragments;
        n * (self.n_frag() + n + self.stems) + (n - 1) + 2
    }

    /// Start, then per further fragment an attach, a choice of attachment
    /// atom and possibly a double bond.
    fn max_trajectory_length(&self) -> usize {
        1 + 3 * (self.max_fragments - 1)
    }

    fn initial_states(&self, n: usize) -> StateBatch {
        StateBatch::ragged(std::iter::repeat_n(&[][..], n))
    }

    fn is_initial(&self, states: &StateBatch, i: usize) -> bool {
        states.row(i).is_empty()
    }

    fn forward_mask(&self, states: &StateBatch, out: &mut [bool]) {
        self.check_layout(states);
        let na = self.n_actions();
        assert_eq!(
            out.len(),
            states.len() * na,
            "forward mask has the wrong length"
        );
        out.fill(false);
        let frags = &self.lib.fragments;
        let attachable: Vec<usize> = (0..self.n_frag())
            .filter(|&f| !frags[f].stems.is_empty())
            .collect();
        for (row, m) in states.rows().zip(out.chunks_exact_mut(na)) {
            let d = self.decode(row);
            if d.nodes.is_empty() {
                m[..self.n_frag()].fill(true);
                continue;
            }
            let last = d.nodes.last().expect("placed");
            if d.pending() {
                for c in 0..frags[last.fragment].stems.len() {
                    m[self.choose_base() + c] = true;
                }
                continue;
            }
            m[self.exit_action()] = true;
            if d.nodes.len() < self.max_fragments {
                for (j, n) in d.nodes.iter().enumerate() {
                    for k in 0..frags[n.fragment].stems.len() {
                        if n.used & (1 << k) == 0 {
                            let base = self.attach_base() + (j * self.stems + k) * self.n_frag();
                            for &f in &attachable {
                                m[base + f] = true;
                            }
                        }
                    }
                }
            }
            for e in 0..d.nodes.len() - 1 {
                let a = self.action_index(Action::Double(e));
                m[a] = self.allowed(&d, a);
            }
        }
    }

    fn backward_mask(&self, states: &StateBatch, out: &mut [bool]) {
        self.check_layout(states);
        assert_eq!(
            out.len(),
            states.len(),
            "backward mask has the wrong length"
        );
        for (flag, row) in out.iter_mut().zip(states.rows()) {
            *flag = !row.is_empty();
        }
    }

    fn step(&self, states: &mut StateBatch, actions: &[Option<usize>]) {
        self.check_layout(states);
        assert_eq!(actions.len(), states.len(), "one action per state");
        states.edit_rows(|i, row| {
            if let Some(a) = actions[i] {
                let d = self.decode(row);
                assert!(
                    a < self.exit_action() && self.allowed(&d, a),
                    "forward action {a} ({:?}) is masked at row {i} ({row:?})",
                    (a < self.n_actions()).then(|| self.action(a))
                );
                row.push(a as i64);
            }
        });
    }

    fn backward_step(&self, states: &mut StateBatch, actions: &[Option<usize>]) {
        self.check_layout(states);
        rows::pop_last(states, actions, "s0");
    }

    fn backward_action_of(&self, _parents: &StateBatch, _i: usize, a: usize) -> usize {
        debug_assert!(a < self.exit_action(), "stop has no backward action");
        0
    }

    fn forward_action_of(&self, children: &StateBatch, i: usize, b: usize) -> usize {
        debug_assert_eq!(b, 0, "the only backward action is 0");
        *children.row(i).last().expect("s0 has no parent") as usize
    }

    fn encode(&self, states: &StateBatch, out: &mut [f32]) {
        self.check_layout(states);
        let fd = self.feature_dim();
        assert_eq!(
            out.len(),
            states.len() * fd,
            "feature buffer has the wrong length"
        );
        out.fill(0.0);
        let (n, nf, s) = (self.max_fragments, self.n_frag(), self.stems);
        let slot = nf + n + s;
        for (row, feat) in states.rows().zip(out.chunks_exact_mut(fd)) {
            let d = self.decode(row);
            for (j, node) in d.nodes.iter().enumerate() {
                let base = j * slot;
                feat[base + node.fragment] = 1.0;
                if let Some((p, _, _, order)) = node.link {
                    feat[base + nf + p] = 1.0;
                    if order == 2 {
                        feat[n * slot + j - 1] = 1.0;
                    }
                }
                for k in 0..s {
                    if node.used & (1 << k) != 0 {
                        feat[base + nf + n + k] = 1.0;
                    }
                }
            }
            feat[n * slot + n - 1] = f32::from(u8::from(d.pending()));
            feat[n * slot + n] = d.nodes.len() as f32 / n as f32;
        }
    }

    /// FNV-1a of the canonical SMILES: the build orders of one molecule are
    /// one object. (A row that does not build a molecule keys by its row.)
    fn object_key(&self, states: &StateBatch, i: usize) -> u64 {
        match self.smiles(states.row(i)) {
            Ok(s) => smiles_key(&s),
            Err(_) => row_key(states.row(i)),
        }
    }
}

/// FNV-1a (64-bit) over a SMILES string's bytes.
pub fn smiles_key(smiles: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in smiles.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A molecule reward over the fragment environment's terminal states.
#[derive(Clone)]
pub struct FragmentReward {
    env: FragmentMolecules,
    scorer: Arc<Scorer>,
}

impl FragmentReward {
    pub fn new(env: &FragmentMolecules, scorer: Scorer) -> Self {
        Self {
            env: env.clone(),
            scorer: Arc::new(scorer),
        }
    }

    pub fn scorer(&self) -> &Scorer {
        &self.scorer
    }

    /// `ln R` of one state (the floor's for a state without a molecule).
    pub fn log_reward_of(&self, row: &[i64]) -> f64 {
        match self.env.molecule(row) {
            Ok(Some(m)) => self.scorer.log_reward(&m),
            _ => self.scorer.min_log_reward(),
        }
    }
}

impl LogReward for FragmentReward {
    /// The molecules are built in parallel and scored as one batch (a proxy
    /// model runs one forward pass for the batch).
    fn log_reward(&self, states: &StateBatch, out: &mut [f64]) {
        assert_eq!(out.len(), states.len(), "one log-reward per state");
        let mols: Vec<Option<Molecule>> = (0..states.len())
            .into_par_iter()
            .map(|i| self.env.molecule(states.row(i)).ok().flatten())
            .collect();
        out.copy_from_slice(&self.scorer.log_rewards(&mols));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_indices() {
        let env = FragmentMolecules::new(FragmentLibrary::frags_72(), 4).unwrap();
        assert_eq!(env.library().len(), 72);
        assert_eq!(env.stems, 6);
        for a in 0..env.n_actions() {
            assert_eq!(env.action_index(env.action(a)), a);
        }
        assert_eq!(env.n_actions(), 72 + 4 * 6 * 72 + 6 + 3 + 1);
    }

    #[test]
    fn a_built_state_gives_its_molecule() {
        let env = FragmentMolecules::new(FragmentLibrary::frags_72(), 3).unwrap();
        let lib = env.library();
        let find = |s: &str| lib.fragments.iter().position(|f| f.smiles == s).unwrap();
        let (benzene, ethylene) = (find("c1ccccc1"), find("C=C"));
        let row: Vec<i64> = [
            Action::Start(benzene),
            Action::Attach {
                node: 0,
                stem: 0,
                fragment: ethylene,
            },
            Action::ChooseStem(0),
        ]
        .iter()
        .map(|&a| env.action_index(a) as i64)
        .collect();
        assert_eq!(env.smiles(&row).unwrap(), "C=Cc1ccccc1");
        // An aromatic CH takes no double bond.
        let d = env.decode(&row);
        assert!(!env.allowed(&d, env.action_index(Action::Double(0))));
    }
}
