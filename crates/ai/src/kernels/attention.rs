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

/// Attends one query (`q`, `hd` floats, `hd` a multiple of 8) to positions `0..t`:
/// `keys` holds `t` rows of `hd` floats; `vt` holds `hd` rows of `vstride` floats
/// (`vstride ≥ t` rounded up to 8; entries past `t` must be finite). Writes `out` (`hd`).
#[allow(clippy::too_many_arguments)]
pub fn attend(
    q: &[f32],
    keys: &[f32],
    vt: &[f32],
    vstride: usize,
    t: usize,
    scale: f32,
    scratch: &mut Scratch,
    out: &mut [f32],
) {
    let hd = q.len();
    let tp = t.next_multiple_of(LANES);
    assert!(t > 0 && hd.is_multiple_of(LANES) && out.len() == hd);
    assert!(keys.len() >= t * hd && vstride >= tp && vt.len() >= (hd - 1) * vstride + tp);
    let w = &mut scratch.w;
    w.resize(tp, 0.0);
    #[cfg(target_arch = "x86_64")]
    if super::x86::available() {
        super::x86::scores(q, &keys[..t * hd], scale, &mut w[..t]);
        softmax_weights(w, t);
        super::x86::weighted_sum(w, vt, vstride, out);
        return;
    }
    scores_ref(q, &keys[..t * hd], scale, &mut w[..t]);
    softmax_weights(w, t);
    weighted_sum_ref(w, vt, vstride, out);
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
            let mut got = vec![0.0; hd];
            attend(
                &q,
                &keys,
                &vt,
                vstride,
                t,
                scale,
                &mut Scratch::default(),
                &mut got,
            );
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
    fn softmax_weights_sum_to_about_one() {
        let t = 37;
        let mut w: Vec<f32> = (0..40).map(|i| (i as f32 * 0.3).sin() * 5.0).collect();
        softmax_weights(&mut w, t);
        let sum: f32 = w.iter().sum();
        assert!((sum - 1.0).abs() < 1e-2, "{sum}");
        assert!(w[t..].iter().all(|&v| v == 0.0));
    }
}
