//! Reaction-based molecule generation (SynFlowNet-style, Cretu et al. 2024):
//! a molecule is a building block, then at most `max_reactions` reactions,
//! each a unimolecular template or a bimolecular template with one more
//! building block.
//!
//! **Library.** Reaction templates are reaction SMARTS (SMIRKS), one per
//! line, with one or two reactant templates and one product template (agents,
//! `a>b>c`, are allowed and ignored in the reverse); building blocks are
//! SMILES, one per line (later fields, such as a name, are ignored), stored
//! by their canonical SMILES (two lines with the same molecule are an
//! error). The defaults are SynFlowNet's 105 templates
//! and 200 building blocks chosen from the NCI set (`assets/molecules/`,
//! [`ReactionLibrary::shipped`]); `templates_file` and
//! `building_blocks_file` read user files. Any bad line is an error naming
//! the file and line; no partial library is returned.
//!
//! **States** are `(n, molecule)`: `n` the number of actions taken (0 at
//! `s0`, 1 after the first building block, `1 + r` after `r` reactions) and
//! the molecule's canonical SMILES, stored as the row `[n, bytes...]` (ragged
//! rows). Keeping `n` in the state grades the DAG and bounds trajectories:
//! the same molecule reached after a different number of reactions is a
//! different state (one object, [`Environment::object_key`] hashes only the
//! SMILES).
//!
//! **Forward actions** (`B` building blocks, `U` unimolecular and `K`
//! bimolecular templates, in file order within each kind):
//!
//! * `b < B`, from `s0` only: start with building block `b`;
//! * `B + u`: apply unimolecular template `u`;
//! * `B + U + k B + b`: apply bimolecular template `k` to the molecule and
//!   building block `b` (in whichever reactant order their patterns match);
//! * the last: stop (allowed at every state but `s0`).
//!
//! **Backward actions** undo one: `0` removes the first building block (the
//! state is `(1, a building block)`), `1 + u` reverses unimolecular template
//! `u`, `1 + U + k B + b` reverses bimolecular template `k`, removing
//! building block `b`. A molecule usually has several parents (other
//! templates, other building blocks removed), so `P_B` is a real choice:
//! `policy.backward = "uniform"` (uniform over the valid parents) or
//! `"learned"`.
//!
//! **Products and parents are exact.** A reaction's product is its
//! lexicographically smallest canonical SMILES over all reactant matches and
//! orders whose product sanitises, round-trips through its SMILES and is one
//! connected molecule. A backward action's parent is found by running the
//! reversed template (`products>>reactants`) on the molecule and keeping the
//! candidates whose forward reaction really gives the molecule; if several
//! candidates do, the smallest SMILES is the parent. A forward action is
//! allowed only where that parent is the molecule it was taken from, and a
//! backward action only where the parent is reachable from `s0` in `n - 1`
//! actions (a recursive check, cached): forward and backward masks describe
//! the same DAG, which `tests/env_reaction.rs` checks with the conformance
//! suite. Results are cached per molecule (the caches are cleared when they
//! grow past [`CACHE_LIMIT`] entries).
//!
//! **Features** (what the MLP policy reads): a folded Morgan fingerprint
//! (radius 2, [`FP_BITS`] bits) and a one-hot of `n`. The graph network
//! ([`crate::policy::reaction_gnn`], `policy.kind = "gnn"`) reads the atom
//! graph instead and factorises the bimolecular logits over building-block
//! embeddings, SynFlowNet-style.
//!
//! **Not in this environment** (SynFlowNet has it): hierarchical sampling
//! (template, then building block) (README, "Molecules").

