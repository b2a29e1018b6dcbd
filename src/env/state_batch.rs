//! The batch of states every environment, sampler, buffer and objective
//! passes around: rows of integers in one flat buffer. Fixed-width rows
//! (grids, bit strings, spin lattices) are found by arithmetic; ragged rows
//! (token sequences of any length, graphs) keep the end of each row. Both
//! layouts share one API, so samplers, replay and objectives never ask which
//! they hold; only an environment reads its rows' meaning.

/// A batch of states: `width` integers per row, or ragged rows (`width = 0`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct StateBatch {
    /// Every row's integers, row after row.
    pub data: Vec<i64>,
    /// Integers per row when all rows have the same size; 0 for ragged rows.
    pub width: usize,
    /// Ragged rows only: row `i` is `data[ends[i - 1]..ends[i]]` (from 0 for
    /// the first). Empty for fixed-width rows.
    ends: Vec<usize>,
}

impl StateBatch {
    /// Fixed-width rows of `width > 0` integers.
    pub fn new(data: Vec<i64>, width: usize) -> Self {
        assert!(
            width > 0 && data.len().is_multiple_of(width),
            "state data is not a whole number of rows"
        );
        Self {
            data,
            width,
            ends: Vec::new(),
        }
    }

    pub fn zeros(n: usize, width: usize) -> Self {
        Self::new(vec![0; n * width], width)
    }

    /// An empty batch in the layout of an environment's
    /// [`state_width`](super::Environment::state_width): rows of `width`
    /// integers, or ragged rows for `width = 0`.
    pub fn empty(width: usize) -> Self {
        Self {
            data: Vec::new(),
            width,
            ends: Vec::new(),
        }
    }

    /// Ragged rows, each of its own length (an empty row is a valid state,
    /// e.g. the empty token sequence).
    pub fn ragged<'a>(rows: impl IntoIterator<Item = &'a [i64]>) -> Self {
        let mut out = Self::empty(0);
        for r in rows {
            out.push_row(r);
        }
        out
    }

    /// Whether rows have their own lengths.
    pub fn is_ragged(&self) -> bool {
        self.width == 0
    }

    pub fn len(&self) -> usize {
        // Width 0 is the ragged layout: count the row ends instead.
        self.data
            .len()
            .checked_div(self.width)
            .unwrap_or(self.ends.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn bounds(&self, i: usize) -> (usize, usize) {
        if self.width > 0 {
            (i * self.width, (i + 1) * self.width)
        } else {
            (if i == 0 { 0 } else { self.ends[i - 1] }, self.ends[i])
        }
    }

    pub fn row(&self, i: usize) -> &[i64] {
        let (a, b) = self.bounds(i);
        &self.data[a..b]
    }

    /// Row `i`, to change in place (its length stays; see [`Self::set_row`]).
    pub fn row_mut(&mut self, i: usize) -> &mut [i64] {
        let (a, b) = self.bounds(i);
        &mut self.data[a..b]
    }

    /// The rows in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[i64]> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }

    /// A batch holding only rows `idx` (in that order).
    pub fn select(&self, idx: &[usize]) -> Self {
        let mut out = Self::empty(self.width);
        if self.width > 0 {
            out.data.reserve(idx.len() * self.width);
        }
        self.select_into(idx, &mut out);
        out
    }

    /// Like [`select`](Self::select), into `out` (same layout), reusing its
    /// allocation: what a per-step loop wants.
    pub fn select_into(&self, idx: &[usize], out: &mut StateBatch) {
        assert_eq!(
            out.width, self.width,
            "selecting into a batch of another width"
        );
        out.clear();
        for &i in idx {
            out.push_row(self.row(i));
        }
    }

    /// Appends a row (of exactly `width` integers for fixed-width rows).
    pub fn push_row(&mut self, row: &[i64]) {
        if self.width > 0 {
            assert_eq!(row.len(), self.width, "a row of another width");
        }
        self.data.extend_from_slice(row);
        if self.width == 0 {
            self.ends.push(self.data.len());
        }
    }

    /// Rewrites every row through `edit(i, row)` (rows may change length):
    /// the step of a ragged environment. The result is ragged.
    pub fn edit_rows(&mut self, mut edit: impl FnMut(usize, &mut Vec<i64>)) {
        let mut out = StateBatch::empty(0);
        out.data.reserve(self.data.len() + self.len());
        let mut row = Vec::new();
        for i in 0..self.len() {
            row.clear();
            row.extend_from_slice(self.row(i));
            edit(i, &mut row);
            out.push_row(&row);
        }
        *self = out;
    }

    /// Appends every row of `other` (same layout).
    pub fn extend_from(&mut self, other: &StateBatch) {
        assert_eq!(other.width, self.width, "appending rows of another width");
        let base = self.data.len();
        self.data.extend_from_slice(&other.data);
        self.ends.extend(other.ends.iter().map(|e| base + e));
    }

    /// Removes every row, keeping the layout and the allocation.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Replaces row `i`; a ragged row may change length (the rows after it
    /// move: a step that grows many rows should rebuild the batch instead).
    pub fn set_row(&mut self, i: usize, row: &[i64]) {
        let (a, b) = self.bounds(i);
        if self.width > 0 {
            assert_eq!(row.len(), self.width, "a row of another width");
            self.data[a..b].copy_from_slice(row);
            return;
        }
        self.data.splice(a..b, row.iter().copied());
        let shift = row.len() as isize - (b - a) as isize;
        for e in &mut self.ends[i..] {
            *e = (*e as isize + shift) as usize;
        }
    }
}

/// The distinct rows of a batch, in order of first appearance: a policy
/// evaluates each distinct state once and reads every row from it (states
/// repeat within a batch wherever trajectories share a start or meet, as all
/// hypergrid trajectories do near the origin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistinctRows {
    /// The first row holding each distinct state.
    pub first: Vec<usize>,
    /// The distinct state (index into `first`) of every row.
    pub of_row: Vec<usize>,
}

