//! The epoch computation (subtensor's `epoch_mechanism`, sparse path).
//!
//! Each step is annotated with the reference helper it reproduces. Sparse matrices are kept in
//! compressed-row form ([`Csr`]); where the reference builds dense per-row accumulators
//! (`mat_ema_sparse`, `interpolate_sparse`) this code merges the two sorted rows instead, which
//! yields the same entries in the same (column) order, and only falls back to a dense scan for
//! rows that are not stored in ascending column order.

use crate::fixed::{Divisor, I32F32, I64F64, exp_safe, share_of_rao};
use crate::types::{EpochState, Hyperparams, Inputs, Outputs, SparseRowU16};

/// Runs one Yuma Consensus epoch.
///
/// Pure and deterministic: the result depends only on `inputs`, and is bit-identical to
/// subtensor's `Pallet::epoch_mechanism` at commit `14bc6f9f` for the same state.
///
/// Allocates its scratch memory afresh; [`epoch_with`] reuses a [`Workspace`] instead.
pub fn epoch(inputs: &Inputs) -> Outputs {
    epoch_with(&mut Workspace::default(), inputs)
}

/// Scratch memory for [`epoch_with`], reusable across epochs (of any subnet and size).
///
/// It only holds buffers, never state that influences a result: `epoch_with(ws, x)` equals
/// `epoch(x)` whatever `ws` was used for before. Keeping one per thread avoids allocating (and
/// page-faulting) several megabytes per epoch on large subnets.
#[derive(Debug, Default)]
pub struct Workspace {
    weights: Csr,
    clipped: Csr,
    interpolated: Csr,
    ema: Csr,
    median: MedianBuffers,
    ema_row_cols: Vec<u16>,
    ema_row_vals: Vec<I32F32>,
    bond_row: Vec<(u16, I32F32)>,
}

/// [`epoch`] with caller-provided scratch memory.
pub fn epoch_with(ws: &mut Workspace, inputs: &Inputs) -> Outputs {
    let hp = inputs.hyperparams();
    let st = inputs.state();
    let n = usize::from(st.n);

    // == Active & updated ==
    let active: Vec<bool> = st
        .last_update
        .iter()
        .map(|&updated| updated.saturating_add(hp.activity_cutoff) >= st.block)
        .collect();
    let last_tempo = if st.last_mechanism_step_block == 0 {
        st.block.saturating_sub(u64::from(hp.tempo))
    } else {
        st.last_mechanism_step_block.saturating_add(1)
    };

    // == Stake ==
    let owner = st.owner_uid.map(usize::from);
    let stake = normalized_stake(&st.stake, owner, hp.stake_threshold);

    // == Validator permits ==
    let mut permit = st.validator_permit.clone();
    let mut new_permit = topk_nonzero(&stake, usize::from(hp.max_allowed_validators));
    if let Some(o) = owner {
        if let Some(p) = permit.get_mut(o) {
            *p = true;
        }
        if let Some(p) = new_permit.get_mut(o) {
            *p = true;
        }
    }

    // == Active stake ==
    let mut active_stake: Vec<I32F32> = stake
        .iter()
        .zip(&active)
        .zip(&permit)
        .map(|((&s, &is_active), &has_permit)| {
            if is_active && has_permit {
                s
            } else {
                I32F32::ZERO
            }
        })
        .collect();
    normalize(&mut active_stake);

    // == Weights ==
    let Workspace {
        weights,
        clipped,
        interpolated,
        ema: ema_buffer,
        median: median_buffers,
        ema_row_cols,
        ema_row_vals,
        bond_row,
    } = ws;
    read_weights(hp, st, &permit, owner, weights);

    // == Consensus, validator trust ==
    let kappa = I32F32::from_u16(hp.kappa).safe_div(I32F32::U16_MAX);
    let consensus = weighted_median_cols(&active_stake, weights, n, kappa, median_buffers);
    // With bonds_penalty = 1 the unclipped weights are not needed any more: clip in place.
    let penalty = I32F32::from_u16(hp.bonds_penalty).safe_div(I32F32::U16_MAX);
    if penalty == I32F32::ONE {
        core::mem::swap(weights, clipped);
    } else {
        clipped.copy_from(weights);
    }
    // Clipping also yields validator trust (row sums) and ranks (`matmul_sparse`).
    let mut validator_trust = vec![I32F32::ZERO; n];
    let mut ranks = vec![I32F32::ZERO; n];
    clip_in_place(
        clipped,
        &consensus,
        &active_stake,
        &mut validator_trust,
        &mut ranks,
    );

    // == Ranks, incentive ==
    let mut incentive = ranks.clone();
    normalize(&mut incentive);

    // == Bonds and dividends ==
    let weights_for_bonds: &Csr = if penalty == I32F32::ONE {
        clipped
    } else if penalty == I32F32::ZERO {
        weights
    } else {
        interpolate(weights, clipped, penalty, interpolated);
        interpolated
    };

    let ctx = BondsContext {
        bond_kept: st
            .block_at_registration
            .iter()
            .map(|&registered| last_tempo > registered)
            .collect(),
        hp,
        st,
        n,
        last_tempo,
        weights_for_bonds,
        consensus: &consensus,
        incentive: &incentive,
        active_stake: &active_stake,
        new_permit: &new_permit,
    };
    let mut scratch = BondScratch {
        ema: core::mem::take(ema_buffer),
        row_cols: core::mem::take(ema_row_cols),
        row_vals: core::mem::take(ema_row_vals),
        bond_row: core::mem::take(bond_row),
    };
    let (dividends, bonds_new) = if hp.yuma3_enabled {
        ctx.yuma3(&mut scratch)
    } else {
        ctx.yuma2(&mut scratch)
    };
    *ema_buffer = scratch.ema;
    *ema_row_cols = scratch.row_cols;
    *ema_row_vals = scratch.row_vals;
    *bond_row = scratch.bond_row;

    // == Emission ==
    let combined: Vec<I32F32> = incentive
        .iter()
        .zip(&dividends)
        .map(|(&i, &d)| i.saturating_add(d))
        .collect();
    let emission_sum = sum(&combined);
    let mut normalized_server_emission = incentive.clone();
    let mut normalized_validator_emission = dividends.clone();
    let mut normalized_combined_emission = combined;
    normalize_using_sum(&mut normalized_server_emission, emission_sum);
    normalize_using_sum(&mut normalized_validator_emission, emission_sum);
    normalize(&mut normalized_combined_emission);
    if emission_sum == I32F32::ZERO {
        let fallback = if sum(&active_stake) == I32F32::ZERO {
            &stake
        } else {
            &active_stake
        };
        normalized_validator_emission.clone_from(fallback);
        normalized_combined_emission.clone_from(fallback);
    }
    let to_rao = |shares: &[I32F32]| -> Vec<u64> {
        shares
            .iter()
            .map(|&s| share_of_rao(s, st.rao_emission))
            .collect()
    };
    let server_emission = to_rao(&normalized_server_emission);
    let validator_emission = to_rao(&normalized_validator_emission);
    let emission = to_rao(&normalized_combined_emission);

    Outputs {
        active,
        new_validator_permit: new_permit,
        stake_normalized: stake,
        active_stake,
        consensus,
        validator_trust,
        ranks,
        incentive,
        dividends,
        bonds_new,
        emission_sum,
        normalized_server_emission,
        normalized_validator_emission,
        normalized_combined_emission,
        server_emission,
        validator_emission,
        emission,
    }
}

