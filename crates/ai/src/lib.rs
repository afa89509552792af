//! The Noesis AI runtime: llama-family GGUF models and sentence embeddings on candle, on
//! the CPU.
//!
//! A model is one GGUF file, named by the sha256 of its bytes ([`models`] pins the
//! known ones and fetches them). Everything needed to run it comes from that file:
//!
//! - [`gguf`] validates the header with a cap on every count and length before candle
//!   sees it, and reads the llama hyperparameters;
//! - [`model`] is the forward pass: quantized weights multiplied by the [`kernels`] (which
//!   reproduce llama.cpp's CPU arithmetic; candle's `QMatMul` for other quantizations),
//!   RMSNorm, RoPE in llama.cpp's interleaved layout, grouped-query causal attention over
//!   a preallocated KV cache, SiLU-gated MLP, tied output embedding. One call runs a
//!   batch of new tokens (prefill and decode alike) and returns every position's final
//!   hidden state — what the proof of inference commits to — and the logits asked for;
//! - [`tokenizer`] builds byte-level BPE from `tokenizer.ggml.*` with the pre-tokenizer
//!   llama.cpp uses for `tokenizer.ggml.pre`, parsing special tokens in the text;
//! - [`template`] renders `tokenizer.chat_template` with minijinja;
//! - [`sampling`] chooses tokens (greedy, temperature, top-k, top-p) with a specified,
//!   counter-based SplitMix64 draw per output index, so a verifier can recompute any
//!   token's choice from the seed;
//! - [`proof`] is the proof of inference: a commitment to the final hidden states
//!   recorded while generating, a receipt signed over EIP-712, and the verifier that
//!   re-runs one prefill over prompt + output and checks commitment and sampling;
//! - [`generate`] ties them together: [`Engine::load`], [`Engine::generate`] (stop
//!   sequences, max tokens, end-of-generation tokens, streaming, a hard context cap,
//!   a record of every token) and [`Engine::prefill`] (one teacher-forced pass over
//!   prompt + output for verification).
//!
//! Sentence embeddings are the other model kind: [`embed`] runs a sentence-transformers
//! BERT (all-MiniLM-L6-v2) from its safetensors weights and Hugging Face `tokenizer.json`
//! — [`Embedder::load`], [`Embedder::embed_batch`] (packed batches, mean pooling, L2
//! normalization).
//!
//! Floats never reach consensus: what leaves this crate for the chain is hashes
//! (model, template, tokens) and verdicts.
//!
//! Threads: all the work runs on a pool of [`LoadOptions::threads`], and results do not
//! depend on its size. (Only weight quantizations without a native kernel go through
//! candle's process-wide pool, sized once from `CANDLE_NUM_THREADS`,
//! [`model::matmul_threads`].)

pub mod bench;
pub mod embed;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod kernels;
pub mod model;
pub mod models;
pub mod prefix;
pub mod proof;
pub mod sampling;
pub mod template;
pub mod tokenizer;

pub use embed::{EmbedOptions, Embedder, EmbedderInfo};
pub use error::{AiError, Result};
pub use generate::{
    Engine, FinishReason, GeneratedToken, Generation, LoadOptions, ModelInfo, Observer, Prompt,
    Timings,
};
pub use model::{Forward, Logits, Model, Session};
pub use sampling::SamplingParams;
pub use template::{ChatMessage, ChatTemplate};
pub use tokenizer::{StreamDecoder, Tokenizer};
