//! How far this runtime's logits are from llama.cpp's on the greedy fixtures
//! (`tests/fixtures/ai/greedy.json`): teacher-forced on each llama.cpp run's tokens, the
//! largest |Δ logit| over the recorded top logits of the first steps, per prompt and run.
//! `cargo run -p noesis-ai --example logit_diff [-- --threads N]`

use std::path::PathBuf;

use noesis_ai::models::KNOWN_MODELS;
use noesis_ai::{Engine, LoadOptions, Logits};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let model = std::env::var_os("NOESIS_MODEL_DIR")
        .map_or_else(|| home.join(".noesis/dev/models"), PathBuf::from)
        .join(KNOWN_MODELS[0].file);
    let threads = std::env::args()
        .skip_while(|a| a != "--threads")
        .nth(1)
        .map_or(2, |v| v.parse().expect("--threads N"));
    let e = Engine::load(
        &model,
        &LoadOptions {
            threads,
            expected_sha256: None,
        },
    )
    .unwrap();
    let f: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/ai/greedy.json")).unwrap(),
    )
    .unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    for case in f["cases"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        let mut line = format!("{:<18}", case["name"].as_str().unwrap());
        for run in ["default", "fa_off", "fa_off_kv_f32"] {
            let r = &case["runs"][run];
            let reference = ids(&r["generated_ids"]);
            let mut all = prompt.clone();
            all.extend_from_slice(&reference[..reference.len() - 1]);
            let fwd = e.prefill(&all, Logits::All).unwrap();
            let mut worst = 0f64;
            let mut first = 0f64;
            for (i, top) in r["top_logits"].as_array().unwrap().iter().enumerate() {
                let logits = fwd.logits(prompt.len() - 1 + i).unwrap();
                for t in top.as_array().unwrap() {
                    let id = t["id"].as_u64().unwrap() as usize;
                    let d = (f64::from(logits[id]) - t["logit"].as_f64().unwrap()).abs();
                    worst = worst.max(d);
                    if i == 0 {
                        first = first.max(d);
                    }
                }
            }
            line.push_str(&format!(" {run}: step0 {first:.2e} all {worst:.2e} |"));
        }
        println!("{line}");
    }
}
