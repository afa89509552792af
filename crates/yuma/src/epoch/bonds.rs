//! Bonds and dividends: the Yuma3 and original-Yuma bond EMAs (fixed or liquid alpha).

use super::consensus::ColumnState;
use super::fixed_rate::{self, FixedRate, fixed_ema_alpha};
use super::{Csr, ascending, normalize};
use crate::fixed::{Divisor, I32F32, UnitFactor, exp_safe};
use crate::types::{EpochState, Hyperparams, SparseRowU16};

/// Reusable buffers of the bonds stage (see [`super::Workspace`]).
#[derive(Debug, Default)]
pub(super) struct BondScratch {
    pub(super) ema: Csr,
    /// Fixed-rate passes: per column, the clipping state and the EMA's column sum.
    pub(super) states: Vec<ColumnState>,
    pub(super) col_sum: Vec<i64>,
    /// Fixed-rate pass 2: per column, the normalization divisor and the incentive.
    pub(super) unit_columns: Vec<(Divisor, UnitFactor)>,
    pub(super) plain_columns: Vec<(Divisor, I32F32)>,
    row_cols: Vec<u16>,
    row_vals: Vec<I32F32>,
    bond_row: Vec<(u16, I32F32)>,
    row: RowAccumulator,
}

impl BondScratch {
    /// The EMA rows and the row accumulator.
    pub(super) fn ema_and_row(&mut self) -> (&mut Csr, &mut RowAccumulator) {
        (&mut self.ema, &mut self.row)
    }

    /// The EMA rows, the row accumulator, a row buffer (columns, values) and a pair buffer.
    #[allow(clippy::type_complexity)] // disjoint borrows of the buffers
    pub(super) fn fused_buffers(
        &mut self,
    ) -> (
        &mut Csr,
        &mut RowAccumulator,
        &mut Vec<u16>,
        &mut Vec<I32F32>,
        &mut Vec<(u16, I32F32)>,
    ) {
        (
            &mut self.ema,
            &mut self.row,
            &mut self.row_cols,
            &mut self.row_vals,
            &mut self.bond_row,
        )
    }

    /// The EMA rows.
    pub(super) fn ema(&self) -> &Csr {
        &self.ema
    }

