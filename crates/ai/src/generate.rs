//! Loading a model file and generating text: prompt → tokens → prefill → decode loop with
//! sampling, stop sequences, streaming and a record of every token; and a single prefill
//! over given tokens for verification.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::gguf_file::Value;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{AiError, Result};
use crate::gguf::Gguf;
use crate::model::{Forward, Logits, Model};
use crate::sampling::{self, SamplingParams};
use crate::template::{ChatMessage, ChatTemplate};
use crate::tokenizer::{StreamDecoder, Tokenizer};

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Threads for the forward pass (results do not depend on it). Weight types without a
    /// native kernel use candle's process-wide pool instead, see
    /// [`crate::model::matmul_threads`].
    pub threads: usize,
    /// When set, the file's sha256 (lowercase hex) must equal this or loading fails.
    pub expected_sha256: Option<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            expected_sha256: None,
        }
    }
}

/// Facts about the loaded file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The file.
    pub path: PathBuf,
    /// Its sha256, lowercase hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// `general.architecture`.
    pub architecture: String,
    /// `general.name`, when present.
    pub name: Option<String>,
    /// sha256 of the tokenizer and chat template metadata
    /// ([`crate::proof::tokenizer_digest`]), lowercase hex.
    pub tokenizer_sha256: String,
    /// Seconds spent loading (parse, weights, tokenizer, hash).
    pub load_secs: f64,
}

/// A model ready to run: weights, tokenizer and chat template from one GGUF.
#[derive(Debug)]
pub struct Engine {
    /// The network.
    pub model: Model,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The chat template, when the file has one.
    pub template: Option<ChatTemplate>,
    /// The file.
    pub info: ModelInfo,
    /// Most prompt tokens per forward during generation (the prompt is fed in pieces of
    /// this size; results do not depend on it). Default [`crate::model::UBATCH`].
    pub prefill_batch: usize,
    /// Keys and values of prompts verified recently, reused by the next verification of
    /// a prompt that starts the same way.
    pub prefix_cache: crate::prefix::PrefixCache,
}

/// What to generate from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Prompt {
    /// A conversation, rendered with the model's chat template (ending with the
    /// assistant's turn).
    Chat(Vec<ChatMessage>),
    /// Text used as is (special tokens in it are parsed; BOS added if the model wants it).
    Text(String),
    /// Token ids used as is.
    Tokens(Vec<u32>),
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model produced an end-of-generation token.
    Eos,
    /// The output reached a stop sequence.
    Stop,
    /// `max_tokens` were generated.
    Length,
}

/// The record of one generated token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedToken {
    /// Output index (0 for the first generated token): the `index` of its uniform draw.
    pub index: u32,
    /// Position in the sequence (prompt tokens come first).
    pub position: u32,
    /// The token id.
    pub id: u32,
}

/// Seconds and token counts of a generation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Prompt tokens run in the prefill.
    pub prefill_tokens: usize,
    /// Seconds of the prefill.
    pub prefill_secs: f64,
    /// Tokens run one by one after the prefill.
    pub decode_tokens: usize,
    /// Seconds of the decode steps (forward and sampling).
    pub decode_secs: f64,
}

impl Timings {
    /// Prompt tokens per second.
    pub fn prefill_tps(&self) -> f64 {
        rate(self.prefill_tokens, self.prefill_secs)
    }
    /// Generated tokens per second (the first one, sampled from the prefill, not
    /// counted).
    pub fn decode_tps(&self) -> f64 {
        rate(self.decode_tokens, self.decode_secs)
    }
}

fn rate(n: usize, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// The result of [`Engine::generate`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Generation {
    /// The prompt's tokens, as run.
    pub prompt_tokens: Vec<u32>,
    /// Every generated token, the end-of-generation one included.
    pub tokens: Vec<GeneratedToken>,
    /// The output text (without an end-of-generation token or a stop sequence).
    pub text: String,
    /// Why it ended.
    pub finish: FinishReason,
    /// The sampling parameters every token was drawn with.
    pub params: SamplingParams,
    /// Timings.
    pub timings: Timings,
}

impl Generation {
    /// The generated ids.
    pub fn ids(&self) -> Vec<u32> {
        self.tokens.iter().map(|t| t.id).collect()
    }
}

