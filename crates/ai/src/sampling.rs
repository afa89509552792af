//! Choosing the next token from logits — specified exactly, because a verifier recomputes
//! the choice from the same logits (up to float noise), seed and index.
//!
//! **Greedy** (`temperature == 0`): the id with the largest logit; ties go to the
//! smallest id. Seed, top-k and top-p are ignored.
//!
//! **Sampling** (`temperature > 0`), for output token number `index` (0 for the first
//! generated token):
//! 1. Order all ids by logit, largest first, ties by smaller id.
//! 2. Keep the first `top_k` (when `top_k > 0`).
//! 3. Probabilities `p_i = exp((l_i − l_max) / T) / Σ exp((l_j − l_max) / T)` over the
//!    kept ids, in `f64`; the sum `Σ` runs over the kept ids in increasing id order.
//! 4. When `top_p < 1`: keep the shortest prefix (in the order of step 1) whose
//!    cumulative probability `Σ_{j ≤ i} p_j`, summed in that order, reaches `top_p` (at
//!    least one id); the kept ids' weights are then renormalized by their sum in that
//!    order.
//! 5. Draw `u = uniform(seed, index)` (below) and return the first kept id (in the order
//!    of step 1) whose cumulative renormalized probability exceeds `u`; the last kept id
//!    if rounding leaves none.
//!
//! Only the ranks up to the drawn id matter, so the ids are ranked lazily (a partial
//! selection, then a sort of the few selected) instead of sorting the vocabulary.
//!
//! **The uniform draw** is SplitMix64, counter-based: the `index`-th output (0-based) of
//! a SplitMix64 generator seeded with `seed`, i.e.
//! `z = seed + (index + 1) · 0x9E3779B97F4A7C15` (wrapping), then
//! `z = (z ^ (z >> 30)) · 0xBF58476D1CE4E5B9`, `z = (z ^ (z >> 27)) · 0x94D049BB133111EB`,
//! `z ^= z >> 31` (wrapping multiplications), and `u = (z >> 11) · 2⁻⁵³` in `[0, 1)`.
//! Every position's draw depends only on `(seed, index)`, not on earlier draws, so a
//! verifier can check any token alone.

use serde::{Deserialize, Serialize};

use crate::error::{AiError, Result};

/// Parameters of a generation. They go into the record of every generated token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Softmax temperature; 0 means greedy.
    pub temperature: f32,
    /// Keep only the `top_k` most likely ids (0: all).
    pub top_k: u32,
    /// Keep the smallest set of most likely ids whose probability reaches `top_p` (1:
    /// all).
    pub top_p: f32,
    /// Seed of the uniform draws.
    pub seed: u64,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Texts that end generation when the output contains them (the output stops
    /// before the first one).
    pub stop: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            max_tokens: 256,
            stop: Vec::new(),
        }
    }
}

impl SamplingParams {
    /// Checks the ranges: finite temperature ≥ 0, `top_p` in (0, 1], no empty stop text.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(AiError::Sampling(format!(
                "temperature {} must be a finite number ≥ 0",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(AiError::Sampling(format!(
                "top_p {} must be in (0, 1]",
                self.top_p
            )));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(AiError::Sampling("a stop sequence is empty".into()));
        }
        Ok(())
    }

    /// Whether this is greedy decoding.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }
}

/// The uniform draw in `[0, 1)` for output token `index` (see the module docs).
pub fn uniform(seed: u64, index: u64) -> f64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The id with the largest logit (ties: smallest id); `None` for empty logits.
pub fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        match best {
            Some((_, b)) if l.total_cmp(&b).is_le() => {}
            _ => best = Some((i, l)),
        }
    }
    best.map(|(i, _)| i as u32)
}

/// The candidates kept after top-k and top-p, most likely first, with their
/// probabilities renormalized over the kept set.
pub fn candidates(logits: &[f32], params: &SamplingParams) -> Vec<(u32, f64)> {
    candidates_until(logits, params, |_, _| false)
}

/// First ids ranked per round of [`candidates_until`]; each round ranks eight times more.
const FIRST_RANKED: usize = 32;