// ---------------------------------------------------------------------------------------------
// Sparse matrix storage
// ---------------------------------------------------------------------------------------------

/// Compressed sparse rows: row `i` is `cols[ptr[i]..ptr[i + 1]]` / `vals[..]`, in stored order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Csr {
    ptr: Vec<usize>,
    cols: Vec<u16>,
    vals: Vec<I32F32>,
}

impl Csr {
    /// Empties the matrix, keeping its allocations.
    fn clear(&mut self) {
        self.ptr.clear();
        self.ptr.push(0);
        self.cols.clear();
        self.vals.clear();
    }

    /// Becomes a copy of `other`, reusing the allocations.
    fn copy_from(&mut self, other: &Csr) {
        self.ptr.clone_from(&other.ptr);
        self.cols.clone_from(&other.cols);
        self.vals.clone_from(&other.vals);
    }

    #[inline]
    fn push(&mut self, col: u16, val: I32F32) {
        self.cols.push(col);
        self.vals.push(val);
    }

    #[inline]
    fn end_row(&mut self) {
        if self.ptr.is_empty() {
            self.ptr.push(0);
        }
        self.ptr.push(self.cols.len());
    }

    fn nnz(&self) -> usize {
        self.cols.len()
    }

    /// Row `i` as `(columns, values)` (empty if out of range).
    fn row(&self, i: usize) -> (&[u16], &[I32F32]) {
        let start = self.ptr.get(i).copied().unwrap_or(0);
        let end = self.ptr.get(i.saturating_add(1)).copied().unwrap_or(start);
        (
            self.cols.get(start..end).unwrap_or(&[]),
            self.vals.get(start..end).unwrap_or(&[]),
        )
    }

    /// Rows in order, as `(columns, values)`.
    fn rows(&self) -> impl Iterator<Item = (&[u16], &[I32F32])> + '_ {
        self.ptr.windows(2).map(move |w| match *w {
            [s, e] => (
                self.cols.get(s..e).unwrap_or(&[]),
                self.vals.get(s..e).unwrap_or(&[]),
            ),
            _ => (&[][..], &[][..]),
        })
    }

    fn to_u16_rows(&self, keep: &[bool]) -> Vec<SparseRowU16> {
        self.rows()
            .zip(keep)
            .map(|((cols, vals), &keep_row)| {
                if keep_row {
                    u16_row(cols, vals)
                } else {
                    Vec::new()
                }
            })
            .collect()
    }
}

