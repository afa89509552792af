//! The proof of inference on the real model: honest receipts verify (generated at one
//! thread count, verified at another), and every kind of cheat in the detection matrix
//! is rejected. The full matrix (200+ trials per adversary, perturbed and cheap models)
//! runs with `cargo run --release -p noesis-ai --example detection`; this is its small
//! CI version.

use alloy_primitives::{B256, keccak256};
use alloy_signer_local::PrivateKeySigner;
use noesis_ai::proof::matrix::{self, Adversary, HonestPath, Setup};
use noesis_ai::proof::receipt::{Output, ReceiptFile};
use noesis_ai::proof::verify::{Tolerances, verify};
use noesis_ai::proof::{self};
use noesis_ai::{ChatMessage, SamplingParams};

mod common;
use common::{adversary, engine, load};

fn key() -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(0x42)).expect("valid key")
}

#[test]
fn cheats_are_rejected_and_honest_receipts_accepted() {
    // Generated at 2 threads, verified at 1; and generated at 1 thread with the prompt
    // fed 5 tokens per forward, verified at 2.
    let verifier = load(1);
    let rerandom = adversary("perturbed-rerandom-L15");
    let norm = adversary("perturbed-norm-1.02-L10");
    let output_norm = adversary("perturbed-norm-1.02-output");
    let q8 = adversary("requant-q8_0");
    let mut batched = load(1);
    batched.prefill_batch = 5;
    let setup = Setup {
        prover: engine(),
        verifier: &verifier,
        honest_paths: vec![HonestPath {
            name: "honest, 1 thread, prompt in pieces of 5".into(),
            prover: &batched,
            verifier: engine(),
        }],
        adversaries: vec![
            (
                "rerandomized blocks".into(),
                Adversary::ModelSwap(&rerandom),
            ),
            ("norm x1.02".into(), Adversary::ModelSwap(&norm)),
            (
                "output norm x1.02".into(),
                Adversary::ModelSwap(&output_norm),
            ),
            ("requantized q8_0".into(), Adversary::ModelSwap(&q8)),
            (
                "cheap decoding (q8_0), honest proof".into(),
                Adversary::CheapDecode(&q8),
            ),
            ("system-prompt".into(), Adversary::SystemPrompt),
            (
                "system-prompt-attested".into(),
                Adversary::SystemPromptAttested,
            ),
            ("edited".into(), Adversary::Edited),
            ("truncated".into(), Adversary::Truncated),
            ("truncated+eos".into(), Adversary::TruncatedEos),
            ("spliced".into(), Adversary::Spliced),
            ("higher-temperature".into(), Adversary::HigherTemperature),
            ("copied-proof".into(), Adversary::CopiedProof),
            (
                "copied-proof-same-length".into(),
                Adversary::CopiedProofSameLength,
            ),
        ],
        tolerances: Tolerances::default(),
        key: key(),
    };
    let cases = matrix::cases(4);
    let rows = matrix::run(&setup, &cases, |_, _| {}).expect("matrix runs");
    let table = matrix::markdown(&rows);
    eprintln!("{table}");
    for honest in &rows[..2] {
        assert_eq!(honest.trials, cases.len());
        assert_eq!(honest.rejected, 0, "honest receipts rejected:\n{table}");
    }
    for row in &rows[2..] {
        assert!(row.trials > 0, "{} never applied:\n{table}", row.name);
        assert_eq!(row.missed, 0, "{} got through:\n{table}", row.name);
    }
    // A swapped model is caught even where its text equals the real model's.
    for row in &rows[2..6] {
        assert_eq!(row.rejected, row.trials, "{}:\n{table}", row.name);
    }
    // A proof of the right length from another context fails on the commitment itself.
    let donor = rows.last().unwrap();
    assert_eq!(donor.rejected, donor.trials, "{table}");
    assert_eq!(
        donor.reasons.keys().collect::<Vec<_>>(),
        ["commitment_mismatch"],
        "{table}"
    );
}

#[test]
fn receipts_survive_json_and_name_what_is_wrong() {
    let e = engine();
    let messages = vec![ChatMessage::new("user", "Name a primary color.")];
    let params = SamplingParams {
        temperature: 0.7,
        top_p: 0.9,
        seed: 11,
        max_tokens: 12,
        ..SamplingParams::default()
    };
    let (receipt, generation) = signed(e, messages, &params);
    // 257 bytes per 32 tokens at most: one chunk here.
    let proof_bytes = (receipt.proof.len() - 2) / 2;
    assert!(proof_bytes <= 3 + 257, "{proof_bytes}");
    let json = serde_json::to_vec(&receipt).unwrap();
    let parsed = ReceiptFile::parse(&json).unwrap();
    let tolerances = Tolerances::default();
    let verdict = verify(e, parsed.clone(), &tolerances).unwrap();
    assert!(verdict.accepted(), "{verdict:?}");
    assert_eq!(verdict.checked_tokens, generation.tokens.len());

    // The request's seed changed: the receipt no longer matches its hash.
    let mut t = parsed.clone();
    t.request.seed += 1;
    let v = verify(e, t, &tolerances).unwrap();
    assert_eq!(v.reason, Some("request_hash_mismatch"));

    // A consistent receipt for another model file.
    let mut other = parsed.clone();
    other.receipt.model = B256::repeat_byte(3);
    let v = verify(e, other, &tolerances).unwrap();
    assert_eq!(v.reason, Some("bad_signature"));

    // Text edited and re-hashed by someone without the key.
    let mut t = parsed;
    t.output.text.push_str(" Also green.");
    t.receipt.output_text = keccak256(t.output.text.as_bytes());
    let v = verify(e, t, &tolerances).unwrap();
    assert_eq!(v.reason, Some("bad_signature"));
}

