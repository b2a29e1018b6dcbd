//! The 2-D Ising model as a GFlowNet environment (as in torchgfn's and
//! gfnx's Ising tasks): build a spin configuration on an `L x L` torus one
//! site at a time, and sample configurations with probability proportional
//! to their Boltzmann weight `exp(-beta E)`.
//!
//! **State.** A row of `N = L^2` integers, site `i = r * L + c` at row `r`,
//! column `c`: [`UNASSIGNED`] (`0`), [`UP`] (`+1`) or [`DOWN`] (`-1`). The
//! unassigned value is `0` on purpose: it is the neutral spin, so energy and
//! features need no special case for partial states. `s0` has every site
//! unassigned.
//!
//! **Actions.** Forward action `i < N` sets site `i` to `+1`, action `N + i`
//! sets it to `-1` (both only on an unassigned site); action `2N` exits and
//! is allowed exactly once every site is assigned, where it is the only
//! action. So the terminal objects are the `2^N` full configurations and
//! every trajectory has exactly `N` non-exit steps. Backward action `i`
//! unassigns site `i` (allowed on assigned sites). A configuration is reached
//! in `N!` site orders, so the backward policy matters.
//!
//! **Lattice.** Periodic in both directions. The neighbour pairs are the
//! *distinct* edges of the torus graph: each site's right and down
//! neighbours, with duplicates removed. For `L >= 3` that is `2N` edges. For
//! `L = 2` the right (down) neighbour of a site is also its left (up) one, so
//! the naive count would see every pair twice; we count it once, making the
//! 2x2 lattice the 4-cycle (4 edges) rather than a doubled one. `L = 1` is
//! refused: the only neighbour of the single site would be itself.
//!
//! **Reward** ([`IsingReward`], separate from the dynamics):
//! `ln R(x) = -beta E(x)` with `E(x) = -J sum_<ij> x_i x_j - h sum_i x_i`
//! (coupling `J`, field `h`, inverse temperature `beta`). It is finite on
//! every state (an unassigned site counts as spin 0).
//!
//! **Features.** A one-hot of {unassigned, +1, -1} per site: `3N` floats,
//! feature `3i + s` with `s = 0, 1, 2` for site `i`. A signed `x_i` alone
//! would make "unassigned" and "the average of +1 and -1" look alike to an
//! MLP; the one-hot keeps them apart.
//!
//! The dynamics work for any `L` up to [`MAX_SIDE`]; the [`Enumerable`]
//! listing has `3^N` states and is refused beyond [`MAX_ENUMERABLE_STATES`],
//! so only `L = 2` (81 states) and `L = 3` (19,683) are enumerable
//! (`L = 4` would be 43 million).
//!
//! ```
//! use ftb::env::ising::{Ising, IsingReward};
//! use ftb::env::{Enumerable, Environment, LogReward, StateBatch};
//! let env = Ising::new(3).unwrap();
//! assert_eq!((env.n_actions(), env.n_backward_actions(), env.feature_dim()), (19, 9, 27));
//! assert_eq!(env.n_edges(), 18);
//! assert_eq!(env.all_states().len(), 19_683);
//! let reward = IsingReward::new(&env, 1.0, 0.0, 0.5).unwrap();
//! let mut lr = [0.0];
//! reward.log_reward(&StateBatch::new(vec![1; 9], 9), &mut lr);
//! assert_eq!(lr[0], 0.5 * 18.0); // all aligned: -E = J * (number of edges)
//! assert!(Ising::new(4).unwrap().check_enumerable().is_err());
//! ```

/// Largest number of states (`3^N`) that [`Enumerable`] will list: it admits `L <= 3`.
pub use super::enumeration::MAX_ENUMERABLE_STATES;
use super::enumeration::{LazyListing, Listed};
use super::rows::{self, RowDynamics};
use super::{Enumerable, Environment, LogReward, StateBatch};
use std::fmt;

/// Largest lattice side accepted: the `3N` features stay within the shared
/// feature limit.
pub const MAX_SIDE: usize = 512;

/// Default lattice side (the largest enumerable one).
pub const DEFAULT_SIDE: usize = 3;

