//! Bonds with a fixed EMA rate `alpha` in `[0, 1]` (`bonds_moving_average <= 10^6`, no liquid
//! alpha): the chain's usual configuration, computed without materialising anything the
//! result does not need.
//!
//! Yuma3: both `alpha * Wb` and `(1 - alpha) * B` are then non-negative and at most 1, so an
//! EMA entry (`alpha * w + (1 - alpha) * b`, each product rounded, over the union of the row's
//! columns) is kept exactly when it is not 0, an entry of `Wb` with value 0 (or an absent one)
//! adds nothing, and no sum of EMA values can overflow. A bond that the registration mask
//! drops is given the rate 0: it then adds 0, exactly like an absent one.
//!
//! Pass 1 builds every EMA row and the EMA's column sums: either from a given `Wb`
//! ([`ema_rows`]) or, when `Wb` is the clipped or the raw weights (bonds penalty 1 or 0),
//! together with the clipping itself ([`clip_and_ema`], which also yields validator trust and
//! ranks). Pass 2 ([`finish`]) turns the rows that are needed (permitted rows for storage,
//! rows with active stake for dividends) into stored bonds and dividends.
//!
//! Original Yuma ([`original`]) uses the same merged EMA rows over column-normalized parts;
//! for bonds penalty 1 or 0, [`clip_sums`] and [`clip_original`] clip without storing the
//! clipped matrix and build its EMA rows with the bond terms parked per column.

use super::bonds::{BondScratch, RowAccumulator};
use super::consensus::{ColumnState, clip_row};
use super::{Csr, ascending, normalize};
use crate::fixed::{Divisor, I32F32, I64F64, NarrowDivider, ProportionScale, UnitFactor};
use crate::types::SparseRowU16;

/// The two EMA rates and the registration mask of the bonds.
pub(super) struct FixedRate<'a> {
    alpha: UnitFactor,
    one_minus_alpha: UnitFactor,
    /// `(1 - alpha) * u16_proportion(b)`.
    decay: ProportionScale,
    /// Per column `< n`: whether bonds to it survive the registration mask.
    bond_kept: &'a [bool],
    all_kept: bool,
}

impl<'a> FixedRate<'a> {
    /// `compute_disabled_liquid_alpha`: `alpha = 1 - I32F32(bonds_moving_average / 10^6)`;
    /// `None` unless `alpha` is in `[0, 1]`.
    pub(super) fn new(bonds_moving_average: u64, bond_kept: &'a [bool]) -> Option<Self> {
        let alpha = fixed_ema_alpha(bonds_moving_average);
        let alpha_unit = UnitFactor::new(alpha)?;
        let one_minus_alpha = UnitFactor::new(I32F32::ONE.saturating_sub(alpha))?;
        Some(Self {
            alpha: alpha_unit,
            one_minus_alpha,
            decay: ProportionScale::new(one_minus_alpha),
            bond_kept,
            all_kept: bond_kept.iter().all(|&kept| kept),
        })
    }

    /// `(1 - alpha) * b` for a stored bond `b` in column `j` (0 when masked or `j >= n`).
    #[inline(always)]
    fn masked_term(&self, j: u16, b: u16) -> I32F32 {
        let kept = self.bond_kept.get(usize::from(j)).copied().unwrap_or(false);
        I32F32::from_bits(self.decay.times(b).to_bits() & i64::from(kept).wrapping_neg())
    }
}

/// `compute_disabled_liquid_alpha` / `compute_ema_bonds_normal_sparse`:
/// `1 - I32F32(bonds_moving_average / 10^6 in I64F64)`.
pub(super) fn fixed_ema_alpha(bonds_moving_average: u64) -> I32F32 {
    let bma = I64F64::saturating_from_u64(bonds_moving_average)
        .saturating_div(I64F64::saturating_from_u64(1_000_000));
    I32F32::ONE.saturating_sub(bma.to_i32f32_saturating())
}

/// Pass 1 from a given weights-for-bonds matrix `wb`: every EMA row into `scratch.ema`, their
/// column sums (in bits) into `scratch.col_sum`.
#[inline(never)] // a stage: kept separate for profiling
pub(super) fn ema_rows(
    rate: &FixedRate<'_>,
    wb: &Csr,
    bonds_prev: &[SparseRowU16],
    n: usize,
    scratch: &mut BondScratch,
) {
    let mut col_sum = core::mem::take(&mut scratch.col_sum);
    col_sum.clear();
    col_sum.resize(n, 0);
    let (ema, acc) = scratch.ema_and_row();
    ema.clear();
    acc.reset(n);
    for ((cols, vals), raw) in wb.rows().zip(bonds_prev) {
        let (out_cols, out_vals) = ema.slots(cols.len().saturating_add(raw.len()));
        let len = if ascending(cols) && ascending_raw(raw) {
            let old = bonds_below(raw, n);
            if rate.all_kept {
                let terms = Yuma3Terms::<false>(rate);
                ema_merge((cols, vals), old, &terms, out_cols, out_vals)
            } else {
                let terms = Yuma3Terms::<true>(rate);
                ema_merge((cols, vals), old, &terms, out_cols, out_vals)
            }
        } else {
            acc.add(
                cols.iter()
                    .zip(vals)
                    .map(|(&j, &w)| (j, rate.alpha.times(w))),
            );
            acc.add(raw.iter().map(|&(j, b)| (j, rate.masked_term(j, b))));
            acc.drain_positive(out_cols, out_vals)
        };
        add_to_column_sums(
            out_cols.get(..len).unwrap_or(&[]),
            out_vals.get(..len).unwrap_or(&[]),
            &mut col_sum,
        );
        ema.finish_row(len);
    }
    scratch.col_sum = col_sum;
}

