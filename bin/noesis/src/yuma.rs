//! `noesis yuma epoch|check`: the Yuma epoch on test-vector files.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use crate::cli::YumaCommand;

/// Runs a `noesis yuma` subcommand.
pub fn run(command: YumaCommand) -> anyhow::Result<()> {
    match command {
        YumaCommand::Epoch { file } => {
            let text = read(&file)?;
            let outputs = noesis_yuma::run_vector_json(&text)
                .map_err(|e| anyhow!("cannot run the vector {}: {e}", file.display()))?;
            say!("{}", serde_json::to_string(&outputs)?);
            Ok(())
        }
        YumaCommand::Check { paths } => check(&paths),
    }
}

fn read(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

fn check(paths: &[PathBuf]) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("no *.json vector files in {}", path.display());
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let (mut failed, mut epochs) = (0usize, 0usize);
    for file in &files {
        let name = file.display().to_string();
        match noesis_yuma::check::check_vector(&name, &read(file)?) {
            Ok(n) => {
                epochs += n;
                say!("PASS {name} ({n} epochs)");
            }
            Err(diffs) => {
                failed += 1;
                say!("FAIL {name}");
                for d in diffs {
                    say!("  {d}");
                }
            }
        }
    }
    say!(
        "{} of {} vector files match exactly ({epochs} epochs)",
        files.len() - failed,
        files.len()
    );
    if failed > 0 {
        bail!("{failed} vector file(s) differ");
    }
    Ok(())
}
