//! AVX2 + FMA + F16C versions of the kernels (the crate's only `unsafe` code).
//!
//! Each public function is safe: it checks every length it relies on, then calls a
//! `#[target_feature]` function that only runs after [`available`] said the CPU has the
//! features. Inside, loads and stores go through raw pointers derived from slices whose
//! bounds were checked first. Each kernel has a portable twin in the parent module that
//! the tests compare it with, bit for bit.

#![allow(unsafe_code)]

use std::arch::x86_64::*;
use std::sync::OnceLock;

use super::{ActsView, PANEL, QK, TILE_TOKENS};

/// Whether the CPU runs AVX2, FMA and F16C (detected once).
pub(super) fn available() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    })
}

/// f32 → f16 (round to nearest even) → f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn round_f16_ss(x: f32) -> f32 {
    let h = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(x));
    _mm_cvtss_f32(_mm_cvtph_ps(h))
}

/// ggml's `hsum_float_8`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(x: __m256) -> f32 {
    let mut r = _mm_add_ps(_mm256_extractf128_ps::<1>(x), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    _mm_cvtss_f32(r)
}

/// See [`super::quantize_blocks_ref`].
pub(super) fn quantize_blocks(x: &[f32], qs: &mut [i8], d: &mut [f32], s: Option<&mut [f32]>) {
    let blocks = x.len() / QK;
    assert!(x.len() == blocks * QK && qs.len() == x.len() && d.len() == blocks);
    if let Some(s) = &s {
        assert_eq!(s.len(), blocks);
    }
    assert!(available());
    // SAFETY: the CPU has AVX2/FMA/F16C (checked above) and the lengths match.
    unsafe { quantize_blocks_avx2(x, qs, d, s) }
}

/// # Safety
/// The CPU must have AVX2/FMA/F16C; `x.len() == qs.len() == 32·d.len()` (and `s`, when
/// given, `d.len()` long).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_blocks_avx2(x: &[f32], qs: &mut [i8], d: &mut [f32], s: Option<&mut [f32]>) {
    let sign = _mm256_set1_ps(-0.0);
    let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let mut s = s;
    for i in 0..d.len() {
        // SAFETY: block i spans x[32i..32i+32] and qs[32i..32i+32], in bounds because
        // x.len() == qs.len() == 32 · d.len() (checked by the caller).
        unsafe {
            let p = x.as_ptr().add(i * QK);
            let v0 = _mm256_loadu_ps(p);
            let v1 = _mm256_loadu_ps(p.add(8));
            let v2 = _mm256_loadu_ps(p.add(16));
            let v3 = _mm256_loadu_ps(p.add(24));
            let mut m = _mm256_andnot_ps(sign, v0);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v1));
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v2));
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v3));
            let mut m4 = _mm_max_ps(_mm256_extractf128_ps::<1>(m), _mm256_castps256_ps128(m));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            let amax = _mm_cvtss_f32(m4);
            let dd = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            let mul = _mm256_set1_ps(id);
            let (i0, i1, i2, i3) = (
                round_i32(v0, mul),
                round_i32(v1, mul),
                round_i32(v2, mul),
                round_i32(v3, mul),
            );
            d[i] = round_f16_ss(dd);
            if let Some(s) = s.as_deref_mut() {
                let sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
                let mut h = _mm_add_epi32(
                    _mm256_extracti128_si256::<1>(sum),
                    _mm256_castsi256_si128(sum),
                );
                h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
                h = _mm_add_epi32(h, _mm_shuffle_epi32::<0xb1>(h));
                s[i] = round_f16_ss(_mm_cvtsi128_si32(h) as f32 * dd);
            }
            let a = _mm256_packs_epi32(i0, i1);
            let b = _mm256_packs_epi32(i2, i3);
            let q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b), perm);
            _mm256_storeu_si256(qs.as_mut_ptr().add(i * QK).cast(), q);
        }
    }
}

