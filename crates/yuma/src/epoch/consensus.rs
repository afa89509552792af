//! Consensus (stake-weighted column quantiles), clipping and the bonds-penalty interpolation.

use super::{Csr, ascending, normalize, sum};
use crate::fixed::I32F32;

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
/// zero scores and `m < Z` the result is 0, otherwise the same partition search runs over the
/// positive scores only, starting from `lo = Z`. The differential tests check it against the
/// literal transcription.
#[inline(never)] // a stage: kept separate for profiling
pub(super) fn weighted_median_cols(
    stake: &[I32F32],
    weights: &Csr,
    n: usize,
    majority: I32F32,
    buffers: &mut MedianBuffers,
) -> Vec<I32F32> {
    let mut median = vec![I32F32::ZERO; n];
    // Rows with positive stake, in uid order; their stake renormalized.
    let mut selected: Vec<usize> = Vec::new();
    let mut use_stake: Vec<I32F32> = Vec::new();
    for (i, &s) in stake.iter().enumerate() {
        if s > I32F32::ZERO {
            selected.push(i);
            use_stake.push(s);
        }
    }
    normalize(&mut use_stake);
    let total = sum(&use_stake);
    let minority = total.saturating_sub(majority);
    let k = selected.len();
    if k == 0 {
        return median;
    }

    // One cursor per selected row, walking it in ascending column order (a row stored in
    // another order is walked through a sorted copy; that does not change any column's scores).
    let sorted_copies: Vec<(Vec<u16>, Vec<I32F32>)> = selected
        .iter()
        .filter_map(|&i| {
            let (cols, vals) = weights.row(i);
            (!ascending(cols)).then(|| {
                let mut pairs: Vec<(u16, I32F32)> =
                    cols.iter().copied().zip(vals.iter().copied()).collect();
                pairs.sort_unstable_by_key(|&(j, _)| j);
                pairs.into_iter().unzip()
            })
        })
        .collect();
    let mut copies = sorted_copies.iter();
    let mut cursors: Vec<(&[u16], &[I32F32])> = selected
        .iter()
        .map(|&i| {
            let (cols, vals) = weights.row(i);
            if ascending(cols) {
                (cols, vals)
            } else {
                copies
                    .next()
                    .map_or((&[][..], &[][..]), |(c, v)| (c.as_slice(), v.as_slice()))
            }
        })
        .collect();

    // Columns are processed in blocks: the cursors deal the block's positive scores into
    // per-column buckets (in uid order), then each column's quantile is taken. Stakes are
    // normalized (each <= 1, at most 65535 of them), so no stake sum can overflow and wrapping
    // additions equal the reference's saturating ones.
    let block = 8192usize.checked_div(k).unwrap_or(1).clamp(1, n.max(1));
    let MedianBuffers {
        buckets,
        counts,
        positive_stake,
        scratch,
    } = buffers;
    buckets.resize(block.saturating_mul(k), Candidate::default());
    counts.resize(block, 0);
    positive_stake.resize(block, 0);
    scratch.reserve(k);
    for (b, med_block) in median.chunks_mut(block).enumerate() {
        let block_start = b.saturating_mul(block);
        let block_end = block_start.saturating_add(med_block.len());
        counts.iter_mut().for_each(|c| *c = 0);
        positive_stake.iter_mut().for_each(|p| *p = 0);
        for (cursor, &s) in cursors.iter_mut().zip(&use_stake) {
            let mut taken = 0usize;
            for (&c, &v) in cursor.0.iter().zip(cursor.1) {
                let c = usize::from(c);
                if c >= block_end {
                    break;
                }
                taken = taken.wrapping_add(1);
                let local = c.wrapping_sub(block_start);
                if v > I32F32::ZERO
                    && let (Some(count), Some(ps)) =
                        (counts.get_mut(local), positive_stake.get_mut(local))
                {
                    if let Some(slot) = buckets.get_mut(local.wrapping_mul(k).wrapping_add(*count))
                    {
                        *slot = Candidate { score: v, stake: s };
                    }
                    *count = count.wrapping_add(1);
                    *ps = ps.wrapping_add(s.to_bits());
                }
            }
            cursor.0 = cursor.0.get(taken..).unwrap_or(&[]);
            cursor.1 = cursor.1.get(taken..).unwrap_or(&[]);
        }
        for (local, (med, (&len, &pos_stake))) in med_block
            .iter_mut()
            .zip(counts.iter().zip(positive_stake.iter()))
            .enumerate()
        {
            if len == 0 {
                continue; // every score is 0
            }
            let zero_stake = total.saturating_sub(I32F32::from_bits(pos_stake));
            if len < k && minority < zero_stake {
                continue; // the quantile falls in the zero group
            }
            let start = local.wrapping_mul(k);
            let column = buckets.get(start..start.wrapping_add(len)).unwrap_or(&[]);
            *med = weighted_median(column, minority, zero_stake, total, scratch);
        }
    }
    median
}

/// Reusable buffers of [`weighted_median_cols`].
#[derive(Debug, Default)]
pub(super) struct MedianBuffers {
    buckets: Vec<Candidate>,
    counts: Vec<usize>,
    positive_stake: Vec<i64>,
    scratch: MedianScratch,
}

/// One row's entry in a column: its score and its (renormalized) stake.
#[derive(Clone, Copy, Debug, Default)]
struct Candidate {
    score: I32F32,
    stake: I32F32,
}

