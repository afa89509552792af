//! The hidden-state commitment of a proof of inference (after TOPLOC, Ong et al. 2025).
//!
//! While generating, the runtime keeps the final hidden state (after the last norm)
//! of every position whose logits chose an output token. Every [`CHUNK_TOKENS`] of
//! them form a chunk; of a chunk's `tokens × hidden` values the [`TOP_K`] largest in
//! magnitude are selected, each value rounded to bfloat16, and the map
//! `index mod p ↦ bf16 bits` is interpolated by the polynomial of degree < k over
//! GF(p), p = [`MODULUS`]. The commitment stores only the polynomial's coefficients:
//! 2 bytes per selected value, 257 bytes per 32 tokens.
//!
//! A verifier recomputes the hidden states in one prefill pass over prompt + output,
//! selects its own top-k, evaluates the polynomial at those indices and compares
//! the values it finds with its own: an index the prover did not select decodes to
//! noise, a different model or prompt moves the values. Honest recomputation differs
//! only by float reordering, so the comparison tolerates a few exponent mismatches
//! and small mantissa differences ([`Tolerance`], set from measured honest variation).
//!
//! Every bfloat16 that is finite has bits ≤ 0xFF7F < p, so the values are stored
//! exactly; indices ≥ p (chunks of more than p values) are reduced mod p and a
//! selected value whose reduced index is already taken is skipped for the next one,
//! by the same rule on both sides.

use std::cmp::Ordering;

/// Generated tokens per chunk.
pub const CHUNK_TOKENS: usize = 32;
/// Values selected per full chunk; a shorter last chunk selects proportionally fewer
/// (at least [`MIN_K`]), so the proof stays near 258 bytes per 32 tokens throughout.
pub const TOP_K: usize = 128;
/// Fewest values selected for a chunk.
pub const MIN_K: usize = 16;
/// The field's prime: the largest below 2^16.
pub const MODULUS: u32 = 65_521;
/// Encoding version.
const VERSION: u8 = 1;
/// Most chunks a decoded commitment may hold (a 1M-token answer).
const MAX_CHUNKS: usize = 1 << 15;

/// Why a commitment could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommitmentError {
    /// The bytes end early or carry extra data.
    #[error("commitment is malformed: {0}")]
    Malformed(&'static str),
    /// Another encoding version.
    #[error("commitment version {0} is not supported (expected {VERSION})")]
    Version(u8),
}

/// The polynomial of one chunk, lowest-degree coefficient first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkCommitment {
    /// Coefficients in GF(p); as many as values were selected.
    pub coefficients: Vec<u16>,
}

/// The commitment to a whole completion: one polynomial per chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commitment {
    /// Chunks in order.
    pub chunks: Vec<ChunkCommitment>,
}

impl Commitment {
    /// `[version][chunks: u16 BE]` then per chunk `[k: u8][k × u16 BE]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.chunks.len() * (1 + 2 * TOP_K));
        out.push(VERSION);
        out.extend_from_slice(&(self.chunks.len() as u16).to_be_bytes());
        for chunk in &self.chunks {
            out.push(chunk.coefficients.len() as u8);
            for c in &chunk.coefficients {
                out.extend_from_slice(&c.to_be_bytes());
            }
        }
        out
    }

    /// Decodes [`Commitment::encode`]'s bytes; any deviation is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, CommitmentError> {
        let (&version, rest) = bytes
            .split_first()
            .ok_or(CommitmentError::Malformed("empty"))?;
        if version != VERSION {
            return Err(CommitmentError::Version(version));
        }
        let (count, mut rest) = rest
            .split_at_checked(2)
            .ok_or(CommitmentError::Malformed("no chunk count"))?;
        let count = u16::from_be_bytes([count[0], count[1]]) as usize;
        if count > MAX_CHUNKS {
            return Err(CommitmentError::Malformed("too many chunks"));
        }
        let mut chunks = Vec::with_capacity(count);
        for _ in 0..count {
            let (&k, tail) = rest
                .split_first()
                .ok_or(CommitmentError::Malformed("chunk header missing"))?;
            let k = k as usize;
            if k == 0 || k > TOP_K {
                return Err(CommitmentError::Malformed("chunk size out of range"));
            }
            let (raw, tail) = tail
                .split_at_checked(2 * k)
                .ok_or(CommitmentError::Malformed("chunk cut short"))?;
            let coefficients: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            if coefficients.iter().any(|&c| u32::from(c) >= MODULUS) {
                return Err(CommitmentError::Malformed("coefficient outside the field"));
            }
            chunks.push(ChunkCommitment { coefficients });
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(CommitmentError::Malformed("trailing bytes"));
        }
        Ok(Self { chunks })
    }
}

