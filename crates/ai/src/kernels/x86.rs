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
                    4 => tile_q4_1::<4>(panel, nb, a, t, o, ldo, rows, scratch),
                    3 => tile_q4_1::<3>(panel, nb, a, t, o, ldo, rows, scratch),
                    2 => tile_q4_1::<2>(panel, nb, a, t, o, ldo, rows, scratch),
                    _ => tile_q4_1::<1>(panel, nb, a, t, o, ldo, rows, scratch),
                }
            }
            t += c;
        }
    }
}

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
unsafe fn tile_q4_1<const C: usize>(
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
        // Two rows per step: they share one 32-byte load of interleaved nibbles.
        let mut r = 0;
        while r < rows {
            let mut acc = [[_mm256_setzero_ps(); C]; 2];
            for b in 0..nb {
                let v = _mm256_loadu_si256(pp.add(b * Q4_1_REC + 32 + r * 16).cast());
                let qx = [
                    _mm256_and_si256(v, mask),
                    _mm256_and_si256(_mm256_srli_epi16::<4>(v), mask),
                ];
                for t in 0..C {
                    let qy = _mm256_loadu_si256(qy0.add((t * nb + b) * QK).cast());
                    let pr = prod.add((b * C + t) * PANEL + r);
                    for h in 0..2 {
                        let xy = _mm256_cvtepi32_ps(_mm256_madd_epi16(
                            ones,
                            _mm256_maddubs_epi16(qx[h], qy),
                        ));
                        acc[h][t] = _mm256_fmadd_ps(_mm256_set1_ps(*pr.add(h)), xy, acc[h][t]);
                    }
                }
            }
            for (h, acc) in acc.iter().enumerate() {
                if r + h < rows {
                    for (t, acc) in acc.iter().enumerate() {
                        *out.get_unchecked_mut(t * ldo + r + h) =
                            hsum(*acc) + *summ.add(t * PANEL + r + h);
                    }
                }
            }
            r += 2;
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
            for b in 0..nb {
                let x = pp.add(b * Q8_0_REC + 16 + r * 32);
                let qx = [
                    _mm256_loadu_si256(x.cast()),
                    _mm256_loadu_si256(x.add(32).cast()),
                ];
                let ax = [
                    _mm256_sign_epi8(qx[0], qx[0]),
                    _mm256_sign_epi8(qx[1], qx[1]),
                ];
                for t in 0..C {
                    let qy = _mm256_loadu_si256(qy0.add((t * nb + b) * QK).cast());
                    let pr = prod.add((b * C + t) * PANEL + r);
                    for h in 0..2 {
                        let sy = _mm256_sign_epi8(qy, qx[h]);
                        let xy = _mm256_cvtepi32_ps(_mm256_madd_epi16(
                            ones,
                            _mm256_maddubs_epi16(ax[h], sy),
                        ));
                        acc[h][t] = _mm256_fmadd_ps(_mm256_set1_ps(*pr.add(h)), xy, acc[h][t]);
                    }
                }
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