/// `v · mul` rounded half to even, as `i32`s.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn round_i32(v: __m256, mul: __m256) -> __m256i {
    _mm256_cvtps_epi32(_mm256_round_ps::<_MM_FROUND_TO_NEAREST_INT>(_mm256_mul_ps(
        v, mul,
    )))
}

/// Checks the shapes shared by the two GEMM kernels; returns the panel count.
fn check_gemm(
    panels: &[u8],
    record: usize,
    nb: usize,
    rows_valid: usize,
    a: &ActsView<'_>,
    out: &[f32],
    ldo: usize,
) -> usize {
    assert!(nb > 0 && a.nb == nb);
    let np = panels.len() / (nb * record);
    assert_eq!(panels.len(), np * nb * record);
    assert!(a.qs.len() == a.n * nb * QK && a.d.len() == a.n * nb);
    let rows = rows_valid.min(np * PANEL);
    if a.n > 0 && rows > 0 {
        assert!(rows <= ldo && out.len() >= (a.n - 1) * ldo + rows);
    }
    np
}

/// Rows of `panels` (repacked `Q4_1`, `nb` blocks per row) times the `Q8_1` rows of `a`:
/// `out[t·ldo + r]` for `r < rows_valid`.
pub(super) fn gemm_q4_1(
    panels: &[u8],
    nb: usize,
    rows_valid: usize,
    a: &ActsView<'_>,
    out: &mut [f32],
    ldo: usize,
    scratch: &mut Vec<f32>,
) {
    let np = check_gemm(panels, Q4_1_REC, nb, rows_valid, a, out, ldo);
    assert_eq!(a.s.len(), a.n * nb);
    assert!(available());
    scratch.resize(nb * TILE_TOKENS * PANEL + TILE_TOKENS * PANEL, 0.0);
    for p in 0..np {
        let rows = rows_valid.saturating_sub(p * PANEL).min(PANEL);
        if rows == 0 {
            break;
        }
        let panel = &panels[p * nb * Q4_1_REC..(p + 1) * nb * Q4_1_REC];
        let mut t = 0;
        while t < a.n {
            let c = (a.n - t).min(TILE_TOKENS);
            let o = &mut out[t * ldo + p * PANEL..];
            // SAFETY: CPU features checked; `panel` holds nb records; tokens t..t+c are
            // within `a` (whose lengths were checked); `o` holds (c−1)·ldo + rows floats
            // because out ≥ (n−1)·ldo + rows_valid and p·PANEL + rows ≤ rows_valid;
            // scratch holds nb·TILE_TOKENS·PANEL + TILE_TOKENS·PANEL floats.
            unsafe {
                match c {
                    4 => tile_q4_1::<TP, 4>(panel, nb, a, t, o, ldo, rows, scratch),
                    3 => tile_q4_1::<TP, 3>(panel, nb, a, t, o, ldo, rows, scratch),
                    2 => tile_q4_1::<2, 2>(panel, nb, a, t, o, ldo, rows, scratch),
                    _ => tile_q4_1::<4, 1>(panel, nb, a, t, o, ldo, rows, scratch),
                }
            }
            t += c;
        }
    }
}

/// Row pairs per step of the 3- and 4-token tiles.
const TP: usize = 1;
const Q4_1_REC: usize = 2 * 2 * PANEL + PANEL * 16;
const Q8_0_REC: usize = 2 * PANEL + PANEL * 32;