/// [`candidates`], ranked only as far as needed: the list may end right after the first
/// candidate for which `enough(id, cum)` holds, `cum` being the cumulative renormalized
/// probability up to and including it (summed in this order, as a caller walking the list
/// sums it). Ranking all ids costs a sort of the vocabulary per token; a draw usually
/// lands among the first few.
pub fn candidates_until(
    logits: &[f32],
    params: &SamplingParams,
    mut enough: impl FnMut(u32, f64) -> bool,
) -> Vec<(u32, f64)> {
    // Ranking keys: ascending key = largest logit first, ties by smaller id.
    let mut keys: Vec<u64> = logits
        .iter()
        .zip(0u32..)
        .map(|(&l, id)| rank_key(l, id))
        .collect();
    let k = params.top_k as usize;
    let top_k = k > 0 && k < keys.len();
    if top_k {
        keys.select_nth_unstable(k - 1);
        keys.truncate(k);
    }
    let Some(first) = keys.iter().min().map(|&key| key as u32) else {
        return Vec::new();
    };
    let max = f64::from(logits[first as usize]);
    let t = f64::from(params.temperature.max(f32::MIN_POSITIVE));
    let weight = |i: u32| ((f64::from(logits[i as usize]) - max) / t).exp();
    // The normalizer over the kept ids, summed in id order (no ranking needed).
    let total: f64 = if top_k {
        let mut ids: Vec<u32> = keys.iter().map(|&key| key as u32).collect();
        ids.sort_unstable();
        ids.into_iter().map(weight).sum()
    } else {
        (0..logits.len() as u32).map(weight).sum()
    };

    // Top-p: the shortest ranked prefix whose cumulative probability reaches `top_p`.
    let mut ranking = Ranking {
        ranked: 0,
        round: FIRST_RANKED,
        keys,
    };
    let len = ranking.keys.len();
    let (kept, kept_total) = if params.top_p < 1.0 {
        let target = f64::from(params.top_p);
        let mut cum = 0.0;
        let mut n = 0;
        while n < len && cum < target {
            cum += weight(ranking.id(n)) / total;
            n += 1;
        }
        let n = if cum >= target { n } else { len };
        let sum: f64 = (0..n).map(|i| weight(ranking.id(i))).sum();
        (n, sum)
    } else {
        (len, total)
    };

    let mut out = Vec::new();
    let mut cum = 0.0;
    for i in 0..kept {
        let id = ranking.id(i);
        let p = weight(id) / kept_total;
        out.push((id, p));
        cum += p;
        if enough(id, cum) {
            break;
        }
    }
    out
}

/// Ranking keys sorted on demand: `keys[..ranked]` hold the most likely ids in order.
struct Ranking {
    keys: Vec<u64>,
    ranked: usize,
    /// How many more the next round ranks.
    round: usize,
}

impl Ranking {
    /// The id of rank `i` (`i < keys.len()`), ranking the next round first when needed.
    fn id(&mut self, i: usize) -> u32 {
        if i >= self.ranked {
            let rest = &mut self.keys[self.ranked..];
            let n = self.round.min(rest.len());
            if n < rest.len() {
                rest.select_nth_unstable(n);
            }
            rest[..n].sort_unstable();
            self.ranked += n;
            self.round = self.round.saturating_mul(8);
        }
        self.keys[i] as u32
    }
}

/// A key whose ascending order is the ranking of step 1: logits largest first in
/// `f32::total_cmp` order, ties by smaller id (the id is the low 32 bits).
fn rank_key(logit: f32, id: u32) -> u64 {
    let bits = logit.to_bits() as i32;
    // `total_cmp`'s order as a signed integer, then as an unsigned one.
    let ordered = (bits ^ ((((bits >> 31) as u32) >> 1) as i32)) as u32 ^ 0x8000_0000;
    (u64::from(!ordered) << 32) | u64::from(id)
}