#[test]
fn a_receipt_for_another_model_is_refused_before_any_compute() {
    let e = engine();
    let messages = vec![ChatMessage::new("user", "Hi")];
    let params = SamplingParams {
        max_tokens: 4,
        ..SamplingParams::default()
    };
    let prompt = e
        .prompt_tokens(&noesis_ai::Prompt::Chat(messages.clone()))
        .unwrap();
    let tokens = proof::completion_tokens(e, "Hello", params.max_tokens).unwrap();
    let commitment = proof::attest(e, &prompt, &tokens).unwrap();
    let input = proof::receipt::ReceiptInput {
        model: B256::repeat_byte(9),
        tokenizer: e.info.tokenizer_sha256.parse().unwrap(),
        request: proof::receipt::Request::new(messages, &params),
        output: Output {
            text: "Hello".into(),
            tokens,
        },
        proof: commitment,
        prompt_tokens: prompt.len() as u32,
    };
    let receipt = proof::receipt::sign(input, &key()).unwrap();
    let v = verify(e, receipt, &Tolerances::default()).unwrap();
    assert_eq!(v.reason, Some("model_mismatch"));
    assert_eq!(v.checked_tokens, 0);
}

/// A verification that reuses a cached prompt prefix sees exactly what a cold one sees.
#[test]
fn the_prefix_cache_changes_no_verdict_and_no_state() {
    let e = load(2);
    let system = ChatMessage::new(
        "system",
        "You are a careful assistant. Answer in one short sentence and never invent facts.",
    );
    let receipt_for = |question: &str| {
        let messages = vec![system.clone(), ChatMessage::new("user", question)];
        let params = SamplingParams {
            temperature: 0.8,
            seed: 5,
            max_tokens: 24,
            ..SamplingParams::default()
        };
        let (receipt, generation) = signed(&e, messages, &params);
        let ids = generation.ids();
        (receipt, generation.prompt_tokens, ids)
    };
    let (a, a_prompt, a_output) = receipt_for("What is the boiling point of water at sea level?");
    let (b, b_prompt, b_output) = receipt_for("Name the largest planet of the solar system.");
    let shared = a_prompt
        .iter()
        .zip(&b_prompt)
        .take_while(|(x, y)| x == y)
        .count();
    assert!(shared >= noesis_ai::prefix::MIN_REUSE, "{shared}");
    let tolerances = Tolerances::default();
    let stats = |receipt: &ReceiptFile| {
        let v = verify(&e, receipt.clone(), &tolerances).unwrap();
        assert!(v.accepted(), "{v:?}");
        serde_json::to_string(&v.stats).unwrap()
    };

    // Cold, then the same receipt again (whole prompt cached), then another question
    // after the same system prompt (the shared part cached).
    e.prefix_cache.clear();
    let before = e.prefix_cache.stats();
    let cold_a = stats(&a);
    assert_eq!(stats(&a), cold_a);
    let warm_b = stats(&b);
    let after = e.prefix_cache.stats();
    assert_eq!(after.hits - before.hits, 2);
    assert_eq!(
        after.reused_positions - before.reused_positions,
        (a_prompt.len() - 1 + shared) as u64
    );
    e.prefix_cache.clear();
    assert_eq!(stats(&b), warm_b);

    // The committed states themselves, bit for bit.
    e.prefix_cache.clear();
    let cold = proof::attest(&e, &b_prompt, &b_output).unwrap().encode();
    let _ = proof::attest(&e, &a_prompt, &a_output).unwrap();
    assert_eq!(
        proof::attest(&e, &b_prompt, &b_output).unwrap().encode(),
        cold
    );
    assert!(e.prefix_cache.stats().entries >= 1);

    // A budget for one prompt keeps one.
    let one = noesis_ai::prefix::PrefixCache::new(
        e.model
            .kv_bytes(a_prompt.len())
            .max(e.model.kv_bytes(b_prompt.len())),
    );
    one.insert(&e.model, &a_prompt, &prefilled(&e, &a_prompt))
        .unwrap();
    one.insert(&e.model, &b_prompt, &prefilled(&e, &b_prompt))
        .unwrap();
    assert_eq!(one.stats().entries, 1);
    assert_eq!(
        one.lookup(&b_prompt).map(|r| r.positions),
        Some(b_prompt.len())
    );
}

/// Generates an answer to `messages` and signs its receipt with [`key`].
fn signed(
    e: &noesis_ai::Engine,
    messages: Vec<ChatMessage>,
    params: &SamplingParams,
) -> (ReceiptFile, noesis_ai::Generation) {
    let (generation, commitment) = proof::generate(e, &messages, params, |_| {}).unwrap();
    let receipt = proof::sign_receipt(
        e,
        messages,
        params,
        generation.prompt_tokens.len(),
        Output::from(&generation),
        commitment,
        &key(),
    )
    .unwrap();
    (receipt, generation)
}

/// A session holding exactly `tokens`' keys and values.
fn prefilled(e: &noesis_ai::Engine, tokens: &[u32]) -> noesis_ai::model::Session {
    let mut s = e.model.session(tokens.len()).unwrap();
    e.model
        .forward(&mut s, tokens, noesis_ai::model::Logits::None)
        .unwrap();
    s
}
