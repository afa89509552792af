//! Times `noesis_yuma::epoch` on the large test vectors, single-threaded.
//!
//! ```text
//! cargo run --release -p noesis-yuma --example epoch_bench [-- <iterations> [<name filter> [<vector dir>]]]
//! ```
//!
//! For every `random_*` vector it first checks that the computed outputs equal the expected
//! ones bit for bit, then reports the median / mean / min time per epoch. It also times two
//! derived inputs without expected outputs (so only timed, not checked): `random_4096_y3` with
//! liquid alpha switched on, and with Yuma3 switched off (original Yuma).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use noesis_yuma::{Inputs, Outputs, epoch, parse_inputs};
use serde::Deserialize;
use serde_json::Value;

fn time_epoch(inputs: &Inputs, iterations: usize) -> (Duration, Duration, Duration) {
    if iterations == 0 {
        return Default::default();
    }
    // Warm-up.
    std::hint::black_box(epoch(std::hint::black_box(inputs)));
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(epoch(std::hint::black_box(inputs)));
            t.elapsed()
        })
        .collect();
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len()).unwrap();
    (samples[samples.len() / 2], mean, samples[0])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: usize = args.next().map_or(50, |s| s.parse().expect("iterations"));
    let filter = args.next().unwrap_or_default();
    let dir = args.next().map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testvectors/yuma")),
        PathBuf::from,
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("random_") && n.ends_with(".json"))
        .collect();
    names.sort();

    println!("{:<44} {:>6} {:>9} {:>10} {:>9} {:>9}", "input", "n", "nnz(W)", "median ms", "mean ms", "min ms");
    let mut base_4096: Option<Inputs> = None;
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let wanted = name.contains(&filter);
        if !wanted && !(name == "random_4096_y3.json" && filter.starts_with("random_4096_y3 ")) {
            continue;
        }
        if doc["meta"]["kind"] != "single" {
            continue;
        }
        let inputs = parse_inputs(&doc).unwrap();
        let expected = Outputs::deserialize(&doc["outputs"]).unwrap();
        let got = epoch(&inputs);
        assert!(got == expected, "{name}: outputs differ from the vector");
        if wanted {
            report(&format!("{name} (bit-exact)"), &inputs, iterations);
        }
        if name == "random_4096_y3.json" {
            base_4096 = Some(inputs);
        }
    }
    if let Some(base) = base_4096 {
        let (hp, st) = base.into_parts();
        let label = "random_4096_y3 + liquid alpha (timing only)";
        if label.contains(&filter) {
            let mut liquid = hp.clone();
            liquid.liquid_alpha_enabled = true;
            report(label, &Inputs::new(liquid, st.clone()).unwrap(), iterations);
        }
        let label = "random_4096_y3 as Yuma2 (timing only)";
        if label.contains(&filter) {
            let mut original = hp;
            original.yuma3_enabled = false;
            report(label, &Inputs::new(original, st).unwrap(), iterations);
        }
    }
}

fn report(label: &str, inputs: &Inputs, iterations: usize) {
    let st = inputs.state();
    let nnz: usize = st.weights.iter().map(Vec::len).sum();
    let (median, mean, min) = time_epoch(inputs, iterations);
    println!(
        "{label:<44} {:>6} {nnz:>9} {:>10.3} {:>9.3} {:>9.3}",
        st.n,
        ms(median),
        ms(mean),
        ms(min)
    );
}
