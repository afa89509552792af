//! The llama forward pass on this crate's CPU kernels ([`crate::kernels`], ADR 0008).
//!
//! Weights stay in their GGUF quantization. `Q4_1` and `Q8_0` matrices are repacked at
//! load and multiplied by [`kernels::matmul`], which quantizes the activations to the
//! weight's dot-product type and computes every output exactly as llama.cpp's AVX2 CPU
//! backend does; other quantizations fall back to candle's [`QMatMul`]. Q, K and V are one
//! stacked matrix, and so are the MLP's gate and up. Everything between the matmuls runs on
//! plain `f32` buffers that a [`Session`] owns and reuses: RMSNorm, RoPE, grouped-query
//! causal attention over a preallocated KV cache, the SiLU-gated MLP and the tied output.
//! A decode step allocates nothing once its buffers are warm ([`Model::forward_into`]).
//!
//! **Threads.** All work runs on the model's own pool ([`LoadOptions::threads`]
//! (crate::LoadOptions)); every output element is computed by one thread in one fixed
//! order, so results are bit-identical for any thread count, and a position's hidden
//! state is bit-identical whether it was computed in a prefill or in a one-token decode.
//!
//! **RoPE layout.** llama.cpp's converter permutes the Q and K weights of llama models so
//! that the GGUF is rotated in the "normal" (interleaved) layout: dimensions `2i` and
//! `2i+1` of a head form a pair rotated by `pos · base^(-2i/rope_dim)`. (NeoX-style models
//! pair `i` with `i + d/2` instead; candle-transformers picks `rope_i` for llama for the
//! same reason.) The angle table is built like llama.cpp's rope cache: `theta = pos` in
//! `f32`, multiplied by `base^(-2/rope_dim)` once per pair.
//!
//! **Attention precision.** llama.cpp keeps its KV cache in f16 and, on the CPU, rounds
//! the queries to f16 for `Q·Kᵀ` and the softmax weights to f16 for the product with V.
//! This runtime does the same roundings (on f32 storage, so no conversion in the inner
//! loops): with them its greedy completions match llama.cpp's token for token where
//! plain f32 attention drifts off at near-ties after a dozen tokens. The order of the
//! additions is that of llama.cpp's batched (prompt) path with flash attention off
//! ([`kernels::attention`]).
//!
//! **Outputs.** [`Model::forward`] takes a batch of new tokens at positions
//! `[p, p + n)` (prefill and decode are the same call) and returns the final hidden state
//! of every position (after the output norm, before the output projection — what a
//! proof-of-inference commitment reads) and the logits of the positions asked for.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Storage, Tensor};
use rayon::prelude::*;

use crate::error::{AiError, Result};
use crate::gguf::{Gguf, LlamaConfig};
use crate::kernels::{self, QActs, QMatrix, WeightType, attention};

/// Tokens processed per internal step of a long forward (bounds the activation buffers).
pub const UBATCH: usize = 512;

/// Which positions of a forward need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Every position (verification, teacher forcing).
    All,
    /// Only the last position (generation).
    Last,
    /// None (hidden states only).
    None,
}

/// The result of one forward.
#[derive(Debug, Clone)]
pub struct Forward {
    /// Position of the first token of the batch.
    pub start: usize,
    /// Tokens in the batch.
    pub n_tokens: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Vocabulary size (length of one logits row).
    pub vocab: usize,
    /// Final hidden states, `n_tokens × n_embd`, row-major.
    pub hidden: Vec<f32>,
    /// Logits rows, `vocab` floats each, for batch rows `logits_from..n_tokens`.
    pub logits: Vec<f32>,
    /// Index (within the batch) of the first row that has logits.
    pub logits_from: usize,
}

impl Forward {
    /// The hidden state of batch row `i`.
    pub fn hidden(&self, i: usize) -> Option<&[f32]> {
        let start = i.checked_mul(self.n_embd)?;
        self.hidden.get(start..start + self.n_embd)
    }