/// Accumulates hidden states during generation and commits chunk by chunk.
#[derive(Debug)]
pub struct CommitmentBuilder {
    hidden: usize,
    pending: Vec<f32>,
    commitment: Commitment,
}

impl CommitmentBuilder {
    /// A builder for hidden states of width `hidden`.
    pub fn new(hidden: usize) -> Self {
        Self {
            hidden,
            pending: Vec::with_capacity(hidden * CHUNK_TOKENS),
            commitment: Commitment::default(),
        }
    }

    /// Adds the final hidden state of the position that chose the next output token.
    pub fn push(&mut self, state: &[f32]) {
        debug_assert_eq!(state.len(), self.hidden);
        self.pending.extend_from_slice(state);
        if self.pending.len() == self.hidden * CHUNK_TOKENS {
            self.commitment
                .chunks
                .push(commit_chunk(&self.pending, CHUNK_TOKENS));
            self.pending.clear();
        }
    }

    /// Commits the last, partial chunk and returns the commitment.
    pub fn finish(mut self) -> Commitment {
        if !self.pending.is_empty() {
            let tokens = self.pending.len() / self.hidden;
            self.commitment
                .chunks
                .push(commit_chunk(&self.pending, tokens));
        }
        self.commitment
    }
}

/// Rounds an f32 to bfloat16 (nearest, ties to even); returns its bits.
pub fn bf16_bits(value: f32) -> u16 {
    let bits = value.to_bits();
    if value.is_nan() {
        return 0x7fc0;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// The selected `(reduced index, bf16 bits)` pairs of a chunk: the [`TOP_K`] largest
/// magnitudes (ties by lower index), skipping a value whose reduced index is taken.
fn select(states: &[f32], k: usize) -> Vec<(u32, u16)> {
    let mut order: Vec<u32> = (0..states.len() as u32).collect();
    let magnitude = |i: u32| states[i as usize].abs();
    let by_magnitude = |a: &u32, b: &u32| {
        magnitude(*b)
            .partial_cmp(&magnitude(*a))
            .unwrap_or(Ordering::Equal)
            .then(a.cmp(b))
    };
    let pick = |order: &[u32]| {
        let mut taken = std::collections::HashSet::with_capacity(k);
        let mut selected = Vec::with_capacity(k);
        for &index in order {
            if taken.insert(index % MODULUS) {
                selected.push((index % MODULUS, bf16_bits(states[index as usize])));
                if selected.len() == k {
                    break;
                }
            }
        }
        selected
    };
    // Partial selection first: only the head's order matters. Should skipped
    // residues leave the head short, the whole chunk is sorted instead.
    let head = (k * 2).min(order.len());
    if head < order.len() {
        let mut partial = order.clone();
        partial.select_nth_unstable_by(head, by_magnitude);
        partial.truncate(head);
        partial.sort_unstable_by(by_magnitude);
        let selected = pick(&partial);
        if selected.len() == k {
            return selected;
        }
    }
    order.sort_unstable_by(by_magnitude);
    pick(&order)
}

/// Values selected for a chunk of `tokens` positions.
pub fn chunk_k(tokens: usize) -> usize {
    (TOP_K * tokens).div_ceil(CHUNK_TOKENS).clamp(MIN_K, TOP_K)
}

/// Commits one chunk of `tokens` hidden states (`tokens × hidden` values, row-major).
pub fn commit_chunk(states: &[f32], tokens: usize) -> ChunkCommitment {
    let points = select(states, chunk_k(tokens));
    ChunkCommitment {
        coefficients: interpolate(&points).into_iter().map(|c| c as u16).collect(),
    }
}

/// How one chunk compares with a recomputation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChunkCheck {
    /// Values compared (the verifier's selection).
    pub compared: usize,
    /// Compared values whose sign or exponent differs from the committed one.
    pub exponent_mismatches: usize,
    /// Mean absolute mantissa difference (in bf16 ulps) where the exponents agree.
    pub mantissa_mean: f64,
    /// Largest mantissa difference where the exponents agree.
    pub mantissa_max: u32,
}

/// Limits an honest recomputation stays within.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tolerance {
    /// Most exponent mismatches per chunk.
    pub exponent_mismatches: usize,
    /// Largest mean mantissa difference per chunk.
    pub mantissa_mean: f64,
    /// Largest single mantissa difference.
    pub mantissa_max: u32,
}

