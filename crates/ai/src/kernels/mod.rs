//! CPU kernels for quantized weights: activation quantization, weight-times-activation
//! products (one row, or a batch of rows for prefill) and the gated-MLP activation.
//!
//! **Numerics follow llama.cpp's CPU backend exactly.** For a `Q4_1` weight row, ggml
//! quantizes the activation row to `Q8_1` (per block of 32: `d = amax/127`, `q =
//! round_half_even(x · 127/amax)`, `s = f16(d · Σq)`) and computes the dot product block
//! by block: eight `i32` lanes of four byte products each, converted to `f32`, multiplied
//! by `f16(d_w)·f16(d_x)` and fused-added into eight `f32` accumulators; the weight minimum
//! enters as a fused `Σ f16(m_w)·f16(s_x)`; at the end the lanes are summed in a fixed
//! tree (`hsum`) and the minimum term added. `Q8_0` weights take `Q8_0` activations and
//! the same scheme without the minimum. The functions here reproduce the AVX2 build of
//! ggml's `quantize_row_q8_1`, `quantize_row_q8_0`, `ggml_vec_dot_q4_1_q8_1` and
//! `ggml_vec_dot_q8_0_q8_0` bit for bit (the unit tests check this against vectors that
//! llama.cpp's own library produced, `tests/fixtures/ai/ggml-kernels.json`), and
//! [`swiglu`] reproduces `ggml_vec_swiglu_f32` (its vector `expf`).
//!
//! Every output element is computed by one thread in one fixed order, whatever the batch
//! size, the tile it falls in or the number of threads: a row computed alone during
//! decoding and the same row inside a 512-token prefill are bit-identical, and so are runs
//! on 1 and 2 threads.
//!
//! **Layout.** Weights are repacked at load into panels of 8 rows ([`QMatrix`]): for each
//! panel and block of 32 columns, the 8 rows' scales are adjacent (one `f16×8 → f32×8`
//! conversion) and their quants follow. `Q4_1` nibbles are re-interleaved so that two rows
//! unpack with one mask and one shift. This is a layout change only; the arithmetic is
//! ggml's.
//!
//! **Dispatch.** [`x86`] holds the AVX2/FMA/F16C versions (the only `unsafe` code of the
//! crate), chosen at run time with `is_x86_feature_detected!`; the portable versions in
//! this module are the reference each SIMD kernel is tested against and give identical
//! results.

use rayon::prelude::*;

pub mod attention;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Values per quantization block.
pub const QK: usize = 32;
/// Rows per panel of a repacked matrix.
pub const PANEL: usize = 8;
/// Tokens per tile of the batched kernels.
const TILE_TOKENS: usize = 4;

/// Weight quantizations with native kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightType {
    /// ggml `Q4_1`: per block of 32, `f16 d`, `f16 m`, 16 bytes of nibbles; `w = d·q + m`.
    Q4_1,
    /// ggml `Q8_0`: per block of 32, `f16 d`, 32 `i8`; `w = d·q`.
    Q8_0,
}

impl WeightType {
    /// Bytes of one block in ggml's (and the GGUF's) layout.
    pub const fn ggml_block_bytes(self) -> usize {
        match self {
            Self::Q4_1 => 20,
            Self::Q8_0 => 34,
        }
    }

    /// Bytes of one panel record (8 rows × one block) in the repacked layout.
    const fn record_bytes(self) -> usize {
        match self {
            Self::Q4_1 => 2 * 2 * PANEL + PANEL * 16,
            Self::Q8_0 => 2 * PANEL + PANEL * 32,
        }
    }

    /// The activation quantization its dot product takes (ggml's `vec_dot_type`).
    pub const fn act_type(self) -> ActType {
        match self {
            Self::Q4_1 => ActType::Q8_1,
            Self::Q8_0 => ActType::Q8_0,
        }
    }
}

/// Activation quantizations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActType {
    /// ggml `Q8_1`: `f16 d`, `f16 s = d·Σq`, 32 `i8`.
    Q8_1,
    /// ggml `Q8_0`: `f16 d`, 32 `i8`.
    Q8_0,
}

