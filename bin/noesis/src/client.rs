//! Commands that talk to a running node over its public JSON-RPC: `send`, `status`.

use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256, utils::parse_units};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::{RpcArgs, SendArgs};

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
    /// The signing key: `--key`, a keystore account (`--from`), or dev account 0.
    pub fn signer(&self) -> anyhow::Result<PrivateKeySigner> {
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

/// Signs and sends a call (gas estimated, so a revert is reported with its reason
/// before anything is sent) and waits for its receipt; fails unless it succeeded.
pub async fn send_call(
    rpc: &RpcClient,
    signer: &PrivateKeySigner,
    to: Address,
    value: U256,
    data: Vec<u8>,
) -> anyhow::Result<Value> {
    let data = Bytes::from(data);
    let chain_id = rpc.quantity("eth_chainId", json!([])).await? as u64;
    let nonce = rpc
        .quantity(
            "eth_getTransactionCount",
            json!([signer.address(), "pending"]),
        )
        .await? as u64;
    let gas = rpc
        .quantity(
            "eth_estimateGas",
            json!([{"from": signer.address(), "to": to, "value": value, "data": data}]),
        )
        .await? as u64;
    let gas_price = rpc.quantity("eth_gasPrice", json!([])).await?;
    let tip = rpc.quantity("eth_maxPriorityFeePerGas", json!([])).await?;
    let tx = TxEip1559 {
        chain_id,
        nonce,
        // Headroom over the estimate, as wallets add.
        gas_limit: gas.saturating_add(gas / 5),
        max_fee_per_gas: gas_price * 2,
        max_priority_fee_per_gas: tip.min(gas_price * 2),
        to: TxKind::Call(to),
        value,
        input: data,
        ..Default::default()
    };
    let signature = signer.sign_hash_sync(&tx.signature_hash())?;
    let envelope: TxEnvelope = tx.into_signed(signature).into();
    let raw = format!(
        "0x{}",
        alloy_primitives::hex::encode(envelope.encoded_2718())
    );
    let hash = rpc.call("eth_sendRawTransaction", json!([raw])).await?;
    let started = Instant::now();
    loop {
        let receipt = rpc.call("eth_getTransactionReceipt", json!([hash])).await?;
        if !receipt.is_null() {
            if receipt.get("status").and_then(Value::as_str) != Some("0x1") {
                bail!("transaction {hash} failed");
            }
            return Ok(receipt);
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("transaction {hash} was not mined within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
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
