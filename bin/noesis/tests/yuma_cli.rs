//! `noesis yuma epoch` reproduces every vector in `shared/testvectors/yuma/` exactly,
//! and `noesis yuma check` reports matches and differences.

use std::{path::PathBuf, process::Command};

fn vector_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testvectors/yuma"
    ))
}

fn noesis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_noesis"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn epoch_prints_every_vectors_outputs_exactly() {
    let dir = vector_dir();
    if !dir.is_dir() {
        eprintln!("SKIPPED: {} not found", dir.display());
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut failures = Vec::new();
    for file in &files {
        let out = noesis(&["yuma", "epoch", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let name = file.file_name().unwrap().to_string_lossy();
        if let Err(diffs) = noesis_yuma::check::compare_outputs(&name, &expected, &printed) {
            failures.push(diffs.join("\n  "));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn check_reports_a_doctored_vector_and_bad_files() {
    let dir = vector_dir();
    if !dir.is_dir() {
        eprintln!("SKIPPED: {} not found", dir.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // One expected incentive bit changed: the check must fail and name the field.
    let text = std::fs::read_to_string(dir.join("random_64_y3.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bits = &mut doc["outputs"]["incentive"]["bits"][0];
    *bits = serde_json::json!(bits.as_i64().unwrap() + 1);
    let doctored = tmp.path().join("doctored.json");
    std::fs::write(&doctored, serde_json::to_string(&doc).unwrap()).unwrap();
    let out = noesis(&["yuma", "check", doctored.to_str().unwrap()]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("incentive.bits[0]"), "{stdout}");

    // The untouched file passes.
    let out = noesis(&[
        "yuma",
        "check",
        dir.join("random_64_y3.json").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Unreadable and malformed input: a clear error, no panic.
    let out = noesis(&["yuma", "epoch", "/nonexistent/vector.json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{\"meta\": {\"kind\": \"single\"}}").unwrap();
    let out = noesis(&["yuma", "epoch", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot run the vector"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
