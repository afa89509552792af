//! `noesis account`: encrypted keys in a web3 secret-storage keystore (geth format).

use std::path::PathBuf;

use alloy_signer_local::PrivateKeySigner;
use anyhow::{Context, bail};

use crate::cli::{AccountCommand, KeystoreArgs, home_dir};

/// Runs an account command.
pub fn run(cmd: AccountCommand) -> anyhow::Result<()> {
    match cmd {
        AccountCommand::New(ks) => {
            let dir = keystore_dir(&ks)?;
            let password = password(&ks)?;
            let signer = PrivateKeySigner::random();
            save(&dir, &signer, &password)?;
            crate::say!("{}", signer.address());
        }
        AccountCommand::Import { key_file, keystore } => {
            let text = if key_file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .context("cannot read the key from standard input")?
            } else {
                std::fs::read_to_string(&key_file)
                    .with_context(|| format!("cannot read {}", key_file.display()))?
            };
            let signer: PrivateKeySigner = text.trim().parse().map_err(|_| {
                anyhow::anyhow!("the key file must hold a 32-byte private key in hex")
            })?;
            let dir = keystore_dir(&keystore)?;
            save(&dir, &signer, &password(&keystore)?)?;
            crate::say!("{}", signer.address());
        }
        AccountCommand::List(ks) => {
            let dir = keystore_dir(&ks)?;
            for address in list(&dir)? {
                crate::say!("{address}");
            }
        }
    }
    Ok(())
}

fn keystore_dir(ks: &KeystoreArgs) -> anyhow::Result<PathBuf> {
    let dir = ks
        .keystore
        .clone()
        .unwrap_or_else(|| home_dir().join("keystore"));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create keystore {}", dir.display()))?;
    Ok(dir)
}

/// The keystore password, from --password-file or NOESIS_PASSWORD.
pub fn password(ks: &KeystoreArgs) -> anyhow::Result<String> {
    if let Some(file) = &ks.password_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_string());
    }
    match std::env::var("NOESIS_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(p),
        _ => bail!("no keystore password: pass --password-file FILE or set NOESIS_PASSWORD"),
    }
}

fn save(dir: &std::path::Path, signer: &PrivateKeySigner, password: &str) -> anyhow::Result<()> {
    let name = format!("{:x}.json", signer.address());
    if dir.join(&name).exists() {
        bail!(
            "account {} is already in {}",
            signer.address(),
            dir.display()
        );
    }
    PrivateKeySigner::encrypt_keystore(
        dir,
        &mut rand::thread_rng(),
        signer.to_bytes(),
        password,
        Some(&name),
    )
    .map_err(|e| anyhow::anyhow!("cannot write the keystore: {e}"))?;
    Ok(())
}

fn list(dir: &std::path::Path) -> anyhow::Result<Vec<alloy_primitives::Address>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if let Some(address) = json
            .get("address")
            .and_then(|a| a.as_str())
            .and_then(|a| a.parse().ok())
        {
            out.push(address);
        } else if let Some(address) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
        {
            out.push(address);
        }
    }
    out.sort();
    Ok(out)
}

/// Unlocks the keystore key of `address`.
pub fn unlock(
    ks: &KeystoreArgs,
    address: alloy_primitives::Address,
) -> anyhow::Result<PrivateKeySigner> {
    let dir = keystore_dir(ks)?;
    let path = dir.join(format!("{address:x}.json"));
    if !path.exists() {
        bail!(
            "no key for {address} in {} (see `noesis account list`)",
            dir.display()
        );
    }
    PrivateKeySigner::decrypt_keystore(&path, password(ks)?)
        .map_err(|e| anyhow::anyhow!("cannot unlock {address}: {e}"))
}