/// One panel (8 rows, `rows` of them kept) × `C` tokens from `t0`.
///
/// Pass 1 stores, per block, token and row, the scale product `f16(d_w)·f16(d_x)` (and
/// accumulates the fused `Σ m·s` for the 8 rows at once); pass 2 runs two rows at a time
/// over all blocks with `2·C` eight-lane accumulators, exactly ggml's per-element
/// sequence: `acc = fma(d_w·d_x, f32(lane sums of byte products), acc)`.
///
/// # Safety
/// AVX2/FMA/F16C; `panel` holds `nb` records; `a` holds tokens `t0..t0+C`; `out` holds
/// `(C−1)·ldo + rows` floats; `scratch` holds `(nb + 1)·C·PANEL` floats.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q4_1<const P: usize, const C: usize>(
    panel: &[u8],
    nb: usize,
    a: &ActsView<'_>,
    t0: usize,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    scratch: &mut [f32],
) {
    // SAFETY: the caller guarantees the CPU features and that `panel` holds `nb`
    // records, `a` holds tokens t0..t0+C, `out` holds (C−1)·ldo + rows floats and
    // `scratch` (nb + 1)·C·PANEL floats; every pointer below stays within those.
    unsafe {
        let pp = panel.as_ptr();
        let qy0 = a.qs.as_ptr().add(t0 * nb * QK);
        let dy0 = a.d.as_ptr().add(t0 * nb);
        let sy0 = a.s.as_ptr().add(t0 * nb);
        let prod = scratch.as_mut_ptr();
        let mut summs = [_mm256_setzero_ps(); C];
        for b in 0..nb {
            let rec = pp.add(b * Q4_1_REC);
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(rec.cast()));
            let mw = _mm256_cvtph_ps(_mm_loadu_si128(rec.add(16).cast()));
            for (t, sm) in summs.iter_mut().enumerate() {
                let dy = _mm256_set1_ps(*dy0.add(t * nb + b));
                _mm256_storeu_ps(prod.add((b * C + t) * PANEL), _mm256_mul_ps(dw, dy));
                *sm = _mm256_fmadd_ps(mw, _mm256_set1_ps(*sy0.add(t * nb + b)), *sm);
            }
        }
        let summ = prod.add(nb * C * PANEL);
        for (t, sm) in summs.iter().enumerate() {
            _mm256_storeu_ps(summ.add(t * PANEL), *sm);
        }
        let mask = _mm256_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        // `P` pairs of rows per step (a pair shares one 32-byte load of interleaved
        // nibbles) × `C` tokens. Pointers advance by increments.
        let mut r = 0;
        while r < rows {
            let mut acc = [[[_mm256_setzero_ps(); C]; 2]; P];
            let mut wq = pp.add(32 + r * 16);
            let mut pr = prod.add(r).cast_const();
            let mut qy: [*const i8; C] = std::array::from_fn(|t| qy0.add(t * nb * QK));
            for _ in 0..nb {
                let qx: [[__m256i; 2]; P] = std::array::from_fn(|p| {
                    let v = _mm256_loadu_si256(wq.add(32 * p).cast());
                    [
                        _mm256_and_si256(v, mask),
                        _mm256_and_si256(_mm256_srli_epi16::<4>(v), mask),
                    ]
                });
                for t in 0..C {
                    let y = _mm256_loadu_si256(qy[t].cast());
                    for p in 0..P {
                        for h in 0..2 {
                            let xy = _mm256_cvtepi32_ps(_mm256_madd_epi16(
                                ones,
                                _mm256_maddubs_epi16(qx[p][h], y),
                            ));
                            acc[p][h][t] = _mm256_fmadd_ps(
                                _mm256_set1_ps(*pr.add(t * PANEL + 2 * p + h)),
                                xy,
                                acc[p][h][t],
                            );
                        }
                    }
                    qy[t] = qy[t].add(QK);
                }
                wq = wq.add(Q4_1_REC);
                pr = pr.add(C * PANEL);
            }
            for (p, acc) in acc.iter().enumerate() {
                for (h, acc) in acc.iter().enumerate() {
                    let row = r + 2 * p + h;
                    if row < rows {
                        for (t, acc) in acc.iter().enumerate() {
                            *out.get_unchecked_mut(t * ldo + row) =
                                hsum(*acc) + *summ.add(t * PANEL + row);
                        }
                    }
                }
            }
            r += 2 * P;
        }
    }
}