    fn ema_builder(&mut self, n: usize, alpha: I32F32, room: usize) -> EmaBuilder {
        let mut out = core::mem::take(&mut self.ema);
        out.clear();
        out.grow(room);
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

pub(super) struct BondsContext<'a> {
    /// Per column `< n`: whether bonds to it survive the registration mask.
    pub(super) bond_kept: &'a [bool],
    pub(super) hp: &'a Hyperparams,
    pub(super) st: &'a EpochState,
    pub(super) n: usize,
    pub(super) last_tempo: u64,
    pub(super) weights_for_bonds: &'a Csr,
    pub(super) consensus: &'a [I32F32],
    pub(super) incentive: &'a [I32F32],
    pub(super) active_stake: &'a [I32F32],
    pub(super) new_permit: &'a [bool],
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
    pub(super) fn yuma3(&self, scratch: &mut BondScratch) -> (Vec<I32F32>, Vec<SparseRowU16>) {
        let liquid = self.hp.liquid_alpha_enabled
            && !self.consensus.is_empty()
            && self.consensus.iter().any(|&c| c != I32F32::ZERO);
        let mut col_sum = vec![I32F32::ZERO; self.n];
        let mut stored: Vec<SparseRowU16> = Vec::with_capacity(self.n);
        let mut old_buf = core::mem::take(&mut scratch.bond_row);
        let alpha = fixed_ema_alpha(self.hp.bonds_moving_average);
        if !liquid && let Some(rate) = FixedRate::new(self.hp.bonds_moving_average, self.bond_kept)
        {
            scratch.bond_row = old_buf;
            fixed_rate::ema_rows(
                &rate,
                self.weights_for_bonds,
                &self.st.bonds_prev,
                self.n,
                scratch,
            );
            return fixed_rate::finish(scratch, self.incentive, self.new_permit, self.active_stake);
        }
        let ema = if liquid {
            let mut out = core::mem::take(&mut scratch.ema);
            self.ema_liquid(&mut col_sum, &mut out, &mut old_buf);
            out
        } else {
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
    pub(super) fn yuma2(&self, scratch: &mut BondScratch) -> (Vec<I32F32>, Vec<SparseRowU16>) {
        let n = self.n;
        if let Some(rate) = FixedRate::new(self.hp.bonds_moving_average, self.bond_kept) {
            return fixed_rate::original(
                &rate,
                self.weights_for_bonds,
                &self.st.bonds_prev,
                self.active_stake,
                self.incentive,
                self.new_permit,
                n,
                scratch,
            );
        }
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
        let (src_cols, src_vals) = (
            self.row_cols.get(..w).unwrap_or(&[]),
            self.row_vals.get(..w).unwrap_or(&[]),
        );
        let (dst_cols, dst_vals) = self.out.slots(w);
        dst_cols.copy_from_slice(src_cols);
        dst_vals.copy_from_slice(src_vals);
        self.out.finish_row(w);
        let last = self.out.ptr.len().saturating_sub(1);
        self.out.row(last.saturating_sub(1))
    }
}

/// A dense row accumulator over the columns `0..n` that remembers which columns it touched
/// (a bitmap), so that reading the row back in ascending column order costs the number of
/// touched columns plus one bit test per 64 columns of their span, not `n`.
///
/// This is the reference's per-row dense accumulation (`mat_ema_sparse` and friends) without
/// its `n`-wide scan and reset, and it does not depend on the order the entries come in.
#[derive(Debug, Default)]
pub(super) struct RowAccumulator {
    values: Vec<I32F32>,
    bits: Vec<u64>,
    /// Range of bitmap words touched since the last drain.
    first_word: usize,
    end_word: usize,
}

impl RowAccumulator {
    /// Prepares for rows of `n` columns (all zero).
    pub(super) fn reset(&mut self, n: usize) {
        self.values.clear();
        self.values.resize(n, I32F32::ZERO);
        self.bits.clear();
        self.bits.resize(n.div_ceil(64), 0);
        self.first_word = usize::MAX;
        self.end_word = 0;
    }

    /// `row[j] += v` (saturating) for every entry; columns `>= n` are ignored.
    #[inline]
    pub(super) fn add(&mut self, entries: impl Iterator<Item = (u16, I32F32)>) {
        let (mut first, mut end) = (self.first_word, self.end_word);
        for (j, v) in entries {
            let ju = usize::from(j);
            let word = ju >> 6;
            if let (Some(slot), Some(bits)) = (self.values.get_mut(ju), self.bits.get_mut(word)) {
                *slot = slot.saturating_add(v);
                *bits |= 1u64 << (ju & 63);
                first = first.min(word);
                end = end.max(word);
            }
        }
        self.first_word = first;
        self.end_word = end;
    }

    /// Writes the touched columns in ascending order with their positive values to `cols` /
    /// `vals` (which must hold as many entries as were added), returns how many, and clears
    /// the row.
    #[inline]
    pub(super) fn drain_positive(&mut self, cols: &mut [u16], vals: &mut [I32F32]) -> usize {
        let (first, last) = (self.first_word, self.end_word);
        self.first_word = usize::MAX;
        self.end_word = 0;
        let mut k = 0usize;
        let Some(words) = self.bits.get_mut(first..=last) else {
            return k; // nothing touched
        };
        for (w, word) in (first..=last).zip(words.iter_mut()) {
            let mut bits = *word;
            *word = 0;
            while bits != 0 {
                let j = (w << 6) | bits.trailing_zeros() as usize;
                bits &= bits.wrapping_sub(1);
                if let Some(slot) = self.values.get_mut(j) {
                    // Branch-free: written always, kept when positive.
                    let v = *slot;
                    *slot = I32F32::ZERO;
                    if let (Some(c), Some(x)) = (cols.get_mut(k), vals.get_mut(k)) {
                        *c = j as u16; // j < n <= 65535
                        *x = v;
                    }
                    k = k.wrapping_add(usize::from(v > I32F32::ZERO));
                }
            }
        }
        k
    }
}

/// A stored bond row: `(column, fixed_proportion_to_u16(value))`.
pub(super) fn u16_row(cols: &[u16], vals: &[I32F32]) -> SparseRowU16 {
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
