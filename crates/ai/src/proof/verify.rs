//! The verifier: checks a receipt against the model in one teacher-forced prefill.
//!
//! In order, stopping at the first failure (each has a machine-readable reason):
//! 1. the receipt holds together without the model: hashes, counts, signature
//!    ([`ReceiptFile::check`]);
//! 2. it names this model file and this tokenizer/template;
//! 3. the request is valid and its prompt renders to the stated number of tokens;
//! 4. the output ends the way generation ends — on an end-of-generation token, on a
//!    stop sequence completed by its last token, or at `max_tokens` — and its token ids
//!    decode to exactly its text (a truncated, extended or edited output fails here or
//!    in the hashes);
//! 5. one prefill over prompt + output yields, at every output position, logits under
//!    which the requested sampling picks that token (greedy: the argmax, or within
//!    [`Tolerances::logit_margin`] of it; sampled: the seeded draw lands in the token's
//!    interval of the distribution after top-k/top-p, within [`Tolerances::draw_margin`]),
//!    and hidden states matching the commitment chunk by chunk within
//!    [`Tolerances::commitment`].

use std::time::Instant;

use serde::Serialize;

use crate::error::{AiError, Result};
use crate::generate::{Engine, FinishReason, Observer, Output, Prompt};
use crate::model::Logits;
use crate::proof::commitment::{CHUNK_TOKENS, ChunkCheck, Tolerance, check_chunk};
use crate::proof::receipt::{ReceiptError, ReceiptFile};
use crate::sampling::{self, SamplingParams};
use crate::tokenizer::StreamDecoder;

/// How far an honest recomputation may stray (see
/// `docs/adr/0008-ai-runtime-and-proof-of-inference.md` for the measurements behind the
/// defaults: honest generation and verification are bit-identical on any CPU this runtime
/// runs on, so the sampling margins only absorb libm-level rounding in the softmax; every
/// bit of margin is room a cheater can use at near-ties).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Tolerances {
    /// Per-chunk limits of the hidden-state comparison.
    pub commitment: Tolerance,
    /// Greedy: how far below the argmax's logit the chosen token's logit may be.
    pub logit_margin: f32,
    /// Sampling: how far outside the token's interval of the distribution the draw may
    /// fall (probability mass).
    pub draw_margin: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            commitment: Tolerance {
                exponent_mismatches: 8,
                mantissa_mean: 1.0,
                mantissa_max: 8,
            },
            logit_margin: 1e-4,
            draw_margin: 1e-6,
        }
    }
}

/// Positions fed per prefill step (bounds the logits buffer: `STEP × vocab` floats).
const STEP: usize = 256;

/// Runs the model over `prompt + output[..n-1]` and calls `visit(j, hidden, logits)` for
/// every output index `j` with the final hidden state and (when `want` is not
/// [`Logits::None`]) the logits of the position that chose `output[j]`. `visit` returns
/// false to stop early.
pub(crate) fn teacher_forced(
    engine: &Engine,
    prompt: &[u32],
    output: &[u32],
    want: Logits,
    mut visit: impl FnMut(usize, &[f32], Option<&[f32]>) -> Result<bool>,
) -> Result<()> {
    let (Some((&last_prompt, head)), false) = (prompt.split_last(), output.is_empty()) else {
        return Ok(());
    };
    let total = prompt.len() + output.len() - 1;
    let context = engine.model.config.context_length;
    if total > context {
        return Err(AiError::ContextOverflow {
            prompt: prompt.len(),
            max_tokens: output.len(),
            context,
        });
    }
    // The prompt's keys and values: as much as a cached prompt shares, the rest computed
    // (and the whole prompt cached for the next verification).
    let mut session = match engine.prefix_cache.lookup(head) {
        Some(reuse) => engine
            .model
            .session_from(&reuse.session, reuse.positions, total)?,
        None => engine.model.session(total)?,
    };
    if session.len() < head.len() {
        let start = session.len();
        engine
            .model
            .forward(&mut session, &head[start..], Logits::None)?;
        engine.prefix_cache.insert(&engine.model, head, &session)?;
    }
    let mut feed = Vec::with_capacity(output.len());
    feed.push(last_prompt);
    feed.extend_from_slice(&output[..output.len() - 1]);
    let want = if want == Logits::None {
        Logits::None
    } else {
        Logits::All
    };
    let mut j = 0;
    for piece in feed.chunks(STEP) {
        let forward = engine.model.forward(&mut session, piece, want)?;
        for row in 0..piece.len() {
            let hidden = forward
                .hidden(row)
                .ok_or_else(|| AiError::Model("the forward returned too few states".into()))?;
            if !visit(j, hidden, forward.logits(row))? {
                return Ok(());
            }
            j += 1;
        }
    }
    Ok(())
}