use crate::chem::{self, Molecule, score::Scorer};
use crate::env::molecule::fragment::smiles_key;
use crate::env::{Environment, LogReward, StateBatch, row_key};
use anyhow::{Context, Result, bail};
use cosmolkit::{Reaction, ReactionRunParams, ReactionValidationParams};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The shipped reaction templates (SynFlowNet's `hb.txt`).
const TEMPLATES: &str = include_str!("../../../assets/molecules/synflownet_templates.txt");
/// The shipped building blocks (chosen from the NCI set).
const BUILDING_BLOCKS: &str = include_str!("../../../assets/molecules/building_blocks.smi");

/// Bits of the folded Morgan fingerprint in the policy features.
pub const FP_BITS: usize = 1024;
/// Entries a cache may hold before it is cleared.
pub const CACHE_LIMIT: usize = 200_000;
/// Product sets a reaction run may return (RDKit's default is 1000).
const MAX_PRODUCTS: u32 = 200;

/// One reaction template, forward and reversed.
#[derive(Clone, Debug)]
pub struct Template {
    /// The SMIRKS as written.
    pub smirks: String,
    /// 1 (unimolecular) or 2 (bimolecular).
    pub n_reactants: usize,
    forward: Reaction,
    /// `products>>reactants`.
    reverse: Reaction,
}

impl Template {
    /// Parses a SMIRKS with one or two reactant templates and one product
    /// template, and its reverse.
    pub fn parse(smirks: &str) -> Result<Self> {
        let forward = Reaction::from_smirks(smirks)
            .map_err(|e| anyhow::anyhow!("invalid reaction SMARTS `{smirks}`: {e:?}"))?;
        let (nr, np) = (
            forward.num_reactant_templates(),
            forward.num_product_templates(),
        );
        if !(1..=2).contains(&nr) || np != 1 {
            bail!(
                "reaction `{smirks}` has {nr} reactant and {np} product templates; \
                 only 1 or 2 reactants and 1 product are supported"
            );
        }
        let parts: Vec<&str> = smirks.split('>').collect();
        if parts.len() != 3 {
            bail!(
                "reaction `{smirks}`: expected `reactants>>products` or `reactants>agents>products`"
            );
        }
        let reversed = format!("{}>>{}", parts[2], parts[0]);
        let reverse = Reaction::from_smirks(&reversed).map_err(|e| {
            anyhow::anyhow!("reaction `{smirks}`: its reverse does not parse: {e:?}")
        })?;
        // Silent: reversed templates leave atoms unmapped on purpose (the
        // leaving groups), which cosmolkit would print as warnings.
        let init = |r: Reaction, what: &str| {
            r.with_initialized_with_params(&ReactionValidationParams { silent: true })
                .map_err(|e| anyhow::anyhow!("reaction `{smirks}`: {what}: {e:?}"))
        };
        Ok(Self {
            smirks: smirks.to_string(),
            n_reactants: nr,
            forward: init(forward, "cannot initialise")?,
            reverse: init(reverse, "cannot initialise its reverse")?,
        })
    }

    /// Whether `m` matches reactant template `r`.
    pub fn reactant_matches(&self, m: &Molecule, r: usize) -> bool {
        self.forward
            .reactant_template(r)
            .ok()
            .is_some_and(|q| m.has_substruct_match(q).unwrap_or(false))
    }

    /// Whether `m` matches the product template.
    pub fn product_matches(&self, m: &Molecule) -> bool {
        self.reverse
            .reactant_template(0)
            .ok()
            .is_some_and(|q| m.has_substruct_match(q).unwrap_or(false))
    }
}

/// Runs a reaction (on a copy: running initialises the template) and
/// returns its product sets (empty if it fails).
fn run(rxn: &Reaction, inputs: &[&Molecule]) -> Vec<Vec<Molecule>> {
    let mut r = rxn.clone();
    let params = ReactionRunParams {
        max_products: MAX_PRODUCTS,
        ..ReactionRunParams::default()
    };
    inputs[0]
        .reaction_products_from_inputs(&mut r, inputs, &params)
        .unwrap_or_default()
}

/// The canonical SMILES of a reaction output, if it sanitises, is one
/// connected molecule and round-trips through its SMILES.
fn product_smiles(m: &Molecule) -> Option<String> {
    let m = m.sanitize().ok()?;
    let can = chem::round_trips(&m).ok()?;
    (!can.contains('.') && !can.is_empty()).then_some(can)
}

/// Templates and building blocks.
#[derive(Clone, Debug)]
pub struct ReactionLibrary {
    /// Where it came from (`shipped` or the paths), for names and errors.
    pub origin: String,
    /// Every template, in file order.
    pub templates: Vec<Template>,
    /// Indices into `templates` of the unimolecular and bimolecular ones.
    pub uni: Vec<usize>,
    pub bi: Vec<usize>,
    /// Canonical SMILES of the building blocks, in file order.
    pub building_blocks: Vec<String>,
    bb_mols: Vec<Molecule>,
    bb_index: FxHashMap<String, usize>,
    /// Per bimolecular template `k` and reactant `r`: the building blocks
    /// matching reactant template `r`.
    bb_matches: Vec<[Vec<usize>; 2]>,
}

impl ReactionLibrary {
    /// SynFlowNet's templates and the shipped building blocks.
    pub fn shipped() -> Self {
        Self::parse(
            TEMPLATES,
            "synflownet_templates",
            BUILDING_BLOCKS,
            "building_blocks",
        )
        .expect("the shipped library is valid")
    }

    /// The library of `[env.molecule]`'s `templates_file` and
    /// `building_blocks_file` (empty: the shipped one).
    pub fn load(templates_file: &str, building_blocks_file: &str) -> Result<Self> {
        let read = |path: &str, what: &str| -> Result<Option<String>> {
            if path.is_empty() {
                return Ok(None);
            }
            std::fs::read_to_string(Path::new(path))
                .with_context(|| format!("cannot read {what} file {path}"))
                .map(Some)
        };
        let t = read(templates_file, "reaction template")?;
        let b = read(building_blocks_file, "building block")?;
        Self::parse(
            t.as_deref().unwrap_or(TEMPLATES),
            if t.is_some() {
                templates_file
            } else {
                "synflownet_templates"
            },
            b.as_deref().unwrap_or(BUILDING_BLOCKS),
            if b.is_some() {
                building_blocks_file
            } else {
                "building_blocks"
            },
        )
    }

    /// Parses template and building-block texts (the origins name them in
    /// errors).
    pub fn parse(
        templates: &str,
        templates_origin: &str,
        building_blocks: &str,
        bb_origin: &str,
    ) -> Result<Self> {
        let mut parsed = Vec::new();
        for l in chem::data_lines(templates) {
            if l.fields.len() != 1 {
                bail!(
                    "{templates_origin}:{}: expected one reaction SMARTS, got {} fields",
                    l.line,
                    l.fields.len()
                );
            }
            let t = Template::parse(&l.fields[0])
                .with_context(|| format!("{templates_origin}:{}", l.line))?;
            parsed.push(t);
        }
        if parsed.is_empty() {
            bail!("{templates_origin}: no reaction template (one reaction SMARTS per line)");
        }
        let mut smiles = Vec::new();
        let mut mols = Vec::new();
        let mut index = FxHashMap::default();
        for l in chem::data_lines(building_blocks) {
            let at = |msg: String| anyhow::anyhow!("{bb_origin}:{}: {msg}", l.line);
            let m = chem::parse(&l.fields[0]).map_err(|e| at(format!("{e:#}")))?;
            let can = chem::round_trips(&m).map_err(|e| at(format!("{e:#}")))?;
            if can.contains('.') {
                return Err(at(format!(
                    "`{}` has several components; a building block is one molecule",
                    l.fields[0]
                )));
            }
            let m = chem::parse(&can).map_err(|e| at(format!("{e:#}")))?;
            if let Some(j) = index.insert(can.clone(), smiles.len()) {
                return Err(at(format!(
                    "`{}` is building block {j} again ({can})",
                    l.fields[0]
                )));
            }
            smiles.push(can);
            mols.push(m);
        }
        if smiles.is_empty() {
            bail!("{bb_origin}: no building block (one SMILES per line)");
        }
        let uni: Vec<usize> = (0..parsed.len())
            .filter(|&t| parsed[t].n_reactants == 1)
            .collect();
        let bi: Vec<usize> = (0..parsed.len())
            .filter(|&t| parsed[t].n_reactants == 2)
            .collect();
        let bb_matches = bi
            .par_iter()
            .map(|&t| {
                let side = |r: usize| -> Vec<usize> {
                    (0..mols.len())
                        .filter(|&b| parsed[t].reactant_matches(&mols[b], r))
                        .collect()
                };
                [side(0), side(1)]
            })
            .collect();
        Ok(Self {
            origin: format!("{templates_origin}+{bb_origin}"),
            templates: parsed,
            uni,
            bi,
            building_blocks: smiles,
            bb_mols: mols,
            bb_index: index,
            bb_matches,
        })
    }

    /// Building blocks.
    pub fn n_bb(&self) -> usize {
        self.building_blocks.len()
    }

    /// The index of a building block's canonical SMILES.
    pub fn bb_of(&self, smiles: &str) -> Option<usize> {
        self.bb_index.get(smiles).copied()
    }

    /// How many building blocks match reactant `r` of bimolecular template
    /// `k` (for reports).
    pub fn bb_match_count(&self, k: usize, r: usize) -> usize {
        self.bb_matches[k][r].len()
    }
}

/// A forward action, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Start with building block `b` (from `s0`).
    First(usize),
    /// Unimolecular template `u` (an index into [`ReactionLibrary::uni`]).
    Uni(usize),
    /// Bimolecular template `k` (into [`ReactionLibrary::bi`]) with
    /// building block `b`.
    Bi(usize, usize),
    Stop,
}