/// Rows of `panels` (repacked `Q8_0`) times the `Q8_0` rows of `a`, as [`gemm_q4_1`].
pub(super) fn gemm_q8_0(
    panels: &[u8],
    nb: usize,
    rows_valid: usize,
    a: &ActsView<'_>,
    out: &mut [f32],
    ldo: usize,
    scratch: &mut Vec<f32>,
) {
    let np = check_gemm(panels, Q8_0_REC, nb, rows_valid, a, out, ldo);
    assert!(available());
    scratch.resize(nb * TILE_TOKENS * PANEL, 0.0);
    for p in 0..np {
        let rows = rows_valid.saturating_sub(p * PANEL).min(PANEL);
        if rows == 0 {
            break;
        }
        let panel = &panels[p * nb * Q8_0_REC..(p + 1) * nb * Q8_0_REC];
        let mut t = 0;
        while t < a.n {
            let c = (a.n - t).min(TILE_TOKENS);
            let o = &mut out[t * ldo + p * PANEL..];
            // SAFETY: as in `gemm_q4_1`.
            unsafe {
                match c {
                    4 => tile_q8_0::<4>(panel, nb, a, t, o, ldo, rows, scratch),
                    3 => tile_q8_0::<3>(panel, nb, a, t, o, ldo, rows, scratch),
                    2 => tile_q8_0::<2>(panel, nb, a, t, o, ldo, rows, scratch),
                    _ => tile_q8_0::<1>(panel, nb, a, t, o, ldo, rows, scratch),
                }
            }
            t += c;
        }
    }
}

/// One panel × `C` tokens of `Q8_0`: ggml's `ggml_vec_dot_q8_0_q8_0` per element
/// (`maddubs(|x|, sign(y, x))`, lane sums, fused scale-and-add, `hsum`).
///
/// # Safety
/// As [`tile_q4_1`].
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q8_0<const C: usize>(
    panel: &[u8],
    nb: usize,
    a: &ActsView<'_>,
    t0: usize,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    scratch: &mut [f32],
) {
    // SAFETY: the caller guarantees the CPU features and that `panel` holds `nb`
    // records, `a` holds tokens t0..t0+C, `out` holds (C−1)·ldo + rows floats and
    // `scratch` (nb + 1)·C·PANEL floats; every pointer below stays within those.
    unsafe {
        let pp = panel.as_ptr();
        let qy0 = a.qs.as_ptr().add(t0 * nb * QK);
        let dy0 = a.d.as_ptr().add(t0 * nb);
        let prod = scratch.as_mut_ptr();
        for b in 0..nb {
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(pp.add(b * Q8_0_REC).cast()));
            for t in 0..C {
                let dy = _mm256_set1_ps(*dy0.add(t * nb + b));
                _mm256_storeu_ps(prod.add((b * C + t) * PANEL), _mm256_mul_ps(dw, dy));
            }
        }
        let ones = _mm256_set1_epi16(1);
        let mut r = 0;
        while r < rows {
            let mut acc = [[_mm256_setzero_ps(); C]; 2];
            let mut x = pp.add(16 + r * 32);
            let mut pr = prod.add(r).cast_const();
            let mut qy: [*const i8; C] = std::array::from_fn(|t| qy0.add(t * nb * QK));
            for _ in 0..nb {
                let qx = [
                    _mm256_loadu_si256(x.cast()),
                    _mm256_loadu_si256(x.add(32).cast()),
                ];
                let ax = [
                    _mm256_sign_epi8(qx[0], qx[0]),
                    _mm256_sign_epi8(qx[1], qx[1]),
                ];
                for t in 0..C {
                    let y = _mm256_loadu_si256(qy[t].cast());
                    for h in 0..2 {
                        let sy = _mm256_sign_epi8(y, qx[h]);
                        let xy = _mm256_cvtepi32_ps(_mm256_madd_epi16(
                            ones,
                            _mm256_maddubs_epi16(ax[h], sy),
                        ));
                        acc[h][t] =
                            _mm256_fmadd_ps(_mm256_set1_ps(*pr.add(t * PANEL + h)), xy, acc[h][t]);
                    }
                    qy[t] = qy[t].add(QK);
                }
                x = x.add(Q8_0_REC);
                pr = pr.add(C * PANEL);
            }
            for (h, acc) in acc.iter().enumerate() {
                if r + h < rows {
                    for (t, acc) in acc.iter().enumerate() {
                        *out.get_unchecked_mut(t * ldo + r + h) = hsum(*acc);
                    }
                }
            }
            r += 2;
        }
    }
}

