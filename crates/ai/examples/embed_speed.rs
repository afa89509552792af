//! Sentences per second of all-MiniLM-L6-v2 at batch 1 and 16, measured the way
//! `tests/ai-reference/make-embeddings.py` measures the Python package (its numbers are in
//! `tests/ai-reference/baselines/minilm-speed.json`): the fixture's 21 sentences × 4
//! (84 sentences, mean 25.4 tokens, one cut at 256), tokenization, pooling and
//! normalization included; a warm-up on the first 16, then 3 timed runs, median; at 2
//! threads and at 1. Prints JSON on stdout.
//!
//! ```sh
//! cargo run --release -p noesis-ai --example embed_speed [-- --model DIR] [--threads 2,1] [--batch 1,16] [--runs 3]
//! ```
//!
//! The model is `--model DIR`, else `$NOESIS_MODEL_DIR/all-minilm-l6-v2`, else
//! `~/.noesis/dev/models/all-minilm-l6-v2` (`noesis model fetch all-minilm-l6-v2`).

use std::path::PathBuf;
use std::time::Instant;

use noesis_ai::models::{EMBEDDING_MODEL, known};
use noesis_ai::{EmbedOptions, Embedder};
use serde_json::{Value, json};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut model: Option<PathBuf> = None;
    let mut threads: Vec<usize> = vec![2, 1];
    let mut runs = 3usize;
    let mut batches: Vec<usize> = vec![1, 16];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next().map(PathBuf::from),
            "--threads" => {
                threads = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--runs" => runs = args.next().unwrap_or_default().parse()?,
            "--batch" => {
                batches = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let m = known(EMBEDDING_MODEL)?;
    let dir = model.unwrap_or_else(|| {
        std::env::var_os("NOESIS_MODEL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default()
                    .join(".noesis/dev/models")
            })
            .join(m.file)
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default()
    });

    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/ai/minilm.json"
    ))?)?;
    let sentences: Vec<String> = fixture["cases"]
        .as_array()
        .ok_or("fixture without cases")?
        .iter()
        .filter_map(|c| c["text"].as_str().map(String::from))
        .collect();
    let corpus: Vec<&str> = (0..4)
        .flat_map(|_| sentences.iter().map(String::as_str))
        .collect();
    let loadavg_start = loadavg();

    let mut results = serde_json::Map::new();
    let mut load_secs = Vec::new();
    let mut sha256 = String::new();
    for &t in &threads {
        let e = Embedder::load(
            &dir,
            &EmbedOptions {
                threads: t,
                pinned: Vec::new(),
            },
        )?;
        load_secs.push(e.info.load_secs);
        sha256.clone_from(&e.info.sha256);
        let tokens: usize = corpus
            .iter()
            .map(|s| e.tokenize(s).map(|ids| ids.len()))
            .sum::<Result<_, _>>()?;
        for &batch in &batches {
            let pass = || -> Result<(), noesis_ai::AiError> {
                for chunk in corpus.chunks(batch) {
                    e.embed_batch(chunk)?;
                }
                Ok(())
            };
            // Warm-up on the first 16 sentences.
            for chunk in corpus[..16].chunks(batch) {
                e.embed_batch(chunk)?;
            }
            let mut secs = Vec::with_capacity(runs);
            for _ in 0..runs {
                let started = Instant::now();
                pass()?;
                secs.push(started.elapsed().as_secs_f64());
            }
            let mut sorted = secs.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            let best = sorted[0];
            let rate = |n: usize, s: f64| (n as f64 / s * 100.0).round() / 100.0;
            eprintln!(
                "minilm threads={t} batch={batch}: {:.1} sentences/s (median), {:.1} best",
                corpus.len() as f64 / median,
                corpus.len() as f64 / best
            );
            results.insert(
                format!("threads{t}_batch{batch}"),
                json!({
                    "threads": t,
                    "batch_size": batch,
                    "seconds": secs.iter().map(|s| (s * 1e4).round() / 1e4).collect::<Vec<_>>(),
                    "sentences_per_s_median": rate(corpus.len(), median),
                    "sentences_per_s_best": rate(corpus.len(), best),
                    "tokens_per_s_median": rate(tokens, median),
                }),
            );
        }
    }
    let out = json!({
        "header": {
            "generator": "cargo run --release -p noesis-ai --example embed_speed",
            "model_dir": dir,
            "model_sha256": sha256,
            "machine": {
                "cpus": std::thread::available_parallelism().map_or(1, usize::from),
                "loadavg_at_start": loadavg_start,
                "loadavg_at_end": loadavg(),
            },
            "method": "Embedder::embed_batch over the corpus in chunks of B, fresh Embedder per \
                       thread count (its rayon pool runs the matmuls too); corpus = the fixture's \
                       21 sentences x 4 (84 sentences); warm-up on the first 16, then timed runs, \
                       median. Includes tokenization, pooling and normalization.",
            "load_seconds": load_secs,
            "peak_rss_mib": peak_rss_mib(),
        },
        "runs": results,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect()
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}