/// A backward action, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackAction {
    /// Remove the first building block (back to `s0`).
    RemoveFirst,
    /// Reverse unimolecular template `u`.
    Uni(usize),
    /// Reverse bimolecular template `k`, removing building block `b`.
    Bi(usize, usize),
}

type Edges = Arc<Vec<(u32, Arc<str>)>>;
/// A cache keyed by a molecule's SMILES and an action or template index.
type KeyedCache<V> = Mutex<FxHashMap<(Arc<str>, u32), V>>;

/// Results computed per molecule, shared by clones of the environment.
#[derive(Default, Debug)]
struct Caches {
    /// Forward expansion: allowed reaction actions and their children.
    expand: Mutex<FxHashMap<Arc<str>, Edges>>,
    /// Per (molecule, forward action): the product ([`ReactionMolecules::react`]).
    product: KeyedCache<Option<Arc<str>>>,
    /// Per (molecule, template index): backward actions and their parents
    /// (the reverse run, verified).
    retro: KeyedCache<Edges>,
    /// Whether (molecule, n) is reachable from `s0` in `n` actions.
    valid: KeyedCache<bool>,
    /// Fingerprint on-bits.
    fp: Mutex<FxHashMap<Arc<str>, Arc<Vec<u32>>>>,
}

fn cached<K: std::hash::Hash + Eq, V: Clone>(
    map: &Mutex<FxHashMap<K, V>>,
    key: K,
    compute: impl FnOnce() -> V,
) -> V {
    if let Some(v) = map.lock().expect("cache").get(&key) {
        return v.clone();
    }
    let v = compute();
    let mut m = map.lock().expect("cache");
    if m.len() >= CACHE_LIMIT {
        m.clear();
    }
    m.insert(key, v.clone());
    v
}