impl ChunkCheck {
    /// Whether the chunk is within `tolerance`.
    pub fn passes(&self, tolerance: &Tolerance) -> bool {
        self.exponent_mismatches <= tolerance.exponent_mismatches
            && self.mantissa_mean <= tolerance.mantissa_mean
            && self.mantissa_max <= tolerance.mantissa_max
    }
}

/// Compares a committed chunk with recomputed hidden states; the verifier selects as
/// many values as were committed (the caller checks that number against the chunk's
/// token count with [`chunk_k`]).
pub fn check_chunk(commitment: &ChunkCommitment, states: &[f32]) -> ChunkCheck {
    let coefficients: Vec<u32> = commitment
        .coefficients
        .iter()
        .map(|&c| u32::from(c))
        .collect();
    let mut check = ChunkCheck::default();
    let mut mantissa_sum = 0u64;
    let mut agreeing = 0u64;
    for (x, bits) in select(states, commitment.coefficients.len()) {
        check.compared += 1;
        let committed = evaluate(&coefficients, x);
        // sign and exponent: the top 9 bits of a bfloat16.
        if committed > 0xffff || (committed as u16) >> 7 != bits >> 7 {
            check.exponent_mismatches += 1;
            continue;
        }
        let diff = (committed as u16 & 0x7f).abs_diff(bits & 0x7f) as u32;
        mantissa_sum += u64::from(diff);
        agreeing += 1;
        check.mantissa_max = check.mantissa_max.max(diff);
    }
    if agreeing > 0 {
        check.mantissa_mean = mantissa_sum as f64 / agreeing as f64;
    }
    check
}

fn mul(a: u32, b: u32) -> u32 {
    ((u64::from(a) * u64::from(b)) % u64::from(MODULUS)) as u32
}

fn add(a: u32, b: u32) -> u32 {
    (a + b) % MODULUS
}

fn sub(a: u32, b: u32) -> u32 {
    (a + MODULUS - b) % MODULUS
}

fn inverse(a: u32) -> u32 {
    // Fermat: a^(p-2).
    let (mut base, mut exp, mut acc) = (a % MODULUS, MODULUS - 2, 1u32);
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul(acc, base);
        }
        base = mul(base, base);
        exp >>= 1;
    }
    acc
}

/// Coefficients (lowest degree first) of the polynomial through `points`, whose x are
/// distinct: Newton's divided differences, then expanded to the monomial basis.
fn interpolate(points: &[(u32, u16)]) -> Vec<u32> {
    let n = points.len();
    let xs: Vec<u32> = points.iter().map(|p| p.0).collect();
    let mut dd: Vec<u32> = points.iter().map(|p| u32::from(p.1)).collect();
    for level in 1..n {
        for i in (level..n).rev() {
            let numerator = sub(dd[i], dd[i - 1]);
            let denominator = sub(xs[i], xs[i - level]);
            dd[i] = mul(numerator, inverse(denominator));
        }
    }
    // P(x) = dd[n-1]; for i from n-2 down: P = P·(x − x_i) + dd[i].
    let mut poly = vec![0u32; n];
    if n == 0 {
        return poly;
    }
    poly[0] = dd[n - 1];
    let mut degree = 0;
    for i in (0..n - 1).rev() {
        // Multiply by (x − x_i).
        degree += 1;
        for d in (1..=degree).rev() {
            poly[d] = sub(poly[d - 1], mul(poly[d], xs[i]));
        }
        poly[0] = mul(poly[0], sub(0, xs[i]));
        poly[0] = add(poly[0], dd[i]);
    }
    poly
}

