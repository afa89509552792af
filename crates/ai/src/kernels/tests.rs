//! The kernels against llama.cpp's own library (golden vectors) and the SIMD kernels
//! against the portable ones (random inputs, bit-exact).

use super::*;
use serde_json::Value;

fn fixture() -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/ai/ggml-kernels.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| f32::from_bits(b.as_u64().unwrap() as u32))
        .collect()
}

fn hex(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn f16_bits_to_f32(lo: u8, hi: u8) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([lo, hi])).to_f32()
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.f32().max(1e-7), self.f32());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

fn random_weights(rng: &mut Rng, ty: WeightType, rows: usize, k: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..rows * k / QK {
        let d = half::f16::from_f32(0.001 + 0.05 * rng.f32()).to_le_bytes();
        bytes.extend_from_slice(&d);
        match ty {
            WeightType::Q4_1 => {
                let m = half::f16::from_f32(-0.8 * rng.f32()).to_le_bytes();
                bytes.extend_from_slice(&m);
                bytes.extend((0..16).map(|_| rng.next() as u8));
            }
            WeightType::Q8_0 => bytes.extend((0..32).map(|_| rng.next() as u8)),
        }
    }
    bytes
}

fn random_acts(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let scale = [1.0, 30.0, 0.01][i % 3];
            rng.normal() * scale
        })
        .collect()
}

#[test]
fn quantization_matches_llama_cpp() {
    let f = fixture();
    for (name, ty, block) in [
        ("quantize_q8_1", ActType::Q8_1, 36),
        ("quantize_q8_0", ActType::Q8_0, 34),
    ] {
        for case in f[name].as_array().unwrap() {
            let x = floats(&case["x"]);
            let want = hex(&case["q"]);
            let mut a = QActs::default();
            a.quantize(ty, &x, x.len());
            let nb = x.len() / QK;
            let (mut ref_qs, mut ref_d, mut s) = (vec![0; x.len()], vec![0.0; nb], vec![0.0; nb]);
            quantize_blocks_ref(
                &x,
                &mut ref_qs,
                &mut ref_d,
                (ty == ActType::Q8_1).then_some(&mut s[..]),
            );
            for b in 0..nb {
                let g = &want[b * block..(b + 1) * block];
                let d = f16_bits_to_f32(g[0], g[1]);
                let q0 = if ty == ActType::Q8_1 { 4 } else { 2 };
                let q: Vec<i8> = g[q0..].iter().map(|&v| v as i8).collect();
                assert_eq!(a.d[b].to_bits(), d.to_bits(), "{name} d, block {b}");
                assert_eq!(ref_d[b].to_bits(), d.to_bits(), "{name} ref d");
                assert_eq!(&a.qs[b * QK..(b + 1) * QK], &q[..], "{name} q, block {b}");
                assert_eq!(&ref_qs[b * QK..(b + 1) * QK], &q[..], "{name} ref q");
                if ty == ActType::Q8_1 {
                    let sum = f16_bits_to_f32(g[2], g[3]);
                    assert_eq!(a.s[b].to_bits(), sum.to_bits(), "{name} s, block {b}");
                    assert_eq!(s[b].to_bits(), sum.to_bits(), "{name} ref s");
                }
            }
        }
    }
}

#[test]
fn dot_products_match_llama_cpp() {
    let f = fixture();
    for (name, ty) in [
        ("dot_q4_1_q8_1", WeightType::Q4_1),
        ("dot_q8_0_q8_0", WeightType::Q8_0),
    ] {
        for (i, case) in f[name].as_array().unwrap().iter().enumerate() {
            let x = floats(&case["x"]);
            let w = QMatrix::from_ggml(ty, 1, x.len(), &hex(&case["w"])).unwrap();
            let want = f32::from_bits(case["dot"].as_u64().unwrap() as u32);
            let mut a = QActs::default();
            a.quantize(ty.act_type(), &x, x.len());
            let mut out = Vec::new();
            matmul(&w, &a, &mut out);
            assert_eq!(out[0].to_bits(), want.to_bits(), "{name} case {i}");
            let r = dot_ref(&w, 0, &a.view(0..1), 0);
            assert_eq!(r.to_bits(), want.to_bits(), "{name} case {i} (reference)");
        }
    }
}