/// See [`super::swiglu_ref`].
pub(super) fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(gate.len() == up.len() && up.len() == out.len());
    assert!(available());
    // SAFETY: features checked; the three slices have the same length.
    unsafe { swiglu_avx2(gate, up, out) }
}

/// # Safety
/// AVX2/FMA/F16C; the three slices have the same length.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn swiglu_avx2(gate: &[f32], up: &[f32], out: &mut [f32]) {
    let n = gate.len();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 ≤ n for all three slices.
        unsafe {
            let x = _mm256_loadu_ps(gate.as_ptr().add(i));
            let g = _mm256_loadu_ps(up.as_ptr().add(i));
            let e = expf(_mm256_sub_ps(_mm256_setzero_ps(), x));
            let silu = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), e));
            _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_mul_ps(silu, g));
        }
        i += 8;
    }
    for j in i..n {
        let x = gate[j];
        out[j] = x / (1.0 + (-x).exp()) * up[j];
    }
}

/// ggml's AVX2 `ggml_v_expf`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn expf(x: __m256) -> __m256 {
    let r = _mm256_set1_ps(f32::from_bits(0x4b40_0000));
    let z = _mm256_fmadd_ps(x, _mm256_set1_ps(f32::from_bits(0x3fb8_aa3b)), r);
    let n = _mm256_sub_ps(z, r);
    let b = _mm256_fnmadd_ps(
        n,
        _mm256_set1_ps(f32::from_bits(0x35bf_be8e)),
        _mm256_fnmadd_ps(n, _mm256_set1_ps(f32::from_bits(0x3f31_7200)), x),
    );
    let e = _mm256_slli_epi32::<23>(_mm256_castps_si256(z));
    let k = _mm256_castsi256_ps(_mm256_add_epi32(
        e,
        _mm256_castps_si256(_mm256_set1_ps(1.0)),
    ));
    let absn = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n);
    let c = _mm256_cmp_ps::<_CMP_GT_OQ>(absn, _mm256_set1_ps(126.0));
    let u = _mm256_mul_ps(b, b);
    let j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(
            _mm256_fmadd_ps(
                _mm256_set1_ps(f32::from_bits(0x3c07_2010)),
                b,
                _mm256_set1_ps(f32::from_bits(0x3d2b_9f17)),
            ),
            u,
            _mm256_fmadd_ps(
                _mm256_set1_ps(f32::from_bits(0x3e2a_af33)),
                b,
                _mm256_set1_ps(f32::from_bits(0x3eff_fedb)),
            ),
        ),
        u,
        _mm256_mul_ps(_mm256_set1_ps(f32::from_bits(0x3f7f_fff6)), b),
    );
    if _mm256_movemask_ps(c) == 0 {
        return _mm256_fmadd_ps(j, k, k);
    }
    let g = _mm256_and_si256(
        _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(n, _mm256_setzero_ps())),
        _mm256_set1_epi32(0x8200_0000u32 as i32),
    );
    let s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f00_0000)));
    let s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    let d = _mm256_cmp_ps::<_CMP_GT_OQ>(absn, _mm256_set1_ps(192.0));
    _mm256_or_ps(
        _mm256_and_ps(d, _mm256_mul_ps(s1, s1)),
        _mm256_andnot_ps(
            d,
            _mm256_or_ps(
                _mm256_and_ps(c, _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1)),
                _mm256_andnot_ps(c, _mm256_fmadd_ps(k, j, k)),
            ),
        ),
    )
}

