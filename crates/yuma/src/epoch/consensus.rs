//! Consensus (stake-weighted column quantiles), clipping and the bonds-penalty interpolation.

use super::{Csr, ascending, normalize, sum};
use crate::fixed::{I32F32, UnitFactor};

/// `weighted_median_col_sparse`: the stake-weighted `kappa`-quantile of every column over the
/// rows with positive active stake.
///
/// The reference runs a partition search per column over the scores of all those rows (absent
/// entries scoring 0), pivoting on the middle candidate. Because fixed-point addition is exact,
/// that search always ends on the same value, whatever the pivots: with `m = T - kappa`
/// (`T` the renormalized stake total), `L(v)` / `LE(v)` the stake of the scores `< v` / `<= v`,
/// it returns the unique score `v` with `L(v) <= m < LE(v)`, the smallest score when `m < 0`
/// and the largest when `m >= T`. (Its invariants: the candidate list is always every score in
/// an open interval, `lo` the stake below it, `hi` the stake up to its top; each round removes
/// the pivot, so the iteration cap is never reached.)
///
/// This implementation uses that: the zero scores form one group of stake `Z`; if there are
/// zero scores and `m < Z` the result is 0, otherwise the search runs over the positive scores
/// only, starting from `lo = Z`: first narrowed by value buckets ([`quantile`]), then the same
/// partition search. The order of a column's scores does not matter either, so they are
/// gathered while the weights are read (see [`MedianBuffers`]). The differential tests check
/// it against the literal transcription.
#[inline(never)] // a stage: kept separate for profiling
pub(super) fn weighted_median_cols(
    voters: &mut MedianBuffers,
    n: usize,
    majority: I32F32,
) -> Vec<I32F32> {
    let mut median = vec![I32F32::ZERO; n];
    let k = voters.count;
    if k == 0 {
        return median;
    }
    let minority = voters.total.saturating_sub(majority);
    let MedianBuffers {
        starts,
        next,
        candidates,
        spare,
        keys,
        total,
        stakes,
        ..
    } = voters;
    if spare.len() < k {
        spare.resize(k, Candidate::default());
    }
    if keys.len() < k {
        keys.resize(k, 0);
    }
    let mut scratch = Scratch {
        spare: spare.get_mut(..k).unwrap_or(&mut []),
        keys: keys.get_mut(..k).unwrap_or(&mut []),
    };
    // Column j's candidates: from its start to where dealing stopped (its next free slot).
    let mut rest: &mut [Candidate] = candidates.as_mut_slice();
    let mut at = 0usize;
    for ((med, &start), &filled) in median.iter_mut().zip(starts.iter()).zip(next.iter()) {
        let taken = core::mem::take(&mut rest);
        let (_, from_start) = taken
            .split_at_mut_checked(start.saturating_sub(at))
            .unwrap_or((&mut [], &mut []));
        let (column, tail) = from_start
            .split_at_mut_checked(filled.saturating_sub(start))
            .unwrap_or((&mut [], &mut []));
        rest = tail;
        at = filled.max(start);
        *med = column_quantile(column, k, *total, minority, stakes, &mut scratch);
    }
    median
}

/// The rows that vote in consensus (positive active stake, in uid order) with their stake
/// renormalized, and each column's positive scores from those rows (column lists, built while
/// the weights are read: [`MedianBuffers::count`], [`MedianBuffers::layout`],
/// [`MedianBuffers::deal`]).
#[derive(Debug, Default)]
pub(super) struct MedianBuffers {
    /// Per uid: the renormalized stake of a voter, 0 for other uids.
    row_stake: Vec<I32F32>,
    /// Number of voters and their renormalized total.
    count: usize,
    total: I32F32,
    /// Column `j`'s candidates start at `starts[j]`; `next[j]` is its next free slot (the
    /// count before `layout`), so they end there once dealt.
    starts: Vec<usize>,
    next: Vec<usize>,
    candidates: Vec<Candidate>,
    spare: Vec<Candidate>,
    keys: Vec<u8>,
    selected: Vec<I32F32>,
    /// Per voter (in uid order), its renormalized stake's bits.
    stakes: Vec<i64>,
}

