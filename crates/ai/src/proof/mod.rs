//! Proof of inference: what a miner attaches to a completion so that anyone holding the
//! model can check it was produced by that model, from that request, with that sampling.
//!
//! - [`commitment`]: a compact commitment to the final hidden states of the positions
//!   that chose the output tokens (TOPLOC-style: top-k values per 32 tokens, encoded as
//!   a polynomial over GF(65521); 257 bytes per 32 tokens).
//! - [`receipt`]: the signed receipt binding model, tokenizer, request, output and
//!   commitment to the signer's address (secp256k1 over EIP-712 typed data).
//! - [`verify`]: the verifier. One prefill over prompt + output recomputes every hidden
//!   state and every logits row; the commitment must match within [`verify::Tolerances`]
//!   and every output token must be the one the requested sampling picks (greedy: the
//!   argmax; seeded sampling: the same draw, inside top-k/top-p), and the output must
//!   end the way generation ends (end-of-generation token, stop sequence or
//!   `max_tokens`). Hidden states alone cannot see text decoded by a cheaper model and
//!   then honestly committed; the sampling check does.
//!
//! This module also records the commitment while generating ([`generate`]) and builds
//! one for a given completion in one prefill pass ([`attest`]).

pub mod commitment;
pub mod cost;
pub mod matrix;
pub mod receipt;
pub mod verify;

use std::collections::BTreeMap;

use alloy_primitives::B256;
use alloy_signer_local::PrivateKeySigner;
use candle_core::quantized::gguf_file::Value;
use sha2::{Digest, Sha256};

use crate::error::{AiError, Result};
use crate::generate::{Engine, Generation, Observer, Prompt};
use crate::gguf::Gguf;
use crate::model::{Forward, Logits};
use crate::sampling::SamplingParams;
use crate::template::ChatMessage;
use commitment::{Commitment, CommitmentBuilder};
use receipt::{Output, ReceiptFile, ReceiptInput, Request};

/// sha256 over every `tokenizer.*` metadata entry of a GGUF (vocabulary, token types,
/// merges, special token ids, pre-tokenizer name, chat template), in key order, each as
/// `key length ‖ key ‖ value` with a type tag before every value and lengths as u64
/// little-endian.
pub fn tokenizer_digest(gguf: &Gguf) -> [u8; 32] {
    let entries: BTreeMap<&str, &Value> = gguf
        .content
        .metadata
        .iter()
        .filter(|(key, _)| key.starts_with("tokenizer."))
        .map(|(key, value)| (key.as_str(), value))
        .collect();
    let mut hasher = Sha256::new();
    hasher.update(b"noesis-tokenizer-v1");
    for (key, value) in entries {
        hasher.update((key.len() as u64).to_le_bytes());
        hasher.update(key.as_bytes());
        hash_value(&mut hasher, value);
    }
    hasher.finalize().into()
}

fn hash_value(h: &mut Sha256, value: &Value) {
    match value {
        Value::U8(v) => h.update([[0u8].as_slice(), &v.to_le_bytes()].concat()),
        Value::I8(v) => h.update([[1u8].as_slice(), &v.to_le_bytes()].concat()),
        Value::U16(v) => h.update([[2u8].as_slice(), &v.to_le_bytes()].concat()),
        Value::I16(v) => h.update([[3u8].as_slice(), &v.to_le_bytes()].concat()),
        Value::U32(v) => h.update([[4u8].as_slice(), &v.to_le_bytes()].concat()),
        Value::I32(v) => h.update([[5u8].as_slice(), &v.to_le_bytes()].concat()),
        Value::F32(v) => h.update([[6u8].as_slice(), &v.to_le_bytes()].concat()),
        Value::Bool(v) => h.update([7u8, u8::from(*v)]),
        Value::String(s) => {
            h.update([8u8]);
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        Value::Array(items) => {
            h.update([9u8]);
            h.update((items.len() as u64).to_le_bytes());
            for item in items {
                hash_value(h, item);
            }
        }
        Value::U64(v) => h.update([[10u8].as_slice(), &v.to_le_bytes()].concat()),
        Value::I64(v) => h.update([[11u8].as_slice(), &v.to_le_bytes()].concat()),
        Value::F64(v) => h.update([[12u8].as_slice(), &v.to_le_bytes()].concat()),
    }
}

/// Records the commitment during generation: the hidden state of the last position of
/// every forward is the one whose logits choose the next token.
struct Recorder<'a, F: FnMut(&str)> {
    builder: CommitmentBuilder,
    last: Vec<f32>,
    on_text: &'a mut F,
    cancelled: &'a dyn Fn() -> bool,
    /// Time spent recording (copying states, committing chunks).
    busy: std::time::Duration,
}