/// ggml's `hsum` of eight vectors at once: lane `i` of the result is `hsum(a[i])`, with
/// the same additions in the same order (only the data movement differs).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_x8(a: &[__m256; 8]) -> __m256 {
    // t_i = a_i + a_{i+4}, two vectors per register.
    let (t01, t23, t45, t67) = (
        fold_halves(a[0], a[1]),
        fold_halves(a[2], a[3]),
        fold_halves(a[4], a[5]),
        fold_halves(a[6], a[7]),
    );
    // u0 = t0 + t2, u1 = t1 + t3.
    let u0123 = _mm256_add_ps(
        _mm256_shuffle_ps::<0x44>(t01, t23),
        _mm256_shuffle_ps::<0xee>(t01, t23),
    );
    let u4567 = _mm256_add_ps(
        _mm256_shuffle_ps::<0x44>(t45, t67),
        _mm256_shuffle_ps::<0xee>(t45, t67),
    );
    // u0 + u1, in the order [0, 2, 4, 6 | 1, 3, 5, 7].
    let r = _mm256_add_ps(
        _mm256_shuffle_ps::<0x88>(u0123, u4567),
        _mm256_shuffle_ps::<0xdd>(u0123, u4567),
    );
    _mm256_permutevar8x32_ps(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// `[x0+x4, x1+x5, x2+x6, x3+x7, y0+y4, …, y3+y7]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fold_halves(x: __m256, y: __m256) -> __m256 {
    _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(x, y),
        _mm256_permute2f128_ps::<0x31>(x, y),
    )
}

/// See [`super::attention::scores_ref`]; `q.len()` is a multiple of 8.
pub(super) fn scores(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
    let hd = q.len();
    assert!(hd.is_multiple_of(8) && hd > 0 && keys.len() == out.len() * hd);
    assert!(available());
    // SAFETY: features checked; every row read is within `keys` (t·hd floats), `q` is
    // read for hd floats, `out` written for t floats.
    unsafe { scores_avx2(q, keys, scale, out) }
}

/// # Safety
/// AVX2/FMA/F16C; `keys.len() == out.len() · q.len()`, `q.len()` a positive multiple of 8.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scores_avx2(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
    let hd = q.len();
    let t = out.len();
    let sc = _mm256_set1_ps(scale);
    // SAFETY: see the function's contract; j + 8 ≤ t in the main loop.
    unsafe {
        let qp = q.as_ptr();
        let kp = keys.as_ptr();
        let mut j = 0;
        while j + 8 <= t {
            let mut acc = [_mm256_setzero_ps(); 8];
            let mut i = 0;
            while i < hd {
                let qv = _mm256_loadu_ps(qp.add(i));
                for (r, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kp.add((j + r) * hd + i)), *acc);
                }
                i += 8;
            }
            let s = _mm256_mul_ps(hsum_x8(&acc), sc);
            _mm256_storeu_ps(out.as_mut_ptr().add(j), s);
            j += 8;
        }
        while j < t {
            let mut acc = _mm256_setzero_ps();
            let mut i = 0;
            while i < hd {
                acc = _mm256_fmadd_ps(
                    _mm256_loadu_ps(qp.add(i)),
                    _mm256_loadu_ps(kp.add(j * hd + i)),
                    acc,
                );
                i += 8;
            }
            *out.get_unchecked_mut(j) = hsum(acc) * scale;
            j += 1;
        }
    }
}

/// See [`super::attention::exp_sum_ref`]; `w.len()` is a multiple of 8.
pub(super) fn exp_sum(w: &mut [f32], max: f32) -> f64 {
    assert!(w.len().is_multiple_of(8));
    assert!(available());
    // SAFETY: features checked; groups of 8 within `w`.
    unsafe { exp_sum_avx2(w, max) }
}