impl MedianBuffers {
    /// Selects the voters from the active stake and prepares empty column lists for `n`
    /// columns.
    pub(super) fn select(&mut self, stake: &[I32F32], n: usize) {
        self.selected.clear();
        self.selected
            .extend(stake.iter().copied().filter(|&s| s > I32F32::ZERO));
        normalize(&mut self.selected);
        self.total = sum(&self.selected);
        self.count = self.selected.len();
        self.stakes.clear();
        self.stakes
            .extend(self.selected.iter().map(|s| s.to_bits()));
        let mut renormalized = self.selected.iter();
        self.row_stake.clear();
        self.row_stake.extend(stake.iter().map(|&s| {
            if s > I32F32::ZERO {
                renormalized.next().copied().unwrap_or(I32F32::ZERO)
            } else {
                I32F32::ZERO
            }
        }));
        self.next.clear();
        self.next.resize(n, 0);
        self.starts.clear();
    }

    /// Whether uid `i` votes.
    #[inline]
    pub(super) fn is_voter(&self, i: usize) -> bool {
        self.row_stake.get(i).is_some_and(|&s| s > I32F32::ZERO)
    }

    /// Counts a voter's positive scores per column (its normalized row).
    #[inline(never)] // keeps the loop's registers to itself
    pub(super) fn count(&mut self, cols: &[u16], vals: &[I32F32]) {
        for (&j, &v) in cols.iter().zip(vals) {
            if let Some(c) = self.next.get_mut(usize::from(j)) {
                *c = c.wrapping_add(usize::from(v > I32F32::ZERO));
            }
        }
    }

    /// Turns the counts into column starts (each column with one spare slot: dealing writes
    /// every score and keeps the positive ones).
    pub(super) fn layout(&mut self) {
        let mut at = 0usize;
        self.starts.push(0);
        for c in self.next.iter_mut() {
            let count = *c;
            *c = at;
            at = at.saturating_add(count).saturating_add(1);
            self.starts.push(at);
        }
        if self.candidates.len() < at {
            self.candidates.resize(at, Candidate::default());
        }
    }

    /// Deals the voters' positive scores (their normalized rows in `weights`) into their
    /// columns, in uid order (the order of a column's candidates does not matter).
    #[inline(never)] // a stage: kept separate for profiling
    pub(super) fn deal(&mut self, weights: &Csr) {
        let MedianBuffers {
            row_stake,
            next,
            candidates,
            ..
        } = self;
        let mut voter = 0u64;
        for ((cols, vals), &stake) in weights.rows().zip(row_stake.iter()) {
            if stake > I32F32::ZERO {
                deal_entries(cols, vals, voter, next, candidates);
                voter = voter.wrapping_add(1);
            }
        }
    }
}

/// Deals one voter's entries (voter index `voter`) into their columns' next free candidate
/// slots.
#[inline(never)] // keeps the loop's registers to itself
fn deal_entries(
    cols: &[u16],
    vals: &[I32F32],
    voter: u64,
    next: &mut [usize],
    candidates: &mut [Candidate],
) {
    for (&j, &score) in cols.iter().zip(vals) {
        if let Some(at) = next.get_mut(usize::from(j)) {
            // Branch-free: written always (each column has a spare slot), kept (the slot
            // advanced) for a positive score (normalized: at most 1).
            if let Some(slot) = candidates.get_mut(*at) {
                *slot = Candidate::new(score, voter);
            }
            *at = at.wrapping_add(usize::from(score > I32F32::ZERO));
        }
    }
}

/// Per-column working memory of [`column_quantile`] (`k` slots each).
struct Scratch<'a> {
    spare: &'a mut [Candidate],
    keys: &'a mut [u8],
}

/// One column's quantile from its positive scores (`candidates`, in any order) out of the `k`
/// selected rows: 0 when the zero scores' stake already exceeds the minority, otherwise
/// [`quantile`] over the positive scores.
fn column_quantile(
    candidates: &mut [Candidate],
    k: usize,
    total: I32F32,
    minority: I32F32,
    stakes: &[i64],
    scratch: &mut Scratch<'_>,
) -> I32F32 {
    if candidates.is_empty() {
        return I32F32::ZERO; // every score is 0
    }
    // Stakes are normalized, so no sum of them can overflow.
    let positive_stake = candidates
        .iter()
        .fold(0i64, |acc, c| acc.wrapping_add(c.stake(stakes)));
    let zero_stake = total.saturating_sub(I32F32::from_bits(positive_stake));
    if candidates.len() < k && minority < zero_stake {
        return I32F32::ZERO; // the quantile falls in the zero group
    }
    quantile(candidates, minority, zero_stake, total, stakes, scratch)
}

/// One voter's entry in a column: its score (in bits, at most 2^32) and the voter's index
/// (below 2^16; its stake is `stakes[index]`), packed as `score << 16 | index` so that a
/// column's candidates take 8 bytes each.
#[derive(Clone, Copy, Debug, Default)]
struct Candidate(u64);

