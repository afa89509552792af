//! Bad input for the GGUF loader: the real SmolLM2 file (see `smollm2.rs` for where it
//! must be installed) truncated at offsets inside each part, corrupted field by field, and
//! given an unknown architecture, written into a temporary folder and loaded. Each must
//! give an `AiError` that says what is wrong, and nothing may panic. Also the other bad
//! inputs of a loaded model: a prompt longer than the context, and ids outside the
//! vocabulary.

use std::path::Path;
use std::sync::OnceLock;

use noesis_ai::gguf::Gguf;

mod common;
use common::model_path;
use noesis_ai::{AiError, Engine, LoadOptions, Prompt, SamplingParams};

fn real() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(model_path()).unwrap())
}

/// Where each field of a GGUF header lies, found by walking it (independently of the
/// loader under test).
#[derive(Debug)]
struct Layout {
    kvs: Vec<Kv>,
    tensors: Vec<TensorAt>,
    infos_start: usize,
    data_start: usize,
}

#[derive(Debug)]
struct Kv {
    key: String,
    /// The key's length prefix.
    at: usize,
    /// The value (after its type id).
    value_at: usize,
    end: usize,
}

#[derive(Debug)]
struct TensorAt {
    name: String,
    at: usize,
    n_dims_at: usize,
    dims_at: usize,
    type_at: usize,
    offset_at: usize,
}

struct Walk<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Walk<'_> {
    fn u32(&mut self) -> u32 {
        let v = u32::from_le_bytes(self.b[self.pos..self.pos + 4].try_into().unwrap());
        self.pos += 4;
        v
    }
    fn u64(&mut self) -> u64 {
        let v = u64::from_le_bytes(self.b[self.pos..self.pos + 8].try_into().unwrap());
        self.pos += 8;
        v
    }
    fn string(&mut self) -> String {
        let n = self.u64() as usize;
        let s = String::from_utf8_lossy(&self.b[self.pos..self.pos + n]).into_owned();
        self.pos += n;
        s
    }
    fn value(&mut self, ty: u32) {
        match ty {
            0 | 1 | 7 => self.pos += 1,
            2 | 3 => self.pos += 2,
            4..=6 => self.pos += 4,
            10..=12 => self.pos += 8,
            8 => {
                self.string();
            }
            9 => {
                let t = self.u32();
                let n = self.u64();
                for _ in 0..n {
                    self.value(t);
                }
            }
            t => panic!("value type {t}"),
        }
    }
}

fn layout(b: &[u8]) -> Layout {
    let mut w = Walk { b, pos: 8 };
    let n_tensors = w.u64();
    let n_kv = w.u64();
    let mut kvs = Vec::new();
    for _ in 0..n_kv {
        let at = w.pos;
        let key = w.string();
        let ty = w.u32();
        let value_at = w.pos;
        w.value(ty);
        kvs.push(Kv {
            key,
            at,
            value_at,
            end: w.pos,
        });
    }
    let infos_start = w.pos;
    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        let at = w.pos;
        let name = w.string();
        let n_dims_at = w.pos;
        let n_dims = w.u32();
        let dims_at = w.pos;
        w.pos += 8 * n_dims as usize;
        let type_at = w.pos;
        w.u32();
        let offset_at = w.pos;
        w.u64();
        tensors.push(TensorAt {
            name,
            at,
            n_dims_at,
            dims_at,
            type_at,
            offset_at,
        });
    }
    let infos_end = w.pos;
    Layout {
        kvs,
        tensors,
        infos_start,
        data_start: infos_end.div_ceil(32) * 32,
    }
}

fn real_layout() -> &'static Layout {
    static L: OnceLock<Layout> = OnceLock::new();
    L.get_or_init(|| layout(real()))
}

fn kv(key: &str) -> &'static Kv {
    real_layout()
        .kvs
        .iter()
        .find(|k| k.key == key)
        .unwrap_or_else(|| panic!("no {key}"))
}

/// Writes `bytes` to a temporary file and loads it fully (header, weights, tokenizer,
/// template), as `noesis ai generate` does.
fn load(bytes: &[u8]) -> Result<Engine, AiError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.gguf");
    std::fs::write(&path, bytes).unwrap();
    load_path(&path)
}

fn load_path(path: &Path) -> Result<Engine, AiError> {
    let opts = LoadOptions {
        threads: 1,
        expected_sha256: None,
    };
    Engine::load(path, &opts)
}

/// The header parse alone, from memory (cheap enough for many cases).
fn parse(bytes: &[u8]) -> Result<Gguf, AiError> {
    Gguf::read(bytes, bytes.len() as u64)
}

