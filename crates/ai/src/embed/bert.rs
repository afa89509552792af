//! A BERT encoder (the `BertModel` of Hugging Face transformers, post-LayerNorm, absolute
//! positions, exact-erf GELU) in f32 on the CPU.
//!
//! The matrix products run through candle's CPU matmul (the `gemm` crate, which picks
//! AVX2/FMA or AVX-512 at run time and splits large products over the current rayon
//! pool); everything else — embeddings, bias, GELU, LayerNorm, attention, pooling — is
//! plain loops over rows, run in parallel on the caller's rayon pool.
//!
//! A batch is *packed*, not padded: the token rows of all sequences are stacked into one
//! `[tokens, hidden]` matrix, so every linear layer is one matmul over the whole batch and
//! no work is spent on padding; attention, the only place where tokens of one sequence
//! meet, is computed per sequence over that sequence's own keys. This is exactly what a
//! padded batch with an attention mask computes for the real tokens (the mask gives
//! padded keys zero weight, and mean pooling over the mask skips padded rows), without
//! the padded rows.

use candle_core::safetensors::SliceSafetensors;
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde::Deserialize;

use crate::error::{AiError, Result};

/// Caps on hyperparameters read from `config.json`, far above any BERT.
const MAX_HIDDEN: usize = 8192;
const MAX_LAYERS: usize = 128;
const MAX_HEADS: usize = 256;
const MAX_POSITIONS: usize = 1 << 16;
const MAX_VOCAB: usize = 1 << 22;

/// The hyperparameters of a BERT encoder, from its `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    /// Hidden size (`hidden_size`).
    pub hidden: usize,
    /// Transformer layers (`num_hidden_layers`).
    pub layers: usize,
    /// Attention heads (`num_attention_heads`).
    pub heads: usize,
    /// Hidden size of the feed-forward block (`intermediate_size`).
    pub intermediate: usize,
    /// LayerNorm epsilon (`layer_norm_eps`).
    pub eps: f32,
    /// Longest sequence the position table covers (`max_position_embeddings`).
    pub max_positions: usize,
    /// Vocabulary size (`vocab_size`).
    pub vocab: usize,
}

#[derive(Deserialize)]
struct ConfigJson {
    model_type: Option<String>,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: String,
    layer_norm_eps: f64,
    max_position_embeddings: usize,
    vocab_size: usize,
    #[serde(default = "one")]
    type_vocab_size: usize,
    position_embedding_type: Option<String>,
}

fn one() -> usize {
    1
}

fn bad(msg: impl Into<String>) -> AiError {
    AiError::Model(msg.into())
}

impl BertConfig {
    /// Parses and checks a `config.json`: a BERT with exact GELU and absolute positions.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let c: ConfigJson = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("config.json is not a BERT config: {e}")))?;
        if let Some(t) = &c.model_type
            && t != "bert"
        {
            return Err(bad(format!(
                "config.json: model_type `{t}` is not supported (bert is)"
            )));
        }
        if c.hidden_act != "gelu" {
            return Err(bad(format!(
                "config.json: hidden_act `{}` is not supported (gelu is)",
                c.hidden_act
            )));
        }
        if let Some(p) = &c.position_embedding_type
            && p != "absolute"
        {
            return Err(bad(format!(
                "config.json: position_embedding_type `{p}` is not supported (absolute is)"
            )));
        }
        let check = |what: &str, v: usize, max: usize| {
            if v == 0 || v > max {
                Err(bad(format!(
                    "config.json: {what} = {v} is out of range 1..={max}"
                )))
            } else {
                Ok(())
            }
        };
        check("hidden_size", c.hidden_size, MAX_HIDDEN)?;
        check("num_hidden_layers", c.num_hidden_layers, MAX_LAYERS)?;
        check("num_attention_heads", c.num_attention_heads, MAX_HEADS)?;
        check("intermediate_size", c.intermediate_size, MAX_HIDDEN * 8)?;
        check(
            "max_position_embeddings",
            c.max_position_embeddings,
            MAX_POSITIONS,
        )?;
        check("vocab_size", c.vocab_size, MAX_VOCAB)?;
        check("type_vocab_size", c.type_vocab_size, 16)?;
        if !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(bad(format!(
                "config.json: hidden_size {} is not a multiple of num_attention_heads {}",
                c.hidden_size, c.num_attention_heads
            )));
        }
        let eps = c.layer_norm_eps as f32;
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(bad(format!(
                "config.json: layer_norm_eps {} is not a non-negative number",
                c.layer_norm_eps
            )));
        }
        Ok(Self {
            hidden: c.hidden_size,
            layers: c.num_hidden_layers,
            heads: c.num_attention_heads,
            intermediate: c.intermediate_size,
            eps,
            max_positions: c.max_position_embeddings,
            vocab: c.vocab_size,
        })
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