/// A site not set yet.
pub const UNASSIGNED: i64 = 0;
/// Spin up.
pub const UP: i64 = 1;
/// Spin down.
pub const DOWN: i64 = -1;

/// Errors from building an Ising environment or its reward.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IsingError {
    #[error(
        "Ising lattice side L must be at least 2 (on a 1x1 torus the only neighbour of the site is \
         itself), got L = {0}"
    )]
    SideTooSmall(usize),
    #[error("Ising lattice side L = {0} exceeds {MAX_SIDE}")]
    TooLarge(usize),
    #[error(
        "Ising lattice {side}x{side}: 3^{n_sites} states are too many to enumerate (the limit is \
         {MAX_ENUMERABLE_STATES}, so L <= 3; the dynamics still work, exact evaluation does not)"
    )]
    NotEnumerable { side: usize, n_sites: usize },
    #[error("invalid Ising reward: {0}")]
    InvalidReward(String),
    #[error("Ising reward built for side {expected} used with side {got}")]
    RewardMismatch { expected: usize, got: usize },
}

/// What `state_index` needs to rank a state.
struct Ranks {
    /// `offset[k]`: position of the first state with `k` assigned sites.
    offset: Vec<usize>,
    /// `binom[m * (N + 1) + j] = C(m, j)` for `m < N`, `j <= N`.
    binom: Vec<usize>,
}

/// Spin configurations on an `L x L` torus, set one site at a time.
#[derive(Clone)]
pub struct Ising {
    side: usize,
    n_sites: usize,
    /// Distinct neighbour pairs `[i, j]`, `i < j`, sorted.
    edges: Vec<[u32; 2]>,
    /// `3^N` states when at most [`MAX_ENUMERABLE_STATES`].
    listing: LazyListing<Ranks>,
}

impl fmt::Debug for Ising {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ising").field("side", &self.side).finish()
    }
}

impl Default for Ising {
    /// The 3x3 lattice.
    fn default() -> Self {
        Self::new(DEFAULT_SIDE).expect("the default side is valid")
    }
}

/// The distinct edges of the `side x side` torus (see the module doc for `L = 2`).
fn torus_edges(side: usize) -> Vec<[u32; 2]> {
    let mut edges = Vec::with_capacity(2 * side * side);
    for r in 0..side {
        for c in 0..side {
            let i = r * side + c;
            for j in [r * side + (c + 1) % side, ((r + 1) % side) * side + c] {
                edges.push([i.min(j) as u32, i.max(j) as u32]);
            }
        }
    }
    edges.sort_unstable();
    edges.dedup();
    edges
}

impl Ising {
    /// The `side x side` torus. Errors for `side < 2` or `side > MAX_SIDE`;
    /// sides too large to enumerate are accepted ([`Ising::check_enumerable`]).
    pub fn new(side: usize) -> Result<Self, IsingError> {
        if side < 2 {
            return Err(IsingError::SideTooSmall(side));
        }
        if side > MAX_SIDE {
            return Err(IsingError::TooLarge(side));
        }
        let n_sites = side * side;
        let mut n_states = Some(1usize);
        for _ in 0..n_sites {
            n_states = n_states
                .and_then(|s| s.checked_mul(3))
                .filter(|&s| s <= MAX_ENUMERABLE_STATES);
        }
        Ok(Self {
            side,
            n_sites,
            edges: torus_edges(side),
            listing: LazyListing::new(n_states),
        })
    }

    /// `L`.
    pub fn side(&self) -> usize {
        self.side
    }

    /// `N = L^2`.
    pub fn n_sites(&self) -> usize {
        self.n_sites
    }

    /// The distinct neighbour pairs `[i, j]` (`i < j`).
    pub fn edges(&self) -> &[[u32; 2]] {
        &self.edges
    }

    /// The number of neighbour pairs: `2N` for `L >= 3`, 4 for `L = 2`.
    pub fn n_edges(&self) -> usize {
        self.edges.len()
    }

    /// The number of states `3^N`, or an error when there are too many to list.
    pub fn check_enumerable(&self) -> Result<usize, IsingError> {
        self.listing.n_states().ok_or(IsingError::NotEnumerable {
            side: self.side,
            n_sites: self.n_sites,
        })
    }