impl DistinctRows {
    /// Number of distinct states.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Whether no state repeats (then nothing is gained by deduplicating).
    pub fn all_distinct(&self) -> bool {
        self.first.len() == self.of_row.len()
    }
}

impl StateBatch {
    /// Finds the distinct rows (one hash-map pass).
    ///
    /// ```
    /// use ftb::env::StateBatch;
    /// let b = StateBatch::new(vec![0, 0, 1, 0, 0, 0, 1, 1], 2);
    /// let d = b.distinct_rows();
    /// assert_eq!(d.first, vec![0, 1, 3]);
    /// assert_eq!(d.of_row, vec![0, 1, 0, 2]);
    /// ```
    pub fn distinct_rows(&self) -> DistinctRows {
        self.distinct_by(|r| self.row(r))
    }

    /// The distinct `(row, tag)` pairs: rows equal as states but with
    /// different tags (e.g. the bits of their trajectories' betas, which a
    /// conditioned policy reads) stay apart. `tags` has one entry per row.
    pub fn distinct_rows_tagged(&self, tags: &[u64]) -> DistinctRows {
        assert_eq!(tags.len(), self.len(), "one tag per row");
        self.distinct_by(|r| (self.row(r), tags[r]))
    }

    /// Rows grouped by `key(row)`: the first row of each distinct key, and
    /// each row's group, in order of first appearance.
    fn distinct_by<K: std::hash::Hash + Eq>(&self, key: impl Fn(usize) -> K) -> DistinctRows {
        let n = self.len();
        let mut seen: rustc_hash::FxHashMap<K, usize> =
            rustc_hash::FxHashMap::with_capacity_and_hasher(n, Default::default());
        let mut first = Vec::new();
        let of_row = (0..n)
            .map(|r| {
                *seen.entry(key(r)).or_insert_with(|| {
                    first.push(r);
                    first.len() - 1
                })
            })
            .collect();
        DistinctRows { first, of_row }
    }