/// Pass 1 fused with `col_clip_sparse` for a bonds penalty of 1 (`clipped_for_bonds`: the EMA
/// follows the clipped weights) or 0 (it follows the weights): clips `weights` by
/// `consensus` (validator trust into `row_sums`, `matmul_sparse(clipped, stake)` into
/// `col_ranks`, as [`super::consensus::clip`] does) and builds every EMA row into
/// `scratch.ema`, the EMA's column sums (in bits) into `scratch.col_sum`.
#[allow(clippy::too_many_arguments)] // one stage's inputs and outputs
#[inline(never)] // a stage: kept separate for profiling
pub(super) fn clip_and_ema(
    rate: &FixedRate<'_>,
    weights: &Csr,
    consensus: &[I32F32],
    stake: &[I32F32],
    clipped_for_bonds: bool,
    bonds_prev: &[SparseRowU16],
    scratch: &mut BondScratch,
    row_sums: &mut [I32F32],
    col_ranks: &mut [I32F32],
) {
    let n = consensus.len();
    let mut columns = core::mem::take(&mut scratch.states);
    columns.clear();
    columns.extend(consensus.iter().map(|&c| ColumnState::new(c)));
    let (ema, acc, clip_cols, clip_vals, spill) = scratch.fused_buffers();
    ema.clear();
    acc.reset(n);
    for ((((cols, vals), raw), row_sum), &scale) in weights
        .rows()
        .zip(bonds_prev)
        .zip(row_sums.iter_mut())
        .zip(stake)
    {
        let (out_cols, out_vals) = ema.slots(cols.len().saturating_add(raw.len()));
        // Active stake is normalized (each at most 1); the general product otherwise.
        let scale_unit = UnitFactor::new(scale);
        let (len, trust) = match scale_unit {
            Some(scale) if ascending(cols) => {
                let row = (cols, vals);
                let out = (&mut *out_cols, &mut *out_vals);
                match (clipped_for_bonds, rate.all_kept) {
                    (true, true) => clip_ema_row(
                        row,
                        raw,
                        &mut columns,
                        scale,
                        rate.alpha,
                        |_, added| added,
                        |_, b| rate.decay.times(b),
                        out,
                        spill,
                    ),
                    (true, false) => clip_ema_row(
                        row,
                        raw,
                        &mut columns,
                        scale,
                        rate.alpha,
                        |_, added| added,
                        |j, b| rate.masked_term(j, b),
                        out,
                        spill,
                    ),
                    (false, true) => clip_ema_row(
                        row,
                        raw,
                        &mut columns,
                        scale,
                        rate.alpha,
                        |v, _| v,
                        |_, b| rate.decay.times(b),
                        out,
                        spill,
                    ),
                    (false, false) => clip_ema_row(
                        row,
                        raw,
                        &mut columns,
                        scale,
                        rate.alpha,
                        |v, _| v,
                        |j, b| rate.masked_term(j, b),
                        out,
                        spill,
                    ),
                }
            }
            _ => {
                // Rows in another column order: clip, then accumulate the EMA row densely.
                if clip_cols.len() < cols.len() {
                    clip_cols.resize(cols.len(), 0);
                    clip_vals.resize(cols.len(), I32F32::ZERO);
                }
                let (kept, trust) = match scale_unit {
                    Some(f) => clip_row(
                        cols,
                        vals,
                        |x| f.times(x),
                        &mut columns,
                        clip_cols,
                        clip_vals,
                    ),
                    None => clip_row(
                        cols,
                        vals,
                        |x| scale.saturating_mul(x),
                        &mut columns,
                        clip_cols,
                        clip_vals,
                    ),
                };
                let (wb_cols, wb_vals) = if clipped_for_bonds {
                    (
                        clip_cols.get(..kept).unwrap_or(&[]),
                        clip_vals.get(..kept).unwrap_or(&[]),
                    )
                } else {
                    (cols, vals)
                };
                acc.add(
                    wb_cols
                        .iter()
                        .zip(wb_vals)
                        .map(|(&j, &w)| (j, rate.alpha.times(w))),
                );
                acc.add(raw.iter().map(|&(j, b)| (j, rate.masked_term(j, b))));
                let len = acc.drain_positive(out_cols, out_vals);
                for (&j, &v) in out_cols.iter().zip(out_vals.iter()).take(len) {
                    if let Some(column) = columns.get_mut(usize::from(j)) {
                        column.ema_sum = column.ema_sum.wrapping_add(v.to_bits());
                    }
                }
                (len, trust)
            }
        };
        *row_sum = trust;
        ema.finish_row(len);
    }
    for (rank, column) in col_ranks.iter_mut().zip(&columns) {
        *rank = column.rank;
    }
    scratch.col_sum.clear();
    scratch.col_sum.extend(columns.iter().map(|c| c.ema_sum));
    scratch.states = columns;
}

/// Pass 2: from the EMA rows in `scratch.ema` and their column sums, the stored bond rows
/// (permitted uids) and the dividends (`inplace_col_normalize_sparse`, `mat_vec_mul_sparse`,
/// times the active stake, normalized).
#[inline(never)] // a stage: kept separate for profiling
pub(super) fn finish(
    scratch: &mut BondScratch,
    incentive: &[I32F32],
    new_permit: &[bool],
    active_stake: &[I32F32],
) -> (Vec<I32F32>, Vec<SparseRowU16>) {
    let BondScratch {
        col_sum,
        unit_columns,
        plain_columns,
        ..
    } = scratch;
    let n = col_sum.len();
    // Per column: the divisor of the column normalization (1 where the sum is 0, which leaves
    // the values unchanged) and the incentive (a factor in [0, 1]: incentive is normalized).
    let divisor = |s: i64| {
        Divisor::new(if s == 0 {
            I32F32::ONE
        } else {
            I32F32::from_bits(s)
        })
    };
    unit_columns.clear();
    plain_columns.clear();
    let all_units = incentive.iter().all(|&inc| UnitFactor::new(inc).is_some());
    for (&s, &inc) in col_sum.iter().zip(incentive) {
        match UnitFactor::new(inc) {
            Some(f) if all_units => unit_columns.push((divisor(s), f)),
            _ => plain_columns.push((divisor(s), inc)),
        }
    }
    let (unit_columns, plain_columns) = (&*unit_columns, &*plain_columns);
    let mut dividends = vec![I32F32::ZERO; n];
    let mut stored: Vec<SparseRowU16> = Vec::with_capacity(n);
    for (((ema_cols, ema_vals), (&keep, &stake)), dividend) in scratch
        .ema
        .rows()
        .zip(new_permit.iter().zip(active_stake))
        .zip(dividends.iter_mut())
    {
        let with_dividend = stake != I32F32::ZERO;
        let (row, total) = if all_units {
            finish_row(
                ema_cols,
                ema_vals,
                unit_columns,
                keep,
                with_dividend,
                |f, x| f.times(x),
            )
        } else {
            finish_row(
                ema_cols,
                ema_vals,
                plain_columns,
                keep,
                with_dividend,
                |f, x| x.saturating_mul(f),
            )
        };
        stored.push(row);
        if with_dividend {
            *dividend = total.checked_mul(stake).unwrap_or(I32F32::ZERO);
        }
    }
    normalize(&mut dividends);
    (dividends, stored)
}

