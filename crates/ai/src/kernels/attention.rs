//! One attention query against a KV cache, in the arithmetic of llama.cpp's CPU path with
//! flash attention off and an f16 KV cache (its `fa_off` run in the fixtures):
//!
//! 1. scores `s_j = hsum8(Σ_i q[8i+l]·k_j[8i+l] over the lanes l) · scale`: the f16×f16
//!    product tinyBLAS (llamafile sgemm) runs for `K·Q`, eight lanes over the head
//!    dimension, one fused multiply-add per step, ggml's `hsum` at the end;
//! 2. `e_j = ggml_v_expf(s_j − max)` over groups of 8 positions from position 0 (the
//!    masked tail of the last group gives 0), `sum` = the groups' `hsum` added in `f64`
//!    (`ggml_vec_soft_max_f32`), weights `f16(e_j · f32(1/sum))`;
//! 3. `out[d] = hsum8(Σ_j w_j·v_j[d] over the lanes j mod 8)`: tinyBLAS again for `V·KQ`,
//!    with V transposed (one row of positions per dimension, as llama.cpp's `v_trans`
//!    cache) and the positions padded to a multiple of 8 with zero weights.
//!
//! Queries, keys and values arrive already rounded to f16 (stored as f32). Every query
//! is computed alone in this fixed order, so a position's output is the same in a
//! prefill and in a one-token decode, on any number of threads.

use super::{hsum8, round_f16};

/// Positions are processed in groups of this many (the lane count).
pub const LANES: usize = 8;

/// Scratch of one query: scores / weights for up to `t` positions (rounded up to 8).
#[derive(Debug, Default)]
pub struct Scratch {
    w: Vec<f32>,
}

/// Positions per block of keys whose scores are computed for every query of a block
/// before moving on (the block's keys stay in L1: 64 positions × 64 dims × 4 bytes).
const KEY_BLOCK: usize = 64;

/// A block of queries that share one KV head: tokens `0..tokens` of `q` (rows of
/// `n_head · hd` floats, the first at position `pos0`) and heads `heads`; query `(i, h)`
/// attends positions `0..=pos0 + i`. Its output goes to
/// `out[(i · out_heads + h − heads.start) · hd ..][..hd]`.
#[derive(Debug, Clone)]
pub struct Block {
    /// Tokens in the block.
    pub tokens: usize,
    /// Position of the first token.
    pub pos0: usize,
    /// Heads of the block (consecutive, one KV head).
    pub heads: std::ops::Range<usize>,
    /// Heads per row of `q`.
    pub n_head: usize,
    /// Heads per row of `out`.
    pub out_heads: usize,
    /// Head dimension (a multiple of 8).
    pub hd: usize,
}

/// The KV cache of one KV head: `keys` rows of `hd` floats by position, `vt` rows of
/// `vstride` positions by dimension (entries past the filled positions must be finite).
#[derive(Debug, Clone, Copy)]
pub struct Kv<'a> {
    /// Keys.
    pub keys: &'a [f32],
    /// Values, transposed.
    pub vt: &'a [f32],
    /// Row length of `vt` (a multiple of 8).
    pub vstride: usize,
}