    /// The logits of batch row `i`, when they were computed.
    pub fn logits(&self, i: usize) -> Option<&[f32]> {
        let row = i.checked_sub(self.logits_from)?;
        let start = row.checked_mul(self.vocab)?;
        self.logits.get(start..start + self.vocab)
    }

    /// The logits of the last row, when they were computed.
    pub fn last_logits(&self) -> Option<&[f32]> {
        self.logits(self.n_tokens.checked_sub(1)?)
    }
}

/// A weight matrix: our kernels for the quantizations they cover ([`kernels`]), candle's
/// `QMatMul` for the others. Several GGUF matrices with the same input can be stacked
/// into one (Q, K and V; gate and up): their output rows are concatenated.
enum Linear {
    Native(Arc<QMatrix>),
    Candle(Vec<(QMatMul, usize)>),
}

impl Linear {
    /// `out = x · wᵀ` for `x` of rows of `k` floats; `acts` and `tmp` are scratch.
    fn apply(
        &self,
        x: &[f32],
        k: usize,
        acts: &mut QActs,
        tmp: &mut Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        match self {
            Self::Native(w) => {
                acts.quantize(w.weight_type().act_type(), x, k);
                kernels::matmul(w, acts, out);
            }
            Self::Candle(parts) => {
                let m = x.len() / k;
                let total: usize = parts.iter().map(|(_, r)| r).sum();
                out.resize(m * total, 0.0);
                let mut col = 0;
                for (w, rows) in parts {
                    candle_matmul(w, x, k, tmp)?;
                    for (o, t) in out.chunks_exact_mut(total).zip(tmp.chunks_exact(*rows)) {
                        o[col..col + rows].copy_from_slice(t);
                    }
                    col += rows;
                }
            }
        }
        Ok(())
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    /// Q, K and V stacked: rows `n_head·hd`, then `n_kv_head·hd` twice.
    qkv: Linear,
    wo: Linear,
    ffn_norm: Vec<f32>,
    /// Gate and up stacked: `n_ff` rows each.
    gate_up: Linear,
    down: Linear,
}

/// The token embedding table.
enum Embedding {
    Native(Arc<QMatrix>),
    Candle(Arc<QTensor>),
}

/// A loaded llama model: weights, hyperparameters and a thread pool.
pub struct Model {
    /// Hyperparameters.
    pub config: LlamaConfig,
    tok_embd: Embedding,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    output: Linear,
    /// `cos`/`sin` of the RoPE angles, `context_length × rope_dim/2`.
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
    pool: rayon::ThreadPool,
    threads: usize,
    /// Whether `output.weight` is absent and the token embedding is reused.
    pub tied_embeddings: bool,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("threads", &self.threads)
            .field("tied_embeddings", &self.tied_embeddings)
            .finish_non_exhaustive()
    }
}

/// Threads of candle's process-wide quantized-matmul pool (the calling thread included),
/// used only for weight quantizations the native kernels do not cover. candle sizes it once, at first use, from `CANDLE_NUM_THREADS` (else
/// `RAYON_NUM_THREADS`, else the physical cores); the CLI sets that from `--threads`
/// before anything runs.
pub fn matmul_threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

