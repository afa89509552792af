//! Which miners serve which model: the subnet's metagraph (`noesis_metagraph`) gives each
//! UID's hotkey, incentive and announced endpoint; each endpoint's `GET /v1/models` says
//! what it serves.

use std::time::Duration;

use alloy_primitives::{Address, B256};
use serde_json::{Value, json};

use crate::rpc::RpcClient;

/// A miner the gateway can route to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinerEndpoint {
    /// Its UID in the subnet.
    pub uid: u16,
    /// The address its receipts must be signed by (its hotkey's address).
    pub signer: Address,
    /// Base URL of its API (`http://ip:port/v1`).
    pub url: String,
    /// Its incentive in the last epoch (u16 share of 65535).
    pub incentive: u16,
    /// The model ids it serves.
    pub models: Vec<String>,
}

/// The address a hotkey stands for (Noesis hotkeys are addresses as bytes32), if it is one.
fn hotkey_address(hotkey: B256) -> Option<Address> {
    hotkey[..12]
        .iter()
        .all(|b| *b == 0)
        .then(|| Address::from_word(hotkey))
}

/// The neurons of `netuid` that announce an endpoint and whose hotkey is an address, in
/// UID order (their `models` left empty).
pub async fn announced(rpc: &RpcClient, netuid: u16) -> anyhow::Result<Vec<MinerEndpoint>> {
    let metagraph = rpc.call("noesis_metagraph", json!([netuid])).await?;
    let mut found = Vec::new();
    for neuron in metagraph["neurons"].as_array().into_iter().flatten() {
        let (Some(uid), Some(ip), Some(port)) = (
            neuron["uid"].as_u64().and_then(|u| u16::try_from(u).ok()),
            neuron["axon"]["ip"].as_str(),
            neuron["axon"]["port"].as_u64(),
        ) else {
            continue;
        };
        let Some(signer) = serde_json::from_value::<B256>(neuron["hotkey"].clone())
            .ok()
            .and_then(hotkey_address)
        else {
            continue;
        };
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        found.push(MinerEndpoint {
            uid,
            signer,
            url: format!("http://{host}:{port}/v1"),
            incentive: neuron["incentive"]
                .as_u64()
                .and_then(|i| u16::try_from(i).ok())
                .unwrap_or(0),
            models: Vec::new(),
        });
    }
    Ok(found)
}

/// The miners of `netuid` that announce an endpoint and answer `GET /v1/models` within
/// `timeout`, in UID order.
pub async fn discover(
    rpc: &RpcClient,
    http: &reqwest::Client,
    netuid: u16,
    timeout: Duration,
) -> anyhow::Result<Vec<MinerEndpoint>> {
    let mut found = Vec::new();
    for mut miner in announced(rpc, netuid).await? {
        match served_models(http, &miner.url, timeout).await {
            Some(models) if !models.is_empty() => miner.models = models,
            _ => continue,
        }
        found.push(miner);
    }
    Ok(found)
}

/// The model ids the miner at `url` lists, `None` when it does not answer in `timeout`.
pub async fn served_models(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Option<Vec<String>> {
    let response = http
        .get(format!("{url}/models"))
        .timeout(timeout)
        .send()
        .await
        .ok()?;
    let body: Value = response.error_for_status().ok()?.json().await.ok()?;
    Some(
        body["data"]
            .as_array()?
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect(),
    )
}

/// Picks one of `candidates` at random, weighted by incentive (uniformly when none has
/// any); `draw` is a uniform number in `[0, 1)`.
pub fn pick<'a>(candidates: &[&'a MinerEndpoint], draw: f64) -> Option<&'a MinerEndpoint> {
    let total: u64 = candidates.iter().map(|m| u64::from(m.incentive)).sum();
    if total == 0 {
        let i = ((draw * candidates.len() as f64) as usize).min(candidates.len().checked_sub(1)?);
        return candidates.get(i).copied();
    }
    let mut target = draw * total as f64;
    for m in candidates {
        target -= f64::from(m.incentive);
        if target < 0.0 {
            return Some(m);
        }
    }
    candidates.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn miner(uid: u16, incentive: u16) -> MinerEndpoint {
        MinerEndpoint {
            uid,
            signer: Address::ZERO,
            url: String::new(),
            incentive,
            models: vec![],
        }
    }

    #[test]
    fn picks_follow_incentive_and_fall_back_to_uniform() {
        let (a, b, c) = (miner(0, 0), miner(1, 30000), miner(2, 10000));
        let all = [&a, &b, &c];
        let mut counts = [0usize; 3];
        for i in 0..4000 {
            let m = pick(&all, (i as f64 + 0.5) / 4000.0).unwrap();
            counts[m.uid as usize] += 1;
        }
        assert_eq!(counts, [0, 3000, 1000]);
        let zero = [&a, &miner(1, 0)];
        assert_eq!(pick(&zero, 0.2).unwrap().uid, 0);
        assert_eq!(pick(&zero, 0.7).unwrap().uid, 1);
        assert!(pick(&[], 0.5).is_none());
    }

    #[test]
    fn only_address_hotkeys_have_signers() {
        let a = Address::repeat_byte(9);
        assert_eq!(hotkey_address(a.into_word()), Some(a));
        assert_eq!(hotkey_address(B256::repeat_byte(1)), None);
    }
}
