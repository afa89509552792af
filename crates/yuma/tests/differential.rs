//! Differential tests: the optimized epoch against a literal transcription of the reference
//! (`common::reference_epoch`) on random subnets, including inputs the vectors do not cover
//! (rows in non-ascending order, out-of-range columns, bonds penalties strictly between 0 and 1
//! with liquid alpha, owners outside the subnet, negative EMA rates...).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{GenOptions, Rng, random_inputs, reference_epoch};
use noesis_yuma::{Outputs, Workspace, epoch, epoch_with, parse_inputs};
use serde::Deserialize;

fn first_difference(a: &Outputs, b: &Outputs) -> String {
    let a = serde_json::to_value(a).unwrap();
    let b = serde_json::to_value(b).unwrap();
    for (k, av) in a.as_object().unwrap() {
        if b[k] != *av {
            return format!("field {k}: optimized {av} vs reference {}", b[k]);
        }
    }
    "no difference".to_owned()
}

fn run_cases(seed: u64, cases: usize, opts: GenOptions) {
    let mut rng = Rng(seed);
    // One workspace reused across all cases (of different sizes and variants): the results
    // must not depend on what it was used for before.
    let mut ws = Workspace::default();
    let (mut with_consensus, mut liquid, mut bonds, mut dividends) = (0, 0, 0, 0);
    for case in 0..cases {
        let inputs = random_inputs(&mut rng, opts);
        let got = epoch(&inputs);
        let has_consensus = got.consensus.iter().any(|c| c.to_bits() != 0);
        with_consensus += usize::from(has_consensus);
        let hp = inputs.hyperparams();
        liquid += usize::from(has_consensus && hp.yuma3_enabled && hp.liquid_alpha_enabled);
        bonds += usize::from(got.bonds_new.iter().any(|r| !r.is_empty()));
        dividends += usize::from(got.dividends.iter().any(|d| d.to_bits() != 0));
        let want = reference_epoch(&inputs);
        let reused = epoch_with(&mut ws, &inputs);
        assert!(
            reused == got,
            "seed {seed} case {case}: workspace reuse changed the result"
        );
        assert!(
            got == want,
            "seed {seed} case {case}: {}\ninputs: {}",
            first_difference(&got, &want),
            serde_json::to_string(&inputs).unwrap()
        );
    }
    eprintln!(
        "seed {seed}: {cases} cases, {with_consensus} with consensus, {liquid} liquid alpha, \
         {bonds} with stored bonds, {dividends} with dividends"
    );
}

#[test]
fn matches_reference_on_sorted_random_subnets() {
    run_cases(
        1,
        2000,
        GenOptions {
            max_n: 24,
            unsorted: false,
            heavy: false,
            original: false,
        },
    );
}

#[test]
fn matches_reference_on_unsorted_random_subnets() {
    run_cases(
        2,
        2000,
        GenOptions {
            max_n: 24,
            unsorted: true,
            heavy: false,
            original: false,
        },
    );
}

#[test]
fn matches_reference_on_larger_random_subnets() {
    run_cases(
        3,
        100,
        GenOptions {
            max_n: 200,
            unsorted: true,
            heavy: false,
            original: false,
        },
    );
}

#[test]
fn matches_reference_on_heavy_random_subnets() {
    // Many validators per column (the bucketed quantile, the merged bond rows), equal and
    // widely spread scores, bonds on the weighted columns.
    run_cases(
        4,
        300,
        GenOptions {
            max_n: 160,
            unsorted: false,
            heavy: true,
            original: false,
        },
    );
    run_cases(
        5,
        100,
        GenOptions {
            max_n: 160,
            unsorted: true,
            heavy: true,
            original: false,
        },
    );
}

#[test]
fn matches_reference_on_original_yuma() {
    // Original Yuma with bonds penalty 0 or 1 (clipping fused with the bond EMA), sorted and
    // unsorted rows, small and heavy subnets.
    for (seed, cases, max_n, unsorted, heavy) in [
        (6, 1500, 24, false, false),
        (7, 1500, 24, true, false),
        (8, 200, 160, false, true),
        (9, 100, 160, true, true),
    ] {
        run_cases(
            seed,
            cases,
            GenOptions {
                max_n,
                unsorted,
                heavy,
                original: true,
            },
        );
    }
}

/// The transcription itself reproduces the vectors (so the differential tests compare against
/// something that is known to be right).
#[test]
fn reference_model_reproduces_small_vectors() {
    let dir = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testvectors/yuma"
    ));
    if !dir.is_dir() {
        eprintln!("SKIPPED: {} not found", dir.display());
        return;
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let steps: Vec<&serde_json::Value> = match doc["meta"]["kind"].as_str() {
            Some("single") => vec![&doc],
            _ => doc["steps"].as_array().unwrap().iter().collect(),
        };
        for step in steps {
            let inputs = parse_inputs(step).unwrap();
            if inputs.state().n > 512 {
                continue;
            }
            let expected = Outputs::deserialize(&step["outputs"]).unwrap();
            assert!(reference_epoch(&inputs) == expected, "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked > 0);
}