impl Model {
    /// Loads the weights described by a validated header from the file they came from.
    /// `threads` sizes the pool used for attention and the other non-matmul work.
    pub fn load<R: std::io::Read + std::io::Seek>(
        gguf: &Gguf,
        reader: &mut R,
        threads: usize,
    ) -> Result<Self> {
        let config = LlamaConfig::from_gguf(gguf)?;
        let c = &config;
        let mut loader = Loader { gguf, reader };
        let q_out = c.n_head * c.head_dim;
        let kv_out = c.n_kv_head * c.head_dim;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let name = |n: &str| format!("blk.{i}.{n}.weight");
            let qkv = loader.linear(
                &[
                    (&name("attn_q"), q_out),
                    (&name("attn_k"), kv_out),
                    (&name("attn_v"), kv_out),
                ],
                c.n_embd,
            )?;
            let wo = loader.linear(&[(&name("attn_output"), c.n_embd)], q_out)?;
            let gate_up = loader.linear(
                &[(&name("ffn_gate"), c.n_ff), (&name("ffn_up"), c.n_ff)],
                c.n_embd,
            )?;
            let down = loader.linear(&[(&name("ffn_down"), c.n_embd)], c.n_ff)?;
            let attn_norm = loader.f32s(&name("attn_norm"), c.n_embd)?;
            let ffn_norm = loader.f32s(&name("ffn_norm"), c.n_embd)?;
            layers.push(Layer {
                attn_norm,
                qkv,
                wo,
                ffn_norm,
                gate_up,
                down,
            });
        }
        let output_norm = loader.f32s("output_norm.weight", c.n_embd)?;
        let tok_embd = loader.embedding("token_embd.weight", c.vocab_size, c.n_embd)?;
        let (output, tied_embeddings) = if gguf.tensor("output.weight").is_some() {
            let w = loader.linear(&[("output.weight", c.vocab_size)], c.n_embd)?;
            (w, false)
        } else {
            let w = match &tok_embd {
                Embedding::Native(m) => Linear::Native(Arc::clone(m)),
                Embedding::Candle(t) => {
                    Linear::Candle(vec![(QMatMul::from_arc(Arc::clone(t))?, c.vocab_size)])
                }
            };
            (w, true)
        };
        let (rope_cos, rope_sin) = rope_table(c);
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("noesis-ai-{i}"))
            .build()
            .map_err(|e| AiError::Model(format!("cannot start {threads} threads: {e}")))?;
        Ok(Self {
            config,
            tok_embd,
            layers,
            output_norm,
            output,
            rope_cos,
            rope_sin,
            pool,
            threads,
            tied_embeddings,
        })
    }

    /// Threads of this model's own pool (attention and element-wise work).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// A new session (KV cache and buffers) holding up to `capacity` positions (at most
    /// the model's context length). The cache is allocated once, zeroed lazily by the OS.
    pub fn session(&self, capacity: usize) -> Result<Session> {
        let c = &self.config;
        if capacity == 0 || capacity > c.context_length {
            return Err(AiError::Model(format!(
                "session capacity {capacity} is not in 1..={}",
                c.context_length
            )));
        }
        let per_layer = c.n_kv_head * capacity * c.head_dim;
        let vstride = capacity.next_multiple_of(attention::LANES);
        let v_per_layer = c.n_kv_head * c.head_dim * vstride;
        Ok(Session {
            k: (0..c.n_layer).map(|_| vec![0.0; per_layer]).collect(),
            v: (0..c.n_layer).map(|_| vec![0.0; v_per_layer]).collect(),
            capacity,
            vstride,
            len: 0,
            buf: Buffers::default(),
        })
    }

    /// A new session of `capacity` positions starting with the first `positions`
    /// positions of `from` (their keys and values copied; they must be filled there).
    pub fn session_from(
        &self,
        from: &Session,
        positions: usize,
        capacity: usize,
    ) -> Result<Session> {
        if positions > from.len || positions > capacity {
            return Err(AiError::Model(format!(
                "cannot start a session of {capacity} positions with {positions} of a session \
                 holding {}",
                from.len
            )));
        }
        let mut s = self.session(capacity)?;
        let c = &self.config;
        let hd = c.head_dim;
        for (to, src) in s.k.iter_mut().zip(&from.k) {
            for g in 0..c.n_kv_head {
                let (a, b) = (g * capacity * hd, g * from.capacity * hd);
                to[a..a + positions * hd].copy_from_slice(&src[b..b + positions * hd]);
            }
        }
        let (vs_to, vs_from) = (s.vstride, from.vstride);
        for (to, src) in s.v.iter_mut().zip(&from.v) {
            for row in 0..c.n_kv_head * hd {
                let (a, b) = (row * vs_to, row * vs_from);
                to[a..a + positions].copy_from_slice(&src[b..b + positions]);
            }
        }
        s.len = positions;
        Ok(s)
    }

    /// Bytes of the key/value cache of a session of `capacity` positions.
    pub fn kv_bytes(&self, capacity: usize) -> usize {
        let c = &self.config;
        let vstride = capacity.next_multiple_of(attention::LANES);
        c.n_layer * c.n_kv_head * c.head_dim * (capacity + vstride) * std::mem::size_of::<f32>()
    }

    /// Runs `tokens` at positions `[session.len(), session.len() + n)` and appends their
    /// keys and values to the session. Returns the final hidden state of every position
    /// and the logits `want`ed.
    pub fn forward(&self, s: &mut Session, tokens: &[u32], want: Logits) -> Result<Forward> {
        let mut out = Forward {
            start: 0,
            n_tokens: 0,
            n_embd: self.config.n_embd,
            vocab: self.config.vocab_size,
            hidden: Vec::new(),
            logits: Vec::new(),
            logits_from: 0,
        };
        self.forward_into(s, tokens, want, &mut out)?;
        Ok(out)
    }

    /// [`Model::forward`] into an existing [`Forward`], reusing its buffers (a decode
    /// loop then allocates nothing per token).
    pub fn forward_into(
        &self,
        s: &mut Session,
        tokens: &[u32],
        want: Logits,
        out: &mut Forward,
    ) -> Result<()> {
        let c = &self.config;
        let n = tokens.len();
        if n == 0 {
            return Err(AiError::Model("forward over no tokens".into()));
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(AiError::Model(format!(
                "token id {bad} is outside the vocabulary ({})",
                c.vocab_size
            )));
        }
        let start = s.len;
        if start + n > s.capacity {
            return Err(AiError::Model(format!(
                "positions {start}..{} exceed the session's capacity of {} positions",
                start + n,
                s.capacity
            )));
        }
        let logits_from = match want {
            Logits::All => 0,
            Logits::Last => n - 1,
            Logits::None => n,
        };
        out.start = start;
        out.n_tokens = n;
        out.n_embd = c.n_embd;
        out.vocab = c.vocab_size;
        out.logits_from = logits_from;
        out.hidden.clear();
        out.logits.clear();
        self.pool.install(|| -> Result<()> {
            for (chunk_index, chunk) in tokens.chunks(UBATCH).enumerate() {
                let chunk_start = chunk_index * UBATCH;
                self.forward_chunk(s, chunk)?;
                out.hidden.extend_from_slice(&s.buf.hidden);
                let from = logits_from.max(chunk_start);
                if from < chunk_start + chunk.len() {
                    let b = &mut s.buf;
                    let rows = &b.hidden[(from - chunk_start) * c.n_embd..];
                    self.output
                        .apply(rows, c.n_embd, &mut b.acts, &mut b.tmp, &mut b.logits)?;
                    out.logits.extend_from_slice(&b.logits);
                }
            }
            Ok(())
        })
    }

    /// One chunk of at most [`UBATCH`] tokens: leaves the final hidden states in
    /// `s.buf.hidden` and advances the session.
    fn forward_chunk(&self, s: &mut Session, tokens: &[u32]) -> Result<()> {
        let c = &self.config;
        let n = tokens.len();
        let d = c.n_embd;
        let hd = c.head_dim;
        let (q_out, kv_out) = (c.n_head * hd, c.n_kv_head * hd);
        let start = s.len;
        self.embed(tokens, &mut s.buf.x)?;
        for (li, layer) in self.layers.iter().enumerate() {
            let b = &mut s.buf;
            rms_norm(&b.x, &layer.attn_norm, c.rms_eps, &mut b.xn);
            layer
                .qkv
                .apply(&b.xn, d, &mut b.acts, &mut b.tmp, &mut b.qkv)?;
            split_qkv(&b.qkv, q_out, kv_out, &mut b.q, &mut b.k, &mut b.v);
            self.rope(&mut b.q, c.n_head, start);
            self.rope(&mut b.k, c.n_kv_head, start);
            // llama.cpp's precision: an f16 KV cache, queries rounded to f16 for Q·K.
            attention::round_f16_slice(&mut b.q);
            attention::round_f16_slice(&mut b.k);
            attention::round_f16_slice(&mut b.v);
            // Append to the cache: per kv head, keys are rows of positions, values are
            // transposed (rows of dimensions).
            let (kc, vc) = (&mut s.k[li], &mut s.v[li]);
            let vs = s.vstride;
            for i in 0..n {
                for g in 0..c.n_kv_head {
                    let src = (i * c.n_kv_head + g) * hd;
                    let dst = (g * s.capacity + start + i) * hd;
                    kc[dst..dst + hd].copy_from_slice(&b.k[src..src + hd]);
                    for (d, &v) in b.v[src..src + hd].iter().enumerate() {
                        vc[(g * hd + d) * vs + start + i] = v;
                    }
                }
            }
            self.attention(&b.q, kc, vc, s.capacity, vs, start, n, &mut b.att);
            layer
                .wo
                .apply(&b.att, q_out, &mut b.acts, &mut b.tmp, &mut b.o)?;
            add_in_place(&mut b.x, &b.o);
            rms_norm(&b.x, &layer.ffn_norm, c.rms_eps, &mut b.xn);
            layer
                .gate_up
                .apply(&b.xn, d, &mut b.acts, &mut b.tmp, &mut b.gate_up)?;
            b.gate.resize(n * c.n_ff, 0.0);
            b.gate
                .par_chunks_mut(c.n_ff)
                .zip(b.gate_up.par_chunks(2 * c.n_ff))
                .for_each(|(o, gu)| {
                    let (g, u) = gu.split_at(c.n_ff);
                    kernels::swiglu(g, u, o);
                });
            layer
                .down
                .apply(&b.gate, c.n_ff, &mut b.acts, &mut b.tmp, &mut b.o)?;
            add_in_place(&mut b.x, &b.o);
        }
        let b = &mut s.buf;
        rms_norm(&b.x, &self.output_norm, c.rms_eps, &mut b.hidden);
        s.len += n;
        Ok(())
    }

    /// The embedding rows of `tokens` into `x`.
    fn embed(&self, tokens: &[u32], x: &mut Vec<f32>) -> Result<()> {
        let d = self.config.n_embd;
        match &self.tok_embd {
            Embedding::Native(m) => {
                x.resize(tokens.len() * d, 0.0);
                for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
                    m.dequantize_row(t as usize, row);
                }
            }
            Embedding::Candle(t) => {
                let ids = Tensor::from_slice(tokens, tokens.len(), &Device::Cpu)?;
                copy_out(&t.embedding(&ids)?, x)?;
            }
        }
        Ok(())
    }

    /// Rotates the first `rope_dim` dimensions of every head in `x` (rows of `heads`
    /// heads, positions from `start`), interleaved pairs.
    fn rope(&self, x: &mut [f32], heads: usize, start: usize) {
        let c = &self.config;
        let half = c.rope_dim / 2;
        let row = heads * c.head_dim;
        for (i, r) in x.chunks_exact_mut(row).enumerate() {
            let at = (start + i) * half;
            let (cos, sin) = (&self.rope_cos[at..at + half], &self.rope_sin[at..at + half]);
            for h in r.chunks_exact_mut(c.head_dim) {
                for (j, pair) in h[..c.rope_dim].chunks_exact_mut(2).enumerate() {
                    let (x0, x1) = (pair[0], pair[1]);
                    pair[0] = x0 * cos[j] - x1 * sin[j];
                    pair[1] = x0 * sin[j] + x1 * cos[j];
                }
            }
        }
    }

    /// Causal grouped-query attention of `n` queries at positions `[start, start+n)`
    /// against the cached keys/values `[0, start+n)`; writes `n × (n_head·head_dim)`.
    /// Each (query, head) is one task of [`attention::attend`].
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        q: &[f32],
        kc: &[f32],
        vc: &[f32],
        capacity: usize,
        vstride: usize,
        start: usize,
        n: usize,
        out: &mut Vec<f32>,
    ) {
        let c = &self.config;
        let hd = c.head_dim;
        let group = c.n_head / c.n_kv_head;
        let scale = 1.0 / (hd as f32).sqrt();
        let row = c.n_head * hd;
        out.resize(n * row, 0.0);
        let kv = |g: usize| attention::Kv {
            keys: &kc[g * capacity * hd..(g + 1) * capacity * hd],
            vt: &vc[g * hd * vstride..(g + 1) * hd * vstride],
            vstride,
        };
        let block = |tokens: usize, i0: usize, g: usize, out_heads: usize| attention::Block {
            tokens,
            pos0: start + i0,
            heads: g * group..(g + 1) * group,
            n_head: c.n_head,
            out_heads,
            hd,
        };
        if n < 4 * rayon::current_num_threads() {
            // Few tokens (decoding): one task per token and KV head.
            out.par_chunks_mut(group * hd)
                .enumerate()
                .for_each(|(unit, o)| {
                    let (i, g) = (unit / c.n_kv_head, unit % c.n_kv_head);
                    let b = block(1, i, g, group);
                    SCRATCH.with_borrow_mut(|s| {
                        attention::attend(&b, &q[i * row..], kv(g), scale, s, o)
                    });
                });
        } else {
            // A batch: blocks of tokens, every KV head, so a block's queries share the
            // keys and values they read while those are in cache.
            out.par_chunks_mut(ATT_TOKENS * row)
                .enumerate()
                .for_each(|(blk, o)| {
                    let i0 = blk * ATT_TOKENS;
                    let tokens = o.len() / row;
                    SCRATCH.with_borrow_mut(|s| {
                        for g in 0..c.n_kv_head {
                            let b = block(tokens, i0, g, c.n_head);
                            let at = g * group * hd;
                            attention::attend(&b, &q[i0 * row..], kv(g), scale, s, &mut o[at..]);
                        }
                    });
                });
        }
    }
}

