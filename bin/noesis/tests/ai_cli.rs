//! `noesis ai generate --receipt`, `ai prove` and `ai verify` end to end on the real
//! SmolLM2 model (installed by `noesis model fetch`, which `scripts/test.sh` runs
//! first): an honest receipt is accepted (exit 0), a tampered or re-attested one is
//! rejected with its reason (exit 1), and malformed input exits 2 with a JSON reason.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn noesis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_noesis"))
        .args(args)
        .output()
        .expect("run noesis")
}

fn verdict(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}): stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn verify(receipt: &Path) -> (Option<i32>, Value) {
    let out = noesis(&["ai", "verify", "--threads", "1", receipt.to_str().unwrap()]);
    (out.status.code(), verdict(&out))
}

#[test]
fn generate_prove_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let receipt = dir.path().join("receipt.json");
    let r = receipt.to_str().unwrap();
    let request = [
        "--prompt",
        "Name three fruits.",
        "--system",
        "You are brief.",
        "--max-tokens",
        "12",
        "--temperature",
        "0.8",
        "--top-p",
        "0.95",
        "--seed",
        "5",
    ];
    let mut args = vec!["ai", "generate", "--threads", "2", "--receipt", r];
    args.extend(request);
    let out = noesis(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, v) = verify(&receipt);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["verdict"], "accept");
    assert_eq!(v["reason"], Value::Null);
    assert!(v["checked_tokens"].as_u64().unwrap() > 0);
    assert!(v["seconds"].as_f64().is_some());

    // The file edited by hand: the text no longer matches its signed hash.
    let mut json: Value = serde_json::from_slice(&std::fs::read(&receipt).unwrap()).unwrap();
    json["output"]["text"] = Value::from("Apples, pears and plums.");
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&json).unwrap()).unwrap();
    let (code, v) = verify(&tampered);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["reason"], "output_text_hash_mismatch");

    // The same text re-attested honestly with `ai prove` is accepted only if the model
    // would have sampled it; an invented answer is not.
    let answer = dir.path().join("answer.txt");
    std::fs::write(&answer, "Quantum bananas orbit Jupiter in silence.").unwrap();
    let proved = dir.path().join("proved.json");
    let mut args = vec![
        "ai",
        "prove",
        "--threads",
        "2",
        "--output-file",
        answer.to_str().unwrap(),
        "--receipt",
        proved.to_str().unwrap(),
    ];
    args.extend(request);
    let out = noesis(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, v) = verify(&proved);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["reason"], "token_not_sampled");

    // Not a receipt at all.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, b"{\"version\": 1").unwrap();
    let (code, v) = verify(&junk);
    assert_eq!(code, Some(2), "{v}");
    assert_eq!(v["verdict"], "malformed");
    assert_eq!(v["reason"], "malformed_receipt");
    let (code, v) = verify(&dir.path().join("missing.json"));
    assert_eq!(code, Some(2), "{v}");
    assert_eq!(v["reason"], "unreadable_receipt");
}

#[test]
fn a_prompt_longer_than_the_context_is_a_clear_error() {
    let prompt = "word ".repeat(9000);
    let out = noesis(&["ai", "generate", "--prompt", &prompt, "--max-tokens", "4"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exceed the context length (8192 tokens)"),
        "{stderr}"
    );
}
