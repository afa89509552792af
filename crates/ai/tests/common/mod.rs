//! What the tests on the real model share: where the model is, and one loaded engine.
//!
//! The model must be installed: in `$NOESIS_MODEL_DIR`, else in the default data dir's
//! models folder (`~/.noesis/dev/models`); `noesis model fetch` puts it there
//! (`scripts/test.sh` runs it first). A missing model fails the tests, it does not skip
//! them.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use noesis_ai::models::KNOWN_MODELS;
use noesis_ai::{Engine, LoadOptions};

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where installed models are: `$NOESIS_MODEL_DIR`, else `~/.noesis/dev/models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("NOESIS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".noesis/dev/models"))
}

/// The installed SmolLM2 GGUF.
pub fn model_path() -> PathBuf {
    let path = models_dir().join(KNOWN_MODELS[0].file);
    assert!(
        path.is_file(),
        "the SmolLM2 model is not installed at {}: run `noesis model fetch` (or point \
         NOESIS_MODEL_DIR at a folder holding {})",
        path.display(),
        KNOWN_MODELS[0].file
    );
    path
}

/// Loads SmolLM2 with `threads`, its sha256 checked.
pub fn load(threads: usize) -> Engine {
    let opts = LoadOptions {
        threads,
        expected_sha256: Some(KNOWN_MODELS[0].sha256.to_string()),
    };
    Engine::load(&model_path(), &opts).expect("load SmolLM2")
}

/// SmolLM2 loaded once per test binary, with 2 threads.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| load(2))
}

/// An adversary model file made by `scripts/adversaries.sh` (in
/// `$NOESIS_ADVERSARY_DIR`, else `~/.cache/noesis/adversaries`), loaded with 2 threads.
/// A missing file fails the test with the command that makes it.
pub fn adversary(name: &str) -> Engine {
    let dir = std::env::var_os("NOESIS_ADVERSARY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/noesis/adversaries"));
    let path = dir.join(format!("{name}.gguf"));
    assert!(
        path.is_file(),
        "the adversary model {} is missing: run scripts/adversaries.sh",
        path.display()
    );
    let opts = LoadOptions {
        threads: 2,
        expected_sha256: None,
    };
    Engine::load(&path, &opts).expect("load the adversary model")
}