#[test]
fn swiglu_matches_llama_cpp() {
    for case in fixture()["swiglu"].as_array().unwrap() {
        let (g, u, want) = (
            floats(&case["gate"]),
            floats(&case["up"]),
            floats(&case["y"]),
        );
        let mut out = vec![0.0; g.len()];
        swiglu(&g, &u, &mut out);
        let mut reference = vec![0.0; g.len()];
        swiglu_ref(&g, &u, &mut reference);
        for i in 0..g.len() {
            assert_eq!(
                out[i].to_bits(),
                want[i].to_bits(),
                "swiglu {i}: x {}",
                g[i]
            );
            assert_eq!(reference[i].to_bits(), want[i].to_bits(), "reference {i}");
        }
    }
}

#[test]
fn batched_kernels_equal_the_reference_bit_for_bit() {
    let mut rng = Rng(7);
    for ty in [WeightType::Q4_1, WeightType::Q8_0] {
        for (rows, k, n) in [
            (8, 32, 1),
            (13, 64, 3),
            (40, 576, 9),
            (64, 1536, 5),
            (3, 96, 2),
        ] {
            let w =
                QMatrix::from_ggml(ty, rows, k, &random_weights(&mut rng, ty, rows, k)).unwrap();
            let x = random_acts(&mut rng, n * k);
            let mut a = QActs::default();
            a.quantize(ty.act_type(), &x, k);
            let mut out = Vec::new();
            matmul(&w, &a, &mut out);
            let view = a.view(0..n);
            for t in 0..n {
                for r in 0..rows {
                    let want = dot_ref(&w, r, &view, t);
                    assert_eq!(
                        out[t * rows + r].to_bits(),
                        want.to_bits(),
                        "{ty:?} {rows}×{k}, token {t}, row {r}"
                    );
                }
                // One token alone (the decode path) gives the same row.
                let mut one = QActs::default();
                one.quantize(ty.act_type(), &x[t * k..(t + 1) * k], k);
                let mut alone = Vec::new();
                matmul(&w, &one, &mut alone);
                assert_eq!(alone, out[t * rows..(t + 1) * rows]);
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut rng = Rng(11);
    let (rows, k, n) = (200, 576, 37);
    let ty = WeightType::Q4_1;
    let w = QMatrix::from_ggml(ty, rows, k, &random_weights(&mut rng, ty, rows, k)).unwrap();
    let x = random_acts(&mut rng, n * k);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut a = QActs::default();
            a.quantize(ty.act_type(), &x, k);
            let mut out = Vec::new();
            matmul(&w, &a, &mut out);
            out
        })
    };
    assert_eq!(run(1), run(2));
    assert_eq!(run(1), run(3));
}

#[test]
fn quantization_simd_equals_reference_on_random_rows() {
    let mut rng = Rng(3);
    for _ in 0..50 {
        let x = random_acts(&mut rng, 32 * 17);
        for ty in [ActType::Q8_0, ActType::Q8_1] {
            let mut a = QActs::default();
            a.quantize(ty, &x, x.len());
            let nb = x.len() / QK;
            let (mut qs, mut d, mut s) = (vec![0; x.len()], vec![0.0; nb], vec![0.0; nb]);
            quantize_blocks_ref(&x, &mut qs, &mut d, (ty == ActType::Q8_1).then_some(&mut s));
            assert_eq!(a.qs, qs);
            assert_eq!(a.d, d);
            if ty == ActType::Q8_1 {
                assert_eq!(a.s, s);
            }
        }
    }
}

#[test]
fn dequantized_rows_match_the_ggml_formulas() {
    let mut rng = Rng(5);
    let bytes = random_weights(&mut rng, WeightType::Q8_0, 9, 64);
    let w = QMatrix::from_ggml(WeightType::Q8_0, 9, 64, &bytes).unwrap();
    let mut row = vec![0.0; 64];
    w.dequantize_row(8, &mut row);
    let src = &bytes[8 * 2 * 34..];
    let d = f16_bits_to_f32(src[0], src[1]);
    assert_eq!(row[5], f32::from(src[2 + 5] as i8) * d);
    let bytes = random_weights(&mut rng, WeightType::Q4_1, 2, 32);
    let w = QMatrix::from_ggml(WeightType::Q4_1, 2, 32, &bytes).unwrap();
    let mut row = vec![0.0; 32];
    w.dequantize_row(1, &mut row);
    let src = &bytes[20..];
    let (d, m) = (
        f16_bits_to_f32(src[0], src[1]),
        f16_bits_to_f32(src[2], src[3]),
    );
    assert_eq!(row[3], f32::from(src[4 + 3] & 15) * d + m);
    assert_eq!(row[19], f32::from(src[4 + 3] >> 4) * d + m);
}
