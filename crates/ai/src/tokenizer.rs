//! The tokenizer stored in a GGUF (`tokenizer.ggml.*`), built with the `tokenizers` crate.
//!
//! Only byte-level BPE (`tokenizer.ggml.model = "gpt2"`) is implemented, with the
//! pre-tokenizer llama.cpp uses for `tokenizer.ggml.pre`:
//!
//! - `smollm` (also `starcoder`, `refact`, `codeshell`, `command-r`, `exaone`, `minerva`):
//!   every numeric character alone, then the GPT-2 split
//!   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
//! - `gpt2` (also `mpt`, `olmo`, `jais`, `trillion`, and a missing `pre`): the GPT-2
//!   split alone;
//! - `llama-bpe`/`llama3`/`dbrx`/`smaug-bpe`: the Llama 3 split (digits in runs of up to
//!   three), with whole-word vocabulary hits taking precedence over merges;
//! - `qwen2`/`stablelm2`/`deepseek-r1-qwen`: the Qwen 2 split.
//!
//! Tokens typed CONTROL become special added tokens and USER_DEFINED ones plain added
//! tokens, so encoding matches them in the text (llama.cpp's `parse_special = true`):
//! `<|im_start|>` is one id wherever it appears. A BOS is prepended when
//! `tokenizer.ggml.add_bos_token` says so.
//!
//! Decoding maps each id back to bytes itself (byte-level tokens through the inverse
//! GPT-2 byte table, control and user-defined tokens as their text) so that a
//! [`StreamDecoder`] can emit text as soon as it is valid UTF-8 and hold back a
//! partial character until its last byte arrives.

use std::collections::HashSet;

use candle_core::quantized::gguf_file::Value;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use crate::error::{AiError, Result};
use crate::gguf::Gguf;

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An ordinary vocabulary entry (byte-level text).
    Normal,
    /// The unknown token.
    Unknown,
    /// A control token such as `<|im_start|>`.
    Control,
    /// A token added by the model's authors, matched as raw text.
    UserDefined,
    /// A placeholder.
    Unused,
    /// A raw byte.
    Byte,
}

impl TokenKind {
    fn from_code(code: i64) -> Self {
        match code {
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => Self::Normal,
        }
    }
}

/// The pre-tokenizer families (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// Digits alone, then the GPT-2 split.
    Smollm,
    /// The GPT-2 split.
    Gpt2,
    /// The Llama 3 split.
    Llama3,
    /// The Qwen 2 split.
    Qwen2,
}

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

impl PreTokenizer {
    /// The family of a `tokenizer.ggml.pre` value.
    pub fn from_name(name: Option<&str>) -> Result<Self> {
        Ok(match name.unwrap_or("default") {
            "smollm" | "starcoder" | "refact" | "codeshell" | "command-r" | "exaone"
            | "minerva" => Self::Smollm,
            "gpt2" | "mpt" | "olmo" | "jais" | "trillion" | "default" => Self::Gpt2,
            "llama-bpe" | "llama3" | "dbrx" | "smaug-bpe" => Self::Llama3,
            "qwen2" | "stablelm2" | "deepseek-r1-qwen" => Self::Qwen2,
            other => {
                return Err(AiError::Tokenizer(format!(
                    "unsupported pre-tokenizer `{other}` (supported: smollm, gpt2, llama-bpe, \
                     qwen2 and their aliases)"
                )));
            }
        })
    }

    fn build(self) -> Result<PreTokenizerWrapper> {
        let split = |re: &str| {
            Split::new(
                SplitPattern::Regex(re.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| AiError::Tokenizer(format!("pre-tokenizer regex: {e}")))
        };
        Ok(match self {
            Self::Smollm => PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, true)),
            ])),
            Self::Gpt2 => PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, true)),
            Self::Llama3 => PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Split(split(LLAMA3_SPLIT)?),
                PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)),
            ])),
            Self::Qwen2 => PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Split(split(QWEN2_SPLIT)?),
                PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)),
            ])),
        })
    }
}

/// Token texts llama.cpp treats as ending generation (its end-of-turn texts and the
/// fill-in-the-middle repository, separator and padding tokens).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<｜end▁of▁sentence｜>",
    "<|end_of_text|>",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
    "<|file_sep|>",
    "<fim-sep>",
    "<|fim_pad|>",
    "<fim-pad>",
    "<PAD>",
];