/// Original Yuma (Yuma3 off) with a fixed EMA rate in `[0, 1]`: integer bonds and the
/// stake-weighted weights `Wb * A`, each column-normalized, their EMA column-normalized,
/// dividends `B . I` (normalized) and the stored rows column-max-upscaled, as
/// [`super::bonds::BondsContext::yuma2`] computes them, with the per-entry divisions done by
/// precomputed per-column divisors and the EMA rows merged.
///
/// Both EMA parts are normalized values in `[0, 1]` (each column's entries sum to at most its
/// total), so the EMA is non-negative, kept exactly when not 0, and a masked or absent bond
/// adds nothing. The integer bond column sums are exact in 64 bits; where the reference's
/// I32F32 sum would saturate (above `2^31 - 1`), the division by that saturated sum is kept.
#[allow(clippy::too_many_arguments)] // one stage's inputs
#[inline(never)] // a stage: kept separate for profiling
pub(super) fn original(
    rate: &FixedRate<'_>,
    wb: &Csr,
    bonds_prev: &[SparseRowU16],
    active_stake: &[I32F32],
    incentive: &[I32F32],
    new_permit: &[bool],
    n: usize,
    scratch: &mut BondScratch,
) -> (Vec<I32F32>, Vec<SparseRowU16>) {
    let mut delta_sum = vec![0i64; n];
    for ((cols, vals), &scale) in wb.rows().zip(active_stake) {
        for (&j, &w) in cols.iter().zip(vals) {
            if let Some(s) = delta_sum.get_mut(usize::from(j)) {
                *s = s.wrapping_add(w.saturating_mul(scale).to_bits());
            }
        }
    }
    let columns = original_columns(rate, bonds_prev, &delta_sum, n);
    let saturated = Divisor::new(I32F32::MAX);

    // The EMA rows and their column sums.
    let (ema, acc) = scratch.ema_and_row();
    ema.clear();
    acc.reset(n);
    let mut ema_sum = vec![0i64; n];
    let mut raw_max = vec![0i64; n];
    for ((cols, vals), (raw, &scale)) in wb.rows().zip(bonds_prev.iter().zip(active_stake)) {
        let (out_cols, out_vals) = ema.slots(cols.len().saturating_add(raw.len()));
        let len = match UnitFactor::new(scale) {
            Some(scale) => original_ema_row(
                rate,
                (cols, vals),
                raw,
                |w| scale.times(w),
                &columns,
                saturated,
                acc,
                (out_cols, out_vals),
            ),
            None => original_ema_row(
                rate,
                (cols, vals),
                raw,
                |w| w.saturating_mul(scale),
                &columns,
                saturated,
                acc,
                (out_cols, out_vals),
            ),
        };
        add_to_column_sums_and_max(
            out_cols.get(..len).unwrap_or(&[]),
            out_vals.get(..len).unwrap_or(&[]),
            &mut ema_sum,
            &mut raw_max,
        );
        ema.finish_row(len);
    }

    original_tail(scratch, &ema_sum, &raw_max, incentive, new_permit)
}

/// Original Yuma's pass 1 for a bonds penalty of 1 (`clipped_for_bonds`: `Wb` is the clipped
/// weights) or 0 (`Wb` is the weights), without materialising the clipped matrix: clips
/// `weights` by `consensus` (validator trust into `row_sums`, `matmul_sparse(clipped, stake)`
/// into `col_ranks`, as [`super::consensus::clip`] does) and returns the column sums (bits)
/// of the bonds delta `Wb * A`. For the clipped weights those are the ranks themselves (the
/// same products, summed in the same way); for the weights they are summed here.
#[inline(never)] // a stage: kept separate for profiling
pub(super) fn clip_sums(
    weights: &Csr,
    consensus: &[I32F32],
    stake: &[I32F32],
    clipped_for_bonds: bool,
    scratch: &mut BondScratch,
    row_sums: &mut [I32F32],
    col_ranks: &mut [I32F32],
) -> Vec<i64> {
    let mut columns = core::mem::take(&mut scratch.states);
    columns.clear();
    columns.extend(consensus.iter().map(|&c| ColumnState::new(c)));
    for ((cols, vals), (row_sum, &scale)) in weights.rows().zip(row_sums.iter_mut().zip(stake)) {
        if cols.is_empty() {
            continue;
        }
        // Active stake is normalized (each at most 1); the general product otherwise.
        *row_sum = match (UnitFactor::new(scale), clipped_for_bonds) {
            // Weights and clipped weights are non-negative.
            (Some(f), true) => {
                clip_sums_row::<false>(cols, vals, |x| f.times_nonneg(x), &mut columns)
            }
            (Some(f), false) => {
                clip_sums_row::<true>(cols, vals, |x| f.times_nonneg(x), &mut columns)
            }
            (None, true) => {
                clip_sums_row::<false>(cols, vals, |x| scale.saturating_mul(x), &mut columns)
            }
            (None, false) => {
                clip_sums_row::<true>(cols, vals, |x| scale.saturating_mul(x), &mut columns)
            }
        };
    }
    for (rank, column) in col_ranks.iter_mut().zip(&columns) {
        *rank = column.rank;
    }
    let delta_sum = columns
        .iter()
        .map(|c| {
            if clipped_for_bonds {
                c.rank.to_bits()
            } else {
                c.ema_sum
            }
        })
        .collect();
    scratch.states = columns;
    delta_sum
}

