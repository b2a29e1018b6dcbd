//! Numbers for README "Molecules" on the shipped reaction library (cargo
//! feature `chem`): the forward masks of all building blocks (time,
//! template-pattern candidates against allowed reactions), uniform rollouts
//! and the number of parents of their terminal states.
//!
//! `cargo run --release --features chem --example reaction_stats -- MAX_REACTIONS ROLLOUTS`
use ftb::env::conformance::sample_terminals;
use ftb::env::molecule::reaction::{ReactionLibrary, ReactionMolecules};
use ftb::env::{Environment, StateBatch};
use std::time::Instant;
fn main() {
    let t = Instant::now();
    let lib = ReactionLibrary::shipped();
    println!("load {:?}", t.elapsed());
    let r: usize = std::env::args().nth(1).map_or(2, |s| s.parse().unwrap());
    let n: usize = std::env::args().nth(2).map_or(64, |s| s.parse().unwrap());
    let env = ReactionMolecules::new(lib, r).unwrap();
    let lib = env.library();
    let mut cand = 0;
    for b in 0..lib.n_bb() {
        let m = ftb::chem::parse(&lib.building_blocks[b]).unwrap();
        for &u in &lib.uni {
            if lib.templates[u].reactant_matches(&m, 0) {
                cand += 1;
            }
        }
        for (k, &t) in lib.bi.iter().enumerate() {
            let mut s = std::collections::BTreeSet::new();
            if lib.templates[t].reactant_matches(&m, 0) {
                for x in 0..lib.n_bb() {
                    if lib.templates[t]
                        .reactant_matches(&ftb::chem::parse(&lib.building_blocks[x]).unwrap(), 1)
                    {
                        s.insert(x);
                    }
                }
            }
            if lib.templates[t].reactant_matches(&m, 1) {
                for x in 0..lib.n_bb() {
                    if lib.templates[t]
                        .reactant_matches(&ftb::chem::parse(&lib.building_blocks[x]).unwrap(), 0)
                    {
                        s.insert(x);
                    }
                }
            }
            cand += s.len();
            let _ = k;
        }
    }
    let rows: Vec<Vec<i64>> = lib
        .building_blocks
        .iter()
        .map(|s| ReactionMolecules::row_of(1, s))
        .collect();
    let states = StateBatch::ragged(rows.iter().map(|r| &r[..]));
    let na = env.n_actions();
    let mut m = vec![false; states.len() * na];
    let t = Instant::now();
    env.forward_mask(&states, &mut m);
    let allowed = m
        .chunks(na)
        .map(|c| c[..na - 1].iter().filter(|&&x| x).count())
        .sum::<usize>();
    let dead = m
        .chunks(na)
        .filter(|c| c[..na - 1].iter().all(|&x| !x))
        .count();
    println!(
        "forward masks of the {} building blocks: {:?}; pattern candidates {cand}, allowed reactions {allowed}; {dead} building blocks allow no reaction",
        lib.n_bb(),
        t.elapsed()
    );
    let t = Instant::now();
    let term = sample_terminals(&env, 0, n).unwrap();
    println!(
        "{n} uniform rollouts (max_reactions {r}): {:?}",
        t.elapsed()
    );
    let nb = env.n_backward_actions();
    let mut bm = vec![false; term.len() * nb];
    let t = Instant::now();
    env.backward_mask(&term, &mut bm);
    println!("backward masks of the terminals: {:?}", t.elapsed());
    let mut hist = std::collections::BTreeMap::new();
    for i in 0..term.len() {
        let c = bm[i * nb..(i + 1) * nb].iter().filter(|&&x| x).count();
        *hist.entry((term.row(i)[0], c)).or_insert(0) += 1;
    }
    println!("(n, parents) -> count: {hist:?}");
}