/// A linear layer: `y = x W^T + b`, `W` stored `[out, in]` as in the file.
struct Linear {
    weight: Tensor,
    bias: Vec<f32>,
}

/// A LayerNorm's scale and shift.
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// Query, key and value fused: `[hidden, 3 * hidden]`.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    ff_in: Linear,
    ff_out: Linear,
    ff_norm: Norm,
}

/// BERT weights, ready to run.
pub struct Bert {
    /// Hyperparameters.
    pub config: BertConfig,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type0: Vec<f32>,
    emb_norm: Norm,
    layers: Vec<Layer>,
}

/// Reads named tensors from a safetensors file, checking dtype and shape.
struct Weights<'a> {
    st: &'a SliceSafetensors<'a>,
    prefix: &'static str,
}

impl Weights<'_> {
    /// A tensor of any shape, which must be F32.
    fn any(&self, name: &str) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let t = self
            .st
            .load(&full, &Device::Cpu)
            .map_err(|e| bad(format!("model.safetensors: tensor `{full}`: {e}")))?;
        if t.dtype() != DType::F32 {
            return Err(bad(format!(
                "tensor `{full}` is {:?}, expected F32",
                t.dtype()
            )));
        }
        Ok(t)
    }

    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.any(name)?;
        if t.dims() != shape {
            return Err(bad(format!(
                "tensor `{}{name}` has shape {:?}, expected {shape:?}",
                self.prefix,
                t.dims()
            )));
        }
        Ok(t)
    }

    fn vec(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        Ok(self.tensor(name, shape)?.flatten_all()?.to_vec1::<f32>()?)
    }

    fn norm(&self, name: &str, n: usize) -> Result<Norm> {
        Ok(Norm {
            gamma: self.vec(&format!("{name}.weight"), &[n])?,
            beta: self.vec(&format!("{name}.bias"), &[n])?,
        })
    }

    fn linear(&self, name: &str, n_in: usize, n_out: usize) -> Result<Linear> {
        let w = self.tensor(&format!("{name}.weight"), &[n_out, n_in])?;
        Ok(Linear {
            weight: w,
            bias: self.vec(&format!("{name}.bias"), &[n_out])?,
        })
    }

    /// Query, key and value of one layer as one `[hidden, 3 * hidden]` product.
    fn qkv(&self, layer: &str, h: usize) -> Result<Linear> {
        let mut ws = Vec::with_capacity(3);
        let mut bias = Vec::with_capacity(3 * h);
        for part in ["query", "key", "value"] {
            let name = format!("{layer}.attention.self.{part}");
            ws.push(self.tensor(&format!("{name}.weight"), &[h, h])?);
            bias.extend(self.vec(&format!("{name}.bias"), &[h])?);
        }
        Ok(Linear {
            weight: Tensor::cat(&ws, 0)?,
            bias,
        })
    }
}

