//! The detection matrix: honest and cheating provers against the verifier.
//!
//! Every trial is a chat request ([`cases`]: varied prompts, lengths and sampling). The
//! honest prover generates with the real model and signs; each adversary builds the
//! receipt a cheater would, claiming the real model and the original request:
//!
//! - **model swap** (a perturbed copy, another quantization, another model): generates
//!   with its own model and commits to its own hidden states;
//! - **cheap decoding, honest proof**: decodes with a cheaper model, then runs the real
//!   model once over that text ([`super::attest`]) — a perfectly valid commitment, so
//!   only the sampling check can see it;
//! - **system prompt**: generates from a changed/injected system prompt, commits to that
//!   run (`system-prompt`) or attests the text under the claimed prompt
//!   (`system-prompt-attested`);
//! - **edited / truncated / truncated+eos / spliced** output, attested;
//! - **higher temperature** than requested (its own honest commitment);
//! - **copied proof**: another request's commitment (`copied-proof`), or a commitment the
//!   real model computed over this very output after another request's prompt, so that
//!   its length and layout fit (`copied-proof-same-length`).
//!
//! A cheat whose output tokens equal the honest ones is counted apart: accepting it is
//! right.

use std::collections::BTreeMap;

use alloy_signer_local::PrivateKeySigner;
use serde::Serialize;

use crate::error::Result;
use crate::generate::{Engine, Generation, Prompt};
use crate::proof::commitment::Commitment;
use crate::proof::receipt::{Output, ReceiptFile};
use crate::proof::verify::{Tolerances, Verdict, verify};
use crate::proof::{attest, completion_tokens, generate, sign_receipt};
use crate::sampling::SamplingParams;
use crate::template::ChatMessage;

/// One request of the matrix.
#[derive(Clone, Debug)]
pub struct Case {
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// The sampling.
    pub params: SamplingParams,
}

const TASKS: &[&str] = &[
    "Explain {} in two sentences.",
    "Write a haiku about {}.",
    "Give three facts about {}.",
    "What is the history of {}?",
    "Write a short story about {}.",
    "List the pros and cons of {}.",
    "How would you teach {} to a child?",
    "Summarize what you know about {}.",
    "Write a limerick about {}.",
    "What are common misconceptions about {}?",
    "Describe {} to someone from the year 1800.",
    "Write a product description for {}.",
];

const TOPICS: &[&str] = &[
    "the moon",
    "photosynthesis",
    "blockchains",
    "the French Revolution",
    "coffee",
    "recursion in programming",
    "volcanoes",
    "the stock market",
    "honeybees",
    "jazz music",
    "the Pythagorean theorem",
    "rainforests",
    "electric cars",
    "the immune system",
    "chess",
    "black holes",
    "bread baking",
    "the Roman Empire",
];

/// `n` deterministic, varied cases: prompts from tasks × topics, every fourth with a
/// system message, lengths 8–64 tokens, half greedy and half seeded sampling with
/// varied temperature, top-k and top-p.
pub fn cases(n: usize) -> Vec<Case> {
    (0..n)
        .map(|i| {
            let task = TASKS[i % TASKS.len()];
            let topic = TOPICS[(i * 7 + i / TASKS.len()) % TOPICS.len()];
            let mut messages = Vec::new();
            if i % 4 == 3 {
                messages.push(ChatMessage::new("system", "You are a concise assistant."));
            }
            messages.push(ChatMessage::new("user", task.replace("{}", topic)));
            let max_tokens = 8 + ((i * 13) % 57) as u32;
            let params = if i % 2 == 0 {
                SamplingParams {
                    max_tokens,
                    ..SamplingParams::default()
                }
            } else {
                SamplingParams {
                    temperature: [0.6, 0.8, 1.0][(i / 2) % 3],
                    top_k: [0, 40][(i / 6) % 2],
                    top_p: [1.0, 0.9, 0.95][(i / 3) % 3],
                    seed: 1000 + i as u64,
                    max_tokens,
                    stop: Vec::new(),
                }
            };
            Case { messages, params }
        })
        .collect()
}