/// Strictly ascending column order (what the chain's own epoch output always has).
#[inline]
fn ascending(cols: &[u16]) -> bool {
    cols.windows(2).all(|w| matches!(w, [a, b] if a < b))
}

// ---------------------------------------------------------------------------------------------
// Vector helpers
// ---------------------------------------------------------------------------------------------

/// Plain sum (the reference's `iter().sum()`); saturating, which only differs on overflow, which
/// the epoch's value ranges cannot reach.
#[inline]
fn sum(values: &[I32F32]) -> I32F32 {
    values
        .iter()
        .fold(I32F32::ZERO, |acc, &v| acc.saturating_add(v))
}

/// `inplace_normalize`: divide by the sum unless it is 0.
fn normalize(values: &mut [I32F32]) {
    let total = sum(values);
    normalize_using_sum(values, total);
}

/// `inplace_normalize_using_sum`.
fn normalize_using_sum(values: &mut [I32F32], total: I32F32) {
    if total == I32F32::ZERO {
        return;
    }
    divide_all(values, total);
}

/// `x = x.safe_div(d)` for every element.
fn divide_all(values: &mut [I32F32], d: I32F32) {
    let div = Divisor::new(d);
    values.iter_mut().for_each(|v| *v = div.safe_div(*v));
}

/// Stake filtering and normalization in I64F64, then truncation to I32F32.
#[inline(never)] // a stage: kept separate for profiling
fn normalized_stake(raw: &[u64], owner: Option<usize>, threshold: u64) -> Vec<I32F32> {
    let filtered: Vec<I64F64> = raw
        .iter()
        .enumerate()
        .map(|(uid, &s)| {
            let s = I64F64::saturating_from_u64(s);
            if owner != Some(uid) && s.to_u64_saturating() < threshold {
                I64F64::ZERO
            } else {
                s
            }
        })
        .collect();
    let total = filtered
        .iter()
        .fold(I64F64::ZERO, |acc, &v| acc.saturating_add(v));
    filtered
        .into_iter()
        .map(|s| {
            let s = if total == I64F64::ZERO {
                s
            } else {
                s.safe_div(total)
            };
            s.to_i32f32_saturating()
        })
        .collect()
}

/// `is_topk_nonzero`: non-zero entries, minus the `n - k` smallest (stable ascending order).
#[inline(never)] // a stage: kept separate for profiling
fn topk_nonzero(values: &[I32F32], k: usize) -> Vec<bool> {
    let n = values.len();
    let mut result: Vec<bool> = values.iter().map(|&v| v != I32F32::ZERO).collect();
    if n < k {
        return result;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| values.get(i).copied().unwrap_or_default());
    for &i in order.iter().take(n.saturating_sub(k)) {
        if let Some(r) = result.get_mut(i) {
            *r = false;
        }
    }
    result
}

// ---------------------------------------------------------------------------------------------
// Weights, consensus, clipping, ranks
// ---------------------------------------------------------------------------------------------