/// Attends every query of block `b` (see the module doc for the arithmetic; each query's
/// result does not depend on the block it is computed in).
pub fn attend(
    b: &Block,
    q: &[f32],
    kv: Kv<'_>,
    scale: f32,
    scratch: &mut Scratch,
    out: &mut [f32],
) {
    let hd = b.hd;
    let nh = b.heads.len();
    let m = b.tokens * nh;
    if m == 0 {
        return;
    }
    assert!(hd > 0 && hd.is_multiple_of(LANES) && kv.vstride.is_multiple_of(LANES));
    let t_max = b.pos0 + b.tokens;
    let tp_max = t_max.next_multiple_of(LANES);
    assert!(kv.keys.len() >= t_max * hd && kv.vstride >= tp_max);
    assert!(kv.vt.len() >= hd * kv.vstride);
    assert!(q.len() >= ((b.tokens - 1) * b.n_head + b.heads.end) * hd);
    assert!(out.len() >= ((b.tokens - 1) * b.out_heads + nh) * hd);
    // Scores are computed in whole groups of 8 positions (those past a query's own are
    // then masked), but never past the rows `keys` holds.
    let key_rows = kv.keys.len() / hd;
    let w = &mut scratch.w;
    w.resize(m * tp_max, 0.0);
    let query = |qi: usize| -> (usize, usize) {
        let (i, h) = (qi / nh, b.heads.start + qi % nh);
        ((i * b.n_head + h) * hd, b.pos0 + i + 1)
    };
    // 1. Scores, key block by key block.
    let mut j0 = 0;
    while j0 < tp_max {
        let j1 = (j0 + KEY_BLOCK).min(tp_max);
        for qi in 0..m {
            let (qo, t) = query(qi);
            let end = j1.min(t.next_multiple_of(LANES)).min(key_rows);
            if end <= j0 {
                continue;
            }
            let row = &mut w[qi * tp_max..(qi + 1) * tp_max];
            scores(
                &q[qo..qo + hd],
                &kv.keys[j0 * hd..end * hd],
                scale,
                &mut row[j0..end],
            );
        }
        j0 = j1;
    }
    // 2. Softmax weights per query.
    for qi in 0..m {
        let (_, t) = query(qi);
        let tp = t.next_multiple_of(LANES);
        softmax_weights(&mut w[qi * tp_max..qi * tp_max + tp], t);
    }
    // 3. Weighted sums, eight dimensions (eight rows of V) at a time for every query.
    let mut d = 0;
    while d < hd {
        let vt = &kv.vt[d * kv.vstride..(d + LANES) * kv.vstride];
        for qi in 0..m {
            let (_, t) = query(qi);
            let tp = t.next_multiple_of(LANES);
            let (i, hh) = (qi / nh, qi % nh);
            let o = (i * b.out_heads + hh) * hd + d;
            weighted_sum(
                &w[qi * tp_max..qi * tp_max + tp],
                vt,
                kv.vstride,
                &mut out[o..o + LANES],
            );
        }
        d += LANES;
    }
}

/// Scores of `q` against the rows of `keys` into `out` (one per row).
fn scores(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::x86::available() {
        return super::x86::scores(q, keys, scale, out);
    }
    scores_ref(q, keys, scale, out)
}

/// `out[d] = hsum8(lanes of Σ_j w_j · vt[d][j])` for the rows of `vt` (stride `vstride`).
fn weighted_sum(w: &[f32], vt: &[f32], vstride: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::x86::available() {
        return super::x86::weighted_sum(w, vt, vstride, out);
    }
    weighted_sum_ref(w, vt, vstride, out)
}

/// Scores of `q` against each row of `keys` (see the module doc, step 1).
pub fn scores_ref(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
    for (o, k) in out.iter_mut().zip(keys.chunks_exact(q.len())) {
        let mut acc = [0f32; LANES];
        for (qc, kc) in q.chunks_exact(LANES).zip(k.chunks_exact(LANES)) {
            for l in 0..LANES {
                acc[l] = qc[l].mul_add(kc[l], acc[l]);
            }
        }
        *o = hsum8(&acc) * scale;
    }
}

/// Step 2 in place: `w[..t]` scores in, `w[..tp]` f16-rounded weights out (0 past `t`).
fn softmax_weights(w: &mut [f32], t: usize) {
    let max = w[..t].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    w[t..].fill(f32::NEG_INFINITY);
    #[cfg(target_arch = "x86_64")]
    if super::x86::available() {
        let sum = super::x86::exp_sum(w, max);
        super::x86::scale_round_f16(w, (1.0 / sum) as f32);
        return;
    }
    let sum = exp_sum_ref(w, max);
    let inv = (1.0 / sum) as f32;
    for v in w.iter_mut() {
        *v = round_f16(*v * inv);
    }
}

/// `w[j] = ggml_v_expf(w[j] − max)` (groups of 8) and the sum of the groups' `hsum`s in
/// `f64`, as `ggml_vec_soft_max_f32`.
pub fn exp_sum_ref(w: &mut [f32], max: f32) -> f64 {
    let mut sum = 0f64;
    for g in w.chunks_exact_mut(LANES) {
        let mut e = [0f32; LANES];
        for (e, v) in e.iter_mut().zip(g.iter_mut()) {
            *v = super::expf_v(*v - max);
            *e = *v;
        }
        sum += f64::from(hsum8(&e));
    }
    sum
}

/// Step 3: `out[d] = hsum8(lanes j mod 8 of Σ w_j · vt[d][j])` over all of `w`.
pub fn weighted_sum_ref(w: &[f32], vt: &[f32], vstride: usize, out: &mut [f32]) {
    for (d, o) in out.iter_mut().enumerate() {
        let row = &vt[d * vstride..d * vstride + w.len()];
        let mut acc = [0f32; LANES];
        for (wc, vc) in w.chunks_exact(LANES).zip(row.chunks_exact(LANES)) {
            for l in 0..LANES {
                acc[l] = wc[l].mul_add(vc[l], acc[l]);
            }
        }
        *o = hsum8(&acc);
    }
}