fn expect_gguf_error(result: Result<impl std::fmt::Debug, AiError>, want: &str, case: &str) {
    match result {
        Err(e @ AiError::Gguf(_)) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("invalid GGUF file: ") && msg.contains(want),
                "{case}: `{msg}` does not say `{want}`"
            );
        }
        other => panic!("{case}: expected a GGUF error saying `{want}`, got {other:?}"),
    }
}

fn read_u64(offset: usize) -> u64 {
    u64::from_le_bytes(real()[offset..offset + 8].try_into().unwrap())
}

fn patch(offset: usize, new: &[u8]) -> Vec<u8> {
    let mut b = real().to_vec();
    b[offset..offset + new.len()].copy_from_slice(new);
    b
}

#[test]
fn the_real_header_walks_as_expected() {
    let l = real_layout();
    assert_eq!(l.kvs.first().map(|k| k.at), Some(24));
    assert!(l.tensors.len() > 100, "{}", l.tensors.len());
    assert_eq!(l.tensors[0].at, l.infos_start);
    let g = parse(real()).unwrap();
    assert_eq!(g.content.tensor_data_offset as usize, l.data_start);
    assert_eq!(g.content.tensor_infos.len(), l.tensors.len());
    assert_eq!(g.content.metadata.len(), l.kvs.len());
}

#[test]
fn truncated_files_are_refused_wherever_they_are_cut() {
    let b = real();
    let l = real_layout();
    let tokens = kv("tokenizer.ggml.tokens");
    let first_tensor = &l.tensors[0];
    let last_tensor = l.tensors.last().unwrap();
    let cuts: Vec<(&str, usize, &str)> = vec![
        (
            "empty file",
            0,
            "truncated at byte 0 reading the magic number",
        ),
        ("inside the magic", 3, "reading the magic number"),
        ("inside the version", 6, "reading the version"),
        ("inside the tensor count", 12, "reading the tensor count"),
        (
            "inside the metadata count",
            20,
            "reading the metadata count",
        ),
        ("before any metadata", 24, "cannot fit in the file"),
        // Too short for the declared counts: refused before reading them.
        (
            "inside the first key",
            l.kvs[0].at + 10,
            "cannot fit in the file",
        ),
        // Half the token list: too short for its element count, refused before reading.
        (
            "in the middle of the token list",
            (tokens.value_at + tokens.end) / 2,
            "array of 49152 elements runs past the end of the file",
        ),
        (
            "inside the last token",
            tokens.end - 3,
            "length 7 runs past the end of the file",
        ),
        (
            "inside the last metadata value",
            l.infos_start - 1,
            "truncated",
        ),
        ("at the first tensor info", l.infos_start, "truncated"),
        (
            "inside the first tensor's dimensions",
            first_tensor.dims_at + 3,
            "truncated",
        ),
        (
            "inside the last tensor's offset",
            last_tensor.offset_at + 4,
            "truncated",
        ),
        (
            "at the start of the tensor data",
            l.data_start,
            "run past the end",
        ),
        (
            "inside the tensor data",
            l.data_start + (b.len() - l.data_start) / 2,
            "run past the end",
        ),
        ("one byte short", b.len() - 1, "run past the end"),
    ];
    for (case, cut, want) in cuts {
        assert!(cut < b.len(), "{case}");
        // Cheap cuts load fully; the big ones (a copy of most of the file) are parsed
        // from memory and loaded from disk.
        expect_gguf_error(parse(&b[..cut]), want, case);
        expect_gguf_error(load(&b[..cut]).map(|_| ()), want, case);
    }
}

