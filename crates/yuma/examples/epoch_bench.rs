//! Times `noesis_yuma::epoch` on the large test vectors, single-threaded.
//!
//! ```text
//! cargo run --release -p noesis-yuma --example epoch_bench [-- <iterations> [<filter> [<vector dir>]]]
//! ```
//!
//! For every `random_*` vector whose name contains `<filter>` it first checks that the computed
//! outputs equal the expected ones bit for bit, then reports the median / mean / min wall time
//! per epoch over `<iterations>` runs (after one warm-up run), once for `epoch` (its per-thread
//! workspace) and once for `epoch_with` and a caller-kept `Workspace` (`[ws]` rows). Each
//! epoch's outputs are dropped before the next one (their allocation is part of the time). It
//! also times derived inputs that have no expected outputs (timed, not checked):
//! `random_4096_y3` with liquid alpha switched on (with its bonds_penalty of 1, and with
//! bonds_penalty 0, where every bond cell needs its own sigmoid), and with Yuma3 switched off
//! (original Yuma). With 0 iterations every selected input runs exactly one epoch (for
//! profilers).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use noesis_yuma::{Inputs, Outputs, Workspace, epoch, epoch_with, parse_inputs};
use serde::Deserialize;
use serde_json::Value;

const LIQUID: &str = "random_4096_y3 + liquid alpha (timing only)";
const LIQUID_P0: &str = "random_4096_y3 + liquid alpha, penalty 0 (timing)";
const YUMA2: &str = "random_4096_y3 as Yuma2 (timing only)";

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: usize = args.next().map_or(50, |s| s.parse().expect("iterations"));
    let filter = args.next().unwrap_or_default();
    let dir = args.next().map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/testvectors/yuma"
            ))
        },
        PathBuf::from,
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("random_") && n.ends_with(".json"))
        .collect();
    names.sort();
    let derived_wanted =
        LIQUID.contains(&filter) || LIQUID_P0.contains(&filter) || YUMA2.contains(&filter);

    println!(
        "{:<52} {:>6} {:>9} {:>10} {:>9} {:>9}",
        "input", "n", "nnz(W)", "median ms", "mean ms", "min ms"
    );
    for name in &names {
        let wanted = name.contains(&filter);
        let is_base = name == "random_4096_y3.json";
        if !(wanted || (is_base && derived_wanted)) {
            continue;
        }
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        if doc["meta"]["kind"] != "single" {
            continue;
        }
        let inputs = parse_inputs(&doc).unwrap();
        if wanted {
            let expected = Outputs::deserialize(&doc["outputs"]).unwrap();
            assert!(
                epoch(&inputs) == expected,
                "{name}: outputs differ from the vector"
            );
            report(&format!("{name} (bit-exact)"), &inputs, iterations);
        }
        if is_base && derived_wanted {
            let (hp, st) = inputs.into_parts();
            if LIQUID.contains(&filter) {
                let mut liquid = hp.clone();
                liquid.liquid_alpha_enabled = true;
                report(
                    LIQUID,
                    &Inputs::new(liquid, st.clone()).unwrap(),
                    iterations,
                );
            }
            if LIQUID_P0.contains(&filter) {
                let mut liquid = hp.clone();
                liquid.liquid_alpha_enabled = true;
                liquid.bonds_penalty = 0;
                report(
                    LIQUID_P0,
                    &Inputs::new(liquid, st.clone()).unwrap(),
                    iterations,
                );
            }
            if YUMA2.contains(&filter) {
                let mut original = hp;
                original.yuma3_enabled = false;
                report(YUMA2, &Inputs::new(original, st).unwrap(), iterations);
            }
        }
    }
}

fn report(label: &str, inputs: &Inputs, iterations: usize) {
    let st = inputs.state();
    let nnz: usize = st.weights.iter().map(Vec::len).sum();
    if iterations == 0 {
        std::hint::black_box(epoch(std::hint::black_box(inputs)));
        println!("{label:<52} {:>6} {nnz:>9} (one epoch, not timed)", st.n);
        return;
    }
    let mut ws = Workspace::default();
    assert!(epoch_with(&mut ws, inputs) == epoch(inputs));
    let fresh = time(iterations, || epoch(std::hint::black_box(inputs)));
    let reused = time(iterations, || {
        epoch_with(&mut ws, std::hint::black_box(inputs))
    });
    for (tag, samples) in [("", fresh), (" [ws]", reused)] {
        let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len()).unwrap();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<52} {:>6} {nnz:>9} {:>10.3} {:>9.3} {:>9.3}",
            format!("{label}{tag}"),
            st.n,
            ms(samples[samples.len() / 2]),
            ms(mean),
            ms(samples[0])
        );
    }
}

/// Sorted wall times of `iterations` calls, after one warm-up call.
fn time(iterations: usize, mut f: impl FnMut() -> Outputs) -> Vec<Duration> {
    std::hint::black_box(f());
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples
}