/// The reaction environment.
#[derive(Clone, Debug)]
pub struct ReactionMolecules {
    lib: Arc<ReactionLibrary>,
    max_reactions: usize,
    caches: Arc<Caches>,
}

impl ReactionMolecules {
    /// Molecules of one building block and at most `max_reactions` reactions.
    pub fn new(lib: ReactionLibrary, max_reactions: usize) -> Result<Self> {
        if !(0..=8).contains(&max_reactions) {
            bail!("max_reactions = {max_reactions}: must be 0 to 8");
        }
        Ok(Self {
            lib: Arc::new(lib),
            max_reactions,
            caches: Arc::default(),
        })
    }

    pub fn library(&self) -> &ReactionLibrary {
        &self.lib
    }

    pub fn max_reactions(&self) -> usize {
        self.max_reactions
    }

    fn nb(&self) -> usize {
        self.lib.n_bb()
    }

    fn nu(&self) -> usize {
        self.lib.uni.len()
    }

    /// The forward action with index `a`.
    pub fn action(&self, a: usize) -> Action {
        let (b, u) = (self.nb(), self.nu());
        if a < b {
            Action::First(a)
        } else if a < b + u {
            Action::Uni(a - b)
        } else if a < self.exit_action() {
            let r = a - b - u;
            Action::Bi(r / b, r % b)
        } else {
            assert_eq!(a, self.exit_action(), "action {a} out of range");
            Action::Stop
        }
    }

    /// The index of a forward action.
    pub fn action_index(&self, a: Action) -> usize {
        let (b, u) = (self.nb(), self.nu());
        match a {
            Action::First(x) => x,
            Action::Uni(x) => b + x,
            Action::Bi(k, x) => b + u + k * b + x,
            Action::Stop => self.exit_action(),
        }
    }

    /// The backward action with index `i`.
    pub fn back_action(&self, i: usize) -> BackAction {
        let (b, u) = (self.nb(), self.nu());
        if i == 0 {
            BackAction::RemoveFirst
        } else if i < 1 + u {
            BackAction::Uni(i - 1)
        } else {
            assert!(
                i < self.n_backward_actions(),
                "backward action {i} out of range"
            );
            let r = i - 1 - u;
            BackAction::Bi(r / b, r % b)
        }
    }

    /// The index of a backward action.
    pub fn back_index(&self, a: BackAction) -> usize {
        let (b, u) = (self.nb(), self.nu());
        match a {
            BackAction::RemoveFirst => 0,
            BackAction::Uni(x) => 1 + x,
            BackAction::Bi(k, x) => 1 + u + k * b + x,
        }
    }