impl<F: FnMut(&str)> Observer for Recorder<'_, F> {
    fn text(&mut self, piece: &str) {
        (self.on_text)(piece)
    }

    fn forward(&mut self, forward: &Forward) {
        let started = std::time::Instant::now();
        if let Some(state) = forward.hidden(forward.n_tokens.saturating_sub(1)) {
            self.last.clear();
            self.last.extend_from_slice(state);
        }
        self.busy += started.elapsed();
    }

    fn token(&mut self, _token: &crate::generate::GeneratedToken) {
        let started = std::time::Instant::now();
        self.builder.push(&self.last);
        self.busy += started.elapsed();
    }

    fn cancelled(&self) -> bool {
        (self.cancelled)()
    }
}

/// Generates a chat completion and records its commitment.
pub fn generate(
    engine: &Engine,
    messages: &[ChatMessage],
    params: &SamplingParams,
    on_text: impl FnMut(&str),
) -> Result<(Generation, Commitment)> {
    generate_timed(engine, messages, params, on_text, &|| false).map(|(g, c, _)| (g, c))
}

/// [`generate`], also returning the seconds spent recording the commitment; stops with
/// [`AiError::Cancelled`] before any decode step where `cancelled()` is true.
pub fn generate_timed(
    engine: &Engine,
    messages: &[ChatMessage],
    params: &SamplingParams,
    mut on_text: impl FnMut(&str),
    cancelled: &dyn Fn() -> bool,
) -> Result<(Generation, Commitment, f64)> {
    let mut recorder = Recorder {
        cancelled,
        builder: CommitmentBuilder::new(engine.model.config.n_embd),
        last: Vec::new(),
        on_text: &mut on_text,
        busy: std::time::Duration::ZERO,
    };
    let generation =
        engine.generate_observed(&Prompt::Chat(messages.to_vec()), params, &mut recorder)?;
    let started = std::time::Instant::now();
    let commitment = recorder.builder.finish();
    let busy = recorder.busy + started.elapsed();
    Ok((generation, commitment, busy.as_secs_f64()))
}

/// The token ids a given completion text stands for, as generation would have
/// produced them: the text's tokens, then the end-of-generation token unless
/// `max_tokens` is reached. Errors when the text needs more than `max_tokens` tokens.
pub fn completion_tokens(engine: &Engine, text: &str, max_tokens: u32) -> Result<Vec<u32>> {
    let mut tokens = engine.tokenizer.encode(text, false)?;
    if tokens.len() > max_tokens as usize {
        return Err(AiError::Sampling(format!(
            "the completion is {} tokens, more than max tokens ({max_tokens})",
            tokens.len()
        )));
    }
    if tokens.len() < max_tokens as usize {
        let eos = engine
            .tokenizer
            .eos
            .ok_or_else(|| AiError::Tokenizer("the model has no end-of-generation token".into()))?;
        tokens.push(eos);
    }
    Ok(tokens)
}

/// The commitment to a completion computed in one prefill over prompt + output (the
/// honest way to re-attest a known answer): the same hidden states generation records.
pub fn attest(engine: &Engine, prompt_tokens: &[u32], output: &[u32]) -> Result<Commitment> {
    let mut builder = CommitmentBuilder::new(engine.model.config.n_embd);
    verify::teacher_forced(
        engine,
        prompt_tokens,
        output,
        Logits::None,
        |_, state, _| {
            builder.push(state);
            Ok(true)
        },
    )?;
    Ok(builder.finish())
}

/// Signs a receipt for a completion of `messages` with `params`.
pub fn sign_receipt(
    engine: &Engine,
    messages: Vec<ChatMessage>,
    params: &SamplingParams,
    prompt_tokens: usize,
    output: Output,
    commitment: Commitment,
    key: &PrivateKeySigner,
) -> Result<ReceiptFile> {
    let input = ReceiptInput {
        model: parse_b256(&engine.info.sha256)?,
        tokenizer: parse_b256(&engine.info.tokenizer_sha256)?,
        request: Request::new(messages, params),
        output,
        proof: commitment,
        prompt_tokens: u32::try_from(prompt_tokens)
            .map_err(|_| AiError::Sampling("the prompt is too long for a receipt".into()))?,
    };
    receipt::sign(input, key).map_err(|e| AiError::Receipt(e.to_string()))
}

fn parse_b256(hex: &str) -> Result<B256> {
    hex.parse()
        .map_err(|_| AiError::Model(format!("`{hex}` is not a 32-byte hex hash")))
}