    /// The number of assigned sites of a state row. Panics on an entry other
    /// than -1, 0, 1: such a row is not a state.
    pub fn n_assigned(&self, row: &[i64]) -> usize {
        assert_eq!(row.len(), self.n_sites, "state row has the wrong width");
        row.iter()
            .map(|&x| {
                assert!(
                    (DOWN..=UP).contains(&x),
                    "entry {x} is not -1/0/+1 in state {row:?}"
                );
                (x != UNASSIGNED) as usize
            })
            .sum()
    }

    fn tables(&self) -> &Listed<Ranks> {
        self.listing.get(
            |n| self.enumerate(n),
            || self.check_enumerable().unwrap_err(),
        )
    }

    /// Lists the states by number of assigned sites `k` (a topological order:
    /// every action changes `k` by one). Within a layer the assigned-site sets
    /// come in colexicographic order (increasing bit masks of equal popcount),
    /// each followed by its `2^k` sign patterns (bit `j` set: the `j`-th
    /// assigned site is `-1`). The position of a state is then
    /// `offset[k] + colex_rank * 2^k + signs`, with
    /// `colex_rank = sum_j C(c_j, j + 1)` over its sites `c_0 < c_1 < ...`.
    fn enumerate(&self, n_states: usize) -> Listed<Ranks> {
        let n = self.n_sites;
        let w = n + 1;
        let mut binom = vec![0usize; n * w];
        for m in 0..n {
            binom[m * w] = 1;
            for j in 1..=m {
                binom[m * w + j] = binom[(m - 1) * w + j - 1] + binom[(m - 1) * w + j];
            }
        }
        // n <= 13 here (3^n <= MAX_ENUMERABLE_STATES), so masks fit easily.
        let mut data = Vec::with_capacity(n_states * n);
        let mut offset = Vec::with_capacity(w);
        let mut sites = Vec::with_capacity(n);
        for k in 0..=n {
            offset.push(data.len() / n);
            for mask in (0u64..1 << n).filter(|m| m.count_ones() as usize == k) {
                sites.clear();
                sites.extend((0..n).filter(|&c| mask >> c & 1 == 1));
                for signs in 0u64..1 << k {
                    let start = data.len();
                    data.resize(start + n, UNASSIGNED);
                    for (j, &c) in sites.iter().enumerate() {
                        data[start + c] = if signs >> j & 1 == 1 { DOWN } else { UP };
                    }
                }
            }
        }
        debug_assert_eq!(data.len(), n_states * n);
        Listed {
            states: StateBatch::new(data, n),
            rank: Ranks { offset, binom },
        }
    }
}

impl RowDynamics for Ising {
    fn width_name(&self) -> String {
        format!("N = {} sites", self.n_sites)
    }

    fn row_forward_mask(&self, row: &[i64], mask: &mut [bool]) {
        let n = self.n_sites;
        let full = self.n_assigned(row) == n;
        let (up, rest) = mask.split_at_mut(n);
        let (down, exit) = rest.split_at_mut(n);
        for ((u, d), &x) in up.iter_mut().zip(down.iter_mut()).zip(row) {
            *u = x == UNASSIGNED;
            *d = x == UNASSIGNED;
        }
        exit[0] = full;
    }

    fn row_backward_mask(&self, row: &[i64], mask: &mut [bool]) {
        for (flag, &x) in mask.iter_mut().zip(row) {
            *flag = x != UNASSIGNED;
        }
    }

    fn row_step(&self, row: &mut [i64], a: usize) -> Result<(), String> {
        let n = self.n_sites;
        let (site, spin) = if a < n { (a, UP) } else { (a - n, DOWN) };
        if row[site] != UNASSIGNED {
            return Err(format!("site {site} already assigned {}", row[site]));
        }
        row[site] = spin;
        Ok(())
    }

    fn row_backward_step(&self, row: &mut [i64], b: usize) -> Result<(), String> {
        if row[b] != UP && row[b] != DOWN {
            return Err(format!("site {b} is {}, not assigned", row[b]));
        }
        row[b] = UNASSIGNED;
        Ok(())
    }
}