impl Candidate {
    #[inline(always)]
    fn new(score: I32F32, voter: u64) -> Self {
        Self(((score.to_bits() as u64) << 16) | voter)
    }

    /// The score's bits.
    #[inline(always)]
    fn score(self) -> i64 {
        (self.0 >> 16) as i64
    }

    /// The voter's stake bits.
    #[inline(always)]
    fn stake(self, stakes: &[i64]) -> i64 {
        stakes.get((self.0 & 0xFFFF) as usize).copied().unwrap_or(0)
    }
}

/// The stake-weighted quantile of `candidates` (a column's positive scores; the window
/// `[lo, hi]` as in [`weighted_median`]): the value `v` with `L(v) <= m < LE(v)`, found by
/// value buckets before the partition search.
///
/// One pass sorts the scores into 32 buckets of equal width from the smallest score (the
/// width a power of two, 1/8 to 1/16 of the distance from the smallest score to the mean, or
/// 1; the last bucket takes everything above) and sums their stake. The bucket where the
/// running stake (from `lo`) first exceeds `m` holds the result (the first non-empty one when
/// `m < lo`, the last one when no running stake exceeds `m`). Its scores are every score of a
/// value interval, with `lo` the stake below it: the partition search's invariant, so the
/// search continues on them alone. A bucket holding more than half of the list ends the
/// bucketing.
fn quantile(
    candidates: &mut [Candidate],
    minority: I32F32,
    mut lo: I32F32,
    mut hi: I32F32,
    stakes: &[i64],
    scratch: &mut Scratch<'_>,
) -> I32F32 {
    const BUCKETS: usize = 32;
    const LAST_BUCKET: u64 = 31;
    let keys = &mut *scratch.keys;
    let mut src: &mut [Candidate] = candidates;
    let mut dst: &mut [Candidate] = &mut *scratch.spare;
    while src.len() > 8 {
        // Scores are positive and at most 1 (2^32 in bits): sums of at most 65535 fit.
        let (mut min, mut sum) = (i64::MAX, 0u64);
        for c in src.iter() {
            min = min.min(c.score());
            sum = sum.wrapping_add(c.score() as u64);
        }
        let mean = sum.checked_div(src.len() as u64).unwrap_or(0);
        let spread = mean.wrapping_sub(min as u64);
        let shift = 64u32.wrapping_sub(spread.leading_zeros()).saturating_sub(4);
        let mut stake = [0i64; BUCKETS];
        let mut count = [0u32; BUCKETS];
        for (c, key) in src.iter().zip(keys.iter_mut()) {
            let offset = (c.score().wrapping_sub(min) as u64).wrapping_shr(shift);
            let b = offset.min(LAST_BUCKET) as usize;
            *key = b as u8;
            if let (Some(s), Some(n)) = (stake.get_mut(b), count.get_mut(b)) {
                *s = s.wrapping_add(c.stake(stakes));
                *n = n.wrapping_add(1);
            }
        }
        // The bucket holding the quantile, and the stake below it.
        let mut target = 0usize;
        let mut below = lo;
        let mut running = lo;
        for (b, (&s, &n)) in stake.iter().zip(&count).enumerate() {
            if n == 0 {
                continue;
            }
            target = b;
            below = running;
            running = running.saturating_add(I32F32::from_bits(s));
            if minority < running {
                break;
            }
        }
        let len = count.get(target).map_or(0, |&n| n as usize);
        if len.saturating_mul(2) > src.len() || dst.len() < len {
            break; // poor split: leave the rest to the partition search
        }
        let Some(out) = core::mem::take(&mut dst).get_mut(..len) else {
            break;
        };
        let mut k = 0usize;
        for (c, &key) in src.iter().zip(keys.iter()) {
            if let Some(slot) = out.get_mut(k) {
                *slot = *c;
            }
            k = k.wrapping_add(usize::from(usize::from(key) == target));
        }
        lo = below;
        hi = below.saturating_add(I32F32::from_bits(stake.get(target).copied().unwrap_or(0)));
        let rest = core::mem::take(&mut src);
        src = out;
        dst = rest;
    }
    weighted_median(src, minority, lo, hi, stakes, dst)
}

