//! Conformance against the Subtensor-derived test vectors in `shared/testvectors/yuma/`.
//!
//! Every `*.json` file is run through [`noesis_yuma::run_vector_json`] and every output field of
//! every epoch must equal the expected one exactly (`bits`, `u16`, `f64` companions, integers,
//! booleans, sparse bond rows).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

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

/// Compares one file; returns the number of epochs checked or the differences found.
fn check_file(path: &Path) -> Result<usize, Vec<String>> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    noesis_yuma::check::check_vector(&name, &text)
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
