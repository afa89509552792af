//! Runtime speed the way llama.cpp's `llama-bench` measures it: prefill of a 512-token
//! prompt in one forward (pp512) and 128 single-token decode steps from an empty cache
//! (tg128, greedy, end-of-generation ignored), best and median of several runs; plus
//! load time and peak RSS. `noesis ai bench` prints it beside llama.cpp's figures.

use std::time::Instant;

use serde::Serialize;

use crate::error::{AiError, Result};
use crate::generate::Engine;
use crate::model::Logits;
use crate::sampling::argmax;

/// Text repeated to make the prefill prompt.
const PASSAGE: &str = "The lighthouse stood on the northern cape for two hundred years, \
    guiding fishing boats and merchant ships through fog and storm. Its keepers wrote \
    in a logbook every night: the weather, the ships that passed, the state of the lamp. \
    Reading those pages today, one finds a quiet history of the sea, of trade and of the \
    people who waited on the shore for those who did not come back.\n\n";

/// One speed measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Speed {
    /// Threads the model ran with.
    pub threads: usize,
    /// Prompt tokens in the prefill.
    pub prefill_tokens: usize,
    /// Prefill tokens per second, median run.
    pub prefill_tps_median: f64,
    /// Prefill tokens per second, best run.
    pub prefill_tps_best: f64,
    /// Decode steps.
    pub decode_tokens: usize,
    /// Decode tokens per second, median run.
    pub decode_tps_median: f64,
    /// Decode tokens per second, best run.
    pub decode_tps_best: f64,
    /// Seconds to load the model.
    pub load_secs: f64,
    /// Peak resident memory of the process so far, MiB (`VmHWM`).
    pub peak_rss_mib: Option<f64>,
}

/// `prefill` tokens of the passage, repeated.
pub fn prefill_prompt(engine: &Engine, prefill: usize) -> Result<Vec<u32>> {
    let once = engine.tokenizer.encode(PASSAGE, false)?;
    if once.is_empty() {
        return Err(AiError::Tokenizer(
            "the passage encodes to no tokens".into(),
        ));
    }
    Ok(once.iter().copied().cycle().take(prefill).collect())
}

/// Measures prefill of `prefill` tokens and `decode` decode steps, `runs` times each.
pub fn speed(engine: &Engine, prefill: usize, decode: usize, runs: usize) -> Result<Speed> {
    let prompt = prefill_prompt(engine, prefill)?;
    let runs = runs.max(1);
    // Warm-up: a short prefill and a few steps.
    let mut warm = engine.model.session(64)?;
    engine
        .model
        .forward(&mut warm, &prompt[..16.min(prompt.len())], Logits::Last)?;
    let mut prefill_secs = Vec::with_capacity(runs);
    let mut decode_secs = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut session = engine.model.session(prompt.len().max(1))?;
        let t = Instant::now();
        engine.model.forward(&mut session, &prompt, Logits::Last)?;
        prefill_secs.push(t.elapsed().as_secs_f64());

        let mut session = engine.model.session(decode + 1)?;
        let mut token = prompt[0];
        let t = Instant::now();
        for _ in 0..decode {
            let forward = engine.model.forward(&mut session, &[token], Logits::Last)?;
            let logits = forward
                .last_logits()
                .ok_or_else(|| AiError::Model("no logits".into()))?;
            token = argmax(logits).unwrap_or(0);
        }
        decode_secs.push(t.elapsed().as_secs_f64());
    }
    let (p_med, p_best) = median_and_best(&mut prefill_secs);
    let (d_med, d_best) = median_and_best(&mut decode_secs);
    Ok(Speed {
        threads: engine.model.threads(),
        prefill_tokens: prompt.len(),
        prefill_tps_median: prompt.len() as f64 / p_med,
        prefill_tps_best: prompt.len() as f64 / p_best,
        decode_tokens: decode,
        decode_tps_median: decode as f64 / d_med,
        decode_tps_best: decode as f64 / d_best,
        load_secs: engine.info.load_secs,
        peak_rss_mib: peak_rss_mib(),
    })
}

fn median_and_best(secs: &mut [f64]) -> (f64, f64) {
    secs.sort_by(f64::total_cmp);
    let best = secs.first().copied().unwrap_or(f64::NAN).max(1e-9);
    let median = secs
        .get(secs.len() / 2)
        .copied()
        .unwrap_or(f64::NAN)
        .max(1e-9);
    (median, best)
}

/// The process's peak resident set (`VmHWM` in `/proc/self/status`), MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
