//! Tests on the real SmolLM2-135M-Instruct Q4_1 model. The model must be installed: in
//! `$NOESIS_MODEL_DIR`, else in the default data dir's models folder
//! (`~/.noesis/dev/models`); `noesis model fetch` puts it there (`scripts/test.sh` runs it
//! first). A missing model fails these tests, it does not skip them.

use noesis_ai::models::KNOWN_MODELS;
use noesis_ai::sampling::argmax;
use noesis_ai::{
    AiError, ChatMessage, FinishReason, Forward, Logits, Observer, Prompt, SamplingParams,
};

mod common;
use common::engine;

fn chat(user: &str) -> Prompt {
    Prompt::Chat(vec![ChatMessage::new("user", user)])
}

fn greedy(max_tokens: u32) -> SamplingParams {
    SamplingParams {
        max_tokens,
        ..SamplingParams::default()
    }
}

#[test]
fn loads_with_the_expected_hyperparameters() {
    let e = engine();
    let c = &e.model.config;
    assert_eq!(
        (c.n_layer, c.n_embd, c.n_head, c.n_kv_head, c.head_dim),
        (30, 576, 9, 3, 64)
    );
    assert_eq!(
        (c.n_ff, c.context_length, c.vocab_size),
        (1536, 8192, 49152)
    );
    assert_eq!(c.rope_freq_base, 100_000.0);
    assert!(e.model.tied_embeddings);
    assert_eq!(e.info.architecture, "llama");
    assert_eq!(e.info.sha256, KNOWN_MODELS[0].sha256);
    assert_eq!(e.tokenizer.eos, Some(2));
    assert!(!e.tokenizer.add_bos);
}

#[test]
fn chat_template_renders_chatml_and_special_tokens_encode_to_single_ids() {
    let e = engine();
    let text = e
        .chat_prompt(&[
            ChatMessage::new("system", "You are terse."),
            ChatMessage::new("user", "Hi!"),
        ])
        .unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
    );
    // Without a system message the template supplies its own.
    let text = e.chat_prompt(&[ChatMessage::new("user", "Hi!")]).unwrap();
    assert!(text.starts_with(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi!"
    ));
    let ids = e
        .tokenizer
        .encode("<|im_start|>user\nHi!<|im_end|>", false)
        .unwrap();
    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&2));
    for text in [
        "Hello, world!",
        "  leading spaces and\ttabs\n\n\nnewlines",
        "naïve café — 東京 🦙🦙",
        "fn main() { println!(\"{}\", 1 + 2); }",
        "1234567890 3.14159",
        "<|im_start|>assistant\n<|endoftext|>",
    ] {
        let ids = e.tokenizer.encode(text, false).unwrap();
        assert_eq!(e.tokenizer.decode(&ids), text);
    }
    // Digits are split one by one (the smollm pre-tokenizer).
    assert_eq!(e.tokenizer.encode("2024", false).unwrap().len(), 4);
}

/// With a plain system message the model answers this in English. (With the template's
/// default SmolLM system message this Q4_1 model answers in French; llama.cpp does too.)
#[test]
fn greedy_answer_to_a_simple_question_is_sensible() {
    let e = engine();
    let prompt = Prompt::Chat(vec![
        ChatMessage::new("system", "You are a helpful assistant."),
        ChatMessage::new("user", "What is the capital of France?"),
    ]);
    let mut streamed = String::new();
    let g = e
        .generate(&prompt, &greedy(48), |p| streamed.push_str(p))
        .unwrap();
    assert_eq!(streamed, g.text);
    assert_eq!(g.text, "The capital of France is Paris.");
    assert_eq!(g.finish, FinishReason::Eos);
    assert_eq!(g.tokens.last().map(|t| t.id), Some(2));
    assert_eq!(g.tokens[0].index, 0);
    assert_eq!(g.tokens[0].position as usize, g.prompt_tokens.len());
    // Same request, same tokens.
    let again = e.generate(&prompt, &greedy(48), |_| {}).unwrap();
    assert_eq!(again.ids(), g.ids());
}

#[test]
fn seeds_decide_sampled_tokens() {
    let e = engine();
    let params = |seed| SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        seed,
        max_tokens: 24,
        stop: Vec::new(),
    };
    let prompt = chat("Write a short poem about the sea.");
    let a = e.generate(&prompt, &params(7), |_| {}).unwrap();
    let b = e.generate(&prompt, &params(7), |_| {}).unwrap();
    assert_eq!(a.ids(), b.ids());
    assert_eq!(a.text, b.text);
    let c = e.generate(&prompt, &params(8), |_| {}).unwrap();
    let d = e.generate(&prompt, &params(9), |_| {}).unwrap();
    assert!(
        a.ids() != c.ids() || a.ids() != d.ids(),
        "three seeds gave the same 24 tokens"
    );
}