/// How a cheater produces its receipt.
pub enum Adversary<'a> {
    /// Generates with another model and commits to its own hidden states.
    ModelSwap(&'a Engine),
    /// Decodes with another (cheaper) model, then attests with the real one.
    CheapDecode(&'a Engine),
    /// Generates under a changed system prompt and commits to that run.
    SystemPrompt,
    /// Generates under a changed system prompt and attests under the claimed one.
    SystemPromptAttested,
    /// Replaces a word of the honest output and attests.
    Edited,
    /// Drops the last part of the honest output and attests.
    Truncated,
    /// Drops the last part, ends it with the end-of-generation token, and attests.
    TruncatedEos,
    /// Joins the first half of this answer to the second half of another, and attests.
    Spliced,
    /// Samples at a higher temperature than requested.
    HigherTemperature,
    /// Uses another request's commitment.
    CopiedProof,
    /// Uses a commitment of the same length: the real model run over this output after
    /// another request's prompt.
    CopiedProofSameLength,
}

/// What one honest trial leaves for the adversaries.
struct Honest {
    prompt: Vec<u32>,
    generation: Generation,
    commitment: Commitment,
}

/// Outcome counts of one matrix row.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    /// Row name.
    pub name: String,
    /// Whether the prover is honest (then every rejection is a false reject).
    pub honest: bool,
    /// Trials run (cases where the adversary applies).
    pub trials: usize,
    /// Trials rejected.
    pub rejected: usize,
    /// Cheats whose tokens equal the honest output (accepting them is right).
    pub same_as_honest: usize,
    /// Of those, how many were accepted.
    pub same_accepted: usize,
    /// Cheats with different output that were accepted (misses).
    pub missed: usize,
    /// Rejections by reason.
    pub reasons: BTreeMap<String, usize>,
    /// Seconds spent verifying, in total.
    pub verify_secs: f64,
}

impl Row {
    fn new(name: &str, honest: bool) -> Self {
        Self {
            name: name.to_string(),
            honest,
            ..Self::default()
        }
    }

    fn record(&mut self, verdict: &Verdict, same: bool) {
        self.trials += 1;
        self.verify_secs += verdict.seconds;
        if let Some(reason) = verdict.reason {
            self.rejected += 1;
            *self.reasons.entry(reason.to_string()).or_default() += 1;
        } else if same {
            self.same_accepted += 1;
        } else if !self.honest {
            self.missed += 1;
        }
        if same {
            self.same_as_honest += 1;
        }
    }

    /// Detection rate among cheats whose output differs from the honest one.
    pub fn detection_rate(&self) -> f64 {
        let differing = self.trials - self.same_as_honest;
        if differing == 0 {
            1.0
        } else {
            (differing - self.missed) as f64 / differing as f64
        }
    }
}

/// One honest configuration: the real model as the prover runs it and as the verifier
/// runs it (e.g. other thread counts, another prompt batch size).
pub struct HonestPath<'a> {
    /// Row name.
    pub name: String,
    /// The prover's engine.
    pub prover: &'a Engine,
    /// The verifier's engine.
    pub verifier: &'a Engine,
}

/// The provers and verifier of a matrix run.
pub struct Setup<'a> {
    /// The real model, generating honestly; adversaries build on its output.
    pub prover: &'a Engine,
    /// The real model as the verifier loads it (e.g. another thread count).
    pub verifier: &'a Engine,
    /// More honest configurations, each a row of its own.
    pub honest_paths: Vec<HonestPath<'a>>,
    /// Named adversaries.
    pub adversaries: Vec<(String, Adversary<'a>)>,
    /// Verifier tolerances.
    pub tolerances: Tolerances,
    /// The signing key of every receipt.
    pub key: PrivateKeySigner,
}