/// Tokens per attention task of a batch.
const ATT_TOKENS: usize = 8;

thread_local! {
    /// Attention scratch of each thread (allocated once, grown to the longest context).
    static SCRATCH: std::cell::RefCell<attention::Scratch> =
        std::cell::RefCell::new(attention::Scratch::default());
}

/// A sequence being run: the KV cache of every layer and reusable buffers.
pub struct Session {
    /// Per layer: `n_kv_head × capacity × head_dim` keys.
    k: Vec<Vec<f32>>,
    /// Per layer: values transposed, `n_kv_head × head_dim × vstride` (a row of
    /// positions per dimension, as llama.cpp's `v_trans` cache).
    v: Vec<Vec<f32>>,
    capacity: usize,
    /// `capacity` rounded up to whole groups of [`attention::LANES`] positions.
    vstride: usize,
    len: usize,
    buf: Buffers,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("capacity", &self.capacity)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Positions filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is filled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most positions this session holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets positions from `len` on (they are overwritten by the next forward).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// Activation buffers, resized in place (no allocation once warm).
#[derive(Default)]
struct Buffers {
    x: Vec<f32>,
    xn: Vec<f32>,
    acts: QActs,
    tmp: Vec<f32>,
    qkv: Vec<f32>,
    gate_up: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    gate: Vec<f32>,
    hidden: Vec<f32>,
    logits: Vec<f32>,
}

/// The RoPE cos/sin table, computed like llama.cpp's rope cache (f32 recurrence).
fn rope_table(c: &LlamaConfig) -> (Vec<f32>, Vec<f32>) {
    let half = c.rope_dim / 2;
    let theta_scale = c.rope_freq_base.powf(-2.0 / c.rope_dim as f32);
    let mut cos = Vec::with_capacity(c.context_length * half);
    let mut sin = Vec::with_capacity(c.context_length * half);
    for pos in 0..c.context_length {
        let mut theta = pos as f32;
        for _ in 0..half {
            cos.push(theta.cos());
            sin.push(theta.sin());
            theta *= theta_scale;
        }
    }
    (cos, sin)
}

/// Reads tensors from the GGUF: raw bytes for the quantizations [`kernels`] covers,
/// candle tensors for the others.
struct Loader<'a, R> {
    gguf: &'a Gguf,
    reader: &'a mut R,
}