/// Sees a generation as it happens.
pub trait Observer {
    /// A piece of output text, final (never retracted).
    fn text(&mut self, _piece: &str) {}
    /// Every forward that yields logits: the prefill (its last piece when the prompt is
    /// fed in pieces, see [`Engine::prefill_batch`]) and then one per fed-back token.
    fn forward(&mut self, _forward: &Forward) {}
    /// A token was chosen.
    fn token(&mut self, _token: &GeneratedToken) {}
    /// Checked before each decode step: `true` ends generation with
    /// [`AiError::Cancelled`] (e.g. the client of a stream went away).
    fn cancelled(&self) -> bool {
        false
    }
}

/// An [`Observer`] that only streams text.
pub struct TextStream<F: FnMut(&str)>(pub F);

impl<F: FnMut(&str)> Observer for TextStream<F> {
    fn text(&mut self, piece: &str) {
        (self.0)(piece)
    }
}

impl Engine {
    /// Loads a GGUF: validates it, loads the weights, builds the tokenizer and the chat
    /// template, and hashes the file (in parallel with loading).
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Self> {
        let started = Instant::now();
        std::thread::scope(|scope| {
            let hasher = scope.spawn(|| sha256_file(path, &mut |_, _| {}));
            let loaded = Self::load_parts(path, opts);
            let sha = hasher
                .join()
                .map_err(|_| AiError::Model("the hashing thread panicked".into()))??;
            let (model, tokenizer, template, gguf) = loaded?;
            if let Some(expected) = &opts.expected_sha256
                && !expected.eq_ignore_ascii_case(&sha)
            {
                return Err(AiError::HashMismatch {
                    path: path.to_path_buf(),
                    expected: expected.clone(),
                    actual: sha,
                    action: "refusing to use it (fetch it again)",
                });
            }
            let name = match gguf.get("general.name") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            Ok(Self {
                model,
                tokenizer,
                template,
                prefill_batch: crate::model::UBATCH,
                prefix_cache: crate::prefix::PrefixCache::default(),
                info: ModelInfo {
                    path: path.to_path_buf(),
                    sha256: sha,
                    size: gguf.file_len,
                    architecture: gguf.architecture()?.to_string(),
                    name,
                    tokenizer_sha256: hex(&crate::proof::tokenizer_digest(&gguf)),
                    load_secs: started.elapsed().as_secs_f64(),
                },
            })
        })
    }

    fn load_parts(
        path: &Path,
        opts: &LoadOptions,
    ) -> Result<(Model, Tokenizer, Option<ChatTemplate>, Gguf)> {
        let gguf = Gguf::open(path)?;
        gguf.supported_architecture()?;
        let file = std::fs::File::open(path)
            .map_err(|e| AiError::io(format!("cannot open {}", path.display()), e))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let model = Model::load(&gguf, &mut reader, opts.threads)?;
        let tokenizer = Tokenizer::from_gguf(&gguf)?;
        if tokenizer.vocab_size() != model.config.vocab_size {
            return Err(AiError::Model(format!(
                "the tokenizer has {} tokens, the model {}",
                tokenizer.vocab_size(),
                model.config.vocab_size
            )));
        }
        let text = |id: Option<u32>| {
            id.and_then(|i| tokenizer.token_text(i))
                .unwrap_or_default()
                .to_string()
        };
        let template = match gguf.get("tokenizer.chat_template") {
            Some(Value::String(src)) => Some(ChatTemplate::new(
                src,
                &text(tokenizer.bos),
                &text(tokenizer.eos),
            )?),
            _ => None,
        };
        Ok((model, tokenizer, template, gguf))
    }