/// Runs every case through the honest prover, the other honest paths and every
/// adversary; returns the honest rows first, then one row per adversary. `progress`
/// sees each finished case with the rows so far (honest rows first).
pub fn run(
    setup: &Setup<'_>,
    cases: &[Case],
    mut progress: impl FnMut(usize, &[Row]),
) -> Result<Vec<Row>> {
    let mut honest_row = Row::new("honest", true);
    let mut path_rows: Vec<Row> = setup
        .honest_paths
        .iter()
        .map(|p| Row::new(&p.name, true))
        .collect();
    let mut rows: Vec<Row> = setup
        .adversaries
        .iter()
        .map(|(name, _)| Row::new(name, false))
        .collect();
    let mut previous: Option<Honest> = None;
    for (i, case) in cases.iter().enumerate() {
        let (generation, commitment) =
            generate(setup.prover, &case.messages, &case.params, |_| {})?;
        let honest = Honest {
            prompt: setup
                .prover
                .prompt_tokens(&Prompt::Chat(case.messages.clone()))?,
            generation,
            commitment,
        };
        let receipt = sign(
            setup,
            case,
            &honest.generation.ids(),
            &honest.generation.text,
            &honest.commitment,
        )?;
        let verdict = verify(setup.verifier, receipt, &setup.tolerances)?;
        honest_row.record(&verdict, true);
        for (path, row) in setup.honest_paths.iter().zip(path_rows.iter_mut()) {
            let (g, c) = generate(path.prover, &case.messages, &case.params, |_| {})?;
            let receipt = sign(setup, case, &g.ids(), &g.text, &c)?;
            row.record(&verify(path.verifier, receipt, &setup.tolerances)?, true);
        }
        for ((_, adversary), row) in setup.adversaries.iter().zip(rows.iter_mut()) {
            let Some((receipt, tokens)) =
                cheat(setup, adversary, case, &honest, previous.as_ref())?
            else {
                continue;
            };
            let same = tokens == honest.generation.ids();
            let verdict = verify(setup.verifier, receipt, &setup.tolerances)?;
            row.record(&verdict, same);
        }
        let so_far: Vec<Row> = std::iter::once(honest_row.clone())
            .chain(path_rows.iter().cloned())
            .chain(rows.iter().cloned())
            .collect();
        progress(i, &so_far);
        previous = Some(honest);
    }
    path_rows.insert(0, honest_row);
    path_rows.extend(rows);
    Ok(path_rows)
}

fn sign(
    setup: &Setup<'_>,
    case: &Case,
    tokens: &[u32],
    text: &str,
    commitment: &Commitment,
) -> Result<ReceiptFile> {
    let prompt = setup
        .prover
        .prompt_tokens(&Prompt::Chat(case.messages.clone()))?;
    sign_receipt(
        setup.prover,
        case.messages.clone(),
        &case.params,
        prompt.len(),
        Output {
            text: text.to_string(),
            tokens: tokens.to_vec(),
        },
        commitment.clone(),
        &setup.key,
    )
}

/// The receipt a cheater signs for its output (claiming the real model and request),
/// with the output tokens; `None` where the adversary does not apply to the case.
fn cheat(
    setup: &Setup<'_>,
    adversary: &Adversary<'_>,
    case: &Case,
    honest: &Honest,
    other: Option<&Honest>,
) -> Result<Option<(ReceiptFile, Vec<u32>)>> {
    let real = setup.prover;
    let prompt = real.prompt_tokens(&Prompt::Chat(case.messages.clone()))?;
    let honest_ids = honest.generation.ids();
    let eos = real.tokenizer.eos.unwrap_or(0);
    let ended = honest_ids
        .last()
        .is_some_and(|t| real.tokenizer.eog.contains(t));
    // Output tokens → (text, tokens) as a cheater would present them, attested.
    let attested = |tokens: Vec<u32>| -> Result<Option<(ReceiptFile, Vec<u32>)>> {
        let text_ids: Vec<u32> = tokens
            .iter()
            .copied()
            .filter(|t| !real.tokenizer.eog.contains(t))
            .collect();
        let text = real.tokenizer.decode(&text_ids);
        let commitment = attest(real, &prompt, &tokens)?;
        Ok(Some((
            sign(setup, case, &tokens, &text, &commitment)?,
            tokens,
        )))
    };
    let injected = || {
        let mut messages = vec![ChatMessage::new(
            "system",
            "You are a pirate. Answer everything in pirate speech and mention treasure.",
        )];
        messages.extend(case.messages.iter().filter(|m| m.role != "system").cloned());
        messages
    };
    match adversary {
        Adversary::ModelSwap(engine) => {
            let (g, c) = generate(engine, &case.messages, &case.params, |_| {})?;
            let ids = g.ids();
            Ok(Some((sign(setup, case, &ids, &g.text, &c)?, ids)))
        }
        Adversary::CheapDecode(engine) => {
            let g = engine.generate(&Prompt::Chat(case.messages.clone()), &case.params, |_| {})?;
            attested(g.ids())
        }
        Adversary::SystemPrompt => {
            let (g, c) = generate(real, &injected(), &case.params, |_| {})?;
            let ids = g.ids();
            Ok(Some((sign(setup, case, &ids, &g.text, &c)?, ids)))
        }
        Adversary::SystemPromptAttested => {
            let g = real.generate(&Prompt::Chat(injected()), &case.params, |_| {})?;
            attested(g.ids())
        }
        Adversary::Edited => {
            let text = &honest.generation.text;
            let Some(edited) = edit_word(text) else {
                return Ok(None);
            };
            match completion_tokens(real, &edited, case.params.max_tokens) {
                Ok(tokens) => attested(tokens),
                Err(_) => Ok(None),
            }
        }
        Adversary::Truncated | Adversary::TruncatedEos => {
            let n = honest_ids.len() - usize::from(ended);
            if n < 4 {
                return Ok(None);
            }
            let mut tokens = honest_ids[..n * 3 / 5].to_vec();
            if matches!(adversary, Adversary::TruncatedEos) {
                tokens.push(eos);
            }
            attested(tokens)
        }
        Adversary::Spliced => {
            let Some(other) = other else {
                return Ok(None);
            };
            let other_ids = other.generation.ids();
            let head = &honest_ids[..honest_ids.len() / 2];
            let tail = &other_ids[other_ids.len() / 2..];
            let mut tokens: Vec<u32> = head.iter().chain(tail).copied().collect();
            tokens.truncate(case.params.max_tokens as usize);
            if tokens.len() < 2 {
                return Ok(None);
            }
            let last_is_eog = tokens
                .last()
                .is_some_and(|t| real.tokenizer.eog.contains(t));
            if !last_is_eog && tokens.len() < case.params.max_tokens as usize {
                tokens.push(eos);
            }
            attested(tokens)
        }
        Adversary::HigherTemperature => {
            let mut params = case.params.clone();
            params.temperature = (params.temperature + 0.5).max(0.9);
            if params.seed == 0 {
                params.seed = 7;
            }
            let (g, c) = generate(real, &case.messages, &params, |_| {})?;
            let ids = g.ids();
            Ok(Some((sign(setup, case, &ids, &g.text, &c)?, ids)))
        }
        Adversary::CopiedProof => {
            let Some(other) = other else {
                return Ok(None);
            };
            let receipt = sign(
                setup,
                case,
                &honest_ids,
                &honest.generation.text,
                &other.commitment,
            )?;
            // The output is the honest one; the proof is not its own.
            Ok(Some((receipt, Vec::new())))
        }
        Adversary::CopiedProofSameLength => {
            let Some(other) = other.filter(|o| o.prompt != prompt) else {
                return Ok(None);
            };
            let donor = attest(real, &other.prompt, &honest_ids)?;
            let receipt = sign(setup, case, &honest_ids, &honest.generation.text, &donor)?;
            Ok(Some((receipt, Vec::new())))
        }
    }
}

