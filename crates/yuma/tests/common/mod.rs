//! Shared test helpers: a literal transcription of subtensor's sparse epoch (for differential
//! testing of the optimized implementation) and a random subnet generator.

#![allow(
    dead_code,
    clippy::collapsible_if,
    clippy::nonminimal_bool, // kept as literal transcriptions of the reference's conditions
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::needless_range_loop
)]

use noesis_yuma::fixed::{I32F32, I64F64, share_of_rao};
use noesis_yuma::{EpochState, Hyperparams, Inputs, Outputs};

type Sparse = Vec<Vec<(u16, I32F32)>>;

const ZERO: I32F32 = I32F32::ZERO;
const ONE: I32F32 = I32F32::ONE;

fn sum(x: &[I32F32]) -> I32F32 {
    x.iter().fold(ZERO, |a, &b| a.saturating_add(b))
}

fn inplace_normalize(x: &mut [I32F32]) {
    let s = sum(x);
    if s == ZERO {
        return;
    }
    x.iter_mut().for_each(|v| *v = v.safe_div(s));
}

fn inplace_normalize_using_sum(x: &mut [I32F32], s: I32F32) {
    if s == ZERO {
        return;
    }
    x.iter_mut().for_each(|v| *v = v.safe_div(s));
}

fn is_topk_nonzero(v: &[I32F32], k: usize) -> Vec<bool> {
    let n = v.len();
    let mut result: Vec<bool> = v.iter().map(|&e| e != ZERO).collect();
    if n < k {
        return result;
    }
    let mut idxs: Vec<usize> = (0..n).collect();
    idxs.sort_by_key(|&i| v[i]);
    for &i in idxs.iter().take(n - k) {
        result[i] = false;
    }
    result
}

fn inplace_row_normalize_sparse(m: &mut Sparse) {
    for row in m.iter_mut() {
        let s = row.iter().fold(ZERO, |a, (_, v)| a.saturating_add(*v));
        if s > ZERO {
            row.iter_mut().for_each(|(_, v)| *v = v.safe_div(s));
        }
    }
}

fn weighted_median(
    stake: &[I32F32],
    score: &[I32F32],
    partition_idx: &[usize],
    minority: I32F32,
    mut lo: I32F32,
    mut hi: I32F32,
) -> I32F32 {
    let mut cur: Vec<usize> = partition_idx.to_vec();
    let mut counter = 0usize;
    let limit = partition_idx.len();
    let mut lower = vec![];
    let mut upper = vec![];
    loop {
        let n = cur.len();
        if n == 0 {
            return ZERO;
        }
        if n == 1 {
            return score[cur[0]];
        }
        let pivot = score[cur[n / 2]];
        let mut lo_s = ZERO;
        let mut hi_s = ZERO;
        for &idx in &cur {
            if score[idx] == pivot {
                continue;
            }
            if score[idx] < pivot {
                lo_s = lo_s.saturating_add(stake[idx]);
                lower.push(idx);
            } else {
                hi_s = hi_s.saturating_add(stake[idx]);
                upper.push(idx);
            }
        }
        if minority < lo.saturating_add(lo_s) && !lower.is_empty() {
            cur = lower.clone();
            hi = lo.saturating_add(lo_s);
        } else if hi.saturating_sub(hi_s) <= minority && !upper.is_empty() {
            cur = upper.clone();
            lo = hi.saturating_sub(hi_s);
        } else {
            return pivot;
        }
        lower.clear();
        upper.clear();
        counter += 1;
        if counter > limit {
            break;
        }
    }
    ZERO
}

fn weighted_median_col_sparse(
    stake: &[I32F32],
    score: &Sparse,
    columns: usize,
    majority: I32F32,
) -> Vec<I32F32> {
    let mut use_stake: Vec<I32F32> = stake.iter().copied().filter(|&s| s > ZERO).collect();
    inplace_normalize(&mut use_stake);
    let stake_sum = sum(&use_stake);
    let minority = stake_sum.saturating_sub(majority);
    let idx: Vec<usize> = (0..use_stake.len()).collect();
    let mut use_score = vec![vec![ZERO; use_stake.len()]; columns];
    let mut k = 0;
    for (s, row) in stake.iter().zip(score) {
        if *s > ZERO {
            for &(c, v) in row {
                if (c as usize) < columns {
                    use_score[c as usize][k] = v;
                }
            }
            k += 1;
        }
    }
    use_score
        .iter()
        .map(|col| weighted_median(&use_stake, col, &idx, minority, ZERO, stake_sum))
        .collect()
}