/// The token chosen for output number `index` (see the module docs).
pub fn sample(logits: &[f32], params: &SamplingParams, index: u64) -> Result<u32> {
    if logits.is_empty() {
        return Err(AiError::Sampling("no logits".into()));
    }
    if params.is_greedy() {
        return argmax(logits).ok_or_else(|| AiError::Sampling("no logits".into()));
    }
    let u = uniform(params.seed, index);
    let kept = candidates_until(logits, params, |_, cum| u < cum);
    let mut cum = 0.0;
    for &(id, p) in &kept {
        cum += p;
        if u < cum {
            return Ok(id);
        }
    }
    kept.last()
        .map(|&(id, _)| id)
        .ok_or_else(|| AiError::Sampling("no candidates".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(temperature: f32, top_k: u32, top_p: f32, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature,
            top_k,
            top_p,
            seed,
            ..SamplingParams::default()
        }
    }

    #[test]
    fn uniform_is_splitmix64() {
        // Reference outputs of SplitMix64 seeded with 1234567 (the generator's
        // published test values).
        let expected: [u64; 3] = [
            6457827717110365317,
            3203168211198807973,
            9817491932198370423,
        ];
        for (i, &e) in expected.iter().enumerate() {
            let u = uniform(1234567, i as u64);
            assert_eq!(u, (e >> 11) as f64 / (1u64 << 53) as f64);
        }
        for i in 0..1000 {
            let u = uniform(42, i);
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn greedy_is_argmax_with_ties_to_smallest_id() {
        assert_eq!(argmax(&[0.0, 3.0, 3.0, -1.0]), Some(1));
        assert_eq!(sample(&[0.0, 1.0, 5.0], &p(0.0, 0, 1.0, 7), 0).unwrap(), 2);
        assert_eq!(argmax(&[]), None);
    }

    #[test]
    fn same_seed_same_tokens_and_frequencies_follow_softmax() {
        let logits = [1.0f32, 2.0, 0.5, 2.0, -3.0];
        let params = p(1.0, 0, 1.0, 99);
        let a: Vec<u32> = (0..200)
            .map(|i| sample(&logits, &params, i).unwrap())
            .collect();
        let b: Vec<u32> = (0..200)
            .map(|i| sample(&logits, &params, i).unwrap())
            .collect();
        assert_eq!(a, b);
        let other = p(1.0, 0, 1.0, 100);
        let c: Vec<u32> = (0..200)
            .map(|i| sample(&logits, &other, i).unwrap())
            .collect();
        assert_ne!(a, c);
        // Empirical frequencies over many indices match the softmax.
        let n = 40_000u64;
        let mut counts = [0usize; 5];
        for i in 0..n {
            counts[sample(&logits, &params, i).unwrap() as usize] += 1;
        }
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        for (i, &l) in logits.iter().enumerate() {
            let want = f64::from(l).exp() / z;
            let got = counts[i] as f64 / n as f64;
            assert!((want - got).abs() < 0.01, "{i}: {want} vs {got}");
        }
    }

    #[test]
    fn top_k_and_top_p_restrict_the_support() {
        let logits = [0.0f32, 1.0, 2.0, 3.0, 4.0];
        for i in 0..500 {
            let t = sample(&logits, &p(2.0, 2, 1.0, 5), i).unwrap();
            assert!(t == 4 || t == 3);
        }
        // Probabilities at T=1: ≈ .636 .234 .086 .032 .012; top_p 0.8 keeps {4, 3}.
        let kept = candidates(&logits, &p(1.0, 0, 0.8, 0));
        assert_eq!(kept.iter().map(|c| c.0).collect::<Vec<_>>(), vec![4, 3]);
        assert!((kept.iter().map(|c| c.1).sum::<f64>() - 1.0).abs() < 1e-12);
        // A tiny top_p keeps only the most likely id.
        for i in 0..100 {
            assert_eq!(sample(&logits, &p(1.0, 0, 1e-6, 3), i).unwrap(), 4);
        }
        // Lower temperature concentrates mass.
        let cold = candidates(&logits, &p(0.1, 0, 1.0, 0));
        assert!(cold[0].1 > 0.99);
    }

    /// The lazily ranked list is a prefix of the fully ranked one, and the draw the same
    /// as walking the full list, over peaked and flat distributions and every cut.
    #[test]
    fn lazy_ranking_draws_what_full_ranking_draws() {
        let mut x: u64 = 0x9E3779B97F4A7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for case in 0..40u64 {
            let spread = [0.5f32, 3.0, 12.0, 40.0][case as usize % 4];
            let n = [50usize, 700, 5000][case as usize % 3];
            let logits: Vec<f32> = (0..n)
                .map(|_| (next() % 100_000) as f32 / 100_000.0 * spread)
                .collect();
            for params in [
                p(0.7, 0, 1.0, case),
                p(1.5, 0, 0.9, case),
                p(0.3, 40, 0.95, case),
                p(1.0, 3000, 1.0, case),
            ] {
                let full = candidates(&logits, &params);
                let mut ids: Vec<u32> = (0..n as u32).collect();
                ids.sort_by(|a, b| {
                    logits[*b as usize]
                        .total_cmp(&logits[*a as usize])
                        .then(a.cmp(b))
                });
                let order: Vec<u32> = full.iter().map(|c| c.0).collect();
                assert_eq!(order[..], ids[..order.len()]);
                for index in 0..20 {
                    let u = uniform(params.seed, index);
                    let lazy = candidates_until(&logits, &params, |_, cum| u < cum);
                    assert_eq!(lazy[..], full[..lazy.len()]);
                    let mut cum = 0.0;
                    let walked = full
                        .iter()
                        .find(|c| {
                            cum += c.1;
                            u < cum
                        })
                        .or(full.last())
                        .map(|c| c.0);
                    assert_eq!(sample(&logits, &params, index).ok(), walked);
                }
            }
        }
    }

    #[test]
    fn validation() {
        assert!(p(-1.0, 0, 1.0, 0).validate().is_err());
        assert!(p(f32::NAN, 0, 1.0, 0).validate().is_err());
        assert!(p(1.0, 0, 0.0, 0).validate().is_err());
        assert!(p(1.0, 0, 1.5, 0).validate().is_err());
        assert!(p(0.7, 40, 0.9, 0).validate().is_ok());
        let mut q = p(0.0, 0, 1.0, 0);
        q.stop = vec![String::new()];
        assert!(q.validate().is_err());
    }
}
