//! The epoch computation (subtensor's `epoch_mechanism`, sparse path).
//!
//! Each step is annotated with the reference helper it reproduces. Sparse matrices are kept in
//! compressed-row form ([`Csr`]); where the reference builds dense per-row accumulators
//! (`mat_ema_sparse`, `interpolate_sparse`) this code merges the two sorted rows instead, which
//! yields the same entries in the same (column) order, and only falls back to a dense scan for
//! rows that are not stored in ascending column order.

mod bonds;
mod consensus;
mod fixed_rate;

use std::cell::RefCell;

use bonds::{BondScratch, BondsContext, u16_row};
use consensus::{MedianBuffers, clip, interpolate, weighted_median_cols};
use fixed_rate::FixedRate;

use crate::fixed::{Divisor, I32F32, I64F64, NarrowDivider, share_of_rao};
use crate::types::{EpochState, Hyperparams, Inputs, Outputs, SparseRowU16};

/// Runs one Yuma Consensus epoch.
///
/// Pure and deterministic: the result depends only on `inputs`, and is bit-identical to
/// subtensor's `Pallet::epoch_mechanism` at commit `14bc6f9f` for the same state.
///
/// Uses a [`Workspace`] kept per thread (so a thread's later epochs do not allocate and
/// page-fault their scratch memory again; it keeps buffers sized for the largest subnet the
/// thread has seen, a few megabytes at 4096 uids); [`epoch_with`] takes a caller-kept one
/// instead. The workspace never influences a result.
pub fn epoch(inputs: &Inputs) -> Outputs {
    thread_local! {
        static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
    }
    WORKSPACE
        .try_with(|ws| match ws.try_borrow_mut() {
            Ok(mut ws) => epoch_with(&mut ws, inputs),
            Err(_) => epoch_with(&mut Workspace::default(), inputs),
        })
        .unwrap_or_else(|_| epoch_with(&mut Workspace::default(), inputs))
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
    median: MedianBuffers,
    bonds: BondScratch,
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
        median: median_buffers,
        bonds: bond_scratch,
    } = ws;
    median_buffers.select(&active_stake, n);
    read_weights(hp, st, &permit, owner, weights, median_buffers);

    // == Consensus, validator trust ==
    let kappa = I32F32::from_u16(hp.kappa).safe_div(I32F32::U16_MAX);
    let consensus = weighted_median_cols(median_buffers, n, kappa);
    let penalty = I32F32::from_u16(hp.bonds_penalty).safe_div(I32F32::U16_MAX);
    let bond_kept: Vec<bool> = st
        .block_at_registration
        .iter()
        .map(|&registered| last_tempo > registered)
        .collect();
    let liquid = hp.liquid_alpha_enabled && consensus.iter().any(|&c| c != I32F32::ZERO);
    let fixed_rate =
        FixedRate::new(hp.bonds_moving_average, &bond_kept).filter(|_| hp.yuma3_enabled && !liquid);
    let mut validator_trust = vec![I32F32::ZERO; n];
    let mut ranks = vec![I32F32::ZERO; n];

    // Original Yuma (whose EMA rate never follows liquid alpha) with a fixed rate and the bonds
    // following the clipped or the raw weights.
    let original_rate = FixedRate::new(hp.bonds_moving_average, &bond_kept)
        .filter(|_| !hp.yuma3_enabled && (penalty == I32F32::ONE || penalty == I32F32::ZERO));

    let (incentive, dividends, bonds_new) = match (fixed_rate, original_rate) {
        // Yuma3 with a fixed EMA rate and the bonds following the clipped (penalty 1) or the
        // raw weights (penalty 0): clipping, trust, ranks and the bond EMA in one pass.
        (Some(rate), _) if penalty == I32F32::ONE || penalty == I32F32::ZERO => {
            fixed_rate::clip_and_ema(
                &rate,
                weights,
                &consensus,
                &active_stake,
                penalty == I32F32::ONE,
                &st.bonds_prev,
                bond_scratch,
                &mut validator_trust,
                &mut ranks,
            );
            let mut incentive = ranks.clone();
            normalize(&mut incentive);
            let (dividends, bonds_new) =
                fixed_rate::finish(bond_scratch, &incentive, &new_permit, &active_stake);
            (incentive, dividends, bonds_new)
        }
        // Original Yuma, likewise: clipping, trust, ranks and the delta's column sums in one
        // pass, the bond EMA (clipping again) in a second, without a clipped matrix.
        (_, Some(rate)) => {
            let clipped_for_bonds = penalty == I32F32::ONE;
            let delta_sum = fixed_rate::clip_sums(
                weights,
                &consensus,
                &active_stake,
                clipped_for_bonds,
                bond_scratch,
                &mut validator_trust,
                &mut ranks,
            );
            let mut incentive = ranks.clone();
            normalize(&mut incentive);
            let (dividends, bonds_new) = fixed_rate::clip_original(
                &rate,
                weights,
                &consensus,
                &delta_sum,
                clipped_for_bonds,
                &st.bonds_prev,
                &active_stake,
                &incentive,
                &new_permit,
                bond_scratch,
            );
            (incentive, dividends, bonds_new)
        }
        _ => {
            // Clipping also yields validator trust (row sums) and ranks (`matmul_sparse`).
            clip(
                weights,
                &consensus,
                &active_stake,
                clipped,
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
                bond_kept: &bond_kept,
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
            let (dividends, bonds_new) = if hp.yuma3_enabled {
                ctx.yuma3(bond_scratch)
            } else {
                ctx.yuma2(bond_scratch)
            };
            (incentive, dividends, bonds_new)
        }
    };

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
///
/// `cols` and `vals` are pools that only grow: their length is at least the number of entries
/// `len`, so that a reused matrix is written in place (through [`Csr::slots`]) without
/// initialising memory or checking capacity per entry. Nothing past `len` is ever read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Csr {
    ptr: Vec<usize>,
    len: usize,
    cols: Vec<u16>,
    vals: Vec<I32F32>,
}