#[test]
fn stop_sequences_and_max_tokens() {
    let e = engine();
    let full = e
        .generate(
            &chat("Count from 1 to 20, separated by commas."),
            &greedy(40),
            |_| {},
        )
        .unwrap();
    assert!(full.text.contains('5'), "{:?}", full.text);
    let mut params = greedy(40);
    params.stop = vec!["5".into()];
    let stopped = e
        .generate(
            &chat("Count from 1 to 20, separated by commas."),
            &params,
            |_| {},
        )
        .unwrap();
    assert_eq!(stopped.finish, FinishReason::Stop);
    assert!(!stopped.text.contains('5'));
    assert!(full.text.starts_with(&stopped.text));
    let short = e
        .generate(&chat("Tell me a story."), &greedy(3), |_| {})
        .unwrap();
    assert_eq!(short.tokens.len(), 3);
    assert_eq!(short.finish, FinishReason::Length);
}

#[derive(Default)]
struct Forwards(Vec<Forward>);
impl Observer for Forwards {
    fn forward(&mut self, f: &Forward) {
        self.0.push(f.clone());
    }
}

#[test]
fn one_prefill_over_prompt_and_output_reproduces_incremental_decoding() {
    let e = engine();
    let mut seen = Forwards::default();
    let g = e
        .generate_observed(
            &chat("Name three colors of the rainbow."),
            &greedy(24),
            &mut seen,
        )
        .unwrap();
    let n_prompt = g.prompt_tokens.len();
    let out = g.ids();
    // Teacher forcing: prompt + every output token but the last (never fed back).
    let mut all = g.prompt_tokens.clone();
    all.extend_from_slice(&out[..out.len() - 1]);
    let pre = e.prefill(&all, Logits::All).unwrap();
    assert_eq!(pre.n_tokens, all.len());
    for (i, &id) in out.iter().enumerate() {
        let logits = pre.logits(n_prompt - 1 + i).unwrap();
        assert_eq!(argmax(logits), Some(id), "output token {i}");
    }
    // Hidden states: the generation's forwards are the prefill (prompt positions) and
    // then one position per fed-back token.
    let mut max_diff = 0f32;
    let mut position = 0;
    for f in &seen.0 {
        for row in 0..f.n_tokens {
            let a = f.hidden(row).unwrap();
            let b = pre.hidden(position).unwrap();
            for (x, y) in a.iter().zip(b) {
                max_diff = max_diff.max((x - y).abs());
            }
            position += 1;
        }
    }
    assert_eq!(position, all.len());
    // Every output is computed in the same order whatever the batch, so decoding and
    // the verifier's prefill agree exactly.
    assert!(max_diff == 0.0, "hidden states differ by {max_diff}");
    eprintln!("max |hidden(incremental) - hidden(prefill)| = {max_diff:e}");
}

/// The reduction order never depends on the number of threads: one thread and two give
/// the same bits (hidden states and logits).
#[test]
fn hidden_states_do_not_depend_on_the_thread_count() {
    let two = engine();
    let one = common::load(1);
    let tokens = two
        .prompt_tokens(&chat("Explain in two sentences why the sky is blue."))
        .unwrap();
    let a = two.prefill(&tokens, Logits::All).unwrap();
    let b = one.prefill(&tokens, Logits::All).unwrap();
    assert!(
        a.hidden == b.hidden,
        "hidden states differ between 1 and 2 threads"
    );
    assert!(
        a.logits == b.logits,
        "logits differ between 1 and 2 threads"
    );
}

#[test]
fn the_context_length_is_a_hard_cap() {
    let e = engine();
    let context = e.model.config.context_length;
    let err = e
        .generate(
            &chat("Hi"),
            &SamplingParams {
                max_tokens: context as u32,
                ..SamplingParams::default()
            },
            |_| {},
        )
        .unwrap_err();
    match &err {
        AiError::ContextOverflow {
            prompt,
            max_tokens,
            context: c,
        } => {
            assert!(*prompt > 0);
            assert_eq!((*max_tokens, *c), (context, context));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("exceed the context length"),
        "{err}"
    );
    let too_long = vec![42u32; context + 1];
    assert!(matches!(
        e.prefill(&too_long, Logits::None),
        Err(AiError::ContextOverflow { .. })
    ));
    // Out-of-vocabulary ids are refused, not indexed.
    assert!(e.prefill(&[49_152], Logits::Last).is_err());
}