fn col_clip_sparse(m: &Sparse, th: &[I32F32]) -> Sparse {
    m.iter()
        .map(|row| {
            let mut out = vec![];
            for &(j, v) in row {
                let t = th.get(j as usize).copied().unwrap_or(ZERO);
                if t < v {
                    if t > ZERO {
                        out.push((j, t));
                    }
                } else {
                    out.push((j, v));
                }
            }
            out
        })
        .collect()
}

fn interpolate_sparse(m1: &Sparse, m2: &Sparse, columns: usize, ratio: I32F32) -> Sparse {
    if ratio == ZERO {
        return m1.clone();
    }
    if ratio == ONE {
        return m2.clone();
    }
    let mut result = vec![vec![]; m1.len()];
    for i in 0..m1.len() {
        let mut r1 = vec![ZERO; columns];
        for &(j, v) in &m1[i] {
            r1[j as usize] = v;
        }
        let mut r2 = vec![ZERO; columns];
        for &(j, v) in &m2[i] {
            r2[j as usize] = v;
        }
        for j in 0..columns {
            let x = r1[j].saturating_add(ratio.saturating_mul(r2[j].saturating_sub(r1[j])));
            if ZERO < x {
                result[i].push((j as u16, x));
            }
        }
    }
    result
}

fn inplace_col_normalize_sparse(m: &mut Sparse, columns: usize) {
    let mut cs = vec![ZERO; columns];
    for row in m.iter() {
        for &(j, v) in row {
            if let Some(s) = cs.get_mut(j as usize) {
                *s = s.saturating_add(v);
            }
        }
    }
    for row in m.iter_mut() {
        for (j, v) in row.iter_mut() {
            let d = cs.get(*j as usize).copied().unwrap_or(ZERO);
            if d != ZERO {
                *v = v.safe_div(d);
            }
        }
    }
}

fn inplace_col_max_upscale_sparse(m: &mut Sparse, columns: usize) {
    let mut cm = vec![ZERO; columns];
    for row in m.iter() {
        for &(j, v) in row {
            if let Some(x) = cm.get_mut(j as usize) {
                if *x < v {
                    *x = v;
                }
            }
        }
    }
    for row in m.iter_mut() {
        for (j, v) in row.iter_mut() {
            let d = cm.get(*j as usize).copied().unwrap_or(ZERO);
            if d != ZERO {
                *v = v.safe_div(d);
            }
        }
    }
}

fn mat_ema_sparse(new: &Sparse, old: &Sparse, alpha: I32F32) -> Sparse {
    let one_minus = ONE.saturating_sub(alpha);
    let n = new.len();
    let mut result = vec![];
    for (i, nr) in new.iter().enumerate() {
        let mut acc = vec![ZERO; n];
        for &(j, v) in nr {
            if let Some(c) = acc.get_mut(j as usize) {
                *c = c.saturating_add(alpha.saturating_mul(v));
            }
        }
        for &(j, v) in &old[i] {
            if let Some(c) = acc.get_mut(j as usize) {
                *c = c.saturating_add(one_minus.saturating_mul(v));
            }
        }
        result.push(
            acc.iter()
                .enumerate()
                .filter(|(_, v)| **v > ZERO)
                .map(|(j, v)| (j as u16, *v))
                .collect(),
        );
    }
    result
}

/// Generic `exp` with the library's loop (checked operations everywhere).
fn exp_lib(x: I32F32) -> Option<I32F32> {
    if x == ZERO {
        return Some(ONE);
    }
    if x == ONE {
        return Some(I32F32::E_I9F23);
    }
    let neg = x < ZERO;
    let x = if neg { x.checked_neg()? } else { x };
    let mut result = x.checked_add(ONE)?;
    let mut term = x;
    for i in 2..32 {
        term = term.checked_mul(x)?;
        term = term.checked_div(I32F32::from_i32(i))?;
        result = result.checked_add(term)?;
    }
    if neg {
        result = ONE.checked_div(result)?;
    }
    Some(result)
}

