//! The full detection matrix: honest and cheating provers against the verifier.
//!
//! ```text
//! cargo run --release -p noesis-ai --example detection -- \
//!     --model ~/.noesis/dev/models/SmolLM2-135M-Instruct.Q4_1.gguf \
//!     --adversaries DIR --cases 200 [--gen-threads 2 --verify-threads 1] [--json FILE]
//! ```
//!
//! `DIR` holds the adversary model files made by `tests/ai-adversaries/make-adversaries.py`:
//! every `perturbed-*.gguf`, `requant-*.gguf` and `reprec-*.gguf` becomes a model-swap
//! row; every `cheap-*.gguf` and `requant-*.gguf` a cheap-decoding row (decoded by it,
//! attested by the real model). The markdown table goes to stdout, progress to stderr.

use std::path::PathBuf;

use alloy_primitives::B256;
use alloy_signer_local::PrivateKeySigner;
use noesis_ai::proof::matrix::{self, Adversary, HonestPath, Setup};
use noesis_ai::proof::verify::Tolerances;
use noesis_ai::{Engine, LoadOptions};

struct Args {
    model: PathBuf,
    adversaries: Option<PathBuf>,
    cases: usize,
    gen_threads: usize,
    verify_threads: usize,
    json: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        model: PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".noesis/dev/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        adversaries: None,
        cases: 200,
        gen_threads: 2,
        verify_threads: 1,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = value()?.into(),
            "--adversaries" => args.adversaries = Some(value()?.into()),
            "--cases" => args.cases = value()?.parse().map_err(|e| format!("--cases: {e}"))?,
            "--gen-threads" => {
                args.gen_threads = value()?
                    .parse()
                    .map_err(|e| format!("--gen-threads: {e}"))?
            }
            "--verify-threads" => {
                args.verify_threads = value()?
                    .parse()
                    .map_err(|e| format!("--verify-threads: {e}"))?
            }
            "--json" => args.json = Some(value()?.into()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn load(path: &std::path::Path, threads: usize) -> Result<Engine, String> {
    let opts = LoadOptions {
        threads,
        expected_sha256: None,
    };
    Engine::load(path, &opts).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> Result<(), String> {
    let args = parse()?;
    let prover = load(&args.model, args.gen_threads)?;
    let verifier = load(&args.model, args.verify_threads)?;
    // The other way round, with the prompt fed 7 tokens per forward.
    let mut batched = load(&args.model, args.verify_threads)?;
    batched.prefill_batch = 7;
    let mut others: Vec<(String, bool, Engine)> = Vec::new();
    if let Some(dir) = &args.adversaries {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let cheap = name.starts_with("cheap-");
            eprintln!("loading adversary {name}");
            others.push((name, cheap, load(&path, args.gen_threads)?));
        }
    }
    let mut adversaries: Vec<(String, Adversary<'_>)> = others
        .iter()
        .map(|(name, cheap, engine)| {
            if *cheap {
                (
                    format!("cheap decoding, honest proof: {name}"),
                    Adversary::CheapDecode(engine),
                )
            } else {
                (format!("model swap: {name}"), Adversary::ModelSwap(engine))
            }
        })
        .collect();
    adversaries.extend([
        (
            "system prompt injected".to_string(),
            Adversary::SystemPrompt,
        ),
        (
            "system prompt injected, attested".to_string(),
            Adversary::SystemPromptAttested,
        ),
        ("edited output".to_string(), Adversary::Edited),
        ("truncated output".to_string(), Adversary::Truncated),
        (
            "truncated output + EOS".to_string(),
            Adversary::TruncatedEos,
        ),
        ("spliced output".to_string(), Adversary::Spliced),
        (
            "higher temperature".to_string(),
            Adversary::HigherTemperature,
        ),
        (
            "proof copied from another request".to_string(),
            Adversary::CopiedProof,
        ),
        (
            "proof of this output after another request's prompt (same length)".to_string(),
            Adversary::CopiedProofSameLength,
        ),
    ]);
    let setup = Setup {
        prover: &prover,
        verifier: &verifier,
        honest_paths: vec![HonestPath {
            name: format!(
                "honest (generated at {} threads with the prompt in pieces of 7, verified at {})",
                args.verify_threads, args.gen_threads
            ),
            prover: &batched,
            verifier: &prover,
        }],
        adversaries,
        tolerances: Tolerances::default(),
        key: PrivateKeySigner::from_bytes(&B256::repeat_byte(0x42)).map_err(|e| e.to_string())?,
    };
    let cases = matrix::cases(args.cases);
    let started = std::time::Instant::now();
    let mut rows = matrix::run(&setup, &cases, |i, rows| {
        eprintln!(
            "case {}/{} done, {:.0} s",
            i + 1,
            cases.len(),
            started.elapsed().as_secs_f64()
        );
        // The table so far, so that a long run can be read (or stopped) midway.
        if let Some(path) = &args.json {
            let _ = std::fs::write(
                path.with_extension("partial.md"),
                format!("after {} cases\n\n{}", i + 1, matrix::markdown(rows)),
            );
        }
    })
    .map_err(|e| e.to_string())?;
    rows[0].name = format!(
        "honest (generated at {} threads, verified at {})",
        args.gen_threads, args.verify_threads
    );
    println!("{}", matrix::markdown(&rows));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
