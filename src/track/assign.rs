//! The pairing of people and boxes that is best over the whole picture (the Hungarian method),
//! as ByteTrack pairs them, rather than the best pair first.
//!
//! Best pair first goes wrong where people crowd: the track that overlaps two boxes a little
//! more with one of them takes it, and the track whose only box that was is left with nothing
//! (measured with `ronda eval-detector --tracking` on the annotated TUD clips: id switches
//! 106 -> 102 and swaps 32 -> 30 by day, people followed 2031 -> 2036 of 2585; README
//! "Lines, directions and counting").

/// The Hungarian method (Kuhn-Munkres with potentials, O(n^3)) on a square cost matrix, its
/// buffers kept between frames so a warm tracker does not allocate.
#[derive(Default)]
pub struct Pairing {
    worth: Vec<(f32, u32, u32)>,
    chosen: Vec<usize>,
    rest: Vec<(f32, u32, u32)>,
    rows: Vec<u32>,
    cols: Vec<u32>,
    cost: Vec<f64>,
    which: Vec<usize>,
    u: Vec<f64>,
    v: Vec<f64>,
    p: Vec<usize>,
    way: Vec<usize>,
    minv: Vec<f64>,
    used: Vec<bool>,
}

impl Pairing {
    /// `pairs` (IoU, track, detection), sorted best first and each at or above `bar`, reordered:
    /// the pairs of the best pairing first, then the rest, each part still best first. Each pair
    /// is worth its IoU above the bar, as ByteTrack's assignment with a cost limit weighs them.
    pub fn put_first(&mut self, pairs: &mut Vec<(f32, u32, u32)>, bar: f32) {
        let mut worth = std::mem::take(&mut self.worth);
        let mut chosen = std::mem::take(&mut self.chosen);
        worth.clear();
        worth.extend(pairs.iter().map(|&(iou, t, d)| (iou - bar + 1e-3, t, d)));
        self.best(&worth, &mut chosen);
        chosen.sort_unstable();
        self.rest.clear();
        let mut c = 0;
        let mut kept = 0;
        for k in 0..pairs.len() {
            if chosen.get(c) == Some(&k) {
                c += 1;
                pairs[kept] = pairs[k];
                kept += 1;
            } else {
                self.rest.push(pairs[k]);
            }
        }
        pairs.truncate(kept);
        pairs.extend_from_slice(&self.rest);
        self.worth = worth;
        self.chosen = chosen;
    }

    /// Of `pairs` (worth > 0, row, col), the set using no row or col twice whose summed worth is
    /// the largest: their indices into `pairs` go into `chosen` (cleared first, in no order).
    fn best(&mut self, pairs: &[(f32, u32, u32)], chosen: &mut Vec<usize>) {
        chosen.clear();
        if pairs.is_empty() {
            return;
        }
        self.rows.clear();
        self.rows.extend(pairs.iter().map(|p| p.1));
        self.rows.sort_unstable();
        self.rows.dedup();
        self.cols.clear();
        self.cols.extend(pairs.iter().map(|p| p.2));
        self.cols.sort_unstable();
        self.cols.dedup();
        if self.rows.len() == pairs.len() && self.cols.len() == pairs.len() {
            // nobody overlaps two boxes and no box two people (most pictures): every pair
            chosen.extend(0..pairs.len());
            return;
        }
        let n = self.rows.len().max(self.cols.len());
        // The cost of a pair is minus its worth; a row and col that are no pair cost 0: leaving
        // both unpaired (the padding of a rectangular problem is the same).
        self.cost.clear();
        self.cost.resize(n * n, 0.0);
        self.which.clear();
        self.which.resize(n * n, usize::MAX);
        for (k, &(w, r, c)) in pairs.iter().enumerate() {
            let i = self.rows.binary_search(&r).unwrap_or_default();
            let j = self.cols.binary_search(&c).unwrap_or_default();
            self.cost[i * n + j] = -f64::from(w);
            self.which[i * n + j] = k;
        }
        self.solve(n);
        for j in 1..=n {
            let i = self.p[j];
            if i != 0 {
                let k = self.which[(i - 1) * n + (j - 1)];
                if k != usize::MAX {
                    chosen.push(k);
                }
            }
        }
    }