fn exp_safe(input: I32F32) -> I32F32 {
    let lo = I32F32::from_i32(-20);
    let hi = I32F32::from_i32(20);
    let x = if input < lo {
        lo
    } else if hi < input {
        hi
    } else {
        input
    };
    match exp_lib(x) {
        Some(v) => v,
        None => {
            if x <= ZERO {
                ZERO
            } else {
                I32F32::MAX
            }
        }
    }
}

fn clamp_value(v: I32F32, lo: I32F32, hi: I32F32) -> I32F32 {
    v.min(hi).max(lo)
}

fn alpha_sigmoid(c: I32F32, w: I32F32, b: I32F32, lo: I32F32, hi: I32F32, k: I32F32) -> I32F32 {
    let buy = clamp_value(w.saturating_sub(c), ZERO, ONE);
    let sell = clamp_value(b.saturating_sub(w), ZERO, ONE);
    let d = if w >= b { buy } else { sell };
    let sig = ONE.saturating_div(
        ONE.saturating_add(exp_safe(
            k.saturating_div(I32F32::from_i32(-100))
                .saturating_mul(d.saturating_sub(I32F32::HALF)),
        )),
    );
    let a = lo.saturating_add(sig.saturating_mul(hi.saturating_sub(lo)));
    clamp_value(a, lo, hi)
}

fn liquid_alphas(hp: &Hyperparams, w: &Sparse, b: &Sparse, c: &[I32F32]) -> Vec<Vec<I32F32>> {
    let k = I32F32::from_i16(hp.alpha_sigmoid_steepness);
    let lo = I32F32::from_u16(hp.alpha_low).safe_div(I32F32::U16_MAX);
    let hi = I32F32::from_u16(hp.alpha_high).safe_div(I32F32::U16_MAX);
    let mut alphas = vec![];
    for (wr, br) in w.iter().zip(b) {
        let mut row = vec![];
        let mut wi = wr.iter().peekable();
        let mut bi = br.iter().peekable();
        for (jp, &cv) in c.iter().enumerate() {
            let j = jp as u16;
            let mut weight = ZERO;
            while let Some(&&(i, v)) = wi.peek() {
                if i < j {
                    wi.next();
                } else {
                    if i == j {
                        weight = v;
                    }
                    break;
                }
            }
            let mut bond = ZERO;
            while let Some(&&(i, v)) = bi.peek() {
                if i < j {
                    bi.next();
                } else {
                    if i == j {
                        bond = v;
                    }
                    break;
                }
            }
            row.push(alpha_sigmoid(cv, weight, bond, lo, hi, k));
        }
        alphas.push(row);
    }
    alphas
}

fn mat_ema_alpha_sparse(new: &Sparse, old: &Sparse, alpha: &[Vec<I32F32>]) -> Sparse {
    let mut result = vec![];
    for ((nr, or), ar) in new.iter().zip(old).zip(alpha) {
        let mut decayed = vec![ZERO; ar.len()];
        for &(j, ov) in or {
            if let (Some(&a), Some(c)) = (ar.get(j as usize), decayed.get_mut(j as usize)) {
                *c = ONE.saturating_sub(a).saturating_mul(ov);
            }
        }
        let mut out = vec![];
        for &(j, nv) in nr {
            if let (Some(&a), Some(&d)) = (ar.get(j as usize), decayed.get(j as usize)) {
                let inc = a.saturating_mul(nv).max(ZERO);
                let v = d.saturating_add(inc).min(ONE);
                if v > ZERO {
                    out.push((j, v));
                }
            }
        }
        result.push(out);
    }
    result
}

