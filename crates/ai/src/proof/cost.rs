//! What the proof costs: verification time against generation time, the time spent
//! recording the commitment, and its size.

use serde::Serialize;

use crate::error::Result;
use crate::generate::Engine;
use crate::proof::receipt::Output;
use crate::proof::verify::{Tolerances, verify};
use crate::proof::{generate_timed, sign_receipt};
use crate::sampling::SamplingParams;
use crate::template::ChatMessage;

/// Prompts that draw long answers.
const PROMPTS: &[&str] = &[
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Explain in detail how a steam engine works, step by step.",
    "Describe a journey across a desert, with as much detail as you can.",
    "Write an essay about the history of writing systems.",
];

/// Proof costs over a few long answers.
#[derive(Clone, Debug, Serialize)]
pub struct ProofCost {
    /// Answers generated and verified.
    pub answers: usize,
    /// Output tokens in all (the target is `max_tokens` per answer; an answer may end
    /// earlier on EOS).
    pub output_tokens: usize,
    /// Prompt tokens in all.
    pub prompt_tokens: usize,
    /// Seconds generating (prefill + decode), commitment recording included.
    pub generate_secs: f64,
    /// Of which, seconds recording the commitment.
    pub commitment_secs: f64,
    /// Seconds verifying with no prompt cached (one prefill over prompt + output, the
    /// checks).
    pub verify_secs: f64,
    /// `verify_secs / generate_secs`, percent.
    pub verify_over_generate_pct: f64,
    /// Seconds verifying the same receipts again, their prompts now in the verifier's
    /// prefix cache (the prefill covers the output only).
    pub verify_warm_secs: f64,
    /// `verify_warm_secs / generate_secs`, percent.
    pub verify_warm_over_generate_pct: f64,
    /// `commitment_secs / (generate_secs - commitment_secs)`, percent.
    pub commitment_overhead_pct: f64,
    /// Commitment bytes per 32 output tokens.
    pub proof_bytes_per_32_tokens: f64,
    /// Whether every answer was accepted.
    pub all_accepted: bool,
}

/// Generates `answers` greedy answers of up to `max_tokens` tokens with `prover`, verifies
/// each with `verifier`, and reports the costs.
pub fn measure(
    prover: &Engine,
    verifier: &Engine,
    answers: usize,
    max_tokens: u32,
) -> Result<ProofCost> {
    let key =
        alloy_signer_local::PrivateKeySigner::from_bytes(&alloy_primitives::B256::repeat_byte(1))
            .map_err(|e| crate::error::AiError::Receipt(e.to_string()))?;
    let params = SamplingParams {
        max_tokens,
        ..SamplingParams::default()
    };
    let mut cost = ProofCost {
        answers,
        output_tokens: 0,
        prompt_tokens: 0,
        generate_secs: 0.0,
        commitment_secs: 0.0,
        verify_secs: 0.0,
        verify_over_generate_pct: 0.0,
        verify_warm_secs: 0.0,
        verify_warm_over_generate_pct: 0.0,
        commitment_overhead_pct: 0.0,
        proof_bytes_per_32_tokens: 0.0,
        all_accepted: true,
    };
    let mut proof_bytes = 0usize;
    for i in 0..answers {
        let messages = vec![ChatMessage::new("user", PROMPTS[i % PROMPTS.len()])];
        let (generation, commitment, recording) =
            generate_timed(prover, &messages, &params, |_| {}, &|| false)?;
        let t = &generation.timings;
        cost.generate_secs += t.prefill_secs + t.decode_secs;
        cost.commitment_secs += recording;
        cost.output_tokens += generation.tokens.len();
        cost.prompt_tokens += generation.prompt_tokens.len();
        proof_bytes += commitment.encode().len();
        let receipt = sign_receipt(
            prover,
            messages,
            &params,
            generation.prompt_tokens.len(),
            Output::from(&generation),
            commitment,
            &key,
        )?;
        verifier.prefix_cache.clear();
        let verdict = verify(verifier, receipt.clone(), &Tolerances::default())?;
        cost.verify_secs += verdict.seconds;
        cost.all_accepted &= verdict.accepted();
        let warm = verify(verifier, receipt, &Tolerances::default())?;
        cost.verify_warm_secs += warm.seconds;
        cost.all_accepted &= warm.accepted();
    }
    cost.verify_over_generate_pct = 100.0 * cost.verify_secs / cost.generate_secs.max(1e-9);
    cost.verify_warm_over_generate_pct =
        100.0 * cost.verify_warm_secs / cost.generate_secs.max(1e-9);
    cost.commitment_overhead_pct =
        100.0 * cost.commitment_secs / (cost.generate_secs - cost.commitment_secs).max(1e-9);
    cost.proof_bytes_per_32_tokens = 32.0 * proof_bytes as f64 / cost.output_tokens.max(1) as f64;
    Ok(cost)
}
