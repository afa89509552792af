//! Speed of the runtime on the llama.cpp baseline's workload, printed as JSON:
//! prefill of the 512-token prompt recorded in `tests/ai-reference/baselines/
//! llama-speed.json` (one forward, fresh KV cache), greedy decode of 128 tokens from an
//! empty context and after 511 prefilled tokens (llama-bench `tg128` style: 128
//! single-token forwards, sampling included), load time and peak RSS (`VmHWM`). Mirrors
//! `make-fixtures.mjs --only speed`; `scripts/ai-speed.sh` runs both and prints ratios.
//!
//! ```sh
//! cargo run --release -p noesis-ai --example speed -- --threads 2 [--model FILE] [--runs 5]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use noesis_ai::models::KNOWN_MODELS;
use noesis_ai::sampling::argmax;
use noesis_ai::{Engine, Forward, LoadOptions, Logits};

struct Args {
    model: PathBuf,
    threads: usize,
    runs: usize,
    prompt: PathBuf,
    /// Which measurements to run (all by default; fewer for profiling).
    phases: Vec<String>,
}

fn args() -> Args {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let mut a = Args {
        model: std::env::var_os("NOESIS_MODEL_DIR")
            .map_or_else(|| home.join(".noesis/dev/models"), PathBuf::from)
            .join(KNOWN_MODELS[0].file),
        threads: 2,
        runs: 5,
        prompt: root.join("tests/ai-reference/baselines/llama-speed.json"),
        phases: ["prefill", "decode", "deep"].map(String::from).to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = PathBuf::from(value()),
            "--threads" => a.threads = value().parse().expect("--threads N"),
            "--runs" => a.runs = value().parse().expect("--runs N"),
            "--prompt-ids" => a.prompt = PathBuf::from(value()),
            "--phases" => a.phases = value().split(',').map(String::from).collect(),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// utime + stime of this process, seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    // After the command name: state is field 3; utime and stime are fields 14 and 15.
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    match (ticks(14), ticks(15)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

fn status_kib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// Times and CPU seconds of `runs` calls of `f`, as a JSON object for `tokens` tokens.
fn measure(runs: usize, tokens: usize, mut f: impl FnMut() -> f64) -> serde_json::Value {
    let cpu0 = cpu_seconds();
    let secs: Vec<f64> = (0..runs).map(|_| f()).collect();
    let cpu = cpu_seconds() - cpu0;
    let best = secs.iter().copied().fold(f64::INFINITY, f64::min);
    serde_json::json!({
        "seconds": secs.iter().map(|s| round(*s, 4)).collect::<Vec<_>>(),
        "tok_per_s_median": round(tokens as f64 / median(&secs), 2),
        "tok_per_s_best": round(tokens as f64 / best, 2),
        "cpu_seconds_per_run": round(cpu / runs as f64, 3),
    })
}

fn main() {
    let a = args();
    let load_start = loadavg();
    let baseline: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a.prompt).expect("read the prompt ids"))
            .expect("parse the prompt ids");
    let ids: Vec<u32> = baseline["header"]["prompt_ids"]
        .as_array()
        .expect("header.prompt_ids")
        .iter()
        .map(|v| v.as_u64().expect("an id") as u32)
        .collect();
    assert_eq!(ids.len(), 512);

    let t = Instant::now();
    let engine = Engine::load(
        &a.model,
        &LoadOptions {
            threads: a.threads,
            expected_sha256: None,
        },
    )
    .expect("load the model");
    let load_seconds = t.elapsed().as_secs_f64();
    let rss_after_load = status_kib("VmRSS:") / 1024.0;
    let model = &engine.model;
    let mut fwd = Forward {
        start: 0,
        n_tokens: 0,
        n_embd: 0,
        vocab: 0,
        hidden: Vec::new(),
        logits: Vec::new(),
        logits_from: 0,
    };

    // Warm-up (16 tokens), then pp512 on a fresh cache each time (llama.cpp computes
    // the last position's logits only).
    let mut s = model.session(1024).unwrap();
    model
        .forward_into(&mut s, &ids[..16], Logits::Last, &mut fwd)
        .unwrap();
    let phase = |p: &str| a.phases.iter().any(|x| x == p);
    let skipped = serde_json::Value::Null;
    let prefill = if !phase("prefill") {
        skipped.clone()
    } else {
        measure(a.runs, 512, || {
            s.truncate(0);
            let t = Instant::now();
            model
                .forward_into(&mut s, &ids, Logits::Last, &mut fwd)
                .unwrap();
            t.elapsed().as_secs_f64()
        })
    };

    let mut decode = |prefix: &[u32]| {
        let mut first = Vec::new();
        let m = measure(a.runs, 128, || {
            s.truncate(0);
            let pre = prefix.len() - 1;
            if pre > 0 {
                model
                    .forward_into(&mut s, &prefix[..pre], Logits::None, &mut fwd)
                    .unwrap();
            }
            let t = Instant::now();
            let mut next = prefix[pre];
            first.clear();
            for _ in 0..128 {
                model
                    .forward_into(&mut s, &[next], Logits::Last, &mut fwd)
                    .unwrap();
                next = argmax(fwd.last_logits().unwrap()).unwrap();
                first.push(next);
            }
            t.elapsed().as_secs_f64()
        });
        let mut m = m;
        m["first_tokens"] = serde_json::json!(first[..16]);
        m
    };
    let tg_empty = if phase("decode") {
        decode(&ids[..1])
    } else {
        skipped.clone()
    };
    let tg_deep = if phase("deep") { decode(&ids) } else { skipped };

    let out = serde_json::json!({
        "runtime": "noesis-ai",
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "threads": a.threads,
        "load_seconds": round(load_seconds, 4),
        "rss_after_load_mib": round(rss_after_load, 1),
        "prefill_512": prefill,
        "decode_128_from_empty": tg_empty,
        "decode_128_after_511": tg_deep,
        "peak_rss_mib": round(status_kib("VmHWM:") / 1024.0, 1),
        "loadavg_1m_start_end": [load_start, loadavg()],
    });
    println!("{out}");
}