/// A tokenizer built from a GGUF's metadata.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    tokens: Vec<String>,
    kinds: Vec<TokenKind>,
    /// The byte-level byte → char table's inverse.
    char_bytes: std::collections::HashMap<char, u8>,
    /// Beginning-of-sequence id.
    pub bos: Option<u32>,
    /// End-of-sequence id.
    pub eos: Option<u32>,
    /// Every id that ends generation: EOS, EOT, EOM and the tokens llama.cpp recognizes by
    /// text ([`EOG_TEXTS`]).
    pub eog: HashSet<u32>,
    /// Whether encoding prepends BOS.
    pub add_bos: bool,
    /// The pre-tokenizer family.
    pub pre: PreTokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab", &self.tokens.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .field("pre", &self.pre)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Builds the tokenizer described by a GGUF's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let model = g
            .string("tokenizer.ggml.model")
            .map_err(|e| AiError::Tokenizer(e.to_string()))?;
        if model != "gpt2" {
            return Err(AiError::Tokenizer(format!(
                "tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)"
            )));
        }
        let pre_name = match g.get("tokenizer.ggml.pre") {
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        };
        let pre = PreTokenizer::from_name(pre_name)?;
        let tokens: Vec<String> = strings(g, "tokenizer.ggml.tokens")?
            .ok_or_else(|| AiError::Tokenizer("tokenizer.ggml.tokens is missing".into()))?;
        let merges_raw = strings(g, "tokenizer.ggml.merges")?.unwrap_or_default();
        let kinds: Vec<TokenKind> = match g.opt_array("tokenizer.ggml.token_type")? {
            None => vec![TokenKind::Normal; tokens.len()],
            Some(a) => {
                if a.len() != tokens.len() {
                    return Err(AiError::Tokenizer(format!(
                        "{} token types for {} tokens",
                        a.len(),
                        tokens.len()
                    )));
                }
                a.iter()
                    .map(|v| match *v {
                        Value::I32(x) => Ok(TokenKind::from_code(i64::from(x))),
                        Value::U32(x) => Ok(TokenKind::from_code(i64::from(x))),
                        _ => Err(AiError::Tokenizer("token types are not integers".into())),
                    })
                    .collect::<Result<_>>()?
            }
        };
        Self::build(tokens, kinds, &merges_raw, pre, g)
    }

    fn build(
        tokens: Vec<String>,
        kinds: Vec<TokenKind>,
        merges_raw: &[String],
        pre: PreTokenizer,
        g: &Gguf,
    ) -> Result<Self> {
        let n = tokens.len();
        if n == 0 || n > u32::MAX as usize {
            return Err(AiError::Tokenizer(format!("{n} tokens")));
        }
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let mut merges = Vec::with_capacity(merges_raw.len());
        for m in merges_raw {
            // llama.cpp splits a merge at the first space after its first byte.
            let at = m
                .char_indices()
                .skip(1)
                .find(|&(_, c)| c == ' ')
                .map(|(i, _)| i)
                .ok_or_else(|| AiError::Tokenizer(format!("merge `{m}` has no space")))?;
            merges.push((m[..at].to_string(), m[at + 1..].to_string()));
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(pre == PreTokenizer::Llama3)
            .build()
            .map_err(|e| AiError::Tokenizer(format!("BPE: {e}")))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre.build()?));
        let special: Vec<AddedToken> = tokens
            .iter()
            .zip(&kinds)
            .filter(|(t, k)| **k == TokenKind::Control && !t.is_empty())
            .map(|(t, _)| AddedToken::from(t.clone(), true))
            .collect();
        let user: Vec<AddedToken> = tokens
            .iter()
            .zip(&kinds)
            .filter(|(t, k)| **k == TokenKind::UserDefined && !t.is_empty())
            .map(|(t, _)| AddedToken::from(t.clone(), false).normalized(false))
            .collect();
        inner
            .add_special_tokens(special)
            .map_err(|e| AiError::Tokenizer(format!("special tokens: {e}")))?;
        inner
            .add_tokens(user)
            .map_err(|e| AiError::Tokenizer(format!("user-defined tokens: {e}")))?;

        let id = |key: &str| -> Result<Option<u32>> {
            match g.opt_u64(key)? {
                None => Ok(None),
                Some(i) if (i as usize) < n => Ok(Some(i as u32)),
                // llama.cpp writes -1 as u32::MAX for "none" in some files.
                Some(i) if i == u64::from(u32::MAX) => Ok(None),
                Some(i) => Err(AiError::Tokenizer(format!(
                    "{key} = {i} is outside the vocabulary ({n})"
                ))),
            }
        };
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        let mut eog: HashSet<u32> = [
            eos,
            id("tokenizer.ggml.eot_token_id")?,
            id("tokenizer.ggml.eom_token_id")?,
        ]
        .into_iter()
        .flatten()
        .collect();
        for (i, t) in tokens.iter().enumerate() {
            if EOG_TEXTS.contains(&t.as_str()) {
                eog.insert(i as u32);
            }
        }
        let add_bos = g
            .opt_bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(pre == PreTokenizer::Llama3);
        if add_bos && bos.is_none() {
            return Err(AiError::Tokenizer(
                "add_bos_token is set but there is no bos_token_id".into(),
            ));
        }
        let char_bytes = byte_chars()
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        Ok(Self {
            inner,
            tokens,
            kinds,
            char_bytes,
            bos,
            eos,
            eog,
            add_bos,
            pre,
        })
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The text of a token as stored in the vocabulary (byte-level form for normal
    /// tokens).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// A token's type.
    pub fn kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }

    /// Encodes text, matching special tokens written in it, and prepends BOS when the
    /// model asks for it and `add_special` is set.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| AiError::Tokenizer(format!("encode: {e}")))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if add_special
            && self.add_bos
            && let Some(bos) = self.bos
        {
            ids.push(bos);
        }
        ids.extend_from_slice(enc.get_ids());
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.tokens.len()) {
            return Err(AiError::Tokenizer(format!(
                "encoding produced id {bad} outside the vocabulary"
            )));
        }
        Ok(ids)
    }

    /// The bytes a token stands for: byte-level tokens decoded, control and user-defined
    /// tokens as their text, others (unused) nothing.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        self.push_token_bytes(id, &mut out);
        out
    }

    fn push_token_bytes(&self, id: u32, out: &mut Vec<u8>) {
        let (Some(text), Some(kind)) = (self.tokens.get(id as usize), self.kind(id)) else {
            return;
        };
        match kind {
            TokenKind::Normal | TokenKind::Byte => {
                for ch in text.chars() {
                    match self.char_bytes.get(&ch) {
                        Some(&b) => out.push(b),
                        None => {
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                }
            }
            TokenKind::Control | TokenKind::UserDefined | TokenKind::Unknown => {
                out.extend_from_slice(text.as_bytes());
            }
            TokenKind::Unused => {}
        }
    }

    /// Decodes ids to text (invalid UTF-8 becomes U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            self.push_token_bytes(id, &mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Turns a stream of ids into text pieces that are always whole UTF-8 characters.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    /// A decoder with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a token; returns the text that became complete (possibly empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        tok.push_token_bytes(id, &mut self.pending);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Bytes that can never be valid: replace and go on.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Flushes what is left (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// GPT-2's byte → char table: printable bytes map to themselves, the rest to 256 + n.
fn byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or(char::REPLACEMENT_CHARACTER)
        };
    }
    table
}