    /// The template (index into `templates`) a backward action reverses.
    fn template_of(&self, b: BackAction) -> Option<usize> {
        match b {
            BackAction::RemoveFirst => None,
            BackAction::Uni(u) => Some(self.lib.uni[u]),
            BackAction::Bi(k, _) => Some(self.lib.bi[k]),
        }
    }

    /// A state's row.
    pub fn row_of(n: usize, smiles: &str) -> Vec<i64> {
        std::iter::once(n as i64)
            .chain(smiles.bytes().map(i64::from))
            .collect()
    }

    /// `(n, SMILES)` of a row (`""` at `s0`).
    pub fn decode(row: &[i64]) -> (usize, String) {
        assert!(
            !row.is_empty(),
            "a reaction state has at least its step count"
        );
        let bytes: Vec<u8> = row[1..]
            .iter()
            .map(|&b| u8::try_from(b).expect("SMILES byte"))
            .collect();
        (
            row[0] as usize,
            String::from_utf8(bytes).expect("SMILES is ASCII"),
        )
    }

    /// The canonical SMILES of a state's molecule (an error at `s0`).
    pub fn smiles(&self, row: &[i64]) -> Result<String> {
        let (n, s) = Self::decode(row);
        if n == 0 {
            bail!("s0 holds no molecule");
        }
        Ok(s)
    }

    /// The molecule of a state; `None` for `s0`.
    pub fn molecule(&self, row: &[i64]) -> Result<Option<Molecule>> {
        let (n, s) = Self::decode(row);
        if n == 0 {
            return Ok(None);
        }
        chem::parse(&s).map(Some)
    }

    /// The product of a reaction action on a molecule (see the module doc),
    /// or `None` if it gives none.
    pub fn react(&self, mol: &Molecule, a: Action) -> Option<String> {
        let lib = &self.lib;
        let mut out: BTreeSet<String> = BTreeSet::new();
        let mut collect = |sets: Vec<Vec<Molecule>>| {
            for set in sets {
                if let Some(s) = set.first().and_then(product_smiles) {
                    out.insert(s);
                }
            }
        };
        match a {
            Action::Uni(u) => {
                let t = &lib.templates[lib.uni[u]];
                if t.reactant_matches(mol, 0) {
                    collect(run(&t.forward, &[mol]));
                }
            }
            Action::Bi(k, b) => {
                let t = &lib.templates[lib.bi[k]];
                let bb = &lib.bb_mols[b];
                let m = &lib.bb_matches[k];
                if m[1].binary_search(&b).is_ok() && t.reactant_matches(mol, 0) {
                    collect(run(&t.forward, &[mol, bb]));
                }
                if m[0].binary_search(&b).is_ok() && t.reactant_matches(mol, 1) {
                    collect(run(&t.forward, &[bb, mol]));
                }
            }
            Action::First(_) | Action::Stop => panic!("react: {a:?} is not a reaction"),
        }
        out.into_iter().next()
    }

    /// [`Self::react`] on a molecule given by its SMILES (`mol`, if given, is
    /// that molecule), cached.
    fn product(&self, smiles: &Arc<str>, mol: Option<&Molecule>, a: Action) -> Option<Arc<str>> {
        let key = (smiles.clone(), self.action_index(a) as u32);
        cached(&self.caches.product, key, || {
            let parsed;
            let m = match mol {
                Some(m) => m,
                None => {
                    parsed = chem::parse(smiles).ok()?;
                    &parsed
                }
            };
            self.react(m, a).map(|s| Arc::from(s.as_str()))
        })
    }

    /// The forward action a backward action undoes (`First` needs the
    /// child, so it is handled by the caller).
    fn forward_of(b: BackAction) -> Action {
        match b {
            BackAction::Uni(u) => Action::Uni(u),
            BackAction::Bi(k, x) => Action::Bi(k, x),
            BackAction::RemoveFirst => unreachable!("handled by the caller"),
        }
    }

