//! Throughput of the quantized matmul kernels on random weights (one thread unless
//! `--threads N`): `cargo run --release -p noesis-ai --example kernels`.

use std::time::Instant;

use noesis_ai::kernels::{QActs, QMatrix, WeightType, matmul};

/// Nanoseconds this thread has run (`/proc/thread-self/schedstat`).
fn cpu_ns() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() {
    let threads: usize = std::env::args()
        .skip_while(|a| a != "--threads")
        .nth(1)
        .map_or(1, |v| v.parse().expect("--threads N"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let mut seed = 1u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) as u32
    };
    for (ty, rows, k, n) in [
        (WeightType::Q4_1, 1536, 576, 512),
        (WeightType::Q4_1, 576, 1536, 512),
        (WeightType::Q4_1, 1536, 576, 1),
        (WeightType::Q8_0, 49152, 576, 1),
        (WeightType::Q8_0, 49152, 576, 64),
    ] {
        let bb = ty.ggml_block_bytes();
        let mut bytes = vec![0u8; rows * k / 32 * bb];
        for blk in bytes.chunks_exact_mut(bb) {
            blk[..2].copy_from_slice(&half::f16::from_f32(0.01).to_le_bytes());
            if ty == WeightType::Q4_1 {
                blk[2..4].copy_from_slice(&half::f16::from_f32(-0.1).to_le_bytes());
            }
            for b in &mut blk[if ty == WeightType::Q4_1 { 4 } else { 2 }..] {
                *b = next() as u8;
            }
        }
        let w = QMatrix::from_ggml(ty, rows, k, &bytes).unwrap();
        let x: Vec<f32> = (0..n * k)
            .map(|_| next() as f32 / u32::MAX as f32 - 0.5)
            .collect();
        let mut a = QActs::default();
        let mut out = Vec::new();
        let reps = (400_000_000 / (rows * k * n)).max(1);
        pool.install(|| {
            a.quantize(ty.act_type(), &x, k);
            matmul(&w, &a, &mut out);
            // Best of 7 batches: CPU time of this thread with one thread (all the work),
            // wall time otherwise.
            let mut secs = f64::INFINITY;
            for _ in 0..7 {
                let t = Instant::now();
                let c0 = cpu_ns();
                for _ in 0..reps {
                    matmul(&w, &a, &mut out);
                }
                let s = if threads == 1 {
                    (cpu_ns() - c0) / 1e9
                } else {
                    t.elapsed().as_secs_f64()
                };
                secs = secs.min(s / reps as f64);
            }
            let pairs = (rows * n * k / 32) as f64;
            println!(
                "{ty:?} {rows}x{k} x {n} tokens: {:.3} ms, {:.1} GMAC/s, {:.2} ns per block pair",
                secs * 1e3,
                (rows * k * n) as f64 / secs / 1e9,
                secs / pairs * 1e9
            );
        });
    }
}