/// One row of [`clip_sums`]: returns the row sum of the clipped row (summed exactly and
/// clamped, as [`super::consensus::clip_row`] does); with `RAW_DELTA`, `scale(w)` of each weight
/// is added to its column's `ema_sum`.
#[inline(never)] // keeps the loop's registers to itself
fn clip_sums_row<const RAW_DELTA: bool>(
    cols: &[u16],
    vals: &[I32F32],
    scale: impl Fn(I32F32) -> I32F32,
    columns: &mut [ColumnState],
) -> I32F32 {
    // Non-negative values of at most 1 (weights are normalized), at most 65536 of them: the
    // sum is exact and far below the clamp.
    let mut total = 0i64;
    for (&j, &v) in cols.iter().zip(vals) {
        let Some(column) = columns.get_mut(usize::from(j)) else {
            continue; // unreachable: weight columns are < n
        };
        let (_, added) = column.clip(v);
        total = total.wrapping_add(added.to_bits());
        column.rank = I32F32::from_bits(column.rank.to_bits().wrapping_add(scale(added).to_bits()));
        if RAW_DELTA {
            column.ema_sum = column.ema_sum.wrapping_add(scale(v).to_bits());
        }
    }
    I32F32::from_bits(total)
}

/// [`original`] after [`clip_sums`] (bonds penalty 1 or 0): the EMA rows are built while the
/// weights are clipped again (clipping is a per-entry minimum), so the clipped matrix is never
/// stored; rows in another column order or with a stake outside `[0, 1]` take
/// [`original`]'s row path on a clipped copy.
#[allow(clippy::too_many_arguments)] // one stage's inputs
#[inline(never)] // a stage: kept separate for profiling
pub(super) fn clip_original(
    rate: &FixedRate<'_>,
    weights: &Csr,
    consensus: &[I32F32],
    delta_sum: &[i64],
    clipped_for_bonds: bool,
    bonds_prev: &[SparseRowU16],
    active_stake: &[I32F32],
    incentive: &[I32F32],
    new_permit: &[bool],
    scratch: &mut BondScratch,
) -> (Vec<I32F32>, Vec<SparseRowU16>) {
    let n = consensus.len();
    let columns = original_columns(rate, bonds_prev, delta_sum, n);
    let saturated = Divisor::new(I32F32::MAX);
    let terms_for = |scale: UnitFactor| OriginalTerms {
        alpha: rate.alpha,
        one_minus_alpha: rate.one_minus_alpha,
        // Only for weights (non-negative).
        times_stake: move |w: I32F32| I32F32::from_bits(scale.times_bits(w.to_bits() as u64) as i64),
        columns: &columns,
        saturated,
    };
    let mut states = core::mem::take(&mut scratch.states);
    states.clear();
    states.extend(consensus.iter().map(|&c| ColumnState::new(c)));
    // The states' `rank` holds the column's largest EMA value (all are non-negative).
    let (ema, acc, clip_cols, clip_vals, spill) = scratch.fused_buffers();
    ema.clear();
    acc.reset(n);
    for ((cols, vals), (raw, &scale)) in weights.rows().zip(bonds_prev.iter().zip(active_stake)) {
        let (out_cols, out_vals) = ema.slots(cols.len().saturating_add(raw.len()));
        let len = match UnitFactor::new(scale) {
            Some(f) if ascending(cols) => {
                let terms = terms_for(f);
                if clipped_for_bonds {
                    original_clip_ema_row::<true, _>(
                        (cols, vals),
                        raw,
                        &terms,
                        &mut states,
                        (out_cols, out_vals),
                        spill,
                    )
                } else {
                    original_clip_ema_row::<false, _>(
                        (cols, vals),
                        raw,
                        &terms,
                        &mut states,
                        (out_cols, out_vals),
                        spill,
                    )
                }
            }
            scale_unit => {
                let (wb_cols, wb_vals) = if clipped_for_bonds {
                    if clip_cols.len() < cols.len() {
                        clip_cols.resize(cols.len(), 0);
                        clip_vals.resize(cols.len(), I32F32::ZERO);
                    }
                    // `col_clip_sparse` of the row (the states' ranks are not touched).
                    let mut kept = 0usize;
                    for (&j, &v) in cols.iter().zip(vals) {
                        let Some(state) = states.get(usize::from(j)) else {
                            continue; // unreachable: weight columns are < n
                        };
                        let (keep, _) = state.clip(v);
                        if let (Some(c), Some(x)) =
                            (clip_cols.get_mut(kept), clip_vals.get_mut(kept))
                        {
                            *c = j;
                            *x = v.min_of(state.consensus);
                        }
                        kept = kept.wrapping_add(keep);
                    }
                    (
                        clip_cols.get(..kept).unwrap_or(&[]),
                        clip_vals.get(..kept).unwrap_or(&[]),
                    )
                } else {
                    (cols, vals)
                };
                let len = match scale_unit {
                    Some(f) => original_ema_row(
                        rate,
                        (wb_cols, wb_vals),
                        raw,
                        |w| f.times(w),
                        &columns,
                        saturated,
                        acc,
                        (&mut *out_cols, &mut *out_vals),
                    ),
                    None => original_ema_row(
                        rate,
                        (wb_cols, wb_vals),
                        raw,
                        |w| w.saturating_mul(scale),
                        &columns,
                        saturated,
                        acc,
                        (&mut *out_cols, &mut *out_vals),
                    ),
                };
                for (&j, &v) in out_cols.iter().zip(out_vals.iter()).take(len) {
                    if let Some(state) = states.get_mut(usize::from(j)) {
                        state.ema_sum = state.ema_sum.wrapping_add(v.to_bits());
                        state.rank = state.rank.max_of(v);
                    }
                }
                len
            }
        };
        ema.finish_row(len);
    }
    let ema_sum: Vec<i64> = states.iter().map(|c| c.ema_sum).collect();
    let raw_max: Vec<i64> = states.iter().map(|c| c.rank.to_bits()).collect();
    scratch.states = states;
    original_tail(scratch, &ema_sum, &raw_max, incentive, new_permit)
}