    /// The least-cost assignment of `n` rows to `n` cols: `p[j]` is col j's row (1-based,
    /// index 0 is the method's own).
    fn solve(&mut self, n: usize) {
        for b in [&mut self.u, &mut self.v] {
            b.clear();
            b.resize(n + 1, 0.0);
        }
        for b in [&mut self.p, &mut self.way] {
            b.clear();
            b.resize(n + 1, 0);
        }
        for i in 1..=n {
            self.p[0] = i;
            let mut j0 = 0;
            self.minv.clear();
            self.minv.resize(n + 1, f64::INFINITY);
            self.used.clear();
            self.used.resize(n + 1, false);
            loop {
                self.used[j0] = true;
                let i0 = self.p[j0];
                let mut delta = f64::INFINITY;
                let mut j1 = 0;
                for j in 1..=n {
                    if self.used[j] {
                        continue;
                    }
                    let cur = self.cost[(i0 - 1) * n + (j - 1)] - self.u[i0] - self.v[j];
                    if cur < self.minv[j] {
                        self.minv[j] = cur;
                        self.way[j] = j0;
                    }
                    if self.minv[j] < delta {
                        delta = self.minv[j];
                        j1 = j;
                    }
                }
                for j in 0..=n {
                    if self.used[j] {
                        self.u[self.p[j]] += delta;
                        self.v[j] -= delta;
                    } else {
                        self.minv[j] -= delta;
                    }
                }
                j0 = j1;
                if self.p[j0] == 0 {
                    break;
                }
            }
            loop {
                let j1 = self.way[j0];
                self.p[j0] = self.p[j1];
                j0 = j1;
                if j0 == 0 {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn best(pairs: &[(f32, u32, u32)]) -> Vec<usize> {
        let mut out = Vec::new();
        Pairing::default().best(pairs, &mut out);
        out.sort_unstable();
        out
    }

    /// The largest summed worth over every set of pairs using no row or col twice.
    fn brute(pairs: &[(f32, u32, u32)]) -> f32 {
        fn go(pairs: &[(f32, u32, u32)], k: usize, rows: u32, cols: u32) -> f32 {
            if k == pairs.len() {
                return 0.0;
            }
            let skip = go(pairs, k + 1, rows, cols);
            let (w, r, c) = pairs[k];
            if rows & (1 << r) != 0 || cols & (1 << c) != 0 {
                return skip;
            }
            skip.max(w + go(pairs, k + 1, rows | 1 << r, cols | 1 << c))
        }
        go(pairs, 0, 0, 0)
    }

    #[test]
    fn the_best_sum_beats_the_best_pair_first() {
        // best pair first takes (0.9, 0, 0) and leaves row 1 with nothing
        assert_eq!(best(&[(0.9, 0, 0), (0.8, 0, 1), (0.7, 1, 0)]), vec![1, 2]);
        // rows and cols need not be numbered from 0 or be as many
        assert_eq!(best(&[(0.5, 7, 3), (0.4, 2, 3), (0.3, 2, 9)]), vec![0, 2]);
        assert!(best(&[]).is_empty());
    }

    #[test]
    fn the_best_pairing_goes_first_and_the_rest_after_each_best_first() {
        let mut pairs = vec![(0.9, 0, 0), (0.8, 0, 1), (0.7, 1, 0), (0.3, 2, 0)];
        Pairing::default().put_first(&mut pairs, 0.25);
        assert_eq!(
            pairs,
            vec![(0.8, 0, 1), (0.7, 1, 0), (0.9, 0, 0), (0.3, 2, 0)]
        );
    }

    proptest! {
        #[test]
        fn the_pairing_is_as_good_as_any(
            raw in proptest::collection::vec((0.01f32..1.0, 0u32..5, 0u32..6), 0..14)
        ) {
            // one worth per (row, col)
            let mut pairs: Vec<(f32, u32, u32)> = Vec::new();
            for p in raw {
                if !pairs.iter().any(|q| q.1 == p.1 && q.2 == p.2) {
                    pairs.push(p);
                }
            }
            let got = best(&pairs);
            let mut rows: Vec<u32> = got.iter().map(|&k| pairs[k].1).collect();
            let mut cols: Vec<u32> = got.iter().map(|&k| pairs[k].2).collect();
            rows.sort_unstable();
            rows.dedup();
            cols.sort_unstable();
            cols.dedup();
            prop_assert_eq!(rows.len(), got.len());
            prop_assert_eq!(cols.len(), got.len());
            let sum: f32 = got.iter().map(|&k| pairs[k].0).sum();
            prop_assert!((sum - brute(&pairs)).abs() < 1e-4, "{} against {}", sum, brute(&pairs));
        }
    }
}