impl<R: std::io::Read + std::io::Seek> Loader<'_, R> {
    /// The descriptor of `name`, checked to be `shape` (ggml order reversed: rows last).
    fn info(&self, name: &str, shape: &[usize]) -> Result<GgmlDType> {
        let info = self
            .gguf
            .tensor(name)
            .ok_or_else(|| AiError::Model(format!("tensor `{name}` is missing")))?;
        if info.shape.dims() != shape {
            return Err(AiError::Model(format!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                info.shape.dims()
            )));
        }
        Ok(info.ggml_dtype)
    }

    /// The bytes of `name` as stored (the header validator bounded them by the file).
    fn raw(&mut self, name: &str, elems: usize, dtype: GgmlDType) -> Result<Vec<u8>> {
        let info = self
            .gguf
            .tensor(name)
            .ok_or_else(|| AiError::Model(format!("tensor `{name}` is missing")))?;
        let len = elems / dtype.block_size() * dtype.type_size();
        let at = self.gguf.content.tensor_data_offset + info.offset;
        let mut bytes = vec![0u8; len];
        self.reader
            .seek(std::io::SeekFrom::Start(at))
            .and_then(|_| self.reader.read_exact(&mut bytes))
            .map_err(|e| AiError::io(format!("cannot read tensor `{name}`"), e))?;
        Ok(bytes)
    }

    fn qtensor(&mut self, name: &str) -> Result<QTensor> {
        Ok(self.gguf.content.tensor(self.reader, name, &Device::Cpu)?)
    }

    /// Matrices `(name, rows)` of `k` inputs each, stacked by rows.
    fn linear(&mut self, parts: &[(&str, usize)], k: usize) -> Result<Linear> {
        let mut types = Vec::with_capacity(parts.len());
        for &(name, rows) in parts {
            types.push(self.info(name, &[rows, k])?);
        }
        let native = native_type(types[0]).filter(|_| types.iter().all(|&t| t == types[0]));
        if let Some(ty) = native {
            let mut bytes = Vec::new();
            let mut rows_total = 0;
            for &(name, rows) in parts {
                bytes.extend_from_slice(&self.raw(name, rows * k, types[0])?);
                rows_total += rows;
            }
            let m = QMatrix::from_ggml(ty, rows_total, k, &bytes)
                .map_err(|e| AiError::Model(format!("{}: {}", parts[0].0, e.0)))?;
            return Ok(Linear::Native(Arc::new(m)));
        }
        let mut out = Vec::with_capacity(parts.len());
        for &(name, rows) in parts {
            out.push((QMatMul::from_qtensor(self.qtensor(name)?)?, rows));
        }
        Ok(Linear::Candle(out))
    }

    fn embedding(&mut self, name: &str, vocab: usize, d: usize) -> Result<Embedding> {
        let dtype = self.info(name, &[vocab, d])?;
        if let Some(ty) = native_type(dtype) {
            let bytes = self.raw(name, vocab * d, dtype)?;
            let m = QMatrix::from_ggml(ty, vocab, d, &bytes)
                .map_err(|e| AiError::Model(format!("{name}: {}", e.0)))?;
            return Ok(Embedding::Native(Arc::new(m)));
        }
        Ok(Embedding::Candle(Arc::new(self.qtensor(name)?)))
    }

    /// A norm vector as f32s.
    fn f32s(&mut self, name: &str, len: usize) -> Result<Vec<f32>> {
        let dtype = self.info(name, &[len])?;
        if dtype == GgmlDType::F32 {
            let bytes = self.raw(name, len, dtype)?;
            return Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect());
        }
        let mut out = Vec::new();
        copy_out(&self.qtensor(name)?.dequantize(&Device::Cpu)?, &mut out)?;
        Ok(out)
    }
}

