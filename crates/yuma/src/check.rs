//! Checking computed epoch outputs against a test vector's expected ones, exactly:
//! `bits`, `u16` and integer fields must be equal; an `f64` companion must be the exact
//! image of its `bits` (the expected one, as parsed by serde_json, whose float parser is
//! not always correctly rounded, within 8 units in the last place). Used by the
//! conformance tests and by `noesis yuma check`.

use serde_json::{Number, Value};

use crate::{Error, fixed::bits_to_f64, run_vector_json};

/// At most this many differences are reported per file.
const DIFF_LIMIT: usize = 20;

/// Runs the vector file `text` and compares every epoch's outputs with the expected
/// ones. Returns the number of epochs checked, or the differences found (each prefixed
/// with `name`).
pub fn check_vector(name: &str, text: &str) -> Result<usize, Vec<String>> {
    let expected: Value = serde_json::from_str(text)
        .map_err(|e| vec![format!("{name}: vector file is not valid JSON: {e}")])?;
    let got = run_vector_json(text).map_err(|e: Error| vec![format!("{name}: error: {e}")])?;
    compare_outputs(name, &expected, &got)
}

/// Compares the output of [`run_vector_json`] (`got`) with the vector document
/// `expected`. Returns the number of epochs checked, or the differences found.
pub fn compare_outputs(name: &str, expected: &Value, got: &Value) -> Result<usize, Vec<String>> {
    let mut diffs = Vec::new();
    let kind = expected.get("meta").and_then(|m| m.get("kind"));
    let epochs = match kind.and_then(Value::as_str) {
        Some("single") => {
            diff(
                &format!("{name}: outputs"),
                expected.get("outputs").unwrap_or(&Value::Null),
                got.get("outputs").unwrap_or(&Value::Null),
                &mut diffs,
            );
            1
        }
        Some("sequence") => {
            let steps = |v: &Value| v.get("steps").and_then(Value::as_array).cloned();
            let (Some(e_steps), Some(g_steps)) = (steps(expected), steps(got)) else {
                return Err(vec![format!("{name}: no steps to compare")]);
            };
            if e_steps.len() != g_steps.len() {
                return Err(vec![format!(
                    "{name}: expected {} steps, got {}",
                    e_steps.len(),
                    g_steps.len()
                )]);
            }
            for (k, (e, g)) in e_steps.iter().zip(&g_steps).enumerate() {
                diff(
                    &format!("{name}: steps[{k}].outputs"),
                    e.get("outputs").unwrap_or(&Value::Null),
                    g.get("outputs").unwrap_or(&Value::Null),
                    &mut diffs,
                );
            }
            e_steps.len()
        }
        _ => return Err(vec![format!("{name}: unknown kind {kind:?}")]),
    };
    if diffs.is_empty() {
        Ok(epochs)
    } else {
        Err(diffs)
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
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

/// Checks an `f64` companion against its I32F32 `bits`.
fn check_f64(path: &str, bits: &Value, expected: &Value, got: &Value, out: &mut Vec<String>) {
    let (Some(b), Some(e), Some(g)) = (bits.as_i64(), expected.as_f64(), got.as_f64()) else {
        out.push(format!(
            "{path}: expected {expected}, got {got} (bits {bits})"
        ));
        return;
    };
    let exact = bits_to_f64(b, 32);
    let same_sign = (e.to_bits() >> 63) == (exact.to_bits() >> 63);
    let ulps = e.to_bits().abs_diff(exact.to_bits());
    if g.to_bits() != exact.to_bits() || !same_sign || ulps > 8 {
        out.push(format!(
            "{path}: expected {e}, got {g} (bits {b}, exact {exact})"
        ));
    }
}

/// Records the differences between `expected` and `got` below `path`.
fn diff(path: &str, expected: &Value, got: &Value, out: &mut Vec<String>) {
    if out.len() >= DIFF_LIMIT {
        return;
    }
    // I32F32 encoding: compare `bits` (and `u16`) exactly, `f64` against the bits.
    if let (Some(eb), Some(ef), Some(gb), Some(gf)) = (
        expected.get("bits"),
        expected.get("f64"),
        got.get("bits"),
        got.get("f64"),
    ) {
        diff(&format!("{path}.bits"), eb, gb, out);
        if let Some(eu) = expected.get("u16") {
            diff(
                &format!("{path}.u16"),
                eu,
                got.get("u16").unwrap_or(&Value::Null),
                out,
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
                    Some(gv) => diff(&format!("{path}.{k}"), ev, gv, out),
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
                diff(&format!("{path}[{i}]"), ev, gv, out);
            }
        }
        (Value::Number(e), Value::Number(g)) if numbers_equal(e, g) => {}
        (e, g) if e == g => {}
        (e, g) => out.push(format!("{path}: expected {e}, got {g}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_changed_bit_is_reported() {
        let expected = json!({"meta": {"kind": "single"}, "outputs": {
            "incentive": {"bits": [4294967296i64], "f64": [1.0], "u16": [65535]},
            "emission": [5]
        }});
        let same = json!({"outputs": {
            "incentive": {"bits": [4294967296i64], "f64": [1.0], "u16": [65535]},
            "emission": [5]
        }});
        assert_eq!(compare_outputs("v", &expected, &same), Ok(1));
        let off = json!({"outputs": {
            "incentive": {"bits": [4294967295i64], "f64": [1.0], "u16": [65535]},
            "emission": [6]
        }});
        let diffs = compare_outputs("v", &expected, &off).unwrap_err();
        assert!(
            diffs.iter().any(|d| d.contains("incentive.bits")),
            "{diffs:?}"
        );
        assert!(diffs.iter().any(|d| d.contains("emission[0]")), "{diffs:?}");
    }
}