    /// Renders a conversation with the model's chat template, ready for the assistant's
    /// reply.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String> {
        self.template
            .as_ref()
            .ok_or_else(|| AiError::Template("the model file has no chat template".into()))?
            .render(messages, true)
    }

    /// The tokens a prompt runs as.
    pub fn prompt_tokens(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        match prompt {
            Prompt::Chat(messages) => {
                // The template writes BOS itself when the model uses one.
                self.tokenizer.encode(&self.chat_prompt(messages)?, false)
            }
            Prompt::Text(text) => self.tokenizer.encode(text, true),
            Prompt::Tokens(ids) => Ok(ids.clone()),
        }
    }

    /// Generates from `prompt`, streaming text pieces to `on_text`.
    pub fn generate(
        &self,
        prompt: &Prompt,
        params: &SamplingParams,
        on_text: impl FnMut(&str),
    ) -> Result<Generation> {
        self.generate_observed(prompt, params, &mut TextStream(on_text))
    }

    /// Generates from `prompt`, reporting text, forwards and tokens to `obs`.
    pub fn generate_observed(
        &self,
        prompt: &Prompt,
        params: &SamplingParams,
        obs: &mut dyn Observer,
    ) -> Result<Generation> {
        params.validate()?;
        let prompt_tokens = self.prompt_tokens(prompt)?;
        if prompt_tokens.is_empty() {
            return Err(AiError::Sampling("the prompt has no tokens".into()));
        }
        let context = self.model.config.context_length;
        let max_tokens = params.max_tokens as usize;
        if prompt_tokens.len() + max_tokens > context {
            return Err(AiError::ContextOverflow {
                prompt: prompt_tokens.len(),
                max_tokens,
                context,
            });
        }
        let mut timings = Timings {
            prefill_tokens: prompt_tokens.len(),
            ..Timings::default()
        };
        let mut out = Output::new(&params.stop);
        let mut tokens = Vec::with_capacity(max_tokens);
        let mut finish = FinishReason::Length;
        if max_tokens > 0 {
            // The last generated token is never fed back, so this is what it needs.
            let mut session = self.model.session(prompt_tokens.len() + max_tokens - 1)?;
            let t0 = Instant::now();
            let batch = self.prefill_batch.max(1);
            let last_piece = (prompt_tokens.len() - 1) / batch * batch;
            if last_piece > 0 {
                for piece in prompt_tokens[..last_piece].chunks(batch) {
                    self.model.forward(&mut session, piece, Logits::None)?;
                }
            }
            let mut fwd =
                self.model
                    .forward(&mut session, &prompt_tokens[last_piece..], Logits::Last)?;
            timings.prefill_secs = t0.elapsed().as_secs_f64();
            obs.forward(&fwd);
            let t1 = Instant::now();
            let mut stream = StreamDecoder::new();
            for index in 0..max_tokens {
                let logits = fwd
                    .last_logits()
                    .ok_or_else(|| AiError::Model("the forward returned no logits".into()))?;
                let id = sampling::sample(logits, params, index as u64)?;
                let token = GeneratedToken {
                    index: index as u32,
                    position: (prompt_tokens.len() + index) as u32,
                    id,
                };
                tokens.push(token);
                obs.token(&token);
                if self.tokenizer.eog.contains(&id) {
                    finish = FinishReason::Eos;
                    break;
                }
                if out.push(&stream.push(&self.tokenizer, id), obs) {
                    finish = FinishReason::Stop;
                    break;
                }
                if index + 1 == max_tokens {
                    break;
                }
                if obs.cancelled() {
                    return Err(AiError::Cancelled);
                }
                self.model
                    .forward_into(&mut session, &[id], Logits::Last, &mut fwd)?;
                timings.decode_tokens += 1;
                obs.forward(&fwd);
            }
            timings.decode_secs = t1.elapsed().as_secs_f64();
            if finish != FinishReason::Stop && out.push(&stream.finish(), obs) {
                finish = FinishReason::Stop;
            }
        }
        out.flush(obs);
        Ok(Generation {
            prompt_tokens,
            tokens,
            text: out.text,
            finish,
            params: params.clone(),
            timings,
        })
    }

    /// One forward over `tokens` from position 0 (e.g. prompt + output, teacher-forced):
    /// the hidden state of every position and the logits `want`ed.
    pub fn prefill(&self, tokens: &[u32], want: Logits) -> Result<Forward> {
        let context = self.model.config.context_length;
        if tokens.len() > context {
            return Err(AiError::ContextOverflow {
                prompt: tokens.len(),
                max_tokens: 0,
                context,
            });
        }
        let mut session = self.model.session(tokens.len().max(1))?;
        self.model.forward(&mut session, tokens, want)
    }
}

/// The output text under construction: holds back what could still become a stop
/// sequence, cuts at the first stop sequence.
pub(crate) struct Output<'a> {
    stop: &'a [String],
    pub(crate) text: String,
    emitted: usize,
    max_stop: usize,
}

impl<'a> Output<'a> {
    pub(crate) fn new(stop: &'a [String]) -> Self {
        Self {
            stop,
            text: String::new(),
            emitted: 0,
            max_stop: stop.iter().map(String::len).max().unwrap_or(0),
        }
    }