/// Three candidate buffers of at least `k` slots (no allocation or clearing per column).
#[derive(Debug, Default)]
struct MedianScratch {
    current: Vec<Candidate>,
    lower: Vec<Candidate>,
    upper: Vec<Candidate>,
}

impl MedianScratch {
    fn reserve(&mut self, k: usize) {
        for buf in [&mut self.current, &mut self.lower, &mut self.upper] {
            if buf.len() < k {
                buf.resize(k, Candidate::default());
            }
        }
    }
}

/// `weighted_median`'s partition search over `candidates` (in uid order), starting from the
/// window `[lo, hi]`.
fn weighted_median(
    candidates: &[Candidate],
    minority: I32F32,
    mut lo: I32F32,
    mut hi: I32F32,
    scratch: &mut MedianScratch,
) -> I32F32 {
    let MedianScratch {
        current,
        lower,
        upper,
    } = scratch;
    let limit = candidates.len();
    let mut len = candidates.len();
    let mut from_input = true;
    let mut counter = 0usize;
    loop {
        let list: &[Candidate] = if from_input {
            candidates
        } else {
            current.get(..len).unwrap_or(&[])
        };
        let Some(pivot) = list.get(len / 2).map(|c| c.score) else {
            return I32F32::ZERO; // empty list
        };
        if len == 1 {
            return pivot;
        }
        // Branch-free stable partition. Stakes are normalized, so the sums cannot overflow
        // (see `weighted_median_cols`).
        let (mut n_lo, mut n_hi) = (0usize, 0usize);
        let (mut lo_stake, mut hi_stake) = (0i64, 0i64);
        for &cand in list {
            let below = cand.score < pivot;
            let above = cand.score > pivot;
            if let Some(slot) = lower.get_mut(n_lo) {
                *slot = cand;
            }
            if let Some(slot) = upper.get_mut(n_hi) {
                *slot = cand;
            }
            n_lo = n_lo.wrapping_add(usize::from(below));
            n_hi = n_hi.wrapping_add(usize::from(above));
            let st = cand.stake.to_bits();
            lo_stake = lo_stake.wrapping_add(if below { st } else { 0 });
            hi_stake = hi_stake.wrapping_add(if above { st } else { 0 });
        }
        let (lo_stake, hi_stake) = (I32F32::from_bits(lo_stake), I32F32::from_bits(hi_stake));
        if minority < lo.saturating_add(lo_stake) && n_lo > 0 {
            core::mem::swap(current, lower);
            len = n_lo;
            hi = lo.saturating_add(lo_stake);
        } else if hi.saturating_sub(hi_stake) <= minority && n_hi > 0 {
            core::mem::swap(current, upper);
            len = n_hi;
            lo = hi.saturating_sub(hi_stake);
        } else {
            return pivot;
        }
        from_input = false;
        counter = counter.saturating_add(1);
        if counter > limit {
            return I32F32::ZERO;
        }
    }
}

/// `col_clip_sparse`, in place: entries above the column's consensus become the consensus, or
/// are removed when the consensus is 0. Also accumulates `row_sum_sparse` of the result into
/// `row_sums` and `matmul_sparse(result, stake)` into `col_ranks`.
#[inline(never)] // a stage: kept separate for profiling
pub(super) fn clip_in_place(
    m: &mut Csr,
    threshold: &[I32F32],
    stake: &[I32F32],
    row_sums: &mut [I32F32],
    col_ranks: &mut [I32F32],
) {
    let Csr { ptr, cols, vals } = m;
    let mut write = 0usize;
    let mut read = 0usize;
    for ((end, row_sum), &scale) in ptr.iter_mut().skip(1).zip(row_sums).zip(stake) {
        let mut total = I32F32::ZERO;
        while read < *end {
            if let (Some(&j), Some(&v)) = (cols.get(read), vals.get(read)) {
                let ju = usize::from(j);
                let th = threshold.get(ju).copied().unwrap_or(I32F32::ZERO);
                // Branch-free: the entry is always written, and kept (the write position
                // advanced) unless it is clipped to a zero consensus. A dropped entry adds 0.
                let keep = v <= th || th > I32F32::ZERO;
                let value = v.min_of(th);
                let added = I32F32::from_bits(value.to_bits() & i64::from(keep).wrapping_neg());
                if let (Some(c), Some(x)) = (cols.get_mut(write), vals.get_mut(write)) {
                    *c = j;
                    *x = value;
                }
                write = write.wrapping_add(usize::from(keep));
                total = total.saturating_add(added);
                if let Some(r) = col_ranks.get_mut(ju) {
                    *r = r.saturating_add(scale.saturating_mul(added));
                }
            }
            read = read.wrapping_add(1);
        }
        *row_sum = total;
        *end = write;
    }
    cols.truncate(write);
    vals.truncate(write);
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
        tmp.clear();
        let mut clipped_iter = cc.iter().zip(cv).peekable();
        for (&j, &v1) in wc.iter().zip(wv) {
            let v2 = match clipped_iter.peek() {
                Some(&(&cj, &c)) if cj == j => {
                    clipped_iter.next();
                    c
                }
                _ => I32F32::ZERO,
            };
            let value = v1.saturating_add(ratio.saturating_mul(v2.saturating_sub(v1)));
            if value > I32F32::ZERO {
                tmp.push((j, value));
            }
        }
        if !ascending(wc) {
            tmp.sort_unstable_by_key(|&(j, _)| j);
        }
        for &(j, v) in &tmp {
            out.push(j, v);
        }
        out.end_row();
    }
}