/// A quantized weight matrix (`rows × k`, each row multiplied with an activation row of
/// `k` floats), repacked in panels of [`PANEL`] rows. Rows are padded with zero rows to
/// a whole panel; padded outputs are never written.
#[derive(Clone)]
pub struct QMatrix {
    ty: WeightType,
    rows: usize,
    k: usize,
    nb: usize,
    panels: usize,
    data: Vec<u8>,
}

impl std::fmt::Debug for QMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QMatrix")
            .field("ty", &self.ty)
            .field("rows", &self.rows)
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

/// Why a matrix cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl QMatrix {
    /// Repacks `rows × k` weights given in ggml's row-major block layout.
    pub fn from_ggml(
        ty: WeightType,
        rows: usize,
        k: usize,
        bytes: &[u8],
    ) -> Result<Self, ShapeError> {
        if k == 0 || !k.is_multiple_of(QK) || rows == 0 {
            return Err(ShapeError(format!(
                "a {rows} × {k} matrix is not a whole number of {QK}-blocks"
            )));
        }
        let nb = k / QK;
        let bb = ty.ggml_block_bytes();
        let row_bytes = nb * bb;
        if rows.checked_mul(row_bytes) != Some(bytes.len()) {
            return Err(ShapeError(format!(
                "{} bytes for a {rows} × {k} {ty:?} matrix ({} expected)",
                bytes.len(),
                rows.saturating_mul(row_bytes)
            )));
        }
        let panels = rows.div_ceil(PANEL);
        let rb = ty.record_bytes();
        let mut data = vec![0u8; panels * nb * rb];
        for (p, panel) in data.chunks_exact_mut(nb * rb).enumerate() {
            for (b, rec) in panel.chunks_exact_mut(rb).enumerate() {
                for r in 0..PANEL {
                    let row = p * PANEL + r;
                    if row >= rows {
                        break;
                    }
                    let src = &bytes[row * row_bytes + b * bb..][..bb];
                    match ty {
                        WeightType::Q4_1 => {
                            rec[2 * r..2 * r + 2].copy_from_slice(&src[0..2]);
                            rec[16 + 2 * r..16 + 2 * r + 2].copy_from_slice(&src[2..4]);
                            // Rows 2i and 2i+1 share 32 bytes: byte j holds nibble j of
                            // the even row low and of the odd row high, where nibble j is
                            // ggml's unpacking order (low nibbles of the 16 bytes, then
                            // the high ones).
                            let pair = &mut rec[32 + (r / 2) * 32..][..32];
                            let shift = 4 * (r % 2);
                            for (j, q) in pair.iter_mut().enumerate() {
                                let nib = if j < 16 {
                                    src[4 + j] & 0x0f
                                } else {
                                    src[4 + j - 16] >> 4
                                };
                                *q |= nib << shift;
                            }
                        }
                        WeightType::Q8_0 => {
                            rec[2 * r..2 * r + 2].copy_from_slice(&src[0..2]);
                            rec[16 + 32 * r..16 + 32 * r + 32].copy_from_slice(&src[2..34]);
                        }
                    }
                }
            }
        }
        Ok(Self {
            ty,
            rows,
            k,
            nb,
            panels,
            data,
        })
    }

    /// The weight type.
    pub fn weight_type(&self) -> WeightType {
        self.ty
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Inputs per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Bytes held.
    pub fn size_bytes(&self) -> usize {
        self.data.len()
    }

    fn record(&self, panel: usize, block: usize) -> &[u8] {
        let rb = self.ty.record_bytes();
        &self.data[(panel * self.nb + block) * rb..][..rb]
    }

    fn panel_data(&self, panels: std::ops::Range<usize>) -> &[u8] {
        let pb = self.nb * self.ty.record_bytes();
        &self.data[panels.start * pb..panels.end * pb]
    }

    /// Row `row` dequantized into `out` (`k` floats), as ggml's `dequantize_row_*`.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        assert!(row < self.rows && out.len() == self.k, "row out of range");
        let (p, r) = (row / PANEL, row % PANEL);
        for (b, o) in out.chunks_exact_mut(QK).enumerate() {
            let rec = self.record(p, b);
            let d = f16_at(rec, 2 * r);
            match self.ty {
                WeightType::Q4_1 => {
                    let m = f16_at(rec, 16 + 2 * r);
                    let q = q4_1_unpack(rec, r);
                    for (o, &q) in o.iter_mut().zip(&q) {
                        *o = f32::from(q) * d + m;
                    }
                }
                WeightType::Q8_0 => {
                    for (o, &q) in o.iter_mut().zip(&rec[16 + 32 * r..16 + 32 * r + 32]) {
                        *o = f32::from(q as i8) * d;
                    }
                }
            }
        }
    }
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
}