/// `get_weights_sparse` + `mask_rows_sparse` + `mask_diag_sparse(_except_index)` +
/// `vec_mask_sparse_matrix` (outdated) + the commit-reveal column mask +
/// `inplace_row_normalize_sparse` (each row divided by its sum when that is positive).
#[inline(never)] // a stage: kept separate for profiling
fn read_weights(
    hp: &Hyperparams,
    st: &EpochState,
    permit: &[bool],
    owner: Option<usize>,
    m: &mut Csr,
) {
    let n = usize::from(st.n);
    let nnz = st
        .weights
        .iter()
        .zip(permit)
        .filter(|(_, p)| **p)
        .map(|(r, _)| r.len())
        .fold(0usize, usize::saturating_add);
    m.clear();
    m.cols.reserve(nnz);
    m.vals.reserve(nnz);
    let commits = if hp.commit_reveal_enabled {
        st.commit_blocks.as_deref()
    } else {
        None
    };
    for (i, row) in st.weights.iter().enumerate() {
        if permit.get(i).copied().unwrap_or(false) {
            let updated = st.last_update.get(i).copied().unwrap_or(0);
            let commit = commits
                .and_then(|c| c.get(i).copied().flatten())
                .unwrap_or(u64::MAX);
            // Kept iff !(updated <= registered) && !(commit < registered),
            // i.e. registered < min(updated, commit + 1).
            let limit = updated.min(commit.saturating_add(1));
            let start = m.nnz();
            let mut total = I32F32::ZERO;
            for &(j, w) in row {
                let ju = usize::from(j);
                if ju >= n || (ju == i && owner != Some(i)) {
                    continue;
                }
                let registered = st.block_at_registration.get(ju).copied().unwrap_or(0);
                if registered >= limit {
                    continue;
                }
                let v = I32F32::from_u16(w);
                total = total.saturating_add(v);
                m.push(j, v);
            }
            if total > I32F32::ZERO {
                divide_all(m.vals.get_mut(start..).unwrap_or(&mut []), total);
            }
        }
        m.end_row();
    }
}

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
fn weighted_median_cols(
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
struct MedianBuffers {
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
fn clip_in_place(
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
fn interpolate(weights: &Csr, clipped: &Csr, ratio: I32F32, out: &mut Csr) {
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

// ---------------------------------------------------------------------------------------------
// Bonds and dividends
// ---------------------------------------------------------------------------------------------

/// Reusable buffers of the bonds stage (see [`Workspace`]).
struct BondScratch {
    ema: Csr,
    row_cols: Vec<u16>,
    row_vals: Vec<I32F32>,
    bond_row: Vec<(u16, I32F32)>,
}

impl BondScratch {
    fn ema_builder(&mut self, n: usize, alpha: I32F32, room: usize) -> EmaBuilder {
        let mut out = core::mem::take(&mut self.ema);
        out.clear();
        out.cols.reserve(room);
        out.vals.reserve(room);
        EmaBuilder {
            n,
            alpha,
            one_minus_alpha: I32F32::ONE.saturating_sub(alpha),
            out,
            row_cols: core::mem::take(&mut self.row_cols),
            row_vals: core::mem::take(&mut self.row_vals),
            dense: Vec::new(),
        }
    }

    /// Takes the row buffers back from a finished builder; returns the EMA matrix.
    fn finish(&mut self, builder: EmaBuilder) -> Csr {
        self.row_cols = builder.row_cols;
        self.row_vals = builder.row_vals;
        builder.out
    }
}

struct BondsContext<'a> {
    /// Per column `< n`: whether bonds to it survive the registration mask.
    bond_kept: Vec<bool>,
    hp: &'a Hyperparams,
    st: &'a EpochState,
    n: usize,
    last_tempo: u64,
    weights_for_bonds: &'a Csr,
    consensus: &'a [I32F32],
    incentive: &'a [I32F32],
    active_stake: &'a [I32F32],
    new_permit: &'a [bool],
}

impl BondsContext<'_> {
    /// An upper bound on the number of EMA entries: all weight-for-bond and stored bond entries.
    fn ema_room(&self) -> usize {
        self.st
            .bonds_prev
            .iter()
            .map(Vec::len)
            .fold(self.weights_for_bonds.nnz(), usize::saturating_add)
    }

    /// Row of the stored bonds converted by `convert(column, value)`, minus the columns whose
    /// uid registered at or after `last_tempo` (`scalar_vec_mask_sparse_matrix`). Columns
    /// `>= n` are kept like the reference does; every consumer ignores them.
    fn bond_row(
        &self,
        raw: &[(u16, u16)],
        convert: impl Fn(u16, u16) -> I32F32,
        buf: &mut Vec<(u16, I32F32)>,
    ) {
        buf.clear();
        let out_of_range_kept = self.last_tempo > 0; // registration block read as 0
        for &(j, b) in raw {
            let kept = self
                .bond_kept
                .get(usize::from(j))
                .copied()
                .unwrap_or(out_of_range_kept);
            if kept {
                buf.push((j, convert(j, b)));
            }
        }
    }

    /// Yuma3: fractional bonds, EMA (fixed or liquid alpha), dividends `(B_norm . I) * A`.
    #[inline(never)] // a stage: kept separate for profiling
    fn yuma3(&self, scratch: &mut BondScratch) -> (Vec<I32F32>, Vec<SparseRowU16>) {
        let liquid = self.hp.liquid_alpha_enabled
            && !self.consensus.is_empty()
            && self.consensus.iter().any(|&c| c != I32F32::ZERO);
        let mut col_sum = vec![I32F32::ZERO; self.n];
        let mut stored: Vec<SparseRowU16> = Vec::with_capacity(self.n);
        let mut old_buf = core::mem::take(&mut scratch.bond_row);
        let ema = if liquid {
            let mut out = core::mem::take(&mut scratch.ema);
            self.ema_liquid(&mut col_sum, &mut out, &mut old_buf);
            out
        } else {
            let alpha = fixed_ema_alpha(self.hp.bonds_moving_average);
            let mut ema = scratch.ema_builder(self.n, alpha, self.ema_room());
            for (((cols, vals), raw), &keep) in self
                .weights_for_bonds
                .rows()
                .zip(&self.st.bonds_prev)
                .zip(self.new_permit)
            {
                self.bond_row(raw, |_, b| I32F32::from_u16_proportion(b), &mut old_buf);
                let (ecols, evals) = ema.push_row(cols, vals, &old_buf, &mut col_sum);
                stored.push(if keep {
                    u16_row(ecols, evals)
                } else {
                    Vec::new()
                });
            }
            scratch.finish(ema)
        };
        scratch.bond_row = old_buf;
        if stored.len() != self.n {
            stored = ema.to_u16_rows(self.new_permit);
        }

        // Dividends from the column-normalized EMA (`inplace_col_normalize_sparse`,
        // `mat_vec_mul_sparse`, `row_sum_sparse`, `vec_mul`).
        let col_div = divisors(&col_sum);
        let mut dividends: Vec<I32F32> = ema
            .rows()
            .zip(self.active_stake)
            .map(|((cols, vals), &a)| {
                let mut total = I32F32::ZERO;
                for (&j, &v) in cols.iter().zip(vals) {
                    let inc = self
                        .incentive
                        .get(usize::from(j))
                        .copied()
                        .unwrap_or(I32F32::ZERO);
                    let normalized = divide_in_column(&col_div, j, v);
                    total = total.saturating_add(normalized.saturating_mul(inc));
                }
                total.checked_mul(a).unwrap_or(I32F32::ZERO)
            })
            .collect();
        normalize(&mut dividends);
        scratch.ema = ema;
        (dividends, stored)
    }

    /// Original Yuma: integer bonds column-normalized, EMA towards the column-normalized
    /// stake-weighted weights, dividends `B . I`, stored column-max-upscaled.
    #[inline(never)] // a stage: kept separate for profiling
    fn yuma2(&self, scratch: &mut BondScratch) -> (Vec<I32F32>, Vec<SparseRowU16>) {
        let n = self.n;
        let mut old_buf = core::mem::take(&mut scratch.bond_row);
        let mut new_buf: Vec<I32F32> = Vec::new();

        // Column sums of the masked integer bonds and of the bonds delta `Wb * A`.
        let mut bond_sum = vec![I32F32::ZERO; n];
        for raw in &self.st.bonds_prev {
            self.bond_row(raw, |_, b| I32F32::from_u16(b), &mut old_buf);
            add_to_columns(&old_buf, &mut bond_sum);
        }
        let mut delta_sum = vec![I32F32::ZERO; n];
        for ((cols, vals), &scale) in self.weights_for_bonds.rows().zip(self.active_stake) {
            for (&j, &w) in cols.iter().zip(vals) {
                if let Some(s) = delta_sum.get_mut(usize::from(j)) {
                    *s = s.saturating_add(w.saturating_mul(scale));
                }
            }
        }
        let bond_div = divisors(&bond_sum);
        let delta_div = divisors(&delta_sum);
        let normalize_by = divide_in_column;

        let alpha = fixed_ema_alpha(self.hp.bonds_moving_average);
        let mut ema = scratch.ema_builder(n, alpha, self.ema_room());
        let mut ema_sum = vec![I32F32::ZERO; n];
        for (((cols, vals), raw), &scale) in self
            .weights_for_bonds
            .rows()
            .zip(&self.st.bonds_prev)
            .zip(self.active_stake)
        {
            new_buf.clear();
            new_buf.extend(
                cols.iter()
                    .zip(vals)
                    .map(|(&j, &w)| normalize_by(&delta_div, j, w.saturating_mul(scale))),
            );
            self.bond_row(
                raw,
                |j, b| normalize_by(&bond_div, j, I32F32::from_u16(b)),
                &mut old_buf,
            );
            ema.push_row(cols, &new_buf, &old_buf, &mut ema_sum);
        }
        let mut ema = scratch.finish(ema);
        scratch.bond_row = old_buf;

        // One pass: column-normalize the EMA, accumulate the dividends `sum_j I[j] * B[i][j]`
        // (`matmul_transpose_sparse`) and the column maxima.
        let ema_div = divisors(&ema_sum);
        let mut col_max = vec![I32F32::ZERO; n];
        let mut dividends: Vec<I32F32> = Vec::with_capacity(n);
        for w in ema.ptr.windows(2) {
            let [start, end] = *w else { continue };
            let mut total = I32F32::ZERO;
            let (Some(cols), Some(vals)) = (ema.cols.get(start..end), ema.vals.get_mut(start..end))
            else {
                dividends.push(total);
                continue;
            };
            for (&j, v) in cols.iter().zip(vals.iter_mut()) {
                let ju = usize::from(j);
                *v = normalize_by(&ema_div, j, *v);
                let inc = self.incentive.get(ju).copied().unwrap_or(I32F32::ZERO);
                total = total.saturating_add(inc.saturating_mul(*v));
                if let Some(m) = col_max.get_mut(ju) {
                    *m = m.max_of(*v);
                }
            }
            dividends.push(total);
        }
        normalize(&mut dividends);

        // inplace_col_max_upscale_sparse, only needed for the rows that are stored.
        let max_div = divisors(&col_max);
        let stored = ema
            .rows()
            .zip(self.new_permit)
            .map(|((cols, vals), &keep)| {
                if keep {
                    cols.iter()
                        .zip(vals)
                        .map(|(&j, &v)| (j, normalize_by(&max_div, j, v).proportion_to_u16()))
                        .collect()
                } else {
                    Vec::new()
                }
            })
            .collect();
        scratch.ema = ema;
        (dividends, stored)
    }

    /// `compute_liquid_alpha_values_sparse` + `mat_ema_alpha_sparse`, accumulating the column
    /// sums of the result into `col_sum`.
    ///
    /// Only the alphas the EMA actually reads are evaluated: those of the columns present in the
    /// weights-for-bonds row (bond columns absent from it are dropped, so their decay is never
    /// used).
    #[inline(never)] // a stage: kept separate for profiling
    fn ema_liquid(&self, col_sum: &mut [I32F32], out: &mut Csr, old_buf: &mut Vec<(u16, I32F32)>) {
        let n = self.n;
        let sigmoid = AlphaSigmoid::new(self.hp);
        let wb = self.weights_for_bonds;
        out.clear();
        // Dense scratch for rows not stored in ascending order (rare on chain).
        let mut seen_w: Vec<I32F32> = Vec::new();
        let mut seen_b: Vec<I32F32> = Vec::new();
        let mut old_val: Vec<Option<I32F32>> = Vec::new();
        let mut old_cols: Vec<u16> = Vec::new();
        let mut old_vals: Vec<I32F32> = Vec::new();

        for ((new_cols, new_vals), raw) in wb.rows().zip(&self.st.bonds_prev) {
            if new_cols.is_empty() {
                out.end_row();
                continue;
            }
            self.bond_row(raw, |_, b| I32F32::from_u16_proportion(b), old_buf);
            let mut emit = |j: u16, w: I32F32, alpha: I32F32, old: Option<I32F32>| {
                let decayed = match old {
                    Some(b) => I32F32::ONE.saturating_sub(alpha).saturating_mul(b),
                    None => I32F32::ZERO,
                };
                let inc = alpha.saturating_mul(w).max_of(I32F32::ZERO);
                let value = decayed.saturating_add(inc).min_of(I32F32::ONE);
                if value > I32F32::ZERO {
                    out.push(j, value);
                    if let Some(s) = col_sum.get_mut(usize::from(j)) {
                        *s = s.saturating_add(value);
                    }
                }
            };
            if ascending(new_cols) && ascending_pairs(old_buf) {
                // The reference's column walk sees exactly the stored entry of each column.
                let mut old_iter = old_buf.iter().peekable();
                for (&j, &w) in new_cols.iter().zip(new_vals) {
                    while old_iter.next_if(|(oj, _)| *oj < j).is_some() {}
                    let old = old_iter.next_if(|(oj, _)| *oj == j).map(|&(_, b)| b);
                    let consensus = self
                        .consensus
                        .get(usize::from(j))
                        .copied()
                        .unwrap_or(I32F32::ZERO);
                    let alpha = sigmoid.alpha(consensus, w, old.unwrap_or(I32F32::ZERO));
                    emit(j, w, alpha, old);
                }
            } else {
                // Replay the reference's peeking walk over all columns 0..n literally.
                if seen_w.is_empty() {
                    seen_w = vec![I32F32::ZERO; n];
                    seen_b = vec![I32F32::ZERO; n];
                    old_val = vec![None; n];
                }
                old_cols.clear();
                old_vals.clear();
                for &(j, b) in old_buf.iter() {
                    old_cols.push(j);
                    old_vals.push(b);
                }
                walk_seen(new_cols, new_vals, &mut seen_w);
                walk_seen(&old_cols, &old_vals, &mut seen_b);
                for &(j, b) in old_buf.iter() {
                    if let Some(slot) = old_val.get_mut(usize::from(j)) {
                        *slot = Some(b);
                    }
                }
                for (&j, &w) in new_cols.iter().zip(new_vals) {
                    let ju = usize::from(j);
                    let consensus = self.consensus.get(ju).copied().unwrap_or(I32F32::ZERO);
                    let ws = seen_w.get(ju).copied().unwrap_or(I32F32::ZERO);
                    let bs = seen_b.get(ju).copied().unwrap_or(I32F32::ZERO);
                    let alpha = sigmoid.alpha(consensus, ws, bs);
                    let old = old_val.get(ju).copied().flatten();
                    emit(j, w, alpha, old);
                }
                for &(j, _) in old_buf.iter() {
                    if let Some(slot) = old_val.get_mut(usize::from(j)) {
                        *slot = None;
                    }
                }
            }
            out.end_row();
        }
    }
}

/// The value the reference's `peekable` walk reads for every column `0..n` of a row:
/// for column `j` it skips entries with a smaller column and takes the next entry's value if
/// its column equals `j` (0 otherwise). Writes all `n` columns of `seen`.
fn walk_seen(cols: &[u16], vals: &[I32F32], seen: &mut [I32F32]) {
    let mut it = cols.iter().zip(vals).peekable();
    for (j, slot) in seen.iter_mut().enumerate() {
        *slot = I32F32::ZERO;
        while let Some(&(&c, &v)) = it.peek() {
            if usize::from(c) < j {
                it.next();
            } else {
                if usize::from(c) == j {
                    *slot = v;
                }
                break;
            }
        }
    }
}

/// Strictly ascending columns in a pair buffer.
#[inline]
fn ascending_pairs(row: &[(u16, I32F32)]) -> bool {
    row.windows(2)
        .all(|w| matches!(w, [(a, _), (b, _)] if a < b))
}

/// Adds every entry with a column `< sums.len()` to its column sum.
fn add_to_columns(row: &[(u16, I32F32)], sums: &mut [I32F32]) {
    for &(j, v) in row {
        if let Some(s) = sums.get_mut(usize::from(j)) {
            *s = s.saturating_add(v);
        }
    }
}

/// `compute_disabled_liquid_alpha` / `compute_ema_bonds_normal_sparse`:
/// `1 - I32F32(bonds_moving_average / 10^6 in I64F64)`.
fn fixed_ema_alpha(bonds_moving_average: u64) -> I32F32 {
    let bma = I64F64::saturating_from_u64(bonds_moving_average)
        .saturating_div(I64F64::saturating_from_u64(1_000_000));
    I32F32::ONE.saturating_sub(bma.to_i32f32_saturating())
}

/// Row-by-row `mat_ema_sparse(new, old, alpha)`: per row, over all columns in ascending order,
/// `alpha * new + (1 - alpha) * old` (each product rounded, `new` added first), keeping
/// positive values.
struct EmaBuilder {
    n: usize,
    alpha: I32F32,
    one_minus_alpha: I32F32,
    out: Csr,
    /// One row's output slots (grown to the largest `new.len() + old.len()` seen).
    row_cols: Vec<u16>,
    row_vals: Vec<I32F32>,
    /// Dense accumulator, only for rows not stored in ascending order.
    dense: Vec<I32F32>,
}

impl EmaBuilder {
    /// Appends the EMA of one row (`new` given as columns and values, `old` as pairs), adds its
    /// values to `col_sum` and returns it.
    fn push_row(
        &mut self,
        new_cols: &[u16],
        new_vals: &[I32F32],
        old: &[(u16, I32F32)],
        col_sum: &mut [I32F32],
    ) -> (&[u16], &[I32F32]) {
        let n = self.n;
        let (alpha, oma) = (self.alpha, self.one_minus_alpha);
        let room = new_cols.len().saturating_add(old.len());
        // Output slots: the merge writes at most `room`, the dense scan writes at index
        // `w <= min(room, n)` and needs one spare slot.
        let slots = room.saturating_add(1);
        if self.row_cols.len() < slots {
            self.row_cols.resize(slots, 0);
            self.row_vals.resize(slots, I32F32::ZERO);
        }
        let (out_cols, out_vals) = (&mut self.row_cols, &mut self.row_vals);
        let mut w = 0usize;
        // Rows covering a good share of the columns are accumulated densely (as the reference
        // does for every row); sparse rows in ascending order are merged.
        let dense_row = room.saturating_mul(4) >= n;
        if !dense_row && ascending(new_cols) && ascending_pairs(old) {
            // Columns >= n sort last; the reference drops them.
            let new_len = new_cols.partition_point(|&j| usize::from(j) < n);
            let old_len = old.partition_point(|&(j, _)| usize::from(j) < n);
            let new_cols = new_cols.get(..new_len).unwrap_or(&[]);
            let old = old.get(..old_len).unwrap_or(&[]);
            // Branch-free merge: every step writes its column and advances the output only
            // for a positive value.
            let (mut a, mut b) = (0usize, 0usize);
            while a < new_len || b < old_len {
                let ja = new_cols.get(a).map_or(u32::MAX, |&c| u32::from(c));
                let va = new_vals.get(a).copied().unwrap_or(I32F32::ZERO);
                let (jb, vb) = old
                    .get(b)
                    .map_or((u32::MAX, I32F32::ZERO), |&(c, v)| (u32::from(c), v));
                let j = ja.min(jb);
                let take_a = ja == j;
                let take_b = jb == j;
                let x = alpha.saturating_mul(va).to_bits() & i64::from(take_a).wrapping_neg();
                let y = oma.saturating_mul(vb).to_bits() & i64::from(take_b).wrapping_neg();
                let value = I32F32::from_bits(x).saturating_add(I32F32::from_bits(y));
                let keep = value > I32F32::ZERO;
                let j16 = u16::try_from(j).unwrap_or(u16::MAX);
                if let (Some(c), Some(v)) = (out_cols.get_mut(w), out_vals.get_mut(w)) {
                    *c = j16;
                    *v = value;
                }
                w = w.wrapping_add(usize::from(keep));
                if let Some(s) = col_sum.get_mut(usize::from(j16)) {
                    let added = value.to_bits() & i64::from(keep).wrapping_neg();
                    *s = s.saturating_add(I32F32::from_bits(added));
                }
                a = a.wrapping_add(usize::from(take_a));
                b = b.wrapping_add(usize::from(take_b));
            }
        } else {
            // Dense accumulator over all n columns, as the reference does.
            if self.dense.is_empty() {
                self.dense = vec![I32F32::ZERO; n];
            }
            for (&j, &v) in new_cols.iter().zip(new_vals) {
                if let Some(c) = self.dense.get_mut(usize::from(j)) {
                    *c = c.saturating_add(alpha.saturating_mul(v));
                }
            }
            for &(j, v) in old {
                if let Some(c) = self.dense.get_mut(usize::from(j)) {
                    *c = c.saturating_add(oma.saturating_mul(v));
                }
            }
            // Branch-free scan: every column is written, the output advances for positive
            // values only; the accumulator is reset for the next row.
            for ((j, c), s) in (0..u16::MAX)
                .zip(self.dense.iter_mut())
                .zip(col_sum.iter_mut())
            {
                let value = *c;
                let keep = value > I32F32::ZERO;
                if let (Some(oc), Some(ov)) = (out_cols.get_mut(w), out_vals.get_mut(w)) {
                    *oc = j;
                    *ov = value;
                }
                w = w.wrapping_add(usize::from(keep));
                let added = value.to_bits() & i64::from(keep).wrapping_neg();
                *s = s.saturating_add(I32F32::from_bits(added));
                *c = I32F32::ZERO;
            }
        }
        let start = self.out.nnz();
        self.out
            .cols
            .extend_from_slice(self.row_cols.get(..w).unwrap_or(&[]));
        self.out
            .vals
            .extend_from_slice(self.row_vals.get(..w).unwrap_or(&[]));
        self.out.end_row();
        (
            self.out.cols.get(start..).unwrap_or(&[]),
            self.out.vals.get(start..).unwrap_or(&[]),
        )
    }
}

/// A stored bond row: `(column, fixed_proportion_to_u16(value))`.
fn u16_row(cols: &[u16], vals: &[I32F32]) -> SparseRowU16 {
    cols.iter()
        .zip(vals)
        .map(|(&j, &v)| (j, v.proportion_to_u16()))
        .collect()
}

/// Per column: a divisor for the column's sum or maximum; where that is 0 the values are left
/// unchanged (`inplace_col_normalize_sparse` / `inplace_col_max_upscale_sparse`), which is
/// exactly a division by 1.
fn divisors(per_column: &[I32F32]) -> Vec<Divisor> {
    per_column
        .iter()
        .map(|&d| Divisor::new(if d == I32F32::ZERO { I32F32::ONE } else { d }))
        .collect()
}

/// `divisors[j].safe_div(v)` (columns outside the table are left unchanged).
#[inline]
fn divide_in_column(divisors: &[Divisor], j: u16, v: I32F32) -> I32F32 {
    divisors.get(usize::from(j)).map_or(v, |d| d.safe_div(v))
}

/// `alpha_sigmoid` with the per-subnet constants hoisted.
struct AlphaSigmoid {
    low: I32F32,
    high: I32F32,
    /// `steepness / -100`.
    slope: I32F32,
    /// Alpha for a combined difference of exactly 0 (very common: clipped weights equal
    /// their consensus).
    at_zero: I32F32,
}

impl AlphaSigmoid {
    fn new(hp: &Hyperparams) -> Self {
        let low = I32F32::from_u16(hp.alpha_low).safe_div(I32F32::U16_MAX);
        let high = I32F32::from_u16(hp.alpha_high).safe_div(I32F32::U16_MAX);
        let slope =
            I32F32::from_i16(hp.alpha_sigmoid_steepness).saturating_div(I32F32::from_i32(-100));
        let mut s = Self {
            low,
            high,
            slope,
            at_zero: I32F32::ZERO,
        };
        s.at_zero = s.alpha_for_diff(I32F32::ZERO);
        s
    }

    /// `alpha_sigmoid(consensus, weight, bond, low, high, steepness)`.
    #[inline]
    fn alpha(&self, consensus: I32F32, weight: I32F32, bond: I32F32) -> I32F32 {
        let diff = if weight >= bond {
            clamp(weight.saturating_sub(consensus), I32F32::ZERO, I32F32::ONE)
        } else {
            clamp(bond.saturating_sub(weight), I32F32::ZERO, I32F32::ONE)
        };
        if diff == I32F32::ZERO {
            self.at_zero
        } else {
            self.alpha_for_diff(diff)
        }
    }

    fn alpha_for_diff(&self, diff: I32F32) -> I32F32 {
        let z = self.slope.saturating_mul(diff.saturating_sub(I32F32::HALF));
        let sigmoid = I32F32::ONE.saturating_div(I32F32::ONE.saturating_add(exp_safe(z)));
        let alpha = self
            .low
            .saturating_add(sigmoid.saturating_mul(self.high.saturating_sub(self.low)));
        clamp(alpha, self.low, self.high)
    }
}

/// `clamp_value`: `value.min(high).max(low)`.
#[inline]
fn clamp(value: I32F32, low: I32F32, high: I32F32) -> I32F32 {
    value.min_of(high).max_of(low)
}