/// One EMA row of [`clip_original`] for a weight row in ascending column order (the bond row in
/// any order): each weight is clipped again (`CLIPPED`: the clipped value is `Wb`; a removed
/// entry adds 0, like an absent one), its delta term plus the column's bond term enters the
/// EMA, and every EMA value is added to its column's sum, as in [`clip_ema_row`], and raises
/// the column's maximum (kept in its `rank`, unused by this pass). Returns the number of EMA
/// entries written.
#[inline(never)] // keeps the loop's registers to itself
fn original_clip_ema_row<const CLIPPED: bool, T: EmaTerms>(
    (cols, vals): (&[u16], &[I32F32]),
    raw: &[(u16, u16)],
    terms: &T,
    columns: &mut [ColumnState],
    (out_cols, out_vals): (&mut [u16], &mut [I32F32]),
    spill: &mut Vec<(u16, I32F32)>,
) -> usize {
    const PRESENT: i64 = 1 << 62;
    const VALUE: i64 = PRESENT - 1;
    // The bond terms (at most 1, so below the presence bit); columns >= n are ignored.
    let mut bonds = 0usize;
    for &(j, b) in raw {
        if let Some(column) = columns.get_mut(usize::from(j)) {
            column.pending = terms.old_term(j, b).to_bits() | PRESENT;
            bonds = bonds.wrapping_add(1);
        }
    }
    let (mut k, mut matched) = (0usize, 0usize);
    for (&j, &v) in cols.iter().zip(vals) {
        let Some(column) = columns.get_mut(usize::from(j)) else {
            continue; // unreachable: weight columns are < n
        };
        let wb = if CLIPPED { column.clip(v).1 } else { v };
        let pending = column.pending;
        column.pending = 0;
        matched = matched.wrapping_add((pending >> 62) as usize);
        let e = terms
            .new_term_bits(j, wb.to_bits() as u64)
            .wrapping_add(pending & VALUE);
        column.ema_sum = column.ema_sum.wrapping_add(e);
        column.rank = I32F32::from_bits(column.rank.to_bits().max(e));
        if let (Some(c), Some(o)) = (out_cols.get_mut(k), out_vals.get_mut(k)) {
            *c = j;
            *o = I32F32::from_bits(e);
        }
        k = k.wrapping_add(usize::from(e > 0));
    }
    if matched < bonds {
        k = flush_pending(raw, columns, out_cols, out_vals, k, spill);
        for &(j, e) in spill.iter() {
            if let Some(column) = columns.get_mut(usize::from(j)) {
                column.rank = column.rank.max_of(e);
            }
        }
    }
    k
}

/// Per column of [`original`]: the divisor of the delta's normalization and of the masked
/// integer bonds' normalization (see there), from the delta's column sums.
fn original_columns(
    rate: &FixedRate<'_>,
    bonds_prev: &[SparseRowU16],
    delta_sum: &[i64],
    n: usize,
) -> OriginalColumns {
    // Column sums of the masked integer bonds (exact) and of the bonds delta `Wb * A`
    // (non-negative values of at most A[i], which sum to at most 1: exact).
    let mut bond_sum = vec![0u64; n];
    for raw in bonds_prev {
        for &(j, b) in raw {
            let ju = usize::from(j);
            if rate.bond_kept.get(ju).copied().unwrap_or(false)
                && let Some(s) = bond_sum.get_mut(ju)
            {
                *s = s.wrapping_add(u64::from(b));
            }
        }
    }
    // Per column: the normalization of the delta (a divisor; 1 for a zero sum, which leaves
    // the values unchanged) and of the integer bonds: `(b << 32) / S` exactly for a sum `S`
    // below 2^31 (b <= S: the quotient is at most 2^32), 0 for masked columns and zero sums
    // (which only hold zeros), `None` for a saturated I32F32 sum.
    let delta = delta_sum
        .iter()
        .map(|&d| {
            Divisor::new(if d == 0 {
                I32F32::ONE
            } else {
                I32F32::from_bits(d)
            })
        })
        .collect();
    let bond = bond_sum
        .iter()
        .zip(rate.bond_kept)
        .map(|(&s, &kept)| {
            if !kept || s == 0 {
                Some(NarrowDivider::ZERO)
            } else {
                NarrowDivider::new(s).filter(|_| s <= i32::MAX as u64)
            }
        })
        .collect();
    OriginalColumns { delta, bond }
}

/// Per column of [`original`]: the divisors of [`original_columns`], one array each, so the
/// weight pass (deltas) and the bond pass (bonds) each stream only what they read.
struct OriginalColumns {
    /// The delta's normalization.
    delta: Vec<Divisor>,
    /// The masked integer bonds' normalization (`None`: a saturated sum).
    bond: Vec<Option<NarrowDivider>>,
}

/// The end of [`original`] from the EMA rows in `scratch` and their column sums: the rows
/// column-normalized, the dividends, and the stored (column-max-upscaled) rows.
fn original_tail(
    scratch: &BondScratch,
    ema_sum: &[i64],
    raw_max: &[i64],
    incentive: &[I32F32],
    new_permit: &[bool],
) -> (Vec<I32F32>, Vec<SparseRowU16>) {
    let n = ema_sum.len();
    // Per column: the divisor of the column normalization (1 for a zero sum, which leaves the
    // values unchanged), the incentive, and the divisor of `inplace_col_max_upscale_sparse`
    // (the normalized column's maximum; 1 for 0). Normalizing divides by one positive
    // constant, which keeps the order of the (non-negative) values, so the normalized
    // column's maximum is the normalized raw maximum.
    let divisor = |s: i64| {
        Divisor::new(if s == 0 {
            I32F32::ONE
        } else {
            I32F32::from_bits(s)
        })
    };
    let max_divisor = |sum: Divisor, m: i64| {
        let m = sum.safe_div(I32F32::from_bits(m));
        Divisor::new(if m == I32F32::ZERO { I32F32::ONE } else { m })
    };
    let unit_columns: Option<Vec<(Divisor, UnitFactor, Divisor)>> = ema_sum
        .iter()
        .zip(raw_max)
        .zip(incentive)
        .map(|((&s, &m), &inc)| {
            UnitFactor::new(inc).map(|f| {
                let d = divisor(s);
                (d, f, max_divisor(d, m))
            })
        })
        .collect();
    let columns: Vec<(Divisor, I32F32, Divisor)> = match unit_columns {
        Some(_) => Vec::new(),
        None => ema_sum
            .iter()
            .zip(raw_max)
            .zip(incentive)
            .map(|((&s, &m), &inc)| {
                let d = divisor(s);
                (d, inc, max_divisor(d, m))
            })
            .collect(),
    };
    // Per row: the column-normalized EMA, dividends `sum_j I[j] * B[i][j]`
    // (`matmul_transpose_sparse`; non-negative terms, at most 65535 of at most 1: exact) and,
    // for the rows that are stored, the upscaled row.
    let mut dividends: Vec<I32F32> = Vec::with_capacity(n);
    let mut stored: Vec<SparseRowU16> = Vec::with_capacity(n);
    for ((cols, vals), &keep) in scratch.ema().rows().zip(new_permit) {
        let (row, total) = match &unit_columns {
            // EMA values are positive, and so are their normalized values.
            Some(columns) => original_finish_row(cols, vals, columns, keep, |f, v| {
                I32F32::from_bits(f.times_bits(v.to_bits() as u64) as i64)
            }),
            None => original_finish_row(cols, vals, &columns, keep, |inc, v| inc.saturating_mul(v)),
        };
        dividends.push(total);
        stored.push(row);
    }
    normalize(&mut dividends);
    (dividends, stored)
}