/// Literal transcription of `epoch_mechanism` (dense helper buffers, no shortcuts).
pub fn reference_epoch(inputs: &Inputs) -> Outputs {
    let hp = inputs.hyperparams();
    let st = inputs.state();
    let n = st.n as usize;
    let inactive: Vec<bool> = st
        .last_update
        .iter()
        .map(|u| u.saturating_add(hp.activity_cutoff) < st.block)
        .collect();
    let active: Vec<bool> = inactive.iter().map(|b| !b).collect();

    let owner = st.owner_uid;
    let mut filtered: Vec<I64F64> = st
        .stake
        .iter()
        .enumerate()
        .map(|(uid, &s)| {
            let s = I64F64::saturating_from_u64(s);
            if owner != Some(uid as u16) && s.to_u64_saturating() < hp.stake_threshold {
                I64F64::ZERO
            } else {
                s
            }
        })
        .collect();
    let total = filtered
        .iter()
        .fold(I64F64::ZERO, |a, &b| a.saturating_add(b));
    if total != I64F64::ZERO {
        filtered.iter_mut().for_each(|v| *v = v.safe_div(total));
    }
    let stake: Vec<I32F32> = filtered.iter().map(|v| v.to_i32f32_saturating()).collect();

    let mut permits = st.validator_permit.clone();
    if let Some(o) = owner {
        if let Some(p) = permits.get_mut(o as usize) {
            *p = true;
        }
    }
    let forbids: Vec<bool> = permits.iter().map(|b| !b).collect();
    let mut new_permits = is_topk_nonzero(&stake, hp.max_allowed_validators as usize);
    if let Some(o) = owner {
        if let Some(p) = new_permits.get_mut(o as usize) {
            *p = true;
        }
    }

    let mut active_stake = stake.clone();
    for i in 0..n {
        if inactive[i] || forbids[i] {
            active_stake[i] = ZERO;
        }
    }
    inplace_normalize(&mut active_stake);

    // weights
    let mut weights: Sparse = st
        .weights
        .iter()
        .map(|r| {
            r.iter()
                .filter(|(j, _)| (*j as usize) < n)
                .map(|&(j, w)| (j, I32F32::from_u16(w)))
                .collect()
        })
        .collect();
    for i in 0..n {
        if forbids[i] {
            weights[i] = vec![];
        }
    }
    for (i, row) in weights.iter_mut().enumerate() {
        row.retain(|&(j, _)| match owner {
            Some(o) => i != j as usize || (i == o as usize && j == o),
            None => i != j as usize,
        });
    }
    for (i, row) in weights.iter_mut().enumerate() {
        let lu = st.last_update[i];
        row.retain(|&(j, _)| {
            !(lu <= st
                .block_at_registration
                .get(j as usize)
                .copied()
                .unwrap_or(0))
        });
    }
    if hp.commit_reveal_enabled {
        let cb: Vec<u64> = match &st.commit_blocks {
            Some(c) => c.iter().map(|x| x.unwrap_or(u64::MAX)).collect(),
            None => vec![u64::MAX; n],
        };
        for (i, row) in weights.iter_mut().enumerate() {
            row.retain(|&(j, _)| {
                !(cb[i]
                    < st.block_at_registration
                        .get(j as usize)
                        .copied()
                        .unwrap_or(0))
            });
        }
    }
    inplace_row_normalize_sparse(&mut weights);

    let kappa = I32F32::from_u16(hp.kappa).safe_div(I32F32::U16_MAX);
    let consensus = weighted_median_col_sparse(&active_stake, &weights, n, kappa);
    let clipped = col_clip_sparse(&weights, &consensus);
    let validator_trust: Vec<I32F32> = clipped
        .iter()
        .map(|r| r.iter().fold(ZERO, |a, (_, v)| a.saturating_add(*v)))
        .collect();
    let mut ranks = vec![ZERO; n];
    for (i, row) in clipped.iter().enumerate() {
        for &(j, v) in row {
            ranks[j as usize] = ranks[j as usize].saturating_add(active_stake[i].saturating_mul(v));
        }
    }
    let ranks_out = ranks.clone();
    inplace_normalize(&mut ranks);
    let incentive = ranks;

    let penalty = I32F32::from_u16(hp.bonds_penalty).safe_div(I32F32::U16_MAX);
    let wfb = interpolate_sparse(&weights, &clipped, n, penalty);

    let lms = st.last_mechanism_step_block;
    let last_tempo = if lms == 0 {
        st.block.saturating_sub(hp.tempo as u64)
    } else {
        lms.saturating_add(1)
    };
    let bond_mask = |b: Sparse| -> Sparse {
        b.into_iter()
            .map(|r| {
                r.into_iter()
                    .filter(|&(j, _)| {
                        !(last_tempo
                            <= st
                                .block_at_registration
                                .get(j as usize)
                                .copied()
                                .unwrap_or(0))
                    })
                    .collect()
            })
            .collect()
    };

    let bma = I64F64::saturating_from_u64(hp.bonds_moving_average)
        .saturating_div(I64F64::saturating_from_u64(1_000_000));
    let fixed_alpha = ONE.saturating_sub(bma.to_i32f32_saturating());

    let mut dividends: Vec<I32F32>;
    let mut ema: Sparse;
    if hp.yuma3_enabled {
        let bonds: Sparse = st
            .bonds_prev
            .iter()
            .map(|r| {
                r.iter()
                    .map(|&(j, b)| (j, I32F32::from_u16(b).safe_div(I32F32::U16_MAX)))
                    .collect()
            })
            .collect();
        let bonds = bond_mask(bonds);
        ema = if hp.liquid_alpha_enabled
            && !consensus.is_empty()
            && consensus.iter().any(|&c| c != ZERO)
        {
            let alphas = liquid_alphas(hp, &wfb, &bonds, &consensus);
            mat_ema_alpha_sparse(&wfb, &bonds, &alphas)
        } else {
            mat_ema_sparse(&wfb, &bonds, fixed_alpha)
        };
        let mut norm = ema.clone();
        inplace_col_normalize_sparse(&mut norm, n);
        let tb: Vec<I32F32> = norm
            .iter()
            .map(|r| {
                r.iter()
                    .filter_map(|&(j, v)| incentive.get(j as usize).map(|&x| v.saturating_mul(x)))
                    .filter(|&x| x != ZERO)
                    .fold(ZERO, |a, b| a.saturating_add(b))
            })
            .collect();
        dividends = tb
            .iter()
            .zip(&active_stake)
            .map(|(t, a)| t.checked_mul(*a).unwrap_or_default())
            .collect();
        inplace_normalize(&mut dividends);
    } else {
        let bonds: Sparse = st
            .bonds_prev
            .iter()
            .map(|r| r.iter().map(|&(j, b)| (j, I32F32::from_u16(b))).collect())
            .collect();
        let mut bonds = bond_mask(bonds);
        inplace_col_normalize_sparse(&mut bonds, n);
        let mut delta: Sparse = wfb
            .iter()
            .zip(&active_stake)
            .map(|(r, &s)| r.iter().map(|&(j, v)| (j, v.saturating_mul(s))).collect())
            .collect();
        inplace_col_normalize_sparse(&mut delta, n);
        ema = mat_ema_sparse(&delta, &bonds, fixed_alpha);
        inplace_col_normalize_sparse(&mut ema, n);
        dividends = ema
            .iter()
            .map(|r| {
                r.iter().fold(ZERO, |a, &(j, v)| {
                    a.saturating_add(
                        incentive
                            .get(j as usize)
                            .copied()
                            .unwrap_or(ZERO)
                            .saturating_mul(v),
                    )
                })
            })
            .collect();
        inplace_normalize(&mut dividends);
        inplace_col_max_upscale_sparse(&mut ema, n);
    }

    let combined: Vec<I32F32> = incentive
        .iter()
        .zip(&dividends)
        .map(|(a, b)| a.saturating_add(*b))
        .collect();
    let emission_sum = sum(&combined);
    let mut nse = incentive.clone();
    let mut nve = dividends.clone();
    let mut nce = combined.clone();
    inplace_normalize_using_sum(&mut nse, emission_sum);
    inplace_normalize_using_sum(&mut nve, emission_sum);
    inplace_normalize(&mut nce);
    if emission_sum == ZERO {
        if sum(&active_stake) == ZERO {
            nve = stake.clone();
            nce = stake.clone();
        } else {
            nve = active_stake.clone();
            nce = active_stake.clone();
        }
    }
    let rao = |v: &[I32F32]| -> Vec<u64> {
        v.iter()
            .map(|&x| share_of_rao(x, st.rao_emission))
            .collect()
    };
    let bonds_new = ema
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if new_permits[i] {
                r.iter().map(|&(j, v)| (j, v.proportion_to_u16())).collect()
            } else {
                vec![]
            }
        })
        .collect();
    Outputs {
        active,
        new_validator_permit: new_permits,
        stake_normalized: stake,
        active_stake,
        consensus,
        validator_trust,
        ranks: ranks_out,
        incentive,
        dividends,
        bonds_new,
        emission_sum,
        server_emission: rao(&nse),
        validator_emission: rao(&nve),
        emission: rao(&nce),
        normalized_server_emission: nse,
        normalized_validator_emission: nve,
        normalized_combined_emission: nce,
    }
}

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// Picks one of the listed values (evaluated before the pick, so they may use the rng too).
macro_rules! pick {
    ($rng:expr, [$($x:expr),+ $(,)?]) => {{
        let xs = [$($x),+];
        let i = $rng.below(xs.len() as u64) as usize;
        xs[i]
    }};
}