/// The 32 quants (0..=15, in ggml's unpacking order) of row `r` of a `Q4_1` record.
fn q4_1_unpack(rec: &[u8], r: usize) -> [u8; QK] {
    let pair = &rec[32 + (r / 2) * 32..][..32];
    let shift = 4 * (r % 2);
    std::array::from_fn(|j| (pair[j] >> shift) & 0x0f)
}

/// Quantized activation rows (`n × k`), reused between calls.
#[derive(Debug, Default, Clone)]
pub struct QActs {
    ty: Option<ActType>,
    n: usize,
    nb: usize,
    /// `n × nb × 32` quants.
    qs: Vec<i8>,
    /// `n × nb` scales (the f16 value, as f32).
    d: Vec<f32>,
    /// `n × nb` `Q8_1` sums (the f16 value, as f32); empty for `Q8_0`.
    s: Vec<f32>,
}

impl QActs {
    /// Rows held.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Quantizes `x` (rows of `k` floats) to `ty`, reusing the buffers.
    pub fn quantize(&mut self, ty: ActType, x: &[f32], k: usize) {
        assert!(
            k > 0 && k.is_multiple_of(QK) && x.len().is_multiple_of(k),
            "bad shape"
        );
        let n = x.len() / k;
        let nb = k / QK;
        self.ty = Some(ty);
        self.n = n;
        self.nb = nb;
        self.qs.resize(n * nb * QK, 0);
        self.d.resize(n * nb, 0.0);
        let with_sum = ty == ActType::Q8_1;
        self.s.resize(if with_sum { n * nb } else { 0 }, 0.0);
        let blocks = n * nb;
        // Big batches in parallel (the order within a block never changes).
        let chunk = 64;
        let qs = self.qs.par_chunks_mut(chunk * QK);
        let d = self.d.par_chunks_mut(chunk);
        let xs = x.par_chunks(chunk * QK);
        if blocks > 4 * chunk {
            if with_sum {
                xs.zip(qs)
                    .zip(d)
                    .zip(self.s.par_chunks_mut(chunk))
                    .for_each(|(((x, q), d), s)| quantize_blocks(x, q, d, Some(s)));
            } else {
                xs.zip(qs)
                    .zip(d)
                    .for_each(|((x, q), d)| quantize_blocks(x, q, d, None));
            }
        } else {
            let s = if with_sum {
                Some(&mut self.s[..])
            } else {
                None
            };
            quantize_blocks(x, &mut self.qs, &mut self.d, s);
        }
    }

    fn view(&self, tokens: std::ops::Range<usize>) -> ActsView<'_> {
        let nb = self.nb;
        ActsView {
            nb,
            n: tokens.len(),
            qs: &self.qs[tokens.start * nb * QK..tokens.end * nb * QK],
            d: &self.d[tokens.start * nb..tokens.end * nb],
            s: if self.s.is_empty() {
                &[]
            } else {
                &self.s[tokens.start * nb..tokens.end * nb]
            },
        }
    }
}

/// Some consecutive rows of a [`QActs`].
#[derive(Clone, Copy)]
struct ActsView<'a> {
    nb: usize,
    n: usize,
    qs: &'a [i8],
    d: &'a [f32],
    s: &'a [f32],
}

fn quantize_blocks(x: &[f32], qs: &mut [i8], d: &mut [f32], s: Option<&mut [f32]>) {
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        return x86::quantize_blocks(x, qs, d, s);
    }
    quantize_blocks_ref(x, qs, d, s)
}