impl Csr {
    /// Empties the matrix, keeping its allocations.
    fn clear(&mut self) {
        self.ptr.clear();
        self.ptr.push(0);
        self.len = 0;
    }

    /// Makes the pools at least `total` entries long.
    fn grow(&mut self, total: usize) {
        if self.cols.len() < total {
            self.cols.resize(total, 0);
        }
        if self.vals.len() < total {
            self.vals.resize(total, I32F32::ZERO);
        }
    }

    /// `max` writable slots for the row being built (columns, values); after writing the
    /// first `k` of them, [`Csr::finish_row`]`(k)` appends them as the row.
    fn slots(&mut self, max: usize) -> (&mut [u16], &mut [I32F32]) {
        let start = self.len;
        let end = start.saturating_add(max);
        self.grow(end);
        (
            self.cols.get_mut(start..end).unwrap_or(&mut []),
            self.vals.get_mut(start..end).unwrap_or(&mut []),
        )
    }

    /// Ends the row being built with the first `written` slots (see [`Csr::slots`]).
    fn finish_row(&mut self, written: usize) {
        self.len = self.len.saturating_add(written).min(self.cols.len());
        self.end_row();
    }

    /// Appends one entry to the row being built.
    #[inline]
    fn push(&mut self, col: u16, val: I32F32) {
        let at = self.len;
        if let (Some(c), Some(v)) = (self.cols.get_mut(at), self.vals.get_mut(at)) {
            *c = col;
            *v = val;
        } else {
            self.cols.truncate(at);
            self.vals.truncate(at);
            self.cols.push(col);
            self.vals.push(val);
        }
        self.len = at.saturating_add(1);
    }

    /// Ends the row being built.
    #[inline]
    fn end_row(&mut self) {
        if self.ptr.is_empty() {
            self.ptr.push(0);
        }
        self.ptr.push(self.len);
    }