/// Options for [`random_inputs`].
#[derive(Clone, Copy, Debug)]
pub struct GenOptions {
    pub max_n: u64,
    /// Allow rows in non-ascending column order.
    pub unsorted: bool,
    /// Large-epoch shapes: most uids validate, weight rows copied from a few templates or with
    /// power-of-two magnitudes (equal and widely spread scores in a column), bonds mostly on
    /// the weighted columns.
    pub heavy: bool,
    /// Original Yuma (Yuma3 off) with a bonds penalty of 0 or 1 only.
    pub original: bool,
}

/// A random but plausible subnet, exercising every switch.
pub fn random_inputs(rng: &mut Rng, opts: GenOptions) -> Inputs {
    let n = 1 + rng.below(opts.max_n) as usize;
    let block = 1000 + rng.below(100_000);
    let tempo = pick!(rng, [1u16, 10, 99, 360]);
    let hp = Hyperparams {
        kappa: pick!(
            rng,
            [32767u16, 0, 65535, 16384, 50000, rng.below(65536) as u16]
        ),
        bonds_penalty: pick!(rng, [65535u16, 0, 32767, 1, 65534, rng.below(65536) as u16]),
        bonds_moving_average: pick!(
            rng,
            [
                900_000u64,
                975_000,
                0,
                1_000_000,
                500_000,
                2_000_000,
                rng.below(1_000_001)
            ]
        ),
        yuma3_enabled: rng.chance(2, 3),
        liquid_alpha_enabled: rng.chance(1, 2),
        alpha_low: pick!(rng, [45875u16, 1638, 0, 65535, rng.below(65536) as u16]),
        alpha_high: pick!(rng, [58982u16, 65535, 1638, rng.below(65536) as u16]),
        alpha_sigmoid_steepness: pick!(
            rng,
            [1000i16, 10, 0, -500, 32767, -32768, rng.next_u64() as i16]
        ),
        max_allowed_validators: pick!(rng, [64u16, 1, 2, 5, n as u16, 4096]),
        stake_threshold: pick!(rng, [0u64, 1000, 1_000_000_000]),
        tempo,
        activity_cutoff: pick!(rng, [5000u64, 1, 100, 50_000]),
        commit_reveal_enabled: rng.chance(1, 3),
        max_weight_limit: 65535,
    };
    let mut hp = hp;
    if opts.original {
        // Original Yuma with the bonds following the clipped or the raw weights (its fused path).
        hp.yuma3_enabled = false;
        hp.bonds_penalty = if hp.bonds_penalty.is_multiple_of(2) {
            0
        } else {
            65535
        };
    }
    let stake: Vec<u64> = (0..n)
        .map(|_| match rng.below(6) {
            0 => 0,
            1 => rng.below(2000),
            2 => rng.below(1 << 40),
            3 => rng.next_u64() >> 8,
            _ => rng.below(1_000_000_000_000),
        })
        .collect();
    let last_update: Vec<u64> = (0..n)
        .map(|_| {
            if rng.chance(1, 5) {
                block.saturating_sub(rng.below(60_000))
            } else {
                block.saturating_sub(rng.below(500))
            }
        })
        .collect();
    let block_at_registration: Vec<u64> = (0..n)
        .map(|_| match rng.below(8) {
            0 => 0,
            1 => block.saturating_sub(rng.below(600)),
            _ => block.saturating_sub(600 + rng.below(80_000)),
        })
        .collect();
    let permit_chance = if opts.heavy { 9 } else { 6 };
    let validator_permit: Vec<bool> = (0..n).map(|_| rng.chance(permit_chance, 9)).collect();
    let owner_uid = if rng.chance(1, 3) {
        Some(rng.below(n as u64 + 2) as u16)
    } else {
        None
    };
    let row = |rng: &mut Rng, density: u64, allow_oob: bool| -> Vec<(u16, u16)> {
        let mut cols: Vec<u16> = (0..n as u16).filter(|_| rng.below(100) < density).collect();
        if allow_oob && rng.chance(1, 10) {
            cols.push(n as u16 + rng.below(3) as u16);
        }
        if opts.unsorted && rng.chance(1, 3) {
            // Shuffle.
            for i in (1..cols.len()).rev() {
                let k = rng.below(i as u64 + 1) as usize;
                cols.swap(i, k);
            }
        }
        cols.into_iter()
            .map(|j| {
                let v = match rng.below(5) {
                    0 => 0,
                    1 => 65535,
                    _ => rng.below(65536) as u16,
                };
                (j, v)
            })
            .collect()
    };
    let density = pick!(rng, [5u64, 30, 80, 100, 0]);
    let mut weights: Vec<Vec<(u16, u16)>> = (0..n)
        .map(|_| {
            if rng.chance(2, 3) {
                row(rng, density, true)
            } else {
                vec![]
            }
        })
        .collect();
    let mut bonds_prev: Vec<Vec<(u16, u16)>> = (0..n)
        .map(|_| {
            if rng.chance(1, 2) {
                row(rng, density, true)
            } else {
                vec![]
            }
        })
        .collect();
    if opts.heavy {
        let templates: Vec<Vec<(u16, u16)>> = (0..3).map(|_| row(rng, density, false)).collect();
        for (w, b) in weights.iter_mut().zip(bonds_prev.iter_mut()) {
            match rng.below(4) {
                0 => *w = templates[rng.below(3) as usize].clone(),
                1 => {
                    for (_, v) in w.iter_mut() {
                        *v = 65535 >> rng.below(14);
                    }
                }
                _ => {}
            }
            if rng.chance(2, 3) {
                // Bonds on (mostly) the weighted columns.
                b.clear();
                for &(j, _) in w.iter() {
                    if rng.chance(9, 10) {
                        b.push((j, rng.below(65536) as u16));
                    }
                }
            }
        }
    }
    let commit_blocks = if rng.chance(1, 2) {
        Some(
            (0..n)
                .map(|_| {
                    if rng.chance(1, 4) {
                        Some(block.saturating_sub(rng.below(60_000)))
                    } else {
                        None
                    }
                })
                .collect(),
        )
    } else {
        None
    };
    if opts.heavy && rng.chance(1, 2) {
        // Everyone active and counted: consensus in most cases.
        hp.activity_cutoff = 100_000;
        hp.stake_threshold = 0;
    }
    let state = EpochState {
        n: n as u16,
        block,
        last_mechanism_step_block: if rng.chance(1, 4) {
            0
        } else {
            block.saturating_sub(rng.below(400))
        },
        stake,
        last_update,
        block_at_registration,
        validator_permit,
        owner_uid,
        weights,
        bonds_prev,
        commit_blocks,
        rao_emission: pick!(rng, [1_000_000_000u64, 0, u64::MAX, rng.next_u64()]),
    };
    Inputs::new(hp, state).unwrap()
}