/// Portable reference of ggml's AVX2 `quantize_row_q8_1` (with `s`) / `quantize_row_q8_0`.
/// (ggml's own scalar fallback differs: it rounds half away from zero and scales by
/// `1/d`; the AVX2 build, which llama.cpp runs here, is what this reproduces.)
pub fn quantize_blocks_ref(x: &[f32], qs: &mut [i8], d: &mut [f32], mut s: Option<&mut [f32]>) {
    for (i, (xb, qb)) in x.chunks_exact(QK).zip(qs.chunks_exact_mut(QK)).enumerate() {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let dd = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in qb.iter_mut().zip(xb) {
            let r = (v * id).round_ties_even() as i32;
            let r = r.clamp(-128, 127);
            sum += r;
            *q = r as i8;
        }
        d[i] = round_f16(dd);
        if let Some(s) = s.as_deref_mut() {
            s[i] = round_f16(sum as f32 * dd);
        }
    }
}

/// `x` rounded to the nearest f16 (ties to even), back in f32.
#[inline]
pub fn round_f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

/// ggml's `hsum_float_8`: `((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7))`.
#[inline]
fn hsum8(a: &[f32; 8]) -> f32 {
    let t = [a[4] + a[0], a[5] + a[1], a[6] + a[2], a[7] + a[3]];
    (t[0] + t[2]) + (t[1] + t[3])
}

/// Reference dot product of row `row` of `w` with activation row `t` (ggml's
/// `ggml_vec_dot_q4_1_q8_1` / `ggml_vec_dot_q8_0_q8_0`, AVX2 build).
fn dot_ref(w: &QMatrix, row: usize, a: &ActsView<'_>, t: usize) -> f32 {
    let (p, r) = (row / PANEL, row % PANEL);
    let nb = w.nb;
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for b in 0..nb {
        let rec = w.record(p, b);
        let qy = &a.qs[(t * nb + b) * QK..][..QK];
        let dy = a.d[t * nb + b];
        let dd = f16_at(rec, 2 * r) * dy;
        let qx: [i32; QK] = match w.ty {
            WeightType::Q4_1 => {
                summs = f16_at(rec, 16 + 2 * r).mul_add(a.s[t * nb + b], summs);
                q4_1_unpack(rec, r).map(i32::from)
            }
            WeightType::Q8_0 => {
                let q = &rec[16 + 32 * r..16 + 32 * r + 32];
                std::array::from_fn(|j| i32::from(q[j] as i8))
            }
        };
        for (l, acc) in acc.iter_mut().enumerate() {
            let xy: i32 = (4 * l..4 * l + 4).map(|j| qx[j] * i32::from(qy[j])).sum();
            *acc = dd.mul_add(xy as f32, *acc);
        }
    }
    hsum8(&acc) + summs
}

/// Reference tile: rows of panels `panels` × all tokens of `a`, into
/// `out[t·ldo + (row − first row)]` for rows below `rows_valid` (counted from the first
/// row of the range).
fn gemm_ref(
    w: &QMatrix,
    panels: std::ops::Range<usize>,
    rows_valid: usize,
    a: &ActsView<'_>,
    out: &mut [f32],
    ldo: usize,
) {
    let row0 = panels.start * PANEL;
    for t in 0..a.n {
        for rr in 0..rows_valid.min(panels.len() * PANEL) {
            out[t * ldo + rr] = dot_ref(w, row0 + rr, a, t);
        }
    }
}

fn gemm_tile(
    w: &QMatrix,
    panels: std::ops::Range<usize>,
    rows_valid: usize,
    a: &ActsView<'_>,
    out: &mut [f32],
    ldo: usize,
    scratch: &mut Vec<f32>,
) {
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        let data = w.panel_data(panels);
        return match w.ty {
            WeightType::Q4_1 => x86::gemm_q4_1(data, w.nb, rows_valid, a, out, ldo, scratch),
            WeightType::Q8_0 => x86::gemm_q8_0(data, w.nb, rows_valid, a, out, ldo, scratch),
        };
    }
    let _ = scratch;
    gemm_ref(w, panels, rows_valid, a, out, ldo)
}