    fn nnz(&self) -> usize {
        self.len
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
///
/// For an exact (unsaturated) integer total `T` and stakes `s <= T` the result bits are
/// `floor(floor(s * 2^64 / T) / 2^32) = floor(s * 2^32 / T)`, computed by [`StakeDivider`];
/// anything else takes the I64F64 path.
#[inline(never)] // a stage: kept separate for profiling
fn normalized_stake(raw: &[u64], owner: Option<usize>, threshold: u64) -> Vec<I32F32> {
    // The reference compares the stake as I64F64 (saturated at i64::MAX) with the threshold.
    let filtered = raw.iter().enumerate().map(|(uid, &s)| {
        if owner != Some(uid) && s.min(i64::MAX as u64) < threshold {
            0
        } else {
            s
        }
    });
    // I64F64 holds integers up to i64::MAX: larger stakes and sums saturate.
    let exact_total = filtered.clone().try_fold(0u64, |acc, s| {
        acc.checked_add(s).filter(|&t| t <= i64::MAX as u64)
    });
    if let Some(total) = exact_total {
        if total == 0 {
            return vec![I32F32::ZERO; raw.len()];
        }
        let div = StakeDivider::new(total);
        return filtered.map(|s| div.share(s)).collect();
    }
    let filtered: Vec<I64F64> = filtered.map(I64F64::saturating_from_u64).collect();
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

/// `floor(s * 2^32 / total)` for `s <= total <= i64::MAX`, exactly, without 128-bit
/// division: with `r = floor(2^96 / total)` (below 2^64 for `total > 2^32`), the estimate
/// `(s * r) >> 64` is low by at most 1 (`s * (2^96 / total - r) / 2^64 < 1`), and one
/// remainder comparison fixes it. Small totals divide directly.
struct StakeDivider {
    total: u64,
    /// `floor(2^96 / total)`, or 0 when `total <= 2^32`.
    reciprocal: u64,
}

impl StakeDivider {
    fn new(total: u64) -> Self {
        let reciprocal = if total > 1 << 32 {
            (1u128 << 96)
                .checked_div(u128::from(total))
                .and_then(|r| u64::try_from(r).ok())
                .unwrap_or(0)
        } else {
            0
        };
        Self { total, reciprocal }
    }

    #[inline]
    fn share(&self, s: u64) -> I32F32 {
        let numerator = u128::from(s).wrapping_shl(32);
        let q = if self.reciprocal == 0 {
            // total <= 2^32: s * 2^32 <= 2^64.
            numerator.checked_div(u128::from(self.total)).unwrap_or(0)
        } else {
            let estimate = u128::from(s)
                .wrapping_mul(u128::from(self.reciprocal))
                .wrapping_shr(64);
            // The remainder of the estimate is below 2 * total < 2^64.
            let rem = numerator.wrapping_sub(estimate.wrapping_mul(u128::from(self.total)));
            estimate.wrapping_add(u128::from(rem >= u128::from(self.total)))
        };
        // s <= total: q <= 2^32.
        I32F32::from_bits(i64::try_from(q).unwrap_or(0))
    }
}

/// `is_topk_nonzero`: non-zero entries, minus the `n - k` smallest (stable ascending order).
///
/// The stable order is the order of `(value, uid)`, whose keys are distinct, so the `n - k`
/// smallest are the same set when selected with `select_nth_unstable`.
#[inline(never)] // a stage: kept separate for profiling
fn topk_nonzero(values: &[I32F32], k: usize) -> Vec<bool> {
    let n = values.len();
    let mut result: Vec<bool> = values.iter().map(|&v| v != I32F32::ZERO).collect();
    if n < k {
        return result;
    }
    let removed = n.saturating_sub(k);
    if removed == 0 {
        return result;
    }
    let mut order: Vec<(I32F32, usize)> = values.iter().copied().zip(0..n).collect();
    if removed < n {
        order.select_nth_unstable(removed);
    }
    for &(_, i) in order.iter().take(removed) {
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
    voters: &mut MedianBuffers,
) {
    m.clear();
    let commits = if hp.commit_reveal_enabled {
        st.commit_blocks.as_deref()
    } else {
        None
    };
    // Masks (the kept raw values stay in the value slots for now).
    for (i, (row, &has_permit)) in st.weights.iter().zip(permit).enumerate() {
        if !has_permit || row.is_empty() {
            m.end_row();
            continue;
        }
        let updated = st.last_update.get(i).copied().unwrap_or(0);
        let commit = commits
            .and_then(|c| c.get(i).copied().flatten())
            .unwrap_or(u64::MAX);
        // Kept iff !(updated <= registered) && !(commit < registered),
        // i.e. registered < min(updated, commit + 1).
        let limit = updated.min(commit.saturating_add(1));
        let diagonal = if owner == Some(i) { usize::MAX } else { i };
        let (out_cols, out_vals) = m.slots(row.len());
        let (k, total) = mask_row(
            row,
            &st.block_at_registration,
            limit,
            diagonal,
            out_cols,
            out_vals,
        );
        // Normalized at once, while the row is in cache.
        let (kept_cols, kept_vals) = (
            out_cols.get(..k).unwrap_or(&[]),
            out_vals.get_mut(..k).unwrap_or(&mut []),
        );
        normalize_row(kept_vals, total);
        if voters.is_voter(i) {
            voters.count(kept_cols, kept_vals);
        }
        m.finish_row(k);
    }
    // The voters' positive scores dealt into their columns.
    voters.layout();
    voters.deal(m);
}

/// The entries of one weight row that survive the masks (column < n, not the diagonal, the
/// column's uid registered before `limit`), compacted into `out_cols` / `out_vals` (the raw
/// value as the bits); returns their number and the sum of their values (exact: at most 65536
/// values below 2^16).
#[inline(never)] // keeps the loop's registers to itself
fn mask_row(
    row: &[(u16, u16)],
    registered: &[u64],
    limit: u64,
    diagonal: usize,
    out_cols: &mut [u16],
    out_vals: &mut [I32F32],
) -> (usize, u64) {
    // `registered` has length n: a column >= n finds no registration block.
    let mut k = 0usize;
    let mut total = 0u64;
    for &(j, w) in row {
        let ju = usize::from(j);
        let r = registered.get(ju).copied().unwrap_or(u64::MAX);
        let keep = (r < limit) & (ju != diagonal);
        // Branch-free: every entry is written, the position advances for kept ones.
        if let (Some(c), Some(v)) = (out_cols.get_mut(k), out_vals.get_mut(k)) {
            *c = j;
            *v = I32F32::from_bits(i64::from(w));
        }
        k = k.wrapping_add(usize::from(keep));
        total = total.wrapping_add(u64::from(w) & u64::from(keep).wrapping_neg());
    }
    (k, total)
}

/// `inplace_row_normalize_sparse` of one masked row, in place: `vals` hold the raw values
/// (as bits), `total` their sum.
///
/// The reference sums the row in I32F32 (saturating at its maximum, `2^31 - 2^-32`) and
/// divides each value by that sum when it is positive: `(w * 2^32) / (total * 2^32)`,
/// truncated, is `floor(w * 2^32 / total)`, a numerator below 2^48 ([`NarrowDivider`]).
#[inline(never)] // keeps the loop's registers to itself
fn normalize_row(vals: &mut [I32F32], total: u64) {
    let raw = |v: &I32F32| v.to_bits() as u64;
    match NarrowDivider::new(total).filter(|_| total <= i32::MAX as u64) {
        Some(div) => {
            for v in vals.iter_mut() {
                // w <= total, so the quotient is at most 2^32.
                *v = I32F32::from_bits(div.div(raw(v).wrapping_shl(32)) as i64);
            }
        }
        None if total == 0 => vals.fill(I32F32::ZERO),
        None => {
            let div = Divisor::new(I32F32::MAX);
            for v in vals.iter_mut() {
                *v = div.safe_div(I32F32::from_bits(v.to_bits().wrapping_shl(32)));
            }
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    reason = "test code: compares against the I64F64 path"
)]
mod tests {
    use super::*;

    /// The I64F64 path of `normalized_stake` for one share.
    fn reference_share(s: u64, total: u64) -> I32F32 {
        I64F64::saturating_from_u64(s)
            .safe_div(I64F64::saturating_from_u64(total))
            .to_i32f32_saturating()
    }

    #[test]
    fn stake_divider_matches_i64f64_division() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut totals: Vec<u64> = vec![
            1,
            2,
            3,
            (1 << 32) - 1,
            1 << 32,
            (1 << 32) + 1,
            i64::MAX as u64,
        ];
        for _ in 0..2000 {
            totals.push((next() >> (1 + next() % 63)).max(1));
        }
        for &total in &totals {
            let div = StakeDivider::new(total);
            for s in [0, 1, total / 2, total - 1, total] {
                assert_eq!(div.share(s), reference_share(s, total), "{s} / {total}");
            }
            for _ in 0..50 {
                let s = next() % (total + 1);
                assert_eq!(div.share(s), reference_share(s, total), "{s} / {total}");
            }
        }
    }

    #[test]
    fn topk_drops_the_smallest_lowest_uid_first() {
        let v = |x: i64| I32F32::from_bits(x);
        let values = [v(5), v(1), v(5), v(0), v(1), v(7)];
        assert_eq!(
            topk_nonzero(&values, 3),
            [true, false, true, false, false, true]
        );
        assert_eq!(
            topk_nonzero(&values, 4),
            [true, false, true, false, true, true]
        );
        assert_eq!(topk_nonzero(&values, 0), [false; 6]);
        assert_eq!(
            topk_nonzero(&values, 6),
            [true, true, true, false, true, true]
        );
        assert_eq!(
            topk_nonzero(&values, 9),
            [true, true, true, false, true, true]
        );
    }
}