    /// The backward actions reversing template `t` on molecule `smiles`, with
    /// their parents: the reverse run's candidates whose forward reaction
    /// gives `smiles` back, the smallest SMILES per action.
    fn retro(&self, smiles: &Arc<str>, mol: &Molecule, t: usize) -> Edges {
        cached(&self.caches.retro, (smiles.clone(), t as u32), || {
            let lib = &self.lib;
            let tpl = &lib.templates[t];
            if !tpl.product_matches(mol) {
                return Arc::default();
            }
            let mut cands: BTreeMap<BackAction, BTreeSet<String>> = BTreeMap::new();
            let uni_pos = lib.uni.iter().position(|&x| x == t);
            let bi_pos = lib.bi.iter().position(|&x| x == t);
            for set in run(&tpl.reverse, &[mol]) {
                let parts: Vec<Option<String>> = set.iter().map(product_smiles).collect();
                match (uni_pos, bi_pos, parts.as_slice()) {
                    (Some(u), _, [Some(p)]) => {
                        cands
                            .entry(BackAction::Uni(u))
                            .or_default()
                            .insert(p.clone());
                    }
                    (_, Some(k), [a, b]) => {
                        for (bb, other) in [(b, a), (a, b)] {
                            if let (Some(bb), Some(other)) = (bb, other)
                                && let Some(x) = lib.bb_of(bb)
                            {
                                cands
                                    .entry(BackAction::Bi(k, x))
                                    .or_default()
                                    .insert(other.clone());
                            }
                        }
                    }
                    _ => {}
                }
            }
            let mut out = Vec::new();
            for (b, parents) in cands {
                for p in parents {
                    let p: Arc<str> = Arc::from(p.as_str());
                    if self.product(&p, None, Self::forward_of(b)).as_deref() == Some(&**smiles) {
                        out.push((self.back_index(b) as u32, p));
                        break;
                    }
                }
            }
            Arc::new(out)
        })
    }

    /// Every verified (backward action, parent) of a molecule.
    fn parents(&self, smiles: &Arc<str>, mol: &Molecule) -> Vec<(u32, Arc<str>)> {
        let mut out = Vec::new();
        for t in 0..self.lib.templates.len() {
            out.extend(self.retro(smiles, mol, t).iter().cloned());
        }
        out
    }

    /// Whether `(n, smiles)` is reachable from `s0` in `n` actions.
    fn valid(&self, smiles: &Arc<str>, n: usize) -> bool {
        match n {
            0 => smiles.is_empty(),
            1 => self.lib.bb_of(smiles).is_some(),
            _ => {
                if let Some(&v) = self
                    .caches
                    .valid
                    .lock()
                    .expect("cache")
                    .get(&(smiles.clone(), n as u32))
                {
                    return v;
                }
                let v = chem::parse(smiles).is_ok_and(|m| {
                    self.parents(smiles, &m)
                        .iter()
                        .any(|(_, p)| self.valid(p, n - 1))
                });
                cached(&self.caches.valid, (smiles.clone(), n as u32), || v)
            }
        }
    }

    /// The allowed reaction actions of a molecule and their children.
    fn expand(&self, smiles: &Arc<str>) -> Edges {
        cached(&self.caches.expand, smiles.clone(), || {
            let Ok(mol) = chem::parse(smiles) else {
                return Arc::default();
            };
            let lib = &self.lib;
            let mut cands: Vec<Action> = Vec::new();
            for u in 0..lib.uni.len() {
                if lib.templates[lib.uni[u]].reactant_matches(&mol, 0) {
                    cands.push(Action::Uni(u));
                }
            }
            for k in 0..lib.bi.len() {
                let t = &lib.templates[lib.bi[k]];
                let mut partners: BTreeSet<usize> = BTreeSet::new();
                if t.reactant_matches(&mol, 0) {
                    partners.extend(&lib.bb_matches[k][1]);
                }
                if t.reactant_matches(&mol, 1) {
                    partners.extend(&lib.bb_matches[k][0]);
                }
                cands.extend(partners.into_iter().map(|b| Action::Bi(k, b)));
            }
            let out: Vec<(u32, Arc<str>)> = cands
                .par_iter()
                .filter_map(|&a| {
                    let child = self.product(smiles, Some(&mol), a)?;
                    let cm = chem::parse(&child).ok()?;
                    let back = match a {
                        Action::Uni(u) => BackAction::Uni(u),
                        Action::Bi(k, b) => BackAction::Bi(k, b),
                        _ => unreachable!(),
                    };
                    let t = self.template_of(back).expect("a template");
                    let bi = self.back_index(back) as u32;
                    self.retro(&child, &cm, t)
                        .iter()
                        .any(|(b, p)| *b == bi && **p == **smiles)
                        .then(|| (self.action_index(a) as u32, child))
                })
                .collect();
            Arc::new(out)
        })
    }

    fn check_layout(&self, states: &StateBatch) {
        assert!(
            states.is_ragged(),
            "reaction molecules are ragged rows (state_width 0), got rows of width {}",
            states.width
        );
    }