/// `out = a · wᵀ`: `out` is `a.n() × w.rows()`, row-major by token. Runs on the current
/// rayon pool; every element is computed the same way whatever the split.
pub fn matmul(w: &QMatrix, a: &QActs, out: &mut Vec<f32>) {
    assert_eq!(a.ty, Some(w.ty.act_type()), "activation type");
    assert_eq!(a.nb, w.nb, "inner dimension");
    let (n, rows) = (a.n, w.rows);
    out.resize(n * rows, 0.0);
    if n == 0 {
        return;
    }
    let threads = rayon::current_num_threads().max(1);
    if n == 1 {
        // One token: split the rows (whole panels) among the threads.
        let tasks = (threads * 4).min(w.panels);
        let panels_per = w.panels.div_ceil(tasks);
        out.par_chunks_mut(panels_per * PANEL)
            .enumerate()
            .for_each_init(Vec::new, |scratch, (i, o)| {
                let p0 = i * panels_per;
                let p1 = (p0 + panels_per).min(w.panels);
                let rows_valid = o.len();
                gemm_tile(w, p0..p1, rows_valid, &a.view(0..1), o, rows, scratch);
            });
        return;
    }
    // A batch: split the tokens; each task runs every panel over its tokens, so a panel
    // is read once per task while it sits in L1.
    let per = n.div_ceil(threads * 4).clamp(1, 64);
    let per = if per > TILE_TOKENS {
        per.next_multiple_of(TILE_TOKENS)
    } else {
        per
    };
    out.par_chunks_mut(per * rows)
        .enumerate()
        .for_each_init(Vec::new, |scratch, (i, o)| {
            let t0 = i * per;
            let t1 = t0 + o.len() / rows;
            gemm_tile(w, 0..w.panels, rows, &a.view(t0..t1), o, rows, scratch);
        });
}

/// ggml's `ggml_vec_swiglu_f32`: `out[i] = silu(gate[i]) · up[i]` with ggml's vector
/// `expf` on whole groups of 8 and `x / (1 + expf(−x))` (libm) on the tail.
pub fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(gate.len() == up.len() && up.len() == out.len());
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        return x86::swiglu(gate, up, out);
    }
    swiglu_ref(gate, up, out)
}

/// Portable reference of [`swiglu`].
pub fn swiglu_ref(gate: &[f32], up: &[f32], out: &mut [f32]) {
    let full = gate.len() / 8 * 8;
    for i in 0..full {
        out[i] = silu_v(gate[i]) * up[i];
    }
    for i in full..gate.len() {
        let x = gate[i];
        out[i] = x / (1.0 + (-x).exp()) * up[i];
    }
}

/// One lane of ggml's AVX2 `ggml_v_silu`: `x / (1 + ggml_v_expf(0 − x))`.
fn silu_v(x: f32) -> f32 {
    x / (1.0 + expf_v(0.0 - x))
}

/// One lane of ggml's AVX2 `ggml_v_expf` (a degree-5 polynomial after range reduction,
/// with the same fused operations and special ranges).
fn expf_v(x: f32) -> f32 {
    let r = f32::from_bits(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(f32::from_bits(0x3fb8_aa3b), r); // log2(e)
    let n = z - r;
    let b = (-n).mul_add(
        f32::from_bits(0x35bf_be8e),                  // 0x1.7f7d1cp-20
        (-n).mul_add(f32::from_bits(0x3f31_7200), x), // 0x1.62e4p-1
    );
    let e = z.to_bits() << 23;
    let k = f32::from_bits(e.wrapping_add(1f32.to_bits()));
    let c = n.abs() > 126.0;
    let u = b * b;
    let j = f32::from_bits(0x3c07_2010) // 0x1.0e4020p-7
        .mul_add(b, f32::from_bits(0x3d2b_9f17)) // 0x1.573e2ep-5
        .mul_add(
            u,
            f32::from_bits(0x3e2a_af33).mul_add(b, f32::from_bits(0x3eff_fedb)), // 0x1.555e66p-3, 0x1.fffdb6p-2
        )
        .mul_add(u, f32::from_bits(0x3f7f_fff6) * b); // 0x1.ffffecp-1
    if !c {
        return j.mul_add(k, k);
    }
    let g: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = f32::from_bits(g.wrapping_add(0x7f00_0000));
    let s2 = f32::from_bits(e.wrapping_sub(g));
    if n.abs() > 192.0 {
        s1 * s1
    } else {
        s2.mul_add(j, s2) * s1
    }
}

#[cfg(test)]
mod tests;