/// The verifier's answer.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// `accept` or `reject`.
    pub verdict: &'static str,
    /// Why it was rejected (machine-readable), `null` when accepted.
    pub reason: Option<&'static str>,
    /// A human-readable explanation of the rejection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Output tokens whose sampling and hidden states were checked.
    pub checked_tokens: usize,
    /// Seconds the verification took (the model load excluded).
    pub seconds: f64,
    /// What the comparison saw (useful to calibrate tolerances).
    pub stats: Stats,
}

impl Verdict {
    /// Whether the receipt was accepted.
    pub fn accepted(&self) -> bool {
        self.reason.is_none()
    }
}

/// Measurements taken during a verification.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Tokens accepted only thanks to [`Tolerances::logit_margin`] or
    /// [`Tolerances::draw_margin`].
    pub near_ties: usize,
    /// Largest gap between the argmax's logit and the chosen token's (greedy).
    pub max_logit_gap: f32,
    /// Largest distance of a draw outside its token's interval (sampling).
    pub max_draw_gap: f64,
    /// Worst chunk: most exponent mismatches.
    pub max_exponent_mismatches: usize,
    /// Worst chunk: largest mean mantissa difference.
    pub max_mantissa_mean: f64,
    /// Worst chunk: largest mantissa difference.
    pub max_mantissa_diff: u32,
}

impl Stats {
    fn add_chunk(&mut self, c: &ChunkCheck) {
        self.max_exponent_mismatches = self.max_exponent_mismatches.max(c.exponent_mismatches);
        self.max_mantissa_mean = self.max_mantissa_mean.max(c.mantissa_mean);
        self.max_mantissa_diff = self.max_mantissa_diff.max(c.mantissa_max);
    }
}