    fn rebuild(states: &mut StateBatch, rows: Vec<Option<Vec<i64>>>) {
        let mut out = StateBatch::empty(0);
        for (i, r) in rows.into_iter().enumerate() {
            match r {
                Some(r) => out.push_row(&r),
                None => out.push_row(states.row(i)),
            }
        }
        *states = out;
    }

    /// The backward edges of a state: `(backward action, parent row)`.
    fn backward_edges(&self, row: &[i64]) -> Vec<(usize, Vec<i64>)> {
        let (n, s) = Self::decode(row);
        match n {
            0 => Vec::new(),
            1 => {
                if self.lib.bb_of(&s).is_some() {
                    vec![(0, vec![0])]
                } else {
                    Vec::new()
                }
            }
            _ => {
                let s: Arc<str> = Arc::from(s.as_str());
                let Ok(m) = chem::parse(&s) else {
                    return Vec::new();
                };
                self.parents(&s, &m)
                    .into_iter()
                    .filter(|(_, p)| self.valid(p, n - 1))
                    .map(|(b, p)| (b as usize, Self::row_of(n - 1, &p)))
                    .collect()
            }
        }
    }
}

impl Environment for ReactionMolecules {
    fn name(&self) -> String {
        format!(
            "reaction-mol-{}t-{}bb-r{}",
            self.lib.templates.len(),
            self.nb(),
            self.max_reactions
        )
    }

    fn state_width(&self) -> usize {
        0
    }

    fn n_actions(&self) -> usize {
        self.nb() + self.nu() + self.lib.bi.len() * self.nb() + 1
    }

    fn n_backward_actions(&self) -> usize {
        1 + self.nu() + self.lib.bi.len() * self.nb()
    }

    /// The folded Morgan fingerprint and a one-hot of the step count `n`
    /// (`0..=max_reactions + 1`).
    fn feature_dim(&self) -> usize {
        FP_BITS + self.max_reactions + 2
    }

    fn max_trajectory_length(&self) -> usize {
        1 + self.max_reactions
    }

    fn initial_states(&self, n: usize) -> StateBatch {
        StateBatch::ragged(std::iter::repeat_n(&[0i64][..], n))
    }

    fn is_initial(&self, states: &StateBatch, i: usize) -> bool {
        states.row(i) == [0]
    }

    fn forward_mask(&self, states: &StateBatch, out: &mut [bool]) {
        self.check_layout(states);
        let na = self.n_actions();
        assert_eq!(
            out.len(),
            states.len() * na,
            "forward mask has the wrong length"
        );
        let rows: Vec<&[i64]> = states.rows().collect();
        out.par_chunks_exact_mut(na)
            .zip(rows.par_iter())
            .for_each(|(m, row)| {
                m.fill(false);
                let (n, s) = Self::decode(row);
                if n == 0 {
                    m[..self.nb()].fill(true);
                    return;
                }
                m[na - 1] = true;
                if n <= self.max_reactions {
                    for (a, _) in self.expand(&Arc::from(s.as_str())).iter() {
                        m[*a as usize] = true;
                    }
                }
            });
    }

    fn backward_mask(&self, states: &StateBatch, out: &mut [bool]) {
        self.check_layout(states);
        let nb = self.n_backward_actions();
        assert_eq!(
            out.len(),
            states.len() * nb,
            "backward mask has the wrong length"
        );
        let rows: Vec<&[i64]> = states.rows().collect();
        out.par_chunks_exact_mut(nb)
            .zip(rows.par_iter())
            .for_each(|(m, row)| {
                m.fill(false);
                for (b, _) in self.backward_edges(row) {
                    m[b] = true;
                }
            });
    }

    fn step(&self, states: &mut StateBatch, actions: &[Option<usize>]) {
        self.check_layout(states);
        assert_eq!(actions.len(), states.len(), "one action per state");
        let rows: Vec<Option<Vec<i64>>> = (0..states.len())
            .into_par_iter()
            .map(|i| {
                let a = actions[i]?;
                let row = states.row(i);
                let (n, s) = Self::decode(row);
                let child = match self.action(a) {
                    Action::First(b) if n == 0 => {
                        Some(Self::row_of(1, &self.lib.building_blocks[b]))
                    }
                    Action::Uni(_) | Action::Bi(..) if n >= 1 && n <= self.max_reactions => self
                        .expand(&Arc::from(s.as_str()))
                        .iter()
                        .find(|(x, _)| *x as usize == a)
                        .map(|(_, c)| Self::row_of(n + 1, c)),
                    _ => None,
                };
                Some(child.unwrap_or_else(|| {
                    panic!(
                        "forward action {a} ({:?}) is masked at row {i} ({n}, {s})",
                        (a < self.n_actions()).then(|| self.action(a))
                    )
                }))
            })
            .collect();
        Self::rebuild(states, rows);
    }