/// The GGUF quantizations our kernels run.
fn native_type(t: GgmlDType) -> Option<WeightType> {
    match t {
        GgmlDType::Q4_1 => Some(WeightType::Q4_1),
        GgmlDType::Q8_0 => Some(WeightType::Q8_0),
        _ => None,
    }
}

/// Splits rows of `[q | k | v]` into three row-major buffers.
fn split_qkv(
    qkv: &[f32],
    q_out: usize,
    kv_out: usize,
    q: &mut Vec<f32>,
    k: &mut Vec<f32>,
    v: &mut Vec<f32>,
) {
    let row = q_out + 2 * kv_out;
    let n = qkv.len() / row;
    q.resize(n * q_out, 0.0);
    k.resize(n * kv_out, 0.0);
    v.resize(n * kv_out, 0.0);
    for (i, r) in qkv.chunks_exact(row).enumerate() {
        q[i * q_out..(i + 1) * q_out].copy_from_slice(&r[..q_out]);
        k[i * kv_out..(i + 1) * kv_out].copy_from_slice(&r[q_out..q_out + kv_out]);
        v[i * kv_out..(i + 1) * kv_out].copy_from_slice(&r[q_out + kv_out..]);
    }
}

/// `out = x · wᵀ` with candle, for `x` of rows of `k` floats.
fn candle_matmul(w: &QMatMul, x: &[f32], k: usize, out: &mut Vec<f32>) -> Result<()> {
    let m = x.len() / k;
    let xs = Tensor::from_slice(x, (m, k), &Device::Cpu)?;
    copy_out(&w.forward(&xs)?, out)
}