/// One EMA row of [`original_tail`]: `sum_j times(incentive_j, v_j / sum_j)` and, when `keep`,
/// the stored row (`(v_j / sum_j) / max_j` as u16).
#[inline(never)] // keeps the loop's registers to itself
fn original_finish_row<F: Copy>(
    cols: &[u16],
    vals: &[I32F32],
    columns: &[(Divisor, F, Divisor)],
    keep: bool,
    times: impl Fn(F, I32F32) -> I32F32,
) -> (SparseRowU16, I32F32) {
    let mut total = 0i64;
    if keep {
        // Collected, not zero-filled and overwritten: the row is written once.
        let row: SparseRowU16 = cols
            .iter()
            .zip(vals)
            .map(|(&j, &v)| {
                let up = match columns.get(usize::from(j)) {
                    Some((div, inc, max)) => {
                        let normalized = div.safe_div(v);
                        total = total.wrapping_add(times(*inc, normalized).to_bits());
                        max.safe_div(normalized)
                    }
                    None => v,
                };
                (j, up.proportion_to_u16())
            })
            .collect();
        (row, I32F32::from_bits(total))
    } else {
        for (&j, &v) in cols.iter().zip(vals) {
            if let Some((div, inc, _)) = columns.get(usize::from(j)) {
                total = total.wrapping_add(times(*inc, div.safe_div(v)).to_bits());
            }
        }
        (Vec::new(), I32F32::from_bits(total))
    }
}

/// One EMA row of [`original`]: `alpha * (w * A / delta_sum) + (1 - alpha) * (b / bond_sum)`
/// over the union of the row's columns, positive values written to `out_*`.
/// Original Yuma: `alpha * (w * A / delta_sum)` and `(1 - alpha) * (b / bond_sum)`.
struct OriginalTerms<'c, S> {
    alpha: UnitFactor,
    one_minus_alpha: UnitFactor,
    /// `w * A` for this row.
    times_stake: S,
    columns: &'c OriginalColumns,
    saturated: Divisor,
}

impl<S: Fn(I32F32) -> I32F32> EmaTerms for OriginalTerms<'_, S> {
    /// Row stake `A` and `alpha` are in `[0, 1]` and `w >= 0`: every step stays non-negative.
    #[inline(always)]
    fn new_term_bits(&self, j: u16, w: u64) -> i64 {
        let delta = (self.times_stake)(I32F32::from_bits(w as i64));
        let normalized = self
            .columns
            .delta
            .get(usize::from(j))
            .map_or(delta, |div| div.safe_div(delta));
        self.alpha.times_bits(normalized.to_bits() as u64) as i64
    }

    #[inline(always)]
    fn new_term(&self, j: u16, w: I32F32) -> I32F32 {
        let delta = (self.times_stake)(w);
        let normalized = self
            .columns
            .delta
            .get(usize::from(j))
            .map_or(delta, |div| div.safe_div(delta));
        self.alpha.times(normalized)
    }

    #[inline(always)]
    fn old_term(&self, j: u16, b: u16) -> I32F32 {
        let normalized = match self.columns.bond.get(usize::from(j)) {
            Some(Some(div)) => I32F32::from_bits(div.div(u64::from(b).wrapping_shl(32)) as i64),
            Some(None) => self.saturated.safe_div(I32F32::from_u16(b)),
            None => I32F32::ZERO, // column >= n: ignored
        };
        self.one_minus_alpha.times(normalized)
    }
}

/// One EMA row of [`original`], positive values written to `out_*`.
#[allow(clippy::too_many_arguments)] // one row's inputs
#[inline(never)] // keeps the loop's registers to itself
fn original_ema_row(
    rate: &FixedRate<'_>,
    (cols, vals): (&[u16], &[I32F32]),
    raw: &[(u16, u16)],
    times_stake: impl Fn(I32F32) -> I32F32,
    columns: &OriginalColumns,
    saturated: Divisor,
    acc: &mut RowAccumulator,
    (out_cols, out_vals): (&mut [u16], &mut [I32F32]),
) -> usize {
    let n = columns.delta.len();
    let terms = OriginalTerms {
        alpha: rate.alpha,
        one_minus_alpha: rate.one_minus_alpha,
        times_stake,
        columns,
        saturated,
    };
    if ascending(cols) && ascending_raw(raw) {
        ema_merge(
            (cols, vals),
            bonds_below(raw, n),
            &terms,
            out_cols,
            out_vals,
        )
    } else {
        acc.add(
            cols.iter()
                .zip(vals)
                .map(|(&j, &w)| (j, terms.new_term(j, w))),
        );
        acc.add(raw.iter().map(|&(j, b)| (j, terms.old_term(j, b))));
        acc.drain_positive(out_cols, out_vals)
    }
}

/// Strictly ascending columns in a stored row.
#[inline]
fn ascending_raw(row: &[(u16, u16)]) -> bool {
    row.windows(2)
        .all(|w| matches!(w, [(a, _), (b, _)] if a < b))
}

/// The entries of an ascending stored bond row with a column `< n` (the others sort last; the
/// reference ignores them).
fn bonds_below(raw: &[(u16, u16)], n: usize) -> &[(u16, u16)] {
    raw.get(..raw.partition_point(|&(j, _)| usize::from(j) < n))
        .unwrap_or(&[])
}