impl Environment for Ising {
    fn name(&self) -> String {
        format!("ising-l{}", self.side)
    }

    fn state_width(&self) -> usize {
        self.n_sites
    }

    fn n_actions(&self) -> usize {
        2 * self.n_sites + 1
    }

    fn n_backward_actions(&self) -> usize {
        self.n_sites
    }

    fn feature_dim(&self) -> usize {
        3 * self.n_sites
    }

    fn max_trajectory_length(&self) -> usize {
        self.n_sites
    }

    fn initial_states(&self, n: usize) -> StateBatch {
        StateBatch::zeros(n, self.n_sites)
    }

    fn is_initial(&self, states: &StateBatch, i: usize) -> bool {
        states.row(i).iter().all(|&x| x == UNASSIGNED)
    }

    rows::batched_row_dynamics!();

    fn backward_action_of(&self, _parents: &StateBatch, _i: usize, a: usize) -> usize {
        debug_assert!(a < 2 * self.n_sites, "exit has no backward action");
        a % self.n_sites
    }

    /// Setting the site back to the spin the child has.
    fn forward_action_of(&self, children: &StateBatch, i: usize, b: usize) -> usize {
        match children.row(i)[b] {
            UP => b,
            DOWN => self.n_sites + b,
            x => panic!("backward action {b} at row {i}: site {b} is {x}, not assigned"),
        }
    }

    /// One-hot per site: feature `3i` unassigned, `3i + 1` up, `3i + 2` down.
    fn encode(&self, states: &StateBatch, out: &mut [f32]) {
        rows::check(self, states);
        assert_eq!(
            out.len(),
            3 * states.data.len(),
            "feature buffer has the wrong length"
        );
        for (o, &x) in out.chunks_exact_mut(3).zip(&states.data) {
            let slot = match x {
                UNASSIGNED => 0,
                UP => 1,
                DOWN => 2,
                _ => panic!("entry {x} is not -1/0/+1"),
            };
            o.fill(0.0);
            o[slot] = 1.0;
        }
    }
}

impl Enumerable for Ising {
    /// Panics when there are too many states ([`Ising::check_enumerable`]).
    fn all_states(&self) -> StateBatch {
        self.tables().states.clone()
    }

    /// Ranks the row in O(N) (see `enumerate`); panics on a row that is not
    /// a state.
    fn state_index(&self, states: &StateBatch, i: usize) -> usize {
        rows::check(self, states);
        let t = &self.tables().rank;
        let w = self.n_sites + 1;
        let (mut k, mut colex, mut signs) = (0usize, 0usize, 0usize);
        for (c, &x) in states.row(i).iter().enumerate() {
            match x {
                UNASSIGNED => continue,
                UP => {}
                DOWN => signs |= 1 << k,
                _ => panic!("entry {x} is not -1/0/+1 in state {:?}", states.row(i)),
            }
            k += 1;
            colex += t.binom[c * w + k];
        }
        t.offset[k] + (colex << k) + signs
    }

    fn is_terminal(&self, states: &StateBatch, i: usize) -> bool {
        rows::check(self, states);
        self.n_assigned(states.row(i)) == self.n_sites
    }
}

/// The Boltzmann reward `ln R(x) = -beta E(x)`,
/// `E(x) = -J sum_<ij> x_i x_j - h sum_i x_i`, over the lattice's distinct
/// edges. Unassigned sites count as spin 0, so partial states get a finite
/// value too.
#[derive(Clone, Debug, PartialEq)]
pub struct IsingReward {
    side: usize,
    edges: Vec<[u32; 2]>,
    coupling: f64,
    field: f64,
    beta: f64,
}