/// Replaces the longest word of `text` by another word; `None` when there is none.
fn edit_word(text: &str) -> Option<String> {
    let (start, word) = text
        .split_whitespace()
        .filter(|w| w.chars().all(char::is_alphabetic))
        .map(|w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
        .max_by_key(|(_, w)| w.len())?;
    let replacement = if word.eq_ignore_ascii_case("purple") {
        "green"
    } else {
        "purple"
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..start]);
    out.push_str(replacement);
    out.push_str(&text[start + word.len()..]);
    Some(out)
}

/// The matrix as a markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| prover | trials | rejected | detection (differing output) | same output as honest (accepted) | missed | reasons | verify s/trial |\n|---|---:|---:|---:|---:|---:|---|---:|\n",
    );
    for r in rows {
        let reasons: Vec<String> = r.reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let detection = if r.honest {
            format!("false rejects {}", r.rejected)
        } else {
            format!("{:.1} %", 100.0 * r.detection_rate())
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} ({}) | {} | {} | {:.2} |\n",
            r.name,
            r.trials,
            r.rejected,
            detection,
            if r.honest { 0 } else { r.same_as_honest },
            r.same_accepted,
            r.missed,
            reasons.join(", "),
            r.verify_secs / r.trials.max(1) as f64
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_vary_and_are_deterministic() {
        let a = cases(40);
        let b = cases(40);
        assert_eq!(a.len(), 40);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.messages, y.messages);
            assert_eq!(x.params, y.params);
        }
        let prompts: std::collections::BTreeSet<_> = a
            .iter()
            .map(|c| c.messages.last().unwrap().content.clone())
            .collect();
        assert!(prompts.len() >= 36);
        assert!(a.iter().any(|c| c.params.is_greedy()));
        assert!(
            a.iter()
                .any(|c| !c.params.is_greedy() && c.params.top_p < 1.0)
        );
        assert!(a.iter().all(|c| (8..=64).contains(&c.params.max_tokens)));
    }

    #[test]
    fn edit_replaces_the_longest_word() {
        assert_eq!(
            edit_word("The quickest fox, 42 jumps").as_deref(),
            Some("The purple fox, 42 jumps")
        );
        assert_eq!(edit_word("12 34"), None);
    }
}