/// Rounds every value to f16 (ties to even), in place.
pub fn round_f16_slice(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::x86::available() {
        return super::x86::round_f16_slice(x);
    }
    for v in x {
        *v = round_f16(*v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(seed: u32, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32;
                round_f16((x - 0.5) * scale)
            })
            .collect()
    }

    #[test]
    fn simd_attention_equals_the_reference() {
        let hd = 64;
        for t in [1usize, 7, 8, 9, 31, 100, 513] {
            let tp = t.next_multiple_of(LANES);
            let q = data(1, hd, 4.0);
            let keys = data(2, t * hd, 4.0);
            let vstride = tp + 8;
            let vt = data(3, hd * vstride, 2.0);
            let scale = 0.125;
            let mut s = vec![0.0; t];
            scores_ref(&q, &keys, scale, &mut s);
            let mut w = s.clone();
            w.resize(tp, 0.0);
            softmax_weights(&mut w, t);
            let mut want = vec![0.0; hd];
            // The reference path end to end.
            let mut wr = s.clone();
            wr.resize(tp, 0.0);
            let max = s.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            wr[t..].fill(f32::NEG_INFINITY);
            let sum = exp_sum_ref(&mut wr, max);
            let inv = (1.0 / sum) as f32;
            for v in wr.iter_mut() {
                *v = round_f16(*v * inv);
            }
            assert_eq!(w, wr, "weights, t = {t}");
            weighted_sum_ref(&wr, &vt, vstride, &mut want);
            // The query alone, as the last token of a one-token block.
            let block = Block {
                tokens: 1,
                pos0: t - 1,
                heads: 0..1,
                n_head: 1,
                out_heads: 1,
                hd,
            };
            let kv = Kv {
                keys: &keys,
                vt: &vt,
                vstride,
            };
            let mut got = vec![0.0; hd];
            attend(&block, &q, kv, scale, &mut Scratch::default(), &mut got);
            assert_eq!(got, want, "t = {t}");
            #[cfg(target_arch = "x86_64")]
            if super::super::x86::available() {
                let mut s2 = vec![0.0; t];
                super::super::x86::scores(&q, &keys, scale, &mut s2);
                assert_eq!(s2, s, "scores, t = {t}");
            }
        }
    }

    #[test]
    fn a_block_of_queries_equals_each_query_alone() {
        let (hd, n_head, tokens, pos0): (usize, usize, usize, usize) = (64, 6, 5, 11);
        let t_max = pos0 + tokens;
        let vstride = t_max.next_multiple_of(LANES);
        let keys = data(4, t_max * hd, 4.0);
        let vt = data(5, hd * vstride, 2.0);
        let q = data(6, tokens * n_head * hd, 4.0);
        let kv = Kv {
            keys: &keys,
            vt: &vt,
            vstride,
        };
        let heads = 3..6;
        let block = Block {
            tokens,
            pos0,
            heads: heads.clone(),
            n_head,
            out_heads: n_head,
            hd,
        };
        let mut out = vec![0.0; tokens * n_head * hd];
        let first = heads.start * hd;
        attend(
            &block,
            &q,
            kv,
            0.125,
            &mut Scratch::default(),
            &mut out[first..],
        );
        for i in 0..tokens {
            for h in heads.clone() {
                let one = Block {
                    tokens: 1,
                    pos0: pos0 + i,
                    heads: h..h + 1,
                    n_head,
                    out_heads: 1,
                    hd,
                };
                let mut alone = vec![0.0; hd];
                let qi = &q[i * n_head * hd..];
                attend(&one, qi, kv, 0.125, &mut Scratch::default(), &mut alone);
                let at = (i * n_head + h) * hd;
                assert_eq!(&out[at..at + hd], &alone[..], "token {i}, head {h}");
            }
        }
    }

    #[test]
    fn softmax_weights_sum_to_about_one() {
        let t = 37;
        let mut w: Vec<f32> = (0..40).map(|i| (i as f32 * 0.3).sin() * 5.0).collect();
        softmax_weights(&mut w, t);
        let sum: f32 = w.iter().sum();
        assert!((sum - 1.0).abs() < 1e-2, "{sum}");
        assert!(w[t..].iter().all(|&v| v == 0.0));
    }
}