    /// The distinct rows for a policy that may read each row's beta: by
    /// state alone when every beta is the same (no conditioning, or one
    /// evaluation beta), by `(state, beta)` otherwise.
    pub fn distinct_rows_with_betas(&self, betas: &[f64]) -> DistinctRows {
        match betas.first() {
            Some(b0) if betas.iter().any(|b| b != b0) => {
                let tags: Vec<u64> = betas.iter().map(|b| b.to_bits()).collect();
                self.distinct_rows_tagged(&tags)
            }
            _ => self.distinct_rows(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ragged_rows_keep_their_lengths_through_every_operation() {
        let rows: [&[i64]; 4] = [&[], &[3], &[1, 2, 5], &[7, 7]];
        let b = StateBatch::ragged(rows);
        assert!(b.is_ragged());
        assert_eq!(b.len(), 4);
        assert_eq!(b.rows().collect::<Vec<_>>(), rows);
        let s = b.select(&[2, 0, 2]);
        assert_eq!(s.rows().collect::<Vec<_>>(), [rows[2], rows[0], rows[2]]);
        let mut t = StateBatch::empty(0);
        t.extend_from(&s);
        t.extend_from(&b);
        assert_eq!(t.len(), 7);
        assert_eq!(t.row(6), rows[3]);
        t.set_row(1, &[9, 9, 9]);
        assert_eq!(t.row(0), rows[2]);
        assert_eq!(t.row(1), &[9, 9, 9]);
        assert_eq!(t.row(2), rows[2]);
        assert_eq!(t.row(6), rows[3]);
        t.set_row(0, &[]);
        assert_eq!(t.row(0), &[] as &[i64]);
        assert_eq!(t.row(1), &[9, 9, 9]);
        t.clear();
        assert!(t.is_empty() && t.is_ragged());
    }

    #[test]
    fn fixed_rows_index_by_arithmetic() {
        let b = StateBatch::new(vec![1, 2, 3, 4, 5, 6], 2);
        assert!(!b.is_ragged());
        assert_eq!(b.select(&[2, 0]).data, vec![5, 6, 1, 2]);
        let mut c = StateBatch::empty(2);
        c.extend_from(&b);
        c.set_row(1, &[0, 0]);
        assert_eq!(c.data, vec![1, 2, 0, 0, 5, 6]);
        assert_eq!(c, {
            let mut d = StateBatch::zeros(0, 2);
            d.push_row(&[1, 2]);
            d.push_row(&[0, 0]);
            d.push_row(&[5, 6]);
            d
        });
    }

    #[test]
    fn distinct_rows_map_every_row_to_its_first_occurrence() {
        let rows: [&[i64]; 6] = [&[1], &[], &[1], &[1, 0], &[], &[1]];
        let d = StateBatch::ragged(rows).distinct_rows();
        assert_eq!(d.first, vec![0, 1, 3]);
        assert_eq!(d.of_row, vec![0, 1, 0, 2, 1, 0]);
        assert!(!d.all_distinct());
        for (r, &u) in d.of_row.iter().enumerate() {
            assert_eq!(rows[d.first[u]], rows[r]);
        }
        let all = StateBatch::new(vec![1, 2, 3], 1).distinct_rows();
        assert!(all.all_distinct() && all.len() == 3);
        assert!(StateBatch::empty(2).distinct_rows().is_empty());
    }

    #[test]
    fn tagged_rows_are_distinct_per_tag() {
        let b = StateBatch::new(vec![0, 1, 0, 1, 2], 1);
        let d = b.distinct_rows_tagged(&[7, 7, 8, 7, 7]);
        assert_eq!(d.first, vec![0, 1, 2, 4]);
        assert_eq!(d.of_row, vec![0, 1, 2, 1, 3]);
        // Equal betas deduplicate by state alone; different ones by both.
        assert_eq!(b.distinct_rows_with_betas(&[2.0; 5]), b.distinct_rows());
        assert_eq!(b.distinct_rows_with_betas(&[]), b.distinct_rows());
        let e = b.distinct_rows_with_betas(&[1.0, 1.0, 2.0, 1.0, 1.0]);
        assert_eq!(e.first, vec![0, 1, 2, 4]);
    }

    #[test]
    #[should_panic(expected = "another width")]
    fn fixed_rows_refuse_other_widths() {
        StateBatch::zeros(1, 3).push_row(&[1, 2]);
    }
}