/// `weighted_median`'s partition search over `candidates` (a column's positive scores),
/// starting from the window `[lo, hi]`.
///
/// Each round splits the candidate list around its middle element into the scores below and
/// above it, written to the front and the back of the other buffer (`spare`, at least as long
/// as `candidates`), and continues on one side. The order inside a side is not the
/// reference's, which changes the pivots but not the result (see [`weighted_median_cols`]).
fn weighted_median(
    candidates: &mut [Candidate],
    minority: I32F32,
    mut lo: I32F32,
    mut hi: I32F32,
    stakes: &[i64],
    spare: &mut [Candidate],
) -> I32F32 {
    let limit = candidates.len();
    let mut src: &mut [Candidate] = candidates;
    let mut dst: &mut [Candidate] = spare;
    let mut rounds = 0usize;
    loop {
        let len = src.len();
        let Some(pivot) = src.get(len / 2).map(|c| c.score()) else {
            return I32F32::ZERO; // empty list
        };
        if len == 1 {
            return I32F32::from_bits(pivot);
        }
        let Some(out) = dst.get_mut(..len) else {
            return I32F32::ZERO; // unreachable: spare holds every candidate
        };
        // Branch-free partition: every candidate is written to both ends, and the end it
        // belongs to advances. Stakes are normalized, so the sums cannot overflow (see
        // `weighted_median_cols`).
        let (mut n_lo, mut n_hi) = (0usize, 0usize);
        let (mut lo_stake, mut hi_stake) = (0i64, 0i64);
        let last = len.wrapping_sub(1);
        for &cand in src.iter() {
            let below = cand.score() < pivot;
            let above = cand.score() > pivot;
            if let Some(slot) = out.get_mut(n_lo) {
                *slot = cand;
            }
            if let Some(slot) = out.get_mut(last.wrapping_sub(n_hi)) {
                *slot = cand;
            }
            n_lo = n_lo.wrapping_add(usize::from(below));
            n_hi = n_hi.wrapping_add(usize::from(above));
            let st = cand.stake(stakes);
            lo_stake = lo_stake.wrapping_add(st & i64::from(below).wrapping_neg());
            hi_stake = hi_stake.wrapping_add(st & i64::from(above).wrapping_neg());
        }
        let (lo_stake, hi_stake) = (I32F32::from_bits(lo_stake), I32F32::from_bits(hi_stake));
        let next = if minority < lo.saturating_add(lo_stake) && n_lo > 0 {
            hi = lo.saturating_add(lo_stake);
            out.get_mut(..n_lo)
        } else if hi.saturating_sub(hi_stake) <= minority && n_hi > 0 {
            lo = hi.saturating_sub(hi_stake);
            out.get_mut(len.wrapping_sub(n_hi)..)
        } else {
            return I32F32::from_bits(pivot);
        };
        let Some(next) = next else {
            return I32F32::ZERO; // unreachable: both ends lie within `out`
        };
        let rest = core::mem::take(&mut src);
        dst = rest;
        src = next;
        rounds = rounds.saturating_add(1);
        if rounds > limit {
            return I32F32::ZERO;
        }
    }
}

/// Per column, while clipping: the consensus, the rank so far and (for the fused bond pass)
/// the EMA's column sum so far.
#[derive(Clone, Copy, Debug)]
pub(super) struct ColumnState {
    pub(super) consensus: I32F32,
    pub(super) rank: I32F32,
    pub(super) ema_sum: i64,
    /// The fused bond pass's bond term for the row being built (with a presence bit), 0
    /// otherwise.
    pub(super) pending: i64,
}

impl ColumnState {
    pub(super) fn new(consensus: I32F32) -> Self {
        Self {
            consensus,
            rank: I32F32::ZERO,
            ema_sum: 0,
            pending: 0,
        }
    }

    /// `col_clip_sparse` of one entry `v` of this column: whether the entry is kept (1) or
    /// removed (0; clipped to a zero consensus), and the value it adds to sums (the clipped
    /// value, 0 when removed). Branch-free.
    #[inline(always)]
    pub(super) fn clip(&self, v: I32F32) -> (usize, I32F32) {
        let th = self.consensus;
        let keep = v <= th || th > I32F32::ZERO;
        let added = I32F32::from_bits(v.min_of(th).to_bits() & i64::from(keep).wrapping_neg());
        (usize::from(keep), added)
    }
}