/// The two parts of an EMA entry: from a weight-for-bonds entry `(j, w)` and from a stored
/// bond `(j, b)`. Implementations inline both into [`ema_merge`]'s loop.
trait EmaTerms {
    fn new_term(&self, j: u16, w: I32F32) -> I32F32;
    fn old_term(&self, j: u16, b: u16) -> I32F32;

    /// [`EmaTerms::new_term`] of a non-negative `w`, given as its bits (below `2^63`), in bits.
    #[inline(always)]
    fn new_term_bits(&self, j: u16, w: u64) -> i64 {
        self.new_term(j, I32F32::from_bits(w as i64)).to_bits()
    }
}

/// Yuma3: `alpha * w` and `(1 - alpha) * b`, with (`MASKED`) or without the registration
/// mask.
struct Yuma3Terms<'r, 'a, const MASKED: bool>(&'r FixedRate<'a>);

impl<const MASKED: bool> EmaTerms for Yuma3Terms<'_, '_, MASKED> {
    #[inline(always)]
    fn new_term(&self, _: u16, w: I32F32) -> I32F32 {
        self.0.alpha.times(w)
    }

    #[inline(always)]
    fn old_term(&self, j: u16, b: u16) -> I32F32 {
        if MASKED {
            self.0.masked_term(j, b)
        } else {
            self.0.decay.times(b)
        }
    }
}

/// One EMA row for rows in ascending column order: over the union of the columns of `new`
/// (weights for bonds) and `old` (stored bonds, columns < n), in ascending order,
/// `new_term(j, w) + old_term(j, b)` (absent entries add nothing), written to `out_*` when
/// positive. Both terms must lie in `[0, 1]` (their sum is then exact). Returns the number
/// written; `out_*` must hold `new.len() + old.len()` entries.
#[inline(never)] // keeps the loop's registers to itself
fn ema_merge<T: EmaTerms>(
    (new_cols, new_vals): (&[u16], &[I32F32]),
    old: &[(u16, u16)],
    terms: &T,
    out_cols: &mut [u16],
    out_vals: &mut [I32F32],
) -> usize {
    let new_term = |j: u16, w: I32F32| terms.new_term(j, w);
    let old_term = |j: u16, b: u16| terms.old_term(j, b);
    let (mut a, mut b, mut k) = (0usize, 0usize, 0usize);
    // Both sides present. Mostly the same columns appear on both sides (bonds follow the
    // weights), so the branches are well predicted.
    while let (Some(&ja), Some(&w), Some(&(jb, raw))) =
        (new_cols.get(a), new_vals.get(a), old.get(b))
    {
        let (j, v) = if ja == jb {
            a = a.wrapping_add(1);
            b = b.wrapping_add(1);
            let (x, y) = (new_term(ja, w), old_term(jb, raw));
            (ja, I32F32::from_bits(x.to_bits().wrapping_add(y.to_bits())))
        } else if ja < jb {
            a = a.wrapping_add(1);
            (ja, new_term(ja, w))
        } else {
            b = b.wrapping_add(1);
            (jb, old_term(jb, raw))
        };
        if let (Some(c), Some(o)) = (out_cols.get_mut(k), out_vals.get_mut(k)) {
            *c = j;
            *o = v;
        }
        k = k.wrapping_add(usize::from(v > I32F32::ZERO));
    }
    // One side left.
    let rest_new = new_cols
        .get(a..)
        .unwrap_or(&[])
        .iter()
        .zip(new_vals.get(a..).unwrap_or(&[]))
        .map(|(&j, &w)| (j, new_term(j, w)));
    let rest_old = old
        .get(b..)
        .unwrap_or(&[])
        .iter()
        .map(|&(j, raw)| (j, old_term(j, raw)));
    for (j, v) in rest_new.chain(rest_old) {
        if let (Some(c), Some(o)) = (out_cols.get_mut(k), out_vals.get_mut(k)) {
            *c = j;
            *o = v;
        }
        k = k.wrapping_add(usize::from(v > I32F32::ZERO));
    }
    k
}

/// [`ema_merge`] fused with clipping, for a weight row in ascending column order (the bond row
/// in any order): each weight `v` is clipped by its column's consensus (the clipped value
/// added to the row sum and, times `scale`, to the column's rank), `alpha * wb(v, clipped)`
/// plus the column's bond term enters the EMA, and every EMA value is added to its column's
/// sum. Returns the number of EMA entries written and the row sum.
///
/// The row's bond terms are first parked in their columns (`pending`, with a presence bit),
/// so the weights are walked alone; bonds in columns without a weight (rare: bonds follow
/// the weights) are then merged in. All sums are of non-negative values below `2^34` (in
/// bits), at most 65536 of them, so wrapping additions are exact and equal the reference's
/// saturating ones.
#[allow(clippy::too_many_arguments)] // one fused loop's inputs and outputs
#[inline(never)] // keeps the loop's registers to itself
fn clip_ema_row(
    (cols, vals): (&[u16], &[I32F32]),
    raw: &[(u16, u16)],
    columns: &mut [ColumnState],
    scale: UnitFactor,
    alpha: UnitFactor,
    wb: impl Fn(I32F32, I32F32) -> I32F32,
    term: impl Fn(u16, u16) -> I32F32,
    (out_cols, out_vals): (&mut [u16], &mut [I32F32]),
    spill: &mut Vec<(u16, I32F32)>,
) -> (usize, I32F32) {
    const PRESENT: i64 = 1 << 62;
    const VALUE: i64 = PRESENT - 1;
    // The bond terms (at most 1, so below the presence bit); columns >= n are ignored.
    let mut bonds = 0usize;
    for &(j, b) in raw {
        if let Some(column) = columns.get_mut(usize::from(j)) {
            column.pending = term(j, b).to_bits() | PRESENT;
            bonds = bonds.wrapping_add(1);
        }
    }
    // The weights, in order.
    let (mut k, mut trust, mut matched) = (0usize, 0i64, 0usize);
    for (&j, &v) in cols.iter().zip(vals) {
        let Some(column) = columns.get_mut(usize::from(j)) else {
            continue; // unreachable: weight columns are < n
        };
        let (_, added) = column.clip(v);
        trust = trust.wrapping_add(added.to_bits());
        column.rank = I32F32::from_bits(
            column
                .rank
                .to_bits()
                .wrapping_add(scale.times(added).to_bits()),
        );
        let pending = column.pending;
        column.pending = 0;
        matched = matched.wrapping_add((pending >> 62) as usize);
        let e = alpha
            .times(wb(v, added))
            .to_bits()
            .wrapping_add(pending & VALUE);
        column.ema_sum = column.ema_sum.wrapping_add(e);
        if let (Some(c), Some(o)) = (out_cols.get_mut(k), out_vals.get_mut(k)) {
            *c = j;
            *o = I32F32::from_bits(e);
        }
        k = k.wrapping_add(usize::from(e > 0));
    }
    if matched < bonds {
        k = flush_pending(raw, columns, out_cols, out_vals, k, spill);
    }
    (k, I32F32::from_bits(trust))
}