/// A string array from the metadata.
fn strings(g: &Gguf, key: &str) -> Result<Option<Vec<String>>> {
    let Some(a) = g.opt_array(key)? else {
        return Ok(None);
    };
    a.iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(AiError::Tokenizer(format!("{key} holds a non-string"))),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gguf::write::gguf;

    /// A tiny byte-level vocabulary: every byte, a few merges, and chat control tokens.
    pub(crate) fn tiny_gguf(pre: &str) -> Vec<u8> {
        let table = byte_chars();
        let mut tokens: Vec<String> = vec![
            "<|endoftext|>".into(),
            "<|im_start|>".into(),
            "<|im_end|>".into(),
        ];
        let mut types = vec![3i32, 3, 3];
        for c in table {
            tokens.push(c.to_string());
            types.push(1);
        }
        let merges = [
            "h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d", "1 2",
        ];
        for m in merges {
            let (a, b) = m.split_once(' ').unwrap();
            tokens.push(format!("{a}{b}"));
            types.push(1);
        }
        tokens.push("<user_tok>".into());
        types.push(4);
        let s = |x: &str| Value::String(x.into());
        gguf(
            &[
                ("general.architecture", s("llama")),
                ("tokenizer.ggml.model", s("gpt2")),
                ("tokenizer.ggml.pre", s(pre)),
                (
                    "tokenizer.ggml.tokens",
                    Value::Array(tokens.iter().map(|t| s(t)).collect()),
                ),
                (
                    "tokenizer.ggml.token_type",
                    Value::Array(types.into_iter().map(Value::I32).collect()),
                ),
                (
                    "tokenizer.ggml.merges",
                    Value::Array(merges.iter().map(|m| s(m)).collect()),
                ),
                ("tokenizer.ggml.bos_token_id", Value::U32(1)),
                ("tokenizer.ggml.eos_token_id", Value::U32(2)),
                ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
            ],
            &[],
        )
    }

    pub(crate) fn tiny(pre: &str) -> Tokenizer {
        let bytes = tiny_gguf(pre);
        let g = Gguf::read(&bytes[..], bytes.len() as u64).unwrap();
        Tokenizer::from_gguf(&g).unwrap()
    }

    fn id(t: &Tokenizer, text: &str) -> u32 {
        t.tokens.iter().position(|x| x == text).unwrap() as u32
    }

    #[test]
    fn merges_and_special_tokens() {
        let t = tiny("smollm");
        let ids = t.encode("<|im_start|>hello world<|im_end|>", true).unwrap();
        assert_eq!(
            ids,
            vec![1, id(&t, "hello"), id(&t, "Ġworld"), 2],
            "{:?}",
            ids.iter().map(|&i| t.token_text(i)).collect::<Vec<_>>()
        );
        assert_eq!(t.decode(&ids), "<|im_start|>hello world<|im_end|>");
        assert!(t.eog.contains(&2) && t.eog.contains(&0));
        // A user-defined token is matched as text too.
        let ids = t.encode("a<user_tok>b", false).unwrap();
        assert_eq!(ids.len(), 3);
        assert_eq!(t.decode(&ids), "a<user_tok>b");
    }

    #[test]
    fn digits_are_split_one_by_one_for_smollm_but_not_gpt2() {
        // The vocabulary merges "1 2"; smollm isolates every digit first, gpt2 does not.
        let smollm = tiny("smollm");
        assert_eq!(smollm.encode("123", false).unwrap().len(), 3);
        let gpt2 = tiny("gpt2");
        let ids = gpt2.encode("123", false).unwrap();
        assert_eq!(ids, vec![id(&gpt2, "12"), id(&gpt2, "3")]);
        assert!(PreTokenizer::from_name(Some("bogus")).is_err());
    }

    #[test]
    fn round_trips_unicode_and_whitespace() {
        for pre in ["smollm", "gpt2", "llama-bpe", "qwen2"] {
            let t = tiny(pre);
            for text in [
                "",
                "  two  spaces\n\n\ttab",
                "héllo wörld 🦙 漢字",
                "a\r\nb",
                "x'll'd",
            ] {
                let ids = t.encode(text, false).unwrap();
                assert_eq!(t.decode(&ids), text, "{pre}");
            }
        }
    }

    #[test]
    fn stream_decoder_holds_back_partial_characters() {
        let t = tiny("smollm");
        // "🦙" is four bytes, each its own byte-level token here.
        let ids = t.encode("a🦙b", false).unwrap();
        assert_eq!(ids.len(), 6);
        let mut d = StreamDecoder::new();
        let pieces: Vec<String> = ids.iter().map(|&i| d.push(&t, i)).collect();
        assert_eq!(pieces, vec!["a", "", "", "", "🦙", "b"]);
        assert_eq!(d.finish(), "");
        // A lone continuation byte is replaced, not held forever.
        let cont = id(&t, &byte_chars()[0x80].to_string());
        assert_eq!(d.push(&t, cont), "\u{FFFD}");
        let lead = id(&t, &byte_chars()[0xF0].to_string());
        assert_eq!(d.push(&t, lead), "");
        assert_eq!(d.finish(), "\u{FFFD}");
    }

    #[test]
    fn byte_table_is_a_bijection() {
        let t = byte_chars();
        let set: HashSet<char> = t.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(t[b'A' as usize], 'A');
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
    }
}