/// `col_clip_sparse`: `out` becomes `m` with the entries above their column's consensus set to
/// the consensus, or removed when the consensus is 0. Also accumulates `row_sum_sparse` of the
/// result into `row_sums` and `matmul_sparse(result, stake)` into `col_ranks`.
///
/// All values are non-negative, so the reference's saturating sums equal exact sums clamped
/// at the maximum: row sums are accumulated exactly (in 128 bits) and clamped; a rank is at
/// most its consensus times the stake total (<= 1), so its sum cannot overflow.
#[inline(never)] // a stage: kept separate for profiling
pub(super) fn clip(
    m: &Csr,
    threshold: &[I32F32],
    stake: &[I32F32],
    out: &mut Csr,
    row_sums: &mut [I32F32],
    col_ranks: &mut [I32F32],
) {
    // Per column: (consensus, rank so far).
    let mut columns: Vec<ColumnState> = threshold.iter().map(|&c| ColumnState::new(c)).collect();
    out.clear();
    for (((cols, vals), row_sum), &scale) in m.rows().zip(row_sums).zip(stake) {
        if cols.is_empty() {
            out.end_row();
            continue;
        }
        let (out_cols, out_vals) = out.slots(cols.len());
        // Active stake is normalized (each at most 1); the general product otherwise.
        let (k, total) = match UnitFactor::new(scale) {
            Some(f) => clip_row(cols, vals, |x| f.times(x), &mut columns, out_cols, out_vals),
            None => clip_row(
                cols,
                vals,
                |x| scale.saturating_mul(x),
                &mut columns,
                out_cols,
                out_vals,
            ),
        };
        *row_sum = total;
        out.finish_row(k);
    }
    for (rank, column) in col_ranks.iter_mut().zip(columns) {
        *rank = column.rank;
    }
}

/// [`clip`] of one row; returns the number of entries kept and the row sum.
#[inline(never)] // keeps the loop's registers to itself
pub(super) fn clip_row(
    cols: &[u16],
    vals: &[I32F32],
    scale: impl Fn(I32F32) -> I32F32,
    columns: &mut [ColumnState],
    out_cols: &mut [u16],
    out_vals: &mut [I32F32],
) -> (usize, I32F32) {
    let mut k = 0usize;
    let mut total = 0i128;
    for (&j, &v) in cols.iter().zip(vals) {
        let Some(column) = columns.get_mut(usize::from(j)) else {
            continue; // unreachable: weight columns are < n
        };
        let (k_next, added) = column.clip(v);
        if let (Some(c), Some(x)) = (out_cols.get_mut(k), out_vals.get_mut(k)) {
            *c = j;
            *x = v.min_of(column.consensus);
        }
        k = k.wrapping_add(k_next);
        total = total.wrapping_add(i128::from(added.to_bits()));
        column.rank = I32F32::from_bits(column.rank.to_bits().wrapping_add(scale(added).to_bits()));
    }
    let total = i64::try_from(total).unwrap_or(i64::MAX);
    (k, I32F32::from_bits(total))
}

/// `interpolate_sparse(weights, clipped, n, ratio)` for `0 < ratio < 1`: per row, over all
/// columns in ascending order, `w + ratio * (c - w)`, keeping positive values.
///
/// The clipped row holds a subset of the weight row's columns in the same order, so only those
/// columns can be non-zero.
#[inline(never)] // a stage: kept separate for profiling
pub(super) fn interpolate(weights: &Csr, clipped: &Csr, ratio: I32F32, out: &mut Csr) {
    out.clear();
    let mut tmp: Vec<(u16, I32F32)> = Vec::new();
    for ((wc, wv), (cc, cv)) in weights.rows().zip(clipped.rows()) {
        let (out_cols, out_vals) = out.slots(wc.len());
        let mut k = 0usize;
        let mut clipped_iter = cc.iter().zip(cv).peekable();
        for (&j, &v1) in wc.iter().zip(wv) {
            let v2 = clipped_iter
                .next_if(|&(&cj, _)| cj == j)
                .map_or(I32F32::ZERO, |(_, &c)| c);
            let value = v1.saturating_add(ratio.saturating_mul(v2.saturating_sub(v1)));
            if let (Some(c), Some(x)) = (out_cols.get_mut(k), out_vals.get_mut(k)) {
                *c = j;
                *x = value;
            }
            k = k.wrapping_add(usize::from(value > I32F32::ZERO));
        }
        if !ascending(wc) {
            // The reference rebuilds the row over the columns in ascending order.
            let (cols, vals) = (out_cols.get_mut(..k).unwrap_or(&mut []), out_vals);
            tmp.clear();
            tmp.extend(cols.iter().copied().zip(vals.iter().copied()));
            tmp.sort_unstable_by_key(|&(j, _)| j);
            for ((c, x), &(j, v)) in cols.iter_mut().zip(vals.iter_mut()).zip(&tmp) {
                *c = j;
                *x = v;
            }
        }
        out.finish_row(k);
    }
}