    /// Adds a piece; returns true when a stop sequence was reached (the text is then
    /// cut before it and everything before it emitted).
    pub(crate) fn push(&mut self, piece: &str, obs: &mut dyn Observer) -> bool {
        if piece.is_empty() {
            return false;
        }
        let scan_from = floor_char(
            &self.text,
            self.text
                .len()
                .saturating_sub(self.max_stop.saturating_sub(1)),
        );
        self.text.push_str(piece);
        let hit = self
            .stop
            .iter()
            .filter_map(|s| self.text[scan_from..].find(s.as_str()))
            .min();
        if let Some(at) = hit {
            self.text.truncate(scan_from + at);
            self.flush(obs);
            return true;
        }
        // Hold back the longest tail that is the start of some stop sequence.
        let hold = self
            .stop
            .iter()
            .flat_map(|s| (1..s.len()).rev().map(move |n| &s.as_bytes()[..n]))
            .filter(|prefix| self.text.as_bytes().ends_with(prefix))
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        let upto = floor_char(&self.text, self.text.len() - hold).max(self.emitted);
        if upto > self.emitted {
            obs.text(&self.text[self.emitted..upto]);
            self.emitted = upto;
        }
        false
    }

    pub(crate) fn flush(&mut self, obs: &mut dyn Observer) {
        if self.text.len() > self.emitted {
            obs.text(&self.text[self.emitted..]);
            self.emitted = self.text.len();
        }
    }
}

/// The largest char boundary of `s` at or below `i`.
fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// sha256 of a file, lowercase hex; `progress(done, total)` after every chunk.
pub fn sha256_file(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<String> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| AiError::io(format!("cannot open {}", path.display()), e))?;
    let total = file
        .metadata()
        .map_err(|e| AiError::io(format!("cannot stat {}", path.display()), e))?
        .len();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| AiError::io(format!("cannot read {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done, total);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<String>);
    impl Observer for Collect {
        fn text(&mut self, piece: &str) {
            self.0.push(piece.to_string());
        }
    }

    fn run(stop: &[&str], pieces: &[&str]) -> (String, bool, Vec<String>) {
        let stop: Vec<String> = stop.iter().map(|s| s.to_string()).collect();
        let mut out = Output::new(&stop);
        let mut obs = Collect::default();
        let mut hit = false;
        for p in pieces {
            if out.push(p, &mut obs) {
                hit = true;
                break;
            }
        }
        out.flush(&mut obs);
        (out.text, hit, obs.0)
    }

    #[test]
    fn stop_sequences_cut_the_output_and_are_never_streamed() {
        let (text, hit, streamed) = run(
            &["\n\nUser:"],
            &["Hello", " there", "\n", "\nUs", "er:", " more"],
        );
        assert!(hit);
        assert_eq!(text, "Hello there");
        assert_eq!(streamed.concat(), "Hello there");
        // A partial match that does not complete is released.
        let (text, hit, streamed) = run(&["STOP"], &["a ST", "OP", "x"]);
        assert!(hit);
        assert_eq!(text, "a ");
        assert_eq!(streamed.concat(), "a ");
        let (text, hit, streamed) = run(&["STOP"], &["a ST", "OW"]);
        assert!(!hit);
        assert_eq!(text, "a STOW");
        assert_eq!(streamed.concat(), "a STOW");
        // The earliest of several stop sequences wins, inside a single piece too.
        let (text, _, _) = run(&["c", "b"], &["xabcd"]);
        assert_eq!(text, "xa");
        // No stop sequences: everything streams at once.
        let (_, _, streamed) = run(&[], &["a", "é", "b"]);
        assert_eq!(streamed, vec!["a", "é", "b"]);
    }

    #[test]
    fn multibyte_text_around_stop_sequences() {
        let (text, hit, streamed) = run(&["é!"], &["ça é", "!", "z"]);
        assert!(hit);
        assert_eq!(text, "ça ");
        assert_eq!(streamed.concat(), "ça ");
    }

    #[test]
    fn hex_and_rates() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        let t = Timings {
            prefill_tokens: 10,
            prefill_secs: 2.0,
            decode_tokens: 0,
            decode_secs: 0.0,
        };
        assert_eq!(t.prefill_tps(), 5.0);
        assert_eq!(t.decode_tps(), 0.0);
    }
}