/// Horner evaluation in GF(p).
fn evaluate(coefficients: &[u32], x: u32) -> u32 {
    coefficients
        .iter()
        .rev()
        .fold(0, |acc, &c| add(mul(acc, x), c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random states (no RNG dependency).
    fn states(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0) as f32
            })
            .collect()
    }

    #[test]
    fn interpolation_passes_through_every_point() {
        let points: Vec<(u32, u16)> = (0..TOP_K as u32)
            .map(|i| (i * 517 % MODULUS, (i * 7919 % 65_000) as u16))
            .collect();
        let poly = interpolate(&points);
        for (x, y) in points {
            assert_eq!(evaluate(&poly, x), u32::from(y));
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        assert_eq!(bf16_bits(-2.0), 0xc000);
        // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to even (1.0).
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert!(bf16_bits(f32::MAX) <= 0x7f80);
        assert!(u32::from(bf16_bits(-f32::MAX)) < MODULUS + 1);
    }

    #[test]
    fn honest_recomputation_passes_and_other_states_fail() {
        let tolerance = Tolerance {
            exponent_mismatches: 8,
            mantissa_mean: 1.0,
            mantissa_max: 4,
        };
        let hidden = 576;
        let original = states(1, hidden * CHUNK_TOKENS);
        let chunk = commit_chunk(&original, CHUNK_TOKENS);
        assert_eq!(chunk.coefficients.len(), TOP_K);
        let same = check_chunk(&chunk, &original);
        assert_eq!(same.exponent_mismatches, 0);
        assert_eq!(same.mantissa_max, 0);
        // Float noise of an honest recomputation.
        let noisy: Vec<f32> = original
            .iter()
            .enumerate()
            .map(|(i, v)| v * (1.0 + if i % 2 == 0 { 1e-6 } else { -1e-6 }))
            .collect();
        assert!(check_chunk(&chunk, &noisy).passes(&tolerance));
        // A 2 % change (a norm scaled by 1.02) moves most mantissas.
        let scaled: Vec<f32> = original.iter().map(|v| v * 1.02).collect();
        assert!(!check_chunk(&chunk, &scaled).passes(&tolerance));
        // Unrelated states select other indices: the polynomial decodes to noise.
        let other = states(2, hidden * CHUNK_TOKENS);
        let check = check_chunk(&chunk, &other);
        assert!(check.exponent_mismatches > TOP_K / 2, "{check:?}");
    }

    #[test]
    fn builder_chunks_and_encoding_round_trips() {
        let hidden = 64;
        let mut builder = CommitmentBuilder::new(hidden);
        let all = states(3, hidden * 70);
        for state in all.chunks(hidden) {
            builder.push(state);
        }
        let commitment = builder.finish();
        assert_eq!(commitment.chunks.len(), 3);
        // The last chunk holds 6 tokens: 24 values.
        assert_eq!(commitment.chunks[2].coefficients.len(), chunk_k(6));
        assert_eq!(chunk_k(6), 24);
        let bytes = commitment.encode();
        assert_eq!(bytes.len(), 3 + 2 * (1 + 2 * TOP_K) + 1 + 2 * 24);
        assert!(bytes.len() as f64 / 70.0 * 32.0 <= 300.0);
        assert_eq!(Commitment::decode(&bytes).unwrap(), commitment);
        for cut in 0..bytes.len() {
            assert!(Commitment::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Commitment::decode(&extra).is_err());
        let mut version = bytes.clone();
        version[0] = 9;
        assert_eq!(
            Commitment::decode(&version),
            Err(CommitmentError::Version(9))
        );
        // Recomputed chunk by chunk, the states match their own commitment.
        for (chunk, states) in commitment
            .chunks
            .iter()
            .zip(all.chunks(hidden * CHUNK_TOKENS))
        {
            assert_eq!(check_chunk(chunk, states).exponent_mismatches, 0);
        }
    }

    #[test]
    fn large_chunks_reduce_indices_without_collisions() {
        // 32 × 4096 values: indices beyond p wrap, and taken residues are skipped.
        let original = states(4, 4096 * CHUNK_TOKENS);
        let chunk = commit_chunk(&original, CHUNK_TOKENS);
        assert_eq!(chunk.coefficients.len(), TOP_K);
        assert_eq!(check_chunk(&chunk, &original).exponent_mismatches, 0);
    }
}