#[test]
fn corrupt_headers_are_refused_with_the_reason() {
    let l = real_layout();
    let t0 = &l.tensors[0];
    let tokens = kv("tokenizer.ggml.tokens");
    let data_len = (real().len() - l.data_start) as u64;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad magic", patch(0, b"GGML"), "not a GGUF file"),
        ("zero magic", patch(0, &[0; 4]), "not a GGUF file"),
        (
            "version 1",
            patch(4, &1u32.to_le_bytes()),
            "unsupported GGUF version 1",
        ),
        (
            "version 99",
            patch(4, &99u32.to_le_bytes()),
            "unsupported GGUF version 99",
        ),
        (
            "absurd tensor count",
            patch(8, &u64::MAX.to_le_bytes()),
            "tensors exceed the limit",
        ),
        (
            "absurd metadata count",
            patch(16, &(1u64 << 62).to_le_bytes()),
            "metadata entries exceed the limit",
        ),
        (
            "more tensors than the file holds",
            patch(8, &60_000u64.to_le_bytes()),
            "",
        ),
        (
            "absurd key length",
            patch(l.kvs[0].at, &(1u64 << 40).to_le_bytes()),
            "exceeds the limit",
        ),
        (
            "key length past the end",
            patch(l.kvs[0].at, &4000u64.to_le_bytes()),
            "",
        ),
        (
            "unknown value type",
            patch(l.kvs[0].value_at - 4, &77u32.to_le_bytes()),
            "unknown value type 77",
        ),
        (
            "absurd array length",
            patch(tokens.value_at + 4, &(1u64 << 40).to_le_bytes()),
            "exceeds the limit",
        ),
        (
            "unknown array element type",
            patch(tokens.value_at, &13u32.to_le_bytes()),
            "unknown array element type 13",
        ),
        (
            "absurd string length in an array",
            patch(tokens.value_at + 12, &(1u64 << 50).to_le_bytes()),
            "exceeds the limit",
        ),
        (
            "zero dimensions",
            patch(t0.n_dims_at, &0u32.to_le_bytes()),
            "has 0 dimensions",
        ),
        (
            "nine dimensions",
            patch(t0.n_dims_at, &9u32.to_le_bytes()),
            "has 9 dimensions",
        ),
        (
            "a zero dimension",
            patch(t0.dims_at, &0u64.to_le_bytes()),
            "element count out of range",
        ),
        (
            "an absurd dimension",
            patch(t0.dims_at, &(1u64 << 60).to_le_bytes()),
            "element count out of range",
        ),
        (
            "unknown tensor type",
            patch(t0.type_at, &99u32.to_le_bytes()),
            "unsupported ggml type 99",
        ),
        (
            "tensor type candle cannot load (IQ2_XXS)",
            patch(t0.type_at, &16u32.to_le_bytes()),
            "unsupported ggml type 16",
        ),
        (
            "tensor offset past the end",
            patch(
                t0.offset_at,
                &(data_len + 32 * 1024).next_multiple_of(32).to_le_bytes(),
            ),
            "run past the end of the file",
        ),
        (
            "tensor offset wrapping around",
            patch(t0.offset_at, &(u64::MAX - 31).to_le_bytes()),
            "run past the end of the file",
        ),
        (
            "misaligned tensor offset",
            patch(t0.offset_at, &(read_u64(t0.offset_at) | 1).to_le_bytes()),
            "not aligned",
        ),
    ];
    for (case, bytes, want) in &cases {
        expect_gguf_error(parse(bytes), want, case);
    }
    // A few of them through the whole loader too.
    for (case, bytes, want) in cases.iter().step_by(5) {
        expect_gguf_error(load(bytes).map(|_| ()), want, case);
    }
}

