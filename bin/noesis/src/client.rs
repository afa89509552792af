//! Commands that talk to a running node over its public JSON-RPC: `send`, `status`.

use alloy_primitives::{U256, utils::parse_units};
use alloy_signer_local::PrivateKeySigner;
use anyhow::Context;
use serde_json::{Value, json};

use crate::cli::{RpcArgs, SendArgs};

pub use noesis_roles::chain::send_call;
pub use noesis_roles::rpc::RpcClient;

/// Parses "1000" (wei), "1.5ether", "20gwei".
pub fn parse_amount(text: &str) -> anyhow::Result<U256> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = if unit.is_empty() { "wei" } else { unit };
    let parsed = parse_units(number, unit).map_err(|e| {
        anyhow::anyhow!("invalid amount {text:?}: {e} (examples: 1000, 1.5ether, 20gwei)")
    })?;
    Ok(parsed.get_absolute())
}

impl crate::cli::SignerArgs {
    /// The signing key: `--key`, `--keyfile`, a keystore account (`--from`), or dev
    /// account 0.
    pub fn signer(&self) -> anyhow::Result<PrivateKeySigner> {
        if let Some(path) = &self.keyfile {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --keyfile {}", path.display()))?;
            return text.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "--keyfile {} must hold a 32-byte private key in hex",
                    path.display()
                )
            });
        }
        match (&self.key, self.from) {
            (Some(key), _) => key
                .parse()
                .map_err(|_| anyhow::anyhow!("--key must be a 32-byte private key in hex")),
            (None, Some(from)) => crate::account::unlock(&self.keystore, from),
            (None, None) => {
                let dev = noesis_primitives::dev_accounts(1);
                let first = dev.first().context("cannot derive the dev account")?;
                Ok(PrivateKeySigner::from_bytes(&first.private_key)?)
            }
        }
    }
}

/// `noesis send`.
pub async fn send(args: SendArgs) -> anyhow::Result<()> {
    let value = parse_amount(&args.value)?;
    let signer = args.signer.signer()?;
    let rpc = RpcClient::new(&args.signer.rpc.rpc);
    let receipt = send_call(&rpc, &signer, args.to, value, Vec::new()).await?;
    crate::say!(
        "{}",
        json!({"hash": receipt.get("transactionHash"), "from": signer.address(), "to": args.to,
               "value": value.to_string(), "blockNumber": receipt.get("blockNumber"), "status": "success"})
    );
    Ok(())
}

/// `noesis status`.
pub async fn status(args: RpcArgs) -> anyhow::Result<()> {
    let rpc = RpcClient::new(&args.rpc);
    let head = rpc
        .call("eth_getBlockByNumber", json!(["latest", false]))
        .await?;
    let status = json!({
        "rpc": args.rpc,
        "client": rpc.call("web3_clientVersion", json!([])).await?,
        "chainId": rpc.quantity("eth_chainId", json!([])).await?,
        "height": head.get("number").and_then(Value::as_str).and_then(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).ok()),
        "head": head.get("hash"),
        "stateRoot": head.get("stateRoot"),
        "syncing": rpc.call("eth_syncing", json!([])).await?,
        "peers": rpc.quantity("net_peerCount", json!([])).await?,
    });
    crate::say!("{}", serde_json::to_string_pretty(&status)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_with_units() {
        assert_eq!(parse_amount("1000").unwrap(), U256::from(1000));
        assert_eq!(
            parse_amount("20gwei").unwrap(),
            U256::from(20_000_000_000u64)
        );
        assert_eq!(
            parse_amount("1.5ether").unwrap(),
            U256::from(1_500_000_000_000_000_000u128)
        );
        assert!(parse_amount("lots").is_err());
    }
}