    fn backward_step(&self, states: &mut StateBatch, actions: &[Option<usize>]) {
        self.check_layout(states);
        assert_eq!(actions.len(), states.len(), "one action per state");
        let rows: Vec<Option<Vec<i64>>> = (0..states.len())
            .into_par_iter()
            .map(|i| {
                let b = actions[i]?;
                let row = states.row(i);
                let parent = self
                    .backward_edges(row)
                    .into_iter()
                    .find(|(x, _)| *x == b)
                    .map(|(_, p)| p);
                Some(parent.unwrap_or_else(|| {
                    panic!(
                        "backward action {b} is masked at row {i} ({:?})",
                        Self::decode(row)
                    )
                }))
            })
            .collect();
        Self::rebuild(states, rows);
    }

    fn backward_action_of(&self, _parents: &StateBatch, _i: usize, a: usize) -> usize {
        match self.action(a) {
            Action::First(_) => 0,
            Action::Uni(u) => self.back_index(BackAction::Uni(u)),
            Action::Bi(k, b) => self.back_index(BackAction::Bi(k, b)),
            Action::Stop => panic!("stop has no backward action"),
        }
    }

    fn forward_action_of(&self, children: &StateBatch, i: usize, b: usize) -> usize {
        match self.back_action(b) {
            BackAction::RemoveFirst => {
                let (_, s) = Self::decode(children.row(i));
                self.lib
                    .bb_of(&s)
                    .unwrap_or_else(|| panic!("{s} is not a building block"))
            }
            BackAction::Uni(u) => self.action_index(Action::Uni(u)),
            BackAction::Bi(k, x) => self.action_index(Action::Bi(k, x)),
        }
    }

    fn encode(&self, states: &StateBatch, out: &mut [f32]) {
        self.check_layout(states);
        let fd = self.feature_dim();
        assert_eq!(
            out.len(),
            states.len() * fd,
            "feature buffer has the wrong length"
        );
        let rows: Vec<&[i64]> = states.rows().collect();
        out.par_chunks_exact_mut(fd)
            .zip(rows.par_iter())
            .for_each(|(f, row)| {
                f.fill(0.0);
                let (n, s) = Self::decode(row);
                f[FP_BITS + n.min(self.max_reactions + 1)] = 1.0;
                if n == 0 {
                    return;
                }
                let key: Arc<str> = Arc::from(s.as_str());
                let bits = cached(&self.caches.fp, key, || {
                    Arc::new(
                        chem::parse(&s)
                            .and_then(|m| chem::fingerprint::morgan_bits(&m, 2, FP_BITS))
                            .map(|fp| fp.on_bits().into_iter().collect())
                            .unwrap_or_default(),
                    )
                });
                for &b in bits.iter() {
                    f[b as usize] = 1.0;
                }
            });
    }

    /// FNV-1a of the canonical SMILES: a molecule reached after different
    /// numbers of reactions is one object.
    fn object_key(&self, states: &StateBatch, i: usize) -> u64 {
        match self.smiles(states.row(i)) {
            Ok(s) => smiles_key(&s),
            Err(_) => row_key(states.row(i)),
        }
    }
}

/// A molecule reward over the reaction environment's terminal states.
#[derive(Clone)]
pub struct ReactionReward {
    env: ReactionMolecules,
    scorer: Arc<Scorer>,
}

impl ReactionReward {
    pub fn new(env: &ReactionMolecules, scorer: Scorer) -> Self {
        Self {
            env: env.clone(),
            scorer: Arc::new(scorer),
        }
    }

    pub fn scorer(&self) -> &Scorer {
        &self.scorer
    }
}

impl LogReward for ReactionReward {
    /// The molecules are parsed in parallel and scored as one batch.
    fn log_reward(&self, states: &StateBatch, out: &mut [f64]) {
        assert_eq!(out.len(), states.len(), "one log-reward per state");
        let mols: Vec<Option<Molecule>> = (0..states.len())
            .into_par_iter()
            .map(|i| self.env.molecule(states.row(i)).ok().flatten())
            .collect();
        out.copy_from_slice(&self.scorer.log_rewards(&mols));
    }
}