/// The row's parked bond terms in columns without a weight (their EMA value is the bond term
/// alone): added to their column sums and merged, in column order, after the first `k`
/// entries of `out_*` (which have room for every weight and bond). Returns the new count.
#[inline(never)] // rare: bonds follow the weights
fn flush_pending(
    raw: &[(u16, u16)],
    columns: &mut [ColumnState],
    out_cols: &mut [u16],
    out_vals: &mut [I32F32],
    k: usize,
    spill: &mut Vec<(u16, I32F32)>,
) -> usize {
    const PRESENT: i64 = 1 << 62;
    const VALUE: i64 = PRESENT - 1;
    // Bonds in columns without a weight: their EMA value is the bond term alone.
    spill.clear();
    for &(j, _) in raw {
        if let Some(column) = columns.get_mut(usize::from(j))
            && column.pending != 0
        {
            let e = column.pending & VALUE;
            column.pending = 0;
            column.ema_sum = column.ema_sum.wrapping_add(e);
            if e > 0 {
                spill.push((j, I32F32::from_bits(e)));
            }
        }
    }
    spill.sort_unstable_by_key(|&(j, _)| j);
    // Merge them in from the back (`out_*` has room for every weight and bond).
    let (mut a, mut s, mut w) = (k, spill.len(), k.wrapping_add(spill.len()));
    while s > 0 {
        w = w.wrapping_sub(1);
        let from_spill = match (
            a.checked_sub(1).and_then(|i| out_cols.get(i)),
            spill.get(s.wrapping_sub(1)),
        ) {
            (Some(&ja), Some(&(js, _))) => js > ja,
            (None, Some(_)) => true,
            _ => false,
        };
        let (j, e) = if from_spill {
            s = s.wrapping_sub(1);
            spill.get(s).copied().unwrap_or((0, I32F32::ZERO))
        } else {
            a = a.wrapping_sub(1);
            (
                out_cols.get(a).copied().unwrap_or(0),
                out_vals.get(a).copied().unwrap_or(I32F32::ZERO),
            )
        };
        if let (Some(c), Some(o)) = (out_cols.get_mut(w), out_vals.get_mut(w)) {
            *c = j;
            *o = e;
        }
    }
    k.wrapping_add(spill.len())
}

/// Adds each entry to its column sum and raises the column maximum (non-negative values at
/// most 1: wrapping is exact).
#[inline(never)] // keeps the loop's registers to itself
fn add_to_column_sums_and_max(cols: &[u16], vals: &[I32F32], sums: &mut [i64], max: &mut [i64]) {
    for (&j, &v) in cols.iter().zip(vals) {
        if let (Some(s), Some(m)) = (sums.get_mut(usize::from(j)), max.get_mut(usize::from(j))) {
            *s = s.wrapping_add(v.to_bits());
            *m = (*m).max(v.to_bits());
        }
    }
}

/// Adds each entry to its column sum (non-negative values at most 1: wrapping is exact).
#[inline(never)] // keeps the loop's registers to itself
fn add_to_column_sums(cols: &[u16], vals: &[I32F32], sums: &mut [i64]) {
    for (&j, &v) in cols.iter().zip(vals) {
        if let Some(s) = sums.get_mut(usize::from(j)) {
            *s = s.wrapping_add(v.to_bits());
        }
    }
}

/// One EMA row's stored bonds (when `keep`; the EMA turned into u16) and, when
/// `with_dividend`, `sum_j (v_j / col_sum_j) * incentive_j` (`columns[j]` = the column's
/// divisor and incentive, multiplied by `times`). The terms are non-negative and bounded, so
/// the reference's saturating sum is the exact sum.
#[inline(never)] // keeps the loop's registers to itself
fn finish_row<F: Copy>(
    cols: &[u16],
    vals: &[I32F32],
    columns: &[(Divisor, F)],
    keep: bool,
    with_dividend: bool,
    times: impl Fn(F, I32F32) -> I32F32,
) -> (SparseRowU16, I32F32) {
    #[inline(always)]
    fn term<F: Copy>(
        columns: &[(Divisor, F)],
        times: &impl Fn(F, I32F32) -> I32F32,
        j: u16,
        v: I32F32,
    ) -> i64 {
        columns
            .get(usize::from(j))
            .map_or(0, |(div, inc)| times(*inc, div.safe_div(v)).to_bits())
    }
    // Each term is at most 1 (2^32 in bits; the normalized value is at most 1 and so is the
    // incentive), at most 65536 of them: the sum is exact in 64 bits.
    let mut total = 0i64;
    let row = if keep {
        let mut row: SparseRowU16 = vec![(0, 0); cols.len()];
        if with_dividend {
            for ((&j, &v), slot) in cols.iter().zip(vals).zip(row.iter_mut()) {
                *slot = (j, v.proportion_to_u16());
                total = total.wrapping_add(term(columns, &times, j, v));
            }
        } else {
            for ((&j, &v), slot) in cols.iter().zip(vals).zip(row.iter_mut()) {
                *slot = (j, v.proportion_to_u16());
            }
        }
        row
    } else {
        if with_dividend {
            for (&j, &v) in cols.iter().zip(vals) {
                total = total.wrapping_add(term(columns, &times, j, v));
            }
        }
        Vec::new()
    };
    (row, I32F32::from_bits(total))
}