impl IsingReward {
    /// Coupling `J`, field `h` and inverse temperature `beta`, all finite,
    /// and such that `|beta| (|J| n_edges + |h| N)` (the largest `|ln R|`) is
    /// finite. A negative `beta` is allowed: it is the same as negating `J`
    /// and `h`.
    pub fn new(env: &Ising, coupling: f64, field: f64, beta: f64) -> Result<Self, IsingError> {
        for (name, v) in [("coupling J", coupling), ("field h", field), ("beta", beta)] {
            if !v.is_finite() {
                return Err(IsingError::InvalidReward(format!(
                    "{name} = {v} (must be finite)"
                )));
            }
        }
        let bound =
            beta.abs() * (coupling.abs() * env.n_edges() as f64 + field.abs() * env.n_sites as f64);
        if !bound.is_finite() {
            return Err(IsingError::InvalidReward(format!(
                "beta = {beta}, J = {coupling}, h = {field}: |ln R| can reach {bound} (not finite)"
            )));
        }
        Ok(Self {
            side: env.side,
            edges: env.edges.clone(),
            coupling,
            field,
            beta,
        })
    }

    pub fn coupling(&self) -> f64 {
        self.coupling
    }

    pub fn field(&self) -> f64 {
        self.field
    }

    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// `(sum_<ij> x_i x_j, sum_i x_i)` of a state row.
    pub fn spin_sums(&self, row: &[i64]) -> (i64, i64) {
        assert_eq!(
            row.len(),
            self.side * self.side,
            "state row has the wrong width for this reward"
        );
        let pairs = self
            .edges
            .iter()
            .map(|&[i, j]| row[i as usize] * row[j as usize])
            .sum();
        let total = row
            .iter()
            .map(|&x| {
                assert!(
                    (DOWN..=UP).contains(&x),
                    "entry {x} is not -1/0/+1 in state {row:?}"
                );
                x
            })
            .sum();
        (pairs, total)
    }

    /// `E(x) = -J sum_<ij> x_i x_j - h sum_i x_i`.
    pub fn energy(&self, row: &[i64]) -> f64 {
        let (pairs, total) = self.spin_sums(row);
        -self.coupling * pairs as f64 - self.field * total as f64
    }

    /// `ln R(x) = -beta E(x)`.
    pub fn log_reward_of(&self, row: &[i64]) -> f64 {
        -self.beta * self.energy(row)
    }

    /// The ground states without enumeration, where they are known in closed
    /// form: `(max ln R, number of maximisers)`. With `b = beta J >= 0` the
    /// aligned configurations maximise both terms, giving
    /// `b |edges| + |beta h| N` (one state if `beta h != 0`, two if `h = 0`,
    /// all `2^N` if also `b = 0`); with `b < 0`, `h = 0` and an even side the
    /// two checkerboards give `|b| |edges|`. Odd antiferromagnets (frustrated)
    /// and antiferromagnets in a field return `None`. The count is `None` when
    /// it overflows `usize`.
    pub fn ground_states(&self) -> Option<(f64, Option<usize>)> {
        let (b_j, b_h) = (self.beta * self.coupling, self.beta * self.field);
        let (n_sites, n_edges) = (self.side * self.side, self.edges.len() as f64);
        if b_j >= 0.0 {
            let max = b_j * n_edges + b_h.abs() * n_sites as f64;
            let count = if b_h != 0.0 {
                Some(1)
            } else if b_j > 0.0 {
                Some(2)
            } else {
                u32::try_from(n_sites)
                    .ok()
                    .and_then(|n| 1usize.checked_shl(n))
                    .filter(|_| n_sites < usize::BITS as usize)
            };
            Some((max, count))
        } else if b_h == 0.0 && self.side.is_multiple_of(2) {
            Some((-b_j * n_edges, Some(2)))
        } else {
            None
        }
    }

    /// Errors when the reward was built for another lattice side.
    pub fn check_env(&self, env: &Ising) -> Result<(), IsingError> {
        if self.side != env.side {
            return Err(IsingError::RewardMismatch {
                expected: self.side,
                got: env.side,
            });
        }
        Ok(())
    }
}

impl LogReward for IsingReward {
    fn log_reward(&self, states: &StateBatch, out: &mut [f64]) {
        assert_eq!(out.len(), states.len(), "one log-reward per state");
        assert_eq!(
            states.width,
            self.side * self.side,
            "state batch width {} does not match the reward's N = {}",
            states.width,
            self.side * self.side
        );
        for (o, row) in out.iter_mut().zip(states.data.chunks_exact(states.width)) {
            *o = self.log_reward_of(row);
        }
    }
}