impl Bert {
    /// Loads the weights from the bytes of a `model.safetensors` (names as saved by
    /// `BertModel`, with or without a `bert.` prefix).
    pub fn load(bytes: &[u8], config: BertConfig) -> Result<Self> {
        let st = SliceSafetensors::new(bytes)
            .map_err(|e| bad(format!("model.safetensors is not a safetensors file: {e}")))?;
        let prefix = if st.get("bert.embeddings.word_embeddings.weight").is_ok() {
            "bert."
        } else {
            ""
        };
        let w = Weights { st: &st, prefix };
        let h = config.hidden;
        let word = w.vec("embeddings.word_embeddings.weight", &[config.vocab, h])?;
        let position = w.vec(
            "embeddings.position_embeddings.weight",
            &[config.max_positions, h],
        )?;
        // Every token is type 0; the table's row count is not in every config.
        let types = w.any("embeddings.token_type_embeddings.weight")?;
        let token_type0 = match types.dims() {
            &[rows, cols] if (1..=16).contains(&rows) && cols == h => {
                types.get(0)?.to_vec1::<f32>()?
            }
            dims => {
                return Err(bad(format!(
                    "tensor `{prefix}embeddings.token_type_embeddings.weight` has shape \
                     {dims:?}, expected [1 to 16, {h}]"
                )));
            }
        };
        let emb_norm = w.norm("embeddings.LayerNorm", h)?;
        let layers = (0..config.layers)
            .map(|i| {
                let l = format!("encoder.layer.{i}");
                Ok(Layer {
                    qkv: w.qkv(&l, h)?,
                    attn_out: w.linear(&format!("{l}.attention.output.dense"), h, h)?,
                    attn_norm: w.norm(&format!("{l}.attention.output.LayerNorm"), h)?,
                    ff_in: w.linear(&format!("{l}.intermediate.dense"), h, config.intermediate)?,
                    ff_out: w.linear(&format!("{l}.output.dense"), config.intermediate, h)?,
                    ff_norm: w.norm(&format!("{l}.output.LayerNorm"), h)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            word,
            position,
            token_type0,
            emb_norm,
            layers,
        })
    }

    /// The last hidden states of a packed batch: sequence `i`'s rows follow sequence
    /// `i - 1`'s in the returned `[sum of lengths, hidden]` matrix. Every sequence must be
    /// non-empty, at most `max_positions` long, with ids below the vocabulary size. Runs on
    /// the current rayon pool.
    pub fn forward(&self, seqs: &[&[u32]]) -> Result<Vec<f32>> {
        let c = &self.config;
        let h = c.hidden;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        for (i, s) in seqs.iter().enumerate() {
            if s.is_empty() || s.len() > c.max_positions {
                return Err(bad(format!(
                    "sequence {i} has {} tokens (1 to {} allowed)",
                    s.len(),
                    c.max_positions
                )));
            }
            if let Some(&id) = s.iter().find(|&&id| id as usize >= c.vocab) {
                return Err(bad(format!(
                    "token id {id} is outside the vocabulary ({} ids)",
                    c.vocab
                )));
            }
        }
        // Each sequence's (first row, length), and each row's.
        let seq_spans: Vec<(usize, usize)> = seqs
            .iter()
            .scan(0usize, |start, s| {
                let span = (*start, s.len());
                *start += s.len();
                Some(span)
            })
            .collect();
        let spans: Vec<(usize, usize)> = seq_spans
            .iter()
            .flat_map(|&span| std::iter::repeat_n(span, span.1))
            .collect();
        let rows = spans.len();
        let ids: Vec<u32> = seqs.iter().flat_map(|s| s.iter().copied()).collect();

        let mut x = vec![0f32; rows * h];
        x.par_chunks_mut(h).enumerate().for_each(|(r, out)| {
            let (start, _) = spans[r];
            let id = ids[r] as usize;
            let word = &self.word[id * h..(id + 1) * h];
            let pos = &self.position[(r - start) * h..(r - start + 1) * h];
            for (((o, w), p), t) in out.iter_mut().zip(word).zip(pos).zip(&self.token_type0) {
                *o = w + p + t;
            }
            layer_norm(out, &self.emb_norm, c.eps);
        });

        for layer in &self.layers {
            let qkv = linear(&x, rows, &layer.qkv)?;
            let ctx = attention(&qkv, &seq_spans, c)?;
            let attn = linear(&ctx, rows, &layer.attn_out)?;
            add_norm(&mut x, &attn, &layer.attn_norm, c);
            let mut ff = linear(&x, rows, &layer.ff_in)?;
            ff.par_chunks_mut(c.intermediate).for_each(|row| {
                for v in row {
                    *v = gelu(*v);
                }
            });
            let ff = linear(&ff, rows, &layer.ff_out)?;
            add_norm(&mut x, &ff, &layer.ff_norm, c);
        }
        Ok(x)
    }
}

/// Below this many rows a linear layer is computed transposed (see [`linear`]).
const SMALL_ROWS: usize = 64;

/// `x W^T + b` over `rows` rows. gemm is faster with the long side as its `m`: for a few
/// rows (a short sentence alone) the product is taken as `W x^T` and transposed back.
fn linear(x: &[f32], rows: usize, l: &Linear) -> Result<Vec<f32>> {
    let (n_out, n_in) = l.weight.dims2()?;
    let xt = Tensor::from_slice(x, (rows, n_in), &Device::Cpu)?;
    let y = if rows < SMALL_ROWS {
        l.weight.matmul(&xt.t()?)?.t()?
    } else {
        xt.matmul(&l.weight.t()?)?
    };
    let mut y = y.flatten_all()?.to_vec1::<f32>()?;
    y.par_chunks_mut(n_out).for_each(|row| {
        for (v, b) in row.iter_mut().zip(&l.bias) {
            *v += b;
        }
    });
    Ok(y)
}

/// GELU with the error function (`hidden_act = "gelu"`, not the tanh approximation).
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function in f32 as a rational approximation on [-4, 4] (beyond, erf is ±1 in
/// f32): the one XLA and Eigen use, within a few 1e-7 of the exact value, with no branch
/// or `exp`, so a loop of it vectorizes (libm's `erff` made GELU a tenth of the run).
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

/// LayerNorm of one row in place.
fn layer_norm(row: &mut [f32], norm: &Norm, eps: f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// `x = LayerNorm(x + delta)`, row by row.
fn add_norm(x: &mut [f32], delta: &[f32], norm: &Norm, c: &BertConfig) {
    x.par_chunks_mut(c.hidden)
        .zip(delta.par_chunks(c.hidden))
        .for_each(|(row, d)| {
            for (v, d) in row.iter_mut().zip(d) {
                *v += d;
            }
            layer_norm(row, norm, c.eps);
        });
}

/// Multi-head self-attention of a packed batch, each sequence over its own keys.
/// `qkv` rows are `[q | k | v]`, each `hidden` wide and split into heads; `seqs` are
/// (first row, length). Per sequence: `softmax(Q K^T / sqrt(d)) V` with both products
/// as batched (per head) matmuls.
fn attention(qkv: &[f32], seqs: &[(usize, usize)], c: &BertConfig) -> Result<Vec<f32>> {
    let h = c.hidden;
    let (heads, hd) = (c.heads, c.head_dim());
    let scale = 1.0 / (hd as f32).sqrt();
    let parts = seqs
        .par_iter()
        .map(|&(start, len)| -> Result<Vec<f32>> {
            let t = Tensor::from_slice(
                &qkv[start * 3 * h..(start + len) * 3 * h],
                (len, 3, heads, hd),
                &Device::Cpu,
            )?;
            let part = |i: usize| t.narrow(1, i, 1)?.squeeze(1);
            let q = part(0)?.transpose(0, 1)?.contiguous()?; // [heads, len, hd]
            let k = part(1)?.permute((1, 2, 0))?.contiguous()?; // [heads, hd, len]
            let v = part(2)?.transpose(0, 1)?.contiguous()?; // [heads, len, hd]
            let mut scores = q.matmul(&k)?.flatten_all()?.to_vec1::<f32>()?;
            for row in scores.chunks_exact_mut(len) {
                softmax(row, scale);
            }
            let p = Tensor::from_vec(scores, (heads, len, len), &Device::Cpu)?;
            // [heads, len, hd] -> [len, heads * hd]
            Ok(p.matmul(&v)?
                .transpose(0, 1)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(parts.concat())
}

/// `softmax(row * scale)` in place.
fn softmax(row: &mut [f32], scale: f32) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0f32;
    for v in row.iter_mut() {
        *v = ((*v - max) * scale).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 16, "hidden_act": "gelu",
        "layer_norm_eps": 1e-12, "max_position_embeddings": 6, "vocab_size": 10,
        "type_vocab_size": 2}"#;

    #[test]
    fn config_is_checked() {
        let c = BertConfig::from_json(CONFIG.as_bytes()).unwrap();
        assert_eq!((c.hidden, c.heads, c.head_dim(), c.vocab), (8, 2, 4, 10));
        for (from, to, want) in [
            (r#""gelu""#, r#""relu""#, "hidden_act"),
            (r#""bert""#, r#""roberta""#, "model_type"),
            (
                r#""num_attention_heads": 2"#,
                r#""num_attention_heads": 3"#,
                "multiple",
            ),
            (r#""hidden_size": 8"#, r#""hidden_size": 0"#, "out of range"),
            (
                r#""vocab_size": 10"#,
                r#""vocab_size": -1"#,
                "not a BERT config",
            ),
        ] {
            let e = BertConfig::from_json(CONFIG.replace(from, to).as_bytes()).unwrap_err();
            assert!(e.to_string().contains(want), "{to}: {e}");
        }
        assert!(BertConfig::from_json(b"not json").is_err());
    }

    /// A tiny random BERT, saved with candle and loaded back.
    fn tiny() -> Bert {
        let config = BertConfig::from_json(CONFIG.as_bytes()).unwrap();
        let mut state = 7u64;
        let mut rand = |shape: &[usize]| {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.5
                })
                .collect();
            Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
        };
        let mut t = std::collections::HashMap::new();
        let (h, f) = (8, 16);
        t.insert(
            "embeddings.word_embeddings.weight".to_string(),
            rand(&[10, h]),
        );
        t.insert(
            "embeddings.position_embeddings.weight".into(),
            rand(&[6, h]),
        );
        t.insert(
            "embeddings.token_type_embeddings.weight".into(),
            rand(&[2, h]),
        );
        t.insert("embeddings.LayerNorm.weight".into(), rand(&[h]));
        t.insert("embeddings.LayerNorm.bias".into(), rand(&[h]));
        let l = "encoder.layer.0";
        for (name, o, i) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", f, h),
            ("output.dense", h, f),
        ] {
            t.insert(format!("{l}.{name}.weight"), rand(&[o, i]));
            t.insert(format!("{l}.{name}.bias"), rand(&[o]));
        }
        for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
            t.insert(format!("{l}.{n}.weight"), rand(&[h]));
            t.insert(format!("{l}.{n}.bias"), rand(&[h]));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        candle_core::safetensors::save(&t, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        Bert::load(&bytes, config).unwrap()
    }

    #[test]
    fn packed_batches_equal_single_sequences() {
        let bert = tiny();
        let a: &[u32] = &[1, 2, 3];
        let b: &[u32] = &[4, 5, 6, 7, 8, 9];
        let c: &[u32] = &[0];
        let packed = bert.forward(&[a, b, c]).unwrap();
        let mut single = bert.forward(&[a]).unwrap();
        single.extend(bert.forward(&[b]).unwrap());
        single.extend(bert.forward(&[c]).unwrap());
        assert_eq!(packed.len(), 10 * 8);
        for (x, y) in packed.iter().zip(&single) {
            assert!((x - y).abs() < 1e-5, "{x} {y}");
        }
        // The sequence's own keys only: appending tokens changes earlier rows (BERT is
        // bidirectional), packing another sequence beside it does not.
        let longer = bert.forward(&[&[1, 2, 3, 4]]).unwrap();
        assert!(longer[..8].iter().zip(&single[..8]).any(|(x, y)| x != y));
    }

    #[test]
    fn bad_sequences_are_errors() {
        let bert = tiny();
        assert!(bert.forward(&[&[]]).is_err());
        assert!(bert.forward(&[&[1; 7]]).is_err());
        let e = bert.forward(&[&[10]]).unwrap_err().to_string();
        assert!(e.contains("outside the vocabulary"), "{e}");
        assert!(bert.forward(&[]).unwrap().is_empty());
    }

    #[test]
    fn missing_or_mistyped_tensors_are_errors() {
        let config = BertConfig::from_json(CONFIG.as_bytes()).unwrap();
        assert!(Bert::load(b"garbage", config.clone()).is_err());
        let mut t = std::collections::HashMap::new();
        t.insert(
            "embeddings.word_embeddings.weight".to_string(),
            Tensor::zeros((10, 8), DType::F16, &Device::Cpu).unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        candle_core::safetensors::save(&t, &path).unwrap();
        let e = Bert::load(&std::fs::read(&path).unwrap(), config)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("expected F32"), "{e}");
    }

    #[test]
    fn erf_and_gelu_match_libm() {
        let mut worst = 0f32;
        for i in -80_000..=80_000 {
            let x = i as f32 * 1e-4;
            let exact = candle_core::cpu::erf::erf_f32(x);
            worst = worst.max((erf(x) - exact).abs());
        }
        assert!(worst < 1e-6, "erf off by {worst}");
        eprintln!("max |erf - libm erff| on [-8, 8]: {worst:e}");
        assert_eq!(erf(0.0), 0.0);
        for (x, want) in [(9.0, 1.0), (-1e30, -1.0), (f32::INFINITY, 1.0)] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
        assert_eq!(gelu(0.0), 0.0);
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu(-3.0) + 0.004_049_6).abs() < 1e-6);
        let mut row = [1.0f32, 2.0, 3.0];
        softmax(&mut row, 0.5);
        let e: Vec<f32> = [0.5f32, 1.0, 1.5].iter().map(|v| v.exp()).collect();
        let sum: f32 = e.iter().sum();
        for (r, e) in row.iter().zip(&e) {
            assert!((r - e / sum).abs() < 1e-7);
        }
    }
}