/// Copies a contiguous f32 CPU tensor into `out` (resized, not reallocated once warm).
fn copy_out(t: &Tensor, out: &mut Vec<f32>) -> Result<()> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(AiError::Candle("expected a CPU tensor".into()));
    };
    let all = cpu.as_slice::<f32>()?;
    let n = t.elem_count();
    let from = layout.start_offset();
    let src = all
        .get(from..from + n)
        .ok_or_else(|| AiError::Candle("tensor storage shorter than its layout".into()))?;
    out.clear();
    out.extend_from_slice(src);
    Ok(())
}

/// `out = x / rms(x) · w` per row, the sum of squares in f64 like ggml.
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut Vec<f32>) {
    out.resize(x.len(), 0.0);
    for (xr, or) in x.chunks_exact(w.len()).zip(out.chunks_exact_mut(w.len())) {
        let sum: f64 = xr.iter().map(|&v| f64::from(v * v)).sum();
        let mean = (sum / w.len() as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = v * scale * g;
        }
    }
}

fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_matches_definition() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let w = [1.0f32, 1.0, 2.0, 0.5];
        let mut out = Vec::new();
        rms_norm(&x, &w, 0.0, &mut out);
        let rms = (30.0f32 / 4.0).sqrt();
        for i in 0..4 {
            assert!((out[i] - x[i] / rms * w[i]).abs() < 1e-6);
        }
    }

    #[test]
    fn rope_table_angles() {
        let c = LlamaConfig {
            n_layer: 1,
            n_embd: 8,
            n_head: 1,
            n_kv_head: 1,
            head_dim: 8,
            n_ff: 8,
            context_length: 4,
            rope_freq_base: 10_000.0,
            rope_dim: 8,
            rms_eps: 1e-5,
            vocab_size: 4,
        };
        let (cos, sin) = rope_table(&c);
        // Position 3, pair 1: angle 3 · 10000^(-2/8).
        let theta = 3.0f32 * 10_000f32.powf(-0.25);
        assert!((cos[3 * 4 + 1] - theta.cos()).abs() < 1e-6);
        assert!((sin[3 * 4 + 1] - theta.sin()).abs() < 1e-6);
        assert_eq!(cos[0], 1.0);
    }
}