/// A rejection: reason code and explanation.
struct Reject(&'static str, String);

impl From<ReceiptError> for Reject {
    fn from(e: ReceiptError) -> Self {
        Reject(e.code(), e.to_string())
    }
}

/// Verifies a parsed receipt against the loaded model. Errors only when the model
/// itself fails; everything wrong with the receipt is a rejection in the verdict.
pub fn verify(engine: &Engine, file: ReceiptFile, tolerances: &Tolerances) -> Result<Verdict> {
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut checked = 0;
    let outcome = run(engine, file, tolerances, &mut stats, &mut checked);
    let (reason, detail) = match outcome {
        Ok(()) => (None, None),
        Err(Failure::Reject(Reject(code, detail))) => (Some(code), Some(detail)),
        Err(Failure::Error(e)) => return Err(e),
    };
    Ok(Verdict {
        verdict: if reason.is_none() { "accept" } else { "reject" },
        reason,
        detail,
        checked_tokens: checked,
        seconds: started.elapsed().as_secs_f64(),
        stats,
    })
}

enum Failure {
    Reject(Reject),
    Error(AiError),
}

impl From<Reject> for Failure {
    fn from(r: Reject) -> Self {
        Failure::Reject(r)
    }
}

impl From<ReceiptError> for Failure {
    fn from(e: ReceiptError) -> Self {
        Failure::Reject(e.into())
    }
}

fn reject(code: &'static str, detail: impl Into<String>) -> Failure {
    Failure::Reject(Reject(code, detail.into()))
}

fn run(
    engine: &Engine,
    file: ReceiptFile,
    tolerances: &Tolerances,
    stats: &mut Stats,
    checked: &mut usize,
) -> std::result::Result<(), Failure> {
    let receipt = file.check()?;
    let fields = &receipt.file.receipt;
    let model_sha = alloy_primitives::hex::encode(fields.model);
    if !model_sha.eq_ignore_ascii_case(&engine.info.sha256) {
        return Err(reject(
            "model_mismatch",
            format!(
                "the receipt names model {model_sha}, this model file is {}",
                engine.info.sha256
            ),
        ));
    }
    let tokenizer_sha = alloy_primitives::hex::encode(fields.tokenizer);
    if !tokenizer_sha.eq_ignore_ascii_case(&engine.info.tokenizer_sha256) {
        return Err(reject(
            "tokenizer_mismatch",
            format!(
                "the receipt names tokenizer {tokenizer_sha}, the model's is {}",
                engine.info.tokenizer_sha256
            ),
        ));
    }
    let request = &receipt.file.request;
    let params = request.sampling();
    params
        .validate()
        .map_err(|e| reject("invalid_request", e.to_string()))?;
    let prompt = engine
        .prompt_tokens(&Prompt::Chat(request.messages.clone()))
        .map_err(|e| reject("invalid_request", e.to_string()))?;
    if prompt.len() != fields.prompt_tokens as usize {
        return Err(reject(
            "prompt_token_count_mismatch",
            format!(
                "the receipt states {} prompt tokens, the request renders to {}",
                fields.prompt_tokens,
                prompt.len()
            ),
        ));
    }
    let context = engine.model.config.context_length;
    if prompt.is_empty() || prompt.len() + params.max_tokens as usize > context {
        return Err(reject(
            "invalid_request",
            format!(
                "the prompt ({} tokens) plus max tokens ({}) do not fit the context ({context})",
                prompt.len(),
                params.max_tokens
            ),
        ));
    }
    let tokens = &receipt.file.output.tokens;
    if let Some(&bad) = tokens
        .iter()
        .find(|&&t| t as usize >= engine.model.config.vocab_size)
    {
        return Err(reject(
            "invalid_token",
            format!("output token {bad} is outside the vocabulary"),
        ));
    }
    check_ending(engine, tokens, &params, &receipt.file.output.text)?;

    let commitment = &receipt.proof.chunks;
    let n_embd = engine.model.config.n_embd;
    let mut states: Vec<f32> = Vec::with_capacity(CHUNK_TOKENS * n_embd);
    let mut failure: Option<Failure> = None;
    teacher_forced(engine, &prompt, tokens, Logits::All, |j, hidden, logits| {
        let logits =
            logits.ok_or_else(|| AiError::Model("the prefill returned no logits".into()))?;
        if let Err(r) = check_token(logits, &params, j, tokens[j], tolerances, stats) {
            failure = Some(Failure::Reject(r));
            return Ok(false);
        }
        states.extend_from_slice(hidden);
        *checked = j + 1;
        let in_chunk = states.len() / n_embd;
        if in_chunk == CHUNK_TOKENS || j + 1 == tokens.len() {
            let chunk = j / CHUNK_TOKENS;
            let check = check_chunk(&commitment[chunk], &states);
            stats.add_chunk(&check);
            if !check.passes(&tolerances.commitment) {
                failure = Some(reject(
                    "commitment_mismatch",
                    format!(
                        "chunk {chunk} (output tokens {}..={j}): {} of {} values differ in \
                         sign or exponent, mantissas differ by {:.2} ulps on average and {} \
                         at most (allowed {}, {:.2}, {})",
                        chunk * CHUNK_TOKENS,
                        check.exponent_mismatches,
                        check.compared,
                        check.mantissa_mean,
                        check.mantissa_max,
                        tolerances.commitment.exponent_mismatches,
                        tolerances.commitment.mantissa_mean,
                        tolerances.commitment.mantissa_max
                    ),
                ));
                return Ok(false);
            }
            states.clear();
        }
        Ok(true)
    })
    .map_err(Failure::Error)?;
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// An observer that discards everything (replaying text needs none).
struct Quiet;
impl Observer for Quiet {}

/// Checks that the output ends the way generation ends and decodes to its text.
fn check_ending(
    engine: &Engine,
    tokens: &[u32],
    params: &SamplingParams,
    text: &str,
) -> std::result::Result<FinishReason, Failure> {
    if tokens.len() > params.max_tokens as usize {
        return Err(reject(
            "too_many_tokens",
            format!(
                "{} output tokens, more than max tokens ({})",
                tokens.len(),
                params.max_tokens
            ),
        ));
    }
    let tokenizer = &engine.tokenizer;
    let mut out = Output::new(&params.stop);
    let mut stream = StreamDecoder::new();
    let mut finish = None;
    for (i, &id) in tokens.iter().enumerate() {
        let ended = if tokenizer.eog.contains(&id) {
            Some(FinishReason::Eos)
        } else if out.push(&stream.push(tokenizer, id), &mut Quiet) {
            Some(FinishReason::Stop)
        } else {
            None
        };
        if let Some(reason) = ended {
            if i + 1 != tokens.len() {
                return Err(reject(
                    "tokens_after_end",
                    format!(
                        "generation ends at output token {i} ({reason:?}) but {} more follow",
                        tokens.len() - i - 1
                    ),
                ));
            }
            finish = Some(reason);
        }
    }
    let finish = match finish {
        Some(f) => f,
        None if out.push(&stream.finish(), &mut Quiet) => FinishReason::Stop,
        None if tokens.len() == params.max_tokens as usize => FinishReason::Length,
        None => {
            return Err(reject(
                "output_truncated",
                format!(
                    "the output ends after {} tokens without an end-of-generation token, a \
                     stop sequence or reaching max tokens ({})",
                    tokens.len(),
                    params.max_tokens
                ),
            ));
        }
    };
    out.flush(&mut Quiet);
    if out.text != text {
        return Err(reject(
            "output_text_mismatch",
            "the output's token ids do not decode to its text",
        ));
    }
    Ok(finish)
}

/// Checks that the requested sampling picks `token` as output number `index` under
/// `logits`, within the tolerances.
fn check_token(
    logits: &[f32],
    params: &SamplingParams,
    index: usize,
    token: u32,
    tolerances: &Tolerances,
    stats: &mut Stats,
) -> std::result::Result<(), Reject> {
    if params.is_greedy() {
        let best = sampling::argmax(logits).unwrap_or(token);
        if best == token {
            return Ok(());
        }
        let gap = logits[best as usize] - logits[token as usize];
        stats.max_logit_gap = stats.max_logit_gap.max(gap);
        if gap <= tolerances.logit_margin {
            stats.near_ties += 1;
            return Ok(());
        }
        return Err(Reject(
            "token_not_sampled",
            format!(
                "output token {index} is {token}, but greedy decoding picks {best} (logit \
                 higher by {gap:.4}, allowed {})",
                tolerances.logit_margin
            ),
        ));
    }
    let u = sampling::uniform(params.seed, index as u64);
    let strict = draw_gap(
        &sampling::candidates_until(logits, params, |id, _| id == token),
        token,
        u,
    );
    if strict == Some(0.0) {
        return Ok(());
    }
    // Near the top-k/top-p cut, float noise can move a token in or out: look again with
    // one more candidate and a slightly larger nucleus.
    let relaxed = SamplingParams {
        top_k: if params.top_k > 0 {
            params.top_k + 1
        } else {
            0
        },
        top_p: (params.top_p + tolerances.draw_margin as f32).min(1.0),
        ..params.clone()
    };
    let gap = [
        strict,
        draw_gap(&sampling::candidates(logits, &relaxed), token, u),
    ]
    .into_iter()
    .flatten()
    .fold(f64::INFINITY, f64::min);
    if gap <= tolerances.draw_margin {
        stats.near_ties += 1;
        stats.max_draw_gap = stats.max_draw_gap.max(gap);
        return Ok(());
    }
    let expected = sampling::sample(logits, params, index as u64).unwrap_or(token);
    Err(Reject(
        "token_not_sampled",
        if gap.is_finite() {
            format!(
                "output token {index} is {token}, but the seeded draw picks {expected} (the \
                 draw is {gap:.4} away from {token}'s share of the distribution)"
            )
        } else {
            format!(
                "output token {index} is {token}, which is outside the requested top-k/top-p \
                 candidates; the seeded draw picks {expected}"
            )
        },
    ))
}

/// How far the draw `u` falls outside `token`'s interval of the cumulative distribution
/// (0 inside), or `None` when `token` is not a candidate.
fn draw_gap(candidates: &[(u32, f64)], token: u32, u: f64) -> Option<f64> {
    let mut low = 0.0;
    for &(id, p) in candidates {
        let high = low + p;
        if id == token {
            return Some(if u < low {
                low - u
            } else if u >= high {
                u - high
            } else {
                0.0
            });
        }
        low = high;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_gap_measures_the_distance_to_the_interval() {
        let c = [(5, 0.5), (7, 0.3), (9, 0.2)];
        assert_eq!(draw_gap(&c, 7, 0.6), Some(0.0));
        assert!((draw_gap(&c, 7, 0.45).unwrap() - 0.05).abs() < 1e-12);
        assert!((draw_gap(&c, 5, 0.9).unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(draw_gap(&c, 11, 0.1), None);
    }

    #[test]
    fn greedy_accepts_near_ties_only() {
        // 2.99995 is within the default 1e-4 margin of 3.0; 2.99 is not.
        let logits = [0.0f32, 3.0, 2.99995, 1.0, 2.99];
        let params = SamplingParams::default();
        let tol = Tolerances::default();
        let mut stats = Stats::default();
        assert!(check_token(&logits, &params, 0, 1, &tol, &mut stats).is_ok());
        assert!(check_token(&logits, &params, 0, 2, &tol, &mut stats).is_ok());
        assert_eq!(stats.near_ties, 1);
        for far in [3, 4] {
            let r = check_token(&logits, &params, 0, far, &tol, &mut stats).unwrap_err();
            assert_eq!(r.0, "token_not_sampled");
        }
    }

    #[test]
    fn sampling_accepts_the_draw_and_rejects_others() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.4).collect();
        let params = SamplingParams {
            temperature: 0.8,
            top_p: 0.9,
            seed: 99,
            ..SamplingParams::default()
        };
        let tol = Tolerances::default();
        let mut stats = Stats::default();
        for index in 0..20 {
            let picked = sampling::sample(&logits, &params, index).unwrap();
            assert!(
                check_token(&logits, &params, index as usize, picked, &tol, &mut stats).is_ok()
            );
            let others = (0..50u32).filter(|&t| t != picked);
            let rejected = others
                .filter(|&t| {
                    check_token(&logits, &params, index as usize, t, &tol, &mut stats).is_err()
                })
                .count();
            assert!(rejected >= 45, "index {index}: only {rejected} rejected");
        }
    }
}