/// # Safety
/// AVX2/FMA/F16C; `w.len()` a multiple of 8.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn exp_sum_avx2(w: &mut [f32], max: f32) -> f64 {
    let m = _mm256_set1_ps(max);
    let mut sum = 0f64;
    for g in w.chunks_exact_mut(8) {
        // SAFETY: `g` is 8 floats.
        unsafe {
            let e = expf(_mm256_sub_ps(_mm256_loadu_ps(g.as_ptr()), m));
            _mm256_storeu_ps(g.as_mut_ptr(), e);
            sum += f64::from(hsum(e));
        }
    }
    sum
}

/// `w[j] = f16(w[j] · inv)` (ties to even), `w.len()` a multiple of 8.
pub(super) fn scale_round_f16(w: &mut [f32], inv: f32) {
    assert!(w.len().is_multiple_of(8));
    assert!(available());
    // SAFETY: features checked; groups of 8 within `w`.
    unsafe { scale_round_f16_avx2(w, inv) }
}

/// # Safety
/// AVX2/FMA/F16C; `w.len()` a multiple of 8.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_round_f16_avx2(w: &mut [f32], inv: f32) {
    let s = _mm256_set1_ps(inv);
    for g in w.chunks_exact_mut(8) {
        // SAFETY: `g` is 8 floats.
        unsafe {
            let v = _mm256_mul_ps(_mm256_loadu_ps(g.as_ptr()), s);
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
            _mm256_storeu_ps(g.as_mut_ptr(), _mm256_cvtph_ps(h));
        }
    }
}

/// Rounds to f16 and back in place.
pub(super) fn round_f16_slice(x: &mut [f32]) {
    assert!(available());
    // SAFETY: features checked; groups of 8 within `x`, the tail converted one by one.
    unsafe { round_f16_slice_avx2(x) }
}

/// # Safety
/// AVX2/FMA/F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn round_f16_slice_avx2(x: &mut [f32]) {
    let mut chunks = x.chunks_exact_mut(8);
    for g in &mut chunks {
        // SAFETY: `g` is 8 floats.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(g.as_ptr()));
            _mm256_storeu_ps(g.as_mut_ptr(), _mm256_cvtph_ps(h));
        }
    }
    for v in chunks.into_remainder() {
        *v = round_f16_ss(*v);
    }
}

/// See [`super::attention::weighted_sum_ref`]: `w.len()` a multiple of 8, `out.len()` a
/// multiple of 8, `vt` holds `out.len()` rows of `vstride ≥ w.len()` floats.
pub(super) fn weighted_sum(w: &[f32], vt: &[f32], vstride: usize, out: &mut [f32]) {
    let (tp, hd) = (w.len(), out.len());
    assert!(tp.is_multiple_of(8) && hd.is_multiple_of(8) && hd > 0);
    assert!(vstride >= tp && vt.len() >= (hd - 1) * vstride + tp);
    assert!(available());
    // SAFETY: features checked; row d spans vt[d·vstride .. d·vstride + tp], in bounds.
    unsafe { weighted_sum_avx2(w, vt, vstride, out) }
}

/// # Safety
/// As [`weighted_sum`]'s assertions.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn weighted_sum_avx2(w: &[f32], vt: &[f32], vstride: usize, out: &mut [f32]) {
    let (tp, hd) = (w.len(), out.len());
    // SAFETY: see the function's contract.
    unsafe {
        let vp = vt.as_ptr();
        let wp = w.as_ptr();
        let mut d = 0;
        while d < hd {
            let mut acc = [_mm256_setzero_ps(); 8];
            let mut j = 0;
            while j < tp {
                let wv = _mm256_loadu_ps(wp.add(j));
                for (r, acc) in acc.iter_mut().enumerate() {
                    *acc =
                        _mm256_fmadd_ps(wv, _mm256_loadu_ps(vp.add((d + r) * vstride + j)), *acc);
                }
                j += 8;
            }
            _mm256_storeu_ps(out.as_mut_ptr().add(d), hsum_x8(&acc));
            d += 8;
        }
    }
}
