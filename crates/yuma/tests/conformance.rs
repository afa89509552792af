//! Conformance against the Subtensor-derived test vectors in `shared/testvectors/yuma/`.
//!
//! Every `*.json` file is run through [`noesis_yuma::run_vector_json`] and every output field of
//! every epoch must equal the expected one exactly (`bits`, `u16`, `f64` companions, integers,
//! booleans, sparse bond rows).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use serde_json::Value;

fn vector_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testvectors/yuma"
    ))
}

fn vector_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn numbers_equal(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    if a.is_f64() || b.is_f64() {
        return a.as_f64().map(f64::to_bits) == b.as_f64().map(f64::to_bits);
    }
    false
}

/// The exact value of I32F32 bits.
#[allow(clippy::float_arithmetic)]
fn exact_f64(bits: i64) -> f64 {
    bits as f64 / 4294967296.0
}

/// Checks an `f64` companion: the computed one must be exactly `bits / 2^32`; the expected one
/// (as parsed by serde_json, whose default float parser is not correctly rounded and can be off
/// by a few units in the last place, e.g. for `2.2677704691886902e-07`) must be within 8 ulps.
fn check_f64(path: &str, bits: &Value, expected: &Value, got: &Value, out: &mut Vec<String>) {
    let (Some(b), Some(e), Some(g)) = (bits.as_i64(), expected.as_f64(), got.as_f64()) else {
        out.push(format!(
            "{path}: expected {expected}, got {got} (bits {bits})"
        ));
        return;
    };
    let exact = exact_f64(b);
    let ulps = (e.to_bits() as i64 - exact.to_bits() as i64).abs();
    if g.to_bits() != exact.to_bits() || ulps > 8 {
        out.push(format!(
            "{path}: expected {e}, got {g} (bits {b}, exact {exact})"
        ));
    }
}

/// Records the differences between `expected` and `got` below `path` (at most `limit`).
fn diff(path: &str, expected: &Value, got: &Value, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    // I32F32 encoding: compare `bits` (and `u16`) exactly, `f64` against the bits.
    if let (Some(eb), Some(ef), Some(gb), Some(gf)) = (
        expected.get("bits"),
        expected.get("f64"),
        got.get("bits"),
        got.get("f64"),
    ) {
        diff(&format!("{path}.bits"), eb, gb, out, limit);
        if let Some(eu) = expected.get("u16") {
            diff(
                &format!("{path}.u16"),
                eu,
                got.get("u16").unwrap_or(&Value::Null),
                out,
                limit,
            );
        } else if got.get("u16").is_some() {
            out.push(format!("{path}.u16: not in the expected output"));
        }
        match (eb, ef, gf) {
            (Value::Array(bits), Value::Array(e), Value::Array(g)) => {
                if bits.len() != e.len() || e.len() != g.len() {
                    out.push(format!("{path}.f64: length mismatch"));
                    return;
                }
                for (i, ((b, e), g)) in bits.iter().zip(e).zip(g).enumerate() {
                    check_f64(&format!("{path}.f64[{i}]"), b, e, g, out);
                }
            }
            (b, e, g) => check_f64(&format!("{path}.f64"), b, e, g, out),
        }
        return;
    }
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => {
            for (k, ev) in e {
                match g.get(k) {
                    Some(gv) => diff(&format!("{path}.{k}"), ev, gv, out, limit),
                    None => out.push(format!("{path}.{k}: missing from the computed output")),
                }
            }
            for k in g.keys() {
                if !e.contains_key(k) {
                    out.push(format!("{path}.{k}: not in the expected output"));
                }
            }
        }
        (Value::Array(e), Value::Array(g)) => {
            if e.len() != g.len() {
                out.push(format!(
                    "{path}: expected {} entries, got {}",
                    e.len(),
                    g.len()
                ));
                return;
            }
            for (i, (ev, gv)) in e.iter().zip(g).enumerate() {
                diff(&format!("{path}[{i}]"), ev, gv, out, limit);
            }
        }
        (Value::Number(e), Value::Number(g)) if numbers_equal(e, g) => {}
        (e, g) if e == g => {}
        (e, g) => out.push(format!("{path}: expected {e}, got {g}")),
    }
}

/// Compares one file; returns the number of epochs checked or the differences found.
fn check_file(path: &Path) -> Result<usize, Vec<String>> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    let got =
        noesis_yuma::run_vector_json(&text).map_err(|e| vec![format!("{name}: error: {e}")])?;
    let mut diffs = Vec::new();
    let limit = 20;
    match expected["meta"]["kind"].as_str() {
        Some("single") => {
            diff(
                &format!("{name}: outputs"),
                &expected["outputs"],
                &got["outputs"],
                &mut diffs,
                limit,
            );
            if diffs.is_empty() { Ok(1) } else { Err(diffs) }
        }
        Some("sequence") => {
            let e_steps = expected["steps"].as_array().unwrap();
            let g_steps = got["steps"].as_array().unwrap();
            if e_steps.len() != g_steps.len() {
                return Err(vec![format!(
                    "{name}: expected {} steps, got {}",
                    e_steps.len(),
                    g_steps.len()
                )]);
            }
            for (k, (e, g)) in e_steps.iter().zip(g_steps).enumerate() {
                diff(
                    &format!("{name}: steps[{k}].outputs"),
                    &e["outputs"],
                    &g["outputs"],
                    &mut diffs,
                    limit,
                );
            }
            if diffs.is_empty() {
                Ok(e_steps.len())
            } else {
                Err(diffs)
            }
        }
        other => Err(vec![format!("{name}: unknown kind {other:?}")]),
    }
}

#[test]
fn all_vectors_match_exactly() {
    let dir = vector_dir();
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED: test vector directory {} not found; conformance not checked",
            dir.display()
        );
        return;
    }
    let files = vector_files(&dir);
    assert!(!files.is_empty(), "no *.json vectors in {}", dir.display());
    let mut failures = Vec::new();
    let mut passed = 0usize;
    let mut epochs = 0usize;
    for path in &files {
        match check_file(path) {
            Ok(k) => {
                passed += 1;
                epochs += k;
            }
            Err(diffs) => failures.push(diffs.join("\n  ")),
        }
    }
    eprintln!(
        "{passed}/{} vector files match exactly ({epochs} epochs)",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} vector files differ:\n  {}",
        failures.len(),
        files.len(),
        failures.join("\n  ")
    );
}