#[test]
fn wrong_tensor_types_and_overlaps_are_errors() {
    let l = real_layout();
    let g = parse(real()).unwrap();
    // Give a big quantized tensor the F32 type: four times the bytes, so it overlaps the
    // next tensor or runs past the end.
    let big = l
        .tensors
        .iter()
        .max_by_key(|t| g.content.tensor_infos[&t.name].shape.elem_count())
        .unwrap();
    let b = patch(big.type_at, &0u32.to_le_bytes());
    match parse(&b) {
        Err(AiError::Gguf(msg)) => assert!(
            msg.contains("overlap") || msg.contains("run past the end"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    // Two tensors at the same offset.
    let off = real()[l.tensors[0].offset_at..l.tensors[0].offset_at + 8].to_vec();
    let b = patch(l.tensors[1].offset_at, &off);
    expect_gguf_error(parse(&b), "overlap", "same offset");
    // Two tensors with the same name.
    let t0 = &l.tensors[0];
    let t1 = &l.tensors[1];
    let name0 = &real()[t0.at..t0.n_dims_at];
    if name0.len() == t1.n_dims_at - t1.at {
        let b = patch(t1.at, name0);
        expect_gguf_error(parse(&b), "duplicate tensor name", "same name");
    }
    // A type that parses but is not what the model needs: a norm weight (F32) read as
    // Q8_0 has a row that is not a whole number of blocks, or loads as a different
    // tensor; either an error or a model, never a panic.
    let norm = l
        .tensors
        .iter()
        .find(|t| t.name.ends_with("attn_norm.weight"))
        .unwrap();
    let b = patch(norm.type_at, &8u32.to_le_bytes());
    match load(&b) {
        Err(e) => eprintln!("norm weight as Q8_0: {e}"),
        Ok(_) => eprintln!("norm weight as Q8_0: loaded"),
    }
}

#[test]
fn an_unknown_architecture_is_named() {
    // "llama" -> "mamba" in the value of general.architecture (same length).
    let arch = kv("general.architecture");
    let value = &real()[arch.value_at + 8..arch.end];
    assert_eq!(value, b"llama");
    let b = patch(arch.value_at + 8, b"mamba");
    let g = parse(&b).unwrap();
    assert_eq!(g.architecture().unwrap(), "mamba");
    match load(&b) {
        Err(e @ AiError::UnsupportedArchitecture(_)) => {
            let msg = e.to_string();
            assert!(
                msg.contains("`mamba`") && msg.contains("supported: llama"),
                "{msg}"
            );
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // A missing architecture (the key renamed) is a clear model error too.
    let key_bytes = &real()[arch.at + 8..arch.value_at - 4];
    assert_eq!(key_bytes, b"general.architecture");
    let b = patch(arch.at + 8, b"general.architectur_");
    match load(&b) {
        Err(e @ AiError::Model(_)) => {
            assert!(e.to_string().contains("general.architecture"), "{e}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn a_broken_tokenizer_or_template_is_an_error() {
    // The tokenizer model "gpt2" -> "gpt9".
    let model = kv("tokenizer.ggml.model");
    assert_eq!(&real()[model.value_at + 8..model.end], b"gpt2");
    let b = patch(model.value_at + 8, b"gpt9");
    match load(&b) {
        Err(e @ AiError::Tokenizer(_)) => assert!(e.to_string().contains("gpt9"), "{e}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // The chat template with an unclosed block: loading or rendering fails cleanly.
    let t = kv("tokenizer.chat_template");
    let src = &real()[t.value_at + 8..t.end];
    let at = src.windows(2).position(|w| w == b"%}").unwrap();
    let b = patch(t.value_at + 8 + at, b"%%");
    match load(&b) {
        Err(e) => assert!(matches!(e, AiError::Template(_)), "{e}"),
        Ok(engine) => {
            let e = engine
                .chat_prompt(&[noesis_ai::ChatMessage::new("user", "hi")])
                .unwrap_err();
            assert!(matches!(e, AiError::Template(_)), "{e}");
        }
    }
    // A token list one entry shorter than the vocabulary (the count lowered, the last
    // token left as garbage for the next key): an error, whichever check sees it first.
    let tokens = kv("tokenizer.ggml.tokens");
    let n = read_u64(tokens.value_at + 4);
    let b = patch(tokens.value_at + 4, &(n - 1).to_le_bytes());
    assert!(load(&b).is_err());
}

#[test]
fn random_corruption_of_the_header_never_panics() {
    // Header bytes only (the walk's end), with the real file length so that data bounds
    // are checked as for the whole file.
    let l = real_layout();
    let header = &real()[..l.data_start];
    let len = real().len() as u64;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = 0;
    for _ in 0..300 {
        let mut b = header.to_vec();
        for _ in 0..1 + next() % 4 {
            // Mostly near the fields that steer parsing: counts, lengths, types.
            let at = if next() % 2 == 0 {
                (next() % 64) as usize
            } else {
                (next() % header.len() as u64) as usize
            };
            b[at] ^= 1 << (next() % 8);
        }
        if Gguf::read(&b[..], len).is_err() {
            errors += 1;
        }
    }
    eprintln!("{errors}/300 random corruptions refused, the rest parsed");
}

#[test]
fn prompts_longer_than_the_context_and_unknown_ids_are_errors() {
    let engine = load_path(&model_path()).unwrap();
    let context = engine.model.config.context_length;
    let params = SamplingParams {
        max_tokens: 1,
        ..SamplingParams::default()
    };
    let e = engine
        .generate(&Prompt::Tokens(vec![42; context]), &params, |_| {})
        .unwrap_err();
    match &e {
        AiError::ContextOverflow {
            prompt,
            max_tokens,
            context: c,
        } => assert_eq!((*prompt, *max_tokens, *c), (context, 1, context)),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("exceed the context length"), "{e}");
    // Text: a long prompt gets there by tokenizing.
    let long = "word ".repeat(context + 10);
    assert!(matches!(
        engine.generate(&Prompt::Text(long), &params, |_| {}),
        Err(AiError::ContextOverflow { .. })
    ));
    // Ids outside the vocabulary are refused, not indexed.
    let vocab = engine.model.config.vocab_size as u32;
    assert!(
        engine
            .generate(&Prompt::Tokens(vec![1, vocab]), &params, |_| {})
            .is_err()
    );
    assert!(
        engine
            .generate(&Prompt::Tokens(vec![u32::MAX]), &params, |_| {})
            .is_err()
    );
    // An empty prompt.
    assert!(
        engine
            .generate(&Prompt::Tokens(vec![]), &params, |_| {})
            .is_err()
    );
}
