//! The epoch computation (subtensor's `epoch_mechanism`, sparse path).
//!
//! Each step is annotated with the reference helper it reproduces. Sparse matrices are kept in
//! compressed-row form ([`Csr`]); where the reference builds dense per-row accumulators
//! (`mat_ema_sparse`, `interpolate_sparse`) this code merges the two sorted rows instead, which
//! yields the same entries in the same (column) order, and only falls back to a dense scan for
//! rows that are not stored in ascending column order.

mod bonds;
mod consensus;

use bonds::{BondScratch, BondsContext, u16_row};
use consensus::{MedianBuffers, clip_in_place, interpolate, weighted_median_cols};

use crate::fixed::{Divisor, I32F32, I64F64, share_of_rao};
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
